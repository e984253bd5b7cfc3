//! A hand-driven HTTP/1.1 client for abuse tests of a local endpoint: it sends exactly the
//! bytes it is given, when it is told to, and every read has a deadline.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub struct RawConnection {
    stream: TcpStream,
    received: Vec<u8>,
}

/// A response as read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawResponse {
    /// A header's value (names compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

/// What came back on a connection within the time allowed.
#[derive(Debug)]
pub enum Outcome {
    Response(RawResponse),
    /// The server closed the connection (end of stream or reset) before a whole response.
    Closed,
    /// Nothing conclusive within the time allowed.
    Silent,
}

impl RawConnection {
    /// Connects to `host:port` (a 127.0.0.1 address of the endpoint under test).
    pub fn open(host: &str) -> Self {
        let stream = TcpStream::connect(host).expect("connect to the endpoint");
        RawConnection {
            stream,
            received: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send to the endpoint");
    }

    /// Reads until a whole response has arrived, the connection closes or `within` passes.
    pub fn outcome(&mut self, within: Duration) -> Outcome {
        let deadline = Instant::now() + within;
        loop {
            if let Some(response) = self.whole_response() {
                return Outcome::Response(response);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Outcome::Silent;
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("set a read timeout");
            let mut buffer = [0u8; 8192];
            match self.stream.read(&mut buffer) {
                Ok(0) => {
                    return self
                        .whole_response()
                        .map_or(Outcome::Closed, Outcome::Response);
                }
                Ok(read) => self.received.extend_from_slice(&buffer[..read]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Outcome::Silent;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Outcome::Closed,
            }
        }
    }

    /// The response, which must come within `within`.
    pub fn response(&mut self, within: Duration) -> RawResponse {
        match self.outcome(within) {
            Outcome::Response(response) => response,
            other => panic!("no response within {within:?}: {other:?}"),
        }
    }

    fn whole_response(&self) -> Option<RawResponse> {
        let text = String::from_utf8_lossy(&self.received);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        let response = RawResponse {
            status,
            head: head.to_string(),
            body: body.to_string(),
        };
        let length: usize = response.header("content-length")?.parse().ok()?;
        (response.body.len() >= length).then_some(response)
    }
}

/// The head of a request to `path` on `host`, with the given headers.
pub fn request_head(method: &str, path: &str, host: &str, headers: &[(&str, &str)]) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}
