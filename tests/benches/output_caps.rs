//! What a guest that floods costs the host, with the release `weft` binary:
//! `make bench` (or `cargo build --release -p weft-cli && cargo bench -p
//! weft-tests --bench output_caps`).
//!
//! Each workload is one `weft run` of the `floods` fixture on a fresh local
//! store; the table gives the process's peak resident memory (VmHWM, read
//! while it runs) and the bytes of log the store kept. The host's memory
//! stays bounded by the caps and the guest's own memory, whatever it
//! writes.

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

mod fixtures {
    #![allow(dead_code)]
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::report::{Figure, Report};
use common::weft_binary;

/// Peak resident memory of a running process, in bytes.
fn peak(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib << 10)
}

/// Bytes under `dir`.
fn size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .map_while(Result::ok)
        .map(|e| if e.path().is_dir() { size(&e.path()) } else { e.metadata().map(|m| m.len()).unwrap_or(0) })
        .sum()
}

fn mib(bytes: u64) -> f64 {
    (bytes as f64 / f64::from(1 << 20) * 10.0).round() / 10.0
}

/// Runs the workload; returns (peak RSS, log bytes stored, exit code).
fn measure(params: &[&str], extra: &[&str]) -> (u64, u64, Option<i32>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let mut command = Command::new(weft_binary());
    command
        .args(["run", fixtures::FLOODS, "--memory", "1GiB", "--store"])
        .arg(format!("file://{}", store.display()))
        .args(extra)
        .env("WEFT_HOME", dir.path().join("home"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for param in params {
        command.args(["-p", param]);
    }
    let mut child = command.spawn().expect("weft run");
    let mut highest = 0;
    let code = loop {
        if let Some(bytes) = peak(child.id()) {
            highest = highest.max(bytes);
        }
        match child.try_wait().expect("wait") {
            Some(status) => break status.code(),
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    (highest, size(&store.join("runs")), code)
}

fn main() {
    let workloads: [(&str, &[&str], &[&str]); 7] = [
        ("nothing written (baseline)", &["lines=0", "line_kib=0"], &[]),
        ("100,000 log lines of 1 KiB (100 MiB)", &["lines=100000", "line_kib=1"], &[]),
        ("the same, --max-log-volume 1MiB", &["lines=100000", "line_kib=1"], &["--max-log-volume", "1MiB"]),
        ("one 100 MiB line on stdout", &["lines=1", "line_kib=102400", "stdout=true"], &[]),
        ("one 100 MiB log message", &["lines=1", "line_kib=102400"], &[]),
        ("a 100 MiB error message", &["lines=0", "line_kib=0", "result_kib=102400", "fail=true"], &[]),
        ("a 100 MiB result (over the 16 MiB cap)", &["lines=0", "line_kib=0", "result_kib=102400"], &[]),
    ];
    let mut report = Report::new("output_caps");
    for (index, (name, params, extra)) in workloads.into_iter().enumerate() {
        let (rss, stored, code) = measure(params, extra);
        let code = code.map_or_else(|| "signal".to_owned(), |c| c.to_string());
        let mut command = String::from("weft run floods.wasm --memory 1GiB");
        for param in params {
            command.push_str(&format!(" -p {param}"));
        }
        for arg in extra {
            command.push_str(&format!(" {arg}"));
        }
        report.add(
            Figure::new(&format!("output_caps.{index}"), &format!("peak RSS: {name}"), "MiB", vec![mib(rss)], &command)
                .with("log_stored_mib", mib(stored))
                .with("exit", code),
        );
    }
    report.write();
}
