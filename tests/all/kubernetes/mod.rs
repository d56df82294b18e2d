//! The Kubernetes infrastructure end to end: the real agent and runner, and
//! a store the pods reach. Every scenario runs twice, unchanged: on the
//! project's Kubernetes API test server (whose kubelet runs the pod's
//! command as a local `weft runner`) with the S3 emulator as the store, and
//! on the real cluster `WEFT_TEST_KUBECONFIG` names (see `cluster.rs`;
//! `#[ignore = "needs cluster"]` without one).
//!
//! Failures are caused the way they happen on a real cluster: an image on a
//! registry that does not resolve, a node selector no node has, a memory
//! limit the flow outgrows, the Eviction API, deletions by hand.

mod cluster;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kube::api::{DeleteParams, EvictParams};
use serde_json::Value;
use weft::model::{LogLine, State, StateRecord};

use self::cluster::{Cluster, Forbidden, Target};
use crate::agent::{AgentProcess, deploy, run_deployment, state, states, wait_for};
use crate::fixtures::{EXAMPLE_HELLO, SLOW};
use crate::store::Backend;
use crate::{stderr, stdout, weft};

/// Runs each scenario on the test server, and again on a real cluster when
/// the tests were built with `WEFT_TEST_KUBECONFIG` set.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod on_the_test_server {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Target::TestServer).await
                }
            )*
        }
        mod on_a_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(weft_cluster), ignore = "needs cluster")]
                async fn $name() {
                    super::$name(super::Target::Real).await
                }
            )*
        }
    };
}

scenarios!(
    a_deployment_run_becomes_exactly_the_rendered_job_and_completes,
    an_image_that_cannot_be_pulled_crashes_the_run_after_the_pod_watch_timeout,
    an_invalid_image_name_crashes_the_run_at_once,
    a_slow_pull_within_the_timeout_is_not_a_crash,
    an_unschedulable_pod_crashes_the_run_with_the_scheduler_message,
    an_oom_killed_pod_crashes_the_run_naming_the_memory_limit_with_its_last_lines,
    an_evicted_pod_crashes_the_run_with_the_reason,
    a_pod_deleted_from_outside_crashes_the_run_with_its_exit_code_and_last_lines,
    a_job_deleted_from_outside_ends_the_run_crashed,
    cancelling_a_run_deletes_its_job_and_pod,
    a_restarted_agent_adopts_its_jobs,
    two_agents_turn_200_runs_into_200_jobs_without_duplicates,
    a_forbidden_job_creation_crashes_the_run_with_one_clear_line,
    job_creation_keeps_to_the_client_side_rate_limit,
    a_flow_missing_from_the_store_crashes_the_run_with_the_fix,
    a_prefect_work_pool_makes_the_jobs_and_its_edits_reach_the_agent_live,
);

/// Prefect 3's default Kubernetes work-pool template, as `prefect work-pool
/// get-default-base-job-template` prints it, with a `cpu_request` variable
/// placed into the container's resources.
pub(crate) const PREFECT_WORK_POOL: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/all/kubernetes/prefect-work-pool.json");

async fn a_prefect_work_pool_makes_the_jobs_and_its_edits_reach_the_agent_live(target: Target) {
    let cluster = Cluster::start(target, None).await;
    let backend = cluster.store();
    let pool = |args: &[&str]| weft().arg("pool").args(args).args(backend.args()).output().expect("weft pool");
    let created = pool(&["create", "k8s", "--type", "kubernetes", "--base-job-template", PREFECT_WORK_POOL]);
    assert_eq!(created.status.code(), Some(0), "{}", stderr(&created));
    let _dir = deploy(
        &backend,
        &format!(
            "deployments:\n  - name: hello\n    flow: {EXAMPLE_HELLO}\n    parameters: {{name: pools}}\n    work_pool:\n      name: k8s\n      job_variables:\n        cpu_request: 100m\n        job_patch: [{{op: add, path: /spec/template/spec/terminationGracePeriodSeconds, value: 45}}]\n"
        ),
    );
    let agent = cluster.agent(&backend, &["--pool", "k8s"]);
    let watch = || weft().args(["deployment", "run", "hello", "--watch"]).args(backend.args()).output().expect("run");
    let output = watch();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "\"Hello, pools!\"\n");
    let store = backend.open();
    let first = store.run_ids().await.expect("runs").pop().expect("a run");
    let job = cluster.jobs_of(std::slice::from_ref(&first)).await.pop().expect("its Job");
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["name"], "prefect-job", "the template's container");
    assert_eq!(container["resources"]["requests"]["cpu"], "100m", "the deployment's variable");
    assert_eq!(job["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], 45, "the job_patch");

    // An edit of the pool's template reaches the agent without a restart.
    let template = std::fs::read_to_string(PREFECT_WORK_POOL).expect("template");
    let edited = template.replace(r#""generateName": "{{ name }}-","#, r#""annotations": {"edition": "two"},"#);
    assert_ne!(edited, template);
    let file = _dir.path().join("edited.json");
    std::fs::write(&file, edited).expect("write");
    let updated = pool(&["update", "k8s", "--base-job-template", file.to_str().expect("utf-8")]);
    assert_eq!(updated.status.code(), Some(0), "{}", stderr(&updated));
    let output = watch();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let second = store.run_ids().await.expect("runs").pop().expect("a run");
    assert_ne!(second, first);
    let job = cluster.jobs_of(std::slice::from_ref(&second)).await.pop().expect("its Job");
    assert_eq!(job["metadata"]["annotations"]["edition"], "two", "the edited template made the second Job");
    let log = agent.stop();
    assert!(log.contains("work pool `k8s` changed"), "{log}");
    cluster.tear_down().await;
}

/// The API server goes away mid-run (every replica restarted, say) and
/// comes back with its watch history compacted: the agent's watches, which
/// resume from where they were, get 410 Gone and must list again at once.
/// Only failures to connect back off, and briefly. Test server only: an
/// outage of a real cluster cannot be caused from a test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_api_server_outage_expired_watches_list_again_at_once() {
    let setup =
        Setup::new(Target::TestServer, None, &yaml("ticks", SLOW, "{ticks: 20, interval_ms: 100}", "{}", "")).await;
    let server = setup.cluster.server().expect("the test server");
    let id = setup.started("ticks").await;
    server.outage();
    let store = setup.backend.open();
    // The pod runs on and records its end in the store meanwhile.
    wait_for("the run to complete", Duration::from_secs(60), async || {
        state(&store, &id).await == Some(State::Completed)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    // Compacted: no watch can resume from before the outage.
    server.set_watch_history(1);
    server.clear_requests();
    server.restore();
    let restored = std::time::SystemTime::now();
    wait_for("the agent to see the run end", Duration::from_secs(60), async || {
        store.claimed("kube").await.expect("claims").is_empty()
    })
    .await;
    let seen = restored.elapsed().expect("clock");
    let lists: Vec<Duration> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/pods") && !r.query.as_deref().unwrap_or_default().contains("watch=true"))
        .filter_map(|r| r.at.duration_since(restored).ok())
        .collect();
    let first = lists.first().copied().expect("the pods were listed again");
    // Before, the agent waited out kube-rs's default backoff (up to 30 s)
    // twice: once to reconnect, once more after the 410.
    assert!(first < Duration::from_secs(6), "pods listed again {first:?} after the server came back");
    assert!(seen < Duration::from_secs(12), "the run was seen ended {seen:?} after the server came back");
}

/// Fault injection: the API server away for 20 s while runs are in flight
/// and queued. Every run ends once it is back, none twice (its Jobs are
/// neither lost nor made again). Test server only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_away_for_20_seconds_mid_run() {
    let setup = Setup::new(
        Target::TestServer,
        None,
        &yaml("ticks", SLOW, "{ticks: 30, interval_ms: 100}", "{}", "    concurrency_limit: 3\n"),
    )
    .await;
    let server = setup.cluster.server().expect("the test server");
    let first = setup.started("ticks").await;
    let mut ids = vec![first];
    ids.extend((0..4).map(|_| run_deployment(&setup.backend, "ticks", &[])));
    server.outage();
    tokio::time::sleep(Duration::from_secs(20)).await;
    server.restore();
    let store = setup.backend.open();
    crate::agent::wait_all_final(&store, &ids, Duration::from_secs(120)).await;
    for id in &ids {
        let history = states(&store, id).await;
        assert_eq!(history.iter().filter(|s| **s == State::Running).count(), 1, "{id}: {history:?}");
        assert_eq!(history.last(), Some(&State::Completed), "{id}: {history:?}");
    }
    let jobs = setup.cluster.jobs_of(&ids).await;
    assert_eq!(jobs.len(), ids.len(), "one Job per run");
    setup.finish().await;
}

/// A cluster, a store, a deployment on it and an agent.
struct Setup {
    // Dropped first: the agent stops before the cluster does.
    agent: Option<AgentProcess>,
    cluster: Cluster,
    backend: Backend,
    _dir: tempfile::TempDir,
}

/// One deployment `name` of `flow`, with `parameters`, `job_variables` and
/// further deployment fields (`extra`, YAML lines).
fn yaml(name: &str, flow: &str, parameters: &str, job_variables: &str, extra: &str) -> String {
    format!(
        "deployments:\n  - name: {name}\n    flow: {flow}\n    parameters: {parameters}\n{extra}    infrastructure:\n      type: kubernetes\n      job_variables: {job_variables}\n"
    )
}

impl Setup {
    async fn new(target: Target, forbidden: Option<Forbidden>, yaml: &str) -> Setup {
        let cluster = Cluster::start(target, forbidden).await;
        let backend = cluster.store();
        let dir = deploy(&backend, yaml);
        let agent = Some(cluster.agent(&backend, &[]));
        Setup { cluster, backend, agent, _dir: dir }
    }

    /// Starts a run of `deployment` and waits for it to end.
    async fn run_to_the_end(&self, deployment: &str) -> (String, StateRecord, Vec<LogLine>) {
        let id = run_deployment(&self.backend, deployment, &[]);
        let (last, logs) = self.end_of(&id).await;
        (id, last, logs)
    }

    /// A pod whose container never ran has no log: the agent does not ask
    /// for one (the API server's request log shows it; on a real cluster
    /// its audit log would).
    fn assert_no_log_requests(&self) {
        if let Some(server) = self.cluster.server() {
            let asked: Vec<String> =
                server.requests().into_iter().map(|r| r.path).filter(|p| p.ends_with("/log")).collect();
            assert!(asked.is_empty(), "the agent asked for the log of a pod that never ran: {asked:?}");
        }
    }

    async fn end_of(&self, id: &str) -> (StateRecord, Vec<LogLine>) {
        let store = self.backend.open();
        wait_for("the run to end", Duration::from_secs(180), async || {
            state(&store, id).await.is_some_and(State::is_final)
        })
        .await;
        let last = store.latest_state(id).await.expect("state").expect("a state").1;
        (last, store.read_logs(id, None).await.expect("logs").0)
    }

    async fn started(&self, deployment: &str) -> String {
        let id = run_deployment(&self.backend, deployment, &[]);
        let store = self.backend.open();
        wait_for("the run to start", Duration::from_secs(120), async || {
            state(&store, &id).await == Some(State::Running)
        })
        .await;
        id
    }

    async fn finish(mut self) -> String {
        let log = self.agent.take().map(AgentProcess::stop).unwrap_or_default();
        self.cluster.tear_down().await;
        log
    }
}

/// A slow flow that logs every 250 ms for ten seconds.
const SLOW_PARAMS: &str = "{ticks: 40, interval_ms: 250}";

fn reason(record: &StateRecord) -> &str {
    record.message.as_deref().unwrap_or_default()
}

/// The run's log lines that Kubernetes events became.
fn events(logs: &[LogLine]) -> Vec<&str> {
    logs.iter()
        .filter(|l| l.message.starts_with("Pod ") || l.message.starts_with("Job "))
        .map(|l| l.message.as_str())
        .collect()
}

/// The pod's last lines, copied into the run's log after a crash.
fn last_lines(logs: &[LogLine]) -> Vec<&str> {
    logs.iter()
        .skip_while(|l| !l.message.starts_with("The runner's last lines"))
        .skip(1)
        .map(|l| l.message.as_str())
        .collect()
}

// --- The golden Job ----------------------------------------------------------

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/all/kubernetes/hello-job.golden.yaml");

/// Replaces what differs between runs and clusters with `{placeholders}`.
fn normalize(value: &mut Value, swaps: &[(String, &str)]) {
    match value {
        Value::String(text) => {
            if let Some((_, to)) = swaps.iter().find(|(from, _)| from == text) {
                *text = (*to).to_owned();
                return;
            }
            for (from, to) in swaps {
                *text = text.replace(from.as_str(), to);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| normalize(v, swaps)),
        Value::Object(map) => map.values_mut().for_each(|v| normalize(v, swaps)),
        _ => {}
    }
}

/// Where `actual` differs from `golden`: every field of `golden` must be in
/// `actual` with the same value, and every list as long, item by item. The
/// API server's own additions (defaults, uid, status) are allowed.
fn differences(actual: &Value, golden: &Value, path: &str, out: &mut Vec<String>) {
    match (golden, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                match have.get(key) {
                    Some(found) => differences(found, value, &format!("{path}.{key}"), out),
                    None => out.push(format!("{path}.{key} is missing")),
                }
            }
        }
        (Value::Array(want), Value::Array(have)) if want.len() == have.len() => {
            for (i, (value, found)) in want.iter().zip(have).enumerate() {
                differences(found, value, &format!("{path}[{i}]"), out);
            }
        }
        _ if golden != actual => out.push(format!("{path} is {actual}, not {golden}")),
        _ => {}
    }
}

async fn a_deployment_run_becomes_exactly_the_rendered_job_and_completes(target: Target) {
    let setup = Setup::new(
        target,
        None,
        &yaml("hello", EXAMPLE_HELLO, "{name: Kubernetes}", "{memory_limit: 512Mi, labels: {team: data}}", ""),
    )
    .await;
    let output =
        weft().args(["deployment", "run", "hello", "--watch"]).args(setup.backend.args()).output().expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "\"Hello, Kubernetes!\"\n");
    let store = setup.backend.open();
    let id = store.run_ids().await.expect("runs").pop().expect("a run");
    assert_eq!(states(&store, &id).await, [State::Scheduled, State::Pending, State::Running, State::Completed]);
    let logs = store.read_logs(&id, None).await.expect("logs").0;
    assert!(logs.iter().any(|l| l.message == "Hello, Kubernetes!"), "the flow's own log is in the store");

    let jobs = setup.cluster.jobs_of(std::slice::from_ref(&id)).await;
    assert_eq!(jobs.len(), 1, "one Job");
    let mut job = jobs[0].clone();
    // The UI names the Job and the pod the runner ran in.
    let ui = crate::ui::UiProcess::start(&setup.backend, &[]);
    let shown = crate::ui::get(&ui.url(&format!("/api/runs/{id}"))).json();
    let job_name = job["metadata"]["name"].as_str().expect("the Job's name");
    assert_eq!(shown["kubernetes_job"], job_name, "{shown}");
    assert!(shown["runner_host"].as_str().is_some_and(|pod| pod.starts_with(job_name)), "the pod: {shown}");
    drop(ui);
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let env = container["env"].as_array().cloned().unwrap_or_default();
    let store_options = env
        .iter()
        .find(|e| e["name"] == "WEFT_STORE_OPTIONS")
        .and_then(|e| e["value"].as_str())
        .unwrap_or("{}")
        .to_owned();
    let options: Value = serde_json::from_str(&store_options).expect("JSON");
    for key in ["secret_access_key", "access_key_id", "access_key", "bearer_token"] {
        assert!(options.get(key).is_none(), "no credentials in the Job: {options}");
    }
    let swaps = [
        (store_options, "{store_options}"),
        (id.clone(), "{run_id}"),
        (id.to_lowercase(), "{run_id}"),
        (setup.backend.url.clone(), "{store}"),
        (setup.cluster.image.clone(), "{image}"),
        (setup.cluster.store_secret.clone(), "{store_secret}"),
        (setup.cluster.namespace.clone(), "{namespace}"),
    ];
    normalize(&mut job, &swaps);
    let golden: Value = serde_saphyr::from_str(&std::fs::read_to_string(GOLDEN).expect("golden file")).expect("YAML");
    let mut found = Vec::new();
    differences(&job, &golden, "job", &mut found);
    assert!(found.is_empty(), "the Job differs from {GOLDEN}:\n{}", found.join("\n"));
    setup.finish().await;
}

// --- Crash modes -------------------------------------------------------------

async fn an_image_that_cannot_be_pulled_crashes_the_run_after_the_pod_watch_timeout(target: Target) {
    let image = "registry.invalid/weft/weft:missing";
    let variables = format!("{{image: {image}, pod_watch_timeout: 3}}");
    let setup = Setup::new(target, None, &yaml("pull", EXAMPLE_HELLO, "{}", &variables, "")).await;
    let (_, last, logs) = setup.run_to_the_end("pull").await;
    assert_eq!(last.state, State::Crashed);
    assert!(reason(&last).starts_with(&format!("the image `{image}` could not be pulled (")), "{}", reason(&last));
    assert!(reason(&last).contains("check the image name and the image pull secrets"), "{}", reason(&last));
    // The kubelet's events are in the run's log, for a person to read.
    let events = events(&logs);
    assert!(events.iter().any(|m| m.contains(&format!(": Pulling: Pulling image \"{image}\""))), "{events:?}");
    assert!(
        logs.iter().any(|l| l.level == weft::model::Level::Warn && l.message.contains(": Failed: ")),
        "the pull failure is a warning in the log: {events:?}"
    );
    setup.assert_no_log_requests();
    setup.finish().await;
}

async fn an_invalid_image_name_crashes_the_run_at_once(target: Target) {
    let setup = Setup::new(
        target,
        None,
        &yaml("invalid", EXAMPLE_HELLO, "{}", "{image: \"Weft:Bad\", pod_watch_timeout: 600}", ""),
    )
    .await;
    let (_, last, _) = setup.run_to_the_end("invalid").await;
    assert_eq!(last.state, State::Crashed);
    assert!(reason(&last).starts_with("the image `Weft:Bad` is not a valid image name: "), "{}", reason(&last));
    setup.finish().await;
}

async fn a_slow_pull_within_the_timeout_is_not_a_crash(target: Target) {
    // `Always` pulls on every start: the pod waits in ContainerCreating.
    let setup = Setup::new(
        target,
        None,
        &yaml("pulls", EXAMPLE_HELLO, "{}", "{image_pull_policy: Always, pod_watch_timeout: 120}", ""),
    )
    .await;
    let (_, last, logs) = setup.run_to_the_end("pulls").await;
    assert_eq!(last.state, State::Completed, "{:?}", last.message);
    assert!(events(&logs).iter().any(|m| m.contains(": Pulling: Pulling image")), "{:?}", events(&logs));
    setup.finish().await;
}

async fn an_unschedulable_pod_crashes_the_run_with_the_scheduler_message(target: Target) {
    let variables = "{node_selector: {weft.dev/test-node: none}, pod_watch_timeout: 3}";
    let setup = Setup::new(target, None, &yaml("nowhere", EXAMPLE_HELLO, "{}", variables, "")).await;
    let (_, last, logs) = setup.run_to_the_end("nowhere").await;
    assert_eq!(last.state, State::Crashed);
    let why = reason(&last);
    assert!(why.starts_with("the pod never started within 3s: 0/"), "{why}");
    assert!(why.contains("didn't match Pod's node affinity/selector"), "the scheduler's own words: {why}");
    assert!(events(&logs).iter().any(|m| m.contains(": FailedScheduling: ")), "{:?}", events(&logs));
    setup.assert_no_log_requests();
    setup.finish().await;
}

async fn an_oom_killed_pod_crashes_the_run_naming_the_memory_limit_with_its_last_lines(target: Target) {
    // The sandbox allows 2 GiB; the pod only 192 MiB, which the flow
    // outgrows by 8 MiB a tick.
    let setup = Setup::new(
        target,
        None,
        &yaml(
            "hungry",
            SLOW,
            "{ticks: 400, interval_ms: 50, grow_mib: 8}",
            "{memory_limit: 192Mi}",
            "    sandbox: {memory: 2GiB}\n",
        ),
    )
    .await;
    let (_, last, logs) = setup.run_to_the_end("hungry").await;
    assert_eq!(last.state, State::Crashed);
    let why = reason(&last);
    assert!(why.starts_with("the flow container was OOMKilled (exit code 137)"), "{why}");
    assert!(why.contains("memory limit of 192Mi") && why.contains("raise the job variable `memory_limit`"), "{why}");
    let tail = last_lines(&logs);
    assert!(tail.iter().any(|l| l.contains("holding")), "the pod's last lines are in the run's log: {tail:?}");
    setup.finish().await;
}

async fn an_evicted_pod_crashes_the_run_with_the_reason(target: Target) {
    let setup = Setup::new(target, None, &yaml("evicted", SLOW, SLOW_PARAMS, "{}", "")).await;
    let id = setup.started("evicted").await;
    let pod = setup.cluster.running_pod(&id).await;
    setup.cluster.pods_api().evict(&pod, &EvictParams::default()).await.expect("evict");
    let (last, _) = setup.end_of(&id).await;
    assert_eq!(last.state, State::Crashed);
    assert_eq!(reason(&last), "the pod was evicted: Eviction API: evicting");
    setup.finish().await;
}

async fn a_pod_deleted_from_outside_crashes_the_run_with_its_exit_code_and_last_lines(target: Target) {
    let setup = Setup::new(target, None, &yaml("deleted", SLOW, SLOW_PARAMS, "{}", "")).await;
    let id = setup.started("deleted").await;
    let pod = setup.cluster.running_pod(&id).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    setup.cluster.pods_api().delete(&pod, &DeleteParams::default()).await.expect("delete the pod");
    let (last, logs) = setup.end_of(&id).await;
    assert_eq!(last.state, State::Crashed);
    // SIGTERM stops the runner, which leaves the verdict to the agent.
    assert_eq!(reason(&last), "its pod was deleted from outside weft (the runner's exit code was 143)");
    let tail = last_lines(&logs);
    assert!(tail.iter().any(|l| l.contains("tick")), "the pod's last lines are in the run's log: {tail:?}");
    setup.finish().await;
}

async fn a_job_deleted_from_outside_ends_the_run_crashed(target: Target) {
    let setup = Setup::new(target, None, &yaml("gone", SLOW, SLOW_PARAMS, "{}", "")).await;
    let id = setup.started("gone").await;
    let name = weft::agent::kubernetes::job_name("gone", &id);
    setup.cluster.jobs_api().delete(&name, &DeleteParams::background()).await.expect("delete the Job");
    let (last, _) = setup.end_of(&id).await;
    assert_eq!(last.state, State::Crashed);
    assert_eq!(reason(&last), "its Job was deleted from outside weft");
    setup.finish().await;
}

// --- Cancellation, adoption, many runs ----------------------------------------

async fn cancelling_a_run_deletes_its_job_and_pod(target: Target) {
    let setup = Setup::new(target, None, &yaml("cancel", SLOW, SLOW_PARAMS, "{}", "")).await;
    let id = setup.started("cancel").await;
    let output = weft().args(["runs", "cancel", &id]).args(setup.backend.args()).output().expect("cancel");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let (last, _) = setup.end_of(&id).await;
    assert_eq!(last.state, State::Cancelled, "{:?}", last.message);
    let ids = [id];
    wait_for("its Job to be gone", Duration::from_secs(60), async || setup.cluster.jobs_of(&ids).await.is_empty())
        .await;
    wait_for("its pod to be gone", Duration::from_secs(60), async || setup.cluster.pods_of(&ids).await.is_empty())
        .await;
    setup.finish().await;
}

async fn a_restarted_agent_adopts_its_jobs(target: Target) {
    let mut setup = Setup::new(target, None, &yaml("adopted", SLOW, "{ticks: 16, interval_ms: 250}", "{}", "")).await;
    let id = setup.started("adopted").await;
    // Stopped as Kubernetes stops a pod (SIGTERM): the agent leaves its run
    // going at once, for the next agent of its name.
    let stopped = std::time::Instant::now();
    let log = setup.agent.take().map(AgentProcess::stop).unwrap_or_default();
    assert!(stopped.elapsed() < Duration::from_secs(10), "the agent did not wait out a grace period: {log}");
    assert!(log.contains("running runs go on"), "{log}");
    let store = setup.backend.open();
    assert_eq!(state(&store, &id).await, Some(State::Running), "the run went on without its agent");
    setup.agent = Some(setup.cluster.agent(&setup.backend, &[]));
    let (last, _) = setup.end_of(&id).await;
    assert_eq!(last.state, State::Completed, "{:?}", last.message);
    wait_for("the claim to settle", Duration::from_secs(30), async || {
        store.claimed("kube").await.expect("claims").is_empty()
    })
    .await;
    assert_eq!(setup.cluster.jobs_of(&[id]).await.len(), 1, "one Job, never a second");
    let log = setup.finish().await;
    assert!(log.contains("adopting a run claimed before a restart"), "{log}");
}

/// Queues `count` runs of a deployment directly in the store.
async fn queue(backend: &Backend, deployment: &str, count: usize) -> Vec<String> {
    let store = backend.open();
    let deployment = store.deployment(deployment).await.expect("read").expect("deployed");
    let mut ids = Vec::new();
    for _ in 0..count {
        let run = store
            .schedule_run(&deployment, Default::default(), std::time::SystemTime::now(), None, 1)
            .await
            .expect("schedule");
        ids.push(run.expect("created").id);
    }
    ids
}

async fn two_agents_turn_200_runs_into_200_jobs_without_duplicates(target: Target) {
    let cluster = Cluster::start(target, None).await;
    let backend = cluster.store();
    let _dir = deploy(&backend, &yaml("many", EXAMPLE_HELLO, "{}", "{}", ""));
    let ids = queue(&backend, "many", 200).await;
    let agents = [
        cluster.agent_named(&backend, "kube-a", &["--limit", "12"]),
        cluster.agent_named(&backend, "kube-b", &["--limit", "12"]),
    ];
    let store = backend.open();
    wait_for("200 runs to end", Duration::from_secs(600), async || {
        let mut ended = 0;
        for id in &ids {
            ended += usize::from(state(&store, id).await.is_some_and(State::is_final));
        }
        ended == ids.len()
    })
    .await;
    agents.into_iter().for_each(AgentProcess::kill);

    let jobs = cluster.jobs_of(&ids).await;
    let names: BTreeSet<&str> = jobs.iter().filter_map(|j| j["metadata"]["name"].as_str()).collect();
    assert_eq!((jobs.len(), names.len()), (200, 200), "one Job per run");
    let mut claimed_by = BTreeMap::<String, usize>::new();
    for id in &ids {
        let history = store.states(id).await.expect("states");
        let kinds: Vec<State> = history.iter().map(|(_, r)| r.state).collect();
        assert_eq!(kinds, [State::Scheduled, State::Pending, State::Running, State::Completed], "run {id}");
        let by = history[1].1.by.clone().unwrap_or_default();
        *claimed_by.entry(by).or_default() += 1;
    }
    assert_eq!(claimed_by.keys().collect::<Vec<_>>(), ["kube-a", "kube-b"], "both agents claimed runs: {claimed_by:?}");
    cluster.tear_down().await;
}

// --- The API server's answers -------------------------------------------------

async fn a_forbidden_job_creation_crashes_the_run_with_one_clear_line(target: Target) {
    let setup = Setup::new(target, Some(("create", "jobs")), &yaml("denied", EXAMPLE_HELLO, "{}", "{}", "")).await;
    let (_, last, _) = setup.run_to_the_end("denied").await;
    let namespace = setup.cluster.namespace.clone();
    let log = setup.finish().await;
    assert_eq!(last.state, State::Crashed);
    let line = format!("the agent may not create jobs in namespace `{namespace}`");
    assert!(reason(&last).contains(&line), "{}", reason(&last));
    assert!(reason(&last).contains(&format!("weft agent install --namespace {namespace} --rbac")), "{}", reason(&last));
    assert!(!reason(&last).contains('\n'), "one line: {}", reason(&last));
    assert!(log.contains(&line), "the agent log says so too: {log}");
}

async fn job_creation_keeps_to_the_client_side_rate_limit(target: Target) {
    let cluster = Cluster::start(target, None).await;
    let backend = cluster.store();
    let _dir = deploy(&backend, &yaml("paced", EXAMPLE_HELLO, "{}", "{}", ""));
    let ids = queue(&backend, "paced", 24).await;
    let agent = cluster.agent(&backend, &["--kube-qps", "4", "--kube-burst", "4", "--limit", "24"]);
    wait_for("24 Jobs", Duration::from_secs(120), async || cluster.jobs_of(&ids).await.len() == 24).await;
    drop(agent);
    // The API server stamps each Job's creation to the second.
    let mut per_second = BTreeMap::<String, usize>::new();
    for job in cluster.jobs_of(&ids).await {
        let created = job["metadata"]["creationTimestamp"].as_str().expect("creationTimestamp").to_owned();
        *per_second.entry(created).or_default() += 1;
    }
    let peak = per_second.values().copied().max().unwrap_or_default();
    assert!(peak <= 8, "at most burst + qps Job creations in any second: {per_second:?}");
    let seconds: Vec<chrono::DateTime<chrono::FixedOffset>> =
        per_second.keys().map(|t| chrono::DateTime::parse_from_rfc3339(t).expect("RFC 3339")).collect();
    let span = seconds.last().zip(seconds.first()).map(|(l, f)| (*l - *f).num_seconds()).unwrap_or_default();
    assert!(span >= 3, "24 creations at 4 a second after a burst of 4 take 5 s or more: {per_second:?}");
    cluster.tear_down().await;
}

async fn a_flow_missing_from_the_store_crashes_the_run_with_the_fix(target: Target) {
    let setup = Setup::new(target, None, &yaml("unpushed", EXAMPLE_HELLO, "{}", "{}", "")).await;
    let store = setup.backend.open();
    let digest = store.deployment("unpushed").await.expect("read").expect("deployed").flow;
    store.delete(&format!("artifacts/sha256/{}.wasm", digest.hex())).await.expect("delete the component");
    let (_, last, _) = setup.run_to_the_end("unpushed").await;
    assert_eq!(last.state, State::Crashed);
    let why = reason(&last);
    assert_eq!(last.by.as_deref(), Some("runner"), "the pod's runner says so itself");
    assert!(why.contains(&format!("component {digest} is not in store `{}`", setup.backend.url)), "{why}");
    assert!(why.contains("push it first with `weft push FILE.wasm --store"), "{why}");
    setup.finish().await;
}

/// Two pools, two clusters, one store: each pool's agent runs its runs in
/// its own cluster, and with one agent gone, its pool's runs wait while the
/// other pool's go on. Test servers only: a test cannot summon a second
/// real cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pools_on_two_clusters_keep_to_their_own() {
    let (east, west) = (Cluster::start(Target::TestServer, None).await, Cluster::start(Target::TestServer, None).await);
    let backend = east.store();
    for name in ["east", "west"] {
        let created = weft().args(["pool", "create", name, "--type", "kubernetes"]).args(backend.args()).output();
        let created = created.expect("weft pool create");
        assert_eq!(created.status.code(), Some(0), "{}", stderr(&created));
    }
    let _dir = deploy(
        &backend,
        &format!(
            "deployments:\n  - name: a\n    flow: {EXAMPLE_HELLO}\n    work_pool: {{name: east}}\n  - name: b\n    flow: {EXAMPLE_HELLO}\n    work_pool: {{name: west}}\n"
        ),
    );
    let east_agent = east.agent_named(&backend, "east", &["--pool", "east"]);
    let west_agent = west.agent_named(&backend, "west", &["--pool", "west"]);
    let store = backend.open();
    let a: Vec<String> = (0..2).map(|_| run_deployment(&backend, "a", &[])).collect();
    let b: Vec<String> = (0..2).map(|_| run_deployment(&backend, "b", &[])).collect();
    crate::agent::wait_all_final(&store, &[a.clone(), b.clone()].concat(), Duration::from_secs(120)).await;
    for id in a.iter().chain(&b) {
        assert_eq!(state(&store, id).await, Some(State::Completed));
    }
    assert_eq!(east.jobs_of(&a).await.len(), 2, "pool east's runs ran in cluster east");
    assert_eq!(west.jobs_of(&b).await.len(), 2, "pool west's runs ran in cluster west");
    assert!(east.jobs_of(&b).await.is_empty() && west.jobs_of(&a).await.is_empty(), "and nowhere else");

    // Cluster west's agent stops: pool west's runs wait, pool east's flow.
    drop(west_agent);
    let waiting = run_deployment(&backend, "b", &[]);
    let flowing: Vec<String> = (0..2).map(|_| run_deployment(&backend, "a", &[])).collect();
    crate::agent::wait_all_final(&store, &flowing, Duration::from_secs(120)).await;
    assert_eq!(state(&store, &waiting).await, Some(State::Scheduled));
    assert!(west.jobs_of(std::slice::from_ref(&waiting)).await.is_empty());
    assert!(east.jobs_of(std::slice::from_ref(&waiting)).await.is_empty());
    drop(east_agent);
    east.tear_down().await;
    west.tear_down().await;
}

/// A Kubernetes agent counts its API requests by verb and answer, and is
/// unready while the API server is away (alive all along). Test server
/// only: an outage of a real cluster cannot be caused from a test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_counts_api_requests_and_is_unready_while_the_api_server_is_away() {
    let cluster = Cluster::start(Target::TestServer, None).await;
    let backend = cluster.store();
    let _dir = deploy(&backend, &yaml("hello", EXAMPLE_HELLO, "{}", "{}", ""));
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("address").port();
    let listen = format!("127.0.0.1:{port}");
    let agent = cluster.agent(&backend, &["--metrics-listen", &listen]);
    crate::endpoints::answer(port, "/readyz", 200).await;
    let output = weft().args(["deployment", "run", "hello", "--watch"]).args(backend.args()).output().expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let page = crate::endpoints::answer(port, "/metrics", 200).await;
    assert!(page.contains(r#"weft_kube_requests_total{verb="create",status="201"} 1"#), "{page}");
    assert!(page.contains(r#"weft_kube_requests_total{verb="watch",status="200"}"#), "{page}");

    let server = cluster.server().expect("the test server");
    server.outage();
    let reason = crate::endpoints::answer(port, "/readyz", 503).await;
    assert!(reason.contains("the Kubernetes API server does not answer"), "{reason}");
    assert_eq!(crate::endpoints::get(port, "/healthz").map(|(status, _)| status), Some(200), "still alive");
    server.restore();
    crate::endpoints::answer(port, "/readyz", 200).await;
    drop(agent);
    cluster.tear_down().await;
}
