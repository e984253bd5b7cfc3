//! Run state kept in the warehouse's `ops` dataset: `ops.runs`, `ops.step_runs` and
//! `ops.model_registry` (whose gate columns `registry` writes). Written as GoogleSQL through the
//! `Warehouse` trait, so both engines keep the same history.

use netsentinel_core::Naming;
use netsentinel_core::relation::{Dataset, TableRef};
use netsentinel_core::sql::quote_string;
use netsentinel_core::{Cell, Column, EngineError, ScriptOutcome, TableDef, Warehouse};

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

const RUN_COLUMNS: &[Column] = &[
    Column::string("run_id"),
    Column::string("pipeline"),
    Column::string("target"),
    Column::string("status"),
    Column::timestamp("started_at"),
    Column::timestamp("finished_at"),
    Column::string("error"),
];

const STEP_RUN_COLUMNS: &[Column] = &[
    Column::string("run_id"),
    Column::string("step"),
    Column::string("status"),
    Column::timestamp("started_at"),
    Column::timestamp("finished_at"),
    Column::int64("duration_ms"),
    Column::int64("rows_affected"),
    Column::string("error"),
    Column::int64("bytes_processed"),
    Column::int64("bytes_billed"),
];

/// The columns after `status` are what the promotion gate records (src/registry.rs): training
/// data and holdout metrics of a version, the champion it was compared with, and why it has its
/// status.
const MODEL_REGISTRY_COLUMNS: &[Column] = &[
    Column::string("model_name"),
    Column::int64("version"),
    Column::string("relation"),
    Column::string("run_id"),
    Column::timestamp("trained_at"),
    Column::string("status"),
    Column::int64("training_rows"),
    Column::int64("holdout_rows"),
    Column::timestamp("training_from"),
    Column::timestamp("training_to"),
    Column::float64("davies_bouldin_index"),
    Column::float64("mean_squared_distance"),
    Column::int64("compared_with"),
    Column::float64("champion_davies_bouldin_index"),
    Column::string("reason"),
    Column::timestamp("status_changed_at"),
];

/// The state tables: small, read by run and model, so neither partitioned nor clustered.
pub fn table_defs() -> [TableDef; 3] {
    [
        TableDef::plain(runs(), RUN_COLUMNS, &["run_id"]),
        TableDef::plain(step_runs(), STEP_RUN_COLUMNS, &["run_id", "step"]),
        TableDef::plain(
            model_registry(),
            MODEL_REGISTRY_COLUMNS,
            &["model_name", "version"],
        ),
    ]
}

/// Creates the state tables if missing.
pub fn create_tables(warehouse: &mut dyn Warehouse) -> Result<(), EngineError> {
    warehouse.create_tables(&table_defs())
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
        create_tables(warehouse)?;
        let naming = warehouse.naming().clone();
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
