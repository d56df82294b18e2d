//! One flow run, end to end: validate parameters, instantiate the flow in a
//! fresh store with its limits, call it, and turn whatever happened (a
//! result, an error, a trap, a limit) into a [`FlowRunReport`].
//!
//! May call `engine`, `host` and `model`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use wasmtime::Store;

mod recorded;
mod supervise;

pub use recorded::{FLUSH_INTERVAL, RECORD_PATIENCE, RecordError, run_recorded, run_request_recorded};
pub use supervise::{HEARTBEAT_INTERVAL, OnSignal, Signal, Supervisor};

use crate::engine::{Engine, FlowComponent, TaskComponents};
use crate::host::{
    CUT_MARK, Inherited, LogCap, RunIdentity, RunLog, RunState, TaskEnv, configure_store, cut, trap_reason,
};
use crate::model::{
    FlowRun, FlowRunOutcome, Level, LogSource, ParameterError, Parameters, ResultCache, RunSink, Sandbox, TaskRun,
    TaskRunCounts, new_id,
};
use crate::sandbox::{Grants, LimitExceeded, Limits};
pub use crate::sandbox::{StopSignal, Stopped};

pub use crate::host::REPORTED_TASK_RUNS;
pub use crate::model::job_template::INFRASTRUCTURE_ENV;

/// Everything needed to run a flow once, parameters already validated.
#[derive(Debug, Clone)]
pub struct FlowRunRequest {
    /// The flow run's id.
    pub flow_run_id: String,
    /// The deployment that made the run, if any.
    pub deployment_name: Option<String>,
    /// Which attempt this is, from 1.
    pub attempt: u32,
    /// What the run may use.
    pub limits: Limits,
    /// What the run is granted beyond nothing.
    pub grants: Grants,
    /// Set to stop the run early.
    pub stop: Option<Arc<StopSignal>>,
    /// Warnings about the run's setup, written to its log when it begins.
    pub notes: Vec<String>,
    /// The task components the flow may call by name.
    pub tasks: Arc<TaskComponents>,
    /// Task components running at once, at most; default: the core count.
    pub task_concurrency: Option<usize>,
    /// Where task results are cached across runs (the store, for a
    /// recorded run); without one, only within the run.
    pub cache: Option<Arc<dyn ResultCache>>,
    /// How long a recorded run's end is retried while the store is
    /// unreachable.
    pub record_patience: Duration,
    parameters: Parameters,
}

impl FlowRunRequest {
    /// A first attempt with a new id and default limits, after checking
    /// `parameters` (a JSON object) against the flow's schema.
    pub fn new(flow: &FlowComponent, parameters: serde_json::Value) -> Result<Self, ParameterError> {
        let parameters = match parameters {
            serde_json::Value::Object(map) => map,
            other => {
                return Err(ParameterError {
                    flow: flow.name().to_owned(),
                    problems: vec![crate::model::ParameterProblem::invalid(
                        "",
                        format!("must be a JSON object, got {other}"),
                    )],
                    origin: crate::model::ParameterOrigin::CommandLine,
                });
            }
        };
        Self::with_parameters(flow, parameters)
    }

    /// Like [`FlowRunRequest::new`], from a parameters object.
    pub fn with_parameters(flow: &FlowComponent, parameters: Parameters) -> Result<Self, ParameterError> {
        if let Some(schema) = flow.parameters_schema() {
            schema.validate(flow.name(), &parameters)?;
        }
        Ok(FlowRunRequest {
            flow_run_id: new_id(),
            deployment_name: None,
            attempt: 1,
            limits: Limits::default(),
            grants: Grants::default(),
            stop: None,
            notes: Vec::new(),
            tasks: Arc::new(TaskComponents::new()),
            task_concurrency: None,
            cache: None,
            record_patience: RECORD_PATIENCE,
            parameters,
        })
    }

    /// The request for a flow run recorded in the store: its id, deployment
    /// and attempt, its parameters checked again against the schema.
    pub fn for_run(flow: &FlowComponent, run: &FlowRun, limits: Limits) -> Result<Self, ParameterError> {
        let mut request = Self::with_parameters(flow, run.parameters.clone())?;
        request.flow_run_id = run.id.clone();
        request.deployment_name = run.deployment.clone();
        request.attempt = run.attempt;
        request.limits = limits;
        request.task_concurrency = run.task_concurrency.map(|n| n as usize);
        Ok(request)
    }

    /// The validated parameters.
    pub fn parameters(&self) -> &Parameters {
        &self.parameters
    }
}

/// What a flow run did.
#[derive(Debug, Clone)]
pub struct FlowRunReport {
    /// The flow run's id.
    pub flow_run_id: String,
    /// The flow's name.
    pub flow_name: String,
    /// Completed with a result, or Failed with a reason.
    pub outcome: FlowRunOutcome,
    /// Its first task runs to begin, at most [`REPORTED_TASK_RUNS`], in the
    /// order they began, each as it ended. A run may make millions: every
    /// one of them went to the run's sink (the store, for a recorded run),
    /// and [`task_run_counts`](Self::task_run_counts) counts them all.
    pub task_runs: Vec<TaskRun>,
    /// How many task runs it made, in each final state: all of them, also
    /// those [`task_runs`](Self::task_runs) leaves out.
    pub task_run_counts: TaskRunCounts,
    /// When it started.
    pub started: SystemTime,
    /// How long it took.
    pub duration: Duration,
}

impl FlowRunReport {
    /// How many task runs [`task_runs`](Self::task_runs) leaves out: those
    /// after the first [`REPORTED_TASK_RUNS`].
    pub fn task_runs_left_out(&self) -> u64 {
        self.task_run_counts.total().saturating_sub(self.task_runs.len() as u64)
    }
}

/// Runs a flow once. Never panics and never fails on account of the guest:
/// whatever the guest does ends as an outcome in the report.
pub async fn run_flow(
    engine: &Engine,
    flow: &FlowComponent,
    request: FlowRunRequest,
    logs: Arc<dyn RunSink>,
) -> FlowRunReport {
    let started_at = SystemTime::now();
    let started = Instant::now();
    // Every line of the run, the flow's and its task components', passes the
    // operator's caps first.
    let cap = Arc::new(LogCap::new(logs, &request.limits));
    let logs: Arc<dyn RunSink> = cap.clone();
    let log = Arc::new(RunLog::new(logs.clone(), request.flow_run_id.clone(), request.limits.log_line));
    let identity = RunIdentity {
        flow_run_id: request.flow_run_id.clone(),
        flow_name: flow.name().to_owned(),
        deployment_name: request.deployment_name.clone(),
        attempt: request.attempt,
    };
    log.emit(
        Level::Info,
        LogSource::Weft,
        format!("Beginning flow run `{}` for flow `{}`", request.flow_run_id, flow.name()),
        Vec::new(),
    );
    for note in &request.notes {
        log.emit(Level::Warn, LogSource::Weft, note.clone(), Vec::new());
    }
    let mut tasks = crate::host::TaskRuns::default();
    let components = Arc::new(TaskEnv::new(
        request.tasks.clone(),
        request.task_concurrency.unwrap_or_else(default_task_concurrency),
        identity.clone(),
        logs.clone(),
        Inherited {
            limits: request.limits,
            grants: request.grants.clone(),
            stop: request.stop.clone(),
            cache: request.cache.clone(),
            counts_fuel: engine.counts_fuel(),
        },
    ));

    let outcome = match RunState::new(identity, log.clone(), &request.limits, &request.grants, started) {
        Err(reason) => FlowRunOutcome::Failed { reason, retryable: false },
        Ok(mut state) => {
            state.stop = request.stop.clone();
            state.components = Some(components.clone());
            state.cache = request.cache.clone();
            let mut store = Store::new(engine.wasmtime(), state);
            let outcome = match configure_store(&mut store, engine.counts_fuel(), request.limits.fuel) {
                Err(reason) => FlowRunOutcome::Failed { reason, retryable: false },
                Ok(()) => execute(&mut store, flow, &request).await,
            };
            tasks = std::mem::take(&mut store.data_mut().tasks);
            outcome
        }
    };
    log.flush_output();

    let failure = match &outcome {
        FlowRunOutcome::Failed { reason, .. } | FlowRunOutcome::Cancelled { reason } => Some(reason.as_str()),
        FlowRunOutcome::Completed { .. } => None,
    };
    // Task components still running when the flow ended (submitted, never
    // waited for) are stopped and recorded before the run's end is.
    components.finish().await;
    let mut closed = tasks.finish(failure, &log);
    closed.merge(components.take_closed());
    let mut task_runs = closed.first;
    // An error message is kept to the line limit, wherever it is shown.
    let outcome = match outcome {
        FlowRunOutcome::Failed { mut reason, retryable } => {
            cut(&mut reason, request.limits.log_line, CUT_MARK);
            FlowRunOutcome::Failed { reason, retryable }
        }
        FlowRunOutcome::Cancelled { mut reason } => {
            cut(&mut reason, request.limits.log_line, CUT_MARK);
            FlowRunOutcome::Cancelled { reason }
        }
        completed => completed,
    };
    for task_run in &mut task_runs {
        if let Some(error) = &mut task_run.error {
            cut(error, request.limits.log_line, CUT_MARK);
        }
    }
    log.set_task(None);
    if let Some(dropped) = cap.dropped() {
        log.emit(Level::Warn, LogSource::Weft, dropped, Vec::new());
    }
    let (level, message) = match &outcome {
        FlowRunOutcome::Completed { .. } => (Level::Info, "Finished in state Completed".to_owned()),
        FlowRunOutcome::Failed { reason, .. } => (Level::Error, format!("Finished in state Failed: {reason}")),
        FlowRunOutcome::Cancelled { reason } => (Level::Warn, format!("Finished in state Cancelled: {reason}")),
    };
    log.emit(level, LogSource::Weft, message, Vec::new());

    FlowRunReport {
        flow_run_id: request.flow_run_id,
        flow_name: flow.name().to_owned(),
        outcome,
        task_runs,
        task_run_counts: closed.counts,
        started: started_at,
        duration: started.elapsed(),
    }
}

async fn execute(store: &mut Store<RunState>, flow: &FlowComponent, request: &FlowRunRequest) -> FlowRunOutcome {
    let parameters = serde_json::Value::Object(request.parameters.clone()).to_string();
    // The epoch callback stops a guest that computes; this stops one that
    // waits in a host call (a retry delay) past its deadline.
    // The stop signal does the same for a cancellation.
    let call = tokio::time::timeout(request.limits.timeout, crate::host::call_flow(&flow.pre, store, parameters));
    let stop = async {
        match &request.stop {
            Some(signal) => signal.stopped().await,
            None => std::future::pending().await,
        }
    };
    let returned = tokio::select! {
        returned = call => match returned {
            Err(_) => {
                return FlowRunOutcome::Failed {
                    reason: LimitExceeded::Deadline(request.limits.timeout).to_string(),
                    retryable: true,
                };
            }
            Ok(returned) => returned,
        },
        reason = stop => return FlowRunOutcome::Cancelled { reason },
    };
    match returned {
        Ok(Ok(result)) if result.len() as u64 > request.limits.result => FlowRunOutcome::Failed {
            reason: format!(
                "its result is {}, over the {} limit on results: return less (write large data to a granted \
                 directory or bucket and return where it is), or raise `sandbox.max_result` in the deployment \
                 (`--max-result` on `weft run`)",
                crate::sandbox::format_bytes(result.len() as u64),
                crate::sandbox::format_bytes(request.limits.result)
            ),
            retryable: false,
        },
        Ok(Ok(result)) => match serde_json::from_str(&result) {
            Ok(result) => FlowRunOutcome::Completed { result },
            Err(e) => {
                FlowRunOutcome::Failed { reason: format!("returned a result that is not JSON: {e}"), retryable: false }
            }
        },
        Ok(Err(error)) => FlowRunOutcome::Failed { reason: error.message, retryable: error.retryable },
        Err(error) => {
            if let Some(Stopped(reason)) = error.downcast_ref::<Stopped>() {
                return FlowRunOutcome::Cancelled { reason: reason.clone() };
            }
            store.data().log.flush_output();
            FlowRunOutcome::Failed { reason: trap_reason(&error, &store.data().log), retryable: true }
        }
    }
}

/// Loads a component with `load`, its compiled code shared through the
/// store when a code key is given: fetched (and checked) into the local
/// cache before `load` when the local cache lacks it, and shared after
/// `load` compiled it.
pub async fn with_shared_code<T, E, F: Future<Output = Result<T, E>>>(
    engine: &Engine,
    store: &crate::store::Store,
    digest: &crate::model::Digest,
    cache_dir: Option<&std::path::Path>,
    key: Option<&crate::store::CodeKey>,
    load: impl FnOnce() -> F,
) -> Result<T, E> {
    let (Some(dir), Some(key)) = (cache_dir, key) else { return load().await };
    let (folder, local) = engine.compiled_cache_entry(dir, digest);
    if local.is_file() {
        return load().await;
    }
    let fetched = store.fetch_compiled(&folder, digest, key, &local).await;
    let loaded = load().await?;
    if !fetched && local.is_file() {
        store.publish_compiled(&folder, digest, key, &local).await;
    }
    Ok(loaded)
}

/// The task components of a recorded run: each fetched from `store` (its
/// digest verified) and compiled on its first call, compiled code cached in
/// `cache_dir` and shared through the store under `key`.
pub fn stored_task_components(
    engine: &Engine,
    store: &crate::store::Store,
    tasks: &std::collections::BTreeMap<String, crate::model::TaskComponentRef>,
    cache_dir: Option<std::path::PathBuf>,
    key: Option<crate::store::CodeKey>,
) -> TaskComponents {
    let mut components = TaskComponents::new();
    for (name, task) in tasks {
        let (engine, store, digest) = (engine.clone(), store.clone(), task.component.clone());
        let (cache_dir, key) = (cache_dir.clone(), key.clone());
        let loader: crate::engine::TaskLoader = Box::new(move || {
            let (engine, store, digest) = (engine.clone(), store.clone(), digest.clone());
            let (cache_dir, key) = (cache_dir.clone(), key.clone());
            Box::pin(async move {
                let bytes =
                    store.fetch_artifact(&digest).await.map_err(|e| format!("its component could not be had: {e}"))?;
                let source = digest.to_string();
                let compile =
                    || crate::engine::compile_task(engine.clone(), bytes, digest.clone(), source, cache_dir.clone());
                with_shared_code(&engine, &store, &digest, cache_dir.as_deref(), key.as_ref(), compile).await
            })
        });
        components.insert(name.clone(), task.component.clone(), task.policy.clone(), loader);
    }
    components
}

/// How many task components of one run may run at once unless the run
/// says: one per core.
pub fn default_task_concurrency() -> usize {
    // Asked once: the answer reads cgroup files, too slow for every run.
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map(usize::from).unwrap_or(1))
}

/// The limits and grants of a sandbox, resolved for a run now: granted
/// environment variables take the values this process has, granted hosts
/// are looked up. Problems are reported in the run's log by the caller.
pub async fn resolve_sandbox(sandbox: &Sandbox) -> (Limits, Grants, Vec<String>) {
    let limits = Limits {
        timeout: sandbox.timeout,
        memory: sandbox.memory,
        fuel: None,
        log_line: sandbox.max_log_line,
        log_volume: sandbox.max_log_volume,
        result: sandbox.max_result,
    };
    let mut warnings = Vec::new();
    let mut grants = Grants::default();
    for name in &sandbox.env {
        match std::env::var(name) {
            Ok(value) => grants.env.push((name.clone(), value)),
            Err(_) => warnings.push(format!("environment variable `{name}` is granted but not set on this runner")),
        }
    }
    for dir in &sandbox.dirs {
        let guest = dir.guest.clone().unwrap_or_else(|| dir.host.display().to_string());
        grants.dirs.push((dir.host.clone(), guest, dir.read_only));
    }
    for host in &sandbox.hosts {
        grants.hosts.push(host.clone());
        match tokio::net::lookup_host(host.as_str()).await {
            Ok(addresses) => {
                let addresses: Vec<std::net::SocketAddr> = addresses.collect();
                if let Some((name, _)) = host.rsplit_once(':') {
                    let ips = grants.names.entry(name.trim_matches(['[', ']']).to_ascii_lowercase()).or_default();
                    ips.extend(addresses.iter().map(|a| a.ip()).filter(|ip| !ips.contains(ip)).collect::<Vec<_>>());
                }
                grants.connect.extend(addresses);
            }
            Err(e) => warnings.push(format!("granted host `{host}` does not resolve: {e}")),
        }
    }
    (limits, grants, warnings)
}

/// This host's name (a pod's name in a cluster).
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
