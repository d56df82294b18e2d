//! Log lines, and where the host sends them.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// How much a log line matters, from most verbose to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Step-by-step detail.
    Trace,
    /// Detail useful while developing.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that was worked around.
    Warn,
    /// Something failed.
    Error,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        })
    }
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    /// The guest's logging calls (`weft::info!` and friends).
    Flow,
    /// A line the guest printed to its stdout.
    Stdout,
    /// A line the guest printed to its stderr.
    Stderr,
    /// weft itself, about the run (state changes, failures).
    Weft,
}

/// One log line of a flow run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// When the line was written.
    #[serde(with = "rfc3339")]
    pub time: SystemTime,
    /// How much it matters.
    pub level: Level,
    /// The flow run it belongs to.
    pub flow_run_id: String,
    /// The task run that was open when it was written, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_run_id: Option<String>,
    /// That task's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_name: Option<String>,
    /// Where it came from.
    pub source: LogSource,
    /// The text.
    pub message: String,
    /// Key/value fields, in the order the guest gave them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<(String, String)>,
}

/// Where the host sends what a run produces as it goes: log lines and task
/// run updates, to the terminal, the store, a test's buffer. Called on the
/// hot path of every guest log call and task call, so implementations must
/// not block on I/O; they buffer.
pub trait RunSink: Send + Sync {
    /// Takes one log line.
    fn log(&self, line: LogLine);

    /// Takes the new state of a task run (it began, an attempt ended).
    fn task_run(&self, _task_run: &super::TaskRun) {}

    /// `None` when the sink has room for more; otherwise a wait until it
    /// has, which the run makes at its next task call. A sink that writes
    /// behind to something slower than the run (the store) holds a bounded
    /// amount this way, instead of growing with the run.
    fn room(&self) -> Option<RoomWait<'_>> {
        None
    }
}

/// A sink's wait for room: see [`RunSink::room`].
pub type RoomWait<'a> = std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A [`RunSink`] that drops everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiscardLogs;

impl RunSink for DiscardLogs {
    fn log(&self, _line: LogLine) {}
}

/// A [`RunSink`] that passes everything to each of its sinks.
pub struct Tee(pub Vec<std::sync::Arc<dyn RunSink>>);

impl RunSink for Tee {
    fn log(&self, line: LogLine) {
        if let Some((last, rest)) = self.0.split_last() {
            for sink in rest {
                sink.log(line.clone());
            }
            last.log(line);
        }
    }

    fn task_run(&self, task_run: &super::TaskRun) {
        for sink in &self.0 {
            sink.task_run(task_run);
        }
    }

    fn room(&self) -> Option<RoomWait<'_>> {
        let waits: Vec<RoomWait<'_>> = self.0.iter().filter_map(|sink| sink.room()).collect();
        (!waits.is_empty()).then(|| {
            Box::pin(async move {
                for wait in waits {
                    wait.await;
                }
            }) as RoomWait<'_>
        })
    }
}

/// RFC 3339 timestamps with millisecond precision, in UTC.
pub mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a time as RFC 3339.
    pub fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        with_text(*time, |text| s.serialize_str(text))
    }

    /// Calls `f` with `time` as RFC 3339 text. A run writes many snapshots
    /// and lines within one millisecond, so each thread keeps the last text
    /// it made and reuses it for the same millisecond.
    pub fn with_text<R>(time: SystemTime, f: impl FnOnce(&str) -> R) -> R {
        use std::cell::RefCell;
        use std::fmt::Write as _;

        thread_local! {
            static LAST: RefCell<(u128, String)> = const { RefCell::new((0, String::new())) };
        }
        let Ok(since) = time.duration_since(SystemTime::UNIX_EPOCH) else {
            return f(&humantime::format_rfc3339_millis(time).to_string());
        };
        let millis = since.as_millis();
        LAST.with_borrow_mut(|(last, text)| {
            if *last != millis || text.is_empty() {
                text.clear();
                let _ = write!(text, "{}", humantime::format_rfc3339_millis(time));
                *last = millis;
            }
            f(text)
        })
    }

    /// Reads an RFC 3339 time.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::rfc3339::with_text;

    #[test]
    fn a_time_reads_the_same_whether_its_millisecond_was_written_before_or_not() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_000_000_123);
        let times = [
            base,
            base + Duration::from_micros(400),
            base + Duration::from_millis(1),
            base,
            SystemTime::UNIX_EPOCH,
            base + Duration::from_secs(86_400 * 400),
        ];
        for time in times {
            let expected = humantime::format_rfc3339_millis(time).to_string();
            assert_eq!(with_text(time, str::to_owned), expected);
        }
        assert_eq!(with_text(base + Duration::from_micros(400), str::to_owned), "2026-11-30T00:53:20.123Z");
    }
}
