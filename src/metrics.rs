//! What a long-running netsentinel (`schedule`, `ingest --follow`) counts, and its rendering in
//! the Prometheus text format for `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::runner::RunReport;

#[derive(Debug, Default)]
pub struct Metrics {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    pipelines: BTreeMap<String, PipelineCounts>,
    ingest: IngestCounts,
    alerts_sent: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct PipelineCounts {
    runs: u64,
    failures: u64,
    skipped_ticks: u64,
    last_success: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct IngestCounts {
    events: u64,
    duplicates: u64,
    rejects: u64,
    late: u64,
    commit_failures: u64,
    /// Seconds between the newest committed event's start and its commit.
    lag_seconds: Option<f64>,
}

/// One committed micro-batch of a continuous ingest.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct CommittedBatch {
    pub events: u64,
    pub duplicates: u64,
    pub rejects: u64,
    pub late: u64,
    pub newest_event: Option<DateTime<Utc>>,
}

impl Metrics {
    fn with<T>(&self, update: impl FnOnce(&mut State) -> T) -> T {
        update(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn run_succeeded(&self, report: &RunReport, at: DateTime<Utc>) {
        let delivered: usize = report
            .steps
            .iter()
            .filter_map(|s| s.alerts.as_ref())
            .flat_map(|a| &a.sinks)
            .map(|sink| sink.delivered)
            .sum();
        self.with(|s| {
            let counts = s.pipelines.entry(report.pipeline.clone()).or_default();
            counts.runs += 1;
            counts.last_success = Some(at);
            s.alerts_sent += delivered as u64;
        });
    }

    pub fn run_failed(&self, pipeline: &str) {
        self.with(|s| {
            let counts = s.pipelines.entry(pipeline.to_string()).or_default();
            counts.runs += 1;
            counts.failures += 1;
        });
    }

    pub fn ticks_skipped(&self, pipeline: &str, ticks: u64) {
        self.with(|s| {
            s.pipelines
                .entry(pipeline.to_string())
                .or_default()
                .skipped_ticks += ticks
        });
    }

    /// Makes a pipeline appear in `/metrics` before its first run.
    pub fn register_pipeline(&self, pipeline: &str) {
        self.with(|s| {
            s.pipelines.entry(pipeline.to_string()).or_default();
        });
    }

    pub fn batch_committed(&self, batch: &CommittedBatch, at: DateTime<Utc>) {
        self.with(|s| {
            let ingest = &mut s.ingest;
            ingest.events += batch.events;
            ingest.duplicates += batch.duplicates;
            ingest.rejects += batch.rejects;
            ingest.late += batch.late;
            if let Some(newest) = batch.newest_event {
                ingest.lag_seconds = Some((at - newest).num_milliseconds() as f64 / 1000.0);
            }
        });
    }

    pub fn commit_failed(&self) {
        self.with(|s| s.ingest.commit_failures += 1);
    }

    pub fn render(&self) -> String {
        self.with(|s| render(s))
    }
}

fn render(state: &State) -> String {
    let mut out = String::new();
    let pipelines: Vec<(&String, &PipelineCounts)> = state.pipelines.iter().collect();
    let per_pipeline = |out: &mut String,
                        name: &str,
                        kind: &str,
                        help: &str,
                        value: &dyn Fn(&PipelineCounts) -> Option<f64>| {
        header(out, name, kind, help);
        for (pipeline, counts) in &pipelines {
            if let Some(v) = value(counts) {
                let _ = writeln!(out, "{name}{{pipeline=\"{}\"}} {v}", escape(pipeline));
            }
        }
    };
    per_pipeline(
        &mut out,
        "netsentinel_pipeline_runs_total",
        "counter",
        "Pipeline runs started by this process.",
        &|c| Some(c.runs as f64),
    );
    per_pipeline(
        &mut out,
        "netsentinel_pipeline_failures_total",
        "counter",
        "Pipeline runs that failed.",
        &|c| Some(c.failures as f64),
    );
    per_pipeline(
        &mut out,
        "netsentinel_pipeline_skipped_ticks_total",
        "counter",
        "Schedule ticks skipped because the pipeline's previous run was still going.",
        &|c| Some(c.skipped_ticks as f64),
    );
    per_pipeline(
        &mut out,
        "netsentinel_pipeline_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the pipeline's last successful run.",
        &|c| c.last_success.map(|t| t.timestamp_millis() as f64 / 1000.0),
    );
    let ingest = &state.ingest;
    counter(
        &mut out,
        "netsentinel_ingest_events_total",
        "Events committed to raw.netlog_events.",
        ingest.events,
    );
    counter(
        &mut out,
        "netsentinel_ingest_duplicates_total",
        "Events received again and not stored twice.",
        ingest.duplicates,
    );
    counter(
        &mut out,
        "netsentinel_ingest_rejects_total",
        "Rows sent to raw.netlog_rejects (late events included).",
        ingest.rejects,
    );
    counter(
        &mut out,
        "netsentinel_ingest_late_events_total",
        "Events whose window had closed before they arrived.",
        ingest.late,
    );
    counter(
        &mut out,
        "netsentinel_ingest_commit_failures_total",
        "Commits that failed and were retried.",
        ingest.commit_failures,
    );
    if let Some(lag) = ingest.lag_seconds {
        header(
            &mut out,
            "netsentinel_ingest_lag_seconds",
            "gauge",
            "Age of the newest event at the last commit.",
        );
        let _ = writeln!(out, "netsentinel_ingest_lag_seconds {lag}");
    }
    counter(
        &mut out,
        "netsentinel_alerts_sent_total",
        "Alert deliveries completed, over all sinks.",
        state.alerts_sent,
    );
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

/// Label values escape backslash, quote and newline (Prometheus text format).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_one_series_per_pipeline() {
        let metrics = Metrics::default();
        metrics.register_pipeline("train");
        metrics.run_failed("detect");
        metrics.ticks_skipped("detect", 2);
        metrics.batch_committed(
            &CommittedBatch {
                events: 10,
                duplicates: 1,
                rejects: 3,
                late: 2,
                newest_event: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            },
            "2026-01-01T00:00:01.5Z".parse().unwrap(),
        );
        let text = metrics.render();
        assert!(
            text.contains("# TYPE netsentinel_pipeline_runs_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("netsentinel_pipeline_runs_total{pipeline=\"detect\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("netsentinel_pipeline_runs_total{pipeline=\"train\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("netsentinel_pipeline_failures_total{pipeline=\"detect\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("netsentinel_pipeline_skipped_ticks_total{pipeline=\"detect\"} 2\n"),
            "{text}"
        );
        assert!(
            !text.contains("last_success_timestamp_seconds{"),
            "no success yet: {text}"
        );
        assert!(
            text.contains("netsentinel_ingest_events_total 10\n"),
            "{text}"
        );
        assert!(
            text.contains("netsentinel_ingest_late_events_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("netsentinel_ingest_lag_seconds 1.5\n"),
            "{text}"
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "sample value: {line}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
