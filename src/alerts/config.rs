//! The `alerts:` section of pipelines.yaml: which scored table becomes alerts, the storm
//! controls, and the sinks that receive them.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config_values::{EnvString, human_duration};
use netsentinel_core::relation::Identifier;

/// The step whose relation holds the scored windows when `from:` is not given.
const DEFAULT_FROM: &str = "netlog_anomalies";
/// The model whose centroids explain an alert when `model:` is not given.
const DEFAULT_MODEL: &str = "netlog_kmeans";
/// A repeat alert for the same subscriber and subnet inside this span is recorded, not sent.
const DEFAULT_SUPPRESS_FOR: Duration = Duration::from_secs(15 * 60);
/// More alerts than this in one run are held back behind one summary alert.
const DEFAULT_MAX_PER_RUN: usize = 100;
/// Features listed in an alert's explanation.
const DEFAULT_EXPLAIN_TOP: usize = 3;
/// With detection every few minutes, a sink down for an hour or two still gets its backlog; one
/// that stays down stops costing every run a round of timeouts.
const DEFAULT_MAX_ATTEMPTS: u32 = 20;
/// Detect runs every few minutes: a sink that hangs must not hold the next windows back longer
/// than this.
const DEFAULT_DELIVERY_BUDGET: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// The scored table: a step name whose rows carry `is_anomaly` (ML.DETECT_ANOMALIES output).
    #[serde(default = "default_from")]
    pub from: Identifier,
    /// The BOOL column of the scored table that makes a row an alert.
    #[serde(default = "default_alert_on")]
    pub alert_on: Identifier,
    /// The model the scores came from; its centroids explain each alert.
    #[serde(default = "default_model")]
    pub model: Identifier,
    /// Detector steps whose rows are findings (`subscriberId`, `destination`, `first_seen`,
    /// `last_seen`, `score`, `is_finding`, `evidence`): each incident becomes one alert.
    #[serde(default)]
    pub findings: Vec<Identifier>,
    /// Per-entity suppression window (`15m`, `1h`); `0s` sends every alert.
    #[serde(default = "default_suppress_for", deserialize_with = "human_duration")]
    pub suppress_for: Duration,
    /// At most this many alerts are sent per run; the rest are held and summarized.
    #[serde(default = "default_max_per_run")]
    pub max_per_run: usize,
    #[serde(default = "default_explain_top")]
    pub explain_top: usize,
    /// Runs that try a delivery before it is dead-lettered (status `dead`, its last error kept).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wall-clock time a run spends delivering; deliveries not reached stay pending.
    #[serde(
        default = "default_delivery_budget",
        deserialize_with = "human_duration"
    )]
    pub delivery_budget: Duration,
    #[serde(default)]
    pub severity: SeverityBands,
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
}

fn default_from() -> Identifier {
    Identifier::new(DEFAULT_FROM).expect("valid identifier")
}

fn default_alert_on() -> Identifier {
    Identifier::new("is_anomaly").expect("valid identifier")
}

fn default_model() -> Identifier {
    Identifier::new(DEFAULT_MODEL).expect("valid identifier")
}

fn default_suppress_for() -> Duration {
    DEFAULT_SUPPRESS_FOR
}

fn default_max_per_run() -> usize {
    DEFAULT_MAX_PER_RUN
}

fn default_explain_top() -> usize {
    DEFAULT_EXPLAIN_TOP
}

fn default_max_attempts() -> u32 {
    DEFAULT_MAX_ATTEMPTS
}

fn default_delivery_budget() -> Duration {
    DEFAULT_DELIVERY_BUDGET
}

impl AlertsConfig {
    /// The sinks that deliver on `target`, checked for unique names.
    pub fn sinks_for(&self, target: &str) -> impl Iterator<Item = &SinkConfig> {
        self.sinks.iter().filter(move |s| s.applies_to(target))
    }

    /// What is wrong with the settings serde cannot check alone, if anything.
    pub fn problem(&self) -> Option<String> {
        if let Some(name) = self.duplicate_sink_name() {
            return Some(format!(
                "two sinks are named `{name}`: give each its own `name:`, which keys its delivery state"
            ));
        }
        let SeverityBands {
            medium,
            high,
            critical,
        } = self.severity;
        if !(1.0 <= medium && medium <= high && high <= critical) {
            return Some(format!(
                "severity bands must grow from 1: 1 <= medium ({medium}) <= high ({high}) <= critical ({critical})"
            ));
        }
        None
    }

    /// Sink names are the key of their delivery rows, so two sinks may not share one.
    pub fn duplicate_sink_name(&self) -> Option<String> {
        let mut seen = BTreeSet::new();
        self.sinks
            .iter()
            .map(SinkConfig::name)
            .find(|name| !seen.insert(name.clone()))
    }
}

/// Where severities start, as multiples of the detection threshold: a window just over the
/// threshold is `low`; at twice the threshold's distance from its centroid it is `critical`.
/// Normalized distances are spread thin (a port scan fifteen standard deviations out in one
/// feature is about 1.5x the threshold), so the bands are close together.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SeverityBands {
    pub medium: f64,
    pub high: f64,
    pub critical: f64,
}

impl Default for SeverityBands {
    fn default() -> Self {
        SeverityBands {
            medium: 1.25,
            high: 1.5,
            critical: 2.0,
        }
    }
}

/// One destination. `name` keys its delivery state (default: the kind), so renaming a sink
/// makes it a new one; `targets` limits it to some targets (default: all). Unknown keys are
/// rejected by the kind's own settings (serde's flatten cannot deny them here).
#[derive(Debug, Clone, Deserialize)]
pub struct SinkConfig {
    pub name: Option<Identifier>,
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(flatten)]
    pub kind: SinkKind,
}

impl SinkConfig {
    pub fn name(&self) -> String {
        self.name
            .as_ref()
            .map(Identifier::to_string)
            .unwrap_or_else(|| self.kind.kind().to_string())
    }

    pub fn applies_to(&self, target: &str) -> bool {
        self.targets.is_empty() || self.targets.iter().any(|t| t == target)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SinkKind {
    Pubsub(PubsubSinkConfig),
    Webhook(WebhookSinkConfig),
    File(FileSinkConfig),
    Stdout,
}

impl SinkKind {
    pub fn kind(&self) -> &'static str {
        match self {
            SinkKind::Pubsub(_) => "pubsub",
            SinkKind::Webhook(_) => "webhook",
            SinkKind::File(_) => "file",
            SinkKind::Stdout => "stdout",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PubsubSinkConfig {
    /// `projects/<project>/topics/<topic>`; `${VAR}` references are read from the environment.
    pub topic: EnvString,
    /// Publish with the subscriber as ordering key, so one subscriber's alerts arrive in order
    /// on subscriptions with message ordering enabled.
    #[serde(default)]
    pub ordering_key: bool,
    /// How long one delivery attempt may take before the sink counts as down.
    #[serde(
        default = "default_pubsub_timeout",
        deserialize_with = "human_duration"
    )]
    pub timeout: Duration,
}

fn default_pubsub_timeout() -> Duration {
    Duration::from_secs(30)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSinkConfig {
    pub url: EnvString,
    #[serde(
        default = "default_webhook_timeout",
        deserialize_with = "human_duration"
    )]
    pub timeout: Duration,
    /// Extra attempts after a failed one (5xx, 429, timeout, connection error).
    #[serde(default = "default_webhook_retries")]
    pub retries: u32,
    /// Name of an environment variable holding the HMAC-SHA256 signing secret. The secret
    /// itself never appears in pipelines.yaml or in logs.
    pub secret_env: Option<SecretEnv>,
}

fn default_webhook_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_webhook_retries() -> u32 {
    3
}

/// The name of an environment variable that holds a secret; Debug and Display show the name only.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretEnv(String);

impl SecretEnv {
    pub fn var(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretEnv(${})", self.0)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// JSONL file the alerts are appended to; relative paths are under the project directory.
    pub path: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AlertsConfig, serde_yaml::Error> {
        serde_yaml::from_str(text)
    }

    #[test]
    fn defaults_fill_everything_but_the_sinks() {
        let config = parse("sinks: [{ kind: stdout }]").unwrap();
        assert_eq!(config.from.as_str(), "netlog_anomalies");
        assert_eq!(config.suppress_for, Duration::from_secs(900));
        assert_eq!(config.max_per_run, 100);
        assert_eq!(config.sinks[0].name(), "stdout");
    }

    #[test]
    fn sinks_are_filtered_by_target_and_named_by_kind() {
        let config = parse(
            "sinks:\n  - { kind: file, path: a.jsonl }\n  - { kind: pubsub, topic: 'projects/p/topics/t', targets: [bigquery] }\n",
        )
        .unwrap();
        let local: Vec<String> = config.sinks_for("local").map(SinkConfig::name).collect();
        assert_eq!(local, ["file"]);
        assert_eq!(config.sinks_for("bigquery").count(), 2);
        assert_eq!(config.duplicate_sink_name(), None);
    }

    #[test]
    fn two_sinks_of_one_kind_need_names() {
        let config =
            parse("sinks:\n  - { kind: file, path: a.jsonl }\n  - { kind: file, path: b.jsonl }\n")
                .unwrap();
        assert_eq!(config.duplicate_sink_name().as_deref(), Some("file"));
    }

    #[test]
    fn bad_durations_and_unknown_kinds_say_what_is_expected() {
        let err = parse("suppress_for: soon").unwrap_err().to_string();
        assert!(err.contains("not a duration"), "{err}");
        let err = parse("sinks: [{ kind: pager }]").unwrap_err().to_string();
        assert!(err.contains("pager"), "{err}");
        let err = parse("sinks: [{ kind: file, path: a.jsonl, colour: red }]")
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn severity_bands_must_grow() {
        let config = parse("severity: { medium: 2, high: 1.5, critical: 3 }").unwrap();
        assert!(config.problem().unwrap().contains("must grow"));
        assert_eq!(parse("sinks: []").unwrap().problem(), None);
    }

    #[test]
    fn secret_env_debug_shows_the_variable_name_only() {
        let s = SecretEnv("HOOK_SECRET".into());
        assert_eq!(format!("{s:?}"), "SecretEnv($HOOK_SECRET)");
    }
}
