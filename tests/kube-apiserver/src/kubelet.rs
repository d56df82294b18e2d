//! The simulated scheduler and kubelet: each pod gets a task that binds it
//! to the node (unless its `nodeSelector` does not match the node's
//! labels), "pulls" its image (reference parsing, pull policy, the node's
//! image cache, unpullable `.invalid` registries), runs its first
//! container's command as a local process (environment from `env` and
//! `envFrom` Secrets, output to the pod log), OOM-kills it past its memory
//! limit, reports statuses and events as the real ones word them, kills the
//! process on deletion (SIGTERM, SIGKILL after the grace period) and
//! applies the test [`Behaviour`] hooks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::behaviour::{BEHAVIOUR_ANNOTATION, Behaviour};
use crate::controller;
use crate::events::{self, Severity, Source};
use crate::image::{self, ImageReference};
use crate::logs::LogBuffer;
use crate::quantity;
use crate::resource::Resource;
use crate::server::{PodHandle, Shared, State};
use crate::status::ApiError;
use crate::store::ObjectKey;
use crate::util;

/// What the API side tells a pod's kubelet task.
#[derive(Debug)]
pub(crate) enum PodCommand {
    /// The pod got a deletionTimestamp: stop the container within `grace`.
    Delete { grace: Duration },
    /// A test hook, see [`crate::TestApiServer::trigger`].
    Trigger(Behaviour),
}

/// The message `pending` pods report.
const UNSCHEDULABLE: &str = "0/3 nodes are available: 3 Insufficient memory.";
/// The scheduler's message for a pod whose `nodeSelector` the one node
/// does not match.
const NODE_SELECTOR_MISMATCH: &str = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";
/// The image size the `Pulled` event reports.
const IMAGE_SIZE: u64 = 4_270_397;
/// How often a container with a memory limit has its memory measured.
const MEMORY_SAMPLE_INTERVAL: Duration = Duration::from_millis(20);
/// How often the kubelet looks again for what a waiting container lacks
/// (a Secret, an image under `imagePullPolicy: Never`).
const RETRY_INTERVAL: Duration = Duration::from_millis(200);
/// The message evicted pods report.
const EVICTED: &str = "The node was low on resource: memory.";

/// Sends `signal` to a container's process group; a group already gone is
/// not an error.
pub(crate) fn kill_group(pgid: i32, signal: Signal) {
    // killpg(0) would signal this process's own group (the test runner).
    if pgid <= 1 {
        return;
    }
    let _ = nix::sys::signal::killpg(Pid::from_raw(pgid), signal);
}

/// `BestEffort` without any requests or limits, `Guaranteed` when every
/// container's requests equal its limits, else `Burstable`.
pub(crate) fn qos_class(spec: &Value) -> &'static str {
    let containers = spec.get("containers").and_then(Value::as_array).cloned().unwrap_or_default();
    let resources: Vec<(Option<&Value>, Option<&Value>)> =
        containers.iter().map(|c| (c.pointer("/resources/requests"), c.pointer("/resources/limits"))).collect();
    let empty = |v: Option<&Value>| v.and_then(Value::as_object).is_none_or(|m| m.is_empty());
    if resources.iter().all(|(req, lim)| empty(*req) && empty(*lim)) {
        "BestEffort"
    } else if resources.iter().all(|(req, lim)| !empty(*lim) && (empty(*req) || req == lim)) {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Sets (or adds, in the order the kubelet lists them) a pod condition;
/// `lastTransitionTime` moves only when the status changes.
pub(crate) fn set_condition(pod: &mut Value, kind: &str, status: bool, reason: Option<&str>, message: Option<&str>) {
    const ORDER: [&str; 6] =
        ["DisruptionTarget", "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"];
    let rank = |c: &Value| ORDER.iter().position(|k| util::str_at(c, "/type") == Some(k)).unwrap_or(ORDER.len());
    let status_text = if status { "True" } else { "False" };
    let conditions = util::status(pod).entry("conditions").or_insert_with(|| json!([]));
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    let Some(list) = conditions.as_array_mut() else { return };
    let existing = list.iter().position(|c| util::str_at(c, "/type") == Some(kind));
    let transition = match existing {
        Some(i) if util::str_at(&list[i], "/status") == Some(status_text) => {
            list[i].get("lastTransitionTime").cloned().unwrap_or_else(|| json!(util::now()))
        }
        _ => json!(util::now()),
    };
    let mut condition = json!({
        "type": kind,
        "status": status_text,
        "lastProbeTime": null,
        "lastTransitionTime": transition,
    });
    if let Some(map) = condition.as_object_mut() {
        if let Some(reason) = reason {
            map.insert("reason".into(), json!(reason));
        }
        if let Some(message) = message {
            map.insert("message".into(), json!(message));
        }
    }
    match existing {
        Some(i) => list[i] = condition,
        None => list.push(condition),
    }
    list.sort_by_key(|c| rank(c));
}

/// Gives every container of the pod the same `state` (only the first one
/// runs a process; the others mirror it).
fn set_containers(pod: &mut Value, state: Value, ready: bool, started: bool, ids: Option<(&str, &str)>) {
    let containers = pod.pointer("/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default();
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            let image = util::str_at(c, "/image").unwrap_or_default();
            let mut status = json!({
                "name": util::str_at(c, "/name").unwrap_or_default(),
                "state": state,
                "lastState": {},
                "ready": ready,
                "restartCount": 0,
                "image": image,
                "imageID": "",
                "started": started,
            });
            if let (Some((container_id, image_id)), Some(map)) = (ids, status.as_object_mut()) {
                map.insert("containerID".into(), json!(container_id));
                map.insert("imageID".into(), json!(image_id));
            }
            status
        })
        .collect();
    util::status(pod).insert("containerStatuses".into(), Value::Array(statuses));
}

fn set_waiting(pod: &mut Value, reason: &str, message: Option<&str>) {
    let mut waiting = json!({"reason": reason});
    if let (Some(message), Some(map)) = (message, waiting.as_object_mut()) {
        map.insert("message".into(), json!(message));
    }
    set_containers(pod, json!({"waiting": waiting}), false, false, None);
}

/// Starts the kubelet task of a new pod.
pub(crate) fn start(shared: &Arc<Shared>, state: &mut State, pod: &Value) {
    let (Some(namespace), Some(name)) = (util::str_at(pod, "/metadata/namespace"), util::str_at(pod, "/metadata/name"))
    else {
        return;
    };
    let behaviour = pod
        .pointer(&format!("/metadata/annotations/{}", BEHAVIOUR_ANNOTATION.replace('/', "~1")))
        .and_then(Value::as_str)
        .and_then(|text| text.parse().ok())
        .unwrap_or_default();
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let log = Arc::new(LogBuffer::new());
    let key = (namespace.to_owned(), name.to_owned());
    state.pods.insert(key.clone(), PodHandle { commands: commands_tx, pgid: None });
    state.logs.insert(key, log.clone());
    let kubelet = Kubelet {
        shared: shared.clone(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        commands,
        behaviour,
        log,
    };
    shared.spawn(kubelet.run());
}

/// Deletes a pod as the API server does: at once when it was never
/// scheduled, has ended, or `grace` is 0; otherwise it gets a
/// deletionTimestamp and the kubelet stops it and removes it.
pub(crate) fn delete_pod(
    shared: &Arc<Shared>,
    state: &mut State,
    namespace: &str,
    name: &str,
    grace: Option<i64>,
) -> Result<Value, ApiError> {
    let key = ObjectKey::new(Resource::Pods, namespace, name);
    let pod = state.store.get(&key).cloned().ok_or_else(|| ApiError::not_found(Resource::Pods, name))?;
    let scheduled = util::str_at(&pod, "/spec/nodeName").is_some_and(|n| !n.is_empty());
    if !scheduled || controller::is_terminal(&pod) || grace == Some(0) {
        // Dropping the handle tells the kubelet task to kill and go.
        state.pods.remove(&(namespace.to_owned(), name.to_owned()));
        let removed = state.store.remove(&key).ok_or_else(|| ApiError::not_found(Resource::Pods, name))?;
        controller::pod_removed(shared, state, &removed);
        return Ok(removed);
    }
    if pod.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) {
        return Ok(pod);
    }
    let seconds = grace.unwrap_or_else(|| match shared.config.termination_grace_period {
        Some(grace) => grace.as_secs() as i64,
        None => pod.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(30),
    });
    let wait = match (grace, shared.config.termination_grace_period) {
        (None, Some(grace)) => grace,
        _ => Duration::from_secs(seconds.max(0) as u64),
    };
    let marked = state
        .store
        .modify(&key, |pod| {
            let meta = util::metadata(pod);
            meta.insert("deletionTimestamp".into(), json!(util::now_plus(seconds)));
            meta.insert("deletionGracePeriodSeconds".into(), json!(seconds));
        })
        .ok_or_else(|| ApiError::not_found(Resource::Pods, name))?;
    if let Some(handle) = state.pods.get(&(namespace.to_owned(), name.to_owned())) {
        let _ = handle.commands.send(PodCommand::Delete { grace: wait });
    }
    controller::pod_changed(shared, state, &marked);
    Ok(marked)
}

/// Adds a `DisruptionTarget` condition (True, with `reason` and `message`)
/// to a pod that has not ended, as the eviction API and preemption do
/// before deleting it. Returns the pod as it now is.
pub(crate) fn add_disruption_target(
    shared: &Arc<Shared>,
    state: &mut State,
    namespace: &str,
    name: &str,
    reason: &str,
    message: &str,
) -> Result<Value, ApiError> {
    let key = ObjectKey::new(Resource::Pods, namespace, name);
    let pod = state.store.get(&key).cloned().ok_or_else(|| ApiError::not_found(Resource::Pods, name))?;
    if controller::is_terminal(&pod) {
        return Ok(pod);
    }
    let marked = state
        .store
        .modify(&key, |pod| set_condition(pod, "DisruptionTarget", true, Some(reason), Some(message)))
        .ok_or_else(|| ApiError::not_found(Resource::Pods, name))?;
    controller::pod_changed(shared, state, &marked);
    Ok(marked)
}

/// Whether the one node's labels satisfy the pod's `spec.nodeSelector`.
fn node_matches(config: &crate::Config, pod: &Value) -> bool {
    let labels = config.all_node_labels();
    pod.pointer("/spec/nodeSelector").and_then(Value::as_object).is_none_or(|selector| {
        selector.iter().all(|(key, value)| labels.get(key).map(String::as_str) == value.as_str())
    })
}

/// Removes a pod whose kubelet has finished with it.
fn remove_pod(shared: &Arc<Shared>, namespace: &str, name: &str) {
    let mut state = shared.lock();
    state.pods.remove(&(namespace.to_owned(), name.to_owned()));
    if let Some(removed) = state.store.remove(&ObjectKey::new(Resource::Pods, namespace, name)) {
        controller::pod_removed(shared, &mut state, &removed);
    }
}

/// Why a pod's task stops early.
enum Stop {
    /// Deleted gracefully before its container ran: remove it.
    Deleted,
    /// Gone from the store (or the server stops): just end.
    Gone,
}

/// How a running container ended.
enum End {
    Exited(ExitStatus),
    WaitFailed,
    Deleted(Duration),
    Oom,
    Evicted,
    Gone,
}

/// Waits until `at`, or for ever when `None`.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn exit_code(status: ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => i64::from(code),
        (None, Some(signal)) => 128 + i64::from(signal),
        (None, None) => 128,
    }
}

/// A container process that could not start, worded as containerd does.
fn start_error(program: &str, detail: &str) -> String {
    format!(
        "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"{program}\": {detail}: unknown"
    )
}

struct Kubelet {
    shared: Arc<Shared>,
    namespace: String,
    name: String,
    commands: mpsc::UnboundedReceiver<PodCommand>,
    behaviour: Behaviour,
    log: Arc<LogBuffer>,
}

/// A started container process.
struct Running {
    child: Child,
    pgid: i32,
    readers: Vec<JoinHandle<()>>,
    started_at: String,
    container_id: String,
}

impl Kubelet {
    fn key(&self) -> ObjectKey {
        ObjectKey::new(Resource::Pods, &self.namespace, &self.name)
    }

    fn source(&self) -> Source<'_> {
        Source { component: "kubelet", host: Some(&self.shared.config.node_name) }
    }

    /// Changes the pod and lets its Job controller see the change.
    fn update(&self, change: impl FnOnce(&mut Value)) -> Result<Value, Stop> {
        let mut state = self.shared.lock();
        let pod = state.store.modify(&self.key(), change).ok_or(Stop::Gone)?;
        controller::pod_changed(&self.shared, &mut state, &pod);
        Ok(pod)
    }

    /// Records an event on the pod (on its first container when
    /// `container` is set).
    fn event(&self, severity: Severity, reason: &str, message: &str, container: bool) {
        let mut state = self.shared.lock();
        let Some(pod) = state.store.get(&self.key()).cloned() else { return };
        let field_path = container
            .then(|| util::str_at(&pod, "/spec/containers/0/name").map(|c| format!("spec.containers{{{c}}}")))
            .flatten();
        let source = match reason {
            "Scheduled" | "FailedScheduling" | "Preempted" => events::SCHEDULER,
            _ => self.source(),
        };
        events::record(&mut state.store, &pod, field_path.as_deref(), severity, reason, message, source);
    }

    fn pod(&self) -> Option<Value> {
        self.shared.lock().store.get(&self.key()).cloned()
    }

    /// Waits until `until` (for ever when `None`). A trigger changes the
    /// behaviour, and ends an endless wait; a delete stops.
    async fn wait(&mut self, until: Option<Instant>) -> Result<(), Stop> {
        loop {
            tokio::select! {
                () = sleep_until(until) => return Ok(()),
                command = self.commands.recv() => match command {
                    None => return Err(Stop::Gone),
                    Some(PodCommand::Delete { .. }) => return Err(Stop::Deleted),
                    Some(PodCommand::Trigger(behaviour)) => {
                        self.behaviour = behaviour;
                        if until.is_none() {
                            return Ok(());
                        }
                    }
                },
            }
        }
    }

    async fn wait_for(&mut self, duration: Duration) -> Result<(), Stop> {
        self.wait(Some(Instant::now() + duration)).await
    }

    async fn run(mut self) {
        let outcome = match self.prepare().await {
            Ok(Some(running)) => self.supervise(running).await,
            Ok(None) => Ok(()),
            Err(stop) => Err(stop),
        };
        match outcome {
            Ok(()) => self.await_deletion().await,
            Err(Stop::Deleted) => remove_pod(&self.shared, &self.namespace, &self.name),
            Err(Stop::Gone) => {}
        }
    }

    /// Schedules the pod, pulls its image and starts its container;
    /// `None` when the container could not start (the pod has failed).
    async fn prepare(&mut self) -> Result<Option<Running>, Stop> {
        let config = self.shared.config.clone();
        self.wait_for(config.schedule_delay).await?;
        // Unschedulable for as long as the hook says so or the node does
        // not match; the scheduler reports each reason once.
        let mut reported = None;
        loop {
            let unschedulable = if self.behaviour == Behaviour::Pending {
                UNSCHEDULABLE
            } else if !self.pod().is_some_and(|pod| node_matches(&config, &pod)) {
                NODE_SELECTOR_MISMATCH
            } else {
                break;
            };
            if reported != Some(unschedulable) {
                self.update(|pod| {
                    set_condition(pod, "PodScheduled", false, Some("Unschedulable"), Some(unschedulable));
                })?;
                self.event(Severity::Warning, "FailedScheduling", unschedulable, false);
                reported = Some(unschedulable);
            }
            self.wait(None).await?;
        }
        let node = config.node_name.clone();
        self.update(|pod| {
            if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("nodeName".into(), json!(node));
            }
            set_condition(pod, "PodScheduled", true, None, None);
        })?;
        let assigned = format!("Successfully assigned {}/{} to {node}", self.namespace, self.name);
        self.event(Severity::Normal, "Scheduled", &assigned, false);

        // The kubelet takes the pod: sandbox, then the image.
        let pod = self.update(|pod| {
            let not_ready = pod
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map(|cs| cs.iter().filter_map(|c| util::str_at(c, "/name")).collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            let message = format!("containers with unready status: [{not_ready}]");
            set_condition(pod, "PodReadyToStartContainers", true, None, None);
            set_condition(pod, "Initialized", true, None, None);
            set_condition(pod, "Ready", false, Some("ContainersNotReady"), Some(&message));
            set_condition(pod, "ContainersReady", false, Some("ContainersNotReady"), Some(&message));
            let status = util::status(pod);
            status.insert("hostIP".into(), json!("127.0.0.1"));
            status.insert("hostIPs".into(), json!([{"ip": "127.0.0.1"}]));
            status.insert("podIP".into(), json!("127.0.0.1"));
            status.insert("podIPs".into(), json!([{"ip": "127.0.0.1"}]));
            status.insert("startTime".into(), json!(util::now()));
            set_waiting(pod, "ContainerCreating", None);
        })?;
        let spec: PodSpec = serde_json::from_value(pod.get("spec").cloned().unwrap_or_default()).unwrap_or_default();
        let Some(container) = spec.containers.first().cloned() else { return Ok(None) };
        let image = container.image.clone().unwrap_or_default();
        self.ensure_image(&image, container.image_pull_policy.as_deref()).await?;

        // Environment: a missing Secret holds the container back until it
        // appears, as the kubelet retries.
        let mut reported = false;
        let env = loop {
            let resolved = {
                let state = self.shared.lock();
                resolve_env(&state, &config, &self.namespace, &pod, &container)
            };
            match resolved {
                Ok(env) => break env,
                Err(message) => {
                    if !reported {
                        self.update(|pod| set_waiting(pod, "CreateContainerConfigError", Some(&message)))?;
                        self.event(Severity::Warning, "Failed", &format!("Error: {message}"), true);
                        reported = true;
                    }
                    self.wait_for(RETRY_INTERVAL).await?;
                }
            }
        };

        let container_name = container.name.clone();
        match self.spawn(&container, env) {
            Ok(running) => {
                let container_id = running.container_id.clone();
                let started_at = running.started_at.clone();
                let image_id = format!("{image}@sha256:{:064x}", 0);
                self.event(Severity::Normal, "Created", &format!("Created container: {container_name}"), true);
                self.event(Severity::Normal, "Started", &format!("Started container {container_name}"), true);
                self.update(|pod| {
                    set_condition(pod, "Ready", true, None, None);
                    set_condition(pod, "ContainersReady", true, None, None);
                    util::status(pod).insert("phase".into(), json!("Running"));
                    set_containers(
                        pod,
                        json!({"running": {"startedAt": started_at}}),
                        true,
                        true,
                        Some((&container_id, &image_id)),
                    );
                })?;
                Ok(Some(running))
            }
            Err(message) => {
                self.event(Severity::Warning, "Failed", &format!("Error: {message}"), true);
                self.log.finish();
                self.update(|pod| {
                    let now = util::now();
                    let state = json!({"terminated": {
                        "exitCode": 128, "reason": "StartError", "message": message,
                        "startedAt": "1970-01-01T00:00:00Z", "finishedAt": now,
                    }});
                    set_containers(pod, state, false, false, None);
                    finish_conditions(pod, "PodFailed");
                    util::status(pod).insert("phase".into(), json!("Failed"));
                })?;
                Ok(None)
            }
        }
    }

    /// The kubelet's `EnsureImageExists`: the test hooks first, then the
    /// reference (one that does not parse waits in `InvalidImageName`), the
    /// pull policy and the node's cache. Returns once the image is there.
    async fn ensure_image(&mut self, image: &str, policy: Option<&str>) -> Result<(), Stop> {
        let pull_delay = self.shared.config.pull_delay;
        let policy = policy.unwrap_or_else(|| image::default_pull_policy(image));
        let mut never_reported = false;
        loop {
            let reference = ImageReference::parse(image);
            match self.behaviour {
                Behaviour::SlowPull(duration) => {
                    self.pull(image, reference.ok().as_ref(), duration).await?;
                    return Ok(());
                }
                Behaviour::ImagePullError => {
                    let rpc = format!(
                        "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": not found"
                    );
                    self.failed_pull(image, &rpc).await?;
                    continue;
                }
                Behaviour::InvalidImage => {
                    let message = image::invalid_name_message(image, "invalid reference format");
                    self.invalid_image(&message).await?;
                    continue;
                }
                _ => {}
            }
            let reference = match reference {
                Ok(reference) => reference,
                Err(error) => {
                    self.invalid_image(&image::invalid_name_message(image, &error)).await?;
                    continue;
                }
            };
            let present = self.shared.lock().images.contains(&reference.normalized());
            if policy == "Always" || (!present && policy != "Never") {
                match reference.pull_error() {
                    None => return self.pull(image, Some(&reference), pull_delay).await,
                    Some(error) => {
                        self.failed_pull(image, &error).await?;
                        continue;
                    }
                }
            }
            if present {
                let message = format!("Container image \"{image}\" already present on machine");
                self.event(Severity::Normal, "Pulled", &message, true);
                return Ok(());
            }
            // `Never` and not cached: the kubelet keeps looking, as another
            // pod may pull the image.
            if !never_reported {
                let message = format!("Container image \"{image}\" is not present with pull policy of Never");
                self.update(|pod| set_waiting(pod, "ErrImageNeverPull", Some(&message)))?;
                self.event(Severity::Warning, "ErrImageNeverPull", &message, true);
                self.event(Severity::Warning, "Failed", "Error: ErrImageNeverPull", true);
                never_reported = true;
            }
            self.wait_for(RETRY_INTERVAL).await?;
        }
    }

    /// A pull that succeeds after `duration`: `Pulling`, then `Pulled`, and
    /// the image is in the node's cache.
    async fn pull(&mut self, image: &str, reference: Option<&ImageReference>, duration: Duration) -> Result<(), Stop> {
        let started = Instant::now();
        self.event(Severity::Normal, "Pulling", &format!("Pulling image \"{image}\""), true);
        self.wait_for(duration).await?;
        if let Some(reference) = reference {
            self.shared.lock().images.insert(reference.normalized());
        }
        let took = image::go_duration(started.elapsed());
        let pulled = format!(
            "Successfully pulled image \"{image}\" in {took} ({took} including waiting). Image size: {IMAGE_SIZE} bytes."
        );
        self.event(Severity::Normal, "Pulled", &pulled, true);
        Ok(())
    }

    /// A pull that fails with `message` after `pull_delay`: `Pulling`, then
    /// `ErrImagePull` and its `Failed` events, then `ImagePullBackOff`,
    /// until a trigger.
    async fn failed_pull(&mut self, image: &str, message: &str) -> Result<(), Stop> {
        self.event(Severity::Normal, "Pulling", &format!("Pulling image \"{image}\""), true);
        self.wait_for(self.shared.config.pull_delay).await?;
        self.update(|pod| set_waiting(pod, "ErrImagePull", Some(message)))?;
        self.event(Severity::Warning, "Failed", &format!("Failed to pull image \"{image}\": {message}"), true);
        self.event(Severity::Warning, "Failed", "Error: ErrImagePull", true);
        self.wait_for(self.shared.config.image_pull_backoff_delay).await?;
        let backoff = format!("Back-off pulling image \"{image}\"");
        self.update(|pod| set_waiting(pod, "ImagePullBackOff", Some(&backoff)))?;
        self.event(Severity::Normal, "BackOff", &backoff, true);
        self.event(Severity::Warning, "Failed", "Error: ImagePullBackOff", true);
        self.wait(None).await
    }

    /// An image name that does not parse: `InvalidImageName` with `message`
    /// (and the `InspectFailed` event), until a trigger.
    async fn invalid_image(&mut self, message: &str) -> Result<(), Stop> {
        self.update(|pod| set_waiting(pod, "InvalidImageName", Some(message)))?;
        self.event(Severity::Warning, "InspectFailed", message, true);
        self.event(Severity::Warning, "Failed", "Error: InvalidImageName", true);
        self.wait(None).await
    }

    /// Starts the first container's command as a local process group.
    fn spawn(&self, container: &Container, env: BTreeMap<String, String>) -> Result<Running, String> {
        let mut argv: Vec<String> = container.command.clone().unwrap_or_default();
        argv.extend(container.args.clone().unwrap_or_default());
        let argv: Vec<String> = argv.iter().map(|a| expand(a, &env)).collect();
        let Some((program, args)) = argv.split_first() else {
            return Err(start_error(
                "",
                "no command: this test server has no images, so a container needs a command or args",
            ));
        };
        let executable = self.shared.config.command_rewrites.get(program).cloned().unwrap_or_else(|| program.into());
        let dir = container
            .working_dir
            .as_ref()
            .map(PathBuf::from)
            .filter(|d| d.is_dir())
            .unwrap_or_else(|| self.shared.scratch.path().join(format!("{}-{}", self.namespace, self.name)));
        if let Err(error) = std::fs::create_dir_all(&dir) {
            return Err(start_error(program, &format!("cannot create working directory: {error}")));
        }
        let mut command = tokio::process::Command::new(&executable);
        command
            .args(args)
            .env_clear()
            .envs(&env)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|error| {
            let detail = match error.kind() {
                std::io::ErrorKind::NotFound => "executable file not found in $PATH".to_owned(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
                _ => error.to_string(),
            };
            start_error(program, &detail)
        })?;
        let pgid = child.id().and_then(|id| i32::try_from(id).ok()).unwrap_or_default();
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(copy_to_log(stdout, self.log.clone())));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(copy_to_log(stderr, self.log.clone())));
        }
        if let Some(handle) = self.shared.lock().pods.get_mut(&(self.namespace.clone(), self.name.clone())) {
            handle.pgid = Some(pgid);
        }
        Ok(Running {
            child,
            pgid,
            readers,
            started_at: util::now(),
            container_id: format!("containerd://{:016x}{:016x}", util::random_u64(), util::random_u64()),
        })
    }

    /// Waits for the container to end, by itself or by a kill; reports it.
    /// `Err(Stop::Gone)` once the pod was removed.
    async fn supervise(&mut self, mut running: Running) -> Result<(), Stop> {
        let start = Instant::now();
        let after = |d: Duration| Some(start + d);
        let mut oom_at = match self.behaviour {
            Behaviour::OomAfter(d) => after(d),
            _ => None,
        };
        let mut evict_at = match self.behaviour {
            Behaviour::EvictAfter(d) => after(d),
            _ => None,
        };
        // Past its memory limit the container is OOM-killed, as the kernel
        // does to a cgroup; here its memory is sampled instead.
        let memory_limit = self
            .pod()
            .and_then(|pod| util::str_at(&pod, "/spec/containers/0/resources/limits/memory").and_then(quantity::bytes));
        let mut memory_samples = tokio::time::interval(MEMORY_SAMPLE_INTERVAL);
        memory_samples.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let pgid = running.pgid;
        let end = loop {
            tokio::select! {
                status = running.child.wait() => break match status {
                    Ok(status) => End::Exited(status),
                    Err(_) => End::WaitFailed,
                },
                command = self.commands.recv() => match command {
                    None => break End::Gone,
                    Some(PodCommand::Delete { grace }) => break End::Deleted(grace),
                    Some(PodCommand::Trigger(behaviour)) => {
                        match behaviour {
                            Behaviour::OomAfter(d) => oom_at = Some(Instant::now() + d),
                            Behaviour::EvictAfter(d) => evict_at = Some(Instant::now() + d),
                            _ => {}
                        }
                        self.behaviour = behaviour;
                    }
                },
                () = sleep_until(oom_at) => break End::Oom,
                () = sleep_until(evict_at) => break End::Evicted,
                _ = memory_samples.tick(), if memory_limit.is_some() => {
                    if memory_limit.is_some_and(|limit| group_rss(pgid) > limit) {
                        break End::Oom;
                    }
                }
            }
        };
        let container =
            self.pod().and_then(|p| util::str_at(&p, "/spec/containers/0/name").map(str::to_owned)).unwrap_or_default();
        let killed = |child: &mut Child| {
            kill_group(pgid, Signal::SIGKILL);
            let _ = child.start_kill();
        };
        let (code, reason, deleted, evicted) = match end {
            End::Exited(status) => {
                let code = exit_code(status);
                (code, if code == 0 { "Completed" } else { "Error" }, false, false)
            }
            End::WaitFailed => (128, "Error", false, false),
            End::Deleted(grace) => {
                self.event(Severity::Normal, "Killing", &format!("Stopping container {container}"), true);
                kill_group(pgid, Signal::SIGTERM);
                let status = match tokio::time::timeout(grace, running.child.wait()).await {
                    Ok(Ok(status)) => Some(status),
                    _ => {
                        killed(&mut running.child);
                        running.child.wait().await.ok()
                    }
                };
                let code = status.map_or(137, exit_code);
                (code, if code == 0 { "Completed" } else { "Error" }, true, false)
            }
            End::Oom => {
                killed(&mut running.child);
                let _ = running.child.wait().await;
                (137, "OOMKilled", false, false)
            }
            End::Evicted => {
                self.event(Severity::Warning, "Evicted", EVICTED, false);
                killed(&mut running.child);
                let _ = running.child.wait().await;
                (137, "Error", false, true)
            }
            End::Gone => {
                killed(&mut running.child);
                let _ = running.child.wait().await;
                self.finish_process(running).await;
                return Err(Stop::Gone);
            }
        };
        let started_at = running.started_at.clone();
        let container_id = running.container_id.clone();
        self.finish_process(running).await;
        let terminated = json!({"terminated": {
            "exitCode": code,
            "reason": reason,
            "startedAt": started_at,
            "finishedAt": util::now(),
            "containerID": container_id,
        }});
        self.update(|pod| {
            let phase = if code == 0 && !evicted { "Succeeded" } else { "Failed" };
            set_containers(pod, terminated, false, false, Some((&container_id, "")));
            finish_conditions(pod, if phase == "Succeeded" { "PodCompleted" } else { "PodFailed" });
            if evicted {
                set_condition(pod, "DisruptionTarget", true, Some("TerminationByKubelet"), Some(EVICTED));
                let status = util::status(pod);
                status.insert("reason".into(), json!("Evicted"));
                status.insert("message".into(), json!(EVICTED));
            }
            util::status(pod).insert("phase".into(), json!(phase));
        })?;
        if deleted {
            remove_pod(&self.shared, &self.namespace, &self.name);
            return Err(Stop::Gone);
        }
        Ok(())
    }

    /// After the process ended: kill what it left in its group, drain its
    /// output, close the log.
    async fn finish_process(&self, running: Running) {
        kill_group(running.pgid, Signal::SIGKILL);
        for reader in running.readers {
            let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
        }
        self.log.finish();
        if let Some(handle) = self.shared.lock().pods.get_mut(&(self.namespace.clone(), self.name.clone())) {
            handle.pgid = None;
        }
    }

    /// The pod has ended; remove it when it is deleted.
    async fn await_deletion(&mut self) {
        loop {
            match self.commands.recv().await {
                None => return,
                Some(PodCommand::Delete { .. }) => {
                    remove_pod(&self.shared, &self.namespace, &self.name);
                    return;
                }
                Some(PodCommand::Trigger(_)) => {}
            }
        }
    }
}

/// Resident memory of a container, in bytes: the sum over the processes of
/// its process group, as a memory cgroup would count them all.
fn group_rss(pgid: i32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| process_group(*pid) == Some(pgid))
        .filter_map(resident_bytes)
        .sum()
}

/// The process group of `pid`, from `/proc/<pid>/stat`: `pid (comm) state
/// ppid pgrp ...`, where `comm` may hold spaces and parentheses.
fn process_group(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(2)?.parse().ok()
}

/// The resident set size of `pid`: `VmRSS` in `/proc/<pid>/status`, the
/// same number as `statm`'s second field but in kB, not pages, whose size
/// this crate has no portable way to ask.
fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = status.lines().find_map(|line| line.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim();
    Some(kb.parse::<u64>().ok()? * 1024)
}

/// Conditions of a pod whose containers have all ended.
fn finish_conditions(pod: &mut Value, reason: &str) {
    set_condition(pod, "PodReadyToStartContainers", false, None, None);
    set_condition(pod, "Ready", false, Some(reason), None);
    set_condition(pod, "ContainersReady", false, Some(reason), None);
}

async fn copy_to_log(mut pipe: impl tokio::io::AsyncRead + Unpin, log: Arc<LogBuffer>) {
    let mut buffer = vec![0u8; 8192];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => log.append(&buffer[..n]),
        }
    }
}

/// Kubernetes' `$(VAR)` expansion in command and args: defined variables
/// are replaced, `$$` escapes, anything else stays as written.
fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
            && let Some(value) = env.get(&inner[..end])
        {
            out.push_str(value);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn secret_data(state: &State, namespace: &str, name: &str) -> Option<BTreeMap<String, String>> {
    let secret = state.store.get(&ObjectKey::new(Resource::Secrets, namespace, name))?;
    let data = secret.get("data").and_then(Value::as_object).cloned().unwrap_or_default();
    Some(
        data.iter()
            .map(|(key, value)| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(value.as_str().unwrap_or_default())
                    .unwrap_or_default();
                (key.clone(), String::from_utf8_lossy(&bytes).into_owned())
            })
            .collect(),
    )
}

/// A container's environment: PATH and HOME from this process, HOSTNAME,
/// the configured extras, then `envFrom` and `env` in order, as the
/// kubelet builds it. `Err` is the kubelet's CreateContainerConfigError
/// message.
fn resolve_env(
    state: &State,
    config: &crate::Config,
    namespace: &str,
    pod: &Value,
    container: &Container,
) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    for name in ["PATH", "HOME"] {
        if let Ok(value) = std::env::var(name) {
            env.insert(name.to_owned(), value);
        }
    }
    env.insert("HOSTNAME".to_owned(), util::str_at(pod, "/metadata/name").unwrap_or_default().to_owned());
    env.extend(config.extra_env.clone());
    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.clone().unwrap_or_default();
        if let Some(secret) = &source.secret_ref {
            match secret_data(state, namespace, &secret.name) {
                Some(data) => env.extend(data.into_iter().map(|(k, v)| (format!("{prefix}{k}"), v))),
                None if secret.optional == Some(true) => {}
                None => return Err(format!("secret \"{}\" not found", secret.name)),
            }
        }
        if let Some(config_map) = &source.config_map_ref
            && config_map.optional != Some(true)
        {
            return Err(format!("configmap \"{}\" not found", config_map.name));
        }
    }
    for var in container.env.iter().flatten() {
        let value = if let Some(value) = &var.value {
            expand(value, &env)
        } else if let Some(from) = &var.value_from {
            if let Some(key_ref) = &from.secret_key_ref {
                let data = secret_data(state, namespace, &key_ref.name);
                match (data, key_ref.optional == Some(true)) {
                    (Some(data), optional) => match data.get(&key_ref.key) {
                        Some(value) => value.clone(),
                        None if optional => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in Secret {namespace}/{}",
                                key_ref.key, key_ref.name
                            ));
                        }
                    },
                    (None, true) => continue,
                    (None, false) => return Err(format!("secret \"{}\" not found", key_ref.name)),
                }
            } else if let Some(field) = &from.field_ref {
                let path = match field.field_path.as_str() {
                    "metadata.name" => "/metadata/name",
                    "metadata.namespace" => "/metadata/namespace",
                    "metadata.uid" => "/metadata/uid",
                    "spec.nodeName" => "/spec/nodeName",
                    "spec.serviceAccountName" => "/spec/serviceAccountName",
                    "status.podIP" | "status.hostIP" => {
                        env.insert(var.name.clone(), "127.0.0.1".to_owned());
                        continue;
                    }
                    _ => "",
                };
                util::str_at(pod, path).unwrap_or_default().to_owned()
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        env.insert(var.name.clone(), value);
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let env: BTreeMap<String, String> = [("A".to_owned(), "1".to_owned())].into();
        assert_eq!(expand("x$(A)y", &env), "x1y");
        assert_eq!(expand("$(B)", &env), "$(B)");
        assert_eq!(expand("$$(A)", &env), "$(A)");
        assert_eq!(expand("cost $5", &env), "cost $5");
    }

    #[test]
    fn qos_classes() {
        assert_eq!(qos_class(&json!({"containers": [{"name": "c"}]})), "BestEffort");
        let same = json!({"cpu": "1"});
        assert_eq!(
            qos_class(&json!({"containers": [{"resources": {"requests": same, "limits": same}}]})),
            "Guaranteed"
        );
        assert_eq!(qos_class(&json!({"containers": [{"resources": {"requests": same}}]})), "Burstable");
    }
}
