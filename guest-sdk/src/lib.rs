//! Write weft flows and tasks in Rust.
//!
//! A flow is a function marked `#[weft::flow]` in a crate built as a
//! WebAssembly component (`crate-type = ["cdylib"]`, target
//! `wasm32-wasip2`). Its functions marked `#[weft::task]` are recorded as task
//! runs, retried and cached by the host. This crate is the only dependency a
//! guest needs besides `serde`: it carries the WIT bindings.
//!
//! ```no_run
//! use serde::Deserialize;
//!
//! /// Parameters of the ETL flow.
//! #[derive(Deserialize, weft::JsonSchema)]
//! struct Params {
//!     /// How many items to extract.
//!     #[serde(default = "three")]
//!     count: u32,
//! }
//!
//! fn three() -> u32 {
//!     3
//! }
//!
//! #[weft::task(retries = 3, retry_delay = "1s")]
//! fn extract(count: u32) -> Result<Vec<u32>, String> {
//!     Ok((1..=count).collect())
//! }
//!
//! #[weft::task]
//! fn transform(data: Vec<u32>) -> Vec<u32> {
//!     data.into_iter().map(|x| x * 10).collect()
//! }
//!
//! #[weft::task]
//! fn load(data: &[u32]) {
//!     weft::info!("Here's your data: {:?}", data; rows = data.len());
//! }
//!
//! #[weft::flow]
//! fn etl(params: Params) -> Result<Vec<u32>, String> {
//!     let ctx = weft::context();
//!     weft::debug!("starting"; run = ctx.flow_run_id(), attempt = ctx.attempt());
//!     let data = transform(extract(params.count)?);
//!     load(&data);
//!     Ok(data)
//! }
//! # fn main() {}
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` and run the
//! `.wasm` file with `weft run target/wasm32-wasip2/release/etl.wasm -p count=3`.
//!
//! # The flow function
//!
//! `#[weft::flow]` takes a function of zero or one argument. The argument's
//! type `P` implements `serde::Deserialize` and [`JsonSchema`]; the function
//! returns `Result<R, E>` (with `R: Serialize` and `E: Display`) or a plain
//! `R`. The macro generates the component's export, decodes the parameters
//! (naming the field that is wrong when they do not decode), encodes the
//! result as JSON, and embeds `P`'s JSON Schema in the `weft:parameters-schema`
//! custom section and the function's name in `weft:flow-name`, so the host
//! validates parameters before it runs anything. A component has one flow.
//!
//! # Tasks
//!
//! `#[weft::task]` wraps a function (any arguments; it returns `Result<T, E>`
//! or a plain `T`, with `T: Serialize + DeserializeOwned`). Each call opens a
//! task run on the host, which the run's records and logs show. Options:
//!
//! - `retries = N`: retry a failed attempt up to N times (only errors that are
//!   retryable: any error except [`Error::fatal`]). The arguments must be
//!   `Clone` so that every attempt gets them.
//! - `retry_delay = "2s"` or `retry_delay = ["1s", "10s", "1m"]`: the wait
//!   before each retry (the last one repeats); an integer means seconds.
//! - `retry_backoff(initial = "1s", factor = 2, max = "10m", jitter = 0.2)`:
//!   instead of `retry_delay`, exponential backoff: retry n waits
//!   `initial × factor^(n-1)`, at most `max`, varied at random by up to
//!   ±`jitter` of itself (defaults: factor 2, max 10m, jitter 0.2).
//! - `timeout = "30s"`: an attempt that runs longer ends the flow run as
//!   failed (code in a component cannot be interrupted on its own).
//! - `cache_key = <expression>`: a string built from the arguments; a later
//!   call with the same key, in this run or a later one, returns the recorded
//!   result without running the body.
//! - `cache_expiration = "1h"`: with `cache_key`, how long a recorded result
//!   is reused; without it, until the cache entry is deleted.
//!
//! Task components (separate components, possibly in another language) are
//! called by name with [`call_task`], or started with [`submit_task`] and
//! awaited, so that several run at once. Each runs in a sandbox of its own.
//!
//! # Task components
//!
//! A crate whose function is marked `#[weft::task_component]` builds a task
//! component (the `task` world): a function of zero or one argument (its
//! input, decoded from JSON) that returns `Result<T, E>` or a plain `T`.
//!
//! ```no_run
//! #[derive(serde::Deserialize)]
//! struct Input {
//!     text: String,
//! }
//!
//! #[weft::task_component]
//! fn word_count(input: Input) -> usize {
//!     input.text.split_whitespace().count()
//! }
//! # fn main() {}
//! ```
//!
//! A flow calls it by the name its deployment gives it (`tasks:` in
//! `weft.yaml`, or `weft run flow.wasm --task words=word_count.wasm`):
//! `weft::call_task::<_, usize>("words", &json!({"text": "a b c"}))`.
//!
//! # Logging
//!
//! [`info!`], [`warn!`], [`error!`], [`debug!`] and [`trace!`] take a
//! `format!` string, then optional key/value fields after a `;`. Anything the
//! guest prints to stdout or stderr is captured into the run's logs too.

// The bindings refer to this crate as `::weft`, as guests do.
extern crate self as weft;

mod context;
mod error;
mod log;
mod schema;
mod tasks;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use context::{Context, context};
pub use error::Error;
pub use log::{Level, log};
pub use schema::{Field, JsonSchema, Schema};
pub use tasks::{SubmittedTask, call_task, submit_task};
pub use weft_sdk_macros::{JsonSchema, flow, task, task_component};

/// serde, re-exported for the macros and for guests that want to name it.
pub use serde;
/// serde_json, re-exported: parameters and results cross the boundary as JSON.
pub use serde_json;
