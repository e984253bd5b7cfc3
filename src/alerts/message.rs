//! What an alert says: its deterministic id, severity, the scored window it is about, and an
//! explanation of which features pulled it away from its cluster.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::config::SeverityBands;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// `ratio` is normalized distance over the detection threshold (above 1 for an anomaly).
    pub fn from_ratio(ratio: f64, bands: &SeverityBands) -> Self {
        if ratio >= bands.critical {
            Severity::Critical
        } else if ratio >= bands.high {
            Severity::High
        } else if ratio >= bands.medium {
            Severity::Medium
        } else {
            Severity::Low
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One anomalous window of the scored table.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredWindow {
    pub model_version: i64,
    pub subscriber: String,
    pub subnet: String,
    pub window_start: DateTime<Utc>,
    pub window_end: Option<DateTime<Utc>>,
    pub normalized_distance: f64,
    pub centroid_id: i64,
    /// The model's input features, in the model's order; `None` for a NULL value.
    pub features: Vec<(String, Option<f64>)>,
}

impl ScoredWindow {
    /// Model version + entity + window: the same anomaly always gets the same id, so a rerun
    /// or a resumed run can never alert it twice.
    pub fn alert_id(&self) -> String {
        let key = format!(
            "v{}|{}|{}|{}",
            self.model_version,
            self.subscriber,
            self.subnet,
            self.window_start.timestamp_micros()
        );
        format!("al_{:032x}", xxhash_rust::xxh3::xxh3_128(key.as_bytes()))
    }
}

/// How far one feature is from the assigned centroid, in training standard deviations.
#[derive(Debug, Clone, PartialEq)]
pub struct Deviation {
    pub feature: String,
    pub value: f64,
    pub centroid: f64,
    pub stddevs: f64,
}

/// What of the model an explanation needs: the centroids in original units and each
/// numeric feature's training standard deviation (ML.CENTROIDS and ML.FEATURE_INFO).
#[derive(Debug, Clone, Default)]
pub struct ModelProfile {
    pub version: i64,
    pub feature_order: Vec<String>,
    pub centroids: HashMap<(i64, String), f64>,
    pub stddevs: HashMap<String, f64>,
}

impl ModelProfile {
    /// The `top` features farthest from the window's centroid, largest first. Categorical
    /// features, constant features and NULL values have no distance in standard deviations.
    pub fn explain(&self, window: &ScoredWindow, top: usize) -> Vec<Deviation> {
        let mut deviations: Vec<Deviation> = window
            .features
            .iter()
            .filter_map(|(feature, value)| {
                let value = (*value)?;
                let centroid = *self.centroids.get(&(window.centroid_id, feature.clone()))?;
                let stddev = *self.stddevs.get(feature)?;
                (stddev > 0.0).then(|| Deviation {
                    feature: feature.clone(),
                    value,
                    centroid,
                    stddevs: (value - centroid) / stddev,
                })
            })
            .collect();
        deviations.sort_by(|a, b| {
            b.stddevs
                .abs()
                .total_cmp(&a.stddevs.abs())
                .then_with(|| a.feature.cmp(&b.feature))
        });
        deviations.truncate(top);
        deviations
    }
}

/// Where an alert came from, carried in every message.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    pub pipeline: &'a str,
    pub target: &'a str,
    pub run_id: &'a str,
    pub model: &'a str,
}

/// The kind of an alert raised for a scored window (a finding's kind is its detector table).
pub const ANOMALY_KIND: &str = "anomaly";

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub alert_id: String,
    /// `anomaly` for a scored window, else the detector table the finding came from.
    pub kind: String,
    pub severity: Severity,
    /// Normalized distance over its model's anomaly threshold: how far past normal the window
    /// is, comparable across model versions; the per-run cap keeps the largest.
    pub excess: f64,
    pub window: ScoredWindow,
    pub body: Value,
}

impl Alert {
    pub fn new(
        window: ScoredWindow,
        threshold: f64,
        bands: &SeverityBands,
        explanation: &[Deviation],
        origin: &Origin<'_>,
    ) -> Self {
        let ratio = if threshold > 0.0 {
            window.normalized_distance / threshold
        } else {
            f64::INFINITY
        };
        let severity = Severity::from_ratio(ratio, bands);
        let alert_id = window.alert_id();
        let features: serde_json::Map<String, Value> = window
            .features
            .iter()
            .map(|(name, value)| (name.clone(), json!(value)))
            .collect();
        let explained: Vec<Value> = explanation
            .iter()
            .map(|d| {
                json!({
                    "feature": d.feature,
                    "value": d.value,
                    "centroid_value": d.centroid,
                    "deviation_stddevs": round(d.stddevs, 3),
                })
            })
            .collect();
        let summary = explanation
            .iter()
            .map(|d| format!("{} {:+.1} sd", d.feature, d.stddevs))
            .collect::<Vec<_>>()
            .join(", ");
        let body = json!({
            "alert_id": alert_id,
            "kind": ANOMALY_KIND,
            "severity": severity.as_str(),
            "subscriber": window.subscriber,
            "subnet": window.subnet,
            "window_start": timestamp(window.window_start),
            "window_end": window.window_end.map(timestamp),
            "normalized_distance": window.normalized_distance,
            "threshold": threshold,
            "centroid_id": window.centroid_id,
            "model": origin.model,
            "model_version": window.model_version,
            "features": features,
            "explanation": { "summary": summary, "top_features": explained },
            "pipeline": origin.pipeline,
            "target": origin.target,
            "run_id": origin.run_id,
        });
        Alert {
            alert_id,
            kind: ANOMALY_KIND.into(),
            severity,
            excess: ratio,
            window,
            body,
        }
    }
}

/// A detector's finding: a subscriber and a destination over a span, with the evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub subscriber: String,
    pub destination: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// The detector's score, 0..1.
    pub score: f64,
    pub evidence: String,
}

/// The detector score that ranks with an anomaly at the critical band's boundary.
const CRITICAL_FINDING_SCORE: f64 = 0.9;

impl Alert {
    /// One alert per finding; a finding scoring 0.9 ranks and grades with an anomaly at the
    /// critical band's boundary, so the per-run cap weighs both kinds on one scale.
    pub fn from_finding(
        kind: &str,
        finding: Finding,
        bands: &SeverityBands,
        origin: &Origin<'_>,
    ) -> Self {
        let excess = bands.critical * finding.score / CRITICAL_FINDING_SCORE;
        let severity = Severity::from_ratio(excess, bands);
        let key = format!(
            "{kind}|{}|{}|{}",
            finding.subscriber,
            finding.destination,
            finding.first_seen.timestamp_micros()
        );
        let alert_id = format!("al_{:032x}", xxhash_rust::xxh3::xxh3_128(key.as_bytes()));
        let body = json!({
            "alert_id": alert_id,
            "kind": kind,
            "severity": severity.as_str(),
            "subscriber": finding.subscriber,
            "destination": finding.destination,
            "first_seen": timestamp(finding.first_seen),
            "last_seen": timestamp(finding.last_seen),
            "score": finding.score,
            "explanation": { "summary": finding.evidence },
            "pipeline": origin.pipeline,
            "target": origin.target,
            "run_id": origin.run_id,
        });
        let window = ScoredWindow {
            model_version: 0,
            subscriber: finding.subscriber,
            subnet: finding.destination,
            window_start: finding.first_seen,
            window_end: Some(finding.last_seen),
            normalized_distance: finding.score,
            centroid_id: 0,
            features: Vec::new(),
        };
        Alert {
            alert_id,
            kind: kind.to_string(),
            severity,
            excess,
            window,
            body,
        }
    }
}

/// The one message a run sends instead of the alerts its cap held back.
pub fn summary_body(
    alert_id: &str,
    held_back: usize,
    cap: usize,
    first_window: DateTime<Utc>,
    last_window: DateTime<Utc>,
    origin: &Origin<'_>,
) -> Value {
    json!({
        "alert_id": alert_id,
        "kind": "summary",
        "severity": Severity::High.as_str(),
        "held_back": held_back,
        "message": format!(
            "{held_back} more anomalies in this run were held back after the per-run cap of {cap}; they are recorded in the alert outbox with status 'held'"
        ),
        "first_window": timestamp(first_window),
        "last_window": timestamp(last_window),
        "model": origin.model,
        "pipeline": origin.pipeline,
        "target": origin.target,
        "run_id": origin.run_id,
    })
}

/// The summary of a run has one id per run, so a resumed run finds it already staged.
pub fn summary_alert_id(run_id: &str) -> String {
    format!(
        "al_{:032x}",
        xxhash_rust::xxh3::xxh3_128(format!("summary|{run_id}").as_bytes())
    )
}

pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn window() -> ScoredWindow {
        ScoredWindow {
            model_version: 3,
            subscriber: "sub-1".into(),
            subnet: "203.0.113.0/22".into(),
            window_start: Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap(),
            window_end: Some(Utc.with_ymd_and_hms(2026, 1, 1, 10, 1, 0).unwrap()),
            normalized_distance: 4.0,
            centroid_id: 2,
            features: vec![
                ("a".into(), Some(10.0)),
                ("b".into(), Some(1.0)),
                ("c".into(), None),
                ("d".into(), Some(7.0)),
            ],
        }
    }

    #[test]
    fn alert_ids_depend_on_version_entity_and_window_only() {
        let w = window();
        let mut later = w.clone();
        later.normalized_distance = 9.0;
        assert_eq!(w.alert_id(), later.alert_id());
        let mut other_version = w.clone();
        other_version.model_version = 4;
        assert_ne!(w.alert_id(), other_version.alert_id());
        let mut other_window = w.clone();
        other_window.window_start += chrono::Duration::seconds(60);
        assert_ne!(w.alert_id(), other_window.alert_id());
        assert!(w.alert_id().starts_with("al_") && w.alert_id().len() == 35);
    }

    #[test]
    fn severity_bands_are_multiples_of_the_threshold() {
        let bands = SeverityBands::default();
        assert_eq!(Severity::from_ratio(1.01, &bands), Severity::Low);
        assert_eq!(Severity::from_ratio(1.3, &bands), Severity::Medium);
        assert_eq!(Severity::from_ratio(1.7, &bands), Severity::High);
        assert_eq!(Severity::from_ratio(2.0, &bands), Severity::Critical);
    }

    #[test]
    fn explanation_ranks_features_by_distance_from_the_assigned_centroid() {
        let profile = ModelProfile {
            version: 3,
            feature_order: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            centroids: [
                ((2, "a".into()), 4.0),
                ((2, "b".into()), 1.5),
                ((2, "c".into()), 0.0),
                ((2, "d".into()), 7.0),
                ((1, "a".into()), 10.0),
            ]
            .into_iter()
            .collect(),
            stddevs: [
                ("a".into(), 2.0),
                ("b".into(), 0.1),
                ("c".into(), 1.0),
                ("d".into(), 0.0),
            ]
            .into_iter()
            .collect(),
        };
        let explained = profile.explain(&window(), 3);
        let names: Vec<&str> = explained.iter().map(|d| d.feature.as_str()).collect();
        // b is 5 sd below, a is 3 sd above; c is NULL and d is constant.
        assert_eq!(names, ["b", "a"]);
        assert!((explained[0].stddevs + 5.0).abs() < 1e-12);
        assert!((explained[1].stddevs - 3.0).abs() < 1e-12);
    }

    #[test]
    fn message_carries_what_a_responder_needs() {
        let origin = Origin {
            pipeline: "detect",
            target: "local",
            run_id: "run_1",
            model: "netlog_kmeans",
        };
        let deviation = Deviation {
            feature: "a".into(),
            value: 10.0,
            centroid: 4.0,
            stddevs: 3.0,
        };
        let alert = Alert::new(
            window(),
            2.5,
            &SeverityBands::default(),
            &[deviation],
            &origin,
        );
        assert_eq!(alert.severity, Severity::High);
        let body = &alert.body;
        assert_eq!(body["alert_id"], alert.alert_id.as_str());
        assert_eq!(body["subscriber"], "sub-1");
        assert_eq!(body["window_start"], "2026-01-01T10:00:00Z");
        assert_eq!(body["features"]["c"], Value::Null);
        assert_eq!(body["explanation"]["summary"], "a +3.0 sd");
        assert_eq!(body["model_version"], 3);
    }
}
