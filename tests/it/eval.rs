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
    assert_eq!(
        detectors,
        [
            "netlog_beacons",
            "netlog_slow_scans",
            "netlog_long_connections"
        ]
    );
}

/// Twenty minutes of ten subscribers' normal traffic, trained on and scored: no event carries
/// an attack label.
fn scored_traffic_without_attacks() -> TestProject {
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
    project
}

#[test]
fn eval_without_labels_says_what_it_needs() {
    let project = scored_traffic_without_attacks();
    let output = project.command(&["eval"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no labelled window"), "{stderr}");
}

/// Traffic whose events carry no attack label, judged with a labels file: a window row labels
/// that window, a destination row the pair (for the detectors) and the windows of its subnet.
#[test]
fn eval_takes_labels_from_a_file() {
    let project = scored_traffic_without_attacks();

    let window = project.query_csv(
        "SELECT subscriberId, dst_subnet, CAST(window_start AS STRING) \
         FROM inferenced.netlog_anomalies ORDER BY subscriberId, window_start LIMIT 1",
    );
    let drilled = window[0].split(',').next().unwrap().to_string();
    let pair = project.query_csv(&format!(
        "SELECT subscriberId, destination FROM inferenced.netlog_beacons \
         WHERE subscriberId <> '{drilled}' ORDER BY connections DESC, subscriberId, destination LIMIT 1"
    ));
    let (subscriber, destination) = pair[0].split_once(',').unwrap();
    let red_team_windows = project.query_csv(&format!(
        "SELECT COUNT(*) FROM inferenced.netlog_anomalies WHERE subscriberId = '{subscriber}' \
         AND dst_subnet = NET.IP_TO_STRING(NET.IP_TRUNC(NET.IP_FROM_STRING('{destination}'), 22))"
    ));
    let labels = project.path().join("labels.csv");
    std::fs::write(
        &labels,
        format!(
            "subscriberId,dst_subnet,window_start,destination,label\n{},,drill\n{subscriber},,,{destination},red_team\n",
            window[0]
        ),
    )
    .unwrap();
    let json_path = project.path().join("quality.json");
    project.run_ok(&[
        "eval",
        "--labels",
        &labels.display().to_string(),
        "--json",
        &json_path.display().to_string(),
    ]);
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let windows_of = |kind: &str| {
        report["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kind"] == kind)
            .map(|k| k["windows"].to_string())
    };
    assert_eq!(windows_of("drill").as_deref(), Some("1"), "{report}");
    assert_eq!(
        windows_of("red_team"),
        Some(red_team_windows[0].clone()),
        "{report}"
    );
    let beacons = report["detectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["detector"] == "netlog_beacons")
        .unwrap();
    assert_eq!(
        beacons["labelled_pairs"][0]["label"], "red_team",
        "{beacons}"
    );
    assert_eq!(beacons["labelled_pairs"][0]["pairs"], 1, "{beacons}");

    std::fs::write(
        &labels,
        "subscriberId,destination,label\ns1,not-an-address,x\n",
    )
    .unwrap();
    let output = project
        .command(&["eval", "--labels", &labels.display().to_string()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("labels.csv:2: field `destination`"),
        "{stderr}"
    );
}
