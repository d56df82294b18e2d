//! What weft's orchestration costs in process, measured on the real engine
//! with the guests the tests use: `cargo bench -p weft-tests --bench engine`.
//!
//! - `engine.compile_etl`: compiling the etl component and preparing its
//!   `InstancePre` (paid once per component per host; later processes load
//!   it from the compiled-code cache);
//! - `engine.run_hello`: one flow run of hello with a reused `InstancePre`:
//!   a fresh store, instantiation, the call, its log line and the run's
//!   bookkeeping;
//! - `engine.task_calls`: a run of 1,000 `#[task]` calls;
//! - `engine.task_component_calls`: a flow that calls a trivial task
//!   component 200 times, one after the other (each call: a task run
//!   record, a fresh store and instance, the call, its log line);
//! - `engine.fan_out_100_over_8`: a flow that submits 100 trivial task
//!   components and waits for each, task concurrency 8, on two threads.

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::report::{Figure, Report};
use weft::engine::{Engine, EngineConfig, FlowComponent, TaskComponents};
use weft::model::{Digest, DiscardLogs, FlowRunOutcome, TaskPolicy};
use weft::runner::{FlowRunRequest, run_flow};

mod fixtures {
    #![allow(dead_code)]
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}

const COMMAND: &str = "cargo bench -p weft-tests --bench engine";

fn engine() -> Engine {
    Engine::new(&EngineConfig::default()).expect("engine")
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).expect("fixtures are built by tests/build.rs")
}

/// Times `samples` calls of `f`, after one unmeasured call.
fn sample(samples: usize, mut f: impl FnMut()) -> Vec<Duration> {
    f();
    (0..samples)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect()
}

fn runs(
    engine: &Engine,
    flow: &FlowComponent,
    samples: usize,
    tasks: Option<(Arc<TaskComponents>, serde_json::Value)>,
) -> Vec<Duration> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let logs = Arc::new(DiscardLogs);
    sample(samples, || {
        let (parameters, components) = match &tasks {
            Some((components, parameters)) => (parameters.clone(), Some(components.clone())),
            None => (serde_json::json!({}), None),
        };
        let mut request = FlowRunRequest::new(flow, parameters).expect("parameters");
        if let Some(components) = components {
            request.tasks = components;
            request.task_concurrency = Some(8);
        }
        let report = runtime.block_on(run_flow(engine, flow, request, logs.clone()));
        assert!(matches!(report.outcome, FlowRunOutcome::Completed { .. }), "{:?}", report.outcome);
    })
}

/// Per-second throughput of `items` per sample.
fn per_second(samples: &[Duration], items: usize) -> Vec<f64> {
    samples.iter().map(|d| items as f64 / d.as_secs_f64()).collect()
}

fn fan_out(engine: &Engine, count: usize, mode: &str) -> Vec<Duration> {
    let flow = engine.load_flow(&read(fixtures::FAN_OUT), "fan_out.wasm").expect("compiles");
    let worker = read(fixtures::WORKER_TASK);
    let digest = Digest::of(&worker);
    let mut tasks = TaskComponents::new();
    tasks.insert_bytes("worker", engine, worker.into(), digest, "worker.wasm".into(), TaskPolicy::default(), None);
    let jobs: Vec<serde_json::Value> =
        (0..count).map(|i| serde_json::json!({"task": "worker", "input": {"label": i.to_string()}})).collect();
    runs(engine, &flow, 30, Some((Arc::new(tasks), serde_json::json!({"jobs": jobs, "mode": mode}))))
}

fn main() {
    let engine = engine();
    let mut report = Report::new("engine");

    let etl = read(fixtures::EXAMPLE_ETL);
    let compiles = sample(10, || {
        engine.load_flow(&etl, "etl.wasm").expect("compiles");
    });
    report.add(Figure::millis(
        "engine.compile_etl",
        "compile the etl component and prepare it (once per component and host)",
        &compiles,
        COMMAND,
    ));

    let hello = engine.load_flow(&read(fixtures::EXAMPLE_HELLO), "hello.wasm").expect("compiles");
    report.add(Figure::micros(
        "engine.run_hello",
        "in-process instantiate + run of hello with its bookkeeping (reused InstancePre)",
        &runs(&engine, &hello, 300, None),
        COMMAND,
    ));

    let many = engine.load_flow(&read(fixtures::MANY_TASKS), "many_tasks.wasm").expect("compiles");
    let calls = runs(&engine, &many, 50, None);
    report.add(Figure::new(
        "engine.task_calls",
        "in-component `#[task]` calls per second, a run of 1,000, in process (task runs go to a sink that drops them)",
        "tasks/s",
        per_second(&calls, 1000),
        COMMAND,
    ));

    let sequential = fan_out(&engine, 200, "call");
    report.add(Figure::new(
        "engine.task_component_calls",
        "task-component calls per second, 200 one after the other, each in a fresh sandbox",
        "calls/s",
        per_second(&sequential, 200),
        COMMAND,
    ));
    let parallel = fan_out(&engine, 100, "submit");
    report.add(Figure::new(
        "engine.fan_out_100_over_8",
        "task components per second, 100 submitted at once, task concurrency 8, two threads",
        "tasks/s",
        per_second(&parallel, 100),
        COMMAND,
    ));
    report.write();
}
