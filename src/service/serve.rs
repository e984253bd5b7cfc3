//! The connection loop under the endpoints: HTTP/1.1 with a header-read timeout (which also
//! closes a connection idle between requests), a limit on open connections, and a shutdown
//! that gives requests in flight a grace period, then drops their connections.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A request's headers must have arrived this long after the connection opened or its
    /// previous response was sent; a connection that sends nothing for as long is closed.
    pub header_timeout: Duration,
    pub max_connections: usize,
    /// How long requests in flight may take to finish once the server stops.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            max_connections: 128,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// A failed accept (out of file descriptors) is retried after this, not in a busy loop.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `stopped` completes, then waits at most the grace
/// period for the requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    stopped: impl Future<Output = ()>,
) {
    let open_connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(stopped);
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        // Over the limit a connection is closed at once: its client learns it was refused
        // instead of waiting in the backlog.
        let Ok(permit) = open_connections.clone().try_acquire_owned() else {
            tracing::debug!(
                max = limits.max_connections,
                "connection limit reached; closing a new connection"
            );
            continue;
        };
        let connection = http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Its errors are the client's doing (gone, too slow): nothing to act on.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace = ?limits.shutdown_grace,
            "requests still in flight after the grace period; closing their connections"
        );
    }
}
