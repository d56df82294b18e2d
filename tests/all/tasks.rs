//! In-component tasks: recorded task runs, retries, caching, context, many
//! calls.

use serde_json::json;
use weft::engine::Limits;
use weft::model::{FlowRunOutcome, Level, LogSource, State};

use crate::fixtures::{CACHED, CONTEXT, MANY_TASKS, PRINTS, RETRIES};
use crate::run;

#[tokio::test]
async fn a_task_that_fails_twice_succeeds_on_its_third_attempt() {
    let (report, lines) = run(RETRIES, json!({}), Limits::default()).await;
    assert_eq!(
        report.outcome,
        FlowRunOutcome::Completed {
            result: json!({
                "value": "flaky: ok on attempt 3",
                "calls": 3,
                "fatal": "bad input: retrying cannot help",
                "backs_off": "still failing",
            })
        }
    );
    let flaky = &report.task_runs[0];
    assert_eq!((flaky.name.as_str(), flaky.state, flaky.attempts), ("flaky", State::Completed, 3));
    let warnings = crate::weft_warnings(&lines);
    assert_eq!(
        warnings[..2],
        [
            "Task run `flaky` attempt 1 failed: flaky: attempt 1 failed; retrying in 10ms",
            "Task run `flaky` attempt 2 failed: flaky: attempt 2 failed; retrying in 20ms",
        ]
    );
    // Exponential backoff: 20ms, 60ms, then 100ms (the max), each ±50%.
    crate::assert_backoff(&crate::retry_waits_ms(warnings[2..].iter().copied()), &[20.0, 60.0, 100.0], 0.5);
    let backs_off = &report.task_runs[2];
    assert_eq!((backs_off.name.as_str(), backs_off.state, backs_off.attempts), ("backs_off", State::Failed, 4));
    // A fatal error is not retried, whatever `retries` says.
    let fatal = &report.task_runs[1];
    assert_eq!((fatal.name.as_str(), fatal.state, fatal.attempts), ("fatal", State::Failed, 1));
    assert_eq!(fatal.error.as_deref(), Some("bad input: retrying cannot help"));
}

#[tokio::test]
async fn a_thousand_task_calls_are_a_thousand_task_runs() {
    let (report, _) = run(MANY_TASKS, json!({}), Limits::default()).await;
    let expected: u64 = (0..1000u64).map(|x| x * x).sum();
    assert_eq!(report.outcome, FlowRunOutcome::Completed { result: json!(expected) });
    assert_eq!(report.task_runs.len(), 1000);
    assert!(report.task_runs.iter().all(|t| t.name == "square" && t.state == State::Completed));
    let mut ids: Vec<&str> = report.task_runs.iter().map(|t| t.id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 1000, "every task run has its own id");
}

#[tokio::test]
async fn a_cache_key_returns_the_recorded_result_without_running_the_body() {
    let (report, _) = run(CACHED, json!({}), Limits::default()).await;
    assert_eq!(
        report.outcome,
        FlowRunOutcome::Completed { result: json!({"items": ["item 1", "item 1", "item 2"], "body_runs": 2}) }
    );
    let runs: Vec<(bool, u32, Option<&str>)> =
        report.task_runs.iter().map(|t| (t.cached, t.attempts, t.cache_key.as_deref())).collect();
    assert_eq!(runs, [(false, 1, Some("fetch-1")), (true, 0, Some("fetch-1")), (false, 1, Some("fetch-2"))]);
}

#[tokio::test]
async fn the_context_names_the_run_and_the_open_task() {
    let (report, _) = run(CONTEXT, json!({}), Limits::default()).await;
    let FlowRunOutcome::Completed { result } = &report.outcome else { panic!("{:?}", report.outcome) };
    assert_eq!(result["flow_run_id"], report.flow_run_id.as_str());
    assert_eq!(result["flow_name"], "context");
    assert_eq!(result["deployment"], serde_json::Value::Null);
    assert_eq!(result["attempt"], 1);
    assert_eq!(result["task_outside"], serde_json::Value::Null);
    assert_eq!(result["task_inside"], report.task_runs[0].id.as_str());
}

#[tokio::test]
async fn stdout_and_stderr_become_attributed_log_lines() {
    let (report, lines) = run(PRINTS, json!({}), Limits::default()).await;
    assert_eq!(report.outcome, FlowRunOutcome::Failed { reason: "done printing".into(), retryable: false });
    let printed: Vec<(LogSource, Level, &str, Option<&str>)> = lines
        .iter()
        .filter(|l| matches!(l.source, LogSource::Stdout | LogSource::Stderr))
        .map(|l| (l.source, l.level, l.message.as_str(), l.task_name.as_deref()))
        .collect();
    assert_eq!(
        printed,
        [
            (LogSource::Stdout, Level::Info, "to stdout", None),
            (LogSource::Stderr, Level::Warn, "to stderr", None),
            (LogSource::Stdout, Level::Info, "from a task", Some("shout")),
            (LogSource::Stdout, Level::Info, "no newline at the end", None),
        ]
    );
}
