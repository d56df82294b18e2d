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
//! - drain: how long one agent with `--limit 32` takes to run 200 queued
//!   runs of hello as 200 Jobs.

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use common::{agent, all_completed, deploy_hello, percentile, queue, run_deployment, running_at, weft_binary};
use weft::model::Infrastructure;
use weft::store::Store;
use weft_kube_apiserver::{Config, TestApiServer};

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
    for (what, latencies) in
        [("the Job creation request", &mut to_job), ("the runner in the pod marking it Running", &mut to_running)]
    {
        latencies.sort();
        println!(
            "deployment run -> {what}, 100ms poll interval, {samples} runs: p50 {:?}, p95 {:?}, max {:?}",
            percentile(latencies, 0.5),
            percentile(latencies, 0.95),
            latencies[latencies.len() - 1]
        );
    }

    let ids = queue(&store, "hello", 200).await;
    let started = Instant::now();
    let _agent = kube(&["--limit", "32", "--poll-interval", "200ms"]);
    all_completed(&store, &ids).await;
    let took = started.elapsed();
    println!(
        "one Kubernetes agent, --limit 32, 200 queued runs of hello as 200 Jobs: drained in {:.1?} ({:.0} runs/s)",
        took,
        200.0 / took.as_secs_f64()
    );
}
