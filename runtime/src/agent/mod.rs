//! The agent: turns schedules into flow runs, claims due runs, launches them
//! on an [`Infrastructure`], watches them, and cleans up after them.
//!
//! Every decision that two agents could both make goes through a create-only
//! write in the store: a scheduled run's id is derived from its deployment
//! and time (so each tick becomes one run however many agents see it), a
//! claim is the Scheduled → Pending state write, a deployment's concurrency
//! slot is an object only one run can create. Any number of agents can share
//! a store. An agent never dies on one bad run or deployment: it logs and
//! goes on.
//!
//! May call `store` and `model`; `process.rs` is the local infrastructure.

pub mod endpoints;
pub mod kubernetes;
mod process;
mod queue_watch;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use kubernetes::{KubeHandle, KubernetesInfrastructure, RateLimit};
pub use process::{ProcessHandle, ProcessInfrastructure};

use crate::model::metric_names::{CLAIM_LATENCY, RUNS_CLAIMED, RUNS_ENDED, RUNS_IN_HAND, RUNS_LAUNCHED};
use crate::model::{Deployment, FlowRun, Level, LogLine, LogSource, State, StateRecord, WorkPool};
use crate::store::{Store, StoreError, TransitionOutcome};

/// How a launched run's process (or pod) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// For a person: `exit status 1`, `signal 9`, `exit code 3`.
    pub description: String,
    /// When the infrastructure itself failed the run (an image that cannot
    /// be pulled, an OOM kill, an eviction): why. The run is Crashed with
    /// this reason unless the runner recorded an outcome.
    pub crash: Option<String>,
}

/// What a restarted agent finds of a run it had launched.
pub enum Adoption<H> {
    /// The run's runner is still there: watch it again.
    Handle(H),
    /// It is gone: the run crashed, for this reason.
    Vanished(String),
    /// The infrastructure could not be reached to tell: asked again later.
    Unreachable(String),
    /// This infrastructure cannot find runners again (local processes);
    /// the run is followed by its heartbeats instead.
    Unsupported,
}

/// Why a runner could not be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchError {
    /// The infrastructure refused the run (a template it rejects, a 403):
    /// the run crashes with this reason.
    Refused(String),
    /// The infrastructure could not be reached (an API server outage): the
    /// run keeps its claim and the launch is tried again on later polls,
    /// for up to [`LAUNCH_PATIENCE`].
    Unreachable(String),
}

/// How long a claimed run waits for an unreachable infrastructure before it
/// is crashed.
pub const LAUNCH_PATIENCE: Duration = Duration::from_secs(600);

/// A claimed run whose launch waits for its infrastructure to be reachable.
struct Waiting {
    run: FlowRun,
    deployment: Option<Deployment>,
    since: Instant,
}

/// Where runs execute: local processes, or Kubernetes Jobs.
pub trait Infrastructure: Send + Sync {
    /// A launched run.
    type Handle: Send;

    /// `process` or `kubernetes`.
    fn kind(&self) -> &'static str;

    /// Starts a runner for a claimed run of `deployment`. Starting it again
    /// after an [`LaunchError::Unreachable`] must not start a second one.
    fn launch(
        &self,
        run: &FlowRun,
        deployment: Option<&Deployment>,
    ) -> impl Future<Output = Result<Self::Handle, LaunchError>> + Send;

    /// Finds the runner of a run launched before the agent restarted.
    fn adopt(
        &self,
        run: &FlowRun,
        deployment: Option<&Deployment>,
    ) -> impl Future<Output = Adoption<Self::Handle>> + Send;

    /// How the run's runner ended, once it has; `None` while it runs.
    fn poll(&self, handle: &mut Self::Handle) -> Option<Exit>;

    /// Asks the runner to stop (SIGTERM): it records the run Cancelled.
    fn stop(&self, handle: &mut Self::Handle);

    /// Stops the runner at once.
    fn kill(&self, handle: &mut Self::Handle);

    /// The runner's last lines of output, to explain a crash.
    fn last_lines(&self, handle: &Self::Handle) -> Vec<String>;

    /// Whether runs go on without the agent (Kubernetes Jobs do; child
    /// processes do not). An agent that stops then leaves its runs to their
    /// infrastructure and its claims in the store, for the agent of the same
    /// name that starts next to adopt, instead of waiting out its grace
    /// period and killing them.
    fn outlives_agent(&self) -> bool {
        false
    }

    /// Lets go of what was kept about a run that has ended.
    fn forget(&self, _handle: &Self::Handle) {}

    /// Notified when a runner may have ended, so that the agent looks at
    /// once (and claims the next run) rather than at its next poll.
    fn changes(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }

    /// What happened to the run's infrastructure since the last call that a
    /// person should know (Kubernetes events: pulls, back-offs, kills), as
    /// (is it a warning, message). They go into the run's log.
    fn notes(&self, _handle: &mut Self::Handle) -> Vec<(bool, String)> {
        Vec::new()
    }
}

/// How an agent behaves.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The agent's name: its claims are recorded under it, so a restarted
    /// agent of the same name finds its runs.
    pub name: String,
    /// At most this many runs at once.
    pub limit: usize,
    /// How often the agent looks at the store.
    pub poll_interval: Duration,
    /// On shutdown, how long running runs get to finish.
    pub grace: Duration,
    /// A run whose runner has not sent a heartbeat for this long, and that
    /// is not a child of this agent, has crashed.
    pub heartbeat_timeout: Duration,
    /// How long a cancelled run's runner gets to stop before it is killed.
    pub cancel_grace: Duration,
    /// The work pools whose runs it takes; none: the default pool of its
    /// infrastructure type.
    pub pools: Vec<String>,
    /// The queues (within its pools) whose runs it takes; none: all.
    pub queues: Vec<String>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            name: "agent".into(),
            limit: 8,
            poll_interval: Duration::from_secs(1),
            grace: Duration::from_secs(30),
            heartbeat_timeout: crate::store::STALE_AFTER,
            cancel_grace: Duration::from_secs(10),
            pools: Vec::new(),
            queues: Vec::new(),
        }
    }
}

struct Active<H> {
    run: FlowRun,
    handle: H,
    stop_asked: Option<Instant>,
}

/// The agent loop over one store and one infrastructure.
pub struct Agent<I: Infrastructure> {
    store: Store,
    infra: I,
    config: AgentConfig,
    active: HashMap<String, Active<I::Handle>>,
    /// Runs this agent claimed before a restart: watched by heartbeat.
    adopted: HashSet<String>,
    /// Ends and releases the store did not take (it was away): tried again
    /// on every poll until it does, so that no run is left Running and no
    /// concurrency slot held.
    unsettled: std::sync::Mutex<Vec<Unsettled>>,
    /// Claimed runs waiting for the infrastructure to be reachable.
    waiting: Vec<Waiting>,
    /// Whether the runs claimed before a restart are still to be adopted
    /// (the store or the infrastructure was away).
    adoption_pending: bool,
    /// Schedule ticks up to here have been turned into runs.
    scheduled_until: Option<SystemTime>,
    /// The pools it serves, as last read, by revision: `None` for one that
    /// does not exist or is of another type.
    pools: HashMap<String, (u64, Option<WorkPool>)>,
    /// Beats on every turn of the loop, for `/healthz`.
    liveness: endpoints::Liveness,
    /// When it started, and when it last wrote its record to the store.
    started: SystemTime,
    recorded: Option<Instant>,
}

/// What the agent still owes the store about a run.
#[derive(Debug)]
enum Unsettled {
    /// Its end, with the reason.
    End(FlowRun, String),
    /// Its concurrency slot and claim.
    Release(FlowRun),
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A run id that every agent derives alike: a ULID at `time` whose random
/// part is a hash of `seed`.
fn derived_id(time: SystemTime, seed: &str) -> String {
    let mut high = DefaultHasher::new();
    (seed, 1u8).hash(&mut high);
    let mut low = DefaultHasher::new();
    (seed, 2u8).hash(&mut low);
    let random = (u128::from(high.finish()) << 64 | u128::from(low.finish())) & ((1u128 << 80) - 1);
    ulid::Ulid::from_parts(millis(time), random).to_string()
}

impl<I: Infrastructure> Agent<I> {
    /// An agent over `store`, launching on `infra`.
    pub fn new(store: Store, infra: I, config: AgentConfig) -> Self {
        Agent {
            store,
            infra,
            config,
            active: HashMap::new(),
            adopted: HashSet::new(),
            unsettled: std::sync::Mutex::default(),
            waiting: Vec::new(),
            adoption_pending: true,
            scheduled_until: None,
            pools: HashMap::new(),
            liveness: endpoints::Liveness::default(),
            started: SystemTime::now(),
            recorded: None,
        }
    }

    /// Writes what it is and does to the store (`weft agent ls` reads it),
    /// every [`AGENT_BEAT`](crate::model::AGENT_BEAT) and as it stops.
    async fn record(&mut self, stopped: bool) {
        if !stopped && self.recorded.is_some_and(|at| at.elapsed() < crate::model::AGENT_BEAT) {
            return;
        }
        let now = SystemTime::now();
        let record = crate::model::AgentRecord {
            name: self.config.name.clone(),
            infrastructure: self.infra.kind().to_owned(),
            pools: self.served(),
            queues: self.config.queues.clone(),
            limit: self.config.limit,
            runs_in_hand: self.active.len() + self.waiting.len() + self.adopted.len(),
            host: crate::runner::host_name(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started: self.started,
            time: now,
            stopped: stopped.then_some(now),
        };
        match self.store.put_agent_record(&record).await {
            Ok(()) => self.recorded = Some(Instant::now()),
            Err(e) => tracing::warn!(error = %e, "could not write the agent's record; will retry"),
        }
    }

    /// What `/healthz` watches: the agent beats it on every turn of its loop.
    pub fn liveness(&self) -> endpoints::Liveness {
        self.liveness.clone()
    }

    /// The names of the pools it serves.
    fn served(&self) -> Vec<String> {
        if self.config.pools.is_empty() { vec![self.infra.kind().to_owned()] } else { self.config.pools.clone() }
    }

    /// Reads again each served pool whose revision changed since the last
    /// look: an edited template, limit or pause takes effect now.
    async fn refresh_pools(&mut self) {
        for name in self.served() {
            let revision = match self.store.pool_revision(&name).await {
                Ok(revision) => revision,
                Err(e) => {
                    tracing::warn!(pool = name, error = %e, "could not look at the work pool; keeping what was read before");
                    continue;
                }
            };
            let known = self.pools.get(&name).map(|(r, _)| *r);
            if known == Some(revision) {
                continue;
            }
            let pool = match self.store.pool(&name).await {
                Ok(Some((_, pool))) if pool.kind.as_str() != self.infra.kind() => {
                    tracing::error!(
                        pool = name,
                        "work pool `{name}` is a {} pool, and this agent runs {} infrastructure: not serving it",
                        pool.kind,
                        self.infra.kind()
                    );
                    None
                }
                Ok(Some((_, pool))) => {
                    let (paused, limit) = (pool.paused, pool.concurrency_limit);
                    if known.is_none() {
                        tracing::info!(pool = name, revision, paused, limit, "serving work pool");
                    } else {
                        tracing::info!(
                            pool = name,
                            revision,
                            paused,
                            limit,
                            "work pool `{name}` changed; its template, limit and paused flag apply from now on"
                        );
                    }
                    Some(pool)
                }
                Ok(None) => {
                    tracing::error!(pool = name, "work pool `{name}` does not exist: its runs wait until it does");
                    None
                }
                Err(e) => {
                    tracing::warn!(pool = name, error = %e, "could not read the work pool; will retry");
                    continue;
                }
            };
            self.pools.insert(name, (revision, pool));
        }
    }

    /// Runs until `shutdown` resolves, then stops claiming, gives running
    /// runs `grace` to finish, and crash-marks those that do not; on an
    /// infrastructure whose runs [outlive the agent](Infrastructure::outlives_agent),
    /// leaves them running for the next agent to adopt.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tracing::info!(
            agent = %self.config.name,
            infrastructure = self.infra.kind(),
            pools = self.served().join(","),
            store = self.store.url(),
            "agent started"
        );
        tokio::pin!(shutdown);
        let changes = self.infra.changes();
        let changed = async || match &changes {
            Some(notify) => notify.notified().await,
            None => std::future::pending().await,
        };
        let queue_watch = self.store.local_dir().and_then(|dir| queue_watch::QueueWatch::start(&dir));
        let queued = async || match &queue_watch {
            Some(watch) => watch.queued().await,
            None => std::future::pending().await,
        };
        loop {
            self.tick().await;
            tokio::select! {
                () = tokio::time::sleep(self.config.poll_interval) => {}
                // A runner ended: its slot is free for the next run now.
                () = changed() => {}
                // A run was queued on a local store: claim it now.
                () = queued() => {}
                () = &mut shutdown => break,
            }
        }
        if self.infra.outlives_agent() {
            tracing::info!(
                running = self.active.len(),
                "shutting down: no more claims; running runs go on, for the next agent named {} to adopt",
                self.config.name
            );
            self.record(true).await;
            return;
        }
        tracing::info!(running = self.active.len(), grace = ?self.config.grace, "shutting down: no more claims");
        let deadline = Instant::now() + self.config.grace;
        while !self.active.is_empty() && Instant::now() < deadline {
            self.watch().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for (id, mut active) in std::mem::take(&mut self.active) {
            self.infra.kill(&mut active.handle);
            let reason = format!(
                "the agent shut down and its {} grace period ran out",
                humantime::format_duration(self.config.grace)
            );
            self.end_unfinished(&active.run, &reason, Vec::new()).await;
            tracing::warn!(run = %id, "killed at shutdown");
        }
        self.record(true).await;
        tracing::info!("agent stopped");
    }

    /// One pass: watch what runs, turn schedules into runs, claim due runs.
    pub async fn tick(&mut self) {
        if self.adoption_pending {
            self.adoption_pending = false;
            if let Err(e) = self.adopt().await {
                tracing::error!(error = %e, "could not look up the runs this agent claimed before; will retry");
                self.adoption_pending = true;
            }
        }
        self.refresh_pools().await;
        self.relaunch().await;
        self.watch().await;
        if let Err(e) = self.schedule().await {
            tracing::error!(error = %e, "could not read deployments to schedule runs");
        }
        if let Err(e) = self.claim().await {
            tracing::error!(error = %e, "could not read the run queue");
        }
        let in_hand = self.active.len() + self.waiting.len() + self.adopted.len();
        metrics::gauge!(RUNS_IN_HAND).set(in_hand as f64);
        self.record(false).await;
        self.liveness.beat();
    }

    async fn adopt(&mut self) -> Result<(), StoreError> {
        for id in self.store.claimed(&self.config.name).await? {
            if self.active.contains_key(&id)
                || self.adopted.contains(&id)
                || self.waiting.iter().any(|w| w.run.id == id)
            {
                continue;
            }
            if let Some((_, record)) = self.store.latest_state(&id).await?
                && record.state.is_final()
            {
                self.store.forget_claim(&self.config.name, &id).await?;
                continue;
            }
            let Some(run) = self.store.read_run(&id).await? else {
                self.store.forget_claim(&self.config.name, &id).await?;
                continue;
            };
            let deployment = match &run.deployment {
                Some(name) => self.store.deployment(name).await?,
                None => None,
            };
            match self.infra.adopt(&run, deployment.as_ref()).await {
                Adoption::Handle(handle) => {
                    tracing::info!(run = %id, "adopting a run claimed before a restart");
                    self.active.insert(id, Active { run, handle, stop_asked: None });
                }
                Adoption::Vanished(reason) => self.end_unfinished(&run, &reason, Vec::new()).await,
                Adoption::Unreachable(reason) => {
                    tracing::warn!(run = %id, reason, "cannot look for the runner of a claimed run yet; will retry");
                    self.adoption_pending = true;
                }
                Adoption::Unsupported => {
                    tracing::info!(run = %id, "adopting a run claimed before a restart; watching its heartbeats");
                    self.adopted.insert(id);
                }
            }
        }
        Ok(())
    }

    /// Ends a run that did not reach a final state: Cancelled if it was
    /// being cancelled, else Crashed with the reason. Its runner's last lines
    /// go into its logs.
    async fn end_unfinished(&self, run: &FlowRun, reason: &str, last_lines: Vec<String>) {
        // What was decided last, for the metrics once it is written.
        let decided = std::sync::Mutex::new(State::Crashed);
        let decide = |current: Option<&StateRecord>| {
            let state = match current.map(|r| r.state) {
                Some(State::Cancelling) => State::Cancelled,
                Some(state) if state.is_final() => return None,
                _ => State::Crashed,
            };
            *decided.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = state;
            Some(StateRecord::now(state, Some(reason.to_owned())).by(&self.config.name))
        };
        if !last_lines.is_empty() {
            let mut lines: Vec<LogLine> =
                vec![weft_line(run, Level::Error, format!("The runner's last lines ({reason}):"))];
            lines.extend(last_lines.into_iter().map(|text| weft_line(run, Level::Error, text)));
            if let Err(e) = self.store.append_logs(&run.id, &lines, &mut None).await {
                tracing::warn!(run = %run.id, error = %e, "could not copy the runner's last lines into the run's logs");
            }
        }
        match self.store.transition(&run.id, decide).await {
            Ok(TransitionOutcome::Written { .. }) => {
                tracing::warn!(run = %run.id, reason, "run ended without an outcome");
                count_end(run, *decided.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
            }
            Ok(TransitionOutcome::Kept { .. }) => {}
            Err(e) => {
                tracing::error!(run = %run.id, error = %e, "could not record the run's end; will retry");
                self.owe(Unsettled::End(run.clone(), reason.to_owned()));
                return;
            }
        }
        self.release(run).await;
    }

    async fn release(&self, run: &FlowRun) {
        let mut released = true;
        if let Some(deployment) = &run.deployment
            && let Err(e) = self.store.release_slot(deployment, &run.id).await
        {
            tracing::warn!(run = %run.id, error = %e, "could not release the deployment's concurrency slot; will retry");
            released = false;
        }
        if let Some(pool) = &run.work_pool
            && let Err(e) = self.store.release_pool_slot(pool, run.work_queue.as_deref(), &run.id).await
        {
            tracing::warn!(run = %run.id, error = %e, "could not release the work pool's concurrency slots; will retry");
            released = false;
        }
        if released && let Err(e) = self.store.forget_claim(&self.config.name, &run.id).await {
            tracing::warn!(run = %run.id, error = %e, "could not forget the claim; will retry");
            released = false;
        }
        if !released {
            self.owe(Unsettled::Release(run.clone()));
        }
    }

    fn owe(&self, what: Unsettled) {
        self.unsettled.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(what);
    }

    /// Tries again what the store did not take before.
    async fn settle(&self) {
        let owed = std::mem::take(&mut *self.unsettled.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for what in owed {
            match what {
                Unsettled::End(run, reason) => self.end_unfinished(&run, &reason, Vec::new()).await,
                Unsettled::Release(run) => self.release(&run).await,
            }
        }
    }

    async fn watch(&mut self) {
        self.settle().await;
        let ids: Vec<String> = self.active.keys().cloned().collect();
        for id in ids {
            let Some(active) = self.active.get_mut(&id) else { continue };
            let notes = self.infra.notes(&mut active.handle);
            if !notes.is_empty() {
                let lines: Vec<LogLine> = notes
                    .into_iter()
                    .map(|(warning, text)| {
                        weft_line(&active.run, if warning { Level::Warn } else { Level::Info }, text)
                    })
                    .collect();
                if let Err(e) = self.store.append_logs(&id, &lines, &mut None).await {
                    tracing::warn!(run = %id, error = %e, "could not copy infrastructure events into the run's logs");
                }
            }
            let Some(active) = self.active.get_mut(&id) else { continue };
            if let Some(exit) = self.infra.poll(&mut active.handle) {
                let Some(active) = self.active.remove(&id) else { continue };
                self.finished(active, exit).await;
                continue;
            }
            let cancelling =
                matches!(self.store.latest_state(&id).await, Ok(Some((_, r))) if r.state == State::Cancelling);
            if cancelling {
                match active.stop_asked {
                    None => {
                        tracing::info!(run = %id, "cancelling: asking the runner to stop");
                        self.infra.stop(&mut active.handle);
                        active.stop_asked = Some(Instant::now());
                    }
                    Some(asked) if asked.elapsed() > self.config.cancel_grace => {
                        tracing::warn!(run = %id, "the runner did not stop in time; killing it");
                        self.infra.kill(&mut active.handle);
                    }
                    Some(_) => {}
                }
            }
        }
        let adopted: Vec<String> = self.adopted.iter().cloned().collect();
        for id in adopted {
            if let Err(e) = self.watch_adopted(&id).await {
                tracing::warn!(run = %id, error = %e, "could not check an adopted run");
            }
        }
    }

    async fn watch_adopted(&mut self, id: &str) -> Result<(), StoreError> {
        let Some(run) = self.store.read_run(id).await? else {
            self.adopted.remove(id);
            return self.store.forget_claim(&self.config.name, id).await;
        };
        let state = self.store.latest_state(id).await?;
        if state.as_ref().is_some_and(|(_, r)| r.state.is_final()) {
            self.adopted.remove(id);
            self.release(&run).await;
            return Ok(());
        }
        let last_sign = match self.store.heartbeat(id).await? {
            Some(beat) => beat.time,
            None => state.map_or(run.created, |(_, r)| r.time),
        };
        let silent = SystemTime::now().duration_since(last_sign).unwrap_or_default();
        if silent > self.config.heartbeat_timeout {
            self.adopted.remove(id);
            let reason = format!(
                "its runner sent no heartbeat for {}",
                humantime::format_duration(Duration::from_secs(silent.as_secs()))
            );
            self.end_unfinished(&run, &reason, Vec::new()).await;
        }
        Ok(())
    }

    async fn finished(&self, active: Active<I::Handle>, exit: Exit) {
        let run = &active.run;
        let state = self.store.latest_state(&run.id).await.ok().flatten().map(|(_, r)| r);
        match state {
            Some(record) if record.state.is_final() => {
                tracing::info!(run = %run.id, state = %record.state, "run ended");
                count_end(run, record.state);
                self.release(run).await;
                if record.state == State::Failed && record.retryable != Some(false) {
                    self.retry(run, &record).await;
                }
            }
            _ => {
                let reason = exit.crash.unwrap_or_else(|| {
                    format!("the runner exited ({}) without recording an outcome", exit.description)
                });
                self.end_unfinished(run, &reason, self.infra.last_lines(&active.handle)).await;
            }
        }
        self.infra.forget(&active.handle);
    }

    async fn retry(&self, run: &FlowRun, failed: &StateRecord) {
        let Some(name) = &run.deployment else { return };
        let deployment = match self.store.deployment(name).await {
            Ok(Some(deployment)) => deployment,
            _ => return,
        };
        if run.attempt > deployment.retries {
            return;
        }
        let due = failed.time + deployment.retry_delay;
        let id = derived_id(failed.time, &format!("retry:{}:{}", run.id, run.attempt + 1));
        let mut next = deployment.clone();
        // The retry keeps the run's own parameters and sandbox.
        next.sandbox = run.sandbox.clone();
        next.parameters = run.parameters.clone();
        match self.store.schedule_run(&next, Default::default(), due, Some(id), run.attempt + 1).await {
            Ok(Some(retry)) => {
                tracing::info!(run = %run.id, retry = %retry.id, attempt = retry.attempt, "scheduled a retry")
            }
            Ok(None) => {}
            Err(e) => tracing::error!(run = %run.id, error = %e, "could not schedule a retry"),
        }
    }

    async fn schedule(&mut self) -> Result<(), StoreError> {
        let now = SystemTime::now();
        let from = self.scheduled_until.unwrap_or(now - 2 * self.config.poll_interval);
        let to = now + self.config.poll_interval;
        let deployments = self.store.deployments().await?;
        for deployment in &deployments {
            for (index, schedule) in deployment.schedule.iter().enumerate().filter(|(_, s)| s.active) {
                for time in schedule.times(from, to, 100) {
                    self.schedule_tick(deployment, index, time).await;
                }
            }
        }
        self.scheduled_until = Some(to);
        Ok(())
    }

    async fn schedule_tick(&self, deployment: &Deployment, index: usize, time: SystemTime) {
        let seed = format!("schedule:{}:{index}:{}", deployment.name, millis(time));
        let id = derived_id(time, &seed);
        match self.store.schedule_run(deployment, Default::default(), time, Some(id), 1).await {
            Ok(Some(run)) => tracing::info!(deployment = %deployment.name, run = %run.id, "scheduled a run"),
            Ok(None) => {}
            Err(e) => tracing::error!(deployment = %deployment.name, error = %e, "could not schedule a run"),
        }
    }

    async fn claim(&mut self) -> Result<(), StoreError> {
        if !self.pools.values().any(|(_, pool)| pool.as_ref().is_some_and(|p| !p.paused)) {
            // Every pool it serves is paused (or unreadable): nothing to take.
            return Ok(());
        }
        let now = SystemTime::now();
        // Due runs of its pools and queues, the higher-priority queues'
        // first, each queue's oldest first. A marker that names no pool
        // (written before pools) is looked at in `claim_one`.
        let mut due: Vec<(u32, crate::store::Queued)> = self
            .store
            .queue()
            .await?
            .into_iter()
            .filter(|queued| queued.due <= now)
            .filter_map(|queued| {
                let Some((pool, queue)) = &queued.pool else { return Some((1, queued)) };
                let Some((_, Some(pool))) = self.pools.get(pool) else { return None };
                if pool.paused || !self.serves_queue(queue) {
                    return None;
                }
                Some((pool.queue(queue).map_or(1, |q| q.priority), queued))
            })
            .collect();
        due.sort_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.cmp(y)));
        for (_, queued) in due {
            if self.active.len() + self.waiting.len() >= self.config.limit {
                break;
            }
            if let Err(e) = self.claim_one(&queued).await {
                tracing::error!(run = %queued.run_id, error = %e, "could not claim a run");
            }
        }
        Ok(())
    }

    /// Whether it takes runs of `queue` (in any of its pools).
    fn serves_queue(&self, queue: &str) -> bool {
        self.config.queues.is_empty() || self.config.queues.iter().any(|q| q == queue)
    }

    async fn claim_one(&mut self, queued: &crate::store::Queued) -> Result<(), StoreError> {
        let id = &queued.run_id;
        let Some(mut run) = self.store.read_run(id).await? else {
            return self.store.dequeue(queued).await;
        };
        match self.store.latest_state(id).await?.map(|(_, r)| r.state) {
            Some(State::Scheduled) | None => {}
            // Cancelled before it started, or claimed by another agent.
            Some(_) => return self.store.dequeue(queued).await,
        }
        let deployment = match &run.deployment {
            Some(name) => self.store.deployment(name).await?,
            None => None,
        };
        // Runs of another pool are another agent's to take; a paused pool's
        // wait.
        let pool_name = match (&run.work_pool, &deployment) {
            (Some(pool), _) => pool.clone(),
            // Made before runs named their pool.
            (None, Some(deployment)) => deployment.pool_name().to_owned(),
            (None, None) => "process".to_owned(),
        };
        let Some((_, Some(pool))) = self.pools.get(&pool_name) else { return Ok(()) };
        let queue_name = run
            .work_queue
            .clone()
            .or_else(|| deployment.as_ref().map(|d| d.queue_name().to_owned()))
            .unwrap_or_else(|| crate::model::DEFAULT_QUEUE.to_owned());
        if pool.paused || !self.serves_queue(&queue_name) {
            return Ok(());
        }
        let pool_limit = pool.concurrency_limit;
        let queue_limit = pool.queue(&queue_name).and_then(|q| q.concurrency_limit);
        let deployment = deployment.map(|d| with_pool_template(d, pool));
        run.work_pool = Some(pool_name.clone());
        run.work_queue = Some(queue_name.clone());
        // Slots first, then the claim; a slot whose claim does not happen
        // (another agent won the run, the pool is full) is given back.
        let mut slots = Vec::new();
        let limit = deployment.as_ref().and_then(|d| d.concurrency_limit);
        if let (Some(name), Some(limit)) = (&run.deployment, limit) {
            match self.store.acquire_slot(name, limit, id).await? {
                Some(slot) => slots.push(slot),
                None => return Ok(()),
            }
        }
        if let Some(limit) = pool_limit {
            match self.store.acquire_pool_slot(&pool_name, limit, id).await? {
                Some(slot) => slots.push(slot),
                None => return self.give_back(&slots).await,
            }
        }
        if let Some(limit) = queue_limit {
            match self.store.acquire_queue_slot(&pool_name, &queue_name, limit, id).await? {
                Some(slot) => slots.push(slot),
                None => return self.give_back(&slots).await,
            }
        }
        let claim = StateRecord::now(State::Pending, Some(format!("claimed by agent `{}`", self.config.name)))
            .by(&self.config.name);
        let outcome = self
            .store
            .transition(id, |current| {
                matches!(current.map(|r| r.state), None | Some(State::Scheduled)).then(|| claim.clone())
            })
            .await?;
        if !matches!(outcome, TransitionOutcome::Written { .. }) {
            return self.give_back(&slots).await;
        }
        self.store.mark_claimed(&self.config.name, id).await?;
        self.store.dequeue(queued).await?;
        let deployment_label = run.deployment.clone().unwrap_or_default();
        metrics::counter!(RUNS_CLAIMED, "deployment" => deployment_label, "pool" => pool_name.clone()).increment(1);
        let waited = SystemTime::now().duration_since(queued.due).unwrap_or_default();
        metrics::histogram!(CLAIM_LATENCY).record(waited.as_secs_f64());
        self.launch(Waiting { run, deployment, since: Instant::now() }).await;
        Ok(())
    }

    async fn give_back(&self, slots: &[crate::store::Slot]) -> Result<(), StoreError> {
        for slot in slots {
            self.store.give_back(slot).await?;
        }
        Ok(())
    }

    /// Launches a claimed run; while its infrastructure cannot be reached,
    /// the run waits (up to [`LAUNCH_PATIENCE`]) for a later poll.
    async fn launch(&mut self, waiting: Waiting) {
        let id = waiting.run.id.clone();
        match self.infra.launch(&waiting.run, waiting.deployment.as_ref()).await {
            Ok(handle) => {
                tracing::info!(run = %id, deployment = waiting.run.deployment.as_deref().unwrap_or("-"), "launched");
                let deployment = waiting.run.deployment.clone().unwrap_or_default();
                metrics::counter!(RUNS_LAUNCHED, "deployment" => deployment).increment(1);
                self.active.insert(id, Active { run: waiting.run, handle, stop_asked: None });
            }
            Err(LaunchError::Unreachable(reason)) if waiting.since.elapsed() < LAUNCH_PATIENCE => {
                tracing::warn!(run = %id, reason, "cannot start its runner yet; will retry");
                self.waiting.push(waiting);
            }
            Err(LaunchError::Unreachable(reason)) => {
                let patience = humantime::format_duration(LAUNCH_PATIENCE);
                let reason =
                    format!("could not start its runner: its infrastructure was unreachable for {patience}: {reason}");
                self.end_unfinished(&waiting.run, &reason, Vec::new()).await;
            }
            Err(LaunchError::Refused(reason)) => {
                self.end_unfinished(&waiting.run, &format!("could not start its runner: {reason}"), Vec::new()).await;
            }
        }
    }

    /// Tries again the launches that found the infrastructure unreachable,
    /// unless their runs were cancelled meanwhile.
    async fn relaunch(&mut self) {
        for waiting in std::mem::take(&mut self.waiting) {
            match self.store.latest_state(&waiting.run.id).await {
                Ok(Some((_, record))) if record.state == State::Cancelling => {
                    self.end_unfinished(&waiting.run, "cancelled before its runner started", Vec::new()).await;
                }
                Ok(Some((_, record))) if record.state.is_final() => self.release(&waiting.run).await,
                _ => self.launch(waiting).await,
            }
        }
    }
}

fn count_end(run: &FlowRun, state: State) {
    let deployment = run.deployment.clone().unwrap_or_default();
    metrics::counter!(RUNS_ENDED, "deployment" => deployment, "state" => state.to_string()).increment(1);
}

/// The deployment as its runs are launched from `pool`: a deployment
/// without a job template of its own gets the pool's.
fn with_pool_template(mut deployment: Deployment, pool: &WorkPool) -> Deployment {
    if deployment.job_template.is_none() {
        deployment.job_template = pool.base_job_template.clone();
    }
    deployment
}

fn weft_line(run: &FlowRun, level: Level, message: String) -> LogLine {
    LogLine {
        time: SystemTime::now(),
        level,
        flow_run_id: run.id.clone(),
        task_run_id: None,
        task_name: None,
        source: LogSource::Weft,
        message,
        fields: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_agree_and_sort_by_time() {
        let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(derived_id(t, "a"), derived_id(t, "a"));
        assert_ne!(derived_id(t, "a"), derived_id(t, "b"));
        assert!(derived_id(t, "z") < derived_id(t + Duration::from_millis(1), "a"));
    }
}
