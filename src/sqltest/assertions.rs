//! Assertions (dbt data tests, Dataform assertions, SQLMesh audits): queries that must return
//! no rows. Declared in a step's `config(assertions={…}, warn_assertions={…})` or written as
//! standalone SQL files under `tests/sql/`; they run after their step on any `Warehouse`, as
//! GoogleSQL spelled with the target's naming, and their results land in
//! `ops.assertion_results`.

// Errors here carry the failing assertion's SQL error with its statement text; they end a run or
// a test file, so their size costs nothing worth boxing for (as in `runner`).
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::project::assertions::{Checked, Severity};
use crate::project::scan::{self, Literal, ScannedTemplate};
use crate::project::{Materialization, Project, Step};
use crate::render::{self, RenderContext, RenderError};
use netsentinel_core::Naming;
use netsentinel_core::relation::{Dataset, TableRef};
use netsentinel_core::sql::quote_string;
use netsentinel_core::{Column, EngineError, ResultSet, TableDef, Warehouse};

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

const RESULT_COLUMNS: &[Column] = &[
    Column::string("run_id"),
    Column::string("step"),
    Column::string("assertion"),
    Column::string("location"),
    Column::string("severity"),
    Column::string("status"),
    Column::int64("failing_rows"),
    Column::string("sample"),
    Column::timestamp("checked_at"),
];

pub fn results_def() -> TableDef {
    TableDef::plain(
        results_table(),
        RESULT_COLUMNS,
        &["run_id", "step", "assertion"],
    )
}

/// Stores a run's assertion results in `ops.assertion_results` (created if missing).
pub fn record(
    warehouse: &mut dyn Warehouse,
    naming: &Naming,
    run_id: &str,
    results: &[AssertionResult],
) -> Result<(), EngineError> {
    let table = naming.qualify(&results_table());
    warehouse.create_table(&results_def())?;
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
