//! Run state kept in the warehouse's `ops` dataset: `ops.runs`, `ops.step_runs` and
//! `ops.model_registry` (whose gate columns `registry` writes). Written as GoogleSQL through the
//! `Warehouse` trait, so both engines keep the same history.

use netsentinel_core::{Cell, EngineError, ScriptOutcome, Warehouse};
use netsentinel_core::relation::{Dataset, TableRef};
use netsentinel_core::Naming;
use netsentinel_core::sql::quote_string;

pub fn runs() -> TableRef {
    ops_table("runs")
}

pub fn step_runs() -> TableRef {
    ops_table("step_runs")
}

pub fn model_registry() -> TableRef {
    ops_table("model_registry")
}

fn ops_table(name: &str) -> TableRef {
    TableRef::new(Dataset::Ops, name).expect("ops table names are valid identifiers")
}

/// DDL for the state tables, idempotent. The columns of `ops.model_registry` after `status`
/// are what the promotion gate records (src/registry.rs): training data and holdout metrics of
/// a version, the champion it was compared with, and why it has its status.
pub fn ddl(naming: &Naming) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {} (run_id STRING, pipeline STRING, target STRING, status STRING, started_at TIMESTAMP, finished_at TIMESTAMP, error STRING)",
            naming.qualify(&runs())
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (run_id STRING, step STRING, status STRING, started_at TIMESTAMP, finished_at TIMESTAMP, duration_ms INT64, rows_affected INT64, error STRING, bytes_processed INT64, bytes_billed INT64)",
            naming.qualify(&step_runs())
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (model_name STRING, version INT64, relation STRING, run_id STRING, trained_at TIMESTAMP, status STRING, \
             training_rows INT64, holdout_rows INT64, training_from TIMESTAMP, training_to TIMESTAMP, davies_bouldin_index FLOAT64, mean_squared_distance FLOAT64, \
             compared_with INT64, champion_davies_bouldin_index FLOAT64, reason STRING, status_changed_at TIMESTAMP)",
            naming.qualify(&model_registry())
        ),
    ]
}

/// Registers the model a model step just built, in the same script (so in the same transaction
/// where the engine has them). A resumed run that already registered it adds nothing.
pub fn register_model_sql(naming: &Naming, model: &TableRef, run_id: &str) -> String {
    let registry = naming.qualify(&model_registry());
    let name = quote_string(model.name.as_str());
    let run = quote_string(run_id);
    format!(
        "UPDATE {registry} SET status = 'retired' WHERE model_name = {name} AND status = 'champion' AND run_id <> {run};\n\
         INSERT INTO {registry} (model_name, version, relation, run_id, trained_at, status)\n\
         SELECT {name}, COALESCE(MAX(version), 0) + 1, {relation}, {run}, CURRENT_TIMESTAMP(), 'champion'\n\
         FROM {registry} WHERE model_name = {name}\n\
         AND NOT EXISTS (SELECT 1 FROM {registry} WHERE model_name = {name} AND run_id = {run})",
        relation = quote_string(&model.to_string()),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    Success,
    Failed,
    /// Stopped between steps on request; resumed like a run whose process died.
    Interrupted,
}

impl Status {
    fn as_sql(self) -> &'static str {
        match self {
            Status::Running => "'running'",
            Status::Success => "'success'",
            Status::Failed => "'failed'",
            Status::Interrupted => "'interrupted'",
        }
    }
}

/// A run being recorded. A run that was interrupted (stopped on request, or its process died
/// with the run still `running`) is resumed by the next run of the same pipeline: steps it
/// finished are skipped, so the tables end as an uninterrupted run leaves them.
pub struct RunRecord {
    pub run_id: String,
    pub pipeline: String,
    pub resumed: bool,
    completed_steps: Vec<String>,
}

impl RunRecord {
    pub fn start(
        warehouse: &mut dyn Warehouse,
        pipeline: &str,
        target: &str,
    ) -> Result<Self, EngineError> {
        let naming = warehouse.naming().clone();
        for statement in ddl(&naming) {
            warehouse.execute_script(&statement)?;
        }
        let runs = naming.qualify(&runs());
        let interrupted = warehouse.query(&format!(
            "SELECT run_id FROM {runs} WHERE pipeline = {} AND status IN ('running', 'interrupted') ORDER BY started_at DESC LIMIT 1",
            quote_string(pipeline)
        ))?;
        if let Some(Cell::Text(run_id)) = interrupted.rows.first().and_then(|r| r.first()) {
            warehouse.execute_script(&format!(
                "UPDATE {runs} SET status = 'running', finished_at = NULL WHERE run_id = {}",
                quote_string(run_id)
            ))?;
            let done = warehouse.query(&format!(
                "SELECT step FROM {} WHERE run_id = {} AND status = 'success'",
                naming.qualify(&step_runs()),
                quote_string(run_id)
            ))?;
            let completed_steps = done
                .rows
                .into_iter()
                .filter_map(|r| match r.into_iter().next() {
                    Some(Cell::Text(s)) => Some(s),
                    _ => None,
                })
                .collect();
            return Ok(RunRecord {
                run_id: run_id.clone(),
                pipeline: pipeline.to_string(),
                resumed: true,
                completed_steps,
            });
        }
        let run_id = new_run_id();
        warehouse.execute_script(&format!(
            "INSERT INTO {runs} (run_id, pipeline, target, status, started_at) VALUES ({}, {}, {}, 'running', CURRENT_TIMESTAMP())",
            quote_string(&run_id),
            quote_string(pipeline),
            quote_string(target)
        ))?;
        Ok(RunRecord {
            run_id,
            pipeline: pipeline.to_string(),
            resumed: false,
            completed_steps: Vec::new(),
        })
    }

    pub fn already_completed(&self, step: &str) -> bool {
        self.completed_steps.iter().any(|s| s == step)
    }

    pub fn step_started(
        &self,
        warehouse: &mut dyn Warehouse,
        step: &str,
    ) -> Result<(), EngineError> {
        let table = warehouse.naming().qualify(&step_runs());
        warehouse.execute_script(&format!(
            "DELETE FROM {table} WHERE run_id = {run} AND step = {step} AND status = 'running';\n\
             INSERT INTO {table} (run_id, step, status, started_at) VALUES ({run}, {step}, 'running', CURRENT_TIMESTAMP())",
            run = quote_string(&self.run_id),
            step = quote_string(step),
        ))?;
        Ok(())
    }

    pub fn step_finished(
        &self,
        warehouse: &mut dyn Warehouse,
        step: &str,
        status: Status,
        duration_ms: u64,
        rows_affected: Option<u64>,
        error: Option<&str>,
    ) -> Result<(), EngineError> {
        let table = warehouse.naming().qualify(&step_runs());
        warehouse.execute_script(&format!(
            "UPDATE {table} SET status = {status}, finished_at = CURRENT_TIMESTAMP(), duration_ms = {duration_ms}, rows_affected = {rows}, error = {error} \
             WHERE run_id = {run} AND step = {step} AND status = 'running'",
            status = status.as_sql(),
            rows = rows_affected.map_or("NULL".to_string(), |r| r.to_string()),
            error = error.map_or("NULL".to_string(), quote_string),
            run = quote_string(&self.run_id),
            step = quote_string(step),
        ))?;
        Ok(())
    }

    /// Records a step that succeeded, with what the engine reports it scanned and billed.
    pub fn step_succeeded(
        &self,
        warehouse: &mut dyn Warehouse,
        step: &str,
        duration_ms: u64,
        outcome: &ScriptOutcome,
    ) -> Result<(), EngineError> {
        self.step_finished(
            warehouse,
            step,
            Status::Success,
            duration_ms,
            Some(outcome.rows_affected),
            None,
        )?;
        if outcome.bytes_processed.is_none() && outcome.bytes_billed.is_none() {
            return Ok(());
        }
        let table = warehouse.naming().qualify(&step_runs());
        let bytes = |b: Option<u64>| b.map_or("NULL".to_string(), |b| b.to_string());
        warehouse.execute_script(&format!(
            "UPDATE {table} SET bytes_processed = {}, bytes_billed = {} WHERE run_id = {} AND step = {}",
            bytes(outcome.bytes_processed),
            bytes(outcome.bytes_billed),
            quote_string(&self.run_id),
            quote_string(step),
        ))?;
        Ok(())
    }

    pub fn finish(
        &self,
        warehouse: &mut dyn Warehouse,
        status: Status,
        error: Option<&str>,
    ) -> Result<(), EngineError> {
        let table = warehouse.naming().qualify(&runs());
        warehouse.execute_script(&format!(
            "UPDATE {table} SET status = {}, finished_at = CURRENT_TIMESTAMP(), error = {} WHERE run_id = {}",
            status.as_sql(),
            error.map_or("NULL".to_string(), quote_string),
            quote_string(&self.run_id)
        ))?;
        Ok(())
    }
}

fn new_run_id() -> String {
    format!("run_{}", uuid::Uuid::now_v7().simple())
}
