//! The generic table operations on DuckDB: bulk appends through the appender, and inserts of
//! the rows whose key is new through a temporary staging table and one anti-join, instead of a
//! lookup per row.

use duckdb::{Appender, appender_params_from_iter};
use netsentinel_core::{Cell, EngineError, InsertOutcome, TableDef, TableRef};

use crate::DuckDbWarehouse;
use crate::cells::SqlCell;

/// Appends the rows through an appender and flushes it.
fn fill(mut appender: Appender<'_>, rows: &[Vec<Cell>]) -> duckdb::Result<()> {
    for row in rows {
        appender.append_row(appender_params_from_iter(row.iter().map(SqlCell)))?;
    }
    appender.flush()
}

impl DuckDbWarehouse {
    pub(crate) fn append(&self, table: &TableRef, rows: &[Vec<Cell>]) -> Result<u64, EngineError> {
        self.conn
            .appender_to_db(table.name.as_str(), table.dataset.as_str())
            .and_then(|appender| fill(appender, rows))
            .map_err(|e| EngineError::sql(&format!("append to {table}"), e))?;
        Ok(rows.len() as u64)
    }

    pub(crate) fn insert_new(
        &self,
        def: &TableDef,
        rows: &[Vec<Cell>],
    ) -> Result<InsertOutcome, EngineError> {
        if def.key.is_empty() {
            return Ok(InsertOutcome {
                inserted: self.append(&def.table, rows)?,
                refused: Vec::new(),
            });
        }
        let table = &def.table;
        let stage = format!("__ns_stage_{}_{}", table.dataset, table.name);
        let setup =
            format!("CREATE OR REPLACE TEMP TABLE {stage} AS SELECT * FROM {table} LIMIT 0");
        self.conn
            .execute_batch(&setup)
            .map_err(|e| EngineError::sql(&setup, e))?;
        self.conn
            .appender_to_catalog_and_db(&stage, "temp", "main")
            .and_then(|appender| fill(appender, rows))
            .map_err(|e| EngineError::sql(&format!("append to {stage}"), e))?;
        let matches: Vec<String> = def.key.iter().map(|k| format!("r.{k} = s.{k}")).collect();
        let key: Vec<String> = def.key.iter().map(|k| format!("s.{k}")).collect();
        let insert = format!(
            "INSERT INTO {table} SELECT s.* FROM {stage} AS s \
             WHERE NOT EXISTS (SELECT 1 FROM {table} AS r WHERE {}) \
             QUALIFY row_number() OVER (PARTITION BY {} ORDER BY s.rowid) = 1",
            matches.join(" AND "),
            key.join(", ")
        );
        let inserted = self
            .conn
            .execute(&insert, [])
            .map_err(|e| EngineError::sql(&insert, e))?;
        let cleanup = format!("DROP TABLE {stage}");
        self.conn
            .execute_batch(&cleanup)
            .map_err(|e| EngineError::sql(&cleanup, e))?;
        Ok(InsertOutcome {
            inserted: inserted as u64,
            refused: Vec::new(),
        })
    }
}
