//! `weft:flow/context`: who the run is.

use super::RunState;
use super::bindings::weft::flow::context::{Host, RunContext};

impl Host for RunState {
    fn current(&mut self) -> RunContext {
        let identity = &self.identity;
        RunContext {
            flow_run_id: identity.flow_run_id.clone(),
            flow_name: identity.flow_name.clone(),
            deployment_name: identity.deployment_name.clone(),
            attempt: identity.attempt,
            task_run_id: self.tasks.current().map(|(id, _)| id.to_owned()),
        }
    }
}
