//! Drift: the built-in `drift` step of the detect pipeline. The SQL step named by
//! `drift.metrics_from` (`sql/ops/drift_metrics.sql`) measures how far the newest scored batch
//! has drifted from the champion's training data; this step judges the policy metric's
//! measurements against the policy (threshold, consecutive breaches, cooldown, minimum rows),
//! marks them breached or not, and records its decision with the numbers in
//! `ops.drift_decisions`. A `retrain` decision makes the runner run the `then` pipeline next,
//! in the same process; its outcome (the new version's verdict) is written back onto the
//! decision.

pub mod config;
pub mod policy;

use chrono::{DateTime, Utc};

use crate::project::{Materialization, Project};
use crate::state;
use netsentinel_core::Naming;
use netsentinel_core::relation::{Dataset, Identifier, TableRef};
use netsentinel_core::sql::quote_string;
use netsentinel_core::{Cell, Column, EngineError, TableDef, Warehouse};

use self::config::DriftConfig;
use self::policy::{Action, Decision, Measurement, Policy};

/// Measurements read per decision: far more than any sane `consecutive`, bounded so a long
/// quiet history costs nothing.
const MEASUREMENTS_READ: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("drift.metrics_from names `{0}`, but no step under sql/ builds a table of that name")]
    UnknownMetricsStep(String),
}

pub fn decisions() -> TableRef {
    TableRef::new(Dataset::Ops, "drift_decisions").expect("valid identifier")
}

const DECISION_COLUMNS: &[Column] = &[
    Column::string("run_id"),
    Column::timestamp("decided_at"),
    Column::string("model_name"),
    Column::int64("model_version"),
    Column::string("metric"),
    Column::float64("value"),
    Column::float64("threshold"),
    Column::int64("streak"),
    Column::int64("consecutive"),
    Column::int64("scored_rows"),
    Column::timestamp("window_from"),
    Column::timestamp("window_to"),
    Column::string("action"),
    Column::string("reason"),
    Column::timestamp("cooldown_until"),
    Column::string("then_pipeline"),
    Column::string("train_run_id"),
    Column::string("outcome"),
];

/// One decision per drift run.
pub fn decisions_def() -> TableDef {
    TableDef::plain(decisions(), DECISION_COLUMNS, &["run_id"])
}

/// What the step decided, for the run report and the runner.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftOutcome {
    pub model_version: Option<i64>,
    pub decision: Decision,
    /// The pipeline to run now, when the decision is to retrain.
    pub retrain: Option<Identifier>,
}

impl DriftOutcome {
    pub fn notes(&self, config: &DriftConfig) -> Vec<String> {
        let version = self
            .model_version
            .map_or("no champion".to_string(), |v| format!("v{v}"));
        vec![format!(
            "{} {version}, {}: {} — {}",
            config.model,
            config.metric,
            self.decision.action.as_str(),
            self.decision.reason
        )]
    }
}

pub struct DriftStep<'a> {
    pub project: &'a Project,
    pub config: &'a DriftConfig,
    pub run_id: &'a str,
}

impl DriftStep<'_> {
    pub fn run(&self, warehouse: &mut dyn Warehouse) -> Result<DriftOutcome, DriftError> {
        let naming = warehouse.naming().clone();
        let table = naming.qualify(&decisions());
        warehouse.create_table(&decisions_def())?;
        let metrics = self.metrics_relation(&naming)?;
        let model = quote_string(self.config.model.as_str());
        let metric = quote_string(self.config.metric.as_str());
        let run = quote_string(self.run_id);
        let policy = Policy {
            threshold: self.config.threshold,
            consecutive: self.config.consecutive,
            cooldown: self.config.cooldown,
            min_rows: self.config.min_rows,
        };
        // The judgement goes onto the measurements it judged, at the threshold of the time.
        warehouse.execute_script(&format!(
            "DELETE FROM {table} WHERE run_id = {run};\n\
             UPDATE {metrics} SET threshold = {threshold}, breached = COALESCE(value > {threshold}, FALSE) \
             WHERE model_name = {model} AND metric = {metric} AND threshold IS NULL",
            threshold = Cell::Float(policy.threshold).to_sql_literal(),
        ))?;
        let champion = warehouse
            .query(&format!(
                "SELECT MAX(version) FROM {} WHERE model_name = {model} AND status = 'champion'",
                naming.qualify(&state::model_registry())
            ))?
            .scalar()
            .and_then(Cell::as_i64);
        let last_retrain = warehouse.query(&format!(
            "SELECT decided_at, window_to FROM {table} WHERE model_name = {model} AND action = 'retrain' ORDER BY decided_at DESC LIMIT 1"
        ))?;
        let (last_retrain_at, counted_after) = match last_retrain.rows.first().map(Vec::as_slice) {
            Some([at, to]) => (timestamp(at), timestamp(to)),
            _ => (None, None),
        };
        let measurements = match champion {
            Some(version) => self.measurements(warehouse, &metrics, version, counted_after)?,
            None => Vec::new(),
        };
        let decision = policy.decide(&measurements, last_retrain_at, Utc::now());
        let latest = decision.latest.as_ref();
        let time = |t: Option<DateTime<Utc>>| {
            t.map_or("CAST(NULL AS TIMESTAMP)".to_string(), |t| {
                Cell::Timestamp(t).to_sql_literal()
            })
        };
        warehouse.execute_script(&format!(
            "INSERT INTO {table} (run_id, decided_at, model_name, model_version, metric, value, threshold, streak, consecutive, scored_rows, window_from, window_to, action, reason, cooldown_until, then_pipeline)\n\
             VALUES ({run}, CURRENT_TIMESTAMP(), {model}, {version}, {metric}, {value}, {threshold}, {streak}, {consecutive}, {rows}, {from}, {to}, '{action}', {reason}, {until}, {then})",
            version = champion.map_or("CAST(NULL AS INT64)".to_string(), |v| v.to_string()),
            value = Cell::Float(latest.map_or(f64::NAN, |m| m.value)).to_sql_literal(),
            threshold = Cell::Float(policy.threshold).to_sql_literal(),
            streak = decision.streak,
            consecutive = policy.consecutive,
            rows = latest.map_or("CAST(NULL AS INT64)".to_string(), |m| m.scored_rows.to_string()),
            from = time(latest.map(|m| m.window_from)),
            to = time(latest.map(|m| m.window_to)),
            action = decision.action.as_str(),
            reason = quote_string(&decision.reason),
            until = time(decision.cooldown_until),
            then = quote_string(self.config.then.as_str()),
        ))?;
        tracing::info!(
            model = %self.config.model,
            action = decision.action.as_str(),
            streak = decision.streak,
            reason = %decision.reason,
            "drift decision"
        );
        Ok(DriftOutcome {
            model_version: champion,
            retrain: (decision.action == Action::Retrain).then(|| self.config.then.clone()),
            decision,
        })
    }

    fn metrics_relation(&self, naming: &Naming) -> Result<String, DriftError> {
        self.project
            .steps
            .values()
            .find(|s| {
                s.relation.name == self.config.metrics_from
                    && s.config.materialized != Materialization::Model
            })
            .map(|s| naming.qualify(&s.relation))
            .ok_or_else(|| DriftError::UnknownMetricsStep(self.config.metrics_from.to_string()))
    }

    /// The policy metric's measurements of the champion, newest first, from batches after
    /// `after` (the batch of the last retrain).
    fn measurements(
        &self,
        warehouse: &mut dyn Warehouse,
        metrics: &str,
        version: i64,
        after: Option<DateTime<Utc>>,
    ) -> Result<Vec<Measurement>, EngineError> {
        let after = after.map_or(String::new(), |t| {
            format!(" AND window_to > {}", Cell::Timestamp(t).to_sql_literal())
        });
        let rows = warehouse.query(&format!(
            "SELECT window_from, window_to, value, scored_rows FROM {metrics} \
             WHERE model_name = {} AND model_version = {version} AND metric = {}{after} \
             ORDER BY window_to DESC LIMIT {MEASUREMENTS_READ}",
            quote_string(self.config.model.as_str()),
            quote_string(self.config.metric.as_str()),
        ))?;
        Ok(rows
            .rows
            .iter()
            .filter_map(|row| match row.as_slice() {
                [from, to, value, rows] => Some(Measurement {
                    window_from: timestamp(from)?,
                    window_to: timestamp(to)?,
                    value: value.as_f64().unwrap_or(f64::NAN),
                    scored_rows: rows.as_i64().unwrap_or(0).max(0) as u64,
                }),
                _ => None,
            })
            .collect())
    }
}

/// Writes what the retrain a decision started came to (the new version's verdict, or the
/// failure) onto that decision.
pub fn record_outcome(
    warehouse: &mut dyn Warehouse,
    decision_run_id: &str,
    train_run_id: Option<&str>,
    outcome: &str,
) -> Result<(), EngineError> {
    let table = warehouse.naming().qualify(&decisions());
    warehouse.execute_script(&format!(
        "UPDATE {table} SET train_run_id = {}, outcome = {} WHERE run_id = {} AND action = 'retrain'",
        train_run_id.map_or("CAST(NULL AS STRING)".to_string(), quote_string),
        quote_string(outcome),
        quote_string(decision_run_id),
    ))?;
    Ok(())
}

fn timestamp(cell: &Cell) -> Option<DateTime<Utc>> {
    match cell {
        Cell::Timestamp(t) => Some(*t),
        _ => None,
    }
}
