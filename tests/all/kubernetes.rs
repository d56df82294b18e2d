//! The Kubernetes infrastructure end to end: the real agent and runner, the
//! project's Kubernetes API test server (whose kubelet runs the pod's command
//! as a local `weft runner`), and the S3 emulator as the store.

use std::time::Duration;

use serde_json::{Value, json};
use weft::model::State;
use weft_kube_apiserver::{Config, DenyRule, Resource, TestApiServer};

use crate::agent::{AgentProcess, deploy, run_deployment, state, wait_for};
use crate::fixtures::{EXAMPLE_HELLO, SLOW};
use crate::store::Backend;
use crate::{stderr, stdout, weft, weft_path};

const NAMESPACE: &str = "flows";

/// A test API server with the store's credentials in a Secret, and its
/// kubeconfig.
struct Cluster {
    server: TestApiServer,
    kubeconfig: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn cluster(deny: Vec<DenyRule>) -> Cluster {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default();
    config.command_rewrites.insert("weft".into(), weft_path());
    config.termination_grace_period = Some(Duration::from_secs(2));
    config.extra_env.insert("WEFT_HOME".into(), dir.path().join("pod-home").display().to_string());
    config.deny = deny;
    let server = TestApiServer::start(config).await.expect("test API server");
    server.put_secret(NAMESPACE, "weft-store", &[("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")]);
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig, NAMESPACE).expect("kubeconfig");
    Cluster { server, kubeconfig, _dir: dir }
}

impl Cluster {
    fn agent(&self, backend: &Backend, extra: &[&str]) -> AgentProcess {
        let kubeconfig = self.kubeconfig.display().to_string();
        let mut args = vec![
            "--infra",
            "kubernetes",
            "--kubeconfig",
            &kubeconfig,
            "--job-variable",
            "namespace=flows",
            "--job-variable",
            "store_secret=weft-store",
            "--job-variable",
            "image=weft:test",
        ];
        args.extend(extra);
        AgentProcess::start(backend, "kube", &args)
    }

    fn jobs(&self) -> Vec<Value> {
        self.server.objects(Resource::Jobs, Some(NAMESPACE))
    }
}

fn yaml(name: &str, flow: &str, parameters: &str, job_variables: &str) -> String {
    format!(
        "deployments:\n  - name: {name}\n    flow: {flow}\n    parameters: {parameters}\n    infrastructure:\n      type: kubernetes\n      job_variables: {job_variables}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_run_becomes_a_job_and_completes() {
    let cluster = cluster(Vec::new()).await;
    let backend = Backend::s3();
    let _dir = deploy(&backend, &yaml("hello", EXAMPLE_HELLO, "{name: Kubernetes}", "{memory_limit: 512Mi, labels: {team: data}}"));
    let agent = cluster.agent(&backend, &[]);
    let output = weft().args(["deployment", "run", "hello", "--watch"]).args(backend.args()).output().expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "\"Hello, Kubernetes!\"\n");
    let store = backend.open();
    let id = store.run_ids().await.expect("runs").pop().expect("a run");
    assert_eq!(
        crate::agent::states(&store, &id).await,
        [State::Scheduled, State::Pending, State::Running, State::Completed]
    );

    let jobs = cluster.jobs();
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job["metadata"]["name"], format!("weft-hello-{}", id.to_lowercase()));
    assert_eq!(job["metadata"]["labels"]["weft.dev/flow-run-id"], id.as_str());
    assert_eq!(job["metadata"]["labels"]["weft.dev/deployment"], "hello");
    assert_eq!(job["metadata"]["labels"]["team"], "data");
    assert_eq!(job["spec"]["backoffLimit"], 0);
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 3660);
    assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 3600);
    let pod = &job["spec"]["template"];
    assert_eq!(pod["metadata"]["labels"]["weft.dev/flow"], "hello");
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["image"], "weft:test");
    assert_eq!(container["command"], json!(["weft", "runner", "--run", id]));
    assert_eq!(container["resources"]["limits"]["memory"], "512Mi");
    assert_eq!(container["envFrom"], json!([{"secretRef": {"name": "weft-store"}}]));
    let env = container["env"].as_array().expect("env");
    let store_options = env.iter().find(|e| e["name"] == "WEFT_STORE_OPTIONS").expect("store options")["value"].clone();
    let options: Value = serde_json::from_str(store_options.as_str().unwrap_or_default()).expect("JSON");
    assert!(options.get("endpoint").is_some(), "{options}");
    assert!(options.get("secret_access_key").is_none() && options.get("access_key_id").is_none(), "no credentials in the Job: {options}");
    drop(agent);
}

/// A cluster, an S3 store, an agent, and a run of the slow flow that has
/// started.
async fn slow_run_started(parameters: &str) -> (Cluster, Backend, tempfile::TempDir, AgentProcess, String) {
    let cluster = cluster(Vec::new()).await;
    let backend = Backend::s3();
    let dir = deploy(&backend, &yaml("slow", SLOW, parameters, "{}"));
    let agent = cluster.agent(&backend, &[]);
    let id = run_deployment(&backend, "slow", &[]);
    let store = backend.open();
    wait_for("the run to start", Duration::from_secs(60), async || state(&store, &id).await == Some(State::Running)).await;
    (cluster, backend, dir, agent, id)
}

/// Runs `flow` under a `weft.test/behaviour` and returns the run's final
/// state record and its log.
async fn run_with_behaviour_and_logs(
    behaviour: &str,
    flow: &str,
    parameters: &str,
    watch_timeout: u64,
) -> (weft::model::StateRecord, Vec<weft::model::LogLine>) {
    let cluster = cluster(Vec::new()).await;
    let backend = Backend::s3();
    let variables = format!("{{annotations: {{\"weft.test/behaviour\": \"{behaviour}\"}}, pod_watch_timeout: {watch_timeout}, memory_limit: 64Mi}}");
    let _dir = deploy(&backend, &yaml("b", flow, parameters, &variables));
    let agent = cluster.agent(&backend, &[]);
    let id = run_deployment(&backend, "b", &[]);
    let store = backend.open();
    wait_for("the run to end", Duration::from_secs(60), async || state(&store, &id).await.is_some_and(State::is_final)).await;
    drop(agent);
    let last = store.latest_state(&id).await.expect("state").expect("a state").1;
    (last, store.read_logs(&id, None).await.expect("logs").0)
}

async fn run_with_behaviour(behaviour: &str, flow: &str, parameters: &str, watch_timeout: u64) -> weft::model::StateRecord {
    run_with_behaviour_and_logs(behaviour, flow, parameters, watch_timeout).await.0
}

const SLOW_PARAMS: &str = "{ticks: 40, interval_ms: 250}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_cannot_be_pulled_crashes_the_run_after_the_pod_watch_timeout() {
    let (last, logs) = run_with_behaviour_and_logs("image-pull-error", EXAMPLE_HELLO, "{}", 2).await;
    assert_eq!(last.state, State::Crashed);
    let reason = last.message.unwrap_or_default();
    assert!(reason.starts_with("the image `weft:test` could not be pulled"), "{reason}");
    // The kubelet's events are in the run's log, for a person to read.
    let events: Vec<&str> = logs.iter().filter(|l| l.message.starts_with("Pod ")).map(|l| l.message.as_str()).collect();
    assert!(events.iter().any(|m| m.contains(": Pulling: Pulling image \"weft:test\"")), "{events:?}");
    assert!(
        logs.iter().any(|l| l.level == weft::model::Level::Warn && l.message.contains(": Failed: ")),
        "the pull failure is a warning in the log: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_pull_within_the_timeout_is_not_a_crash() {
    let last = run_with_behaviour("slow-pull:2", EXAMPLE_HELLO, "{}", 30).await;
    assert_eq!(last.state, State::Completed, "{:?}", last.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unschedulable_pod_crashes_the_run_with_the_scheduler_message() {
    let last = run_with_behaviour("pending", EXAMPLE_HELLO, "{}", 2).await;
    assert_eq!(last.state, State::Crashed);
    assert_eq!(
        last.message.as_deref(),
        Some("the pod never started within 2s: 0/3 nodes are available: 3 Insufficient memory.")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oom_killed_pod_crashes_the_run_naming_the_memory_limit() {
    let last = run_with_behaviour("oom-after:2", SLOW, SLOW_PARAMS, 30).await;
    assert_eq!(last.state, State::Crashed);
    let reason = last.message.unwrap_or_default();
    assert!(reason.contains("OOMKilled") && reason.contains("memory limit of 64Mi"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_pod_crashes_the_run_with_the_reason() {
    let last = run_with_behaviour("evict-after:2", SLOW, SLOW_PARAMS, 30).await;
    assert_eq!(last.state, State::Crashed);
    assert_eq!(last.message.as_deref(), Some("the pod was evicted: The node was low on resource: memory."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_run_deletes_its_job() {
    let (cluster, backend, _dir, agent, id) = slow_run_started(SLOW_PARAMS).await;
    let store = backend.open();
    let output = weft().args(["runs", "cancel", &id]).args(backend.args()).output().expect("cancel");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    wait_for("the run to be cancelled", Duration::from_secs(60), async || state(&store, &id).await == Some(State::Cancelled))
        .await;
    wait_for("its Job to be gone", Duration::from_secs(30), async || cluster.jobs().is_empty()).await;
    assert!(cluster.server.objects(Resource::Pods, Some(NAMESPACE)).is_empty(), "no pod is left behind");
    drop(agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_job_creation_crashes_the_run_with_one_clear_line() {
    let cluster = cluster(vec![DenyRule::new("create", "jobs", NAMESPACE)]).await;
    let backend = Backend::s3();
    let _dir = deploy(&backend, &yaml("hello", EXAMPLE_HELLO, "{}", "{}"));
    let agent = cluster.agent(&backend, &[]);
    let id = run_deployment(&backend, "hello", &[]);
    let store = backend.open();
    wait_for("the run to end", Duration::from_secs(60), async || state(&store, &id).await.is_some_and(State::is_final)).await;
    let log = agent.stop();
    let last = store.latest_state(&id).await.expect("state").expect("a state").1;
    assert_eq!(last.state, State::Crashed);
    let reason = last.message.unwrap_or_default();
    assert!(reason.contains("the agent may not create jobs in namespace `flows`"), "{reason}");
    assert!(reason.contains("weft agent install --namespace flows --rbac"), "{reason}");
    assert!(log.contains("the agent may not create jobs in namespace `flows`"), "the agent log says so too: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_creation_keeps_to_the_client_side_rate_limit() {
    let cluster = cluster(Vec::new()).await;
    let backend = Backend::s3();
    let _dir = deploy(&backend, &yaml("hello", EXAMPLE_HELLO, "{}", "{}"));
    let store = backend.open();
    let deployment = store.deployment("hello").await.expect("read").expect("deployed");
    let mut ids = Vec::new();
    for _ in 0..24 {
        let run = store.schedule_run(&deployment, Default::default(), std::time::SystemTime::now(), None, 1).await.expect("schedule");
        ids.push(run.expect("created").id);
    }
    let agent = cluster.agent(&backend, &["--kube-qps", "4", "--kube-burst", "4", "--limit", "24"]);
    wait_for("24 Jobs", Duration::from_secs(120), async || cluster.jobs().len() == 24).await;
    drop(agent);
    let creates = |r: &weft_kube_apiserver::RequestRecord| r.method == "POST" && r.path.ends_with("/jobs");
    let peak = cluster.server.max_requests_in(Duration::from_secs(1), creates);
    assert!(peak <= 8, "at most burst + qps Job creations in any second, saw {peak}");
    assert!(peak >= 2, "the limit let requests through: {peak}");
}

/// The pod of a run's Job, once it runs a process.
async fn running_pod(cluster: &Cluster) -> (String, u32) {
    let mut found = None;
    wait_for("a running pod", Duration::from_secs(60), async || {
        found = cluster.server.running_processes().into_iter().map(|(_, pod, pid)| (pod, pid)).next();
        found.is_some()
    })
    .await;
    found.expect("a pod")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_ends_without_an_outcome_crashes_the_run_with_its_exit_code_and_last_lines() {
    let (cluster, backend, _dir, agent, id) = slow_run_started(SLOW_PARAMS).await;
    let store = backend.open();
    let (_, pid) = running_pod(&cluster).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    // The pod's runner dies at once, with no chance to record anything.
    assert!(pid > 1, "a real process id: {pid}");
    let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    wait_for("the crash", Duration::from_secs(60), async || state(&store, &id).await == Some(State::Crashed)).await;
    drop(agent);
    let last = store.latest_state(&id).await.expect("state").expect("a state").1;
    assert_eq!(last.message.as_deref(), Some("the runner exited (exit code 137) without recording an outcome"));
    let (logs, _) = store.read_logs(&id, None).await.expect("logs");
    assert!(logs.iter().any(|l| l.message.starts_with("The runner's last lines")), "the pod's last lines are in the run's logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_deleted_from_outside_ends_the_run_crashed() {
    let (cluster, backend, _dir, agent, id) = slow_run_started(SLOW_PARAMS).await;
    let store = backend.open();
    let name = format!("weft-slow-{}", id.to_lowercase());
    let path = format!("/apis/batch/v1/namespaces/{NAMESPACE}/jobs/{name}?propagationPolicy=Background");
    let (status, body) = crate::emulators::http("DELETE", &cluster.server.url(), &path, "").expect("delete");
    assert_eq!(status, 200, "{body}");
    wait_for("the crash", Duration::from_secs(60), async || state(&store, &id).await == Some(State::Crashed)).await;
    drop(agent);
    let reason = store.latest_state(&id).await.expect("state").expect("a state").1.message.unwrap_or_default();
    // The runner, stopped with its pod, records why first; the agent's
    // verdict only stands when the runner could not write.
    assert!(
        reason == "the runner received SIGTERM" || reason == "its Job was deleted from outside weft",
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_adopts_its_jobs() {
    let (cluster, backend, _dir, agent, id) = slow_run_started("{ticks: 16, interval_ms: 250}").await;
    let store = backend.open();
    agent.kill();
    let agent = cluster.agent(&backend, &[]);
    wait_for("the run to complete", Duration::from_secs(60), async || state(&store, &id).await == Some(State::Completed))
        .await;
    wait_for("the claim to settle", Duration::from_secs(30), async || store.claimed("kube").await.expect("claims").is_empty())
        .await;
    let log = agent.stop();
    assert!(log.contains("adopting a run claimed before a restart"), "{log}");
    assert_eq!(cluster.jobs().len(), 1, "one Job, never a second");
}
