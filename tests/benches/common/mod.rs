//! What the agent benchmarks share: the release `weft` binary, an agent
//! process, and the numbers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use weft::model::State;
use weft::store::Store;

mod fixtures {
    #![allow(dead_code)]
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}

pub fn weft_binary() -> PathBuf {
    let path = std::env::var_os("WEFT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/weft"));
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --release -p weft-cli` (`make bench` does)",
        path.display()
    );
    path
}

/// An agent process, stopped with SIGTERM when dropped.
pub struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

pub fn agent(store: &str, home: &Path, extra: &[&str]) -> Agent {
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

/// `weft deployment run NAME`: the new run's id.
pub fn run_deployment(name: &str, store: &str, home: &Path) -> String {
    let output = Command::new(weft_binary())
        .args(["deployment", "run", name, "--store", store])
        .env("WEFT_HOME", home)
        .output()
        .expect("deployment run");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// When the run was marked Running, once it has been.
pub async fn running_at(store: &Store, id: &str) -> SystemTime {
    loop {
        if let Ok(states) = store.states(id).await
            && let Some((_, record)) = states.into_iter().find(|(_, r)| r.state == State::Running)
        {
            return record.time;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits for every run to end, and asserts each Completed.
pub async fn all_completed(store: &Store, ids: &[String]) {
    for id in ids {
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
}

/// Queues `count` runs of a deployment in the store.
pub async fn queue(store: &Store, deployment: &str, count: usize) -> Vec<String> {
    let deployment = store.deployment(deployment).await.expect("read").expect("deployed");
    let mut ids = Vec::new();
    for _ in 0..count {
        let run =
            store.schedule_run(&deployment, Default::default(), SystemTime::now(), None, 1).await.expect("schedule");
        ids.push(run.expect("created").id);
    }
    ids
}

/// Deploys `examples/hello` as `hello` to a local store in `home`.
pub fn deploy_hello(store: &str, home: &Path) {
    let yaml = home.join("weft.yaml");
    let hello = fixtures::EXAMPLE_HELLO;
    std::fs::write(&yaml, format!("deployments:\n  - name: hello\n    flow: {hello}\n")).expect("write");
    let deployed = Command::new(weft_binary())
        .args(["deploy", "-f"])
        .arg(&yaml)
        .args(["--store", store])
        .env("WEFT_HOME", home)
        .output()
        .expect("deploy");
    assert!(deployed.status.success(), "{}", String::from_utf8_lossy(&deployed.stderr));
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}
