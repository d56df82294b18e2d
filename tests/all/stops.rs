//! `weft run` stopped from outside: a signal, `weft runs cancel`, or
//! SIGKILL. Whatever stops it, the run does not stay Running in the store.

use std::process::{Child, Stdio};
use std::time::Duration;

use weft::model::State;
use weft::store::Store;

use crate::agent::{signal, state, states, wait_for};
use crate::fixtures::SLOW;
use crate::store::Backend;
use crate::{stderr, stdout, weft};

/// `weft run` with `args` on `backend`'s store, and the id of its run once
/// the run is Running.
pub(crate) async fn started_weft_run(backend: &Backend, args: &[&str]) -> (Child, String) {
    let child = weft()
        .arg("run")
        .args(args)
        .args(backend.args())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft run");
    let store = backend.open();
    let mut id = String::new();
    wait_for("the run to be Running", Duration::from_secs(60), async || {
        let Some(first) = store.run_ids().await.expect("runs").into_iter().next() else { return false };
        id = first;
        state(&store, &id).await == Some(State::Running)
    })
    .await;
    (child, id)
}

/// A `weft run` of the slow flow (a tick every 100 ms for a minute), and
/// the id of its run once it is Running.
async fn slow_weft_run(backend: &Backend) -> (Child, String) {
    started_weft_run(backend, &[SLOW, "-p", "ticks=600", "-p", "interval_ms=100"]).await
}

async fn last_message(store: &Store, id: &str) -> String {
    let states = store.states(id).await.expect("states");
    states.last().and_then(|(_, r)| r.message.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signalled_weft_run_records_its_run_crashed_before_it_exits() {
    for (name, status) in [("INT", 130), ("TERM", 143)] {
        let backend = Backend::file();
        let (child, id) = slow_weft_run(&backend).await;
        // Some ticks first, so that there are logs to keep.
        tokio::time::sleep(Duration::from_millis(500)).await;
        signal(i32::try_from(child.id()).expect("pid"), name);
        let output = child.wait_with_output().expect("weft run exits");
        assert_eq!(output.status.code(), Some(status), "SIG{name}: {}", stderr(&output));
        assert!(stderr(&output).contains(&format!("stopped by SIG{name}")), "{}", stderr(&output));

        let store = backend.open();
        assert_eq!(states(&store, &id).await, [State::Running, State::Crashed], "SIG{name}");
        let message = last_message(&store, &id).await;
        assert!(message.contains(&format!("received SIG{name}")), "{message}");
        let (logs, _) = store.read_logs(&id, None).await.expect("logs");
        assert!(logs.iter().any(|l| l.message == "tick 1"), "the logs written before the signal are kept");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weft_runs_cancel_stops_a_weft_run() {
    let backend = Backend::file();
    let (child, id) = slow_weft_run(&backend).await;
    let output = weft().args(["runs", "cancel", &id]).args(backend.args()).output().expect("cancel");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = child.wait_with_output().expect("weft run exits");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let store = backend.open();
    assert_eq!(states(&store, &id).await, [State::Running, State::Cancelling, State::Cancelled]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_weft_run_is_reported_stale_and_cancel_ends_it() {
    let backend = Backend::file();
    let (mut child, id) = slow_weft_run(&backend).await;
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let store = backend.open();
    assert_eq!(state(&store, &id).await, Some(State::Running), "nothing recorded the kill");

    // Runs beat every 2 s and are stale after 30 s of silence.
    let show = || weft().args(["runs", "show", &id]).args(backend.args()).output().expect("runs show");
    assert!(!stdout(&show()).contains("stale"), "a run just killed is not stale yet");
    wait_for("the run to be reported stale", Duration::from_secs(60), async || {
        stdout(&show()).contains("Running (stale)")
    })
    .await;
    assert!(stdout(&show()).contains(&format!("`weft runs cancel {id}` ends it")), "{}", stdout(&show()));
    let ls = weft().args(["runs", "ls", "--output", "json"]).args(backend.args()).output().expect("runs ls");
    let listed: serde_json::Value = serde_json::from_str(&stdout(&ls)).expect("json");
    assert!(listed[0]["stale_since"].is_string(), "{listed}");

    let output = weft().args(["runs", "cancel", &id]).args(backend.args()).output().expect("cancel");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(states(&store, &id).await, [State::Running, State::Crashed]);
    assert!(last_message(&store, &id).await.contains("no sign of life"));
}
