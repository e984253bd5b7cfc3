//! The bigquery target against the BigQuery emulator (bqemulator on 127.0.0.1): datasets and
//! partitioned tables are created, a generated file is ingested (rows BigQuery refuses become
//! rejects), the feature steps run, incrementally too, and give the same rows as on the local
//! engine; a transient `backendError` is retried, a permanent error surfaces BigQuery's message,
//! and `plan` prints byte estimates.
//!
//! The emulator does not train models, so the ML steps' BigQuery SQL is checked by
//! tests/golden.rs instead.

use std::process::Output;

use crate::common::TestProject;
use crate::common::bqemu::{BqEmulator, FaultProxy};

pub(crate) const PROJECT: &str = "ns-test";

/// `netsentinel --target bigquery ARGS…` against an emulator (or a proxy in front of it).
pub(crate) fn on_bigquery(project: &TestProject, host: &str, args: &[&str]) -> Output {
    let mut full = vec!["--target", "bigquery"];
    full.extend_from_slice(args);
    project
        .command(&full)
        .env("GCP_PROJECT", PROJECT)
        .env("BIGQUERY_EMULATOR_HOST", host)
        .output()
        .expect("run netsentinel")
}

pub(crate) fn ok(project: &TestProject, host: &str, args: &[&str]) -> String {
    let output = on_bigquery(project, host, args);
    crate::common::assert_success(&output, args);
    String::from_utf8(output.stdout).unwrap()
}

/// One CSV field as written (quotes removed, doubled quotes undone).
fn csv_field(field: &str) -> String {
    field
        .strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .map_or_else(|| field.to_string(), |f| f.replace("\"\"", "\""))
}

pub(crate) fn csv_rows(out: &str) -> Vec<String> {
    out.lines().skip(1).map(str::to_string).collect()
}

/// A generated netlog file with two malformed lines appended.
pub(crate) fn netlog_file(project: &TestProject) -> String {
    let path = project.path().join("netlog.jsonl");
    let path_text = path.display().to_string();
    project.run_ok(&[
        "generate",
        "--events",
        "1500",
        "--subscribers",
        "12",
        "--seed",
        "7",
        "--out",
        &path_text,
    ]);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"subscriberId\": \"broken\"}\nnot json at all\n");
    std::fs::write(&path, text).unwrap();
    path_text
}

const WINDOWS: &str = "SELECT subscriberId, dst_net, window_start, number_of_records, number_of_unique_ips, \
     number_of_unique_ports, number_of_unique_dst_ports, min_tx_bytes, max_tx_bytes, ROUND(avg_tx_bytes, 6), \
     min_rx_bytes, max_rx_bytes, ROUND(avg_rx_bytes, 6), ROUND(min_duration, 6), ROUND(max_duration, 6), \
     ROUND(avg_duration, 6), ROUND(syn_only_share, 9), ROUND(udp_share, 9), number_of_countries \
     FROM {windows} ORDER BY subscriberId, dst_net, window_start";
const INPUTS: &str = "SELECT subscriberId, dst_net, window_start, ROUND(log_records, 9), ROUND(log_max_tx_bytes, 9), \
     ROUND(log_avg_duration, 9) FROM {inputs} ORDER BY subscriberId, dst_net, window_start";

#[test]
fn feature_steps_on_the_emulator_give_the_same_rows_as_local() {
    let Some(emulator) = BqEmulator::start(PROJECT) else {
        return;
    };
    let host = emulator.host();
    let project = TestProject::fixture("bq_features");
    let file = netlog_file(&project);

    // Ingest twice: the second adds nothing, on both engines.
    let local_ingest = project.run_ok(&["ingest", &file]);
    let bq_ingest = ok(&project, &host, &["ingest", &file]);
    assert!(bq_ingest.contains("1500 new events"), "{bq_ingest}");
    assert_eq!(local_ingest, bq_ingest);
    let again = ok(&project, &host, &["ingest", &file]);
    assert!(
        again.contains("0 new events, 1500 already stored"),
        "{again}"
    );
    let rejects = csv_rows(&ok(
        &project,
        &host,
        &[
            "query",
            "--format",
            "csv",
            "SELECT line FROM `ns-test.bqf_raw.netlog_rejects` ORDER BY line",
        ],
    ));
    assert_eq!(rejects, ["1501", "1502"], "malformed lines are rejects");

    // Run the features pipeline twice on both (the second run is incremental, with nothing
    // new), then ingest later traffic that overlaps the newest window and run once more.
    for _ in 0..2 {
        project.run_ok(&["run", "features"]);
        ok(&project, &host, &["run", "features"]);
    }
    let later = later_netlog_file(&project);
    project.run_ok(&["ingest", &later]);
    let bq_later = ok(&project, &host, &["ingest", &later]);
    assert!(bq_later.contains("600 new events"), "{bq_later}");
    project.run_ok(&["run", "features"]);
    ok(&project, &host, &["run", "features"]);
    for (template, relation) in [(WINDOWS, "windows"), (INPUTS, "window_inputs")] {
        let local_sql = template
            .replace("{windows}", "features.windows")
            .replace("{inputs}", "features.window_inputs");
        let bq_sql = template
            .replace("{windows}", "`ns-test.bqf_features.windows`")
            .replace("{inputs}", "`ns-test.bqf_features.window_inputs`");
        let local = project.query_csv(&local_sql);
        let bigquery = csv_rows(&ok(&project, &host, &["query", "--format", "csv", &bq_sql]));
        assert!(local.len() > 50, "{relation}: only {} rows", local.len());
        let only_local: Vec<&String> = local.iter().filter(|r| !bigquery.contains(r)).collect();
        let only_bigquery: Vec<&String> = bigquery.iter().filter(|r| !local.contains(r)).collect();
        assert!(
            only_local.is_empty() && only_bigquery.is_empty() && local.len() == bigquery.len(),
            "{relation} differs: {} rows locally, {} on BigQuery\nonly local: {only_local:#?}\nonly BigQuery: {only_bigquery:#?}",
            local.len(),
            bigquery.len()
        );
    }

    // The features table is built partitioned by window date and clustered as config() says
    // (bqemulator does not keep a CTAS's layout, so the job's SQL shows it); the raw events
    // table, created through the API, is partitioned by event date.
    let jobs = rest_get(&emulator, "jobs?maxResults=1000");
    let builds_windows = jobs["jobs"].as_array().expect("job list").iter().any(|j| {
        let sql = j["configuration"]["query"]["query"]
            .as_str()
            .unwrap_or_default();
        sql.starts_with("CREATE OR REPLACE TABLE `ns-test.bqf_features.windows`")
            && sql.contains("PARTITION BY DATE(window_start)")
            && sql.contains("CLUSTER BY subscriberId, dst_net")
    });
    assert!(
        builds_windows,
        "no partitioned, clustered build of windows: {jobs}"
    );
    // Incremental runs compute their bounds into script variables first, so BigQuery prunes
    // the raw partitions the new rows come from and the feature partitions they replace.
    let incremental_runs = jobs["jobs"]
        .as_array()
        .expect("job list")
        .iter()
        .filter_map(|j| j["configuration"]["query"]["query"].as_str())
        .filter(|sql| {
            sql.starts_with("DECLARE __ns_this_max_window_start DEFAULT (SELECT MAX(window_start) FROM `ns-test.bqf_features.windows` WHERE FALSE)")
                && sql.contains("SET __ns_this_max_window_start = (SELECT MAX(window_start) FROM `ns-test.bqf_features.windows`)")
                && sql.contains("WHERE startTime >= COALESCE(__ns_this_max_window_start")
                && sql.contains("WHERE DATE(window_start) IN UNNEST(__ns_partitions) AND EXISTS")
        })
        .count();
    assert_eq!(incremental_runs, 2, "{jobs}");

    // Each commit's de-duplicating insert looks for stored ids only in the partitions its
    // events fall in, so it does not scan the whole events table.
    let bounded_inserts = jobs["jobs"]
        .as_array()
        .expect("job list")
        .iter()
        .filter_map(|j| j["configuration"]["query"]["query"].as_str())
        .filter(|sql| {
            sql.starts_with("INSERT INTO `ns-test.bqf_raw.netlog_events`")
                && sql.contains("FROM `ns-test.bqf_raw.netlog_events` AS r WHERE r.startTime BETWEEN TIMESTAMP '")
        })
        .count();
    assert!(bounded_inserts >= 2, "{jobs}");

    let raw = rest_get(&emulator, "datasets/bqf_raw/tables/netlog_events");
    assert_eq!(raw["timePartitioning"]["field"], "startTime", "{raw}");

    // Each step's jobs carry deterministic ids and the step's byte cap (labels and caps, which
    // bqemulator does not keep: see the retry test).
    // (bqemulator lists jobs without their labels; each job is read back on its own.)
    let step_jobs: Vec<serde_json::Value> = jobs["jobs"]
        .as_array()
        .expect("job list")
        .iter()
        .filter_map(|j| j["jobReference"]["jobId"].as_str())
        .filter(|id| id.contains("_features_windows_"))
        .map(|id| rest_get(&emulator, &format!("jobs/{id}")))
        .collect();
    assert!(
        !step_jobs.is_empty(),
        "no job labelled with the step: {jobs}"
    );
    for job in &step_jobs {
        let id = job["jobReference"]["jobId"].as_str().unwrap();
        assert!(
            id.starts_with("ns_run_") && id.contains("_features_windows_") && id.ends_with("_a1"),
            "{id}"
        );
    }

    // Bytes are recorded per step (the emulator reports 0).
    let recorded = csv_rows(&ok(
        &project,
        &host,
        &[
            "query",
            "--format",
            "csv",
            "SELECT step, COUNT(*), COUNTIF(bytes_processed IS NULL) FROM `ns-test.bqf_ops.step_runs` GROUP BY step ORDER BY step",
        ],
    ));
    assert_eq!(
        recorded,
        ["features/window_inputs,3,0", "features/windows,3,0"]
    );
}

/// 600 more flows from other subscribers' traffic, starting 30 s before the first file's last
/// flow, so they fall both in the newest feature window and after it.
pub(crate) fn later_netlog_file(project: &TestProject) -> String {
    let last = project.query_csv("SELECT UNIX_SECONDS(MAX(startTime)) FROM raw.netlog_events");
    let last: i64 = last[0].parse().expect("epoch seconds");
    let start = chrono::DateTime::from_timestamp(last - 30, 0).expect("a time");
    let path = project.path().join("later.jsonl");
    let path_text = path.display().to_string();
    project.run_ok(&[
        "generate",
        "--events",
        "600",
        "--subscribers",
        "12",
        "--seed",
        "8",
        "--start",
        &start.to_rfc3339(),
        "--out",
        &path_text,
    ]);
    path_text
}

pub(crate) fn rest_get(emulator: &BqEmulator, path: &str) -> serde_json::Value {
    let url = format!("{}/{path}", emulator.base_url());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            reqwest::get(&url)
                .await
                .expect("GET")
                .json()
                .await
                .expect("JSON")
        })
}

#[test]
fn a_transient_backend_error_is_retried_with_the_same_job_id() {
    let Some(emulator) = BqEmulator::start(PROJECT) else {
        return;
    };
    let proxy = FaultProxy::start(emulator.port, 1, None);
    let project = TestProject::fixture("bq_features");
    let file = netlog_file(&project);
    ok(&project, &emulator.host(), &["ingest", &file]);

    let out = ok(&project, &proxy.host(), &["run", "features"]);
    assert!(out.contains("features/windows"), "{out}");
    let (faulted, inserts) = proxy.log(|log| (log.faulted.clone(), log.job_inserts.clone()));
    // bqemulator does not keep labels, so they are checked on the wire.
    let step_jobs = proxy.log(|log| log.step_jobs.clone());
    let windows_job = step_jobs
        .iter()
        .find(|c| c["labels"]["step"] == "features_windows")
        .expect("a job labelled with its step");
    let windows_labels = &windows_job["labels"];
    assert_eq!(
        windows_job["query"]["maximumBytesBilled"], "5000000000",
        "the step's own byte cap"
    );
    assert_eq!(windows_labels["pipeline"], "features");
    assert_eq!(windows_labels["target"], "bigquery");
    assert!(
        windows_labels["run_id"]
            .as_str()
            .unwrap()
            .starts_with("run_")
    );
    assert_eq!(faulted.len(), 1, "one fault injected");
    let retried = inserts.iter().filter(|id| **id == faulted[0]).count();
    assert_eq!(
        retried, 2,
        "the faulted insert was sent again, once, with the same job id: {inserts:?}"
    );
    let windows = csv_rows(&ok(
        &project,
        &emulator.host(),
        &[
            "query",
            "--format",
            "csv",
            "SELECT COUNT(*) > 0 FROM `ns-test.bqf_features.windows`",
        ],
    ));
    assert_eq!(windows, ["true"]);
}

#[test]
fn rows_bigquery_refuses_become_rejects_and_none_is_lost() {
    let Some(emulator) = BqEmulator::start(PROJECT) else {
        return;
    };
    let proxy = FaultProxy::start(emulator.port, 0, None);
    proxy.refuse_rows(|row| {
        row["source_line"]
            .as_u64()
            .is_some_and(|line| line % 100 == 7)
    });
    let project = TestProject::fixture("bq_features");
    let file = netlog_file(&project);

    let out = ok(&project, &proxy.host(), &["ingest", &file]);
    assert!(out.contains("1485 new events"), "{out}");
    assert_eq!(proxy.log(|log| log.refused_rows), 15);
    let query = |sql: &str| {
        csv_rows(&ok(
            &project,
            &emulator.host(),
            &["query", "--format", "csv", sql],
        ))
    };
    assert_eq!(
        query(
            "SELECT COUNT(*), COUNTIF(MOD(source_line, 100) = 7) FROM `ns-test.bqf_raw.netlog_events`"
        ),
        ["1485,0"]
    );
    let rejects = query(
        "SELECT line, STARTS_WITH(reason, 'BigQuery refused the row (invalid): Cannot convert value to integer') \
         FROM `ns-test.bqf_raw.netlog_rejects` ORDER BY line",
    );
    let mut expected: Vec<String> = (0..15).map(|i| format!("{},true", i * 100 + 7)).collect();
    expected.extend(["1501,false".to_string(), "1502,false".to_string()]);
    assert_eq!(
        rejects, expected,
        "refused rows are rejects with BigQuery's reason"
    );
    // The reject keeps the row as it was sent, so it can be fixed and replayed.
    let raw = query("SELECT raw FROM `ns-test.bqf_raw.netlog_rejects` WHERE line = 7");
    let row: serde_json::Value =
        serde_json::from_str(&csv_field(&raw[0])).expect("the refused row as JSON");
    assert_eq!(row["source_line"], 7);
    assert!(row["event_id"].is_string(), "{row}");
}

#[test]
fn a_permanent_error_fails_with_bigquerys_message_and_is_not_retried() {
    let Some(emulator) = BqEmulator::start(PROJECT) else {
        return;
    };
    let proxy = FaultProxy::start(emulator.port, 0, None);
    let project = TestProject::fixture("bq_features");
    let output = on_bigquery(
        &project,
        &proxy.host(),
        &["query", "SELECT * FROM `ns-test.bqf_raw.no_such_table`"],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Not found: Dataset ns-test:bqf_raw was not found in location US"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no_such_table"),
        "the statement is shown: {stderr}"
    );
    assert!(stderr.contains("reason: notFound"), "{stderr}");
    assert_eq!(proxy.log(|log| log.job_inserts.len()), 1, "not retried");
}

#[test]
fn plan_prints_byte_estimates_and_flags_steps_over_their_cap() {
    let Some(emulator) = BqEmulator::start(PROJECT) else {
        return;
    };
    let project = TestProject::fixture("bq_features");
    let file = netlog_file(&project);
    ok(&project, &emulator.host(), &["ingest", &file]);
    ok(&project, &emulator.host(), &["run", "features"]);

    // The emulator estimates 0 bytes for everything; all steps are within their caps.
    let out = ok(&project, &emulator.host(), &["plan", "features"]);
    assert!(out.contains("features/windows"), "{out}");
    assert!(out.contains("features/window_inputs"), "{out}");
    assert!(out.contains("total"), "{out}");
    assert!(!out.contains("OVER"), "{out}");

    // A proxy that estimates 6 GB: over the windows step's own 5 GB cap, under the target's 10 GB.
    let proxy = FaultProxy::start(emulator.port, 0, Some(6_000_000_000));
    let output = on_bigquery(&project, &proxy.host(), &["plan", "features"]);
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success(),
        "plan fails when a step is over its cap:\n{out}"
    );
    let windows_line = out
        .lines()
        .find(|l| l.contains("features/windows"))
        .unwrap_or_default();
    assert!(windows_line.contains("6.00 GB"), "{out}");
    assert!(windows_line.contains("OVER"), "{out}");
    let inputs_line = out
        .lines()
        .find(|l| l.contains("features/window_inputs"))
        .unwrap_or_default();
    assert!(!inputs_line.contains("OVER"), "{out}");
    assert!(out.contains("12.00 GB"), "total: {out}");
    assert_eq!(
        proxy.log(|log| log.job_inserts.len()),
        0,
        "a plan runs no job"
    );
}

#[test]
fn plan_on_the_local_engine_validates_every_statement_and_runs_nothing() {
    let project = TestProject::fixture("bq_features");
    let file = netlog_file(&project);
    project.run_ok(&["ingest", &file]);
    project.run_ok(&["run", "features"]);
    let before = project.query_csv("SELECT COUNT(*) FROM ops.step_runs");

    let out = project.run_ok(&["plan"]);
    assert!(out.contains("features/windows"), "{out}");
    assert!(out.contains("valid"), "{out}");
    assert!(!out.contains("INVALID"), "{out}");
    assert_eq!(
        project.query_csv("SELECT COUNT(*) FROM ops.step_runs"),
        before
    );

    project.write(
        "sql/features/window_inputs.sql",
        "SELECT subscriberId, no_such_column FROM {{ ref(\"windows\") }}",
    );
    let output = project.command(&["plan"]).output().unwrap();
    assert!(!output.status.success());
    let out = String::from_utf8_lossy(&output.stdout);
    let line = out
        .lines()
        .find(|l| l.contains("features/window_inputs"))
        .unwrap_or_default();
    assert!(
        line.contains("INVALID") && line.contains("no_such_column"),
        "{out}"
    );
}
