//! A flow run on each store backend, with the release `weft` binary: the
//! local folder, and the S3, GCS and Azure Blob protocols against their
//! emulators (moto, fake-gcs-server, Azurite; `tests/emulators/install.sh`
//! installs them): `make bench` (or `cargo bench -p weft-tests --bench
//! stores`).
//!
//! Each figure is `weft run` of the etl example (compiled code cached),
//! its wall time and the store requests it made, counted from the trace
//! event every request emits (`WEFT_LOG=weft::store::requests=trace`). The
//! emulators answer on this machine: a real bucket adds its round trips.
//!
//! Then an idle agent at the default poll interval on each object store,
//! for 30 s: the requests it makes, per day.

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

#[path = "../all/emulators.rs"]
#[allow(dead_code)]
mod emulators;

mod fixtures {
    #![allow(dead_code)]
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}

use std::process::Command;

use common::report::{Figure, Report, run_process};
use common::weft_binary;
use emulators::{AZURITE_KEY, BUCKET};

/// A store: its name, URL and options.
type Backend<'a> = (&'a str, String, Vec<(&'a str, &'a str)>);

/// The store URL as a reader would write it: the bucket, or a folder.
fn bucket(url: &str) -> String {
    match url.strip_prefix("file://") {
        Some(_) => "file:///path/to/store".to_owned(),
        None => url.split('/').take(3).collect::<Vec<_>>().join("/"),
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = weft::model::new_id().to_lowercase();
    let s3 = &emulators::s3().endpoint;
    let azure = format!("{}/devstoreaccount1", emulators::azure().endpoint);
    let gcs = &emulators::gcs().endpoint;
    let backends: Vec<Backend> = vec![
        ("file", format!("file://{}", dir.path().join("store").display()), vec![]),
        (
            "s3",
            format!("s3://{BUCKET}/{prefix}"),
            vec![
                ("endpoint", s3),
                ("allow_http", "true"),
                ("region", "us-east-1"),
                ("access_key_id", "test"),
                ("secret_access_key", "test"),
            ],
        ),
        ("gcs", format!("gs://{BUCKET}/{prefix}"), vec![("base_url", gcs), ("bearer_token", "test")]),
        (
            "azure",
            format!("az://{BUCKET}/{prefix}"),
            vec![
                ("account_name", "devstoreaccount1"),
                ("access_key", AZURITE_KEY),
                ("endpoint", &azure),
                ("allow_http", "true"),
            ],
        ),
    ];
    let home = dir.path().join("home");
    let mut report = Report::new("stores");
    for (name, url, options) in &backends {
        let run = || {
            let mut command = Command::new(weft_binary());
            command
                .args(["run", fixtures::EXAMPLE_ETL, "--store", url])
                .env("WEFT_HOME", &home)
                .env("WEFT_LOG", "warn,weft::store::requests=trace");
            for (key, value) in options {
                command.args(["--store-option", &format!("{key}={value}")]);
            }
            let ran = run_process(&mut command);
            assert_eq!(ran.status, 0, "weft run on {name}: {}", ran.stderr);
            ran
        };
        run();
        let runs: Vec<_> = (0..10).map(|_| run()).collect();
        let mut requests: Vec<usize> =
            runs.iter().map(|r| r.stderr.lines().filter(|l| l.contains("store request")).count()).collect();
        requests.sort();
        report.add(
            Figure::millis(
                &format!("stores.run_etl_{name}"),
                &format!("`weft run` of etl on the {name} store (compiled code cached)"),
                &runs.iter().map(|r| r.wall).collect::<Vec<_>>(),
                &format!("WEFT_LOG=weft::store::requests=trace weft run etl.wasm --store {}", bucket(url)),
            )
            .with("store_requests", requests[requests.len() / 2] as u64),
        );
    }
    for (name, url, options) in backends.iter().filter(|(name, _, _)| *name != "file") {
        let log = dir.path().join(format!("agent-{name}.log"));
        let mut command = Command::new(weft_binary());
        command
            .args(["agent", "--name", "idle", "--store", url])
            .env("WEFT_HOME", &home)
            .env("WEFT_LOG", "warn,weft::store::requests=trace")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        for (key, value) in options {
            command.args(["--store-option", &format!("{key}={value}")]);
        }
        let mut agent = command.spawn().expect("weft agent");
        let window = std::time::Duration::from_secs(30);
        std::thread::sleep(window);
        let _ = agent.kill();
        let _ = agent.wait();
        let text = std::fs::read_to_string(&log).expect("agent log");
        let requests = text.lines().filter(|l| l.contains("store request")).count() as f64;
        let lists = text.lines().filter(|l| l.contains("store request") && l.contains("list")).count() as f64;
        let per_day = |n: f64| (n * 86_400.0 / window.as_secs_f64()).round();
        report.add(
            Figure::new(
                &format!("stores.agent_idle_{name}"),
                &format!("store requests per day of one idle agent on the {name} store, default poll interval (1 s)"),
                "requests/day",
                vec![per_day(requests)],
                &format!(
                    "WEFT_LOG=weft::store::requests=trace weft agent --store {} (30 s, scaled to a day)",
                    bucket(url)
                ),
            )
            .with("lists_per_day", per_day(lists)),
        );
    }
    report.write();
}
