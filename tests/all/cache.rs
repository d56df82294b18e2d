//! Task results cached in the store: reused by later runs and by other
//! store clients, until they expire; two runs racing on one key both finish
//! and one result is kept.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use weft::engine::TaskComponents;
use weft::model::{CachePolicy, Digest, FlowRunOutcome, TaskPolicy};
use weft::runner::{FlowRunReport, FlowRunRequest, run_flow};

use crate::fixtures::{CACHED, FAN_OUT, WORKER_TASK};
use crate::store::Backend;
use crate::{Captured, engine, load, stderr, stdout, weft};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_component_tasks_result_is_reused_by_a_later_run_in_another_process() {
    let backend = Backend::file();
    let run = || {
        let output = weft().args(["run", CACHED]).args(backend.args()).output().expect("weft run");
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        serde_json::from_str::<Value>(&stdout(&output)).expect("JSON")
    };
    assert_eq!(run(), json!({"items": ["item 1", "item 1", "item 2"], "body_runs": 2}));
    assert_eq!(
        run(),
        json!({"items": ["item 1", "item 1", "item 2"], "body_runs": 0}),
        "every result came from the store"
    );

    let store = backend.open();
    let id = store.run_ids().await.expect("runs").pop().expect("the second run");
    let cached: Vec<bool> = store.task_runs(&id).await.expect("task runs").iter().map(|t| t.cached).collect();
    assert_eq!(cached, [true, true, true]);
    let shown = weft().args(["runs", "show", &id]).args(backend.args()).output().expect("runs show");
    assert!(stdout(&shown).contains("Completed (cached)"), "{}", stdout(&shown));
}

/// Runs `flow` (with `args`) three times against one store: its task keeps
/// a cached result for 4 s, is called twice per run, and says which flow
/// run made its result. Asserts that a run reuses its own result, that the
/// result expires, and that the next result replaces the expired one.
pub(crate) fn assert_cached_result_expires(flow: &str, args: &[&str]) {
    let backend = Backend::file();
    let run = || {
        let output = weft().args(["run", flow]).args(args).args(backend.args()).output().expect("weft run");
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let result = serde_json::from_str::<Value>(&stdout(&output)).expect("JSON");
        let items = result["items"].as_array().expect("items").clone();
        assert_eq!(items[0], items[1], "the second call in a run reuses the first's result: {result}");
        items[0].as_str().expect("text").to_owned()
    };
    let made = run();
    std::thread::sleep(Duration::from_millis(4200));
    let remade = run();
    assert_ne!(remade, made, "the expired result was not used");
    assert_eq!(run(), remade, "the new result replaced the expired one");
}

#[test]
fn an_in_component_tasks_cached_result_expires_and_is_replaced() {
    assert_cached_result_expires(CACHED, &["-p", "expiring=true"]);
}

/// A run of the fan-out flow calling the worker task component with
/// `input`, its results cached in `backend` as `policy` says.
async fn cached_call(backend: &Backend, policy: &TaskPolicy, input: Value) -> (FlowRunReport, Value) {
    let bytes = std::fs::read(WORKER_TASK).expect("fixture");
    let digest = Digest::of(&bytes);
    let mut tasks = TaskComponents::new();
    tasks.insert_bytes("worker", engine(), bytes.into(), digest, WORKER_TASK.into(), policy.clone(), None);
    let flow = load(FAN_OUT);
    let jobs = json!([{"task": "worker", "input": input}]);
    let mut request = FlowRunRequest::new(&flow, json!({"jobs": jobs})).expect("parameters");
    request.tasks = Arc::new(tasks);
    // A store client of its own, as another process would have.
    request.cache = Some(Arc::new(backend.open()));
    let report = run_flow(engine(), &flow, request, Arc::new(Captured::default())).await;
    let FlowRunOutcome::Completed { result } = &report.outcome else { panic!("{:?}", report.outcome) };
    let outcome = result[0]["ok"].clone();
    assert!(outcome.is_object(), "{result}");
    (report, outcome)
}

fn caching(expiration: Duration) -> TaskPolicy {
    TaskPolicy { cache: Some(CachePolicy { expiration: Some(expiration) }), ..TaskPolicy::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_components_result_is_cached_by_input_until_it_expires() {
    let backend = Backend::file();
    let hour = caching(Duration::from_secs(3600));
    let (first, made) = cached_call(&backend, &hour, json!({"label": "a"})).await;
    assert!(!first.task_runs[0].cached);
    let (second, reused) = cached_call(&backend, &hour, json!({"label": "a"})).await;
    assert!(second.task_runs[0].cached, "the same input to the same component is a cache hit");
    assert_eq!(second.task_runs[0].attempts, 0);
    assert_eq!(reused, made, "the result is the first run's, task run id and all");
    assert_eq!(reused["task_run_id"], first.task_runs[0].id.as_str());

    let (other, _) = cached_call(&backend, &hour, json!({"label": "b"})).await;
    assert!(!other.task_runs[0].cached, "another input is another key");
    let (uncached, _) = cached_call(&backend, &TaskPolicy::default(), json!({"label": "a"})).await;
    assert!(!uncached.task_runs[0].cached, "without `cache`, a task component always runs");

    // A result kept for 300 ms is not used after that, and the next result
    // replaces it.
    let (_, short_lived) = cached_call(&backend, &caching(Duration::from_millis(300)), json!({"label": "c"})).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (expired, fresh) = cached_call(&backend, &hour, json!({"label": "c"})).await;
    assert!(!expired.task_runs[0].cached, "an expired result is not used");
    assert_ne!(fresh, short_lived);
    let (again, replaced) = cached_call(&backend, &hour, json!({"label": "c"})).await;
    assert!(again.task_runs[0].cached, "the expired entry was replaced by the new result");
    assert_eq!(replaced, fresh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_racing_on_one_key_both_finish_and_one_result_is_kept() {
    let backend = Backend::file();
    let policy = TaskPolicy { cache: Some(CachePolicy::default()), ..TaskPolicy::default() };
    let input = json!({"label": "race", "sleep_ms": 1500});
    let (a, b) =
        tokio::join!(cached_call(&backend, &policy, input.clone()), cached_call(&backend, &policy, input.clone()));
    assert!(!a.0.task_runs[0].cached && !b.0.task_runs[0].cached, "both ran: neither had a result to reuse");
    let (_, kept) = cached_call(&backend, &policy, input).await;
    assert!(kept == a.1 || kept == b.1, "the kept result is one of the two: {kept}");
    let root = std::path::PathBuf::from(backend.url.trim_start_matches("file://"));
    let entries = std::fs::read_dir(root.join("cache")).expect("cache folder").count();
    assert_eq!(entries, 1);
}
