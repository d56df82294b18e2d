//! The agent's operator endpoints, over real HTTP: Prometheus metrics of
//! what it did, alive while its loop turns, ready while the store and the
//! Kubernetes API server answer.

use std::time::Duration;

use crate::agent::{AgentProcess, deploy, run_deployment, wait_all_final, wait_for};
use crate::fixtures::EXAMPLE_HELLO;
use crate::store::Backend;

/// A port free now, for an agent (or chromedriver) to listen on.
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

/// GET `path` from the agent: (status, body); `None` while nothing listens.
pub(crate) fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(15)))
        .build()
        .into();
    let mut response = agent.get(format!("http://127.0.0.1:{port}{path}")).call().ok()?;
    let status = response.status().as_u16();
    Some((status, response.body_mut().read_to_string().expect("a text body")))
}

/// Waits until the agent answers `path` with `status`; returns the body.
pub(crate) async fn answer(port: u16, path: &str, status: u16) -> String {
    let mut body = String::new();
    wait_for(&format!("{path} to answer {status}"), Duration::from_secs(60), async || match get(port, path) {
        Some((got, text)) if got == status => {
            body = text;
            true
        }
        _ => false,
    })
    .await;
    body
}

/// The value of the sample `name{labels}` in a Prometheus text page.
fn sample(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    page.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let rest = series.strip_prefix(name)?;
        let matches = labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        (matches && (rest.is_empty() || rest.starts_with('{'))).then(|| value.parse().ok()).flatten()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_serves_its_metrics_and_its_probes() {
    let backend = Backend::file();
    let _dir = deploy(&backend, &format!("deployments:\n  - name: hello\n    flow: {EXAMPLE_HELLO}\n"));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let agent = AgentProcess::start(&backend, "metered", &["--metrics-listen", &listen]);
    assert_eq!(answer(port, "/healthz", 200).await, "ok\n");
    assert_eq!(answer(port, "/readyz", 200).await, "ready\n");

    let runs: Vec<String> = (0..2).map(|_| run_deployment(&backend, "hello", &[])).collect();
    let store = backend.open();
    wait_all_final(&store, &runs, Duration::from_secs(60)).await;
    let mut page = String::new();
    wait_for("the ends to be counted", Duration::from_secs(30), async || {
        page = answer(port, "/metrics", 200).await;
        sample(&page, "weft_agent_runs_ended_total", &[("deployment", "hello"), ("state", "Completed")]) == Some(2.0)
    })
    .await;
    let claimed = [("deployment", "hello"), ("pool", "process")];
    assert_eq!(sample(&page, "weft_agent_runs_claimed_total", &claimed), Some(2.0), "{page}");
    assert_eq!(sample(&page, "weft_agent_runs_launched_total", &[("deployment", "hello")]), Some(2.0));
    assert_eq!(sample(&page, "weft_agent_claim_latency_seconds_count", &[]), Some(2.0), "{page}");
    assert!(sample(&page, "weft_agent_runs_in_hand", &[]).is_some(), "{page}");
    let lists = sample(&page, "weft_store_requests_total", &[("operation", "list")]).unwrap_or_default();
    assert!(lists >= 2.0, "the queue is listed on every poll: {page}");
    assert!(sample(&page, "weft_store_errors_total", &[]).is_none(), "no store request failed: {page}");

    // A store that stops answering makes the agent unready, not dead.
    let root = std::path::PathBuf::from(backend.url.trim_start_matches("file://"));
    let hidden = root.with_extension("away");
    std::fs::rename(&root, &hidden).expect("move the store away");
    std::fs::write(&root, "not a folder").expect("a file where the store was");
    let reason = answer(port, "/readyz", 503).await;
    assert!(reason.contains("the store does not answer"), "{reason}");
    assert_eq!(get(port, "/healthz").map(|(status, _)| status), Some(200), "still alive");
    std::fs::remove_file(&root).expect("remove the file");
    std::fs::rename(&hidden, &root).expect("bring the store back");
    answer(port, "/readyz", 200).await;
    drop(agent);

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = taken.local_addr().expect("address").to_string();
    let output =
        crate::weft().args(["agent", "--metrics-listen", &address]).args(backend.args()).output().expect("agent");
    assert_eq!(output.status.code(), Some(2));
    assert!(crate::stderr(&output).contains(&format!("cannot listen on {address}")), "{}", crate::stderr(&output));
}
