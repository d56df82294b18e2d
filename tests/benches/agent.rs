//! What the agent costs, with the release `weft` binary on a local store:
//! `make bench` (or `cargo build --release -p weft-cli && cargo bench -p
//! weft-tests --bench agent`).
//!
//! - latency: from `weft deployment run` to the runner marking the run
//!   Running, at the default poll interval, over 40 runs (p50, p95);
//! - drain: how long one agent with `--limit 32` takes to run 1,000 queued
//!   runs of hello.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{agent, all_completed, deploy_hello, percentile, queue, run_deployment, running_at};
use weft::store::Store;

#[tokio::main]
async fn main() {
    let home = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", home.path().join("store").display());
    deploy_hello(&url, home.path());
    let store = Store::open(&url, &[]).expect("store");

    // Latency at the default poll interval.
    let samples = 40;
    let mut latencies = Vec::new();
    {
        let _agent = agent(&url, home.path(), &[]);
        tokio::time::sleep(Duration::from_secs(2)).await;
        for i in 0..samples {
            let start = SystemTime::now();
            let id = run_deployment("hello", &url, home.path());
            let started = running_at(&store, &id).await;
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
    let ids = queue(&store, "hello", 1000).await;
    let started = Instant::now();
    let _agent = agent(&url, home.path(), &["--limit", "32", "--poll-interval", "200ms"]);
    all_completed(&store, &ids).await;
    let took = started.elapsed();
    println!(
        "one agent, --limit 32, 1000 queued runs of hello: drained in {:.1?} ({:.0} runs/s)",
        took,
        1000.0 / took.as_secs_f64()
    );
}
