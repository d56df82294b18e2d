//! What the web UI costs, with the release `weft` binary on a local store:
//! `make bench` (or `cargo build --release -p weft-cli && cargo bench -p
//! weft-tests --bench ui`).
//!
//! - the runs page, and `/api/runs`, with 100,000 finished runs in the
//!   store: p50 and p95 over 30 requests each (the store is made once and
//!   kept in `target/bench-ui-store/`);
//! - a live log line: from its write to the store to its arrival on the
//!   run's log stream (what the run page follows), over 50 lines written at
//!   random moments.

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use common::report::{Figure, Report};
use common::{HISTORY, history_store, weft_binary};
use weft::model::{Level, LogLine, LogSource, State, StateRecord};
use weft::store::Store;

struct Ui(Child, String);

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

fn ui(url: &str) -> Ui {
    let mut child = Command::new(weft_binary())
        .args(["ui", "--listen", "127.0.0.1:0", "--store", url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft ui");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("weft ui says where it listens");
    let address = line.split("http://").nth(1).and_then(|r| r.split('/').next()).expect("address").to_owned();
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    Ui(child, format!("http://{address}"))
}

fn get(url: &str) -> Duration {
    let started = Instant::now();
    let mut response = ureq::get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let _ = response.body_mut().read_to_string().expect("body");
    started.elapsed()
}

fn timed(url: &str, times: usize) -> Vec<Duration> {
    for _ in 0..3 {
        get(url);
    }
    (0..times).map(|_| get(url)).collect()
}

const COMMAND: &str = "cargo bench -p weft-tests --bench ui";

#[tokio::main]
async fn main() {
    let url = history_store().await;
    let ui = ui(&url);
    let mut report = Report::new("ui");
    for (id, path, what) in [
        ("ui.runs_page", "/runs", "the runs page (50 runs and their states)"),
        ("ui.api_runs", "/api/runs?limit=50", "the JSON API's newest 50 runs"),
        ("ui.chart", "/runs/chart.svg", "the chart of the newest 300 runs"),
    ] {
        let samples = timed(&format!("{}{path}", ui.1), 30);
        report.add(Figure::millis(
            id,
            &format!("`GET {path}`, {what}, {HISTORY} runs in the store"),
            &samples,
            COMMAND,
        ));
    }

    // A live log stream: one run Running, lines written by this process.
    let store = Store::open(&url, &[]).expect("store");
    let live = common::finished_run(&weft::model::new_id());
    store.create_run(&live).await.expect("run");
    store.transition(&live.id, |_| Some(StateRecord::now(State::Running, None))).await.expect("state");
    let (arrived, received) = mpsc::channel::<(usize, Instant)>();
    let stream_url = format!("{}/api/runs/{}/logs/stream", ui.1, live.id);
    std::thread::spawn(move || {
        let response = ureq::get(&stream_url).call().expect("stream");
        let reader = BufReader::new(response.into_body().into_reader());
        for line in reader.lines() {
            let Ok(line) = line else { return };
            let now = Instant::now();
            for piece in line.split("bench-line-").skip(1) {
                let digits: String = piece.chars().take_while(char::is_ascii_digit).collect();
                if let Ok(n) = digits.parse() {
                    let _ = arrived.send((n, now));
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut next = None;
    let mut latencies = Vec::new();
    for n in 0..50 {
        let line = LogLine {
            time: SystemTime::now(),
            level: Level::Info,
            flow_run_id: live.id.clone(),
            task_run_id: None,
            task_name: None,
            source: LogSource::Flow,
            message: format!("bench-line-{n}"),
            fields: Vec::new(),
        };
        store.append_logs(&live.id, &[line], &mut next).await.expect("append");
        let written = Instant::now();
        loop {
            let (got, at) = received.recv_timeout(Duration::from_secs(10)).expect("the line arrives");
            if got == n {
                latencies.push(at.saturating_duration_since(written));
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(fastrand::u64(10..120))).await;
    }
    report.add(Figure::millis(
        "ui.live_log_line",
        "a log line from its write to the store to the run's live log stream (the UI looks every 50 ms on a local store)",
        &latencies,
        COMMAND,
    ));
    report.write();
}
