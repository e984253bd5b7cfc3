//! Rendering: a step's Tera template becomes the GoogleSQL script that runs on the target, with
//! `ref()`, `source()`, `var()`, `model()`, `model_version()`, `this`, `this_max()`,
//! `ingested_since()`, `earliest_new_event()`, `config()` and `is_incremental()` resolved, and
//! the step's materialization wrapped around it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use netsentinel_core::Naming;

use crate::config::ConfigError;
use crate::ingest::schema::batch_log_table;
use crate::project::scan;
use crate::project::{Materialization, Project, Step};
use crate::registry::{self, ModelVersions};
use crate::state;
use crate::vars::Vars;
use netsentinel_core::relation::{Dataset, Identifier, TableRef};
use netsentinel_core::sql::quote_string;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{file}: {message}")]
    Template { file: String, message: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Everything a render needs besides the step itself.
pub struct RenderContext<'a> {
    pub project: &'a Project,
    pub naming: &'a Naming,
    pub vars: &'a Vars,
    /// Recorded with model versions; `compile` uses a placeholder.
    pub run_id: &'a str,
    /// Versions of the versioned models: `model()` renders the champion, a model step's `this`
    /// the version it builds.
    pub models: &'a ModelVersions,
}

impl RenderContext<'_> {
    /// The relation a step builds: for the versioned model's step, the version it builds now.
    pub fn this(&self, step: &Step) -> TableRef {
        match self.models.get(step.relation.name.as_str()) {
            Some(versions) if step.config.materialized == Materialization::Model => {
                registry::versioned(&step.relation, versions.training)
            }
            _ => step.relation.clone(),
        }
    }

    fn is_versioned(&self, step: &Step) -> bool {
        step.config.materialized == Materialization::Model
            && self.models.get(step.relation.name.as_str()).is_some()
    }
}

#[derive(Debug, Clone)]
pub struct RenderedStep {
    /// The template rendered: what the analyst wrote, names resolved.
    pub body: String,
    /// The full script that runs: the body inside its materialization.
    pub script: String,
    /// An incremental run's staging table (qualified), holding exactly the rows the run
    /// writes. The script leaves it in place, so the step's assertions can check those rows
    /// instead of the whole table; [`RenderedStep::drop_staging`] removes it afterwards.
    pub staging: Option<String>,
}

impl RenderedStep {
    /// Removes the staging table, if the run had one.
    pub fn drop_staging(&self) -> Option<String> {
        self.staging
            .as_ref()
            .map(|stage| format!("DROP TABLE IF EXISTS {stage}"))
    }

    /// The script with the staging table dropped at its end: what runs when nothing is checked
    /// in between (compiled files, dry runs, SQL unit tests).
    pub fn self_contained_script(&self) -> String {
        match self.drop_staging() {
            Some(drop) => format!("{};\n{drop}", self.script),
            None => self.script.clone(),
        }
    }
}

pub fn render_step(
    ctx: &RenderContext<'_>,
    step: &Step,
    incremental: bool,
) -> Result<RenderedStep, RenderError> {
    let this = ctx.naming.qualify(&ctx.this(step));
    let bounds = Bounds::default();
    let body = render_with(
        ctx,
        &step.file,
        &step.template,
        Some(&this),
        incremental,
        &bounds,
    )?;
    let (script, staging) = materialize(ctx, step, &body, incremental, &bounds.variables())
        .map_err(|message| RenderError::Template {
            file: step.file.clone(),
            message,
        })?;
    Ok(RenderedStep {
        body,
        script,
        staging,
    })
}

/// Renders any scanned template with the step helpers: a step's body, or a standalone SQL file
/// (an assertion, a test's query) that has no `this` of its own when `this` is `None`.
pub fn render_template(
    ctx: &RenderContext<'_>,
    file: &str,
    template: &scan::ScannedTemplate,
    this: Option<&str>,
    incremental: bool,
) -> Result<String, RenderError> {
    render_with(ctx, file, template, this, incremental, &Bounds::default())
}

fn render_with(
    ctx: &RenderContext<'_>,
    file: &str,
    template: &scan::ScannedTemplate,
    this: Option<&str>,
    incremental: bool,
    bounds: &Bounds,
) -> Result<String, RenderError> {
    let template_error = |message: String| RenderError::Template {
        file: file.to_string(),
        message,
    };
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![]);
    tera.add_raw_template(file, &template.tera_source)
        .map_err(|e| template_error(tera_message(&e)))?;
    register_helpers(&mut tera, ctx, incremental);
    register_bounds(&mut tera, ctx.naming, this, incremental, bounds);
    let mut context = tera::Context::new();
    if let Some(this) = this {
        context.insert("this", this);
    }
    context.insert("run_id", ctx.run_id);
    let rendered = tera
        .render(file, &context)
        .map_err(|e| template_error(tera_message(&e)))?;
    Ok(rendered.trim().trim_end_matches(';').trim_end().to_string())
}

/// A bound an incremental step computes from what is already stored before it reads its input.
/// On BigQuery it becomes a script variable, declared typed by `typed_by` (a query over a
/// table's columns) and set to `value` before the body runs, so filters on it prune partitions;
/// elsewhere the helper renders `value` inline.
#[derive(Debug, Clone, PartialEq)]
struct ScriptVariable {
    name: String,
    typed_by: String,
    value: String,
}

/// The script variables a step's bound helpers asked for, in the order they must be set.
#[derive(Default, Clone)]
struct Bounds(Arc<Mutex<Vec<ScriptVariable>>>);

impl Bounds {
    fn record(&self, variable: ScriptVariable) {
        let mut variables = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !variables.iter().any(|v| v.name == variable.name) {
            variables.push(variable);
        }
    }

    fn variables(&self) -> Vec<ScriptVariable> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// What the bound helpers need to render: the step's table, and where ingest logs its batches.
struct BoundSql {
    this: String,
    ingest_log: String,
    settle_seconds: u32,
}

impl BoundSql {
    /// `this_max("col")`: the largest `col` already in the step's table.
    fn this_max(&self, column: &Identifier) -> ScriptVariable {
        let this = &self.this;
        ScriptVariable {
            name: format!("__ns_this_max_{column}"),
            typed_by: format!("SELECT MAX({column}) FROM {this}"),
            value: format!("SELECT MAX({column}) FROM {this}"),
        }
    }

    /// `ingested_since("col")`: the ingestion time from which events are new to the step, its
    /// newest `col` (an `ingested_at` the step carried over) less the time a commit may take to
    /// become visible after it was stamped; the epoch while the step's table is empty.
    fn ingested_since(&self, column: &Identifier) -> ScriptVariable {
        let this = &self.this;
        ScriptVariable {
            name: format!("__ns_ingested_since_{column}"),
            typed_by: format!("SELECT MAX({column}) FROM {this}"),
            value: format!(
                "SELECT TIMESTAMP_SUB(COALESCE(MAX({column}), TIMESTAMP '1970-01-01 00:00:00'), \
                 INTERVAL {} SECOND) FROM {this}",
                self.settle_seconds
            ),
        }
    }

    /// `earliest_new_event("col")`: the earliest flow start among the batches ingested since
    /// `ingested_since("col")`, read from ingest's batch log instead of the events, so finding
    /// a late batch costs nothing however old it is; NULL when nothing new was ingested.
    fn earliest_new_event(&self, column: &Identifier, since: &str) -> ScriptVariable {
        let log = &self.ingest_log;
        ScriptVariable {
            name: format!("__ns_earliest_new_event_{column}"),
            typed_by: format!("SELECT MIN(first_start) FROM {log}"),
            value: format!("SELECT MIN(first_start) FROM {log} WHERE ingested_at > {since}"),
        }
    }
}

/// `this_max()`, `ingested_since()` and `earliest_new_event()`: the bounds an incremental step
/// finds its work with. They read the step's own table, so only an incremental run has them.
fn register_bounds(
    tera: &mut tera::Tera,
    naming: &Naming,
    this: Option<&str>,
    incremental: bool,
    bounds: &Bounds,
) {
    let sql = this.filter(|_| incremental).map(|this| {
        Arc::new(BoundSql {
            this: this.to_string(),
            ingest_log: naming.qualify(&batch_log_table()),
            settle_seconds: naming.commit_settle_seconds(),
        })
    });
    let as_variable = naming.prunes_with_script_variables();
    let helper = move |bound: Bound| {
        let name = bound.name();
        let sql = sql.clone();
        let bounds = bounds.clone();
        move |args: &HelperArgs| {
            let column = string_arg(args, "column", name)?;
            let column = Identifier::new(&column).map_err(|e| tera::Error::msg(e.to_string()))?;
            let Some(sql) = &sql else {
                return Err(tera::Error::msg(format!(
                    "{name}() reads the step's own table, which only an incremental run has: \
                     use it inside {{% if is_incremental() %}}"
                )));
            };
            let use_variable = |variable: ScriptVariable| {
                if as_variable {
                    let name = variable.name.clone();
                    bounds.record(variable);
                    name
                } else {
                    format!("({})", variable.value)
                }
            };
            let rendered = match bound {
                Bound::ThisMax => use_variable(sql.this_max(&column)),
                Bound::IngestedSince => use_variable(sql.ingested_since(&column)),
                Bound::EarliestNewEvent => {
                    let since = use_variable(sql.ingested_since(&column));
                    use_variable(sql.earliest_new_event(&column, &since))
                }
            };
            Ok(tera::Value::String(rendered))
        }
    };
    for bound in [
        Bound::ThisMax,
        Bound::IngestedSince,
        Bound::EarliestNewEvent,
    ] {
        tera.register_function(bound.name(), helper(bound));
    }
}

#[derive(Debug, Clone, Copy)]
enum Bound {
    ThisMax,
    IngestedSince,
    EarliestNewEvent,
}

impl Bound {
    fn name(self) -> &'static str {
        match self {
            Bound::ThisMax => "this_max",
            Bound::IngestedSince => "ingested_since",
            Bound::EarliestNewEvent => "earliest_new_event",
        }
    }
}

type HelperArgs = HashMap<String, tera::Value>;

fn register_helpers(tera: &mut tera::Tera, ctx: &RenderContext<'_>, incremental: bool) {
    let relations: Arc<BTreeMap<String, String>> = Arc::new(
        ctx.project
            .steps
            .values()
            .map(|s| {
                let relation = match ctx.models.get(s.relation.name.as_str()) {
                    Some(versions) if ctx.is_versioned(s) => {
                        registry::versioned(&s.relation, versions.serving())
                    }
                    _ => s.relation.clone(),
                };
                (s.relation.name.to_string(), ctx.naming.qualify(&relation))
            })
            .collect(),
    );
    let models = Arc::new(ctx.models.clone());
    let naming = Arc::new(ctx.naming.clone());
    let vars = Arc::new(ctx.vars.clone());
    let registry = ctx.naming.qualify(&state::model_registry());

    let lookup = relations.clone();
    tera.register_function("ref", move |args: &HelperArgs| {
        name_of(&lookup, args, "ref")
    });
    let lookup = relations;
    tera.register_function("model", move |args: &HelperArgs| {
        name_of(&lookup, args, "model")
    });
    tera.register_function("model_version", move |args: &HelperArgs| {
        let name = string_arg(args, "name", "model_version")?;
        // A versioned model's champion is known when rendering; others read the registry.
        if let Some(versions) = models.get(&name) {
            return Ok(tera::Value::String(versions.serving().to_string()));
        }
        Ok(tera::Value::String(format!(
            "(SELECT MAX(version) FROM {registry} WHERE model_name = {})",
            quote_string(&name)
        )))
    });
    let source_naming = naming;
    tera.register_function("source", move |args: &HelperArgs| {
        let dataset = string_arg(args, "dataset", "source")?;
        let table = string_arg(args, "table", "source")?;
        let relation = dataset
            .parse::<Dataset>()
            .map_err(|e| e.to_string())
            .and_then(|d| TableRef::new(d, &table).map_err(|e| e.to_string()))
            .map_err(tera::Error::msg)?;
        Ok(tera::Value::String(source_naming.qualify(&relation)))
    });
    tera.register_function("var", move |args: &HelperArgs| {
        let name = string_arg(args, "name", "var")?;
        let value = vars.get(&name).ok_or_else(|| {
            let declared: Vec<&String> = vars.iter().map(|(k, _)| k).collect();
            tera::Error::msg(format!(
                "var(\"{name}\") is not declared under `vars:` (declared: {declared:?})"
            ))
        })?;
        Ok(tera::Value::String(value.to_sql_literal()))
    });
    tera.register_function("config", |_: &HelperArgs| {
        Ok(tera::Value::String(String::new()))
    });
    tera.register_function("is_incremental", move |_: &HelperArgs| {
        Ok(tera::Value::Bool(incremental))
    });
    // Tera's own get_env would render an environment variable, often a secret, into compiled
    // SQL and BigQuery's job history.
    tera.register_function("get_env", |_: &HelperArgs| {
        Err(tera::Error::msg(
            "get_env() is not available in netsentinel templates: it would write the \
             environment (secrets included) into the SQL; declare a var under `vars:` and use var()",
        ))
    });
}

fn string_arg(args: &HelperArgs, key: &str, helper: &str) -> tera::Result<String> {
    args.get(key)
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| tera::Error::msg(format!("{helper}() needs a quoted `{key}`")))
}

fn name_of(
    relations: &BTreeMap<String, String>,
    args: &HelperArgs,
    helper: &str,
) -> tera::Result<tera::Value> {
    let name = string_arg(args, "name", helper)?;
    relations
        .get(&name)
        .map(|q| tera::Value::String(q.clone()))
        .ok_or_else(|| tera::Error::msg(format!("{helper}(\"{name}\"): no such step")))
}

/// Tera nests the cause under "Failed to render"; users need the whole chain on one line.
fn tera_message(error: &tera::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    parts.join(": ")
}

fn materialize(
    ctx: &RenderContext<'_>,
    step: &Step,
    body: &str,
    incremental: bool,
    variables: &[ScriptVariable],
) -> Result<(String, Option<String>), String> {
    let this = ctx.naming.qualify(&step.relation);
    let config = &step.config;
    let script = match config.materialized {
        Materialization::Script => body.to_string(),
        // The runner registers a versioned model after the promotion gate.
        Materialization::Model if ctx.is_versioned(step) => body.to_string(),
        Materialization::Model => format!(
            "{body};\n{}",
            state::register_model_sql(ctx.naming, &step.relation, ctx.run_id)
        ),
        Materialization::Table => create_table_as(&this, step, body),
        Materialization::View => format!("CREATE OR REPLACE VIEW {this} AS\n{body}"),
        Materialization::Incremental if !incremental => create_table_as(&this, step, body),
        Materialization::Incremental => {
            let stage = staging_table(&step.relation, ctx.run_id)?;
            let stage = ctx.naming.qualify(&stage);
            let pruned = config
                .partition_by
                .as_deref()
                .filter(|_| ctx.naming.prunes_with_script_variables());
            let script =
                merge_increment(&this, &stage, body, &config.unique_key, pruned, variables);
            return Ok((script, Some(stage)));
        }
    };
    Ok((script, None))
}

/// The staging table of one run of an incremental step. Named after the run, so two runs that
/// overlap (a retry, a manual run beside the scheduler) never write each other's stage; a
/// resumed run keeps its run id and so finds its own.
fn staging_table(relation: &TableRef, run_id: &str) -> Result<TableRef, String> {
    let run: String = run_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    relation
        .with_suffix(&format!("__ns_stage_{run}"))
        .map_err(|e| e.to_string())
}

const PARTITIONS_VARIABLE: &str = "__ns_partitions";

/// An incremental run: the new rows go to a staging table, the rows they replace (same unique
/// key) are deleted, and the new rows inserted; the staging table stays for the assertions.
/// With `partition` (BigQuery), the delete reads only the partitions the new rows fall in,
/// listed in a script variable, so a row is replaced only when the partition is a function of
/// the unique key (as `DATE(window_start)` is of a key holding `window_start`).
fn merge_increment(
    this: &str,
    stage: &str,
    body: &str,
    unique_key: &[Identifier],
    partition: Option<&str>,
    variables: &[ScriptVariable],
) -> String {
    // Each variable is declared typed without reading a row (WHERE FALSE prunes every
    // partition), then set: DECLARE must open the script, and bqemulator evaluates a DECLARE's
    // subquery default to NULL.
    let declare = |variable: &str, typed_by: &str| {
        format!("DECLARE {variable} DEFAULT ({typed_by} WHERE FALSE)")
    };
    let mut script: Vec<String> = variables
        .iter()
        .map(|v| declare(&v.name, &v.typed_by))
        .collect();
    if let Some(partition) = partition {
        script.push(declare(
            PARTITIONS_VARIABLE,
            &format!("SELECT ARRAY_AGG(DISTINCT {partition}) FROM {this}"),
        ));
    }
    script.extend(
        variables
            .iter()
            .map(|v| format!("SET {} = ({})", v.name, v.value)),
    );
    let matches = unique_key
        .iter()
        .map(|k| format!("s.{k} = t.{k}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let replaced = format!("EXISTS (SELECT 1 FROM {stage} AS s WHERE {matches})");
    match partition {
        Some(partition) => {
            script.push(format!("CREATE OR REPLACE TABLE {stage} AS\n{body}"));
            script.push(format!(
                "SET {PARTITIONS_VARIABLE} = (SELECT ARRAY_AGG(DISTINCT {partition}) FROM {stage})"
            ));
            script.push(format!(
                "DELETE FROM {this} AS t WHERE {partition} IN UNNEST({PARTITIONS_VARIABLE}) AND {replaced}"
            ));
        }
        None => {
            script.push(format!("CREATE OR REPLACE TABLE {stage} AS\n{body}"));
            script.push(format!("DELETE FROM {this} AS t WHERE {replaced}"));
        }
    }
    script.push(format!("INSERT INTO {this} SELECT * FROM {stage}"));
    script.join(";\n")
}

fn create_table_as(this: &str, step: &Step, body: &str) -> String {
    let mut layout = String::new();
    if let Some(partition) = &step.config.partition_by {
        layout.push_str(&format!("\nPARTITION BY {partition}"));
    }
    if !step.config.cluster_by.is_empty() {
        let columns: Vec<String> = step
            .config
            .cluster_by
            .iter()
            .map(|c| c.to_string())
            .collect();
        layout.push_str(&format!("\nCLUSTER BY {}", columns.join(", ")));
    }
    format!("CREATE OR REPLACE TABLE {this}{layout} AS\n{body}")
}
