//! What weft's orchestration costs, measured on the real engine with the
//! guests the tests use: `cargo bench -p weft-tests`.
//!
//! - `compile_etl`: compiling the etl component and preparing its
//!   `InstancePre` (paid once per component per process);
//! - `run_hello`: one flow run of hello with a reused `InstancePre`: a fresh
//!   store, instantiation, the call, its log line and the run's bookkeeping;
//! - `task_calls`: a run of 1,000 `#[task]` calls, reported per task call.

use std::sync::Arc;

use weft::engine::{Engine, EngineConfig};
use weft::model::DiscardLogs;
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
