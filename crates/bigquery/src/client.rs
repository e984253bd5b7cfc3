//! The BigQuery REST transport: where requests go (Google or an emulator), how they are
//! authenticated, how an answer becomes a typed `ApiError`, and which errors are retried.
//!
//! Requests are built from `gcp-bigquery-client`'s REST model types but sent here rather than
//! through its `Client`: its error path drops the HTTP status when the body is not JSON (a 502
//! from a load balancer), which the retry policy needs, and its query helper panics on DDL.

use std::fmt;
use std::time::Duration;

use google_cloud_auth::credentials::AccessTokenCredentials;
use netsentinel_core::Backoff;
use serde_json::Value;

use crate::BigQueryError;

pub const GOOGLE_ENDPOINT: &str = "https://bigquery.googleapis.com/bigquery/v2";
const SCOPE: &str = "https://www.googleapis.com/auth/bigquery";
/// One HTTP request; long enough for a `getQueryResults` long poll (which asks for 10 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// BigQuery's error `reason`, the part of an error that decides what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    BackendError,
    InternalError,
    RateLimitExceeded,
    Duplicate,
    NotFound,
    InvalidQuery,
    Invalid,
    BytesBilledLimitExceeded,
    AccessDenied,
    QuotaExceeded,
    /// The request never got an HTTP answer (connection refused or reset, timeout).
    Transport,
    /// An answer without a BigQuery reason, e.g. an HTML 502 from a proxy.
    Http,
    Other(String),
}

impl Reason {
    pub fn parse(reason: &str) -> Self {
        match reason {
            "backendError" => Reason::BackendError,
            "internalError" => Reason::InternalError,
            "rateLimitExceeded" => Reason::RateLimitExceeded,
            "duplicate" => Reason::Duplicate,
            "notFound" => Reason::NotFound,
            "invalidQuery" => Reason::InvalidQuery,
            "invalid" => Reason::Invalid,
            "bytesBilledLimitExceeded" => Reason::BytesBilledLimitExceeded,
            "accessDenied" => Reason::AccessDenied,
            "quotaExceeded" => Reason::QuotaExceeded,
            other => Reason::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Reason::BackendError => "backendError",
            Reason::InternalError => "internalError",
            Reason::RateLimitExceeded => "rateLimitExceeded",
            Reason::Duplicate => "duplicate",
            Reason::NotFound => "notFound",
            Reason::InvalidQuery => "invalidQuery",
            Reason::Invalid => "invalid",
            Reason::BytesBilledLimitExceeded => "bytesBilledLimitExceeded",
            Reason::AccessDenied => "accessDenied",
            Reason::QuotaExceeded => "quotaExceeded",
            Reason::Transport => "transport",
            Reason::Http => "http",
            Reason::Other(other) => other,
        }
    }

    /// Transient server-side conditions that BigQuery documents as safe to retry. Quota
    /// (`quotaExceeded`) is not one: it lasts until the quota resets.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Reason::BackendError
                | Reason::InternalError
                | Reason::RateLimitExceeded
                | Reason::Transport
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed request: BigQuery's reason and message, and the HTTP status when there was one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (reason: {reason}{})", status.map(|s| format!(", HTTP {s}")).unwrap_or_default())]
pub struct ApiError {
    pub status: Option<u16>,
    pub reason: Reason,
    pub message: String,
}

impl ApiError {
    pub fn is_retryable(&self) -> bool {
        self.reason.is_transient() || self.status.is_some_and(|s| s >= 500)
    }

    /// The error of a non-success HTTP answer, from BigQuery's `{"error": {…}}` body when it
    /// has one.
    pub fn from_response(status: u16, body: &str) -> Self {
        let parsed: Option<Value> = serde_json::from_str(body).ok();
        let error = parsed.as_ref().and_then(|v| v.get("error"));
        let reason = error
            .and_then(|e| e.get("errors"))
            .and_then(|errors| errors.get(0))
            .and_then(|first| first.get("reason"))
            .and_then(Value::as_str)
            .map(Reason::parse)
            .unwrap_or(Reason::Http);
        let message = error
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                let body: String = body.trim().chars().take(300).collect();
                if body.is_empty() {
                    format!("HTTP {status}")
                } else {
                    body
                }
            });
        ApiError {
            status: Some(status),
            reason,
            message,
        }
    }

    /// An error reported inside a successful answer (a job's `errorResult`, an insert error).
    pub fn from_error_proto(error: &Value) -> Self {
        ApiError {
            status: None,
            reason: error
                .get("reason")
                .and_then(Value::as_str)
                .map(Reason::parse)
                .unwrap_or(Reason::Other("unknown".into())),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .to_string(),
        }
    }
}

/// How often a request is tried, and the pauses between tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            backoff: Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(32),
            },
        }
    }
}

impl RetryPolicy {
    /// The pause before attempt `attempt + 1` (attempt counts from 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.backoff.delay(attempt)
    }
}

/// Where requests go and who makes them.
pub enum Endpoint {
    /// Google's API with Application Default Credentials, or a service-account key file.
    Google { key_file: Option<String> },
    /// An emulator at `host:port` (from `BIGQUERY_EMULATOR_HOST`), anonymously.
    Emulator { host: String },
}

enum Credentials {
    Anonymous,
    Google(AccessTokenCredentials),
}

pub struct RestClient {
    http: reqwest::Client,
    base_url: String,
    credentials: Credentials,
    pub retry: RetryPolicy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl RestClient {
    pub fn new(endpoint: &Endpoint, retry: RetryPolicy) -> Result<Self, BigQueryError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| BigQueryError::Setup(format!("cannot build the HTTP client: {e}")))?;
        let (base_url, credentials) = match endpoint {
            Endpoint::Emulator { host } => {
                let host = host.trim_end_matches('/');
                let base = if host.starts_with("http://") || host.starts_with("https://") {
                    host.to_string()
                } else {
                    format!("http://{host}")
                };
                (format!("{base}/bigquery/v2"), Credentials::Anonymous)
            }
            Endpoint::Google { key_file } => {
                let credentials = google_credentials(key_file.as_deref())?;
                (
                    GOOGLE_ENDPOINT.to_string(),
                    Credentials::Google(credentials),
                )
            }
        };
        Ok(RestClient {
            http,
            base_url,
            credentials,
            retry,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// One request, no retry. `path` is relative to the v2 base URL.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let url = format!("{}/{}", self.base_url, path.trim_start_matches('/'));
        let mut request = match method {
            Method::Get => self.http.get(&url),
            Method::Post => self.http.post(&url),
            Method::Delete => self.http.delete(&url),
        }
        .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Credentials::Google(credentials) = &self.credentials {
            let token = credentials.access_token().await.map_err(|e| ApiError {
                status: None,
                reason: Reason::Other("credentials".into()),
                message: format!(
                    "cannot get an access token (check GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth application-default login`, or the target's key_file): {e}"
                ),
            })?;
            request = request.bearer_auth(token.token);
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(transport_error)?;
        if !(200..300).contains(&status) {
            return Err(ApiError::from_response(status, &text));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| ApiError {
            status: Some(status),
            reason: Reason::Http,
            message: format!("the answer is not JSON ({e})"),
        })
    }

    /// A request retried on transient errors. `accept` turns an error into a success (a
    /// `duplicate` answer to a retried insert that had in fact gone through).
    pub async fn call_with_retry(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        accept: impl Fn(&ApiError) -> bool,
    ) -> Result<Value, ApiError> {
        let mut attempt = 1;
        loop {
            match self.call(method, path, query, body).await {
                Ok(value) => return Ok(value),
                Err(error) if accept(&error) => return Ok(Value::Null),
                Err(error) if error.is_retryable() && attempt < self.retry.max_attempts => {
                    let delay = self.retry.delay(attempt);
                    tracing::warn!(path, attempt, %error, ?delay, "transient BigQuery error; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

fn transport_error(error: reqwest::Error) -> ApiError {
    // reqwest's message names the URL, never a header, so no token reaches it.
    ApiError {
        status: None,
        reason: Reason::Transport,
        message: error.to_string(),
    }
}

/// ADC covers a key file named by GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth
/// application-default login` user credentials, and workload identity (the metadata server
/// on GCE, GKE and Cloud Run, or an external-account file for workload identity federation).
fn google_credentials(key_file: Option<&str>) -> Result<AccessTokenCredentials, BigQueryError> {
    let built = match key_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                BigQueryError::Setup(format!("cannot read the key file {path}: {e}"))
            })?;
            let key: Value = serde_json::from_str(&text).map_err(|e| {
                BigQueryError::Setup(format!(
                    "the key file {path} is not a service-account JSON key: {e}"
                ))
            })?;
            google_cloud_auth::credentials::service_account::Builder::new(key)
                .with_access_specifier(
                    google_cloud_auth::credentials::service_account::AccessSpecifier::from_scopes(
                        [SCOPE],
                    ),
                )
                .build_access_token_credentials()
        }
        None => google_cloud_auth::credentials::Builder::default()
            .with_scopes([SCOPE])
            .build_access_token_credentials(),
    };
    built.map_err(|e| BigQueryError::Setup(format!("no usable Google credentials: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_reasons_and_5xx_are_retried_everything_else_is_not() {
        for reason in ["backendError", "internalError", "rateLimitExceeded"] {
            let body = format!(
                r#"{{"error":{{"code":403,"message":"m","errors":[{{"reason":"{reason}","message":"m"}}]}}}}"#
            );
            assert!(
                ApiError::from_response(403, &body).is_retryable(),
                "{reason}"
            );
        }
        assert!(ApiError::from_response(502, "<html>Bad Gateway</html>").is_retryable());
        assert!(ApiError::from_response(503, "").is_retryable());
        for (status, reason) in [
            (400, "invalidQuery"),
            (404, "notFound"),
            (403, "accessDenied"),
            (403, "quotaExceeded"),
            (400, "bytesBilledLimitExceeded"),
            (409, "duplicate"),
        ] {
            let body = format!(
                r#"{{"error":{{"code":{status},"message":"m","errors":[{{"reason":"{reason}"}}]}}}}"#
            );
            let error = ApiError::from_response(status, &body);
            assert!(!error.is_retryable(), "{reason} retried");
            assert_eq!(error.reason.as_str(), reason);
        }
    }

    #[test]
    fn errors_keep_bigquerys_message_or_the_body() {
        let error = ApiError::from_response(
            404,
            r#"{"error":{"code":404,"message":"Not found: Table p:d.t","errors":[{"reason":"notFound","message":"Not found: Table p:d.t"}]}}"#,
        );
        assert_eq!(error.reason, Reason::NotFound);
        assert!(
            error.to_string().contains("Not found: Table p:d.t"),
            "{error}"
        );
        let error = ApiError::from_response(502, "<html>Bad Gateway</html>");
        assert_eq!(error.reason, Reason::Http);
        assert!(error.to_string().contains("Bad Gateway"), "{error}");
        let job_error = ApiError::from_error_proto(
            &serde_json::json!({"reason": "backendError", "message": "try again"}),
        );
        assert!(job_error.is_retryable());
    }
}
