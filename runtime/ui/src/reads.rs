//! What the pages and the API read from the store: pages of runs with
//! filters, the recent runs the charts and strips are drawn from, one run
//! whole.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use weft::model::{Deployment, PoolKind, State, StateRecord};
use weft::store::{RunSummary, Store, StoreError};

/// Summaries read from the store at once.
const AT_ONCE: usize = 16;
/// The most runs one page request looks at before it stops and offers the
/// next page: a filter that matches nothing does not read the whole history.
pub const MAX_SCAN: usize = 2_000;
/// The most runs the chart and the strips are drawn from.
pub const RECENT: usize = 300;

/// Which runs a page shows.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct RunFilter {
    /// Only runs whose latest state is this.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "state")]
    pub state: Option<State>,
    /// Only runs of this deployment.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "non_empty")]
    pub deployment: Option<String>,
    /// Only runs of deployments with this tag.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "non_empty")]
    pub tag: Option<String>,
    /// Only runs older than this run id (the page after).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "non_empty")]
    pub before: Option<String>,
    /// At most this many runs (default 50, at most 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

fn non_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.trim().is_empty()))
}

fn state<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<State>, D::Error> {
    match non_empty(d)? {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

impl RunFilter {
    /// The page size asked for, within bounds.
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(50).clamp(1, 500)
    }

    /// The same filter for another page.
    pub fn query(&self, before: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(state) = self.state {
            query.append_pair("state", &state.to_string());
        }
        for (key, value) in [("deployment", &self.deployment), ("tag", &self.tag)] {
            if let Some(value) = value {
                query.append_pair(key, value);
            }
        }
        if let Some(limit) = self.limit {
            query.append_pair("limit", &limit.to_string());
        }
        if let Some(before) = before {
            query.append_pair("before", before);
        }
        query.finish()
    }

    fn matches(&self, summary: &RunSummary, tags: &HashMap<String, Vec<String>>) -> bool {
        self.state.is_none_or(|s| summary.state == Some(s))
            && self.deployment.as_ref().is_none_or(|d| summary.run.deployment.as_ref() == Some(d))
            && self.tag.as_ref().is_none_or(|tag| {
                summary.run.deployment.as_ref().and_then(|d| tags.get(d)).is_some_and(|t| t.contains(tag))
            })
    }
}

/// A page of runs, newest first.
#[derive(Debug, Serialize)]
pub struct RunPage {
    /// The runs.
    pub runs: Vec<RunSummary>,
    /// Where the next page starts (`before=`), if there may be more.
    pub next: Option<String>,
}

/// Summaries of these runs, in order; runs that vanished are left out.
async fn summaries(store: &Store, ids: &[String]) -> Result<Vec<RunSummary>, StoreError> {
    let reads = ids.iter().cloned().map(|id| {
        let store = store.clone();
        async move { store.run_summary(&id).await }
    });
    let found: Vec<Option<RunSummary>> = futures::stream::iter(reads).buffered(AT_ONCE).try_collect().await?;
    Ok(found.into_iter().flatten().collect())
}

/// The runs a filter picks, newest first, a page at a time. Runs are read
/// from the newest down, a page's worth at a time, until the page is full
/// or [`MAX_SCAN`] runs were looked at.
pub async fn run_page(store: &Store, filter: &RunFilter, deployments: &[Deployment]) -> Result<RunPage, StoreError> {
    let tags: HashMap<String, Vec<String>> = deployments.iter().map(|d| (d.name.clone(), d.tags.clone())).collect();
    let limit = filter.limit();
    let mut runs = Vec::new();
    let mut below = filter.before.clone();
    let mut scanned = 0;
    loop {
        let batch = limit.max(AT_ONCE).min(MAX_SCAN - scanned);
        let ids = store.newest_run_ids(below.as_deref(), batch).await?;
        let exhausted = ids.len() < batch;
        scanned += ids.len();
        for summary in summaries(store, &ids).await? {
            below = Some(summary.run.id.clone());
            if filter.matches(&summary, &tags) {
                runs.push(summary);
                if runs.len() == limit {
                    break;
                }
            }
        }
        // Nothing older is left: the last run is read, or was never there.
        if exhausted && (runs.len() < limit || below.as_ref() == ids.last()) {
            return Ok(RunPage { runs, next: None });
        }
        if runs.len() == limit || scanned >= MAX_SCAN {
            break;
        }
        if let Some(last) = ids.last() {
            below = Some(last.clone());
        }
    }
    Ok(RunPage { runs, next: below })
}

/// The most recent runs (at most [`RECENT`]), newest first, for the chart
/// and the strips.
pub async fn recent_runs(store: &Store) -> Result<Vec<RunSummary>, StoreError> {
    let newest = store.newest_run_ids(None, RECENT).await?;
    summaries(store, &newest).await
}

/// When a run id was made: ids are ULIDs.
pub fn id_time(id: &str) -> Option<SystemTime> {
    let ulid = ulid::Ulid::from_string(id).ok()?;
    Some(UNIX_EPOCH + Duration::from_millis(ulid.timestamp_ms()))
}

/// One run, whole.
#[derive(Debug, Serialize)]
pub struct RunDetail {
    /// The run, its latest state and timing.
    #[serde(flatten)]
    pub summary: RunSummary,
    /// Its state history.
    pub states: Vec<StateRecord>,
    /// Its result, once Completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// The Kubernetes Job it ran in, when its pool is a Kubernetes pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_job: Option<String>,
    /// The pod (or host) its runner ran on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner_host: Option<String>,
}

impl RunDetail {
    /// Why it ended, if it did not complete: the final state's message.
    pub fn error(&self) -> Option<&str> {
        self.states.last().filter(|s| s.state.is_final() && s.state != State::Completed)?.message.as_deref()
    }
}

/// A run with its states and result; `None` when there is no such run.
pub async fn run_detail(store: &Store, id: &str) -> Result<Option<RunDetail>, StoreError> {
    let Some(summary) = store.run_summary(id).await? else { return Ok(None) };
    let states: Vec<StateRecord> = store.states(id).await?.into_iter().map(|(_, s)| s).collect();
    let result = if summary.state == Some(State::Completed) { store.read_result(id).await? } else { None };
    let runner_host = states.iter().rev().find_map(|s| s.host.clone());
    let kubernetes_job = match (&summary.run.work_pool, &summary.run.deployment) {
        (Some(pool), Some(deployment)) => match store.pool(pool).await? {
            Some((_, pool)) if pool.kind == PoolKind::Kubernetes && summary.state != Some(State::Scheduled) => {
                Some(weft::model::job_template::job_name(deployment, id))
            }
            _ => None,
        },
        _ => None,
    };
    Ok(Some(RunDetail { summary, states, result, kubernetes_job, runner_host }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_round_trips_through_its_query() {
        let filter = RunFilter {
            state: Some(State::Failed),
            deployment: Some("etl nightly".into()),
            tag: None,
            before: None,
            limit: Some(5),
        };
        let query = filter.query(Some("01ABC"));
        assert_eq!(query, "state=Failed&deployment=etl+nightly&limit=5&before=01ABC");
        let back: RunFilter = serde_json::from_value(serde_json::json!({
            "state": "failed", "deployment": "etl nightly", "tag": "", "limit": 5, "before": "01ABC"
        }))
        .expect("filter");
        assert_eq!(back.state, Some(State::Failed));
        assert_eq!(back.tag, None);
        assert_eq!(back.limit(), 5);
    }
}
