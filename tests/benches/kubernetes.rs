//! What the Kubernetes agent costs, with the release `weft` binary as agent
//! and runner, the project's Kubernetes API test server (whose kubelet runs
//! each pod's runner as a local process) and a local store: `make bench` (or
//! `cargo build --release -p weft-cli && cargo bench -p weft-tests --bench
//! kubernetes`).
//!
//! - latency, at a 100 ms poll interval over 40 runs (p50, p95): from
//!   `weft deployment run` to the agent's Job creation request, and to the
//!   runner in the pod marking the run Running (the test server adds its
//!   simulated controller, scheduler and kubelet steps, about 60 ms);
//! - drain: how long one agent with `--limit 32` and the default client
//!   rate limit takes to run 1,000 queued runs of hello as 1,000 Jobs, and
//!   the API requests it made per run.

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use common::report::{Figure, Report};
use common::{agent, all_completed, deploy_hello, queue, run_deployment, running_at, weft_binary};
use weft::model::Infrastructure;
use weft::store::Store;
use weft_kube_apiserver::{Config, TestApiServer};

const COMMAND: &str = "cargo bench -p weft-tests --bench kubernetes";

#[tokio::main]
async fn main() {
    let home = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", home.path().join("store").display());
    // Pods here are local processes, so a local store serves them; `weft
    // deploy` refuses one for Kubernetes, so the deployment is switched over
    // in the store.
    deploy_hello(&url, home.path());
    let store = Store::open(&url, &[]).expect("store");
    let mut deployment = store.deployment("hello").await.expect("read").expect("deployed");
    deployment.infrastructure = Infrastructure::Kubernetes { job_variables: BTreeMap::new(), job_template: None };
    store.put_deployment(&deployment).await.expect("switch to Kubernetes");

    let mut config = Config::default();
    config.command_rewrites.insert("weft".into(), weft_binary());
    config.extra_env.insert("WEFT_HOME".into(), home.path().display().to_string());
    let server = TestApiServer::start(config).await.expect("test API server");
    let kubeconfig = home.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig, "flows").expect("kubeconfig");
    let kubeconfig = kubeconfig.display().to_string();
    let kube = |extra: &[&'static str]| {
        let mut args = vec!["--infra", "kubernetes", "--kubeconfig", &kubeconfig];
        args.extend(["--job-variable", "namespace=flows", "--job-variable", "image=weft:bench"]);
        args.extend(extra);
        agent(&url, home.path(), &args)
    };

    let samples = 40;
    let (mut to_job, mut to_running) = (Vec::new(), Vec::new());
    {
        let _agent = kube(&["--poll-interval", "100ms"]);
        tokio::time::sleep(Duration::from_secs(2)).await;
        for i in 0..samples {
            server.clear_requests();
            let start = SystemTime::now();
            let id = run_deployment("hello", &url, home.path());
            let started = running_at(&store, &id).await;
            let created = server
                .requests()
                .into_iter()
                .find(|r| r.method == "POST" && r.path.ends_with("/jobs"))
                .expect("a Job creation")
                .at;
            to_job.push(created.duration_since(start).unwrap_or_default());
            to_running.push(started.duration_since(start).unwrap_or_default());
            tokio::time::sleep(Duration::from_millis(37 * (i % 3) + 20)).await;
        }
    }
    let mut report = Report::new("kubernetes");
    report.add(Figure::millis(
        "kubernetes.to_job",
        "from `weft deployment run` to the agent's Job creation request, 100 ms poll interval",
        &to_job,
        COMMAND,
    ));
    report.add(Figure::millis(
        "kubernetes.to_running",
        "from `weft deployment run` to the runner in the pod marking the run Running (the test server's kubelet adds about 60 ms)",
        &to_running,
        COMMAND,
    ));

    let runs = 1000;
    let ids = queue(&store, "hello", runs).await;
    server.clear_requests();
    let started = Instant::now();
    let _agent = kube(&["--limit", "32"]);
    all_completed(&store, &ids).await;
    let took = started.elapsed();
    let requests = server.requests().len();
    report.add(
        Figure::new(
            "kubernetes.drain",
            "1,000 queued runs of hello as 1,000 Jobs, one agent, --limit 32, default rate limit (20 requests/s, bursts of 40)",
            "runs/s",
            vec![runs as f64 / took.as_secs_f64()],
            COMMAND,
        )
        .with("drain_s", (took.as_secs_f64() * 100.0).round() / 100.0)
        .with("api_requests_per_run", (requests as f64 / runs as f64 * 10.0).round() / 10.0),
    );
    report.write();
}
