//! The `Warehouse` trait: everything the runner, ingest and CLI need from an engine, in generic
//! operations (scripts, queries, tables from a `TableDef`). The embedded DuckDB engine and the
//! BigQuery engine implement it; the application never knows which one it drives.
//!
//! The trait is synchronous: DuckDB is in-process and blocking, and steps run one after another.
//! Async callers (a scheduler, an HTTP ingest endpoint) drive it from `spawn_blocking`. The
//! BigQuery engine owns its own runtime and blocks on it inside each call.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::naming::Naming;
use crate::relation::TableRef;
use crate::table::{InsertOutcome, TableDef};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot open the warehouse {location}: {message}")]
    Open { location: String, message: String },
    #[error("{message}\n  in statement: {statement}")]
    Sql { statement: String, message: String },
    /// An engine's own error: a GoogleSQL construct it cannot translate, a BigQuery ML
    /// statement it rejects, an API failure. Each engine crate converts its errors into this.
    #[error(transparent)]
    Engine(Box<dyn std::error::Error + Send + Sync>),
}

impl EngineError {
    /// Wraps an engine's own error type.
    pub fn engine(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        EngineError::Engine(Box::new(error))
    }

    pub fn sql(statement: &str, message: impl fmt::Display) -> Self {
        const SHOWN: usize = 400;
        let statement = statement.trim();
        let shown = match statement.char_indices().nth(SHOWN) {
            Some((cut, _)) => format!("{}…", &statement[..cut]),
            None => statement.to_string(),
        };
        EngineError::Sql {
            statement: shown,
            message: message.to_string(),
        }
    }
}

/// One value of a query result, engine-independent.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Timestamp(DateTime<Utc>),
    List(Vec<Cell>),
    Struct(Vec<(String, Cell)>),
}

impl Cell {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(v) => Some(*v as f64),
            Cell::Float(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Cell::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The value as a GoogleSQL literal, typed so that a NULL or a list of rows of literals
    /// inserts into the column it is meant for.
    pub fn to_sql_literal(&self) -> String {
        match self {
            Cell::Null => "NULL".to_string(),
            Cell::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) if f.is_finite() => format!("{f:?}"),
            Cell::Float(_) => "CAST(NULL AS FLOAT64)".to_string(),
            Cell::Text(s) => crate::sql::quote_string(s),
            Cell::Timestamp(t) => format!("TIMESTAMP '{}'", t.format("%Y-%m-%d %H:%M:%S%.6f+00")),
            Cell::List(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(Cell::to_sql_literal)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Cell::Struct(fields) => format!(
                "STRUCT({})",
                fields
                    .iter()
                    .map(|(name, value)| format!("{} AS {name}", value.to_sql_literal()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Cell::Null => serde_json::Value::Null,
            Cell::Bool(b) => (*b).into(),
            Cell::Int(i) => (*i).into(),
            Cell::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Cell::Text(s) => s.clone().into(),
            Cell::Timestamp(t) => t
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .into(),
            Cell::List(items) => items.iter().map(Cell::to_json).collect(),
            Cell::Struct(fields) => fields
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Null => Ok(()),
            Cell::Bool(b) => write!(f, "{b}"),
            Cell::Int(i) => write!(f, "{i}"),
            Cell::Float(v) => write!(f, "{v}"),
            Cell::Text(s) => f.write_str(s),
            Cell::Timestamp(t) => {
                f.write_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            }
            Cell::List(_) | Cell::Struct(_) => f.write_str(&self.to_json().to_string()),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl ResultSet {
    /// The first cell of the first row: for `SELECT COUNT(*)`-style questions.
    pub fn scalar(&self) -> Option<&Cell> {
        self.rows.first().and_then(|r| r.first())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScriptOutcome {
    /// Rows inserted, updated or deleted by the script's statements.
    pub rows_affected: u64,
    /// Bytes the engine read and billed for the script, where it bills by bytes (BigQuery).
    pub bytes_processed: Option<u64>,
    pub bytes_billed: Option<u64>,
}

/// Who the statements that follow run for: BigQuery labels its jobs with it and derives their
/// ids from it, so a retried step reuses ids instead of running twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobContext {
    pub pipeline: String,
    pub step: String,
    pub run_id: String,
    pub target: String,
    /// The step's own cap from `config(maximum_bytes_billed=…)`, over the target's.
    pub maximum_bytes_billed: Option<u64>,
}

/// What a dry run found out about a script without running it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DryRun {
    /// Estimated bytes scanned; `None` where the engine does not estimate (the local engine).
    pub bytes_processed: Option<u64>,
    /// The byte cap the script would run under, if any.
    pub maximum_bytes_billed: Option<u64>,
}

impl DryRun {
    pub fn over_cap(&self) -> bool {
        matches!((self.bytes_processed, self.maximum_bytes_billed), (Some(b), Some(cap)) if b > cap)
    }
}

pub trait Warehouse: Send {
    /// A second session on the same warehouse, for work that runs on another thread beside
    /// this session's (in-process detection next to the ingest). DuckDB allows one process per
    /// file, so its second session shares this one's database instead of opening the file again.
    fn another_session(&self) -> Result<Box<dyn Warehouse>, EngineError>;

    /// What and where the warehouse is, for messages ("DuckDB file .netsentinel/local.duckdb").
    fn describe(&self) -> String;

    fn naming(&self) -> &Naming;

    /// Creates the logical datasets if missing.
    fn ensure_datasets(&mut self) -> Result<(), EngineError>;

    /// Creates a table from its definition if it is missing; an existing table is left as it is.
    fn create_table(&mut self, table: &TableDef) -> Result<(), EngineError> {
        let sql = table.create_sql(self.naming());
        self.execute_script(&sql).map(|_| ())
    }

    /// [`Warehouse::create_table`] for each definition, in order.
    fn create_tables(&mut self, tables: &[TableDef]) -> Result<(), EngineError> {
        tables.iter().try_for_each(|table| self.create_table(table))
    }

    /// Inserts the rows (values in the definition's column order) whose key is not stored yet;
    /// of rows that share a key, the first. Returns how many were inserted and the rows the
    /// engine refused, with its reason. Engines with transactions insert all or nothing.
    fn insert_new_rows(
        &mut self,
        table: &TableDef,
        rows: &[Vec<Cell>],
    ) -> Result<InsertOutcome, EngineError>;

    /// Runs a GoogleSQL script (statements separated by `;`). Engines with transactions run it
    /// atomically: either every statement takes effect or none does.
    fn execute_script(&mut self, sql: &str) -> Result<ScriptOutcome, EngineError>;

    /// Runs one GoogleSQL statement and returns its rows (empty for statements without rows).
    fn query(&mut self, sql: &str) -> Result<ResultSet, EngineError>;

    fn relation_exists(&mut self, relation: &TableRef) -> Result<bool, EngineError>;

    /// Appends rows (values in the table's column order) to an existing table: bulk writes of
    /// netsentinel's own records. The default runs INSERT … VALUES in chunks; engines with a
    /// faster path (DuckDB's appender) use it.
    fn append_rows(&mut self, table: &TableRef, rows: &[Vec<Cell>]) -> Result<u64, EngineError> {
        const ROWS_PER_STATEMENT: usize = 200;
        let qualified = self.naming().qualify(table);
        let mut appended = 0;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let values: Vec<String> = chunk
                .iter()
                .map(|row| {
                    let cells: Vec<String> = row.iter().map(Cell::to_sql_literal).collect();
                    format!("({})", cells.join(", "))
                })
                .collect();
            appended += self
                .execute_script(&format!(
                    "INSERT INTO {qualified} VALUES\n{}",
                    values.join(",\n")
                ))?
                .rows_affected;
        }
        Ok(appended)
    }

    /// Validates a script without running or changing anything: BigQuery's dry run, which also
    /// estimates the bytes it would scan; EXPLAIN of each statement on the local engine.
    fn dry_run(&mut self, sql: &str) -> Result<DryRun, EngineError>;

    /// Sets who the following statements run for (`None` between steps). Engines without jobs
    /// have nothing to label.
    fn set_job_context(&mut self, _context: Option<JobContext>) {}

    /// What the statements run since the last `set_job_context` added up to: how a step that
    /// runs many of them (a built-in step) learns the bytes it scanned and was billed.
    fn context_outcome(&self) -> ScriptOutcome {
        ScriptOutcome::default()
    }
}
