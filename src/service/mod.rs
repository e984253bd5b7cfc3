//! The HTTP endpoint of a long-running netsentinel (`schedule`, `ingest --follow`): `/healthz`,
//! `/metrics` and, when ingesting over HTTP, `POST /v1/events`; and SIGINT/SIGTERM, which ask
//! the process to stop after the work under way (a second signal exits at once).
//!
//! It runs on a thread of its own with its own async runtime, so the synchronous engines keep
//! the caller's thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::thread::JoinHandle;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use tokio::sync::oneshot;

use crate::ingest::follow::Receipt;
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "POST /v1/events on {addr} would be reachable from other hosts: set a bearer token ({token_env}) or listen on 127.0.0.1"
    )]
    TokenRequired { addr: SocketAddr, token_env: String },
    #[error("cannot start the HTTP endpoint: {0}")]
    Runtime(std::io::Error),
}

/// `POST /v1/events`: where the posted NDJSON goes (answered once it is committed), how large
/// a body may be, and the bearer token.
pub struct EventsRoute {
    pub receipts: SyncSender<Receipt>,
    pub max_body_bytes: usize,
    pub token: Option<String>,
    /// The variable the token came from, for the error when one is needed.
    pub token_env: String,
}

pub struct ServiceOptions {
    pub listen: SocketAddr,
    pub metrics: Arc<Metrics>,
    pub stop: Arc<AtomicBool>,
    pub events: Option<EventsRoute>,
}

/// The running endpoint; dropping it shuts the server down.
pub struct Service {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    receipts: Option<SyncSender<Receipt>>,
    token: Option<Arc<str>>,
}

impl Service {
    pub fn start(options: ServiceOptions) -> Result<Self, ServiceError> {
        if let Some(events) = &options.events
            && events.token.is_none()
            && !options.listen.ip().is_loopback()
        {
            return Err(ServiceError::TokenRequired {
                addr: options.listen,
                token_env: events.token_env.clone(),
            });
        }
        let listener =
            std::net::TcpListener::bind(options.listen).map_err(|source| ServiceError::Bind {
                addr: options.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(ServiceError::Runtime)?;
        listener
            .set_nonblocking(true)
            .map_err(ServiceError::Runtime)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ServiceError::Runtime)?;
        let max_body_bytes = options.events.as_ref().map_or(0, |e| e.max_body_bytes);
        let state = AppState {
            metrics: options.metrics,
            stop: options.stop.clone(),
            token: options
                .events
                .as_ref()
                .and_then(|e| e.token.as_deref())
                .map(Arc::from),
            receipts: options.events.map(|e| e.receipts),
        };
        let (shutdown, stopped) = oneshot::channel::<()>();
        let stop = options.stop;
        let thread = std::thread::Builder::new()
            .name("netsentinel-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::spawn(stop_on_signals(stop));
                    let mut app = axum::Router::new()
                        .route("/healthz", get(healthz))
                        .route("/metrics", get(metrics));
                    if state.receipts.is_some() {
                        app = app
                            .route("/v1/events", post(post_events))
                            .layer(DefaultBodyLimit::max(max_body_bytes));
                    }
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        tracing::error!("the HTTP endpoint could not take its socket");
                        return;
                    };
                    let served = axum::serve(listener, app.with_state(state))
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                    if let Err(error) = served {
                        tracing::error!(%error, "the HTTP endpoint stopped");
                    }
                });
            })
            .map_err(ServiceError::Runtime)?;
        tracing::info!(%addr, "serving /healthz and /metrics");
        Ok(Service {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn stop_on_signals(stop: Arc<AtomicBool>) {
    let mut signals = 0;
    loop {
        if wait_for_signal().await.is_err() {
            tracing::warn!("cannot listen for SIGINT/SIGTERM; stop with SIGKILL");
            return;
        }
        signals += 1;
        if signals > 1 {
            tracing::warn!("second signal: exiting without finishing the work under way");
            std::process::exit(130);
        }
        tracing::info!("signal received: finishing the work under way, then exiting");
        stop.store(true, Ordering::SeqCst);
    }
}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {},
        _ = interrupt.recv() => {},
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}

async fn healthz(State(state): State<AppState>) -> Response {
    if state.stop.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn post_events(State(state): State<AppState>, headers: HeaderMap, body: String) -> Response {
    if let Some(token) = &state.token
        && !bearer_matches(&headers, token)
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a valid bearer token is required\n",
        )
            .into_response();
    }
    if state.stop.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response();
    }
    let Some(receipts) = &state.receipts else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (committed, outcome) = oneshot::channel();
    let receipt = Receipt {
        source: "http".to_string(),
        first_line: 1,
        body,
        acknowledge: Box::new(move |result| {
            let _ = committed.send(result);
        }),
    };
    match receipts.try_send(receipt) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                "the ingester is busy; retry\n",
            )
                .into_response();
        }
        Err(TrySendError::Disconnected(_)) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the ingester has stopped\n",
            )
                .into_response();
        }
    }
    match outcome.await {
        Ok(Ok(outcome)) => axum::Json(outcome).into_response(),
        Ok(Err(message)) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("{message}\n")).into_response()
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the ingester has stopped\n",
        )
            .into_response(),
    }
}

/// Compares the whole token whatever the first difference, so timing does not reveal it.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_must_match_exactly() {
        let headers = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, value.parse().unwrap());
            h
        };
        assert!(bearer_matches(&headers("Bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(&headers("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(&headers("Bearer s3creT"), "s3cret"));
        assert!(!bearer_matches(&headers("Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(&HeaderMap::new(), "s3cret"));
    }

    #[test]
    fn events_off_loopback_need_a_token() {
        let (receipts, _) = std::sync::mpsc::sync_channel(1);
        let error = Service::start(ServiceOptions {
            listen: "0.0.0.0:0".parse().unwrap(),
            metrics: Arc::default(),
            stop: Arc::default(),
            events: Some(EventsRoute {
                receipts,
                max_body_bytes: 1024,
                token: None,
                token_env: "NETSENTINEL_INGEST_TOKEN".into(),
            }),
        })
        .err()
        .expect("refused");
        assert!(
            error.to_string().contains("NETSENTINEL_INGEST_TOKEN"),
            "{error}"
        );
    }
}
