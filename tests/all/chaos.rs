//! Fault injection: processes killed at random points, the store and the
//! API server taken away mid-run. After each fault every run reaches a
//! final state, or is reported stale, within the bounds the README states,
//! and no run runs twice. Each test prints its random seed; set
//! `WEFT_CHAOS_SEED` to replay one.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use weft::model::State;
use weft::store::Store;

use crate::agent::{AgentProcess, deploy, run_deployment, runner_pid, signal, state, states, wait_for};
use crate::fixtures::SLOW;
use crate::store::Backend;
use crate::{stdout, weft};

fn rng(test: &str) -> fastrand::Rng {
    let seed = std::env::var("WEFT_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    eprintln!("{test}: WEFT_CHAOS_SEED={seed}");
    fastrand::Rng::with_seed(seed)
}

/// No run ran twice: at most one Running in each history.
async fn none_ran_twice(store: &Store) {
    for id in store.run_ids().await.expect("runs") {
        let running = states(store, &id).await.iter().filter(|s| **s == State::Running).count();
        assert!(running <= 1, "run {id} ran {running} times: {:?}", states(store, &id).await);
    }
}

/// Every run is final, or `weft runs ls` reports it stale.
fn every_run_final_or_stale(backend: &Backend) -> Vec<serde_json::Value> {
    let output = weft().args(["runs", "ls", "--limit", "1000", "--output", "json"]).args(backend.args()).output();
    let listed: serde_json::Value = serde_json::from_str(&stdout(&output.expect("runs ls"))).expect("json");
    let runs = listed.as_array().cloned().unwrap_or_default();
    let final_states = ["Completed", "Failed", "Crashed", "Cancelled"];
    let left: Vec<_> = runs
        .iter()
        .filter(|r| !final_states.contains(&r["state"].as_str().unwrap_or_default()) && r["stale_since"].is_null())
        .collect();
    assert!(left.is_empty(), "runs neither final nor reported stale: {left:#?}");
    runs
}

/// `weft run`s of a one-second flow, each sent SIGTERM, SIGINT or SIGKILL
/// at a random point (or left alone): the signalled ones record their end,
/// the killed ones are reported stale 30 s after their last heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weft_runs_killed_at_random_points() {
    let mut rng = rng("weft_runs_killed_at_random_points");
    let backend = Backend::file();
    let mut killed = 0;
    for batch in 0..5 {
        let children: Vec<(Child, &str, u64)> = (0..5)
            .map(|_| {
                let child = weft()
                    .args(["run", SLOW, "-p", "ticks=20", "-p", "interval_ms=50"])
                    .args(backend.args())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("weft run");
                let fault = ["TERM", "INT", "KILL", "none"][rng.usize(..4)];
                (child, fault, rng.u64(100..2500))
            })
            .collect();
        let start = Instant::now();
        for (mut child, fault, at) in children {
            tokio::time::sleep(Duration::from_millis(at).saturating_sub(start.elapsed())).await;
            let pid = i32::try_from(child.id()).expect("pid");
            match fault {
                "KILL" => {
                    killed += 1;
                    let _ = child.kill();
                }
                "none" => {}
                name => signal(pid, name),
            }
            let _ = child.wait();
        }
        eprintln!("batch {batch} done");
    }
    let store = backend.open();
    none_ran_twice(&store).await;
    // Everything not killed outright is final already.
    let unfinished = |runs: &[serde_json::Value]| {
        runs.iter()
            .filter(|r| !["Completed", "Crashed", "Failed"].contains(&r["state"].as_str().unwrap_or("-")))
            .count()
    };
    let output = weft().args(["runs", "ls", "--limit", "1000", "--output", "json"]).args(backend.args()).output();
    let runs: Vec<serde_json::Value> = serde_json::from_str(&stdout(&output.expect("runs ls"))).expect("json");
    assert!(unfinished(&runs) <= killed, "only killed runs may be left unfinished: {runs:#?}");
    // The bound: 30 s after the last heartbeat.
    tokio::time::sleep(Duration::from_secs(32)).await;
    every_run_final_or_stale(&backend);
}

/// An agent whose runners, and itself, are killed or stopped at random
/// points while it drains 25 runs: all end, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_and_the_agent_killed_at_random_points() {
    let mut rng = rng("runners_and_the_agent_killed_at_random_points");
    let backend = Backend::file();
    let _dir = deploy(
        &backend,
        &format!("deployments:\n  - name: ticks\n    flow: {SLOW}\n    parameters: {{ticks: 20, interval_ms: 50}}\n"),
    );
    let store = backend.open();
    let ids: Vec<String> = (0..25).map(|_| run_deployment(&backend, "ticks", &[])).collect();
    let agent_args = ["--heartbeat-timeout", "5s", "--limit", "4", "--grace", "2s"];
    let mut agent = Some(AgentProcess::start(&backend, "chaos", &agent_args));
    let mut faults: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(rng.u64(300..1500))).await;
        let running: Vec<&String> = {
            let mut running = Vec::new();
            for id in &ids {
                if state(&store, id).await == Some(State::Running) {
                    running.push(id);
                }
            }
            running
        };
        let fault = ["runner KILL", "runner TERM", "agent KILL", "agent TERM"][rng.usize(..4)];
        match fault {
            "runner KILL" | "runner TERM" => {
                let Some(id) = running.get(rng.usize(..running.len().max(1))) else { continue };
                signal(runner_pid(&store, id).await, fault.trim_start_matches("runner "));
            }
            "agent KILL" => {
                if let Some(agent) = agent.take() {
                    agent.kill();
                }
                agent = Some(AgentProcess::start(&backend, "chaos", &agent_args));
            }
            _ => {
                drop(agent.take());
                agent = Some(AgentProcess::start(&backend, "chaos", &agent_args));
            }
        }
        *faults.entry(fault).or_default() += 1;
    }
    eprintln!("faults: {faults:?}");
    // The bound: the heartbeat timeout after the last fault, plus the runs
    // still queued, four at a time.
    crate::agent::wait_all_final(&store, &ids, Duration::from_secs(120)).await;
    none_ran_twice(&store).await;
    drop(agent);
}

/// The store goes away for 20 s while runs are in flight: the runs end once
/// it is back (their runners wait to record their ends), none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_away_for_20_seconds_mid_run() {
    let ends = store_away(&[]).await;
    for (id, last) in ends {
        assert_eq!(last.state, State::Completed, "{id}: {last:?}");
    }
}

/// The same, with runners that give up on the store after 2 s (exit status
/// 3): the agent, which could not record their ends either, records them
/// once the store is back, and frees their concurrency slots for the runs
/// still queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_that_gave_up_on_the_store_are_ended_by_the_agent_when_it_is_back() {
    let ends = store_away(&[("WEFT_RECORD_PATIENCE", "2s")]).await;
    for (id, last) in ends {
        assert_eq!(last.state, State::Crashed, "{id}: {last:?}");
        assert!(last.message.as_deref().unwrap_or_default().contains("exit status 3"), "{id}: {last:?}");
    }
}

/// Six runs, four at a time, of a four-second flow; the store cut for 20 s
/// once some run; every run ends, none twice. Returns the final state of
/// each run that was running when the store went away.
async fn store_away(agent_env: &[(&str, &str)]) -> Vec<(String, weft::model::StateRecord)> {
    let link = crate::faults::Link::to(&crate::emulators::s3().endpoint);
    let backend = crate::store::failures::s3_through(&link);
    let _dir = deploy(
        &backend,
        &format!(
            "deployments:\n  - name: ticks\n    flow: {SLOW}\n    parameters: {{ticks: 40, interval_ms: 100}}\n    concurrency_limit: 4\n"
        ),
    );
    let store = backend.open();
    let ids: Vec<String> = (0..6).map(|_| run_deployment(&backend, "ticks", &[])).collect();
    let agent = AgentProcess::start_with_env(&backend, "away", &["--heartbeat-timeout", "10s"], agent_env);
    let mut running = Vec::new();
    wait_for("runs to start", Duration::from_secs(60), async || {
        running.clear();
        for id in &ids {
            if state(&store, id).await == Some(State::Running) {
                running.push(id.clone());
            }
        }
        !running.is_empty()
    })
    .await;
    link.cut();
    tokio::time::sleep(Duration::from_secs(20)).await;
    link.restore();
    // The bound: once the store is back, a poll or two, and the runs still
    // queued (four at a time, four seconds each).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut open = Vec::new();
        for id in &ids {
            if !state(&store, id).await.is_some_and(State::is_final) {
                open.push((id.clone(), store.states(id).await.expect("states")));
            }
        }
        if open.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let log = agent.stop();
            panic!("runs that did not end: {open:#?}\nagent: {log}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    none_ran_twice(&store).await;
    drop(agent);
    let mut ends = Vec::new();
    for id in running {
        let (_, last) = store.latest_state(&id).await.expect("state").expect("a state");
        ends.push((id, last));
    }
    ends
}
