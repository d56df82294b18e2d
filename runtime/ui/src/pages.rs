//! The HTML pages: runs, a run, deployments (with their run forms), agents
//! and pools. Each handler reads the store, builds a view of plain strings,
//! and renders a template checked at compile time, which escapes every value
//! it shows. The only markup not written by a template is the server's own
//! SVG, whose text [`svg::escape`] escapes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use weft::model::{AgentRecord, Deployment, Level, LogLine, State as RunState, WorkPool};
use weft::store::{Cancelled, RunSummary, ScheduleError, StoreError};

use crate::Ui;
use crate::access::CSRF_FIELD;
use crate::form::{self, Field};
use crate::reads::{self, RunFilter};
use crate::svg;

/// What every page's frame shows.
pub struct Chrome {
    /// The page's title.
    pub title: String,
    /// Which tab is lit.
    pub nav: &'static str,
    /// The CSRF token its forms carry.
    pub csrf: String,
    /// Whether actions are hidden.
    pub read_only: bool,
}

impl Ui {
    fn chrome(&self, title: impl Into<String>, nav: &'static str) -> Chrome {
        Chrome { title: title.into(), nav, csrf: self.access.csrf().to_owned(), read_only: self.read_only }
    }
}

/// A page that could not be shown.
#[derive(Debug)]
pub enum PageError {
    /// No such run, deployment, ...
    NotFound(String),
    /// The request was wrong.
    BadRequest(String),
    /// The store failed; what it said goes to the UI's log, not the page,
    /// since it may name endpoints and options.
    Store(StoreError),
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        PageError::Store(error)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            PageError::NotFound(message) => (StatusCode::NOT_FOUND, message),
            PageError::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
            PageError::Store(error) => {
                tracing::error!(%error, "the store failed");
                (StatusCode::SERVICE_UNAVAILABLE, "the store could not be read; `weft ui`'s log says why".to_owned())
            }
        };
        let chrome = Chrome { title: status.to_string(), nav: "", csrf: String::new(), read_only: true };
        let page = ErrorPage { chrome, message };
        (status, render(&page)).into_response()
    }
}

fn render(page: &impl Template) -> Html<String> {
    Html(page.render().unwrap_or_else(|e| {
        format!("<!doctype html><title>error</title><p>the page failed: {}</p>", svg::escape(&e.to_string()))
    }))
}

type PageResult = Result<Response, PageError>;

/// A time for people, in UTC to the second.
pub fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string().replace('T', " ")
}

fn ago(t: SystemTime, now: SystemTime) -> String {
    let d = now.duration_since(t).unwrap_or_default();
    format!("{} ago", humantime::format_duration(Duration::from_secs(d.as_secs())))
}

/// `/`: the runs.
pub async fn home() -> Redirect {
    Redirect::to("/runs")
}

/// One row of a runs table.
pub struct RunRow {
    id: String,
    flow: String,
    deployment: String,
    state: String,
    class: String,
    started: String,
    duration: String,
    tags: String,
}

fn run_row(summary: &RunSummary, deployments: &[Deployment], now: SystemTime) -> RunRow {
    let tags = summary
        .run
        .deployment
        .as_ref()
        .and_then(|name| deployments.iter().find(|d| &d.name == name))
        .map(|d| d.tags.join(", "))
        .unwrap_or_default();
    RunRow {
        id: summary.run.id.clone(),
        flow: summary.run.flow_name.clone(),
        deployment: summary.run.deployment.clone().unwrap_or_default(),
        state: summary.state_text(),
        class: svg::state_class(summary.state),
        started: summary.started.map(time).unwrap_or_default(),
        duration: summary.elapsed_text(now),
        tags,
    }
}

/// One choice of a filter.
struct Choice {
    value: String,
    selected: bool,
}

fn choices(values: impl IntoIterator<Item = String>, chosen: Option<&str>) -> Vec<Choice> {
    values.into_iter().map(|value| Choice { selected: chosen == Some(value.as_str()), value }).collect()
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    chrome: Chrome,
    rows: Vec<RunRow>,
    next: Option<String>,
    states: Vec<Choice>,
    deployments: Vec<Choice>,
    tags: Vec<Choice>,
    chart: String,
}

/// `/runs`: runs newest first, filtered, a page at a time, with the chart.
pub async fn runs(State(ui): State<Arc<Ui>>, Query(filter): Query<RunFilter>) -> PageResult {
    let deployments = ui.store.deployments().await?;
    let page = reads::run_page(&ui.store, &filter, &deployments).await?;
    let now = SystemTime::now();
    let tags: BTreeSet<String> = deployments.iter().flat_map(|d| d.tags.iter().cloned()).collect();
    let stamp = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
    let state = filter.state.map(|s| s.to_string());
    let view = RunsPage {
        chrome: ui.chrome("Runs", "runs"),
        rows: page.runs.iter().map(|s| run_row(s, &deployments, now)).collect(),
        next: page.next.as_deref().map(|next| filter.query(Some(next))),
        states: choices(RunState::ALL.iter().map(ToString::to_string), state.as_deref()),
        deployments: choices(deployments.iter().map(|d| d.name.clone()), filter.deployment.as_deref()),
        tags: choices(tags, filter.tag.as_deref()),
        chart: format!("/runs/chart.svg?t={stamp}"),
    };
    Ok(render(&view).into_response())
}

/// `/runs/chart.svg`: runs per state over time.
pub async fn runs_chart(State(ui): State<Arc<Ui>>) -> PageResult {
    let recent = reads::recent_runs(&ui.store).await?;
    let svg = svg::runs_chart(&recent, SystemTime::now());
    Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "no-store")], svg).into_response())
}

struct StateRow {
    state: String,
    class: String,
    time: String,
    message: String,
    by: String,
}

/// One log line as the run page shows it.
pub struct LogRow {
    time: String,
    level: String,
    class: String,
    task: String,
    message: String,
}

/// The CSS class of a log level, which the level filter reads.
pub fn level_class(level: Level) -> &'static str {
    match level {
        Level::Trace => "level-trace",
        Level::Debug => "level-debug",
        Level::Info => "level-info",
        Level::Warn => "level-warn",
        Level::Error => "level-error",
    }
}

fn log_row(line: &LogLine) -> LogRow {
    let mut message = line.message.clone();
    for (key, value) in &line.fields {
        message.push_str(&format!(" {key}={value}"));
    }
    LogRow {
        time: humantime::format_rfc3339_millis(line.time).to_string(),
        level: line.level.to_string(),
        class: level_class(line.level).to_owned(),
        task: line.task_name.clone().unwrap_or_default(),
        message,
    }
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    chrome: Chrome,
    id: String,
    row: RunRow,
    done: bool,
    can_cancel: bool,
    pool: String,
    kubernetes_job: String,
    runner_host: String,
    states: Vec<StateRow>,
    parameters: String,
    result: Option<String>,
    error: Option<String>,
    timeline: String,
    tasks: u64,
    logs: Vec<LogRow>,
    earlier: usize,
    logs_after: String,
}

/// The most log lines a run page starts with.
const MAX_LOG_LINES: usize = 2_000;

/// `/runs/{id}`: a run's states, parameters, result, timeline and logs.
pub async fn run(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> PageResult {
    let Some(detail) = reads::run_detail(&ui.store, &id).await? else {
        return Err(PageError::NotFound(format!("no flow run `{id}` in this store")));
    };
    let deployments = ui.store.deployments().await?;
    let now = SystemTime::now();
    // The timeline draws the first task runs; the count is of them all.
    let page = ui.store.task_run_page(&id, 0, svg::MAX_ROWS).await?;
    let tasks = page.task_runs;
    let summary = &detail.summary;
    let start = summary.started.or(tasks.first().map(|t| t.started)).unwrap_or(summary.run.created);
    let end = summary.ended.unwrap_or(now).max(tasks.iter().filter_map(|t| t.ended).max().unwrap_or(start));
    // The page starts with the latest lines, read a chunk at a time; the
    // API pages through all.
    let mut lines = std::collections::VecDeque::new();
    let mut earlier = 0;
    let after = ui
        .store
        .visit_logs(&id, None, |chunk| {
            lines.extend(chunk);
            let over = lines.len().saturating_sub(MAX_LOG_LINES);
            lines.drain(..over);
            earlier += over;
        })
        .await?;
    let done = summary.state.is_some_and(RunState::is_final);
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let view = RunPage {
        chrome: ui.chrome(format!("Run {id}"), "runs"),
        row: run_row(summary, &deployments, now),
        done,
        can_cancel: !done && !ui.read_only,
        pool: match (&summary.run.work_pool, &summary.run.work_queue) {
            (Some(pool), Some(queue)) => format!("{pool} / {queue}"),
            (Some(pool), None) => pool.clone(),
            _ => String::new(),
        },
        kubernetes_job: detail.kubernetes_job.clone().unwrap_or_default(),
        runner_host: detail.runner_host.clone().unwrap_or_default(),
        states: detail
            .states
            .iter()
            .map(|s| StateRow {
                state: s.state.to_string(),
                class: svg::state_class(Some(s.state)),
                time: time(s.time),
                message: s.message.clone().unwrap_or_default(),
                by: s.by.clone().unwrap_or_default(),
            })
            .collect(),
        parameters: pretty(&serde_json::Value::Object(summary.run.parameters.clone())),
        result: detail.result.as_ref().map(pretty),
        error: detail.error().map(str::to_owned),
        timeline: svg::timeline(&tasks, page.counts.total(), start, end),
        tasks: page.counts.total(),
        logs: lines.iter().map(log_row).collect(),
        earlier,
        logs_after: after.unwrap_or_default(),
        id,
    };
    Ok(render(&view).into_response())
}

/// A form that carries only the CSRF token.
#[derive(Debug, serde::Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
}

fn csrf_refused() -> PageError {
    PageError::BadRequest(
        "the form's CSRF token is missing or not this UI's: reload the page and send the form again".to_owned(),
    )
}

/// `POST /runs/{id}/cancel`.
pub async fn cancel(State(ui): State<Arc<Ui>>, Path(id): Path<String>, Form(form): Form<ActionForm>) -> PageResult {
    if !ui.access.csrf_ok(form.csrf.as_deref()) {
        return Err(csrf_refused());
    }
    match ui.store.cancel_run(&id, "ui").await? {
        None => Err(PageError::NotFound(format!("no flow run `{id}` in this store"))),
        Some(Cancelled::AlreadyEnded(state)) => Err(PageError::BadRequest(format!(
            "flow run `{id}` is {} already; only a run that has not ended can be cancelled",
            state.map_or_else(|| "ended".to_owned(), |s| s.to_string())
        ))),
        Some(_) => Ok(Redirect::to(&format!("/runs/{id}")).into_response()),
    }
}

struct ScheduleRow {
    index: usize,
    words: String,
    next: Vec<String>,
    active: bool,
}

struct StripCell {
    id: String,
    state: String,
    class: String,
}

struct DeploymentRow {
    name: String,
    flow: String,
    description: String,
    schedules: Vec<ScheduleRow>,
    tags: String,
    pool: String,
    strip: Vec<StripCell>,
}

fn deployment_row(deployment: &Deployment, recent: &[RunSummary], now: SystemTime) -> DeploymentRow {
    DeploymentRow {
        name: deployment.name.clone(),
        flow: deployment.flow_name.clone(),
        description: deployment.description.clone().unwrap_or_default(),
        schedules: deployment
            .schedule
            .iter()
            .enumerate()
            .map(|(index, s)| ScheduleRow {
                index,
                words: s.describe(),
                next: if s.active { s.next(now, 3).into_iter().map(time).collect() } else { Vec::new() },
                active: s.active,
            })
            .collect(),
        tags: deployment.tags.join(", "),
        pool: format!("{} / {}", deployment.pool_name(), deployment.queue_name()),
        strip: recent
            .iter()
            .filter(|r| r.run.deployment.as_ref() == Some(&deployment.name))
            .take(10)
            .map(|r| StripCell {
                id: r.run.id.clone(),
                state: r.state.map(|s| s.to_string()).unwrap_or_default(),
                class: svg::state_class(r.state),
            })
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "deployments.html")]
struct DeploymentsPage {
    chrome: Chrome,
    rows: Vec<DeploymentRow>,
}

/// `/deployments`: schedules in words, next times, last runs.
pub async fn deployments(State(ui): State<Arc<Ui>>) -> PageResult {
    let deployments = ui.store.deployments().await?;
    let recent = reads::recent_runs(&ui.store).await?;
    let now = SystemTime::now();
    let rows = deployments.iter().map(|d| deployment_row(d, &recent, now)).collect();
    Ok(render(&DeploymentsPage { chrome: ui.chrome("Deployments", "deployments"), rows }).into_response())
}

#[derive(Template)]
#[template(path = "deployment.html")]
struct DeploymentPage {
    chrome: Chrome,
    row: DeploymentRow,
    fields: Vec<Field>,
    has_schema: bool,
    json: String,
    errors: Vec<String>,
    rows: Vec<RunRow>,
}

async fn find(ui: &Ui, name: &str) -> Result<Deployment, PageError> {
    ui.store.deployment(name).await?.ok_or_else(|| PageError::NotFound(format!("no deployment `{name}` in this store")))
}

async fn deployment_page(
    ui: &Ui,
    deployment: &Deployment,
    fields: Vec<Field>,
    json: String,
    errors: Vec<String>,
) -> Result<DeploymentPage, PageError> {
    let recent = reads::recent_runs(&ui.store).await?;
    let deployments = [deployment.clone()];
    let now = SystemTime::now();
    Ok(DeploymentPage {
        chrome: ui.chrome(format!("Deployment {}", deployment.name), "deployments"),
        row: deployment_row(deployment, &recent, now),
        has_schema: deployment.parameters_schema.is_some(),
        fields,
        json,
        errors,
        rows: recent
            .iter()
            .filter(|r| r.run.deployment.as_ref() == Some(&deployment.name))
            .take(20)
            .map(|r| run_row(r, &deployments, now))
            .collect(),
    })
}

/// `/deployments/{name}`: its schedules, its last runs, and its run form.
pub async fn deployment(State(ui): State<Arc<Ui>>, Path(name): Path<String>) -> PageResult {
    let deployment = find(&ui, &name).await?;
    let fields = form::fields(&deployment);
    let json = serde_json::to_string_pretty(&deployment.parameters).unwrap_or_default();
    let page = deployment_page(&ui, &deployment, fields, json, Vec::new()).await?;
    Ok(render(&page).into_response())
}

/// `POST /deployments/{name}/run`: the run form. A good one schedules a run
/// now and shows it; a bad one comes back with the problems beside the
/// fields (422).
pub async fn run_deployment(
    State(ui): State<Arc<Ui>>,
    Path(name): Path<String>,
    Form(sent): Form<Vec<(String, String)>>,
) -> PageResult {
    let csrf = sent.iter().find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v.as_str());
    if !ui.access.csrf_ok(csrf) {
        return Err(csrf_refused());
    }
    let deployment = find(&ui, &name).await?;
    let json_sent = sent.iter().find(|(k, _)| k == "parameters").map(|(_, v)| v.clone()).unwrap_or_default();
    let (mut fields, parsed) = if deployment.parameters_schema.is_some() {
        let (fields, parameters) = form::parse(&deployment, &sent);
        (fields, parameters.ok_or_else(Vec::new))
    } else if json_sent.trim().is_empty() {
        (Vec::new(), Ok(Default::default()))
    } else {
        let parsed = match serde_json::from_str::<serde_json::Value>(&json_sent) {
            Ok(serde_json::Value::Object(parameters)) => Ok(parameters),
            Ok(_) => Err(vec!["the parameters must be a JSON object: {\"name\": value}".to_owned()]),
            Err(e) => Err(vec![format!("the parameters are not JSON: {e}")]),
        };
        (Vec::new(), parsed)
    };
    let errors = match parsed {
        Ok(parameters) => match schedule(&ui, &deployment, parameters).await {
            Ok(id) => return Ok(Redirect::to(&format!("/runs/{id}")).into_response()),
            Err(Refused::Parameters(error)) => form::place(&mut fields, &error),
            Err(Refused::Job(reason)) => vec![reason],
            Err(Refused::Store(e)) => return Err(e.into()),
        },
        Err(errors) => errors,
    };
    let page = deployment_page(&ui, &deployment, fields, json_sent, errors).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
}

/// Why a run of a deployment was not scheduled.
#[derive(Debug)]
pub enum Refused {
    /// The parameters do not pass the flow's schema.
    Parameters(weft::model::ParameterError),
    /// The deployment's job variables no longer make a Job with its pool's
    /// template.
    Job(String),
    /// The store failed.
    Store(StoreError),
}

impl From<ScheduleError> for Refused {
    fn from(error: ScheduleError) -> Self {
        match error {
            ScheduleError::Parameters(e) => Refused::Parameters(e),
            ScheduleError::Store(e) => Refused::Store(e),
        }
    }
}

/// Schedules a run of a deployment now, with the checks `weft deployment
/// run` makes: the parameters against the schema, the Job against the
/// pool's template as it is now.
pub(crate) async fn schedule(
    ui: &Ui,
    deployment: &Deployment,
    parameters: weft::model::Parameters,
) -> Result<String, Refused> {
    ui.store.check_job(deployment).await.map_err(|reason| {
        Refused::Job(format!(
            "deployment `{}` cannot make its runs' Job: {reason}; fix its job variables and `weft deploy` it again",
            deployment.name
        ))
    })?;
    match ui.store.schedule_run(deployment, parameters, SystemTime::now(), None, 1).await? {
        Some(run) => Ok(run.id),
        None => Err(Refused::Store(StoreError::Corrupt {
            url: ui.store.url().to_owned(),
            path: "runs/".to_owned(),
            reason: "a run with a fresh id exists already".to_owned(),
        })),
    }
}

/// `POST /deployments/{name}/schedules/{index}/{pause|resume}`.
pub async fn set_schedule(
    State(ui): State<Arc<Ui>>,
    Path((name, index, action)): Path<(String, usize, String)>,
    Form(form): Form<ActionForm>,
) -> PageResult {
    if !ui.access.csrf_ok(form.csrf.as_deref()) {
        return Err(csrf_refused());
    }
    let active = match action.as_str() {
        "pause" => false,
        "resume" => true,
        other => return Err(PageError::NotFound(format!("no schedule action `{other}`: pause or resume"))),
    };
    let mut deployment = find(&ui, &name).await?;
    let Some(schedule) = deployment.schedule.get_mut(index) else {
        return Err(PageError::NotFound(format!("deployment `{name}` has no schedule {index}")));
    };
    schedule.active = active;
    deployment.updated = SystemTime::now();
    ui.store.put_deployment(&deployment).await?;
    Ok(Redirect::to(&format!("/deployments/{name}")).into_response())
}

struct AgentRow {
    name: String,
    status: String,
    infrastructure: String,
    pools: String,
    in_hand: String,
    host: String,
    version: String,
    beat: String,
}

#[derive(Template)]
#[template(path = "agents.html")]
struct AgentsPage {
    chrome: Chrome,
    rows: Vec<AgentRow>,
}

fn agent_row(record: &AgentRecord, now: SystemTime) -> AgentRow {
    let queues =
        if record.queues.is_empty() { String::new() } else { format!(" (queues {})", record.queues.join(", ")) };
    AgentRow {
        name: record.name.clone(),
        status: record.status(now).to_string(),
        infrastructure: record.infrastructure.clone(),
        pools: format!("{}{queues}", record.pools.join(", ")),
        in_hand: format!("{} of {}", record.runs_in_hand, record.limit),
        host: record.host.clone(),
        version: record.version.clone(),
        beat: ago(record.time, now),
    }
}

/// `/agents`: every agent's last heartbeat record.
pub async fn agents(State(ui): State<Arc<Ui>>) -> PageResult {
    let now = SystemTime::now();
    let rows = ui.store.agent_records().await?.iter().map(|r| agent_row(r, now)).collect();
    Ok(render(&AgentsPage { chrome: ui.chrome("Agents", "agents"), rows }).into_response())
}

struct QueueRow {
    name: String,
    priority: u32,
    limit: String,
}

struct PoolRow {
    name: String,
    kind: String,
    paused: bool,
    limit: String,
    description: String,
    queues: Vec<QueueRow>,
    template: String,
}

#[derive(Template)]
#[template(path = "pools.html")]
struct PoolsPage {
    chrome: Chrome,
    rows: Vec<PoolRow>,
}

fn limit(limit: Option<u32>) -> String {
    limit.map_or_else(|| "none".to_owned(), |l| l.to_string())
}

fn pool_row(pool: &WorkPool) -> PoolRow {
    PoolRow {
        name: pool.name.clone(),
        kind: pool.kind.to_string(),
        paused: pool.paused,
        limit: limit(pool.concurrency_limit),
        description: pool.description.clone().unwrap_or_default(),
        queues: pool
            .queues
            .iter()
            .map(|q| QueueRow { name: q.name.clone(), priority: q.priority, limit: limit(q.concurrency_limit) })
            .collect(),
        template: pool.base_job_template.clone().unwrap_or_default(),
    }
}

/// `/pools`: work pools, their queues, limits and templates.
pub async fn pools(State(ui): State<Arc<Ui>>) -> PageResult {
    let rows = ui.store.pools().await?.iter().map(pool_row).collect();
    Ok(render(&PoolsPage { chrome: ui.chrome("Work pools", "pools"), rows }).into_response())
}

const CSS: &str = include_str!("../assets/weft.css");
const JS: &str = include_str!("../assets/weft.js");

/// `/assets/{file}`: the stylesheet and script, built into the binary.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (kind, body) = match file.as_str() {
        "weft.css" => ("text/css; charset=utf-8", CSS),
        "weft.js" => ("text/javascript; charset=utf-8", JS),
        _ => return (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}
