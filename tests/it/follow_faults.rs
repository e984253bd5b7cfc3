//! `netsentinel ingest --follow` while its warehouse cannot be written: the DuckDB file lives
//! on a small tmpfs that the test fills up (a real full filesystem, ENOSPC), then frees. The
//! ingest keeps going, answers HTTP 503 with Retry-After meanwhile, and stores every event once
//! when the disk has room again. Mounting needs root: without it the test is skipped with a
//! printed reason, unless `CI` is set, where it fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::TestProject;
use crate::common::daemon::{Daemon, sample};
use crate::common::raw_http::{RawConnection, request_head};

/// A tmpfs mounted for the test's life.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).expect("mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            return Some(Tmpfs {
                dir: dir.to_path_buf(),
            });
        }
        let reason = "cannot mount a tmpfs to fill up (needs root)";
        if std::env::var_os("CI").is_some() {
            panic!("{reason}, and CI requires it");
        }
        eprintln!("skipped: {reason}");
        None
    }

    /// Writes a file until the filesystem is full; returns it.
    fn fill(&self) -> PathBuf {
        let path = self.dir.join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler");
        let chunk = vec![0u8; 64 << 10];
        // Bounded by the filesystem's size: each write that succeeds takes a chunk of it.
        while file
            .write_all(&chunk)
            .and_then(|()| file.sync_all())
            .is_ok()
        {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Generated NDJSON lines, in time order.
fn netlog_lines(project: &TestProject, events: u32) -> Vec<String> {
    let path = project.path().join("flows.jsonl");
    let (events, path_text) = (events.to_string(), path.display().to_string());
    project.run_ok(&[
        "generate",
        "--events",
        &events,
        "--subscribers",
        "20",
        "--out",
        &path_text,
    ]);
    let lines = std::fs::read_to_string(&path).expect("generated flows");
    lines.lines().map(str::to_string).collect()
}

fn wait_for_metric(daemon: &Daemon, metrics_url: &str, series: &str, at_least: f64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let metrics = crate::common::http_get(metrics_url);
        if sample(&metrics, series) >= at_least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} < {at_least}:\n{metrics}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn post(host: &str, body: &str) -> RawConnection {
    let length = body.len().to_string();
    let mut connection = RawConnection::open(host);
    let head = request_head(
        "POST",
        "/v1/events",
        host,
        &[
            ("Content-Type", "application/x-ndjson"),
            ("Content-Length", length.as_str()),
        ],
    );
    connection.send(format!("{head}{body}").as_bytes());
    connection
}

#[test]
fn a_full_disk_fails_commits_and_the_ingest_keeps_going_and_loses_nothing() {
    let project = TestProject::shipped();
    let Some(disk) = Tmpfs::mount(&project.path().join(".netsentinel"), "48m") else {
        return;
    };
    let lines = netlog_lines(&project, 3000);
    let (before, during, over_http) = (&lines[..1000], &lines[1000..2500], &lines[2500..]);
    let mut daemon = Daemon::spawn(
        &project,
        &[
            "ingest",
            "--follow",
            "-",
            "--http",
            "--listen",
            "127.0.0.1:0",
            "--commit-interval",
            "100ms",
        ],
        &[],
    );
    let metrics_url = daemon.url_printed_with("/metrics");
    let events_url = daemon.url_printed_with("/v1/events");
    let host = events_url
        .trim_start_matches("http://")
        .trim_end_matches("/v1/events")
        .to_string();
    daemon.feed(before);
    wait_for_metric(
        &daemon,
        &metrics_url,
        "netsentinel_ingest_events_total",
        1000.0,
    );

    let filler = disk.fill();
    daemon.feed(during);
    wait_for_metric(
        &daemon,
        &metrics_url,
        "netsentinel_ingest_commit_failures_total",
        2.0,
    );
    let failure = daemon.wait_for_log("commit failed", Duration::from_secs(60));
    assert!(failure.contains("space"), "the error is logged: {failure}");
    // HTTP senders are told to come back, not kept waiting.
    let refused = post(&host, &over_http.join("\n")).response(Duration::from_secs(60));
    assert_eq!(refused.status, 503, "{refused:?}");
    let retry_after: u64 = refused
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=30).contains(&retry_after), "{retry_after}");

    std::fs::remove_file(filler).expect("free the disk");
    let freed_at = Instant::now();
    wait_for_metric(
        &daemon,
        &metrics_url,
        "netsentinel_ingest_events_total",
        2500.0,
    );
    let recovered_in = freed_at.elapsed();
    // The sender of the refused request sends it again.
    let accepted = post(&host, &over_http.join("\n")).response(Duration::from_secs(60));
    assert_eq!(
        (accepted.status, accepted.body.as_str()),
        (200, r#"{"accepted":500,"rejected":0}"#)
    );

    daemon.close_stdin();
    daemon.signal("TERM");
    let status = daemon.wait(Duration::from_secs(60));
    assert!(status.success(), "{}", daemon.log_after_exit());
    let stored =
        project.query_csv("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM raw.netlog_events");
    assert_eq!(stored, ["3000,3000"], "every event stored, once");
    eprintln!(
        "full disk: 3000 of 3000 events stored once; the stdin backlog committed {:.1} s after the disk had room",
        recovered_in.as_secs_f64()
    );
    drop(disk);
}
