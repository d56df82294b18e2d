//! A task component built against `weft:flow@0.1.0` with wit-bindgen alone.
//! Returns its input's `label` and the task run it saw itself in.
mod v0_1 {
    wit_bindgen::generate!({ path: "../../wit/weft-flow@0.1.0", world: "task" });
}

use serde_json::{Value, json};
use v0_1::exports::weft::flow::task_entry::Guest;
use v0_1::weft::flow::types::Error;
use v0_1::weft::flow::{context, log};

struct Legacy;

impl Guest for Legacy {
    fn run(input: String) -> Result<String, Error> {
        let input: Value =
            serde_json::from_str(&input).map_err(|e| Error { message: e.to_string(), retryable: false })?;
        log::emit(log::Level::Warn, "legacy task runs", &[]);
        let seen = context::current();
        Ok(json!({ "label": input["label"], "task_run_id": seen.task_run_id, "flow_run_id": seen.flow_run_id })
            .to_string())
    }
}

v0_1::export!(Legacy with_types_in v0_1);

fn main() {}
