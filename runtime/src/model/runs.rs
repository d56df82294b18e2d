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
    /// Whether nothing follows this state.
    pub fn is_final(self) -> bool {
        matches!(self, State::Completed | State::Failed | State::Crashed | State::Cancelled)
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
}

impl FlowRunOutcome {
    /// The state this outcome leaves the run in.
    pub fn state(&self) -> State {
        match self {
            FlowRunOutcome::Completed { .. } => State::Completed,
            FlowRunOutcome::Failed { .. } => State::Failed,
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

mod optional_time {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match time {
            Some(t) => s.collect_str(&humantime::format_rfc3339_millis(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| humantime::parse_rfc3339_weak(&t).map_err(serde::de::Error::custom)).transpose()
    }
}
