//! The types that flow runs, task runs and logs are made of. Plain data with
//! serde: no I/O happens here.

mod deployment;
mod logs;
mod parameters;
mod runs;

pub use deployment::{
    Deployment, DeploymentFile, DeploymentFileError, DeploymentSpec, DirGrant, Infrastructure, Sandbox, Schedule,
    check_cron, duration,
};
pub use logs::rfc3339;
pub use logs::{DiscardLogs, Level, LogLine, LogSource, RunSink, Tee};
pub use parameters::{ParameterError, ParameterProblem, ParameterSchema, Parameters, parse_assignment};
pub use runs::{Digest, FlowRun, FlowRunOutcome, State, StateRecord, TaskRun};

/// A fresh id for a flow run or task run: a ULID, so ids sort by the time
/// they were made.
pub fn new_id() -> String {
    ulid::Ulid::new().to_string()
}
