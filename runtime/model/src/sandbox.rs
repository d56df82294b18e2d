//! What a guest may use and how it is stopped, resolved for one run: its
//! [`Limits`], the [`Grants`] beyond nothing, the [`LimitExceeded`] reasons
//! the host stops it with, and the [`StopSignal`] that cancels it.
//!
//! Plain types below `engine/`, `host/` and `runner/`, which all share them;
//! this module calls nothing of weft's.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

/// What one flow run may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time for the whole run.
    pub timeout: Duration,
    /// Linear memory, in bytes, across all of the guest's memories.
    pub memory: u64,
    /// Fuel (roughly, WebAssembly instructions); needs an engine built with
    /// `EngineConfig::fuel`.
    pub fuel: Option<u64>,
    /// The longest log line kept, in bytes; longer lines are cut and marked.
    /// Error messages are cut here too.
    pub log_line: u64,
    /// The most log a run keeps, in bytes; later lines are dropped and
    /// counted.
    pub log_volume: u64,
    /// The largest result a run may return, in bytes; a larger one fails the
    /// run.
    pub result: u64,
}

/// Default of [`Limits::log_line`]: 16 KiB.
pub const DEFAULT_LOG_LINE: u64 = 16 << 10;
/// Default of [`Limits::log_volume`]: 100 MiB.
pub const DEFAULT_LOG_VOLUME: u64 = 100 << 20;
/// Default of [`Limits::result`]: 16 MiB.
pub const DEFAULT_RESULT: u64 = 16 << 20;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(3600),
            memory: 256 << 20,
            fuel: None,
            log_line: DEFAULT_LOG_LINE,
            log_volume: DEFAULT_LOG_VOLUME,
            result: DEFAULT_RESULT,
        }
    }
}

/// A limit the host enforced by stopping the guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// The run's wall-clock deadline passed.
    #[error("exceeded its {} deadline", humantime::format_duration(*.0))]
    Deadline(Duration),
    /// The guest tried to grow its memory past the cap.
    #[error("tried to grow memory past {}", format_bytes(*limit))]
    Memory {
        /// The cap, in bytes.
        limit: u64,
    },
    /// An in-component task ran past its timeout.
    #[error("task `{task}` exceeded its {} timeout", humantime::format_duration(*timeout))]
    TaskTimeout {
        /// The task's name.
        task: String,
        /// Its timeout.
        timeout: Duration,
    },
}

/// Bytes for a person: `256 MiB`, `1.5 GiB`, `512 B`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{:.1} {unit}", bytes as f64 / size as f64)
            };
        }
    }
    format!("{bytes} B")
}

/// What a guest is granted beyond nothing, resolved for one run.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// Environment variables, with their values.
    pub env: Vec<(String, String)>,
    /// Host directories: (host path, guest path, read-only).
    pub dirs: Vec<(PathBuf, String, bool)>,
    /// The addresses the guest may connect to over TCP (and reach over
    /// HTTP): those of the granted hosts.
    pub connect: HashSet<SocketAddr>,
    /// The granted hosts as written, `name:port`: HTTP requests may go to
    /// these names.
    pub hosts: Vec<String>,
    /// The granted hosts' names (lower case) and the addresses they resolved
    /// to: the only names a guest may look up.
    pub names: std::collections::HashMap<String, Vec<std::net::IpAddr>>,
}

/// Asks a running flow to stop: set by a cancellation or a signal to the
/// runner. The guest is stopped at its next epoch tick, or at once if it is
/// waiting in the host.
#[derive(Debug, Default)]
pub struct StopSignal {
    /// Why, and whether the runner records the stop itself.
    reason: Mutex<Option<(String, bool)>>,
    notify: Notify,
}

impl StopSignal {
    /// Stops the run, saying why; the run records its end itself. The first
    /// reason given is kept.
    pub fn stop(&self, reason: impl Into<String>) {
        self.set(reason.into(), true);
    }

    /// Stops the run but leaves its final state to whoever stopped it: a
    /// pod's runner is signalled by Kubernetes, and the agent, which sees
    /// why (an eviction, a deletion, a deadline), records that instead.
    /// A run being cancelled still records Cancelled.
    pub fn interrupt(&self, reason: impl Into<String>) {
        self.set(reason.into(), false);
    }

    fn set(&self, reason: String, recorded: bool) {
        let mut current = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if current.is_none() {
            *current = Some((reason, recorded));
        }
        drop(current);
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// Why the run was asked to stop, if it was.
    pub fn reason(&self) -> Option<String> {
        self.reason.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(|(reason, _)| reason.clone())
    }

    /// Whether the run was [interrupted](Self::interrupt): its end is left
    /// to whoever stopped it.
    pub fn interrupted(&self) -> bool {
        self.reason.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_some_and(|(_, recorded)| !recorded)
    }

    /// Waits until the run is stopped, and returns why.
    pub async fn stopped(&self) -> String {
        loop {
            if let Some(reason) = self.reason() {
                return reason;
            }
            self.notify.notified().await;
        }
    }
}

/// The trap raised in a guest that was asked to stop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stopped: {0}")]
pub struct Stopped(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_well() {
        assert_eq!(LimitExceeded::Deadline(Duration::from_secs(5)).to_string(), "exceeded its 5s deadline");
        assert_eq!(LimitExceeded::Memory { limit: 256 << 20 }.to_string(), "tried to grow memory past 256 MiB");
        assert_eq!(format_bytes(1536 << 20), "1.5 GiB");
        assert_eq!(format_bytes(100), "100 B");
    }
}
