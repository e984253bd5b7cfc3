//! Alert sinks: small components that take a batch of staged alerts and say, per alert,
//! whether it was delivered (with the destination's message id when it gives one) or why not.
//! A sink never fails the run: an outage only leaves its own deliveries pending.

mod file;
mod pubsub;
mod stdout;
mod webhook;

use std::path::Path;

use futures::future::BoxFuture;

use super::config::{SinkConfig, SinkKind};

pub use webhook::{SIGNATURE_HEADER, sign};

/// One alert as a sink sends it: the JSON body plus what goes into message attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub alert_id: String,
    pub severity: String,
    pub subscriber: Option<String>,
    /// The JSON message body.
    pub body: String,
}

/// The outcome for one alert: the message id (when the destination assigns one), or why it
/// was not delivered.
pub type DeliveryResult = Result<Option<String>, String>;

/// Where alerts come from, for message attributes.
#[derive(Debug, Clone)]
pub struct SinkContext<'a> {
    pub project_root: &'a Path,
    pub pipeline: &'a str,
    pub target: &'a str,
}

pub trait AlertSink: Send + Sync {
    /// Delivers a batch; the result has one entry per alert, in order.
    fn deliver<'a>(&'a self, alerts: &'a [Outgoing]) -> BoxFuture<'a, Vec<DeliveryResult>>;
}

/// Builds the sink a config names. An error here (a topic name that cannot be resolved, a
/// secret that is not set) leaves that sink's deliveries pending with the error recorded.
pub async fn open(
    config: &SinkConfig,
    context: &SinkContext<'_>,
) -> Result<Box<dyn AlertSink>, String> {
    let sink: Box<dyn AlertSink> = match &config.kind {
        SinkKind::Pubsub(settings) => Box::new(pubsub::PubsubSink::open(settings, context).await?),
        SinkKind::Webhook(settings) => Box::new(webhook::WebhookSink::open(settings, context)?),
        SinkKind::File(settings) => Box::new(file::FileSink::new(settings, context)),
        SinkKind::Stdout => Box::new(stdout::StdoutSink),
    };
    Ok(sink)
}
