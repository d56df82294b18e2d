//! Watches through kube: raw `Api::watch` events and bookmarks, and
//! `kube::runtime::watcher` surviving a 410 Gone by re-listing.

use std::pin::pin;
use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::{NS, create_job, job, job_pod, phase, start};

/// The next item of `stream` within 5 s.
async fn next<S: futures::Stream + Unpin>(stream: &mut S) -> anyhow::Result<S::Item> {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .map_err(|_| anyhow::anyhow!("no watch event within 5 s"))?
        .ok_or_else(|| anyhow::anyhow!("the watch ended"))
}

#[tokio::test]
async fn a_watch_streams_added_modified_deleted_and_bookmarks() -> anyhow::Result<()> {
    let (_server, client) = start().await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    create_job(&client, &job("before", &["sleep", "10"], json!({}))?).await?;
    let params = WatchParams::default().labels("app=watched").timeout(10);
    let mut stream = pin!(jobs.watch(&params, "0").await?.boxed());
    let added = create_job(&client, &job("watched", &["sleep", "10"], json!({}))?).await?;
    match next(&mut stream).await?? {
        WatchEvent::Added(job) => assert_eq!(job.name_any(), "watched"),
        other => anyhow::bail!("expected ADDED, got {other:?}"),
    }
    match next(&mut stream).await?? {
        WatchEvent::Modified(job) => assert_eq!(job.metadata.uid, added.metadata.uid),
        other => anyhow::bail!("expected MODIFIED, got {other:?}"),
    }
    jobs.delete("watched", &DeleteParams::background()).await?;
    loop {
        match next(&mut stream).await?? {
            WatchEvent::Modified(_) => {}
            WatchEvent::Deleted(job) => {
                assert_eq!(job.name_any(), "watched");
                break;
            }
            other => anyhow::bail!("expected DELETED, got {other:?}"),
        }
    }

    // From a resourceVersion: only what came after; bookmarks when asked.
    let rv = jobs.get("before").await?.resource_version().unwrap_or_default();
    let mut stream = pin!(jobs.watch(&WatchParams::default().timeout(10), &rv).await?.boxed());
    loop {
        match next(&mut stream).await?? {
            WatchEvent::Bookmark(bookmark) => {
                assert!(bookmark.metadata.resource_version.parse::<u64>()? >= rv.parse::<u64>()?);
                break;
            }
            WatchEvent::Added(job) => anyhow::bail!("no ADDED expected from a resourceVersion, got {}", job.name_any()),
            _ => {}
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_watch_from_an_expired_version_gets_410_inside_the_stream() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    server.set_watch_history(3);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    for i in 0..6 {
        let secret: Secret = serde_json::from_value(json!({"metadata": {"name": format!("s{i}")}}))?;
        secrets.create(&PostParams::default(), &secret).await?;
    }
    let mut stream = pin!(secrets.watch(&WatchParams::default().timeout(5), "1").await?.boxed());
    match next(&mut stream).await?? {
        WatchEvent::Error(status) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
            assert_eq!(status.message, "too old resource version: 1 (3)");
        }
        other => anyhow::bail!("expected ERROR, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn the_runtime_watcher_sees_changes_and_relists_after_410() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    server.set_watch_history(4);
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    create_job(&client, &job("first", &["sleep", "10"], json!({}))?).await?;
    // With 4 events of history, the writes of a pod starting up between the
    // watcher's list and its watch would expire the listed version: let the
    // pod settle first.
    job_pod(&client, "first", "a Running pod", |p| phase(p) == "Running").await?;
    let config = watcher::Config::default().labels("team=weft").disable_bookmarks();
    let mut events = pin!(watcher(jobs.clone(), config).boxed());
    let mut initial = Vec::new();
    loop {
        match next(&mut events).await?? {
            watcher::Event::Init => {}
            watcher::Event::InitApply(job) => initial.push(job.name_any()),
            watcher::Event::InitDone => break,
            other => anyhow::bail!("unexpected {other:?} during the initial list"),
        }
    }
    assert_eq!(initial, vec!["first"]);
    // The watcher opens its watch when next polled: open it before the
    // writes below, for the same reason.
    let _ = tokio::time::timeout(Duration::from_millis(200), events.next()).await;
    create_job(&client, &job("second", &["sleep", "10"], json!({}))?).await?;
    let mut applied = false;
    while !applied {
        if let watcher::Event::Apply(job) = next(&mut events).await?? {
            applied = job.name_any() == "second";
        }
    }
    jobs.delete("second", &DeleteParams::background()).await?;
    loop {
        if let watcher::Event::Delete(job) = next(&mut events).await?? {
            assert_eq!(job.name_any(), "second");
            break;
        }
    }
    // Drain what is already there, so the watcher's last version is recent.
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), events.next()).await {}

    // The watch ends (as when the API server restarts) and, while the
    // watcher is not polled, unrelated writes push its version out of the
    // history: reconnecting gets 410, and the watcher lists again.
    server.close_watches();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    for i in 0..8 {
        let secret: Secret = serde_json::from_value(json!({"metadata": {"name": format!("filler-{i}")}}))?;
        secrets.create(&PostParams::default(), &secret).await?;
    }
    let mut saw_gone = false;
    let mut relisted = Vec::new();
    loop {
        match next(&mut events).await? {
            Err(watcher::Error::WatchError(status)) => {
                assert_eq!(status.code, 410);
                saw_gone = true;
            }
            Err(other) => anyhow::bail!("unexpected watcher error {other}"),
            Ok(watcher::Event::InitApply(job)) => relisted.push(job.name_any()),
            Ok(watcher::Event::InitDone) => break,
            Ok(_) => {}
        }
    }
    assert!(saw_gone, "the watcher saw no 410");
    assert_eq!(relisted, vec!["first"]);
    // And it goes on watching.
    create_job(&client, &job("third", &["sleep", "10"], json!({}))?).await?;
    let mut third = pin!(events.as_mut().try_filter_map(|event| async move {
        Ok(match event {
            watcher::Event::Apply(job) if job.name_any() == "third" => Some(job),
            _ => None,
        })
    }));
    let third = tokio::time::timeout(Duration::from_secs(5), third.next()).await?;
    assert!(matches!(third, Some(Ok(_))));
    Ok(())
}

#[tokio::test]
async fn streaming_lists_end_with_the_initial_events_bookmark() -> anyhow::Result<()> {
    let (_server, client) = start().await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    create_job(&client, &job("listed", &["sleep", "10"], json!({}))?).await?;
    let mut events = pin!(watcher(jobs, watcher::Config::default().streaming_lists()).boxed());
    let mut initial = Vec::new();
    loop {
        match next(&mut events).await?? {
            watcher::Event::InitApply(job) => initial.push(job.name_any()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, vec!["listed"]);
    Ok(())
}
