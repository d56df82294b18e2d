//! What a `weft` command costs as a user runs it, with the release binary
//! on a local store: `make bench` (or `cargo build --release -p weft-cli &&
//! cargo bench -p weft-tests --bench cli`). Every figure is a whole process,
//! with its wall time and peak RSS (from `wait4`).
//!
//! - `weft run` of the etl example, cold (a fresh home: the component is
//!   compiled) and warm (its compiled code cached);
//! - in-component tasks per second with every task run recorded, at 1,000,
//!   100,000 and 1,000,000 tasks in one run;
//! - `weft runs ls --limit 20` on a store holding 100,000 finished runs.

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

mod fixtures {
    #![allow(dead_code)]
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}

use std::path::Path;
use std::process::Command;

use common::report::{Figure, Ran, Report, run_process};
use common::{history_store, weft_binary};

fn weft_run(home: &Path, store: &str, wasm: &str, params: &[&str]) -> Ran {
    let mut command = Command::new(weft_binary());
    command.args(["run", wasm, "--store", store]).env("WEFT_HOME", home);
    for param in params {
        command.args(["-p", param]);
    }
    let ran = run_process(&mut command);
    assert_eq!(ran.status, 0, "weft run {wasm}: {}", ran.stderr);
    ran
}

fn rss_mib(runs: &[Ran]) -> f64 {
    let mut peaks: Vec<u64> = runs.iter().map(|r| r.peak_rss_kib).collect();
    peaks.sort();
    (peaks[peaks.len() / 2] as f64 / 1024.0 * 10.0).round() / 10.0
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("file://{}", dir.path().join("store").display());
    let mut report = Report::new("cli");

    let cold: Vec<Ran> =
        (0..5).map(|i| weft_run(&dir.path().join(format!("cold-{i}")), &store, fixtures::EXAMPLE_ETL, &[])).collect();
    report.add(
        Figure::millis(
            "cli.run_etl_cold",
            "`weft run` of the etl example on a fresh home (compiles the component), wall time",
            &cold.iter().map(|r| r.wall).collect::<Vec<_>>(),
            "WEFT_HOME=$(mktemp -d) weft run etl.wasm",
        )
        .with("peak_rss_mib", rss_mib(&cold)),
    );
    let home = dir.path().join("warm");
    weft_run(&home, &store, fixtures::EXAMPLE_ETL, &[]);
    let warm: Vec<Ran> = (0..40).map(|_| weft_run(&home, &store, fixtures::EXAMPLE_ETL, &[])).collect();
    report.add(
        Figure::millis(
            "cli.run_etl_warm",
            "`weft run` of the etl example, compiled code cached, wall time",
            &warm.iter().map(|r| r.wall).collect::<Vec<_>>(),
            "weft run etl.wasm",
        )
        .with("peak_rss_mib", rss_mib(&warm)),
    );

    for (id, count, label, samples) in [
        ("cli.tasks_1k", 1_000, "1,000", 10),
        ("cli.tasks_100k", 100_000, "100,000", 5),
        ("cli.tasks_1m", 1_000_000, "1,000,000", 3),
    ] {
        let param = format!("count={count}");
        let runs: Vec<Ran> = (0..samples).map(|_| weft_run(&home, &store, fixtures::MANY_TASKS, &[&param])).collect();
        let rates: Vec<f64> = runs.iter().map(|r| count as f64 / r.wall.as_secs_f64()).collect();
        report.add(
            Figure::new(
                id,
                &format!(
                    "in-component `#[task]` calls per second, {label} in one `weft run`, every task run recorded in the store (whole process)"
                ),
                "tasks/s",
                rates,
                &format!("weft run many_tasks.wasm -p count={count}"),
            )
            .with("peak_rss_mib", rss_mib(&runs)),
        );
    }

    let history = history_store().await;
    let listed: Vec<Ran> = (0..20)
        .map(|_| {
            let ran =
                run_process(Command::new(weft_binary()).args(["runs", "ls", "--limit", "20", "--store", &history]));
            assert_eq!(ran.status, 0, "{}", ran.stderr);
            ran
        })
        .collect();
    report.add(
        Figure::millis(
            "cli.runs_ls_history",
            "`weft runs ls --limit 20` on a store holding 100,000 finished runs",
            &listed.iter().map(|r| r.wall).collect::<Vec<_>>(),
            "weft runs ls --limit 20 --store file://$PWD/target/bench-ui-store",
        )
        .with("peak_rss_mib", rss_mib(&listed)),
    );
    report.write();
}
