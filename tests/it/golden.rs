//! One project with every BigQuery ML k-means statement analysts write (tests/fixtures/
//! bqml_project): it runs on the embedded engine, and its BigQuery rendering is exactly the
//! golden files under tests/golden/ — the ML statements pass through verbatim, only names are
//! qualified. The shipped project's BigQuery scripts are golden files too. `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the golden files after a
//! deliberate change; review the diff.

use std::path::{Path, PathBuf};

use crate::common::TestProject;

#[test]
fn bqml_fixture_runs_on_the_local_engine() {
    let project = TestProject::fixture("bqml_project");
    project.run_ok(&["run", "ml"]);

    let anomalies = project
        .query_csv("SELECT x, kind FROM inferenced.point_anomalies WHERE is_anomaly ORDER BY x");
    assert_eq!(anomalies, ["100,z"], "only the far-away point is anomalous");
    let predictions = project.query_csv(
        "SELECT centroid_id, COUNT(*) FROM inferenced.point_predictions GROUP BY centroid_id ORDER BY centroid_id",
    );
    assert_eq!(predictions, ["1,4", "2,4"]);
    let report = project.query_csv(
        "SELECT categorical_features, nulls, iterations > 0, davies_bouldin_index < 1, cosine_training_msd >= 0 FROM ops.model_report",
    );
    assert_eq!(report, ["1,3,true,true,true"]);

    // CREATE MODEL IF NOT EXISTS keeps the first model; a rerun changes nothing.
    let before = project.query_csv(
        "SELECT created_at FROM models.__models WHERE model_name = 'models.points_cosine'",
    );
    project.run_ok(&["run", "ml"]);
    let after = project.query_csv(
        "SELECT created_at FROM models.__models WHERE model_name = 'models.points_cosine'",
    );
    assert_eq!(before, after);
}

#[test]
fn bqml_fixture_renders_verbatim_for_bigquery() {
    let project = TestProject::fixture("bqml_project");
    let compiled = compile_for_bigquery(&project);
    assert_matches_golden(&compiled, "bqml_project", 6);
    let predictions =
        std::fs::read_to_string(compiled.join("inferenced/point_predictions.sql")).unwrap();
    assert!(
        predictions.contains("ML.PREDICT(MODEL `acme-netlog.fx_models.points_kmeans`, TABLE `acme-netlog.fx_features.points`)"),
        "{predictions}"
    );
}

/// The shipped project's BigQuery scripts, first and incremental runs, drift and retraining
/// included: the incremental ones declare their bounds as script variables, which is what lets
/// BigQuery prune partitions.
#[test]
fn shipped_project_renders_for_bigquery_as_golden() {
    let project = TestProject::shipped();
    let compiled = compile_for_bigquery(&project);
    assert_matches_golden(&compiled, "netlog_project", 18);
    // The drift metrics read the champion, the registry and the scored windows.
    let metrics = std::fs::read_to_string(compiled.join("ops/drift_metrics.sql")).unwrap();
    for expected in [
        "MODEL `acme-netlog.netlog_models.netlog_kmeans_v1`",
        "FROM `acme-netlog.netlog_ops.model_registry`",
        "FROM `acme-netlog.netlog_inferenced.netlog_anomalies`",
        "APPROX_QUANTILES(normalized_distance, 2)[OFFSET(1)]",
    ] {
        assert!(metrics.contains(expected), "{expected} not in {metrics}");
    }
    let windows =
        std::fs::read_to_string(compiled.join("features/netlog_windows.incremental.sql")).unwrap();
    assert!(
        windows.starts_with(
            "DECLARE __ns_ingested_since_ingested_through DEFAULT (SELECT MAX(ingested_through) FROM `acme-netlog.netlog_features.netlog_windows` WHERE FALSE);"
        ),
        "{windows}"
    );
    assert!(
        windows.contains("WHERE startTime >= TIMESTAMP_SECONDS(DIV(UNIX_SECONDS(__ns_earliest_new_event_ingested_through), 60) * 60)"),
        "raw partitions are bounded by a script variable: {windows}"
    );
}

fn compile_for_bigquery(project: &TestProject) -> PathBuf {
    let output = project
        .command(&["compile", "--target", "bigquery"])
        .env("GCP_PROJECT", "acme-netlog")
        .output()
        .unwrap();
    crate::common::assert_success(&output, &["compile", "--target", "bigquery"]);
    project.path().join("target/compiled/bigquery")
}

/// Compares every compiled file with tests/golden/NAME/; `UPDATE_GOLDEN=1` rewrites them.
fn assert_matches_golden(compiled: &Path, name: &str, expected_files: usize) {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let files = sql_files(compiled);
    assert_eq!(files.len(), expected_files, "{files:?}");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut differing = Vec::new();
    for relative in &files {
        let actual = std::fs::read_to_string(compiled.join(relative)).unwrap();
        let expected_path = golden.join(relative);
        if update {
            std::fs::create_dir_all(expected_path.parent().unwrap()).unwrap();
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            differing.push(format!(
                "{}:\n--- golden\n{expected}\n--- rendered\n{actual}",
                relative.display()
            ));
        }
    }
    assert!(
        differing.is_empty(),
        "the BigQuery rendering of {name} changed (UPDATE_GOLDEN=1 to accept):\n{}",
        differing.join("\n")
    );
}

/// Every .sql file under `dir`, relative to it, sorted.
fn sql_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "sql") {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}
