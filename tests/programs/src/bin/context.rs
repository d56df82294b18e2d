//! Reports the run context, outside and inside a task.
#[weft::task]
fn inside() -> Option<String> {
    weft::context().task_run_id().map(str::to_owned)
}

#[weft::flow]
fn context() -> serde_json::Value {
    let ctx = weft::context();
    serde_json::json!({
        "flow_run_id": ctx.flow_run_id(),
        "flow_name": ctx.flow_name(),
        "deployment": ctx.deployment_name(),
        "attempt": ctx.attempt(),
        "task_outside": ctx.task_run_id(),
        "task_inside": inside(),
    })
}

fn main() {}
