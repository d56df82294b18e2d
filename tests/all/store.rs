//! The same store suite on every backend: a local directory, memory, S3
//! (moto), GCS (fake-gcs-server behind its translating proxy) and Azure
//! (Azurite). Each test gets a fresh prefix in the backend's bucket.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use weft::engine::Limits;
use weft::model::{Digest, FlowRun, FlowRunOutcome, Level, LogLine, LogSource, RunSink, State, StateRecord};
use weft::runner::{REPORTED_TASK_RUNS, run_recorded};
use weft::store::{ArtifactError, Store, StoreRecorder, TransitionOutcome};

use crate::emulators::{self, AZURITE_KEY, BUCKET};
use crate::fixtures::{EXAMPLE_ETL, EXAMPLE_HELLO, MANY_TASKS, SLOW};
use crate::{engine, load, stderr, stdout, weft};

/// A store URL with its options, fresh for one test.
pub(crate) struct Backend {
    pub url: String,
    pub options: Vec<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

fn unique() -> String {
    weft::model::new_id().to_lowercase()
}

fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

impl Backend {
    pub(crate) fn file() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("file://{}", dir.path().join("store").display());
        Backend { url, options: Vec::new(), _dir: Some(dir) }
    }

    pub(crate) fn memory() -> Self {
        Backend { url: "memory://".into(), options: Vec::new(), _dir: None }
    }

    pub(crate) fn s3() -> Self {
        let endpoint = &emulators::s3().endpoint;
        Backend {
            url: format!("s3://{BUCKET}/{}", unique()),
            options: options(&[
                ("endpoint", endpoint),
                ("allow_http", "true"),
                ("region", "us-east-1"),
                ("access_key_id", "test"),
                ("secret_access_key", "test"),
            ]),
            _dir: None,
        }
    }

    pub(crate) fn azure() -> Self {
        let endpoint = format!("{}/devstoreaccount1", emulators::azure().endpoint);
        Backend {
            url: format!("az://{BUCKET}/{}", unique()),
            options: options(&[
                ("account_name", "devstoreaccount1"),
                ("access_key", AZURITE_KEY),
                ("endpoint", &endpoint),
                ("allow_http", "true"),
            ]),
            _dir: None,
        }
    }

    pub(crate) fn gcs() -> Self {
        Backend {
            url: format!("gs://{BUCKET}/{}", unique()),
            // No credentials exist here; a bearer token keeps object_store
            // from asking a metadata server for one.
            options: options(&[("base_url", &emulators::gcs().endpoint), ("bearer_token", "test")]),
            _dir: None,
        }
    }

    /// A store of the caller's choosing (a real bucket, for tests on a real
    /// cluster).
    pub(crate) fn remote(url: &str, options: Vec<(String, String)>) -> Self {
        Backend { url: url.to_owned(), options, _dir: None }
    }

    pub(crate) fn open(&self) -> Store {
        Store::open(&self.url, &self.options).unwrap_or_else(|e| panic!("open {}: {e}", self.url))
    }

    /// `--store URL --store-option K=V ...` for the CLI.
    pub(crate) fn args(&self) -> Vec<String> {
        let mut args = vec!["--store".to_owned(), self.url.clone()];
        for (key, value) in &self.options {
            args.push("--store-option".into());
            args.push(format!("{key}={value}"));
        }
        args
    }
}

fn new_run(id: &str, digest: Digest) -> FlowRun {
    FlowRun {
        id: id.to_owned(),
        flow_name: "test".into(),
        deployment: None,
        component: digest,
        parameters: Default::default(),
        attempt: 1,
        created: std::time::SystemTime::now(),
        scheduled_for: None,
        sandbox: Default::default(),
        tasks: Default::default(),
        task_concurrency: None,
        work_pool: None,
        work_queue: None,
    }
}

fn line(message: &str) -> LogLine {
    LogLine {
        time: std::time::SystemTime::now(),
        level: Level::Info,
        flow_run_id: "run".into(),
        task_run_id: None,
        task_name: None,
        source: LogSource::Flow,
        message: message.to_owned(),
        fields: Vec::new(),
    }
}

async fn push_is_content_addressed_and_deduplicated(backend: &Backend) {
    let store = backend.open();
    let bytes = std::fs::read(EXAMPLE_HELLO).expect("fixture");
    let first = store.push_artifact(&bytes, Some("hello")).await.expect("push");
    assert!(first.uploaded);
    assert_eq!(first.digest, Digest::of(&bytes));
    assert_eq!(first.url, format!("{}/artifacts/sha256/{}.wasm", backend.url, first.digest.hex()));
    let second = store.push_artifact(&bytes, None).await.expect("push again");
    assert!(!second.uploaded, "the same bytes are not uploaded twice");
    assert_eq!(second.digest, first.digest);
    assert_eq!(store.fetch_artifact(&first.digest).await.expect("fetch"), bytes);
    assert_eq!(store.artifact_by_name("hello").await.expect("by name"), first.digest);
    let missing = store.artifact_by_name("nope").await.expect_err("no such name");
    assert!(missing.to_string().contains("push one with `weft push FILE.wasm --name nope`"), "{missing}");
}

async fn a_tampered_component_is_refused_with_both_digests(backend: &Backend) {
    let store = backend.open();
    let bytes = std::fs::read(EXAMPLE_HELLO).expect("fixture");
    let pushed = store.push_artifact(&bytes, None).await.expect("push");
    let evil = std::fs::read(EXAMPLE_ETL).expect("fixture");
    let path = format!("artifacts/sha256/{}.wasm", pushed.digest.hex());
    store.put(&path, evil.clone().into()).await.expect("overwrite");
    let error = store.fetch_artifact(&pushed.digest).await.expect_err("refused");
    assert!(matches!(error, ArtifactError::Mismatch { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(&pushed.digest.to_string()), "names the expected digest: {text}");
    assert!(text.contains(&Digest::of(&evil).to_string()), "names the actual digest: {text}");
}

async fn the_state_history_is_append_only(backend: &Backend) {
    let store = backend.open();
    let id = weft::model::new_id();
    store.create_run(&new_run(&id, Digest::of(b"x"))).await.expect("create");
    assert!(store.create_run(&new_run(&id, Digest::of(b"x"))).await.is_err(), "run.json is created once");
    for state in [State::Scheduled, State::Pending, State::Running, State::Completed] {
        let outcome = store.transition(&id, |_| Some(StateRecord::now(state, None))).await.expect("transition");
        assert!(matches!(outcome, TransitionOutcome::Written { .. }));
    }
    let kept = store.transition(&id, |_| None).await.expect("no-op");
    assert!(matches!(kept, TransitionOutcome::Kept { current: Some(StateRecord { state: State::Completed, .. }) }));
    let history: Vec<(u32, State)> =
        store.states(&id).await.expect("states").into_iter().map(|(seq, r)| (seq, r.state)).collect();
    assert_eq!(history, [(1, State::Scheduled), (2, State::Pending), (3, State::Running), (4, State::Completed)]);
    assert_eq!(store.latest_state(&id).await.expect("latest").map(|(seq, _)| seq), Some(4));
}

async fn concurrent_state_writers_have_exactly_one_winner(backend: &Backend) {
    let store = backend.open();
    for round in 0..3 {
        let id = weft::model::new_id();
        store.create_run(&new_run(&id, Digest::of(b"x"))).await.expect("create");
        store.transition(&id, |_| Some(StateRecord::now(State::Running, None))).await.expect("running");
        let writers: Vec<_> = (0..16)
            .map(|writer| {
                let store = store.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    let message = format!("writer {writer}");
                    store
                        .transition(&id, |current| {
                            (current.map(|r| r.state) == Some(State::Running))
                                .then(|| StateRecord::now(State::Completed, Some(message.clone())))
                        })
                        .await
                })
            })
            .collect();
        let mut winners = 0;
        for writer in writers {
            if let TransitionOutcome::Written { seq } = writer.await.expect("join").expect("transition") {
                assert_eq!(seq, 2);
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "round {round}: exactly one writer wins");
        let states = store.states(&id).await.expect("states");
        assert_eq!(states.len(), 2, "round {round}: nothing was overwritten or added: {states:?}");
    }
}

async fn log_chunks_read_back_in_order(backend: &Backend) {
    let store = backend.open();
    let id = weft::model::new_id();
    let recorder = StoreRecorder::start(store.clone(), id.clone(), Duration::from_secs(3600));
    for batch in 0..3 {
        for i in 0..5 {
            recorder.log(line(&format!("batch {batch} line {i}")));
        }
        recorder.flush().await.expect("flush");
    }
    let (first, cursor) = store.read_logs(&id, None).await.expect("read");
    let expected: Vec<String> = (0..3).flat_map(|b| (0..5).map(move |i| format!("batch {b} line {i}"))).collect();
    assert_eq!(first.iter().map(|l| l.message.clone()).collect::<Vec<_>>(), expected);
    recorder.log(line("after"));
    recorder.finish().await.expect("finish");
    let (more, _) = store.read_logs(&id, cursor.as_deref()).await.expect("read more");
    assert_eq!(more.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(), ["after"]);

    // Two writers on one run never overwrite each other's chunks.
    let a = StoreRecorder::start(store.clone(), id.clone(), Duration::from_secs(3600));
    let b = StoreRecorder::start(store.clone(), id.clone(), Duration::from_secs(3600));
    for i in 0..4 {
        a.log(line(&format!("a{i}")));
        b.log(line(&format!("b{i}")));
        let (ra, rb) = tokio::join!(a.flush(), b.flush());
        ra.expect("a flush");
        rb.expect("b flush");
    }
    let (all, _) = store.read_logs(&id, None).await.expect("read all");
    let messages: Vec<&str> = all.iter().map(|l| l.message.as_str()).collect();
    for name in ["a", "b"] {
        let mine: Vec<&str> = messages.iter().copied().filter(|m| m.starts_with(name) && m.len() == 2).collect();
        assert_eq!(mine, (0..4).map(|i| format!("{name}{i}")).collect::<Vec<_>>(), "{messages:?}");
    }
}

/// However many task runs and lines a run makes between flushes, no chunk
/// holds more than 2,000 of them, so that no reader has to load a huge one.
#[tokio::test]
async fn chunks_hold_at_most_two_thousand_entries() {
    let backend = Backend::file();
    let store = backend.open();
    let id = weft::model::new_id();
    let recorder = StoreRecorder::start(store.clone(), id.clone(), Duration::from_secs(3600));
    for i in 0..5000 {
        recorder.log(line(&format!("line {i}")));
        recorder.task_run(&weft::model::TaskRun {
            id: format!("task-{i:05}"),
            name: "t".into(),
            state: State::Completed,
            component: None,
            attempts: 1,
            cached: false,
            cache_key: None,
            started: std::time::SystemTime::now(),
            ended: Some(std::time::SystemTime::now()),
            error: None,
        });
    }
    recorder.finish().await.expect("finish");
    let root = std::path::PathBuf::from(backend.args()[1].trim_start_matches("file://")).join("runs").join(&id);
    for folder in ["logs", "tasks"] {
        let chunks: Vec<_> = std::fs::read_dir(root.join(folder)).expect("chunks").map_while(Result::ok).collect();
        assert!(chunks.len() >= 3, "{folder}: {} chunks", chunks.len());
        for chunk in chunks {
            let lines = std::fs::read_to_string(chunk.path()).expect("chunk").lines().count();
            assert!(lines <= 2000, "{folder}/{:?} holds {lines} entries", chunk.file_name());
        }
    }
    assert_eq!(store.task_runs(&id).await.expect("task runs").len(), 5000);
    assert_eq!(store.read_logs(&id, None).await.expect("logs").0.len(), 5000);
}

/// A run of many task calls holds only what is open, yet every task run is
/// in the store; the report keeps the first and counts them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_run_of_a_run_of_many_is_recorded_and_counted() {
    let backend = Backend::file();
    let store = backend.open();
    let flow = load(MANY_TASKS);
    let bytes = std::fs::read(MANY_TASKS).expect("fixture");
    let digest = store.push_artifact(&bytes, None).await.expect("push").digest;
    let mut run = new_run(&weft::model::new_id(), digest);
    run.parameters = json!({"count": 5000}).as_object().cloned().expect("object");
    store.create_run(&run).await.expect("create");
    let report = run_recorded(engine(), &flow, &store, &run, Limits::default(), None).await.expect("recorded");
    let sum: u64 = (0..5000u64).map(|x| x * x).sum();
    assert_eq!(report.outcome, FlowRunOutcome::Completed { result: json!(sum) });
    assert_eq!(report.task_run_counts.get(State::Completed), 5000);
    assert_eq!((report.task_runs.len(), report.task_runs_left_out()), (REPORTED_TASK_RUNS, 5000 - 1000));

    let stored = store.read_task_runs(&run.id).await.expect("task runs");
    assert_eq!(stored.counts(), report.task_run_counts, "the store counts what the report counts");
    let mut ids = Vec::new();
    stored
        .visit(|t| {
            assert_eq!((t.name.as_str(), t.state, t.attempts), ("square", State::Completed, 1));
            ids.push(t.id);
            std::ops::ControlFlow::Continue(())
        })
        .await
        .expect("visit");
    let reported: Vec<&String> = report.task_runs.iter().map(|t| &t.id).collect();
    assert_eq!(ids.iter().take(REPORTED_TASK_RUNS).collect::<Vec<_>>(), reported, "the report's are the first");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5000, "every task run, once");
}

/// `weft runs show` on a run with more task runs than it prints: their
/// counts by state, the first ones, and how many it left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_show_counts_task_runs_and_says_how_many_it_left_out() {
    let backend = Backend::file();
    let ran = weft().args(["run", MANY_TASKS, "-p", "count=150"]).args(backend.args()).output().expect("run");
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    let id = backend.open().run_ids().await.expect("runs").pop().expect("the run");
    let show = |extra: &[&str]| {
        let output = weft().args(["runs", "show", &id]).args(extra).args(backend.args()).output().expect("show");
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        stdout(&output)
    };
    let rows = |text: &str| text.lines().filter(|l| l.starts_with("square ")).count();

    let text = show(&[]);
    assert!(text.contains("Task runs  150: 150 Completed\n"), "{text}");
    assert_eq!(rows(&text), 100, "the first 100 by default: {text}");
    assert!(
        text.trim_end()
            .ends_with("… and 50 more task runs not shown (`--tasks N` shows the first N, `--all-tasks` every one)"),
        "{text}"
    );
    let text = show(&["--tasks", "3"]);
    assert_eq!(rows(&text), 3);
    assert!(text.contains("… and 147 more task runs not shown"), "{text}");
    let text = show(&["--all-tasks"]);
    assert_eq!(rows(&text), 150);
    assert!(!text.contains("not shown"), "{text}");
    let text = show(&["--task-state", "failed"]);
    assert_eq!(rows(&text), 0);
    assert!(text.contains("Task runs  150: 150 Completed") && !text.contains("not shown"), "{text}");

    let json: Value = serde_json::from_str(&show(&["--output", "json"])).expect("JSON");
    assert_eq!(json["task_run_counts"], json!({"Completed": 150}));
    assert_eq!(json["task_runs"].as_array().map(Vec::len), Some(100));
    assert_eq!(json["task_runs_not_shown"], 50);
    assert_eq!(json["result"], json!((0..150u64).map(|x| x * x).sum::<u64>()));
    let json: Value = serde_json::from_str(&show(&["--output", "json", "--all-tasks"])).expect("JSON");
    assert_eq!(json["task_runs"].as_array().map(Vec::len), Some(150));
    assert_eq!(json["task_runs_not_shown"], 0);
}

/// `weft logs` prints a log of many chunks whole and in order, with or
/// without `--follow`, after the run or while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_print_every_line_of_a_log_of_many_chunks_in_order() {
    let backend = Backend::file();
    let store = backend.open();
    let ticks = |text: &str| -> Vec<u32> {
        text.lines().filter_map(|l| l.split_once("| tick ").and_then(|(_, n)| n.trim().parse().ok())).collect()
    };
    let ran = weft()
        .args(["run", SLOW, "-p", "ticks=5000", "-p", "interval_ms=0", "--log-level", "warn"])
        .args(backend.args())
        .output()
        .expect("run");
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    let id = store.run_ids().await.expect("runs").pop().expect("the run");
    let root = std::path::PathBuf::from(backend.url.trim_start_matches("file://"));
    let chunks = std::fs::read_dir(root.join("runs").join(&id).join("logs")).expect("chunks").count();
    assert!(chunks >= 3, "the log spans {chunks} chunks");
    for follow in [false, true] {
        let output =
            weft().args(["logs", &id]).args(follow.then_some("--follow")).args(backend.args()).output().expect("logs");
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let text = stdout(&output);
        assert_eq!(ticks(&text), (1..=5000).collect::<Vec<u32>>(), "follow: {follow}");
        assert!(text.lines().next().is_some_and(|l| l.contains("Beginning flow run")), "{text}");
        assert!(text.lines().last().is_some_and(|l| l.contains("Finished in state Completed")), "{text}");
    }

    // Followed while it runs: every line, in order, and it ends with the run.
    let mut running = weft()
        .args(["run", SLOW, "-p", "ticks=3000", "-p", "interval_ms=1", "--log-level", "warn"])
        .args(backend.args())
        .stdout(Stdio::null())
        .spawn()
        .expect("run");
    let live = loop {
        if let Some(live) = store.run_ids().await.expect("runs").into_iter().find(|r| *r != id) {
            break live;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let followed = weft().args(["logs", &live, "--follow"]).args(backend.args()).output().expect("follow");
    assert!(running.wait().expect("run ends").success());
    let text = stdout(&followed);
    assert_eq!(ticks(&text), (1..=3000).collect::<Vec<u32>>());
    assert!(text.lines().last().is_some_and(|l| l.contains("Finished in state Completed")), "{text}");
}

async fn a_recorded_run_leaves_states_logs_tasks_and_result(backend: &Backend) {
    let store = backend.open();
    let flow = load(EXAMPLE_ETL);
    let bytes = std::fs::read(EXAMPLE_ETL).expect("fixture");
    let digest = store.push_artifact(&bytes, None).await.expect("push").digest;
    let run = new_run(&weft::model::new_id(), digest);
    store.create_run(&run).await.expect("create");
    let report = run_recorded(engine(), &flow, &store, &run, Limits::default(), None).await.expect("recorded");
    assert_eq!(report.outcome, FlowRunOutcome::Completed { result: json!([10, 20, 30]) });

    let states: Vec<State> = store.states(&run.id).await.expect("states").into_iter().map(|(_, r)| r.state).collect();
    assert_eq!(states, [State::Running, State::Completed]);
    assert_eq!(store.read_result(&run.id).await.expect("result"), Some(json!([10, 20, 30])));
    let (logs, _) = store.read_logs(&run.id, None).await.expect("logs");
    assert!(
        logs.iter().any(|l| l.message == "Here's your data: [10, 20, 30]" && l.task_name.as_deref() == Some("load"))
    );
    let tasks = store.task_runs(&run.id).await.expect("tasks");
    let names: Vec<(&str, State, u32)> = tasks.iter().map(|t| (t.name.as_str(), t.state, t.attempts)).collect();
    assert_eq!(
        names,
        [("extract", State::Completed, 1), ("transform", State::Completed, 1), ("load", State::Completed, 1)]
    );

    let again = run_recorded(engine(), &flow, &store, &run, Limits::default(), None).await.expect_err("ran once");
    assert!(again.to_string().contains("cannot start: it is Completed already"), "{again}");
}

/// A flow pushed to the store runs from its URL, and its records outlive the
/// process that ran it.
async fn the_cli_pushes_runs_lists_and_shows(backend: &Backend) {
    let home = tempfile::tempdir().expect("tempdir");
    let cli = |args: &[&str]| {
        weft().env("WEFT_HOME", home.path()).args(args).args(backend.args()).output().expect("weft runs")
    };
    let pushed = cli(&["push", EXAMPLE_ETL, "--name", "etl"]);
    assert_eq!(pushed.status.code(), Some(0), "{}", stderr(&pushed));
    let out = stdout(&pushed);
    let mut lines = out.lines();
    let url = lines.next().expect("url line").to_owned();
    let digest = lines.next().expect("digest line").to_owned();
    assert!(url.starts_with(&format!("{}/artifacts/sha256/", backend.url)), "{url}");
    assert!(digest.starts_with("sha256:") && url.ends_with(&format!("{}.wasm", &digest[7..])), "{digest} {url}");

    for flow in [url.as_str(), digest.as_str(), "etl"] {
        let ran = cli(&["run", flow]);
        assert_eq!(ran.status.code(), Some(0), "weft run {flow}: {}", stderr(&ran));
        assert_eq!(stdout(&ran), "[10,20,30]\n");
    }

    let listed = cli(&["runs", "ls", "--output", "json"]);
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    let runs: Vec<Value> = serde_json::from_str(&stdout(&listed)).expect("JSON list");
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r["flow_name"] == "etl" && r["state"] == "Completed"), "{runs:?}");
    let id = runs[0]["id"].as_str().expect("id").to_owned();

    let table = cli(&["runs", "ls", "--state", "completed", "--limit", "2"]);
    let text = stdout(&table);
    assert_eq!(text.lines().count(), 3, "header and two runs: {text}");
    assert!(text.lines().next().is_some_and(|h| h.starts_with("ID") && h.contains("STATE")), "{text}");

    let shown = cli(&["runs", "show", &id, "--output", "json"]);
    let shown: Value = serde_json::from_str(&stdout(&shown)).expect("JSON show");
    assert_eq!(shown["result"], json!([10, 20, 30]));
    assert_eq!(shown["task_runs"].as_array().map(Vec::len), Some(3));
    assert_eq!(shown["states"][1]["state"], "Completed");

    let logs = cli(&["logs", &id]);
    assert_eq!(logs.status.code(), Some(0), "{}", stderr(&logs));
    assert!(stdout(&logs).contains("Here's your data: [10, 20, 30]"), "{}", stdout(&logs));
}

/// `weft logs --follow` prints lines of a live run as they are written and
/// ends when the run does.
async fn logs_follow_a_live_run(backend: &Backend) {
    let home = tempfile::tempdir().expect("tempdir");
    let mut running = weft()
        .env("WEFT_HOME", home.path())
        .args(["run", SLOW, "-p", "ticks=8", "-p", "interval_ms=400"])
        .args(backend.args())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft run");
    let store = backend.open();
    let id = loop {
        if let Some(id) = store.run_ids().await.expect("list").pop() {
            break id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut follow = weft()
        .env("WEFT_HOME", home.path())
        .args(["logs", &id, "--follow"])
        .args(backend.args())
        .stdout(Stdio::piped())
        .spawn()
        .expect("weft logs --follow");
    let followed = follow.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(followed).lines().map_while(Result::ok).collect::<Vec<String>>()
    });
    // While the follower reads, check that it saw a tick before the run ended.
    let mut saw_live = false;
    for _ in 0..200 {
        if running.try_wait().expect("poll").is_some() {
            break;
        }
        let (lines, _) = store.read_logs(&id, None).await.expect("read");
        saw_live |= lines.iter().any(|l| l.message == "tick 2");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = running.wait().expect("wait");
    assert!(status.success());
    assert!(saw_live, "log lines reached the store while the run was live");
    let seen = reader.join().expect("reader");
    assert!(follow.wait().expect("follow exits").success(), "weft logs --follow ends when the run does");
    let ticks: Vec<&String> = seen.iter().filter(|l| l.contains("| tick ")).collect();
    assert_eq!(ticks.len(), 8, "follow printed every tick, then ended: {seen:?}");
    assert!(seen.last().is_some_and(|l| l.contains("Finished in state Completed")), "{seen:?}");
}

/// One test per scenario and backend.
/// A run id at `ms` milliseconds after 2026-11-01, as weft makes them.
fn id_at(ms: u64) -> String {
    let base = 1_793_491_200_000u64;
    ulid::Ulid::from_parts(base + ms, u128::from(fastrand::u64(..))).to_string()
}

async fn the_newest_runs_come_from_the_index_and_older_ones_from_the_listing(backend: &Backend) {
    let store = backend.open();
    let digest = Digest::of(b"index");
    // Runs from before the index: run.json only, as older weft wrote them.
    let mut all: Vec<String> = (0..4).map(|i| id_at(i * 1_000)).collect();
    for id in &all {
        let json = serde_json::to_vec(&new_run(id, digest.clone())).expect("json");
        store.put(&format!("runs/{id}/run.json"), json.into()).await.expect("old run");
    }
    // Indexed runs over every window of the trie: within a second, across
    // seconds, across 33 s windows, across days.
    for ms in [10_000, 10_200, 10_400, 12_000, 45_000, 50_000, 3_600_000, 90_000_000, 90_000_001, 400_000_000] {
        let id = id_at(ms);
        store.create_run(&new_run(&id, digest.clone())).await.expect("create");
        all.push(id);
    }
    all.sort();
    all.reverse();
    assert_eq!(store.newest_run_ids(None, 100).await.expect("all"), all, "every run, once, newest first");
    for page in [1, 3, 4, 5] {
        let mut paged = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let ids = store.newest_run_ids(before.as_deref(), page).await.expect("page");
            assert!(ids.len() <= page);
            paged.extend(ids.iter().cloned());
            match ids.last() {
                Some(last) if ids.len() == page => before = Some(last.clone()),
                _ => break,
            }
        }
        assert_eq!(paged, all, "pages of {page}");
    }
    assert_eq!(store.newest_run_ids(Some(&all[2]), 2).await.expect("before"), all[3..5]);
}

macro_rules! on_backends {
    ([$($backend:ident),*] => $scenarios:tt) => {
        $( on_backends!(@one $backend $scenarios); )*
    };
    (@one $backend:ident [$($scenario:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(&super::Backend::$backend()).await;
                }
            )*
        }
    };
}

mod store_suite {
    use super::*;

    on_backends!([file, memory, s3, gcs, azure] => [
        push_is_content_addressed_and_deduplicated,
        a_tampered_component_is_refused_with_both_digests,
        the_state_history_is_append_only,
        concurrent_state_writers_have_exactly_one_winner,
        log_chunks_read_back_in_order,
        a_recorded_run_leaves_states_logs_tasks_and_result,
        the_newest_runs_come_from_the_index_and_older_ones_from_the_listing,
    ]);
}

mod cli_suite {
    use super::*;

    on_backends!([file, s3, gcs, azure] => [the_cli_pushes_runs_lists_and_shows, logs_follow_a_live_run]);
}

#[test]
fn unknown_store_options_and_bad_urls_get_one_clear_line() {
    let error = Store::open("s3://b/p", &[("endpiont".into(), "http://x".into())]).expect_err("typo").to_string();
    assert!(error.starts_with("store `s3://b/p`: option `endpiont`: not an option of S3 stores"), "{error}");
    let output = weft().args(["runs", "ls", "--store", "ftp://x/y"]).output().expect("weft");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("store URL `ftp://x/y` is not usable"), "{}", stderr(&output));
}

/// fake-gcs-server cannot check the precondition on the kind of upload that
/// object_store sends (the proxy translates it to one it checks), so this
/// proves, from the requests the proxy saw, that every create-only write
/// weft makes carries `x-goog-if-generation-match: 0`, which real GCS honours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_create_only_write_to_gcs_carries_the_generation_precondition() {
    let backend = Backend::gcs();
    a_recorded_run_leaves_states_logs_tasks_and_result(&backend).await;
    let prefix = backend.url.trim_start_matches(&format!("gs://{BUCKET}/")).to_owned();
    let record = emulators::gcs().record.as_ref().expect("the proxy records requests");
    let requests: Vec<Value> = std::fs::read_to_string(record)
        .expect("record file")
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let decode = |path: &str| path.replace("%2F", "/").replace("%2E", ".").replace("%2D", "-");
    let puts: Vec<(String, Option<String>)> = requests
        .iter()
        .filter(|r| r["method"] == "PUT")
        .map(|r| {
            (
                decode(r["path"].as_str().unwrap_or_default()),
                r["headers"]["x-goog-if-generation-match"].as_str().map(str::to_owned),
            )
        })
        .filter(|(path, _)| path.contains(&prefix))
        .collect();
    let created: Vec<&(String, Option<String>)> = puts
        .iter()
        .filter(|(p, _)| {
            p.contains("/states/") || p.contains("/logs/") || p.contains("/tasks/") || p.ends_with("run.json")
        })
        .collect();
    assert!(created.len() >= 5, "states, logs, tasks and run.json were written: {puts:?}");
    for (path, precondition) in created {
        assert_eq!(precondition.as_deref(), Some("0"), "{path} was written without x-goog-if-generation-match: 0");
    }
    let result = puts.iter().find(|(p, _)| p.ends_with("result.json")).expect("result written");
    assert_eq!(result.1, None, "the result is a plain overwrite");
}

/// What weft does when the store is missing, refuses, or goes away.
pub(crate) mod failures {
    use super::*;
    use crate::faults::Link;

    /// An S3 backend reached through a link the test can cut, with short
    /// retries so that failures surface in seconds.
    pub(crate) fn s3_through(link: &Link) -> Backend {
        let mut backend = Backend::s3();
        for (key, value) in &mut backend.options {
            if key == "endpoint" {
                value.clone_from(&link.endpoint);
            }
        }
        backend.options.push(("retry_timeout".into(), "1s".into()));
        backend
    }

    #[test]
    fn an_unreachable_store_fails_the_command_with_one_clear_line() {
        let link = Link::to(&emulators::s3().endpoint);
        link.cut();
        let backend = s3_through(&link);
        for args in [vec!["runs", "ls"], vec!["run", EXAMPLE_HELLO]] {
            let output = weft().args(&args).args(backend.args()).output().expect("weft");
            assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
            let err = stderr(&output);
            assert!(err.starts_with(&format!("error: store `{}` is unreachable: ", backend.url)), "{err}");
            assert!(err.contains(&format!("could not connect to {}", link.endpoint)), "{err}");
            assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
            assert!(!err.contains("Beginning flow run"), "nothing ran: {err}");
        }
    }

    #[test]
    fn a_missing_bucket_and_refused_credentials_are_named() {
        let mut backend = Backend::s3();
        backend.url = format!("s3://no-such-bucket-{}/weft", unique());
        let output = weft().args(["runs", "ls"]).args(backend.args()).output().expect("weft");
        assert_eq!(output.status.code(), Some(2));
        assert!(stderr(&output).contains("the bucket or container does not exist"), "{}", stderr(&output));

        let mut backend = Backend::azure();
        for (key, value) in &mut backend.options {
            if key == "access_key" {
                *value = "d3Jvbmcga2V5".into();
            }
        }
        let output = weft().args(["runs", "ls"]).args(backend.args()).output().expect("weft");
        assert_eq!(output.status.code(), Some(2));
        let err = stderr(&output);
        assert!(err.contains("access denied"), "{err}");
        assert!(err.contains("AZURE_STORAGE_ACCOUNT_KEY"), "says which credentials to check: {err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn log_lines_written_while_the_store_is_away_are_kept_and_written_later() {
        let link = Link::to(&emulators::s3().endpoint);
        let store = s3_through(&link).open();
        let id = weft::model::new_id();
        let recorder = StoreRecorder::start(store.clone(), id.clone(), Duration::from_secs(3600));
        recorder.log(line("before"));
        recorder.flush().await.expect("flush while up");
        link.cut();
        recorder.log(line("during"));
        assert!(recorder.flush().await.is_err(), "the store is away");
        link.restore();
        recorder.log(line("after"));
        recorder.finish().await.expect("flush once back");
        let (lines, _) = store.read_logs(&id, None).await.expect("read");
        let messages: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(messages, ["before", "during", "after"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_whose_end_cannot_be_recorded_is_reported_loudly_and_never_completed() {
        let link = Link::to(&emulators::s3().endpoint);
        let backend = s3_through(&link);
        let args = [SLOW, "-p", "ticks=6", "-p", "interval_ms=300", "--record-patience", "3s"];
        let (running, id) = crate::stops::started_weft_run(&backend, &args).await;
        let store = backend.open();
        link.cut();
        let output = running.wait_with_output().expect("wait");
        link.restore();
        assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
        let err = stderr(&output);
        assert!(err.contains(&format!("flow run `{id}` ended Completed but that could not be recorded")), "{err}");
        assert_eq!(stdout(&output), "", "no result is printed for an unrecorded run");
        let state = store.latest_state(&id).await.expect("state").map(|(_, r)| r.state);
        assert_eq!(state, Some(State::Running), "the store never shows it Completed");
    }

    /// A store away for a moment when the run ends is waited for: the run
    /// is recorded Completed, with its result, once the store is back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_runs_end_waits_for_a_store_that_is_away_for_a_while() {
        let link = Link::to(&emulators::s3().endpoint);
        let backend = s3_through(&link);
        let args = [SLOW, "-p", "ticks=4", "-p", "interval_ms=250"];
        let (running, id) = crate::stops::started_weft_run(&backend, &args).await;
        let store = backend.open();
        link.cut();
        // The flow ends meanwhile; its end is retried.
        tokio::time::sleep(Duration::from_secs(5)).await;
        link.restore();
        let output = running.wait_with_output().expect("wait");
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(stdout(&output).trim(), "4");
        let state = store.latest_state(&id).await.expect("state").map(|(_, r)| r.state);
        assert_eq!(state, Some(State::Completed));
        assert_eq!(store.read_result(&id).await.expect("result"), Some(serde_json::json!(4)));
    }
}
