//! The HTTP endpoint of a long-running netsentinel (`schedule`, `ingest --follow`): `/healthz`,
//! `/metrics` and, when ingesting over HTTP, `POST /v1/events` ([`events`]), over a connection
//! loop with timeouts and limits ([`serve`]); and SIGINT/SIGTERM, which ask the process to stop
//! after the work under way (a second signal exits at once).
//!
//! It runs on a thread of its own with its own async runtime, so the synchronous engines keep
//! the caller's thread.

pub mod events;
pub mod serve;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::oneshot;

use crate::metrics::Metrics;
pub use events::{EventLimits, EventsRoute};
pub use serve::ConnectionLimits;

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

pub struct ServiceOptions {
    pub listen: SocketAddr,
    pub metrics: Arc<Metrics>,
    pub stop: Arc<AtomicBool>,
    pub limits: ConnectionLimits,
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
        let mut app = axum::Router::new()
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics))
            .with_state(AppState {
                metrics: options.metrics,
                stop: options.stop.clone(),
            });
        if let Some(events) = options.events {
            app = app.merge(events::Events::router(events, options.stop.clone()));
        }
        let (shutdown, stopped) = oneshot::channel::<()>();
        let (stop, limits) = (options.stop, options.limits);
        let thread = std::thread::Builder::new()
            .name("netsentinel-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::spawn(stop_on_signals(stop));
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        tracing::error!("the HTTP endpoint could not take its socket");
                        return;
                    };
                    serve::serve(listener, app, limits, async {
                        let _ = stopped.await;
                    })
                    .await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_off_loopback_need_a_token() {
        let (receipts, _) = std::sync::mpsc::sync_channel(1);
        let error = Service::start(ServiceOptions {
            listen: "0.0.0.0:0".parse().unwrap(),
            metrics: Arc::default(),
            stop: Arc::default(),
            limits: ConnectionLimits::default(),
            events: Some(EventsRoute {
                receipts,
                budget: crate::ingest::budget::ByteBudget::new(1024),
                health: Arc::default(),
                limits: EventLimits::default(),
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
