//! Task components called from a flow: each call is a task run in a sandbox
//! of its own (a fresh store from the component's reused `InstancePre`,
//! with its own deadline and memory cap), run as a tokio task so that
//! submitted tasks run concurrently, at most the run's task concurrency at
//! once. Whatever a task does (returns an error, traps, runs past a limit)
//! comes back to the flow as an error it may handle; siblings go on.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Semaphore, oneshot};
use tokio::task::{AbortHandle, JoinHandle};
use wasmtime::Store;

use super::bindings::weft::flow::types::Error as WitError;
use super::tasks::ClosedTaskRuns;
use super::{RunIdentity, RunLog, RunState, configure_store, trap_reason};
use super::{TaskComponent, TaskComponents};
use crate::model::{CachedResult, Digest, Level, LogSource, ResultCache, RunSink, State, TaskPolicy, TaskRun, new_id};
use crate::sandbox::{Grants, LimitExceeded, Limits, StopSignal, Stopped};

/// What a task run takes from its flow run.
pub(crate) struct Inherited {
    /// The flow run's limits: each task's own policy overrides them.
    pub(crate) limits: Limits,
    pub(crate) grants: Grants,
    pub(crate) stop: Option<Arc<StopSignal>>,
    pub(crate) cache: Option<Arc<dyn ResultCache>>,
    pub(crate) counts_fuel: bool,
}

/// What every task component call of one flow run shares.
pub(crate) struct TaskEnv {
    components: Arc<TaskComponents>,
    slots: Arc<Semaphore>,
    identity: RunIdentity,
    sink: Arc<dyn RunSink>,
    inherited: Inherited,
    /// Task runs that ended, for the run's report.
    closed: Mutex<ClosedTaskRuns>,
    /// How many task runs were submitted.
    submitted: AtomicUsize,
    /// Spawned task runs, stopped when the flow run ends.
    running: Mutex<Vec<JoinHandle<()>>>,
}

impl TaskEnv {
    pub(crate) fn new(
        components: Arc<TaskComponents>,
        concurrency: usize,
        identity: RunIdentity,
        sink: Arc<dyn RunSink>,
        inherited: Inherited,
    ) -> Self {
        TaskEnv {
            components,
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            identity,
            sink,
            inherited,
            closed: Mutex::default(),
            submitted: AtomicUsize::new(0),
            running: Mutex::default(),
        }
    }

    /// Starts a task run of the component registered as `name`. An unknown
    /// name is an error at once; everything else is the task run's outcome.
    pub(crate) fn submit(self: &Arc<Self>, name: String, input: String) -> Result<Submitted, WitError> {
        let Some(entry) = self.components.get(&name) else { return Err(self.unknown(&name)) };
        // Recorded from now on: a task run stopped before it started is
        // recorded Cancelled all the same.
        let record = Recorded {
            env: self.clone(),
            run: TaskRun {
                id: new_id(),
                name: name.clone(),
                state: State::Pending,
                component: Some(entry.digest.clone()),
                attempts: 0,
                cached: false,
                cache_key: None,
                started: SystemTime::now(),
                ended: None,
                error: None,
            },
            position: self.submitted.fetch_add(1, Ordering::Relaxed),
            done: false,
        };
        self.sink.task_run(&record.run);
        let (sender, receiver) = oneshot::channel();
        let env = self.clone();
        let handle = tokio::spawn(async move {
            let outcome = env.run(record, input).await;
            let _ = sender.send(outcome);
        });
        let abort = handle.abort_handle();
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        // Keep the list to the task runs in flight, not every one ever made.
        if running.len() >= 64 {
            running.retain(|h| !h.is_finished());
        }
        running.push(handle);
        Ok(Submitted { name, result: Some(receiver), abort })
    }

    /// Stops every task run still in flight and waits until each has been
    /// recorded.
    pub(crate) async fn finish(&self) {
        let running = std::mem::take(&mut *self.running.lock().unwrap_or_else(PoisonError::into_inner));
        for handle in &running {
            handle.abort();
        }
        for handle in running {
            let _ = handle.await;
        }
    }

    /// What is kept of the task runs that ended: counts by state and the
    /// first to be submitted, in the order they began.
    pub(crate) fn take_closed(&self) -> ClosedTaskRuns {
        let mut closed = std::mem::take(&mut *self.closed.lock().unwrap_or_else(PoisonError::into_inner));
        closed.first.sort_by(|a, b| a.started.cmp(&b.started).then_with(|| a.id.cmp(&b.id)));
        closed
    }

    fn unknown(&self, name: &str) -> WitError {
        let names: Vec<&str> = self.components.names().collect();
        let suggestion = crate::model::closest(name, names.iter().copied())
            .map(|n| format!(" Did you mean `{n}`?"))
            .unwrap_or_default();
        let known = if names.is_empty() {
            "none are registered".to_owned()
        } else {
            format!("registered: {}", names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))
        };
        WitError {
            message: format!(
                "no task component named `{name}` in this flow run ({known}).{suggestion} Register it under \
                 `tasks:` in the deployment, or with `weft run FLOW --task {name}=PATH.wasm`"
            ),
            retryable: false,
        }
    }

    /// One task run, every attempt of it, recorded.
    async fn run(self: Arc<Self>, mut record: Recorded, input: String) -> Result<String, WitError> {
        let name = record.run.name.clone();
        let Some(entry) = self.components.get(&name) else { return Err(self.unknown(&name)) };
        let policy = &entry.policy;
        // With caching on, the same input to the same component is the
        // same result, in any run on any machine, until it expires; a hit
        // needs no compiled component.
        let cache = match (&policy.cache, &self.inherited.cache) {
            (Some(cache_policy), Some(store)) => {
                let key = format!("component:{}\ninput:{}", entry.digest, Digest::of(input.as_bytes()).hex());
                if let Some(hit) = store.get(&key).await {
                    record.run.cached = true;
                    record.run.cache_key = Some(key);
                    record.end(State::Completed, None);
                    return Ok(hit.result);
                }
                Some((store.clone(), key, cache_policy.expiration))
            }
            _ => None,
        };
        let component = match entry.component().await {
            Ok(component) => component,
            Err(reason) => {
                let error = WitError { message: format!("task `{name}` cannot run: {reason}"), retryable: false };
                record.end(State::Failed, Some(error.message.clone()));
                return Err(error);
            }
        };
        let limits = Limits {
            timeout: policy.timeout.unwrap_or(self.inherited.limits.timeout),
            memory: policy.memory.unwrap_or(self.inherited.limits.memory),
            ..self.inherited.limits
        };
        loop {
            let outcome = {
                let _slot = self.slots.acquire().await.map_err(|_| WitError {
                    message: format!("task `{name}` cannot start: the flow run is ending"),
                    retryable: false,
                })?;
                record.run.attempts += 1;
                record.run.state = State::Running;
                if record.run.attempts == 1 {
                    record.run.started = SystemTime::now();
                }
                self.sink.task_run(&record.run);
                self.attempt(&component, &record.run, &input, limits).await
            };
            match outcome {
                Ok(result) => {
                    record.run.error = None;
                    if let Some((store, key, expiration)) = &cache {
                        record.run.cache_key = Some(key.clone());
                        store
                            .put(CachedResult {
                                key: key.clone(),
                                task: name.clone(),
                                result: result.clone(),
                                task_run_id: record.run.id.clone(),
                                created: SystemTime::now(),
                                expires: CachedResult::expiry(*expiration),
                            })
                            .await;
                    }
                    record.end(State::Completed, None);
                    return Ok(result);
                }
                Err(Attempt::Stopped(reason)) => {
                    record.end(State::Cancelled, Some(reason.clone()));
                    return Err(WitError { message: format!("task `{name}` was stopped: {reason}"), retryable: false });
                }
                Err(Attempt::Failed(error)) if error.retryable && record.run.attempts <= policy.retries => {
                    let delay = policy.retry_delay(record.run.attempts, fastrand::f64());
                    self.retrying(&mut record.run, policy, &error, delay);
                    tokio::time::sleep(delay).await;
                }
                Err(Attempt::Failed(error)) => {
                    record.end(State::Failed, Some(error.message.clone()));
                    return Err(error);
                }
            }
        }
    }

    fn retrying(&self, run: &mut TaskRun, policy: &TaskPolicy, error: &WitError, delay: Duration) {
        run.error = Some(error.message.clone());
        self.sink.task_run(run);
        let log = RunLog::new(self.sink.clone(), self.identity.flow_run_id.clone(), self.inherited.limits.log_line);
        log.set_task(Some((&run.id, &run.name)));
        log.emit(
            Level::Warn,
            LogSource::Weft,
            format!(
                "Task run `{}` attempt {} of {} failed: {}; retrying in {}",
                run.name,
                run.attempts,
                policy.retries + 1,
                error.message,
                humantime::format_duration(Duration::from_millis(delay.as_millis() as u64))
            ),
            Vec::new(),
        );
    }

    #[allow(clippy::ptr_arg)]
    /// One attempt: a fresh store, the component instantiated, its `run`
    /// called, within its limits.
    async fn attempt(
        &self,
        component: &TaskComponent,
        run: &TaskRun,
        input: &String,
        limits: Limits,
    ) -> Result<String, Attempt> {
        let failed = |message: String| Attempt::Failed(WitError { message, retryable: false });
        let log = Arc::new(RunLog::new(self.sink.clone(), self.identity.flow_run_id.clone(), limits.log_line));
        log.set_task(Some((&run.id, &run.name)));
        let mut state =
            RunState::new(self.identity.clone(), log.clone(), &limits, &self.inherited.grants, Instant::now())
                .map_err(|reason| failed(format!("task `{}` cannot start: {reason}", run.name)))?;
        state.stop = self.inherited.stop.clone();
        state.tasks.set_base(run.id.clone(), run.name.clone());
        let mut store = Store::new(component.pre.engine(), state);
        configure_store(&mut store, self.inherited.counts_fuel, limits.fuel)
            .map_err(|reason| failed(format!("task `{}` cannot start: {reason}", run.name)))?;
        let call = component.pre.run(&mut store, input);
        // The epoch callback stops a task that computes past its deadline;
        // this stops one that waits (a sleep, a retry delay) past it.
        let returned = tokio::time::timeout(limits.timeout, call).await;
        log.flush_output();
        let timed_out = || LimitExceeded::TaskTimeout { task: run.name.clone(), timeout: limits.timeout }.to_string();
        match returned {
            Err(_) => Err(Attempt::Failed(WitError { message: timed_out(), retryable: true })),
            Ok(Ok(Ok(result))) => match serde_json::from_str::<serde_json::Value>(&result) {
                Ok(_) => Ok(result),
                Err(e) => Err(failed(format!("task `{}` returned a result that is not JSON: {e}", run.name))),
            },
            Ok(Ok(Err(error))) => Err(Attempt::Failed(error)),
            Ok(Err(trap)) => {
                if let Some(Stopped(reason)) = trap.downcast_ref::<Stopped>() {
                    return Err(Attempt::Stopped(reason.clone()));
                }
                let message = match trap.downcast_ref::<LimitExceeded>() {
                    Some(LimitExceeded::Deadline(_)) => timed_out(),
                    _ => format!("task `{}` {}", run.name, trap_reason(&trap, &log)),
                };
                Err(Attempt::Failed(WitError { message, retryable: true }))
            }
        }
    }
}

enum Attempt {
    Failed(WitError),
    Stopped(String),
}

/// A task run being made; recorded as Cancelled if it is dropped before it
/// ended (its flow run ended without waiting for it).
struct Recorded {
    env: Arc<TaskEnv>,
    run: TaskRun,
    /// How many task runs of the flow run were submitted before it.
    position: usize,
    done: bool,
}

impl Recorded {
    fn end(&mut self, state: State, error: Option<String>) {
        self.run.state = state;
        self.run.ended = Some(SystemTime::now());
        if error.is_some() {
            self.run.error = error;
        }
        self.env.sink.task_run(&self.run);
        self.env.closed.lock().unwrap_or_else(PoisonError::into_inner).close(self.run.clone(), self.position);
        self.done = true;
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        if !self.done {
            let reason = match self.env.inherited.stop.as_ref().and_then(|s| s.reason()) {
                Some(reason) => reason,
                None => "the flow did not wait for it".to_owned(),
            };
            self.end(State::Cancelled, Some(reason));
        }
    }
}

/// A task run started with `submit`: the guest's `submitted-task`
/// resource. Dropping it stops the task run if it is still going.
pub struct Submitted {
    name: String,
    result: Option<oneshot::Receiver<Result<String, WitError>>>,
    abort: AbortHandle,
}

impl Submitted {
    /// Waits for the task run's outcome; a second wait is an error.
    pub(crate) async fn wait(&mut self) -> Result<String, WitError> {
        let Some(receiver) = self.result.take() else {
            return Err(WitError {
                message: format!("task `{}` was waited for already: `wait` returns its outcome once", self.name),
                retryable: false,
            });
        };
        receiver.await.unwrap_or_else(|_| {
            Err(WitError { message: format!("task `{}` was stopped before it ended", self.name), retryable: false })
        })
    }
}

impl Drop for Submitted {
    fn drop(&mut self) {
        self.abort.abort();
    }
}
