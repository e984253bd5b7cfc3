//! Batch ingest through the CLI: bad rows are kept with file, line, field and reason; a re-ingest
//! adds nothing; JSONL and CSV land the same events.

use crate::common::TestProject;

const GOOD_1: &str = r#"{"subscriberId":"100","srcIP":"10.0.0.1","dstIP":"93.184.216.34","srcPort":51000,"dstPort":443,"txBytes":1200,"rxBytes":5400,"tcpFlag":24,"startTime":"2026-01-01T00:00:00Z","endTime":"2026-01-01T00:00:02.5Z","protocolName":"tcp","protocolNumber":6}"#;
const GOOD_2: &str = r#"{"subscriberId":"101","srcIP":"10.0.0.2","dstIP":"2001:db8::1","srcPort":52000,"dstPort":53,"txBytes":80,"rxBytes":160,"startTime":1767225600,"endTime":1767225601000,"protocolName":"udp","protocolNumber":17,"geoCountry":"FR","latitude":48.85,"longitude":2.35}"#;

fn write(project: &TestProject, name: &str, text: &str) -> String {
    let path = project.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn bad_rows_are_rejected_with_file_line_field_and_reason_and_nothing_else_is_lost() {
    let project = TestProject::shipped();
    let lines = [
        GOOD_1.to_string(),
        GOOD_1.replace("\"srcPort\":51000", "\"srcPort\":70000"),
        String::new(),
        GOOD_2.to_string(),
        GOOD_1.replace("10.0.0.1", "10.0.0.256"),
        "{\"subscriberId\": ".to_string(),
        GOOD_1.replace("\"txBytes\":1200", "\"txBytes\":-1"),
    ];
    let file = write(&project, "events.jsonl", &lines.join("\n"));
    let out = project.run_ok(&["ingest", &file]);
    assert!(out.contains("2 new events"), "{out}");
    assert!(out.contains("4 rejected"), "{out}");

    let rejects = project
        .query_csv("SELECT source, line, field, reason FROM raw.netlog_rejects ORDER BY line");
    assert_eq!(rejects.len(), 4, "{rejects:?}");
    assert!(
        rejects[0].starts_with(&format!(
            "{file},2,srcPort,srcPort: 70000 is outside 0..=65535"
        )),
        "{rejects:?}"
    );
    assert!(
        rejects[1].starts_with(&format!("{file},5,srcIP,")),
        "{rejects:?}"
    );
    assert!(
        rejects[2].starts_with(&format!("{file},6,,malformed JSON")),
        "{rejects:?}"
    );
    assert!(
        rejects[3].starts_with(&format!("{file},7,txBytes,txBytes: -1 is outside")),
        "{rejects:?}"
    );
    let raw = project.query_csv("SELECT raw FROM raw.netlog_rejects WHERE line = 6");
    assert_eq!(
        raw,
        ["\"{\"\"subscriberId\"\": \""],
        "the raw text is kept for replay"
    );

    let events = project.query_csv(
        "SELECT subscriberId, dstIP, srcPort, txBytes, startTime, endTime, latitude FROM raw.netlog_events ORDER BY subscriberId",
    );
    assert_eq!(events.len(), 2);
    assert!(
        events[0].starts_with("100,93.184.216.34,51000,1200,2026-01-01T00:00:00"),
        "{events:?}"
    );
    assert!(
        events[1].starts_with("101,2001:db8::1,52000,80,2026-01-01T00:00:00"),
        "{events:?}"
    );
    assert!(
        events[1].contains("2026-01-01T00:00:01"),
        "epoch milliseconds: {events:?}"
    );

    let again = project.run_ok(&["ingest", &file]);
    assert!(again.contains("0 new events, 2 already stored"), "{again}");
    let totals = project.query_csv(
        "SELECT (SELECT COUNT(*) FROM raw.netlog_events), (SELECT COUNT(*) FROM raw.netlog_rejects)",
    );
    assert_eq!(totals, ["2,4"]);
}

#[test]
fn csv_and_jsonl_of_the_same_flows_are_the_same_events() {
    let project = TestProject::shipped();
    let jsonl = project.path().join("gen.jsonl").display().to_string();
    let csv = project.path().join("gen.csv").display().to_string();
    project.run_ok(&[
        "generate", "--seed", "3", "--events", "2000", "--out", &jsonl,
    ]);
    project.run_ok(&["generate", "--seed", "3", "--events", "2000", "--out", &csv]);
    let first = project.run_ok(&["ingest", &jsonl]);
    assert!(first.contains("2000 new events"), "{first}");
    let second = project.run_ok(&["ingest", &csv]);
    assert!(
        second.contains("0 new events, 2000 already stored"),
        "{second}"
    );
}

#[test]
fn a_csv_without_required_columns_is_refused_before_loading_anything() {
    let project = TestProject::shipped();
    let file = write(&project, "bad.csv", "subscriberId,srcIP\n1,10.0.0.1\n");
    let output = project.command(&["ingest", &file]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("lacks required column(s) dstIP, srcPort"),
        "{stderr}"
    );
}

#[test]
fn an_event_from_a_skewed_clock_is_quarantined_and_the_rest_of_the_file_is_stored() {
    let project = TestProject::shipped();
    let ahead = (chrono::Utc::now() + chrono::Duration::days(3)).format("%Y-%m-%dT%H:%M:%SZ");
    let skewed = GOOD_1
        .replace("2026-01-01T00:00:00Z", &ahead.to_string())
        .replace("2026-01-01T00:00:02.5Z", &ahead.to_string());
    let file = write(
        &project,
        "events.jsonl",
        &[GOOD_1, skewed.as_str(), GOOD_2].join("\n"),
    );
    let out = project.run_ok(&["ingest", &file]);
    assert!(out.contains("2 new events"), "{out}");
    assert!(out.contains("1 rejected"), "{out}");

    let rejects = project.query_csv("SELECT line, field, reason, raw FROM raw.netlog_rejects");
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert!(
        rejects[0].starts_with("2,startTime,\"startTime: "),
        "{rejects:?}"
    );
    assert!(
        rejects[0].contains("ahead of the clock here"),
        "{rejects:?}"
    );
    assert!(rejects[0].contains("max_clock_skew_seconds"), "{rejects:?}");
    assert!(
        rejects[0].contains(&ahead.to_string()),
        "the raw line is kept: {rejects:?}"
    );
    let newest = project.query_csv("SELECT MAX(startTime) FROM raw.netlog_events");
    assert!(newest[0].starts_with("2026-01-01T00:00:00"), "{newest:?}");
}
