//! What weft's orchestration costs, measured on the real engine with the
//! guests the tests use: `cargo bench -p weft-tests`.
//!
//! - `compile_etl`: compiling the etl component and preparing its
//!   `InstancePre` (paid once per component per process);
//! - `run_hello`: one flow run of hello with a reused `InstancePre`: a fresh
//!   store, instantiation, the call, its log line and the run's bookkeeping;
//! - `task_calls`: a run of 1,000 `#[task]` calls, reported per task call;
//! - `task_component_calls`: a flow that calls a trivial task component 200
//!   times, one after the other, reported per call (each call: a task run
//!   record, a fresh store, instantiation, the call, its log line);
//! - `fan_out_100_over_8`: a flow that submits 100 trivial task components
//!   and waits for each, with a task concurrency of 8, on two threads.

use std::sync::Arc;

use weft::engine::{Engine, EngineConfig, TaskComponents};
use weft::model::{Digest, DiscardLogs, TaskPolicy};
use weft::runner::{FlowRunRequest, run_flow};

mod fixtures {
    #![allow(dead_code)]
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}

fn main() {
    divan::main();
}

fn engine() -> Engine {
    Engine::new(&EngineConfig::default()).expect("engine")
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).expect("fixtures are built by tests/build.rs")
}

#[divan::bench(sample_count = 20)]
fn compile_etl(bencher: divan::Bencher) {
    let engine = engine();
    let bytes = read(fixtures::EXAMPLE_ETL);
    bencher.bench_local(|| engine.load_flow(&bytes, "etl.wasm").expect("compiles"));
}

fn bench_run(bencher: divan::Bencher, path: &str, items: u32) {
    let engine = engine();
    let flow = engine.load_flow(&read(path), path).expect("compiles");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let logs = Arc::new(DiscardLogs);
    bencher.counter(divan::counter::ItemsCount::new(items)).bench_local(|| {
        let request = FlowRunRequest::new(&flow, serde_json::json!({})).expect("parameters");
        let report = runtime.block_on(run_flow(&engine, &flow, request, logs.clone()));
        assert!(matches!(report.outcome, weft::model::FlowRunOutcome::Completed { .. }));
    });
}

#[divan::bench(sample_count = 200)]
fn run_hello(bencher: divan::Bencher) {
    bench_run(bencher, fixtures::EXAMPLE_HELLO, 1);
}

#[divan::bench(sample_count = 50)]
fn task_calls(bencher: divan::Bencher) {
    bench_run(bencher, fixtures::MANY_TASKS, 1000);
}

fn bench_fan_out(bencher: divan::Bencher, count: usize, mode: &str, runtime: tokio::runtime::Runtime) {
    let engine = engine();
    let flow = engine.load_flow(&read(fixtures::FAN_OUT), "fan_out.wasm").expect("compiles");
    let worker = read(fixtures::WORKER_TASK);
    let digest = Digest::of(&worker);
    let mut tasks = TaskComponents::new();
    tasks.insert_bytes("worker", &engine, worker.into(), digest, "worker.wasm".into(), TaskPolicy::default(), None);
    let tasks = Arc::new(tasks);
    let jobs: Vec<serde_json::Value> =
        (0..count).map(|i| serde_json::json!({"task": "worker", "input": {"label": i.to_string()}})).collect();
    let parameters = serde_json::json!({"jobs": jobs, "mode": mode});
    let logs = Arc::new(DiscardLogs);
    bencher.counter(divan::counter::ItemsCount::new(count)).bench_local(|| {
        let mut request = FlowRunRequest::new(&flow, parameters.clone()).expect("parameters");
        request.tasks = tasks.clone();
        request.task_concurrency = Some(8);
        let report = runtime.block_on(run_flow(&engine, &flow, request, logs.clone()));
        assert!(matches!(report.outcome, weft::model::FlowRunOutcome::Completed { .. }));
        assert_eq!(report.task_runs.len(), count);
    });
}

#[divan::bench(sample_count = 30)]
fn task_component_calls(bencher: divan::Bencher) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    bench_fan_out(bencher, 200, "call", runtime);
}

#[divan::bench(sample_count = 30)]
fn fan_out_100_over_8(bencher: divan::Bencher) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    bench_fan_out(bencher, 100, "submit", runtime);
}
