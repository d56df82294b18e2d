//! `weft runner`: execute one claimed flow run, wherever an agent started it.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::limits::OutputLimitArgs;
use super::store_args::StoreArgs;
use super::terminal::{LogFormat, TerminalLogs};
use super::{CommandError, EXIT_FAILED, EXIT_UNRECORDED};
use weft::engine::{Engine, EngineConfig};
use weft::model::{FlowRunOutcome, Level, RunSink, State, StateRecord};
use weft::runner::{
    FlowRunRequest, INFRASTRUCTURE_ENV, OnSignal, RecordError, Signal, StopSignal, Supervisor, resolve_sandbox,
    run_request_recorded, stored_task_components, with_shared_code,
};
use weft::store::{CodeKey, Store, weft_home};

/// Exit status of a runner whose run ended Cancelled.
pub const EXIT_CANCELLED: u8 = 4;

/// Execute one flow run that an agent claimed (a child process, or a pod).
///
/// Fetches the run's component and verifies its digest, marks the run
/// Running, sends heartbeats, stops the guest when the run is cancelled or
/// this process gets SIGTERM, and records logs, task runs, the result and
/// the final state. Log lines are echoed on stdout as JSON lines. Exit
/// status: 0 Completed, 1 Failed or Crashed, 2 bad input, 3 outcome not
/// recorded, 4 Cancelled, 143 stopped by SIGTERM in a Kubernetes pod
/// (`WEFT_INFRASTRUCTURE=kubernetes`), the agent recording why.
#[derive(Debug, Args)]
pub struct RunnerArgs {
    /// The flow run's id.
    #[arg(long = "run", value_name = "ID")]
    run: String,
    /// How often the runner writes a heartbeat and checks for cancellation.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = weft::model::parse_duration)]
    heartbeat_interval: Duration,
    /// The operator's ceilings: a deployment may ask for less, never more.
    #[command(flatten)]
    output_limits: OutputLimitArgs,
    /// How long to keep trying to record the run's end while the store is
    /// unreachable, before giving up with exit status 3.
    #[arg(long, value_name = "DURATION", env = "WEFT_RECORD_PATIENCE", default_value = "5m", value_parser = weft::model::parse_duration)]
    record_patience: Duration,
    #[command(flatten)]
    store: StoreArgs,
}

/// Who this runner is, for heartbeats and state records.
pub(super) fn runner_name() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into());
    format!("{host}/{}", std::process::id())
}

/// Ends a run that cannot start, as Crashed with the reason.
async fn crash(store: &Store, id: &str, reason: String) -> Result<ExitCode, CommandError> {
    let record = StateRecord::now(State::Crashed, Some(reason.clone())).by("runner");
    store.transition(id, |current| current.is_none_or(|r| !r.state.is_final()).then(|| record.clone())).await?;
    Err(CommandError(format!("flow run `{id}` crashed: {reason}")))
}

pub(super) async fn runner(args: RunnerArgs) -> Result<ExitCode, CommandError> {
    let store = args.store.open()?;
    let id = args.run.clone();
    let Some(run) = store.read_run(&id).await? else {
        return Err(CommandError(format!("no flow run `{id}` in store `{}`", store.url())));
    };
    match store.latest_state(&id).await?.map(|(_, r)| r.state) {
        Some(State::Cancelling) => {
            let record = StateRecord::now(State::Cancelled, Some("cancelled before it started".into())).by("runner");
            store.transition(&id, |c| (c.map(|r| r.state) == Some(State::Cancelling)).then(|| record.clone())).await?;
            eprintln!("flow run `{id}` was cancelled before it started");
            return Ok(ExitCode::from(EXIT_CANCELLED));
        }
        Some(state) if state.is_final() => {
            return Err(CommandError(format!("flow run `{id}` is {state} already; there is nothing to run")));
        }
        _ => {}
    }

    let bytes = match store.fetch_artifact(&run.component).await {
        Ok(bytes) => bytes,
        Err(e) => return crash(&store, &id, format!("its flow component could not be had: {e}")).await,
    };
    let engine = Engine::new(&EngineConfig::default())?;
    let cache = weft_home().ok().map(|home| home.join("cache/compiled"));
    let code_key = CodeKey::from_env()?;
    let load = || async {
        match &cache {
            Some(dir) => engine.load_flow_cached(&bytes, &run.component, &run.component.to_string(), dir),
            None => engine.load_flow(&bytes, &run.component.to_string()),
        }
    };
    let loaded = with_shared_code(&engine, &store, &run.component, cache.as_deref(), code_key.as_ref(), load).await;
    let flow = match loaded {
        Ok(flow) => flow,
        Err(e) => return crash(&store, &id, e.to_string()).await,
    };
    let (mut limits, grants, notes) = resolve_sandbox(&run.sandbox).await;
    args.output_limits.cap(&mut limits);
    let mut request = match FlowRunRequest::for_run(&flow, &run, limits) {
        Ok(request) => request,
        Err(e) => return crash(&store, &id, e.to_string()).await,
    };
    let stop = Arc::new(StopSignal::default());
    request.grants = grants;
    request.notes = notes;
    request.stop = Some(stop.clone());
    request.record_patience = args.record_patience;
    request.tasks = Arc::new(stored_task_components(&engine, &store, &run.tasks, cache, code_key));

    // Kubernetes signals a pod's runner for reasons only it knows (an
    // eviction, a deletion, a deadline); the agent sees them and records the
    // crash, so the runner leaves the state alone there.
    let on_signal = if std::env::var(INFRASTRUCTURE_ENV).is_ok_and(|v| v == "kubernetes") {
        OnSignal::LeaveToInfrastructure
    } else {
        OnSignal::Record
    };
    let supervisor =
        Supervisor::start(store.clone(), id.clone(), runner_name(), stop, args.heartbeat_interval, on_signal);

    let echo: Arc<dyn RunSink> = Arc::new(TerminalLogs::new(LogFormat::Json, Level::Trace, flow.name()).on_stdout());
    let result = run_request_recorded(&engine, &flow, &store, &run, request, Some(echo)).await;
    if let (Ok(_), Some(signal)) = (&result, supervisor.signal()) {
        return Ok(ExitCode::from(signal.exit_status()));
    }
    drop(supervisor);
    match result {
        Ok(report) => Ok(match report.outcome {
            FlowRunOutcome::Completed { .. } => ExitCode::SUCCESS,
            FlowRunOutcome::Failed { .. } => ExitCode::from(EXIT_FAILED),
            FlowRunOutcome::Cancelled { .. } => ExitCode::from(EXIT_CANCELLED),
        }),
        Err(error @ RecordError::Interrupted { .. }) => {
            super::print_error(&error.to_string());
            Ok(ExitCode::from(Signal::Terminate.exit_status()))
        }
        Err(error @ RecordError::Unrecorded { .. }) => {
            super::print_error(&error.to_string());
            Ok(ExitCode::from(EXIT_UNRECORDED))
        }
        Err(error) => Err(CommandError(error.to_string())),
    }
}
