//! What a Python flow costs to start, with the release `weft` binary:
//! `make bench` (or `cargo build --release -p weft && cargo bench -p
//! weft-tests --bench guests`).
//!
//! The etl-python example is built with the Python SDK's build helper
//! (componentize-py from `tests/toolchains/install.sh`), then run with
//! `weft run` in a fresh process: first with a fresh home (nothing
//! compiled: what a new machine or a new pod pays), then five times more
//! with the same home (the compiled code cached on local disk).

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::weft_binary;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `weft run` of `component` with `home`: its wall time.
fn run(component: &Path, home: &Path) -> Duration {
    let started = Instant::now();
    let output = Command::new(weft_binary())
        .arg("run")
        .arg(component)
        .args(["-p", "count=4"])
        .env("WEFT_HOME", home)
        .output()
        .expect("weft run");
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

    let home = dir.path().join("home");
    let first = run(&component, &home);
    let mut later: Vec<Duration> = (0..5).map(|_| run(&component, &home)).collect();
    later.sort();
    println!("etl-python: {:.1} MB component", size as f64 / 1e6);
    println!("  first run, fresh home (compiles):        {:.2} s", first.as_secs_f64());
    println!(
        "  later runs, same home (cached code), 5:  median {:.2} s, min {:.2} s, max {:.2} s",
        later[2].as_secs_f64(),
        later[0].as_secs_f64(),
        later[4].as_secs_f64()
    );
}
