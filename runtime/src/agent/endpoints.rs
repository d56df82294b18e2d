//! The agent's operator endpoints (`weft agent --metrics-listen ADDR`):
//!
//! - `/metrics`: Prometheus text format, from the `metrics` facade that the
//!   agent, the store and the Kubernetes client record into;
//! - `/healthz`: alive, as long as the agent loop keeps turning;
//! - `/readyz`: the store and, for Kubernetes, the API server answer now
//!   (asked at most every few seconds, however often the probe comes).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Mutex;

use crate::store::Store;

/// How long an answer of `/readyz` is reused.
const READY_FOR: Duration = Duration::from_secs(5);
/// How long each of its checks may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// When the agent loop last turned, as milliseconds since the epoch.
#[derive(Debug, Clone, Default)]
pub struct Liveness(Arc<AtomicU64>);

impl Liveness {
    /// Records a turn of the loop now.
    pub fn beat(&self) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        self.0.store(now, Ordering::Relaxed);
    }

    /// How long ago the loop last turned; `None` before its first turn.
    fn since(&self) -> Option<Duration> {
        let last = self.0.load(Ordering::Relaxed);
        (last > 0)
            .then(|| SystemTime::now().duration_since(UNIX_EPOCH + Duration::from_millis(last)).unwrap_or_default())
    }
}

/// What the endpoints look at.
pub struct Endpoints {
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// The agent loop's turns.
    pub liveness: Liveness,
    /// A loop that has not turned for this long is not alive.
    pub stalled_after: Duration,
    /// The store, asked by `/readyz`.
    pub store: Store,
    /// The Kubernetes client, asked by `/readyz` (Kubernetes agents).
    pub kube: Option<kube::Client>,
    ready: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl Endpoints {
    /// Endpoints over these parts.
    pub fn new(
        metrics: PrometheusHandle,
        liveness: Liveness,
        stalled_after: Duration,
        store: Store,
        kube: Option<kube::Client>,
    ) -> Self {
        Endpoints { metrics, liveness, stalled_after, store, kube, ready: Mutex::new(None) }
    }

    /// Asks the store and the API server, unless asked less than
    /// [`READY_FOR`] ago.
    async fn readiness(&self) -> Result<(), String> {
        let mut cached = self.ready.lock().await;
        if let Some((at, answer)) = cached.as_ref()
            && at.elapsed() < READY_FOR
        {
            return answer.clone();
        }
        let answer = self.check().await;
        *cached = Some((Instant::now(), answer.clone()));
        answer
    }

    async fn check(&self) -> Result<(), String> {
        match tokio::time::timeout(CHECK_TIMEOUT, self.store.check()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("the store does not answer: {e}")),
            Err(_) => return Err(format!("the store `{}` did not answer within {CHECK_TIMEOUT:?}", self.store.url())),
        }
        if let Some(client) = &self.kube {
            match tokio::time::timeout(CHECK_TIMEOUT, client.apiserver_version()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(format!("the Kubernetes API server does not answer: {e}")),
                Err(_) => return Err(format!("the Kubernetes API server did not answer within {CHECK_TIMEOUT:?}")),
            }
        }
        Ok(())
    }
}

/// Serves the endpoints on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, endpoints: Arc<Endpoints>) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(endpoints);
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(address, error = %e, "the metrics and probe endpoints stopped");
    }
}

/// Binds `address` for [`serve`], with an error that names it.
pub async fn bind(address: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address} for metrics and probes ({e}): pick a free port"))
}

async fn metrics(State(endpoints): State<Arc<Endpoints>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], endpoints.metrics.render()).into_response()
}

async fn healthz(State(endpoints): State<Arc<Endpoints>>) -> Response {
    match endpoints.liveness.since() {
        Some(since) if since > endpoints.stalled_after => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the agent loop last turned {} ago\n",
                humantime::format_duration(Duration::from_secs(since.as_secs()))
            ),
        )
            .into_response(),
        // Starting: alive, not yet ready.
        _ => (StatusCode::OK, "ok\n").into_response(),
    }
}

async fn readyz(State(endpoints): State<Arc<Endpoints>>) -> Response {
    match endpoints.readiness().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}
