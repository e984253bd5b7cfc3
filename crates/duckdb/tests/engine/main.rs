//! Integration tests of the embedded engine, in one binary: GoogleSQL translated and run on
//! DuckDB, and BigQuery ML (CREATE MODEL, the ML.* functions) checked against BigQuery's
//! documented semantics and a scikit-learn reference.

mod bqml_conformance;
mod bqml_functions;
mod bqml_local;
mod bqml_scoring_exact;
mod googlesql;

use netsentinel_core::Warehouse;
use netsentinel_duckdb::DuckDbWarehouse;

fn warehouse() -> DuckDbWarehouse {
    DuckDbWarehouse::open_in_memory().expect("in-memory warehouse")
}

/// Two 1-D clusters with hand-computable statistics, unstandardized: {0, 2} (centroid 1,
/// distances 1, 1, radius 1) and {10, 12, 14, 16} (centroid 13, distances 3, 1, 1, 3, radius
/// √5). Training normalized distances, sorted: [1/√5, 1/√5, 1, 1, 3/√5, 3/√5].
fn train_two_clusters(wh: &mut DuckDbWarehouse) {
    wh.execute_script(
        "CREATE TABLE features.points (x FLOAT64, seed BOOL);
         INSERT INTO features.points (x, seed) VALUES (0.0, TRUE), (2.0, FALSE), (10.0, TRUE), (12.0, FALSE), (14.0, FALSE), (16.0, FALSE);
         CREATE MODEL models.two OPTIONS(model_type='kmeans', num_clusters=2, kmeans_init_method='CUSTOM',
           kmeans_init_col='seed', standardize_features=FALSE) AS SELECT x, seed FROM features.points",
    )
    .expect("train");
}
