//! The test API server driven by a real kube-rs client: one test binary,
//! a module per topic.

mod api;
mod kubelet;
mod watch;

use std::future::Future;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::json;
use weft_kube_apiserver::{Config, TestApiServer};

/// The namespace the tests use.
const NS: &str = "flows";

/// Timings short enough for tests.
fn fast_config() -> Config {
    Config {
        termination_grace_period: Some(Duration::from_millis(500)),
        pod_backoff: Duration::from_millis(50),
        image_pull_backoff_delay: Duration::from_millis(100),
        bookmark_interval: Duration::from_millis(200),
        ..Config::default()
    }
}

/// A server with `config` and a kube client for it, through a kubeconfig.
async fn start_with(config: Config) -> anyhow::Result<(TestApiServer, Client)> {
    let server = TestApiServer::start(config).await?;
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig(NS))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let client = Client::try_from(config)?;
    Ok((server, client))
}

async fn start() -> anyhow::Result<(TestApiServer, Client)> {
    start_with(fast_config()).await
}

/// A Job running `command` with backoffLimit 0, labelled `app=<name>`,
/// with pod-template `annotations`.
fn job(name: &str, command: &[&str], annotations: serde_json::Value) -> anyhow::Result<Job> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app": name, "team": "weft"}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": annotations},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36", "command": command}],
                },
            },
        },
    }))?)
}

async fn create_job(client: &Client, job: &Job) -> anyhow::Result<Job> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    Ok(jobs.create(&PostParams::default(), job).await?)
}

/// Polls `check` every 20 ms until it returns `Some`, for at most
/// `seconds`.
async fn eventually<T, F, Fut>(seconds: f64, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(seconds);
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(anyhow!("timed out after {seconds}s waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The one pod of Job `job`, once it exists and `ready` accepts it.
async fn job_pod(client: &Client, job: &str, what: &str, ready: impl Fn(&Pod) -> bool) -> anyhow::Result<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let selector = format!("job-name={job}");
    eventually(5.0, what, || {
        let pods = pods.clone();
        let selector = selector.clone();
        let ready = &ready;
        async move {
            let list = pods.list(&ListParams::default().labels(&selector)).await?;
            Ok(list.items.into_iter().find(|p| ready(p)))
        }
    })
    .await
}

/// The Job, once `done` accepts it.
async fn job_when(client: &Client, name: &str, what: &str, done: impl Fn(&Job) -> bool) -> anyhow::Result<Job> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    eventually(5.0, what, || {
        let jobs = jobs.clone();
        let done = &done;
        async move { Ok(jobs.get_opt(name).await?.filter(|j| done(j))) }
    })
    .await
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default()
}

/// `(type, reason)` of a Job's conditions that are True.
fn job_conditions(job: &Job) -> Vec<(String, String)> {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter()
                .filter(|c| c.status == "True")
                .map(|c| (c.type_.clone(), c.reason.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

/// The first container's state of a pod, as JSON.
fn container_state(pod: &Pod) -> anyhow::Result<serde_json::Value> {
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .context("no container status")?;
    Ok(serde_json::to_value(&status.state)?)
}

fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}
