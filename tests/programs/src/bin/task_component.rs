//! Calls a task component by name and submits another; reports the errors.
#[weft::flow]
fn task_component() -> serde_json::Value {
    let called = weft::call_task::<_, serde_json::Value>("summarize", &serde_json::json!({"x": 1})).err();
    let submitted = weft::submit_task("summarize", &1).err();
    serde_json::json!({
        "call_error": called.as_ref().map(|e| e.to_string()),
        "call_retryable": called.map(|e| e.is_retryable()),
        "submit_error": submitted.map(|e| e.to_string()),
    })
}

fn main() {}
