//! Shared helpers for the integration tests: a throwaway copy of the shipped project and a
//! handle on the `netsentinel` binary.

#![allow(dead_code)]

pub mod bqemu;
pub mod daemon;
pub mod fs;
pub mod pubsub;
pub mod raw_http;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// A copy of the shipped project (pipelines.yaml and sql/) in a temporary directory, so tests
/// never touch the repository's own warehouse.
pub struct TestProject {
    pub dir: tempfile::TempDir,
}

impl TestProject {
    pub fn shipped() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(
            root.join("pipelines.yaml"),
            dir.path().join("pipelines.yaml"),
        )
        .expect("copy pipelines.yaml");
        fs::copy_dir(&root.join("sql"), &dir.path().join("sql"));
        fs::copy_dir(&root.join("tests/sql"), &dir.path().join("tests/sql"));
        TestProject { dir }
    }

    /// A copy of a project under `tests/fixtures/<name>`.
    pub fn fixture(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        fs::copy_dir(&root, dir.path());
        TestProject { dir }
    }

    /// A project with the given pipelines.yaml and SQL files (path under sql/, contents).
    pub fn custom(pipelines_yaml: &str, files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("pipelines.yaml"), pipelines_yaml).expect("write yaml");
        for (path, text) in files {
            let path = dir.path().join("sql").join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        TestProject { dir }
    }

    /// Writes a file at `path` under the project root (e.g. `tests/sql/x.yml`).
    pub fn write(&self, path: &str, text: &str) {
        let path = self.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Replaces the `alerts:` section of pipelines.yaml with `section` (empty: removes it).
    pub fn replace_alerts(&self, section: &str) {
        let path = self.path().join("pipelines.yaml");
        let yaml = std::fs::read_to_string(&path).expect("read pipelines.yaml");
        let start = yaml.find("\nalerts:").expect("an alerts section") + 1;
        let end = yaml[start..].find("\n\n").map_or(yaml.len(), |i| start + i);
        std::fs::write(path, format!("{}{section}{}", &yaml[..start], &yaml[end..]))
            .expect("write pipelines.yaml");
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn warehouse(&self) -> PathBuf {
        self.path().join(".netsentinel/local.duckdb")
    }

    /// `netsentinel --project-dir <this project> ARGS…`, quiet.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::cargo_bin("netsentinel").expect("binary built");
        command
            .arg("--project-dir")
            .arg(self.path())
            .arg("-q")
            .args(args)
            .env_remove("RUST_LOG");
        command
    }

    pub fn run_ok(&self, args: &[&str]) -> String {
        let output = self.command(args).output().expect("run netsentinel");
        assert_success(&output, args);
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    /// `query --format csv`, without the header line.
    pub fn query_csv(&self, sql: &str) -> Vec<String> {
        let out = self.run_ok(&["query", "--format", "csv", sql]);
        out.lines().skip(1).map(str::to_string).collect()
    }
}

pub fn assert_success(output: &Output, args: &[&str]) {
    assert!(
        output.status.success(),
        "netsentinel {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The body of a plain `GET http://127.0.0.1:PORT/path` (the endpoints under test are local).
pub fn http_get(url: &str) -> String {
    try_http_get(url).unwrap_or_else(|error| panic!("GET {url}: {error}"))
}

/// [`http_get`], with a refused connection (the server is gone) as an error.
pub fn try_http_get(url: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(host)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "GET {url}: {head}");
    Ok(body.to_string())
}
