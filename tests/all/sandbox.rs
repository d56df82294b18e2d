//! A guest finds no files, environment variables or network of the host.

use std::io::ErrorKind;
use std::net::TcpListener;

use serde_json::Value;

use crate::fixtures::SANDBOX_PROBE;
use crate::{stderr, stdout, weft};

#[test]
fn the_guest_sees_nothing_of_the_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "the host's secret").expect("write");
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let address = listener.local_addr().expect("address").to_string();

    let output = weft()
        .current_dir(dir.path())
        .env("WEFT_TEST_SECRET", "hunter2")
        .args(["run", SANDBOX_PROBE])
        .args(["-p", &format!("file={}", secret.display())])
        .args(["-p", &format!("address={address}")])
        .args(["-p", "variable=WEFT_TEST_SECRET"])
        .output()
        .expect("weft runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let seen: Value = serde_json::from_str(&stdout(&output)).expect("JSON result");

    // What it does get: the time, a monotonic clock, random numbers.
    let host_time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    assert!(seen["unix_time"].as_u64().is_some_and(|t| t.abs_diff(host_time) < 60), "{seen}");
    assert!(seen["slept_ms"].as_u64().is_some_and(|ms| ms >= 20), "{seen}");
    let again = weft()
        .args(["run", SANDBOX_PROBE, "-p", "file=/none", "-p", "address=127.0.0.1:1", "-p", "variable=NONE"])
        .output()
        .expect("weft runs");
    let again: Value = serde_json::from_str(&stdout(&again)).expect("JSON result");
    assert_ne!(seen["random"], again["random"], "random numbers differ from run to run");
    assert_eq!(seen["read"], false, "{seen}");
    assert_eq!(seen["root_listed"], false, "{seen}");
    assert_eq!(seen["cwd_listed"], false, "{seen}");
    assert_eq!(seen["written"], false, "{seen}");
    assert_eq!(seen["env_vars"], 0, "{seen}");
    assert_eq!(seen["variable"], Value::Null, "{seen}");
    assert_eq!(seen["args"], 0, "{seen}");
    assert_eq!(seen["connected"], false, "{seen}");
    assert!(seen["connect_error"].is_string(), "{seen}");

    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the guest reached the host's listener: {other:?}"),
    }
    assert!(!dir.path().join("probe.txt").exists(), "the guest wrote into the host's directory");
    assert_eq!(std::fs::read_to_string(&secret).expect("read"), "the host's secret");
}

/// A host granted by name can be reached by that name: the guest may look
/// up the granted names, and no other.
#[test]
fn granted_names_resolve_and_no_other_does() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("address").port();
    let granted = format!("localhost:{port}");
    let output = weft()
        .args(["run", SANDBOX_PROBE, "--allow-host", &granted, "--log-level", "warn"])
        .args(["-p", "file=/nothing", "-p", &format!("address={granted}"), "-p", "variable=NONE"])
        .args(["-p", "lookup=example.com:443"])
        .output()
        .expect("weft runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let seen: Value = serde_json::from_str(&stdout(&output)).expect("JSON result");
    assert_eq!(seen["connected"], true, "`{granted}` is reachable by its name: {seen}");
    assert!(listener.accept().is_ok());
    assert_eq!(seen["looked_up"], Value::Null, "a name not granted does not resolve: {seen}");
    assert!(seen["lookup_error"].is_string(), "{seen}");
    let log = stderr(&output);
    assert!(
        log.contains("name lookup of `example.com` denied: it is granted localhost; to allow it, add `example.com:PORT` to `sandbox.hosts`"),
        "{log}"
    );
}
