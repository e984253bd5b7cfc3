//! `netsentinel eval` reports detection quality from labelled data, as text and JSON.

use serde_json::Value;

use crate::common::TestProject;

#[test]
fn eval_reports_recall_per_kind_precision_and_the_detectors() {
    let project = TestProject::shipped();
    project.run_ok(&["demo"]);
    let json_path = project.path().join("quality.json");
    let out = project.run_ok(&["eval", "--json", &json_path.display().to_string()]);
    assert!(out.contains("attack windows alerted:"), "{out}");
    assert!(out.contains("precision@10:"), "{out}");
    assert!(out.contains("detector netlog_beacons:"), "{out}");

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let kinds = report["kinds"].as_array().unwrap();
    for kind in ["exfiltration", "port_scan", "ddos_fan_in"] {
        let entry = kinds
            .iter()
            .find(|k| k["kind"] == kind)
            .unwrap_or_else(|| panic!("{kind} missing from {kinds:?}"));
        assert!(entry["windows"].as_u64().unwrap() > 0, "{entry}");
        assert!(entry["recall"].as_f64().unwrap() >= 0.9, "{entry}");
    }
    let alerted = report["alerted_windows"].as_u64().unwrap();
    let attacks_alerted = report["attack_windows_alerted"].as_u64().unwrap();
    let precision = report["alert_precision"].as_f64().unwrap();
    assert!(
        (precision - attacks_alerted as f64 / alerted as f64).abs() < 1e-12,
        "{report}"
    );
    assert!(precision >= 0.8, "{report}");
    assert_eq!(report["precision_at"][0]["k"], 10);
    assert!(
        report["alerts_per_hour"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    let detectors: Vec<&str> = report["detectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["detector"].as_str().unwrap())
        .collect();
    assert_eq!(detectors, ["netlog_beacons", "netlog_slow_scans"]);
}

#[test]
fn eval_without_labels_says_what_it_needs() {
    let project = TestProject::shipped();
    let start = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let events = project.path().join("events.jsonl").display().to_string();
    project.run_ok(&[
        "generate",
        "--subscribers",
        "10",
        "--duration",
        "20m",
        "--anomaly-rate",
        "0",
        "--start",
        &start,
        "--out",
        &events,
    ]);
    project.run_ok(&["ingest", &events]);
    project.run_ok(&["run", "train"]);
    project.run_ok(&["run", "detect"]);
    let output = project.command(&["eval"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no labelled window"), "{stderr}");
}
