//! Deployments, the agent and the runner, with real `weft` processes on a
//! local store (and the S3 emulator for the end-to-end path).

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use weft::model::{Level, State};
use weft::store::Store;

use crate::fixtures::{EXAMPLE_ETL, EXAMPLE_HELLO, PANICS, PARAMS, SANDBOX_PROBE, SLOW};
use crate::store::Backend;
use crate::{stderr, stdout, weft};

/// A `weft agent` process, stopped with SIGTERM when dropped.
pub(crate) struct AgentProcess {
    child: Option<Child>,
}

impl AgentProcess {
    pub(crate) fn start(backend: &Backend, name: &str, extra: &[&str]) -> AgentProcess {
        Self::start_with_env(backend, name, extra, &[])
    }

    pub(crate) fn start_with_env(backend: &Backend, name: &str, extra: &[&str], env: &[(&str, &str)]) -> AgentProcess {
        let child = weft()
            .envs(env.iter().copied())
            .args(["agent", "--name", name, "--poll-interval", "200ms"])
            .args(extra)
            .args(backend.args())
            .env("WEFT_LOG", "weft=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("weft agent");
        AgentProcess { child: Some(child) }
    }

    /// SIGKILL: the agent gets no chance to clean up.
    pub(crate) fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and the agent's log.
    pub(crate) fn stop(mut self) -> String {
        let Some(child) = self.child.take() else { return String::new() };
        signal(i32::try_from(child.id()).expect("pid"), "TERM");
        let output = child.wait_with_output().expect("agent exits");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

impl Drop for AgentProcess {
    /// SIGTERM (SIGKILL in a failing test), and at most 40 s for the agent
    /// to stop. Its stderr is drained meanwhile: an agent blocked writing to
    /// a full pipe would never exit.
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Some(mut stderr) = child.stderr.take() {
            std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        }
        if std::thread::panicking() {
            let _ = child.kill();
        } else if let Ok(pid) = i32::try_from(child.id()) {
            signal(pid, "TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(40);
        while matches!(child.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub(crate) fn signal(pid: i32, name: &str) {
    let _ = std::process::Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
}

pub(crate) fn deploy(backend: &Backend, yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("weft.yaml");
    std::fs::write(&file, yaml).expect("write weft.yaml");
    let output = weft().args(["deploy", "-f"]).arg(&file).args(backend.args()).output().expect("weft deploy");
    assert_eq!(output.status.code(), Some(0), "deploy: {}", stderr(&output));
    dir
}

/// Schedules a run of a deployment now and returns its id.
pub(crate) fn run_deployment(backend: &Backend, name: &str, params: &[&str]) -> String {
    let mut command = weft();
    command.args(["deployment", "run", name]).args(backend.args());
    for param in params {
        command.args(["-p", param]);
    }
    let output = command.output().expect("weft deployment run");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output).trim().to_owned()
}

/// `weft deployment run NAME --watch` with `-p` parameters: its output,
/// once it has exited 0 (the run Completed).
pub(crate) fn run_and_watch(backend: &Backend, name: &str, params: &[&str]) -> std::process::Output {
    let mut command = weft();
    command.args(["deployment", "run", name, "--watch"]).args(backend.args());
    for param in params {
        command.args(["-p", param]);
    }
    let output = command.output().expect("weft deployment run --watch");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    output
}

pub(crate) async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every run of `ids` is in a final state.
pub(crate) async fn wait_all_final(store: &Store, ids: &[String], timeout: Duration) {
    wait_for("every run to end", timeout, async || {
        for id in ids {
            if !state(store, id).await.is_some_and(State::is_final) {
                return false;
            }
        }
        true
    })
    .await;
}

pub(crate) async fn state(store: &Store, id: &str) -> Option<State> {
    store.latest_state(id).await.expect("state").map(|(_, r)| r.state)
}

pub(crate) async fn states(store: &Store, id: &str) -> Vec<State> {
    store.states(id).await.expect("states").into_iter().map(|(_, r)| r.state).collect()
}

/// The pid of the runner of a run, from its heartbeat (`host/pid`).
pub(crate) async fn runner_pid(store: &Store, id: &str) -> i32 {
    let mut pid = None;
    wait_for("a heartbeat", Duration::from_secs(30), async || {
        pid = store
            .heartbeat(id)
            .await
            .expect("heartbeat")
            .and_then(|b| b.runner.rsplit('/').next().and_then(|p| p.parse().ok()));
        pid.is_some()
    })
    .await;
    pid.expect("pid")
}

/// A local store, an agent, and a run of the slow flow that has started.
async fn slow_run_started() -> (Backend, tempfile::TempDir, AgentProcess, String) {
    let backend = Backend::file();
    let dir = deploy(&backend, &format!("deployments:\n{}", slow_yaml("slow", "")));
    let agent = AgentProcess::start(&backend, "a", &[]);
    let id = run_deployment(&backend, "slow", &[]);
    let store = backend.open();
    wait_for("the run to start", Duration::from_secs(30), async || state(&store, &id).await == Some(State::Running))
        .await;
    (backend, dir, agent, id)
}

fn hello_yaml(extra: &str) -> String {
    format!("deployments:\n  - name: hello\n    flow: {EXAMPLE_HELLO}\n{extra}")
}

pub(crate) fn slow_yaml(name: &str, extra: &str) -> String {
    format!("  - name: {name}\n    flow: {SLOW}\n    parameters: {{ticks: 40, interval_ms: 250}}\n{extra}")
}

async fn deployment_run_end_to_end(backend: Backend) {
    let _dir =
        deploy(&backend, &format!("deployments:\n  - name: etl\n    flow: {EXAMPLE_ETL}\n    tags: [tutorial]\n"));
    let agent = AgentProcess::start(&backend, "e2e", &[]);
    let output = weft()
        .args(["deployment", "run", "etl", "--watch"])
        .args(backend.args())
        .output()
        .expect("weft deployment run --watch");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "[10,20,30]\n");
    assert!(stderr(&output).contains("etl/load | Here's your data: [10, 20, 30]"), "{}", stderr(&output));

    let store = backend.open();
    let id = store.run_ids().await.expect("runs").pop().expect("one run");
    assert_eq!(states(&store, &id).await, [State::Scheduled, State::Pending, State::Running, State::Completed]);
    let run = store.read_run(&id).await.expect("read").expect("run");
    assert_eq!(run.deployment.as_deref(), Some("etl"));
    assert_eq!(store.read_result(&id).await.expect("result"), Some(json!([10, 20, 30])));
    assert_eq!(store.task_runs(&id).await.expect("tasks").len(), 3);
    let pending = store.states(&id).await.expect("states")[1].1.clone();
    assert_eq!(pending.by.as_deref(), Some("e2e"), "the claim names the agent");
    drop(agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_runs_end_to_end_on_a_local_store() {
    deployment_run_end_to_end(Backend::file()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_runs_end_to_end_on_s3() {
    deployment_run_end_to_end(Backend::s3()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_makes_one_run_per_tick_across_two_agents() {
    let backend = Backend::file();
    let _dir = deploy(&backend, &hello_yaml("    schedule:\n      cron: \"*/2 * * * * *\"\n"));
    let started = SystemTime::now();
    let a = AgentProcess::start(&backend, "a", &[]);
    let b = AgentProcess::start(&backend, "b", &[]);
    tokio::time::sleep(Duration::from_secs(9)).await;
    drop(a);
    drop(b);
    let store = backend.open();
    let mut per_tick: HashMap<SystemTime, usize> = HashMap::new();
    for id in store.run_ids().await.expect("runs") {
        let run = store.read_run(&id).await.expect("read").expect("run");
        let tick = run.scheduled_for.expect("a scheduled run has its time");
        assert_eq!(tick.duration_since(std::time::UNIX_EPOCH).expect("time").as_millis() % 2000, 0, "on the schedule");
        *per_tick.entry(tick).or_default() += 1;
    }
    assert!(per_tick.len() >= 3, "about one tick every 2s over 9s: {per_tick:?}");
    assert!(per_tick.values().all(|&n| n == 1), "each tick became exactly one run: {per_tick:?}");
    assert!(per_tick.keys().all(|t| *t >= started - Duration::from_secs(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_run_each_of_500_queued_runs_exactly_once() {
    let backend = Backend::file();
    let _dir = deploy(&backend, &hello_yaml(""));
    let store = backend.open();
    let deployment = store.deployment("hello").await.expect("read").expect("deployed");
    let mut ids = Vec::new();
    for i in 0..500 {
        let parameters = json!({"name": format!("n{i}")}).as_object().cloned().expect("object");
        let run = store.schedule_run(&deployment, parameters, SystemTime::now(), None, 1).await.expect("schedule");
        ids.push(run.expect("created").id);
    }
    let a = AgentProcess::start(&backend, "a", &["--limit", "16"]);
    let b = AgentProcess::start(&backend, "b", &["--limit", "16"]);
    wait_for("500 runs to finish", Duration::from_secs(600), async || store.queue().await.expect("queue").is_empty())
        .await;
    for id in &ids {
        wait_for("the run to end", Duration::from_secs(60), async || state(&store, id).await == Some(State::Completed))
            .await;
    }
    drop(a);
    drop(b);
    let mut by_agent: HashMap<String, usize> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let history = store.states(id).await.expect("states");
        let kinds: Vec<State> = history.iter().map(|(_, r)| r.state).collect();
        assert_eq!(kinds, [State::Scheduled, State::Pending, State::Running, State::Completed], "run {id}");
        *by_agent.entry(history[1].1.by.clone().unwrap_or_default()).or_default() += 1;
        let (logs, _) = store.read_logs(id, None).await.expect("logs");
        let began = logs.iter().filter(|l| l.message.starts_with("Beginning flow run")).count();
        assert_eq!(began, 1, "run {id} ran once");
        assert_eq!(store.read_result(id).await.expect("result"), Some(json!(format!("Hello, n{i}!"))));
    }
    assert_eq!(by_agent.values().sum::<usize>(), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_runner_leaves_a_crashed_run_with_its_reason() {
    let (backend, _dir, agent, id) = slow_run_started().await;
    let store = backend.open();
    let pid = runner_pid(&store, &id).await;
    signal(pid, "KILL");
    wait_for("the crash to be noticed", Duration::from_secs(30), async || {
        state(&store, &id).await == Some(State::Crashed)
    })
    .await;
    let last = store.latest_state(&id).await.expect("state").expect("crashed").1;
    let reason = last.message.unwrap_or_default();
    assert_eq!(reason, "the runner exited (signal 9) without recording an outcome");
    let (logs, _) = store.read_logs(&id, None).await.expect("logs");
    assert!(
        logs.iter().any(|l| l.level == Level::Error && l.message.starts_with("The runner's last lines")),
        "the runner's last lines are in the run's logs"
    );
    assert!(logs.iter().any(|l| l.message.starts_with("tick ")), "copied lines include the flow's output");
    drop(agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_agent_loses_and_doubles_nothing() {
    let backend = Backend::file();
    let yaml = format!("deployments:\n{}\n  - name: hello\n    flow: {EXAMPLE_HELLO}\n", slow_yaml("slow", ""));
    let _dir = deploy(&backend, &yaml);
    let store = backend.open();
    let agent = AgentProcess::start(&backend, "steady", &[]);
    let slow = run_deployment(&backend, "slow", &[]);
    wait_for("the slow run to start", Duration::from_secs(30), async || {
        state(&store, &slow).await == Some(State::Running)
    })
    .await;
    agent.kill();
    // While no agent runs, more work arrives.
    let queued: Vec<String> = (0..5).map(|_| run_deployment(&backend, "hello", &[])).collect();
    let agent = AgentProcess::start(&backend, "steady", &["--heartbeat-timeout", "10s"]);
    for id in queued.iter().chain([&slow]) {
        wait_for("every run to complete", Duration::from_secs(60), async || {
            state(&store, id).await == Some(State::Completed)
        })
        .await;
    }
    wait_for("every claim to be settled", Duration::from_secs(30), async || {
        store.claimed("steady").await.expect("claims").is_empty()
    })
    .await;
    let log = agent.stop();
    assert!(log.contains("adopting a run claimed before a restart"), "{log}");
    for id in queued.iter().chain([&slow]) {
        let running = states(&store, id).await.iter().filter(|s| **s == State::Running).count();
        assert_eq!(running, 1, "run {id} ran exactly once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_flow_is_cancelled() {
    let (backend, _dir, agent, id) = slow_run_started().await;
    let store = backend.open();
    let output = weft().args(["runs", "cancel", &id]).args(backend.args()).output().expect("cancel");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    wait_for("the run to be cancelled", Duration::from_secs(30), async || {
        state(&store, &id).await == Some(State::Cancelled)
    })
    .await;
    assert_eq!(
        states(&store, &id).await,
        [State::Scheduled, State::Pending, State::Running, State::Cancelling, State::Cancelled]
    );
    let (logs, _) = store.read_logs(&id, None).await.expect("logs");
    let ticks = logs.iter().filter(|l| l.message.starts_with("tick ")).count();
    assert!(ticks < 40, "the flow was stopped early ({ticks} ticks)");

    // A run that has not started never does; one that has ended cannot be cancelled.
    let output = weft().args(["runs", "cancel", &id]).args(backend.args()).output().expect("cancel");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("is Cancelled already"), "{}", stderr(&output));
    drop(agent);
    let queued = run_deployment(&backend, "slow", &[]);
    let output = weft().args(["runs", "cancel", &queued]).args(backend.args()).output().expect("cancel");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(states(&store, &queued).await, [State::Scheduled, State::Cancelled]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_is_retried_as_new_attempts() {
    let backend = Backend::file();
    let _dir = deploy(
        &backend,
        &format!("deployments:\n  - name: flaky\n    flow: {PANICS}\n    retries: 2\n    retry_delay: 1s\n"),
    );
    let agent = AgentProcess::start(&backend, "a", &[]);
    let first = run_deployment(&backend, "flaky", &[]);
    let store = backend.open();
    wait_for("three attempts", Duration::from_secs(60), async || {
        let mut failed = 0;
        for id in store.run_ids().await.expect("runs") {
            failed += usize::from(state(&store, &id).await == Some(State::Failed));
        }
        failed == 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(agent);
    let mut attempts = Vec::new();
    for id in store.run_ids().await.expect("runs") {
        let run = store.read_run(&id).await.expect("read").expect("run");
        attempts.push((run.attempt, run.deployment.clone()));
    }
    attempts.sort();
    let flaky = Some("flaky".to_owned());
    assert_eq!(
        attempts,
        [(1, flaky.clone()), (2, flaky.clone()), (3, flaky)],
        "retries: 2 gives three attempts, no more"
    );
    assert_eq!(store.run_ids().await.expect("runs")[0], first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_limit_of_2_holds_across_two_agents_under_20_queued_runs() {
    let backend = Backend::file();
    let yaml = format!("deployments:\n{}", slow_yaml("limited", "    concurrency_limit: 2\n"))
        .replace("ticks: 40, interval_ms: 250", "ticks: 2, interval_ms: 100");
    let _dir = deploy(&backend, &yaml);
    let ids: Vec<String> = (0..20).map(|_| run_deployment(&backend, "limited", &[])).collect();
    // Two agents: one may take a slot for a run the other then claims; it
    // gives back only its own.
    let agents = (
        AgentProcess::start(&backend, "a", &["--limit", "10"]),
        AgentProcess::start(&backend, "b", &["--limit", "10"]),
    );
    let store = backend.open();
    for id in &ids {
        wait_for("every run to complete", Duration::from_secs(120), async || {
            state(&store, id).await == Some(State::Completed)
        })
        .await;
    }
    drop(agents);
    assert_eq!(most_at_once(&store, &ids).await, 2, "never more than two at once, and the limit was used");
}

/// From the runs' state histories: how many were claimed and not yet
/// Completed at one instant, at most.
pub(crate) async fn most_at_once(store: &Store, ids: &[String]) -> i32 {
    let mut events = Vec::new();
    for id in ids {
        for (_, record) in store.states(id).await.expect("states") {
            match record.state {
                State::Pending => events.push((record.time, 1)),
                State::Completed => events.push((record.time, -1)),
                _ => {}
            }
        }
    }
    events.sort();
    let (mut now, mut most) = (0, 0);
    for (_, change) in events {
        now += change;
        most = most.max(now);
    }
    most
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_and_bad_parameters_are_rejected_before_anything_is_scheduled() {
    let backend = Backend::file();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("weft.yaml");
    std::fs::write(&file, format!("deployments:\n  - name: p\n    flow: {PARAMS}\n    retires: 2\n")).expect("write");
    let output = weft().args(["deploy", "-f"]).arg(&file).args(backend.args()).output().expect("deploy");
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("weft.yaml line 4 column 5: unknown field `retires`: did you mean `retries`?"), "{err}");

    std::fs::write(&file, format!("deployments:\n  - name: p\n    flow: {PARAMS}\n    parameters: {{n: ten}}\n"))
        .expect("write");
    let output = weft().args(["deploy", "-f"]).arg(&file).args(backend.args()).output().expect("deploy");
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("deployment `p` (") && err.contains("line 2)"), "{err}");
    assert!(err.contains("parameter `n` must be an integer, got \"ten\""), "{err}");

    std::fs::write(&file, format!("deployments:\n  - name: p\n    flow: {PARAMS}\n    parameters: {{n: 2}}\n"))
        .expect("write");
    let output = weft().args(["deploy", "-f"]).arg(&file).args(backend.args()).output().expect("deploy");
    assert_eq!(output.status.code(), Some(0), "required parameters may be left to each run: {}", stderr(&output));
    let output = weft().args(["deployment", "run", "p", "-p", "n=ten"]).args(backend.args()).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("parameter `name` is required"), "{err}");
    assert!(err.contains("parameter `n` must be an integer"), "{err}");
    assert!(backend.open().run_ids().await.expect("runs").is_empty(), "nothing was scheduled");
    let listed: Value = serde_json::from_str(&stdout(
        &weft().args(["deployment", "ls", "--output", "json"]).args(backend.args()).output().expect("ls"),
    ))
    .expect("JSON");
    assert_eq!(listed[0]["name"], "p");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_grants_exactly_the_env_dirs_and_hosts_it_names() {
    let backend = Backend::file();
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::write(data.path().join("secret.txt"), "for the flow").expect("write");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let address = listener.local_addr().expect("address").to_string();
    let yaml = format!(
        "deployments:\n  - name: probe\n    flow: {SANDBOX_PROBE}\n    parameters: {{file: /data/secret.txt, address: \"{address}\", variable: WEFT_TEST_GRANTED}}\n    sandbox:\n      env: [WEFT_TEST_GRANTED]\n      dirs: [{{host: {}, guest: /data, read_only: true}}]\n      hosts: [\"{address}\"]\n",
        data.path().display()
    );
    let _dir = deploy(&backend, &yaml);
    let env = [("WEFT_TEST_GRANTED", "granted-value"), ("WEFT_TEST_NOT_GRANTED", "secret")];
    let agent = AgentProcess::start_with_env(&backend, "a", &[], &env);
    let output = weft().args(["deployment", "run", "probe", "--watch"]).args(backend.args()).output().expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let seen: Value = serde_json::from_str(&stdout(&output)).expect("JSON result");
    assert_eq!(seen["read"], true, "the granted directory is readable: {seen}");
    assert_eq!(seen["root_listed"], false, "nothing else is: {seen}");
    assert_eq!(seen["env_vars"], 1, "only the granted variable: {seen}");
    assert_eq!(seen["variable"], "granted-value", "{seen}");
    assert_eq!(seen["connected"], true, "the granted host is reachable: {seen}");
    assert!(listener.accept().is_ok());
    drop(agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sigterm_the_agent_lets_runs_finish_within_its_grace_period() {
    let backend = Backend::file();
    let yaml =
        format!("deployments:\n{}{}", slow_yaml("short", "").replace("ticks: 40", "ticks: 8"), slow_yaml("long", ""));
    let _dir = deploy(&backend, &yaml);
    let store = backend.open();

    let agent = AgentProcess::start(&backend, "graceful", &["--grace", "20s"]);
    let short = run_deployment(&backend, "short", &[]);
    wait_for("the run to start", Duration::from_secs(30), async || state(&store, &short).await == Some(State::Running))
        .await;
    let log = agent.stop();
    assert_eq!(state(&store, &short).await, Some(State::Completed), "the agent waited for it: {log}");
    assert!(log.contains("shutting down: no more claims"), "{log}");

    let agent = AgentProcess::start(&backend, "impatient", &["--grace", "1s"]);
    let long = run_deployment(&backend, "long", &[]);
    wait_for("the run to start", Duration::from_secs(30), async || state(&store, &long).await == Some(State::Running))
        .await;
    let _ = agent.stop();
    let last = store.latest_state(&long).await.expect("state").expect("a state").1;
    assert_eq!(last.state, State::Crashed);
    assert_eq!(last.message.as_deref(), Some("the agent shut down and its 1s grace period ran out"));
    // After SIGTERM nothing new is claimed.
    let queued = run_deployment(&backend, "short", &[]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(state(&store, &queued).await, Some(State::Scheduled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_are_listed_shown_and_deleted() {
    let backend = Backend::file();
    let _dir = deploy(&backend, &hello_yaml("    tags: [greeting]\n    schedule: {interval: 1h, active: false}\n"));
    let cli = |args: &[&str]| weft().args(args).args(backend.args()).output().expect("weft");
    let listed = stdout(&cli(&["deployment", "ls"]));
    assert!(listed.lines().next().is_some_and(|h| h.starts_with("NAME")), "{listed}");
    assert!(listed.contains("hello") && listed.contains("every 1h (paused)"), "{listed}");

    let shown: Value = serde_json::from_str(&stdout(&cli(&["deployment", "show", "hello"]))).expect("JSON");
    assert_eq!(shown["flow_name"], "hello");
    assert_eq!(shown["tags"], json!(["greeting"]));
    assert!(shown["flow"].as_str().is_some_and(|d| d.starts_with("sha256:")), "{shown}");
    assert_eq!(shown["parameters_schema"]["properties"]["name"]["type"], "string");

    let id = run_deployment(&backend, "hello", &[]);
    let deleted = cli(&["deployment", "delete", "hello"]);
    assert_eq!(deleted.status.code(), Some(0), "{}", stderr(&deleted));
    assert!(stdout(&cli(&["deployment", "ls", "--output", "json"])).trim() == "[]");
    assert!(backend.open().read_run(&id).await.expect("read").is_some(), "its runs stay");
    let missing = cli(&["deployment", "show", "hello"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("no deployment `hello`"), "{}", stderr(&missing));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_agent_leaves_runs_of_kubernetes_deployments_alone() {
    let backend = Backend::s3();
    let yaml = format!(
        "deployments:\n  - name: on-k8s\n    flow: {EXAMPLE_HELLO}\n    infrastructure: {{type: kubernetes, job_variables: {{namespace: flows}}}}\n"
    );
    let _dir = deploy(&backend, &yaml);
    let agent = AgentProcess::start(&backend, "local", &[]);
    let id = run_deployment(&backend, "on-k8s", &[]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(agent);
    assert_eq!(state(&backend.open(), &id).await, Some(State::Scheduled), "left for a kubernetes agent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_deployments_render_their_job_on_deploy() {
    let backend = Backend::s3();
    let dir = tempfile::tempdir().expect("tempdir");
    // The printed base template, edited, is a template of one's own.
    let printed = weft().arg("job-template").output().expect("weft job-template");
    assert_eq!(printed.status.code(), Some(0));
    let template =
        stdout(&printed).replace("restartPolicy: Never", "restartPolicy: Never\n        priorityClassName: batch");
    std::fs::write(dir.path().join("job.yaml"), template).expect("write");
    let file = dir.path().join("weft.yaml");
    let write = |variables: &str| {
        std::fs::write(
            &file,
            format!("deployments:\n  - name: k\n    flow: {EXAMPLE_HELLO}\n    infrastructure:\n      type: kubernetes\n      job_template: job.yaml\n      job_variables: {variables}\n"),
        )
        .expect("write");
        weft().args(["deploy", "-f"]).arg(&file).args(backend.args()).output().expect("deploy")
    };
    let output = write("{namespace: flows, memory_limit: 1Gi}");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let shown: Value = serde_json::from_str(&stdout(
        &weft().args(["deployment", "show", "k"]).args(backend.args()).output().expect("show"),
    ))
    .expect("JSON");
    assert!(shown["job_template"].as_str().is_some_and(|t| t.contains("priorityClassName: batch")), "{shown}");
    assert_eq!(shown["infrastructure"]["job_variables"]["namespace"], "flows");

    let output = write("{memory_limit: lots}");
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("deployment `k` (") && err.contains("job template `job.yaml`"), "{err}");
    assert!(err.contains("resources.limits.memory` is `lots`, not a quantity"), "{err}");
    let output = write("{imagee: x}");
    assert!(stderr(&output).contains("unknown job variable `imagee`: did you mean `image`?"), "{}", stderr(&output));

    // Pods cannot fetch a flow from a folder on this machine.
    let local = Backend::file();
    write("{namespace: flows}");
    let output = weft().args(["deploy", "-f"]).arg(&file).args(local.args()).output().expect("deploy");
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("runs on Kubernetes, but the store `file://") && err.contains("is on this machine"), "{err}");
    assert!(err.contains("weft deploy --store s3://BUCKET/weft"), "{err}");
    assert!(local.open().deployment("k").await.expect("read").is_none(), "nothing deployed");
}

#[test]
fn agent_install_prints_least_privilege_manifests_and_deploy_matches_them() {
    let output = weft()
        .args([
            "agent",
            "install",
            "--namespace",
            "weft",
            "--store",
            "s3://my-bucket/weft",
            "--rbac",
            "--store-secret",
            "weft-store",
        ])
        .output()
        .expect("weft agent install");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let printed = stdout(&output);
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let files: Vec<String> = ["serviceaccount.yaml", "role.yaml", "rolebinding.yaml", "deployment.yaml"]
        .iter()
        .map(|f| std::fs::read_to_string(deploy.join(f)).expect("deploy/ file"))
        .collect();
    assert_eq!(printed, files.join("---\n"), "deploy/ is what `weft agent install` prints; regenerate it");
    let kustomization = std::fs::read_to_string(deploy.join("kustomization.yaml")).expect("kustomization");
    for file in ["serviceaccount.yaml", "role.yaml", "rolebinding.yaml", "deployment.yaml"] {
        assert!(kustomization.contains(&format!("- {file}")), "kustomization lists {file}");
    }
    // Exactly the verbs the agent needs.
    let role: Value = serde_json::to_value(weft::agent::kubernetes::AGENT_RULES).expect("rules");
    assert_eq!(
        role,
        json!([
            ["batch", "jobs", ["create", "get", "list", "watch", "delete"]],
            ["", "pods", ["get", "list", "watch"]],
            ["", "pods/log", ["get"]],
            ["", "events", ["get", "list", "watch"]]
        ])
    );
    assert!(printed.contains("- create\n  - get\n  - list\n  - watch\n  - delete"), "{printed}");
    assert!(!printed.contains("secrets"), "the agent reads no Secrets");
    let without =
        weft().args(["agent", "install", "--namespace", "weft", "--store", "s3://b/w"]).output().expect("install");
    assert!(!stdout(&without).contains("kind: Role"), "the Role only with --rbac");
}

/// An agent for an S3-compatible store that is not AWS needs its endpoint:
/// the options reach its Deployment (and through it every Job), the
/// credentials never do.
#[test]
fn agent_install_carries_the_store_options_and_refuses_credentials() {
    let install = |extra: &[&str]| {
        weft()
            .args(["agent", "install", "--namespace", "weft", "--store", "s3://flows/weft"])
            .args(extra)
            .output()
            .expect("weft agent install")
    };
    let output = install(&[
        "--store-option",
        "endpoint=http://minio.storage:9000",
        "--store-option",
        "allow_http=true",
        "--store-secret",
        "minio",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let printed = stdout(&output);
    let deployment = printed.split("---\n").find(|d| d.contains("kind: Deployment")).expect("a Deployment");
    let deployment: Value = serde_saphyr::from_str(deployment).expect("yaml");
    let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
    let options = env.as_array().and_then(|e| e.iter().find(|v| v["name"] == "WEFT_STORE_OPTIONS")).expect("options");
    let options: Value = serde_json::from_str(options["value"].as_str().expect("text")).expect("json");
    assert_eq!(options, json!({"allow_http": "true", "endpoint": "http://minio.storage:9000"}));

    let output = install(&["--store-option", "secret_access_key=hunter2"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("store option `secret_access_key` is a credential"), "{}", stderr(&output));
    assert!(stderr(&output).contains("--store-secret NAME"), "{}", stderr(&output));
    assert!(!stdout(&output).contains("hunter2"));

    // A flag the command does not use is an error, not silently dropped.
    for (args, flag) in [
        (vec!["agent", "install", "--namespace", "w", "--store", "s3://b/w", "--kube-qps", "5"], "--kube-qps"),
        (vec!["job-template", "--store", "s3://b/w"], "--store"),
        (vec!["component", "inspect", "x.wasm", "--store-option", "a=b"], "--store-option"),
    ] {
        let output = weft().args(&args).output().expect("weft");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(stderr(&output).contains(&format!("unexpected argument '{flag}'")), "{args:?}: {}", stderr(&output));
    }
}

/// On a local store the agent watches the queue folder: a run queued while
/// the agent waits out an hour-long poll interval starts at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_a_local_store_takes_a_queued_run_without_waiting_for_its_poll() {
    let backend = Backend::file();
    let _dir = deploy(&backend, &format!("deployments:\n  - name: hello\n    flow: {EXAMPLE_HELLO}\n"));
    let store = backend.open();
    let mut agent = weft()
        .args(["agent", "--name", "watcher", "--poll-interval", "1h"])
        .args(backend.args())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("weft agent");
    // Its first look at the store is done once it has recorded itself.
    wait_for("the agent's first look", Duration::from_secs(30), async || {
        store.agent_records().await.is_ok_and(|records| records.iter().any(|r| r.name == "watcher"))
    })
    .await;
    let ids: Vec<String> = (0..3).map(|_| run_deployment(&backend, "hello", &[])).collect();
    wait_all_final(&store, &ids, Duration::from_secs(60)).await;
    for id in &ids {
        assert_eq!(state(&store, id).await, Some(State::Completed), "run {id}");
    }
    let _ = agent.kill();
    let _ = agent.wait();
}
