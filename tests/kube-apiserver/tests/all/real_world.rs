//! The real-world triggers: inputs a real cluster reacts to in the same
//! way, with the same wording (bad image names, unreachable registries,
//! pull policies and the image cache, node selectors, memory limits and
//! quantities, the eviction API), so that end-to-end tests need no
//! `weft.test/behaviour` hook.

use std::pin::pin;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::{EvictParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::core::response::StatusSummary;
use serde_json::{Value, json};
use weft_kube_apiserver::{Config, DenyRule};

use crate::{
    NS, api_error, container_state, create_job, fast_config, job, job_conditions, job_pod, job_when, name_of, phase,
    process_alive, raw_request, scheduled_condition, start, start_with, waiting_reason,
};

/// [`job`] whose first container also gets `container`'s fields and whose
/// pod spec also gets `pod_spec`'s.
fn job_with(name: &str, command: &[&str], container: Value, pod_spec: Value) -> anyhow::Result<Job> {
    let mut job = serde_json::to_value(job(name, command, json!({}))?)?;
    for (path, fields) in [("/spec/template/spec/containers/0", container), ("/spec/template/spec", pod_spec)] {
        if let (Some(Value::Object(target)), Value::Object(fields)) = (job.pointer_mut(path), fields) {
            target.extend(fields);
        }
    }
    Ok(serde_json::from_value(job)?)
}

/// `(type, reason, message)` of the events about `involved`, oldest first.
async fn events_of(client: &kube::Client, involved: &str) -> anyhow::Result<Vec<(String, String, String)>> {
    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    let list = events.list(&ListParams::default().fields(&format!("involvedObject.name={involved}"))).await?;
    Ok(list
        .items
        .into_iter()
        .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect())
}

fn event(kind: &str, reason: &str, message: &str) -> (String, String, String) {
    (kind.to_owned(), reason.to_owned(), message.to_owned())
}

fn waiting_message(pod: &Pod) -> Option<String> {
    container_state(pod).ok()?.pointer("/waiting/message")?.as_str().map(str::to_owned)
}

#[tokio::test]
async fn an_invalid_image_name_waits_in_invalid_image_name() -> anyhow::Result<()> {
    let (_server, client) = start().await?;
    create_job(&client, &job_with("upper", &["true"], json!({"image": "Weft:Bad"}), json!({}))?).await?;
    let pod =
        job_pod(&client, "upper", "InvalidImageName", |p| waiting_reason(p).as_deref() == Some("InvalidImageName"))
            .await?;
    let message = "Failed to apply default image tag \"Weft:Bad\": couldn't parse image name \"Weft:Bad\": invalid reference format: repository name (library/Weft) must be lowercase";
    assert_eq!(waiting_message(&pod).as_deref(), Some(message));
    assert_eq!(phase(&pod), "Pending");
    let events = events_of(&client, &name_of(&pod)).await?;
    assert!(events.contains(&event("Warning", "InspectFailed", message)), "{events:?}");
    assert!(events.contains(&event("Warning", "Failed", "Error: InvalidImageName")), "{events:?}");
    assert!(!events.iter().any(|(_, reason, _)| reason == "Pulling"), "{events:?}");

    create_job(&client, &job_with("spaced", &["true"], json!({"image": "busy box:1"}), json!({}))?).await?;
    let pod =
        job_pod(&client, "spaced", "InvalidImageName", |p| waiting_reason(p).as_deref() == Some("InvalidImageName"))
            .await?;
    assert_eq!(
        waiting_message(&pod).as_deref(),
        Some(
            "Failed to apply default image tag \"busy box:1\": couldn't parse image name \"busy box:1\": invalid reference format"
        )
    );
    // It stays so.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    assert_eq!(waiting_reason(&pods.get(&name_of(&pod)).await?).as_deref(), Some("InvalidImageName"));
    Ok(())
}

#[tokio::test]
async fn an_image_from_an_invalid_registry_fails_to_pull_and_backs_off() -> anyhow::Result<()> {
    let (_server, client) = start().await?;
    let image = "registry.invalid/weft/weft:missing";
    create_job(&client, &job_with("unreachable", &["true"], json!({"image": image}), json!({}))?).await?;
    let pod = job_pod(&client, "unreachable", "ImagePullBackOff", |p| {
        waiting_reason(p).as_deref() == Some("ImagePullBackOff")
    })
    .await?;
    assert_eq!(waiting_message(&pod).as_deref(), Some(format!("Back-off pulling image \"{image}\"").as_str()));
    let error = "failed to pull and unpack image \"registry.invalid/weft/weft:missing\": failed to resolve reference \"registry.invalid/weft/weft:missing\": failed to do request: Head \"https://registry.invalid/v2/weft/weft/manifests/missing\": dial tcp: lookup registry.invalid: no such host";
    let events = events_of(&client, &name_of(&pod)).await?;
    for expected in [
        event("Normal", "Pulling", &format!("Pulling image \"{image}\"")),
        event("Warning", "Failed", &format!("Failed to pull image \"{image}\": {error}")),
        event("Warning", "Failed", "Error: ErrImagePull"),
        event("Normal", "BackOff", &format!("Back-off pulling image \"{image}\"")),
        event("Warning", "Failed", "Error: ImagePullBackOff"),
    ] {
        assert!(events.contains(&expected), "{expected:?} in {events:?}");
    }
    assert_eq!(phase(&pod), "Pending");
    Ok(())
}

#[tokio::test]
async fn the_node_caches_images_and_pull_policies_decide_when_to_pull() -> anyhow::Result<()> {
    let pull_delay = Duration::from_millis(500);
    let (_server, client) = start_with(Config { pull_delay, ..fast_config() }).await?;
    let pulls = |events: Vec<(String, String, String)>| -> Vec<(String, String, String)> {
        events.into_iter().filter(|(_, reason, _)| reason.starts_with("Pull")).collect()
    };

    // First use: pulled, which takes the pull delay, in ContainerCreating.
    let started = Instant::now();
    create_job(&client, &job("first", &["true"], json!({}))?).await?;
    job_pod(&client, "first", "ContainerCreating", |p| waiting_reason(p).as_deref() == Some("ContainerCreating"))
        .await?;
    let pod = job_pod(&client, "first", "a Succeeded pod", |p| phase(p) == "Succeeded").await?;
    assert!(started.elapsed() >= pull_delay);
    let first = pulls(events_of(&client, &name_of(&pod)).await?);
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(first[0], event("Normal", "Pulling", "Pulling image \"busybox:1.36\""));
    let (kind, reason, pulled) = &first[1];
    assert_eq!((kind.as_str(), reason.as_str()), ("Normal", "Pulled"));
    assert!(pulled.starts_with("Successfully pulled image \"busybox:1.36\" in "), "{pulled}");
    assert!(pulled.ends_with(" including waiting). Image size: 4270397 bytes."), "{pulled}");

    // Cached, and IfNotPresent (the default for a tag other than latest).
    create_job(&client, &job("second", &["true"], json!({}))?).await?;
    let pod = job_pod(&client, "second", "a Succeeded pod", |p| phase(p) == "Succeeded").await?;
    assert_eq!(
        pulls(events_of(&client, &name_of(&pod)).await?),
        vec![event("Normal", "Pulled", "Container image \"busybox:1.36\" already present on machine")]
    );

    // Always pulls again.
    create_job(&client, &job_with("always", &["true"], json!({"imagePullPolicy": "Always"}), json!({}))?).await?;
    let pod = job_pod(&client, "always", "a Succeeded pod", |p| phase(p) == "Succeeded").await?;
    let again = pulls(events_of(&client, &name_of(&pod)).await?);
    assert_eq!(again.first(), Some(&event("Normal", "Pulling", "Pulling image \"busybox:1.36\"")));
    assert!(again.get(1).is_some_and(|(_, _, m)| m.starts_with("Successfully pulled image")), "{again:?}");

    // Never: fine when cached, ErrImageNeverPull otherwise.
    let never = json!({"imagePullPolicy": "Never"});
    create_job(&client, &job_with("never-cached", &["true"], never.clone(), json!({}))?).await?;
    job_pod(&client, "never-cached", "a Succeeded pod", |p| phase(p) == "Succeeded").await?;
    let uncached = json!({"imagePullPolicy": "Never", "image": "busybox:1.37"});
    create_job(&client, &job_with("never", &["true"], uncached, json!({}))?).await?;
    let pod =
        job_pod(&client, "never", "ErrImageNeverPull", |p| waiting_reason(p).as_deref() == Some("ErrImageNeverPull"))
            .await?;
    let message = "Container image \"busybox:1.37\" is not present with pull policy of Never";
    assert_eq!(waiting_message(&pod).as_deref(), Some(message));
    let events = events_of(&client, &name_of(&pod)).await?;
    assert!(events.contains(&event("Warning", "ErrImageNeverPull", message)), "{events:?}");
    assert!(!events.iter().any(|(_, reason, _)| reason == "Pulling"), "{events:?}");

    // The server defaults the policy as the real one does.
    let latest = create_job(&client, &job_with("latest", &["true"], json!({"image": "busybox"}), json!({}))?).await?;
    let policy = latest
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.containers.first().and_then(|c| c.image_pull_policy.clone()));
    assert_eq!(policy.as_deref(), Some("Always"));
    Ok(())
}

#[tokio::test]
async fn a_node_selector_the_node_does_not_match_leaves_the_pod_unschedulable() -> anyhow::Result<()> {
    let mut config = fast_config();
    config.node_labels.insert("weft.dev/pool".to_owned(), "flows".to_owned());
    let (_server, client) = start_with(config).await?;
    let ssd = json!({"nodeSelector": {"disktype": "ssd"}});
    create_job(&client, &job_with("nowhere", &["true"], json!({}), ssd)?).await?;
    let pod = job_pod(&client, "nowhere", "an unschedulable pod", |p| scheduled_condition(p).is_some()).await?;
    let message = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";
    assert_eq!(
        scheduled_condition(&pod),
        Some(("False".to_owned(), Some("Unschedulable".to_owned()), Some(message.to_owned())))
    );
    assert_eq!(phase(&pod), "Pending");
    assert!(pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none());
    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    let failed = events
        .list(&ListParams::default().fields(&format!("involvedObject.name={},reason=FailedScheduling", name_of(&pod))))
        .await?
        .items;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].type_.as_deref(), Some("Warning"));
    assert_eq!(failed[0].message.as_deref(), Some(message));
    assert_eq!(failed[0].source.as_ref().and_then(|s| s.component.as_deref()), Some("default-scheduler"));

    // The node's labels, the well-known ones and the configured ones.
    let matching = json!({"nodeSelector": {
        "weft.dev/pool": "flows",
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": "weft-test-node",
    }});
    create_job(&client, &job_with("somewhere", &["true"], json!({}), matching)?).await?;
    job_pod(&client, "somewhere", "a Succeeded pod", |p| phase(p) == "Succeeded").await?;
    Ok(())
}

#[tokio::test]
async fn a_container_past_its_memory_limit_is_oom_killed() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let limit = json!({"resources": {"limits": {"memory": "64Mi"}}});
    let grow = ["python3", "-c", "import time; b = bytearray(300 * 1024 * 1024); time.sleep(30)"];
    create_job(&client, &job_with("hungry", &grow, limit.clone(), json!({}))?).await?;
    let pod = job_pod(&client, "hungry", "a Failed pod", |p| phase(p) == "Failed").await?;
    let state = container_state(&pod)?;
    assert_eq!(state.pointer("/terminated/reason"), Some(&json!("OOMKilled")));
    assert_eq!(state.pointer("/terminated/exitCode"), Some(&json!(137)));
    assert!(server.running_processes().is_empty());
    let failed =
        job_when(&client, "hungry", "a Failed job", |j| job_conditions(j).iter().any(|(kind, _)| kind == "Failed"))
            .await?;
    assert_eq!(failed.status.and_then(|s| s.failed), Some(1));

    // Within the limit, nothing happens.
    let fits = ["python3", "-c", "b = bytearray(8 * 1024 * 1024); print('fits')"];
    create_job(&client, &job_with("modest", &fits, limit, json!({}))?).await?;
    job_pod(&client, "modest", "a Succeeded pod", |p| phase(p) == "Succeeded").await?;
    Ok(())
}

#[tokio::test]
async fn memory_quantities_are_checked_as_the_real_server_checks_them() -> anyhow::Result<()> {
    let (_server, client) = start().await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let with_memory = |name: &str, memory: &str| {
        job_with(name, &["true"], json!({"resources": {"limits": {"memory": memory}}}), json!({}))
    };
    // A quantity that does not parse fails the decoding: 400, no field.
    let bad = jobs.create(&PostParams::default(), &with_memory("lots", "lots")?).await.err().context("no 400")?;
    let bad = api_error(bad)?;
    assert_eq!((bad.code, bad.reason.as_str()), (400, "BadRequest"));
    assert_eq!(
        bad.message,
        "Job in version \"v1\" cannot be handled as a Job: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
    let bad = jobs.create(&PostParams::default(), &with_memory("suffix", "64MM")?).await.err().context("no 400")?;
    assert_eq!(
        api_error(bad)?.message,
        "Job in version \"v1\" cannot be handled as a Job: unable to parse quantity's suffix"
    );
    // A negative one fails validation: 422 naming the field.
    let negative =
        jobs.create(&PostParams::default(), &with_memory("negative", "-64Mi")?).await.err().context("no 422")?;
    let negative = api_error(negative)?;
    assert_eq!((negative.code, negative.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        negative.message,
        "Job.batch \"negative\" is invalid: spec.template.spec.containers[0].resources.limits[memory]: Invalid value: \"-64Mi\": must be greater than or equal to 0"
    );
    let fields: Vec<String> = negative.details.iter().flat_map(|d| d.causes.iter().map(|c| c.field.clone())).collect();
    assert_eq!(fields, vec!["spec.template.spec.containers[0].resources.limits[memory]"]);
    for memory in ["64Mi", "1G", "1e9", "128974848", "500k"] {
        jobs.create(&PostParams::default(), &with_memory(&format!("ok-{}", memory.to_lowercase()), memory)?).await?;
    }
    Ok(())
}

/// `(reason, message)` of a pod's True DisruptionTarget condition.
fn disruption_target(pod: &Pod) -> Option<(String, String)> {
    let condition = pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "DisruptionTarget")?;
    (condition.status == "True")
        .then(|| (condition.reason.clone().unwrap_or_default(), condition.message.clone().unwrap_or_default()))
}

#[tokio::test]
async fn eviction_marks_the_pod_a_disruption_target_then_deletes_it() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    create_job(&client, &job("evicted", &["sleep", "30"], json!({}))?).await?;
    let pod = job_pod(&client, "evicted", "a Running pod", |p| phase(p) == "Running").await?;
    let name = name_of(&pod);
    let pid = server.pod_pid(NS, &name).context("no process")?;
    let rv = pods.get(&name).await?.metadata.resource_version.unwrap_or_default();
    let params = WatchParams::default().fields(&format!("metadata.name={name}")).timeout(10);
    let mut watch = pin!(pods.watch(&params, &rv).await?.boxed());

    let status = pods.evict(&name, &EvictParams::default()).await?;
    assert_eq!(status.status, Some(StatusSummary::Success));
    // First the condition, then the deletionTimestamp, the container's
    // end, and the removal.
    let mut modified = Vec::new();
    let mut deleted = false;
    while let Some(event) = watch.next().await {
        match event? {
            WatchEvent::Modified(pod) => modified.push((
                disruption_target(&pod),
                pod.metadata.deletion_timestamp.is_some(),
                phase(&pod).to_owned(),
            )),
            WatchEvent::Deleted(_) => {
                deleted = true;
                break;
            }
            _ => {}
        }
    }
    let target = Some(("EvictionByEvictionAPI".to_owned(), "Eviction API: evicting".to_owned()));
    assert_eq!(modified.first(), Some(&(target.clone(), false, "Running".to_owned())), "{modified:?}");
    assert_eq!(modified.get(1), Some(&(target.clone(), true, "Running".to_owned())), "{modified:?}");
    assert!(modified.contains(&(target, true, "Failed".to_owned())), "{modified:?}");
    assert!(deleted);
    assert!(!process_alive(pid), "the process survived");
    job_when(&client, "evicted", "a Failed job", |j| job_conditions(j).iter().any(|(kind, _)| kind == "Failed"))
        .await?;

    let missing = api_error(pods.evict("nope", &EvictParams::default()).await.err().context("no 404")?)?;
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(missing.message, "pods \"nope\" not found");

    create_job(&client, &job("kept", &["sleep", "30"], json!({}))?).await?;
    let pod = job_pod(&client, "kept", "a Running pod", |p| phase(p) == "Running").await?;
    let name = name_of(&pod);
    server.deny(DenyRule::new("create", "pods/eviction", NS));
    let denied = api_error(pods.evict(&name, &EvictParams::default()).await.err().context("no 403")?)?;
    assert_eq!((denied.code, denied.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        denied.message,
        format!(
            "pods \"{name}\" is forbidden: User \"system:serviceaccount:weft:weft-agent\" cannot create resource \"pods/eviction\" in API group \"\" in the namespace \"flows\""
        )
    );
    let kept = pods.get(&name).await?;
    assert!(disruption_target(&kept).is_none() && kept.metadata.deletion_timestamp.is_none());
    Ok(())
}

#[tokio::test]
async fn eviction_over_http_answers_201_and_honours_the_grace_period() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    create_job(&client, &job("evicted-now", &["sleep", "30"], json!({}))?).await?;
    let pod = job_pod(&client, "evicted-now", "a Running pod", |p| phase(p) == "Running").await?;
    let name = name_of(&pod);
    let path = format!("/api/v1/namespaces/{NS}/pods/{name}/eviction");

    let wrong = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "other"}});
    let (code, body) = raw_request(&server, "POST", &path, &wrong.to_string()).await?;
    assert_eq!(code, 400);
    let body: Value = serde_json::from_str(&body)?;
    assert_eq!(body["message"], "name in URL does not match name in Eviction object");

    let eviction = json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": NS},
        "deleteOptions": {"gracePeriodSeconds": 0},
    });
    let (code, body) = raw_request(&server, "POST", &path, &eviction.to_string()).await?;
    assert_eq!(code, 201);
    let body: Value = serde_json::from_str(&body)?;
    assert_eq!(body, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}));
    // Grace 0: gone at once.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    assert!(pods.get_opt(&name).await?.is_none());

    let (code, _) = raw_request(&server, "GET", &path, "").await?;
    assert_eq!(code, 405);
    Ok(())
}
