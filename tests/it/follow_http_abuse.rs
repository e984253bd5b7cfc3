//! `POST /v1/events` of a real `netsentinel ingest --follow --http` under abuse, driven byte by
//! byte over 127.0.0.1: a wrong token is refused before the body is read, slow-loris headers
//! and bodies are cut by their timeouts, oversized requests and requests of too many lines are
//! refused (and store no reject), a wrong Content-Type is 415, cross-origin and DNS-rebound
//! requests are 403, connections past the limit are closed, and SIGTERM ends the process within
//! a bound while a client is stuck mid-request.

use std::time::{Duration, Instant};

use crate::common::TestProject;
use crate::common::daemon::{Daemon, sample};
use crate::common::raw_http::{Outcome, RawConnection, request_head};

const TOKEN: &str = "s3cret-token";

/// Far longer than any timeout under test: what must happen, happens well within it.
const BOUND: Duration = Duration::from_secs(20);

struct Endpoint {
    daemon: Daemon,
    /// `127.0.0.1:PORT`
    host: String,
    metrics_url: String,
}

fn start(project: &TestProject, args: &[&str], envs: &[(&str, &str)]) -> Endpoint {
    let mut full = vec![
        "ingest",
        "--follow",
        "--http",
        "--listen",
        "127.0.0.1:0",
        "--commit-interval",
        "100ms",
    ];
    full.extend_from_slice(args);
    let daemon = Daemon::spawn(project, &full, envs);
    let events_url = daemon.url_printed_with("/v1/events");
    let metrics_url = daemon.url_printed_with("/metrics");
    let host = events_url
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix("/v1/events"))
        .expect("http://HOST/v1/events")
        .to_string();
    Endpoint {
        daemon,
        host,
        metrics_url,
    }
}

impl Endpoint {
    fn connect(&self) -> RawConnection {
        RawConnection::open(&self.host)
    }

    /// A POST of `body` with the token and NDJSON, plus `extra` headers.
    fn post(&self, body: &str, extra: &[(&str, &str)]) -> RawConnection {
        let length = body.len().to_string();
        let bearer = format!("Bearer {TOKEN}");
        let mut headers = vec![
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/x-ndjson"),
            ("Content-Length", length.as_str()),
        ];
        headers.extend_from_slice(extra);
        let mut connection = self.connect();
        connection.send(request_head("POST", "/v1/events", &self.host, &headers).as_bytes());
        connection.send(body.as_bytes());
        connection
    }

    fn metric(&self, series: &str) -> f64 {
        sample(&crate::common::http_get(&self.metrics_url), series)
    }
}

fn flow(port: u32) -> String {
    let start = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    format!(
        r#"{{"subscriberId":"s1","srcIP":"10.0.0.1","dstIP":"10.1.0.1","srcPort":{port},"dstPort":443,"txBytes":3,"rxBytes":4,"startTime":"{start}","endTime":"{start}"}}"#
    )
}

#[test]
fn refusals_come_from_the_headers_and_timeouts_cut_slow_clients() {
    let project = TestProject::shipped();
    let endpoint = start(
        &project,
        &[
            "--header-timeout",
            "1s",
            "--body-timeout",
            "2s",
            "--max-body-bytes",
            "100000",
            "--max-request-lines",
            "50",
        ],
        &[("NETSENTINEL_INGEST_TOKEN", TOKEN)],
    );
    let host = endpoint.host.as_str();

    // A wrong token declaring 10 GB, of which no byte is sent: refused at once. Had the server
    // waited for the body it would have answered 413 or, after 2 s, 408.
    let mut connection = endpoint.connect();
    let head = request_head(
        "POST",
        "/v1/events",
        host,
        &[
            ("Authorization", "Bearer wrong-token"),
            ("Content-Type", "application/x-ndjson"),
            ("Content-Length", "10000000000"),
        ],
    );
    connection.send(head.as_bytes());
    let refused = connection.response(BOUND);
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));

    // Slow-loris headers: half a request head, then nothing. Closed by the header timeout.
    let mut slow_head = endpoint.connect();
    slow_head.send(format!("POST /v1/events HTTP/1.1\r\nHost: {host}\r\nContent-Ty").as_bytes());
    let started = Instant::now();
    assert!(
        matches!(slow_head.outcome(BOUND), Outcome::Closed),
        "a slow head is cut"
    );
    assert!(started.elapsed() >= Duration::from_millis(500));

    // A connection that sends nothing at all is idle: closed by the same timeout.
    let mut idle = endpoint.connect();
    assert!(
        matches!(idle.outcome(BOUND), Outcome::Closed),
        "an idle connection is closed"
    );

    // Slow-loris body: the head in full, 10 of the 1,000 bytes it declares, then nothing.
    let bearer = format!("Bearer {TOKEN}");
    let mut slow_body = endpoint.connect();
    let head = request_head(
        "POST",
        "/v1/events",
        host,
        &[
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/x-ndjson"),
            ("Content-Length", "1000"),
        ],
    );
    slow_body.send(head.as_bytes());
    slow_body.send(b"{\"subscri");
    let cut = slow_body.response(BOUND);
    assert_eq!(cut.status, 408, "{cut:?}");
    assert!(cut.body.contains("--body-timeout"), "{}", cut.body);

    // Declared larger than --max-body-bytes: refused before reading.
    let mut oversized = endpoint.connect();
    let head = request_head(
        "POST",
        "/v1/events",
        host,
        &[
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/x-ndjson"),
            ("Content-Length", "100001"),
        ],
    );
    oversized.send(head.as_bytes());
    let refused = oversized.response(BOUND);
    assert_eq!(refused.status, 413, "{refused:?}");
    assert!(refused.body.contains("100000 bytes"), "{}", refused.body);

    // A chunked body that grows past the limit: refused when it does.
    let mut chunked = endpoint.connect();
    let head = request_head(
        "POST",
        "/v1/events",
        host,
        &[
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/x-ndjson"),
            ("Transfer-Encoding", "chunked"),
        ],
    );
    chunked.send(head.as_bytes());
    let chunk = "x".repeat(60_000);
    chunked.send(
        format!(
            "{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n",
            chunk.len(),
            chunk.len()
        )
        .as_bytes(),
    );
    assert_eq!(chunked.response(BOUND).status, 413);

    // 51 junk lines where 50 are allowed: refused whole, naming the limit; no reject stored.
    let junk = vec!["junk"; 51].join("\n");
    let refused = endpoint.post(&junk, &[]).response(BOUND);
    assert_eq!(refused.status, 413, "{refused:?}");
    assert!(
        refused.body.contains("more than 50 lines"),
        "{}",
        refused.body
    );

    // Not NDJSON: 415, naming what is accepted.
    let mut plain = endpoint.connect();
    let body = flow(1);
    let length = body.len().to_string();
    let head = request_head(
        "POST",
        "/v1/events",
        host,
        &[
            ("Authorization", bearer.as_str()),
            ("Content-Type", "text/plain"),
            ("Content-Length", length.as_str()),
        ],
    );
    plain.send(format!("{head}{body}").as_bytes());
    let refused = plain.response(BOUND);
    assert_eq!(refused.status, 415, "{refused:?}");
    assert!(
        refused.body.contains("application/x-ndjson"),
        "{}",
        refused.body
    );

    // A browser page elsewhere: 403, with no CORS header to let it read anything.
    let refused = endpoint
        .post(&flow(2), &[("Origin", "http://evil.example")])
        .response(BOUND);
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.header("access-control-allow-origin").is_none());

    // The same request from a same-origin page is taken, and the valid lines stored.
    let origin = format!("http://{host}");
    let taken = endpoint
        .post(
            &format!("{}\n{}", flow(3), flow(4)),
            &[("Origin", origin.as_str())],
        )
        .response(BOUND);
    assert_eq!(
        (taken.status, taken.body.as_str()),
        (200, r#"{"accepted":2,"rejected":0}"#)
    );
    assert_eq!(endpoint.metric("netsentinel_ingest_events_total"), 2.0);
    assert_eq!(
        endpoint.metric("netsentinel_ingest_rejects_total"),
        0.0,
        "no refused request became rejects"
    );
}

#[test]
fn connections_past_the_limit_are_closed_and_dns_rebound_pages_refused() {
    let project = TestProject::shipped();
    let endpoint = start(
        &project,
        &["--max-connections", "3", "--header-timeout", "30s"],
        &[],
    );
    let held: Vec<RawConnection> = (0..3).map(|_| endpoint.connect()).collect();
    let mut refused = endpoint.connect();
    refused.send(request_head("GET", "/healthz", &endpoint.host, &[]).as_bytes());
    assert!(
        matches!(refused.outcome(BOUND), Outcome::Closed),
        "the fourth connection is closed"
    );
    drop(held);
    // Their slots free up as the server sees them close.
    let deadline = Instant::now() + BOUND;
    loop {
        let mut again = endpoint.connect();
        again.send(request_head("GET", "/healthz", &endpoint.host, &[]).as_bytes());
        if let Outcome::Response(response) = again.outcome(BOUND) {
            assert_eq!(response.status, 200);
            break;
        }
        assert!(Instant::now() < deadline, "the slots were never freed");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Without a token the endpoint is loopback-only: a page whose domain was rebound to
    // 127.0.0.1 is same-origin with itself, but its Host names that domain.
    let rebound_host = "attacker.example:80";
    let body = flow(5);
    let length = body.len().to_string();
    let mut rebound = endpoint.connect();
    let head = request_head(
        "POST",
        "/v1/events",
        rebound_host,
        &[
            ("Origin", "http://attacker.example:80"),
            ("Content-Type", "application/x-ndjson"),
            ("Content-Length", length.as_str()),
        ],
    );
    rebound.send(format!("{head}{body}").as_bytes());
    let response = rebound.response(BOUND);
    assert_eq!(response.status, 403, "{response:?}");
}

#[test]
fn sigterm_ends_the_ingest_within_a_bound_while_clients_are_stuck() {
    let project = TestProject::shipped();
    // Timeouts far past the bound: only the shutdown's grace period can free the process.
    let mut endpoint = start(
        &project,
        &["--header-timeout", "300s", "--body-timeout", "300s"],
        &[],
    );
    let host = endpoint.host.clone();
    let mut stuck_in_body = endpoint.connect();
    let head = request_head(
        "POST",
        "/v1/events",
        &host,
        &[
            ("Content-Type", "application/x-ndjson"),
            ("Content-Length", "1000"),
        ],
    );
    stuck_in_body.send(head.as_bytes());
    stuck_in_body.send(b"{\"subscri");
    let mut stuck_in_head = endpoint.connect();
    stuck_in_head.send(b"POST /v1/events HTTP/1.1\r\nHost: ");
    // Both are in the server's hands before the signal.
    std::thread::sleep(Duration::from_millis(300));

    endpoint.daemon.signal("TERM");
    let status = endpoint.daemon.wait(BOUND);
    assert!(status.success(), "{}", endpoint.daemon.log_after_exit());
    drop((stuck_in_body, stuck_in_head));
}
