//! Calling task components: separate components, possibly in another
//! language, registered by name in the flow's deployment.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__private::bindings::weft::flow::tasks as wit;
use crate::__private::bindings::weft::flow::types::Error as WitError;
use crate::Error;

fn from_wit(error: WitError) -> Error {
    if error.retryable { Error::retryable(error.message) } else { Error::fatal(error.message) }
}

fn encode<I: Serialize>(name: &str, input: &I) -> Result<String, Error> {
    serde_json::to_string(input)
        .map_err(|e| Error::fatal(format!("the input of task `{name}` cannot be written as JSON: {e}")))
}

fn decode<O: DeserializeOwned>(name: &str, json: &str) -> Result<O, Error> {
    serde_json::from_str(json).map_err(|e| Error::fatal(format!("the result of task `{name}` does not decode: {e}")))
}

/// Runs the task component registered as `name` with `input` and waits for
/// its result. It runs in a sandbox of its own.
pub fn call_task<I: Serialize, O: DeserializeOwned>(name: &str, input: &I) -> Result<O, Error> {
    let json = wit::call(name, &encode(name, input)?).map_err(from_wit)?;
    decode(name, &json)
}

/// Starts the task component registered as `name` without waiting; submitted
/// tasks run concurrently. Call [`SubmittedTask::wait`] for the result.
pub fn submit_task<I: Serialize>(name: &str, input: &I) -> Result<SubmittedTask, Error> {
    let handle = wit::submit(name, &encode(name, input)?).map_err(from_wit)?;
    Ok(SubmittedTask { name: name.to_owned(), handle })
}

/// A task component run started with [`submit_task`].
#[derive(Debug)]
pub struct SubmittedTask {
    name: String,
    handle: wit::SubmittedTask,
}

impl SubmittedTask {
    /// Waits for the task run to end and returns its result.
    pub fn wait<O: DeserializeOwned>(self) -> Result<O, Error> {
        let json = self.handle.wait().map_err(from_wit)?;
        decode(&self.name, &json)
    }
}
