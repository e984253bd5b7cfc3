//! Assertions (dbt data tests, Dataform assertions, SQLMesh audits): queries that must return
//! no rows. Declared in a step's `config(assertions={…}, warn_assertions={…})` or written as
//! standalone SQL files under `tests/sql/`; they run after their step on any `Warehouse`, as
//! GoogleSQL spelled with the target's naming, and their results land in
//! `ops.assertion_results`.

// Errors here carry the failing assertion's SQL error with its statement text; they end a run or
// a test file, so their size costs nothing worth boxing for (as in `runner`).
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::engine::{EngineError, ResultSet, Warehouse};
use crate::project::{Materialization, Project, Step};
use crate::relation::{Dataset, Identifier, TableRef};
use crate::render::scan::{self, Literal, ScannedTemplate};
use crate::render::{self, Naming, RenderContext, RenderError};
use crate::vars::quote_string;

/// Where standalone assertion files and unit-test YAML live, under the project root.
pub const TESTS_DIR: &str = "tests/sql";

/// Offending rows shown (and stored) per failing assertion.
pub const SAMPLE_ROWS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Template {
        file: String,
        line: usize,
        message: String,
    },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("assertion {assertion} ({file}) could not run: {source}")]
    Engine {
        assertion: String,
        file: String,
        #[source]
        source: EngineError,
    },
    #[error(transparent)]
    State(#[from] EngineError),
}

/// Whether a failing assertion stops what depends on its step or only warns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warn,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warn => "warn",
        }
    }
}

/// One declared check on a step's relation.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    NotNull(Identifier),
    Unique(Vec<Identifier>),
    /// The column's non-NULL values are among these SQL literals.
    AcceptedValues {
        column: Identifier,
        values: Vec<String>,
    },
    /// A boolean GoogleSQL expression every row satisfies (NULL counts as satisfied, as in dbt).
    RowCondition(String),
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |ids: &[Identifier]| {
            ids.iter()
                .map(Identifier::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Check::NotNull(c) => write!(f, "not_null({c})"),
            Check::Unique(cols) => write!(f, "unique({})", join(cols)),
            Check::AcceptedValues { column, values } => {
                write!(f, "accepted_values({column}: {})", values.join(", "))
            }
            Check::RowCondition(e) => write!(f, "row_condition({e})"),
        }
    }
}

/// Which rows of a step's table its declared assertions check.
#[derive(Debug, Clone, Copy)]
pub enum Checked<'a> {
    /// All of them (a full build, or a step that is not incremental).
    Table,
    /// The rows an incremental run wrote, in its staging table (qualified), merged into the
    /// table on `unique_key`. The rows it did not touch were checked by the runs that wrote
    /// them, so checking only the new ones keeps a run's cost independent of the table's size.
    Written {
        staging: &'a str,
        unique_key: &'a [Identifier],
    },
}

impl Check {
    /// The offending rows of `relation` (already qualified for the target).
    fn offending_rows_sql(&self, relation: &str, checked: Checked<'_>) -> String {
        let rows = match checked {
            Checked::Table => relation,
            Checked::Written { staging, .. } => staging,
        };
        match self {
            Check::NotNull(c) => format!("SELECT * FROM {rows} WHERE {c} IS NULL"),
            Check::Unique(cols) => {
                let list = cols
                    .iter()
                    .map(Identifier::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                let among = match checked {
                    Checked::Written {
                        staging,
                        unique_key,
                    } if !unique_key.is_empty() && unique_key.iter().all(|k| cols.contains(k)) => {
                        // The merge replaced every row whose key equals a new row's, so a
                        // duplicate on columns that include the whole key lies among the new
                        // rows, unless the key has a NULL (which equals nothing): those rows
                        // come from the whole table. This relies on what the merge relies on:
                        // a partition-pruned merge (BigQuery) replaces rows only in the new
                        // rows' partitions, so the partition must follow from the key.
                        let null_key = unique_key
                            .iter()
                            .map(|k| format!("{k} IS NULL"))
                            .collect::<Vec<_>>()
                            .join(" OR ");
                        format!(
                            "(SELECT {list} FROM {staging} WHERE NOT ({null_key}) \
                             UNION ALL SELECT {list} FROM {relation} WHERE {null_key})"
                        )
                    }
                    _ => relation.to_string(),
                };
                format!(
                    "SELECT {list}, COUNT(*) AS duplicates FROM {among} AS checked GROUP BY {list} HAVING COUNT(*) > 1"
                )
            }
            Check::AcceptedValues { column, values } => format!(
                "SELECT * FROM {rows} WHERE {column} IS NOT NULL AND {column} NOT IN ({})",
                values.join(", ")
            ),
            Check::RowCondition(e) => format!("SELECT * FROM {rows} WHERE NOT ({e})"),
        }
    }
}

/// A check from a step's `config()`, with the line that declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredAssertion {
    pub check: Check,
    pub severity: Severity,
    pub line: usize,
}

/// Reads `assertions={'not_null': […], 'unique': [[…]], 'accepted_values': {col: […]},
/// 'row_condition': '…' | […]}`.
pub fn parse_config(
    value: &Literal,
    severity: Severity,
    line: usize,
) -> Result<Vec<DeclaredAssertion>, String> {
    let Literal::Map(entries) = value else {
        return Err(format!(
            "assertions must be a map like {{'not_null': ['col'], 'unique': [['a', 'b']], 'accepted_values': {{'col': ['x']}}, 'row_condition': 'expr'}}, got {value}"
        ));
    };
    let mut checks = Vec::new();
    for (key, value) in entries {
        let field = |message: String| format!("assertions.{key}: {message}");
        match key.as_str() {
            "not_null" => {
                for column in column_list(value).map_err(field)? {
                    checks.push(Check::NotNull(column));
                }
            }
            "unique" => {
                let Literal::List(items) = value else {
                    return Err(field(format!(
                        "expected a list of column lists, got {value}"
                    )));
                };
                for item in items {
                    checks.push(Check::Unique(column_list(item).map_err(field)?));
                }
            }
            "accepted_values" => {
                let Literal::Map(columns) = value else {
                    return Err(field(format!(
                        "expected a map {{'column': [values]}}, got {value}"
                    )));
                };
                for (column, values) in columns {
                    let column = Identifier::new(column).map_err(|e| field(e.to_string()))?;
                    let Literal::List(values) = values else {
                        return Err(field(format!("expected a list of values, got {values}")));
                    };
                    let values = values
                        .iter()
                        .map(sql_literal)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(field)?;
                    checks.push(Check::AcceptedValues { column, values });
                }
            }
            "row_condition" => {
                let conditions = match value {
                    Literal::List(items) => items.clone(),
                    single => vec![single.clone()],
                };
                for condition in conditions {
                    let Literal::String(expression) = condition else {
                        return Err(field(format!(
                            "expected a quoted SQL expression, got {condition}"
                        )));
                    };
                    checks.push(Check::RowCondition(expression));
                }
            }
            other => {
                return Err(format!(
                    "assertions.{other} is not an assertion: use not_null, unique, accepted_values, row_condition"
                ));
            }
        }
    }
    Ok(checks
        .into_iter()
        .map(|check| DeclaredAssertion {
            check,
            severity,
            line,
        })
        .collect())
}

fn column_list(value: &Literal) -> Result<Vec<Identifier>, String> {
    let items = match value {
        Literal::List(items) => items.clone(),
        single => vec![single.clone()],
    };
    items
        .iter()
        .map(|item| match item {
            Literal::String(s) => Identifier::new(s).map_err(|e| e.to_string()),
            other => Err(format!("expected a column name in quotes, got {other}")),
        })
        .collect()
}

fn sql_literal(value: &Literal) -> Result<String, String> {
    match value {
        Literal::String(s) => Ok(quote_string(s)),
        Literal::Number(n) => Ok(n.to_string()),
        Literal::Bool(b) => Ok(if *b { "TRUE" } else { "FALSE" }.to_string()),
        other => Err(format!(
            "accepted values are quoted strings, numbers or booleans, got {other}"
        )),
    }
}

/// A SQL file under `tests/sql/` whose query must return no rows. It runs after the last of the
/// steps it reads (by `ref()`/`model()`).
#[derive(Debug, Clone)]
pub struct StandaloneAssertion {
    pub name: String,
    pub file: String,
    pub template: ScannedTemplate,
    pub severity: Severity,
    /// The steps it reads, by step name.
    pub depends_on: BTreeSet<String>,
    /// The dependency that runs last: the assertion runs right after it.
    pub after: String,
}

/// Every assertion of a project that is not declared in a step's own `config()`.
#[derive(Debug, Clone, Default)]
pub struct StandaloneAssertions(pub Vec<StandaloneAssertion>);

impl StandaloneAssertions {
    pub fn load(project: &Project) -> Result<Self, AssertionError> {
        let dir = project.root.join(TESTS_DIR);
        let mut files = Vec::new();
        collect_files(&dir, "sql", &mut files)?;
        files.sort();
        let order = project
            .dag
            .topological_order()
            .map_err(|e| AssertionError::Template {
                file: TESTS_DIR.into(),
                line: 0,
                message: e.to_string(),
            })?;
        files
            .iter()
            .map(|path| load_standalone(project, path, &order))
            .collect::<Result<Vec<_>, _>>()
            .map(StandaloneAssertions)
    }

    /// The assertions that run right after `step`.
    pub fn after<'a>(&'a self, step: &'a str) -> impl Iterator<Item = &'a StandaloneAssertion> {
        self.0.iter().filter(move |a| a.after == step)
    }
}

/// Files with `extension` under `dir` (any depth); a missing directory holds none.
pub fn collect_files(
    dir: &Path,
    extension: &str,
    out: &mut Vec<PathBuf>,
) -> Result<(), AssertionError> {
    if !dir.is_dir() {
        return Ok(());
    }
    let read_error = |source| AssertionError::Read {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.is_dir() {
            collect_files(&path, extension, out)?;
        } else if path.extension().is_some_and(|e| e == extension) {
            out.push(path);
        }
    }
    Ok(())
}

fn load_standalone(
    project: &Project,
    path: &Path,
    order: &[String],
) -> Result<StandaloneAssertion, AssertionError> {
    let file = relative_file(&project.root, path);
    let text = std::fs::read_to_string(path).map_err(|source| AssertionError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let template = scan::scan(&text).map_err(|e| AssertionError::Template {
        file: file.clone(),
        line: e.line,
        message: e.message,
    })?;
    let mut severity = Severity::Error;
    let mut depends_on = BTreeSet::new();
    for call in &template.calls {
        let error = |message: String| AssertionError::Template {
            file: file.clone(),
            line: call.line,
            message,
        };
        match call.helper {
            "config" => {
                for (key, value) in &call.args {
                    match (key.as_str(), value) {
                        ("severity", Literal::String(s)) if s == "error" => {
                            severity = Severity::Error
                        }
                        ("severity", Literal::String(s)) if s == "warn" => {
                            severity = Severity::Warn
                        }
                        ("description", _) => {}
                        (key, value) => {
                            return Err(error(format!(
                                "config({key}={value}) is not understood in an assertion file: keys are severity ('error' or 'warn') and description"
                            )));
                        }
                    }
                }
            }
            "ref" | "model" | "model_version" => {
                let name = call.string_arg("name").unwrap_or_default();
                let step = project
                    .steps
                    .values()
                    .find(|s| s.relation.name.as_str() == name)
                    .ok_or_else(|| {
                        error(format!(
                            "unknown {}(\"{name}\"): no step under sql/ builds it",
                            call.helper
                        ))
                    })?;
                depends_on.insert(step.name.clone());
            }
            _ => {}
        }
    }
    let after = order
        .iter()
        .rev()
        .find(|s| depends_on.contains(*s))
        .cloned()
        .ok_or_else(|| AssertionError::Template {
            file: file.clone(),
            line: 1,
            message: "an assertion file must read at least one step with ref() or model(), so netsentinel knows when to run it".into(),
        })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(StandaloneAssertion {
        name,
        file,
        template,
        severity,
        depends_on,
        after,
    })
}

pub fn relative_file(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

#[derive(Debug, Clone, PartialEq)]
pub enum AssertionStatus {
    Passed,
    Failed {
        failing_rows: u64,
        /// The first `SAMPLE_ROWS` offending rows.
        sample: ResultSet,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct AssertionResult {
    pub step: String,
    /// `not_null(subscriberId)`, or the file stem of a standalone assertion.
    pub name: String,
    /// The file (and line) that declares it.
    pub location: String,
    pub severity: Severity,
    pub status: AssertionStatus,
}

impl AssertionResult {
    pub fn blocks(&self) -> bool {
        self.severity == Severity::Error && self.failed()
    }

    pub fn failed(&self) -> bool {
        matches!(self.status, AssertionStatus::Failed { .. })
    }

    /// One paragraph for a terminal: what failed, where it is declared, the offending rows.
    pub fn describe(&self) -> String {
        match &self.status {
            AssertionStatus::Passed => format!("{} › {} passed", self.step, self.name),
            AssertionStatus::Failed {
                failing_rows,
                sample,
            } => {
                let mut text = format!(
                    "{} › {} ({}) found {failing_rows} offending row(s)",
                    self.step, self.name, self.location
                );
                if !sample.rows.is_empty() {
                    text.push_str(&format!(", first {}:\n", sample.rows.len()));
                    text.push_str(&crate::output::table(sample).to_string());
                }
                text
            }
        }
    }
}

/// Runs every assertion of `step` (declared ones over the `checked` rows, standalone ones as
/// written) against the warehouse.
pub fn run_for_step(
    ctx: &RenderContext<'_>,
    warehouse: &mut dyn Warehouse,
    standalone: &StandaloneAssertions,
    step: &Step,
    checked: Checked<'_>,
    filter: impl Fn(&StandaloneAssertion) -> bool,
) -> Result<Vec<AssertionResult>, AssertionError> {
    let mut results = Vec::new();
    if !matches!(
        step.config.materialized,
        Materialization::Model | Materialization::Script
    ) {
        let relation = ctx.naming.qualify(&step.relation);
        for declared in &step.config.assertions {
            let name = declared.check.to_string();
            let location = format!("{}:{}", step.file, declared.line);
            let sql = declared.check.offending_rows_sql(&relation, checked);
            let status = evaluate(warehouse, &sql).map_err(|source| AssertionError::Engine {
                assertion: name.clone(),
                file: location.clone(),
                source,
            })?;
            results.push(AssertionResult {
                step: step.name.clone(),
                name,
                location,
                severity: declared.severity,
                status,
            });
        }
    }
    for assertion in standalone.after(&step.name).filter(|a| filter(a)) {
        let sql = render::render_template(ctx, &assertion.file, &assertion.template, None, false)?;
        let status = evaluate(warehouse, &sql).map_err(|source| AssertionError::Engine {
            assertion: assertion.name.clone(),
            file: assertion.file.clone(),
            source,
        })?;
        results.push(AssertionResult {
            step: step.name.clone(),
            name: assertion.name.clone(),
            location: assertion.file.clone(),
            severity: assertion.severity,
            status,
        });
    }
    Ok(results)
}

fn evaluate(warehouse: &mut dyn Warehouse, sql: &str) -> Result<AssertionStatus, EngineError> {
    let count = warehouse.query(&format!("SELECT COUNT(*) FROM ({sql}) AS offending"))?;
    let failing_rows = count.scalar().and_then(|c| c.as_i64()).unwrap_or(0).max(0) as u64;
    if failing_rows == 0 {
        return Ok(AssertionStatus::Passed);
    }
    let sample = warehouse.query(&format!(
        "SELECT * FROM ({sql}) AS offending LIMIT {SAMPLE_ROWS}"
    ))?;
    Ok(AssertionStatus::Failed {
        failing_rows,
        sample,
    })
}

pub fn results_table() -> TableRef {
    TableRef::new(Dataset::Ops, "assertion_results").expect("a valid identifier")
}

/// Stores a run's assertion results in `ops.assertion_results` (created if missing).
pub fn record(
    warehouse: &mut dyn Warehouse,
    naming: &Naming,
    run_id: &str,
    results: &[AssertionResult],
) -> Result<(), EngineError> {
    let table = naming.qualify(&results_table());
    warehouse.execute_script(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (run_id STRING, step STRING, assertion STRING, location STRING, severity STRING, status STRING, failing_rows INT64, sample STRING, checked_at TIMESTAMP)"
    ))?;
    for result in results {
        let (status, failing_rows, sample) = match &result.status {
            AssertionStatus::Passed => ("passed", 0, "NULL".to_string()),
            AssertionStatus::Failed {
                failing_rows,
                sample,
            } => (
                if result.severity == Severity::Warn {
                    "warned"
                } else {
                    "failed"
                },
                *failing_rows,
                quote_string(&sample_json(sample)),
            ),
        };
        warehouse.execute_script(&format!(
            "INSERT INTO {table} (run_id, step, assertion, location, severity, status, failing_rows, sample, checked_at) VALUES ({}, {}, {}, {}, {}, {}, {failing_rows}, {sample}, CURRENT_TIMESTAMP())",
            quote_string(run_id),
            quote_string(&result.step),
            quote_string(&result.name),
            quote_string(&result.location),
            quote_string(result.severity.as_str()),
            quote_string(status),
        ))?;
    }
    Ok(())
}

fn sample_json(sample: &ResultSet) -> String {
    let rows: Vec<serde_json::Value> = sample
        .rows
        .iter()
        .map(|row| {
            sample
                .columns
                .iter()
                .zip(row)
                .map(|(c, v)| (c.clone(), v.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into()
        })
        .collect();
    serde_json::Value::Array(rows).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Literal {
        let scanned = scan::scan(&format!("{{{{ config(assertions={text}) }}}}")).unwrap();
        scanned.calls[0].arg("assertions").unwrap().clone()
    }

    #[test]
    fn config_maps_become_checks_with_sql_over_the_relation() {
        let parsed = parse_config(
            &config(
                "{'not_null': ['a', 'b'], 'unique': [['a', 'b']], 'accepted_values': {'p': ['tcp', 1]}, 'row_condition': 'x >= 0'}",
            ),
            Severity::Error,
            3,
        )
        .unwrap();
        let sql: Vec<String> = parsed
            .iter()
            .map(|d| d.check.offending_rows_sql("features.t", Checked::Table))
            .collect();
        assert_eq!(
            sql,
            [
                "SELECT * FROM features.t WHERE a IS NULL",
                "SELECT * FROM features.t WHERE b IS NULL",
                "SELECT a, b, COUNT(*) AS duplicates FROM features.t AS checked GROUP BY a, b HAVING COUNT(*) > 1",
                "SELECT * FROM features.t WHERE p IS NOT NULL AND p NOT IN ('tcp', 1)",
                "SELECT * FROM features.t WHERE NOT (x >= 0)",
            ]
        );
    }

    /// Offending rows of `check` after an incremental run merged `new` into a table holding
    /// `old` (queries of rows `(k, v)`) on unique key `k`, checking what the run wrote.
    fn offending_after_merge(check: Check, old: &str, new: &str) -> i64 {
        use crate::engine::Cell;
        use crate::engine::duckdb::DuckDbWarehouse;
        let mut warehouse = DuckDbWarehouse::open_in_memory().unwrap();
        warehouse
            .execute_script(&format!(
                "CREATE TABLE features.t AS {old};\n\
                 CREATE TABLE features.t__ns_stage AS {new};\n\
                 DELETE FROM features.t AS t WHERE EXISTS (SELECT 1 FROM features.t__ns_stage AS s WHERE s.k = t.k);\n\
                 INSERT INTO features.t SELECT * FROM features.t__ns_stage"
            ))
            .unwrap();
        let key = [Identifier::new("k").unwrap()];
        let written = Checked::Written {
            staging: "features.t__ns_stage",
            unique_key: &key,
        };
        let sql = check.offending_rows_sql("features.t", written);
        warehouse
            .query(&format!("SELECT COUNT(*) FROM ({sql}) AS offending"))
            .unwrap()
            .scalar()
            .and_then(Cell::as_i64)
            .unwrap()
    }

    fn rows(rows: &[(Option<i64>, Option<i64>)]) -> String {
        let value = |v: Option<i64>| v.map_or("NULL".to_string(), |v| v.to_string());
        rows.iter()
            .map(|(k, v)| {
                format!(
                    "SELECT CAST({} AS INT64) AS k, CAST({} AS INT64) AS v",
                    value(*k),
                    value(*v)
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    }

    #[test]
    fn an_incremental_run_is_checked_on_the_rows_it_wrote() {
        let id = |name: &str| Identifier::new(name).unwrap();
        let old = rows(&[(Some(1), None), (Some(2), Some(20))]);
        // A NULL left by an earlier run is not this run's to report; a new one is.
        let not_null = Check::NotNull(id("v"));
        let replace_2 = rows(&[(Some(2), Some(21))]);
        assert_eq!(offending_after_merge(not_null.clone(), &old, &replace_2), 0);
        let new_null = rows(&[(Some(3), None)]);
        assert_eq!(offending_after_merge(not_null, &old, &new_null), 1);
        // A replaced key is no duplicate; two new rows with one key are, and so are two rows
        // with a NULL key (the merge's equality never matches a NULL, so the old one stays).
        let unique_key = Check::Unique(vec![id("k")]);
        let replacing = rows(&[(Some(2), Some(21)), (Some(3), Some(30))]);
        assert_eq!(
            offending_after_merge(unique_key.clone(), &old, &replacing),
            0
        );
        let twice = rows(&[(Some(3), Some(30)), (Some(3), Some(31))]);
        assert_eq!(offending_after_merge(unique_key.clone(), &old, &twice), 1);
        let null_key = rows(&[(Some(1), Some(1)), (None, Some(2))]);
        let another_null_key = rows(&[(None, Some(3))]);
        assert_eq!(
            offending_after_merge(unique_key, &null_key, &another_null_key),
            1
        );
        // Columns without the whole key: a new row can duplicate an old one it did not replace.
        let unique_v = Check::Unique(vec![id("v")]);
        let same_v = rows(&[(Some(3), Some(20))]);
        assert_eq!(offending_after_merge(unique_v, &old, &same_v), 1);
    }

    #[test]
    fn bad_assertions_name_the_field() {
        let err = parse_config(&config("{'not_null': ['a b']}"), Severity::Error, 1).unwrap_err();
        assert!(err.starts_with("assertions.not_null:"), "{err}");
        let err = parse_config(&config("{'nonsense': 1}"), Severity::Warn, 1).unwrap_err();
        assert!(err.contains("not_null, unique"), "{err}");
    }
}
