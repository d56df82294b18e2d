//! What a flow run's Job and pod say about it: still starting, running,
//! ended, or crashed and why. Pure: the watcher feeds it the latest objects.
//!
//! The rules are the ones Prefect users ask for: a pod still pulling its
//! image within the pod watch timeout is not crashed; an image that cannot be
//! pulled, a pod that cannot be scheduled, is crashed only after it; an
//! OOM kill names the memory limit; an eviction or preemption says so; a Job
//! deleted from outside weft is a crash, not a silence.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};

/// What the agent should make of a run's Job and pod now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not started yet, or running: keep watching.
    Going,
    /// The flow container ended (the runner records the outcome itself; if
    /// it did not, the run crashed with this description).
    Ended {
        /// `exit code 0`, `exit code 3`.
        description: String,
    },
    /// The infrastructure failed the run.
    Crashed {
        /// Why, for a person.
        reason: String,
    },
}

/// The first container's terminated state, if it has ended.
fn terminated(pod: &Pod) -> Option<&ContainerStateTerminated> {
    pod.status.as_ref()?.container_statuses.as_ref()?.first()?.state.as_ref()?.terminated.as_ref()
}

fn memory_limit(pod: &Pod) -> Option<String> {
    let container = pod.spec.as_ref()?.containers.first()?;
    container.resources.as_ref()?.limits.as_ref()?.get("memory").map(|q| q.0.clone())
}

/// Why Kubernetes disrupted a pod, from its `DisruptionTarget` condition.
fn disruption(reason: &str, message: &str) -> String {
    let what = match reason {
        "EvictionByEvictionAPI" => "the pod was evicted".to_owned(),
        "PreemptionByScheduler" => "the pod was preempted".to_owned(),
        "DeletionByTaintManager" => "the pod was evicted by a taint on its node".to_owned(),
        "DeletionByPodGC" => "the pod was deleted by the pod garbage collector (its node is gone)".to_owned(),
        "TerminationByKubelet" => "the pod was stopped by its node".to_owned(),
        other => format!("the pod was stopped by Kubernetes ({other})"),
    };
    if message.is_empty() { what } else { format!("{what}: {message}") }
}

/// Judges a run from its Job and pod. `job_deleted` says the Job was
/// deleted by someone other than weft; `age` is how long ago the Job was
/// created; `pod_watch_timeout` how long a pod may take to start. A pod that
/// was deleted is still passed, as it was last seen.
///
/// The rules run from the most to the least specific cause: the Job's
/// deletion or deadline, then the pod's disruption (eviction, preemption),
/// its deletion from outside, its container's end (OOMKilled named), its
/// image and scheduling troubles once the pod watch timeout has passed.
pub fn diagnose(
    job: Option<&Job>,
    pod: Option<&Pod>,
    job_deleted: bool,
    age: Duration,
    pod_watch_timeout: Duration,
) -> Verdict {
    let job_failed = |wanted: Option<&str>| {
        job.and_then(|j| j.status.as_ref()).and_then(|s| s.conditions.as_ref()).and_then(|c| {
            c.iter().find(|c| {
                c.type_ == "Failed" && c.status == "True" && (wanted.is_none() || c.reason.as_deref() == wanted)
            })
        })
    };
    if job_deleted {
        return Verdict::Crashed { reason: "its Job was deleted from outside weft".into() };
    }
    if job_failed(Some("DeadlineExceeded")).is_some() {
        return Verdict::Crashed { reason: "the Job ran past its activeDeadlineSeconds".into() };
    }
    if let Some(pod) = pod {
        let status = pod.status.as_ref();
        let reason = status.and_then(|s| s.reason.as_deref());
        if matches!(reason, Some("Evicted" | "Preempting")) {
            let message = status.and_then(|s| s.message.clone()).unwrap_or_default();
            let what = if reason == Some("Evicted") { "evicted" } else { "preempted" };
            return Verdict::Crashed {
                reason: format!("the pod was {what}: {message}").trim_end_matches([':', ' ']).to_owned(),
            };
        }
        if let Some(condition) = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "DisruptionTarget" && c.status == "True"))
        {
            let why = condition.reason.as_deref().unwrap_or("disrupted");
            return Verdict::Crashed { reason: disruption(why, condition.message.as_deref().unwrap_or_default()) };
        }
        // A pod being deleted while its Job stands (and is within its
        // deadline) was deleted by a person or a tool, not by weft, which
        // deletes the Job.
        let deleted_from_outside = pod.metadata.deletion_timestamp.is_some() && job.is_some();
        if let Some(done) = terminated(pod) {
            if done.reason.as_deref() == Some("OOMKilled") {
                let limit = memory_limit(pod).map(|l| format!(" of {l}")).unwrap_or_default();
                return Verdict::Crashed {
                    reason: format!(
                        "the flow container was OOMKilled (exit code {}): it went past its memory limit{limit}; raise the job variable `memory_limit`",
                        done.exit_code
                    ),
                };
            }
            if deleted_from_outside {
                return Verdict::Crashed {
                    reason: format!(
                        "its pod was deleted from outside weft (the runner's exit code was {})",
                        done.exit_code
                    ),
                };
            }
            return Verdict::Ended { description: format!("exit code {}", done.exit_code) };
        }
        if deleted_from_outside {
            // Still stopping: its last lines come once it has ended.
            return Verdict::Going;
        }
        let waiting = status
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.waiting.as_ref());
        let image =
            pod.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.clone()).unwrap_or_default();
        if let Some(waiting) = waiting {
            let why = waiting.reason.as_deref().unwrap_or_default();
            let message = waiting.message.clone().unwrap_or_default();
            match why {
                "InvalidImageName" => {
                    return Verdict::Crashed {
                        reason: format!("the image `{image}` is not a valid image name: {message}"),
                    };
                }
                "ErrImagePull" | "ImagePullBackOff" if age >= pod_watch_timeout => {
                    return Verdict::Crashed {
                        reason: format!(
                            "the image `{image}` could not be pulled ({why}): {message}; check the image name and the image pull secrets"
                        ),
                    };
                }
                "CreateContainerConfigError" | "CreateContainerError" if age >= pod_watch_timeout => {
                    return Verdict::Crashed {
                        reason: format!("the flow container could not be created ({why}): {message}"),
                    };
                }
                _ => {}
            }
        }
        let phase = status.and_then(|s| s.phase.as_deref());
        if phase == Some("Pending") && age >= pod_watch_timeout {
            let scheduler = status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled" && c.status == "False"))
                .and_then(|c| c.message.clone());
            let waited = humantime::format_duration(Duration::from_secs(pod_watch_timeout.as_secs()));
            return Verdict::Crashed {
                reason: match scheduler {
                    Some(message) => format!("the pod never started within {waited}: {message}"),
                    None => format!("the pod never started within {waited}"),
                },
            };
        }
        if phase == Some("Failed") {
            let message = status.and_then(|s| s.message.clone()).unwrap_or_else(|| "the pod failed".into());
            return Verdict::Crashed { reason: message };
        }
    }
    if pod.is_none()
        && let Some(failed) = job_failed(None)
    {
        let message = failed.message.clone().unwrap_or_default();
        return Verdict::Crashed { reason: format!("the Job failed: {message}") };
    }
    if job.is_some() && pod.is_none() && age >= pod_watch_timeout {
        return Verdict::Crashed {
            reason: format!(
                "the Job made no pod within {}; see the Job's events (quota, admission webhooks)",
                humantime::format_duration(Duration::from_secs(pod_watch_timeout.as_secs()))
            ),
        };
    }
    Verdict::Going
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(300);

    fn pod(value: serde_json::Value) -> Pod {
        let mut base = json!({
            "metadata": {"name": "weft-x-1"},
            "spec": {"containers": [{"name": "flow", "image": "ghcr.io/weft-dev/weft:0.1.0",
                                     "resources": {"limits": {"memory": "1Gi"}}}]},
        });
        if let (Some(base), Some(extra)) = (base.as_object_mut(), value.as_object()) {
            base.extend(extra.clone());
        }
        serde_json::from_value(base).expect("a pod")
    }

    fn job(conditions: serde_json::Value) -> Job {
        serde_json::from_value(json!({"metadata": {"name": "weft-x"}, "status": {"conditions": conditions}}))
            .expect("a job")
    }

    fn waiting(reason: &str, message: &str) -> Pod {
        pod(json!({"status": {"phase": "Pending", "containerStatuses": [{
            "name": "flow", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": message}}}]}}))
    }

    fn verdict(job: Option<&Job>, pod: Option<&Pod>, age: u64) -> Verdict {
        diagnose(job, pod, false, Duration::from_secs(age), TIMEOUT)
    }

    #[test]
    fn a_pod_pulling_its_image_within_the_timeout_is_not_crashed() {
        let pulling = waiting("ContainerCreating", "");
        assert_eq!(verdict(None, Some(&pulling), 200), Verdict::Going);
        let failing = waiting("ImagePullBackOff", "Back-off pulling image \"nope:1\"");
        assert_eq!(verdict(None, Some(&failing), 200), Verdict::Going, "still within the timeout");
        let Verdict::Crashed { reason } = verdict(None, Some(&failing), 301) else {
            panic!("crashed after the timeout")
        };
        assert!(
            reason.starts_with(
                "the image `ghcr.io/weft-dev/weft:0.1.0` could not be pulled (ImagePullBackOff): Back-off"
            ),
            "{reason}"
        );
        let Verdict::Crashed { reason } = verdict(None, Some(&waiting("InvalidImageName", "bad")), 1) else {
            panic!("at once")
        };
        assert!(reason.contains("is not a valid image name"), "{reason}");
    }

    #[test]
    fn an_unschedulable_pod_crashes_after_the_timeout_with_the_scheduler_message() {
        let pending = pod(json!({"status": {"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient memory."}]}}));
        assert_eq!(verdict(None, Some(&pending), 10), Verdict::Going);
        assert_eq!(
            verdict(None, Some(&pending), 300),
            Verdict::Crashed {
                reason: "the pod never started within 5m: 0/3 nodes are available: 3 Insufficient memory.".into()
            }
        );
    }

    #[test]
    fn oom_eviction_preemption_and_outside_deletion_are_named() {
        let oom = pod(json!({"status": {"phase": "Failed", "containerStatuses": [{
            "name": "flow", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}}));
        let Verdict::Crashed { reason } = verdict(None, Some(&oom), 30) else { panic!("oom") };
        assert!(reason.contains("OOMKilled") && reason.contains("memory limit of 1Gi"), "{reason}");

        let evicted = pod(
            json!({"status": {"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}}),
        );
        assert_eq!(
            verdict(None, Some(&evicted), 30),
            Verdict::Crashed { reason: "the pod was evicted: The node was low on resource: memory.".into() }
        );
        let preempted = pod(json!({"status": {"phase": "Running", "conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler", "message": "a higher priority pod"}]}}));
        assert_eq!(
            verdict(None, Some(&preempted), 30),
            Verdict::Crashed { reason: "the pod was preempted: a higher priority pod".into() }
        );
        let drained = pod(json!({"status": {"phase": "Running", "conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"}]}}));
        assert_eq!(
            verdict(None, Some(&drained), 30),
            Verdict::Crashed { reason: "the pod was evicted: Eviction API: evicting".into() }
        );

        assert_eq!(
            diagnose(None, None, true, Duration::from_secs(5), TIMEOUT),
            Verdict::Crashed { reason: "its Job was deleted from outside weft".into() }
        );
    }

    #[test]
    fn a_pod_deleted_from_outside_is_named_once_it_has_ended() {
        let stopping = pod(json!({"metadata": {"name": "weft-x-1", "deletionTimestamp": "2026-11-22T10:00:00Z"},
            "status": {"phase": "Running"}}));
        let standing = job(json!([]));
        assert_eq!(verdict(Some(&standing), Some(&stopping), 30), Verdict::Going, "its last lines are still to come");
        let stopped = pod(json!({"metadata": {"name": "weft-x-1", "deletionTimestamp": "2026-11-22T10:00:00Z"},
            "status": {"phase": "Failed", "containerStatuses": [{
                "name": "flow", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 143, "reason": "Error"}}}]}}));
        assert_eq!(
            verdict(Some(&standing), Some(&stopped), 30),
            Verdict::Crashed {
                reason: "its pod was deleted from outside weft (the runner's exit code was 143)".into()
            }
        );
        // Deleted with its Job: the Job's deletion is the cause.
        assert_eq!(
            diagnose(None, Some(&stopped), true, Duration::from_secs(30), TIMEOUT),
            Verdict::Crashed { reason: "its Job was deleted from outside weft".into() }
        );
        // Deleted by the Job's controller at the deadline.
        let deadline = job(json!([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]));
        assert_eq!(
            verdict(Some(&deadline), Some(&stopped), 30),
            Verdict::Crashed { reason: "the Job ran past its activeDeadlineSeconds".into() }
        );
    }

    #[test]
    fn an_ended_container_reports_its_exit_code_and_deadlines_are_named() {
        let done = pod(json!({"status": {"phase": "Failed", "containerStatuses": [{
            "name": "flow", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}]}}));
        assert_eq!(verdict(None, Some(&done), 30), Verdict::Ended { description: "exit code 3".into() });
        let deadline = job(json!([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]));
        assert_eq!(
            verdict(Some(&deadline), None, 30),
            Verdict::Crashed { reason: "the Job ran past its activeDeadlineSeconds".into() }
        );
        let running = pod(json!({"status": {"phase": "Running"}}));
        assert_eq!(verdict(Some(&job(json!([]))), Some(&running), 1000), Verdict::Going);
        let Verdict::Crashed { reason } = verdict(Some(&job(json!([]))), None, 301) else { panic!("no pod") };
        assert!(reason.starts_with("the Job made no pod within 5m"), "{reason}");
    }
}
