//! What a guest may know about the run it is part of.

use crate::__private::bindings::weft::flow::context as wit;

/// The run a guest is executing in; see [`context()`].
#[derive(Debug, Clone)]
pub struct Context {
    inner: wit::RunContext,
}

/// Returns the current run context: flow run id, flow name, deployment,
/// attempt and the open task run.
pub fn context() -> Context {
    Context { inner: wit::current() }
}

impl Context {
    /// The flow run's id (a ULID: ids sort by creation time).
    pub fn flow_run_id(&self) -> &str {
        &self.inner.flow_run_id
    }

    /// The flow's name.
    pub fn flow_name(&self) -> &str {
        &self.inner.flow_name
    }

    /// The deployment that created the run; `None` for `weft run FILE`.
    pub fn deployment_name(&self) -> Option<&str> {
        self.inner.deployment_name.as_deref()
    }

    /// Which attempt of the flow run this is, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// The innermost task run open when [`context()`] was called, if any.
    pub fn task_run_id(&self) -> Option<&str> {
        self.inner.task_run_id.as_deref()
    }
}
