//! `POST /v1/events`: NDJSON handed to the committer and answered once it is committed.
//!
//! Everything that can refuse a request from its headers is checked before its body is read:
//! where it comes from (no cross-origin browser request, no DNS-rebound page), its bearer
//! token, its content type, whether the ingest is stopping or its commits are failing, its
//! declared size, and room in the input budget. An admitted body must then arrive whole within
//! the body timeout, within the size limit, and hold at most the line limit.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::sync::oneshot;

use crate::ingest::budget::{ByteBudget, Held};
use crate::ingest::follow::{CommitHealth, Receipt};

/// The media types accepted for NDJSON (one JSON object per line). Requiring one also makes a
/// browser ask first (a CORS preflight), which this endpoint never grants.
const NDJSON_MEDIA_TYPES: [&str; 3] = [
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLimits {
    pub max_body_bytes: usize,
    /// Non-blank lines in one request: each becomes an event or a reject row.
    pub max_lines: usize,
    /// The whole body must have arrived within this.
    pub body_timeout: Duration,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            max_body_bytes: 8 << 20,
            max_lines: 10_000,
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// `POST /v1/events`: where the posted NDJSON goes (answered once it is committed), its limits
/// and the bearer token.
pub struct EventsRoute {
    pub receipts: SyncSender<Receipt>,
    pub budget: ByteBudget,
    pub health: Arc<CommitHealth>,
    pub limits: EventLimits,
    pub token: Option<String>,
    /// The variable the token came from, for the error when one is needed.
    pub token_env: String,
}

pub(super) struct Events {
    route: EventsRoute,
    stop: Arc<AtomicBool>,
}

impl Events {
    pub(super) fn router(route: EventsRoute, stop: Arc<AtomicBool>) -> axum::Router {
        axum::Router::new()
            .route("/v1/events", axum::routing::post(post_events))
            .with_state(Arc::new(Events { route, stop }))
    }

    /// Why the request is refused before its body is read, if it is.
    fn admit(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let route = &self.route;
        if !same_origin(headers) || (route.token.is_none() && !names_loopback(headers)) {
            return Err(Refusal::CrossOrigin);
        }
        if let Some(token) = &route.token
            && !bearer_matches(headers, token)
        {
            return Err(Refusal::Unauthorized);
        }
        if !is_ndjson(headers) {
            return Err(Refusal::UnsupportedMediaType);
        }
        if self.stop.load(Ordering::SeqCst) {
            return Err(Refusal::Stopping);
        }
        if let Some(retry_after) = route.health.retry_after() {
            return Err(Refusal::CommitsFailing { retry_after });
        }
        Ok(())
    }

    /// Room in the input budget for the declared body, or for the largest allowed one.
    fn reserve(&self, headers: &HeaderMap) -> Result<Held, Refusal> {
        let limit = self.route.limits.max_body_bytes;
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let bytes = match declared {
            Some(length) if length > limit as u64 => return Err(Refusal::TooLarge { limit }),
            Some(length) => length as usize,
            None => limit,
        };
        self.route.budget.try_hold(bytes).ok_or(Refusal::Busy)
    }
}

async fn post_events(State(events): State<Arc<Events>>, request: Request) -> Response {
    match accept(&events, request).await {
        Ok(answer) => answer,
        Err(refusal) => refusal.into_response(),
    }
}

async fn accept(events: &Events, request: Request) -> Result<Response, Refusal> {
    let (parts, body) = request.into_parts();
    events.admit(&parts.headers)?;
    let mut held = events.reserve(&parts.headers)?;
    let limits = events.route.limits;
    let body = tokio::time::timeout(limits.body_timeout, read_body(body, limits.max_body_bytes))
        .await
        .map_err(|_| Refusal::BodyTimeout {
            limit: limits.body_timeout,
        })??;
    held.shrink_to(body.len());
    let lines = body.lines().filter(|l| !l.trim().is_empty());
    if lines.take(limits.max_lines + 1).count() > limits.max_lines {
        return Err(Refusal::TooManyLines {
            limit: limits.max_lines,
        });
    }
    let (committed, outcome) = oneshot::channel();
    let receipt = Receipt {
        source: "http".to_string(),
        first_line: 1,
        body,
        acknowledge: Box::new(move |result| {
            let _ = committed.send(result);
        }),
        held,
    };
    match events.route.receipts.try_send(receipt) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => return Err(Refusal::Busy),
        Err(TrySendError::Disconnected(_)) => return Err(Refusal::Stopping),
    }
    match outcome.await {
        Ok(Ok(outcome)) => Ok(axum::Json(outcome).into_response()),
        Ok(Err(_)) => Err(Refusal::CommitsFailing {
            retry_after: events.route.health.retry_after().unwrap_or(BUSY_RETRY),
        }),
        Err(_) => Err(Refusal::Stopping),
    }
}

/// The body as text, refused once it exceeds `limit` (a chunked body declares no length).
async fn read_body(body: Body, limit: usize) -> Result<String, Refusal> {
    let mut bytes = Vec::new();
    let mut frames = body.into_data_stream();
    while let Some(frame) = frames.next().await {
        let frame = frame.map_err(|_| Refusal::BodyUnreadable)?;
        if bytes.len() + frame.len() > limit {
            return Err(Refusal::TooLarge { limit });
        }
        bytes.extend_from_slice(&frame);
    }
    String::from_utf8(bytes).map_err(|_| Refusal::NotUtf8)
}

/// A browser sends `Origin` with a cross-origin request; this endpoint serves no page, so only
/// an origin that is the request's own host is same-origin.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    host.is_some_and(|host| origin.as_bytes() == format!("http://{host}").as_bytes())
}

/// Whether the request names a loopback host. Without a token the endpoint listens on loopback
/// only, and a page whose domain was rebound to 127.0.0.1 (DNS rebinding) would pass the
/// Origin check: its Host still names that domain.
fn names_loopback(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST) else {
        // Browsers always send Host.
        return true;
    };
    let Some(authority) = host.to_str().ok().and_then(|h| h.parse::<Authority>().ok()) else {
        return false;
    };
    let name = authority.host();
    name.eq_ignore_ascii_case("localhost")
        || name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn is_ndjson(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    NDJSON_MEDIA_TYPES
        .iter()
        .any(|accepted| media_type.eq_ignore_ascii_case(accepted))
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

/// When a busy ingester asks senders to try again.
const BUSY_RETRY: Duration = Duration::from_secs(1);

/// Why a request was not taken, as its answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    CrossOrigin,
    Unauthorized,
    UnsupportedMediaType,
    Stopping,
    CommitsFailing { retry_after: Duration },
    Busy,
    TooLarge { limit: usize },
    TooManyLines { limit: usize },
    BodyTimeout { limit: Duration },
    BodyUnreadable,
    NotUtf8,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Refusal::CrossOrigin => StatusCode::FORBIDDEN,
            Refusal::Unauthorized => StatusCode::UNAUTHORIZED,
            Refusal::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::Stopping | Refusal::CommitsFailing { .. } | Refusal::Busy => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Refusal::TooLarge { .. } | Refusal::TooManyLines { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Refusal::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Refusal::BodyUnreadable | Refusal::NotUtf8 => StatusCode::BAD_REQUEST,
        }
    }

    fn message(self) -> String {
        match self {
            Refusal::CrossOrigin => {
                "cross-origin requests are refused (Origin or Host names another site)".into()
            }
            Refusal::Unauthorized => "a valid bearer token is required".into(),
            Refusal::UnsupportedMediaType => format!(
                "send NDJSON with Content-Type {}",
                NDJSON_MEDIA_TYPES.join(", ")
            ),
            Refusal::Stopping => "the ingester is stopping".into(),
            Refusal::CommitsFailing { .. } => {
                "the warehouse is failing commits; send this again later".into()
            }
            Refusal::Busy => "the ingester is busy; send this again later".into(),
            Refusal::TooLarge { limit } => {
                format!("the body is larger than {limit} bytes (--max-body-bytes)")
            }
            Refusal::TooManyLines { limit } => {
                format!("the body has more than {limit} lines (--max-request-lines); split it")
            }
            Refusal::BodyTimeout { limit } => format!(
                "the body did not arrive within {} (--body-timeout)",
                humantime::format_duration(limit)
            ),
            Refusal::BodyUnreadable => "the body could not be read".into(),
            Refusal::NotUtf8 => "the body is not UTF-8".into(),
        }
    }

    fn retry_after(self) -> Option<Duration> {
        match self {
            Refusal::CommitsFailing { retry_after } => Some(retry_after),
            Refusal::Busy => Some(BUSY_RETRY),
            _ => None,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status(), format!("{}\n", self.message())).into_response();
        let headers = response.headers_mut();
        if let Some(wait) = self.retry_after() {
            // Whole seconds, rounded up: a client told 0 would retry at once.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if self == Refusal::Unauthorized {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self, Refusal::TooLarge { .. } | Refusal::BodyTimeout { .. }) {
            // The rest of the body is not read: the connection cannot carry another request.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), value.parse().unwrap()))
            .collect()
    }

    #[test]
    fn bearer_tokens_must_match_exactly() {
        let auth = |value: &str| headers(&[(header::AUTHORIZATION, value)]);
        assert!(bearer_matches(&auth("Bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(&auth("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(&auth("Bearer s3creT"), "s3cret"));
        assert!(!bearer_matches(&auth("Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(&HeaderMap::new(), "s3cret"));
    }

    #[test]
    fn only_an_origin_that_is_the_requests_own_host_is_same_origin() {
        let host = (header::HOST, "127.0.0.1:9465");
        assert!(same_origin(&headers(std::slice::from_ref(&host))));
        assert!(same_origin(&headers(&[
            host.clone(),
            (header::ORIGIN, "http://127.0.0.1:9465")
        ])));
        for origin in ["http://evil.example", "http://127.0.0.1:8080", "null"] {
            assert!(
                !same_origin(&headers(&[host.clone(), (header::ORIGIN, origin)])),
                "{origin}"
            );
        }
    }

    #[test]
    fn loopback_hosts_are_names_and_addresses_of_this_machine() {
        for host in [
            "127.0.0.1:9465",
            "localhost",
            "LOCALHOST:1",
            "[::1]:9465",
            "127.1.2.3",
        ] {
            assert!(names_loopback(&headers(&[(header::HOST, host)])), "{host}");
        }
        for host in [
            "evil.example:9465",
            "10.0.0.1",
            "localhost.evil.example",
            "[::2]",
        ] {
            assert!(!names_loopback(&headers(&[(header::HOST, host)])), "{host}");
        }
    }

    #[test]
    fn ndjson_is_required_with_or_without_parameters() {
        let typed = |value: &str| headers(&[(header::CONTENT_TYPE, value)]);
        assert!(is_ndjson(&typed("application/x-ndjson")));
        assert!(is_ndjson(&typed("Application/X-NDJSON; charset=utf-8")));
        assert!(is_ndjson(&typed("application/jsonl")));
        assert!(!is_ndjson(&typed("text/plain")));
        assert!(!is_ndjson(&typed("application/json")));
        assert!(!is_ndjson(&HeaderMap::new()));
    }

    #[test]
    fn refusals_that_ask_for_a_retry_say_when_in_whole_seconds() {
        let response = Refusal::CommitsFailing {
            retry_after: Duration::from_millis(2300),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        let response = Refusal::TooManyLines { limit: 10 }.into_response();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
    }
}
