//! weft's web UI and the JSON API it is built on (`weft ui`).
//!
//! The UI is a stateless process over the store: it reads what agents,
//! runners and the command line write, and writes only what the command line
//! writes (a run of a deployment, a cancel request, a paused schedule). Any
//! number of them can serve one store, and a closed one costs nothing.
//!
//! - [`pages`]: the HTML pages, rendered on the server from templates
//!   checked at compile time, with a little JavaScript for what updates live;
//! - [`api`]: the JSON API under `/api/`, which scripts use too;
//! - [`access`]: the token, the CSRF check and `--read-only`;
//! - [`svg`]: the charts, drawn on the server;
//! - [`form`]: a run form from a flow's parameter JSON Schema;
//! - [`reads`]: what pages and API read from the store.
//!
//! Calls the `weft` library's [`store`](weft::store) and
//! [`model`](weft::model); nothing calls into it but the `weft` binary.

pub mod access;
pub mod api;
pub mod form;
pub mod pages;
pub mod reads;
pub mod svg;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use weft::store::Store;

/// The port Prefect's UI listens on, which its users know.
pub const DEFAULT_PORT: u16 = 4200;

/// How `weft ui` serves.
#[derive(Debug, Clone)]
pub struct UiConfig {
    /// The store it shows.
    pub store: Store,
    /// The token every request must carry; `None` serves without one, which
    /// [`UiConfig::check`] allows on a loopback address only, unless
    /// `insecure_no_auth`.
    pub token: Option<String>,
    /// Serve without a token on any address.
    pub insecure_no_auth: bool,
    /// Hide and refuse every action.
    pub read_only: bool,
}

impl UiConfig {
    /// Refuses to serve without a token on an address other people reach.
    pub fn check(&self, listen: SocketAddr) -> Result<(), String> {
        if let Some(token) = &self.token
            && token.trim().is_empty()
        {
            return Err("the UI token is empty: put a long random string in the --token-file or in \
                        WEFT_UI_TOKEN (for example `openssl rand -hex 32`)"
                .to_owned());
        }
        if self.token.is_none() && !self.insecure_no_auth && !listen.ip().is_loopback() {
            return Err(format!(
                "`weft ui --listen {listen}` would let anyone who reaches {} run and cancel flows: give a \
                 token with --token-file or WEFT_UI_TOKEN, or say --insecure-no-auth (with --read-only, \
                 perhaps) if something in front of it checks who comes in",
                listen.ip()
            ));
        }
        Ok(())
    }
}

/// What every handler reads.
pub struct Ui {
    store: Store,
    access: access::Access,
    read_only: bool,
    /// How often live views look at the store again.
    poll: Duration,
}

impl Ui {
    /// The UI over a store.
    pub fn new(config: UiConfig) -> Arc<Self> {
        // A local store is cheap to look at; an object store is asked once a
        // second per open page at most.
        let poll = if config.store.is_cloud() { Duration::from_secs(1) } else { Duration::from_millis(50) };
        Arc::new(Ui {
            access: access::Access::new(config.token.as_deref()),
            store: config.store,
            read_only: config.read_only,
            poll,
        })
    }
}

/// The whole UI: pages, assets and API, behind the token.
pub fn router(ui: Arc<Ui>) -> Router {
    let pages = Router::new()
        .route("/", get(pages::home))
        .route("/runs", get(pages::runs))
        .route("/runs/chart.svg", get(pages::runs_chart))
        .route("/runs/{id}", get(pages::run))
        .route("/runs/{id}/cancel", post(pages::cancel))
        .route("/deployments", get(pages::deployments))
        .route("/deployments/{name}", get(pages::deployment))
        .route("/deployments/{name}/run", post(pages::run_deployment))
        .route("/deployments/{name}/schedules/{index}/{action}", post(pages::set_schedule))
        .route("/agents", get(pages::agents))
        .route("/pools", get(pages::pools))
        .route("/assets/{file}", get(pages::asset));
    let api = Router::new()
        .route("/api/runs", get(api::runs))
        .route("/api/runs/{id}", get(api::run))
        .route("/api/runs/{id}/tasks", get(api::task_runs))
        .route("/api/runs/{id}/logs", get(api::logs))
        .route("/api/runs/{id}/logs/stream", get(api::log_stream))
        .route("/api/runs/{id}/cancel", post(api::cancel))
        .route("/api/deployments", get(api::deployments))
        .route("/api/deployments/{name}", get(api::deployment))
        .route("/api/deployments/{name}/runs", post(api::run_deployment))
        .route("/api/agents", get(api::agents))
        .route("/api/pools", get(api::pools));
    pages
        .merge(api)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(ui.clone(), access::guard))
        .with_state(ui)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "no such page\n").into_response()
}

/// How long requests in flight may take to finish once the UI is asked to
/// stop. A page following a run holds its log stream open for as long as
/// the run lasts, so waiting for every connection would never end.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Serves the UI on `listener` until `shutdown` completes, then lets
/// requests in flight finish for at most [`SHUTDOWN_GRACE`].
pub async fn serve(
    config: UiConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use std::future::IntoFuture;

    let app = router(Ui::new(config));
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        let _ = stopping.send(true);
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(signal).into_future();
    let grace = async move {
        if stopped.wait_for(|stopped| *stopped).await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result,
        () = grace => Ok(()),
    }
}
