//! `netsentinel ingest --follow` as a real process: from standard input and from Google's
//! Pub/Sub emulator every event is stored exactly once across a kill and a restart of the
//! ingester, late events become rejects, `POST /v1/events` answers after the commit and checks
//! its bearer token, and `--detect-every` scores closed windows in the same process.

use std::time::{Duration, Instant};

use crate::common::TestProject;
use crate::common::daemon::{Daemon, sample};
use crate::common::pubsub::{PROJECT, PubsubEmulator};

/// Generated NDJSON lines (one flow each).
fn netlog_lines(project: &TestProject, events: u32, extra: &[&str]) -> Vec<String> {
    let path = project.path().join("flows.jsonl");
    let (events, path_text) = (events.to_string(), path.display().to_string());
    let mut args = vec![
        "generate",
        "--events",
        &events,
        "--subscribers",
        "20",
        "--out",
        &path_text,
    ];
    args.extend_from_slice(extra);
    project.run_ok(&args);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The same flow, started and ended in 2001: its window closed long ago.
fn long_ago(line: &str) -> String {
    let mut flow: serde_json::Value = serde_json::from_str(line).unwrap();
    flow["startTime"] = "2001-01-01T00:00:00Z".into();
    flow["endTime"] = "2001-01-01T00:00:01Z".into();
    flow.to_string()
}

fn follow(project: &TestProject, args: &[&str], envs: &[(&str, &str)]) -> (Daemon, String) {
    let mut full = vec![
        "ingest",
        "--follow",
        "--listen",
        "127.0.0.1:0",
        "--commit-interval",
        "200ms",
    ];
    full.extend_from_slice(args);
    let daemon = Daemon::spawn(project, &full, envs);
    let metrics_url = daemon.url_printed_with("/metrics");
    (daemon, metrics_url)
}

/// Polls /metrics until `done` holds, and returns the metrics that satisfied it.
fn wait_for_metrics(
    daemon: &Daemon,
    metrics_url: &str,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    // Generous: two detect runs of the debug build take minutes on a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let metrics = crate::common::try_http_get(metrics_url)
            .unwrap_or_else(|error| panic!("{what}: {error}\n{}", daemon.log()));
        if done(&metrics) {
            return metrics;
        }
        assert!(
            Instant::now() < deadline,
            "{what}:\n{metrics}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until /metrics counts at least `events` committed events.
fn wait_for_committed(daemon: &Daemon, metrics_url: &str, events: f64) {
    wait_for_metrics(daemon, metrics_url, "not committed in time", |m| {
        sample(m, "netsentinel_ingest_events_total") >= events
    });
}

fn stored(project: &TestProject) -> (u64, u64) {
    let row = project.query_csv("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM raw.netlog_events");
    let (all, distinct) = row[0].split_once(',').unwrap();
    (all.parse().unwrap(), distinct.parse().unwrap())
}

#[test]
fn stdin_events_are_stored_exactly_once_across_a_kill_and_a_restart() {
    let project = TestProject::shipped();
    let lines = netlog_lines(&project, 3000, &[]);

    let (mut first, metrics_url) = follow(&project, &["-"], &[]);
    first.feed(&lines[..1800]);
    wait_for_committed(&first, &metrics_url, 1800.0);
    // A crash: no chance to commit or clean up.
    first.signal("KILL");
    first.wait(Duration::from_secs(30));
    assert_eq!(stored(&project), (1800, 1800));

    // The producer replays from the start, plus one flow whose window closed long ago.
    let (mut second, _) = follow(&project, &["-"], &[]);
    second.feed(&lines);
    second.feed(&[long_ago(&lines[0])]);
    second.close_stdin();
    let status = second.wait(Duration::from_secs(120));
    assert!(status.success(), "{}", second.log());
    let summary = second.output();
    assert!(
        summary
            .contains("3001 rows read: 1200 new events, 1800 already stored, 1 rejected (1 late"),
        "{summary}"
    );

    assert_eq!(stored(&project), (3000, 3000));
    let rejects = project.query_csv("SELECT source, line, field, STARTS_WITH(reason, 'late: its window closed at') FROM raw.netlog_rejects");
    assert_eq!(rejects, ["<stdin>,3001,startTime,true"]);
}

#[test]
fn pubsub_events_are_stored_exactly_once_across_a_kill_and_a_restart() {
    let Some(emulator) = PubsubEmulator::start() else {
        return;
    };
    emulator.create_topic("flows");
    emulator.create_subscription("flows", "flows-ingest");
    let subscription = format!("projects/{PROJECT}/subscriptions/flows-ingest");
    let project = TestProject::shipped();
    let lines = netlog_lines(&project, 2000, &[]);
    // 20 lines a message; the second half published twice (a producer retrying).
    let messages: Vec<String> = lines.chunks(20).map(|c| c.join("\n")).collect();
    emulator.publish("flows", &messages[..50]);
    let host = emulator.host();
    let envs = [("PUBSUB_EMULATOR_HOST", host.as_str())];

    let (mut first, metrics_url) = follow(&project, &["--subscription", &subscription], &envs);
    wait_for_committed(&first, &metrics_url, 1000.0);
    first.signal("KILL");
    first.wait(Duration::from_secs(30));
    emulator.publish("flows", &messages[50..]);
    emulator.publish("flows", &messages[50..]);

    let (mut second, metrics_url) = follow(&project, &["--subscription", &subscription], &envs);
    wait_for_metrics(&second, &metrics_url, "messages not all ingested", |m| {
        sample(m, "netsentinel_ingest_events_total")
            + sample(m, "netsentinel_ingest_duplicates_total")
            >= 2000.0
    });
    assert!(second.terminate().success(), "{}", second.log_after_exit());
    assert_eq!(stored(&project), (2000, 2000));
    assert!(
        emulator.pull_all("flows-ingest").is_empty(),
        "every message was acked after its commit"
    );
}

#[test]
fn http_posts_are_answered_after_the_commit_and_need_the_token_when_set() {
    let project = TestProject::shipped();
    let lines = netlog_lines(&project, 500, &[]);
    let envs = [("NETSENTINEL_INGEST_TOKEN", "s3cret-token")];
    let (mut daemon, metrics_url) =
        follow(&project, &["--http", "--max-body-bytes", "1000000"], &envs);
    let events_url = daemon.url_printed_with("/v1/events");

    let send = |body: &str, token: Option<&str>| post(&events_url, body, token);
    let first_half = lines[..250].join("\n");
    assert_eq!(send(&first_half, None).0, 401);
    assert_eq!(send(&first_half, Some("wrong-token")).0, 401);
    let (status, answer) = send(&format!("{first_half}\nnot json"), Some("s3cret-token"));
    assert_eq!(
        (status, answer.as_str()),
        (200, r#"{"accepted":250,"rejected":1}"#)
    );
    // The answer comes after the commit.
    let metrics = crate::common::http_get(&metrics_url);
    assert_eq!(
        sample(&metrics, "netsentinel_ingest_events_total"),
        250.0,
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "netsentinel_ingest_rejects_total"),
        1.0,
        "{metrics}"
    );
    let (status, answer) = send(&lines.join("\n"), Some("s3cret-token"));
    assert_eq!(
        (status, answer.as_str()),
        (200, r#"{"accepted":500,"rejected":0}"#)
    );
    let too_big = "x".repeat(1_000_001);
    assert_eq!(send(&too_big, Some("s3cret-token")).0, 413);

    assert!(daemon.terminate().success(), "{}", daemon.log_after_exit());
    assert_eq!(stored(&project), (500, 500));
    assert!(
        daemon
            .output()
            .contains("751 rows read: 500 new events, 250 already stored, 1 rejected")
    );
}

fn post(url: &str, body: &str, token: Option<&str>) -> (u16, String) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut request = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/x-ndjson")
                .body(body.to_string());
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("POST");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        })
}

#[test]
fn detect_every_scores_the_windows_that_closed_while_ingesting() {
    let project = TestProject::shipped();
    // Short windows so the test does not wait a minute for one to close.
    let vars = [
        "--var",
        "window_seconds=2",
        "--var",
        "allowed_lateness_seconds=0",
    ];
    let mut train = vec![
        "generate",
        "--into-warehouse",
        "--subscribers",
        "20",
        "--duration",
        "5m",
    ];
    train.extend_from_slice(&vars);
    project.run_ok(&train);
    let mut run_train = vec!["run", "train"];
    run_train.extend_from_slice(&vars);
    project.run_ok(&run_train);

    // The last seconds of traffic, as a collector sends it when it catches up: every window in
    // it has closed by the time it arrives.
    let start_time = chrono::Utc::now() - chrono::Duration::seconds(45);
    let start = start_time.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let start_sql = start_time.format("%Y-%m-%d %H:%M:%S").to_string();
    let lines = netlog_lines(&project, 400, &["--start", &start, "--seed", "9"]);
    let mut full: Vec<&str> = vars.to_vec();
    full.extend([
        "ingest",
        "--follow",
        "--listen",
        "127.0.0.1:0",
        "--commit-interval",
        "200ms",
        "--http",
        "--detect-every",
        "1s",
    ]);
    let mut daemon = Daemon::spawn(&project, &full, &[]);
    let events_url = daemon.url_printed_with("/v1/events");
    let metrics_url = daemon.url_printed_with("/metrics");
    let (status, answer) = post(&events_url, &lines.join("\n"), None);
    assert_eq!(
        (status, answer.as_str()),
        (200, r#"{"accepted":400,"rejected":0}"#)
    );
    // Detection runs between commits, so the second run started after the POST's commit.
    let runs = "netsentinel_pipeline_runs_total{pipeline=\"detect\"}";
    let metrics = wait_for_metrics(&daemon, &metrics_url, "detect did not run twice", |m| {
        m.contains(runs) && sample(m, runs) >= 2.0
    });
    let failures = "netsentinel_pipeline_failures_total{pipeline=\"detect\"}";
    assert_eq!(sample(&metrics, failures), 0.0, "{}", daemon.log());
    assert!(daemon.terminate().success(), "{}", daemon.log_after_exit());

    // Every window of the posted traffic is scored, once.
    let windows = |table: &str| {
        project.query_csv(&format!(
            "SELECT COUNT(*), COUNT(DISTINCT CONCAT(subscriberId, dst_subnet, CAST(window_start AS STRING))) \
             FROM {table} WHERE window_start >= TIMESTAMP '{start_sql}'"
        ))
    };
    let scored = windows("inferenced.netlog_anomalies");
    let (all, distinct) = scored[0].split_once(',').unwrap();
    assert_eq!(all, distinct, "no window scored twice");
    assert!(all.parse::<u64>().unwrap() > 10, "{scored:?}");
    assert_eq!(
        scored,
        windows("features.netlog_windows"),
        "every posted window scored"
    );
}

#[test]
fn detection_runs_beside_the_ingest_without_holding_it_up() {
    let project = TestProject::shipped();
    let lines = netlog_lines(&project, 2000, &[]);
    // Detection back to back, each run far slower than a commit.
    let args = ["-", "--detect-every", "1ms", "--detect-pipeline", "train"];
    let (mut daemon, metrics_url) = follow(&project, &args, &[]);
    daemon.feed(&lines);
    wait_for_committed(&daemon, &metrics_url, 2000.0);
    // Runs are counted when they end; none may have ended yet.
    let metrics = crate::common::http_get(&metrics_url);
    let finished = "netsentinel_pipeline_runs_total{pipeline=\"train\"}";
    let runs = if metrics.contains(finished) {
        sample(&metrics, finished)
    } else {
        0.0
    };
    assert!(
        runs <= 5.0,
        "commits do not wait for detection runs, so a few runs at most end first: {runs} runs\n{metrics}"
    );
    daemon.close_stdin();
    assert!(
        daemon.wait(Duration::from_secs(120)).success(),
        "{}",
        daemon.log()
    );
}
