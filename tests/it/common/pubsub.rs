//! Google's Pub/Sub emulator for the tests: started on 127.0.0.1 on a free port, stopped on
//! drop, restartable on the same port (an outage and recovery). Topics, subscriptions and
//! pulls go through the emulator's REST API, independently of the client netsentinel uses.
//!
//! Absent emulator: the test is skipped with a printed reason, unless `CI` is set, where it
//! fails.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const PROJECT: &str = "netsentinel-test";
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct PubsubEmulator {
    launcher: PathBuf,
    port: u16,
    child: Option<Child>,
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
}

/// One pulled message.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub data: Value,
    pub attributes: BTreeMap<String, String>,
    pub ordering_key: Option<String>,
}

impl PubsubEmulator {
    /// Starts the emulator, or returns None (with the reason printed) when it is not installed
    /// and `CI` is unset.
    pub fn start() -> Option<Self> {
        let Some(launcher) = launcher() else {
            let reason = "the Pub/Sub emulator is not installed (google-cloud-cli-pubsub-emulator)";
            if std::env::var_os("CI").is_some() {
                panic!("{reason}, and CI requires it");
            }
            eprintln!("skipped: {reason}");
            return None;
        };
        let port = free_port();
        let mut emulator = PubsubEmulator {
            launcher,
            port,
            child: None,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            http: reqwest::Client::new(),
        };
        emulator.launch();
        Some(emulator)
    }

    /// `127.0.0.1:PORT`, the value of PUBSUB_EMULATOR_HOST.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let child = Command::new(&self.launcher)
            .arg("--host=127.0.0.1")
            .arg(format!("--port={}", self.port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the Pub/Sub emulator");
        self.child = Some(child);
        let started = Instant::now();
        while self.request("GET", "", None).is_none() {
            assert!(
                started.elapsed() < START_TIMEOUT,
                "the Pub/Sub emulator did not answer on {} within {START_TIMEOUT:?}",
                self.host()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills the emulator: everything it held is gone, as in an outage.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: topics must be created again).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    pub fn create_topic(&self, topic: &str) -> String {
        let name = format!("projects/{PROJECT}/topics/{topic}");
        self.request("PUT", &format!("/v1/{name}"), Some(json!({})))
            .expect("create topic");
        name
    }

    pub fn create_subscription(&self, topic: &str, subscription: &str) {
        self.request(
            "PUT",
            &format!("/v1/projects/{PROJECT}/subscriptions/{subscription}"),
            Some(json!({
                "topic": format!("projects/{PROJECT}/topics/{topic}"),
                "enableMessageOrdering": true,
            })),
        )
        .expect("create subscription");
    }

    /// Publishes each body as one message (with the emulator's REST API, not netsentinel's client).
    pub fn publish(&self, topic: &str, bodies: &[String]) {
        use base64::Engine;
        for chunk in bodies.chunks(100) {
            let messages: Vec<Value> = chunk
                .iter()
                .map(|b| json!({ "data": base64::engine::general_purpose::STANDARD.encode(b) }))
                .collect();
            self.request(
                "POST",
                &format!("/v1/projects/{PROJECT}/topics/{topic}:publish"),
                Some(json!({ "messages": messages })),
            )
            .expect("publish");
        }
    }

    /// Pulls and acknowledges everything the subscription holds now.
    pub fn pull_all(&self, subscription: &str) -> Vec<Pulled> {
        let path = format!("/v1/projects/{PROJECT}/subscriptions/{subscription}");
        let mut pulled = Vec::new();
        for _ in 0..1000 {
            let response = self
                .request(
                    "POST",
                    &format!("{path}:pull"),
                    Some(json!({"maxMessages": 500, "returnImmediately": true})),
                )
                .expect("pull");
            let received = response["receivedMessages"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if received.is_empty() {
                return pulled;
            }
            let ack_ids: Vec<Value> = received.iter().map(|m| m["ackId"].clone()).collect();
            self.request(
                "POST",
                &format!("{path}:acknowledge"),
                Some(json!({ "ackIds": ack_ids })),
            )
            .expect("acknowledge");
            pulled.extend(received.iter().map(|m| decode(&m["message"])));
        }
        panic!("subscription {subscription} kept returning messages");
    }

    fn request(&self, method: &str, path: &str, body: Option<Value>) -> Option<Value> {
        let url = format!("http://{}{path}", self.host());
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.runtime.block_on(async {
            let mut request = self
                .http
                .request(method, &url)
                .timeout(Duration::from_secs(10));
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.ok()?;
            let status = response.status();
            let text = response.text().await.ok()?;
            assert!(
                status.is_success() || path.is_empty(),
                "{url} answered {status}: {text}"
            );
            Some(serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    }
}

impl Drop for PubsubEmulator {
    fn drop(&mut self) {
        self.stop();
    }
}

fn decode(message: &Value) -> Pulled {
    use base64::Engine;
    let data = message["data"].as_str().unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64 data");
    Pulled {
        data: serde_json::from_slice(&bytes).expect("JSON message body"),
        attributes: message["attributes"]
            .as_object()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        ordering_key: message["orderingKey"].as_str().map(str::to_string),
    }
}

fn launcher() -> Option<PathBuf> {
    let sdk = Command::new("gcloud")
        .args(["info", "--format=value(installation.sdk_root)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or_else(|| PathBuf::from("/usr/lib/google-cloud-sdk"));
    let launcher = sdk.join("platform/pubsub-emulator/bin/cloud-pubsub-emulator");
    launcher.exists().then_some(launcher)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}
