//! The BigQuery emulator for integration tests: the `bqemulator` PyPI package installed by
//! `scripts/bqemulator.sh`, started on 127.0.0.1 on free ports and stopped on drop; and a
//! small fault-injecting proxy to put in front of it.
//!
//! A test whose emulator is not installed skips with a printed reason, unless `CI` is set:
//! then it fails, so CI never passes on tests that did not run.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(90);

fn executable() -> PathBuf {
    if let Some(path) = std::env::var_os("NETSENTINEL_BQEMULATOR") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/netsentinel-bqemulator/bin/bqemulator")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

pub struct BqEmulator {
    child: Child,
    pub port: u16,
    pub project: String,
    _logs: tempfile::TempDir,
}

impl BqEmulator {
    /// Starts an emulator for `project`; `None` (after saying why) when it is not installed
    /// and `CI` is unset.
    pub fn start(project: &str) -> Option<Self> {
        let exe = executable();
        if !exe.exists() {
            let reason = format!(
                "the BigQuery emulator is not installed at {} (scripts/bqemulator.sh installs it)",
                exe.display()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{reason}; CI needs it");
            }
            eprintln!("skipped: {reason}");
            return None;
        }
        // The venv's `home` holds the offline-imported DuckDB spatial extension.
        let home = exe
            .parent()
            .and_then(Path::parent)
            .map(|venv| venv.join("home"))
            .expect("bqemulator lives in VENV/bin");
        let logs = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(logs.path().join("bqemulator.log")).expect("log file");
        let (port, grpc_port) = (free_port(), free_port());
        let child = Command::new(&exe)
            .args([
                "start",
                "--ephemeral",
                "--rest-host",
                "127.0.0.1",
                "--rest-port",
            ])
            .arg(port.to_string())
            .args(["--grpc-host", "127.0.0.1", "--grpc-port"])
            .arg(grpc_port.to_string())
            .args(["--project", project, "--log-level", "warning"])
            .env("HOME", &home)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let mut emulator = BqEmulator {
            child,
            port,
            project: project.to_string(),
            _logs: logs,
        };
        emulator.wait_ready();
        Some(emulator)
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        while started.elapsed() < READY_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "bqemulator exited ({status}) before it was ready:\n{}",
                    self.log()
                );
            }
            if http_get(self.port, "/readyz").is_some_and(|r| r.contains(" 200 ")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "bqemulator was not ready within {READY_TIMEOUT:?}:\n{}",
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._logs.path().join("bqemulator.log")).unwrap_or_default()
    }

    /// `BIGQUERY_EMULATOR_HOST` for this emulator.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn base_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/bigquery/v2/projects/{}",
            self.port, self.project
        )
    }
}

impl Drop for BqEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the proxy saw and did.
#[derive(Default)]
pub struct ProxyLog {
    /// The job id of every job insert (POST …/jobs), in order.
    pub job_inserts: Vec<String>,
    /// The job ids whose insert was answered with an injected 503.
    pub faulted: Vec<String>,
    /// The configuration (labels, byte cap…) of the job inserts labelled with a step.
    pub step_jobs: Vec<serde_json::Value>,
    /// Rows refused in insertAll answers.
    pub refused_rows: usize,
}

/// Picks the insertAll rows (their `json`) the proxy refuses.
pub type RowFilter = fn(&serde_json::Value) -> bool;

struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    faults_left: AtomicU32,
    /// How long each job insert is held before it is forwarded, in milliseconds.
    job_delay_ms: AtomicU64,
    /// Replaces the estimate in dry-run answers (the emulator always says 0).
    dry_run_bytes: Option<u64>,
    refuse_rows: Mutex<Option<RowFilter>>,
    log: Mutex<ProxyLog>,
}

/// An HTTP proxy on 127.0.0.1 in front of the emulator: it answers the first `faults` job
/// inserts with a 503 `backendError`, as BigQuery does under load, can slow job inserts down,
/// can refuse chosen insertAll rows the way BigQuery refuses invalid ones (the emulator
/// accepts or fails whole requests), and forwards everything else.
pub struct FaultProxy {
    pub port: u16,
    state: Arc<ProxyState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    pub fn start(upstream_port: u16, faults: u32, dry_run_bytes: Option<u64>) -> Self {
        let state = Arc::new(ProxyState {
            upstream: format!("http://127.0.0.1:{upstream_port}"),
            http: reqwest::Client::new(),
            faults_left: AtomicU32::new(faults),
            job_delay_ms: AtomicU64::new(0),
            dry_run_bytes,
            refuse_rows: Mutex::new(None),
            log: Mutex::new(ProxyLog::default()),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().unwrap().port();
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let app_state = state.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().fallback(forward).with_state(app_state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("proxy serves");
            });
        });
        FaultProxy {
            port,
            state,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// From now on, insertAll rows matching `filter` are not forwarded and are answered as
    /// BigQuery answers an invalid row under `skipInvalidRows`.
    pub fn refuse_rows(&self, filter: RowFilter) {
        *self.state.refuse_rows.lock().unwrap() = Some(filter);
    }

    /// From now on, holds each job insert for `delay` before forwarding it: a slow BigQuery,
    /// so that a run lasts long enough for another to start beside it.
    pub fn delay_jobs(&self, delay: Duration) {
        self.state
            .job_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn log<T>(&self, read: impl FnOnce(&ProxyLog) -> T) -> T {
        read(&self.state.log.lock().unwrap())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn forward(
    axum::extract::State(state): axum::extract::State<Arc<ProxyState>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = uri.path().to_string();
    let mut request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let mut body = body;
    let mut refused = Vec::new();
    let filter = *state.refuse_rows.lock().unwrap();
    if let (Some(filter), true) = (filter, path.ends_with("/insertAll")) {
        refused = refuse(&mut request, filter);
        state.log.lock().unwrap().refused_rows += refused.len();
        body = request.to_string().into();
    }
    let is_job_insert = method == axum::http::Method::POST && path.ends_with("/jobs");
    let dry_run = request["configuration"]["dryRun"] == true;
    if is_job_insert && !dry_run {
        let job_id = request["jobReference"]["jobId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let delay = state.job_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let mut log = state.log.lock().unwrap();
        log.job_inserts.push(job_id.clone());
        if request["configuration"]["labels"].get("step").is_some() {
            log.step_jobs.push(request["configuration"].clone());
        }
        let inject = state
            .faults_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if inject {
            log.faulted.push(job_id);
            let body = serde_json::json!({"error": {"code": 503, "message": "Error encountered during execution. Retrying may solve the problem.",
                "errors": [{"domain": "global", "reason": "backendError", "message": "Error encountered during execution. Retrying may solve the problem."}],
                "status": "UNAVAILABLE"}});
            return (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response();
        }
    }
    let target = format!(
        "{}{}",
        state.upstream,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
    let answer = state
        .http
        .request(method, target)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            return (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response();
        }
    };
    let status = axum::http::StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let mut text = answer.text().await.unwrap_or_default();
    if let (false, Ok(mut reply)) = (
        refused.is_empty(),
        serde_json::from_str::<serde_json::Value>(&text),
    ) {
        reply["insertErrors"] = refused
            .iter()
            .map(|index| serde_json::json!({"index": index, "errors": [{"reason": "invalid",
                "location": "txBytes", "message": "Cannot convert value to integer (bad value): txBytes"}]}))
            .collect();
        text = reply.to_string();
    }
    if let (true, Some(bytes), Ok(mut job)) = (
        dry_run,
        state.dry_run_bytes,
        serde_json::from_str::<serde_json::Value>(&text),
    ) {
        job["statistics"]["query"]["totalBytesProcessed"] = bytes.to_string().into();
        text = job.to_string();
    }
    (status, [("content-type", "application/json")], text).into_response()
}

/// Removes the rows `filter` picks from an insertAll request; returns their indices in it.
fn refuse(request: &mut serde_json::Value, filter: RowFilter) -> Vec<usize> {
    let Some(rows) = request["rows"].as_array_mut() else {
        return Vec::new();
    };
    let refused: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, row)| filter(&row["json"]))
        .map(|(index, _)| index)
        .collect();
    let mut index = 0;
    rows.retain(|_| {
        index += 1;
        !refused.contains(&(index - 1))
    });
    refused
}
