//! What the agent costs, with the release `weft` binary as agent, runner and
//! CLI on a local store: `make bench` (or `cargo build --release -p weft-cli
//! && cargo bench -p weft-tests --bench agent`).
//!
//! - latency at the default settings: from `weft deployment run` to the
//!   runner marking the run Running, and to Completed, over 40 runs;
//! - drain: one agent with the default settings running 1,000 queued runs of
//!   hello, first with an empty compiled-code cache, then with a warm one;
//!   no run may run twice;
//! - memory: the agent idle and after the drains, and one runner;
//! - the agent on a store holding 100,000 finished runs: latency at the
//!   default settings again.

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use common::report::{Figure, Report, run_process};
use common::{agent, all_completed, deploy_hello, history_store, queue, run_deployment, state_at, weft_binary};
use weft::model::State;
use weft::store::Store;

const COMMAND: &str = "cargo bench -p weft-tests --bench agent";

/// `samples` runs of hello through the agent: (to Running, to Completed).
async fn latencies(store: &Store, url: &str, home: &Path, samples: usize) -> (Vec<Duration>, Vec<Duration>) {
    let (mut running, mut completed) = (Vec::new(), Vec::new());
    for i in 0..samples {
        let start = SystemTime::now();
        let id = run_deployment("hello", url, home);
        running.push(state_at(store, &id, State::Running).await.duration_since(start).unwrap_or_default());
        completed.push(state_at(store, &id, State::Completed).await.duration_since(start).unwrap_or_default());
        // Spread the samples over the poll cycle.
        tokio::time::sleep(Duration::from_millis(137 * (i as u64 % 7) + 50)).await;
    }
    (running, completed)
}

/// Every run ran exactly once: one Running record each.
async fn ran_once(store: &Store, ids: &[String]) {
    for id in ids {
        let states = store.states(id).await.expect("states");
        let running = states.iter().filter(|(_, r)| r.state == State::Running).count();
        assert_eq!(running, 1, "run {id} ran {running} times");
    }
}

#[tokio::main]
async fn main() {
    let mut report = Report::new("agent");
    let home = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", home.path().join("store").display());
    deploy_hello(&url, home.path());
    let store = Store::open(&url, &[]).expect("store");

    // Drains first, each with an agent of its own home: the first with an
    // empty compiled-code cache, the second with the cache the first filled.
    let agent_home = home.path().join("agent-home");
    for (id, what) in [
        ("agent.drain_cold", "1,000 queued runs of hello, one agent, default settings, empty compiled-code cache"),
        ("agent.drain_warm", "1,000 queued runs of hello, one agent, default settings, warm compiled-code cache"),
    ] {
        let ids = queue(&store, "hello", 1000).await;
        let started = Instant::now();
        let agent = agent(&url, &agent_home, &[]);
        all_completed(&store, &ids).await;
        let took = started.elapsed();
        let (_, peak) = agent.memory_kib();
        drop(agent);
        ran_once(&store, &ids).await;
        report.add(
            Figure::new(id, what, "runs/s", vec![1000.0 / took.as_secs_f64()], COMMAND)
                .with("drain_s", (took.as_secs_f64() * 100.0).round() / 100.0)
                .with("agent_peak_rss_mib", peak as f64 / 1024.0),
        );
    }

    // Latency at the default settings, and the agent's memory idle.
    {
        let agent = agent(&url, &agent_home, &[]);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (idle, _) = agent.memory_kib();
        let (running, completed) = latencies(&store, &url, home.path(), 40).await;
        report.add(
            Figure::millis(
                "agent.to_running",
                "from `weft deployment run` to the runner marking the run Running, default settings (local store: the queue is watched)",
                &running,
                COMMAND,
            )
            .with("agent_idle_rss_mib", idle as f64 / 1024.0),
        );
        report.add(Figure::millis(
            "agent.to_completed",
            "from `weft deployment run` to the run Completed (hello), default settings",
            &completed,
            COMMAND,
        ));
    }

    // One runner as the agent starts it, measured on its own.
    let mut runner_rss = Vec::new();
    let mut runner_wall = Vec::new();
    for id in queue(&store, "hello", 10).await {
        let ran = run_process(
            Command::new(weft_binary())
                .args(["runner", "--run", &id])
                .env("WEFT_STORE", &url)
                .env("WEFT_HOME", &agent_home),
        );
        assert_eq!(ran.status, 0, "{}", ran.stderr);
        runner_rss.push(ran.peak_rss_kib as f64 / 1024.0);
        runner_wall.push(ran.wall);
    }
    report.add(Figure::new(
        "agent.runner_peak_rss",
        "peak RSS of one `weft runner` process running hello (the guest's own memory is under 2 MiB)",
        "MiB",
        runner_rss,
        "WEFT_STORE=file://... weft runner --run ID",
    ));
    report.add(Figure::millis(
        "agent.runner_wall",
        "one `weft runner` process running hello, start to exit",
        &runner_wall,
        "WEFT_STORE=file://... weft runner --run ID",
    ));

    // The same agent on a store holding a long history.
    let history = history_store().await;
    deploy_hello(&history, home.path());
    let history_store = Store::open(&history, &[]).expect("store");
    {
        let _agent = agent(&history, &agent_home, &[]);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (running, _) = latencies(&history_store, &history, home.path(), 20).await;
        report.add(Figure::millis(
            "agent.to_running_history",
            &format!(
                "from `weft deployment run` to Running, default settings, on a store holding {} finished runs",
                common::HISTORY
            ),
            &running,
            COMMAND,
        ));
    }
    report.write();
}
