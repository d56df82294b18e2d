//! A task with a cache key, called three times with two keys; with
//! `expiring`, a task whose cached results expire after 4 s, called twice.
use std::sync::atomic::{AtomicU32, Ordering};

static RUNS: AtomicU32 = AtomicU32::new(0);

#[weft::task(cache_key = format!("fetch-{id}"))]
fn fetch(id: u32) -> Result<String, String> {
    RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("item {id}"))
}

/// Says which flow run made it, so a reused result shows whose it was.
#[weft::task(cache_key = format!("brief-{id}"), cache_expiration = "4s")]
fn brief(id: u32) -> Result<String, String> {
    RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("brief {id} from {}", weft::context().flow_run_id()))
}

#[derive(serde::Deserialize, weft::JsonSchema, Default)]
#[serde(default)]
struct Params {
    /// Call the task whose results expire instead.
    expiring: bool,
}

#[weft::flow]
fn cached(params: Params) -> Result<serde_json::Value, String> {
    let items = if params.expiring { vec![brief(1)?, brief(1)?] } else { vec![fetch(1)?, fetch(1)?, fetch(2)?] };
    Ok(serde_json::json!({ "items": items, "body_runs": RUNS.load(Ordering::SeqCst) }))
}

fn main() {}
