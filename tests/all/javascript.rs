//! JavaScript flows and task components, built with the JavaScript SDK's
//! build helper (esbuild, componentize-js with its default features, then
//! `weft component annotate`): a flow that fetches JSON over `wasi:http`
//! from a granted host, its schema checked before it runs, and the polyglot
//! example (a Rust flow with a Python and a JavaScript task) through the
//! agent.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weft::model::{Digest, State};

use crate::agent::{AgentProcess, deploy, run_and_watch};
use crate::fixtures::EXAMPLE_POLYGLOT;
use crate::guests::{Language, guest_component};
use crate::store::Backend;
use crate::{stderr, stdout, weft};

/// The fetch-js example's API server on a free port, stopped when dropped.
struct UsersApi {
    child: Child,
    port: u16,
}

impl UsersApi {
    fn start() -> UsersApi {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("port").port();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fetch-js/serve.mjs");
        let child = Command::new("node")
            .arg(root)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs the example's server");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the example's server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        UsersApi { child, port }
    }
}

impl Drop for UsersApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fetch_js() -> String {
    guest_component(Language::JavaScript, "examples/fetch-js/fetch.js").display().to_string()
}

#[test]
fn a_javascript_flow_fetches_json_from_a_granted_host_only() {
    let api = UsersApi::start();
    let flow = fetch_js();
    let host = format!("localhost:{}", api.port);
    let url = format!("url=http://{host}/users");
    let output =
        weft().args(["run", &flow, "--allow-host", &host, "-p", &url, "-p", "limit=2"]).output().expect("weft run");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&output)).expect("JSON"),
        json!({"count": 2, "names": ["Ada", "Grace"]})
    );
    assert!(stderr(&output).contains("fetch-users | fetched users=2"), "{}", stderr(&output));

    let output = weft().args(["run", &flow, "-p", &url]).output().expect("weft run");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let log = stderr(&output);
    assert!(log.contains(&format!("HTTP request to `{host}` denied: it is granted no hosts")), "{log}");
    assert!(log.contains(&format!("weft run --allow-host {host}")), "{log}");
}

#[test]
fn a_javascript_flows_schema_checks_parameters_before_it_runs() {
    let flow = fetch_js();
    let output = weft().args(["run", &flow, "-p", "limit=0"]).output().expect("weft run");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("parameter `limit`"), "{}", stderr(&output));
    let output = weft().args(["run", &flow, "-p", "limt=3"]).output().expect("weft run");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("`limt`"), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_polyglot_example_runs_a_python_and_a_javascript_task_through_the_agent() {
    let python = guest_component(Language::Python, "examples/polyglot/tasks/count_words.py");
    let javascript = guest_component(Language::JavaScript, "examples/polyglot/tasks/title_case.js");
    let backend = Backend::file();
    let yaml = format!(
        "deployments:\n  - name: polyglot\n    flow: {EXAMPLE_POLYGLOT}\n    task_concurrency: 2\n    tasks:\n      count-words: {}\n      title-case:\n        component: {}\n        timeout: 30s\n",
        python.display(),
        javascript.display()
    );
    let _dir = deploy(&backend, &yaml);
    let agent = AgentProcess::start(&backend, "polyglot", &[]);
    let output = run_and_watch(&backend, "polyglot", &["text=the cat and the hat"]);
    let result: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(result["title"], "The Cat And The Hat", "{result}");
    assert_eq!(result["words"][0], json!(["the", 2]), "{result}");
    let log = stderr(&output);
    assert!(log.contains("polyglot/count-words | counting words words=5"), "{log}");
    assert!(log.contains("polyglot/title-case | title-casing length=19"), "{log}");
    drop(agent);

    let store = backend.open();
    let id = store.run_ids().await.expect("runs").pop().expect("a run");
    let mut tasks: Vec<(String, State, Option<Digest>)> =
        store.task_runs(&id).await.expect("task runs").into_iter().map(|t| (t.name, t.state, t.component)).collect();
    tasks.sort_by(|a, b| a.0.cmp(&b.0));
    let digest = |path: &std::path::Path| Some(Digest::of(&std::fs::read(path).expect("component")));
    assert_eq!(
        tasks,
        [
            ("count-words".to_owned(), State::Completed, digest(&python)),
            ("title-case".to_owned(), State::Completed, digest(&javascript)),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_flow_runs_through_the_agent_with_its_deployments_grant() {
    let api = UsersApi::start();
    let backend = Backend::file();
    let yaml = format!(
        "deployments:\n  - name: fetch-users\n    flow: {}\n    parameters: {{url: \"http://localhost:{port}/users\"}}\n    sandbox:\n      hosts: [\"localhost:{port}\"]\n",
        fetch_js(),
        port = api.port
    );
    let _dir = deploy(&backend, &yaml);
    let agent = AgentProcess::start(&backend, "javascript", &[]);
    let output = run_and_watch(&backend, "fetch-users", &[]);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&output)).expect("JSON"),
        json!({"count": 3, "names": ["Ada", "Grace", "Margaret"]})
    );
    drop(agent);
}

/// `task(name, { retryBackoff: {...} }, fn)`: exponential waits with jitter,
/// drawn by the SDK for each call.
#[test]
fn a_javascript_task_retries_with_exponential_backoff() {
    let flow = guest_component(Language::JavaScript, "tests/programs/js/backoff.js");
    let output = weft().args(["run", flow.to_str().expect("utf-8")]).output().expect("weft run");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "\"ok on attempt 4\"\n");
    let log = stderr(&output);
    crate::assert_backoff(&crate::retry_waits_ms(log.lines()), &[20.0, 60.0, 100.0], 0.5);
}

/// `task(name, { cacheKey, cacheExpiration: '4s' }, fn)`.
#[test]
fn a_javascript_tasks_cached_result_expires() {
    let flow = guest_component(Language::JavaScript, "tests/programs/js/cached.js");
    crate::cache::assert_cached_result_expires(flow.to_str().expect("utf-8"), &[]);
}
