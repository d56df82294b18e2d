//! Flow run records: `run.json`, the state history, result, log chunks and
//! task run chunks.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;

use super::{Store, StoreError};
use crate::model::{FlowRun, LogLine, State, StateRecord, TaskRun};

/// What [`Store::transition`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum TransitionOutcome {
    /// The new state was written as entry `seq` of the history.
    Written {
        /// Its sequence number (from 1).
        seq: u32,
    },
    /// The decision was to write nothing, given this latest state.
    Kept {
        /// The latest state at the time of the decision.
        current: Option<StateRecord>,
    },
}

/// A run as `weft runs ls` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// The run.
    #[serde(flatten)]
    pub run: FlowRun,
    /// Its latest state.
    pub state: Option<State>,
    /// When it started Running.
    #[serde(with = "optional_rfc3339", skip_serializing_if = "Option::is_none")]
    pub started: Option<SystemTime>,
    /// When it reached a final state.
    #[serde(with = "optional_rfc3339", skip_serializing_if = "Option::is_none")]
    pub ended: Option<SystemTime>,
    /// Set when the run is Running or Cancelling (or has no state at all)
    /// but its process has given no sign of life for [`STALE_AFTER`]: the
    /// time of its last sign (a heartbeat, its latest state, its creation). Its process most likely vanished
    /// (SIGKILL, a lost machine); `weft runs cancel` ends it.
    #[serde(with = "optional_rfc3339", skip_serializing_if = "Option::is_none")]
    pub stale_since: Option<SystemTime>,
}

impl RunSummary {
    /// Its latest state, marked when its process stopped giving signs of
    /// life: `Running (stale)`.
    pub fn state_text(&self) -> String {
        match (self.state, self.stale_since) {
            (Some(state), Some(_)) => format!("{state} (stale)"),
            (Some(state), None) => state.to_string(),
            (None, Some(_)) => "- (stale)".into(),
            (None, None) => "-".into(),
        }
    }

    /// How long it ran (`1.25s`), or has run so far at `now` (`3m 2s so
    /// far`); empty before it started.
    pub fn elapsed_text(&self, now: SystemTime) -> String {
        let took = |from: SystemTime, to: SystemTime| {
            crate::model::short_duration(to.duration_since(from).unwrap_or_default())
        };
        match (self.started, self.ended) {
            (Some(start), Some(end)) => took(start, end),
            (Some(start), None) => format!("{} so far", took(start, now)),
            _ => String::new(),
        }
    }
}

/// What [`Store::cancel_run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The run had not started and is Cancelled.
    BeforeStart,
    /// The run is Cancelling: its runner stops it and records Cancelled.
    Requested,
    /// The run's process had vanished: it is recorded Crashed.
    Stale,
    /// Nothing was written: the run had ended already, in this state.
    AlreadyEnded(Option<State>),
}

/// A run whose process wrote no heartbeat for this long is stale. Runners
/// and `weft run` beat every 2 s; the agent's `--heartbeat-timeout`
/// defaults to this too.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

mod optional_rfc3339 {
    use std::time::SystemTime;

    pub fn serialize<S: serde::Serializer>(time: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match time {
            Some(t) => crate::model::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }
}

fn seq_name(seq: u32, extension: &str) -> String {
    format!("{seq:08}.{extension}")
}

fn parse_seq(name: &str) -> Option<u32> {
    name.split('.').next()?.parse().ok()
}

impl Store {
    fn encode<T: Serialize>(&self, path: &str, value: &T) -> Result<Bytes, StoreError> {
        serde_json::to_vec(value).map(Bytes::from).map_err(|e| StoreError::Corrupt {
            url: self.url().to_owned(),
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Records a new flow run (`run.json`, created once).
    pub async fn create_run(&self, run: &FlowRun) -> Result<(), StoreError> {
        let path = format!("runs/{}/run.json", run.id);
        // Indexed first: a marker without its run is skipped by readers,
        // a run without its marker would be missed.
        self.index_run(&run.id).await?;
        if self.create(&path, self.encode(&path, run)?).await? {
            Ok(())
        } else {
            Err(StoreError::Corrupt {
                url: self.url().to_owned(),
                path,
                reason: "a run with this id exists already".into(),
            })
        }
    }

    /// Reads a flow run; `None` when there is no such run.
    pub async fn read_run(&self, id: &str) -> Result<Option<FlowRun>, StoreError> {
        self.get_json(&format!("runs/{id}/run.json")).await
    }

    /// The ids of all runs, oldest first (ids sort by creation time). This
    /// lists every run; [`Store::newest_run_ids`] reads only what it returns.
    pub async fn run_ids(&self) -> Result<Vec<String>, StoreError> {
        self.list_folders("runs").await
    }

    /// The state history of a run, in order, with sequence numbers.
    pub async fn states(&self, id: &str) -> Result<Vec<(u32, StateRecord)>, StoreError> {
        let folder = format!("runs/{id}/states");
        let mut states = Vec::new();
        for name in self.list_names(&folder).await? {
            let Some(seq) = parse_seq(&name) else { continue };
            if let Some(record) = self.get_json::<StateRecord>(&format!("{folder}/{name}")).await? {
                states.push((seq, record));
            }
        }
        Ok(states)
    }

    /// The latest state of a run.
    pub async fn latest_state(&self, id: &str) -> Result<Option<(u32, StateRecord)>, StoreError> {
        let folder = format!("runs/{id}/states");
        let Some(name) = self.list_names(&folder).await?.into_iter().rfind(|n| parse_seq(n).is_some()) else {
            return Ok(None);
        };
        let record = self.get_json::<StateRecord>(&format!("{folder}/{name}")).await?;
        Ok(record.and_then(|r| parse_seq(&name).map(|seq| (seq, r))))
    }

    /// Moves a run to a new state, decided from its latest state.
    ///
    /// `decide` sees the latest state and returns the record to append, or
    /// `None` to leave things as they are. The record is created as the next
    /// entry only if no one else created that entry first; when someone did,
    /// the history is read again and `decide` asked again. Nothing is ever
    /// overwritten, so two writers can never both make a transition from the
    /// same state.
    pub async fn transition(
        &self,
        id: &str,
        mut decide: impl FnMut(Option<&StateRecord>) -> Option<StateRecord>,
    ) -> Result<TransitionOutcome, StoreError> {
        loop {
            let latest = self.latest_state(id).await?;
            let Some(record) = decide(latest.as_ref().map(|(_, r)| r)) else {
                return Ok(TransitionOutcome::Kept { current: latest.map(|(_, r)| r) });
            };
            let seq = latest.map_or(1, |(seq, _)| seq + 1);
            let path = format!("runs/{id}/states/{}", seq_name(seq, "json"));
            if self.create(&path, self.encode(&path, &record)?).await? {
                return Ok(TransitionOutcome::Written { seq });
            }
            tracing::debug!(run = id, seq, "lost a state write race; deciding again");
        }
    }

    /// Writes a run's result.
    pub async fn write_result(&self, id: &str, result: &serde_json::Value) -> Result<(), StoreError> {
        let path = format!("runs/{id}/result.json");
        self.put(&path, self.encode(&path, result)?).await
    }

    /// Reads a run's result.
    pub async fn read_result(&self, id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.get_json(&format!("runs/{id}/result.json")).await
    }

    /// Appends a chunk (`<folder>/<seq>.jsonl`) of JSON lines, create-only:
    /// `next` is the sequence number to try (found by listing when `None`)
    /// and is left at the one after the chunk written.
    async fn append_chunk<T: Serialize>(
        &self,
        folder: &str,
        items: &[T],
        next: &mut Option<u32>,
    ) -> Result<(), StoreError> {
        let mut text = Vec::new();
        for item in items {
            let line = serde_json::to_vec(item).map_err(|e| StoreError::Corrupt {
                url: self.url().to_owned(),
                path: folder.to_owned(),
                reason: e.to_string(),
            })?;
            text.extend_from_slice(&line);
            text.push(b'\n');
        }
        let text = Bytes::from(text);
        loop {
            let seq = match *next {
                Some(seq) => seq,
                None => self.list_names(folder).await?.iter().filter_map(|n| parse_seq(n)).max().map_or(1, |s| s + 1),
            };
            if self.create(&format!("{folder}/{}", seq_name(seq, "jsonl")), text.clone()).await? {
                *next = Some(seq + 1);
                return Ok(());
            }
            // Another writer took this number: look again.
            *next = None;
        }
    }

    /// Reads the chunks of a folder after `after` (a chunk name), in order:
    /// the items and the name of the last chunk read.
    async fn read_chunks<T: serde::de::DeserializeOwned>(
        &self,
        folder: &str,
        after: Option<&str>,
    ) -> Result<(Vec<T>, Option<String>), StoreError> {
        let names: Vec<String> =
            self.list_names(folder).await?.into_iter().filter(|n| after.is_none_or(|a| n.as_str() > a)).collect();
        let mut items = Vec::new();
        for name in &names {
            let path = format!("{folder}/{name}");
            let Some(bytes) = self.get(&path).await? else { continue };
            for (i, line) in bytes.split(|&b| b == b'\n').enumerate().filter(|(_, l)| !l.is_empty()) {
                items.push(serde_json::from_slice(line).map_err(|e| StoreError::Corrupt {
                    url: self.url().to_owned(),
                    path: format!("{path} line {}", i + 1),
                    reason: e.to_string(),
                })?);
            }
        }
        Ok((items, names.last().cloned().or_else(|| after.map(str::to_owned))))
    }

    /// Appends a chunk of log lines to a run's logs.
    pub async fn append_logs(&self, id: &str, lines: &[LogLine], next: &mut Option<u32>) -> Result<(), StoreError> {
        self.append_chunk(&format!("runs/{id}/logs"), lines, next).await
    }

    /// Reads a run's log lines, from the chunk after `after` on.
    pub async fn read_logs(&self, id: &str, after: Option<&str>) -> Result<(Vec<LogLine>, Option<String>), StoreError> {
        self.read_chunks(&format!("runs/{id}/logs"), after).await
    }

    /// Appends task run snapshots to a run's task runs.
    pub async fn append_task_runs(&self, id: &str, runs: &[TaskRun], next: &mut Option<u32>) -> Result<(), StoreError> {
        self.append_chunk(&format!("runs/{id}/tasks"), runs, next).await
    }

    /// A run's task runs: the latest snapshot of each, in the order they began.
    pub async fn task_runs(&self, id: &str) -> Result<Vec<TaskRun>, StoreError> {
        let (snapshots, _) = self.read_chunks::<TaskRun>(&format!("runs/{id}/tasks"), None).await?;
        let mut order = Vec::new();
        let mut latest: HashMap<String, TaskRun> = HashMap::new();
        for snapshot in snapshots {
            if !latest.contains_key(&snapshot.id) {
                order.push(snapshot.id.clone());
            }
            latest.insert(snapshot.id.clone(), snapshot);
        }
        let mut runs: Vec<TaskRun> = order.into_iter().filter_map(|id| latest.remove(&id)).collect();
        runs.sort_by_key(|r| r.started);
        Ok(runs)
    }

    /// A run with its latest state and timing; `None` when there is no such run.
    pub async fn run_summary(&self, id: &str) -> Result<Option<RunSummary>, StoreError> {
        let Some(run) = self.read_run(id).await? else { return Ok(None) };
        let states = self.states(id).await?;
        let started = states.iter().find(|(_, s)| s.state == State::Running).map(|(_, s)| s.time);
        let last = states.last().map(|(_, s)| s);
        let ended = last.filter(|s| s.state.is_final()).map(|s| s.time);
        let stale_since = match last {
            Some(record) if matches!(record.state, State::Running | State::Cancelling) => {
                self.stale_since(id, record.time).await?
            }
            // `weft run` writes Running right after the run: one without a
            // state lost its process in between.
            None => self.stale_since(id, run.created).await?,
            _ => None,
        };
        Ok(Some(RunSummary { run, state: last.map(|s| s.state), started, ended, stale_since }))
    }

    /// Cancels a run for `by` (`cli`, `ui`): a run that has not started is
    /// Cancelled at once; a Pending or Running one is marked Cancelling, and
    /// its runner (or agent) stops it and records Cancelled; one whose
    /// process has vanished ([stale](RunSummary::stale_since)) is recorded
    /// Crashed, since nobody is there to stop it. `Ok(None)` when there is
    /// no such run.
    pub async fn cancel_run(&self, id: &str, by: &str) -> Result<Option<Cancelled>, StoreError> {
        let Some(summary) = self.run_summary(id).await? else { return Ok(None) };
        let stale = summary.stale_since;
        let decide = |current: Option<&StateRecord>| match current.map(|r| r.state) {
            Some(State::Running | State::Cancelling) if stale.is_some() => {
                let since = stale.map(|t| humantime::format_rfc3339_seconds(t).to_string()).unwrap_or_default();
                let reason = format!("its process gave no sign of life since {since} and was ended by a cancel");
                Some(StateRecord::now(State::Crashed, Some(reason)).by(by))
            }
            None | Some(State::Scheduled) => {
                Some(StateRecord::now(State::Cancelled, Some("cancelled before it started".into())).by(by))
            }
            Some(State::Pending | State::Running) => {
                Some(StateRecord::now(State::Cancelling, Some("cancel requested".into())).by(by))
            }
            _ => None,
        };
        Ok(Some(match self.transition(id, decide).await? {
            TransitionOutcome::Written { .. } => match self.latest_state(id).await?.map(|(_, r)| r.state) {
                Some(State::Cancelled) => Cancelled::BeforeStart,
                Some(State::Crashed) => Cancelled::Stale,
                _ => Cancelled::Requested,
            },
            TransitionOutcome::Kept { current } => Cancelled::AlreadyEnded(current.map(|r| r.state)),
        }))
    }

    /// of its last sign of life if that is more than [`STALE_AFTER`] ago.
    pub async fn stale_since(&self, id: &str, latest: SystemTime) -> Result<Option<SystemTime>, StoreError> {
        let beat = self.heartbeat(id).await?.map(|b| b.time);
        let last_sign = beat.map_or(latest, |beat| beat.max(latest));
        let silent = SystemTime::now().duration_since(last_sign).unwrap_or_default();
        Ok((silent > STALE_AFTER).then_some(last_sign))
    }
}
