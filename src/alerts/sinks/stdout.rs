//! The stdout sink: one JSON line per alert, for piping into other tools.

use std::io::Write;

use futures::future::BoxFuture;

use super::{AlertSink, DeliveryResult, Outgoing};

pub struct StdoutSink;

impl AlertSink for StdoutSink {
    fn deliver<'a>(&'a self, alerts: &'a [Outgoing]) -> BoxFuture<'a, Vec<DeliveryResult>> {
        Box::pin(async move {
            let mut out = std::io::stdout().lock();
            let written = alerts
                .iter()
                .try_for_each(|alert| writeln!(out, "{}", alert.body))
                .and_then(|()| out.flush());
            let result = written.map(|()| None).map_err(|e| e.to_string());
            vec![result; alerts.len()]
        })
    }
}
