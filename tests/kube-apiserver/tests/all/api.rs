//! Create, get, list, delete, errors, denials, discovery and the request
//! log, through kube's `Api`.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod, Secret};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::discovery::Discovery;
use kube::{Api, ResourceExt};
use serde_json::json;
use weft_kube_apiserver::DenyRule;

use crate::{NS, api_error, create_job, eventually, job, job_pod, start};

/// `(name, group, kind)` of a Status's details.
fn details(status: &kube::core::Status) -> (String, String, String) {
    status.details.as_ref().map(|d| (d.name.clone(), d.group.clone(), d.kind.clone())).unwrap_or_default()
}

#[tokio::test]
async fn jobs_are_created_read_listed_by_label_and_deleted() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let created = create_job(&client, &job("alpha", &["true"], json!({}))?).await?;
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let rv: u64 = created.resource_version().unwrap_or_default().parse()?;
    assert!(rv > 0);
    let template_labels =
        created.spec.as_ref().and_then(|s| s.template.metadata.as_ref()).and_then(|m| m.labels.clone());
    let template_labels = template_labels.unwrap_or_default();
    assert_eq!(template_labels.get("job-name").map(String::as_str), Some("alpha"));
    assert_eq!(template_labels.get("batch.kubernetes.io/controller-uid"), created.metadata.uid.as_ref());

    create_job(&client, &job("beta", &["true"], json!({}))?).await?;
    let other_ns: Api<Job> = Api::namespaced(client.clone(), "elsewhere");
    other_ns.create(&PostParams::default(), &job("gamma", &["true"], json!({}))?).await?;

    let got = jobs.get("alpha").await?;
    assert_eq!(got.metadata.uid, created.metadata.uid);

    let names = |list: kube::core::ObjectList<Job>| {
        let mut names: Vec<String> = list.items.iter().map(ResourceExt::name_any).collect();
        names.sort();
        names
    };
    for (selector, expected) in [
        ("app=alpha", vec!["alpha"]),
        ("app!=alpha", vec!["beta"]),
        ("app in (alpha,beta)", vec!["alpha", "beta"]),
        ("app notin (alpha)", vec!["beta"]),
        ("team", vec!["alpha", "beta"]),
        ("!team", vec![]),
        ("team=weft,app=beta", vec!["beta"]),
    ] {
        let list = jobs.list(&ListParams::default().labels(selector)).await?;
        assert_eq!(names(list), expected, "{selector}");
    }
    let list = jobs.list(&ListParams::default()).await?;
    let list_rv: u64 = list.metadata.resource_version.clone().unwrap_or_default().parse()?;
    assert!(list_rv >= rv);
    let all: Api<Job> = Api::all(client.clone());
    assert_eq!(names(all.list(&ListParams::default().labels("team=weft")).await?), vec!["alpha", "beta", "gamma"]);
    let by_name = jobs.list(&ListParams::default().fields("metadata.name=beta")).await?;
    assert_eq!(names(by_name), vec!["beta"]);

    jobs.delete("alpha", &DeleteParams::background()).await?;
    assert!(jobs.get_opt("alpha").await?.is_none());
    drop(server);
    Ok(())
}

#[tokio::test]
async fn failures_are_status_objects_worded_as_the_real_server_does() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    create_job(&client, &job("twice", &["true"], json!({}))?).await?;

    let conflict = api_error(
        jobs.create(&PostParams::default(), &job("twice", &["true"], json!({}))?)
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("no 409"))?,
    )?;
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(conflict.message, "jobs.batch \"twice\" already exists");
    assert_eq!(details(&conflict), ("twice".into(), "batch".into(), "jobs".into()));

    let missing = api_error(jobs.get("nope").await.err().ok_or_else(|| anyhow::anyhow!("no 404"))?)?;
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(missing.message, "jobs.batch \"nope\" not found");
    let missing = api_error(
        jobs.delete("nope", &DeleteParams::background()).await.err().ok_or_else(|| anyhow::anyhow!("no 404"))?,
    )?;
    assert_eq!(missing.code, 404);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let missing = api_error(pods.get("nope").await.err().ok_or_else(|| anyhow::anyhow!("no 404"))?)?;
    assert_eq!(missing.message, "pods \"nope\" not found");

    let mut no_containers = job("empty", &["true"], json!({}))?;
    if let Some(spec) = no_containers.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
        spec.containers.clear();
    }
    let invalid = api_error(
        jobs.create(&PostParams::default(), &no_containers).await.err().ok_or_else(|| anyhow::anyhow!("no 422"))?,
    )?;
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));
    assert_eq!(invalid.message, "Job.batch \"empty\" is invalid: spec.template.spec.containers: Required value");
    assert_eq!(details(&invalid), ("empty".into(), "batch".into(), "Job".into()));

    let mut always = job("always", &["true"], json!({}))?;
    if let Some(spec) = always.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
        spec.restart_policy = None;
    }
    let invalid =
        api_error(jobs.create(&PostParams::default(), &always).await.err().ok_or_else(|| anyhow::anyhow!("no 422"))?)?;
    assert_eq!(
        invalid.message,
        "Job.batch \"always\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
    );

    let long = "a".repeat(64);
    let invalid = api_error(
        jobs.create(&PostParams::default(), &job(&long, &["true"], json!({}))?)
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("no 422"))?,
    )?;
    assert_eq!(invalid.code, 422);
    assert!(invalid.message.contains("must be no more than 63 characters"), "{}", invalid.message);

    let no_template: Job = serde_json::from_value(json!({"metadata": {"name": "bare"}, "spec": {}}))
        .or_else(|_| serde_json::from_value(json!({"metadata": {"name": "bare"}, "spec": {"template": {}}})))?;
    let invalid = api_error(
        jobs.create(&PostParams::default(), &no_template).await.err().ok_or_else(|| anyhow::anyhow!("no 422"))?,
    )?;
    assert!(
        invalid.message.starts_with("Job.batch \"bare\" is invalid: [spec.template.spec.containers: Required value"),
        "{}",
        invalid.message
    );

    server.deny(DenyRule::new("create", "jobs", NS));
    let forbidden = api_error(
        jobs.create(&PostParams::default(), &job("denied", &["true"], json!({}))?)
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("no 403"))?,
    )?;
    assert_eq!((forbidden.code, forbidden.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        forbidden.message,
        "jobs.batch is forbidden: User \"system:serviceaccount:weft:weft-agent\" cannot create resource \"jobs\" in API group \"batch\" in the namespace \"flows\""
    );
    assert_eq!(details(&forbidden), (String::new(), "batch".into(), "jobs".into()));
    // Other verbs and namespaces are still allowed.
    jobs.get("twice").await?;
    let other: Api<Job> = Api::namespaced(client.clone(), "other");
    other.create(&PostParams::default(), &job("allowed", &["true"], json!({}))?).await?;
    server.set_denials(vec![DenyRule::everywhere("list", "pods")]);
    let all_pods: Api<Pod> = Api::all(client.clone());
    let forbidden =
        api_error(all_pods.list(&ListParams::default()).await.err().ok_or_else(|| anyhow::anyhow!("no 403"))?)?;
    assert_eq!(
        forbidden.message,
        "pods is forbidden: User \"system:serviceaccount:weft:weft-agent\" cannot list resource \"pods\" in API group \"\" at the cluster scope"
    );
    jobs.create(&PostParams::default(), &job("now-allowed", &["true"], json!({}))?).await?;
    Ok(())
}

#[tokio::test]
async fn discovery_and_version_parse_in_kube() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let version = client.apiserver_version().await?;
    assert_eq!((version.major.as_str(), version.minor.as_str()), ("1", "33"));
    for discovery in
        [Discovery::new(client.clone()).run().await?, Discovery::new(client.clone()).run_aggregated().await?]
    {
        assert!(discovery.has_group("batch"));
        let (job, _) = discovery
            .groups()
            .flat_map(|g| g.recommended_resources())
            .find(|(r, _)| r.plural == "jobs")
            .ok_or_else(|| anyhow::anyhow!("no jobs in discovery"))?;
        assert_eq!(job.kind, "Job");
        let (_, pods) = discovery
            .groups()
            .flat_map(|g| g.recommended_resources())
            .find(|(r, _)| r.plural == "pods")
            .ok_or_else(|| anyhow::anyhow!("no pods in discovery"))?;
        let eviction = pods.subresources.iter().find(|(r, _)| r.plural == "eviction");
        let (eviction, caps) = eviction.ok_or_else(|| anyhow::anyhow!("no pods/eviction in discovery"))?;
        assert_eq!((eviction.kind.as_str(), caps.operations.clone()), ("Eviction", vec!["create".to_owned()]));
    }
    // As the real server lists it in /api/v1.
    let (code, body) = crate::raw_request(&server, "GET", "/api/v1", "").await?;
    assert_eq!(code, 200);
    let list: serde_json::Value = serde_json::from_str(&body)?;
    let eviction = list["resources"].as_array().and_then(|r| r.iter().find(|r| r["name"] == "pods/eviction")).cloned();
    assert_eq!(
        eviction,
        Some(json!({"name": "pods/eviction", "singularName": "", "namespaced": true, "group": "policy",
                    "version": "v1", "kind": "Eviction", "verbs": ["create"]}))
    );
    Ok(())
}

#[tokio::test]
async fn secrets_and_events_are_served() -> anyhow::Result<()> {
    let (_server, client) = start().await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "store-credentials"},
        "stringData": {"AWS_ACCESS_KEY_ID": "test"},
    }))?;
    secrets.create(&PostParams::default(), &secret).await?;
    let stored = secrets.get("store-credentials").await?;
    let value = stored.data.unwrap_or_default().get("AWS_ACCESS_KEY_ID").map(|b| b.0.clone());
    assert_eq!(value.as_deref(), Some(b"test".as_slice()));
    assert!(stored.string_data.is_none());

    create_job(&client, &job("noisy", &["true"], json!({}))?).await?;
    let pod = job_pod(&client, "noisy", "the pod", |_| true).await?;
    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    let reasons = |name: String| {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default().fields(&format!("involvedObject.name={name}"))).await?;
            anyhow::Ok(list.items.into_iter().filter_map(|e| e.reason).collect::<Vec<_>>())
        }
    };
    let job_reasons = eventually(5.0, "Completed event", || async {
        let reasons = reasons("noisy".to_owned()).await?;
        Ok(reasons.contains(&"Completed".to_owned()).then_some(reasons))
    })
    .await?;
    assert!(job_reasons.contains(&"SuccessfulCreate".to_owned()), "{job_reasons:?}");
    let pod_reasons = reasons(crate::name_of(&pod)).await?;
    for reason in ["Scheduled", "Pulling", "Pulled", "Created", "Started"] {
        assert!(pod_reasons.contains(&reason.to_owned()), "{reason} in {pod_reasons:?}");
    }
    let unsupported = events.list(&ListParams::default().fields("spec.foo=bar")).await.err();
    let unsupported = api_error(unsupported.ok_or_else(|| anyhow::anyhow!("no 400"))?)?;
    assert_eq!((unsupported.code, unsupported.message.as_str()), (400, "field label not supported: spec.foo"));
    Ok(())
}

#[tokio::test]
async fn the_request_log_counts_every_request() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    server.clear_requests();
    for _ in 0..5 {
        jobs.list(&ListParams::default()).await?;
    }
    let _ = jobs.get("missing").await;
    let requests = server.requests();
    let lists =
        requests.iter().filter(|r| r.method == "GET" && r.path == "/apis/batch/v1/namespaces/flows/jobs").count();
    assert_eq!(lists, 5);
    assert_eq!(requests.len(), 6);
    assert!(requests.windows(2).all(|w| w[0].since_start <= w[1].since_start));
    assert_eq!(server.max_requests_in(Duration::from_secs(60), |_| true), 6);
    assert_eq!(server.max_requests_in(Duration::from_secs(60), |r| r.path.ends_with("/missing")), 1);
    assert_eq!(server.max_requests_in(Duration::ZERO, |_| true), 0);
    Ok(())
}
