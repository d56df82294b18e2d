//! A guest that panics, traps, loops, allocates without bound or overflows
//! its stack ends Failed with a reason a person understands, and the host
//! carries on.

use std::time::Duration;

use serde_json::json;
use weft::engine::Limits;
use weft::model::{FlowRunOutcome, State};

use crate::fixtures::{ALLOCATES, EXAMPLE_HELLO, LOOPS, OVERFLOWS, OVERFLOWS_MEMORY, PANICS, TASK_TIMEOUT, TRAPS};
use crate::run;

async fn failure(path: &str, limits: Limits) -> String {
    let (report, _) = run(path, json!({}), limits).await;
    match report.outcome {
        FlowRunOutcome::Failed { reason, .. } => reason,
        other => panic!("{path} must fail, got {other:?}"),
    }
}

/// The same engine still runs a healthy flow.
async fn host_still_works() {
    let (report, _) = run(EXAMPLE_HELLO, json!({}), Limits::default()).await;
    assert_eq!(report.outcome, FlowRunOutcome::Completed { result: json!("Hello, Marvin!") });
}

#[tokio::test]
async fn a_panic_is_reported_with_its_location_and_message() {
    let reason = failure(PANICS, Limits::default()).await;
    assert_eq!(reason, "panicked at src/bin/panics.rs:5:5: boom");
    host_still_works().await;
}

#[tokio::test]
async fn a_trap_is_reported_with_what_trapped() {
    let reason = failure(TRAPS, Limits::default()).await;
    assert!(reason.starts_with("trapped in `"), "{reason}");
    assert!(reason.ends_with(": wasm `unreachable` instruction executed"), "{reason}");
    host_still_works().await;
}

#[tokio::test]
async fn an_infinite_loop_ends_at_its_deadline() {
    let started = std::time::Instant::now();
    let limits = Limits { timeout: Duration::from_secs(1), ..Limits::default() };
    let reason = failure(LOOPS, limits).await;
    assert_eq!(reason, "exceeded its 1s deadline");
    assert!(started.elapsed() < Duration::from_secs(30), "the deadline must stop the guest");
    host_still_works().await;
}

#[tokio::test]
async fn unbounded_allocation_ends_at_the_memory_cap() {
    let limits = Limits { memory: 64 << 20, ..Limits::default() };
    let reason = failure(ALLOCATES, limits).await;
    assert_eq!(reason, "tried to grow memory past 64 MiB");
    host_still_works().await;
}

#[tokio::test]
async fn unbounded_recursion_overflows_the_stack() {
    let reason = failure(OVERFLOWS, Limits::default()).await;
    assert!(reason.starts_with("overflowed its stack"), "{reason}");
    assert!(reason.contains("overflows::depth"), "names the function: {reason}");
    host_still_works().await;
}

/// Rust keeps large locals on a stack in linear memory, which runs out with
/// an out-of-bounds access rather than wasm's stack overflow trap; it is
/// reported as the stack overflow it is.
#[tokio::test]
async fn recursion_that_runs_out_of_linear_memory_stack_is_a_stack_overflow() {
    let reason = failure(OVERFLOWS_MEMORY, Limits::default()).await;
    assert!(reason.starts_with("overflowed its stack in `overflows_memory::deep`"), "{reason}");
    assert!(reason.contains("nested calls of it"), "{reason}");
    host_still_works().await;
}

#[tokio::test]
async fn a_task_past_its_timeout_fails_the_run_and_the_task_run() {
    let (report, lines) = run(TASK_TIMEOUT, json!({}), Limits::default()).await;
    let FlowRunOutcome::Failed { reason, .. } = &report.outcome else { panic!("must fail") };
    assert_eq!(reason, "task `spin` exceeded its 200ms timeout");
    assert_eq!(report.task_runs.len(), 1);
    assert_eq!(report.task_runs[0].state, State::Failed);
    assert_eq!(report.task_runs[0].error.as_deref(), Some(reason.as_str()));
    let last = lines.last().expect("lines");
    assert_eq!(last.message, format!("Finished in state Failed: {reason}"));
    assert_eq!(last.task_run_id, None, "the final line belongs to the flow run");
}

#[tokio::test]
async fn failing_runs_side_by_side_do_not_disturb_each_other() {
    // Each run has limits of its own; the allocating one gets time enough to
    // reach its cap on a busy machine.
    let deadline = Limits { timeout: Duration::from_secs(1), ..Limits::default() };
    let memory = Limits { timeout: Duration::from_secs(120), memory: 64 << 20, ..Limits::default() };
    let (a, b, c, d) = tokio::join!(
        failure(LOOPS, deadline),
        failure(ALLOCATES, memory),
        failure(PANICS, Limits::default()),
        run(EXAMPLE_HELLO, json!({"name": "Zaphod"}), Limits::default()),
    );
    assert_eq!(a, "exceeded its 1s deadline");
    assert_eq!(b, "tried to grow memory past 64 MiB");
    assert!(c.starts_with("panicked at"), "{c}");
    assert_eq!(d.0.outcome, FlowRunOutcome::Completed { result: json!("Hello, Zaphod!") });
}

#[tokio::test]
async fn fuel_limits_stop_a_guest() {
    let engine = weft::engine::Engine::new(&weft::engine::EngineConfig { fuel: true }).expect("engine");
    let flow = engine.load_flow(&std::fs::read(LOOPS).expect("fixture"), LOOPS).expect("flow");
    let mut request = weft::runner::FlowRunRequest::new(&flow, json!({})).expect("params");
    request.limits.fuel = Some(10_000_000);
    let report = weft::runner::run_flow(&engine, &flow, request, std::sync::Arc::new(weft::model::DiscardLogs)).await;
    assert_eq!(report.outcome, FlowRunOutcome::Failed { reason: "ran out of fuel".into(), retryable: true });
}
