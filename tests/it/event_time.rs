//! Incremental steps find their work by what was ingested, not by event time: a late batch of
//! any age is featured and scored, and a window that gains events is re-scored without a second
//! alert. An event from a skewed clock (dated years ahead) in that batch is quarantined and
//! blinds nothing.

use chrono::{DateTime, Duration, SubsecRound, Utc};

use crate::common::TestProject;

fn generate(project: &TestProject, file: &str, seed: &str, start: DateTime<Utc>) -> String {
    let path = project.path().join(file).display().to_string();
    let start = start.to_rfc3339();
    project.run_ok(&[
        "generate",
        "--seed",
        seed,
        "--subscribers",
        "30",
        "--duration",
        "30m",
        "--start",
        &start,
        "--out",
        &path,
    ]);
    path
}

fn count(project: &TestProject, sql: &str) -> i64 {
    let rows = project.query_csv(sql);
    rows[0]
        .parse()
        .unwrap_or_else(|_| panic!("not a count: {rows:?}"))
}

fn windows_between(
    project: &TestProject,
    table: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> i64 {
    count(
        project,
        &format!(
            "SELECT COUNT(*) FROM {table} WHERE window_start >= TIMESTAMP '{}' AND window_start < TIMESTAMP '{}'",
            from.format("%Y-%m-%d %H:%M:%S"),
            to.format("%Y-%m-%d %H:%M:%S")
        ),
    )
}

#[test]
fn a_late_batch_is_scored_and_a_window_that_grows_is_rescored_without_a_second_alert() {
    let project = TestProject::shipped();
    let now = Utc::now().trunc_subsecs(0);
    let recent_start = now - Duration::hours(1);
    let late_start = now - Duration::hours(3);
    let recent = generate(&project, "recent.jsonl", "1", recent_start);
    let late = generate(&project, "late.jsonl", "2", late_start);

    project.run_ok(&["ingest", &recent]);
    project.run_ok(&["run", "train"]);
    project.run_ok(&["run", "detect"]);
    let scored_recent = windows_between(&project, "inferenced.netlog_anomalies", recent_start, now);
    assert!(scored_recent > 500, "{scored_recent} recent windows scored");

    // A delayed export of traffic two hours older than anything scored, with one flow from an
    // exporter whose clock says 2031.
    let mut late_text = std::fs::read_to_string(&late).unwrap();
    late_text.push_str(
        r#"{"subscriberId":"skewed","srcIP":"10.9.9.8","dstIP":"203.0.113.9","srcPort":40400,"dstPort":443,"txBytes":10,"rxBytes":10,"tcpFlag":24,"startTime":"2031-06-01T00:00:00Z","endTime":"2031-06-01T00:00:01Z","protocolName":"tcp"}"#,
    );
    late_text.push('\n');
    std::fs::write(&late, late_text).unwrap();
    project.run_ok(&["ingest", &late]);
    let detect_started = std::time::Instant::now();
    project.run_ok(&["run", "detect"]);
    let late_scored_in = detect_started.elapsed();
    assert_eq!(
        count(
            &project,
            "SELECT COUNT(*) FROM raw.netlog_rejects WHERE raw LIKE '%2031-06-01%' AND reason LIKE '%ahead of the clock%'"
        ),
        1,
        "the skewed flow is quarantined"
    );
    assert_eq!(
        count(
            &project,
            "SELECT COUNT(*) FROM raw.netlog_events WHERE startTime > CURRENT_TIMESTAMP()"
        ),
        0
    );
    let late_end = late_start + Duration::minutes(30);
    let featured = windows_between(&project, "features.netlog_windows", late_start, late_end);
    let scored_late = windows_between(
        &project,
        "inferenced.netlog_anomalies",
        late_start,
        late_end,
    );
    assert!(featured > 500, "{featured} late windows featured");
    assert_eq!(scored_late, featured, "every late window is scored");
    assert_eq!(
        windows_between(&project, "inferenced.netlog_anomalies", recent_start, now),
        scored_recent,
        "the recent windows are scored once each"
    );

    // One more flow lands in a window that already alerted.
    let alerted = project.query_csv(
        "SELECT subscriber, subnet, UNIX_SECONDS(window_start) FROM ops.alert_outbox \
         WHERE kind = 'anomaly' ORDER BY window_start LIMIT 1",
    );
    let fields: Vec<&str> = alerted[0].split(',').collect();
    let (subscriber, subnet, window_start) = (fields[0], fields[1], fields[2]);
    let window_start = DateTime::from_timestamp(window_start.parse().unwrap(), 0).unwrap();
    let at = window_start.format("%Y-%m-%d %H:%M:%S");
    let key = |alias: &str| {
        format!(
            "{alias}subscriberId = '{subscriber}' AND {alias}dst_subnet = '{subnet}' \
             AND {alias}window_start = TIMESTAMP '{at}'"
        )
    };
    let records = || {
        count(
            &project,
            &format!(
                "SELECT number_of_records FROM features.netlog_windows WHERE {}",
                key("")
            ),
        )
    };
    let records_before = records();
    let destination = subnet.replacen(".0", ".1", 1);
    let start = window_start + Duration::seconds(30);
    let end = start + Duration::seconds(1);
    let straggler = format!(
        r#"{{"subscriberId":"{subscriber}","srcIP":"10.9.9.9","dstIP":"{destination}","srcPort":40404,"dstPort":443,"txBytes":10,"rxBytes":10,"tcpFlag":24,"startTime":"{}","endTime":"{}","protocolName":"tcp"}}"#,
        start.to_rfc3339(),
        end.to_rfc3339()
    );
    project.write("straggler.jsonl", &straggler);
    let straggler_path = project.path().join("straggler.jsonl").display().to_string();
    project.run_ok(&["ingest", &straggler_path]);
    project.run_ok(&["run", "detect"]);

    assert_eq!(records(), records_before + 1, "the window gained the flow");
    let rescored = count(
        &project,
        &format!(
            "SELECT COUNT(*) FROM inferenced.netlog_anomalies AS scored JOIN features.netlog_windows AS featured \
             USING (subscriberId, dst_subnet, window_start) \
             WHERE {} AND scored.ingested_through = featured.ingested_through",
            key("scored.")
        ),
    );
    assert_eq!(rescored, 1, "the grown window is scored as it stands now");
    let alerts = count(
        &project,
        &format!(
            "SELECT COUNT(*) FROM ops.alert_outbox WHERE subscriber = '{subscriber}' AND subnet = '{subnet}' \
             AND window_start = TIMESTAMP '{at}'"
        ),
    );
    assert_eq!(alerts, 1, "re-scoring does not alert the window again");
    eprintln!(
        "late batch: {featured} windows two hours late, all scored by the next detect run ({:.1} s), \
         the skewed flow quarantined; the grown window re-scored, 1 alert",
        late_scored_in.as_secs_f64()
    );
}
