//! The Kubernetes infrastructure: creates a flow run's Job, watches Jobs and
//! pods by label (one watch per namespace, resumed and re-listed by
//! kube-rs's watcher, retried as [`watch`](super::watch) says), judges them with [`diagnose`](super::diagnose), and
//! deletes the Job on cancellation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, LogParams, PostParams};
use kube::runtime::watcher;
use serde_json::Value;

use super::watch::{self, Retry};
use super::{JobRun, JobTemplate, RUN_ID_LABEL, Verdict, diagnose, job_name};
use crate::agent::{Adoption, Exit, Infrastructure, LaunchError};
use crate::model::{Deployment, FlowRun};

/// How many of a pod's last log lines are copied into a crashed run's logs.
const TAIL_LINES: i64 = 20;

/// A client-side rate limit: at most `qps` requests a second on average,
/// `burst` at once.
#[derive(Debug)]
pub struct RateLimit {
    qps: f64,
    burst: f64,
    state: tokio::sync::Mutex<(f64, Instant)>,
}

impl RateLimit {
    /// A limit of `qps` with bursts of `burst`.
    pub fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        RateLimit { qps: qps.max(0.01), burst, state: tokio::sync::Mutex::new((burst, Instant::now())) }
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        let mut state = self.state.lock().await;
        let (tokens, last) = &mut *state;
        *tokens = (*tokens + last.elapsed().as_secs_f64() * self.qps).min(self.burst);
        *last = Instant::now();
        if *tokens < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - *tokens) / self.qps);
            tokio::time::sleep(wait).await;
            *tokens = 1.0;
            *last = Instant::now();
        }
        *tokens -= 1.0;
    }
}

/// What the watches saw of the runs this agent has in hand, by run id.
#[derive(Default)]
struct Observed {
    /// The runs in hand, and their Jobs' names: only their objects and
    /// events are kept.
    active: HashMap<String, String>,
    jobs: HashMap<String, Job>,
    /// Pods as last seen; a deleted pod stays, as it was when deleted.
    pods: HashMap<String, Pod>,
    deleted: HashSet<String>,
    /// A pod's last lines, and whether they were read after it ended.
    logs: HashMap<String, (Vec<String>, bool)>,
    /// Events by the name of the object they are about, not yet handed on.
    events: HashMap<String, Vec<(bool, String)>>,
    /// Events already handed on: the name of their object, and their uid.
    seen_events: HashSet<(String, String)>,
}

impl Observed {
    fn in_hand(&self, metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<String> {
        run_id(metadata).filter(|id| self.active.contains_key(id))
    }

    /// Whether an object of this name is a run's Job or one of its pods.
    fn concerns_a_run(&self, name: &str) -> bool {
        self.active.values().any(|job| of_job(job, name))
    }
}

/// Normal events worth a person's attention; every Warning event is.
const NOTABLE: &[&str] = &["Pulling", "Pulled", "Killing", "Preempted", "Scheduled", "SuccessfulCreate"];

/// Runs flow runs as Kubernetes Jobs.
pub struct KubernetesInfrastructure {
    client: kube::Client,
    store_url: String,
    store_options: Vec<(String, String)>,
    template: JobTemplate,
    defaults: BTreeMap<String, Value>,
    limit: Arc<RateLimit>,
    observed: Arc<Mutex<Observed>>,
    watched: Mutex<HashSet<String>>,
    /// Notified when a pod of a run in hand ends.
    ended: Arc<tokio::sync::Notify>,
}

/// A flow run's Job.
pub struct KubeHandle {
    run_id: String,
    namespace: String,
    job: String,
    created: Instant,
    pod_watch_timeout: Duration,
    /// Set once weft itself deletes the Job, so that its disappearance is
    /// not taken for an outside deletion.
    deleting: bool,
}

impl KubernetesInfrastructure {
    /// Submits Jobs with `client`, from `template` with the agent's default
    /// job variables, for runners that use the given store. Store options
    /// that are credentials are not copied into Jobs: runs get credentials
    /// from the `store_secret` job variable or workload identity.
    pub fn new(
        client: kube::Client,
        store_url: String,
        store_options: Vec<(String, String)>,
        template: JobTemplate,
        defaults: BTreeMap<String, Value>,
        limit: RateLimit,
    ) -> Self {
        let store_options = store_options.into_iter().filter(|(key, _)| !is_credential(key)).collect();
        KubernetesInfrastructure {
            client,
            store_url,
            store_options,
            template,
            defaults,
            limit: Arc::new(limit),
            observed: Arc::default(),
            ended: Arc::default(),
            watched: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Observed> {
        self.observed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The template and variables for a deployment's runs.
    fn job_for(&self, run: &FlowRun, deployment: Option<&Deployment>) -> Result<Job, String> {
        let mut variables = self.defaults.clone();
        let own;
        let mut template = &self.template;
        if let Some(deployment) = deployment
            && let crate::model::Infrastructure::Kubernetes { job_variables, job_template } = &deployment.infrastructure
        {
            variables.extend(job_variables.clone());
            if let Some(text) = &deployment.job_template {
                own = JobTemplate::parse(text, job_template.as_deref().unwrap_or("job template"))
                    .map_err(|e| e.to_string())?;
                template = &own;
            }
        }
        let job_run = JobRun {
            run_id: &run.id,
            deployment: run.deployment.as_deref().unwrap_or("run"),
            flow: &run.flow_name,
            store_url: &self.store_url,
            store_options: &self.store_options,
            timeout_secs: run.sandbox.timeout.as_secs(),
        };
        template.render(&variables, &job_run).map_err(|e| e.to_string())
    }

    fn pod_watch_timeout(&self, deployment: Option<&Deployment>) -> Duration {
        // `pod_watch_timeout_seconds` is Prefect's name for it.
        let from = |vars: &BTreeMap<String, Value>| {
            ["pod_watch_timeout", "pod_watch_timeout_seconds"].iter().find_map(|k| vars.get(*k)?.as_u64())
        };
        let own = deployment.and_then(|d| match &d.infrastructure {
            crate::model::Infrastructure::Kubernetes { job_variables, .. } => from(job_variables),
            crate::model::Infrastructure::Process => None,
        });
        // The template in use: the deployment's or its pool's, else the agent's.
        let template = deployment
            .and_then(|d| d.job_template.as_deref())
            .and_then(|text| JobTemplate::parse(text, "job template").ok());
        let template = template.as_ref().unwrap_or(&self.template);
        Duration::from_secs(own.or_else(|| from(&self.defaults)).or_else(|| from(template.variables())).unwrap_or(300))
    }

    /// Starts watching Jobs and pods in a namespace, once.
    fn watch_namespace(&self, namespace: &str) {
        let mut watched = self.watched.lock().unwrap_or_else(PoisonError::into_inner);
        if !watched.insert(namespace.to_owned()) {
            return;
        }
        let config = watcher::Config::default().labels(RUN_ID_LABEL);
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        let observed = self.observed.clone();
        let job_config = config.clone();
        tokio::spawn(async move {
            let mut stream = watcher(jobs, job_config).boxed();
            let mut retry = Retry::default();
            while let Some(event) = watch::next(&mut stream, &mut retry, "Jobs").await {
                let mut seen = observed.lock().unwrap_or_else(PoisonError::into_inner);
                match event {
                    watcher::Event::Apply(job) | watcher::Event::InitApply(job) => {
                        if let Some(id) = seen.in_hand(&job.metadata) {
                            seen.jobs.insert(id, job);
                        }
                    }
                    watcher::Event::Delete(job) => {
                        if let Some(id) = seen.in_hand(&job.metadata) {
                            seen.jobs.remove(&id);
                            seen.deleted.insert(id);
                        }
                    }
                    _ => {}
                }
            }
        });
        let events: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let observed = self.observed.clone();
        tokio::spawn(async move {
            let mut stream = watcher(events, watcher::Config::default()).boxed();
            let mut retry = Retry::default();
            while let Some(event) = watch::next(&mut stream, &mut retry, "Events").await {
                let (watcher::Event::Apply(event) | watcher::Event::InitApply(event)) = event else { continue };
                let warning = event.type_.as_deref() == Some("Warning");
                let reason = event.reason.clone().unwrap_or_default();
                if !warning && !NOTABLE.contains(&reason.as_str()) {
                    continue;
                }
                let Some(name) = event.involved_object.name.clone() else { continue };
                let uid = event.metadata.uid.clone().unwrap_or_else(|| format!("{name}/{reason}"));
                let kind = event.involved_object.kind.clone().unwrap_or_default();
                let text = format!("{kind} {name}: {reason}: {}", event.message.clone().unwrap_or_default());
                let mut seen = observed.lock().unwrap_or_else(PoisonError::into_inner);
                if seen.concerns_a_run(&name) && seen.seen_events.insert((name.clone(), uid)) {
                    seen.events.entry(name).or_default().push((warning, text));
                }
            }
        });
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let observed = self.observed.clone();
        let pod_ended = self.ended.clone();
        let limit = self.limit.clone();
        tokio::spawn(async move {
            let mut stream = watcher(pods.clone(), config).boxed();
            let mut retry = Retry::default();
            while let Some(event) = watch::next(&mut stream, &mut retry, "pods").await {
                match event {
                    watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) | watcher::Event::Delete(pod) => {
                        let (id, logs) = {
                            let seen = observed.lock().unwrap_or_else(PoisonError::into_inner);
                            let Some(id) = seen.in_hand(&pod.metadata) else { continue };
                            let logs = seen.logs.get(&id).map(|(_, last)| *last);
                            (id, logs)
                        };
                        let exit_code = pod
                            .status
                            .as_ref()
                            .and_then(|s| s.container_statuses.as_ref())
                            .and_then(|c| c.first())
                            .and_then(|c| c.state.as_ref()?.terminated.as_ref())
                            .map(|t| t.exit_code);
                        // A runner that exits 0 recorded its run Completed:
                        // its lines are not needed.
                        let ended = exit_code.is_some_and(|code| code != 0);
                        let deleting = pod.metadata.deletion_timestamp.is_some() && exit_code != Some(0);
                        // The pod's last lines, read before the pod is shown
                        // as ended so that a crash found from it has them, and
                        // kept: the pod may be gone by then. A pod being
                        // deleted may vanish as it ends, so its lines are read
                        // once as the deletion starts, and again at its end if
                        // they can still be had.
                        // A container that never ran has no log to ask for.
                        if ((ended && logs != Some(true)) || (deleting && logs.is_none())) && container_ran(&pod) {
                            let name = pod.metadata.name.clone().unwrap_or_default();
                            limit.acquire().await;
                            let params = LogParams { tail_lines: Some(TAIL_LINES), ..LogParams::default() };
                            if let Ok(text) = pods.logs(&name, &params).await {
                                let lines = text.lines().map(str::to_owned).collect();
                                observed
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .logs
                                    .insert(id.clone(), (lines, ended));
                            }
                        }
                        let done = pod
                            .status
                            .as_ref()
                            .and_then(|s| s.phase.as_deref())
                            .is_some_and(|phase| matches!(phase, "Succeeded" | "Failed"));
                        observed.lock().unwrap_or_else(PoisonError::into_inner).pods.insert(id, pod);
                        if done {
                            pod_ended.notify_one();
                        }
                    }
                    _ => {}
                }
            }
        });
    }

    /// The handle of a run's Job, with its namespace watched and a request
    /// token taken for the call the caller makes next.
    async fn prepare(&self, job: &Job, run: &FlowRun, deployment: Option<&Deployment>) -> (KubeHandle, Api<Job>) {
        let namespace = job.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let name = job.metadata.name.clone().unwrap_or_else(|| job_name("run", &run.id));
        self.watch_namespace(&namespace);
        self.lock().active.insert(run.id.clone(), name.clone());
        self.limit.acquire().await;
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &namespace);
        let handle = KubeHandle {
            run_id: run.id.clone(),
            namespace,
            job: name,
            created: Instant::now(),
            pod_watch_timeout: self.pod_watch_timeout(deployment),
            deleting: false,
        };
        (handle, jobs)
    }

    fn delete_job(&self, handle: &mut KubeHandle, grace: Option<u32>) {
        handle.deleting = true;
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &handle.namespace);
        let name = handle.job.clone();
        let limit = self.limit.clone();
        tokio::spawn(async move {
            limit.acquire().await;
            let mut params = DeleteParams::background();
            if let Some(seconds) = grace {
                params = params.grace_period(seconds);
            }
            if let Err(e) = jobs.delete(&name, &params).await
                && !matches!(&e, kube::Error::Api(status) if status.code == 404)
            {
                tracing::warn!(job = %name, error = %e, "could not delete the Job");
            }
        });
    }
}

/// Whether a store option is a credential (and so never written into a Job).
pub fn is_credential(key: &str) -> bool {
    let key = key.to_lowercase();
    ["key", "secret", "token", "password", "credential", "sas"].iter().any(|word| key.contains(word))
}

/// Whether the pod's container ever started, and so has a log: it runs,
/// it ran and ended, or an earlier instance of it did.
fn container_ran(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref()).and_then(|c| c.first()) else {
        return false;
    };
    let state = status.state.as_ref();
    state.is_some_and(|s| s.running.is_some())
        || state.and_then(|s| s.terminated.as_ref()).is_some_and(|t| t.started_at.is_some() || t.container_id.is_some())
        || status.last_state.as_ref().is_some_and(|s| s.terminated.is_some())
}

/// Whether `name` is the Job `job` or one of its pods (`<job>-<suffix>`).
fn of_job(job: &str, name: &str) -> bool {
    name.strip_prefix(job).is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
}

fn run_id(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<String> {
    metadata.labels.as_ref()?.get(RUN_ID_LABEL).cloned()
}

/// Whether the API server could not be reached, or answered that it cannot
/// serve now (5xx, 429): worth trying again, unlike a refusal.
fn unreachable(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::HttpError(_) => true,
        _ => false,
    }
}

/// A Kubernetes API error for a person: a 403 names the verb, the resource,
/// the namespace and the fix.
pub fn explain(error: &kube::Error, verb: &str, resource: &str, namespace: &str) -> String {
    match error {
        kube::Error::Api(status) if status.code == 403 => {
            // An agent in the cluster installed in another namespace needs
            // the Role in the Jobs' namespace too.
            let own = std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace").ok();
            let install = match own.as_deref().map(str::trim) {
                Some(own) if !own.is_empty() && own != namespace => {
                    format!("--namespace {own} --job-namespace {namespace}")
                }
                _ => format!("--namespace {namespace}"),
            };
            format!(
                "the agent may not {verb} {resource} in namespace `{namespace}` ({}); grant it with the Role that `weft agent install {install} --rbac` prints",
                status.message
            )
        }
        kube::Error::Api(status) => {
            format!("{verb} {resource} in namespace `{namespace}`: {} ({})", status.message, status.code)
        }
        other => format!("{verb} {resource} in namespace `{namespace}`: {other}"),
    }
}

impl Infrastructure for KubernetesInfrastructure {
    type Handle = KubeHandle;

    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    async fn launch(&self, run: &FlowRun, deployment: Option<&Deployment>) -> Result<KubeHandle, LaunchError> {
        let job = self.job_for(run, deployment).map_err(LaunchError::Refused)?;
        let (handle, jobs) = self.prepare(&job, run, deployment).await;
        match jobs.create(&PostParams::default(), &job).await {
            Ok(_) => Ok(handle),
            // Created by an earlier attempt of this claim: the same run.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(handle),
            Err(e) if unreachable(&e) => {
                Err(LaunchError::Unreachable(explain(&e, "create", "jobs", &handle.namespace)))
            }
            Err(e) => Err(LaunchError::Refused(explain(&e, "create", "jobs", &handle.namespace))),
        }
    }

    async fn adopt(&self, run: &FlowRun, deployment: Option<&Deployment>) -> Adoption<KubeHandle> {
        let job = match self.job_for(run, deployment) {
            Ok(job) => job,
            Err(e) => return Adoption::Vanished(format!("its Job cannot be found again: {e}")),
        };
        let (handle, jobs) = self.prepare(&job, run, deployment).await;
        let (name, namespace) = (handle.job.clone(), handle.namespace.clone());
        match jobs.get_opt(&name).await {
            Ok(Some(_)) => Adoption::Handle(handle),
            Ok(None) => Adoption::Vanished(format!("its Job `{name}` in namespace `{namespace}` is gone")),
            Err(e) if unreachable(&e) => Adoption::Unreachable(explain(&e, "get", "jobs", &namespace)),
            Err(e) => Adoption::Vanished(explain(&e, "get", "jobs", &namespace)),
        }
    }

    fn changes(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.ended.clone())
    }

    fn poll(&self, handle: &mut KubeHandle) -> Option<Exit> {
        let verdict = {
            let seen = self.lock();
            let deleted = seen.deleted.contains(&handle.run_id) && !handle.deleting;
            diagnose(
                seen.jobs.get(&handle.run_id),
                seen.pods.get(&handle.run_id),
                deleted,
                handle.created.elapsed(),
                handle.pod_watch_timeout,
            )
        };
        match verdict {
            Verdict::Going if handle.deleting && !self.lock().jobs.contains_key(&handle.run_id) => {
                Some(Exit { description: "its Job was deleted".into(), crash: None })
            }
            Verdict::Going => None,
            Verdict::Ended { description } => Some(Exit { description, crash: None }),
            Verdict::Crashed { reason } => {
                if !handle.deleting {
                    self.delete_job(handle, None);
                }
                Some(Exit { description: reason.clone(), crash: Some(reason) })
            }
        }
    }

    fn stop(&self, handle: &mut KubeHandle) {
        self.delete_job(handle, None);
    }

    fn kill(&self, handle: &mut KubeHandle) {
        self.delete_job(handle, Some(0));
    }

    fn last_lines(&self, handle: &KubeHandle) -> Vec<String> {
        self.lock().logs.get(&handle.run_id).map(|(lines, _)| lines.clone()).unwrap_or_default()
    }

    fn outlives_agent(&self) -> bool {
        true
    }

    fn forget(&self, handle: &KubeHandle) {
        let mut seen = self.lock();
        let id = &handle.run_id;
        seen.active.remove(id);
        seen.jobs.remove(id);
        seen.pods.remove(id);
        seen.deleted.remove(id);
        seen.logs.remove(id);
        seen.events.retain(|name, _| !of_job(&handle.job, name));
        seen.seen_events.retain(|(name, _)| !of_job(&handle.job, name));
    }

    fn notes(&self, handle: &mut KubeHandle) -> Vec<(bool, String)> {
        let mut seen = self.lock();
        let pod = seen.pods.get(&handle.run_id).and_then(|p| p.metadata.name.clone());
        let mut notes = seen.events.remove(&handle.job).unwrap_or_default();
        if let Some(pod) = pod {
            notes.extend(seen.events.remove(&pod).unwrap_or_default());
        }
        notes
    }
}
