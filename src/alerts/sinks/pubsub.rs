//! The Pub/Sub sink, through Google's official `google-cloud-pubsub` client. Each alert is one
//! message: the JSON body as data, and alert_id, severity, pipeline and target as attributes
//! so subscribers can filter and deduplicate without parsing.
//!
//! With `PUBSUB_EMULATOR_HOST` set it publishes to the emulator (see [`crate::pubsub`]).

use std::time::Duration;

use futures::future::{BoxFuture, join_all};
use google_cloud_gax::retry_policy::RetryPolicyExt;
use google_cloud_pubsub::client::Publisher;
use google_cloud_pubsub::model::Message;
use google_cloud_pubsub::retry_policy::RetryableErrors;

use super::{AlertSink, DeliveryResult, Outgoing, SinkContext};
use crate::alerts::config::PubsubSinkConfig;
use crate::pubsub;

/// Beyond the client's own retry time limit, before a batch is given up as undelivered.
const GRACE: Duration = Duration::from_secs(5);

pub struct PubsubSink {
    publisher: Publisher,
    topic: String,
    timeout: Duration,
    ordering_key: bool,
    pipeline: String,
    target: String,
}

impl PubsubSink {
    pub async fn open(
        config: &PubsubSinkConfig,
        context: &SinkContext<'_>,
    ) -> Result<Self, String> {
        let topic = config
            .topic
            .resolve(context.target)
            .map_err(|e| e.to_string())?;
        let mut builder = Publisher::builder(topic.clone())
            .with_retry_policy(RetryableErrors.with_time_limit(config.timeout));
        if let Some(endpoint) = pubsub::emulator_endpoint() {
            builder = builder
                .with_endpoint(endpoint)
                .with_credentials(pubsub::anonymous_credentials());
        }
        let publisher = builder
            .build()
            .await
            .map_err(|e| format!("cannot create a publisher for {topic}: {e}"))?;
        Ok(PubsubSink {
            publisher,
            topic,
            timeout: config.timeout,
            ordering_key: config.ordering_key,
            pipeline: context.pipeline.to_string(),
            target: context.target.to_string(),
        })
    }

    fn message(&self, alert: &Outgoing) -> Message {
        let message = Message::new()
            .set_data(alert.body.clone().into_bytes())
            .set_attributes([
                ("alert_id", alert.alert_id.as_str()),
                ("severity", alert.severity.as_str()),
                ("pipeline", self.pipeline.as_str()),
                ("target", self.target.as_str()),
            ]);
        match (&alert.subscriber, self.ordering_key) {
            (Some(subscriber), true) => message.set_ordering_key(subscriber.clone()),
            _ => message,
        }
    }
}

impl AlertSink for PubsubSink {
    fn deliver<'a>(&'a self, alerts: &'a [Outgoing]) -> BoxFuture<'a, Vec<DeliveryResult>> {
        Box::pin(async move {
            let pending: Vec<_> = alerts
                .iter()
                .map(|alert| self.publisher.publish(self.message(alert)))
                .collect();
            let published = tokio::time::timeout(self.timeout + GRACE, join_all(pending)).await;
            match published {
                Ok(results) => results
                    .into_iter()
                    .map(|result| {
                        result
                            .map(Some)
                            .map_err(|e| format!("publish to {} failed: {e}", self.topic))
                    })
                    .collect(),
                Err(_) => vec![
                    Err(format!(
                        "publish to {} did not finish within {:?}",
                        self.topic,
                        self.timeout + GRACE
                    ));
                    alerts.len()
                ],
            }
        })
    }
}
