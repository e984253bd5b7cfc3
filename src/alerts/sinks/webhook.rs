//! The webhook sink: one JSON POST per alert, retried on 5xx, 429, timeouts and connection
//! errors with capped exponential backoff. With `secret_env` set, each request carries an
//! HMAC-SHA256 of its body so the receiver can check it came from us.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

use super::{AlertSink, DeliveryResult, Outgoing, SinkContext};
use crate::alerts::config::WebhookSinkConfig;

/// `sha256=<hex HMAC-SHA256 of the raw body>`, as GitHub and Stripe style receivers expect.
pub const SIGNATURE_HEADER: &str = "X-Netsentinel-Signature";
/// The alert id, for receivers that deduplicate.
const ALERT_ID_HEADER: &str = "X-Netsentinel-Alert-Id";
const CONCURRENT_REQUESTS: usize = 8;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub struct WebhookSink {
    client: reqwest::Client,
    url: String,
    retries: u32,
    secret: Option<Vec<u8>>,
}

impl WebhookSink {
    pub fn open(config: &WebhookSinkConfig, context: &SinkContext<'_>) -> Result<Self, String> {
        let url = config
            .url
            .resolve(context.target)
            .map_err(|e| e.to_string())?;
        let secret = match &config.secret_env {
            Some(env) => Some(
                std::env::var(env.var())
                    .map_err(|_| {
                        format!(
                            "the webhook signing secret is read from ${}, which is not set",
                            env.var()
                        )
                    })?
                    .into_bytes(),
            ),
            None => None,
        };
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("netsentinel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the webhook client: {e}"))?;
        Ok(WebhookSink {
            client,
            url,
            retries: config.retries,
            secret,
        })
    }

    async fn post(&self, alert: &Outgoing) -> DeliveryResult {
        let mut attempt = 0;
        loop {
            let outcome = self.attempt(alert).await;
            match outcome {
                Ok(()) => return Ok(None),
                Err(Failure { retryable, message }) if !retryable || attempt >= self.retries => {
                    let tries = attempt + 1;
                    return Err(format!("{message} (after {tries} attempt(s))"));
                }
                Err(Failure { message, .. }) => {
                    tracing::debug!(alert_id = %alert.alert_id, attempt, %message, "webhook attempt failed; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(&self, alert: &Outgoing) -> Result<(), Failure> {
        let mut request = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ALERT_ID_HEADER, &alert.alert_id)
            .body(alert.body.clone());
        if let Some(secret) = &self.secret {
            request = request.header(SIGNATURE_HEADER, sign(secret, alert.body.as_bytes()));
        }
        let response = request.send().await.map_err(|e| Failure {
            retryable: e.is_timeout() || e.is_connect() || e.is_request(),
            // reqwest's message names the whole URL; the redacted one stands in for it.
            message: format!("POST {} failed: {}", redact(&self.url), e.without_url()),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(Failure {
            retryable: status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::REQUEST_TIMEOUT,
            message: format!("POST {} answered {status}", redact(&self.url)),
        })
    }
}

impl AlertSink for WebhookSink {
    fn deliver<'a>(&'a self, alerts: &'a [Outgoing]) -> BoxFuture<'a, Vec<DeliveryResult>> {
        Box::pin(
            stream::iter(alerts)
                .map(|alert| self.post(alert))
                .buffered(CONCURRENT_REQUESTS)
                .collect(),
        )
    }
}

struct Failure {
    retryable: bool,
    message: String,
}

/// The signature header's value for `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Exponential, capped, with full jitter so many runs retrying at once spread out.
fn backoff(attempt: u32) -> Duration {
    let ceiling = FIRST_BACKOFF
        .saturating_mul(1 << attempt.min(16))
        .min(MAX_BACKOFF);
    let jittered = rand::rng().random_range(ceiling / 2..=ceiling);
    jittered.max(Duration::from_millis(1))
}

/// Webhook URLs carry their secret in the path (Slack, Teams) or the query; stored errors and
/// logs show scheme, host and port only.
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}{}/…",
            parsed.scheme(),
            parsed.host_str().unwrap_or(""),
            parsed.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "<webhook url>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hex_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        let signature = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            signature,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0) <= FIRST_BACKOFF);
        assert!(backoff(3) >= FIRST_BACKOFF * 4 && backoff(3) <= FIRST_BACKOFF * 8);
        assert!(backoff(30) <= MAX_BACKOFF);
    }

    #[test]
    fn urls_in_messages_keep_scheme_host_and_port_only() {
        assert_eq!(
            redact("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact("http://127.0.0.1:8080/x?token=secret"),
            "http://127.0.0.1:8080/…"
        );
        assert_eq!(redact("not a url with a secret"), "<webhook url>");
    }
}
