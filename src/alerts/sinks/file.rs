//! The JSONL file sink: appends one line per alert and syncs the file to disk before any of
//! them counts as delivered, so a crash can only repeat a line, never lose one.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use futures::future::BoxFuture;

use super::{AlertSink, DeliveryResult, Outgoing, SinkContext};
use crate::alerts::config::FileSinkConfig;

pub struct FileSink {
    path: PathBuf,
}

impl FileSink {
    pub fn new(config: &FileSinkConfig, context: &SinkContext<'_>) -> Self {
        let path = if config.path.is_absolute() {
            config.path.clone()
        } else {
            context.project_root.join(&config.path)
        };
        FileSink { path }
    }

    fn append(&self, alerts: &[Outgoing]) -> std::io::Result<()> {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let mut lines = String::new();
        for alert in alerts {
            lines.push_str(&alert.body);
            lines.push('\n');
        }
        file.write_all(lines.as_bytes())?;
        file.sync_all()
    }
}

impl AlertSink for FileSink {
    fn deliver<'a>(&'a self, alerts: &'a [Outgoing]) -> BoxFuture<'a, Vec<DeliveryResult>> {
        Box::pin(async move {
            let result = self
                .append(alerts)
                .map(|()| None)
                .map_err(|e| format!("cannot append to {}: {e}", self.path.display()));
            vec![result; alerts.len()]
        })
    }
}
