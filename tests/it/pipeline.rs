//! The whole pipeline on the embedded engine, as a new user runs it: `demo`, then questions
//! asked with `query`.

use crate::common::TestProject;

fn counts(project: &TestProject, sql: &str) -> Vec<i64> {
    let rows = project.query_csv(sql);
    rows[0]
        .split(',')
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("not a count: {v} in {rows:?}"))
        })
        .collect()
}

#[test]
fn demo_detects_injected_attacks_and_a_rerun_changes_nothing() {
    let project = TestProject::shipped();
    let out = project.run_ok(&["demo"]);
    assert!(out.contains("scored"), "{out}");
    assert!(
        out.contains(&project.warehouse().display().to_string()),
        "{out}"
    );

    let flagged = counts(
        &project,
        "SELECT COUNT(*) FROM inferenced.netlog_anomalies WHERE is_anomaly",
    );
    assert!(flagged[0] > 0, "no anomaly flagged");

    // Window-level quality of what alerts, against the generator's ground truth.
    let c = counts(
        &project,
        "SELECT COUNTIF(labels LIKE '%exfiltration%'), COUNTIF(labels LIKE '%exfiltration%' AND is_alert), \
                COUNTIF(labels LIKE '%port_scan%'), COUNTIF(labels LIKE '%port_scan%' AND is_alert), \
                COUNTIF(is_alert), COUNTIF(is_alert AND labels IS NOT NULL) \
         FROM inferenced.netlog_anomalies",
    );
    let (exfil, exfil_hit, scan, scan_hit, flagged, true_positives) =
        (c[0], c[1], c[2], c[3], c[4], c[5]);
    assert!(
        exfil >= 10 && scan >= 10,
        "too few injected windows to measure: {c:?}"
    );
    let recall = (exfil_hit + scan_hit) as f64 / (exfil + scan) as f64;
    let precision = true_positives as f64 / flagged as f64;
    assert!(
        recall >= 0.8,
        "exfiltration/port-scan recall {recall:.3} ({c:?})"
    );
    assert!(precision >= 0.8, "precision {precision:.3} ({c:?})");

    // Every layer is in the warehouse.
    let tables = project.query_csv(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables \
         WHERE table_schema IN ('raw', 'features', 'models', 'inferenced', 'ops') ORDER BY 1",
    );
    for expected in [
        "raw.netlog_events",
        "raw.netlog_rejects",
        "features.netlog_windows",
        "features.netlog_model_inputs",
        "models.__models",
        "inferenced.netlog_anomalies",
        "ops.runs",
        "ops.step_runs",
        "ops.model_registry",
        "ops.drift_metrics",
        "ops.drift_decisions",
    ] {
        assert!(
            tables.iter().any(|t| t == expected),
            "{expected} missing from {tables:?}"
        );
    }
    let models = project.query_csv("SELECT model_name FROM models.__models ORDER BY 1");
    assert_eq!(
        models,
        ["models.netlog_kmeans_refit", "models.netlog_kmeans_v1"],
        "one registered version, and the drift step's scratch refit"
    );
    let registry = project.query_csv("SELECT version, status, training_rows > 0, holdout_rows > 0, davies_bouldin_index > 0 FROM ops.model_registry");
    assert_eq!(registry, ["1,champion,true,true,true"]);

    // Rerun: same data, nothing new stored or scored.
    let before = counts(
        &project,
        "SELECT (SELECT COUNT(*) FROM raw.netlog_events), (SELECT COUNT(*) FROM raw.netlog_rejects), \
                (SELECT COUNT(*) FROM inferenced.netlog_anomalies)",
    );
    let out = project.run_ok(&["demo"]);
    assert!(out.contains("0 new events"), "{out}");
    let after = counts(
        &project,
        "SELECT (SELECT COUNT(*) FROM raw.netlog_events), (SELECT COUNT(*) FROM raw.netlog_rejects), \
                (SELECT COUNT(*) FROM inferenced.netlog_anomalies)",
    );
    assert_eq!(before, after);
    assert_eq!(
        before[1], 4,
        "the demo's four malformed lines are rejected once"
    );
}

/// Traffic shaped like a network: busy servers (hundreds of flows a minute, all day) and backup
/// hosts (a bulk upload every hour) beside light clients and one-minute attacks. Judged against
/// their own history, the busy servers stay quiet while the attacks alert; two hours hold two
/// uploads per backup host, too few windows for a baseline of their own, but each is the
/// other's precedent, so neither alerts.
#[test]
fn heavy_hosts_do_not_alert_where_attacks_do() {
    let project = TestProject::shipped();
    let start = (chrono::Utc::now() - chrono::Duration::hours(3)).to_rfc3339();
    let events = project.path().join("network.jsonl").display().to_string();
    let hosts = project.path().join("hosts.csv").display().to_string();
    project.run_ok(&[
        "generate",
        "--subscribers",
        "30",
        "--duration",
        "2h",
        "--busy-servers",
        "2",
        "--backup-hosts",
        "2",
        "--start",
        &start,
        "--out",
        &events,
        "--hosts-out",
        &hosts,
    ]);
    project.run_ok(&["ingest", &events]);
    project.run_ok(&["run", "train"]);
    project.run_ok(&["run", "detect"]);

    let c = counts(
        &project,
        "SELECT \
           COUNTIF(scored.labels IS NULL AND windows.number_of_records >= 100), \
           COUNTIF(scored.labels IS NULL AND windows.number_of_records >= 100 AND scored.is_anomaly), \
           COUNTIF(scored.labels IS NULL AND windows.number_of_records >= 100 AND scored.is_alert), \
           COUNTIF(scored.labels IN ('exfiltration', 'port_scan', 'ddos_fan_in')), \
           COUNTIF(scored.labels IN ('exfiltration', 'port_scan', 'ddos_fan_in') AND scored.is_alert), \
           COUNTIF(scored.is_alert), COUNTIF(scored.is_alert AND scored.labels IS NOT NULL) \
         FROM inferenced.netlog_anomalies AS scored \
         JOIN features.netlog_windows AS windows USING (subscriberId, dst_subnet, window_start)",
    );
    let [
        busy,
        busy_flagged,
        busy_alerted,
        attacks,
        attacks_alerted,
        alerts,
        true_alerts,
    ] = c[..]
    else {
        unreachable!()
    };
    assert!(busy >= 200, "the busy servers are there: {c:?}");
    assert!(
        busy_flagged > 0,
        "the model alone flags busy-server minutes: {c:?}"
    );
    assert_eq!(
        busy_alerted, 0,
        "busy servers are judged by their own history: {c:?}"
    );
    let recall = attacks_alerted as f64 / attacks as f64;
    let precision = true_alerts as f64 / alerts as f64;
    assert!(
        attacks >= 30 && recall >= 0.9,
        "attack windows alerted {recall:.2}: {c:?}"
    );
    assert!(precision >= 0.8, "alert precision {precision:.2}: {c:?}");

    let report = project.path().join("quality.json");
    let out = project.run_ok(&[
        "eval",
        "--hosts",
        &hosts,
        "--json",
        &report.display().to_string(),
    ]);
    assert!(out.contains("false alerts by host class:"), "{out}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let classes = report["false_alerts_by_class"].as_array().unwrap();
    for (class, hosts) in [("busy_server", 2), ("backup_host", 2)] {
        let entry = classes
            .iter()
            .find(|c| c["host_class"] == class)
            .unwrap_or_else(|| panic!("{class} missing: {classes:?}"));
        assert_eq!(entry["hosts"], hosts, "{entry}");
        assert_eq!(entry["false_alerts"], 0, "{class} hosts alert: {entry}");
    }
}

/// Real training data holds attacks. With one subscriber-minute in five hosting an attack, the
/// scans and floods are one training window in thirty, alike enough to become clusters of
/// their own (the model then flagged a third of them). Windows far outside their entity's history stay out of training, so the model
/// still flags them.
#[test]
fn an_attack_burst_in_the_training_data_is_still_flagged_by_the_model() {
    let project = TestProject::shipped();
    let start = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    let events = project.path().join("attacked.jsonl").display().to_string();
    project.run_ok(&[
        "generate",
        "--seed",
        "3",
        "--subscribers",
        "40",
        "--duration",
        "40m",
        "--anomaly-rate",
        "0.2",
        "--start",
        &start,
        "--out",
        &events,
    ]);
    project.run_ok(&["ingest", &events]);
    project.run_ok(&["run", "train"]);
    project.run_ok(&["run", "detect"]);
    let c = counts(
        &project,
        "SELECT COUNTIF(labels IN ('port_scan', 'ddos_fan_in')), \
                COUNTIF(labels IN ('port_scan', 'ddos_fan_in') AND is_anomaly), COUNT(*) \
         FROM inferenced.netlog_anomalies",
    );
    let (attacks, flagged, windows) = (c[0], c[1], c[2]);
    assert!(attacks * 40 > windows, "a burst: {c:?}");
    assert!(
        flagged as f64 >= 0.9 * attacks as f64,
        "the model flags the burst: {c:?}"
    );
}
