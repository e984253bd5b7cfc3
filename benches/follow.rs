//! Continuous ingest (issue 7), two measurements in one run:
//!
//! 1. Sustained `ingest --follow -` rate: a pre-generated NDJSON file piped through standard
//!    input as fast as the ingester takes it, against the peer DuckDB reading the same events
//!    with its own `read_csv` into a table (no validation, ids or rejects: the
//!    ceiling; the bundled DuckDB has no JSON reader offline).
//! 2. Event-to-alert latency: live traffic (timestamps = now) replayed in real time at RATE
//!    events/s for SECONDS into `ingest --follow --http --detect-every 250ms` with 1-second
//!    windows and no allowed lateness, after a model was trained. For each alert, latency is the
//!    time it appeared in the alerts file minus the time the last event of its window was sent.
//!
//! Usage: `cargo bench --bench follow -- [RATE] [SECONDS]` (defaults 10000 and 60); prints
//! `key=value` lines.

#[path = "../tests/it/common/fs.rs"]
mod fs;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use netsentinel_generate::{self as generate, GeneratorConfig, StopAt};

const WINDOW_VARS: [&str; 4] = [
    "--var",
    "window_seconds=1",
    "--var",
    "allowed_lateness_seconds=0",
];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let rate: u32 = args.first().map_or(10_000, |a| a.parse().expect("RATE"));
    let seconds: i64 = args.get(1).map_or(60, |a| a.parse().expect("SECONDS"));
    let dir = tempfile::tempdir().expect("temp dir");
    let project = copy_project(dir.path());

    sustained_rate(&project, rate, seconds);
    event_to_alert_latency(&project, rate, seconds);
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_netsentinel"))
}

fn netsentinel(project: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .arg("--project-dir")
        .arg(project)
        .arg("-q")
        .args(WINDOW_VARS)
        .args(args);
    command
}

fn run(project: &Path, args: &[&str]) {
    let status = netsentinel(project, args).status().expect("netsentinel");
    assert!(status.success(), "netsentinel {args:?} failed");
}

fn generator(rate: u32, seconds: i64, start: DateTime<Utc>, seed: u64) -> GeneratorConfig {
    let subscribers = (rate / 5).max(1);
    GeneratorConfig {
        seed,
        subscribers,
        stop: StopAt::Duration(chrono::Duration::seconds(seconds)),
        average_gap: Duration::from_secs_f64(subscribers as f64 / rate as f64),
        start,
        ..GeneratorConfig::default()
    }
}

/// `rate` events a second for `seconds` as NDJSON lines: subscribers × (1 / mean gap) = rate.
fn traffic(rate: u32, seconds: i64, start: DateTime<Utc>, seed: u64) -> Vec<String> {
    let config = generator(rate, seconds, start, seed);
    let mut out = Vec::new();
    generate::write_jsonl(generate::generate(&config).expect("generator"), &mut out)
        .expect("write");
    String::from_utf8(out)
        .expect("utf-8")
        .lines()
        .map(str::to_string)
        .collect()
}

fn sustained_rate(project: &Path, rate: u32, seconds: i64) {
    let start = "2026-01-01T00:00:00Z".parse().unwrap();
    let lines = traffic(rate, seconds, start, 1);
    let file = project.join("sustained.jsonl");
    // The bundled DuckDB has no JSON extension offline, so the peer reads the same events as CSV.
    let csv = project.join("sustained.csv");
    let events = generate::generate(&generator(rate, seconds, start, 1)).expect("generator");
    generate::write_csv(events, std::fs::File::create(&csv).expect("csv")).expect("write csv");
    std::fs::write(&file, lines.join("\n") + "\n").expect("write");
    let warehouse = project.join(".netsentinel/local.duckdb");
    let _ = std::fs::remove_file(&warehouse);

    let started = Instant::now();
    let mut child = netsentinel(
        project,
        &["ingest", "--follow", "-", "--listen", "127.0.0.1:0"],
    )
    .stdin(Stdio::from(std::fs::File::open(&file).expect("open")))
    .stdout(Stdio::null())
    .spawn()
    .expect("ingest --follow");
    assert!(child.wait().expect("wait").success());
    let ours = started.elapsed().as_secs_f64();

    let peer_db = project.join("peer.duckdb");
    let started = Instant::now();
    let connection = duckdb::Connection::open(&peer_db).expect("peer database");
    connection
        .execute_batch(&format!(
            "CREATE TABLE events AS SELECT * FROM read_csv('{}')",
            csv.display()
        ))
        .expect("read_csv");
    let peer = started.elapsed().as_secs_f64();
    let events = lines.len() as f64;
    println!("sustained_events={}", lines.len());
    println!("netsentinel_follow_stdin_seconds={ours:.2}");
    println!(
        "netsentinel_follow_stdin_events_per_second={:.0}",
        events / ours
    );
    println!("peer_duckdb_read_csv_seconds={peer:.2}");
    println!(
        "peer_duckdb_read_csv_events_per_second={:.0}",
        events / peer
    );
    let _ = std::fs::remove_file(&warehouse);
}

fn event_to_alert_latency(project: &Path, rate: u32, seconds: i64) {
    // A model of normal traffic first (the generator injects its anomalies at its usual rate).
    let training = project.join("training.jsonl");
    let start = Utc::now() - chrono::Duration::minutes(20);
    std::fs::write(
        &training,
        traffic(rate / 10, 600, start, 2).join("\n") + "\n",
    )
    .expect("write");
    run(project, &["ingest", training.to_str().unwrap()]);
    run(project, &["run", "train"]);

    let alerts_file = project.join(".netsentinel/alerts.jsonl");
    let _ = std::fs::remove_file(&alerts_file);
    let live_start = Utc::now() + chrono::Duration::seconds(5);
    let lines = traffic(rate, seconds, live_start, 3);
    let mut ingester = netsentinel(
        project,
        &[
            "ingest",
            "--follow",
            "--http",
            "--listen",
            "127.0.0.1:0",
            "--commit-interval",
            "100ms",
            "--detect-every",
            "250ms",
        ],
    )
    .stdout(Stdio::piped())
    .spawn()
    .expect("ingest --follow --http");
    let mut stdout = BufReader::new(ingester.stdout.take().expect("stdout")).lines();
    let events_url = stdout
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.ends_with("/v1/events"))
                .map(str::to_string)
        })
        .expect("the ingester's address");
    // Keep reading its output, so it never writes to a closed pipe.
    std::thread::spawn(move || stdout.for_each(drop));

    let alerts_seen: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let (seen, watching, file) = (alerts_seen.clone(), watching.clone(), alerts_file.clone());
        std::thread::spawn(move || tail(&file, &seen, &watching))
    };

    let last_sent = replay(&events_url, &lines);
    // The last windows close a second after the replay; give detection time to catch up.
    std::thread::sleep(Duration::from_secs(5));
    watching.store(false, std::sync::atomic::Ordering::SeqCst);
    watcher.join().expect("watcher");
    let _ = Command::new("kill")
        .args(["-TERM", &ingester.id().to_string()])
        .status();
    assert!(ingester.wait().expect("wait").success());

    let mut latencies: Vec<f64> = alerts_seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(key, seen)| Some(seen.duration_since(*last_sent.get(key)?).as_secs_f64()))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "live_events={} rate={rate}/s seconds={seconds}",
        lines.len()
    );
    println!("alerts={}", latencies.len());
    assert!(!latencies.is_empty(), "no alert was raised");
    println!("event_to_alert_p50_seconds={:.3}", percentile(0.50));
    println!("event_to_alert_p95_seconds={:.3}", percentile(0.95));
    println!("event_to_alert_p99_seconds={:.3}", percentile(0.99));
    step_durations(&project.join(".netsentinel/local.duckdb"));
}

/// Where the detection runs' time went, from the warehouse's own step records: per step, the
/// mean over the first and the last ten runs (a growing cost shows as a rising mean).
fn step_durations(warehouse: &Path) {
    let connection = duckdb::Connection::open_with_flags(
        warehouse,
        duckdb::Config::default()
            .access_mode(duckdb::AccessMode::ReadOnly)
            .expect("read-only"),
    )
    .expect("the warehouse");
    let mut statement = connection
        .prepare(
            "WITH detect AS (
               SELECT s.step, s.duration_ms,
                 ROW_NUMBER() OVER (PARTITION BY s.step ORDER BY s.started_at) AS nth,
                 COUNT(*) OVER (PARTITION BY s.step) AS runs
               FROM ops.step_runs AS s JOIN ops.runs AS r USING (run_id)
               WHERE r.pipeline = 'detect')
             SELECT step, MAX(runs), AVG(duration_ms) FILTER (WHERE nth <= 10),
               AVG(duration_ms) FILTER (WHERE nth > runs - 10), AVG(duration_ms)
             FROM detect GROUP BY step ORDER BY MIN(nth), step",
        )
        .expect("step query");
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, f64>(2)?,
                row.get::<_, f64>(3)?,
                row.get::<_, f64>(4)?,
            ))
        })
        .expect("step durations");
    for row in rows {
        let (step, runs, first, last, mean) = row.expect("row");
        println!(
            "detect_step={step} runs={runs} mean_ms={mean:.0} first10_ms={first:.0} last10_ms={last:.0}"
        );
    }
}

/// Posts each event when the wall clock reaches its start, in 10 ms slices; returns when the
/// last event of each (subscriber, /22, 1 s window) was sent.
fn replay(url: &str, lines: &[String]) -> HashMap<String, Instant> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let client = reqwest::Client::new();
    let mut last_sent = HashMap::new();
    let mut pending = Vec::new();
    let mut slice: Vec<&String> = Vec::new();
    let mut slice_keys = Vec::new();
    let mut slice_due: Option<DateTime<Utc>> = None;
    for line in lines {
        let flow: serde_json::Value = serde_json::from_str(line).expect("JSON");
        let start: DateTime<Utc> = flow["startTime"]
            .as_str()
            .expect("startTime")
            .parse()
            .expect("time");
        if slice_due.is_some_and(|due| start >= due) {
            send(&runtime, &client, url, &slice, &mut pending);
            let now = Instant::now();
            for key in slice_keys.drain(..) {
                last_sent.insert(key, now);
            }
            slice.clear();
        }
        let due = *slice_due.get_or_insert(start);
        if start >= due {
            slice_due = Some(start + chrono::Duration::milliseconds(10));
            if let Ok(wait) = (start - Utc::now()).to_std() {
                std::thread::sleep(wait);
            }
        }
        slice.push(line);
        slice_keys.push(window_key(&flow));
    }
    send(&runtime, &client, url, &slice, &mut pending);
    let now = Instant::now();
    for key in slice_keys {
        last_sent.insert(key, now);
    }
    for answer in runtime.block_on(futures::future::join_all(pending)) {
        assert!(
            answer
                .ok()
                .and_then(Result::ok)
                .is_some_and(|r| r.status().is_success()),
            "a POST failed"
        );
    }
    last_sent
}

fn send(
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: &str,
    slice: &[&String],
    pending: &mut Vec<tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>>,
) {
    if slice.is_empty() {
        return;
    }
    let body = slice
        .iter()
        .map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let request = client
        .post(url)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send();
    pending.push(runtime.spawn(request));
}

/// subscriber | /22 | window start second: how alerts name a window.
fn window_key(flow: &serde_json::Value) -> String {
    let ip: Ipv4Addr = flow["dstIP"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    let subnet = Ipv4Addr::from(u32::from(ip) & !0x3ff);
    let start: DateTime<Utc> = flow["startTime"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .unwrap_or_default();
    format!(
        "{}|{subnet}|{}",
        flow["subscriberId"].as_str().unwrap_or_default(),
        start.timestamp()
    )
}

/// Records each alert line as it appears in the alerts file.
fn tail(
    file: &Path,
    seen: &Mutex<Vec<(String, Instant)>>,
    watching: &std::sync::atomic::AtomicBool,
) {
    let mut offset = 0usize;
    while watching.load(std::sync::atomic::Ordering::SeqCst) {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let now = Instant::now();
        // Only whole lines: the sink may be half-way through writing the last one.
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        for line in text.get(offset..complete).unwrap_or_default().lines() {
            let Ok(alert) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let start: DateTime<Utc> = alert["window_start"]
                .as_str()
                .unwrap_or_default()
                .parse()
                .unwrap_or_default();
            let key = format!(
                "{}|{}|{}",
                alert["subscriber"].as_str().unwrap_or_default(),
                alert["subnet"].as_str().unwrap_or_default(),
                start.timestamp()
            );
            seen.lock().unwrap().push((key, now));
        }
        offset = offset.max(complete);
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn copy_project(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(root.join("pipelines.yaml"), dir.join("pipelines.yaml")).expect("pipelines.yaml");
    fs::copy_dir(&root.join("sql"), &dir.join("sql"));
    dir.to_path_buf()
}
