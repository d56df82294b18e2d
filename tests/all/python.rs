//! Python flows and task components, built with the Python SDK's build
//! helper (componentize-py, then `weft component annotate`) and run by the
//! real `weft` binary: typed parameters checked before anything runs, tasks
//! recorded, a Python task called from a Rust flow, the agent path.

use serde_json::{Value, json};
use weft::model::State;

use crate::agent::{AgentProcess, deploy, run_and_watch};
use crate::fixtures::FAN_OUT;
use crate::guests::{Language, guest_component};
use crate::store::Backend;
use crate::{stderr, stdout, weft};

fn etl_python() -> String {
    guest_component(Language::Python, "examples/etl-python/etl.py").display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_flow_runs_with_its_tasks_recorded() {
    let backend = Backend::file();
    let output = weft().args(["run", &etl_python(), "-p", "count=4"]).args(backend.args()).output().expect("weft run");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "[10,20,30,40]\n");
    let log = stderr(&output);
    assert!(log.contains("etl-python/extract | extracting source=inline"), "{log}");
    assert!(log.contains("etl-python/load | Here's your data: [10, 20, 30, 40] rows=4"), "{log}");

    let id = backend.open().run_ids().await.expect("runs").pop().expect("a run");
    let shown = weft().args(["runs", "show", &id, "--output", "json"]).args(backend.args()).output().expect("show");
    let shown: Value = serde_json::from_str(&stdout(&shown)).expect("JSON");
    let tasks: Vec<&str> =
        shown["task_runs"].as_array().expect("task runs").iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(tasks, ["extract", "transform", "load"]);
    assert_eq!(shown["run"]["flow_name"], "etl-python");
}

#[test]
fn a_python_flows_type_hints_check_parameters_before_it_runs() {
    let flow = etl_python();
    let output = weft().args(["run", &flow, "-p", "cuont=4"]).output().expect("weft run");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("parameter `cuont` is not a parameter of this flow"), "{}", stderr(&output));

    let output = weft().args(["run", &flow, "-p", "count=three"]).output().expect("weft run");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("parameter `count`"), "{}", stderr(&output));
    assert!(stderr(&output).contains("integer"), "{}", stderr(&output));

    let output = weft().args(["run", &flow, "-p", "source=ftp"]).output().expect("weft run");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("parameter `source`"), "{}", stderr(&output));

    let output = weft().args(["component", "inspect", &flow]).output().expect("weft component inspect");
    let info: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(info["world"], "flow");
    assert_eq!(info["flow_name"], "etl-python");
    let count = &info["parameters_schema"]["properties"]["count"];
    assert_eq!(count, &json!({"type": "integer", "default": 3, "description": "How many items to extract."}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_flow_runs_through_the_agent() {
    let backend = Backend::file();
    let _dir = deploy(&backend, &format!("deployments:\n  - name: etl-py\n    flow: {}\n", etl_python()));
    let agent = AgentProcess::start(&backend, "python", &[]);
    let output = run_and_watch(&backend, "etl-py", &["factor=2"]);
    assert_eq!(stdout(&output), "[2,4,6]\n");
    drop(agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_flow_calls_a_python_task_component() {
    let backend = Backend::file();
    let task = guest_component(Language::Python, "tests/programs/python/shout_task.py");
    let jobs = json!([
        {"task": "shout", "input": "hello"},
        {"task": "shout", "input": ""},
        {"task": "shout", "input": "world"},
    ]);
    let output = weft()
        .args(["run", FAN_OUT, "--task", &format!("shout={}", task.display())])
        .args(["-p", &format!("jobs={jobs}")])
        .args(backend.args())
        .output()
        .expect("weft run");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let result: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(result[0]["ok"], "HELLO!", "{result}");
    assert_eq!(result[1], json!({"error": "nothing to shout", "retryable": false}));
    assert_eq!(result[2]["ok"], "WORLD!", "{result}");
    assert!(stderr(&output).contains("fan_out/shout | shouting length=5"), "{}", stderr(&output));

    let store = backend.open();
    let id = store.run_ids().await.expect("runs").pop().expect("a run");
    let tasks = store.task_runs(&id).await.expect("task runs");
    let mut states: Vec<(&str, State)> = tasks.iter().map(|t| (t.name.as_str(), t.state)).collect();
    states.sort_by_key(|(_, state)| *state != State::Completed);
    assert_eq!(states, [("shout", State::Completed), ("shout", State::Completed), ("shout", State::Failed)]);
}

/// `@weft.task(retry_backoff=weft.backoff(...))`: exponential waits with
/// jitter, drawn by the SDK for each call.
#[test]
fn a_python_task_retries_with_exponential_backoff() {
    let flow = guest_component(Language::Python, "tests/programs/python/backoff.py");
    let output = weft().args(["run", flow.to_str().expect("utf-8")]).output().expect("weft run");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "\"ok on attempt 4\"\n");
    let log = stderr(&output);
    crate::assert_backoff(&crate::retry_waits_ms(log.lines()), &[20.0, 60.0, 100.0], 0.5);
}

/// `@weft.task(cache_key=..., cache_expiration="4s")`.
#[test]
fn a_python_tasks_cached_result_expires() {
    let flow = guest_component(Language::Python, "tests/programs/python/cached.py");
    crate::cache::assert_cached_result_expires(flow.to_str().expect("utf-8"), &[]);
}
