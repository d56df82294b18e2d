//! What an agent says about itself in the store, so that people (and
//! `weft agent ls`) see which agents serve which pools, and since when.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// How often a running agent writes its record.
pub const AGENT_BEAT: Duration = Duration::from_secs(10);

/// An agent's record (`agent-heartbeats/<name>.json`), rewritten every
/// [`AGENT_BEAT`] and once more as it stops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Its name, under which it claims runs.
    pub name: String,
    /// `process` or `kubernetes`.
    pub infrastructure: String,
    /// The work pools it serves.
    pub pools: Vec<String>,
    /// The queues it takes runs of; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<String>,
    /// Runs at once, at most.
    pub limit: usize,
    /// Runs in its hand when it wrote this.
    pub runs_in_hand: usize,
    /// Where it runs: the host (or pod) name.
    pub host: String,
    /// weft's version.
    pub version: String,
    /// When it started.
    #[serde(with = "super::rfc3339")]
    pub started: SystemTime,
    /// When it wrote this.
    #[serde(with = "super::rfc3339")]
    pub time: SystemTime,
    /// When it stopped, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "super::runs::optional_time")]
    pub stopped: Option<SystemTime>,
}

/// Whether an agent is at work, by its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentStatus {
    /// It wrote its record recently.
    Online,
    /// It stopped, and said so.
    Stopped,
    /// It has not written for three beats: killed, or cut off from the store.
    Silent,
}

impl AgentRecord {
    /// Its status at `now`.
    pub fn status(&self, now: SystemTime) -> AgentStatus {
        if self.stopped.is_some() {
            AgentStatus::Stopped
        } else if now.duration_since(self.time).unwrap_or_default() > AGENT_BEAT * 3 {
            AgentStatus::Silent
        } else {
            AgentStatus::Online
        }
    }
}

impl std::fmt::Display for AgentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AgentStatus::Online => "online",
            AgentStatus::Stopped => "stopped",
            AgentStatus::Silent => "silent",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_is_online_stopped_or_silent_by_its_record() {
        let now = SystemTime::now();
        let mut record = AgentRecord {
            name: "a".into(),
            infrastructure: "process".into(),
            pools: vec!["process".into()],
            queues: Vec::new(),
            limit: 8,
            runs_in_hand: 0,
            host: "h".into(),
            version: "0".into(),
            started: now,
            time: now - AGENT_BEAT,
            stopped: None,
        };
        assert_eq!(record.status(now), AgentStatus::Online);
        record.time = now - AGENT_BEAT * 4;
        assert_eq!(record.status(now), AgentStatus::Silent, "killed, or cut off from the store");
        record.stopped = Some(record.time);
        assert_eq!(record.status(now), AgentStatus::Stopped);
    }
}
