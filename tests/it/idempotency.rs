//! A command killed at any point and run again leaves the same tables as an uninterrupted run:
//! each step commits atomically and a rerun resumes the interrupted run.

use std::time::Duration;

use crate::common::TestProject;

/// The tables a user reads, in a stable order, without the columns that record wall-clock time.
fn snapshot(project: &TestProject) -> Vec<Vec<String>> {
    [
        "SELECT * EXCEPT (ingested_at) FROM raw.netlog_events ORDER BY event_id",
        "SELECT * EXCEPT (rejected_at) FROM raw.netlog_rejects ORDER BY reject_id",
        "SELECT * EXCEPT (ingested_through) FROM features.netlog_windows ORDER BY subscriberId, dst_subnet, window_start",
        "SELECT centroid_id, dimension, value FROM models.__model_centroids ORDER BY ALL",
        "SELECT * EXCEPT (scored_at, ingested_through) FROM inferenced.netlog_anomalies ORDER BY subscriberId, dst_subnet, window_start",
        "SELECT model_name, version, status FROM ops.model_registry ORDER BY ALL",
        "SELECT * EXCEPT (measured_at) FROM ops.drift_metrics ORDER BY metric",
    ]
    .iter()
    .map(|sql| project.query_csv(sql))
    .collect()
}

/// Equal rows, where floats may differ in the last bits: DuckDB sums in parallel, and the
/// order of a floating-point sum changes its rounding.
fn same_row(a: &str, b: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split(',').collect(), b.split(',').collect());
    a.len() == b.len()
        && a.iter().zip(&b).all(|(x, y)| {
            x == y
                || match (x.parse::<f64>(), y.parse::<f64>()) {
                    (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-300),
                    _ => false,
                }
        })
}

fn last_run_succeeded(project: &TestProject, pipeline: &str) -> bool {
    let has_runs = project.warehouse().exists()
        && project.query_csv(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'ops' AND table_name = 'runs'",
        ) == ["1"];
    if !has_runs {
        return false;
    }
    let status = project.query_csv(&format!(
        "SELECT COALESCE(MAX(status), '') FROM ops.runs WHERE pipeline = '{pipeline}' AND started_at = (SELECT MAX(started_at) FROM ops.runs WHERE pipeline = '{pipeline}')"
    ));
    status.first().map(String::as_str) == Some("success")
}

/// Starts `args`, kills it after each delay in turn (a bounded number of attempts), then runs it
/// to completion.
fn kill_then_finish(project: &TestProject, args: &[&str], pipeline: Option<&str>) -> usize {
    let mut kills = 0;
    for delay_ms in [40, 120, 250, 400, 700, 1100, 1600] {
        if pipeline.is_some_and(|p| last_run_succeeded(project, p)) {
            break;
        }
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("netsentinel"))
            .arg("--project-dir")
            .arg(project.path())
            .arg("-q")
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn netsentinel");
        std::thread::sleep(Duration::from_millis(delay_ms));
        match child.try_wait().expect("poll child") {
            Some(status) if status.success() => break,
            Some(status) => panic!("{args:?} failed on its own: {status}"),
            None => {
                child.kill().expect("kill");
                child.wait().expect("reap");
                kills += 1;
            }
        }
    }
    project.run_ok(args);
    kills
}

#[test]
fn killed_ingest_and_runs_resume_to_the_same_tables() {
    let data_dir = tempfile::tempdir().unwrap();
    let data = data_dir.path().join("netlog.jsonl");
    let mut text = {
        let project = TestProject::shipped();
        let data = data.display().to_string();
        project.run_ok(&[
            "generate",
            "--seed",
            "11",
            "--subscribers",
            "40",
            "--duration",
            "20m",
            "--out",
            &data,
        ]);
        std::fs::read_to_string(&data).unwrap()
    };
    text.push_str("{\"not\": \"an event\"}\n");
    std::fs::write(&data, text).unwrap();
    let data = data.display().to_string();

    let reference = TestProject::shipped();
    reference.run_ok(&["ingest", "--batch-rows", "5000", &data]);
    reference.run_ok(&["run", "train"]);
    reference.run_ok(&["run", "detect"]);
    reference.run_ok(&["run", "drift"]);
    let expected = snapshot(&reference);
    assert!(
        expected[4].len() > 100,
        "the reference run scored too little to compare"
    );

    let interrupted = TestProject::shipped();
    let mut kills = kill_then_finish(
        &interrupted,
        &["ingest", "--batch-rows", "5000", &data],
        None,
    );
    kills += kill_then_finish(&interrupted, &["run", "train"], Some("train"));
    kills += kill_then_finish(&interrupted, &["run", "detect"], Some("detect"));
    kills += kill_then_finish(&interrupted, &["run", "drift"], Some("drift"));
    assert!(
        kills > 0,
        "nothing was interrupted: the test proved nothing"
    );
    let actual = snapshot(&interrupted);
    for (table, (want, got)) in expected.iter().zip(&actual).enumerate() {
        assert_eq!(want.len(), got.len(), "table #{table}: row counts differ");
        if let Some((w, g)) = want.iter().zip(got).find(|(w, g)| !same_row(w, g)) {
            panic!("table #{table}: contents differ\n  uninterrupted: {w}\n  interrupted:   {g}");
        }
    }
}
