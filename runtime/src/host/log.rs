//! `weft:flow/log`, and the run's log: attribution of every line (guest log
//! calls and captured stdout/stderr) to the flow run and the open task run.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use super::RunState;
use super::bindings::weft::flow::log::{Field, Host, Level as WitLevel};
use crate::model::{Level, LogLine, LogSource, RunSink, TaskRun};

/// Longest line kept from stdout/stderr without a newline; longer output is
/// split into lines of this size.
const MAX_LINE: usize = 16 * 1024;
/// How many stderr lines are kept to explain a crash (a panic message).
const STDERR_TAIL: usize = 32;

/// The log of one run, shared by the host functions and the guest's
/// stdout/stderr streams.
pub(crate) struct RunLog {
    sink: Arc<dyn RunSink>,
    flow_run_id: String,
    state: Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    /// The innermost open task run: (id, name).
    task: Option<(String, String)>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    stderr_tail: VecDeque<String>,
}

impl RunLog {
    pub(crate) fn new(sink: Arc<dyn RunSink>, flow_run_id: String) -> Self {
        RunLog { sink, flow_run_id, state: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the task run that lines are attributed to.
    pub(crate) fn set_task(&self, task: Option<(String, String)>) {
        self.lock().task = task;
    }

    /// Writes one line attributed to the flow run and the open task run.
    pub(crate) fn emit(&self, level: Level, source: LogSource, message: String, fields: Vec<(String, String)>) {
        let task = self.lock().task.clone();
        self.emit_with(task, level, source, message, fields);
    }

    fn emit_with(
        &self,
        task: Option<(String, String)>,
        level: Level,
        source: LogSource,
        message: String,
        fields: Vec<(String, String)>,
    ) {
        let (task_run_id, task_name) = task.unzip();
        self.sink.log(LogLine {
            time: SystemTime::now(),
            level,
            flow_run_id: self.flow_run_id.clone(),
            task_run_id,
            task_name,
            source,
            message,
            fields,
        });
    }

    /// Passes on the new state of a task run.
    pub(crate) fn task_run(&self, task_run: &TaskRun) {
        self.sink.task_run(task_run);
    }

    /// Takes bytes the guest wrote to stdout or stderr; each complete line
    /// becomes a log line.
    pub(crate) fn write_output(&self, source: LogSource, bytes: &[u8]) {
        let mut lines = Vec::new();
        let task = {
            let mut state = self.lock();
            let state = &mut *state;
            let buffer = if source == LogSource::Stderr { &mut state.stderr } else { &mut state.stdout };
            buffer.extend_from_slice(bytes);
            while let Some(end) =
                buffer.iter().position(|&b| b == b'\n').or((buffer.len() >= MAX_LINE).then_some(MAX_LINE))
            {
                let rest = buffer.split_off((end + 1).min(buffer.len()));
                let line = std::mem::replace(buffer, rest);
                lines.push(String::from_utf8_lossy(&line).trim_end_matches(['\n', '\r']).to_owned());
            }
            if source == LogSource::Stderr {
                for line in &lines {
                    if state.stderr_tail.len() == STDERR_TAIL {
                        state.stderr_tail.pop_front();
                    }
                    state.stderr_tail.push_back(line.clone());
                }
            }
            state.task.clone()
        };
        let level = if source == LogSource::Stderr { Level::Warn } else { Level::Info };
        for line in lines {
            self.emit_with(task.clone(), level, source, line, Vec::new());
        }
    }

    /// Emits what is left of stdout and stderr without a final newline.
    pub(crate) fn flush_output(&self) {
        for source in [LogSource::Stdout, LogSource::Stderr] {
            let pending = {
                let mut state = self.lock();
                let buffer = if source == LogSource::Stderr { &mut state.stderr } else { &mut state.stdout };
                std::mem::take(buffer)
            };
            if !pending.is_empty() {
                let mut line = pending;
                line.push(b'\n');
                self.write_output(source, &line);
            }
        }
    }

    /// The panic message the guest printed, if it panicked: Rust prints
    /// "thread '...' panicked at src/lib.rs:12:5:" and the message on the
    /// next line.
    pub(crate) fn panic_message(&self) -> Option<String> {
        let state = self.lock();
        let tail: Vec<&String> = state.stderr_tail.iter().collect();
        let at = tail.iter().rposition(|line| line.contains("panicked at "))?;
        let line = tail[at];
        let location = line[line.find("panicked at ")?..].trim_end_matches(':');
        let message: Vec<&str> = tail[at + 1..]
            .iter()
            .map(|l| l.as_str())
            .take_while(|l| !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        Some(if message.is_empty() { location.to_owned() } else { format!("{location}: {}", message.join("\n")) })
    }
}

impl Host for RunState {
    fn emit(&mut self, level: WitLevel, message: String, fields: Vec<Field>) {
        let level = match level {
            WitLevel::Trace => Level::Trace,
            WitLevel::Debug => Level::Debug,
            WitLevel::Info => Level::Info,
            WitLevel::Warn => Level::Warn,
            WitLevel::Error => Level::Error,
        };
        let fields = fields.into_iter().map(|f| (f.key, f.value)).collect();
        self.log.emit(level, LogSource::Flow, message, fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Lines(Mutex<Vec<LogLine>>);
    impl RunSink for Lines {
        fn log(&self, line: LogLine) {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).push(line);
        }
    }

    #[test]
    fn output_becomes_lines_and_panics_are_found() {
        let lines = Arc::new(Lines::default());
        let log = RunLog::new(lines.clone(), "run".into());
        log.write_output(LogSource::Stdout, b"one\ntw");
        log.write_output(LogSource::Stdout, b"o\nthree");
        log.write_output(LogSource::Stderr, b"\nthread '<unnamed>' panicked at src/lib.rs:12:5:\nboom\n");
        log.write_output(LogSource::Stderr, b"note: run with `RUST_BACKTRACE=1` to display a backtrace\n");
        log.flush_output();
        let got: Vec<String> =
            lines.0.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|l| l.message.clone()).collect();
        assert_eq!(
            got,
            [
                "one",
                "two",
                "",
                "thread '<unnamed>' panicked at src/lib.rs:12:5:",
                "boom",
                "note: run with `RUST_BACKTRACE=1` to display a backtrace",
                "three",
            ]
        );
        assert_eq!(log.panic_message().as_deref(), Some("panicked at src/lib.rs:12:5: boom"));
    }
}
