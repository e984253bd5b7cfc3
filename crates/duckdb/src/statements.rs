//! Statement routing: a GoogleSQL statement is recognized as BigQuery ML (CREATE MODEL, DROP
//! MODEL) or plain SQL; plain SQL is translated to DuckDB with its `ML.*` calls expanded, then
//! run for rows or for a count.

use duckdb::types::Value;
use netsentinel_bqml::BqmlError;
use netsentinel_bqml::model::StoredModel;
use netsentinel_bqml::statement::{self, MlCall, MlInput, Recognized};
use netsentinel_core::{Cell, EngineError, ResultSet};
use netsentinel_googlesql as googlesql;

use crate::cells::to_cell;
use crate::{DuckDbWarehouse, ml_functions, models};

/// The outcome of one statement: rows for queries, a count for everything else.
pub(crate) enum StatementOutput {
    Rows(ResultSet),
    Affected(u64),
}

impl DuckDbWarehouse {
    pub(crate) fn run_statement(
        &self,
        text: &str,
        line: u64,
    ) -> Result<StatementOutput, EngineError> {
        let at_line = |e: EngineError| match e {
            EngineError::Sql { statement, message } => EngineError::Sql {
                statement,
                message: format!("line {line}: {message}"),
            },
            other => other,
        };
        match statement::recognize(text)? {
            Recognized::CreateModel(create) => {
                self.create_model(&create).map_err(at_line)?;
                Ok(StatementOutput::Affected(0))
            }
            Recognized::DropModel { model, if_exists } => {
                if !models::exists(&self.conn, &model)? {
                    return if if_exists {
                        Ok(StatementOutput::Affected(0))
                    } else {
                        Err(BqmlError::NoSuchModel(model.to_string()).into())
                    };
                }
                models::drop(&self.conn, &model)?;
                Ok(StatementOutput::Affected(0))
            }
            Recognized::Sql { text, calls } => {
                let sql = self.to_duckdb(&text, &calls)?;
                self.run_duckdb(&sql).map_err(at_line)
            }
        }
    }

    /// GoogleSQL with ML placeholders → DuckDB SQL with the ML calls expanded.
    pub(crate) fn to_duckdb(
        &self,
        googlesql_text: &str,
        calls: &[MlCall],
    ) -> Result<String, EngineError> {
        let mut sql = googlesql::translate(googlesql_text)?;
        // Highest index first, so `__ns_ml_1` never matches inside `__ns_ml_10`.
        for call in calls.iter().rev() {
            let expansion = self.ml_call_sql(call)?;
            sql = sql.replace(&call.placeholder, &format!("({expansion})"));
        }
        Ok(sql)
    }

    /// An input or training query, with any ML calls inside it expanded first.
    pub(crate) fn translate_query(&self, query: &str) -> Result<String, EngineError> {
        let (text, calls) = statement::recognize_query(query)?;
        self.to_duckdb(&text, &calls)
    }

    pub(crate) fn ml_call_sql(&self, call: &MlCall) -> Result<String, EngineError> {
        let input_sql = match &call.input {
            Some(MlInput::Table(table)) => {
                Some(self.translate_query(&format!("SELECT * FROM {table}"))?)
            }
            Some(MlInput::Query(query)) => Some(self.translate_query(query)?),
            None => None,
        };
        if let Some(input) = &input_sql {
            let model = models::load(&self.conn, &call.model)?;
            self.check_input_columns(&model, input).map_err(|message| {
                EngineError::from(BqmlError::Call {
                    function: call.function.sql_name(),
                    model: call.model.to_string(),
                    message,
                })
            })?;
        }
        Ok(ml_functions::expand(
            &self.conn,
            call,
            input_sql.as_deref(),
        )?)
    }

    pub(crate) fn check_input_columns(
        &self,
        model: &StoredModel,
        input_sql: &str,
    ) -> Result<(), String> {
        let described = self
            .query_duckdb(&format!("DESCRIBE {input_sql}"))
            .map_err(|e| e.to_string())?;
        let present: Vec<String> = described
            .rows
            .iter()
            .filter_map(|r| match r.first() {
                Some(Cell::Text(name)) => Some(name.to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        let missing: Vec<&str> = model
            .features
            .iter()
            .map(|f| f.name())
            .filter(|f| !present.contains(&f.to_ascii_lowercase()))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the input lacks the model's feature column(s) {}",
                missing.join(", ")
            ))
        }
    }

    pub(crate) fn run_duckdb(&self, sql: &str) -> Result<StatementOutput, EngineError> {
        if returns_rows(sql) {
            self.query_duckdb(sql).map(StatementOutput::Rows)
        } else {
            let affected = self
                .conn
                .execute(sql, [])
                .map_err(|e| EngineError::sql(sql, e))?;
            Ok(StatementOutput::Affected(affected as u64))
        }
    }

    pub(crate) fn query_duckdb(&self, sql: &str) -> Result<ResultSet, EngineError> {
        let mut statement = self
            .conn
            .prepare(sql)
            .map_err(|e| EngineError::sql(sql, e))?;
        let mut rows = statement.query([]).map_err(|e| EngineError::sql(sql, e))?;
        let columns = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
        let mut out = ResultSet {
            columns,
            rows: Vec::new(),
        };
        while let Some(row) = rows.next().map_err(|e| EngineError::sql(sql, e))? {
            let mut cells = Vec::with_capacity(out.columns.len());
            for i in 0..out.columns.len() {
                let value: Value = row.get(i).map_err(|e| EngineError::sql(sql, e))?;
                cells.push(to_cell(value));
            }
            out.rows.push(cells);
        }
        Ok(out)
    }

    /// Plans one statement without running its query; DDL runs (see `dry_run`).
    pub(crate) fn explain(&self, text: &str) -> Result<(), EngineError> {
        let sql = match statement::recognize(text)? {
            // Training is the work itself; validating the training query is the dry run.
            Recognized::CreateModel(create) => self.translate_query(&create.query)?,
            Recognized::DropModel { .. } => return Ok(()),
            Recognized::Sql { text, calls } => self.to_duckdb(&text, &calls)?,
        };
        let first = sql
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if first != "DROP" {
            self.query_duckdb(&format!("EXPLAIN {sql}"))?;
        }
        if first == "CREATE" || first == "DROP" {
            self.conn
                .execute_batch(&sql)
                .map_err(|e| EngineError::sql(&sql, e))?;
        }
        Ok(())
    }
}

fn returns_rows(sql: &str) -> bool {
    let first = sql
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    matches!(
        first.as_str(),
        "SELECT"
            | "WITH"
            | "VALUES"
            | "FROM"
            | "DESCRIBE"
            | "SHOW"
            | "EXPLAIN"
            | "PRAGMA"
            | "SUMMARIZE"
            | "TABLE"
    )
}
