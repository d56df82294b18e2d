//! The simulated job controller, garbage collector and TTL controller: a
//! Job gets one pod at a time (a replacement after a failure while
//! `spec.backoffLimit` allows), its status follows its pods the way the
//! real controller writes it (interim `SuccessCriteriaMet`/`FailureTarget`,
//! then `Complete`/`Failed` once no pod runs), `activeDeadlineSeconds` and
//! `ttlSecondsAfterFinished` are honoured, and deletion propagates to pods
//! as the policy says.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::events::{self, JOB_CONTROLLER, Severity};
use crate::kubelet;
use crate::resource::Resource;
use crate::server::{Shared, State};
use crate::status::ApiError;
use crate::store::ObjectKey;
use crate::util;

/// What the controller remembers about a Job between syncs.
#[derive(Debug, Default)]
pub(crate) struct JobRuntime {
    /// Uids of pods counted as succeeded or failed (a pod deleted before it
    /// ended counts as failed, as with the real job-tracking finalizer).
    succeeded: BTreeSet<String>,
    failed: BTreeSet<String>,
    /// A pod creation is scheduled.
    creating: bool,
    /// When the Job started (for `activeDeadlineSeconds`).
    started: Option<Instant>,
}

/// A delete's `propagationPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Propagation {
    Background,
    Foreground,
    Orphan,
}

impl Propagation {
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        match text {
            "Background" => Ok(Propagation::Background),
            "Foreground" => Ok(Propagation::Foreground),
            "Orphan" => Ok(Propagation::Orphan),
            other => Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    }
}

/// The warning the real server sends when a Job is deleted without a
/// propagation policy (its pods are then orphaned).
pub(crate) const ORPHAN_WARNING: &str = "299 - \"child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them\"";

/// `(name, uid)` of the Job controlling `pod`.
pub(crate) fn owner_job(pod: &Value) -> Option<(String, String)> {
    pod.pointer("/metadata/ownerReferences")?.as_array()?.iter().find_map(|owner| {
        (util::str_at(owner, "/kind") == Some("Job") && owner.get("controller") == Some(&json!(true)))
            .then(|| Some((util::str_at(owner, "/name")?.to_owned(), util::str_at(owner, "/uid")?.to_owned())))
            .flatten()
    })
}

fn owned_by<'a>(state: &'a State, namespace: &str, job_uid: &str) -> Vec<&'a Value> {
    state
        .store
        .list(Resource::Pods, Some(namespace))
        .into_iter()
        .filter(|p| owner_job(p).is_some_and(|(_, uid)| uid == job_uid))
        .collect()
}

pub(crate) fn is_terminal(pod: &Value) -> bool {
    matches!(util::str_at(pod, "/status/phase"), Some("Succeeded" | "Failed"))
}

fn is_deleting(object: &Value) -> bool {
    object.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null())
}

fn condition_of<'a>(job: &'a Value, kind: &str) -> Option<&'a Value> {
    job.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| util::str_at(c, "/type") == Some(kind) && util::str_at(c, "/status") == Some("True"))
}

pub(crate) fn is_finished(job: &Value) -> bool {
    condition_of(job, "Complete").is_some() || condition_of(job, "Failed").is_some()
}

fn job_condition(kind: &str, reason: &str, message: &str) -> Value {
    let now = util::now();
    json!({
        "type": kind,
        "status": "True",
        "lastProbeTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    })
}

fn spec_i64(job: &Value, field: &str) -> Option<i64> {
    job.pointer(&format!("/spec/{field}")).and_then(Value::as_i64)
}

/// A Job was stored: remember it and start its first sync.
pub(crate) fn job_created(shared: &Arc<Shared>, state: &mut State, job: &Value) {
    if let (Some(uid), Some(ns), Some(name)) = (
        util::str_at(job, "/metadata/uid"),
        util::str_at(job, "/metadata/namespace"),
        util::str_at(job, "/metadata/name"),
    ) {
        state.jobs.insert(uid.to_owned(), JobRuntime::default());
        sync_job(shared, state, ns, name);
    }
}

/// A pod changed: sync its Job.
pub(crate) fn pod_changed(shared: &Arc<Shared>, state: &mut State, pod: &Value) {
    if let (Some((job, _)), Some(ns)) = (owner_job(pod), util::str_at(pod, "/metadata/namespace")) {
        sync_job(shared, state, ns, &job);
    }
}

/// A pod was removed from the store: count it if it had not ended, finish
/// a foreground deletion of its Job, or sync the Job.
pub(crate) fn pod_removed(shared: &Arc<Shared>, state: &mut State, pod: &Value) {
    let (Some((job_name, job_uid)), Some(ns)) = (owner_job(pod), util::str_at(pod, "/metadata/namespace")) else {
        return;
    };
    if !is_terminal(pod)
        && let (Some(rt), Some(uid)) = (state.jobs.get_mut(&job_uid), util::str_at(pod, "/metadata/uid"))
    {
        rt.failed.insert(uid.to_owned());
    }
    let key = ObjectKey::new(Resource::Jobs, ns, &job_name);
    let Some(job) = state.store.get(&key) else { return };
    if util::str_at(job, "/metadata/uid") != Some(job_uid.as_str()) {
        return;
    }
    let foreground = job
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.contains(&json!("foregroundDeletion")));
    if is_deleting(job) && foreground {
        if owned_by(state, ns, &job_uid).is_empty() {
            state.store.remove(&key);
            state.jobs.remove(&job_uid);
        }
        return;
    }
    sync_job(shared, state, ns, &job_name);
}

/// Brings a Job's status in line with its pods, and acts: create a pod,
/// give up (deleting running pods), finish, schedule the TTL deletion.
pub(crate) fn sync_job(shared: &Arc<Shared>, state: &mut State, namespace: &str, name: &str) {
    let key = ObjectKey::new(Resource::Jobs, namespace, name);
    let Some(job) = state.store.get(&key).cloned() else { return };
    let Some(uid) = util::str_at(&job, "/metadata/uid").map(str::to_owned) else { return };
    if is_finished(&job) {
        return;
    }
    let pods: Vec<Value> = owned_by(state, namespace, &uid).into_iter().cloned().collect();
    let suspended = job.pointer("/spec/suspend") == Some(&json!(true));
    let deleting = is_deleting(&job);
    let backoff_limit = spec_i64(&job, "backoffLimit").unwrap_or(6).max(0) as usize;
    let completions = spec_i64(&job, "completions").unwrap_or(1).max(1) as usize;
    let deadline = spec_i64(&job, "activeDeadlineSeconds").map(|s| Duration::from_secs(s.max(0) as u64));

    let rt = state.jobs.entry(uid.clone()).or_default();
    for pod in &pods {
        let Some(pod_uid) = util::str_at(pod, "/metadata/uid") else { continue };
        match util::str_at(pod, "/status/phase") {
            Some("Succeeded") => rt.succeeded.insert(pod_uid.to_owned()),
            Some("Failed") => rt.failed.insert(pod_uid.to_owned()),
            _ => false,
        };
    }
    let running: Vec<&Value> = pods.iter().filter(|p| !is_terminal(p)).collect();
    let active: Vec<&Value> = running.iter().copied().filter(|p| !is_deleting(p)).collect();
    let terminating = running.len() - active.len();
    let ready = active
        .iter()
        .filter(|p| {
            p.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|cs| {
                cs.iter()
                    .any(|c| util::str_at(c, "/type") == Some("Ready") && util::str_at(c, "/status") == Some("True"))
            })
        })
        .count();

    let mut conditions: Vec<Value> =
        job.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut to_delete: Vec<String> = Vec::new();
    let mut create_after: Option<Duration> = None;
    let mut start_deadline: Option<Duration> = None;
    let mut start_time = util::str_at(&job, "/status/startTime").map(str::to_owned);
    if start_time.is_none() && !suspended && !deleting {
        start_time = Some(util::now());
        rt.started = Some(Instant::now());
        start_deadline = deadline;
    }
    let has_interim =
        condition_of(&job, "SuccessCriteriaMet").is_some() || condition_of(&job, "FailureTarget").is_some();
    if !has_interim {
        let past_deadline = matches!((rt.started, deadline), (Some(started), Some(d)) if started.elapsed() >= d);
        if rt.succeeded.len() >= completions {
            conditions.push(job_condition(
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            ));
        } else if rt.failed.len() > backoff_limit {
            conditions.push(job_condition(
                "FailureTarget",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ));
            to_delete = active.iter().filter_map(|p| util::str_at(p, "/metadata/name").map(str::to_owned)).collect();
        } else if past_deadline {
            conditions.push(job_condition(
                "FailureTarget",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            ));
            to_delete = active.iter().filter_map(|p| util::str_at(p, "/metadata/name").map(str::to_owned)).collect();
        } else if running.is_empty() && !rt.creating && !deleting && !suspended {
            rt.creating = true;
            let backoff = if rt.failed.is_empty() { Duration::ZERO } else { shared.config.pod_backoff };
            create_after = Some(shared.config.pod_create_delay + backoff);
        }
    }
    let (succeeded, failed) = (rt.succeeded.len(), rt.failed.len());

    // Terminal once the interim condition is there and no pod still runs.
    let interim = conditions
        .iter()
        .find(|c| matches!(util::str_at(c, "/type"), Some("SuccessCriteriaMet" | "FailureTarget")))
        .cloned();
    let mut finished: Option<(Severity, String, String)> = None;
    let mut completion_time = None;
    if let Some(interim) = interim
        && running.is_empty()
    {
        let reason = util::str_at(&interim, "/reason").unwrap_or_default().to_owned();
        let message = util::str_at(&interim, "/message").unwrap_or_default().to_owned();
        if util::str_at(&interim, "/type") == Some("SuccessCriteriaMet") {
            conditions.push(job_condition("Complete", &reason, &message));
            completion_time = Some(util::now());
            finished = Some((Severity::Normal, "Completed".to_owned(), "Job completed".to_owned()));
        } else {
            conditions.push(job_condition("Failed", &reason, &message));
            finished = Some((Severity::Warning, reason, message));
        }
    }

    let updated = state.store.modify(&key, |job| {
        let status = util::status(job);
        let mut set = |field: &str, value: Value| {
            if value.is_null() || value == json!(0) && matches!(field, "active" | "succeeded" | "failed") {
                status.remove(field);
            } else {
                status.insert(field.to_owned(), value);
            }
        };
        set("active", json!(active.len()));
        set("succeeded", json!(succeeded));
        set("failed", json!(failed));
        set("ready", json!(ready));
        set("terminating", json!(terminating));
        set("uncountedTerminatedPods", json!({}));
        if !conditions.is_empty() {
            set("conditions", Value::Array(conditions.clone()));
        }
        if let Some(start) = &start_time {
            set("startTime", json!(start));
        }
        if let Some(done) = &completion_time {
            set("completionTime", json!(done));
        }
    });
    let Some(job) = updated else { return };

    if let Some((severity, reason, message)) = finished {
        events::record(&mut state.store, &job, None, severity, &reason, &message, JOB_CONTROLLER);
        if let Some(ttl) = spec_i64(&job, "ttlSecondsAfterFinished") {
            let shared2 = shared.clone();
            let (ns, name, uid) = (namespace.to_owned(), name.to_owned(), uid.clone());
            shared.spawn(async move {
                tokio::time::sleep(Duration::from_secs(ttl.max(0) as u64)).await;
                let mut state = shared2.lock();
                let current = state.store.get(&ObjectKey::new(Resource::Jobs, &ns, &name));
                if current.and_then(|j| util::str_at(j, "/metadata/uid")) == Some(uid.as_str()) {
                    // The TTL controller deletes in the foreground.
                    let _ = delete_job(&shared2, &mut state, &ns, &name, Some(Propagation::Foreground));
                }
            });
        }
    }
    for pod in to_delete {
        if kubelet::delete_pod(shared, state, namespace, &pod, None).is_ok() {
            events::record(
                &mut state.store,
                &job,
                None,
                Severity::Normal,
                "SuccessfulDelete",
                &format!("Deleted pod: {pod}"),
                JOB_CONTROLLER,
            );
        }
    }
    if let Some(deadline) = start_deadline {
        let shared2 = shared.clone();
        let (ns, name) = (namespace.to_owned(), name.to_owned());
        shared.spawn(async move {
            tokio::time::sleep(deadline).await;
            let mut state = shared2.lock();
            sync_job(&shared2, &mut state, &ns, &name);
        });
    }
    if let Some(delay) = create_after {
        let shared2 = shared.clone();
        let (ns, name) = (namespace.to_owned(), name.to_owned());
        shared.spawn(async move {
            tokio::time::sleep(delay).await;
            let mut state = shared2.lock();
            create_pod(&shared2, &mut state, &ns, &name, &uid);
        });
    }
}

/// Creates the Job's next pod, unless the Job went away or gave up while
/// the creation waited.
fn create_pod(shared: &Arc<Shared>, state: &mut State, namespace: &str, job_name: &str, job_uid: &str) {
    match state.jobs.get_mut(job_uid) {
        Some(rt) => rt.creating = false,
        None => return,
    }
    let key = ObjectKey::new(Resource::Jobs, namespace, job_name);
    let Some(job) = state.store.get(&key).cloned() else { return };
    let gave_up = condition_of(&job, "SuccessCriteriaMet").is_some() || condition_of(&job, "FailureTarget").is_some();
    if util::str_at(&job, "/metadata/uid") != Some(job_uid) || is_deleting(&job) || gave_up || is_finished(&job) {
        return;
    }
    // generateName is the Job's name and a dash, cut to leave room for 5
    // random characters within 63.
    let mut base = format!("{job_name}-");
    base.truncate(58);
    let name = loop {
        let candidate = format!("{base}{}", util::random_suffix(5));
        if state.store.get(&ObjectKey::new(Resource::Pods, namespace, &candidate)).is_none() {
            break candidate;
        }
    };
    let template = job.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
    let mut metadata = Map::new();
    metadata.insert("generateName".into(), json!(base));
    for field in ["labels", "annotations"] {
        if let Some(value) = template.pointer(&format!("/metadata/{field}")) {
            metadata.insert(field.into(), value.clone());
        }
    }
    metadata.insert(
        "ownerReferences".into(),
        json!([{
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": job_name,
            "uid": job_uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }]),
    );
    let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    if let Some(spec) = spec.as_object_mut() {
        for (field, value) in [
            ("serviceAccountName", json!("default")),
            ("serviceAccount", json!("default")),
            ("enableServiceLinks", json!(true)),
            ("priority", json!(0)),
            ("preemptionPolicy", json!("PreemptLowerPriority")),
        ] {
            spec.entry(field).or_insert(value);
        }
    }
    let qos = kubelet::qos_class(&spec);
    let pod = json!({
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": qos},
    });
    let pod = state.store.create(&ObjectKey::new(Resource::Pods, namespace, &name), pod);
    events::record(
        &mut state.store,
        &job,
        None,
        Severity::Normal,
        "SuccessfulCreate",
        &format!("Created pod: {name}"),
        JOB_CONTROLLER,
    );
    kubelet::start(shared, state, &pod);
    sync_job(shared, state, namespace, job_name);
}

/// Deletes a Job; `None` is the real server's default for batch/v1 Jobs,
/// which orphans the pods. Returns the Job as the response shows it.
pub(crate) fn delete_job(
    shared: &Arc<Shared>,
    state: &mut State,
    namespace: &str,
    name: &str,
    policy: Option<Propagation>,
) -> Result<Value, ApiError> {
    let key = ObjectKey::new(Resource::Jobs, namespace, name);
    let job = state.store.get(&key).cloned().ok_or_else(|| ApiError::not_found(Resource::Jobs, name))?;
    let uid = util::str_at(&job, "/metadata/uid").unwrap_or_default().to_owned();
    let pods: Vec<String> = owned_by(state, namespace, &uid)
        .into_iter()
        .filter_map(|p| util::str_at(p, "/metadata/name").map(str::to_owned))
        .collect();
    match policy.unwrap_or(Propagation::Orphan) {
        Propagation::Orphan => {
            for pod in &pods {
                state.store.modify(&ObjectKey::new(Resource::Pods, namespace, pod), |pod| {
                    if let Some(owners) = pod.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut) {
                        owners.retain(|o| util::str_at(o, "/uid") != Some(uid.as_str()));
                    }
                });
            }
            state.jobs.remove(&uid);
            state.store.remove(&key).ok_or_else(|| ApiError::not_found(Resource::Jobs, name))
        }
        Propagation::Background => {
            let removed = state.store.remove(&key).ok_or_else(|| ApiError::not_found(Resource::Jobs, name))?;
            state.jobs.remove(&uid);
            for pod in &pods {
                let _ = kubelet::delete_pod(shared, state, namespace, pod, None);
            }
            Ok(removed)
        }
        Propagation::Foreground => {
            if pods.is_empty() {
                state.jobs.remove(&uid);
                return state.store.remove(&key).ok_or_else(|| ApiError::not_found(Resource::Jobs, name));
            }
            let marked = state
                .store
                .modify(&key, |job| {
                    let meta = util::metadata(job);
                    meta.entry("deletionTimestamp").or_insert_with(|| json!(util::now()));
                    meta.insert("deletionGracePeriodSeconds".into(), json!(0));
                    let finalizers = meta.entry("finalizers").or_insert_with(|| json!([]));
                    if let Some(list) = finalizers.as_array_mut()
                        && !list.contains(&json!("foregroundDeletion"))
                    {
                        list.push(json!("foregroundDeletion"));
                    }
                })
                .ok_or_else(|| ApiError::not_found(Resource::Jobs, name))?;
            for pod in &pods {
                let _ = kubelet::delete_pod(shared, state, namespace, pod, None);
            }
            Ok(marked)
        }
    }
}
