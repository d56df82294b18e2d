//! The test API server driven by a real kube-rs client: one test binary,
//! a module per topic.

mod api;
mod kubelet;
mod real_world;
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
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
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

fn waiting_reason(pod: &Pod) -> Option<String> {
    container_state(pod).ok()?.pointer("/waiting/reason")?.as_str().map(str::to_owned)
}

/// `(status, reason, message)` of a pod's PodScheduled condition.
fn scheduled_condition(pod: &Pod) -> Option<(String, Option<String>, Option<String>)> {
    let condition = pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "PodScheduled")?;
    Some((condition.status.clone(), condition.reason.clone(), condition.message.clone()))
}

/// `kill -0`: whether the process (not yet reaped) exists.
fn process_alive(pid: u32) -> bool {
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The `Status` of a failed request.
fn api_error(error: kube::Error) -> anyhow::Result<Box<kube::core::Status>> {
    match error {
        kube::Error::Api(status) => Ok(status),
        other => Err(anyhow!("expected an API error, got {other:?}")),
    }
}

/// One HTTP/1.1 request without kube: the status code and the body.
async fn raw_request(server: &TestApiServer, method: &str, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        server.addr(),
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response.split_once("\r\n\r\n").context("no end of the response head")?;
    let code = head.split_whitespace().nth(1).context("no status line")?.parse()?;
    Ok((code, body.to_owned()))
}
