//! Alerts to Google's Pub/Sub emulator through the official client: exactly one message per
//! alert, none on a rerun, and an outage that leaves deliveries pending until the emulator is
//! back, with no alert id seen twice.

use std::collections::BTreeSet;

use crate::common::TestProject;
use crate::common::pubsub::{PROJECT, PubsubEmulator, Pulled};

const TOPIC: &str = "netlog-alerts";
const SUBSCRIPTION: &str = "alerts-consumer";

fn project() -> TestProject {
    let project = TestProject::shipped();
    let alerts = format!(
        "alerts:\n  suppress_for: 0s\n  max_per_run: 10000\n  sinks:\n    - {{ kind: file, path: out/alerts.jsonl }}\n    - {{ kind: pubsub, topic: 'projects/{PROJECT}/topics/{TOPIC}', ordering_key: true, timeout: 5s }}\n"
    );
    project.replace_alerts(&alerts);
    project
}

fn netsentinel(project: &TestProject, emulator: &PubsubEmulator, args: &[&str]) -> String {
    let output = project
        .command(args)
        .env("PUBSUB_EMULATOR_HOST", emulator.host())
        .output()
        .unwrap();
    crate::common::assert_success(&output, args);
    String::from_utf8(output.stdout).unwrap()
}

fn generate(project: &TestProject, emulator: &PubsubEmulator, seed: &str, start: &str) {
    netsentinel(
        project,
        emulator,
        &[
            "generate",
            "--into-warehouse",
            "--seed",
            seed,
            "--start",
            start,
            "--subscribers",
            "40",
            "--duration",
            "15m",
            "--anomaly-rate",
            "0.05",
        ],
    );
}

fn alert_ids(project: &TestProject, sql_filter: &str) -> BTreeSet<String> {
    project
        .query_csv(&format!(
            "SELECT alert_id FROM ops.alert_outbox WHERE status = 'active' {sql_filter} ORDER BY 1"
        ))
        .into_iter()
        .collect()
}

fn ids_of(messages: &[Pulled]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            let id = m.attributes["alert_id"].clone();
            assert_eq!(m.data["alert_id"], id.as_str(), "attribute and body agree");
            id
        })
        .collect()
}

#[test]
fn every_alert_reaches_pubsub_once_across_reruns_and_an_outage() {
    let Some(mut emulator) = PubsubEmulator::start() else {
        return;
    };
    emulator.create_topic(TOPIC);
    emulator.create_subscription(TOPIC, SUBSCRIPTION);
    let project = project();
    generate(&project, &emulator, "11", "2026-03-01T00:00:00Z");
    netsentinel(&project, &emulator, &["run", "train"]);

    // First detection: one message per alert, with the attributes subscribers filter on.
    netsentinel(&project, &emulator, &["run", "detect"]);
    let first = emulator.pull_all(SUBSCRIPTION);
    let expected = alert_ids(&project, "");
    assert!(!expected.is_empty(), "the traffic has anomalies");
    let received = ids_of(&first);
    assert_eq!(
        received.len(),
        expected.len(),
        "exactly one message per alert"
    );
    assert_eq!(received.iter().cloned().collect::<BTreeSet<_>>(), expected);
    for message in &first {
        assert_eq!(message.attributes["pipeline"], "detect");
        assert_eq!(message.attributes["target"], "local");
        assert!(
            ["low", "medium", "high", "critical"]
                .contains(&message.attributes["severity"].as_str())
        );
        assert_eq!(
            message.ordering_key.as_deref(),
            message.data["subscriber"].as_str()
        );
    }

    // A rerun adds nothing.
    netsentinel(&project, &emulator, &["run", "detect"]);
    assert!(
        emulator.pull_all(SUBSCRIPTION).is_empty(),
        "a rerun sends nothing"
    );

    // New traffic arrives while Pub/Sub is down: the run completes, deliveries stay pending,
    // the file sink is unaffected.
    generate(&project, &emulator, "12", "2026-03-01T00:15:00Z");
    emulator.stop();
    let out = netsentinel(&project, &emulator, &["run", "detect"]);
    let during_outage: BTreeSet<String> = alert_ids(&project, "")
        .difference(&expected)
        .cloned()
        .collect();
    assert!(!during_outage.is_empty(), "the new traffic has anomalies");
    assert!(
        out.contains(&format!(
            "sink pubsub: 0 delivered, {n} failed, {n} pending",
            n = during_outage.len()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("sink file: {} delivered", during_outage.len())),
        "{out}"
    );

    // Pub/Sub is back (empty, as emulators come back): the next run delivers the backlog.
    emulator.restart();
    emulator.create_topic(TOPIC);
    emulator.create_subscription(TOPIC, SUBSCRIPTION);
    let out = netsentinel(&project, &emulator, &["run", "detect"]);
    assert!(
        out.contains(&format!(
            "sink pubsub: {} delivered, 0 failed, 0 pending",
            during_outage.len()
        )),
        "{out}"
    );
    let backlog = ids_of(&emulator.pull_all(SUBSCRIPTION));
    assert_eq!(backlog.len(), during_outage.len(), "no duplicates");
    assert_eq!(backlog.into_iter().collect::<BTreeSet<_>>(), during_outage);

    let all: Vec<String> = received.into_iter().chain(during_outage).collect();
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "no alert id observed twice");
    let message_ids = project.query_csv(
        "SELECT COUNT(*) FROM ops.alert_deliveries WHERE sink = 'pubsub' AND status = 'delivered' AND message_id IS NOT NULL",
    );
    assert_eq!(message_ids[0].parse::<usize>().unwrap(), unique.len());
}
