//! A flow run recorded in the store: Running, logs and task runs written
//! behind, the result, and the final state, each a create-only write.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{FlowRunReport, FlowRunRequest, run_flow};
use crate::engine::{Engine, FlowComponent, Limits};
use crate::model::{FlowRun, FlowRunOutcome, ParameterError, RunSink, State, StateRecord, Tee};
use crate::store::{Store, StoreError, StoreRecorder, TransitionOutcome};

/// How often a live run's logs and task runs are written to the store.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// How long a run's end is retried while the store is unreachable before
/// the runner gives up (exit status 3), unless the request says otherwise.
pub const RECORD_PATIENCE: Duration = Duration::from_secs(300);

/// Why a recorded run did not run, or did but its outcome was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The parameters no longer pass the flow's schema.
    #[error(transparent)]
    Parameters(#[from] ParameterError),
    /// The run was in a state it cannot start from.
    #[error("flow run `{id}` cannot start: it is {state} already")]
    NotRunnable {
        /// The run.
        id: String,
        /// Its state.
        state: State,
    },
    /// The store failed before the run started.
    #[error("flow run `{id}` did not start: {source}")]
    Start {
        /// The run.
        id: String,
        /// What failed.
        source: StoreError,
    },
    /// The run was [interrupted](super::StopSignal::interrupt): its logs
    /// are written and its final state is left to whoever stopped it.
    #[error("flow run `{id}` was stopped ({reason}); its infrastructure records why")]
    Interrupted {
        /// The run.
        id: String,
        /// The stop's reason.
        reason: String,
    },
    /// The run ended but the store does not say so.
    #[error(
        "flow run `{}` ended {} but that could not be recorded in the store, which may still show it as Running: {source}",
        report.flow_run_id,
        report.outcome.state()
    )]
    Unrecorded {
        /// What happened.
        report: Box<FlowRunReport>,
        /// What failed.
        source: StoreError,
    },
}

/// Runs a flow run that exists in the store, recording it as it goes.
///
/// Moves the run to Running (from no state, Scheduled or Pending), runs it
/// with its logs and task runs written behind to the store (and to `sink`,
/// if given), writes its result, then its final state. When the final
/// state cannot be written, the error says so: such a run is never reported
/// as Completed.
pub async fn run_recorded(
    engine: &Engine,
    flow: &FlowComponent,
    store: &Store,
    run: &FlowRun,
    limits: Limits,
    sink: Option<Arc<dyn RunSink>>,
) -> Result<FlowRunReport, RecordError> {
    let request = FlowRunRequest::for_run(flow, run, limits)?;
    run_request_recorded(engine, flow, store, run, request, sink).await
}

/// Like [`run_recorded`], with a request of the caller's making (grants, a
/// stop signal).
pub async fn run_request_recorded(
    engine: &Engine,
    flow: &FlowComponent,
    store: &Store,
    run: &FlowRun,
    request: FlowRunRequest,
    sink: Option<Arc<dyn RunSink>>,
) -> Result<FlowRunReport, RecordError> {
    let start = |current: Option<&StateRecord>| match current.map(|r| r.state) {
        None | Some(State::Scheduled | State::Pending) => {
            Some(StateRecord { host: Some(super::host_name()), ..StateRecord::now(State::Running, None).by("runner") })
        }
        Some(_) => None,
    };
    match store.transition(&run.id, start).await {
        Ok(TransitionOutcome::Written { .. }) => {}
        Ok(TransitionOutcome::Kept { current }) => {
            let state = current.map_or(State::Running, |r| r.state);
            return Err(RecordError::NotRunnable { id: run.id.clone(), state });
        }
        Err(source) => return Err(RecordError::Start { id: run.id.clone(), source }),
    }

    let mut request = request;
    if request.cache.is_none() {
        request.cache = Some(Arc::new(store.clone()));
    }
    let recorder = StoreRecorder::start(store.clone(), run.id.clone(), FLUSH_INTERVAL);
    let sinks: Vec<Arc<dyn RunSink>> = sink.into_iter().chain([recorder.clone() as Arc<dyn RunSink>]).collect();
    let stop = request.stop.clone();
    let patience = request.record_patience;
    let report = run_flow(engine, flow, request, Arc::new(Tee(sinks))).await;
    let interrupted = stop.as_ref().is_some_and(|s| s.interrupted());

    // A store that is away when the run ends (an outage, a network blip)
    // is waited for, up to the request's patience: the run's end is worth
    // more than the runner's exit.
    let deadline = Instant::now() + patience;
    let mut wait = Duration::from_millis(250);
    loop {
        let source = match record_end(store, run, &report, &recorder, interrupted).await {
            Ok(Recorded::Written) => return Ok(report),
            Ok(Recorded::LeftToInfrastructure) => {
                let reason = match &report.outcome {
                    FlowRunOutcome::Cancelled { reason } => reason.clone(),
                    other => other.state().to_string(),
                };
                return Err(RecordError::Interrupted { id: run.id.clone(), reason });
            }
            Err(source) => source,
        };
        let transient = matches!(source, StoreError::Unreachable { .. } | StoreError::Request { .. });
        if !transient || Instant::now() + wait > deadline {
            return Err(RecordError::Unrecorded { report: Box::new(report), source });
        }
        tracing::warn!(
            run = %run.id, error = %source,
            "could not record the run's end; retrying for up to {}", humantime::format_duration(patience)
        );
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// What [`record_end`] did.
enum Recorded {
    /// The final state is in the store.
    Written,
    /// The run was interrupted and is still Running: its infrastructure
    /// records why.
    LeftToInfrastructure,
}

/// Writes a run's remaining logs and task runs, its result and its final
/// state; safe to call again after a failure.
async fn record_end(
    store: &Store,
    run: &FlowRun,
    report: &FlowRunReport,
    recorder: &StoreRecorder,
    interrupted: bool,
) -> Result<Recorded, StoreError> {
    // Logs, task runs and the result are written before the final state, so
    // that whoever sees the final state finds them all.
    recorder.finish().await?;
    if let FlowRunOutcome::Completed { result } = &report.outcome {
        store.write_result(&run.id, result).await?;
    }
    let final_record = match &report.outcome {
        FlowRunOutcome::Completed { .. } => StateRecord::now(State::Completed, None),
        FlowRunOutcome::Failed { reason, retryable } => {
            StateRecord { retryable: Some(*retryable), ..StateRecord::now(State::Failed, Some(reason.clone())) }
        }
        FlowRunOutcome::Cancelled { reason } => StateRecord::now(State::Cancelled, Some(reason.clone())),
    }
    .by("runner");
    // A run asked to cancel that finished anyway records how it finished;
    // one stopped without being asked to cancel (its runner was signalled)
    // crashed.
    let finish = |current: Option<&StateRecord>| match (current.map(|r| r.state), &report.outcome) {
        (Some(State::Running), FlowRunOutcome::Cancelled { .. }) if interrupted => None,
        (Some(State::Running), FlowRunOutcome::Cancelled { reason }) => {
            Some(StateRecord::now(State::Crashed, Some(reason.clone())).by("runner"))
        }
        (Some(State::Running | State::Cancelling), _) => Some(final_record.clone()),
        _ => None,
    };
    match store.transition(&run.id, finish).await? {
        TransitionOutcome::Written { .. } => Ok(Recorded::Written),
        TransitionOutcome::Kept { current: Some(current) } if interrupted && current.state == State::Running => {
            Ok(Recorded::LeftToInfrastructure)
        }
        // An earlier attempt wrote it, and its answer was lost.
        TransitionOutcome::Kept { current: Some(current) }
            if current.by.as_deref() == Some("runner") && current.state.is_final() =>
        {
            Ok(Recorded::Written)
        }
        TransitionOutcome::Kept { current } => {
            let state = current.map_or_else(|| "missing".to_owned(), |r| r.state.to_string());
            Err(StoreError::Corrupt {
                url: store.url().to_owned(),
                path: format!("runs/{}/states", run.id),
                reason: format!("the run was {state} when it ended, not Running"),
            })
        }
    }
}
