//! `netsentinel schedule` as a real process: a one-second schedule runs its pipeline again and
//! again without ever overlapping a slow step (late ticks are skipped and counted in /metrics),
//! SIGTERM during a run exits 0 with the finished step recorded and the run resumable, a
//! second scheduler on the same warehouse refuses to start, and a tick missed during downtime
//! runs once at start.

use std::time::{Duration, Instant};

use crate::common::TestProject;
use crate::common::daemon::{Daemon, sample};

fn schedule(project: &TestProject, pipelines: &[&str]) -> (Daemon, String) {
    let mut args = vec!["schedule", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(pipelines);
    let daemon = Daemon::spawn(project, &args, &[]);
    let metrics_url = daemon.url_printed_with("/metrics");
    (daemon, metrics_url)
}

#[test]
fn a_one_second_schedule_runs_repeatedly_and_never_overlaps_a_slow_step() {
    let project = TestProject::fixture("schedule");
    let (mut scheduler, metrics_url) = schedule(&project, &["slow"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let metrics = loop {
        let metrics = crate::common::http_get(&metrics_url);
        let runs = "netsentinel_pipeline_runs_total{pipeline=\"slow\"}";
        // The series appears once the scheduler has set the pipeline up.
        if metrics.contains(runs) && sample(&metrics, runs) >= 3.0 {
            break metrics;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than 3 runs in 120 s:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        sample(
            &metrics,
            "netsentinel_pipeline_failures_total{pipeline=\"slow\"}"
        ),
        0.0
    );
    assert!(
        sample(
            &metrics,
            "netsentinel_pipeline_skipped_ticks_total{pipeline=\"slow\"}"
        ) >= 2.0,
        "a step longer than a tick makes the scheduler skip ticks:\n{metrics}"
    );
    assert!(
        metrics.contains("netsentinel_pipeline_last_success_timestamp_seconds{pipeline=\"slow\"}")
    );
    assert!(scheduler.terminate().success());

    let runs = project.query_csv(
        "SELECT status, UNIX_MILLIS(started_at), UNIX_MILLIS(finished_at) FROM ops.runs WHERE pipeline = 'slow' ORDER BY started_at",
    );
    let successes: Vec<(i64, i64)> = runs
        .iter()
        .filter_map(|row| {
            let fields: Vec<&str> = row.split(',').collect();
            (fields[0] == "success")
                .then(|| (fields[1].parse().unwrap(), fields[2].parse().unwrap()))
        })
        .collect();
    assert!(successes.len() >= 3, "{runs:?}");
    for pair in successes.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "runs overlap: {runs:?}");
    }
}

#[test]
fn sigterm_during_a_run_finishes_the_step_exits_zero_and_the_run_resumes() {
    let project = TestProject::fixture("schedule");
    let (mut scheduler, _) = schedule(&project, &["slow"]);
    scheduler.wait_for_log("step started", Duration::from_secs(30));
    let status = scheduler.terminate();
    assert!(status.success(), "exit status {status}");

    let run = project.query_csv("SELECT run_id, status FROM ops.runs WHERE pipeline = 'slow'");
    assert_eq!(run.len(), 1, "{run:?}");
    let (run_id, status) = run[0].split_once(',').unwrap();
    assert_eq!(status, "interrupted");
    let steps = project.query_csv(&format!(
        "SELECT step, status FROM ops.step_runs WHERE run_id = '{run_id}' ORDER BY started_at"
    ));
    assert_eq!(
        steps,
        ["features/slow,success"],
        "the step under way finished; the next did not start"
    );

    let resumed = project.run_ok(&["run", "slow"]);
    assert!(resumed.contains(run_id), "{resumed}");
    let steps = project.query_csv(&format!(
        "SELECT step, status FROM ops.step_runs WHERE run_id = '{run_id}' ORDER BY started_at"
    ));
    assert_eq!(
        steps,
        ["features/slow,success", "features/after_slow,success"]
    );
    assert_eq!(
        project.query_csv(&format!(
            "SELECT status FROM ops.runs WHERE run_id = '{run_id}'"
        )),
        ["success"]
    );
}

#[test]
fn a_second_scheduler_on_the_same_warehouse_refuses_to_start() {
    let project = TestProject::fixture("schedule");
    let (mut first, _) = schedule(&project, &["yearly"]);
    first.wait_for_log("scheduler lease taken", Duration::from_secs(30));

    let mut second = Daemon::spawn(
        &project,
        &["schedule", "--listen", "127.0.0.1:0", "yearly"],
        &[],
    );
    let status = second.wait(Duration::from_secs(60));
    let stderr = second.log_after_exit();
    assert!(!status.success());
    assert!(
        stderr.contains("another scheduler already runs on this warehouse"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("pid {}", first.child.id())),
        "{stderr}"
    );

    assert!(first.terminate().success());
    // The lease went with the first scheduler: a new one starts.
    let (again, _) = schedule(&project, &["yearly"]);
    again.wait_for_log("scheduler lease taken", Duration::from_secs(30));
}

#[test]
fn a_tick_missed_during_downtime_runs_once_at_start() {
    let project = TestProject::fixture("schedule");
    project.run_ok(&["run", "yearly"]);
    // Pretend the last run was two years ago: this year's tick was missed.
    project.run_ok(&[
        "query",
        "UPDATE ops.runs SET started_at = started_at - INTERVAL 730 DAY WHERE pipeline = 'yearly'",
    ]);
    let (mut scheduler, _) = schedule(&project, &["yearly"]);
    scheduler.wait_for_log("running once now", Duration::from_secs(30));
    scheduler.wait_for_log("scheduled run finished", Duration::from_secs(60));
    assert!(scheduler.terminate().success());
    assert_eq!(
        project.query_csv(
            "SELECT COUNT(*) FROM ops.runs WHERE pipeline = 'yearly' AND status = 'success'"
        ),
        ["2"]
    );
}
