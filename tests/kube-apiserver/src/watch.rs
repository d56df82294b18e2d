//! Watch streams: a chunked response of newline-delimited
//! `{"type":...,"object":...}` events, replayed from the store's history
//! after the requested resourceVersion (synthetic ADDED events first when
//! it is unset or "0"), with periodic BOOKMARKs, the `sendInitialEvents`
//! end marker, `timeoutSeconds`, and a 410 `ERROR` event when the history
//! no longer reaches back far enough.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::resource::Resource;
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::Shared;
use crate::status::ApiError;

/// A response body fed by a task through a channel; it ends when the task
/// drops the sender.
pub(crate) struct ChannelBody(pub mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// What a watch request asked for.
pub(crate) struct WatchRequest {
    pub resource: Resource,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// `None` for unset or "0": start with the current objects.
    pub resource_version: Option<u64>,
    pub send_initial_events: bool,
    pub bookmarks: bool,
    pub timeout: Duration,
}

fn truthy(query: &HashMap<String, String>, key: &str) -> bool {
    matches!(query.get(key).map(String::as_str), Some("true" | "1"))
}

/// Whether the query asks for a watch (`watch=true` or `watch=1`).
pub(crate) fn is_watch(query: &HashMap<String, String>) -> bool {
    truthy(query, "watch")
}

impl WatchRequest {
    pub fn parse(
        resource: Resource,
        namespace: Option<String>,
        query: &HashMap<String, String>,
        default_timeout: Duration,
    ) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?;
        let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str), resource)?;
        let resource_version = match query.get("resourceVersion").map(String::as_str) {
            None | Some("" | "0") => None,
            Some(text) => Some(text.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("resourceVersion: Invalid value: \"{text}\": must be a number"))
            })?),
        };
        let timeout = match query.get("timeoutSeconds") {
            Some(text) => Duration::from_secs(
                text.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("timeoutSeconds: Invalid value: \"{text}\"")))?,
            ),
            None => default_timeout,
        };
        Ok(WatchRequest {
            resource,
            namespace,
            labels,
            fields,
            resource_version,
            send_initial_events: truthy(query, "sendInitialEvents"),
            bookmarks: truthy(query, "allowWatchBookmarks"),
            timeout,
        })
    }

    fn matches(&self, resource: Resource, namespace: &str, object: &Value) -> bool {
        resource == self.resource
            && self.namespace.as_deref().is_none_or(|ns| ns == namespace)
            && self.labels.matches(object)
            && self.fields.matches(resource, object)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end && let Some(map) = metadata.as_object_mut() {
            map.insert("annotations".into(), json!({"k8s.io/initial-events-end": "true"}));
        }
        line(
            "BOOKMARK",
            &json!({"kind": self.resource.kind(), "apiVersion": self.resource.api_version(), "metadata": metadata}),
        )
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

/// Runs one watch, sending lines into `tx` until the timeout, the client
/// leaving, [`crate::TestApiServer::close_watches`], or an expired
/// resourceVersion.
pub(crate) async fn run(shared: Arc<Shared>, request: WatchRequest, tx: mpsc::Sender<Bytes>) {
    let deadline = Instant::now() + request.timeout;
    let mut epoch = shared.watch_epoch.subscribe();
    let (mut changed, mut last, initial) = {
        let state = shared.lock();
        let changed = state.store.subscribe();
        match request.resource_version {
            Some(rv) => (changed, rv, Vec::new()),
            None => {
                let initial: Vec<Bytes> = state
                    .store
                    .list(request.resource, request.namespace.as_deref())
                    .into_iter()
                    .filter(|o| {
                        let ns = o.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
                        request.matches(request.resource, ns, o)
                    })
                    .map(|o| line("ADDED", o))
                    .collect();
                (changed, state.store.rv(), initial)
            }
        }
    };
    for chunk in initial {
        if tx.send(chunk).await.is_err() {
            return;
        }
    }
    if request.send_initial_events && request.bookmarks && tx.send(request.bookmark(last, true)).await.is_err() {
        return;
    }
    let interval = shared.config.bookmark_interval.max(Duration::from_millis(10));
    let mut next_bookmark = Instant::now() + interval;
    loop {
        let lines: Result<Vec<Bytes>, ApiError> = {
            let state = shared.lock();
            let lines = match state.store.changes_since(last) {
                Err(oldest) => Err(ApiError::expired(last, oldest)),
                Ok(changes) => Ok(changes
                    .filter(|c| request.matches(c.resource, &c.namespace, &c.object))
                    .map(|c| line(c.kind.as_str(), &c.object))
                    .collect()),
            };
            last = last.max(state.store.rv());
            lines
        };
        match lines {
            Err(expired) => {
                let _ = tx.send(line("ERROR", &expired.to_status())).await;
                return;
            }
            Ok(lines) => {
                for chunk in lines {
                    if tx.send(chunk).await.is_err() {
                        return;
                    }
                }
            }
        }
        tokio::select! {
            result = changed.changed() => if result.is_err() { return },
            _ = epoch.changed() => return,
            () = tokio::time::sleep_until(next_bookmark), if request.bookmarks => {
                next_bookmark = Instant::now() + interval;
                if tx.send(request.bookmark(last, false)).await.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep_until(deadline) => return,
            () = tx.closed() => return,
        }
    }
}
