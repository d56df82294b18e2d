//! `weft:flow/tasks`: task runs of in-component tasks (`begin`/`end`, with
//! retries and the in-run cache), and calls to task components (run by
//! [`TaskEnv`](super::TaskEnv)).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use wasmtime::component::Resource;

use super::RunState;
use super::bindings::weft::flow::tasks::{BeginOutcome, Host, HostSubmittedTask, NextStep, TaskOptions};
use super::bindings::weft::flow::types::Error as WitError;
use super::task_components::Submitted;
use crate::model::{CachedResult, Level, LogSource, State, TaskRun, new_id};
use crate::sandbox::LimitExceeded;

/// The task runs of one flow run.
#[derive(Default)]
pub(crate) struct TaskRuns {
    /// Every task run, in the order they began.
    records: Vec<TaskRun>,
    /// Open task runs, innermost last.
    open: Vec<OpenTask>,
    /// Results by cache key, with when each expires.
    cache: HashMap<String, (String, Option<SystemTime>)>,
    /// In a task component's store: its own task run, which lines and the
    /// context are attributed to when no in-component task is open.
    base: Option<(String, String)>,
}

struct OpenTask {
    /// Index into `records`.
    record: usize,
    options: TaskOptions,
    /// When the current attempt must end, if the task has a timeout.
    deadline: Option<Instant>,
}

impl TaskRuns {
    /// The innermost open task run: (id, name).
    pub(crate) fn current(&self) -> Option<(&str, &str)> {
        match self.open.last() {
            Some(t) => {
                let record = &self.records[t.record];
                Some((record.id.as_str(), record.name.as_str()))
            }
            None => self.base.as_ref().map(|(id, name)| (id.as_str(), name.as_str())),
        }
    }

    /// Makes this the store of the task component run `id`.
    pub(crate) fn set_base(&mut self, id: String, name: String) {
        self.base = Some((id, name));
    }

    /// The timeout of an open task run that has passed, if any.
    pub(crate) fn timed_out(&self, now: Instant) -> Option<LimitExceeded> {
        self.open.iter().find(|t| t.deadline.is_some_and(|d| now >= d)).map(|t| LimitExceeded::TaskTimeout {
            task: self.records[t.record].name.clone(),
            timeout: Duration::from_millis(t.options.timeout_ms.unwrap_or_default()),
        })
    }

    /// Closes the task runs still open when the flow run ended: their state
    /// is the flow run's failure.
    pub(crate) fn finish(mut self, reason: Option<&str>, log: &super::RunLog) -> Vec<TaskRun> {
        let now = SystemTime::now();
        for open in self.open.drain(..) {
            let record = &mut self.records[open.record];
            record.state = State::Failed;
            record.ended = Some(now);
            record.error = Some(reason.unwrap_or("the flow run ended while the task run was open").to_owned());
            log.task_run(record);
        }
        self.records
    }

    fn attribution(&self) -> Option<(String, String)> {
        self.current().map(|(id, name)| (id.to_owned(), name.to_owned()))
    }
}

/// The key an in-component task's result is cached under in the store: the
/// flow's and the task's names scope the key the flow gave.
fn durable_key(flow: &str, task: &str, key: &str) -> String {
    format!("flow:{flow}\ntask:{task}\nkey:{key}")
}

fn attempt_deadline(options: &TaskOptions) -> Option<Instant> {
    options.timeout_ms.map(|ms| Instant::now() + Duration::from_millis(ms))
}

impl Host for RunState {
    async fn begin(&mut self, name: String, options: TaskOptions) -> wasmtime::Result<BeginOutcome> {
        let now = SystemTime::now();
        let mut cached = options
            .cache_key
            .as_ref()
            .and_then(|key| self.tasks.cache.get(key))
            .filter(|(_, expires)| expires.is_none_or(|expires| now < expires))
            .map(|(result, _)| result.clone());
        // Then the store's cache, which outlives the run.
        if let (None, Some(key), Some(store)) = (&cached, &options.cache_key, &self.cache) {
            let durable = durable_key(&self.identity.flow_name, &name, key);
            if let Some(entry) = store.get(&durable).await {
                self.tasks.cache.insert(key.clone(), (entry.result.clone(), entry.expires));
                cached = Some(entry.result);
            }
        }
        let id = new_id();
        let mut record = TaskRun {
            id: id.clone(),
            name,
            state: State::Running,
            attempts: 0,
            component: None,
            cached: false,
            cache_key: options.cache_key.clone(),
            started: now,
            ended: None,
            error: None,
        };
        if let Some(result) = cached {
            record.state = State::Completed;
            record.cached = true;
            record.ended = Some(now);
            self.log.task_run(&record);
            self.tasks.records.push(record);
            return Ok(BeginOutcome::Cached(result));
        }
        self.log.task_run(&record);
        self.tasks.records.push(record);
        let deadline = attempt_deadline(&options);
        self.tasks.open.push(OpenTask { record: self.tasks.records.len() - 1, options, deadline });
        self.log.set_task(self.tasks.attribution());
        Ok(BeginOutcome::Run(id))
    }

    async fn end(&mut self, task_run_id: String, outcome: Result<String, WitError>) -> wasmtime::Result<NextStep> {
        let Some(position) = self.tasks.open.iter().rposition(|t| self.tasks.records[t.record].id == task_run_id)
        else {
            // Only a guest that does not follow the protocol gets here.
            return Err(wasmtime::Error::msg(format!(
                "the guest ended task run `{task_run_id}`, which is not open (weft:flow/tasks.end called without begin)"
            )));
        };
        let open = &mut self.tasks.open[position];
        let record = &mut self.tasks.records[open.record];
        record.attempts += 1;
        match outcome {
            Ok(result) => {
                record.state = State::Completed;
                if let Some(key) = record.cache_key.clone() {
                    let created = SystemTime::now();
                    let expires = open.options.cache_expiration_ms.map(|ms| created + Duration::from_millis(ms));
                    if let Some(store) = &self.cache {
                        store
                            .put(CachedResult {
                                key: durable_key(&self.identity.flow_name, &record.name, &key),
                                task: record.name.clone(),
                                result: result.clone(),
                                task_run_id: record.id.clone(),
                                created,
                                expires,
                            })
                            .await;
                    }
                    self.tasks.cache.insert(key, (result, expires));
                }
            }
            Err(error) if error.retryable && record.attempts <= open.options.retries => {
                let delays = &open.options.retry_delays_ms;
                let delay = delays.get(record.attempts as usize - 1).or(delays.last()).copied().unwrap_or(0);
                let message = format!(
                    "Task run `{}` attempt {} failed: {}; retrying in {}",
                    record.name,
                    record.attempts,
                    error.message,
                    humantime::format_duration(Duration::from_millis(delay))
                );
                record.error = Some(error.message);
                self.log.task_run(record);
                self.log.emit(Level::Warn, LogSource::Weft, message, Vec::new());
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let open = &mut self.tasks.open[position];
                open.deadline = attempt_deadline(&open.options);
                return Ok(NextStep::Retry);
            }
            Err(error) => {
                record.state = State::Failed;
                record.error = Some(error.message);
            }
        }
        record.ended = Some(SystemTime::now());
        self.log.task_run(record);
        self.tasks.open.remove(position);
        self.log.set_task(self.tasks.attribution());
        Ok(NextStep::Finish)
    }

    async fn call(&mut self, name: String, input: String) -> wasmtime::Result<Result<String, WitError>> {
        let mut submitted = match self.submit_task(name, input) {
            Ok(submitted) => submitted,
            Err(error) => return Ok(Err(error)),
        };
        Ok(submitted.wait().await)
    }

    async fn submit(&mut self, name: String, input: String) -> wasmtime::Result<Result<Resource<Submitted>, WitError>> {
        let submitted = match self.submit_task(name, input) {
            Ok(submitted) => submitted,
            Err(error) => return Ok(Err(error)),
        };
        Ok(Ok(self.table.push(submitted)?))
    }
}

impl RunState {
    fn submit_task(&mut self, name: String, input: String) -> Result<Submitted, WitError> {
        match &self.components {
            Some(env) => env.submit(name, input),
            None => Err(WitError {
                message: format!(
                    "cannot run task component `{name}` from a task component: only a flow calls task components; \
                     call `{name}` from the flow and pass its result on"
                ),
                retryable: false,
            }),
        }
    }
}

impl HostSubmittedTask for RunState {
    async fn wait(&mut self, task: Resource<Submitted>) -> wasmtime::Result<Result<String, WitError>> {
        let submitted = self.table.get_mut(&task)?;
        Ok(submitted.wait().await)
    }

    async fn drop(&mut self, task: Resource<Submitted>) -> wasmtime::Result<()> {
        // Dropping it stops the task run if it is still going.
        self.table.delete(task)?;
        Ok(())
    }
}
