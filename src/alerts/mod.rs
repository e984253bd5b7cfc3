//! Alerts: the built-in `alerts` step of a pipeline. Anomalous rows of the scored table become
//! alerts in an outbox (`ops.alert_outbox`) with deterministic ids, storm controls decide which
//! go out (per-entity suppression, a per-run cap with one summary alert), and each configured
//! sink gets its pending deliveries (`ops.alert_deliveries`). A sink that is down only leaves
//! its own deliveries pending for the next run; a rerun sends nothing twice.
//!
//! Delivery is at-least-once towards the destination with a stable `alert_id` on every
//! message: a crash after a sink accepted an alert but before its delivery was recorded
//! repeats that alert on the next run, and receivers deduplicate on the id.

pub mod config;
pub mod message;
pub mod outbox;
pub mod sinks;
mod triage;

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::project::{Materialization, Project};
use crate::registry;
use netsentinel_core::relation::TableRef;
use netsentinel_core::{Cell, EngineError, ResultSet, Warehouse};

use self::config::AlertsConfig;
use self::message::{ANOMALY_KIND, Alert, Finding, ModelProfile, Origin, ScoredWindow};
use self::outbox::{Outbox, PendingDelivery, StagedAlert, StagedSummary};
use self::sinks::{Outgoing, SinkContext};

/// Alerts handed to a sink at once; each batch's outcome is recorded before the next.
const DELIVERY_BATCH: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("alerts.{key} names `{name}`, but no step under sql/ builds {what} of that name")]
    UnknownStep {
        key: &'static str,
        name: String,
        what: &'static str,
    },
    #[error("{table} has no column `{column}`: alerts read {required} from the scored table")]
    MissingColumn {
        table: String,
        column: &'static str,
        required: String,
    },
    #[error("{table}: a detector table's findings need {required}")]
    FindingShape { table: String, required: String },
    #[error("cannot start the runtime for alert delivery: {0}")]
    Runtime(std::io::Error),
}

/// Columns the scored table must have: ML.DETECT_ANOMALIES output keyed by entity and window.
const REQUIRED_COLUMNS: [&str; 7] = [
    "subscriberId",
    "dst_subnet",
    "window_start",
    "is_anomaly",
    "normalized_distance",
    "centroid_id",
    "model_version",
];

/// What a detector table's rows must hold for the alerts step to read its findings.
const FINDING_COLUMNS: &str = "subscriberId and destination (STRING), first_seen and last_seen \
     (TIMESTAMP), score (FLOAT64), is_finding (BOOL) and evidence (STRING)";

/// A row of [`Outbox::new_findings_sql`]; None when a value has the wrong type.
fn finding_from_row(row: &[Cell]) -> Option<Finding> {
    match row {
        [
            Cell::Text(subscriber),
            Cell::Text(destination),
            Cell::Timestamp(first_seen),
            Cell::Timestamp(last_seen),
            score,
            Cell::Text(evidence),
        ] => Some(Finding {
            subscriber: subscriber.clone(),
            destination: destination.clone(),
            first_seen: *first_seen,
            last_seen: *last_seen,
            score: score.as_f64()?,
            evidence: evidence.clone(),
        }),
        _ => None,
    }
}

/// The relation of the step `alerts.{key}` names: a model step's when `model`, else a table's.
pub fn step_relation<'a>(
    project: &'a Project,
    key: &'static str,
    name: &str,
    model: bool,
) -> Result<&'a TableRef, AlertsError> {
    project
        .steps
        .values()
        .find(|s| {
            s.relation.name.as_str() == name
                && (s.config.materialized == Materialization::Model) == model
        })
        .map(|s| &s.relation)
        .ok_or_else(|| AlertsError::UnknownStep {
            key,
            name: name.to_string(),
            what: if model { "a model" } else { "a table" },
        })
}

/// What the step did, for the run report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertsOutcome {
    /// New anomalies found this run.
    pub new_anomalies: usize,
    /// New detector incidents (beacons, slow scans…) found this run.
    pub new_findings: usize,
    pub sent: usize,
    pub suppressed: usize,
    pub held: usize,
    pub summary_queued: bool,
    pub sinks: Vec<SinkOutcome>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SinkOutcome {
    pub sink: String,
    pub delivered: usize,
    pub failed: usize,
    /// Deliveries still due after this run (this run's failures and older ones).
    pub pending: i64,
    /// Deliveries that failed `max_attempts` times and are no longer tried.
    pub dead: i64,
    /// Deliveries left for the next run because the run's delivery budget was spent.
    pub deferred: usize,
    pub last_error: Option<String>,
}

impl SinkOutcome {
    fn count(&mut self, results: &[sinks::DeliveryResult]) {
        for result in results {
            match result {
                Ok(_) => self.delivered += 1,
                Err(error) => {
                    self.failed += 1;
                    self.last_error = Some(error.clone());
                }
            }
        }
    }
}

impl AlertsOutcome {
    /// One line per fact worth reading in a run report.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = vec![format!(
            "{} new anomalies and {} detector findings: {} to send, {} suppressed, {} held by the per-run cap{}",
            self.new_anomalies,
            self.new_findings,
            self.sent,
            self.suppressed,
            self.held,
            if self.summary_queued {
                " (summary alert queued)"
            } else {
                ""
            }
        )];
        for sink in &self.sinks {
            let mut line = format!(
                "sink {}: {} delivered, {} failed, {} pending",
                sink.sink, sink.delivered, sink.failed, sink.pending
            );
            if sink.deferred > 0 {
                line.push_str(&format!(
                    ", {} deferred to the next run (delivery budget spent)",
                    sink.deferred
                ));
            }
            if sink.dead > 0 {
                line.push_str(&format!(
                    ", {} dead-lettered (status 'dead' in ops.alert_deliveries)",
                    sink.dead
                ));
            }
            if let Some(error) = &sink.last_error {
                line.push_str(&format!(" (last error: {error})"));
            }
            notes.push(line);
        }
        notes
    }
}

/// The step's inputs besides the warehouse.
pub struct AlertStep<'a> {
    pub project: &'a Project,
    pub config: &'a AlertsConfig,
    pub target: &'a str,
    pub pipeline: &'a str,
    pub run_id: &'a str,
}

impl AlertStep<'_> {
    pub fn run(&self, warehouse: &mut dyn Warehouse) -> Result<AlertsOutcome, AlertsError> {
        let naming = warehouse.naming().clone();
        let outbox = Outbox::new(&naming);
        outbox.ensure_tables(warehouse)?;
        let mut outcome = self.stage(warehouse, &outbox)?;
        outcome.sinks = self.deliver(warehouse, &outbox)?;
        Ok(outcome)
    }

    fn scored_relation(&self) -> Result<&TableRef, AlertsError> {
        self.relation_of("from", &self.config.from.to_string(), false)
    }

    fn model_relation(&self) -> Result<&TableRef, AlertsError> {
        self.relation_of("model", &self.config.model.to_string(), true)
    }

    fn relation_of(
        &self,
        key: &'static str,
        name: &str,
        model: bool,
    ) -> Result<&TableRef, AlertsError> {
        step_relation(self.project, key, name, model)
    }

    /// Finds anomalies not yet in the outbox, decides which go out, and writes them all down.
    fn stage(
        &self,
        warehouse: &mut dyn Warehouse,
        outbox: &Outbox<'_>,
    ) -> Result<AlertsOutcome, AlertsError> {
        let scored = self.scored_relation()?.clone();
        let model = self.model_relation()?.clone();
        let origin = Origin {
            pipeline: self.pipeline,
            target: self.target,
            run_id: self.run_id,
            model: model.name.as_str(),
        };
        let rows = warehouse.query(&outbox.new_anomalies_sql(&scored, &self.config.alert_on))?;
        let mut alerts = if rows.rows.is_empty() {
            Vec::new()
        } else {
            self.build_alerts(warehouse, &scored, &model, &rows, &origin)?
        };
        alerts.extend(self.finding_alerts(warehouse, outbox, &origin)?);
        if alerts.is_empty() {
            return Ok(AlertsOutcome::default());
        }
        let earliest = alerts
            .iter()
            .map(|a| a.window.window_start)
            .min()
            .expect("at least one alert");
        let since =
            earliest - chrono::Duration::from_std(self.config.suppress_for).unwrap_or_default();
        let last_sent = outbox.last_sent(warehouse, since)?;
        let dispositions = triage::triage(
            &alerts,
            last_sent,
            self.config.suppress_for,
            self.config.max_per_run,
        );
        let staged: Vec<StagedAlert<'_>> = alerts
            .iter()
            .zip(dispositions)
            .map(|(alert, disposition)| StagedAlert { alert, disposition })
            .collect();
        let count = |f: fn(&outbox::Disposition) -> bool| {
            staged.iter().filter(|s| f(&s.disposition)).count()
        };
        let held = count(|d| matches!(d, outbox::Disposition::Held(_)));
        let summary = (held > 0).then(|| self.summary(&staged, held, &origin));
        outbox.stage(
            warehouse,
            self.run_id,
            self.pipeline,
            &staged,
            summary.as_ref(),
        )?;
        let outcome = AlertsOutcome {
            new_anomalies: staged
                .iter()
                .filter(|s| s.alert.kind == ANOMALY_KIND)
                .count(),
            new_findings: staged
                .iter()
                .filter(|s| s.alert.kind != ANOMALY_KIND)
                .count(),
            sent: count(|d| matches!(d, outbox::Disposition::Send)),
            suppressed: count(|d| matches!(d, outbox::Disposition::Suppressed(_))),
            held,
            summary_queued: summary.is_some(),
            sinks: Vec::new(),
        };
        tracing::info!(
            new = outcome.new_anomalies,
            to_send = outcome.sent,
            suppressed = outcome.suppressed,
            held = outcome.held,
            "alerts staged"
        );
        Ok(outcome)
    }

    /// The new incidents of every detector table in `alerts.findings`, one alert each.
    fn finding_alerts(
        &self,
        warehouse: &mut dyn Warehouse,
        outbox: &Outbox<'_>,
        origin: &Origin<'_>,
    ) -> Result<Vec<Alert>, AlertsError> {
        let mut alerts = Vec::new();
        for name in &self.config.findings {
            let table = self.relation_of("findings", name.as_str(), false)?.clone();
            let rows = warehouse.query(&outbox.new_findings_sql(&table, name.as_str()))?;
            for row in &rows.rows {
                let finding = finding_from_row(row).ok_or_else(|| AlertsError::FindingShape {
                    table: warehouse.naming().qualify(&table),
                    required: FINDING_COLUMNS.to_string(),
                })?;
                alerts.push(Alert::from_finding(
                    name.as_str(),
                    finding,
                    &self.config.severity,
                    origin,
                ));
            }
        }
        Ok(alerts)
    }

    /// Each anomalous row as an alert: severity against its model version's threshold, and an
    /// explanation when the row was scored by the model that explains it.
    fn build_alerts(
        &self,
        warehouse: &mut dyn Warehouse,
        scored: &TableRef,
        model: &TableRef,
        rows: &ResultSet,
        origin: &Origin<'_>,
    ) -> Result<Vec<Alert>, AlertsError> {
        let profile = model_profile(warehouse, self.project, model)?;
        let windows = scored_windows(rows, &profile, &warehouse.naming().qualify(scored))?;
        let thresholds = thresholds(warehouse, scored, &windows)?;
        Ok(windows
            .into_iter()
            .map(|window| {
                let threshold = thresholds
                    .get(&window.model_version)
                    .copied()
                    .unwrap_or(window.normalized_distance);
                let explanation = if window.model_version == profile.version {
                    profile.explain(&window, self.config.explain_top)
                } else {
                    Vec::new()
                };
                Alert::new(
                    window,
                    threshold,
                    &self.config.severity,
                    &explanation,
                    origin,
                )
            })
            .collect())
    }

    fn summary(
        &self,
        staged: &[StagedAlert<'_>],
        held: usize,
        origin: &Origin<'_>,
    ) -> StagedSummary {
        let held_windows: Vec<DateTime<Utc>> = staged
            .iter()
            .filter(|s| matches!(s.disposition, outbox::Disposition::Held(_)))
            .map(|s| s.alert.window.window_start)
            .collect();
        let first = *held_windows.iter().min().expect("held alerts");
        let last = *held_windows.iter().max().expect("held alerts");
        let alert_id = message::summary_alert_id(self.run_id);
        let body = message::summary_body(
            &alert_id,
            held,
            self.config.max_per_run,
            first,
            last,
            origin,
        );
        StagedSummary {
            alert_id,
            body: body.to_string(),
            last_window: last,
        }
    }

    /// Hands every sink its due deliveries and records the outcome of each.
    fn deliver(
        &self,
        warehouse: &mut dyn Warehouse,
        outbox: &Outbox<'_>,
    ) -> Result<Vec<SinkOutcome>, AlertsError> {
        let sinks: Vec<_> = self.config.sinks_for(self.target).collect();
        if sinks.is_empty() {
            return Ok(Vec::new());
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(AlertsError::Runtime)?;
        let context = SinkContext {
            project_root: &self.project.root,
            pipeline: self.pipeline,
            target: self.target,
        };
        let deadline = tokio::time::Instant::now() + self.config.delivery_budget;
        let mut outcomes = Vec::with_capacity(sinks.len());
        for config in sinks {
            let name = config.name();
            outbox.queue_for_sink(warehouse, self.run_id, &name)?;
            let pending = outbox.pending(warehouse, &name)?;
            let mut outcome = SinkOutcome {
                sink: name.clone(),
                delivered: 0,
                failed: 0,
                pending: 0,
                dead: 0,
                deferred: 0,
                last_error: None,
            };
            if !pending.is_empty() {
                let sink = runtime.block_on(sinks::open(config, &context));
                for (index, batch) in pending.chunks(DELIVERY_BATCH).enumerate() {
                    let delivered = match &sink {
                        Ok(sink) => runtime.block_on(async {
                            tokio::time::timeout_at(deadline, sink.deliver(&outgoing(batch))).await
                        }),
                        Err(error) => Ok(vec![Err(error.clone()); batch.len()]),
                    };
                    // A batch cut short is not recorded: what it sent goes again next run,
                    // and receivers deduplicate on the alert id.
                    let Ok(results) = delivered else {
                        outcome.deferred = pending.len() - index * DELIVERY_BATCH;
                        break;
                    };
                    let attempts: Vec<(&str, &sinks::DeliveryResult)> = batch
                        .iter()
                        .map(|p| p.alert_id.as_str())
                        .zip(&results)
                        .collect();
                    outbox.record_attempts(
                        warehouse,
                        &name,
                        &attempts,
                        self.config.max_attempts,
                    )?;
                    outcome.count(&results);
                }
            }
            (outcome.pending, outcome.dead) = outbox.count_undelivered(warehouse, &name)?;
            if outcome.failed > 0 {
                tracing::warn!(sink = %name, failed = outcome.failed, pending = outcome.pending, error = outcome.last_error.as_deref().unwrap_or(""), "alert deliveries failed; they stay pending for the next run");
            } else {
                tracing::info!(sink = %name, delivered = outcome.delivered, "alerts delivered");
            }
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }
}

fn outgoing(batch: &[PendingDelivery]) -> Vec<Outgoing> {
    batch
        .iter()
        .map(|p| Outgoing {
            alert_id: p.alert_id.clone(),
            severity: p.severity.clone(),
            subscriber: p.subscriber.clone(),
            body: p.body.clone(),
        })
        .collect()
}

/// The champion's centroids and feature spreads, read with ML.CENTROIDS and ML.FEATURE_INFO
/// so the same code explains alerts on every engine.
fn model_profile(
    warehouse: &mut dyn Warehouse,
    project: &Project,
    model: &TableRef,
) -> Result<ModelProfile, EngineError> {
    let (serving, version) = registry::serving(warehouse, project, model)?;
    let qualified = warehouse.naming().qualify(&serving);
    let info = warehouse.query(&format!(
        "SELECT input, stddev FROM ML.FEATURE_INFO(MODEL {qualified})"
    ))?;
    let mut profile = ModelProfile {
        version,
        ..ModelProfile::default()
    };
    for row in info.rows {
        if let [Cell::Text(input), stddev] = row.as_slice() {
            profile.feature_order.push(input.clone());
            if let Some(stddev) = stddev.as_f64() {
                profile.stddevs.insert(input.clone(), stddev);
            }
        }
    }
    let centroids = warehouse.query(&format!(
        "SELECT centroid_id, feature, numerical_value FROM ML.CENTROIDS(MODEL {qualified})"
    ))?;
    for row in centroids.rows {
        if let [Cell::Int(centroid), Cell::Text(feature), value] = row.as_slice()
            && let Some(value) = value.as_f64()
        {
            profile
                .centroids
                .insert((*centroid, feature.clone()), value);
        }
    }
    Ok(profile)
}

fn scored_windows(
    rows: &ResultSet,
    profile: &ModelProfile,
    table: &str,
) -> Result<Vec<ScoredWindow>, AlertsError> {
    let position = |column: &'static str| {
        rows.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(column))
            .ok_or_else(|| AlertsError::MissingColumn {
                table: table.to_string(),
                column,
                required: REQUIRED_COLUMNS.join(", "),
            })
    };
    let [subscriber, subnet, start, _, distance, centroid, version] =
        REQUIRED_COLUMNS.map(position);
    let (subscriber, subnet, start, distance, centroid, version) =
        (subscriber?, subnet?, start?, distance?, centroid?, version?);
    let end = rows
        .columns
        .iter()
        .position(|c| c.eq_ignore_ascii_case("window_end"));
    let features: Vec<(String, Option<usize>)> = profile
        .feature_order
        .iter()
        .map(|f| (f.clone(), rows.columns.iter().position(|c| c == f)))
        .collect();
    Ok(rows
        .rows
        .iter()
        .filter_map(|row| {
            let Cell::Timestamp(window_start) = row[start] else {
                return None;
            };
            Some(ScoredWindow {
                model_version: row[version].as_i64().unwrap_or(0),
                subscriber: row[subscriber].to_string(),
                subnet: row[subnet].to_string(),
                window_start,
                window_end: end.and_then(|i| match row[i] {
                    Cell::Timestamp(t) => Some(t),
                    _ => None,
                }),
                normalized_distance: row[distance].as_f64()?,
                centroid_id: row[centroid].as_i64()?,
                features: features
                    .iter()
                    .map(|(name, i)| (name.clone(), i.and_then(|i| row[i].as_f64())))
                    .collect(),
            })
        })
        .collect())
}

/// The detection threshold of each model version, estimated from what it scored: the largest
/// normalized distance it did not flag (the exact threshold lies between that and the
/// smallest one it flagged; BigQuery ML does not expose it). Falls back to the smallest flagged
/// distance while a version has flagged everything it scored.
fn thresholds(
    warehouse: &mut dyn Warehouse,
    scored: &TableRef,
    windows: &[ScoredWindow],
) -> Result<HashMap<i64, f64>, EngineError> {
    let mut versions: Vec<i64> = windows.iter().map(|w| w.model_version).collect();
    versions.sort_unstable();
    versions.dedup();
    let list: Vec<String> = versions.iter().map(i64::to_string).collect();
    let result = warehouse.query(&format!(
        "SELECT model_version, MAX(IF(is_anomaly, NULL, normalized_distance)), MIN(IF(is_anomaly, normalized_distance, NULL)) \
         FROM {} WHERE model_version IN ({}) GROUP BY model_version",
        warehouse.naming().qualify(scored),
        list.join(", ")
    ))?;
    Ok(result
        .rows
        .iter()
        .filter_map(|row| {
            let version = row.first()?.as_i64()?;
            let threshold = row.get(1)?.as_f64().or_else(|| row.get(2)?.as_f64())?;
            Some((version, threshold))
        })
        .collect())
}
