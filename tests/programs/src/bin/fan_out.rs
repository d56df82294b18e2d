//! Calls task components as its parameters say: each job names a task and
//! its input; `submit` starts them all before waiting for any, `call` runs
//! them one after the other. Returns each outcome, in order, so tests see
//! every error the flow was given.
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, weft::JsonSchema)]
struct Job {
    task: String,
    #[serde(default)]
    input: Value,
}

#[derive(Deserialize, weft::JsonSchema)]
struct Params {
    jobs: Vec<Job>,
    /// `submit` (concurrently) or `call` (one at a time).
    #[serde(default = "submit")]
    mode: String,
    /// Submit the jobs, then return without waiting for them.
    #[serde(default)]
    abandon: bool,
}

fn submit() -> String {
    "submit".into()
}

fn outcome(result: Result<Value, weft::Error>) -> Value {
    match result {
        Ok(value) => json!({ "ok": value }),
        Err(e) => json!({ "error": e.message(), "retryable": e.is_retryable() }),
    }
}

#[weft::flow]
fn fan_out(params: Params) -> Vec<Value> {
    if params.mode == "call" {
        return params.jobs.iter().map(|job| outcome(weft::call_task(&job.task, &job.input))).collect();
    }
    let submitted: Vec<Result<weft::SubmittedTask, weft::Error>> =
        params.jobs.iter().map(|job| weft::submit_task(&job.task, &job.input)).collect();
    if params.abandon {
        return Vec::new();
    }
    submitted.into_iter().map(|task| outcome(task.and_then(|t| t.wait::<Value>()))).collect()
}

fn main() {}
