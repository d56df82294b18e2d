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
