//! Flow runs and task runs: their states and outcomes.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// The state of a flow run or task run.
///
/// Scheduled → Pending (claimed, infrastructure submitted) → Running →
/// Completed | Failed | Crashed; Cancelling → Cancelled from any state that
/// is not final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    /// Waiting for its time to come.
    Scheduled,
    /// Claimed; infrastructure is starting.
    Pending,
    /// Executing.
    Running,
    /// Finished with a result.
    Completed,
    /// The flow or task returned an error, trapped, or hit a limit.
    Failed,
    /// The infrastructure failed under it.
    Crashed,
    /// Asked to stop.
    Cancelling,
    /// Stopped on request.
    Cancelled,
}

impl State {
    /// Every state, in the order a run goes through them.
    pub const ALL: [State; 8] = [
        State::Scheduled,
        State::Pending,
        State::Running,
        State::Completed,
        State::Failed,
        State::Crashed,
        State::Cancelling,
        State::Cancelled,
    ];

    /// Whether nothing follows this state.
    pub fn is_final(self) -> bool {
        matches!(self, State::Completed | State::Failed | State::Crashed | State::Cancelled)
    }
}

impl std::str::FromStr for State {
    type Err = String;

    /// A state by its name, in any case: `completed`, `Running`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        State::ALL.into_iter().find(|s| s.to_string().eq_ignore_ascii_case(text)).ok_or_else(|| {
            let names: Vec<String> = State::ALL.iter().map(ToString::to_string).collect();
            format!("`{text}` is not a state: expected one of {}", names.join(", "))
        })
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// How a flow run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state")]
pub enum FlowRunOutcome {
    /// The flow returned a result.
    Completed {
        /// The result, as the flow wrote it.
        result: serde_json::Value,
    },
    /// The flow returned an error, trapped, or hit a limit.
    Failed {
        /// Why, for a person: "exceeded its 5s deadline", "panicked at ...".
        reason: String,
        /// Whether a retry may help.
        retryable: bool,
    },
    /// The run was stopped on request (or by a signal to its runner).
    Cancelled {
        /// Who or what stopped it.
        reason: String,
    },
}

impl FlowRunOutcome {
    /// The state this outcome leaves the run in.
    pub fn state(&self) -> State {
        match self {
            FlowRunOutcome::Completed { .. } => State::Completed,
            FlowRunOutcome::Failed { .. } => State::Failed,
            FlowRunOutcome::Cancelled { .. } => State::Cancelled,
        }
    }
}

/// One task run inside a flow run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRun {
    /// Its id (a ULID).
    pub id: String,
    /// The task's name.
    pub name: String,
    /// Running until it ends; Completed (also when cached), Failed, or
    /// Crashed when the flow run ended while it was open.
    pub state: State,
    /// The task component's digest; none for a task inside the flow's own
    /// component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<Digest>,
    /// How many attempts were made (0 when the result came from the cache).
    pub attempts: u32,
    /// Whether the result came from the cache.
    #[serde(default)]
    pub cached: bool,
    /// The cache key, if the task has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    /// When it began.
    #[serde(with = "super::logs::rfc3339")]
    pub started: SystemTime,
    /// When it ended.
    #[serde(default, with = "optional_time", skip_serializing_if = "Option::is_none")]
    pub ended: Option<SystemTime>,
    /// The last attempt's error, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How many task runs are in each state: what a flow run's report and
/// `weft runs show` say about runs too large to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskRunCounts {
    /// Indexed by position in [`State::ALL`].
    counts: [u64; State::ALL.len()],
}

impl TaskRunCounts {
    fn slot(state: State) -> usize {
        State::ALL.iter().position(|s| *s == state).unwrap_or_default()
    }

    /// Counts one more task run in `state`.
    pub fn add(&mut self, state: State) {
        self.counts[Self::slot(state)] += 1;
    }

    /// Counts one task run fewer in `state` (it moved on to another).
    pub fn remove(&mut self, state: State) {
        let count = &mut self.counts[Self::slot(state)];
        *count = count.saturating_sub(1);
    }

    /// Adds the counts of `other`.
    pub fn merge(&mut self, other: &TaskRunCounts) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
    }

    /// How many task runs are in `state`.
    pub fn get(&self, state: State) -> u64 {
        self.counts[Self::slot(state)]
    }

    /// How many task runs there are.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The states with task runs in them, in the order a run goes through
    /// them, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (State, u64)> + '_ {
        State::ALL.into_iter().zip(self.counts).filter(|(_, n)| *n > 0)
    }
}

/// `998 Completed, 2 Failed`; `none` when there are none.
impl fmt::Display for TaskRunCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.total() == 0 {
            return f.write_str("none");
        }
        for (i, (state, count)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{count} {state}")?;
        }
        Ok(())
    }
}

/// `{"Completed": 998, "Failed": 2}`.
impl Serialize for TaskRunCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        for (state, count) in self.iter() {
            map.serialize_entry(&state, &count)?;
        }
        map.end()
    }
}

pub(super) mod optional_time {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match time {
            Some(t) => crate::logs::rfc3339::with_text(*t, |text| s.serialize_str(text)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| humantime::parse_rfc3339_weak(&t).map_err(serde::de::Error::custom)).transpose()
    }
}

/// A component's content address: `sha256:<64 hex digits>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// The digest of some bytes.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Digest { hex: hex::encode(sha2::Sha256::digest(bytes)) }
    }

    /// The 64 lowercase hex digits.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl std::str::FromStr for Digest {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(Digest { hex: hex.to_owned() })
        } else {
            Err(format!("`{text}` is not a digest: expected sha256: and 64 lowercase hex digits"))
        }
    }
}

impl TryFrom<String> for Digest {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<Digest> for String {
    fn from(digest: Digest) -> String {
        digest.to_string()
    }
}

/// A flow run as created: what to run and with what. Written once
/// (`runs/<id>/run.json`); everything that changes lives beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRun {
    /// The run's id (a ULID).
    pub id: String,
    /// The flow's name.
    pub flow_name: String,
    /// The deployment that created it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// The component, by digest.
    pub component: Digest,
    /// The validated parameters.
    pub parameters: super::Parameters,
    /// Which attempt this is, from 1.
    pub attempt: u32,
    /// When it was created.
    #[serde(with = "super::logs::rfc3339")]
    pub created: SystemTime,
    /// When it is due to start, for a scheduled run.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_time")]
    pub scheduled_for: Option<SystemTime>,
    /// What it may use and reach, fixed when it was created.
    #[serde(default)]
    pub sandbox: super::Sandbox,
    /// The task components it may call, by name, fixed when it was created.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tasks: std::collections::BTreeMap<String, super::TaskComponentRef>,
    /// Task components running at once, at most; default: the runner's
    /// core count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_concurrency: Option<u32>,
    /// The work pool whose agents run it, fixed when it was created; none
    /// for a run made by `weft run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_pool: Option<String>,
    /// The queue within the pool, fixed when it was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_queue: Option<String>,
}

/// One entry of a run's state history (`runs/<id>/states/<seq>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateRecord {
    /// The state entered.
    pub state: State,
    /// When.
    #[serde(with = "super::logs::rfc3339")]
    pub time: SystemTime,
    /// Why, for a person: the failure reason, who cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Who wrote it: an agent's name, `runner`, `cli`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// For Failed: whether a retry may help (false for bad parameters and
    /// errors the flow called fatal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// The host it was written on, for a runner's Running: in a cluster, the
    /// pod's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl StateRecord {
    /// A record of entering `state` now.
    pub fn now(state: State, message: Option<String>) -> Self {
        StateRecord { state, time: SystemTime::now(), message, by: None, retryable: None, host: None }
    }

    /// The same record, signed by `who`.
    pub fn by(mut self, who: &str) -> Self {
        self.by = Some(who.to_owned());
        self
    }
}
