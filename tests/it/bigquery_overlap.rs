//! Two runs of one pipeline at once on the BigQuery emulator (bqemulator on 127.0.0.1). A run
//! slowed down by a proxy holds the pipeline's run lease; a second run started beside it exits
//! at once, naming the first, and succeeds when run again after it. Of two runs started at
//! the same instant, any that fails does so because of the other. Either way the feature
//! tables hold each window once, as many as the local engine builds from the same events, and
//! no staging table or lease is left.

use std::process::Output;
use std::time::{Duration, Instant};

use crate::bigquery_emulator::{
    PROJECT, csv_rows, later_netlog_file, netlog_file, ok, on_bigquery, rest_get,
};
use crate::common::TestProject;
use crate::common::bqemu::{BqEmulator, FaultProxy};
use crate::common::daemon::Daemon;

const BUSY: &str = "another run of pipeline features is under way";

/// Windows stored more than once, and windows stored, on BigQuery.
fn windows_on_bigquery(project: &TestProject, host: &str) -> (String, String) {
    let rows = csv_rows(&ok(
        project,
        host,
        &[
            "query",
            "--format",
            "csv",
            "SELECT COUNT(*) - COUNT(DISTINCT CONCAT(subscriberId, '|', dst_net, '|', CAST(UNIX_MICROS(window_start) AS STRING))), COUNT(*) \
             FROM `ns-test.bqf_features.windows`",
        ],
    ));
    let (duplicates, stored) = rows[0].split_once(',').expect("two columns");
    (duplicates.to_string(), stored.to_string())
}

/// The tables left in a dataset whose name says they are a staging table or a lease.
fn leftovers(emulator: &BqEmulator, project: &TestProject) -> Vec<String> {
    let mut left = Vec::new();
    for dataset in ["bqf_features", "bqf_raw"] {
        let tables = rest_get(emulator, &format!("datasets/{dataset}/tables"));
        left.extend(
            tables["tables"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["tableReference"]["tableId"].as_str())
                .filter(|name| name.contains("__ns_stage"))
                .map(str::to_string),
        );
    }
    let leases = csv_rows(&ok(
        project,
        &emulator.host(),
        &[
            "query",
            "--format",
            "csv",
            "SELECT COUNT(*) FROM `ns-test.bqf_ops.run_leases`",
        ],
    ));
    if leases != ["0"] {
        left.push(format!("{leases:?} run lease row(s)"));
    }
    left
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `run features` on BigQuery, started now on another thread.
fn spawn_run(project: &TestProject, host: &str) -> std::thread::JoinHandle<Output> {
    let mut command = project.command(&["--target", "bigquery", "run", "features"]);
    command
        .env("GCP_PROJECT", PROJECT)
        .env("BIGQUERY_EMULATOR_HOST", host);
    std::thread::spawn(move || command.output().expect("run netsentinel"))
}

#[test]
fn a_second_run_beside_a_slow_one_exits_at_once_and_no_window_is_stored_twice() {
    let Some(emulator) = BqEmulator::start(PROJECT) else {
        return;
    };
    let host = emulator.host();
    let project = TestProject::fixture("bq_features");
    let file = netlog_file(&project);
    ok(&project, &host, &["ingest", &file]);
    project.run_ok(&["ingest", &file]);

    // The first run goes through a proxy that holds each job for a while.
    let proxy = FaultProxy::start(emulator.port, 0, None);
    proxy.delay_jobs(Duration::from_millis(300));
    let mut slow = Daemon::spawn(
        &project,
        &["--target", "bigquery", "run", "features"],
        &[
            ("GCP_PROJECT", PROJECT),
            ("BIGQUERY_EMULATOR_HOST", &proxy.host()),
        ],
    );
    slow.wait_for_log("step started", Duration::from_secs(300));
    let refused_at = Instant::now();
    let second = on_bigquery(&project, &host, &["run", "features"]);
    let refused_in = refused_at.elapsed();
    assert!(
        !second.status.success()
            && stderr(&second).contains(BUSY)
            && stderr(&second).contains("did nothing"),
        "the second run exits naming the first:\n{}",
        stderr(&second)
    );
    let first = slow.wait(Duration::from_secs(600));
    assert!(
        first.success(),
        "the slow run finished:\n{}",
        slow.log_after_exit()
    );

    let retried_at = Instant::now();
    ok(&project, &host, &["run", "features"]);
    let recovered_in = retried_at.elapsed();
    project.run_ok(&["run", "features"]);
    let local_windows = project.query_csv("SELECT COUNT(*) FROM features.windows");
    assert_eq!(
        windows_on_bigquery(&project, &host),
        ("0".to_string(), local_windows[0].clone()),
        "no window twice, none missing"
    );
    assert_eq!(leftovers(&emulator, &project), Vec::<String>::new());
    eprintln!(
        "overlap: second run refused in {:.1} s; run again after the first: {:.1} s",
        refused_in.as_secs_f64(),
        recovered_in.as_secs_f64()
    );
}

#[test]
fn two_runs_started_together_end_with_each_window_stored_once() {
    let Some(emulator) = BqEmulator::start(PROJECT) else {
        return;
    };
    let host = emulator.host();
    let project = TestProject::fixture("bq_features");
    // Once building the tables, once adding later events to them incrementally (the later
    // file starts where the stored events end).
    let mut refused = 0;
    for round in 0..2 {
        let data = if round == 0 {
            netlog_file(&project)
        } else {
            later_netlog_file(&project)
        };
        ok(&project, &host, &["ingest", &data]);
        project.run_ok(&["ingest", &data]);
        let (a, b) = (spawn_run(&project, &host), spawn_run(&project, &host));
        let outputs = [a.join().expect("run a"), b.join().expect("run b")];
        let succeeded = outputs.iter().filter(|o| o.status.success()).count();
        for output in outputs.iter().filter(|o| !o.status.success()) {
            assert!(
                stderr(output).contains(BUSY),
                "round {round}: a run failed for another reason than the other run:\n{}",
                stderr(output)
            );
            refused += 1;
        }
        assert!(succeeded >= 1, "round {round}: neither run succeeded");
        project.run_ok(&["run", "features"]);
        let local_windows = project.query_csv("SELECT COUNT(*) FROM features.windows");
        assert_eq!(
            windows_on_bigquery(&project, &host),
            ("0".to_string(), local_windows[0].clone()),
            "round {round}: no window twice, none missing"
        );
        assert_eq!(leftovers(&emulator, &project), Vec::<String>::new());
    }
    eprintln!("overlap: of 2 pairs of runs started together, {refused} run(s) were refused");
}
