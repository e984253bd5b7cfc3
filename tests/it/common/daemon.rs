//! A long-running `netsentinel` process (`schedule`, `ingest --follow`) for the tests: its
//! output read line by line as it comes, signals sent to it, killed on drop.

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::TestProject;

pub struct Daemon {
    pub child: Child,
    stdout_lines: mpsc::Receiver<String>,
    /// Stdout lines already read while looking for another.
    stdout_seen: RefCell<Vec<String>>,
    stderr_lines: mpsc::Receiver<String>,
}

impl Daemon {
    /// `netsentinel --project-dir P ARGS…` with info logging on stderr.
    pub fn spawn(project: &TestProject, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("netsentinel"));
        command
            .arg("--project-dir")
            .arg(project.path())
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start netsentinel");
        let stdout_lines = lines_of(child.stdout.take().expect("piped stdout"));
        let stderr_lines = lines_of(child.stderr.take().expect("piped stderr"));
        Daemon {
            child,
            stdout_lines,
            stdout_seen: RefCell::default(),
            stderr_lines,
        }
    }

    pub fn stdin(&mut self) -> &mut ChildStdin {
        self.child.stdin.as_mut().expect("piped stdin")
    }

    /// Writes lines to its standard input.
    pub fn feed(&mut self, lines: &[String]) {
        let stdin = self.stdin();
        for line in lines {
            writeln!(stdin, "{line}").expect("write to stdin");
        }
        stdin.flush().expect("flush stdin");
    }

    /// Closes its standard input (end of input).
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// The URL in the first stdout line containing `text` (`… http://127.0.0.1:PORT/path`).
    pub fn url_printed_with(&self, text: &str) -> String {
        let seen = self
            .stdout_seen
            .borrow()
            .iter()
            .find(|l| l.contains(text))
            .cloned();
        let line = seen.unwrap_or_else(|| {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.stdout_lines.recv_timeout(left) {
                    Ok(line) if line.contains(text) => return line,
                    Ok(line) => self.stdout_seen.borrow_mut().push(line),
                    Err(_) => panic!("no output line with `{text}`:\n{}", self.log()),
                }
            }
        });
        line.split_whitespace()
            .find(|w| w.starts_with("http://"))
            .expect("a URL")
            .to_string()
    }

    /// Waits for a log line containing `text`.
    pub fn wait_for_log(&self, text: &str, within: Duration) -> String {
        wait_for(&self.stderr_lines, text, within)
            .unwrap_or_else(|| panic!("no log line with `{text}` within {within:?}"))
    }

    /// The log lines not read yet.
    pub fn log(&self) -> String {
        self.stderr_lines.try_iter().collect::<Vec<_>>().join("\n")
    }

    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
    }

    /// Waits for the process to exit by itself.
    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "netsentinel did not exit within {within:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait(Duration::from_secs(60))
    }

    /// Every log line not read yet, once the process has exited (its stderr has ended).
    pub fn log_after_exit(&self) -> String {
        self.stderr_lines.iter().collect::<Vec<_>>().join("\n")
    }

    /// The stdout lines printed so far.
    pub fn output(&self) -> String {
        self.stdout_lines.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(lines: &mpsc::Receiver<String>, text: &str, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(text) => return Some(line),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
    None
}

/// The lines of a child's output as they come, read on a thread that keeps draining even when
/// nobody listens, so the child never writes to a full or closed pipe.
fn lines_of(output: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    receiver
}

/// The value of one sample in Prometheus text.
pub fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{metrics}"))
}
