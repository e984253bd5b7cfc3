//! The `drift:` section of pipelines.yaml: which model is watched, the policy that turns drift
//! measurements into a retrain, and the promotion gate a retrained model must pass.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::config_values::human_duration;
use netsentinel_core::relation::Identifier;

/// The model watched when `model:` is not given.
const DEFAULT_MODEL: &str = "netlog_kmeans";
/// The step that records the measurements (`ops.drift_metrics`).
const DEFAULT_METRICS_FROM: &str = "drift_metrics";
/// The step holding the rows a model trains on, with a `holdout` flag.
const DEFAULT_TRAINING_SET: &str = "netlog_training_set";
/// The pipeline that retrains.
const DEFAULT_THEN: &str = "train";
const DEFAULT_CONSECUTIVE: u32 = 3;
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(6 * 3600);
/// Fewer scored windows than this in a batch say too little to count as a breach.
const DEFAULT_MIN_ROWS: u64 = 100;
/// A challenger may be this much worse (relatively) on Davies–Bouldin and still be promoted:
/// the index is noisy on a small holdout.
const DEFAULT_TOLERANCE: f64 = 0.05;

/// The drift measurements the metrics step writes, by their name in `ops.drift_metrics.metric`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftMetric {
    /// Median normalized distance of the batch over the median at training.
    ScoreShift,
    /// Binomial z of the batch's anomaly rate against the contamination.
    AnomalyRateExcess,
    /// L∞ distance between the training and the batch's cluster shares.
    ClusterOccupancy,
    /// Largest distance a centroid moves when refit on the batch, in units of its radius.
    CentroidShift,
}

impl DriftMetric {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftMetric::ScoreShift => "score_shift",
            DriftMetric::AnomalyRateExcess => "anomaly_rate_excess",
            DriftMetric::ClusterOccupancy => "cluster_occupancy",
            DriftMetric::CentroidShift => "centroid_shift",
        }
    }
}

impl fmt::Display for DriftMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftConfig {
    /// The model step whose versions are registered, gated and watched.
    #[serde(default = "default_model")]
    pub model: Identifier,
    /// The step that measures drift after each detection (rows of `ops.drift_metrics`).
    #[serde(default = "default_metrics_from")]
    pub metrics_from: Identifier,
    pub metric: DriftMetric,
    /// A measurement above this is a breach.
    pub threshold: f64,
    /// Breaches in a row, each from its own scored batch, that start a retrain.
    #[serde(default = "default_consecutive")]
    pub consecutive: u32,
    /// No second retrain within this long after one (`6h`, `30m`, `0s`).
    #[serde(default = "default_cooldown", deserialize_with = "human_duration")]
    pub cooldown: Duration,
    /// A batch with fewer scored windows neither breaches nor clears.
    #[serde(default = "default_min_rows")]
    pub min_rows: u64,
    /// The pipeline that retrains.
    #[serde(default = "default_then")]
    pub then: Identifier,
    #[serde(default)]
    pub promotion: PromotionConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionConfig {
    /// The step the model trains on (its rows with `holdout` FALSE); the gate evaluates
    /// challenger and champion on its rows with `holdout` TRUE.
    #[serde(default = "default_training_set")]
    pub training_set: Identifier,
    /// Relative slack on the champion's Davies–Bouldin index (0.05 = 5 % worse still passes).
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
}

impl Default for PromotionConfig {
    fn default() -> Self {
        PromotionConfig {
            training_set: default_training_set(),
            tolerance: DEFAULT_TOLERANCE,
        }
    }
}

fn identifier(text: &str) -> Identifier {
    Identifier::new(text).expect("valid identifier")
}

fn default_model() -> Identifier {
    identifier(DEFAULT_MODEL)
}

fn default_metrics_from() -> Identifier {
    identifier(DEFAULT_METRICS_FROM)
}

fn default_training_set() -> Identifier {
    identifier(DEFAULT_TRAINING_SET)
}

fn default_then() -> Identifier {
    identifier(DEFAULT_THEN)
}

fn default_consecutive() -> u32 {
    DEFAULT_CONSECUTIVE
}

fn default_cooldown() -> Duration {
    DEFAULT_COOLDOWN
}

fn default_min_rows() -> u64 {
    DEFAULT_MIN_ROWS
}

fn default_tolerance() -> f64 {
    DEFAULT_TOLERANCE
}

impl DriftConfig {
    /// The first setting serde cannot check alone that is wrong: its key under `drift:` and why.
    pub fn problem(&self) -> Option<(&'static [&'static str], String)> {
        if !self.threshold.is_finite() {
            return Some((
                &["threshold"][..],
                "threshold must be a finite number".into(),
            ));
        }
        if self.consecutive == 0 {
            return Some((
                &["consecutive"][..],
                "consecutive must be at least 1 (breaches in a row that start a retrain)".into(),
            ));
        }
        let tolerance = self.promotion.tolerance;
        if !(tolerance.is_finite() && tolerance >= 0.0) {
            return Some((
                &["promotion", "tolerance"][..],
                format!(
                    "tolerance {tolerance} must be a number ≥ 0 (0.05 = 5 % worse still passes)"
                ),
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DriftConfig, serde_yaml::Error> {
        serde_yaml::from_str(text)
    }

    #[test]
    fn defaults_fill_everything_but_the_metric_and_threshold() {
        let config = parse("metric: score_shift\nthreshold: 1.5\n").unwrap();
        assert_eq!(config.metric, DriftMetric::ScoreShift);
        assert_eq!(config.consecutive, 3);
        assert_eq!(config.cooldown, Duration::from_secs(6 * 3600));
        assert_eq!(config.model.as_str(), "netlog_kmeans");
        assert_eq!(config.then.as_str(), "train");
        assert_eq!(
            config.promotion.training_set.as_str(),
            "netlog_training_set"
        );
        assert!(config.problem().is_none());
    }

    #[test]
    fn bad_values_are_named() {
        let err = parse("metric: entropy\nthreshold: 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("entropy") && err.contains("score_shift"),
            "{err}"
        );
        let err = parse("metric: score_shift\nthreshold: 1\ncooldown: soon\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a duration"), "{err}");
        let zero = parse("metric: score_shift\nthreshold: 1\nconsecutive: 0\n").unwrap();
        assert_eq!(zero.problem().unwrap().0, ["consecutive"]);
        let negative =
            parse("metric: score_shift\nthreshold: 1\npromotion: { tolerance: -0.1 }\n").unwrap();
        assert_eq!(negative.problem().unwrap().0, ["promotion", "tolerance"]);
    }
}
