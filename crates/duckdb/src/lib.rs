//! The embedded engine: DuckDB in one file, behind the `Warehouse` trait. GoogleSQL is
//! translated by `netsentinel_googlesql`, BigQuery ML statements run through
//! `netsentinel_bqml` (training in Rust, scoring as SQL), and each script runs in one
//! transaction, so a step killed at any point leaves no partial result. This is the only crate
//! that links DuckDB.
//!
//! `statements` routes and runs statements, `training` is CREATE MODEL, `models` the model
//! store, `ml_functions` the `ML.*` table functions, `tables` the generic table operations and
//! `cells` the conversion of values.

mod cells;
mod ml_functions;
mod models;
mod statements;
mod tables;
mod training;

use std::path::{Path, PathBuf};

use duckdb::{Connection, params};
use netsentinel_bqml::statement;
use netsentinel_core::{
    Cell, Dataset, DryRun, EngineError, InsertOutcome, Naming, ResultSet, ScriptOutcome, TableDef,
    TableRef, Warehouse,
};

use netsentinel_googlesql as googlesql;
use statements::StatementOutput;

pub struct DuckDbWarehouse {
    conn: Connection,
    location: String,
    naming: Naming,
    /// Set inside `rolled_back`: scripts then run in its transaction instead of their own
    /// (DuckDB does not nest transactions).
    in_rolled_back_transaction: bool,
}

impl DuckDbWarehouse {
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        let open_error = |message: String| EngineError::Open {
            location: path.display().to_string(),
            message,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_error(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(|e| open_error(explain_open_error(&e)))?;
        Self::with_connection(conn, path.to_path_buf())
    }

    pub fn open_in_memory() -> Result<Self, EngineError> {
        let conn = Connection::open_in_memory().map_err(|e| EngineError::Open {
            location: ":memory:".into(),
            message: e.to_string(),
        })?;
        Self::with_connection(conn, PathBuf::from(":memory:"))
    }

    fn with_connection(conn: Connection, path: PathBuf) -> Result<Self, EngineError> {
        let warehouse = DuckDbWarehouse {
            conn,
            location: path.display().to_string(),
            naming: Naming::Local,
            in_rolled_back_transaction: false,
        };
        // Offline by design: a query needing an extension fails now instead of trying a download.
        let mut setup = String::from(
            "SET autoinstall_known_extensions = false;\nSET autoload_known_extensions = false;\n",
        );
        for dataset in Dataset::ALL {
            setup.push_str(&format!("CREATE SCHEMA IF NOT EXISTS {dataset};\n"));
        }
        setup.push_str(models::STORE_DDL);
        setup.push_str(googlesql::DUCKDB_PRELUDE);
        warehouse
            .conn
            .execute_batch(&setup)
            .map_err(|e| EngineError::sql(&setup, e))?;
        Ok(warehouse)
    }

    fn table_exists(&self, relation: &TableRef) -> Result<bool, EngineError> {
        let sql = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?";
        let count: i64 = self
            .conn
            .query_row(
                sql,
                params![relation.dataset.as_str(), relation.name.as_str()],
                |r| r.get(0),
            )
            .map_err(|e| EngineError::sql(sql, e))?;
        Ok(count > 0)
    }

    /// Runs `work` and then undoes everything it wrote, models included: a test can run a step
    /// on the same prepared fixtures again and again. A failed statement inside `work` leaves
    /// the transaction aborted, so the statements after it fail too until the rollback.
    pub fn rolled_back<T>(&mut self, work: impl FnOnce(&mut Self) -> T) -> Result<T, EngineError> {
        self.conn
            .execute_batch("BEGIN TRANSACTION")
            .map_err(|e| EngineError::sql("BEGIN TRANSACTION", e))?;
        self.in_rolled_back_transaction = true;
        let value = work(self);
        self.in_rolled_back_transaction = false;
        self.conn
            .execute_batch("ROLLBACK")
            .map_err(|e| EngineError::sql("ROLLBACK", e))?;
        Ok(value)
    }

    fn in_transaction<T>(
        &self,
        work: impl FnOnce() -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        if self.in_rolled_back_transaction {
            return work();
        }
        self.conn
            .execute_batch("BEGIN TRANSACTION")
            .map_err(|e| EngineError::sql("BEGIN TRANSACTION", e))?;
        match work() {
            Ok(value) => {
                self.conn
                    .execute_batch("COMMIT")
                    .map_err(|e| EngineError::sql("COMMIT", e))?;
                Ok(value)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

/// DuckDB allows one writing process per file; say so instead of quoting the lock error.
fn explain_open_error(error: &duckdb::Error) -> String {
    let message = error.to_string();
    if message.contains("lock") {
        format!(
            "{message}\n  another netsentinel (or DuckDB) process has this warehouse open; wait for it to finish"
        )
    } else {
        message
    }
}

impl Warehouse for DuckDbWarehouse {
    fn another_session(&self) -> Result<Box<dyn Warehouse>, EngineError> {
        let conn = self.conn.try_clone().map_err(|e| EngineError::Open {
            location: self.location.clone(),
            message: e.to_string(),
        })?;
        Ok(Box::new(Self::with_connection(
            conn,
            PathBuf::from(&self.location),
        )?))
    }

    fn describe(&self) -> String {
        format!("DuckDB file {}", self.location)
    }

    fn naming(&self) -> &Naming {
        &self.naming
    }

    /// The datasets are schemas, created when the connection opens.
    fn ensure_datasets(&mut self) -> Result<(), EngineError> {
        Ok(())
    }

    fn execute_script(&mut self, sql: &str) -> Result<ScriptOutcome, EngineError> {
        let statements = statement::split_statements(sql)?;
        self.in_transaction(|| {
            let mut outcome = ScriptOutcome::default();
            for statement in &statements {
                if let StatementOutput::Affected(n) =
                    self.run_statement(&statement.text, statement.line)?
                {
                    outcome.rows_affected += n;
                }
            }
            Ok(outcome)
        })
    }

    fn query(&mut self, sql: &str) -> Result<ResultSet, EngineError> {
        let statements = statement::split_statements(sql)?;
        let mut last = ResultSet::default();
        self.in_transaction(|| {
            for statement in &statements {
                last = match self.run_statement(&statement.text, statement.line)? {
                    StatementOutput::Rows(rows) => rows,
                    StatementOutput::Affected(n) => ResultSet {
                        columns: vec!["rows_affected".into()],
                        rows: vec![vec![Cell::Int(n as i64)]],
                    },
                };
            }
            Ok(())
        })?;
        Ok(last)
    }

    fn relation_exists(&mut self, relation: &TableRef) -> Result<bool, EngineError> {
        Ok(self.table_exists(relation)? || models::exists(&self.conn, relation)?)
    }

    /// EXPLAINs each statement. Statements that create or drop a relation also run, inside a
    /// transaction that is rolled back, so that later statements of the script (an incremental
    /// step's merge from its staging table) bind to what they will find.
    fn dry_run(&mut self, sql: &str) -> Result<DryRun, EngineError> {
        let statements = statement::split_statements(sql)?;
        self.conn
            .execute_batch("BEGIN TRANSACTION")
            .map_err(|e| EngineError::sql("BEGIN TRANSACTION", e))?;
        let checked = statements.iter().try_for_each(|s| self.explain(&s.text));
        let _ = self.conn.execute_batch("ROLLBACK");
        checked.map(|()| DryRun::default())
    }

    fn insert_new_rows(
        &mut self,
        table: &TableDef,
        rows: &[Vec<Cell>],
    ) -> Result<InsertOutcome, EngineError> {
        self.in_transaction(|| self.insert_new(table, rows))
    }

    fn append_rows(&mut self, table: &TableRef, rows: &[Vec<Cell>]) -> Result<u64, EngineError> {
        self.in_transaction(|| self.append(table, rows))
    }
}
