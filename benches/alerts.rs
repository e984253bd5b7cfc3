//! Alert delivery to Google's Pub/Sub emulator (issue 5), against a named peer in the same run:
//!
//! - netsentinel: the `alerts` step of `detect` — find new anomalies, explain them, stage them
//!   in the outbox, publish each through `google-cloud-pubsub`, record every delivery;
//! - peer: the same message bodies published with a bare `google-cloud-pubsub` Publisher and
//!   nothing else (no outbox, no bookkeeping): the ceiling for any sender using that client.
//!
//! Contamination is raised to 0.5 so that about half of the scored windows are alerts.
//! Usage: `cargo bench --bench alerts -- [SUBSCRIBERS] [MINUTES]`; prints `key=value` lines.

#[path = "../tests/it/common/fs.rs"]
mod fs;
#[path = "../tests/it/common/pubsub.rs"]
#[allow(dead_code)]
mod pubsub;

use std::path::Path;
use std::time::Instant;

use futures::future::join_all;
use google_cloud_pubsub::client::Publisher;
use google_cloud_pubsub::model::Message;
use netsentinel::ingest;
use netsentinel::project::Project;
use netsentinel::runner::{Runner, StepOutcome};
use netsentinel_core::Cell;
use netsentinel_generate::{self as generate, GeneratorConfig, StopAt};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let subscribers: u32 = args
        .first()
        .map_or(200, |a| a.parse().expect("SUBSCRIBERS"));
    let minutes: i64 = args.get(1).map_or(30, |a| a.parse().expect("MINUTES"));

    let emulator = pubsub::PubsubEmulator::start().expect("the Pub/Sub emulator");
    emulator.create_topic("bench-alerts");
    emulator.create_subscription("bench-alerts", "bench-alerts-sub");
    emulator.create_topic("bench-peer");
    emulator.create_subscription("bench-peer", "bench-peer-sub");
    // SAFETY: single-threaded at this point; the variable is read by the sink we start below.
    unsafe { std::env::set_var("PUBSUB_EMULATOR_HOST", emulator.host()) };

    let dir = tempfile::tempdir().expect("temp dir");
    let project = bench_project(dir.path());
    let vars = project
        .config
        .default_vars()
        .with_overrides(&project.config.var_types(), &["contamination=0.5".into()])
        .expect("vars");
    let (target_name, target) = project.config.target(None).expect("target");
    let mut warehouse = target.open(&project.root, target_name).expect("warehouse");
    let config = GeneratorConfig {
        subscribers,
        stop: StopAt::Duration(chrono::Duration::minutes(minutes)),
        ..GeneratorConfig::default()
    };
    let events = generate::generate(&config).expect("generator");
    ingest::ingest_events(
        warehouse.as_mut(),
        events,
        "bench",
        None,
        ingest::DEFAULT_BATCH_ROWS,
    )
    .expect("ingest");
    let runner = Runner {
        project: &project,
        vars: &vars,
        target: target_name,
        stop: None,
    };
    runner
        .run_pipeline(warehouse.as_mut(), "train")
        .expect("train");
    let detect = runner
        .run_pipeline(warehouse.as_mut(), "detect")
        .expect("detect");
    let alerts_step = detect
        .steps
        .iter()
        .find(|s| s.step == "alerts")
        .expect("alerts step");
    let StepOutcome::Ran { duration, .. } = alerts_step.outcome else {
        panic!("alerts step did not run");
    };
    let bodies: Vec<String> = warehouse
        .query("SELECT payload FROM ops.alert_outbox WHERE status = 'active' ORDER BY alert_id")
        .expect("outbox")
        .rows
        .into_iter()
        .filter_map(|r| match r.into_iter().next() {
            Some(Cell::Text(body)) => Some(body),
            _ => None,
        })
        .collect();
    let delivered = warehouse
        .query("SELECT COUNT(*) FROM ops.alert_deliveries WHERE status = 'delivered'")
        .expect("deliveries")
        .scalar()
        .and_then(Cell::as_i64)
        .unwrap_or(0);
    assert_eq!(delivered as usize, bodies.len(), "every alert delivered");
    let pulled = emulator.pull_all("bench-alerts-sub").len();
    assert_eq!(
        pulled,
        bodies.len(),
        "the emulator holds one message per alert"
    );

    let peer_seconds = publish_bare(&emulator.host(), &bodies);
    let alerts = bodies.len() as f64;
    println!("alerts={}", bodies.len());
    println!(
        "netsentinel_alerts_step_seconds={:.3}",
        duration.as_secs_f64()
    );
    println!(
        "netsentinel_alerts_per_second={:.0}",
        alerts / duration.as_secs_f64()
    );
    println!("peer_bare_publisher_seconds={peer_seconds:.3}");
    println!(
        "peer_bare_publisher_per_second={:.0}",
        alerts / peer_seconds
    );
    println!(
        "netsentinel_over_peer_time_ratio={:.2}",
        duration.as_secs_f64() / peer_seconds
    );
}

fn bench_project(dir: &Path) -> Project {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let yaml = std::fs::read_to_string(root.join("pipelines.yaml")).expect("pipelines.yaml");
    let start = yaml.find("\nalerts:").expect("alerts section");
    let end = yaml[start + 1..]
        .find("\n\n")
        .map_or(yaml.len(), |i| start + 1 + i);
    let alerts = format!(
        "\nalerts:\n  suppress_for: 0s\n  max_per_run: 1000000\n  sinks:\n    - {{ kind: pubsub, topic: 'projects/{}/topics/bench-alerts' }}\n",
        pubsub::PROJECT
    );
    std::fs::write(
        dir.join("pipelines.yaml"),
        format!("{}{alerts}{}", &yaml[..start], &yaml[end..]),
    )
    .expect("write pipelines.yaml");
    fs::copy_dir(&root.join("sql"), &dir.join("sql"));
    Project::load(dir).expect("project")
}

/// Seconds to publish every body with a bare Publisher and await every message id.
fn publish_bare(host: &str, bodies: &[String]) -> f64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let publisher =
            Publisher::builder(format!("projects/{}/topics/bench-peer", pubsub::PROJECT))
                .with_endpoint(format!("http://{host}"))
                .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
                .build()
                .await
                .expect("publisher");
        let started = Instant::now();
        let pending: Vec<_> = bodies
            .iter()
            .map(|b| publisher.publish(Message::new().set_data(b.clone().into_bytes())))
            .collect();
        for result in join_all(pending).await {
            result.expect("peer publish");
        }
        started.elapsed().as_secs_f64()
    })
}
