//! Alerts on the embedded engine: the outbox, storm controls, the JSONL file sink and the
//! webhook sink against a real HTTP server on 127.0.0.1, through the `netsentinel` binary.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use crate::common::TestProject;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

/// A small world: 40 subscribers, 20 minutes, attacks injected.
fn project_with_traffic(alerts_yaml: &str) -> TestProject {
    let project = TestProject::shipped();
    project.replace_alerts(alerts_yaml);
    project.run_ok(&[
        "generate",
        "--into-warehouse",
        "--subscribers",
        "40",
        "--duration",
        "20m",
        "--anomaly-rate",
        "0.05",
    ]);
    project.run_ok(&["run", "train"]);
    project
}

fn scalar(project: &TestProject, sql: &str) -> i64 {
    project.query_csv(sql)[0].parse().unwrap()
}

fn file_alerts(project: &TestProject, name: &str) -> Vec<Value> {
    std::fs::read_to_string(project.path().join(name))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

const FILE_SINK: &str = "alerts:\n  suppress_for: 0s\n  max_per_run: 10000\n  sinks:\n    - { kind: file, path: out/alerts.jsonl }\n";

#[test]
fn every_anomaly_becomes_one_alert_and_a_rerun_sends_nothing() {
    let project = project_with_traffic(FILE_SINK);
    let out = project.run_ok(&["run", "detect"]);
    assert!(out.contains("sink file:"), "{out}");

    let anomalies = scalar(
        &project,
        "SELECT COUNT(*) FROM inferenced.netlog_anomalies WHERE is_anomaly",
    );
    assert!(anomalies > 0);
    let alerts = file_alerts(&project, "out/alerts.jsonl");
    assert_eq!(alerts.len() as i64, anomalies);
    let ids: BTreeSet<&str> = alerts
        .iter()
        .map(|a| a["alert_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), alerts.len(), "alert ids are unique");

    // The message says what a responder needs.
    let top = alerts
        .iter()
        .max_by(|a, b| {
            a["normalized_distance"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["normalized_distance"].as_f64().unwrap())
        })
        .unwrap();
    for field in [
        "subscriber",
        "subnet",
        "window_start",
        "window_end",
        "centroid_id",
        "model_version",
        "features",
    ] {
        assert!(!top[field].is_null(), "{field} missing in {top}");
    }
    assert!(top["normalized_distance"].as_f64() > top["threshold"].as_f64());
    assert_ne!(
        top["severity"], "low",
        "the farthest window is not a marginal one: {top}"
    );
    let explained = top["explanation"]["top_features"].as_array().unwrap();
    assert_eq!(explained.len(), 3, "{top}");
    let first = explained[0]["deviation_stddevs"].as_f64().unwrap().abs();
    let last = explained[2]["deviation_stddevs"].as_f64().unwrap().abs();
    assert!(first >= last && first > 1.0, "{explained:?}");

    // Outbox and deliveries agree with the file.
    assert_eq!(
        scalar(
            &project,
            "SELECT COUNT(*) FROM ops.alert_deliveries WHERE sink = 'file' AND status = 'delivered'"
        ),
        anomalies
    );

    // A rerun finds nothing new; a rerun of a run that already finished alerts sends nothing.
    let out = project.run_ok(&["run", "detect"]);
    assert!(out.contains("0 new anomalies"), "{out}");
    assert_eq!(
        file_alerts(&project, "out/alerts.jsonl").len(),
        alerts.len()
    );
    assert_eq!(
        scalar(&project, "SELECT COUNT(*) FROM ops.alert_outbox"),
        anomalies
    );
}

#[test]
fn storm_controls_record_what_they_hold_back_and_say_so_once() {
    let project = project_with_traffic(
        "alerts:\n  suppress_for: 1h\n  max_per_run: 5\n  sinks:\n    - { kind: file, path: out/alerts.jsonl }\n",
    );
    project.run_ok(&["run", "detect"]);
    let anomalies = scalar(
        &project,
        "SELECT COUNT(*) FROM inferenced.netlog_anomalies WHERE is_anomaly",
    );
    let count = |status: &str| {
        scalar(
            &project,
            &format!(
                "SELECT COUNT(*) FROM ops.alert_outbox WHERE kind = 'anomaly' AND status = '{status}'"
            ),
        )
    };
    let (active, suppressed, held) = (count("active"), count("suppressed"), count("held"));
    assert_eq!(active + suppressed + held, anomalies, "nothing is dropped");
    assert_eq!(active, 5);
    assert!(held > 0, "the cap held some back");
    // Within one hour, one subscriber+subnet alerts once: repeats are suppressed.
    assert_eq!(
        scalar(
            &project,
            "SELECT COUNT(*) FROM (SELECT subscriber, subnet FROM ops.alert_outbox \
             WHERE status = 'active' AND kind = 'anomaly' GROUP BY 1, 2 HAVING COUNT(*) > 1)"
        ),
        0
    );
    let reasons = project.query_csv(
        "SELECT DISTINCT status FROM ops.alert_outbox WHERE reason IS NOT NULL ORDER BY 1",
    );
    assert!(reasons.iter().all(|s| s == "held" || s == "suppressed"));

    let sent = file_alerts(&project, "out/alerts.jsonl");
    assert_eq!(sent.len(), 6, "five alerts and one summary");
    let summary: Vec<&Value> = sent.iter().filter(|a| a["kind"] == "summary").collect();
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0]["held_back"].as_i64().unwrap(), held);
}

/// What the test webhook received, and how it should answer.
#[derive(Default)]
struct Hook {
    /// Status codes to answer first, in order; 200 after them.
    failures: Vec<StatusCode>,
    received: Vec<(HeaderMap, Bytes)>,
}

async fn receive(
    State(hook): State<Arc<Mutex<Hook>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut hook = hook.lock().unwrap();
    hook.received.push((headers, body));
    if hook.failures.is_empty() {
        StatusCode::OK
    } else {
        hook.failures.remove(0)
    }
}

/// Serves the hook on 127.0.0.1 in a background thread for the test's lifetime.
/// The alert_id of every request the hook received, in order.
fn received_alert_ids(hook: &Mutex<Hook>) -> Vec<String> {
    hook.lock()
        .unwrap()
        .received
        .iter()
        .map(|(_, body)| {
            serde_json::from_slice::<Value>(body).unwrap()["alert_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn serve(hook: Arc<Mutex<Hook>>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = Router::new().route("/hook", post(receive)).with_state(hook);
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{address}/hook")
}

/// `run detect` with the webhook's signing secret in the environment; checks that the secret
/// appears nowhere in what netsentinel prints.
/// A receiver that answers every request with 500.
fn failing_hook() -> Arc<Mutex<Hook>> {
    Arc::new(Mutex::new(Hook {
        failures: vec![StatusCode::INTERNAL_SERVER_ERROR; 100_000],
        ..Hook::default()
    }))
}

fn detect_with_secret(project: &TestProject) -> String {
    let output = project
        .command(&["run", "detect"])
        .env("TEST_HOOK_SECRET", "s3cret")
        .output()
        .unwrap();
    crate::common::assert_success(&output, &["run", "detect"]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("s3cret") && !stdout.contains("s3cret"),
        "the secret is never printed"
    );
    stdout
}

fn webhook_yaml(url: &str, retries: u32) -> String {
    format!(
        "alerts:\n  suppress_for: 0s\n  max_per_run: 10000\n  sinks:\n    - {{ kind: file, path: out/alerts.jsonl }}\n    - {{ kind: webhook, url: '{url}', retries: {retries}, timeout: 5s, secret_env: TEST_HOOK_SECRET }}\n"
    )
}

#[test]
fn webhook_retries_a_server_error_and_signs_every_request() {
    let hook = Arc::new(Mutex::new(Hook {
        failures: vec![StatusCode::SERVICE_UNAVAILABLE],
        ..Hook::default()
    }));
    let url = serve(hook.clone());
    let project = project_with_traffic(&webhook_yaml(&url, 2));
    detect_with_secret(&project);

    let anomalies = scalar(
        &project,
        "SELECT COUNT(*) FROM inferenced.netlog_anomalies WHERE is_anomaly",
    ) as usize;
    let hook = hook.lock().unwrap();
    assert_eq!(
        hook.received.len(),
        anomalies + 1,
        "one retry after the 503"
    );
    let mut ids = BTreeSet::new();
    for (headers, body) in &hook.received {
        let signature = headers["x-netsentinel-signature"].to_str().unwrap();
        assert_eq!(signature, netsentinel::alerts::sinks::sign(b"s3cret", body));
        let alert: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            headers["x-netsentinel-alert-id"],
            alert["alert_id"].as_str().unwrap()
        );
        ids.insert(alert["alert_id"].as_str().unwrap().to_string());
    }
    assert_eq!(
        ids.len(),
        anomalies,
        "every alert arrived; only the failed one twice"
    );
    assert_eq!(
        scalar(
            &project,
            "SELECT COUNT(*) FROM ops.alert_deliveries WHERE sink = 'webhook' AND status = 'delivered'"
        ) as usize,
        anomalies
    );
    assert_eq!(
        scalar(
            &project,
            "SELECT MAX(attempts) FROM ops.alert_deliveries WHERE sink = 'webhook'"
        ),
        1,
        "attempts count runs that tried; the in-run retry is one delivery attempt"
    );
}

#[test]
fn a_webhook_outage_leaves_only_its_deliveries_pending_until_the_next_run() {
    let hook = failing_hook();
    let url = serve(hook.clone());
    let project = project_with_traffic(&webhook_yaml(&url, 0));
    let out = detect_with_secret(&project);
    let anomalies = scalar(
        &project,
        "SELECT COUNT(*) FROM inferenced.netlog_anomalies WHERE is_anomaly",
    );
    assert!(
        out.contains(&format!(
            "sink webhook: 0 delivered, {anomalies} failed, {anomalies} pending"
        )),
        "the step summary says what is pending:\n{out}"
    );
    assert_eq!(
        file_alerts(&project, "out/alerts.jsonl").len() as i64,
        anomalies,
        "the file sink is not held up by the webhook"
    );
    assert_eq!(
        scalar(
            &project,
            "SELECT COUNT(*) FROM ops.alert_deliveries WHERE sink = 'webhook' AND status = 'failed' AND last_error LIKE '%500%'"
        ),
        anomalies
    );

    // The receiver recovers: the next run delivers the backlog, and only it.
    {
        let mut hook = hook.lock().unwrap();
        hook.failures.clear();
        hook.received.clear();
    }
    let out = detect_with_secret(&project);
    assert!(
        out.contains(&format!(
            "sink webhook: {anomalies} delivered, 0 failed, 0 pending"
        )),
        "{out}"
    );
    assert!(out.contains("sink file: 0 delivered"), "{out}");
    let received = received_alert_ids(&hook);
    let unique: BTreeSet<&String> = received.iter().collect();
    assert_eq!(received.len() as i64, anomalies);
    assert_eq!(unique.len(), received.len());
    assert_eq!(
        file_alerts(&project, "out/alerts.jsonl").len() as i64,
        anomalies
    );
}

#[test]
fn a_webhook_url_s_secret_path_and_query_never_reach_stored_errors_or_logs() {
    // Nothing listens there: every attempt fails to connect, and reqwest's own message would
    // name the whole URL.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/services/T0/B0/pathtoken?key=querytoken");
    let project = project_with_traffic(&webhook_yaml(&url, 0));
    let output = project
        .command(&["run", "detect"])
        .env("TEST_HOOK_SECRET", "s3cret")
        .output()
        .unwrap();
    crate::common::assert_success(&output, &["run", "detect"]);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stored = project.query_csv(
        "SELECT last_error FROM ops.alert_deliveries WHERE sink = 'webhook' \
         UNION ALL SELECT error FROM ops.alert_delivery_log WHERE sink = 'webhook'",
    );
    assert!(!stored.is_empty());
    assert!(
        stored
            .iter()
            .all(|error| error.contains(&format!("http://127.0.0.1:{port}/…"))),
        "errors name the host: {stored:?}"
    );
    for secret in ["pathtoken", "querytoken", "s3cret"] {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
        assert!(
            stored.iter().all(|error| !error.contains(secret)),
            "{secret} stored: {stored:?}"
        );
    }
}

#[test]
fn a_sink_down_for_good_is_dead_lettered_after_max_attempts_and_no_longer_tried() {
    let hook = failing_hook();
    let url = serve(hook.clone());
    let project = project_with_traffic(&webhook_yaml(&url, 0).replace(
        "max_per_run: 10000\n",
        "max_per_run: 10000\n  max_attempts: 2\n",
    ));
    let anomalies = {
        detect_with_secret(&project);
        scalar(
            &project,
            "SELECT COUNT(*) FROM inferenced.netlog_anomalies WHERE is_anomaly",
        )
    };
    assert!(anomalies > 0);
    let dead = "SELECT COUNT(*) FROM ops.alert_deliveries WHERE sink = 'webhook' AND status = 'dead' AND attempts = 2 AND last_error LIKE '%500%'";
    assert_eq!(scalar(&project, dead), 0, "one failure is not enough");

    let out = detect_with_secret(&project);
    assert_eq!(scalar(&project, dead), anomalies);
    assert!(
        out.contains(&format!("0 pending, {anomalies} dead-lettered")),
        "the run says so:\n{out}"
    );

    hook.lock().unwrap().received.clear();
    let out = detect_with_secret(&project);
    assert!(
        hook.lock().unwrap().received.is_empty(),
        "dead deliveries are not tried again"
    );
    assert!(
        out.contains("sink webhook: 0 delivered, 0 failed, 0 pending"),
        "{out}"
    );
    assert_eq!(
        scalar(
            &project,
            "SELECT COUNT(*) FROM ops.alert_deliveries WHERE sink = 'file' AND status = 'delivered'"
        ),
        anomalies,
        "the other sink is untouched"
    );
}

#[test]
fn a_sink_down_for_many_runs_delays_no_scoring_and_delivers_its_backlog_once_when_back() {
    const DOWN_RUNS: usize = 3;
    let hook = failing_hook();
    let url = serve(hook.clone());
    let project = project_with_traffic(&webhook_yaml(&url, 0).replace(
        "max_per_run: 10000\n",
        "max_per_run: 10000\n  max_attempts: 10\n",
    ));
    let pending =
        "SELECT COUNT(*) FROM ops.alert_deliveries WHERE sink = 'webhook' AND status = 'failed'";
    let scored = "SELECT COUNT(*) FROM inferenced.netlog_anomalies";
    detect_with_secret(&project);
    for run in 0..DOWN_RUNS {
        // Four more minutes of traffic arrive before each run while the webhook stays down.
        let start = format!("2026-01-01T00:{:02}:00Z", 20 + 4 * run);
        let seed = (100 + run).to_string();
        let before = scalar(&project, scored);
        project.run_ok(&[
            "generate",
            "--into-warehouse",
            "--subscribers",
            "40",
            "--duration",
            "4m",
            "--anomaly-rate",
            "0.05",
            "--start",
            &start,
            "--seed",
            &seed,
        ]);
        detect_with_secret(&project);
        assert!(
            scalar(&project, scored) > before,
            "run {run}: the new windows were scored while the sink was down"
        );
    }
    let alerts = scalar(&project, "SELECT COUNT(*) FROM ops.alert_outbox");
    let backlog = scalar(&project, pending);
    assert!(backlog > 0, "nothing waited for the webhook");
    assert_eq!(
        file_alerts(&project, "out/alerts.jsonl").len() as i64,
        scalar(
            &project,
            "SELECT COUNT(*) FROM ops.alert_deliveries WHERE sink = 'file' AND status = 'delivered'"
        ),
        "the file sink kept delivering"
    );

    // Back up: one run delivers the whole backlog, each alert once.
    {
        let mut hook = hook.lock().unwrap();
        hook.failures.clear();
        hook.received.clear();
    }
    let recovered_at = std::time::Instant::now();
    let out = detect_with_secret(&project);
    let recovery = recovered_at.elapsed();
    assert!(
        out.contains(&format!(
            "sink webhook: {backlog} delivered, 0 failed, 0 pending"
        )),
        "{out}"
    );
    let received = received_alert_ids(&hook);
    let unique: BTreeSet<&String> = received.iter().collect();
    assert_eq!(
        (received.len() as i64, unique.len()),
        (backlog, received.len())
    );
    assert_eq!(scalar(&project, pending), 0);
    eprintln!(
        "sink down for {} runs: {alerts} alerts, {backlog} waited for the webhook, 0 lost, 0 repeated; \
         delivered by the first run after it came back, in {:.1} s",
        DOWN_RUNS + 1,
        recovery.as_secs_f64()
    );
}

#[test]
fn a_pipeline_with_the_alerts_step_needs_an_alerts_section() {
    let project = TestProject::shipped();
    project.replace_alerts("");
    let output = project.command(&["run", "detect"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("pipelines.yaml:") && stderr.contains("no `alerts:` section"),
        "{stderr}"
    );
}

#[test]
fn a_beacon_a_slow_scan_and_a_long_connection_become_one_alert_each_with_their_evidence() {
    let project = TestProject::shipped();
    let start = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    let events = project.path().join("network.jsonl").display().to_string();
    project.run_ok(&[
        "generate",
        "--subscribers",
        "20",
        "--duration",
        "90m",
        "--beacons",
        "1",
        "--slow-scans",
        "1",
        "--long-connections",
        "1",
        "--start",
        &start,
        "--out",
        &events,
    ]);
    project.run_ok(&["ingest", &events]);
    project.run_ok(&["run", "train"]);
    let out = project.run_ok(&["run", "detect"]);
    assert!(out.contains("3 detector findings"), "{out}");

    let alerted = |kind: &str| {
        project.query_csv(&format!(
            "SELECT alerted.subscriber, alerted.subnet, alerted.payload FROM ops.alert_outbox AS alerted \
             WHERE alerted.kind = '{kind}' AND EXISTS (SELECT 1 FROM raw.netlog_events AS e \
             WHERE e.subscriberId = alerted.subscriber AND e.dstIP = alerted.subnet AND e.label = '{label}')",
            label = match kind {
                "netlog_beacons" => "beaconing",
                "netlog_slow_scans" => "slow_scan",
                _ => "long_connection",
            }
        ))
    };
    let beacons = alerted("netlog_beacons");
    assert_eq!(
        beacons.len(),
        1,
        "the beacon's own pair alerts: {beacons:?}"
    );
    assert!(
        beacons[0].contains("connections over") && beacons[0].contains("one every"),
        "{beacons:?}"
    );
    let scans = alerted("netlog_slow_scans");
    assert_eq!(scans.len(), 1, "the scan's own pair alerts: {scans:?}");
    assert!(scans[0].contains("distinct ports probed"), "{scans:?}");
    let tunnels = alerted("netlog_long_connections");
    assert_eq!(
        tunnels.len(),
        1,
        "the connection's own pair alerts: {tunnels:?}"
    );
    assert!(
        tunnels[0].contains("one connection to port") && tunnels[0].contains("records)"),
        "{tunnels:?}"
    );
    assert_eq!(
        project.query_csv(
            "SELECT COUNT(*) FROM ops.alert_outbox WHERE kind NOT IN ('anomaly', 'summary')"
        ),
        ["3"],
        "nothing else is a finding"
    );

    let again = project.run_ok(&["run", "detect"]);
    assert!(
        again.contains("0 detector findings"),
        "an incident alerts once: {again}"
    );
}

/// A webhook that accepts connections and never answers: each delivery would wait out the
/// sink's 300 s timeout. The run's delivery budget cuts it short, leaves the deliveries pending
/// and says so, and the next windows are not held back. (The bound leaves the pipeline's own
/// steps minutes on a loaded machine; without the budget the run takes over 300 s.)
#[test]
fn a_hanging_sink_cannot_hold_a_run_past_its_delivery_budget() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(8) {
            held.extend(stream);
        }
        std::thread::sleep(std::time::Duration::from_secs(330));
    });
    let project = project_with_traffic(
        &webhook_yaml(&url, 0)
            .replace("timeout: 5s", "timeout: 300s")
            .replace(
                "max_per_run: 10000\n",
                "max_per_run: 10000\n  delivery_budget: 2s\n",
            ),
    );
    let started = std::time::Instant::now();
    let out = detect_with_secret(&project);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(150),
        "the run ended within its budget, not the sink's timeout: {:?}",
        started.elapsed()
    );
    let anomalies = scalar(
        &project,
        "SELECT COUNT(*) FROM inferenced.netlog_anomalies WHERE is_anomaly",
    );
    assert!(anomalies > 0);
    assert!(
        out.contains(&format!(
            "{anomalies} deferred to the next run (delivery budget spent)"
        )),
        "{out}"
    );
    assert_eq!(
        scalar(
            &project,
            "SELECT COUNT(*) FROM ops.alert_deliveries WHERE sink = 'webhook' AND status = 'pending' AND attempts = 0"
        ),
        anomalies,
        "nothing is lost or counted as an attempt"
    );
    assert_eq!(
        scalar(
            &project,
            "SELECT COUNT(*) FROM ops.alert_deliveries WHERE sink = 'file' AND status = 'delivered'"
        ),
        anomalies,
        "the file sink, first in the list, delivered"
    );
}
