//! Unit tests of single steps, written as YAML under `tests/sql/`: fixture rows for each
//! `ref()`/`source()` (inline or CSV), a trained model for `model()`, an optional `this` for
//! incremental steps, and the rows the step must return. Each test runs in a fresh in-memory
//! DuckDB database, never in the user's warehouse; `PreparedTest` keeps that database to run
//! versions of the step on again and again (`--mutants`).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use super::assertions::{self, AssertionStatus, StandaloneAssertions};
use super::compare::{self, ExpectedRow};
use super::{CaseOutcome, CaseResult};
use crate::config;
use crate::ingest::schema::{batch_log_table, create_raw_tables, events_table};
use crate::project::scan;
use crate::project::{Materialization, Project, Step};
use crate::registry::ModelVersions;
use crate::render::{self, RenderContext, RenderedStep};
use crate::state;
use crate::vars::{VarValue, Vars};
use netsentinel_core::relation::{Identifier, TableRef};
use netsentinel_core::sql::quote_string;
use netsentinel_core::{EngineError, Naming, Warehouse};
use netsentinel_duckdb::DuckDbWarehouse;

#[derive(Debug, thiserror::Error)]
pub enum UnitTestError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {field}: {message}")]
    Spec {
        file: String,
        line: usize,
        field: String,
        message: String,
    },
    #[error("{file}: test `{test}`: {source}")]
    Database {
        file: String,
        test: String,
        source: EngineError,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    tests: Vec<TestSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestSpec {
    name: String,
    step: String,
    description: Option<String>,
    #[serde(default)]
    vars: BTreeMap<String, Value>,
    #[serde(default)]
    given: Vec<Fixture>,
    this: Option<Rows>,
    expect: Expect,
}

/// One input of the step: `source: raw.t`, `ref: name` or `model: name` (a model step, or a
/// script step that creates a model, run on its own `given`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    source: Option<String>,
    #[serde(rename = "ref")]
    reference: Option<String>,
    model: Option<String>,
    /// Column types (GoogleSQL); declared sources' types and values' own types fill the rest.
    columns: Option<Mapping>,
    rows: Option<Vec<Mapping>>,
    csv: Option<PathBuf>,
    #[serde(default)]
    given: Vec<Fixture>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rows {
    columns: Option<Mapping>,
    rows: Option<Vec<Mapping>>,
    csv: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// A query (Tera, with the step helpers) to check instead of the step's own output.
    query: Option<String>,
    rows: Option<Vec<Mapping>>,
    csv: Option<PathBuf>,
    #[serde(default = "default_tolerance")]
    tolerance: f64,
}

fn default_tolerance() -> f64 {
    1e-9
}

/// A parsed test file: where it is and its tests.
pub struct UnitTestFile {
    pub file: String,
    dir: PathBuf,
    text: String,
    tests: Vec<TestSpec>,
}

impl UnitTestFile {
    pub fn load(root: &Path, path: &Path) -> Result<Self, UnitTestError> {
        let file = assertions::relative_file(root, path);
        let text = std::fs::read_to_string(path).map_err(|source| UnitTestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let parsed: TestFile = serde_path_to_error::deserialize(
            serde_yaml::Deserializer::from_str(&text),
        )
        .map_err(|e| UnitTestError::Spec {
            file: file.clone(),
            line: e.inner().location().map_or(0, |l| l.line()),
            field: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
        Ok(UnitTestFile {
            file,
            dir: path.parent().unwrap_or(root).to_path_buf(),
            text,
            tests: parsed.tests,
        })
    }

    /// Runs the tests the selector picks (all when `None`): each test's comparison, then the
    /// step's assertions on the step's output rows, as separate cases.
    pub fn run(
        &self,
        project: &Project,
        base_vars: &Vars,
        standalone: &StandaloneAssertions,
        selector: Option<&str>,
    ) -> Result<Vec<CaseResult>, UnitTestError> {
        let mut cases = Vec::new();
        for test in &self.tests {
            let step = self.step_of(project, test)?;
            if self.selected(step, test, selector) {
                cases.extend(self.run_test(project, base_vars, standalone, test)?);
            }
        }
        Ok(cases)
    }

    /// The file's tests of `step`, each with its fixtures loaded into a database of its own
    /// (built with `project`'s steps), ready to run versions of the step on.
    pub fn prepare_step<'f>(
        &'f self,
        project: &Project,
        base_vars: &Vars,
        step: &str,
    ) -> Result<Vec<PreparedTest<'f>>, UnitTestError> {
        self.tests
            .iter()
            .filter(|t| t.step == step)
            .map(|test| {
                let vars = test_vars(project, base_vars, &test.vars)
                    .map_err(|message| self.spec_error(test, "vars", message))?;
                let step = self.step_of(project, test)?;
                let database = self.prepare_database(project, &vars, step, test);
                Ok(PreparedTest {
                    file: self,
                    test,
                    vars,
                    database,
                    passed_scripts: HashSet::new(),
                })
            })
            .collect()
    }

    fn spec_error(&self, test: &TestSpec, field: &str, message: String) -> UnitTestError {
        UnitTestError::Spec {
            file: self.file.clone(),
            line: config::locate(&self.text, &test.name).0,
            field: format!("tests[{}].{field}", test.name),
            message,
        }
    }

    fn step_of<'p>(
        &self,
        project: &'p Project,
        test: &TestSpec,
    ) -> Result<&'p Step, UnitTestError> {
        project.steps.get(&test.step).ok_or_else(|| {
            self.spec_error(
                test,
                "step",
                format!(
                    "no step `{}`; steps are: {}",
                    test.step,
                    project.steps.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    /// One test's comparison, then (when run) its step's assertions, as cases.
    fn run_test(
        &self,
        project: &Project,
        base_vars: &Vars,
        standalone: &StandaloneAssertions,
        test: &TestSpec,
    ) -> Result<Vec<CaseResult>, UnitTestError> {
        let step = self.step_of(project, test)?;
        let vars = test_vars(project, base_vars, &test.vars)
            .map_err(|message| self.spec_error(test, "vars", message))?;
        let started = Instant::now();
        let location = format!("{}:{}", self.file, config::locate(&self.text, &test.name).0);
        let mut cases = Vec::new();
        let mut result = |name: String, outcome: CaseOutcome| {
            cases.push(CaseResult {
                file: self.file.clone(),
                step: step.name.clone(),
                name,
                outcome,
                duration: started.elapsed(),
            })
        };
        match self.run_one(project, &vars, standalone, step, test) {
            Ok((diff, checks)) => {
                let outcome = match diff {
                    None => CaseOutcome::Passed,
                    Some(diff) => CaseOutcome::Failed(format!(
                        "step {} ({}), test `{}` ({location}){}:\n{diff}",
                        step.name,
                        step.file,
                        test.name,
                        test.description
                            .as_deref()
                            .map(|d| format!(" — {d}"))
                            .unwrap_or_default()
                    )),
                };
                result(test.name.clone(), outcome);
                for check in checks {
                    let outcome = match (&check.status, check.blocks()) {
                        (AssertionStatus::Passed, _) => CaseOutcome::Passed,
                        (_, true) => CaseOutcome::Failed(check.describe()),
                        (_, false) => CaseOutcome::Warned(check.describe()),
                    };
                    result(format!("{} › {}", test.name, check.name), outcome);
                }
            }
            Err(message) => result(
                test.name.clone(),
                CaseOutcome::Errored(format!(
                    "step {} ({}), test `{}` ({location}): {message}",
                    step.name, step.file, test.name
                )),
            ),
        }
        Ok(cases)
    }

    fn selected(&self, step: &Step, test: &TestSpec, selector: Option<&str>) -> bool {
        let Some(selector) = selector else {
            return true;
        };
        let stem = Path::new(&self.file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        [
            step.name.as_str(),
            step.relation.name.as_str(),
            step.relation.dataset.as_str(),
            test.name.as_str(),
            self.file.as_str(),
            stem.as_str(),
        ]
        .contains(&selector)
    }

    /// The diff (if the rows differ) and the step's assertion results on its output.
    fn run_one(
        &self,
        project: &Project,
        vars: &Vars,
        standalone: &StandaloneAssertions,
        step: &Step,
        test: &TestSpec,
    ) -> Result<(Option<String>, Vec<assertions::AssertionResult>), String> {
        let mut database = self.prepare_database(project, vars, step, test)?;
        let warehouse: &mut dyn Warehouse = &mut database;
        let naming = warehouse.naming().clone();
        let models = ModelVersions::first(project);
        let ctx = render_context(project, &naming, vars, &models);
        let rendered = render_for_test(&ctx, step, test)?;
        let diff = self.compare_output(&ctx, warehouse, step, test, &rendered)?;
        let only_this_step = |a: &assertions::StandaloneAssertion| {
            a.depends_on.len() == 1 && a.depends_on.contains(&step.name)
        };
        let checks = assertions::run_for_step(
            &ctx,
            warehouse,
            standalone,
            step,
            crate::project::assertions::Checked::Table,
            only_this_step,
        )
        .map_err(|e| e.to_string())?;
        Ok((diff, checks))
    }

    /// A fresh database holding the test's fixtures: models trained, tables and `this` loaded.
    fn prepare_database(
        &self,
        project: &Project,
        vars: &Vars,
        step: &Step,
        test: &TestSpec,
    ) -> Result<DuckDbWarehouse, String> {
        let mut database = DuckDbWarehouse::open_in_memory().map_err(|e| e.to_string())?;
        let warehouse: &mut dyn Warehouse = &mut database;
        create_raw_tables(warehouse).map_err(|e| e.to_string())?;
        state::create_tables(warehouse).map_err(|e| e.to_string())?;
        let naming = warehouse.naming().clone();
        let models = ModelVersions::first(project);
        let ctx = render_context(project, &naming, vars, &models);
        self.create_fixtures(&ctx, warehouse, &test.given, true)?;
        self.create_fixtures(&ctx, warehouse, &test.given, false)?;
        if let Some(this) = &test.this {
            if step.config.materialized != Materialization::Incremental {
                return Err("`this:` is for incremental steps (materialized='incremental')".into());
            }
            let rows = self.rows(this.rows.as_deref(), this.csv.as_deref())?;
            let types = column_types(this.columns.as_ref(), None)?;
            create_table(warehouse, &naming.qualify(&step.relation), &rows, &types)?;
        }
        Ok(database)
    }

    /// Runs the rendered step on the fixtures in `warehouse` and compares its rows (or
    /// `expect.query`'s) with the expected ones: the differences, if any.
    fn compare_output(
        &self,
        ctx: &RenderContext<'_>,
        warehouse: &mut dyn Warehouse,
        step: &Step,
        test: &TestSpec,
        rendered: &RenderedStep,
    ) -> Result<Option<String>, String> {
        let is_query = !matches!(
            step.config.materialized,
            Materialization::Model | Materialization::Script
        );
        let this = ctx.naming.qualify(&ctx.this(step));
        let own_output = if is_query {
            // The output becomes the step's relation, so assertions and `expect.query` read it;
            // the step's own rows are read back from it, so its query runs once.
            let stage = step
                .relation
                .with_suffix("__ns_test_output")
                .map_err(|e| e.to_string())?;
            let stage = ctx.naming.qualify(&stage);
            warehouse
                .execute_script(&format!(
                    "CREATE OR REPLACE TABLE {stage} AS\n{body};\nCREATE OR REPLACE TABLE {this} AS SELECT * FROM {stage};\nDROP TABLE {stage}",
                    body = rendered.body
                ))
                .map_err(show_engine)?;
            Some(
                warehouse
                    .query(&format!("SELECT * FROM {this}"))
                    .map_err(show_engine)?,
            )
        } else {
            warehouse
                .execute_script(&rendered.self_contained_script())
                .map_err(show_engine)?;
            None
        };
        let actual = match (&test.expect.query, own_output) {
            (Some(query), _) => {
                let template = scan::scan(query).map_err(|e| format!("expect.query: {e}"))?;
                let sql = render::render_template(
                    ctx,
                    &format!("{} expect.query", self.file),
                    &template,
                    Some(&this),
                    false,
                )
                .map_err(|e| e.to_string())?;
                warehouse.query(&sql).map_err(show_engine)?
            }
            (None, Some(rows)) => rows,
            (None, None) => {
                return Err(
                    "a model or script step has no rows of its own: give `expect.query` (e.g. SELECT … FROM ML.DETECT_ANOMALIES(MODEL {{ this }}, …))".into(),
                );
            }
        };
        let expected = self.rows(test.expect.rows.as_deref(), test.expect.csv.as_deref())?;
        Ok(compare::compare(&expected, &actual, test.expect.tolerance))
    }

    /// Creates the fixtures: the models first (`models` = true), then the tables, so a model is
    /// trained on its own rows and the step under test reads its own.
    fn create_fixtures(
        &self,
        ctx: &RenderContext<'_>,
        warehouse: &mut dyn Warehouse,
        fixtures: &[Fixture],
        models: bool,
    ) -> Result<(), String> {
        for fixture in fixtures {
            match (&fixture.source, &fixture.reference, &fixture.model) {
                (None, None, Some(model)) if models => {
                    let step = ctx
                        .project
                        .steps
                        .values()
                        .find(|s| {
                            s.relation.name.as_str() == model
                                && matches!(
                                    s.config.materialized,
                                    Materialization::Model | Materialization::Script
                                )
                        })
                        .ok_or_else(|| format!("given.model: no model or script step `{model}`"))?;
                    self.create_fixtures(ctx, warehouse, &fixture.given, false)?;
                    let rendered =
                        render::render_step(ctx, step, false).map_err(|e| e.to_string())?;
                    warehouse
                        .execute_script(&rendered.self_contained_script())
                        .map_err(|e| format!("training model `{model}`: {}", show_engine(e)))?;
                }
                (None, None, Some(_)) => {}
                (_, _, Some(_)) => {
                    return Err("given: an entry has one of source, ref or model".into());
                }
                _ if models => {}
                (Some(source), None, None) => {
                    let table: TableRef = source
                        .parse()
                        .map_err(|e| format!("given.source `{source}`: {e}"))?;
                    let declared = ctx
                        .project
                        .config
                        .sources
                        .get(&table.dataset)
                        .and_then(|t| t.get(&table.name))
                        .ok_or_else(|| {
                            format!(
                                "given.source `{source}` is not declared under `sources:` in {}",
                                config::CONFIG_FILE
                            )
                        })?;
                    let rows = self.rows(fixture.rows.as_deref(), fixture.csv.as_deref())?;
                    let types = column_types(fixture.columns.as_ref(), Some(&declared.columns))?;
                    create_table(warehouse, &ctx.naming.qualify(&table), &rows, &types)?;
                    if table == events_table() {
                        log_fixture_batches(ctx, warehouse)?;
                    }
                }
                (None, Some(name), None) => {
                    let step = ctx
                        .project
                        .steps
                        .values()
                        .find(|s| s.relation.name.as_str() == name)
                        .ok_or_else(|| format!("given.ref: no step builds `{name}`"))?;
                    let rows = self.rows(fixture.rows.as_deref(), fixture.csv.as_deref())?;
                    let types = column_types(fixture.columns.as_ref(), None)?;
                    create_table(
                        warehouse,
                        &ctx.naming.qualify(&step.relation),
                        &rows,
                        &types,
                    )?;
                }
                _ => return Err("given: each entry has exactly one of source, ref or model".into()),
            }
        }
        Ok(())
    }

    /// Inline rows or a CSV file (relative to the YAML file); neither means no rows.
    fn rows(
        &self,
        rows: Option<&[Mapping]>,
        csv: Option<&Path>,
    ) -> Result<Vec<ExpectedRow>, String> {
        match (rows, csv) {
            (Some(_), Some(_)) => Err("give `rows` or `csv`, not both".into()),
            (Some(rows), None) => rows
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|(k, v)| {
                            k.as_str()
                                .map(|k| (k.to_string(), v.clone()))
                                .ok_or_else(|| format!("column names are strings, got {k:?}"))
                        })
                        .collect()
                })
                .collect(),
            (None, Some(path)) => read_csv(&self.dir.join(path)),
            (None, None) => Ok(Vec::new()),
        }
    }
}

/// One unit test with its fixtures loaded once, so its step can be run on them again and again:
/// each run is rolled back, leaving the fixtures as loaded. What `--mutants` runs every mutant
/// of a step on, instead of loading the fixtures (and training the given models) per mutant.
pub struct PreparedTest<'f> {
    file: &'f UnitTestFile,
    test: &'f TestSpec,
    vars: Vars,
    /// Why the fixtures could not be loaded, when they could not: the test then never passes.
    database: Result<DuckDbWarehouse, String>,
    /// Scripts the step rendered to on runs that passed. A mutant inside a branch this test
    /// does not render (an `is_incremental()` block) renders the same script, which passes
    /// again: the run is skipped.
    passed_scripts: HashSet<String>,
}

impl PreparedTest<'_> {
    /// Whether `project`'s version of the test's step gets the expected rows (the step's
    /// assertions are not run).
    pub fn passes(&mut self, project: &Project) -> Result<bool, UnitTestError> {
        let file = self.file;
        let test = self.test;
        let step = file.step_of(project, test)?;
        let Ok(database) = &mut self.database else {
            return Ok(false);
        };
        let naming = database.naming().clone();
        let models = ModelVersions::first(project);
        let ctx = render_context(project, &naming, &self.vars, &models);
        let Ok(rendered) = render_for_test(&ctx, step, test) else {
            return Ok(false);
        };
        if self.passed_scripts.contains(&rendered.script) {
            return Ok(true);
        }
        let diff = database
            .rolled_back(|database| file.compare_output(&ctx, database, step, test, &rendered))
            .map_err(|source| UnitTestError::Database {
                file: file.file.clone(),
                test: test.name.clone(),
                source,
            })?;
        let passed = matches!(diff, Ok(None));
        if passed {
            self.passed_scripts.insert(rendered.script);
        }
        Ok(passed)
    }
}

/// The step as a test runs it: incremental when the test gives a `this`.
fn render_for_test(
    ctx: &RenderContext<'_>,
    step: &Step,
    test: &TestSpec,
) -> Result<RenderedStep, String> {
    render::render_step(ctx, step, test.this.is_some()).map_err(|e| e.to_string())
}

fn render_context<'a>(
    project: &'a Project,
    naming: &'a Naming,
    vars: &'a Vars,
    models: &'a ModelVersions,
) -> RenderContext<'a> {
    RenderContext {
        project,
        naming,
        vars,
        run_id: "unit_test",
        models,
    }
}

fn show_engine(error: EngineError) -> String {
    error.to_string()
}

fn test_vars(
    project: &Project,
    base: &Vars,
    overrides: &BTreeMap<String, Value>,
) -> Result<Vars, String> {
    let types = project.config.var_types();
    let mut values: BTreeMap<String, VarValue> =
        base.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (name, value) in overrides {
        let ty = types.get(name).ok_or_else(|| {
            format!(
                "var `{name}` is not declared under `vars:` in {}",
                config::CONFIG_FILE
            )
        })?;
        values.insert(
            name.clone(),
            VarValue::from_yaml(name, *ty, value).map_err(|e| e.to_string())?,
        );
    }
    Ok(Vars::new(values))
}

/// CSV cells: empty is NULL; numbers and true/false are typed, the rest are strings.
fn read_csv(path: &Path) -> Result<Vec<ExpectedRow>, String> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let headers = reader
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .clone();
    reader
        .records()
        .map(|record| {
            let record = record.map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(headers
                .iter()
                .zip(record.iter())
                .map(|(h, cell)| (h.to_string(), csv_value(cell)))
                .collect())
        })
        .collect()
}

fn csv_value(cell: &str) -> Value {
    if cell.is_empty() {
        Value::Null
    } else if let Ok(i) = cell.parse::<i64>() {
        i.into()
    } else if let Ok(f) = cell.parse::<f64>() {
        f.into()
    } else if cell == "true" || cell == "false" {
        Value::Bool(cell == "true")
    } else {
        Value::String(cell.to_string())
    }
}

/// Declared column types: the fixture's `columns:` over the source's declaration.
fn column_types(
    explicit: Option<&Mapping>,
    declared: Option<&BTreeMap<Identifier, String>>,
) -> Result<Vec<(String, String)>, String> {
    let mut types: Vec<(String, String)> = declared
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.to_string(), v.to_ascii_uppercase()))
        .collect();
    for (name, ty) in explicit.into_iter().flatten() {
        let (Some(name), Some(ty)) = (name.as_str(), ty.as_str()) else {
            return Err("columns: maps column names to GoogleSQL type names".into());
        };
        Identifier::new(name).map_err(|e| format!("columns.{name}: {e}"))?;
        if !ty
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '<' | '>' | ',' | ' '))
        {
            return Err(format!("columns.{name}: `{ty}` is not a type name"));
        }
        match types.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = ty.to_ascii_uppercase(),
            None => types.push((name.to_string(), ty.to_ascii_uppercase())),
        }
    }
    Ok(types)
}

/// `CREATE OR REPLACE TABLE t AS SELECT … UNION ALL SELECT …`, typed by the declared types or
/// else by the values (an RFC 3339 string is a TIMESTAMP; a column of only NULLs is a STRING).
/// When a test gives no `ingested_at`, its events were ingested after `this` was built.
const FIXTURE_INGESTED_AT: &str = "TIMESTAMP '2000-01-01 00:00:00'";

/// Given events count as ingested, as `ingest` would log them: one batch per `ingested_at`, so
/// an incremental step finds them the way it finds real ones.
fn log_fixture_batches(
    ctx: &RenderContext<'_>,
    warehouse: &mut dyn Warehouse,
) -> Result<(), String> {
    let events = ctx.naming.qualify(&events_table());
    let log = ctx.naming.qualify(&batch_log_table());
    warehouse
        .execute_script(&format!(
            "UPDATE {events} SET ingested_at = {FIXTURE_INGESTED_AT} WHERE ingested_at IS NULL;\n\
             INSERT INTO {log} (batch_id, ingested_at, first_start, last_start, events)\n\
             SELECT CONCAT('fixture_', CAST(UNIX_SECONDS(ingested_at) AS STRING)), ingested_at, MIN(startTime), MAX(startTime), COUNT(*)\n\
             FROM {events} GROUP BY ingested_at"
        ))
        .map(|_| ())
        .map_err(show_engine)
}

fn create_table(
    warehouse: &mut dyn Warehouse,
    table: &str,
    rows: &[ExpectedRow],
    declared: &[(String, String)],
) -> Result<(), String> {
    let mut columns: Vec<(String, Option<String>)> = declared
        .iter()
        .map(|(n, t)| (n.clone(), Some(t.clone())))
        .collect();
    for (name, _) in rows.iter().flatten() {
        if !columns.iter().any(|(n, _)| n == name) {
            Identifier::new(name).map_err(|e| format!("column {name}: {e}"))?;
            columns.push((name.clone(), infer_type(rows, name)));
        }
    }
    if columns.is_empty() {
        return Err(format!(
            "fixture for {table} has no rows and no columns: give `columns:`"
        ));
    }
    let select = |row: Option<&ExpectedRow>| -> Result<String, String> {
        let items = columns
            .iter()
            .map(|(name, ty)| {
                let value = row
                    .and_then(|r| r.iter().find(|(c, _)| c == name))
                    .map_or(&Value::Null, |(_, v)| v);
                Ok(format!("{} AS {name}", literal(value, ty.as_deref())?))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(format!("SELECT {}", items.join(", ")))
    };
    let body = if rows.is_empty() {
        format!("{} LIMIT 0", select(None)?)
    } else {
        rows.iter()
            .map(|r| select(Some(r)))
            .collect::<Result<Vec<_>, _>>()?
            .join("\nUNION ALL ")
    };
    warehouse
        .execute_script(&format!("CREATE OR REPLACE TABLE {table} AS\n{body}"))
        .map_err(|e| format!("creating fixture {table}: {e}"))?;
    Ok(())
}

fn infer_type(rows: &[ExpectedRow], column: &str) -> Option<String> {
    let values = rows
        .iter()
        .filter_map(|r| r.iter().find(|(c, _)| c == column).map(|(_, v)| v))
        .filter(|v| !v.is_null());
    let mut inferred: Option<&str> = None;
    for value in values {
        let ty = match value {
            Value::Bool(_) => "BOOL",
            Value::Number(n) if n.is_i64() || n.is_u64() => "INT64",
            Value::Number(_) => "FLOAT64",
            Value::String(s) if compare::parse_timestamp(s).is_some() => "TIMESTAMP",
            Value::String(_) => "STRING",
            _ => return None,
        };
        inferred = match (inferred, ty) {
            (None, ty) => Some(ty),
            (Some("INT64"), "FLOAT64") | (Some("FLOAT64"), "INT64") => Some("FLOAT64"),
            (Some(a), b) if a == b => Some(a),
            _ => Some("STRING"),
        };
    }
    Some(inferred.unwrap_or("STRING").to_string())
}

/// A YAML value as a GoogleSQL literal; scalar types get a CAST so every row has the column's type.
fn literal(value: &Value, ty: Option<&str>) -> Result<String, String> {
    let bare = match value {
        Value::Null => "NULL".to_string(),
        Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote_string(s),
        Value::Sequence(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| literal(i, None))
                .collect::<Result<Vec<_>, _>>()?
                .join(", ")
        ),
        Value::Mapping(map) => {
            let fields = map
                .iter()
                .map(|(k, v)| {
                    let key = k
                        .as_str()
                        .ok_or_else(|| format!("STRUCT field names are strings, got {k:?}"))?;
                    Identifier::new(key).map_err(|e| e.to_string())?;
                    Ok(format!("{} AS {key}", literal(v, None)?))
                })
                .collect::<Result<Vec<_>, String>>()?;
            format!("STRUCT({})", fields.join(", "))
        }
        Value::Tagged(t) => return Err(format!("YAML tags are not values: {}", t.tag)),
    };
    Ok(match ty {
        Some(ty)
            if !ty.contains('<') && !matches!(value, Value::Sequence(_) | Value::Mapping(_)) =>
        {
            format!("CAST({bare} AS {ty})")
        }
        _ => bare,
    })
}
