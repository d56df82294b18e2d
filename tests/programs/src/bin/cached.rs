//! A task with a cache key, called three times with two keys.
use std::sync::atomic::{AtomicU32, Ordering};

static RUNS: AtomicU32 = AtomicU32::new(0);

#[weft::task(cache_key = format!("fetch-{id}"))]
fn fetch(id: u32) -> Result<String, String> {
    RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("item {id}"))
}

#[weft::flow]
fn cached() -> Result<serde_json::Value, String> {
    let items = vec![fetch(1)?, fetch(1)?, fetch(2)?];
    Ok(serde_json::json!({ "items": items, "body_runs": RUNS.load(Ordering::SeqCst) }))
}

fn main() {}
