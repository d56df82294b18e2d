//! What a Python flow costs to start, with the release `weft` binary:
//! `make bench` (or `cargo build --release -p weft-cli && cargo bench -p
//! weft-tests --bench guests`).
//!
//! The etl-python example is built with the Python SDK's build helper
//! (componentize-py from `tests/toolchains/install.sh`), then run with
//! `weft run`, each run a fresh process, all on one local store:
//! - first, with a fresh home (nothing compiled: what a new machine or pod
//!   pays without a code key);
//! - then five times with the same home (the compiled code cached on local
//!   disk);
//! - then five times with a fresh home each but `WEFT_CODE_KEY` set, after
//!   one run with the key shared the compiled code through the store (what
//!   a fresh pod pays with a code key).

// Shared with the agent benchmarks; this one needs only the binary's path.
#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::report::{Figure, Report};
use common::weft_binary;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

const CODE_KEY: &str = "a-code-key-for-the-benchmark-0123456789";

/// `weft run` of `component` with `home`, on `store`: its wall time.
fn run(component: &Path, home: &Path, store: &str, code_key: bool) -> Duration {
    let started = Instant::now();
    let mut command = Command::new(weft_binary());
    command.arg("run").arg(component).args(["-p", "count=4", "--store", store]).env("WEFT_HOME", home);
    if code_key {
        command.env("WEFT_CODE_KEY", CODE_KEY);
    }
    let output = command.output().expect("weft run");
    let elapsed = started.elapsed();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "[10,20,30,40]\n");
    elapsed
}

fn main() {
    let root = root();
    let componentize = root.join("target/toolchains/venv/bin/componentize-py");
    assert!(componentize.exists(), "run tests/toolchains/install.sh first (`make bench` does)");
    let dir = tempfile::tempdir().expect("tempdir");
    let component = dir.path().join("etl-python.wasm");
    let built = Command::new("python3")
        .args(["-m", "weft", "build"])
        .arg(root.join("examples/etl-python/etl.py"))
        .arg("-o")
        .arg(&component)
        .env("PYTHONPATH", root.join("guest-sdk/python"))
        .env("COMPONENTIZE_PY", &componentize)
        .env("WEFT", weft_binary())
        .output()
        .expect("python3 -m weft build");
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let size = std::fs::metadata(&component).expect("component").len();

    let store = format!("file://{}", dir.path().join("store").display());
    let home = dir.path().join("home");
    let first = run(&component, &home, &store, false);
    let later: Vec<Duration> = (0..5).map(|_| run(&component, &home, &store, false)).collect();
    // One machine with the key compiles and shares; fresh ones fetch.
    let sharer = run(&component, &dir.path().join("sharer"), &store, true);
    let fresh: Vec<Duration> =
        (0..5).map(|i| run(&component, &dir.path().join(format!("fresh-{i}")), &store, true)).collect();
    let mib = size as f64 / f64::from(1 << 20);
    let command = "weft run etl-python.wasm -p count=4 (built by `python3 -m weft build examples/etl-python/etl.py`)";
    let mut report = Report::new("guests");
    for (id, what, samples) in [
        (
            "guests.python_first",
            "the etl-python example's first run on a fresh home: compiles the component",
            vec![first],
        ),
        ("guests.python_cached", "later runs on the same home: compiled code from the local cache", later),
        (
            "guests.python_code_key_first",
            "first run with `WEFT_CODE_KEY` set: compiles and shares the code through the store",
            vec![sharer],
        ),
        (
            "guests.python_code_key_fresh",
            "runs on fresh homes with `WEFT_CODE_KEY` (a new machine or pod): code fetched from the store and checked",
            fresh,
        ),
    ] {
        report.add(Figure::millis(id, what, &samples, command).with("component_mib", (mib * 10.0).round() / 10.0));
    }
    report.write();
}
