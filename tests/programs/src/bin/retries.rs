//! A task that fails twice, then succeeds, with `retries = 3`; one that fails
//! fatally; one that keeps failing with exponential backoff.
use std::sync::atomic::{AtomicU32, Ordering};

static CALLS: AtomicU32 = AtomicU32::new(0);

#[weft::task(retries = 3, retry_delay = ["10ms", "20ms"])]
fn flaky(label: String) -> Result<String, String> {
    let call = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    if call < 3 { Err(format!("{label}: attempt {call} failed")) } else { Ok(format!("{label}: ok on attempt {call}")) }
}

#[weft::task(retries = 5)]
fn fatal() -> Result<(), weft::Error> {
    Err(weft::Error::fatal("bad input: retrying cannot help"))
}

#[weft::task(retries = 3, retry_backoff(initial = "20ms", factor = 3, max = "100ms", jitter = 0.5))]
fn backs_off() -> Result<(), String> {
    Err("still failing".to_owned())
}

#[weft::flow]
fn retries() -> Result<serde_json::Value, String> {
    let value = flaky("flaky".to_owned())?;
    let fatal = fatal().map_err(|e| e.to_string()).err();
    let backs_off = backs_off().err();
    Ok(serde_json::json!({
        "value": value,
        "calls": CALLS.load(Ordering::SeqCst),
        "fatal": fatal,
        "backs_off": backs_off,
    }))
}

fn main() {}
