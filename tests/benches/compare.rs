//! weft's side of the side-by-side table with Prefect (`make bench-prefect`
//! runs both): the same workloads as `tests/prefect/flows/`, each a whole
//! `weft run` process with the release binary on a local store, compiled
//! code cached, as `cargo bench -p weft-tests --bench compare`.
//!
//! - `compare.etl`: the etl example (Rust), and etl-python (Python);
//! - `compare.tasks_1000`: 1,000 in-component `#[task]` calls;
//! - Windmill's orchestrator benchmark, every task a task component called
//!   one after the other, each in a fresh sandbox, in Rust (`worker_task`)
//!   and in Python (`fibo.py`, `shout_task.py`): 40 × `fibo(10)`,
//!   10 × `fibo(33)`, 400 lightweight tasks.

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

#[path = "../all/guests.rs"]
#[allow(dead_code)]
mod guests;

mod fixtures {
    #![allow(dead_code)]
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}

use std::path::{Path, PathBuf};
use std::process::Command;

use common::report::{Figure, Ran, Report, run_process};
use common::weft_binary;
use guests::{Language, guest_component};
use serde_json::{Value, json};

/// For `guests.rs`: the binary its build helpers annotate with.
fn weft_path() -> PathBuf {
    weft_binary()
}

/// For `guests.rs`: a failed build's message.
fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

struct Bench {
    dir: tempfile::TempDir,
    store: String,
}

impl Bench {
    /// `weft run` of `flow` with `args`; asserts it completed.
    fn run(&self, flow: &Path, args: &[String]) -> Ran {
        let ran = run_process(
            Command::new(weft_binary())
                .arg("run")
                .arg(flow)
                .args(args)
                .args(["--store", &self.store])
                .env("WEFT_HOME", self.dir.path().join("home")),
        );
        assert_eq!(ran.status, 0, "weft run {}: {}", flow.display(), ran.stderr);
        assert!(!ran.stdout.contains("\"error\""), "a task failed: {}", ran.stdout);
        ran
    }

    /// One warm-up run, then `samples` measured ones.
    fn sample(&self, flow: &Path, args: &[String], samples: usize) -> Vec<std::time::Duration> {
        self.run(flow, args);
        (0..samples).map(|_| self.run(flow, args).wall).collect()
    }

    /// Arguments for `fan_out` calling task `name` (component `task`) once
    /// per input, one after the other.
    fn sequential(&self, name: &str, task: &Path, inputs: Vec<Value>) -> Vec<String> {
        let jobs: Vec<Value> = inputs.into_iter().map(|input| json!({"task": name, "input": input})).collect();
        let file = self.dir.path().join(format!("{name}-{}.json", jobs.len()));
        std::fs::write(&file, json!({"jobs": jobs, "mode": "call"}).to_string()).expect("params file");
        vec!["--task".into(), format!("{name}={}", task.display()), "--params-file".into(), file.display().to_string()]
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("file://{}", dir.path().join("store").display());
    let bench = Bench { dir, store };
    let mut report = Report::new("compare");
    let mut add = |id: &str, system: &str, what: &str, samples: &[std::time::Duration], command: &str| {
        report.add(Figure::millis(id, what, samples, command).system(system));
    };

    let etl = Path::new(fixtures::EXAMPLE_ETL);
    add(
        "compare.etl",
        "weft-rust",
        "the etl example, one `weft run`",
        &bench.sample(etl, &[], 10),
        "weft run etl.wasm",
    );
    let etl_python = guest_component(Language::Python, "examples/etl-python/etl.py");
    add(
        "compare.etl",
        "weft-python",
        "the etl-python example, one `weft run`",
        &bench.sample(&etl_python, &[], 10),
        "weft run etl-python.wasm",
    );
    let many = Path::new(fixtures::MANY_TASKS);
    add(
        "compare.tasks_1000",
        "weft-rust",
        "1,000 in-component `#[task]` calls, one `weft run`",
        &bench.sample(many, &["-p".into(), "count=1000".into()], 10),
        "weft run many_tasks.wasm -p count=1000",
    );

    let fan_out = Path::new(fixtures::FAN_OUT);
    let worker = Path::new(fixtures::WORKER_TASK);
    let fibo = guest_component(Language::Python, "tests/programs/python/fibo.py");
    let shout = guest_component(Language::Python, "tests/programs/python/shout_task.py");
    for (id, count, n, samples) in
        [("compare.windmill.fibo10x40", 40, 10, 5), ("compare.windmill.fibo33x10", 10, 33, 3)]
    {
        let rust = bench.sequential("worker", worker, vec![json!({"label": "fibo", "fibo": n}); count]);
        add(
            id,
            "weft-rust",
            &format!("{count} task components in Rust, one after the other, each fibo({n}) in a fresh sandbox"),
            &bench.sample(fan_out, &rust, samples),
            &format!("weft run fan_out.wasm --task worker=worker_task.wasm --params-file <{count} calls of fibo({n})>"),
        );
        let python = bench.sequential("fibo", &fibo, vec![json!(n); count]);
        add(
            id,
            "weft-python",
            &format!("{count} task components in Python, one after the other, each fibo({n}) in a fresh sandbox"),
            &bench.sample(fan_out, &python, samples),
            &format!("weft run fan_out.wasm --task fibo=fibo.wasm --params-file <{count} calls of fibo({n})>"),
        );
    }
    let rust = bench.sequential("worker", worker, vec![json!({"label": "light"}); 400]);
    add(
        "compare.windmill.light400",
        "weft-rust",
        "400 lightweight task components in Rust, one after the other, each in a fresh sandbox",
        &bench.sample(fan_out, &rust, 5),
        "weft run fan_out.wasm --task worker=worker_task.wasm --params-file <400 calls>",
    );
    let python = bench.sequential("shout", &shout, vec![json!("light"); 400]);
    add(
        "compare.windmill.light400",
        "weft-python",
        "400 lightweight task components in Python, one after the other, each in a fresh sandbox",
        &bench.sample(fan_out, &python, 5),
        "weft run fan_out.wasm --task shout=shout_task.wasm --params-file <400 calls>",
    );
    report.write();
}
