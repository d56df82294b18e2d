//! Components built against an older `weft:flow` version keep running:
//! flows and task components of 0.1.0 get logging, context, task runs, the
//! cache and task calls, and call, or are called by, components of the
//! current version.

use std::sync::Arc;

use serde_json::{Value, json};
use weft::model::{FlowRunOutcome, Level, LogLine, LogSource, TaskPolicy};
use weft::runner::{FlowRunReport, FlowRunRequest, run_flow};

use crate::fixtures::{LEGACY_FLOW, LEGACY_TASK, WORKER_TASK};
use crate::store::Backend;
use crate::task_components::{components, fan_out};
use crate::{Captured, engine, load};

/// A run of the 0.1.0 flow with both task components registered, its task
/// results cached in `backend`.
async fn legacy_run(backend: &Backend, parameters: Value) -> (FlowRunReport, Value, Vec<LogLine>) {
    let flow = load(LEGACY_FLOW);
    let mut request = FlowRunRequest::new(&flow, parameters).expect("parameters");
    request.tasks = Arc::new(components(&[
        ("legacy", LEGACY_TASK, TaskPolicy::default()),
        ("worker", WORKER_TASK, TaskPolicy::default()),
    ]));
    request.cache = Some(Arc::new(backend.open()));
    let logs = Arc::new(Captured::default());
    let report = run_flow(engine(), &flow, request, logs.clone()).await;
    let FlowRunOutcome::Completed { result } = &report.outcome else { panic!("{:?}", report.outcome) };
    let result = result.clone();
    (report, result, logs.lines())
}

fn line<'a>(lines: &'a [LogLine], message: &str) -> &'a LogLine {
    lines.iter().find(|l| l.message == message).unwrap_or_else(|| panic!("no line `{message}` in {lines:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_built_against_0_1_0_logs_records_caches_and_calls_tasks_of_either_version() {
    let backend = Backend::file();
    let (first, result, lines) = legacy_run(&backend, json!({"key": "k", "task": "legacy"})).await;
    assert_eq!(result["doubled"], 42);
    assert_eq!(result["cached"], false);
    assert_eq!(result["flow"], "legacy_flow", "context reports the flow's name");
    let names: Vec<&str> = first.task_runs.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["double", "legacy"]);
    let legacy_task = &first.task_runs[1];
    assert_eq!(result["task"]["label"], "from a 0.1.0 flow");
    assert_eq!(result["task"]["task_run_id"], legacy_task.id.as_str(), "the 0.1.0 task saw its own task run");
    assert_eq!(result["task"]["flow_run_id"], first.flow_run_id.as_str());

    let start = line(&lines, "legacy flow legacy_flow starts");
    assert_eq!((start.level, start.source, start.task_name.as_deref()), (Level::Info, LogSource::Flow, None));
    let doubling = line(&lines, "doubling");
    assert_eq!(doubling.task_run_id.as_deref(), Some(first.task_runs[0].id.as_str()));
    assert_eq!(doubling.fields, [("of".to_owned(), "21".to_owned())]);
    let task_line = line(&lines, "legacy task runs");
    assert_eq!((task_line.level, task_line.task_run_id.as_deref()), (Level::Warn, Some(legacy_task.id.as_str())));

    // A later run reuses the cached result, and calls a current-version task.
    let (second, result, _) = legacy_run(&backend, json!({"key": "k", "task": "worker"})).await;
    assert_eq!(result["cached"], true, "the result cached by the first run came back through 0.1.0's begin");
    assert!(second.task_runs[0].cached);
    assert_eq!(result["task"]["label"], "from a 0.1.0 flow", "a 0.2.0 task component ran for the 0.1.0 flow");
    assert_eq!(result["task"]["calls"], 1);
}

#[tokio::test]
async fn a_current_flow_calls_a_task_component_built_against_0_1_0() {
    let jobs = json!([{"task": "legacy", "input": {"label": "from the current flow"}}]);
    let tasks = components(&[("legacy", LEGACY_TASK, TaskPolicy::default())]);
    let (report, outcomes, lines) = fan_out(jobs, "call", tasks, None, |_| {}).await;
    assert_eq!(outcomes[0]["ok"]["label"], "from the current flow", "{outcomes:?}");
    assert_eq!(outcomes[0]["ok"]["task_run_id"], report.task_runs[0].id.as_str());
    assert_eq!(line(&lines, "legacy task runs").task_name.as_deref(), Some("legacy"));
}
