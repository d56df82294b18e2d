//! What the macros expand to. Not a public API: names here change without
//! notice.

use std::any::Any;
use std::fmt::Display;

use serde::Serialize;
use serde::de::DeserializeOwned;

#[path = "bindings.rs"]
pub mod bindings;
#[path = "task_bindings.rs"]
pub mod task_bindings;

pub use crate::schema::{Field, NO_PARAMETERS, Schema, json_bytes, json_len};
pub use bindings::exports::weft::flow::flow_entry::Guest as FlowEntry;
pub use bindings::weft::flow::tasks::TaskOptions;
pub use bindings::weft::flow::types::Error as WitError;
pub use task_bindings::exports::weft::flow::task_entry::Guest as TaskEntry;
pub use wit_bindgen;

use bindings::weft::flow::tasks::{self, BeginOutcome, NextStep};

/// Turns any displayable error into the WIT error; `weft::Error` keeps its
/// retry decision, anything else is retryable.
pub fn to_wit_error<E: Display + 'static>(error: &E) -> WitError {
    match (error as &dyn Any).downcast_ref::<crate::Error>() {
        Some(e) => WitError { message: e.message().to_owned(), retryable: e.is_retryable() },
        None => WitError { message: error.to_string(), retryable: true },
    }
}

/// Decodes the parameters object. Errors name the field that is wrong.
pub fn parameters<P: DeserializeOwned>(json: &str) -> Result<P, WitError> {
    let mut de = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        // serde_json's "at line 1 column 6" points into JSON the user never
        // wrote; the path says where the problem is.
        let inner = e.into_inner().to_string();
        let inner = inner.split(" at line ").next().unwrap_or(&inner);
        let message = if path == "." || path.is_empty() {
            format!("invalid parameters: {inner}")
        } else {
            format!("invalid parameters: parameter `{path}`: {inner}")
        };
        WitError { message, retryable: false }
    })
}

/// Flushes the guest's stdout and stderr so that text printed without a final
/// newline reaches the run's log before the flow returns.
pub fn flush_output() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

/// Decodes a task component's input. Errors name the field that is wrong.
pub fn task_input<I: DeserializeOwned>(json: &str) -> Result<I, WitError> {
    parameters(json).map_err(|e| WitError {
        message: e.message.replacen("invalid parameters: parameter", "invalid task input: field", 1).replacen(
            "invalid parameters:",
            "invalid task input:",
            1,
        ),
        retryable: false,
    })
}

/// Encodes a flow result as JSON.
pub fn result<R: Serialize>(value: &R) -> Result<String, WitError> {
    serde_json::to_string(value)
        .map_err(|e| WitError { message: format!("the result cannot be written as JSON: {e}"), retryable: false })
}

/// The waits before each of `retries` retries under exponential backoff:
/// `initial × factor^(n-1)`, at most `max`, varied at random by up to
/// ±`jitter` of itself (as the host does for task components), so that
/// many failing tasks do not retry in lockstep.
pub fn backoff_delays(retries: u32, initial_ms: u64, factor: f64, max_ms: u64, jitter: f64) -> Vec<u64> {
    (0..retries)
        .map(|n| {
            let base = (initial_ms as f64 * factor.powi(i32::try_from(n).unwrap_or(i32::MAX))).min(max_ms as f64);
            let varied = base * (1.0 + jitter * (2.0 * random_unit() - 1.0));
            varied.max(0.0) as u64
        })
        .collect()
}

/// A random number in [0, 1): the standard library's hasher keys come
/// from the host's `wasi:random`, and each new `RandomState` differs.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new().build_hasher().finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Builds task options from the `#[task]` arguments.
pub fn task_options(
    retries: u32,
    retry_delays_ms: &[u64],
    timeout_ms: Option<u64>,
    cache_key: Option<String>,
    cache_expiration_ms: Option<u64>,
) -> TaskOptions {
    TaskOptions { retries, retry_delays_ms: retry_delays_ms.to_vec(), timeout_ms, cache_key, cache_expiration_ms }
}

/// Opens a task run; `Err(value)` is a cached result that decoded.
fn begin<T: DeserializeOwned>(name: &str, options: &TaskOptions) -> Result<String, T> {
    match tasks::begin(name, options) {
        BeginOutcome::Run(id) => Ok(id),
        BeginOutcome::Cached(json) => match serde_json::from_str(&json) {
            Ok(value) => Err(value),
            // The cached value was written by an older version of the task
            // with another return type: run it afresh, without the cache.
            Err(_) => match tasks::begin(name, &TaskOptions { cache_key: None, ..options.clone() }) {
                BeginOutcome::Run(id) => Ok(id),
                BeginOutcome::Cached(_) => unreachable!("the host returned a cached result without a cache key"),
            },
        },
    }
}

/// Runs a task whose body returns `Result`: records it, retries it as the
/// host decides, and returns a cached result when there is one.
pub fn run_task_result<T, E>(name: &str, options: TaskOptions, mut body: impl FnMut() -> Result<T, E>) -> Result<T, E>
where
    T: Serialize + DeserializeOwned,
    E: Display + 'static,
{
    let id = match begin::<T>(name, &options) {
        Ok(id) => id,
        Err(cached) => return Ok(cached),
    };
    loop {
        let outcome = body();
        let report = match &outcome {
            Ok(value) => encode(value),
            Err(error) => Err(to_wit_error(error)),
        };
        match tasks::end(&id, report.as_ref().map(String::as_str)) {
            NextStep::Finish => return outcome,
            NextStep::Retry => continue,
        }
    }
}

/// Runs a task whose body cannot fail (other than by panicking).
pub fn run_task_value<T>(name: &str, options: TaskOptions, body: impl FnOnce() -> T) -> T
where
    T: Serialize + DeserializeOwned,
{
    let id = match begin::<T>(name, &options) {
        Ok(id) => id,
        Err(cached) => return cached,
    };
    let value = body();
    tasks::end(&id, encode(&value).as_ref().map(String::as_str));
    value
}

fn encode<T: Serialize>(value: &T) -> Result<String, WitError> {
    serde_json::to_string(value).map_err(|e| WitError {
        message: format!("the task's result cannot be written as JSON: {e}"),
        retryable: false,
    })
}

/// The parameters of a flow that takes none: only `{}` decodes.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParameters {}
