//! Rendering: a step's Tera template becomes the GoogleSQL script that runs on the target, with
//! `ref()`, `source()`, `var()`, `model()`, `model_version()`, `this`, `config()` and
//! `is_incremental()` resolved, and the step's materialization wrapped around it.

pub mod scan;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::config::{ConfigError, TargetConfig};
use crate::project::{Materialization, Project, Step};
use crate::registry::{self, ModelVersions};
use crate::relation::{Dataset, TableRef};
use crate::state;
use crate::vars::{Vars, quote_string};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{file}: {message}")]
    Template { file: String, message: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// How a target spells table names. Names are validated identifiers, so no quoting is needed
/// locally; BigQuery names are fully qualified and backtick-quoted.
#[derive(Debug, Clone, PartialEq)]
pub enum Naming {
    Local,
    BigQuery {
        project: String,
        datasets: BTreeMap<Dataset, String>,
    },
}

impl Naming {
    pub fn for_target(name: &str, target: &TargetConfig) -> Result<Self, ConfigError> {
        Ok(match target {
            TargetConfig::Duckdb { .. } => Naming::Local,
            TargetConfig::Bigquery(bq) => Naming::BigQuery {
                project: bq.project.resolve(name)?,
                datasets: Dataset::ALL
                    .into_iter()
                    .map(|d| (d, bq.dataset_name(d)))
                    .collect(),
            },
        })
    }

    pub fn qualify(&self, table: &TableRef) -> String {
        match self {
            Naming::Local => table.to_string(),
            Naming::BigQuery { project, datasets } => {
                let dataset = datasets
                    .get(&table.dataset)
                    .map(String::as_str)
                    .unwrap_or(table.dataset.as_str());
                format!("`{project}.{dataset}.{}`", table.name)
            }
        }
    }
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
}

pub fn render_step(
    ctx: &RenderContext<'_>,
    step: &Step,
    incremental: bool,
) -> Result<RenderedStep, RenderError> {
    let body = render_body(ctx, step, incremental)?;
    let script =
        materialize(ctx, step, &body, incremental).map_err(|message| RenderError::Template {
            file: step.file.clone(),
            message,
        })?;
    Ok(RenderedStep { body, script })
}

fn render_body(
    ctx: &RenderContext<'_>,
    step: &Step,
    incremental: bool,
) -> Result<String, RenderError> {
    let this = ctx.naming.qualify(&ctx.this(step));
    render_template(ctx, &step.file, &step.template, Some(&this), incremental)
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
    let template_error = |message: String| RenderError::Template {
        file: file.to_string(),
        message,
    };
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![]);
    tera.add_raw_template(file, &template.tera_source)
        .map_err(|e| template_error(tera_message(&e)))?;
    register_helpers(&mut tera, ctx, incremental);
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
) -> Result<String, String> {
    let this = ctx.naming.qualify(&step.relation);
    let config = &step.config;
    Ok(match config.materialized {
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
            let stage = step
                .relation
                .with_suffix("__ns_stage")
                .map_err(|e| e.to_string())?;
            let stage = ctx.naming.qualify(&stage);
            let matches = config
                .unique_key
                .iter()
                .map(|k| format!("s.{k} = t.{k}"))
                .collect::<Vec<_>>()
                .join(" AND ");
            format!(
                "CREATE OR REPLACE TABLE {stage} AS\n{body};\n\
                 DELETE FROM {this} AS t WHERE EXISTS (SELECT 1 FROM {stage} AS s WHERE {matches});\n\
                 INSERT INTO {this} SELECT * FROM {stage};\n\
                 DROP TABLE {stage}"
            )
        }
    })
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
