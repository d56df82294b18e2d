//! The HTTP side: connections, request accounting, routing a path to a
//! resource and verb, authorization, and each verb's handler (create, get,
//! list, watch, delete, pod logs, pod eviction).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::controller::{self, Propagation};
use crate::discovery;
use crate::kubelet;
use crate::logs;
use crate::resource::Resource;
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::{RequestRecord, Shared};
use crate::status::{ApiError, FieldError};
use crate::store::ObjectKey;
use crate::util;
use crate::validation;
use crate::watch::{self, ChannelBody, WatchRequest};

type Body = BoxBody<Bytes, Infallible>;

/// The real server's request body limit.
const MAX_BODY: usize = 3 * 1024 * 1024;

/// Accepts connections until the server stops.
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            // During an outage a connection is closed unanswered.
            Ok(_) if *shared.down.borrow() => {}
            Ok((stream, _)) => {
                let for_connection = shared.clone();
                let mut down = shared.down.subscribe();
                shared.spawn(async move {
                    let service = service_fn(move |request| handle(for_connection.clone(), request));
                    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    // An outage drops the connection, whatever it serves.
                    tokio::select! {
                        _ = connection => {}
                        _ = down.wait_for(|down| *down) => {}
                    }
                });
            }
            // Out of descriptors, most likely: let others finish first.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    shared.lock().requests.push(RequestRecord {
        at: SystemTime::now(),
        since_start: shared.started.elapsed(),
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        query: request.uri().query().map(str::to_owned),
    });
    Ok(route(&shared, request).await.unwrap_or_else(|error| json_response(error.code, &error.to_status())))
}

fn json_response(code: StatusCode, body: &Value) -> Response<Body> {
    bytes_response(code, "application/json", Bytes::from(body.to_string()))
}

fn bytes_response(code: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body).boxed());
    *response.status_mut() = code;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn streaming_response(content_type: &'static str, rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let mut response = Response::new(ChannelBody(rx).boxed());
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A resource path, split.
struct Target {
    resource: Resource,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_target(segments: &[&str]) -> Option<Target> {
    let (batch, rest) = match segments {
        ["api", "v1", rest @ ..] => (false, rest),
        ["apis", "batch", "v1", rest @ ..] => (true, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some((*ns).to_owned()), rest),
        _ => (None, rest),
    };
    let (plural, name, subresource) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some((*name).to_owned()), None),
        [plural, name, sub] => (*plural, Some((*name).to_owned()), Some((*sub).to_owned())),
        _ => return None,
    };
    let resource = Resource::from_plural(plural)?;
    let subresource_ok = matches!(
        (resource, subresource.as_deref()),
        (_, None) | (Resource::Pods, Some("log" | "eviction")) | (Resource::Jobs, Some("status"))
    );
    let valid = (resource.group() == "batch") == batch && (name.is_none() || namespace.is_some()) && subresource_ok;
    valid.then_some(Target { resource, namespace, name, subresource })
}

async fn route(shared: &Arc<Shared>, request: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = request.uri().path().to_owned();
    let query: HashMap<String, String> = request
        .uri()
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let aggregated = request
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("as=APIGroupDiscoveryList"));
    let document = match segments.as_slice() {
        ["version"] => Some(discovery::version()),
        ["api"] if aggregated => Some(discovery::core_aggregated()),
        ["api"] => Some(discovery::core_versions(shared.port)),
        ["apis"] if aggregated => Some(discovery::groups_aggregated()),
        ["apis"] => Some(discovery::groups()),
        ["api", "v1"] => Some(discovery::resource_list("v1")),
        ["apis", "batch"] => Some(discovery::batch_group()),
        ["apis", "batch", "v1"] => Some(discovery::resource_list("batch/v1")),
        _ => None,
    };
    if let Some(document) = document {
        if request.method() != Method::GET {
            return Err(ApiError::no_route());
        }
        let mut response = json_response(StatusCode::OK, &document);
        if aggregated && matches!(segments.as_slice(), ["api"] | ["apis"]) {
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(discovery::AGGREGATED));
        }
        return Ok(response);
    }

    let target = parse_target(&segments).ok_or_else(ApiError::no_route)?;
    let resource = target.resource;
    let verb = match (request.method(), &target.name, &target.namespace, target.subresource.as_deref()) {
        (&Method::GET, None, _, _) if watch::is_watch(&query) => "watch",
        (&Method::GET, None, _, _) => "list",
        (&Method::POST, None, Some(_), None) | (&Method::POST, Some(_), Some(_), Some("eviction")) => "create",
        (&Method::GET, Some(_), _, sub) if sub != Some("eviction") => "get",
        (&Method::DELETE, Some(_), _, None) => "delete",
        _ => return Err(ApiError::method_not_allowed(resource)),
    };
    // A subresource's verbs are the ones matched above.
    if target.subresource.is_none() && !resource.verbs().contains(&verb) {
        return Err(ApiError::method_not_allowed(resource));
    }
    {
        let state = shared.lock();
        let full = match &target.subresource {
            Some(sub) => format!("{}/{sub}", resource.plural()),
            None => resource.plural().to_owned(),
        };
        if state.deny.iter().any(|rule| rule.matches(verb, &full, target.namespace.as_deref())) {
            return Err(ApiError::forbidden(
                resource,
                target.subresource.as_deref(),
                target.name.as_deref(),
                verb,
                &shared.config.user,
                target.namespace.as_deref(),
            ));
        }
    }
    if query.contains_key("dryRun") {
        return Err(ApiError::bad_request("dryRun is not supported by this test API server"));
    }
    let namespace = target.namespace.clone().unwrap_or_default();
    let name = target.name.clone().unwrap_or_default();
    match verb {
        "list" => list(shared, &target, &query),
        "watch" => {
            let watch =
                WatchRequest::parse(resource, target.namespace.clone(), &query, shared.config.default_watch_timeout)?;
            let (tx, rx) = mpsc::channel(64);
            shared.spawn(watch::run(shared.clone(), watch, tx));
            Ok(streaming_response("application/json", rx))
        }
        "get" if target.subresource.as_deref() == Some("log") => pod_log(shared, &namespace, &name, &query),
        "get" => {
            let state = shared.lock();
            let object = state
                .store
                .get(&ObjectKey::new(resource, &namespace, &name))
                .ok_or_else(|| ApiError::not_found(resource, &name))?;
            Ok(json_response(StatusCode::OK, object))
        }
        "create" => {
            let body = read_body(request).await?;
            match (resource, target.subresource.as_deref()) {
                (Resource::Pods, Some("eviction")) => evict(shared, &namespace, &name, &body),
                (Resource::Jobs, None) => create_job(shared, &namespace, &body),
                (Resource::Secrets, None) => create_secret(shared, &namespace, &body),
                _ => Err(ApiError::method_not_allowed(resource)),
            }
        }
        "delete" => {
            let body = read_body(request).await?;
            delete(shared, resource, &namespace, &name, &query, &body)
        }
        _ => Err(ApiError::method_not_allowed(resource)),
    }
}

async fn read_body(request: Request<Incoming>) -> Result<Bytes, ApiError> {
    Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|error| ApiError::bad_request(format!("cannot read the request body: {error}")))
}

fn list(shared: &Arc<Shared>, target: &Target, query: &HashMap<String, String>) -> Result<Response<Body>, ApiError> {
    let resource = target.resource;
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str), resource)?;
    let state = shared.lock();
    let items: Vec<Value> = state
        .store
        .list(resource, target.namespace.as_deref())
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(resource, o))
        .map(|o| {
            // Items of a list carry no apiVersion/kind, as the real server sends them.
            let mut item = o.clone();
            if let Some(map) = item.as_object_mut() {
                map.remove("apiVersion");
                map.remove("kind");
            }
            item
        })
        .collect();
    let body = json!({
        "kind": format!("{}List", resource.kind()),
        "apiVersion": resource.api_version(),
        "metadata": {"resourceVersion": state.store.rv().to_string()},
        "items": items,
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// Parses a create body as an object of `resource`.
fn decode(body: &[u8], resource: Resource) -> Result<Value, ApiError> {
    decode_as(body, resource.kind(), &[resource.api_version()])
}

/// Parses a request body as an object of `kind`, in one of `api_versions`
/// when it names one (a body without `kind` or `apiVersion` is taken as
/// the one the path implies).
fn decode_as(body: &[u8], kind: &str, api_versions: &[&str]) -> Result<Value, ApiError> {
    let unrecognized = |detail: String| {
        ApiError::bad_request(format!("the object provided is unrecognized (must be of type {kind}): {detail}"))
    };
    let object: Value = serde_json::from_slice(body)
        .map_err(|e| unrecognized(format!("couldn't get version/kind; json parse error: {e}")))?;
    if !object.is_object() {
        return Err(unrecognized("couldn't get version/kind; json parse error: not an object".to_owned()));
    }
    if let Some(given) = object.get("kind").and_then(Value::as_str)
        && given != kind
    {
        return Err(unrecognized(format!("kind {given:?} does not match")));
    }
    if let Some(version) = object.get("apiVersion").and_then(Value::as_str)
        && !api_versions.contains(&version)
    {
        return Err(unrecognized(format!("apiVersion {version:?} does not match")));
    }
    Ok(object)
}

/// The real server's 400 for a body it could not decode as a `resource`.
fn cannot_handle(resource: Resource, detail: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!(
        "{kind} in version \"v1\" cannot be handled as a {kind}: {detail}",
        kind = resource.kind()
    ))
}

/// The typed decode the real server does: wrong field types are 400.
fn check_types<T: serde::de::DeserializeOwned>(object: &Value, resource: Resource) -> Result<(), ApiError> {
    serde_json::from_value::<T>(object.clone()).map(|_| ()).map_err(|e| cannot_handle(resource, e))
}

/// The name to create under: `metadata.name`, or `generateName` and five
/// random characters. Also checks the body's namespace against the path's
/// and drops what the server sets itself.
fn prepare_create(object: &mut Value, resource: Resource, namespace: &str) -> Result<String, ApiError> {
    if let Some(ns) = util::str_at(object, "/metadata/namespace")
        && !ns.is_empty()
        && ns != namespace
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let name = match (util::str_at(object, "/metadata/name"), util::str_at(object, "/metadata/generateName")) {
        (Some(name), _) if !name.is_empty() => name.to_owned(),
        (_, Some(prefix)) if !prefix.is_empty() => {
            let mut prefix = prefix.to_owned();
            prefix.truncate(58);
            format!("{prefix}{}", util::random_suffix(5))
        }
        _ => {
            return Err(ApiError::invalid(
                resource,
                "",
                &[FieldError::required("metadata.name", "name or generateName is required")],
            ));
        }
    };
    let meta = util::metadata(object);
    for field in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "managedFields",
    ] {
        meta.remove(field);
    }
    if resource == Resource::Jobs {
        meta.insert("generation".into(), json!(1));
    }
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    Ok(name)
}

fn create_job(shared: &Arc<Shared>, namespace: &str, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let mut job = decode(body, Resource::Jobs)?;
    check_types::<k8s_openapi::api::batch::v1::Job>(&job, Resource::Jobs)?;
    // Quantities are parsed while decoding, so a bad one is a 400, not a
    // 422 naming the field.
    validation::parse_quantities(&job).map_err(|error| cannot_handle(Resource::Jobs, error))?;
    let name = prepare_create(&mut job, Resource::Jobs, namespace)?;
    let uid = util::uid();
    util::metadata(&mut job).insert("uid".into(), json!(uid));
    validation::default_job(&mut job, &name, &uid);
    let errors = validation::validate_job(&job, &name);
    if !errors.is_empty() {
        return Err(ApiError::invalid(Resource::Jobs, &name, &errors));
    }
    let mut state = shared.lock();
    let key = ObjectKey::new(Resource::Jobs, namespace, &name);
    if state.store.get(&key).is_some() {
        return Err(ApiError::already_exists(Resource::Jobs, &name));
    }
    let created = state.store.create(&key, job);
    controller::job_created(shared, &mut state, &created);
    Ok(json_response(StatusCode::CREATED, &created))
}

fn create_secret(shared: &Arc<Shared>, namespace: &str, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let mut secret = decode(body, Resource::Secrets)?;
    check_types::<k8s_openapi::api::core::v1::Secret>(&secret, Resource::Secrets)?;
    let name = prepare_create(&mut secret, Resource::Secrets, namespace)?;
    let mut errors = Vec::new();
    validation::validate_name(&name, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::invalid(Resource::Secrets, &name, &errors));
    }
    if let Some(map) = secret.as_object_mut() {
        // stringData is write-only: it is merged into data, base64-encoded.
        if let Some(Value::Object(strings)) = map.remove("stringData") {
            let data = map.entry("data").or_insert_with(|| json!({}));
            if let Some(data) = data.as_object_mut() {
                for (key, value) in strings {
                    let text = value.as_str().unwrap_or_default();
                    data.insert(key, json!(base64::engine::general_purpose::STANDARD.encode(text)));
                }
            }
        }
        map.entry("type").or_insert_with(|| json!("Opaque"));
        map.remove("status");
    }
    let mut state = shared.lock();
    let key = ObjectKey::new(Resource::Secrets, namespace, &name);
    if state.store.get(&key).is_some() {
        return Err(ApiError::already_exists(Resource::Secrets, &name));
    }
    let created = state.store.create(&key, secret);
    Ok(json_response(StatusCode::CREATED, &created))
}

fn delete(
    shared: &Arc<Shared>,
    resource: Resource,
    namespace: &str,
    name: &str,
    query: &HashMap<String, String>,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    let options: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    if options.get("dryRun").is_some_and(|d| d.as_array().is_some_and(|a| !a.is_empty())) {
        return Err(ApiError::bad_request("dryRun is not supported by this test API server"));
    }
    let policy = match options
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .or(query.get("propagationPolicy").map(String::as_str))
    {
        Some(text) => Some(Propagation::parse(text)?),
        None => match options.get("orphanDependents").and_then(Value::as_bool) {
            Some(true) => Some(Propagation::Orphan),
            Some(false) => Some(Propagation::Background),
            None => None,
        },
    };
    let grace = match options.get("gracePeriodSeconds").and_then(Value::as_i64) {
        Some(grace) => Some(grace),
        None => match query.get("gracePeriodSeconds") {
            Some(text) => Some(
                text.parse::<i64>()
                    .map_err(|_| ApiError::bad_request(format!("gracePeriodSeconds: Invalid value: \"{text}\"")))?,
            ),
            None => None,
        },
    };
    let mut state = shared.lock();
    match resource {
        Resource::Jobs => {
            let job = controller::delete_job(shared, &mut state, namespace, name, policy)?;
            let mut response = json_response(StatusCode::OK, &job);
            if policy.is_none() {
                response.headers_mut().insert("Warning", HeaderValue::from_static(controller::ORPHAN_WARNING));
            }
            Ok(response)
        }
        Resource::Pods => {
            let pod = kubelet::delete_pod(shared, &mut state, namespace, name, grace)?;
            Ok(json_response(StatusCode::OK, &pod))
        }
        Resource::Secrets | Resource::Events => {
            let removed = state
                .store
                .remove(&ObjectKey::new(resource, namespace, name))
                .ok_or_else(|| ApiError::not_found(resource, name))?;
            Ok(json_response(StatusCode::OK, &removed))
        }
    }
}

/// `POST .../pods/{name}/eviction`: the Eviction API. There are no
/// PodDisruptionBudgets here, so every eviction is allowed: a pod that has
/// not ended gets the `DisruptionTarget` condition, then any pod is deleted
/// as `DELETE` deletes it, with the `deleteOptions` grace period if given.
fn evict(shared: &Arc<Shared>, namespace: &str, name: &str, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let eviction = decode_as(body, "Eviction", &["policy/v1", "policy/v1beta1"])?;
    if util::str_at(&eviction, "/metadata/namespace").is_some_and(|ns| !ns.is_empty() && ns != namespace) {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if util::str_at(&eviction, "/metadata/name") != Some(name) {
        return Err(ApiError::bad_request("name in URL does not match name in Eviction object"));
    }
    if eviction.pointer("/deleteOptions/dryRun").and_then(Value::as_array).is_some_and(|d| !d.is_empty()) {
        return Err(ApiError::bad_request("dryRun is not supported by this test API server"));
    }
    let grace = eviction.pointer("/deleteOptions/gracePeriodSeconds").and_then(Value::as_i64);
    let mut state = shared.lock();
    kubelet::add_disruption_target(
        shared,
        &mut state,
        namespace,
        name,
        "EvictionByEvictionAPI",
        "Eviction API: evicting",
    )?;
    kubelet::delete_pod(shared, &mut state, namespace, name, grace)?;
    let success = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
    Ok(json_response(StatusCode::CREATED, &success))
}

/// `GET .../pods/{name}/log`: the first container's output, as text.
fn pod_log(
    shared: &Arc<Shared>,
    namespace: &str,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    let (pod, log) = {
        let state = shared.lock();
        let pod = state
            .store
            .get(&ObjectKey::new(Resource::Pods, namespace, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(Resource::Pods, name))?;
        (pod, state.logs.get(&(namespace.to_owned(), name.to_owned())).cloned())
    };
    let containers: Vec<String> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(|c| util::str_at(c, "/name").map(str::to_owned)).collect())
        .unwrap_or_default();
    let container = match query.get("container") {
        Some(container) if containers.contains(container) => container.clone(),
        Some(container) => {
            return Err(ApiError::bad_request(format!("container {container} is not valid for pod {name}")));
        }
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
    };
    let index = containers.iter().position(|c| *c == container).unwrap_or_default();
    let state_of = pod.pointer(&format!("/status/containerStatuses/{index}/state"));
    let waiting = match state_of {
        None => Some("ContainerCreating".to_owned()),
        Some(state) => state.pointer("/waiting/reason").and_then(Value::as_str).map(|reason| match reason {
            "ErrImagePull" | "ImagePullBackOff" => "trying and failing to pull image".to_owned(),
            other => other.to_owned(),
        }),
    };
    if let Some(reason) = waiting {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
        )));
    }
    if query.get("previous").is_some_and(|p| p == "true") {
        return Err(ApiError::bad_request(format!(
            "previous terminated container \"{container}\" in pod \"{name}\" not found"
        )));
    }
    let number = |key: &str| -> Result<Option<usize>, ApiError> {
        query
            .get(key)
            .map(|text| {
                text.parse::<usize>().map_err(|_| ApiError::bad_request(format!("{key}: Invalid value: \"{text}\"")))
            })
            .transpose()
    };
    let tail_lines = number("tailLines")?;
    let limit_bytes = number("limitBytes")?;
    // Only the first container runs a process; the others have no output.
    let log = log.filter(|_| index == 0);
    let contents = log.as_ref().map(|l| l.contents()).unwrap_or_default();
    let mut start = contents.len() - tail_lines.map_or(contents.len(), |n| logs::tail(&contents, n).len());
    if query.get("follow").is_some_and(|f| f == "true")
        && let Some(log) = log
    {
        let (tx, rx) = mpsc::channel(16);
        shared.spawn(async move {
            let mut changed = log.subscribe();
            let mut sent = 0usize;
            loop {
                let (bytes, done) = log.read_from(start);
                if !bytes.is_empty() {
                    let room = limit_bytes.map_or(bytes.len(), |limit| limit.saturating_sub(sent).min(bytes.len()));
                    start += bytes.len();
                    sent += room;
                    if room > 0 && tx.send(Bytes::copy_from_slice(&bytes[..room])).await.is_err() {
                        return;
                    }
                }
                if done || limit_bytes.is_some_and(|limit| sent >= limit) {
                    return;
                }
                tokio::select! {
                    result = changed.changed() => if result.is_err() { return },
                    () = tx.closed() => return,
                }
            }
        });
        return Ok(streaming_response("text/plain", rx));
    }
    let mut body = contents[start..].to_vec();
    if let Some(limit) = limit_bytes {
        body.truncate(limit);
    }
    Ok(bytes_response(StatusCode::OK, "text/plain", Bytes::from(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_resources() {
        let target = |path: &str| {
            let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            parse_target(&segments).map(|t| (t.resource, t.namespace, t.name, t.subresource))
        };
        assert_eq!(
            target("/apis/batch/v1/namespaces/flows/jobs/j"),
            Some((Resource::Jobs, Some("flows".into()), Some("j".into()), None))
        );
        assert_eq!(target("/apis/batch/v1/jobs"), Some((Resource::Jobs, None, None, None)));
        assert_eq!(
            target("/api/v1/namespaces/ns/pods/p/log"),
            Some((Resource::Pods, Some("ns".into()), Some("p".into()), Some("log".into())))
        );
        assert_eq!(target("/api/v1/jobs"), None);
        assert_eq!(target("/apis/batch/v1/pods"), None);
        assert_eq!(
            target("/api/v1/namespaces/ns/pods/p/eviction"),
            Some((Resource::Pods, Some("ns".into()), Some("p".into()), Some("eviction".into())))
        );
        assert_eq!(target("/api/v1/namespaces/ns/secrets/s/log"), None);
        assert_eq!(target("/api/v1/pods/p"), None);
    }
}
