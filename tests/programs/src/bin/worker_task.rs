//! A task component for the task tests. Its input says what to do: sleep,
//! fail (retryably or not), panic, spin, allocate, compute `fibo(n)`, or
//! fail until a counter in a granted directory reaches a number. It reports
//! what it saw.
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Deserialize;

/// Calls of `run` in this instance: always 1, as every task run gets a
/// fresh instance.
static CALLS: AtomicU32 = AtomicU32::new(0);

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Input {
    label: String,
    sleep_ms: u64,
    fail: Option<String>,
    fatal: bool,
    panic: bool,
    spin: bool,
    allocate_mib: usize,
    /// With `counter`: fail (retryably) until this many attempts were made.
    fail_until: u32,
    counter: Option<String>,
    /// Compute the naive recursive `fibo(n)` (the benchmarks' CPU work).
    fibo: Option<u32>,
}

fn fibo(n: u32) -> u64 {
    if n < 2 { u64::from(n) } else { fibo(n - 1) + fibo(n - 2) }
}

#[weft::task_component]
fn worker(input: Input) -> Result<serde_json::Value, weft::Error> {
    let calls = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    weft::info!("working on {}", input.label; sleep_ms = input.sleep_ms);
    if input.sleep_ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(input.sleep_ms));
    }
    if input.panic {
        panic!("{} panicked on purpose", input.label);
    }
    if input.spin {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
    let held = vec![1u8; input.allocate_mib << 20];
    std::hint::black_box(&held);
    if let Some(path) = &input.counter {
        let count = std::fs::read_to_string(path).ok().and_then(|t| t.trim().parse::<u32>().ok()).unwrap_or(0) + 1;
        std::fs::write(path, count.to_string()).map_err(|e| weft::Error::fatal(format!("counter: {e}")))?;
        if count < input.fail_until {
            return Err(weft::Error::retryable(format!("{}: attempt {count} failed", input.label)));
        }
    }
    if let Some(message) = input.fail {
        return Err(if input.fatal { weft::Error::fatal(message) } else { weft::Error::retryable(message) });
    }
    let context = weft::context();
    Ok(serde_json::json!({
        "label": input.label,
        "fibo": input.fibo.map(|n| fibo(std::hint::black_box(n))),
        "calls": calls,
        "task_run_id": context.task_run_id(),
        "flow_run_id": context.flow_run_id(),
    }))
}

fn main() {}
