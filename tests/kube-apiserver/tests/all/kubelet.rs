//! The simulated job controller and kubelet: processes, logs, statuses,
//! deletion, deadlines, TTL and the test hooks.

use std::pin::pin;
use std::time::Duration;

use futures::{AsyncBufReadExt as _, StreamExt as _, TryStreamExt as _};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, LogParams, WatchEvent, WatchParams};
use serde_json::json;
use weft_kube_apiserver::{Behaviour, Resource};

use crate::{
    NS, container_state, create_job, eventually, job, job_conditions, job_pod, job_when, name_of, phase, process_alive,
    scheduled_condition, start, waiting_reason,
};

async fn event_reasons(client: &kube::Client, involved: &str) -> anyhow::Result<Vec<String>> {
    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    let list = events.list(&ListParams::default().fields(&format!("involvedObject.name={involved}"))).await?;
    Ok(list.items.into_iter().filter_map(|e| e.reason).collect())
}

#[tokio::test]
async fn a_failing_command_fails_the_pod_and_the_job_and_leaves_its_log() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    create_job(&client, &job("fails", &["sh", "-c", "echo hello; exit 3"], json!({}))?).await?;
    let pod = job_pod(&client, "fails", "a Failed pod", |p| phase(p) == "Failed").await?;
    let terminated = container_state(&pod)?;
    assert_eq!(terminated.pointer("/terminated/exitCode"), Some(&json!(3)));
    assert_eq!(terminated.pointer("/terminated/reason"), Some(&json!("Error")));
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let log = pods.logs(&name_of(&pod), &LogParams::default()).await?;
    assert_eq!(log, "hello\n");
    assert_eq!(server.pod_log(NS, &name_of(&pod)).as_deref(), Some("hello\n"));
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("job-name").map(String::as_str), Some("fails"));
    assert_eq!(labels.get("batch.kubernetes.io/job-name").map(String::as_str), Some("fails"));
    let owner = pod.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owner.first().map(|o| (o.kind.as_str(), o.name.as_str())), Some(("Job", "fails")));

    let failed =
        job_when(&client, "fails", "a Failed job", |j| job_conditions(j).iter().any(|(kind, _)| kind == "Failed"))
            .await?;
    let conditions = job_conditions(&failed);
    assert!(conditions.contains(&("FailureTarget".to_owned(), "BackoffLimitExceeded".to_owned())), "{conditions:?}");
    assert!(conditions.contains(&("Failed".to_owned(), "BackoffLimitExceeded".to_owned())), "{conditions:?}");
    let status = failed.status.clone().unwrap_or_default();
    assert_eq!((status.failed, status.active, status.succeeded), (Some(1), None, None));
    assert!(status.start_time.is_some());
    assert!(status.completion_time.is_none());
    assert!(event_reasons(&client, "fails").await?.contains(&"BackoffLimitExceeded".to_owned()));
    Ok(())
}

#[tokio::test]
async fn a_succeeding_command_completes_the_job_with_env_from_secrets() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    server.put_secret(NS, "creds", &[("TOKEN", "s3cret")]);
    let mut succeeds =
        job("succeeds", &["sh", "-c", "echo \"$TOKEN $ONE $X_TOKEN ${CARGO_MANIFEST_DIR:-clean}\" >&2"], json!({}))?;
    if let Some(container) =
        succeeds.spec.as_mut().and_then(|s| s.template.spec.as_mut()).and_then(|s| s.containers.first_mut())
    {
        container.env = Some(serde_json::from_value(json!([
            {"name": "ONE", "value": "1"},
            {"name": "X_TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "TOKEN"}}},
        ]))?);
        container.env_from = Some(serde_json::from_value(json!([{"secretRef": {"name": "creds"}}]))?);
    }
    // cargo sets CARGO_MANIFEST_DIR for this test process; the container
    // must not see it, as it sees only PATH, HOME and its own env.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    create_job(&client, &succeeds).await?;
    let pod = job_pod(&client, "succeeds", "a Succeeded pod", |p| phase(p) == "Succeeded").await?;
    assert_eq!(container_state(&pod)?.pointer("/terminated/reason"), Some(&json!("Completed")));
    assert_eq!(pods.logs(&name_of(&pod), &LogParams::default()).await?, "s3cret 1 s3cret clean\n");
    let tail = LogParams { tail_lines: Some(1), container: Some("main".to_owned()), ..LogParams::default() };
    assert_eq!(pods.logs(&name_of(&pod), &tail).await?, "s3cret 1 s3cret clean\n");
    let done = job_when(&client, "succeeds", "a Complete job", |j| {
        job_conditions(j).iter().any(|(kind, _)| kind == "Complete")
    })
    .await?;
    let status = done.status.clone().unwrap_or_default();
    assert_eq!(status.succeeded, Some(1));
    assert!(status.completion_time.is_some());
    assert!(job_conditions(&done).contains(&("SuccessCriteriaMet".to_owned(), "CompletionsReached".to_owned())));
    Ok(())
}

#[tokio::test]
async fn a_missing_secret_holds_the_container_in_create_container_config_error() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let mut waits = job("waits", &["true"], json!({}))?;
    if let Some(container) =
        waits.spec.as_mut().and_then(|s| s.template.spec.as_mut()).and_then(|s| s.containers.first_mut())
    {
        container.env_from = Some(serde_json::from_value(json!([{"secretRef": {"name": "later"}}]))?);
    }
    create_job(&client, &waits).await?;
    let pod = job_pod(&client, "waits", "CreateContainerConfigError", |p| {
        container_state(p).ok().and_then(|s| s.pointer("/waiting/reason").cloned())
            == Some(json!("CreateContainerConfigError"))
    })
    .await?;
    assert_eq!(container_state(&pod)?.pointer("/waiting/message"), Some(&json!("secret \"later\" not found")));
    server.put_secret(NS, "later", &[("K", "v")]);
    job_pod(&client, "waits", "a Succeeded pod once the Secret exists", |p| phase(p) == "Succeeded").await?;
    Ok(())
}

#[tokio::test]
async fn background_deletion_kills_the_process_and_removes_the_pod() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    create_job(&client, &job("long", &["sleep", "30"], json!({}))?).await?;
    let pod = job_pod(&client, "long", "a Running pod", |p| phase(p) == "Running").await?;
    let name = name_of(&pod);
    let pid = server.pod_pid(NS, &name).ok_or_else(|| anyhow::anyhow!("no process"))?;
    assert!(process_alive(pid));
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let rv = pods.get(&name).await?.metadata.resource_version.unwrap_or_default();
    let params = WatchParams::default().fields(&format!("metadata.name={name}")).timeout(5);
    let mut watch = pin!(pods.watch(&params, &rv).await?.boxed());
    jobs.delete("long", &DeleteParams::background()).await?;
    assert!(jobs.get_opt("long").await?.is_none());
    // First the deletionTimestamp, then the container's end, then the removal.
    let mut seen = Vec::new();
    while let Some(event) = watch.next().await {
        match event? {
            WatchEvent::Modified(pod) => {
                assert!(pod.metadata.deletion_timestamp.is_some());
                seen.push(format!("MODIFIED {}", phase(&pod)));
            }
            WatchEvent::Deleted(_) => {
                seen.push("DELETED".to_owned());
                break;
            }
            _ => {}
        }
    }
    assert_eq!(seen.first().map(String::as_str), Some("MODIFIED Running"));
    assert_eq!(seen.last().map(String::as_str), Some("DELETED"));
    assert!(seen.contains(&"MODIFIED Failed".to_owned()), "{seen:?}");
    assert!(pods.get_opt(&name).await?.is_none());
    assert!(!process_alive(pid), "the process survived");
    assert!(server.running_processes().is_empty());
    assert!(event_reasons(&client, &name).await?.contains(&"Killing".to_owned()));
    Ok(())
}

#[tokio::test]
async fn orphan_and_foreground_deletion_follow_the_real_semantics() -> anyhow::Result<()> {
    let (_server, client) = start().await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    create_job(&client, &job("orphaned", &["sleep", "30"], json!({}))?).await?;
    let pod = job_pod(&client, "orphaned", "a Running pod", |p| phase(p) == "Running").await?;
    // No policy: the batch/v1 default orphans the pods.
    jobs.delete("orphaned", &DeleteParams::default()).await?;
    assert!(jobs.get_opt("orphaned").await?.is_none());
    let kept = pods.get(&name_of(&pod)).await?;
    assert_eq!(phase(&kept), "Running");
    assert!(kept.metadata.owner_references.unwrap_or_default().is_empty());

    create_job(&client, &job("foreground", &["sleep", "30"], json!({}))?).await?;
    let pod = job_pod(&client, "foreground", "a Running pod", |p| phase(p) == "Running").await?;
    let deleting = jobs.delete("foreground", &DeleteParams::foreground()).await?;
    let marked = deleting.left().ok_or_else(|| anyhow::anyhow!("foreground deletion returned a Status"))?;
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert!(marked.metadata.finalizers.unwrap_or_default().contains(&"foregroundDeletion".to_owned()));
    let name = name_of(&pod);
    eventually(5.0, "pod and job gone", || async {
        Ok((pods.get_opt(&name).await?.is_none() && jobs.get_opt("foreground").await?.is_none()).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn active_deadline_and_ttl_are_honoured() -> anyhow::Result<()> {
    let (_server, client) = start().await?;
    let mut deadline = job("deadline", &["sleep", "30"], json!({}))?;
    if let Some(spec) = deadline.spec.as_mut() {
        spec.active_deadline_seconds = Some(1);
    }
    create_job(&client, &deadline).await?;
    let failed = job_when(&client, "deadline", "DeadlineExceeded", |j| {
        job_conditions(j).contains(&("Failed".to_owned(), "DeadlineExceeded".to_owned()))
    })
    .await?;
    assert_eq!(failed.status.and_then(|s| s.active), None);

    let mut ttl = job("ttl", &["true"], json!({}))?;
    if let Some(spec) = ttl.spec.as_mut() {
        spec.ttl_seconds_after_finished = Some(0);
    }
    create_job(&client, &ttl).await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    eventually(5.0, "the finished job and its pod deleted", || async {
        let pods_left = pods.list(&ListParams::default().labels("job-name=ttl")).await?.items.len();
        Ok((jobs.get_opt("ttl").await?.is_none() && pods_left == 0).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn backoff_limit_allows_replacement_pods() -> anyhow::Result<()> {
    let (_server, client) = start().await?;
    let mut retried = job("retried", &["false"], json!({}))?;
    if let Some(spec) = retried.spec.as_mut() {
        spec.backoff_limit = Some(1);
    }
    create_job(&client, &retried).await?;
    let failed =
        job_when(&client, "retried", "a Failed job", |j| job_conditions(j).iter().any(|(kind, _)| kind == "Failed"))
            .await?;
    assert_eq!(failed.status.and_then(|s| s.failed), Some(2));
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    assert_eq!(pods.list(&ListParams::default().labels("job-name=retried")).await?.items.len(), 2);
    Ok(())
}

#[tokio::test]
async fn pending_pods_are_unschedulable_until_released() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    create_job(&client, &job("pending", &["true"], json!({"weft.test/behaviour": "pending"}))?).await?;
    let pod = job_pod(&client, "pending", "an unschedulable pod", |p| scheduled_condition(p).is_some()).await?;
    assert_eq!(phase(&pod), "Pending");
    assert_eq!(
        scheduled_condition(&pod),
        Some((
            "False".to_owned(),
            Some("Unschedulable".to_owned()),
            Some("0/3 nodes are available: 3 Insufficient memory.".to_owned())
        ))
    );
    assert!(event_reasons(&client, &name_of(&pod)).await?.contains(&"FailedScheduling".to_owned()));
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let log_error = pods.logs(&name_of(&pod), &LogParams::default()).await.err();
    assert!(
        matches!(log_error, Some(kube::Error::Api(status)) if status.code == 400 && status.message.contains("is waiting to start"))
    );
    server.trigger(NS, &name_of(&pod), Behaviour::Normal)?;
    job_pod(&client, "pending", "a Succeeded pod once released", |p| phase(p) == "Succeeded").await?;
    Ok(())
}

#[tokio::test]
async fn slow_pulls_wait_in_container_creating() -> anyhow::Result<()> {
    let (_server, client) = start().await?;
    create_job(&client, &job("slow", &["true"], json!({"weft.test/behaviour": "slow-pull:0.6"}))?).await?;
    let pod =
        job_pod(&client, "slow", "ContainerCreating", |p| waiting_reason(p).as_deref() == Some("ContainerCreating"))
            .await?;
    assert_eq!(phase(&pod), "Pending");
    assert!(event_reasons(&client, &name_of(&pod)).await?.contains(&"Pulling".to_owned()));
    job_pod(&client, "slow", "a Succeeded pod after the pull", |p| phase(p) == "Succeeded").await?;
    Ok(())
}

#[tokio::test]
async fn image_pull_errors_back_off() -> anyhow::Result<()> {
    let (_server, client) = start().await?;
    create_job(&client, &job("pull", &["true"], json!({"weft.test/behaviour": "image-pull-error"}))?).await?;
    let pod =
        job_pod(&client, "pull", "ImagePullBackOff", |p| waiting_reason(p).as_deref() == Some("ImagePullBackOff"))
            .await?;
    assert_eq!(
        container_state(&pod)?.pointer("/waiting/message"),
        Some(&json!("Back-off pulling image \"busybox:1.36\""))
    );
    let reasons = event_reasons(&client, &name_of(&pod)).await?;
    assert!(reasons.contains(&"Failed".to_owned()) && reasons.contains(&"BackOff".to_owned()), "{reasons:?}");
    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    let messages: Vec<String> = events
        .list(&ListParams::default().fields(&format!("involvedObject.name={},reason=Failed", name_of(&pod))))
        .await?
        .items
        .into_iter()
        .filter_map(|e| e.message)
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("rpc error: code = NotFound desc = failed to pull and unpack image \"busybox:1.36\"")),
        "{messages:?}"
    );

    create_job(&client, &job("invalid", &["true"], json!({"weft.test/behaviour": "invalid-image"}))?).await?;
    job_pod(&client, "invalid", "InvalidImageName", |p| waiting_reason(p).as_deref() == Some("InvalidImageName"))
        .await?;
    Ok(())
}

#[tokio::test]
async fn oom_kills_report_oomkilled_137() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    create_job(&client, &job("oom", &["sleep", "30"], json!({"weft.test/behaviour": "oom-after:0.3"}))?).await?;
    let pod = job_pod(&client, "oom", "a Failed pod", |p| phase(p) == "Failed").await?;
    let state = container_state(&pod)?;
    assert_eq!(state.pointer("/terminated/reason"), Some(&json!("OOMKilled")));
    assert_eq!(state.pointer("/terminated/exitCode"), Some(&json!(137)));

    // The same, triggered on a running pod.
    create_job(&client, &job("oom-now", &["sleep", "30"], json!({}))?).await?;
    let running = job_pod(&client, "oom-now", "a Running pod", |p| phase(p) == "Running").await?;
    server.trigger(NS, &name_of(&running), Behaviour::OomAfter(Duration::ZERO))?;
    let pod = job_pod(&client, "oom-now", "a Failed pod", |p| phase(p) == "Failed").await?;
    assert_eq!(container_state(&pod)?.pointer("/terminated/reason"), Some(&json!("OOMKilled")));
    job_when(&client, "oom-now", "a Failed job", |j| job_conditions(j).iter().any(|(kind, _)| kind == "Failed"))
        .await?;
    Ok(())
}

#[tokio::test]
async fn evicted_pods_fail_with_reason_evicted() -> anyhow::Result<()> {
    let (_server, client) = start().await?;
    create_job(&client, &job("evict", &["sleep", "30"], json!({"weft.test/behaviour": "evict-after:0.3"}))?).await?;
    let pod = job_pod(&client, "evict", "a Failed pod", |p| phase(p) == "Failed").await?;
    let status = pod.status.clone().unwrap_or_default();
    assert_eq!(status.reason.as_deref(), Some("Evicted"));
    assert_eq!(status.message.as_deref(), Some("The node was low on resource: memory."));
    assert!(event_reasons(&client, &name_of(&pod)).await?.contains(&"Evicted".to_owned()));
    Ok(())
}

#[tokio::test]
async fn preempted_pods_get_a_disruption_target_and_go() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    create_job(&client, &job("preempted", &["sleep", "30"], json!({}))?).await?;
    let pod = job_pod(&client, "preempted", "a Running pod", |p| phase(p) == "Running").await?;
    let name = name_of(&pod);
    server.preempt(NS, &name)?;
    let marked = server.object(Resource::Pods, NS, &name).ok_or_else(|| anyhow::anyhow!("pod gone at once"))?;
    assert_eq!(marked.pointer("/status/conditions/0/reason"), Some(&json!("PreemptionByScheduler")));
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    eventually(5.0, "the preempted pod removed", || async { Ok(pods.get_opt(&name).await?.is_none().then_some(())) })
        .await?;
    Ok(())
}

#[tokio::test]
async fn commands_are_rewritten_and_missing_executables_fail_to_start() -> anyhow::Result<()> {
    let mut config = crate::fast_config();
    config.command_rewrites.insert("weft".to_owned(), "/bin/echo".into());
    let (_server, client) = crate::start_with(config).await?;
    create_job(&client, &job("rewritten", &["weft", "run", "x"], json!({}))?).await?;
    let pod = job_pod(&client, "rewritten", "a Succeeded pod", |p| phase(p) == "Succeeded").await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    assert_eq!(pods.logs(&name_of(&pod), &LogParams::default()).await?, "run x\n");

    create_job(&client, &job("missing", &["/no/such/binary"], json!({}))?).await?;
    let pod = job_pod(&client, "missing", "a Failed pod", |p| phase(p) == "Failed").await?;
    let state = container_state(&pod)?;
    assert_eq!(state.pointer("/terminated/reason"), Some(&json!("StartError")));
    assert_eq!(state.pointer("/terminated/exitCode"), Some(&json!(128)));
    Ok(())
}

#[tokio::test]
async fn logs_can_be_followed_until_the_container_ends() -> anyhow::Result<()> {
    let (_server, client) = start().await?;
    let command = ["sh", "-c", "echo a; sleep 0.3; echo b; sleep 0.3; echo c"];
    create_job(&client, &job("follow", &command, json!({}))?).await?;
    let pod = job_pod(&client, "follow", "a Running pod", |p| phase(p) == "Running").await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let params = LogParams { follow: true, ..LogParams::default() };
    let stream = pods.log_stream(&name_of(&pod), &params).await?;
    let lines: Vec<String> = tokio::time::timeout(Duration::from_secs(5), stream.lines().try_collect()).await??;
    assert_eq!(lines, vec!["a", "b", "c"]);
    Ok(())
}
