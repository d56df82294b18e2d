//! Flow run records: `run.json`, the state history, result, log chunks and
//! task run chunks.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;

use super::{Store, StoreError};
use crate::model::{FlowRun, LogLine, State, StateRecord, TaskRun, TaskRunCounts};

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

/// Some of a run's task runs, and how many there are: what
/// [`Store::task_run_page`] read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRunPage {
    /// The task runs of the page, in the order they began, each at its
    /// latest snapshot.
    pub task_runs: Vec<TaskRun>,
    /// How many task runs the run has in each state: all of them.
    pub counts: TaskRunCounts,
    /// How many task runs come before the page.
    pub skipped: u64,
}

impl TaskRunPage {
    /// How many task runs come after the page.
    pub fn after(&self) -> u64 {
        self.counts.total().saturating_sub(self.skipped + self.task_runs.len() as u64)
    }
}

/// A run's task runs, counted: what [`Store::read_task_runs`] found.
pub struct StoredTaskRuns<'a> {
    store: &'a Store,
    folder: String,
    names: Vec<String>,
    /// The latest snapshot of each task run whose first is not its latest.
    latest: HashMap<String, TaskRun>,
    counts: TaskRunCounts,
}

impl StoredTaskRuns<'_> {
    /// How many task runs there are in each state (at their latest
    /// snapshots).
    pub fn counts(&self) -> TaskRunCounts {
        self.counts
    }

    /// Passes each task run to `visit` once, at its latest snapshot, in the
    /// order they began (a task component's: was submitted), reading the
    /// chunks again one at a time, until `visit` breaks.
    pub async fn visit(mut self, mut visit: impl FnMut(TaskRun) -> ControlFlow<()>) -> Result<(), StoreError> {
        let mut scan = TaskRunScan::default();
        for name in &self.names {
            let chunk = self.store.read_chunk_lines(&self.folder, name).await?;
            for line in chunk.lines() {
                let key: SnapshotKey = line.parse()?;
                if scan.take(&key.id, key.state).is_some() {
                    let task_run = match self.latest.remove(key.id.as_ref()) {
                        Some(latest) => latest,
                        None => line.parse()?,
                    };
                    if visit(task_run).is_break() {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }
}

/// Follows a run's task run snapshots chunk by chunk, in the order they were
/// written, holding only the task runs still open: each task run is counted
/// in the state of its latest snapshot. A task run's snapshots are written
/// in order (Pending, Running, then its final state), each chunk holding at
/// most one per task run, the first in the chunk written after it began.
#[derive(Default)]
struct TaskRunScan {
    /// The state of each task run not yet in a final state.
    open: HashMap<String, State>,
    counts: TaskRunCounts,
    /// How many task runs were seen.
    seen: u64,
}

impl TaskRunScan {
    /// Takes the next snapshot: `Some(position)` (in the order the task
    /// runs began) for the first of a task run, `None` for a later one.
    fn take(&mut self, id: &str, state: State) -> Option<u64> {
        let ended = state.is_final();
        match self.open.get_mut(id) {
            Some(earlier) => {
                self.counts.remove(*earlier);
                self.counts.add(state);
                if ended {
                    self.open.remove(id);
                } else {
                    *earlier = state;
                }
                None
            }
            None => {
                self.counts.add(state);
                if !ended {
                    self.open.insert(id.to_owned(), state);
                }
                self.seen += 1;
                Some(self.seen - 1)
            }
        }
    }
}

/// What a reader looks at first in a task run snapshot: the rest (times,
/// names, errors) is parsed only for the task runs it keeps.
#[derive(serde::Deserialize)]
struct SnapshotKey<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    state: State,
}

/// The JSON lines of a chunk.
struct ChunkLines {
    url: String,
    path: String,
    bytes: Bytes,
}

/// One line of a chunk, parsed on demand.
struct ChunkLine<'a> {
    chunk: &'a ChunkLines,
    number: usize,
    text: &'a [u8],
}

impl ChunkLines {
    fn lines(&self) -> impl Iterator<Item = ChunkLine<'_>> {
        self.bytes.split(|&b| b == b'\n').enumerate().filter(|(_, l)| !l.is_empty()).map(|(i, text)| ChunkLine {
            chunk: self,
            number: i + 1,
            text,
        })
    }
}

impl<'a> ChunkLine<'a> {
    fn parse<T: serde::Deserialize<'a>>(&self) -> Result<T, StoreError> {
        serde_json::from_slice(self.text).map_err(|e| StoreError::Corrupt {
            url: self.chunk.url.clone(),
            path: format!("{} line {}", self.chunk.path, self.number),
            reason: e.to_string(),
        })
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
            let path = format!("{folder}/{}", seq_name(seq, "jsonl"));
            if self.create(&path, text.clone()).await? {
                *next = Some(seq + 1);
                return Ok(());
            }
            // The number is taken: by this very chunk, when an earlier try
            // was written but its answer lost (written again, its entries
            // would be read twice), or by another writer: look again.
            if self.get(&path).await?.is_some_and(|there| there == text) {
                *next = Some(seq + 1);
                return Ok(());
            }
            *next = None;
        }
    }

    /// The names of a folder's chunks after `after` (a chunk name), in order.
    async fn chunk_names(&self, folder: &str, after: Option<&str>) -> Result<Vec<String>, StoreError> {
        Ok(self.list_names(folder).await?.into_iter().filter(|n| after.is_none_or(|a| n.as_str() > a)).collect())
    }

    /// The items of one chunk; none if it vanished.
    async fn read_chunk<T: serde::de::DeserializeOwned>(&self, folder: &str, name: &str) -> Result<Vec<T>, StoreError> {
        let chunk = self.read_chunk_lines(folder, name).await?;
        chunk.lines().map(|line| line.parse()).collect()
    }

    /// The lines of one chunk, each parsed as the reader needs.
    async fn read_chunk_lines(&self, folder: &str, name: &str) -> Result<ChunkLines, StoreError> {
        let path = format!("{folder}/{name}");
        let bytes = self.get(&path).await?.unwrap_or_default();
        Ok(ChunkLines { url: self.url().to_owned(), path, bytes })
    }

    /// Appends a chunk of log lines to a run's logs.
    pub async fn append_logs(&self, id: &str, lines: &[LogLine], next: &mut Option<u32>) -> Result<(), StoreError> {
        self.append_chunk(&format!("runs/{id}/logs"), lines, next).await
    }

    /// Reads a run's log lines, from the chunk after `after` on, all at
    /// once: the lines and the name of the last chunk read. Readers of a log
    /// of any size use [`Store::visit_logs`].
    pub async fn read_logs(&self, id: &str, after: Option<&str>) -> Result<(Vec<LogLine>, Option<String>), StoreError> {
        let mut lines = Vec::new();
        let last = self.visit_logs(id, after, |chunk| lines.extend(chunk)).await?;
        Ok((lines, last))
    }

    /// Reads a run's log chunks after `after` (a chunk name) one at a time,
    /// in order, and passes each chunk's lines to `visit` before reading the
    /// next, so that only one chunk is held. Returns the name of the last
    /// chunk read (`after` when there was none): the `after` of the next call.
    pub async fn visit_logs(
        &self,
        id: &str,
        after: Option<&str>,
        mut visit: impl FnMut(Vec<LogLine>),
    ) -> Result<Option<String>, StoreError> {
        let folder = format!("runs/{id}/logs");
        let names = self.chunk_names(&folder, after).await?;
        for name in &names {
            visit(self.read_chunk(&folder, name).await?);
        }
        Ok(names.last().cloned().or_else(|| after.map(str::to_owned)))
    }

    /// Appends task run snapshots to a run's task runs.
    pub async fn append_task_runs(&self, id: &str, runs: &[TaskRun], next: &mut Option<u32>) -> Result<(), StoreError> {
        self.append_chunk(&format!("runs/{id}/tasks"), runs, next).await
    }

    /// Every task run of a run, the latest snapshot of each, in the order
    /// they began, all in memory: for runs known to be small. Readers of a
    /// run of any size use [`Store::task_run_page`] or
    /// [`Store::read_task_runs`].
    pub async fn task_runs(&self, id: &str) -> Result<Vec<TaskRun>, StoreError> {
        let mut runs = Vec::new();
        self.read_task_runs(id)
            .await?
            .visit(|run| {
                runs.push(run);
                ControlFlow::Continue(())
            })
            .await?;
        runs.sort_by_key(|r| r.started);
        Ok(runs)
    }

    /// Some of a run's task runs, and how many there are in each state: the
    /// `limit` task runs after the first `skip`, in the order they began,
    /// each at its latest snapshot. The task run chunks are read one at a
    /// time; what is held is the page and the task runs still open.
    pub async fn task_run_page(&self, id: &str, skip: u64, limit: usize) -> Result<TaskRunPage, StoreError> {
        let folder = format!("runs/{id}/tasks");
        let mut scan = TaskRunScan::default();
        let mut page: Vec<TaskRun> = Vec::new();
        // Where each task run of the page is in it.
        let mut on_page: HashMap<String, usize> = HashMap::new();
        for name in self.chunk_names(&folder, None).await? {
            let chunk = self.read_chunk_lines(&folder, &name).await?;
            for line in chunk.lines() {
                let key: SnapshotKey = line.parse()?;
                let first = scan.take(&key.id, key.state);
                if let Some(&at) = on_page.get(key.id.as_ref()) {
                    page[at] = line.parse()?;
                } else if let Some(position) = first
                    && position >= skip
                    && page.len() < limit
                {
                    on_page.insert(key.id.into_owned(), page.len());
                    page.push(line.parse()?);
                }
            }
        }
        page.sort_by(|a, b| a.started.cmp(&b.started).then_with(|| a.id.cmp(&b.id)));
        Ok(TaskRunPage { skipped: skip.min(scan.seen), task_runs: page, counts: scan.counts })
    }

    /// A run's task runs, counted by state: the chunks are read one at a
    /// time, holding only the latest snapshot of the task runs still open
    /// and of those whose snapshots span chunks (open when a chunk was
    /// written). [`StoredTaskRuns::visit`] then reads them again, in order.
    pub async fn read_task_runs(&self, id: &str) -> Result<StoredTaskRuns<'_>, StoreError> {
        let folder = format!("runs/{id}/tasks");
        // The same chunks both times, however many a live run adds.
        let names = self.chunk_names(&folder, None).await?;
        let mut scan = TaskRunScan::default();
        // The latest snapshot of each task run that ended in a later chunk
        // than its first, and of each still open.
        let mut latest: HashMap<String, TaskRun> = HashMap::new();
        let mut open: HashMap<String, TaskRun> = HashMap::new();
        for name in &names {
            let chunk = self.read_chunk_lines(&folder, name).await?;
            for line in chunk.lines() {
                let key: SnapshotKey = line.parse()?;
                let first = scan.take(&key.id, key.state).is_some();
                if !key.state.is_final() {
                    open.insert(key.id.into_owned(), line.parse()?);
                } else if !first {
                    open.remove(key.id.as_ref());
                    latest.insert(key.id.into_owned(), line.parse()?);
                }
            }
        }
        latest.extend(open);
        Ok(StoredTaskRuns { store: self, folder, names, latest, counts: scan.counts })
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

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;
    use std::time::{Duration, SystemTime};

    use super::Store;
    use crate::model::{State, TaskRun};

    fn snapshot(id: &str, state: State, began: u64) -> TaskRun {
        TaskRun {
            id: id.to_owned(),
            name: format!("task {id}"),
            state,
            component: None,
            attempts: u32::from(state.is_final()),
            cached: false,
            cache_key: None,
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(began),
            ended: state.is_final().then(SystemTime::now),
            error: None,
        }
    }

    /// Chunks as a recorder writes them: an outer task run open across
    /// every chunk, one that ends a chunk later, one still open, and many
    /// that begin and end within a chunk.
    async fn written(store: &Store, run: &str) {
        use State::{Completed, Failed, Pending, Running};
        let chunks = [
            vec![snapshot("a", Running, 0), snapshot("b", Completed, 1), snapshot("c", Running, 2)],
            vec![snapshot("c", Failed, 2), snapshot("d", Completed, 3), snapshot("e", Pending, 4)],
            vec![snapshot("e", Running, 4), snapshot("f", Completed, 5)],
            vec![snapshot("a", Completed, 0), snapshot("g", Running, 6)],
        ];
        let mut next = None;
        for chunk in chunks {
            store.append_task_runs(run, &chunk, &mut next).await.expect("append");
        }
    }

    #[tokio::test]
    async fn task_runs_are_read_in_the_order_they_began_at_their_latest_snapshot() {
        let store = Store::open("memory://", &[]).expect("store");
        written(&store, "run").await;

        let tasks = store.read_task_runs("run").await.expect("read");
        assert_eq!(tasks.counts().to_string(), "2 Running, 4 Completed, 1 Failed");
        let mut seen = Vec::new();
        tasks
            .visit(|t| {
                seen.push((t.id, t.state));
                ControlFlow::Continue(())
            })
            .await
            .expect("visit");
        let ids: Vec<(&str, State)> = seen.iter().map(|(id, state)| (id.as_str(), *state)).collect();
        use State::{Completed, Failed, Running};
        assert_eq!(
            ids,
            [
                ("a", Completed),
                ("b", Completed),
                ("c", Failed),
                ("d", Completed),
                ("e", Running),
                ("f", Completed),
                ("g", Running)
            ]
        );

        let mut first = Vec::new();
        let tasks = store.read_task_runs("run").await.expect("read");
        tasks
            .visit(|t| {
                first.push(t.id);
                if first.len() == 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
            })
            .await
            .expect("visit");
        assert_eq!(first, ["a", "b"], "a visit stops when asked");

        let page = store.task_run_page("run", 2, 3).await.expect("page");
        let ids: Vec<(&str, State)> = page.task_runs.iter().map(|t| (t.id.as_str(), t.state)).collect();
        assert_eq!(ids, [("c", Failed), ("d", Completed), ("e", Running)]);
        assert_eq!((page.skipped, page.after(), page.counts.total()), (2, 2, 7));
        let last = store.task_run_page("run", 6, 10).await.expect("last page");
        assert_eq!((last.task_runs.len(), last.after()), (1, 0));

        assert_eq!(store.task_runs("run").await.expect("all").len(), 7);
        assert_eq!(store.read_task_runs("none").await.expect("no run").counts().total(), 0);
    }

    #[tokio::test]
    async fn a_chunk_written_again_after_its_answer_was_lost_is_stored_once() {
        use State::{Completed, Running};
        let store = Store::open("memory://", &[]).expect("store");
        let first = [snapshot("a", Completed, 0), snapshot("b", Running, 1)];
        let mut next = None;
        store.append_task_runs("run", &first, &mut next).await.expect("append");
        // The store wrote the chunk but the writer never heard: it tries
        // again under the same number.
        let mut retry = Some(1);
        store.append_task_runs("run", &first, &mut retry).await.expect("retry");
        assert_eq!(retry, next, "the retry goes on after the chunk it found");
        // Another writer's chunk under a taken number goes after it.
        let mut other = Some(1);
        store.append_task_runs("run", &[snapshot("b", Completed, 1)], &mut other).await.expect("another chunk");
        assert_eq!(other, Some(3));

        let tasks = store.read_task_runs("run").await.expect("read");
        assert_eq!(tasks.counts().to_string(), "2 Completed");
        assert_eq!(store.task_runs("run").await.expect("all").len(), 2);
    }
}
