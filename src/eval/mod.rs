//! Detection quality on labelled data, for an analyst tuning the SQL: of the windows the source
//! labels as attacks, how many alert; of the alerts, how many are attacks; how the alerts rank;
//! which hosts and host classes raise the false ones; and what each detector table found.
//! Labels are the ones ingest keeps (`label` of generated events, CICFlowMeter's `Label`
//! column), carried into the windows' `labels`, and those of a labels file ([`truth`]). It
//! reads what the pipelines stored and changes nothing.

pub mod truth;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::alerts::{AlertsError, outbox, step_relation};
use crate::ingest::schema::events_table;
use crate::project::Project;
use crate::vars::{VarValue, Vars};
use netsentinel_core::relation::Identifier;
use netsentinel_core::{Cell, EngineError, ResultSet, Warehouse};
use truth::{Truth, TruthError};

/// The ranks precision is reported at.
const PRECISION_AT: [usize; 3] = [10, 50, 100];
/// Hosts listed as raising the most false alerts.
const NOISIEST_HOSTS: usize = 5;
/// The var that sets the prefix length of a window's destination subnet: a labelled
/// destination address falls in the windows of its subnet.
const SUBNET_PREFIX_VAR: &str = "dst_subnet_prefix";

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(
        "pipelines.yaml has no `alerts:` section: eval measures what the alerts step alerts on"
    )]
    NoAlerts,
    #[error(transparent)]
    Alerts(#[from] AlertsError),
    #[error(
        "{table} holds no labelled window: eval needs labelled data (generated events, a source with a label column, or --labels FILE)"
    )]
    NoLabels { table: String },
    #[error(transparent)]
    Truth(#[from] TruthError),
    #[error(
        "eval needs the int var `{SUBNET_PREFIX_VAR}` (the windows' destination subnet prefix) to place a labelled destination"
    )]
    NoSubnetPrefix,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// The scored table and the column that makes a window an alert.
    pub scored: String,
    pub alert_on: String,
    /// Per label: windows carrying it and how many alerted.
    pub kinds: Vec<KindRecall>,
    pub windows: usize,
    pub attack_windows: usize,
    pub attack_windows_alerted: usize,
    pub alerted_windows: usize,
    /// Alerted windows that carry a label, over all alerted windows.
    pub alert_precision: Option<f64>,
    /// Alerted windows ranked by normalized distance: the share of attacks in the top k.
    pub precision_at: Vec<PrecisionAt>,
    /// Alerts the outbox holds (sent, not suppressed or held) per hour of scored event time.
    pub alerts_per_hour: Option<f64>,
    /// The hosts with the most alerted windows that carry no label.
    pub false_alerts_by_host: Vec<HostFalseAlerts>,
    /// Per host class of the host-classes file (`unlisted` for the hosts it does not name).
    pub false_alerts_by_class: Vec<ClassFalseAlerts>,
    pub detectors: Vec<DetectorQuality>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindRecall {
    pub kind: String,
    pub windows: usize,
    pub alerted: usize,
    pub recall: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrecisionAt {
    pub k: usize,
    /// Fewer than k when fewer windows alerted.
    pub ranked: usize,
    pub precision: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostFalseAlerts {
    pub subscriber: String,
    pub false_alerts: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassFalseAlerts {
    pub host_class: String,
    /// Hosts of the class with scored windows.
    pub hosts: usize,
    pub false_alerts: usize,
}

/// A detector table's findings against the labels of the pairs' events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectorQuality {
    pub detector: String,
    pub findings: usize,
    /// Findings whose pair has labelled events.
    pub true_findings: usize,
    /// Per label of the pairs the detector judged: pairs carrying it and how many it found.
    pub labelled_pairs: Vec<PairRecall>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairRecall {
    pub label: String,
    pub pairs: usize,
    pub found: usize,
    pub recall: f64,
}

/// Measures the project's stored results on `warehouse`, with `truth` beside the labels the
/// events carry.
pub fn evaluate(
    project: &Project,
    warehouse: &mut dyn Warehouse,
    vars: &Vars,
    truth: &Truth,
) -> Result<Evaluation, EvalError> {
    let alerts = project.config.alerts.as_ref().ok_or(EvalError::NoAlerts)?;
    let table =
        warehouse
            .naming()
            .qualify(step_relation(project, "from", alerts.from.as_str(), false)?);
    let file_labels = file_labels(vars, truth)?;
    let judged = judged_windows(&table, &file_labels);
    let flag = &alerts.alert_on;
    let totals = warehouse.query(&format!(
        "{judged} SELECT COUNT(*), COUNTIF(labels IS NOT NULL), COUNTIF(labels IS NOT NULL AND {flag}), \
         COUNTIF({flag}), MIN(window_start), MAX(window_end) FROM judged"
    ))?;
    let row = totals.rows.first().cloned().unwrap_or_default();
    let count = |i: usize| count_at(&row, i);
    let (windows, attack_windows, attack_windows_alerted, alerted_windows) =
        (count(0), count(1), count(2), count(3));
    if attack_windows == 0 {
        return Err(EvalError::NoLabels { table });
    }
    let span_hours = match (row.get(4), row.get(5)) {
        (Some(Cell::Timestamp(from)), Some(Cell::Timestamp(to))) => hours_between(*from, *to),
        _ => None,
    };
    let kinds = label_counts(&warehouse.query(&format!(
        "{judged} SELECT labels, COUNT(*), COUNTIF({flag}) FROM judged WHERE labels IS NOT NULL \
         GROUP BY labels ORDER BY labels"
    ))?)
    .into_iter()
    .map(|(kind, windows, alerted)| KindRecall {
        recall: ratio(alerted, windows).unwrap_or(0.0),
        kind,
        windows,
        alerted,
    })
    .collect();
    let precision_at = precision_at(warehouse, &judged, flag)?;
    let false_alerts_by_host = warehouse
        .query(&format!(
            "{judged} SELECT subscriberId, COUNT(*) FROM judged WHERE {flag} AND labels IS NULL \
             GROUP BY subscriberId ORDER BY COUNT(*) DESC, subscriberId LIMIT {NOISIEST_HOSTS}"
        ))?
        .rows
        .iter()
        .filter_map(|row| match row.as_slice() {
            [Cell::Text(subscriber), count] => Some(HostFalseAlerts {
                subscriber: subscriber.clone(),
                false_alerts: count.as_i64()? as usize,
            }),
            _ => None,
        })
        .collect();
    let false_alerts_by_class = if truth.host_classes.is_empty() {
        Vec::new()
    } else {
        false_alerts_by_class(warehouse, &judged, flag, truth)?
    };
    let alerts_sent = if warehouse.relation_exists(&outbox::outbox())? {
        warehouse
            .query(&format!(
                "SELECT COUNT(*) FROM {} WHERE status = 'active' AND kind <> 'summary'",
                warehouse.naming().qualify(&outbox::outbox())
            ))?
            .rows
            .first()
            .and_then(|row| row.first()?.as_i64())
    } else {
        None
    };
    let detectors = alerts
        .findings
        .iter()
        .map(|name| detector_quality(project, warehouse, name, &file_labels))
        .collect::<Result<_, _>>()?;
    Ok(Evaluation {
        scored: table,
        alert_on: flag.to_string(),
        kinds,
        windows,
        attack_windows,
        attack_windows_alerted,
        alerted_windows,
        alert_precision: ratio(attack_windows_alerted, alerted_windows),
        precision_at,
        alerts_per_hour: alerts_sent
            .zip(span_hours)
            .map(|(sent, hours)| sent as f64 / hours),
        false_alerts_by_host,
        false_alerts_by_class,
        detectors,
    })
}

/// The labels file as a relation; a labelled destination gets the subnet of the windows its
/// flows fall in, which needs the windows' subnet prefix.
fn file_labels(vars: &Vars, truth: &Truth) -> Result<String, EvalError> {
    let places_destinations = truth
        .labels
        .iter()
        .any(|row| row.dst_subnet.is_none() && row.destination.is_some());
    let prefix = match vars.get(SUBNET_PREFIX_VAR) {
        Some(VarValue::Int(prefix)) => *prefix,
        _ if places_destinations => return Err(EvalError::NoSubnetPrefix),
        _ => 0,
    };
    Ok(truth.labels_relation(|address| {
        format!("NET.IP_TO_STRING(NET.IP_TRUNC(NET.IP_FROM_STRING({address}), {prefix}))")
    }))
}

/// `WITH … judged AS (…)`: the scored windows, each with its labels or else those the labels
/// file gives it.
fn judged_windows(table: &str, file_labels: &str) -> String {
    format!(
        "WITH file_labels AS (\n{file_labels}\n),\n\
         window_labels AS (\n\
           SELECT w.subscriberId, w.dst_subnet, w.window_start, MIN(l.label) AS label\n\
           FROM {table} AS w JOIN file_labels AS l ON l.subscriberId = w.subscriberId\n\
           WHERE (l.dst_subnet IS NULL OR l.dst_subnet = w.dst_subnet)\n\
             AND (l.window_start IS NULL OR l.window_start = w.window_start)\n\
             AND (l.starts IS NULL OR w.window_end > l.starts)\n\
             AND (l.ends IS NULL OR w.window_start < l.ends)\n\
           GROUP BY w.subscriberId, w.dst_subnet, w.window_start\n\
         ),\n\
         judged AS (\n\
           SELECT w.* EXCEPT (labels), COALESCE(w.labels, window_labels.label) AS labels\n\
           FROM {table} AS w LEFT JOIN window_labels USING (subscriberId, dst_subnet, window_start)\n\
         )\n"
    )
}

fn false_alerts_by_class(
    warehouse: &mut dyn Warehouse,
    judged: &str,
    flag: &Identifier,
    truth: &Truth,
) -> Result<Vec<ClassFalseAlerts>, EngineError> {
    let hosts = truth.host_classes_relation();
    Ok(warehouse
        .query(&format!(
            "{judged}, hosts AS (\n{hosts}\n)\n\
             SELECT COALESCE(hosts.host_class, 'unlisted') AS host_class, COUNT(DISTINCT judged.subscriberId), \
             COUNTIF(judged.{flag} AND judged.labels IS NULL)\n\
             FROM judged LEFT JOIN hosts USING (subscriberId) GROUP BY host_class ORDER BY host_class"
        ))?
        .rows
        .iter()
        .filter_map(|row| match row.as_slice() {
            [Cell::Text(class), hosts, false_alerts] => Some(ClassFalseAlerts {
                host_class: class.clone(),
                hosts: hosts.as_i64()? as usize,
                false_alerts: false_alerts.as_i64()? as usize,
            }),
            _ => None,
        })
        .collect())
}

fn count_at(row: &[Cell], index: usize) -> usize {
    row.get(index).and_then(Cell::as_i64).unwrap_or(0) as usize
}

fn hours_between(from: DateTime<Utc>, to: DateTime<Utc>) -> Option<f64> {
    let hours = (to - from).num_milliseconds() as f64 / 3_600_000.0;
    (hours > 0.0).then_some(hours)
}

fn ratio(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Rows of (label, total, found).
fn label_counts(result: &ResultSet) -> Vec<(String, usize, usize)> {
    result
        .rows
        .iter()
        .filter_map(|row| match row.as_slice() {
            [Cell::Text(label), total, found] => Some((
                label.clone(),
                total.as_i64()? as usize,
                found.as_i64()? as usize,
            )),
            _ => None,
        })
        .collect()
}

fn precision_at(
    warehouse: &mut dyn Warehouse,
    judged: &str,
    flag: &Identifier,
) -> Result<Vec<PrecisionAt>, EngineError> {
    let largest = PRECISION_AT[PRECISION_AT.len() - 1];
    let ranked = warehouse.query(&format!(
        "{judged} SELECT labels IS NOT NULL FROM judged WHERE {flag} \
         ORDER BY normalized_distance DESC, subscriberId, window_start LIMIT {largest}"
    ))?;
    let is_attack: Vec<bool> = ranked
        .rows
        .iter()
        .map(|row| matches!(row.first(), Some(Cell::Bool(true))))
        .collect();
    Ok(PRECISION_AT
        .iter()
        .filter_map(|&k| {
            let top = &is_attack[..k.min(is_attack.len())];
            let hits = top.iter().filter(|&&attack| attack).count();
            ratio(hits, top.len()).map(|precision| PrecisionAt {
                k,
                ranked: top.len(),
                precision,
            })
        })
        .collect())
}

/// A detector's findings and the labelled pairs it judged, a pair's label being the labels of
/// its events other than normal/benign, or else the one the labels file gives it (a row naming
/// the destination, or the whole subscriber).
fn detector_quality(
    project: &Project,
    warehouse: &mut dyn Warehouse,
    name: &Identifier,
    file_labels: &str,
) -> Result<DetectorQuality, EvalError> {
    let table =
        warehouse
            .naming()
            .qualify(step_relation(project, "findings", name.as_str(), false)?);
    let events = warehouse.naming().qualify(&events_table());
    let labelled = format!(
        "WITH file_labels AS (\n{file_labels}\n),\n\
         pair_labels AS (\n\
           SELECT subscriberId, dstIP AS destination, MIN(label) AS label FROM {events}\n\
           WHERE LOWER(label) NOT IN ('normal', 'benign') GROUP BY subscriberId, dstIP\n\
         ),\n\
         file_pair_labels AS (\n\
           SELECT found.subscriberId, found.destination, MIN(l.label) AS label\n\
           FROM {table} AS found JOIN file_labels AS l ON l.subscriberId = found.subscriberId\n\
           WHERE l.window_start IS NULL\n\
             AND (l.destination = found.destination OR (l.destination IS NULL AND l.dst_subnet IS NULL))\n\
             AND (l.starts IS NULL OR found.last_seen >= l.starts)\n\
             AND (l.ends IS NULL OR found.first_seen < l.ends)\n\
           GROUP BY found.subscriberId, found.destination\n\
         )\n\
         SELECT found.is_finding, COALESCE(pair_labels.label, file_pair_labels.label) AS label\n\
         FROM {table} AS found\n\
         LEFT JOIN pair_labels USING (subscriberId, destination)\n\
         LEFT JOIN file_pair_labels USING (subscriberId, destination)"
    );
    let totals = warehouse.query(&format!(
        "SELECT COUNTIF(is_finding), COUNTIF(is_finding AND label IS NOT NULL) FROM ({labelled})"
    ))?;
    let row = totals.rows.first().cloned().unwrap_or_default();
    let labelled_pairs = label_counts(&warehouse.query(&format!(
        "SELECT label, COUNT(*), COUNTIF(is_finding) FROM ({labelled}) WHERE label IS NOT NULL \
         GROUP BY label ORDER BY label"
    ))?)
    .into_iter()
    .map(|(label, pairs, found)| PairRecall {
        recall: ratio(found, pairs).unwrap_or(0.0),
        label,
        pairs,
        found,
    })
    .collect();
    Ok(DetectorQuality {
        detector: name.to_string(),
        findings: count_at(&row, 0),
        true_findings: count_at(&row, 1),
        labelled_pairs,
    })
}

impl Evaluation {
    /// The report an analyst reads.
    pub fn lines(&self) -> Vec<String> {
        let percent = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{:.1} %", 100.0 * v));
        let mut lines = vec![format!(
            "{} windows in {}, {} labelled as attacks; alerts on `{}`",
            self.windows, self.scored, self.attack_windows, self.alert_on
        )];
        for kind in &self.kinds {
            lines.push(format!(
                "  {:<24} {:>6} windows  {:>6} alerted  recall {}",
                kind.kind,
                kind.windows,
                kind.alerted,
                percent(Some(kind.recall))
            ));
        }
        lines.push(format!(
            "attack windows alerted: {} of {} ({})",
            self.attack_windows_alerted,
            self.attack_windows,
            percent(ratio(self.attack_windows_alerted, self.attack_windows))
        ));
        lines.push(format!(
            "alert precision: {} ({} alerted windows)",
            percent(self.alert_precision),
            self.alerted_windows
        ));
        for p in &self.precision_at {
            lines.push(format!(
                "precision@{}: {} (of {} ranked by normalized distance)",
                p.k,
                percent(Some(p.precision)),
                p.ranked
            ));
        }
        lines.push(match self.alerts_per_hour {
            Some(rate) => format!("alerts sent per hour of traffic: {rate:.1}"),
            None => "alerts sent per hour of traffic: n/a (no alerts step has run)".into(),
        });
        if !self.false_alerts_by_host.is_empty() {
            let hosts: Vec<String> = self
                .false_alerts_by_host
                .iter()
                .map(|h| format!("{} ({})", h.subscriber, h.false_alerts))
                .collect();
            lines.push(format!("false alerts by host: {}", hosts.join(", ")));
        }
        if !self.false_alerts_by_class.is_empty() {
            let classes: Vec<String> = self
                .false_alerts_by_class
                .iter()
                .map(|c| format!("{} {} (of {} hosts)", c.host_class, c.false_alerts, c.hosts))
                .collect();
            lines.push(format!(
                "false alerts by host class: {}",
                classes.join(", ")
            ));
        }
        for detector in &self.detectors {
            lines.push(format!(
                "detector {}: {} findings, {} on labelled pairs",
                detector.detector, detector.findings, detector.true_findings
            ));
            for pair in &detector.labelled_pairs {
                lines.push(format!(
                    "  {:<24} {:>6} pairs    {:>6} found    recall {}",
                    pair.label,
                    pair.pairs,
                    pair.found,
                    percent(Some(pair.recall))
                ));
            }
        }
        lines
    }
}
