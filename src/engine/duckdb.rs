//! The embedded engine: DuckDB in one file. GoogleSQL is translated by `googlesql`, BigQuery ML
//! statements are executed by `bqml` (training in Rust, scoring as SQL), and each script runs
//! in one transaction, so a step killed at any point leaves no partial result.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use duckdb::arrow::array::{Array, AsArray};
use duckdb::arrow::compute::cast;
use duckdb::arrow::datatypes::{DataType, Decimal128Type, Field, Float64Type};
use duckdb::arrow::error::ArrowError;
use duckdb::types::{TimeUnit, Value};
use duckdb::{Connection, params};

use super::{Cell, DryRun, EngineError, ResultSet, ScriptOutcome, Warehouse};
use crate::bqml::kmeans::{self, ColumnData, InitMethod, InputColumn, NumericValues};
use crate::bqml::statement::{self, CreateModel, MlCall, MlInput, Recognized};
use crate::bqml::{self, BqmlError, functions, store};
use crate::googlesql;
use crate::ingest::batch::{EventBatch, LoadOutcome};
use crate::ingest::schema;
use crate::relation::{Dataset, TableRef};
use crate::render::Naming;

pub struct DuckDbWarehouse {
    conn: Connection,
    location: String,
    naming: Naming,
}

/// The outcome of one statement: rows for queries, a count for everything else.
enum StatementOutput {
    Rows(ResultSet),
    Affected(u64),
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
        };
        // Offline by design: a query needing an extension fails now instead of trying a download.
        let mut setup = String::from(
            "SET autoinstall_known_extensions = false;\nSET autoload_known_extensions = false;\n",
        );
        for dataset in Dataset::ALL {
            setup.push_str(&format!("CREATE SCHEMA IF NOT EXISTS {dataset};\n"));
        }
        setup.push_str(store::STORE_DDL);
        setup.push_str(googlesql::DUCKDB_PRELUDE);
        warehouse
            .conn
            .execute_batch(&setup)
            .map_err(|e| EngineError::sql(&setup, e))?;
        Ok(warehouse)
    }

    fn run_statement(&self, text: &str, line: u64) -> Result<StatementOutput, EngineError> {
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
                if !store::exists(&self.conn, &model)? {
                    return if if_exists {
                        Ok(StatementOutput::Affected(0))
                    } else {
                        Err(BqmlError::NoSuchModel(model.to_string()).into())
                    };
                }
                store::drop(&self.conn, &model)?;
                Ok(StatementOutput::Affected(0))
            }
            Recognized::Sql { text, calls } => {
                let sql = self.to_duckdb(&text, &calls)?;
                self.run_duckdb(&sql).map_err(at_line)
            }
        }
    }

    /// GoogleSQL with ML placeholders → DuckDB SQL with the ML calls expanded.
    fn to_duckdb(&self, googlesql_text: &str, calls: &[MlCall]) -> Result<String, EngineError> {
        let mut sql = googlesql::translate(googlesql_text)?;
        // Highest index first, so `__ns_ml_1` never matches inside `__ns_ml_10`.
        for call in calls.iter().rev() {
            let expansion = self.ml_call_sql(call)?;
            sql = sql.replace(&call.placeholder, &format!("({expansion})"));
        }
        Ok(sql)
    }

    /// An input or training query, with any ML calls inside it expanded first.
    fn translate_query(&self, query: &str) -> Result<String, EngineError> {
        let (text, calls) = statement::recognize_query(query)?;
        self.to_duckdb(&text, &calls)
    }

    fn ml_call_sql(&self, call: &MlCall) -> Result<String, EngineError> {
        let input_sql = match &call.input {
            Some(MlInput::Table(table)) => {
                Some(self.translate_query(&format!("SELECT * FROM {table}"))?)
            }
            Some(MlInput::Query(query)) => Some(self.translate_query(query)?),
            None => None,
        };
        if let Some(input) = &input_sql {
            let model = store::load(&self.conn, &call.model)?;
            self.check_input_columns(&model, input).map_err(|message| {
                EngineError::from(BqmlError::Call {
                    function: call.function.sql_name(),
                    model: call.model.to_string(),
                    message,
                })
            })?;
        }
        Ok(functions::expand(&self.conn, call, input_sql.as_deref())?)
    }

    fn check_input_columns(
        &self,
        model: &store::StoredModel,
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

    fn create_model(&self, create: &CreateModel) -> Result<(), EngineError> {
        let name = create.model.to_string();
        if store::exists(&self.conn, &create.model)? {
            if create.if_not_exists {
                return Ok(());
            }
            if !create.or_replace {
                return Err(BqmlError::ModelExists(name).into());
            }
        }
        if self.table_exists(&create.model)? {
            return Err(BqmlError::NameTaken(name).into());
        }
        let mut spec = bqml::model_spec(create)?;
        let warm_start_from = if spec.warm_start {
            Some(self.warm_start_source(create)?)
        } else {
            None
        };
        let query = self.translate_query(&create.query)?;
        let mut columns = self.training_columns(&query, &name)?;
        let mut init_flags = match &spec.init_column {
            Some(init_column) => Some(take_init_flags(&mut columns, init_column, &name)?),
            None => None,
        };
        bqml::canonical_row_order(&mut columns, init_flags.as_mut());
        if let Some(selected_rows) = init_flags {
            spec.options.init = InitMethod::Custom { selected_rows };
        }
        let training_error = |source| BqmlError::Training {
            model: name.clone(),
            source,
        };
        if let Some((previous, preprocessing)) = warm_start_from {
            let refitted = kmeans::Preprocessor::fit(&columns, spec.options.standardize_features)
                .map_err(training_error)?;
            spec.options.warm_start_centroids = Some(
                kmeans::map_centroids(&preprocessing, &previous.centroids, &refitted)
                    .map_err(training_error)?,
            );
        }
        let trained = kmeans::train_owned(columns, &spec.options).map_err(training_error)?;
        let options: Vec<String> = create
            .options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        store::save(
            &self.conn,
            &create.model,
            &trained,
            &options.join(", "),
            &create.query,
        )?;
        tracing::info!(model = %name, rows = trained.training_rows, clusters = trained.num_clusters(), iterations = trained.iterations.len(), "trained k-means model");
        Ok(())
    }

    /// The model a `warm_start = TRUE` retrain starts from, with its preprocessing. BigQuery
    /// keeps the number of clusters on a warm start, so a different `num_clusters` is an error.
    fn warm_start_source(
        &self,
        create: &CreateModel,
    ) -> Result<(store::StoredModel, kmeans::Preprocessor), EngineError> {
        let name = create.model.to_string();
        let option_error = |message: String| BqmlError::Option {
            model: name.clone(),
            message,
        };
        if !store::exists(&self.conn, &create.model)? {
            return Err(option_error(
                "warm_start = TRUE needs an existing model to start from; train it once without warm_start".into(),
            )
            .into());
        }
        let previous = store::load(&self.conn, &create.model)?;
        let requested = create
            .options
            .iter()
            .find_map(|(k, v)| match (k.as_str(), v) {
                ("num_clusters", statement::OptionValue::Number(n)) => Some(*n as usize),
                _ => None,
            });
        if let Some(k) = requested.filter(|&k| k != previous.centroids.len()) {
            return Err(option_error(format!(
                "warm_start = TRUE keeps the model's {} clusters; num_clusters = {k} would need a fresh model",
                previous.centroids.len()
            ))
            .into());
        }
        let preprocessing = store::load_preprocessor(&self.conn, &create.model)?;
        Ok((previous, preprocessing))
    }

    /// The training query's columns, typed as k-means sees them. The result streams in as
    /// Arrow record batches, copied a column slice at a time (not one `Value` per cell) into
    /// columns whose type the result schema fixes.
    fn training_columns(&self, query: &str, model: &str) -> Result<Vec<InputColumn>, EngineError> {
        let mut statement = self
            .conn
            .prepare(query)
            .map_err(|e| EngineError::sql(query, e))?;
        let batches = statement
            .stream_arrow([])
            .map_err(|e| EngineError::sql(query, e))?;
        let mut columns = batches
            .get_schema()
            .fields()
            .iter()
            .map(|field| FeatureColumn::new(field))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| BqmlError::Option {
                model: model.to_string(),
                message,
            })?;
        for batch in batches {
            let batch = batch.map_err(|e| EngineError::sql(query, e))?;
            for (column, array) in columns.iter_mut().zip(batch.columns()) {
                column
                    .push(array.as_ref())
                    .map_err(|e| EngineError::sql(query, e))?;
            }
        }
        Ok(columns.into_iter().map(FeatureColumn::finish).collect())
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

    fn run_duckdb(&self, sql: &str) -> Result<StatementOutput, EngineError> {
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

    fn query_duckdb(&self, sql: &str) -> Result<ResultSet, EngineError> {
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
    fn explain(&self, text: &str) -> Result<(), EngineError> {
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

    fn in_transaction<T>(
        &self,
        work: impl FnOnce() -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
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

/// Removes the CUSTOM init column (a BOOL, not a feature) from the training columns.
fn take_init_flags(
    columns: &mut Vec<InputColumn>,
    init_column: &str,
    model: &str,
) -> Result<Vec<bool>, BqmlError> {
    let option_error = |message: String| BqmlError::Option {
        model: model.to_string(),
        message,
    };
    let position = columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(init_column))
        .ok_or_else(|| {
            option_error(format!(
                "kmeans_init_col '{init_column}' is not a column of the training query"
            ))
        })?;
    match columns.remove(position).data {
        ColumnData::Categorical(values) => Ok(values
            .into_iter()
            .map(|v| v.as_deref() == Some("true"))
            .collect()),
        ColumnData::Numeric(_) => Err(option_error(format!(
            "kmeans_init_col '{init_column}' must be a BOOL column"
        ))),
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

/// A training column being read, typed by the result schema.
enum FeatureColumn {
    Numeric {
        name: String,
        values: NumericValues,
    },
    Categorical {
        name: String,
        values: Vec<Option<String>>,
    },
}

impl FeatureColumn {
    /// A column NULL throughout (type NULL) is numeric; k-means then reports it by name.
    fn new(field: &Field) -> Result<Self, String> {
        let name = field.name().clone();
        match field.data_type() {
            t if t.is_numeric() || *t == DataType::Null => Ok(FeatureColumn::Numeric {
                name,
                values: NumericValues::default(),
            }),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean => {
                Ok(FeatureColumn::Categorical {
                    name,
                    values: Vec::new(),
                })
            }
            DataType::Dictionary(_, values) if values.is_string() => {
                Ok(FeatureColumn::Categorical {
                    name,
                    values: Vec::new(),
                })
            }
            other => Err(format!(
                "column `{name}` has a type k-means cannot use ({}): features must be numeric, STRING or BOOL; drop it or convert it in the training query",
                arrow_type_name(field, other)
            )),
        }
    }

    fn push(&mut self, array: &dyn Array) -> Result<(), ArrowError> {
        match self {
            FeatureColumn::Numeric { values, .. } => {
                if let DataType::Decimal128(_, scale) = array.data_type() {
                    // DuckDB's own CAST(DECIMAL AS DOUBLE), which scoring applies to the same
                    // column: the integer as f64 over the power of ten.
                    let divisor = 10f64.powi(i32::from(*scale));
                    let decimals = array.as_primitive::<Decimal128Type>();
                    for v in decimals.iter() {
                        values.push(v.map(|v| v as f64 / divisor));
                    }
                    return Ok(());
                }
                let doubles = cast(array, &DataType::Float64)?;
                let doubles = doubles.as_primitive::<Float64Type>();
                if doubles.null_count() == 0 {
                    values.extend_from_slice(doubles.values());
                } else {
                    for v in doubles.iter() {
                        values.push(v);
                    }
                }
            }
            FeatureColumn::Categorical { values, .. } => {
                // BOOL becomes "true" / "false", as k-means expects.
                let text = cast(array, &DataType::Utf8)?;
                values.extend(
                    text.as_string::<i32>()
                        .iter()
                        .map(|v| v.map(str::to_string)),
                );
            }
        }
        Ok(())
    }

    fn finish(self) -> InputColumn {
        match self {
            FeatureColumn::Numeric { name, mut values } => {
                values.shrink_to_fit();
                InputColumn {
                    name,
                    data: ColumnData::Numeric(values),
                }
            }
            FeatureColumn::Categorical { name, values } => InputColumn {
                name,
                data: ColumnData::Categorical(values),
            },
        }
    }
}

/// The SQL name of an Arrow type k-means rejects, for the error message.
fn arrow_type_name(field: &Field, data_type: &DataType) -> &'static str {
    let extension = field
        .metadata()
        .get("ARROW:extension:name")
        .map(|n| n.to_ascii_lowercase());
    if extension.is_some_and(|n| n.contains("geo") || n.contains("wkb")) {
        return "GEOGRAPHY";
    }
    match data_type {
        DataType::Timestamp(..) => "TIMESTAMP",
        DataType::Date32 | DataType::Date64 => "DATE",
        DataType::Time32(_) | DataType::Time64(_) => "TIME",
        DataType::Interval(_) | DataType::Duration(_) => "INTERVAL",
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "BYTES",
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::ListView(_)
        | DataType::LargeListView(_)
        | DataType::FixedSizeList(..) => "ARRAY",
        DataType::Struct(_) => "STRUCT",
        DataType::Map(..) => "MAP",
        _ => "unsupported",
    }
}

fn decimal_to_f64(d: duckdb::types::Decimal) -> f64 {
    d.value() as f64 / 10f64.powi(i32::from(d.scale()))
}

fn timestamp_cell(unit: TimeUnit, value: i64) -> Cell {
    DateTime::<Utc>::from_timestamp_micros(unit.to_micros(value))
        .map(Cell::Timestamp)
        .unwrap_or(Cell::Int(value))
}

fn to_cell(value: Value) -> Cell {
    match value {
        Value::Null => Cell::Null,
        Value::Boolean(b) => Cell::Bool(b),
        Value::TinyInt(v) => Cell::Int(v.into()),
        Value::SmallInt(v) => Cell::Int(v.into()),
        Value::Int(v) => Cell::Int(v.into()),
        Value::BigInt(v) => Cell::Int(v),
        Value::UTinyInt(v) => Cell::Int(v.into()),
        Value::USmallInt(v) => Cell::Int(v.into()),
        Value::UInt(v) => Cell::Int(v.into()),
        Value::UBigInt(v) => i64::try_from(v).map_or(Cell::Float(v as f64), Cell::Int),
        Value::HugeInt(v) => i64::try_from(v).map_or(Cell::Float(v as f64), Cell::Int),
        Value::UHugeInt(v) => i64::try_from(v).map_or(Cell::Float(v as f64), Cell::Int),
        Value::Float(v) => Cell::Float(v.into()),
        Value::Double(v) => Cell::Float(v),
        Value::Decimal(d) => Cell::Float(decimal_to_f64(d)),
        Value::Timestamp(unit, v) => timestamp_cell(unit, v),
        Value::Text(s) | Value::Enum(s) => Cell::Text(s),
        Value::Blob(b) | Value::Geometry(b) => Cell::Text(String::from_utf8_lossy(&b).into_owned()),
        Value::Date32(days) => chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)
            .map_or(Cell::Int(days.into()), |d| Cell::Text(d.to_string())),
        Value::Time64(unit, v) => Cell::Int(unit.to_micros(v)),
        Value::Interval {
            months,
            days,
            nanos,
        } => Cell::Text(format!("{months} months {days} days {} µs", nanos / 1000)),
        Value::List(items) | Value::Array(items) => {
            Cell::List(items.into_iter().map(to_cell).collect())
        }
        Value::Struct(fields) => Cell::Struct(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_cell(v.clone())))
                .collect(),
        ),
        Value::Map(entries) => Cell::List(
            entries
                .iter()
                .map(|(k, v)| {
                    Cell::Struct(vec![
                        ("key".into(), to_cell(k.clone())),
                        ("value".into(), to_cell(v.clone())),
                    ])
                })
                .collect(),
        ),
        Value::Union(inner) => to_cell(*inner),
        other => Cell::Text(format!("{other:?}")),
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

    fn ensure_datasets(&mut self) -> Result<(), EngineError> {
        let ddl = format!(
            "{};\n{}",
            schema::create_table_sql(
                &self.naming,
                &schema::events_table(),
                &schema::EVENT_COLUMNS
            ),
            schema::create_table_sql(
                &self.naming,
                &schema::rejects_table(),
                &schema::REJECT_COLUMNS
            )
        );
        self.execute_script(&ddl).map(|_| ())
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
        Ok(self.table_exists(relation)? || store::exists(&self.conn, relation)?)
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

    fn load_events(&mut self, batch: &EventBatch) -> Result<LoadOutcome, EngineError> {
        self.in_transaction(|| load_batch(&self.conn, batch))
    }

    fn append_rows(&mut self, table: &TableRef, rows: &[Vec<Cell>]) -> Result<u64, EngineError> {
        let append_error = |e: duckdb::Error| EngineError::sql(&format!("append to {table}"), e);
        self.in_transaction(|| {
            let mut appender = self
                .conn
                .appender_to_db(table.name.as_str(), table.dataset.as_str())
                .map_err(append_error)?;
            for row in rows {
                let values: Vec<Value> = row.iter().map(cell_value).collect();
                appender
                    .append_row(duckdb::appender_params_from_iter(values))
                    .map_err(append_error)?;
            }
            appender.flush().map_err(append_error)?;
            Ok(rows.len() as u64)
        })
    }
}

/// A cell as DuckDB's appender takes it. Lists and structs never reach the appender: the
/// tables netsentinel appends to hold scalars only.
fn cell_value(cell: &Cell) -> Value {
    match cell {
        Cell::Null | Cell::List(_) | Cell::Struct(_) => Value::Null,
        Cell::Bool(b) => Value::Boolean(*b),
        Cell::Int(i) => Value::BigInt(*i),
        Cell::Float(f) => Value::Double(*f),
        Cell::Text(s) => Value::Text(s.clone()),
        Cell::Timestamp(t) => Value::Timestamp(TimeUnit::Microsecond, t.timestamp_micros()),
    }
}

/// Appends the batch to temporary staging tables, then moves rows whose ids are new into the
/// raw tables: one anti-join per batch instead of a lookup per row.
fn load_batch(conn: &Connection, batch: &EventBatch) -> Result<LoadOutcome, EngineError> {
    let setup = "CREATE OR REPLACE TEMP TABLE __ns_stage_events AS SELECT * FROM raw.netlog_events LIMIT 0;\n\
                 CREATE OR REPLACE TEMP TABLE __ns_stage_rejects AS SELECT * FROM raw.netlog_rejects LIMIT 0;";
    conn.execute_batch(setup)
        .map_err(|e| EngineError::sql(setup, e))?;
    let now = Utc::now().naive_utc();
    let append_error = |e: duckdb::Error| EngineError::sql("append to staging", e);
    {
        let mut appender = conn
            .appender_to_catalog_and_db("__ns_stage_events", "temp", "main")
            .map_err(append_error)?;
        for stored in &batch.events {
            let e = &stored.event;
            appender
                .append_row(params![
                    stored.event_id,
                    e.subscriber_id,
                    e.src_ip.to_string(),
                    e.dst_ip.to_string(),
                    e.src_port,
                    e.dst_port,
                    e.tx_bytes as i64,
                    e.rx_bytes as i64,
                    e.tcp_flag,
                    e.start_time.naive_utc(),
                    e.end_time.naive_utc(),
                    e.timestamp.unwrap_or(e.end_time).naive_utc(),
                    e.protocol_name,
                    e.protocol_number,
                    e.geo_country,
                    e.geo_city,
                    e.latitude,
                    e.longitude,
                    e.label,
                    stored.source,
                    stored.line as i64,
                    now,
                ])
                .map_err(append_error)?;
        }
        appender.flush().map_err(append_error)?;
    }
    {
        let mut appender = conn
            .appender_to_catalog_and_db("__ns_stage_rejects", "temp", "main")
            .map_err(append_error)?;
        for reject in &batch.rejects {
            appender
                .append_row(params![
                    reject.reject_id,
                    reject.source,
                    reject.line as i64,
                    reject.field,
                    reject.reason,
                    reject.raw,
                    now,
                ])
                .map_err(append_error)?;
        }
        appender.flush().map_err(append_error)?;
    }
    let insert_events = "INSERT INTO raw.netlog_events SELECT s.* FROM __ns_stage_events s \
                         WHERE NOT EXISTS (SELECT 1 FROM raw.netlog_events r WHERE r.event_id = s.event_id) \
                         QUALIFY row_number() OVER (PARTITION BY s.event_id ORDER BY s.source_line) = 1";
    let inserted = conn
        .execute(insert_events, [])
        .map_err(|e| EngineError::sql(insert_events, e))?;
    let insert_rejects = "INSERT INTO raw.netlog_rejects SELECT s.* FROM __ns_stage_rejects s \
                          WHERE NOT EXISTS (SELECT 1 FROM raw.netlog_rejects r WHERE r.reject_id = s.reject_id) \
                          QUALIFY row_number() OVER (PARTITION BY s.reject_id) = 1";
    let rejects = conn
        .execute(insert_rejects, [])
        .map_err(|e| EngineError::sql(insert_rejects, e))?;
    let cleanup = "DROP TABLE __ns_stage_events; DROP TABLE __ns_stage_rejects;";
    conn.execute_batch(cleanup)
        .map_err(|e| EngineError::sql(cleanup, e))?;
    Ok(LoadOutcome {
        events_inserted: inserted as u64,
        events_duplicate: (batch.events.len() - inserted) as u64,
        rejects_inserted: rejects as u64,
    })
}
