//! The alert outbox in the warehouse's `ops` dataset: `ops.alert_outbox` holds every alert
//! once (sent, suppressed or held, with the reason), `ops.alert_deliveries` one row per
//! (alert, sink) with its delivery state, and `ops.alert_delivery_log` every attempt. Bulk rows
//! are appended through the `Warehouse` trait and state changes are set-based GoogleSQL, so
//! both engines keep the same record and a storm of alerts costs a few statements.

use chrono::{DateTime, Utc};

use super::message::{Alert, Severity};
use netsentinel_core::Naming;
use netsentinel_core::relation::{Dataset, Identifier, TableRef};
use netsentinel_core::sql::quote_string;
use netsentinel_core::{Cell, Column, EngineError, TableDef, Warehouse};

pub fn outbox() -> TableRef {
    TableRef::new(Dataset::Ops, "alert_outbox").expect("valid name")
}

pub fn deliveries() -> TableRef {
    TableRef::new(Dataset::Ops, "alert_deliveries").expect("valid name")
}

const OUTBOX_COLUMNS: &[Column] = &[
    Column::string("alert_id"),
    Column::string("kind"),
    Column::string("status"),
    Column::string("reason"),
    Column::string("run_id"),
    Column::string("pipeline"),
    Column::int64("model_version"),
    Column::string("subscriber"),
    Column::string("subnet"),
    Column::timestamp("window_start"),
    Column::timestamp("window_end"),
    Column::string("severity"),
    Column::float64("normalized_distance"),
    Column::string("payload"),
    Column::timestamp("created_at"),
];

const DELIVERY_COLUMNS: &[Column] = &[
    Column::string("alert_id"),
    Column::string("sink"),
    Column::string("status"),
    Column::int64("attempts"),
    Column::string("message_id"),
    Column::string("last_error"),
    Column::timestamp("delivered_at"),
    Column::timestamp("updated_at"),
];

const DELIVERY_LOG_COLUMNS: &[Column] = &[
    Column::string("attempt_id"),
    Column::string("alert_id"),
    Column::string("sink"),
    Column::string("outcome"),
    Column::string("message_id"),
    Column::string("error"),
    Column::timestamp("attempted_at"),
];

/// The outbox, each sink's delivery state, and every delivery attempt.
pub fn table_defs() -> [TableDef; 3] {
    [
        TableDef::plain(outbox(), OUTBOX_COLUMNS, &["alert_id"]),
        TableDef::plain(deliveries(), DELIVERY_COLUMNS, &["alert_id", "sink"]),
        TableDef::plain(delivery_log(), DELIVERY_LOG_COLUMNS, &["attempt_id"]),
    ]
}

pub fn delivery_log() -> TableRef {
    TableRef::new(Dataset::Ops, "alert_delivery_log").expect("valid name")
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
    log: String,
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
            log: naming.qualify(&delivery_log()),
        }
    }

    pub fn ensure_tables(&self, warehouse: &mut dyn Warehouse) -> Result<(), EngineError> {
        warehouse.create_tables(&table_defs())
    }

    /// The rows of `scored` flagged by `alert_on` that have no outbox row yet, oldest window
    /// first.
    pub fn new_anomalies_sql(&self, scored: &TableRef, alert_on: &Identifier) -> String {
        format!(
            "SELECT scored.* FROM {scored} AS scored\n\
             WHERE scored.{alert_on}\n\
             AND NOT EXISTS (SELECT 1 FROM {outbox} AS alerted WHERE alerted.kind = 'anomaly' \
             AND alerted.model_version = scored.model_version AND alerted.subscriber = scored.subscriberId \
             AND alerted.subnet = scored.dst_subnet AND alerted.window_start = scored.window_start)\n\
             ORDER BY scored.window_start, scored.subscriberId, scored.dst_subnet",
            scored = self.naming.qualify(scored),
            outbox = self.outbox,
        )
    }

    /// The findings of a detector table with no alert for the same incident yet: an alert of
    /// this kind for the same subscriber and destination whose span reaches into the finding's.
    pub fn new_findings_sql(&self, findings: &TableRef, kind: &str) -> String {
        format!(
            "SELECT found.subscriberId, found.destination, found.first_seen, found.last_seen, found.score, found.evidence\n\
             FROM {findings} AS found\n\
             WHERE found.is_finding\n\
             AND NOT EXISTS (SELECT 1 FROM {outbox} AS alerted WHERE alerted.kind = {kind} \
             AND alerted.subscriber = found.subscriberId AND alerted.subnet = found.destination \
             AND alerted.window_end >= found.first_seen)\n\
             ORDER BY found.first_seen, found.subscriberId, found.destination",
            findings = self.naming.qualify(findings),
            outbox = self.outbox,
            kind = Cell::Text(kind.to_string()).to_sql_literal(),
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
            Cell::Timestamp(since).to_sql_literal()
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

    /// Writes the run's alerts and its summary in one append.
    pub fn stage(
        &self,
        warehouse: &mut dyn Warehouse,
        run_id: &str,
        pipeline: &str,
        alerts: &[StagedAlert<'_>],
        summary: Option<&StagedSummary>,
    ) -> Result<(), EngineError> {
        let now = Utc::now();
        let mut rows: Vec<Vec<Cell>> = alerts
            .iter()
            .map(|staged| alert_row(staged, run_id, pipeline, now))
            .collect();
        if let Some(summary) = summary {
            rows.push(summary_row(summary, run_id, pipeline, now));
        }
        warehouse.append_rows(&outbox(), &rows)?;
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
             WHERE queued.sink = {sink} AND queued.status NOT IN ('delivered', 'dead')\n\
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

    /// Records one batch of attempts: each goes to the attempt log, then one set-based UPDATE
    /// moves the batch's deliveries to `delivered` (with time and message id), `failed` (with
    /// the error; still due, so a later run retries it) or, at the `max_attempts`-th failure,
    /// `dead` (never tried again until someone resets it).
    pub fn record_attempts(
        &self,
        warehouse: &mut dyn Warehouse,
        sink: &str,
        attempts: &[(&str, &Result<Option<String>, String>)],
        max_attempts: u32,
    ) -> Result<(), EngineError> {
        let attempt_id = format!("att_{}", uuid::Uuid::now_v7().simple());
        let now = Cell::Timestamp(Utc::now());
        let rows: Vec<Vec<Cell>> = attempts
            .iter()
            .map(|(alert_id, result)| {
                let (outcome, message_id, error) = match result {
                    Ok(message_id) => (
                        "delivered",
                        optional_text(message_id.as_deref()),
                        Cell::Null,
                    ),
                    Err(error) => ("failed", Cell::Null, Cell::Text(error.clone())),
                };
                vec![
                    Cell::Text(attempt_id.clone()),
                    Cell::Text(alert_id.to_string()),
                    Cell::Text(sink.to_string()),
                    Cell::Text(outcome.to_string()),
                    message_id,
                    error,
                    now.clone(),
                ]
            })
            .collect();
        warehouse.append_rows(&delivery_log(), &rows)?;
        warehouse.execute_script(&format!(
            "UPDATE {deliveries} AS queued SET \
             status = IF(attempt.outcome = 'failed' AND queued.attempts + 1 >= {max_attempts}, 'dead', attempt.outcome), \
             attempts = queued.attempts + 1, \
             message_id = attempt.message_id, last_error = attempt.error, \
             delivered_at = IF(attempt.outcome = 'delivered', attempt.attempted_at, queued.delivered_at), \
             updated_at = attempt.attempted_at\n\
             FROM {log} AS attempt\n\
             WHERE attempt.attempt_id = {attempt} AND attempt.alert_id = queued.alert_id AND attempt.sink = queued.sink",
            deliveries = self.deliveries,
            log = self.log,
            attempt = quote_string(&attempt_id),
        ))?;
        Ok(())
    }

    /// Deliveries of `sink` still due after this run's attempts, and those dead-lettered.
    pub fn count_undelivered(
        &self,
        warehouse: &mut dyn Warehouse,
        sink: &str,
    ) -> Result<(i64, i64), EngineError> {
        let result = warehouse.query(&format!(
            "SELECT COUNTIF(status NOT IN ('delivered', 'dead')), COUNTIF(status = 'dead') FROM {} WHERE sink = {}",
            self.deliveries,
            quote_string(sink)
        ))?;
        let count = |i: usize| {
            result
                .rows
                .first()
                .and_then(|row| row.get(i))
                .and_then(Cell::as_i64)
                .unwrap_or(0)
        };
        Ok((count(0), count(1)))
    }
}

fn alert_row(
    staged: &StagedAlert<'_>,
    run_id: &str,
    pipeline: &str,
    now: DateTime<Utc>,
) -> Vec<Cell> {
    let alert = staged.alert;
    let window = &alert.window;
    vec![
        Cell::Text(alert.alert_id.clone()),
        Cell::Text(alert.kind.clone()),
        Cell::Text(staged.disposition.status().into()),
        optional_text(staged.disposition.reason()),
        Cell::Text(run_id.into()),
        Cell::Text(pipeline.into()),
        Cell::Int(window.model_version),
        Cell::Text(window.subscriber.clone()),
        Cell::Text(window.subnet.clone()),
        Cell::Timestamp(window.window_start),
        window.window_end.map_or(Cell::Null, Cell::Timestamp),
        Cell::Text(alert.severity.as_str().into()),
        Cell::Float(window.normalized_distance),
        Cell::Text(alert.body.to_string()),
        Cell::Timestamp(now),
    ]
}

fn summary_row(
    summary: &StagedSummary,
    run_id: &str,
    pipeline: &str,
    now: DateTime<Utc>,
) -> Vec<Cell> {
    vec![
        Cell::Text(summary.alert_id.clone()),
        Cell::Text("summary".into()),
        Cell::Text("active".into()),
        Cell::Null,
        Cell::Text(run_id.into()),
        Cell::Text(pipeline.into()),
        Cell::Null,
        Cell::Null,
        Cell::Null,
        Cell::Timestamp(summary.last_window),
        Cell::Null,
        Cell::Text(Severity::High.as_str().into()),
        Cell::Null,
        Cell::Text(summary.body.clone()),
        Cell::Timestamp(now),
    ]
}

fn optional_text(value: Option<&str>) -> Cell {
    value.map_or(Cell::Null, |v| Cell::Text(v.to_string()))
}
