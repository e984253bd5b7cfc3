//! `compile` renders every step for a target without connecting anywhere.

use crate::common::TestProject;

#[test]
fn compile_writes_each_step_for_local_and_bigquery() {
    let project = TestProject::shipped();
    let out = project.run_ok(&["compile"]);
    assert!(out.contains("target/compiled/local"), "{out}");
    let local = |name: &str| {
        std::fs::read_to_string(project.path().join("target/compiled/local").join(name)).unwrap()
    };
    let windows = local("features/netlog_windows.sql");
    assert!(
        windows.starts_with("CREATE OR REPLACE TABLE features.netlog_windows"),
        "{windows}"
    );
    assert!(windows.contains("FROM raw.netlog_events"), "{windows}");
    assert!(
        windows.contains("DIV(UNIX_SECONDS(startTime), 60) * 60"),
        "vars render as literals: {windows}"
    );
    let incremental = local("features/netlog_windows.incremental.sql");
    assert!(
        incremental.contains(
            "ingested_at > (SELECT TIMESTAMP_SUB(COALESCE(MAX(ingested_through), TIMESTAMP '1970-01-01 00:00:00'), INTERVAL 0 SECOND) FROM features.netlog_windows)"
        ),
        "ingested_since() is a subquery locally, with no settle time: {incremental}"
    );
    assert!(
        incremental.contains("DELETE FROM features.netlog_windows AS t WHERE EXISTS"),
        "{incremental}"
    );
    let model = local("models/netlog_kmeans.sql");
    assert!(
        model.contains("CREATE OR REPLACE MODEL models.netlog_kmeans_v1\n"),
        "without a warehouse, compile renders the first version: {model}"
    );
    assert!(
        model.contains("FROM features.netlog_training_set\nWHERE NOT holdout"),
        "{model}"
    );
    assert!(model.contains("num_clusters = 4"), "{model}");
    assert!(
        !project.warehouse().exists(),
        "compile must not create a warehouse"
    );

    let output = project
        .command(&["compile", "--target", "bigquery"])
        .env("GCP_PROJECT", "acme-netlog")
        .output()
        .unwrap();
    crate::common::assert_success(&output, &["compile", "--target", "bigquery"]);
    let bq = |name: &str| {
        std::fs::read_to_string(project.path().join("target/compiled/bigquery").join(name)).unwrap()
    };
    let anomalies = bq("inferenced/netlog_anomalies.sql");
    assert!(anomalies.starts_with("CREATE OR REPLACE TABLE `acme-netlog.netlog_inferenced.netlog_anomalies`\nPARTITION BY DATE(window_start)\nCLUSTER BY subscriberId, dst_subnet AS"), "{anomalies}");
    assert!(
        anomalies.contains("MODEL `acme-netlog.netlog_models.netlog_kmeans_v1`"),
        "{anomalies}"
    );
    assert!(
        anomalies.contains("FROM `acme-netlog.netlog_features.netlog_model_inputs` AS candidate"),
        "{anomalies}"
    );
    assert!(
        anomalies.contains("STRUCT(0.01 AS contamination)"),
        "{anomalies}"
    );
    assert!(anomalies.contains("  1 AS model_version,"), "{anomalies}");

    let missing_env = project
        .command(&["compile", "--target", "bigquery"])
        .env_remove("GCP_PROJECT")
        .output()
        .unwrap();
    assert!(!missing_env.status.success());
    assert!(String::from_utf8_lossy(&missing_env.stderr).contains("GCP_PROJECT"));
}

#[test]
fn generate_is_deterministic_for_a_seed() {
    let project = TestProject::shipped();
    let run = |seed: &str, format: &str| {
        project
            .command(&[
                "generate", "--seed", seed, "--events", "3000", "--format", format,
            ])
            .output()
            .unwrap()
            .stdout
    };
    assert_eq!(run("5", "jsonl"), run("5", "jsonl"));
    assert_eq!(run("5", "csv"), run("5", "csv"));
    assert_ne!(run("5", "jsonl"), run("6", "jsonl"));
    let text = String::from_utf8(run("5", "jsonl")).unwrap();
    assert_eq!(text.lines().count(), 3000);
}

#[test]
fn get_env_is_refused_in_templates_so_no_secret_renders_into_sql() {
    let project = TestProject::shipped();
    project.write(
        "sql/features/leaky.sql",
        "SELECT '{{ get_env(name=\"NETSENTINEL_TEST_SECRET\") }}' AS token",
    );
    let output = project
        .command(&["compile"])
        .env("NETSENTINEL_TEST_SECRET", "hunter2")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("leaky.sql"), "{stderr}");
    assert!(stderr.contains("get_env() is not available"), "{stderr}");
    let compiled = project
        .path()
        .join("target/compiled/local/features/leaky.sql");
    assert!(
        !compiled.exists()
            || !std::fs::read_to_string(&compiled)
                .unwrap()
                .contains("hunter2"),
        "the secret is not written"
    );
}
