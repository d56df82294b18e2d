//! Task components: called by name, each task run in a sandbox of its own,
//! submitted ones concurrently within the run's task concurrency; failures
//! come back to the flow as errors it can handle.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use weft::engine::{Limits, TaskComponents};
use weft::model::{Backoff, Digest, FlowRunOutcome, LogLine, LogSource, State, TaskPolicy, TaskRun};
use weft::runner::{FlowRunReport, FlowRunRequest, run_flow};

use crate::agent::{AgentProcess, deploy, run_and_watch};
use crate::fixtures::{FAN_OUT, PARAMS, WORKER_TASK};
use crate::store::Backend;
use crate::{Captured, engine, load, stderr, stdout, weft, weft_output};

/// Registers fixtures as task components: (name, fixture, policy).
pub(crate) fn components(tasks: &[(&str, &str, TaskPolicy)]) -> TaskComponents {
    let mut components = TaskComponents::new();
    for (name, path, policy) in tasks {
        let bytes = std::fs::read(path).expect("fixture was built");
        let digest = Digest::of(&bytes);
        components.insert_bytes(*name, engine(), bytes.into(), digest, path.to_string(), policy.clone(), None);
    }
    components
}

fn worker(name: &str) -> (&str, &'static str, TaskPolicy) {
    (name, WORKER_TASK, TaskPolicy::default())
}

/// Runs the fan-out flow over `jobs` with the given task components.
pub(crate) async fn fan_out(
    jobs: Value,
    mode: &str,
    tasks: TaskComponents,
    concurrency: Option<usize>,
    customize: impl FnOnce(&mut FlowRunRequest),
) -> (FlowRunReport, Vec<Value>, Vec<LogLine>) {
    let flow = load(FAN_OUT);
    let mut request = FlowRunRequest::new(&flow, json!({"jobs": jobs, "mode": mode})).expect("parameters are valid");
    request.tasks = Arc::new(tasks);
    request.task_concurrency = concurrency;
    customize(&mut request);
    let logs = Arc::new(Captured::default());
    let report = run_flow(engine(), &flow, request, logs.clone()).await;
    let outcomes = match &report.outcome {
        FlowRunOutcome::Completed { result } => result.as_array().cloned().unwrap_or_default(),
        other => panic!("the flow did not complete: {other:?}"),
    };
    (report, outcomes, logs.lines())
}

/// The most task runs that were running at one instant, from their recorded
/// start and end times (an end and a start at the same instant do not
/// overlap).
fn most_in_flight(runs: &[TaskRun]) -> usize {
    let mut edges: Vec<(SystemTime, i32)> = Vec::new();
    for run in runs {
        edges.push((run.started, 1));
        edges.push((run.ended.expect("every task run ended"), -1));
    }
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, delta) in edges {
        now += delta;
        most = most.max(now);
    }
    most as usize
}

fn sleepers(count: usize, ms: u64) -> Value {
    (0..count).map(|i| json!({"task": "worker", "input": {"label": format!("job {i}"), "sleep_ms": ms}})).collect()
}

#[tokio::test]
async fn submitted_tasks_run_at_the_same_time() {
    let (report, outcomes, _) =
        fan_out(sleepers(8, 500), "submit", components(&[worker("worker")]), Some(8), |_| {}).await;
    assert!(outcomes.iter().all(|o| o["ok"].is_object()), "{outcomes:?}");
    assert_eq!(report.task_runs.len(), 8);
    assert_eq!(most_in_flight(&report.task_runs), 8, "all eight sleeps overlapped");
}

#[tokio::test]
async fn called_tasks_run_one_after_another() {
    let (report, outcomes, _) =
        fan_out(sleepers(3, 50), "call", components(&[worker("worker")]), Some(8), |_| {}).await;
    assert!(outcomes.iter().all(|o| o["ok"].is_object()), "{outcomes:?}");
    assert_eq!(most_in_flight(&report.task_runs), 1);
}

#[tokio::test]
async fn a_task_concurrency_of_two_never_has_three_in_flight() {
    let (report, outcomes, _) =
        fan_out(sleepers(6, 300), "submit", components(&[worker("worker")]), Some(2), |_| {}).await;
    assert!(outcomes.iter().all(|o| o["ok"].is_object()), "{outcomes:?}");
    assert_eq!(report.task_runs.len(), 6);
    assert_eq!(most_in_flight(&report.task_runs), 2);
}

#[tokio::test]
async fn every_task_run_has_a_fresh_sandbox_a_record_and_its_own_log_lines() {
    let jobs: Value = ["a", "b", "c"].iter().map(|l| json!({"task": "worker", "input": {"label": l}})).collect();
    let (report, outcomes, lines) = fan_out(jobs, "submit", components(&[worker("worker")]), None, |_| {}).await;
    let digest = Digest::of(&std::fs::read(WORKER_TASK).expect("fixture"));
    for (outcome, label) in outcomes.iter().zip(["a", "b", "c"]) {
        let ok = &outcome["ok"];
        assert_eq!(ok["label"], label);
        assert_eq!(ok["calls"], 1, "a fresh instance for every task run: {ok}");
        assert_eq!(ok["flow_run_id"], report.flow_run_id.as_str());
        let id = ok["task_run_id"].as_str().expect("the context names the task run");
        let run = report.task_runs.iter().find(|r| r.id == id).expect("the task run is recorded");
        assert_eq!((run.name.as_str(), run.state, run.attempts), ("worker", State::Completed, 1));
        assert_eq!(run.component.as_ref(), Some(&digest));
        assert!(run.ended.is_some_and(|ended| ended >= run.started));
        let line = lines.iter().find(|l| l.message == format!("working on {label}")).expect("the task's line");
        assert_eq!(line.task_run_id.as_deref(), Some(id));
        assert_eq!(line.task_name.as_deref(), Some("worker"));
        assert_eq!(line.source, LogSource::Flow);
    }
}

#[tokio::test]
async fn failures_come_back_to_the_flow_and_spare_their_siblings() {
    let short = TaskPolicy { timeout: Some(Duration::from_millis(300)), ..TaskPolicy::default() };
    let small = TaskPolicy { memory: Some(32 << 20), ..TaskPolicy::default() };
    let tasks = components(&[
        worker("worker"),
        ("short", WORKER_TASK, short),
        ("small", WORKER_TASK, small),
        ("not-a-task", PARAMS, TaskPolicy::default()),
    ]);
    let jobs = json!([
        {"task": "worker", "input": {"label": "fine", "sleep_ms": 200}},
        {"task": "worker", "input": {"label": "p", "panic": true}},
        {"task": "short", "input": {"label": "s", "spin": true}},
        {"task": "short", "input": {"label": "z", "sleep_ms": 5000}},
        {"task": "small", "input": {"label": "m", "allocate_mib": 64}},
        {"task": "worker", "input": {"label": "f", "fail": "bad input", "fatal": true}},
        {"task": "worker", "input": {"nonsense": 1}},
        {"task": "wroker", "input": {}},
        {"task": "not-a-task", "input": {}},
    ]);
    let (report, outcomes, _) = fan_out(jobs, "submit", tasks, Some(4), |_| {}).await;
    assert_eq!(outcomes[0]["ok"]["label"], "fine", "a sibling of every failure below completed");
    let error = |i: usize| outcomes[i]["error"].as_str().unwrap_or_else(|| panic!("{}", outcomes[i])).to_owned();
    assert!(error(1).starts_with("task `worker` panicked at src/bin/worker_task.rs"), "{}", error(1));
    assert!(error(1).ends_with("p panicked on purpose"), "{}", error(1));
    assert_eq!(error(2), "task `short` exceeded its 300ms timeout");
    assert_eq!(error(3), "task `short` exceeded its 300ms timeout", "a task waiting past its timeout is stopped too");
    assert_eq!(error(4), "task `small` tried to grow memory past 32 MiB");
    assert_eq!((error(5).as_str(), &outcomes[5]["retryable"]), ("bad input", &json!(false)));
    assert!(error(6).starts_with("invalid task input"), "{}", error(6));
    assert!(error(6).contains("unknown field `nonsense`"), "{}", error(6));
    assert!(error(7).starts_with("no task component named `wroker` in this flow run"), "{}", error(7));
    assert!(error(7).contains("Did you mean `worker`?"), "{}", error(7));
    assert!(error(7).contains("--task wroker=PATH.wasm"), "{}", error(7));
    assert!(error(8).starts_with("task `not-a-task` cannot run:"), "{}", error(8));
    assert!(error(8).contains("is a flow"), "{}", error(8));

    let states: Vec<(&str, State)> = report.task_runs.iter().map(|r| (r.name.as_str(), r.state)).collect();
    assert_eq!(states.iter().filter(|(_, s)| *s == State::Failed).count(), 7, "{states:?}");
    assert_eq!(report.task_runs.len(), 8, "an unknown name makes no task run: {states:?}");
}

#[tokio::test]
async fn retryable_failures_are_retried_with_the_tasks_delays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let counter = dir.path().join("count").display().to_string();
    let flaky = TaskPolicy {
        retries: 3,
        retry_delay: vec![Duration::from_millis(10), Duration::from_millis(20)],
        ..TaskPolicy::default()
    };
    let backoff = Backoff { initial: Duration::from_millis(10), factor: 2.0, max: Duration::from_secs(1), jitter: 0.0 };
    let doomed = TaskPolicy { retries: 2, retry_backoff: Some(backoff), ..TaskPolicy::default() };
    let fatal = TaskPolicy { retries: 5, ..TaskPolicy::default() };
    let tasks =
        components(&[("flaky", WORKER_TASK, flaky), ("doomed", WORKER_TASK, doomed), ("fatal", WORKER_TASK, fatal)]);
    let jobs = json!([
        {"task": "flaky", "input": {"label": "flaky", "counter": counter, "fail_until": 3}},
        {"task": "doomed", "input": {"label": "doomed", "fail": "service unavailable"}},
        {"task": "fatal", "input": {"label": "fatal", "fail": "bad input", "fatal": true}},
    ]);
    let grant = (dir.path().to_path_buf(), dir.path().display().to_string(), false);
    let (report, outcomes, lines) = fan_out(jobs, "call", tasks, None, |request| request.grants.dirs.push(grant)).await;
    assert_eq!(outcomes[0]["ok"]["label"], "flaky", "{outcomes:?}");
    assert_eq!(outcomes[1]["error"], "service unavailable");
    assert_eq!(outcomes[2]["error"], "bad input");
    let attempts: Vec<(&str, State, u32)> =
        report.task_runs.iter().map(|r| (r.name.as_str(), r.state, r.attempts)).collect();
    assert_eq!(attempts, [("flaky", State::Completed, 3), ("doomed", State::Failed, 3), ("fatal", State::Failed, 1)]);
    assert_eq!(
        crate::weft_warnings(&lines),
        [
            "Task run `flaky` attempt 1 of 4 failed: flaky: attempt 1 failed; retrying in 10ms",
            "Task run `flaky` attempt 2 of 4 failed: flaky: attempt 2 failed; retrying in 20ms",
            "Task run `doomed` attempt 1 of 3 failed: service unavailable; retrying in 10ms",
            "Task run `doomed` attempt 2 of 3 failed: service unavailable; retrying in 20ms",
        ]
    );
}

#[tokio::test]
async fn tasks_the_flow_does_not_wait_for_are_stopped_and_recorded_cancelled() {
    let flow = load(FAN_OUT);
    let mut request =
        FlowRunRequest::new(&flow, json!({"jobs": sleepers(3, 60_000), "abandon": true})).expect("parameters");
    request.tasks = Arc::new(components(&[worker("worker")]));
    request.limits = Limits::default();
    let report = run_flow(engine(), &flow, request, Arc::new(Captured::default())).await;
    assert_eq!(report.outcome, FlowRunOutcome::Completed { result: json!([]) });
    assert_eq!(report.task_runs.len(), 3);
    for run in &report.task_runs {
        assert_eq!(run.state, State::Cancelled, "{run:?}");
        assert_eq!(run.error.as_deref(), Some("the flow did not wait for it"));
    }
}

/// `weft runs show ID` on `backend`.
fn show(backend: &Backend, id: &str, json: bool) -> String {
    let mut command = weft();
    command.args(["runs", "show", id]).args(backend.args());
    if json {
        command.args(["--output", "json"]);
    }
    let output = command.output().expect("weft runs show");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weft_run_takes_task_components_by_name() {
    let backend = Backend::file();
    let jobs = json!([
        {"task": "worker", "input": {"label": "one"}},
        {"task": "worker", "input": {"label": "two", "fail": "no such city", "fatal": true}},
    ]);
    let output = weft()
        .args(["run", FAN_OUT, "--task", &format!("worker={WORKER_TASK}"), "--task-concurrency", "2"])
        .args(["-p", &format!("jobs={jobs}")])
        .args(backend.args())
        .output()
        .expect("weft run");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let result: Value = serde_json::from_str(&stdout(&output)).expect("JSON result");
    assert_eq!(result[0]["ok"]["label"], "one", "{result}");
    assert_eq!(result[1]["error"], "no such city", "{result}");
    assert!(stderr(&output).contains("fan_out/worker | working on one"), "{}", stderr(&output));

    let store = backend.open();
    let id = store.run_ids().await.expect("runs").pop().expect("one run");
    let run = store.read_run(&id).await.expect("read").expect("run");
    let digest = Digest::of(&std::fs::read(WORKER_TASK).expect("fixture"));
    assert_eq!(run.tasks["worker"].component, digest, "the run records its task components");
    assert_eq!(run.task_concurrency, Some(2));
    assert!(store.fetch_artifact(&digest).await.is_ok(), "the task component was pushed to the store");

    let table = show(&backend, &id, false);
    let short = format!("sha256:{}", &digest.hex()[..12]);
    let row = |label: &str| {
        table
            .lines()
            .find(|l| l.starts_with("worker") && l.contains(label))
            .unwrap_or_else(|| panic!("{table}"))
            .to_owned()
    };
    assert!(row("Completed").contains(&short), "{table}");
    assert!(row("Failed").ends_with("no such city"), "{table}");
    let shown: Value = serde_json::from_str(&show(&backend, &id, true)).expect("JSON");
    assert_eq!(shown["task_runs"].as_array().map(Vec::len), Some(2), "{shown}");
    assert_eq!(shown["task_runs"][0]["component"], digest.to_string());
}

#[test]
fn weft_run_refuses_a_task_that_is_not_a_task_component() {
    let output = weft_output(&["run", FAN_OUT, "--task", &format!("worker={PARAMS}"), "-p", "jobs=[]"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--task worker:"), "{}", stderr(&output));
    assert!(stderr(&output).contains("is a flow"), "{}", stderr(&output));
    assert!(stderr(&output).contains("#[weft::task_component]"), "{}", stderr(&output));

    let output = weft_output(&["run", FAN_OUT, "--task", "worker", "-p", "jobs=[]"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("write `--task summarize=summarize.wasm`"), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployments_task_components_run_through_the_agent_with_their_policy() {
    let backend = Backend::file();
    let jobs = json!([
        {"task": "worker", "input": {"label": "one", "sleep_ms": 100}},
        {"task": "worker", "input": {"label": "two", "sleep_ms": 100}},
        {"task": "worker", "input": {"label": "three", "sleep_ms": 100}},
        {"task": "flaky", "input": {"label": "flaky", "fail": "service unavailable"}},
    ]);
    let yaml = format!(
        "deployments:\n  - name: fan-out\n    flow: {FAN_OUT}\n    parameters: {{jobs: {jobs}}}\n    task_concurrency: 2\n    tasks:\n      worker: {WORKER_TASK}\n      flaky:\n        component: {WORKER_TASK}\n        retries: 2\n        retry_backoff: {{initial: 10ms, jitter: 0}}\n        timeout: 10s\n        memory: 64MiB\n"
    );
    let _dir = deploy(&backend, &yaml);
    let agent = AgentProcess::start(&backend, "tasks", &[]);
    let output = run_and_watch(&backend, "fan-out", &[]);
    let result: Value = serde_json::from_str(&stdout(&output)).expect("JSON result");
    assert_eq!(result[3]["error"], "service unavailable", "{result}");
    drop(agent);

    let store = backend.open();
    let id = store.run_ids().await.expect("runs").pop().expect("one run");
    let tasks = store.task_runs(&id).await.expect("task runs");
    let flaky = tasks.iter().find(|t| t.name == "flaky").expect("flaky ran");
    assert_eq!((flaky.state, flaky.attempts), (State::Failed, 3));
    let workers: Vec<TaskRun> = tasks.iter().filter(|t| t.name == "worker").cloned().collect();
    assert_eq!(workers.len(), 3);
    // A retried task gives its slot back between attempts, so its recorded
    // span (first start to last end) is not time in a slot: count the
    // single-attempt runs.
    assert!(most_in_flight(&workers) <= 2, "the deployment's task concurrency holds");
    let table = show(&backend, &id, false);
    assert!(table.lines().any(|l| l.starts_with("flaky") && l.contains("Failed (retried 2×)")), "{table}");
}

#[test]
fn deploy_refuses_a_flow_registered_as_a_task() {
    let backend = Backend::file();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("weft.yaml");
    let yaml = format!("deployments:\n  - name: fan-out\n    flow: {FAN_OUT}\n    tasks:\n      worker: {PARAMS}\n");
    std::fs::write(&file, yaml).expect("write");
    let output = weft().args(["deploy", "-f"]).arg(&file).args(backend.args()).output().expect("weft deploy");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let error = stderr(&output);
    assert!(error.contains("deployment `fan-out`"), "{error}");
    assert!(error.contains("task `worker`"), "{error}");
    assert!(error.contains("is a flow"), "{error}");
}
