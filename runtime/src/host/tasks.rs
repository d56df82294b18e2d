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
use crate::model::{CachedResult, Level, LogSource, State, TaskRun, TaskRunCounts, new_id};
use crate::sandbox::LimitExceeded;

/// The most task runs a flow run's report holds: the first to begin. Every
/// task run goes to the run's sink (the store) however many there are; the
/// report counts them all by state.
pub const REPORTED_TASK_RUNS: usize = 1000;

/// What is kept of task runs that ended, for the run's report: counts by
/// state and the first [`REPORTED_TASK_RUNS`] to begin. A task run has gone
/// to the run's sink by the time it ends, so nothing more of it is held: a
/// run's memory does not grow with its task count.
#[derive(Debug, Default)]
pub(crate) struct ClosedTaskRuns {
    pub(crate) counts: TaskRunCounts,
    /// In the order they began.
    pub(crate) first: Vec<TaskRun>,
}

impl ClosedTaskRuns {
    /// Counts a task run that ended; `position` is how many task runs of
    /// its kind began before it.
    pub(crate) fn close(&mut self, task_run: TaskRun, position: usize) {
        self.counts.add(task_run.state);
        if position < REPORTED_TASK_RUNS {
            self.first.push(task_run);
        }
    }

    /// Adds the task runs of another kind (task components to in-component
    /// tasks): the first to begin of both, in the order they began.
    pub(crate) fn merge(&mut self, other: ClosedTaskRuns) {
        self.counts.merge(&other.counts);
        self.first.extend(other.first);
        self.first.sort_by(|a, b| a.started.cmp(&b.started).then_with(|| a.id.cmp(&b.id)));
        self.first.truncate(REPORTED_TASK_RUNS);
    }
}

/// The task runs of one flow run.
#[derive(Default)]
pub(crate) struct TaskRuns {
    /// Task runs that ended.
    closed: ClosedTaskRuns,
    /// How many task runs began.
    begun: usize,
    /// Open task runs, innermost last.
    open: Vec<OpenTask>,
    /// Results by cache key, with when each expires.
    cache: HashMap<String, (String, Option<SystemTime>)>,
    /// In a task component's store: its own task run, which lines and the
    /// context are attributed to when no in-component task is open.
    base: Option<(String, String)>,
}

struct OpenTask {
    record: TaskRun,
    /// How many task runs began before it.
    position: usize,
    options: TaskOptions,
    /// When the current attempt must end, if the task has a timeout.
    deadline: Option<Instant>,
}

impl TaskRuns {
    /// The innermost open task run: (id, name).
    pub(crate) fn current(&self) -> Option<(&str, &str)> {
        match self.open.last() {
            Some(t) => Some((t.record.id.as_str(), t.record.name.as_str())),
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
            task: t.record.name.clone(),
            timeout: Duration::from_millis(t.options.timeout_ms.unwrap_or_default()),
        })
    }

    /// Closes the task runs still open when the flow run ended: their state
    /// is the flow run's failure.
    pub(crate) fn finish(mut self, reason: Option<&str>, log: &super::RunLog) -> ClosedTaskRuns {
        let now = SystemTime::now();
        // Innermost last: the outer ones, which began first, close first.
        for open in std::mem::take(&mut self.open) {
            let mut record = open.record;
            record.state = State::Failed;
            record.ended = Some(now);
            record.error = Some(reason.unwrap_or("the flow run ended while the task run was open").to_owned());
            log.task_run(&record);
            self.closed.close(record, open.position);
        }
        self.closed.first.sort_by(|a, b| a.started.cmp(&b.started).then_with(|| a.id.cmp(&b.id)));
        self.closed
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
        // A run that makes task runs faster than its sink writes them (to
        // the store) waits here, rather than the sink holding ever more.
        if let Some(room) = self.log.room() {
            room.await;
        }
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
        let position = self.tasks.begun;
        self.tasks.begun += 1;
        if let Some(result) = cached {
            record.state = State::Completed;
            record.cached = true;
            record.ended = Some(now);
            self.log.task_run(&record);
            self.tasks.closed.close(record, position);
            return Ok(BeginOutcome::Cached(result));
        }
        self.log.task_run(&record);
        let deadline = attempt_deadline(&options);
        self.tasks.open.push(OpenTask { record, position, options, deadline });
        self.log.set_task(self.tasks.current());
        Ok(BeginOutcome::Run(id))
    }

    async fn end(&mut self, task_run_id: String, outcome: Result<String, WitError>) -> wasmtime::Result<NextStep> {
        let Some(position) = self.tasks.open.iter().rposition(|t| t.record.id == task_run_id) else {
            // Only a guest that does not follow the protocol gets here.
            return Err(wasmtime::Error::msg(format!(
                "the guest ended task run `{task_run_id}`, which is not open (weft:flow/tasks.end called without begin)"
            )));
        };
        let open = &mut self.tasks.open[position];
        let record = &mut open.record;
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
        let open = self.tasks.open.remove(position);
        self.tasks.closed.close(open.record, open.position);
        self.log.set_task(self.tasks.current());
        Ok(NextStep::Finish)
    }

    async fn call(&mut self, name: String, input: String) -> wasmtime::Result<Result<String, WitError>> {
        let mut submitted = match self.submit_task(name, input).await {
            Ok(submitted) => submitted,
            Err(error) => return Ok(Err(error)),
        };
        Ok(submitted.wait().await)
    }

    async fn submit(&mut self, name: String, input: String) -> wasmtime::Result<Result<Resource<Submitted>, WitError>> {
        let submitted = match self.submit_task(name, input).await {
            Ok(submitted) => submitted,
            Err(error) => return Ok(Err(error)),
        };
        Ok(Ok(self.table.push(submitted)?))
    }
}

impl RunState {
    async fn submit_task(&mut self, name: String, input: String) -> Result<Submitted, WitError> {
        if let Some(room) = self.log.room() {
            room.await;
        }
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::{ClosedTaskRuns, REPORTED_TASK_RUNS};
    use crate::model::{State, TaskRun};

    fn ended(id: usize, state: State) -> TaskRun {
        TaskRun {
            id: format!("{id:08}"),
            name: "t".into(),
            state,
            component: None,
            attempts: 1,
            cached: false,
            cache_key: None,
            started: SystemTime::UNIX_EPOCH + Duration::from_millis(id as u64),
            ended: Some(SystemTime::now()),
            error: None,
        }
    }

    #[test]
    fn a_report_keeps_the_first_task_runs_to_begin_and_counts_them_all() {
        let mut inside = ClosedTaskRuns::default();
        // Even ids in the flow's component, odd ones task components.
        for position in 0..3 * REPORTED_TASK_RUNS {
            inside.close(ended(2 * position, State::Completed), position);
        }
        let mut components = ClosedTaskRuns::default();
        for position in 0..10 {
            components.close(ended(2 * position + 1, State::Failed), position);
        }
        inside.merge(components);
        assert_eq!(inside.counts.to_string(), format!("{} Completed, 10 Failed", 3 * REPORTED_TASK_RUNS));
        assert_eq!(inside.first.len(), REPORTED_TASK_RUNS);
        let ids: Vec<usize> = inside.first.iter().map(|t| t.id.parse().expect("id")).collect();
        let expected: Vec<usize> = (0..20).chain((20..).step_by(2)).take(REPORTED_TASK_RUNS).collect();
        assert_eq!(ids, expected, "the first to begin, of both kinds, in order");
    }
}
