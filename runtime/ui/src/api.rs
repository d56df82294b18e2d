//! The JSON API under `/api/`, which the pages' live parts and scripts use.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /api/runs?state=&deployment=&tag=&limit=&before=` | a page of runs, newest first, and `next` for the page after |
//! | `GET /api/runs/{id}` | a run: states, parameters, result, Job and pod |
//! | `GET /api/runs/{id}/tasks?skip=&limit=` | a page of its task runs, their counts by state, and `next` |
//! | `GET /api/runs/{id}/logs?after=&level=` | its log lines after a cursor, and the next cursor |
//! | `GET /api/runs/{id}/logs/stream?after=&level=` | the same as server-sent events, until the run ends |
//! | `POST /api/runs/{id}/cancel` | cancel it |
//! | `GET /api/deployments`, `GET /api/deployments/{name}` | deployments |
//! | `POST /api/deployments/{name}/runs` | run one now: `{"parameters": {...}}` |
//! | `GET /api/agents`, `GET /api/pools` | agents' heartbeat records, work pools |
//!
//! Errors are `{"error": "..."}` with a status that says what kind.
//! Actions need `Content-Type: application/json`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use weft::model::{Deployment, Level, LogLine, Parameters};
use weft::store::{Cancelled, StoreError};

use crate::Ui;
use crate::reads::{self, RunFilter};

/// An API error: a status and a message.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "the store failed");
        ApiError(StatusCode::SERVICE_UNAVAILABLE, "the store could not be read; `weft ui`'s log says why".to_owned())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

fn not_found(what: String) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, what)
}

/// Actions must say they send JSON: a cross-site form cannot.
fn json_only(headers: &HeaderMap) -> Result<(), ApiError> {
    let kind = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if kind.split(';').next().is_some_and(|k| k.trim().eq_ignore_ascii_case("application/json")) {
        Ok(())
    } else {
        Err(ApiError(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send `Content-Type: application/json`".to_owned()))
    }
}

/// `GET /api/runs`.
pub async fn runs(State(ui): State<Arc<Ui>>, Query(filter): Query<RunFilter>) -> ApiResult {
    let deployments = ui.store.deployments().await?;
    Ok(Json(reads::run_page(&ui.store, &filter, &deployments).await?).into_response())
}

/// `GET /api/runs/{id}`.
pub async fn run(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> ApiResult {
    match reads::run_detail(&ui.store, &id).await? {
        Some(detail) => Ok(Json(detail).into_response()),
        None => Err(not_found(format!("no flow run `{id}`"))),
    }
}

/// Which task runs: `limit` (default 1,000, at most 10,000) after the
/// first `skip`, in the order they began.
#[derive(Debug, Default, Deserialize)]
pub struct TaskRunQuery {
    #[serde(default)]
    skip: u64,
    #[serde(default)]
    limit: Option<usize>,
}

/// `GET /api/runs/{id}/tasks`: `{"task_runs", "counts", "total"}`, and
/// `next` (the `skip` of the page after) unless this is the last page.
pub async fn task_runs(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    Query(query): Query<TaskRunQuery>,
) -> ApiResult {
    if ui.store.read_run(&id).await?.is_none() {
        return Err(not_found(format!("no flow run `{id}`")));
    }
    let page = ui.store.task_run_page(&id, query.skip, query.limit.unwrap_or(1000).clamp(1, 10_000)).await?;
    let mut body = json!({ "task_runs": page.task_runs, "counts": page.counts, "total": page.counts.total() });
    if page.after() > 0 {
        body["next"] = json!(page.skipped + page.task_runs.len() as u64);
    }
    Ok(Json(body).into_response())
}

/// Which log lines: after a cursor, at a level or above.
#[derive(Debug, Default, Deserialize)]
pub struct LogQuery {
    /// The `next` of an earlier answer.
    #[serde(default)]
    after: Option<String>,
    /// `debug`, `info`, `warn`, `error`.
    #[serde(default)]
    level: Option<String>,
}

impl LogQuery {
    fn level(&self) -> Result<Level, ApiError> {
        match self.level.as_deref().filter(|l| !l.is_empty()) {
            None => Ok(Level::Trace),
            Some(text) => serde_json::from_value(Value::String(text.to_lowercase())).map_err(|_| {
                ApiError(StatusCode::BAD_REQUEST, format!("`{text}` is not a level: trace, debug, info, warn or error"))
            }),
        }
    }
}

fn at_least(lines: Vec<LogLine>, level: Level) -> Vec<LogLine> {
    lines.into_iter().filter(|l| l.level >= level).collect()
}

/// `GET /api/runs/{id}/logs`.
pub async fn logs(State(ui): State<Arc<Ui>>, Path(id): Path<String>, Query(query): Query<LogQuery>) -> ApiResult {
    let level = query.level()?;
    if ui.store.read_run(&id).await?.is_none() {
        return Err(not_found(format!("no flow run `{id}`")));
    }
    let (lines, next) = ui.store.read_logs(&id, query.after.as_deref().filter(|a| !a.is_empty())).await?;
    Ok(Json(json!({ "lines": at_least(lines, level), "next": next })).into_response())
}

/// How often the stream asks whether the run has ended.
const END_CHECK: Duration = Duration::from_secs(1);

struct Follow {
    ui: Arc<Ui>,
    id: String,
    after: Option<String>,
    level: Level,
    checked: Instant,
    ended: bool,
    done: bool,
}

/// `GET /api/runs/{id}/logs/stream`: server-sent events. Each `lines` event
/// carries `{"lines": [...], "next": cursor}`; an `end` event says the run
/// has ended and every line is sent, and the stream closes.
pub async fn log_stream(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let level = query.level()?;
    if ui.store.read_run(&id).await?.is_none() {
        return Err(not_found(format!("no flow run `{id}`")));
    }
    let after = query.after.filter(|a| !a.is_empty());
    let start = Follow { ui, id, after, level, checked: Instant::now() - END_CHECK, ended: false, done: false };
    let stream = futures::stream::unfold(start, |mut follow| async move {
        if follow.done {
            return None;
        }
        loop {
            // Whether the run had ended is read before its logs, so that
            // lines written just before the end are sent before `end`.
            if follow.checked.elapsed() >= END_CHECK {
                follow.checked = Instant::now();
                follow.ended = matches!(
                    follow.ui.store.latest_state(&follow.id).await,
                    Ok(Some((_, record))) if record.state.is_final()
                );
            }
            let ended = follow.ended;
            match follow.ui.store.read_logs(&follow.id, follow.after.as_deref()).await {
                Ok((lines, next)) if next != follow.after => {
                    follow.after = next.clone();
                    let lines = at_least(lines, follow.level);
                    if lines.is_empty() {
                        continue;
                    }
                    let event = Event::default().event("lines").json_data(json!({ "lines": lines, "next": next }));
                    return Some((Ok(event.unwrap_or_default()), follow));
                }
                Ok(_) if ended => {
                    follow.done = true;
                    return Some((Ok(Event::default().event("end").data("ended")), follow));
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(run = %follow.id, %error, "could not read the run's logs"),
            }
            tokio::time::sleep(follow.ui.poll).await;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `POST /api/runs/{id}/cancel`.
pub async fn cancel(State(ui): State<Arc<Ui>>, Path(id): Path<String>, headers: HeaderMap) -> ApiResult {
    json_only(&headers)?;
    let outcome = match ui.store.cancel_run(&id, "ui").await? {
        None => return Err(not_found(format!("no flow run `{id}`"))),
        Some(Cancelled::AlreadyEnded(state)) => {
            return Err(ApiError(
                StatusCode::CONFLICT,
                format!(
                    "flow run `{id}` is {} already; only a run that has not ended can be cancelled",
                    state.map_or_else(|| "ended".to_owned(), |s| s.to_string())
                ),
            ));
        }
        Some(Cancelled::BeforeStart) => "cancelled",
        Some(Cancelled::Requested) => "cancelling",
        Some(Cancelled::Stale) => "crashed",
    };
    Ok(Json(json!({ "id": id, "outcome": outcome })).into_response())
}

/// `GET /api/deployments`.
pub async fn deployments(State(ui): State<Arc<Ui>>) -> ApiResult {
    Ok(Json(json!({ "deployments": ui.store.deployments().await? })).into_response())
}

async fn find(ui: &Ui, name: &str) -> Result<Deployment, ApiError> {
    ui.store.deployment(name).await?.ok_or_else(|| not_found(format!("no deployment `{name}`")))
}

/// `GET /api/deployments/{name}`.
pub async fn deployment(State(ui): State<Arc<Ui>>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(find(&ui, &name).await?).into_response())
}

/// The body of `POST /api/deployments/{name}/runs`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Parameters over the deployment's defaults.
    #[serde(default)]
    parameters: Parameters,
}

/// `POST /api/deployments/{name}/runs`: 201 with the run's id, or 422 with
/// the parameter problems (`problems: [{parameter, message}]`).
pub async fn run_deployment(
    State(ui): State<Arc<Ui>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    json_only(&headers)?;
    let request: RunRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RunRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError(StatusCode::BAD_REQUEST, format!("the body is not {{\"parameters\": {{...}}}}: {e}"))
        })?
    };
    let deployment = find(&ui, &name).await?;
    match crate::pages::schedule(&ui, &deployment, request.parameters).await {
        Ok(id) => Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response()),
        Err(crate::pages::Refused::Parameters(error)) => {
            let problems: Vec<Value> =
                error.problems.iter().map(|p| json!({ "parameter": p.parameter, "message": p.message })).collect();
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "error": error.to_string().replace('\n', "; "), "problems": problems })),
            )
                .into_response())
        }
        Err(crate::pages::Refused::Job(reason)) => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, reason)),
        Err(crate::pages::Refused::Store(e)) => Err(e.into()),
    }
}

/// `GET /api/agents`.
pub async fn agents(State(ui): State<Arc<Ui>>) -> ApiResult {
    let now = std::time::SystemTime::now();
    let agents: Vec<Value> = ui
        .store
        .agent_records()
        .await?
        .into_iter()
        .map(|record| {
            let status = record.status(now).to_string();
            let mut value = serde_json::to_value(record).unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                object.insert("status".into(), Value::String(status));
            }
            value
        })
        .collect();
    Ok(Json(json!({ "agents": agents })).into_response())
}

/// `GET /api/pools`.
pub async fn pools(State(ui): State<Arc<Ui>>) -> ApiResult {
    Ok(Json(json!({ "pools": ui.store.pools().await? })).into_response())
}
