//! The webhook server: `POST /validate` over HTTPS, and probes plus `/metrics` on a second
//! plain-HTTP port.
//!
//! [`router`] and [`probe_router`] build the routes (tested with `oneshot`); [`serve`] binds
//! them, terminates TLS and shuts down gracefully. Layers, outermost first: tracing, a
//! concurrency limit, the body-size limit; the admission deadline is derived per request
//! from the API server's `?timeout=`.

pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::admission::{self, ClusterView, HttpReply, NoCluster};
use crate::cluster::PullSecrets;
use crate::cluster::{Namespaces, PolicyHealth};
use crate::engine::Engine;
use crate::evidence::Credentials;
use crate::metrics::Metrics;
use crate::policy::Labels;

/// Request-handling limits and timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Largest AdmissionReview body accepted (the API server sends up to 3 MiB objects).
    pub max_body_bytes: usize,
    /// Deadline when the API server sends no `?timeout=`.
    pub default_timeout: Duration,
    /// Requests handled at once; more wait.
    pub max_concurrency: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { max_body_bytes: 6 << 20, default_timeout: Duration::from_secs(10), max_concurrency: 1024 }
    }
}

/// Shared state of both routers.
#[derive(Clone, Debug)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub metrics: Arc<Metrics>,
    /// Set once policies are loaded (at once from files; after the first sync from the cluster).
    pub ready: Arc<AtomicBool>,
    /// Set while the webhook listener accepts; cleared on shutdown.
    pub serving: Arc<AtomicBool>,
    /// Namespace labels from the cluster; `None` in file mode.
    pub namespaces: Option<Namespaces>,
    /// Pull secrets from the cluster; `None` in file mode.
    pub pull_secrets: Option<PullSecrets>,
    /// Whether the cluster's policies are kept current; `None` in file mode.
    pub policy_health: Option<PolicyHealth>,
    pub settings: Settings,
}

impl AppState {
    /// State for file mode: ready at once.
    pub fn new(engine: Arc<Engine>, metrics: Arc<Metrics>, settings: Settings) -> Self {
        AppState {
            engine,
            metrics,
            ready: Arc::new(AtomicBool::new(true)),
            serving: Arc::new(AtomicBool::new(false)),
            namespaces: None,
            pull_secrets: None,
            policy_health: None,
            settings,
        }
    }
}

#[async_trait::async_trait]
impl ClusterView for AppState {
    /// From the cluster, or in file mode the name label, the one label every namespace carries.
    fn labels(&self, namespace: &str) -> Labels {
        match &self.namespaces {
            Some(n) => n.labels(namespace),
            None => NoCluster.labels(namespace),
        }
    }

    async fn pull_credentials(&self, namespace: &str, pod_spec: &serde_json::Value) -> Credentials {
        match &self.pull_secrets {
            Some(p) => p.credentials(namespace, pod_spec).await,
            None => Credentials::default(),
        }
    }
}

#[derive(Deserialize)]
struct ValidateQuery {
    timeout: Option<String>,
}

/// The deadline for an answer: the API server's timeout, less a margin for the response to
/// travel back (a tenth, between 100 ms and 1 s).
pub fn deadline_for(timeout: Option<&str>, default: Duration) -> Duration {
    // Unparseable or absurd (`?timeout=10000000000000000000000s`): the default, never a panic.
    let timeout = timeout.and_then(|t| crate::duration::parse(t).ok()).unwrap_or(default).min(Duration::from_secs(30));
    let margin = (timeout / 10).clamp(Duration::from_millis(100), Duration::from_secs(1));
    timeout.saturating_sub(margin)
}

/// The webhook routes.
pub fn router(state: AppState) -> Router {
    let limit = state.settings.max_body_bytes;
    let concurrency = state.settings.max_concurrency;
    Router::new()
        .route("/validate", post(validate))
        .layer(DefaultBodyLimit::max(limit))
        .layer(GlobalConcurrencyLimitLayer::new(concurrency))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// `/healthz`, `/readyz` and `/metrics`.
pub fn probe_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn validate(State(state): State<AppState>, Query(q): Query<ValidateQuery>, body: Bytes) -> Response {
    let started = Instant::now();
    let deadline = started + deadline_for(q.timeout.as_deref(), state.settings.default_timeout);
    let answer = admission::review(&state.engine, &body, deadline, &state).await;
    match answer {
        HttpReply::Review { body, decision } => {
            state.metrics.admission(decision, started.elapsed());
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        HttpReply::BadRequest(message) => {
            state.metrics.admission("error", started.elapsed());
            (StatusCode::BAD_REQUEST, message).into_response()
        }
    }
}

async fn readyz(State(state): State<AppState>) -> Response {
    let policies = state.policy_health.as_ref().map_or(Ok(()), PolicyHealth::ready);
    match (state.ready.load(Ordering::Acquire), state.serving.load(Ordering::Acquire), policies) {
        (true, true, Ok(())) => "ok".into_response(),
        (false, _, _) => (StatusCode::SERVICE_UNAVAILABLE, "not ready: policies not loaded yet").into_response(),
        (true, false, _) => (StatusCode::SERVICE_UNAVAILABLE, "not ready: not serving").into_response(),
        (true, true, Err(why)) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}")).into_response(),
    }
}

/// Live unless the policy source has been failing for long (a restart may cure it).
async fn healthz(State(state): State<AppState>) -> Response {
    match state.policy_health.as_ref().map_or(Ok(()), PolicyHealth::live) {
        Ok(()) => "ok".into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not live: {why}")).into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.load(state.engine.memory().in_use(), state.engine.verifications_running());
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode())
        .into_response()
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// PEM files, reloaded when they change.
    Files { cert: PathBuf, key: PathBuf, reload_interval: Duration },
    /// A CA and certificate generated at start for `names`; the CA is written to `ca_out`.
    SelfSigned { names: Vec<String>, ca_out: PathBuf },
}

/// Starting the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("binding {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// Listeners bound and TLS ready; [`BoundServer::run`] serves until `shutdown` resolves.
pub struct BoundServer {
    webhook: TcpListener,
    probes: TcpListener,
    addrs: (SocketAddr, SocketAddr),
    acceptor: tokio_rustls::TlsAcceptor,
    watcher: Option<tokio::task::JoinHandle<()>>,
    state: AppState,
}

impl BoundServer {
    /// Binds both listeners and prepares TLS.
    pub async fn bind(
        listen: SocketAddr,
        probe_listen: SocketAddr,
        certs: CertSource,
        state: AppState,
    ) -> Result<Self, ServeError> {
        let (resolver, watcher) = match certs {
            CertSource::Files { cert, key, reload_interval } => {
                let resolver = tls::CertResolver::new(tls::load(&cert, &key)?);
                let watcher = tokio::spawn(tls::watch(resolver.clone(), cert, key, reload_interval));
                (resolver, Some(watcher))
            }
            CertSource::SelfSigned { names, ca_out } => {
                let generated = tls::self_signed(&names)?;
                std::fs::write(&ca_out, &generated.ca_pem)
                    .map_err(|source| tls::TlsError::WriteCa { path: ca_out.clone(), source })?;
                tracing::info!(ca = %ca_out.display(), names = ?names, "self-signed certificate generated; trust the CA file to call the webhook");
                (tls::CertResolver::new(generated.key), None)
            }
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(resolver)?);
        let bind_error = |addr| move |source| ServeError::Bind { addr, source };
        let webhook = TcpListener::bind(listen).await.map_err(bind_error(listen))?;
        let probes = TcpListener::bind(probe_listen).await.map_err(bind_error(probe_listen))?;
        let addrs =
            (webhook.local_addr().map_err(bind_error(listen))?, probes.local_addr().map_err(bind_error(probe_listen))?);
        Ok(BoundServer { webhook, probes, addrs, acceptor, watcher, state })
    }

    /// The bound webhook and probe addresses (useful with port 0).
    pub fn local_addrs(&self) -> (SocketAddr, SocketAddr) {
        self.addrs
    }

    /// Serves until `shutdown` resolves, then stops accepting, reports not-ready, and lets
    /// in-flight requests finish (up to 10 s).
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
        let BoundServer { webhook, probes, addrs, acceptor, watcher, state } = self;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let probe_app = probe_router(state.clone());
        let mut probe_stop = stop_rx.clone();
        let probe_task = tokio::spawn(async move {
            let _ = axum::serve(probes, probe_app)
                .with_graceful_shutdown(async move {
                    let _ = probe_stop.wait_for(|s| *s).await;
                })
                .await;
        });
        let app = router(state.clone());
        let graceful = GracefulShutdown::new();
        state.serving.store(true, Ordering::Release);
        tracing::info!(addr = %addrs.0, "serving admission reviews");
        let mut stop = stop_rx.clone();
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = webhook.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let service = TowerToHyperService::new(app.clone());
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                };
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(tls), service);
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
        state.serving.store(false, Ordering::Release);
        tracing::info!("shutting down: draining in-flight requests");
        drop(webhook);
        if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await.is_err() {
            tracing::warn!("in-flight requests did not finish within 10s");
        }
        if let Some(w) = watcher {
            w.abort();
        }
        let _ = probe_task.await;
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_leaves_a_margin_below_the_api_server_timeout() {
        let d = Duration::from_secs(10);
        assert_eq!(deadline_for(Some("10s"), d), Duration::from_secs(9));
        assert_eq!(deadline_for(Some("5s"), d), Duration::from_millis(4500));
        assert_eq!(deadline_for(Some("1s"), d), Duration::from_millis(900));
        assert_eq!(deadline_for(None, d), Duration::from_secs(9));
        assert_eq!(deadline_for(Some("garbage"), d), Duration::from_secs(9));
        assert_eq!(deadline_for(Some("5m"), d), Duration::from_secs(29));
        assert_eq!(deadline_for(Some("10000000000000000000000s"), d), Duration::from_secs(9));
        assert_eq!(deadline_for(Some("0s"), d), Duration::ZERO);
    }
}
