//! `wasi:http` outgoing requests: allowed to granted hosts only, by name or
//! address; anything else is denied with an error the guest reads and a log
//! line that names the fix.

use std::io::{Read, Write};
use std::net::TcpListener;

use serde_json::{Value, json};
use weft::model::{FlowRunOutcome, Level, LogSource};
use weft::runner::{FlowRunRequest, resolve_sandbox, run_flow};

use crate::fixtures::FETCH;
use crate::{Captured, engine, load};

/// A one-request-at-a-time HTTP server on 127.0.0.1 that answers every
/// request with a JSON body naming the path; it counts what it served.
fn serve(requests: usize) -> (u16, std::thread::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("address").port();
    let server = std::thread::spawn(move || {
        let mut served = 0;
        for _ in 0..requests {
            let Ok((mut stream, _)) = listener.accept() else { break };
            let mut buffer = [0u8; 4096];
            let read = stream.read(&mut buffer).unwrap_or(0);
            let request = String::from_utf8_lossy(&buffer[..read]).into_owned();
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let body = json!({"path": path}).to_string();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
            served += 1;
        }
        served
    });
    (port, server)
}

async fn fetch(url: &str, hosts: &[String]) -> (Value, Vec<weft::model::LogLine>) {
    let flow = load(FETCH);
    let mut request = FlowRunRequest::new(&flow, json!({"url": url})).expect("parameters");
    let sandbox = weft::model::Sandbox { hosts: hosts.to_vec(), ..Default::default() };
    let (_, grants, notes) = resolve_sandbox(&sandbox).await;
    assert!(notes.is_empty(), "{notes:?}");
    request.grants = grants;
    let logs = std::sync::Arc::new(Captured::default());
    let report = run_flow(engine(), &flow, request, logs.clone()).await;
    let FlowRunOutcome::Completed { result } = report.outcome else { panic!("{:?}", report.outcome) };
    (result, logs.lines())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_granted_by_name_is_reachable_by_name_and_address() {
    let (port, server) = serve(2);
    let hosts = vec![format!("localhost:{port}")];
    let (result, _) = fetch(&format!("http://localhost:{port}/users?page=2"), &hosts).await;
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(
        serde_json::from_str::<Value>(result["body"].as_str().expect("body")).expect("JSON"),
        json!({"path": "/users?page=2"})
    );
    let (result, _) = fetch(&format!("http://127.0.0.1:{port}/by-address"), &hosts).await;
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(server.join().expect("server"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_other_host_is_denied_with_a_reason_the_guest_and_the_log_give() {
    let (port, _server) = serve(1);
    let (result, lines) = fetch(&format!("http://127.0.0.1:{port}/"), &[]).await;
    assert_eq!(result["error"], "ErrorCode::HttpRequestDenied", "{result}");
    let denied: Vec<&str> = lines
        .iter()
        .filter(|l| l.level == Level::Warn && l.source == LogSource::Weft)
        .map(|l| l.message.as_str())
        .collect();
    assert_eq!(
        denied,
        [format!(
            "HTTP request to `127.0.0.1:{port}` denied: it is granted no hosts; to allow it, add \
             `127.0.0.1:{port}` to `sandbox.hosts` in the deployment (or `weft run --allow-host 127.0.0.1:{port}`)"
        )]
    );

    let hosts = vec![format!("localhost:{}", port.wrapping_add(1))];
    let (result, lines) = fetch(&format!("http://localhost:{port}/"), &hosts).await;
    assert_eq!(result["error"], "ErrorCode::HttpRequestDenied", "another port of a granted name is denied: {result}");
    assert!(lines.iter().any(|l| l.message.contains(&format!("it is granted localhost:{}", port.wrapping_add(1)))));
}
