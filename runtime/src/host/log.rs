//! `weft:flow/log`, and the run's log: attribution of every line (guest log
//! calls and captured stdout/stderr) to the flow run and the open task run.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use super::RunState;
use super::bindings::weft::flow::log::{Field, Host, Level as WitLevel};
use crate::model::{Level, LogLine, LogSource, RoomWait, RunSink, TaskRun};

/// How many stderr lines are kept to explain a crash (a panic message).
const STDERR_TAIL: usize = 32;

/// The log of one run, shared by the host functions and the guest's
/// stdout/stderr streams.
pub(crate) struct RunLog {
    sink: Arc<dyn RunSink>,
    flow_run_id: String,
    /// The longest line kept; stdout and stderr never buffer more.
    max_line: usize,
    state: Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    /// The innermost open task run: (id, name), if any.
    task: Attribution,
    stdout: Output,
    stderr: Output,
    stderr_tail: VecDeque<String>,
}

/// The task run lines are attributed to. Its strings are kept between task
/// runs and written over, since a run may begin millions of task runs.
#[derive(Default)]
struct Attribution {
    id: String,
    name: String,
    open: bool,
}

impl Attribution {
    fn get(&self) -> Option<(String, String)> {
        self.open.then(|| (self.id.clone(), self.name.clone()))
    }
}

/// What is pending of stdout or stderr: the start of a line, or, once a
/// line passed the limit and was emitted cut, how much of it is skipped.
#[derive(Default)]
struct Output {
    pending: Vec<u8>,
    skipping: bool,
}

impl RunLog {
    /// The log of a run whose lines go to `sink`, each at most `max_line`
    /// bytes as the guest writes them (the sink may cut further).
    pub(crate) fn new(sink: Arc<dyn RunSink>, flow_run_id: String, max_line: u64) -> Self {
        let max_line = usize::try_from(max_line).unwrap_or(usize::MAX).max(1);
        RunLog { sink, flow_run_id, max_line, state: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the task run that lines are attributed to: (id, name).
    pub(crate) fn set_task(&self, task: Option<(&str, &str)>) {
        let held = &mut self.lock().task;
        held.open = task.is_some();
        if let Some((id, name)) = task {
            held.id.clear();
            held.id.push_str(id);
            held.name.clear();
            held.name.push_str(name);
        }
    }

    /// `None` when the run's sink has room for more, or a wait until it has.
    pub(crate) fn room(&self) -> Option<RoomWait<'_>> {
        self.sink.room()
    }

    /// Writes one line attributed to the flow run and the open task run.
    pub(crate) fn emit(&self, level: Level, source: LogSource, message: String, fields: Vec<(String, String)>) {
        let task = self.lock().task.get();
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

    /// Says in the run's log that the guest was refused `what` (`HTTP
    /// request to `x``), what it is granted, and that adding `grant` to
    /// `sandbox.hosts` allows it.
    pub(crate) fn denied<'a>(&self, what: &str, granted: impl IntoIterator<Item = &'a str>, grant: &str) {
        let mut granted: Vec<&str> = granted.into_iter().collect();
        granted.sort_unstable();
        let granted = if granted.is_empty() { "no hosts".to_owned() } else { granted.join(", ") };
        self.emit(
            Level::Warn,
            LogSource::Weft,
            format!(
                "{what} denied: it is granted {granted}; to allow it, add `{grant}` to `sandbox.hosts` in the \
                 deployment (or `weft run --allow-host {grant}`)"
            ),
            Vec::new(),
        );
    }

    /// Passes on the new state of a task run.
    pub(crate) fn task_run(&self, task_run: &TaskRun) {
        self.sink.task_run(task_run);
    }

    /// Takes bytes the guest wrote to stdout or stderr; each complete line
    /// becomes a log line. A line longer than the limit is emitted cut, as
    /// soon as it is that long, and the rest of it is skipped: nothing more
    /// than one line's worth is ever held.
    pub(crate) fn write_output(&self, source: LogSource, bytes: &[u8]) {
        let mut lines = Vec::new();
        let task = {
            let mut state = self.lock();
            let state = &mut *state;
            let output = if source == LogSource::Stderr { &mut state.stderr } else { &mut state.stdout };
            let mut bytes = bytes;
            while !bytes.is_empty() {
                let newline = bytes.iter().position(|&b| b == b'\n');
                let (chunk, rest) = match newline {
                    Some(end) => (&bytes[..end], &bytes[end + 1..]),
                    None => (bytes, &[][..]),
                };
                if !output.skipping {
                    let room = self.max_line.saturating_sub(output.pending.len());
                    output.pending.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if chunk.len() > room {
                        let mut line = String::from_utf8_lossy(&output.pending).into_owned();
                        line.push_str(CUT_MARK);
                        lines.push(line);
                        output.pending.clear();
                        output.skipping = true;
                    }
                }
                if newline.is_some() {
                    if !output.skipping {
                        let line = std::mem::take(&mut output.pending);
                        lines.push(String::from_utf8_lossy(&line).trim_end_matches('\r').to_owned());
                    }
                    output.skipping = false;
                }
                bytes = rest;
            }
            if source == LogSource::Stderr {
                for line in &lines {
                    if state.stderr_tail.len() == STDERR_TAIL {
                        state.stderr_tail.pop_front();
                    }
                    state.stderr_tail.push_back(line.clone());
                }
            }
            state.task.get()
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
                let output = if source == LogSource::Stderr { &mut state.stderr } else { &mut state.stdout };
                output.skipping = false;
                std::mem::take(&mut output.pending)
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

/// Appended to a line that was cut at the line limit.
pub(crate) const CUT_MARK: &str = " … [cut: longer than the log line limit]";

/// `text` cut to at most `max` bytes (on a character boundary) and marked,
/// if it is longer.
pub(crate) fn cut(text: &mut String, max: u64, mark: &str) {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(mark);
    }
}

/// The caps an operator puts on a run's log, in front of its sinks: each
/// line and field, and each task run's error, cut at the line limit; once
/// the run's lines add up to the volume limit, later lines dropped and
/// counted. Lines weft writes about the run itself are never dropped.
pub(crate) struct LogCap {
    inner: Arc<dyn RunSink>,
    line: u64,
    volume: u64,
    counts: Mutex<CapCounts>,
}

#[derive(Default)]
struct CapCounts {
    written: u64,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl LogCap {
    pub(crate) fn new(inner: Arc<dyn RunSink>, limits: &crate::sandbox::Limits) -> Self {
        LogCap { inner, line: limits.log_line, volume: limits.log_volume, counts: Mutex::default() }
    }

    /// The line that says how many lines were dropped, if any were.
    pub(crate) fn dropped(&self) -> Option<String> {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        (counts.dropped_lines > 0).then(|| {
            format!(
                "{} log lines ({}) were dropped: the run's log is capped at {} (`sandbox.max_log_volume` in the \
                 deployment, `--max-log-volume` on `weft run` and the runner)",
                counts.dropped_lines,
                crate::sandbox::format_bytes(counts.dropped_bytes),
                crate::sandbox::format_bytes(self.volume)
            )
        })
    }
}

impl RunSink for LogCap {
    fn log(&self, mut line: LogLine) {
        cut(&mut line.message, self.line, CUT_MARK);
        for (_, value) in &mut line.fields {
            cut(value, self.line, CUT_MARK);
        }
        let size = (line.message.len() + line.fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()) as u64;
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let full = counts.written.saturating_add(size) > self.volume;
        if full && line.source != LogSource::Weft {
            let first = counts.dropped_lines == 0;
            counts.dropped_lines += 1;
            counts.dropped_bytes += size;
            drop(counts);
            if first {
                self.inner.log(LogLine {
                    level: Level::Warn,
                    source: LogSource::Weft,
                    message: format!(
                        "the run's log reached its {} cap: later lines are dropped and counted",
                        crate::sandbox::format_bytes(self.volume)
                    ),
                    fields: Vec::new(),
                    ..line
                });
            }
            return;
        }
        counts.written = counts.written.saturating_add(size);
        drop(counts);
        self.inner.log(line);
    }

    fn room(&self) -> Option<RoomWait<'_>> {
        self.inner.room()
    }

    fn task_run(&self, task_run: &TaskRun) {
        match &task_run.error {
            Some(error) if error.len() as u64 > self.line => {
                let mut task_run = task_run.clone();
                if let Some(error) = &mut task_run.error {
                    cut(error, self.line, CUT_MARK);
                }
                self.inner.task_run(&task_run);
            }
            _ => self.inner.task_run(task_run),
        }
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
        let log = RunLog::new(lines.clone(), "run".into(), 1024);
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

    fn messages(lines: &Lines) -> Vec<String> {
        lines.0.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|l| l.message.clone()).collect()
    }

    #[test]
    fn long_output_lines_are_cut_once_and_the_rest_skipped() {
        let lines = Arc::new(Lines::default());
        let log = RunLog::new(lines.clone(), "run".into(), 8);
        log.write_output(LogSource::Stdout, b"short\n0123456789");
        // The rest of the long line, in pieces: nothing of it is kept.
        for _ in 0..1000 {
            log.write_output(LogSource::Stdout, &[b'x'; 1024]);
        }
        log.write_output(LogSource::Stdout, b"x\nafter\n");
        assert_eq!(messages(&lines), ["short".to_owned(), format!("01234567{CUT_MARK}"), "after".to_owned()]);
        assert!(log.lock().stdout.pending.is_empty(), "nothing of the long line is held");
    }

    #[test]
    fn the_cap_cuts_lines_and_drops_what_passes_the_volume() {
        let lines = Arc::new(Lines::default());
        // Room for the cut first line and one more.
        let volume = (10 + CUT_MARK.len() + "line 0".len()) as u64;
        let limits = crate::sandbox::Limits { log_line: 10, log_volume: volume, ..Default::default() };
        let cap = Arc::new(LogCap::new(lines.clone(), &limits));
        let log = RunLog::new(cap.clone(), "run".into(), u64::MAX);
        log.emit(Level::Info, LogSource::Flow, "é".repeat(100), Vec::new());
        for i in 0..10 {
            log.emit(Level::Info, LogSource::Flow, format!("line {i}"), Vec::new());
        }
        log.emit(Level::Info, LogSource::Weft, "Finished".into(), Vec::new());
        let got = messages(&lines);
        assert_eq!(got[0], format!("{}{CUT_MARK}", "é".repeat(5)), "cut on a character boundary");
        assert_eq!(got[1], "line 0");
        assert!(got[2].starts_with(&format!("the run's log reached its {volume} B cap")), "{got:?}");
        assert_eq!(got[3], "Finished", "weft's own lines are kept");
        assert_eq!(got.len(), 4);
        let dropped = cap.dropped().expect("some were dropped");
        assert!(dropped.starts_with("9 log lines (54 B) were dropped"), "{dropped}");
    }
}
