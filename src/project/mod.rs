//! A project on disk: `pipelines.yaml` plus the SQL steps under `sql/<dataset>/<name>.sql`,
//! loaded, scanned and checked (refs resolve, no cycles, pipelines name real steps) as one unit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub mod assertions;
pub mod scan;

use assertions::{DeclaredAssertion, Severity};
use scan::{HelperCall, Literal, ScannedTemplate};

use crate::config::{self, ConfigError, PipelineConfig, ProjectConfig};
use crate::ingest::schema;
use netsentinel_core::dag::{CycleError, Dag, EdgeOrigin};
use netsentinel_core::relation::{Dataset, Identifier, TableRef};

pub const SQL_DIR: &str = "sql";

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Layout { file: String, message: String },
    #[error("{file}:{line}: {message}")]
    Template {
        file: String,
        line: usize,
        message: String,
    },
    #[error(transparent)]
    Cycle(#[from] CycleError),
    #[error("{path}:{line}: pipeline `{pipeline}` lists unknown step `{step}`; steps are: {known}")]
    UnknownPipelineStep {
        path: PathBuf,
        line: usize,
        pipeline: String,
        step: String,
        known: String,
    },
    #[error(
        "no netsentinel project in {0}: {file} not found (run from the project directory or pass --project-dir)",
        file = config::CONFIG_FILE
    )]
    NotAProject(PathBuf),
    #[error("unknown pipeline `{name}`: {} defines {defined}", config::CONFIG_FILE)]
    UnknownPipeline { name: String, defined: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Materialization {
    /// The file is a query; each run replaces the table with its result.
    Table,
    /// The file is a query, kept as a view: always current, nothing stored.
    View,
    /// The file is a query; new rows replace existing rows with the same `unique_key`.
    Incremental,
    /// The file holds `CREATE MODEL {{ this }} …`; a successful run registers a model version.
    Model,
    /// The file runs as written.
    Script,
}

impl Materialization {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "table" => Some(Self::Table),
            "view" => Some(Self::View),
            "incremental" => Some(Self::Incremental),
            "model" => Some(Self::Model),
            "script" => Some(Self::Script),
            _ => None,
        }
    }
}

/// Steps netsentinel itself provides, listed by name in a pipeline after the SQL steps they
/// read. They run after the pipeline's SQL steps, in the order the pipeline lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinStep {
    /// Turns new anomalies into alerts and delivers them (`alerts:` in pipelines.yaml).
    Alerts,
    /// Applies the drift policy to the latest measurements and starts a retrain (`drift:`).
    Drift,
}

impl BuiltinStep {
    pub const ALL: [BuiltinStep; 2] = [BuiltinStep::Alerts, BuiltinStep::Drift];

    pub fn name(self) -> &'static str {
        match self {
            BuiltinStep::Alerts => "alerts",
            BuiltinStep::Drift => "drift",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepConfig {
    pub materialized: Materialization,
    pub unique_key: Vec<Identifier>,
    /// BigQuery storage layout; the local engine has no partitions and ignores both.
    pub partition_by: Option<String>,
    pub cluster_by: Vec<Identifier>,
    /// Overrides the target's `maximum_bytes_billed` for this step's BigQuery jobs.
    pub maximum_bytes_billed: Option<u64>,
    /// Checks run on the step's relation after each run of it.
    pub assertions: Vec<DeclaredAssertion>,
}

#[derive(Debug, Clone)]
pub struct Step {
    /// `features/netlog_windows`: the path under `sql/` without `.sql`.
    pub name: String,
    /// Path relative to the project root, as shown in messages.
    pub file: String,
    pub relation: TableRef,
    pub template: ScannedTemplate,
    pub config: StepConfig,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub config: ProjectConfig,
    pub steps: BTreeMap<String, Step>,
    pub dag: Dag,
}

impl Project {
    pub fn load(root: &Path) -> Result<Self, ProjectError> {
        let config_path = root.join(config::CONFIG_FILE);
        if !config_path.exists() {
            return Err(ProjectError::NotAProject(root.to_path_buf()));
        }
        let config_text =
            std::fs::read_to_string(&config_path).map_err(|source| ProjectError::Read {
                path: config_path.clone(),
                source,
            })?;
        let config = ProjectConfig::parse(Path::new(config::CONFIG_FILE), &config_text)?;
        let steps = load_steps(root)?;
        let dag = build_dag(&config, &steps)?;
        dag.topological_order()?;
        check_pipelines(&config, &config_text, &steps)?;
        check_drift(&config, &config_text, &steps)?;
        check_raw_sources(&config, &config_text)?;
        Ok(Project {
            root: root.to_path_buf(),
            config,
            steps,
            dag,
        })
    }

    /// The steps of the named pipelines (all steps when none is named), in dependency order.
    pub fn plan(&self, pipelines: &[String]) -> Result<Vec<&Step>, ProjectError> {
        let mut selected = BTreeSet::new();
        if pipelines.is_empty() {
            selected.extend(self.steps.keys().cloned());
        }
        for name in pipelines {
            selected.extend(self.pipeline(name)?.steps.iter().cloned());
        }
        Ok(self
            .dag
            .order_subset(&selected)?
            .iter()
            .filter_map(|name| self.steps.get(name))
            .collect())
    }

    pub fn pipeline(&self, name: &str) -> Result<&PipelineConfig, ProjectError> {
        Identifier::new(name)
            .ok()
            .and_then(|id| self.config.pipelines.get(&id))
            .ok_or_else(|| ProjectError::UnknownPipeline {
                name: name.to_string(),
                defined: self.pipeline_names().join(", "),
            })
    }

    /// The built-in steps a pipeline lists, in its order.
    pub fn builtin_steps(&self, pipeline: &str) -> Vec<BuiltinStep> {
        Identifier::new(pipeline)
            .ok()
            .and_then(|id| self.config.pipelines.get(&id))
            .map(|p| {
                p.steps
                    .iter()
                    .filter_map(|s| BuiltinStep::parse(s))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn pipeline_names(&self) -> Vec<String> {
        self.config
            .pipelines
            .keys()
            .map(|k| k.to_string())
            .collect()
    }

    /// The step that builds `relation`, if any.
    pub fn step_for(&self, relation: &TableRef) -> Option<&Step> {
        self.steps.values().find(|s| &s.relation == relation)
    }
}

fn load_steps(root: &Path) -> Result<BTreeMap<String, Step>, ProjectError> {
    let sql_root = root.join(SQL_DIR);
    let mut files = Vec::new();
    collect_sql_files(&sql_root, &mut files)?;
    files.sort();
    let mut steps = BTreeMap::new();
    for path in files {
        let step = load_step(root, &sql_root, &path)?;
        if let Some(other) = steps
            .values()
            .find(|s: &&Step| s.relation.name == step.relation.name)
        {
            return Err(ProjectError::Layout {
                file: step.file.clone(),
                message: format!(
                    "name `{}` is already used by {}: ref() resolves by name, so step names must be unique",
                    step.relation.name, other.file
                ),
            });
        }
        steps.insert(step.name.clone(), step);
    }
    Ok(steps)
}

fn collect_sql_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ProjectError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ProjectError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let path = entry
            .map_err(|source| ProjectError::Read {
                path: dir.to_path_buf(),
                source,
            })?
            .path();
        if path.is_dir() {
            collect_sql_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "sql") {
            out.push(path);
        }
    }
    Ok(())
}

fn load_step(root: &Path, sql_root: &Path, path: &Path) -> Result<Step, ProjectError> {
    let file = path
        .strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/");
    let layout_error = |message: String| ProjectError::Layout {
        file: file.clone(),
        message,
    };
    let relative = path
        .strip_prefix(sql_root)
        .unwrap_or(path)
        .with_extension("");
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let [dataset, name] = parts.as_slice() else {
        return Err(layout_error(format!(
            "steps live at {SQL_DIR}/<dataset>/<name>.sql (dataset one of raw, features, models, inferenced, ops)"
        )));
    };
    let dataset: Dataset = dataset.parse().map_err(|e| layout_error(format!("{e}")))?;
    let relation = TableRef::new(dataset, name).map_err(|e| layout_error(e.to_string()))?;
    let source = std::fs::read_to_string(path).map_err(|source| ProjectError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let template = scan::scan(&source).map_err(|e| ProjectError::Template {
        file: file.clone(),
        line: e.line,
        message: e.message,
    })?;
    let config = step_config(&file, dataset, &template.calls)?;
    Ok(Step {
        name: format!("{dataset}/{name}"),
        file,
        relation,
        template,
        config,
    })
}

fn step_config(
    file: &str,
    dataset: Dataset,
    calls: &[HelperCall],
) -> Result<StepConfig, ProjectError> {
    let mut config = StepConfig {
        materialized: if dataset == Dataset::Models {
            Materialization::Model
        } else {
            Materialization::Table
        },
        unique_key: Vec::new(),
        partition_by: None,
        cluster_by: Vec::new(),
        maximum_bytes_billed: None,
        assertions: Vec::new(),
    };
    for call in calls.iter().filter(|c| c.helper == "config") {
        let error = |message: String| ProjectError::Template {
            file: file.to_string(),
            line: call.line,
            message,
        };
        for (key, value) in &call.args {
            match (key.as_str(), value) {
                ("materialized", Literal::String(m)) => {
                    config.materialized = Materialization::parse(m).ok_or_else(|| {
                        error(format!(
                            "materialized='{m}' is not one of table, view, incremental, model, script"
                        ))
                    })?
                }
                ("unique_key", value) => config.unique_key = value.identifiers().map_err(error)?,
                ("cluster_by", value) => config.cluster_by = value.identifiers().map_err(error)?,
                ("partition_by", Literal::String(p)) => config.partition_by = Some(p.clone()),
                ("maximum_bytes_billed", Literal::Number(n)) if *n >= 1.0 && n.fract() == 0.0 => {
                    config.maximum_bytes_billed = Some(*n as u64)
                }
                ("assertions", value) => config.assertions.extend(
                    assertions::parse_config(value, Severity::Error, call.line).map_err(error)?,
                ),
                ("warn_assertions", value) => config.assertions.extend(
                    assertions::parse_config(value, Severity::Warn, call.line).map_err(error)?,
                ),
                ("description", _) => {}
                (key, value) => {
                    return Err(error(format!(
                        "config({key}={value}) is not understood: keys are materialized, unique_key, partition_by, cluster_by, maximum_bytes_billed (a positive whole number of bytes), assertions, warn_assertions, description (literal values)"
                    )));
                }
            }
        }
        if !config.assertions.is_empty()
            && matches!(
                config.materialized,
                Materialization::Model | Materialization::Script
            )
        {
            return Err(error(
                "assertions check a table or view; for a model or script step write a standalone assertion under tests/sql/ that reads it with model() or ref()".into(),
            ));
        }
        if config.materialized == Materialization::Incremental && config.unique_key.is_empty() {
            return Err(error(
                "materialized='incremental' needs unique_key=[…]: the columns that identify a row, so a rerun replaces rows instead of duplicating them".into(),
            ));
        }
    }
    Ok(config)
}

fn build_dag(config: &ProjectConfig, steps: &BTreeMap<String, Step>) -> Result<Dag, ProjectError> {
    let mut dag = Dag::default();
    for step in steps.values() {
        dag.add_node(&step.name);
        for call in &step.template.calls {
            let template_error = |message: String| ProjectError::Template {
                file: step.file.clone(),
                line: call.line,
                message,
            };
            let target = match call.helper {
                "ref" | "model" | "model_version" => {
                    let name = call.string_arg("name").ok_or_else(|| {
                        template_error(format!("{}() takes a quoted name", call.helper))
                    })?;
                    let wants_model = call.helper != "ref";
                    let found = steps.values().find(|s| {
                        s.relation.name.as_str() == name
                            && (s.config.materialized == Materialization::Model) == wants_model
                    });
                    let found = found.ok_or_else(|| {
                        let kind = if wants_model { "model" } else { "ref" };
                        let known: Vec<&str> = steps
                            .values()
                            .filter(|s| (s.config.materialized == Materialization::Model) == wants_model)
                            .map(|s| s.relation.name.as_str())
                            .collect();
                        template_error(format!(
                            "unknown {kind} `{name}`: no step under {SQL_DIR}/ builds it (known: {})",
                            known.join(", ")
                        ))
                    })?;
                    Some(found)
                }
                "source" => {
                    check_source(config, call).map_err(template_error)?;
                    None
                }
                _ => None,
            };
            if let Some(dependency) = target {
                dag.add_edge(
                    &step.name,
                    &dependency.name,
                    EdgeOrigin {
                        file: step.file.clone(),
                        line: call.line,
                        call: format!(
                            "{}(\"{}\")",
                            call.helper,
                            call.string_arg("name").unwrap_or_default()
                        ),
                    },
                );
            }
        }
    }
    Ok(dag)
}

fn check_source(config: &ProjectConfig, call: &HelperCall) -> Result<(), String> {
    let (Some(dataset), Some(table)) = (call.string_arg("dataset"), call.string_arg("table"))
    else {
        return Err("source() takes two quoted names: source(\"raw\", \"netlog_events\")".into());
    };
    let declared = dataset
        .parse::<Dataset>()
        .ok()
        .and_then(|d| config.sources.get(&d))
        .is_some_and(|tables| tables.keys().any(|t| t.as_str() == table));
    if declared {
        Ok(())
    } else {
        Err(format!(
            "unknown source `{dataset}.{table}`: declare it under `sources:` in {}",
            config::CONFIG_FILE
        ))
    }
}

/// Ingest writes the raw tables with a fixed schema; declared columns must say the same, so the
/// YAML never documents a table that does not exist.
fn check_raw_sources(config: &ProjectConfig, config_text: &str) -> Result<(), ProjectError> {
    for def in [schema::events_def(), schema::rejects_def()] {
        let table = &def.table;
        let Some(declared) = config
            .sources
            .get(&table.dataset)
            .and_then(|tables| tables.get(&table.name))
            .filter(|t| !t.columns.is_empty())
        else {
            continue;
        };
        let declared: Vec<(String, String)> = declared
            .columns
            .iter()
            .map(|(name, ty)| (name.to_string(), ty.to_ascii_uppercase()))
            .collect();
        let mut expected: Vec<(String, String)> = def
            .columns
            .iter()
            .map(|c| (c.name.to_string(), c.ty.as_sql().to_string()))
            .collect();
        expected.sort();
        if declared != expected {
            let list: Vec<String> = def
                .columns
                .iter()
                .map(|c| format!("{}: {}", c.name, c.ty.as_sql()))
                .collect();
            return Err(ProjectError::Layout {
                file: format!(
                    "{}:{}",
                    config::CONFIG_FILE,
                    config::locate_key(
                        config_text,
                        &["sources", table.dataset.as_str(), table.name.as_str()]
                    )
                    .0
                ),
                message: format!(
                    "sources.{table} declares columns that differ from what ingest writes; declare exactly {}",
                    list.join(", ")
                ),
            });
        }
    }
    Ok(())
}

fn check_pipelines(
    config: &ProjectConfig,
    config_text: &str,
    steps: &BTreeMap<String, Step>,
) -> Result<(), ProjectError> {
    for (pipeline, spec) in &config.pipelines {
        for step in &spec.steps {
            let missing_section = match BuiltinStep::parse(step) {
                Some(BuiltinStep::Alerts) if config.alerts.is_none() => {
                    Some("`alerts:` section saying where alerts go")
                }
                Some(BuiltinStep::Drift) if config.drift.is_none() => {
                    Some("`drift:` section with its policy")
                }
                _ => None,
            };
            if let Some(section) = missing_section {
                return Err(ProjectError::Layout {
                    file: format!(
                        "{}:{}",
                        config::CONFIG_FILE,
                        config::locate(config_text, step).0
                    ),
                    message: format!(
                        "pipeline `{pipeline}` runs the `{step}` step, but there is no {section}"
                    ),
                });
            }
            if !steps.contains_key(step) && BuiltinStep::parse(step).is_none() {
                return Err(ProjectError::UnknownPipelineStep {
                    path: PathBuf::from(config::CONFIG_FILE),
                    line: config::locate(config_text, step).0,
                    pipeline: pipeline.to_string(),
                    step: step.clone(),
                    known: steps
                        .keys()
                        .cloned()
                        .chain(BuiltinStep::ALL.iter().map(|b| b.name().to_string()))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
    }
    Ok(())
}

/// The steps and pipeline the `drift:` section names exist and are of the right kind.
fn check_drift(
    config: &ProjectConfig,
    config_text: &str,
    steps: &BTreeMap<String, Step>,
) -> Result<(), ProjectError> {
    let Some(drift) = &config.drift else {
        return Ok(());
    };
    let error = |key: &[&str], message: String| ProjectError::Layout {
        file: format!(
            "{}:{}",
            config::CONFIG_FILE,
            config::locate_key(config_text, key).0
        ),
        message,
    };
    let step_named = |name: &Identifier, model: bool| {
        steps.values().any(|s| {
            s.relation.name == *name && (s.config.materialized == Materialization::Model) == model
        })
    };
    if !step_named(&drift.model, true) {
        return Err(error(
            &["drift", "model"],
            format!(
                "drift.model names `{}`, but no step under {SQL_DIR}/models/ builds a model of that name",
                drift.model
            ),
        ));
    }
    for (key, name) in [
        (&["drift", "metrics_from"][..], &drift.metrics_from),
        (
            &["drift", "promotion", "training_set"][..],
            &drift.promotion.training_set,
        ),
    ] {
        if !step_named(name, false) {
            return Err(error(
                key,
                format!(
                    "{} names `{name}`, but no step under {SQL_DIR}/ builds a table or view of that name",
                    key.join(".")
                ),
            ));
        }
    }
    if !config.pipelines.contains_key(&drift.then) {
        return Err(error(
            &["drift", "then"],
            format!(
                "drift.then names pipeline `{}`, which pipelines.yaml does not define",
                drift.then
            ),
        ));
    }
    Ok(())
}
