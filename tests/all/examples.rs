//! The examples users copy: results, logs and task runs.

use serde_json::json;
use weft::engine::Limits;
use weft::model::{FlowRunOutcome, LogSource, State};

use crate::fixtures::{EXAMPLE_ETL, EXAMPLE_HELLO};
use crate::{messages, run};

#[tokio::test]
async fn hello_greets_marvin_by_default_and_anyone_by_name() {
    let (report, lines) = run(EXAMPLE_HELLO, json!({}), Limits::default()).await;
    assert_eq!(report.outcome, FlowRunOutcome::Completed { result: json!("Hello, Marvin!") });
    let greeting = lines.iter().find(|l| l.source == LogSource::Flow).expect("one flow log line");
    assert_eq!(greeting.message, "Hello, Marvin!");
    assert_eq!(greeting.fields, vec![("name".to_owned(), "Marvin".to_owned())]);
    assert_eq!(greeting.flow_run_id, report.flow_run_id);
    assert_eq!(lines.iter().filter(|l| l.source == LogSource::Flow).count(), 1);

    let (report, _) = run(EXAMPLE_HELLO, json!({"name": "Arthur"}), Limits::default()).await;
    assert_eq!(report.outcome, FlowRunOutcome::Completed { result: json!("Hello, Arthur!") });
    assert_eq!(report.flow_name, "hello");
}

#[tokio::test]
async fn etl_extracts_transforms_and_loads() {
    let (report, lines) = run(EXAMPLE_ETL, json!({}), Limits::default()).await;
    assert_eq!(report.outcome, FlowRunOutcome::Completed { result: json!([10, 20, 30]) });
    let names: Vec<&str> = report.task_runs.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["extract", "transform", "load"]);
    assert!(report.task_runs.iter().all(|t| t.state == State::Completed && t.attempts == 1 && t.ended.is_some()));

    let data = lines.iter().find(|l| l.message == "Here's your data: [10, 20, 30]").expect("load logs the data");
    assert_eq!(data.task_name.as_deref(), Some("load"));
    assert_eq!(data.task_run_id.as_deref(), Some(report.task_runs[2].id.as_str()));
    let all = messages(&lines);
    assert_eq!(
        all.first().copied(),
        Some(format!("Beginning flow run `{}` for flow `etl`", report.flow_run_id).as_str())
    );
    assert_eq!(all.last().copied(), Some("Finished in state Completed"));
}
