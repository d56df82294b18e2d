//! Tries to reach the host's files, environment and network, and reports
//! what it saw.
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, weft::JsonSchema)]
struct Params {
    /// A file on the host that the guest tries to read.
    file: String,
    /// A TCP address on the host that the guest tries to connect to.
    address: String,
    /// An environment variable the host has set.
    variable: String,
    /// A `host:port` whose name the guest looks up.
    #[serde(default)]
    lookup: Option<String>,
}

#[weft::flow]
fn sandbox_probe(params: Params) -> serde_json::Value {
    let read = std::fs::read_to_string(&params.file).map_err(|e| e.to_string());
    let root = std::fs::read_dir("/").map(|d| d.count()).map_err(|e| e.to_string());
    let cwd = std::fs::read_dir(".").map(|d| d.count()).map_err(|e| e.to_string());
    let written = std::fs::write("probe.txt", b"x").map_err(|e| e.to_string());
    let connect = std::net::TcpStream::connect(&params.address).map(|_| ()).map_err(|e| e.to_string());
    let looked_up = params.lookup.as_deref().map(|target| {
        std::net::ToSocketAddrs::to_socket_addrs(target)
            .map(|addresses| addresses.map(|a| a.to_string()).collect::<Vec<_>>())
            .map_err(|e| e.to_string())
    });
    // What every guest gets: the real time, a clock that moves, and random
    // numbers (the standard library's hasher keys come from wasi:random, so
    // they differ from run to run).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let started = std::time::Instant::now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let slept_ms = started.elapsed().as_millis();
    let random = || {
        use std::hash::{BuildHasher, Hasher};
        std::collections::hash_map::RandomState::new().build_hasher().finish()
    };
    json!({
        "unix_time": now,
        "slept_ms": slept_ms,
        "random": random().to_string(),
        "read": read.is_ok(),
        "read_error": read.err(),
        "root_listed": root.is_ok(),
        "cwd_listed": cwd.is_ok(),
        "written": written.is_ok(),
        "env_vars": std::env::vars().count(),
        "variable": std::env::var(&params.variable).ok(),
        "args": std::env::args().count(),
        "connected": connect.is_ok(),
        "connect_error": connect.err(),
        "looked_up": looked_up.as_ref().map(|r| r.as_ref().ok()),
        "lookup_error": looked_up.and_then(Result::err),
    })
}

fn main() {}
