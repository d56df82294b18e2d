//! weft's integration tests: one binary, one module per topic. Guest
//! programs come from `tests/programs` and `examples/`, built by
//! `tests/build.rs`.

#[deny(dead_code)]
mod fixtures {
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}

mod agent;
mod bad_input;
mod browser;
mod cache;
mod chaos;
mod cli;
mod components;
mod emulators;
mod endpoints;
mod examples;
mod failures;
mod faults;
mod guests;
mod http;
mod javascript;
mod kubernetes;
mod output_limits;
mod parameters;
mod pools;
mod python;
mod sandbox;
mod stops;
mod store;
mod task_components;
mod tasks;
mod ui;
mod wit_versions;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde_json::Value;
use weft::engine::{Engine, EngineConfig, FlowComponent, Limits};
use weft::model::{LogLine, RunSink};
use weft::runner::{FlowRunReport, FlowRunRequest, run_flow};

/// A log sink that keeps every line, for assertions.
#[derive(Default)]
pub(crate) struct Captured(Mutex<Vec<LogLine>>);

impl RunSink for Captured {
    fn log(&self, line: LogLine) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(line);
    }
}

impl Captured {
    pub(crate) fn lines(&self) -> Vec<LogLine> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The engine every library test shares, as a long-lived host process would.
pub(crate) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(&EngineConfig::default()).expect("engine builds"))
}

/// Compiles a fixture.
pub(crate) fn load(path: &str) -> FlowComponent {
    let bytes = std::fs::read(path).expect("fixture was built");
    engine().load_flow(&bytes, path).expect("fixture is a flow")
}

/// Runs a fixture with parameters and limits; returns the report and every
/// log line.
pub(crate) async fn run(path: &str, parameters: Value, limits: Limits) -> (FlowRunReport, Vec<LogLine>) {
    let flow = load(path);
    let mut request = FlowRunRequest::new(&flow, parameters).expect("parameters are valid");
    request.limits = limits;
    let logs = Arc::new(Captured::default());
    let report = run_flow(engine(), &flow, request, logs.clone()).await;
    (report, logs.lines())
}

/// The waits, in milliseconds, of the retries announced in `lines` (weft's
/// "…; retrying in 23ms" warnings), in order.
pub(crate) fn retry_waits_ms<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<f64> {
    lines
        .into_iter()
        .filter_map(|line| line.rsplit_once("; retrying in ").map(|(_, wait)| wait.trim()))
        .map(|wait| humantime::parse_duration(wait).unwrap_or_else(|e| panic!("{wait}: {e}")).as_secs_f64() * 1000.0)
        .collect()
}

/// Asserts exponential backoff: `initial × factor^n`, at most `max`, each
/// within ±`jitter`.
pub(crate) fn assert_backoff(waits: &[f64], bases: &[f64], jitter: f64) {
    assert_eq!(waits.len(), bases.len(), "{waits:?}");
    for (wait, base) in waits.iter().zip(bases) {
        let range = base * (1.0 - jitter)..=base * (1.0 + jitter);
        assert!(range.contains(wait), "{wait}ms is not {base}ms ± {}%: {waits:?}", jitter * 100.0);
    }
}

/// The warnings weft itself wrote into a run's log (retries), in order.
pub(crate) fn weft_warnings(lines: &[LogLine]) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| l.level == weft::model::Level::Warn && l.source == weft::model::LogSource::Weft)
        .map(|l| l.message.as_str())
        .collect()
}

/// The messages of log lines, in order.
pub(crate) fn messages(lines: &[LogLine]) -> Vec<&str> {
    lines.iter().map(|l| l.message.as_str()).collect()
}

/// The path of the real `weft` binary, beside this test binary in the
/// target directory.
pub(crate) fn weft_path() -> PathBuf {
    let path = std::env::var_os("WEFT_BIN").map(PathBuf::from).unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("test binary path");
        exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps").join("weft")
    });
    assert!(path.exists(), "{} is missing: build it with `cargo build -p weft` (`make test` does)", path.display());
    path
}

/// The real `weft` binary.
pub(crate) fn weft() -> Command {
    let path = weft_path();
    // Runs are recorded in the store: unless a test says otherwise, in a
    // directory of this test process, never in the user's ~/.weft.
    let mut command = Command::new(path);
    command.env_remove("WEFT_LOG").env_remove("WEFT_STORE").env("WEFT_HOME", test_home());
    command
}

/// The `WEFT_HOME` of this test process: `<target>/tmp/weft-homes/<pid>`.
/// A static is never dropped, so a process cannot remove its own home; the
/// next test process removes the homes of processes that are gone, which
/// also covers a run that was killed.
fn test_home() -> &'static Path {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let homes = Path::new(env!("CARGO_TARGET_TMPDIR")).join("weft-homes");
        if cfg!(target_os = "linux") {
            for entry in std::fs::read_dir(&homes).into_iter().flatten().flatten() {
                let name = entry.file_name();
                let gone = name.to_str().is_some_and(|pid| !Path::new("/proc").join(pid).exists());
                if gone {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        // An earlier process may have had this pid.
        let home = homes.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).unwrap_or_else(|e| panic!("create {}: {e}", home.display()));
        home
    })
}

/// Runs the binary and returns its output.
pub(crate) fn weft_output(args: &[&str]) -> Output {
    weft().args(args).output().expect("weft runs")
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
