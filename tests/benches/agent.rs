//! What the agent costs, with the release `weft` binary on a local store:
//! `make bench` (or `cargo build --release -p weft && cargo bench -p
//! weft-tests --bench agent`).
//!
//! - latency: from `weft deployment run` to the runner marking the run
//!   Running, at the default poll interval, over 40 runs (p50, p95);
//! - drain: how long one agent with `--limit 32` takes to run 1,000 queued
//!   runs of hello.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use weft::model::State;
use weft::store::Store;

mod fixtures {
    #![allow(dead_code)]
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}

fn weft_binary() -> PathBuf {
    let path = std::env::var_os("WEFT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/weft"));
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --release -p weft` (`make bench` does)",
        path.display()
    );
    path
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

fn agent(store: &str, home: &std::path::Path, extra: &[&str]) -> Agent {
    let child = Command::new(weft_binary())
        .args(["agent", "--name", "bench", "--store", store])
        .args(extra)
        .env("WEFT_HOME", home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("weft agent");
    Agent(child)
}

async fn running_at(store: &Store, id: &str) -> Option<SystemTime> {
    let states = store.states(id).await.ok()?;
    states.into_iter().find(|(_, r)| r.state == State::Running).map(|(_, r)| r.time)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let home = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", home.path().join("store").display());
    let yaml = home.path().join("weft.yaml");
    std::fs::write(&yaml, format!("deployments:\n  - name: hello\n    flow: {}\n", fixtures::EXAMPLE_HELLO))
        .expect("write");
    let deployed = Command::new(weft_binary())
        .args(["deploy", "-f"])
        .arg(&yaml)
        .args(["--store", &url])
        .env("WEFT_HOME", home.path())
        .output()
        .expect("deploy");
    assert!(deployed.status.success(), "{}", String::from_utf8_lossy(&deployed.stderr));
    let store = Store::open(&url, &[]).expect("store");

    // Latency at the default poll interval.
    let samples = 40;
    let mut latencies = Vec::new();
    {
        let _agent = agent(&url, home.path(), &[]);
        tokio::time::sleep(Duration::from_secs(2)).await;
        for i in 0..samples {
            let start = SystemTime::now();
            let output = Command::new(weft_binary())
                .args(["deployment", "run", "hello", "--store", &url])
                .env("WEFT_HOME", home.path())
                .output()
                .expect("deployment run");
            let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            let started = loop {
                if let Some(t) = running_at(&store, &id).await {
                    break t;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            latencies.push(started.duration_since(start).unwrap_or_default());
            // Spread the samples over the poll cycle.
            tokio::time::sleep(Duration::from_millis(137 * (i % 7) + 50)).await;
        }
    }
    latencies.sort();
    println!(
        "deployment run -> runner Running, default poll interval (1s), {samples} runs: p50 {:?}, p95 {:?}, max {:?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        latencies[latencies.len() - 1]
    );

    // Draining 1,000 queued runs with --limit 32.
    let deployment = store.deployment("hello").await.expect("read").expect("deployed");
    let mut ids = Vec::new();
    for _ in 0..1000 {
        let run =
            store.schedule_run(&deployment, Default::default(), SystemTime::now(), None, 1).await.expect("schedule");
        ids.push(run.expect("created").id);
    }
    let started = Instant::now();
    let _agent = agent(&url, home.path(), &["--limit", "32", "--poll-interval", "200ms"]);
    for id in &ids {
        loop {
            match store.latest_state(id).await.expect("state").map(|(_, r)| r.state) {
                Some(state) if state.is_final() => {
                    assert_eq!(state, State::Completed, "run {id}");
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    let took = started.elapsed();
    println!(
        "one agent, --limit 32, 1000 queued runs of hello: drained in {:.1?} ({:.0} runs/s)",
        took,
        1000.0 / took.as_secs_f64()
    );
}
