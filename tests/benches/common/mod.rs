//! What the benchmarks share: the release `weft` binary, an agent process,
//! the numbers, and the results table they write.

pub mod report;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use serde_json::json;
use weft::model::{FlowRun, State, StateRecord};
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

impl Agent {
    /// Its resident memory now and at its peak, in KiB (`/proc`).
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

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
    state_at(store, id, State::Running).await
}

/// When the run was marked `state`, once it has been.
pub async fn state_at(store: &Store, id: &str, state: State) -> SystemTime {
    loop {
        if let Ok(states) = store.states(id).await
            && let Some((_, record)) = states.into_iter().find(|(_, r)| r.state == state)
        {
            return record.time;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
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

/// How many finished runs the history store holds.
pub const HISTORY: usize = 100_000;

pub fn finished_run(id: &str) -> FlowRun {
    serde_json::from_value(json!({
        "id": id,
        "flow_name": "hello",
        "deployment": "hello",
        "component": format!("sha256:{}", "0".repeat(64)),
        "parameters": {"name": "bench"},
        "attempt": 1,
        "created": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
    }))
    .expect("a run")
}

/// A store holding `HISTORY` Completed runs, made once and kept in
/// `target/bench-ui-store/`: what `runs ls`, the agent and the UI face after
/// months of use.
pub async fn history_store() -> String {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-ui-store");
    let url = format!("file://{}", folder.display());
    let done = folder.join(format!("made-{HISTORY}-indexed"));
    if done.exists() {
        return url;
    }
    let _ = std::fs::remove_dir_all(&folder);
    let store = Store::open(&url, &[]).expect("store");
    let started = Instant::now();
    futures::stream::iter(0..HISTORY)
        .map(|_| {
            let store = store.clone();
            async move {
                let run = finished_run(&weft::model::new_id());
                store.create_run(&run).await.expect("run");
                for state in [State::Scheduled, State::Running, State::Completed] {
                    let record = StateRecord::now(state, None);
                    store.transition(&run.id, |_| Some(record.clone())).await.expect("state");
                }
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
    std::fs::write(&done, "").expect("marker");
    eprintln!("made {HISTORY} runs in {:.1?}", started.elapsed());
    url
}
