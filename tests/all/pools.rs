//! Work pools: kept in the store, edited by several operators at once
//! without losing a change, named by deployments, served by agents, paused
//! and limited across every agent of a pool.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use weft::model::{State, WorkPool};

use crate::agent::{AgentProcess, deploy, most_at_once, run_deployment, slow_yaml, state, wait_all_final, wait_for};
use crate::fixtures::EXAMPLE_HELLO;
use crate::store::Backend;
use crate::{stderr, stdout, weft};

fn pool(backend: &Backend, args: &[&str]) -> std::process::Output {
    weft().arg("pool").args(args).args(backend.args()).output().expect("weft pool")
}

fn ok(output: std::process::Output) -> String {
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output)
}

fn refused(output: std::process::Output) -> String {
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    stderr(&output)
}

fn shown(backend: &Backend, name: &str) -> Value {
    serde_json::from_str(&ok(pool(backend, &["show", name, "--output", "json"]))).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_are_created_listed_changed_and_deleted_and_concurrent_edits_all_land() {
    let backend = Backend::file();
    let listed = ok(pool(&backend, &["ls"]));
    assert!(listed.contains("kubernetes") && listed.contains("process"), "the default pools always exist:\n{listed}");

    ok(pool(&backend, &["create", "gpu", "--type", "kubernetes", "--concurrency-limit", "3", "--description", "GPU"]));
    assert!(refused(pool(&backend, &["create", "gpu", "--type", "kubernetes"])).contains("`gpu` exists already"));
    assert!(refused(pool(&backend, &["create", "kubernetes", "--type", "kubernetes"])).contains("exists already"));
    let gpu = shown(&backend, "gpu");
    assert_eq!(
        (gpu["type"].as_str(), gpu["concurrency_limit"].as_u64(), gpu["revision"].as_u64()),
        (Some("kubernetes"), Some(3), Some(1))
    );

    // Twelve edits at once from two store clients, each adding a word to
    // the description: every one lands, one revision each.
    let (a, b) = (Arc::new(backend.open()), Arc::new(backend.open()));
    let edits: Vec<_> = (0..12)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                store
                    .update_pool("gpu", |pool: &mut WorkPool| {
                        let words = pool.description.clone().unwrap_or_default();
                        pool.description = Some(format!("{words} w{i}"));
                        Ok(())
                    })
                    .await
                    .expect("update")
            })
        })
        .collect();
    for edit in edits {
        edit.await.expect("task");
    }
    let gpu = shown(&backend, "gpu");
    let words: Vec<&str> = gpu["description"].as_str().expect("description").split(' ').collect();
    for i in 0..12 {
        assert!(words.contains(&format!("w{i}").as_str()), "edit {i} was lost: {words:?}");
    }
    assert_eq!(gpu["revision"], 13);
    assert_eq!(gpu["concurrency_limit"], 3, "no edit undid another field");

    ok(pool(&backend, &["pause", "gpu"]));
    assert_eq!(shown(&backend, "gpu")["paused"], true);
    ok(pool(&backend, &["resume", "gpu"]));
    ok(pool(&backend, &["update", "gpu", "--no-concurrency-limit"]));
    let gpu = shown(&backend, "gpu");
    assert_eq!((gpu["paused"].as_bool(), gpu["concurrency_limit"].as_u64()), (Some(false), None));

    let err = refused(pool(&backend, &["show", "gpus"]));
    assert!(err.contains("no work pool `gpus` (did you mean `gpu`?)"), "{err}");
    assert!(refused(pool(&backend, &["delete", "process"])).contains("default pool and cannot be deleted"));
    let err = refused(pool(&backend, &["update", "process", "--base-job-template", "/dev/null"]));
    assert!(err.contains("for kubernetes pools"), "{err}");

    // A pool that a deployment uses stays until the deployment moves.
    ok(pool(&backend, &["create", "cpu", "--type", "process"]));
    let _dir = deploy(
        &backend,
        &format!("deployments:\n  - name: hello\n    flow: {EXAMPLE_HELLO}\n    work_pool: {{name: cpu}}\n"),
    );
    let err = refused(pool(&backend, &["delete", "cpu"]));
    assert!(err.contains("used by deployment `hello`"), "{err}");
    ok(weft().args(["deployment", "delete", "hello"]).args(backend.args()).output().expect("delete"));
    ok(pool(&backend, &["delete", "cpu"]));
    assert!(!ok(pool(&backend, &["ls"])).contains("cpu"));
    ok(pool(&backend, &["create", "cpu", "--type", "process"]));
}

#[test]
fn deploy_refuses_a_pool_that_does_not_exist_or_does_not_match() {
    let backend = Backend::file();
    ok(pool(&backend, &["create", "cpu", "--type", "process"]));
    let deploy_yaml = |extra: &str| {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("weft.yaml");
        std::fs::write(&file, format!("deployments:\n  - name: hello\n    flow: {EXAMPLE_HELLO}\n{extra}"))
            .expect("write");
        weft().args(["deploy", "-f"]).arg(&file).args(backend.args()).output().expect("deploy")
    };
    let err = refused(deploy_yaml("    work_pool: {name: cpus}\n"));
    assert!(err.contains("line 2") && err.contains("no work pool `cpus` (did you mean `cpu`?)"), "{err}");
    let err = refused(deploy_yaml("    infrastructure: kubernetes\n    work_pool: {name: cpu}\n"));
    assert!(err.contains("does not match work pool `cpu`, a process pool"), "{err}");
    let err = refused(deploy_yaml("    work_pool: {name: cpu, job_variables: {namespace: x}}\n"));
    assert!(err.contains("process pool, which has no job variables"), "{err}");
    let deployments =
        ok(weft().args(["deployment", "ls", "--output", "json"]).args(backend.args()).output().expect("ls"));
    assert_eq!(deployments.trim(), "[]", "nothing was applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_takes_only_its_pools_runs_and_none_while_its_pool_is_paused() {
    let backend = Backend::file();
    ok(pool(&backend, &["create", "cpu", "--type", "process"]));
    ok(pool(&backend, &["create", "batch", "--type", "process"]));
    let _dir = deploy(
        &backend,
        &format!(
            "deployments:\n  - name: a\n    flow: {EXAMPLE_HELLO}\n    work_pool: {{name: cpu}}\n  - name: b\n    flow: {EXAMPLE_HELLO}\n    work_pool: {{name: batch}}\n  - name: plain\n    flow: {EXAMPLE_HELLO}\n"
        ),
    );
    let store = backend.open();
    let agent = AgentProcess::start(&backend, "cpu-agent", &["--pool", "cpu"]);
    let (a, b, plain) = (
        run_deployment(&backend, "a", &[]),
        run_deployment(&backend, "b", &[]),
        run_deployment(&backend, "plain", &[]),
    );
    wait_all_final(&store, std::slice::from_ref(&a), Duration::from_secs(60)).await;
    assert_eq!(state(&store, &a).await, Some(State::Completed));
    assert_eq!(state(&store, &b).await, Some(State::Scheduled), "pool batch has no agent");
    assert_eq!(state(&store, &plain).await, Some(State::Scheduled), "the default pool `process` has no agent");

    ok(pool(&backend, &["pause", "cpu"]));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let waiting = run_deployment(&backend, "a", &[]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(state(&store, &waiting).await, Some(State::Scheduled), "a paused pool's runs wait");
    ok(pool(&backend, &["resume", "cpu"]));
    wait_all_final(&store, std::slice::from_ref(&waiting), Duration::from_secs(60)).await;
    let log = agent.stop();
    assert!(log.contains("work pool `cpu` changed"), "the agent noticed the edits:\n{log}");

    // An agent serving the other pools takes their runs.
    let other = AgentProcess::start(&backend, "other", &["--pool", "batch,process"]);
    wait_all_final(&store, &[b.clone(), plain.clone()], Duration::from_secs(60)).await;
    drop(other);
    let err = refused(weft().args(["agent", "--pool", "nope"]).args(backend.args()).output().expect("agent"));
    assert!(err.contains("no work pool `nope`"), "{err}");
    ok(pool(&backend, &["create", "gpu", "--type", "kubernetes"]));
    let err = refused(weft().args(["agent", "--pool", "gpu"]).args(backend.args()).output().expect("agent"));
    assert!(err.contains("`gpu` is a kubernetes pool") && err.contains("--infra kubernetes"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_limit_of_2_holds_across_two_agents_under_20_runs() {
    let backend = Backend::file();
    ok(pool(&backend, &["create", "limited", "--type", "process", "--concurrency-limit", "2"]));
    // Two deployments in the pool: the limit is the pool's, not theirs.
    let yaml = format!(
        "deployments:\n{}{}",
        slow_yaml("one", "    work_pool: {name: limited}\n"),
        slow_yaml("two", "    work_pool: {name: limited}\n")
    )
    .replace("ticks: 40, interval_ms: 250", "ticks: 2, interval_ms: 100");
    let _dir = deploy(&backend, &yaml);
    let ids: Vec<String> =
        (0..20).map(|i| run_deployment(&backend, if i % 2 == 0 { "one" } else { "two" }, &[])).collect();
    let first = AgentProcess::start(&backend, "first", &["--pool", "limited", "--limit", "10"]);
    let second = AgentProcess::start(&backend, "second", &["--pool", "limited", "--limit", "10"]);
    let store = backend.open();
    wait_for("every run to complete", Duration::from_secs(180), async || {
        for id in &ids {
            if state(&store, id).await != Some(State::Completed) {
                return false;
            }
        }
        true
    })
    .await;
    drop((first, second));
    assert_eq!(most_at_once(&store, &ids).await, 2, "never more than two at once, and the limit was used");
}

#[test]
fn a_prefect_work_pool_json_is_taken_as_is_and_its_variables_are_checked_at_deploy_and_at_run() {
    let backend = Backend::s3();
    let template = crate::kubernetes::PREFECT_WORK_POOL;
    ok(pool(&backend, &["create", "k8s", "--type", "kubernetes", "--base-job-template", template]));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("weft.yaml");
    let deploy_with = |variables: &str| {
        std::fs::write(
            &file,
            format!(
                "deployments:\n  - name: train\n    flow: {EXAMPLE_HELLO}\n    work_pool:\n      name: k8s\n      job_variables: {variables}\n"
            ),
        )
        .expect("write");
        weft().args(["deploy", "-f"]).arg(&file).args(backend.args()).output().expect("deploy")
    };
    ok(deploy_with("{cpu_request: 250m, image_pull_policy: Always}"));
    let err = refused(deploy_with("{image_pull_policy: Sometimes}"));
    assert!(err.contains("deployment `train` (") && err.contains("weft.yaml line 2)"), "{err}");
    assert!(err.contains("job template `work pool k8s`: job variable `image_pull_policy`"), "{err}");
    let err = refused(deploy_with("{cpu_request: lots}"));
    assert!(err.contains("job variable `cpu_request`"), "{err}");
    let err = refused(deploy_with("{job_patch: [{op: remove, path: /spec/nothing}]}"));
    assert!(err.contains("job variable `job_patch`: operation 1"), "{err}");
    let err = refused(deploy_with("{job_patch: [{op: add, path: /spec/template/spec/restartPolicy, value: Always}]}"));
    assert!(err.contains("restartPolicy"), "a patched Job is checked as any Job: {err}");

    // The pool's schema as it is when a run is asked for: a variable it
    // now requires, which the deployment does not set, stops the run.
    ok(deploy_with("{cpu_request: 250m}"));
    let stricter = std::fs::read_to_string(template).expect("template").replace(
        r#""type": "object",
    "properties""#,
        r#""type": "object",
    "required": ["service_account_name"],
    "properties""#,
    );
    let stricter_file = dir.path().join("stricter.json");
    std::fs::write(&stricter_file, stricter).expect("write");
    ok(pool(&backend, &["update", "k8s", "--base-job-template", stricter_file.to_str().expect("utf-8")]));
    let err = refused(weft().args(["deployment", "run", "train"]).args(backend.args()).output().expect("run"));
    assert!(err.contains("deployment `train` cannot make its runs' Job"), "{err}");
    assert!(err.contains("job variable `service_account_name`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pools_queues_have_priorities_limits_and_agents_of_their_own() {
    let backend = Backend::file();
    ok(pool(&backend, &["create", "work", "--type", "process"]));
    ok(pool(&backend, &["queue", "update", "work", "default", "--priority", "5"]));
    ok(pool(&backend, &["queue", "create", "work", "high", "--priority", "1"]));
    ok(pool(&backend, &["queue", "create", "work", "capped", "--concurrency-limit", "1"]));
    let queues: Vec<(String, u64)> = shown(&backend, "work")["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .map(|q| (q["name"].as_str().expect("name").to_owned(), q["priority"].as_u64().expect("priority")))
        .collect();
    assert_eq!(queues, [("high".to_owned(), 1), ("default".to_owned(), 5), ("capped".to_owned(), 6)]);
    assert!(refused(pool(&backend, &["queue", "create", "work", "high"])).contains("has a queue `high` already"));

    let flows = format!(
        "deployments:\n  - name: low\n    flow: {EXAMPLE_HELLO}\n    work_pool: {{name: work}}\n  - name: urgent\n    flow: {EXAMPLE_HELLO}\n    work_pool: {{name: work, queue: high}}\n{}",
        slow_yaml("capped", "    work_pool: {name: work, queue: capped}\n")
            .replace("ticks: 40, interval_ms: 250", "ticks: 2, interval_ms: 100")
    );
    let _dir = deploy(&backend, &flows);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("weft.yaml"),
        format!(
            "deployments:\n  - name: typo\n    flow: {EXAMPLE_HELLO}\n    work_pool: {{name: work, queue: hihg}}\n"
        ),
    )
    .expect("write");
    let err = refused(
        weft().args(["deploy", "-f"]).arg(dir.path().join("weft.yaml")).args(backend.args()).output().expect("deploy"),
    );
    assert!(err.contains("work pool `work` has no queue `hihg`: did you mean `high`?"), "{err}");
    assert!(refused(pool(&backend, &["queue", "delete", "work", "high"])).contains("used by deployment `urgent`"));
    let listed = ok(weft().args(["deployment", "ls"]).args(backend.args()).output().expect("ls"));
    assert!(listed.lines().any(|l| l.starts_with("urgent") && l.contains("work/high")), "{listed}");
    assert!(refused(pool(&backend, &["queue", "delete", "work", "default"])).contains("every pool has the queue"));

    // Low-priority runs queued first, high-priority runs after them: with
    // room for one run at a time, the agent takes the high ones first.
    let store = backend.open();
    let low: Vec<String> = (0..3).map(|_| run_deployment(&backend, "low", &[])).collect();
    let high: Vec<String> = (0..3).map(|_| run_deployment(&backend, "urgent", &[])).collect();
    let agent = AgentProcess::start(&backend, "one-at-a-time", &["--pool", "work", "--limit", "1"]);
    let all: Vec<String> = low.iter().chain(&high).cloned().collect();
    wait_all_final(&store, &all, Duration::from_secs(120)).await;
    drop(agent);
    let mut claimed = Vec::new();
    for id in &all {
        let pending = store.states(id).await.expect("states").into_iter().find(|(_, r)| r.state == State::Pending);
        claimed.push((pending.expect("claimed").1.time, high.contains(id)));
    }
    claimed.sort();
    let order: Vec<bool> = claimed.into_iter().map(|(_, is_high)| is_high).collect();
    assert_eq!(order, [true, true, true, false, false, false], "the high-priority queue's runs were claimed first");
    let shown = ok(weft().args(["runs", "show", &high[0]]).args(backend.args()).output().expect("runs show"));
    assert!(shown.contains("Work pool  work (queue high)"), "{shown}");

    // An agent of one queue leaves the others' runs alone.
    let (a_low, a_high) = (run_deployment(&backend, "low", &[]), run_deployment(&backend, "urgent", &[]));
    let agent = AgentProcess::start(&backend, "high-only", &["--pool", "work", "--queue", "high"]);
    wait_all_final(&store, std::slice::from_ref(&a_high), Duration::from_secs(60)).await;
    assert_eq!(state(&store, &a_low).await, Some(State::Scheduled));
    drop(agent);

    // A queue's own limit holds within the pool.
    let capped: Vec<String> = (0..4).map(|_| run_deployment(&backend, "capped", &[])).collect();
    let agent = AgentProcess::start(&backend, "capped", &["--pool", "work", "--queue", "capped", "--limit", "4"]);
    wait_all_final(&store, &capped, Duration::from_secs(120)).await;
    drop(agent);
    assert_eq!(most_at_once(&store, &capped).await, 1, "the queue's limit of one held");
}

#[test]
fn agent_install_puts_the_pool_in_the_agents_deployment_under_a_name_of_its_own() {
    let install = |extra: &[&str]| {
        weft()
            .args(["agent", "install", "--namespace", "weft", "--store", "s3://bucket/weft"])
            .args(extra)
            .output()
            .expect("agent install")
    };
    let manifests = ok(install(&["--pool", "gpu"]));
    let deployment: Value = manifests
        .split("---\n")
        .filter_map(|doc| serde_saphyr::from_str::<Value>(doc).ok())
        .find(|doc| doc["kind"] == "Deployment")
        .expect("a Deployment");
    let args: Vec<&str> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let after = |flag: &str| args.iter().position(|a| *a == flag).and_then(|i| args.get(i + 1)).copied();
    assert_eq!(after("--pool"), Some("gpu"));
    assert_eq!(after("--name"), Some("weft-agent-gpu"), "agents of different pools claim under different names");
    assert_eq!(deployment["metadata"]["name"], "weft-agent-gpu", "and live in one namespace side by side");
    assert_eq!(deployment["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"], "weft-agent-gpu");

    // Its probes and its metrics port, which deploy/prometheus scrapes.
    assert_eq!(after("--metrics-listen"), Some("0.0.0.0:9090"));
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["ports"][0], serde_json::json!({"name": "metrics", "containerPort": 9090}));
    assert_eq!(container["livenessProbe"]["httpGet"], serde_json::json!({"path": "/healthz", "port": "metrics"}));
    assert_eq!(container["readinessProbe"]["httpGet"], serde_json::json!({"path": "/readyz", "port": "metrics"}));
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let prometheus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus");
    let read = |file: &str| {
        let text = std::fs::read_to_string(prometheus.join(file)).expect("deploy/prometheus file");
        serde_saphyr::from_str::<Value>(&text).expect("YAML")
    };
    let monitor = read("podmonitor.yaml");
    for (label, value) in monitor["spec"]["selector"]["matchLabels"].as_object().expect("labels") {
        assert_eq!(&pod_labels[label], value, "the PodMonitor selects the agent's pods");
    }
    assert_eq!(monitor["spec"]["podMetricsEndpoints"][0]["port"], "metrics");
    let scrape = read("scrape-config.yaml");
    let keeps: Vec<&str> =
        scrape[0]["relabel_configs"].as_array().expect("relabel").iter().filter_map(|r| r["regex"].as_str()).collect();
    assert!(keeps.contains(&"weft-agent") && keeps.contains(&"metrics"), "{keeps:?}");
    let err = refused(install(&["--pool", "no/slash"]));
    assert!(err.contains("pool name `no/slash` is not usable"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_ls_shows_each_agent_its_pools_and_whether_it_is_at_work() {
    let backend = Backend::file();
    ok(pool(&backend, &["create", "cpu", "--type", "process"]));
    let agent = AgentProcess::start(&backend, "lister", &["--pool", "cpu,process", "--queue", "default"]);
    let ls = || ok(weft().args(["agent", "ls"]).args(backend.args()).output().expect("agent ls"));
    let mut listed = String::new();
    wait_for("the agent's record", Duration::from_secs(30), async || {
        listed = ls();
        listed.contains("lister")
    })
    .await;
    let row = listed.lines().find(|l| l.starts_with("lister")).expect("a row");
    assert!(row.contains("online") && row.contains("cpu,process (queues default)") && row.contains("0/8"), "{listed}");
    drop(agent);
    let listed = ls();
    let row = listed.lines().find(|l| l.starts_with("lister")).expect("a row");
    assert!(row.contains("stopped"), "an agent that stops says so: {listed}");
    let json: Value = serde_json::from_str(&ok(weft()
        .args(["agent", "ls", "--output", "json"])
        .args(backend.args())
        .output()
        .expect("ls")))
    .expect("JSON");
    assert_eq!(json[0]["pools"], serde_json::json!(["cpu", "process"]));
    assert!(json[0]["stopped"].is_string());
}
