//! The run index: the newest runs without listing every run.
//!
//! Run ids are ULIDs, whose first ten characters are the creation time. Each
//! run also gets an empty marker at
//!
//! ```text
//! run-index/<id[0..5]>/<id[5..7]>/<id[7]>/<id>
//! ```
//!
//! a trie of time windows: about 9.3 hours, then 33 seconds, then one
//! second. The newest runs are found by listing the newest window at each
//! level, down to the runs of a second or so, so the cost follows the page
//! asked for, not the history. A year of runs is under a thousand folders at
//! the top.
//!
//! Stores older than the index hold runs without markers.
//! `run-index.json` records the first run indexed (`since`): below it, the
//! walk goes on in the full listing of `runs/`, so every run is still found,
//! once.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::{Store, StoreError};

const INDEX: &str = "run-index";
const MARKER: &str = "run-index.json";

/// What `run-index.json` says.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IndexMarker {
    /// The first run indexed: every run created after it has a marker.
    since: String,
    /// Whether it was the store's first run: then no run needs the full
    /// listing.
    #[serde(default)]
    complete: bool,
}

/// Whether this process has seen `run-index.json`, shared by the clones of
/// a [`Store`].
#[derive(Debug, Clone, Default)]
pub(crate) struct IndexState(Arc<OnceCell<()>>);

/// Where a run's marker goes; `None` for an id that is not a ULID as weft
/// writes them (a run made by hand), which only the full listing finds.
fn marker_path(id: &str) -> Option<String> {
    let ulid = ulid::Ulid::from_string(id).ok()?;
    (ulid.to_string() == id).then(|| format!("{INDEX}/{}/{}/{}/{id}", &id[..5], &id[5..7], &id[7..8]))
}

impl Store {
    /// Indexes a run about to be created (before its `run.json`, so that no
    /// run is ever missing from the index; readers skip a marker whose run
    /// never came). The first run a store indexes writes `run-index.json`,
    /// naming itself, once per store.
    pub(crate) async fn index_run(&self, id: &str) -> Result<(), StoreError> {
        let Some(path) = marker_path(id) else { return Ok(()) };
        self.put(&path, bytes::Bytes::new()).await?;
        self.index
            .0
            .get_or_try_init(|| async {
                if !self.exists(MARKER).await? {
                    let complete = self.run_ids().await?.is_empty();
                    let marker = IndexMarker { since: id.to_owned(), complete };
                    let json = serde_json::to_vec(&marker).map_err(|e| StoreError::Corrupt {
                        url: self.url().to_owned(),
                        path: MARKER.to_owned(),
                        reason: e.to_string(),
                    })?;
                    // Create-only: of two first runs, the first written wins.
                    self.create(MARKER, json.into()).await?;
                }
                Ok::<(), StoreError>(())
            })
            .await?;
        Ok(())
    }

    /// Up to `limit` run ids older than `before` (from the newest when
    /// `None`), newest first: from the index, then, for runs older than the
    /// index, from the full listing of `runs/`.
    pub async fn newest_run_ids(&self, before: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError> {
        let marker: Option<IndexMarker> = self.get_json(MARKER).await?;
        let mut found = Vec::new();
        if marker.is_some() {
            self.walk(INDEX, 0, before, limit, &mut found).await?;
        }
        if found.len() >= limit || marker.as_ref().is_some_and(|m| m.complete) {
            return Ok(found);
        }
        // Every indexed run below `before` is found: what is left are runs
        // older than the index's first, which have no marker.
        let below = found.last().map(String::as_str).or(before);
        let ceiling = match (below, &marker) {
            (Some(b), Some(m)) => Some(b.min(m.since.as_str())),
            (Some(b), None) => Some(b),
            (None, Some(m)) => Some(m.since.as_str()),
            (None, None) => None,
        }
        .map(str::to_owned);
        let all = self.run_ids().await?;
        let end = ceiling.as_deref().map_or(all.len(), |c| all.partition_point(|id| id.as_str() < c));
        // A run indexed before the marker was written (two first runs at
        // once) is both in the index and below `since`: once is enough.
        let mut seen: std::collections::HashSet<String> = found.iter().cloned().collect();
        for id in all[..end].iter().rev() {
            if found.len() >= limit {
                break;
            }
            if seen.insert(id.clone()) {
                found.push(id.clone());
            }
        }
        Ok(found)
    }

    /// Depth-first, newest first, through the trie's levels (three folder
    /// levels, then the ids).
    fn walk<'a>(
        &'a self,
        folder: &'a str,
        depth: usize,
        before: Option<&'a str>,
        limit: usize,
        found: &'a mut Vec<String>,
    ) -> futures::future::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if depth == 3 {
                let names = self.list_names(folder).await?;
                for id in names.into_iter().rev() {
                    if found.len() >= limit {
                        return Ok(());
                    }
                    if before.is_none_or(|b| id.as_str() < b) {
                        found.push(id);
                    }
                }
                return Ok(());
            }
            // The id prefix this folder stands for, to skip windows that
            // are all at or after `before`.
            let prefix: String = folder.split('/').skip(1).collect();
            for child in self.list_folders(folder).await?.into_iter().rev() {
                if found.len() >= limit {
                    return Ok(());
                }
                let window = format!("{prefix}{child}");
                if before.is_some_and(|b| window.as_str() > &b[..window.len().min(b.len())]) {
                    continue;
                }
                self.walk(&format!("{folder}/{child}"), depth + 1, before, limit, found).await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_sits_in_the_windows_of_its_time() {
        assert_eq!(
            marker_path("01M8P2FY0RZK02BFYRE63BYEF7").as_deref(),
            Some("run-index/01M8P/2F/Y/01M8P2FY0RZK02BFYRE63BYEF7")
        );
        assert_eq!(marker_path("not-a-ulid"), None);
        assert_eq!(marker_path("01m8p2fy0rzk02bfyre63byef7"), None, "only ids as weft writes them");
    }
}
