//! A flow built against `weft:flow@0.1.0` with wit-bindgen alone, as flows
//! built before 0.2.0 were. Parameters: `key` (the cache key of its one
//! in-component task) and `task` (a task component to call, if any). It
//! reports what the host told it.
mod v0_1 {
    wit_bindgen::generate!({ path: "../../wit/weft-flow@0.1.0", world: "flow" });
}

use serde_json::{Value, json};
use v0_1::exports::weft::flow::flow_entry::Guest;
use v0_1::weft::flow::types::Error;
use v0_1::weft::flow::{context, log, tasks};

struct Legacy;

fn fatal(message: String) -> Error {
    Error { message, retryable: false }
}

impl Guest for Legacy {
    fn run(parameters: String) -> Result<String, Error> {
        let parameters: Value = serde_json::from_str(&parameters).map_err(|e| fatal(e.to_string()))?;
        let now = context::current();
        log::emit(log::Level::Info, &format!("legacy flow {} starts", now.flow_name), &[]);
        let options = tasks::TaskOptions {
            retries: 0,
            retry_delays_ms: Vec::new(),
            timeout_ms: None,
            cache_key: parameters["key"].as_str().map(str::to_owned),
        };
        let (doubled, cached) = match tasks::begin("double", &options) {
            tasks::BeginOutcome::Cached(json) => (json, true),
            tasks::BeginOutcome::Run(id) => {
                let open = context::current().task_run_id;
                log::emit(log::Level::Debug, "doubling", &[log::Field { key: "of".into(), value: "21".into() }]);
                match tasks::end(&id, Ok("42")) {
                    tasks::NextStep::Finish => {}
                    tasks::NextStep::Retry => return Err(fatal("asked to retry a success".into())),
                }
                if open.as_deref() != Some(id.as_str()) {
                    return Err(fatal(format!("context named task run {open:?} inside {id}")));
                }
                ("42".to_owned(), false)
            }
        };
        let task = match parameters["task"].as_str() {
            Some(name) => match tasks::call(name, r#"{"label": "from a 0.1.0 flow"}"#) {
                Ok(json) => serde_json::from_str(&json).map_err(|e| fatal(e.to_string()))?,
                Err(error) => json!({ "error": error.message }),
            },
            None => Value::Null,
        };
        let doubled: Value = serde_json::from_str(&doubled).map_err(|e| fatal(e.to_string()))?;
        Ok(json!({ "doubled": doubled, "cached": cached, "flow": now.flow_name, "task": task }).to_string())
    }
}

v0_1::export!(Legacy with_types_in v0_1);

fn main() {}
