//! Drift monitoring, retraining and the promotion gate on the embedded engine, with traffic
//! from the generator: 30 minutes to train on, then one detection per 5-minute batch.

use crate::common::TestProject;

const START: &str = "2026-01-01T00:00:00Z";
const TRAIN_MINUTES: u32 = 30;
const BATCH_MINUTES: u32 = 5;
const SUBSCRIBERS: &str = "30";

/// `minute` minutes after START, as the generator writes times (RFC 3339, milliseconds).
fn at(minute: u32) -> String {
    format!("2026-01-01T{:02}:{:02}:00.000Z", minute / 60, minute % 60)
}

/// The same instant as a GoogleSQL TIMESTAMP literal.
fn sql_at(minute: u32) -> String {
    format!(
        "TIMESTAMP '2026-01-01 {:02}:{:02}:00+00'",
        minute / 60,
        minute % 60
    )
}

/// A shipped project whose `drift:` section is `section`, with its data generated once:
/// `TRAIN_MINUTES` minutes to train on, then `batches` batches, drifting as `drift` says.
struct Scenario {
    project: TestProject,
    events: Vec<String>,
    vars: Vec<String>,
}

impl Scenario {
    fn new(section: &str, batches: u32, drift: &[&str], vars: &[&str]) -> Self {
        let project = TestProject::shipped();
        set_drift_section(&project, section);
        let minutes = TRAIN_MINUTES + batches * BATCH_MINUTES;
        let out = project.path().join("traffic.jsonl");
        let duration = format!("{minutes}m");
        let mut args = vec![
            "generate",
            "--subscribers",
            SUBSCRIBERS,
            "--start",
            START,
            "--duration",
            duration.as_str(),
            "--anomaly-rate",
            "0.01",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(drift);
        project.run_ok(&args);
        let events = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        let vars = vars
            .iter()
            .flat_map(|v| ["--var".to_string(), v.to_string()])
            .collect();
        Scenario {
            project,
            events,
            vars,
        }
    }

    /// Runs netsentinel with the scenario's vars.
    fn run(&self, args: &[&str]) -> String {
        let mut all: Vec<&str> = self.vars.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        self.project.run_ok(&all)
    }

    /// Ingests the events starting in [from, to) minutes after START.
    fn ingest(&self, from: u32, to: u32) {
        let (from, to) = (at(from), at(to));
        let lines: Vec<&str> = self
            .events
            .iter()
            .filter(|line| {
                let start = start_time(line);
                start >= from.as_str() && start < to.as_str()
            })
            .map(String::as_str)
            .collect();
        assert!(!lines.is_empty(), "no events in [{from}, {to})");
        let file = self.project.path().join(format!("batch-{from}.jsonl"));
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        self.run(&["ingest", file.to_str().unwrap()]);
    }

    /// Trains the first version on all of the first `TRAIN_MINUTES` (the scenario's vars
    /// apply from the first detection on), then runs the first detection, which scores (and
    /// measures) those same windows, as a schedule's first tick after training does.
    fn train(&self) {
        self.ingest(0, TRAIN_MINUTES);
        self.project.run_ok(&["run", "train"]);
        self.run(&["run", "detect", "drift"]);
    }

    /// Ingests batch `i` (from 0) and runs a detection; returns the run's output.
    fn detect_batch(&self, i: u32) -> String {
        let from = TRAIN_MINUTES + i * BATCH_MINUTES;
        self.ingest(from, from + BATCH_MINUTES);
        self.run(&["run", "detect", "drift"])
    }

    fn query(&self, sql: &str) -> Vec<String> {
        self.project.query_csv(sql)
    }

    /// The drift decisions in order: `action,streak`.
    fn decisions(&self) -> Vec<String> {
        self.query("SELECT action, streak FROM ops.drift_decisions ORDER BY decided_at")
    }

    fn registry(&self) -> Vec<String> {
        self.query("SELECT version, status FROM ops.model_registry ORDER BY version")
    }

    /// Share of the windows scored as anomalous in [from, to) minutes after START.
    fn anomaly_rate(&self, from: u32, to: u32) -> f64 {
        let rate = self.query(&format!(
            "SELECT AVG(IF(is_anomaly, 1.0, 0.0)) FROM inferenced.netlog_anomalies \
             WHERE window_start >= {} AND window_start < {}",
            sql_at(from),
            sql_at(to)
        ));
        rate[0].parse().unwrap()
    }
}

fn start_time(line: &str) -> &str {
    let key = "\"startTime\":\"";
    let start = line.find(key).expect("a startTime") + key.len();
    &line[start..start + 24]
}

/// Replaces the `drift:` section (the last one of the shipped pipelines.yaml).
fn set_drift_section(project: &TestProject, section: &str) {
    let path = project.path().join("pipelines.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap();
    let start = yaml.find("\ndrift:\n").expect("a drift section") + 1;
    std::fs::write(&path, format!("{}{section}", &yaml[..start])).unwrap();
}

const SCORE_SHIFT_POLICY: &str = "drift:
  metric: score_shift
  threshold: 1.5
  consecutive: 3
  cooldown: 6h
  min_rows: 100
";

#[test]
fn stable_traffic_over_ten_detections_never_retrains() {
    let scenario = Scenario::new(SCORE_SHIFT_POLICY, 10, &[], &[]);
    scenario.train();
    for i in 0..10 {
        scenario.detect_batch(i);
    }
    let decisions = scenario.decisions();
    assert_eq!(decisions.len(), 11, "{decisions:?}");
    assert!(
        decisions.iter().all(|d| d.starts_with("watch,")),
        "{decisions:?}"
    );
    assert_eq!(scenario.registry(), ["1,champion"]);
    // The training windows and ten batches, each measured once on every metric.
    let measured = scenario.query(
        "SELECT metric, COUNT(DISTINCT window_from), COUNTIF(breached), MIN(scored_rows) >= 100 \
         FROM ops.drift_metrics GROUP BY metric ORDER BY metric",
    );
    assert_eq!(
        measured,
        [
            "anomaly_rate_excess,11,0,true",
            "centroid_shift,11,0,true",
            "cluster_occupancy,11,0,true",
            "score_shift,11,0,true"
        ]
    );
    let shift = scenario
        .query("SELECT MIN(value), MAX(value) FROM ops.drift_metrics WHERE metric = 'score_shift'");
    let bounds: Vec<f64> = shift[0].split(',').map(|v| v.parse().unwrap()).collect();
    assert!(
        bounds[0] > 0.7 && bounds[1] < 1.3,
        "stable traffic scores like the training data: {bounds:?}"
    );
}

#[test]
fn shifted_traffic_retrains_after_exactly_n_breaches_and_the_new_champion_fits_it() {
    let drift_at = at(TRAIN_MINUTES);
    let scenario = Scenario::new(
        SCORE_SHIFT_POLICY,
        5,
        &["--drift-at", &drift_at, "--drift-volume", "3"],
        // A retrain learns the 14 minutes before the newest window: after three shifted
        // batches, the shifted traffic.
        &["training_lookback_minutes=14"],
    );
    scenario.train();
    let first = scenario.detect_batch(0);
    assert!(!first.contains("drift policy fired"), "{first}");
    scenario.detect_batch(1);
    assert_eq!(scenario.decisions(), ["watch,0", "watch,1", "watch,2"]);
    assert_eq!(scenario.registry(), ["1,champion"]);

    let third = scenario.detect_batch(2);
    assert!(
        third.contains("drift policy fired: train runs now"),
        "{third}"
    );
    assert_eq!(
        scenario.decisions(),
        ["watch,0", "watch,1", "watch,2", "retrain,3"]
    );
    assert_eq!(scenario.registry(), ["1,retired", "2,champion"]);
    let outcome = scenario.query(
        "SELECT d.outcome LIKE '%netlog_kmeans v2: champion%', d.train_run_id = r.run_id, d.value > d.threshold \
         FROM ops.drift_decisions AS d JOIN ops.model_registry AS r ON r.version = 2 WHERE d.action = 'retrain'",
    );
    assert_eq!(outcome, ["true,true,true"]);
    let trained_on = scenario.query(&format!(
        "SELECT training_from >= {} FROM ops.model_registry WHERE version = 2",
        sql_at(TRAIN_MINUTES)
    ));
    assert_eq!(trained_on, ["true"], "v2 learned the shifted traffic");

    // The shifted traffic looked anomalous to v1; to v2 it is normal again.
    let before = scenario.anomaly_rate(TRAIN_MINUTES, TRAIN_MINUTES + 3 * BATCH_MINUTES);
    scenario.detect_batch(3);
    scenario.detect_batch(4);
    let after = scenario.anomaly_rate(
        TRAIN_MINUTES + 3 * BATCH_MINUTES,
        TRAIN_MINUTES + 5 * BATCH_MINUTES,
    );
    assert!(
        before > 0.1,
        "v1 flags the shifted traffic, ten times the contamination: {before}"
    );
    assert!(
        after < 0.03,
        "v2's anomaly rate is near the contamination 0.01: {after}"
    );
    let versions = scenario.query(
        "SELECT DISTINCT model_version FROM inferenced.netlog_anomalies \
         WHERE window_start >= TIMESTAMP '2026-01-01 00:45:00+00'",
    );
    assert_eq!(versions, ["2"]);
    assert_eq!(
        scenario.decisions()[4..],
        ["watch,0", "watch,0"],
        "the new champion's measurements start a new count"
    );
}

#[test]
fn a_worse_challenger_is_recorded_and_does_not_serve_until_promoted_by_hand() {
    let scenario = Scenario::new(SCORE_SHIFT_POLICY, 1, &[], &[]);
    scenario.train();
    // Six clusters for these rows: a clustering the gate measures as clearly worse (its
    // Davies–Bouldin on the holdout is over 1.5 times the champion's).
    scenario.run(&["--var", "num_clusters=6", "run", "train"]);
    assert_eq!(scenario.registry(), ["1,champion", "2,challenger"]);
    let reason = scenario.query(
        "SELECT reason, compared_with, davies_bouldin_index > champion_davies_bouldin_index FROM ops.model_registry WHERE version = 2",
    );
    assert!(
        reason[0].contains("worse than champion v1") && reason[0].ends_with(",1,true"),
        "{reason:?}"
    );
    scenario.detect_batch(0);
    assert_eq!(
        scenario.query("SELECT DISTINCT model_version FROM inferenced.netlog_anomalies"),
        ["1"],
        "the champion keeps scoring"
    );

    let listed = scenario.run(&["models", "--format", "csv"]);
    assert!(
        listed.contains("models.netlog_kmeans_v2,2,challenger"),
        "{listed}"
    );
    let promoted = scenario.run(&["models", "promote", "netlog_kmeans_v2"]);
    assert!(
        promoted.contains("netlog_kmeans_v2 is the champion"),
        "{promoted}"
    );
    assert_eq!(scenario.registry(), ["1,retired", "2,champion"]);
    scenario.run(&["models", "promote", "1"]);
    assert_eq!(scenario.registry(), ["1,champion", "2,retired"]);
    let again = scenario
        .project
        .command(&["models", "promote", "netlog_kmeans_v1"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already the champion"));
}

#[test]
fn cooldown_prevents_a_second_retrain_inside_it() {
    // A policy that always breaches, so only the cooldown can hold a retrain back.
    let always = |cooldown: &str| {
        format!(
            "drift:\n  metric: anomaly_rate_excess\n  threshold: -1000\n  consecutive: 1\n  cooldown: {cooldown}\n  min_rows: 100\n"
        )
    };
    let scenario = Scenario::new(&always("6h"), 2, &[], &[]);
    scenario.train();
    assert_eq!(scenario.decisions(), ["retrain,1"]);
    assert_eq!(scenario.registry().len(), 2);
    scenario.detect_batch(0);
    assert_eq!(scenario.decisions(), ["retrain,1", "cooldown,1"]);
    assert_eq!(
        scenario.registry().len(),
        2,
        "no retrain inside the cooldown"
    );
    let until = scenario.query(
        "SELECT cooldown_until > decided_at + INTERVAL 5 HOUR FROM ops.drift_decisions WHERE action = 'cooldown'",
    );
    assert_eq!(until, ["true"]);

    // Without the cooldown, the streak (both batches since the retrain) fires again.
    set_drift_section(&scenario.project, &always("0s"));
    scenario.detect_batch(1);
    assert_eq!(
        scenario.decisions(),
        ["retrain,1", "cooldown,1", "retrain,2"]
    );
    assert_eq!(scenario.registry().len(), 3);
}

#[test]
fn a_drift_section_naming_nothing_real_is_an_error_with_its_line() {
    let project = TestProject::shipped();
    set_drift_section(
        &project,
        "drift:\n  metric: score_shift\n  threshold: 1.5\n  then: retrain_now\n",
    );
    let output = project.command(&["compile"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = std::fs::read_to_string(project.path().join("pipelines.yaml"))
        .unwrap()
        .lines()
        .position(|l| l.contains("then: retrain_now"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!("pipelines.yaml:{line}")) && stderr.contains("retrain_now"),
        "{stderr}"
    );

    set_drift_section(
        &project,
        "drift:\n  metric: score_shift\n  threshold: 1.5\n  consecutive: 0\n",
    );
    let output = project.command(&["compile"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("drift.consecutive"), "{stderr}");
}
