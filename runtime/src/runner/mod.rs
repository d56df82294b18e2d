//! One flow run, end to end: validate parameters, instantiate the flow in a
//! fresh store with its limits, call it, and turn whatever happened (a
//! result, an error, a trap, a limit) into a [`FlowRunReport`].
//!
//! May call `engine`, `host` and `model`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;

use wasmtime::{Store, Trap, UpdateDeadline, WasmBacktrace};

mod recorded;

pub use recorded::{FLUSH_INTERVAL, RecordError, run_recorded, run_request_recorded};

use crate::engine::{Engine, FlowComponent, Grants, LimitExceeded, Limits};
use crate::host::{RunIdentity, RunLog, RunState};
use crate::model::{
    FlowRun, FlowRunOutcome, Level, LogSource, ParameterError, Parameters, RunSink, Sandbox, TaskRun, new_id,
};

/// Set to `kubernetes` in a Job's flow container: a signal to the runner
/// then [interrupts](StopSignal::interrupt) the run, and the agent records
/// why Kubernetes stopped the pod.
pub const INFRASTRUCTURE_ENV: &str = "WEFT_INFRASTRUCTURE";

/// Asks a running flow to stop: set by a cancellation or a signal to the
/// runner. The guest is stopped at its next epoch tick, or at once if it is
/// waiting in the host.
#[derive(Debug, Default)]
pub struct StopSignal {
    /// Why, and whether the runner records the stop itself.
    reason: Mutex<Option<(String, bool)>>,
    notify: Notify,
}

impl StopSignal {
    /// Stops the run, saying why; the run records its end itself. The first
    /// reason given is kept.
    pub fn stop(&self, reason: impl Into<String>) {
        self.set(reason.into(), true);
    }

    /// Stops the run but leaves its final state to whoever stopped it: a
    /// pod's runner is signalled by Kubernetes, and the agent, which sees
    /// why (an eviction, a deletion, a deadline), records that instead.
    /// A run being cancelled still records Cancelled.
    pub fn interrupt(&self, reason: impl Into<String>) {
        self.set(reason.into(), false);
    }

    fn set(&self, reason: String, recorded: bool) {
        let mut current = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if current.is_none() {
            *current = Some((reason, recorded));
        }
        drop(current);
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// Why the run was asked to stop, if it was.
    pub fn reason(&self) -> Option<String> {
        self.reason.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(|(reason, _)| reason.clone())
    }

    /// Whether the run was [interrupted](Self::interrupt): its end is left
    /// to whoever stopped it.
    pub fn interrupted(&self) -> bool {
        self.reason.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_some_and(|(_, recorded)| !recorded)
    }

    async fn stopped(&self) -> String {
        loop {
            if let Some(reason) = self.reason() {
                return reason;
            }
            self.notify.notified().await;
        }
    }
}

/// The trap raised in a guest that was asked to stop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stopped: {0}")]
pub struct Stopped(pub String);

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
                    problems: vec![crate::model::ParameterProblem {
                        parameter: String::new(),
                        message: format!("must be a JSON object, got {other}"),
                    }],
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
    /// Its task runs, in the order they began.
    pub task_runs: Vec<TaskRun>,
    /// When it started.
    pub started: SystemTime,
    /// How long it took.
    pub duration: Duration,
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
    let log = Arc::new(RunLog::new(logs, request.flow_run_id.clone()));
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

    let outcome = match RunState::new(identity, log.clone(), &request.limits, &request.grants, started) {
        Err(reason) => FlowRunOutcome::Failed { reason, retryable: false },
        Ok(mut state) => {
            state.stop = request.stop.clone();
            let mut store = Store::new(engine.wasmtime(), state);
            store.limiter(|state| &mut state.limiter);
            let outcome = match configure(&mut store, engine, &request.limits) {
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
    let task_runs = tasks.finish(failure, &log);
    let (level, message) = match &outcome {
        FlowRunOutcome::Completed { .. } => (Level::Info, "Finished in state Completed".to_owned()),
        FlowRunOutcome::Failed { reason, .. } => (Level::Error, format!("Finished in state Failed: {reason}")),
        FlowRunOutcome::Cancelled { reason } => (Level::Warn, format!("Finished in state Cancelled: {reason}")),
    };
    log.set_task(None);
    log.emit(level, LogSource::Weft, message, Vec::new());

    FlowRunReport {
        flow_run_id: request.flow_run_id,
        flow_name: flow.name().to_owned(),
        outcome,
        task_runs,
        started: started_at,
        duration: started.elapsed(),
    }
}

fn configure(store: &mut Store<RunState>, engine: &Engine, limits: &Limits) -> Result<(), String> {
    if let Some(fuel) = limits.fuel {
        if !engine.counts_fuel() {
            return Err("a fuel limit was set, but the engine does not count fuel (build it with fuel enabled)".into());
        }
        store.set_fuel(fuel).map_err(|e| format!("cannot set fuel: {e}"))?;
    } else if engine.counts_fuel() {
        store.set_fuel(u64::MAX).map_err(|e| format!("cannot set fuel: {e}"))?;
    }
    // Every tick, check the deadlines; yield so that other runs on this
    // thread make progress even when a guest never calls the host.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| match ctx.data().interruption(Instant::now()) {
        Some(error) => Err(error),
        None => Ok(UpdateDeadline::Yield(1)),
    });
    Ok(())
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

/// Why the guest stopped, for a person.
fn trap_reason(error: &wasmtime::Error, log: &RunLog) -> String {
    if let Some(limit) = error.downcast_ref::<LimitExceeded>() {
        return limit.to_string();
    }
    if let Some(panic) = log.panic_message() {
        return panic;
    }
    let place = error
        .downcast_ref::<WasmBacktrace>()
        .and_then(|bt| bt.frames().iter().find_map(|f| f.func_name().map(str::to_owned)))
        .map(|name| format!(" in `{:#}`", rustc_demangle::demangle(&name)))
        .unwrap_or_default();
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => "ran out of fuel".to_owned(),
        Some(Trap::StackOverflow) => format!("overflowed its stack{place}"),
        Some(trap) => {
            let trap = trap.to_string();
            format!("trapped{place}: {}", trap.strip_prefix("wasm trap: ").unwrap_or(&trap))
        }
        None => format!("stopped by the host: {}", error.root_cause()),
    }
}

/// The limits and grants of a sandbox, resolved for a run now: granted
/// environment variables take the values this process has, granted hosts
/// are looked up. Problems are reported in the run's log by the caller.
pub async fn resolve_sandbox(sandbox: &Sandbox) -> (Limits, Grants, Vec<String>) {
    let limits = Limits { timeout: sandbox.timeout, memory: sandbox.memory, fuel: None };
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
        match tokio::net::lookup_host(host.as_str()).await {
            Ok(addresses) => grants.connect.extend(addresses),
            Err(e) => warnings.push(format!("granted host `{host}` does not resolve: {e}")),
        }
    }
    (limits, grants, warnings)
}
