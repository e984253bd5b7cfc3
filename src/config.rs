//! `pipelines.yaml`: targets, typed vars, sources and pipelines. Parsing errors name the file,
//! the key path and the line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use netsentinel_bigquery::{BigQuerySettings, BigQueryWarehouse};
use netsentinel_core::relation::{Dataset, Identifier};
use netsentinel_core::{EngineError, Naming, Warehouse};
use netsentinel_duckdb::DuckDbWarehouse;

use crate::alerts::config::AlertsConfig;
use crate::config_values::{EnvString, MissingEnv};
use crate::drift::config::DriftConfig;
use crate::schedule::config::SchedulerConfig;
use crate::vars::{VarType, VarValue, Vars};

pub use crate::config_values::CONFIG_FILE;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: at `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: at `{key}`: {message}")]
    Inconsistent {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error(transparent)]
    MissingEnv(#[from] MissingEnv),
    #[error("unknown target `{name}`: {CONFIG_FILE} defines {defined}")]
    UnknownTarget { name: String, defined: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    pub project: Identifier,
    pub default_target: String,
    pub targets: BTreeMap<String, TargetConfig>,
    #[serde(default)]
    pub vars: BTreeMap<String, VarDecl>,
    #[serde(default)]
    pub sources: BTreeMap<Dataset, BTreeMap<Identifier, SourceTable>>,
    #[serde(default)]
    pub pipelines: BTreeMap<Identifier, PipelineConfig>,
    /// Where anomalies go; a pipeline runs delivery by listing the `alerts` step.
    pub alerts: Option<AlertsConfig>,
    /// How `netsentinel schedule` runs the pipelines' schedules.
    #[serde(default)]
    pub scheduler: SchedulerConfig,
    /// The drift policy and promotion gate; a pipeline applies it by listing the `drift` step.
    pub drift: Option<DriftConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "engine", rename_all = "lowercase", deny_unknown_fields)]
pub enum TargetConfig {
    Duckdb {
        #[serde(default = "default_duckdb_path")]
        path: PathBuf,
    },
    Bigquery(BigQueryTarget),
}

fn default_duckdb_path() -> PathBuf {
    PathBuf::from(".netsentinel/local.duckdb")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BigQueryTarget {
    pub project: EnvString,
    #[serde(default = "default_location")]
    pub location: String,
    pub datasets: BTreeMap<Dataset, Identifier>,
    pub maximum_bytes_billed: Option<u64>,
    /// A service-account key file; without it, Application Default Credentials are used.
    pub key_file: Option<EnvString>,
}

fn default_location() -> String {
    "US".to_string()
}

impl TargetConfig {
    /// Opens the warehouse this target names; relative paths are from the project root.
    pub fn open(&self, project_root: &Path, name: &str) -> Result<Box<dyn Warehouse>, EngineError> {
        match self {
            TargetConfig::Duckdb { path } => {
                Ok(Box::new(DuckDbWarehouse::open(&project_root.join(path))?))
            }
            TargetConfig::Bigquery(target) => {
                let settings =
                    target
                        .settings(project_root, name)
                        .map_err(|e| EngineError::Open {
                            location: format!("BigQuery target `{name}`"),
                            message: e.to_string(),
                        })?;
                Ok(Box::new(BigQueryWarehouse::open(&settings)?))
            }
        }
    }

    /// How the target spells table names, without connecting to it.
    pub fn naming(&self, name: &str) -> Result<Naming, ConfigError> {
        Ok(match self {
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
}

impl BigQueryTarget {
    /// What the engine connects with, `${VAR}` references resolved.
    fn settings(&self, project_root: &Path, name: &str) -> Result<BigQuerySettings, MissingEnv> {
        Ok(BigQuerySettings {
            target: name.to_string(),
            project: self.project.resolve(name)?,
            location: self.location.clone(),
            datasets: Dataset::ALL
                .into_iter()
                .map(|d| (d, self.dataset_name(d)))
                .collect(),
            maximum_bytes_billed: self.maximum_bytes_billed,
            key_file: match &self.key_file {
                Some(file) => Some(project_root.join(file.resolve(name)?)),
                None => None,
            },
        })
    }

    /// The BigQuery dataset holding a logical dataset; unmapped ones fall back to their own name.
    pub fn dataset_name(&self, dataset: Dataset) -> String {
        self.datasets
            .get(&dataset)
            .map(|d| d.to_string())
            .unwrap_or_else(|| dataset.as_str().to_string())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VarDecl {
    #[serde(rename = "type")]
    pub ty: VarType,
    pub default: serde_yaml::Value,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceTable {
    pub description: Option<String>,
    #[serde(default)]
    pub columns: BTreeMap<Identifier, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub schedule: Option<CronSchedule>,
    pub steps: Vec<String>,
    pub description: Option<String>,
}

/// A cron schedule written in the standard 5-field form (minute hour day-of-month month
/// day-of-week, Sunday = 0 or 7), or with a leading seconds field. Kept alongside its
/// translation for the `cron` crate, which counts Sunday as 1 and puts seconds first.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    pub expression: String,
    pub schedule: cron::Schedule,
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

impl FromStr for CronSchedule {
    type Err = String;

    fn from_str(expression: &str) -> Result<Self, Self::Err> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let (seconds, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => {
                return Err(format!(
                    "cron schedule `{expression}` has {n} fields: expected 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)"
                ));
            }
        };
        let (day_of_month, day_of_week) = (rest[2], rest[4]);
        if day_of_month != "*" && day_of_month != "?" && day_of_week != "*" && day_of_week != "?" {
            return Err(format!(
                "cron schedule `{expression}` restricts both day-of-month and day-of-week; standard cron ORs them and netsentinel does not guess: use two pipelines or one of the fields"
            ));
        }
        let day_of_week = standard_day_of_week_to_cron_crate(day_of_week)
            .map_err(|e| format!("cron schedule `{expression}`: {e}"))?;
        let translated = format!(
            "{seconds} {} {} {} {} {day_of_week}",
            rest[0], rest[1], rest[2], rest[3]
        );
        let schedule = cron::Schedule::from_str(&translated)
            .map_err(|e| format!("cron schedule `{expression}` is invalid: {e}"))?;
        Ok(CronSchedule {
            expression: expression.to_string(),
            schedule,
        })
    }
}

/// Standard cron numbers days 0–7 from Sunday (0 and 7 both Sunday); the `cron` crate numbers
/// them 1–7 from Sunday. Names (MON, TUE…) mean the same in both and pass through.
fn standard_day_of_week_to_cron_crate(field: &str) -> Result<String, String> {
    let shift = |n: &str| -> Result<u32, String> {
        match n.parse::<u32>() {
            Ok(v @ 0..=6) => Ok(v + 1),
            Ok(7) => Ok(1),
            _ => Err(format!("`{n}` is not a day of week (0-7 or SUN-SAT)")),
        }
    };
    let is_number = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let mut items = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let step = step.map(|s| format!("/{s}")).unwrap_or_default();
        match range.split_once('-') {
            Some((a, b)) if is_number(a) && is_number(b) => {
                let (start, end_raw) = (shift(a)?, b.parse::<u32>().unwrap_or(99));
                if end_raw == 7 {
                    // `a-7` ends on Sunday, which the crate numbers 1: split the wrap-around.
                    items.push(format!("{start}-7{step}"));
                    items.push("1".to_string());
                } else {
                    items.push(format!("{start}-{}{step}", shift(b)?));
                }
            }
            None if is_number(range) => items.push(format!("{}{step}", shift(range)?)),
            _ => items.push(item.to_string()),
        }
    }
    Ok(items.join(","))
}

impl<'de> Deserialize<'de> for CronSchedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl ProjectConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let deserializer = serde_yaml::Deserializer::from_str(text);
        let config: ProjectConfig =
            serde_path_to_error::deserialize(deserializer).map_err(|err| {
                let key = err.path().to_string();
                let inner = err.into_inner();
                let (line, column) = inner
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .unwrap_or((0, 0));
                ConfigError::Invalid {
                    path: path.to_path_buf(),
                    key,
                    line,
                    column,
                    message: strip_location(&inner.to_string()),
                }
            })?;
        config.validate(path, text)?;
        Ok(config)
    }

    fn validate(&self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let invalid = |key: String, key_path: &[&str], message: String| {
            let (line, column) = locate_key(text, key_path);
            ConfigError::Invalid {
                path: path.to_path_buf(),
                key,
                line,
                column,
                message,
            }
        };
        if !self.targets.contains_key(&self.default_target) {
            return Err(invalid(
                "default_target".into(),
                &["default_target"],
                format!(
                    "`{}` is not one of the targets ({})",
                    self.default_target,
                    self.targets.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        if let Some(problem) = self.alerts.as_ref().and_then(|a| a.problem()) {
            return Err(invalid("alerts".into(), &["alerts"], problem));
        }
        if let Some((key, problem)) = self.drift.as_ref().and_then(|d| d.problem()) {
            let path: Vec<&str> = std::iter::once("drift")
                .chain(key.iter().copied())
                .collect();
            return Err(invalid(path.join("."), &path, problem));
        }
        for (name, decl) in &self.vars {
            VarValue::from_yaml(name, decl.ty, &decl.default).map_err(|e| {
                invalid(
                    format!("vars.{name}.default"),
                    &["vars", name],
                    e.to_string(),
                )
            })?;
        }
        Ok(())
    }

    pub fn target(&self, name: Option<&str>) -> Result<(&str, &TargetConfig), ConfigError> {
        let name = name.unwrap_or(&self.default_target);
        self.targets
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| ConfigError::UnknownTarget {
                name: name.to_string(),
                defined: self.targets.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    pub fn var_types(&self) -> BTreeMap<String, VarType> {
        self.vars.iter().map(|(k, v)| (k.clone(), v.ty)).collect()
    }

    /// Declared defaults; `validate` has already checked that each converts.
    pub fn default_vars(&self) -> Vars {
        Vars::new(
            self.vars
                .iter()
                .filter_map(|(name, decl)| {
                    VarValue::from_yaml(name, decl.ty, &decl.default)
                        .ok()
                        .map(|v| (name.clone(), v))
                })
                .collect(),
        )
    }
}

/// serde_yaml appends " at line L column C" to its messages; the error already carries both.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Line and column (1-based) of a key path such as `vars.window_seconds`: each segment is the
/// next line, after the previous segment's, whose key it is. For errors found after parsing.
pub fn locate_key(text: &str, path: &[&str]) -> (usize, usize) {
    let mut found = (0, 0);
    let mut from = 0;
    for segment in path {
        let hit = text.lines().enumerate().skip(from).find_map(|(i, line)| {
            let trimmed = line.trim_start();
            let key = trimmed.trim_start_matches("- ");
            (key.starts_with(segment) && key[segment.len()..].trim_start().starts_with(':'))
                .then(|| (i + 1, line.len() - trimmed.len() + 1))
        });
        match hit {
            Some(position) => {
                found = position;
                from = position.0;
            }
            None => break,
        }
    }
    found
}

/// Line and column (1-based) of the first occurrence of `needle`, for errors found after parsing.
pub fn locate(text: &str, needle: &str) -> (usize, usize) {
    text.lines()
        .enumerate()
        .find_map(|(i, line)| line.find(needle).map(|col| (i + 1, col + 1)))
        .unwrap_or((0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "project: netlog\ndefault_target: local\ntargets:\n  local: { engine: duckdb }\n";

    fn parse(text: &str) -> Result<ProjectConfig, ConfigError> {
        ProjectConfig::parse(Path::new("pipelines.yaml"), text)
    }

    #[test]
    fn minimal_config_gets_the_default_warehouse_path() {
        let config = parse(MINIMAL).unwrap();
        match config.target(None).unwrap() {
            ("local", TargetConfig::Duckdb { path }) => {
                assert_eq!(path, Path::new(".netsentinel/local.duckdb"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn type_errors_name_key_path_and_line() {
        let text =
            format!("{MINIMAL}vars:\n  window_seconds:\n    type: integer\n    default: 60\n");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.starts_with("pipelines.yaml:7:"), "{err}");
        assert!(err.contains("vars.window_seconds.type"), "{err}");
    }

    #[test]
    fn default_of_the_wrong_type_is_an_error_with_line() {
        let text = format!("{MINIMAL}vars:\n  window_seconds: {{ type: int, default: soon }}\n");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains(":6:"), "{err}");
        assert!(err.contains("vars.window_seconds.default"), "{err}");
        assert!(err.contains("not a valid int"), "{err}");
    }

    #[test]
    fn bad_cron_names_the_pipeline() {
        let text =
            format!("{MINIMAL}pipelines:\n  train:\n    schedule: \"0 3 * *\"\n    steps: [a/b]\n");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("pipelines.train.schedule"), "{err}");
        assert!(err.contains("has 4 fields"), "{err}");
        assert!(err.contains(":7:"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = parse(&format!("{MINIMAL}pipeline: {{}}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `pipeline`"), "{err}");
    }

    #[test]
    fn five_field_cron_means_what_standard_cron_means() {
        use chrono::{Datelike, TimeZone, Timelike, Utc};
        let monday_to_friday: CronSchedule = "30 2 * * 1-5".parse().unwrap();
        let after = Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap(); // a Saturday
        let next = monday_to_friday.schedule.after(&after).next().unwrap();
        assert_eq!(next.weekday(), chrono::Weekday::Mon);
        assert_eq!((next.hour(), next.minute(), next.second()), (2, 30, 0));

        for sunday in ["0 0 * * 0", "0 0 * * 7", "0 0 * * SUN", "0 0 * * 5-7"] {
            let s: CronSchedule = sunday.parse().unwrap();
            let days: Vec<_> = s
                .schedule
                .after(&after)
                .take(3)
                .map(|t| t.weekday())
                .collect();
            assert!(days.contains(&chrono::Weekday::Sun), "{sunday}: {days:?}");
        }
        let every_five: CronSchedule = "*/5 * * * *".parse().unwrap();
        let ticks: Vec<_> = every_five.schedule.after(&after).take(2).collect();
        assert_eq!((ticks[1] - ticks[0]).num_minutes(), 5);
        assert!("0 0 1 * 1".parse::<CronSchedule>().is_err());
    }
}
