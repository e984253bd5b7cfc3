//! The alert outbox in the warehouse's `ops` dataset: `ops.alert_outbox` holds every alert
//! once (sent, suppressed or held, with the reason), `ops.alert_deliveries` one row per
//! (alert, sink) with its delivery state. Written as GoogleSQL through the `Warehouse` trait,
//! so both engines keep the same record.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::message::Alert;
use crate::engine::{Cell, EngineError, Warehouse};
use crate::relation::{Dataset, TableRef};
use crate::render::Naming;
use crate::vars::quote_string;

/// Rows per INSERT or UPDATE statement: keeps statements well under BigQuery's query size limit.
const ROWS_PER_STATEMENT: usize = 200;

pub fn outbox() -> TableRef {
    TableRef::new(Dataset::Ops, "alert_outbox").expect("valid name")
}

pub fn deliveries() -> TableRef {
    TableRef::new(Dataset::Ops, "alert_deliveries").expect("valid name")
}

/// Whether an alert goes out, and if not, why.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    Send,
    /// An alert for the same subscriber and subnet went out shortly before.
    Suppressed(String),
    /// The run's cap was reached; the run's summary alert counts these.
    Held(String),
}

impl Disposition {
    fn status(&self) -> &'static str {
        match self {
            Disposition::Send => "active",
            Disposition::Suppressed(_) => "suppressed",
            Disposition::Held(_) => "held",
        }
    }

    fn reason(&self) -> Option<&str> {
        match self {
            Disposition::Send => None,
            Disposition::Suppressed(reason) | Disposition::Held(reason) => Some(reason),
        }
    }
}

/// A row of `ops.alert_outbox` about to be written.
pub struct StagedAlert<'a> {
    pub alert: &'a Alert,
    pub disposition: Disposition,
}

/// The run's summary alert, sent in place of the alerts its cap held back.
pub struct StagedSummary {
    pub alert_id: String,
    pub body: String,
    pub last_window: DateTime<Utc>,
}

pub struct Outbox<'a> {
    naming: &'a Naming,
    outbox: String,
    deliveries: String,
}

/// An undelivered alert of one sink, as its sink gets it.
#[derive(Debug, Clone)]
pub struct PendingDelivery {
    pub alert_id: String,
    pub severity: String,
    pub subscriber: Option<String>,
    pub body: String,
}

impl<'a> Outbox<'a> {
    pub fn new(naming: &'a Naming) -> Self {
        Outbox {
            naming,
            outbox: naming.qualify(&outbox()),
            deliveries: naming.qualify(&deliveries()),
        }
    }

    pub fn ensure_tables(&self, warehouse: &mut dyn Warehouse) -> Result<(), EngineError> {
        warehouse.execute_script(&format!(
            "CREATE TABLE IF NOT EXISTS {} (alert_id STRING, kind STRING, status STRING, reason STRING, run_id STRING, pipeline STRING, model_version INT64, subscriber STRING, subnet STRING, window_start TIMESTAMP, window_end TIMESTAMP, severity STRING, normalized_distance FLOAT64, payload STRING, created_at TIMESTAMP);\n\
             CREATE TABLE IF NOT EXISTS {} (alert_id STRING, sink STRING, status STRING, attempts INT64, message_id STRING, last_error STRING, delivered_at TIMESTAMP, updated_at TIMESTAMP)",
            self.outbox, self.deliveries
        ))?;
        Ok(())
    }

    /// The anomalous rows of `scored` that have no outbox row yet, oldest window first.
    pub fn new_anomalies_sql(&self, scored: &TableRef) -> String {
        format!(
            "SELECT scored.* FROM {scored} AS scored\n\
             WHERE scored.is_anomaly\n\
             AND NOT EXISTS (SELECT 1 FROM {outbox} AS alerted WHERE alerted.kind = 'anomaly' \
             AND alerted.model_version = scored.model_version AND alerted.subscriber = scored.subscriberId \
             AND alerted.subnet = scored.dst_subnet AND alerted.window_start = scored.window_start)\n\
             ORDER BY scored.window_start, scored.subscriberId, scored.dst_subnet",
            scored = self.naming.qualify(scored),
            outbox = self.outbox,
        )
    }

    /// The latest window alerted (sent, not suppressed) per subscriber and subnet since `since`.
    pub fn last_sent(
        &self,
        warehouse: &mut dyn Warehouse,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, String, DateTime<Utc>)>, EngineError> {
        let result = warehouse.query(&format!(
            "SELECT subscriber, subnet, MAX(window_start) FROM {} \
             WHERE kind = 'anomaly' AND status = 'active' AND window_start >= {} \
             GROUP BY subscriber, subnet",
            self.outbox,
            timestamp_literal(since)
        ))?;
        Ok(result
            .rows
            .into_iter()
            .filter_map(|row| match row.as_slice() {
                [
                    Cell::Text(subscriber),
                    Cell::Text(subnet),
                    Cell::Timestamp(at),
                ] => Some((subscriber.clone(), subnet.clone(), *at)),
                _ => None,
            })
            .collect())
    }

    /// Writes the run's alerts and summary, then a pending delivery per sink for each alert
    /// that goes out. One script, so one transaction where the engine has them.
    pub fn stage(
        &self,
        warehouse: &mut dyn Warehouse,
        run_id: &str,
        pipeline: &str,
        alerts: &[StagedAlert<'_>],
        summary: Option<&StagedSummary>,
    ) -> Result<(), EngineError> {
        let mut rows: Vec<String> = alerts
            .iter()
            .map(|staged| alert_row(staged, run_id, pipeline))
            .collect();
        if let Some(summary) = summary {
            rows.push(summary_row(summary, run_id, pipeline));
        }
        let mut script = String::new();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let _ = writeln!(
                script,
                "INSERT INTO {} (alert_id, kind, status, reason, run_id, pipeline, model_version, subscriber, subnet, window_start, window_end, severity, normalized_distance, payload, created_at) VALUES\n{};",
                self.outbox,
                chunk.join(",\n")
            );
        }
        if !script.is_empty() {
            warehouse.execute_script(&script)?;
        }
        Ok(())
    }

    /// Adds a pending delivery to `sink` for each alert of this run that goes out and has none.
    /// Keyed on the run, so a sink added later is not flooded with old alerts, and a resumed
    /// run completes what it staged.
    pub fn queue_for_sink(
        &self,
        warehouse: &mut dyn Warehouse,
        run_id: &str,
        sink: &str,
    ) -> Result<u64, EngineError> {
        let outcome = warehouse.execute_script(&format!(
            "INSERT INTO {deliveries} (alert_id, sink, status, attempts, updated_at)\n\
             SELECT alerted.alert_id, {sink}, 'pending', 0, CURRENT_TIMESTAMP() FROM {outbox} AS alerted\n\
             WHERE alerted.run_id = {run} AND alerted.status = 'active'\n\
             AND NOT EXISTS (SELECT 1 FROM {deliveries} AS queued WHERE queued.alert_id = alerted.alert_id AND queued.sink = {sink})",
            deliveries = self.deliveries,
            outbox = self.outbox,
            sink = quote_string(sink),
            run = quote_string(run_id),
        ))?;
        Ok(outcome.rows_affected)
    }

    /// Every delivery of `sink` not yet delivered, oldest alert first: this run's and those an
    /// earlier outage left behind.
    pub fn pending(
        &self,
        warehouse: &mut dyn Warehouse,
        sink: &str,
    ) -> Result<Vec<PendingDelivery>, EngineError> {
        let result = warehouse.query(&format!(
            "SELECT queued.alert_id, alerted.severity, alerted.subscriber, alerted.payload\n\
             FROM {deliveries} AS queued JOIN {outbox} AS alerted ON alerted.alert_id = queued.alert_id\n\
             WHERE queued.sink = {sink} AND queued.status <> 'delivered'\n\
             ORDER BY alerted.created_at, alerted.window_start, queued.alert_id",
            deliveries = self.deliveries,
            outbox = self.outbox,
            sink = quote_string(sink),
        ))?;
        Ok(result
            .rows
            .into_iter()
            .filter_map(|row| match row.as_slice() {
                [
                    Cell::Text(alert_id),
                    Cell::Text(severity),
                    subscriber,
                    Cell::Text(body),
                ] => Some(PendingDelivery {
                    alert_id: alert_id.clone(),
                    severity: severity.clone(),
                    subscriber: match subscriber {
                        Cell::Text(s) => Some(s.clone()),
                        _ => None,
                    },
                    body: body.clone(),
                }),
                _ => None,
            })
            .collect())
    }

    /// Records delivered alerts with their message ids.
    pub fn mark_delivered(
        &self,
        warehouse: &mut dyn Warehouse,
        sink: &str,
        delivered: &[(&str, Option<&str>)],
    ) -> Result<(), EngineError> {
        self.update(warehouse, sink, delivered, |message_ids| {
            format!(
                "status = 'delivered', attempts = attempts + 1, message_id = {message_ids}, last_error = NULL, delivered_at = CURRENT_TIMESTAMP(), updated_at = CURRENT_TIMESTAMP()"
            )
        })
    }

    /// Records failed attempts; the deliveries stay due and go out on a later run.
    pub fn mark_failed(
        &self,
        warehouse: &mut dyn Warehouse,
        sink: &str,
        failed: &[(&str, Option<&str>)],
    ) -> Result<(), EngineError> {
        self.update(warehouse, sink, failed, |errors| {
            format!(
                "status = 'failed', attempts = attempts + 1, last_error = {errors}, updated_at = CURRENT_TIMESTAMP()"
            )
        })
    }

    /// One UPDATE per chunk, the per-alert value chosen by a CASE on the alert id: a single
    /// statement is atomic on every engine.
    fn update(
        &self,
        warehouse: &mut dyn Warehouse,
        sink: &str,
        rows: &[(&str, Option<&str>)],
        set: impl Fn(&str) -> String,
    ) -> Result<(), EngineError> {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut case = String::from("CASE alert_id");
            for (alert_id, value) in chunk {
                let _ = write!(
                    case,
                    " WHEN {} THEN {}",
                    quote_string(alert_id),
                    value.map_or("CAST(NULL AS STRING)".to_string(), quote_string)
                );
            }
            case.push_str(" END");
            let ids: Vec<String> = chunk.iter().map(|(id, _)| quote_string(id)).collect();
            warehouse.execute_script(&format!(
                "UPDATE {} SET {} WHERE sink = {} AND alert_id IN ({})",
                self.deliveries,
                set(&case),
                quote_string(sink),
                ids.join(", ")
            ))?;
        }
        Ok(())
    }

    /// Deliveries of `sink` still due, after this run's attempts.
    pub fn count_undelivered(
        &self,
        warehouse: &mut dyn Warehouse,
        sink: &str,
    ) -> Result<i64, EngineError> {
        let result = warehouse.query(&format!(
            "SELECT COUNT(*) FROM {} WHERE sink = {} AND status <> 'delivered'",
            self.deliveries,
            quote_string(sink)
        ))?;
        Ok(result.scalar().and_then(Cell::as_i64).unwrap_or(0))
    }
}

fn alert_row(staged: &StagedAlert<'_>, run_id: &str, pipeline: &str) -> String {
    let alert = staged.alert;
    let window = &alert.window;
    format!(
        "({}, 'anomaly', '{}', {}, {}, {}, {}, {}, {}, {}, {}, '{}', {}, {}, CURRENT_TIMESTAMP())",
        quote_string(&alert.alert_id),
        staged.disposition.status(),
        optional_string(staged.disposition.reason()),
        quote_string(run_id),
        quote_string(pipeline),
        window.model_version,
        quote_string(&window.subscriber),
        quote_string(&window.subnet),
        timestamp_literal(window.window_start),
        window
            .window_end
            .map_or("CAST(NULL AS TIMESTAMP)".to_string(), timestamp_literal),
        alert.severity.as_str(),
        float_literal(window.normalized_distance),
        quote_string(&alert.body.to_string()),
    )
}

fn summary_row(summary: &StagedSummary, run_id: &str, pipeline: &str) -> String {
    format!(
        "({}, 'summary', 'active', CAST(NULL AS STRING), {}, {}, CAST(NULL AS INT64), CAST(NULL AS STRING), CAST(NULL AS STRING), {}, CAST(NULL AS TIMESTAMP), 'high', CAST(NULL AS FLOAT64), {}, CURRENT_TIMESTAMP())",
        quote_string(&summary.alert_id),
        quote_string(run_id),
        quote_string(pipeline),
        timestamp_literal(summary.last_window),
        quote_string(&summary.body),
    )
}

fn optional_string(value: Option<&str>) -> String {
    value.map_or("CAST(NULL AS STRING)".to_string(), quote_string)
}

pub fn timestamp_literal(t: DateTime<Utc>) -> String {
    format!("TIMESTAMP '{}'", t.format("%Y-%m-%d %H:%M:%S%.6f+00"))
}

fn float_literal(value: f64) -> String {
    if value.is_finite() {
        format!("{value:?}")
    } else {
        "CAST(NULL AS FLOAT64)".to_string()
    }
}
