//! The types that flow runs, task runs and logs are made of, and the
//! [`sandbox`] a run is held in. Plain data with serde: no I/O happens here.
//!
//! The `weft` library re-exports this crate as `weft::model` (and its
//! sandbox as `weft::sandbox`); the UI and the command line build on the
//! same types.

mod agents;
mod cache;
mod deployment;
pub mod job_template;
mod logs;
pub mod metric_names;
mod parameters;
mod pool;
mod runs;
pub mod sandbox;
mod tasks;
mod units;

pub use agents::{AGENT_BEAT, AgentRecord, AgentStatus};
pub use cache::{CacheFuture, CachedResult, ResultCache};
pub use deployment::{
    Deployment, DeploymentFile, DeploymentFileError, DeploymentSpec, DirGrant, Infrastructure, Sandbox, Schedule,
    check_cron, duration,
};
pub use logs::rfc3339;
pub use logs::{DiscardLogs, Level, LogLine, LogSource, RoomWait, RunSink, Tee};
pub use parameters::{
    ParameterError, ParameterOrigin, ParameterProblem, ParameterSchema, Parameters, ProblemKind, parse_assignment,
};
pub use pool::{DEFAULT_QUEUE, PoolKind, WorkPool, WorkPoolSpec, WorkQueue, check_pool_name, check_queue_name};
pub use runs::{Digest, FlowRun, FlowRunOutcome, State, StateRecord, TaskRun, TaskRunCounts};
pub use tasks::{Backoff, CachePolicy, TaskComponentRef, TaskPolicy, TaskSpec};
pub use units::{MAX_MEMORY, MIN_MEMORY, check_memory, parse_byte_limit, parse_duration, parse_memory, short_duration};

/// A fresh id for a flow run or task run: a ULID, so ids sort by the time
/// they were made. Ids made by one process sort in the order it made them,
/// also within a millisecond (times are stored to the millisecond, and task
/// runs that began in the same one are ordered by id).
pub fn new_id() -> String {
    static IDS: std::sync::Mutex<ulid::Generator> = std::sync::Mutex::new(ulid::Generator::new());
    let next = IDS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).generate();
    // The random part overflows within a millisecond after 2^80 ids: never.
    next.unwrap_or_else(|_| ulid::Ulid::new()).to_string()
}

/// The candidate closest to `word`, if one is close enough to be what was
/// meant: for "did you mean" hints.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_made_one_after_another_sort_in_that_order_even_within_a_millisecond() {
        let ids: Vec<String> = (0..10_000).map(|_| super::new_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, ids);
    }
}
