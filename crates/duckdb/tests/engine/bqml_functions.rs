//! The ML table functions on the embedded engine, against values computed by hand: ML.PREDICT,
//! ML.CENTROIDS, ML.EVALUATE, ML.TRAINING_INFO and ML.FEATURE_INFO, anywhere a table can
//! appear, with the argument errors BigQuery would give.

use netsentinel_core::{Cell, ResultSet, Warehouse};
use netsentinel_duckdb::DuckDbWarehouse;

use crate::{train_two_clusters, warehouse};

fn query(wh: &mut DuckDbWarehouse, sql: &str) -> ResultSet {
    wh.query(sql).unwrap_or_else(|e| panic!("{sql}\n{e}"))
}

fn float(cell: &Cell) -> f64 {
    cell.as_f64()
        .unwrap_or_else(|| panic!("not a number: {cell:?}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn predict_assigns_the_nearest_centroid_and_lists_the_distances() {
    let mut wh = warehouse();
    train_two_clusters(&mut wh);
    let result = query(
        &mut wh,
        "SELECT * FROM ML.PREDICT(MODEL models.two, (SELECT x, 'p' || CAST(x AS STRING) AS tag FROM UNNEST([0.0, 7.0, 20.0]) AS x)) ORDER BY x",
    );
    assert_eq!(
        result.columns,
        ["centroid_id", "nearest_centroids_distance", "x", "tag"]
    );
    let expected = [
        (0.0, 1, [(1, 1.0), (2, 13.0)]),
        (7.0, 1, [(1, 6.0), (2, 6.0)]),
        (20.0, 2, [(2, 7.0), (1, 19.0)]),
    ];
    for (row, (x, centroid, nearest)) in result.rows.iter().zip(expected) {
        assert_eq!(float(&row[2]), x);
        assert_eq!(
            row[0],
            Cell::Int(centroid),
            "x = {x}: ties go to the lower id"
        );
        let Cell::List(listed) = &row[1] else {
            panic!("nearest_centroids_distance is not a list: {:?}", row[1])
        };
        let listed: Vec<(i64, f64)> = listed
            .iter()
            .map(|item| match item {
                Cell::Struct(fields) => {
                    assert_eq!(fields[0].0, "CENTROID_ID");
                    assert_eq!(fields[1].0, "DISTANCE");
                    (fields[0].1.as_i64().unwrap(), float(&fields[1].1))
                }
                other => panic!("not a struct: {other:?}"),
            })
            .collect();
        assert_eq!(listed.len(), 2);
        for ((id, d), (want_id, want_d)) in listed.into_iter().zip(nearest) {
            assert_eq!(id, want_id);
            assert!(close(d, want_d), "x = {x}: distance {d} != {want_d}");
        }
    }
}

#[test]
fn centroids_are_reported_in_original_units_or_standardized() {
    let mut wh = warehouse();
    // Standardized training: x has mean 2 and sample stddev 1 over {1, 2, 3} ∪ {1, 2, 3}; the
    // CUSTOM seeds put rows with kind 'a' and kind 'b' in separate clusters.
    wh.execute_script(
        "CREATE TABLE features.t (x FLOAT64, kind STRING, seed BOOL);
         INSERT INTO features.t VALUES (1.0, 'a', TRUE), (1.0, 'a', FALSE), (1.0, 'b', FALSE),
           (3.0, 'b', TRUE), (3.0, 'b', FALSE), (3.0, NULL, FALSE);
         CREATE MODEL models.mixed OPTIONS(model_type='kmeans', num_clusters=2, kmeans_init_method='CUSTOM',
           kmeans_init_col='seed') AS SELECT x, kind, seed FROM features.t",
    )
    .expect("train");
    let original = query(
        &mut wh,
        "SELECT centroid_id, feature, numerical_value, categorical_value FROM ML.CENTROIDS(MODEL models.mixed) ORDER BY centroid_id, feature",
    );
    // Centroid 1 holds the three x = 1 rows (kinds a, a, b); centroid 2 the x = 3 rows.
    assert_eq!(original.rows.len(), 4);
    assert_eq!(original.rows[0][1], Cell::Text("kind".into()));
    assert_eq!(original.rows[0][2], Cell::Null);
    let shares = category_shares(&original.rows[0][3]);
    assert_eq!(shares.len(), 3, "categories a, b and NULL: {shares:?}");
    let share = |label: Option<&str>| {
        shares
            .iter()
            .find(|(c, _)| c.as_deref() == label)
            .map(|(_, v)| *v)
            .unwrap()
    };
    assert!(close(share(Some("a")), 2.0 / 3.0));
    assert!(close(share(Some("b")), 1.0 / 3.0));
    assert!(close(share(None), 0.0));
    assert_eq!(original.rows[1][1], Cell::Text("x".into()));
    assert!(close(float(&original.rows[1][2]), 1.0));
    assert_eq!(original.rows[1][3], Cell::List(vec![]));
    assert!(close(float(&original.rows[3][2]), 3.0));

    let standardized = query(
        &mut wh,
        "SELECT centroid_id, numerical_value FROM ML.CENTROIDS(MODEL models.mixed, STRUCT(TRUE AS standardize)) WHERE feature = 'x' ORDER BY centroid_id",
    );
    // mean 2, sample stddev sqrt(6 · 1 / 5).
    let sd = (6.0f64 / 5.0).sqrt();
    assert!(close(float(&standardized.rows[0][1]), -1.0 / sd));
    assert!(close(float(&standardized.rows[1][1]), 1.0 / sd));
}

fn category_shares(cell: &Cell) -> Vec<(Option<String>, f64)> {
    let Cell::List(items) = cell else {
        panic!("categorical_value is not a list: {cell:?}")
    };
    items
        .iter()
        .map(|item| match item {
            Cell::Struct(fields) => {
                assert_eq!(fields[0].0, "category");
                let category = match &fields[0].1 {
                    Cell::Text(t) => Some(t.clone()),
                    Cell::Null => None,
                    other => panic!("category {other:?}"),
                };
                (category, float(&fields[1].1))
            }
            other => panic!("not a struct: {other:?}"),
        })
        .collect()
}

#[test]
fn feature_info_describes_the_training_columns() {
    let mut wh = warehouse();
    wh.execute_script(
        "CREATE TABLE features.f (n INT64, s STRING);
         INSERT INTO features.f VALUES (1, 'a'), (2, 'b'), (NULL, NULL), (6, 'a'), (11, 'c');
         CREATE MODEL models.f OPTIONS(model_type='kmeans', num_clusters=2) AS SELECT n, s FROM features.f",
    )
    .expect("train");
    let info = query(&mut wh, "SELECT * FROM ML.FEATURE_INFO(MODEL models.f)");
    assert_eq!(
        info.columns,
        [
            "input",
            "min",
            "max",
            "mean",
            "median",
            "stddev",
            "category_count",
            "null_count"
        ]
    );
    let n = &info.rows[0];
    assert_eq!(n[0], Cell::Text("n".into()));
    assert_eq!(
        (float(&n[1]), float(&n[2]), float(&n[3]), float(&n[4])),
        (1.0, 11.0, 5.0, 4.0)
    );
    // Sample stddev of {1, 2, 6, 11}: sqrt((16 + 9 + 1 + 36) / 3).
    assert!(close(float(&n[5]), (62.0f64 / 3.0).sqrt()));
    assert_eq!((n[6].clone(), n[7].clone()), (Cell::Null, Cell::Int(1)));
    let s = &info.rows[1];
    assert_eq!(s[0], Cell::Text("s".into()));
    assert_eq!(
        s[1..6],
        [Cell::Null, Cell::Null, Cell::Null, Cell::Null, Cell::Null]
    );
    assert_eq!((s[6].clone(), s[7].clone()), (Cell::Int(3), Cell::Int(1)));
}

#[test]
fn evaluate_computes_davies_bouldin_and_mean_squared_distance_of_any_input() {
    let mut wh = warehouse();
    train_two_clusters(&mut wh);
    // Scatter 1 and 2, centroids 12 apart: DB = ((1 + 2) / 12 + (2 + 1) / 12) / 2 = 0.25;
    // squared distances 1, 1, 9, 1, 1, 9.
    let on_training = query(
        &mut wh,
        "SELECT * FROM ML.EVALUATE(MODEL models.two, TABLE features.points)",
    );
    assert_eq!(
        on_training.columns,
        ["davies_bouldin_index", "mean_squared_distance"]
    );
    assert!(close(float(&on_training.rows[0][0]), 0.25));
    assert!(close(float(&on_training.rows[0][1]), 22.0 / 6.0));

    // All rows in one cluster: Davies–Bouldin is undefined.
    let one_cluster = query(
        &mut wh,
        "SELECT * FROM ML.EVALUATE(MODEL models.two, (SELECT 0.5 AS x))",
    );
    assert!(float(&one_cluster.rows[0][0]).is_nan());
    assert!(close(float(&one_cluster.rows[0][1]), 0.25));
}

#[test]
fn ml_functions_work_wherever_a_table_can_appear() {
    let mut wh = warehouse();
    train_two_clusters(&mut wh);
    let count = |wh: &mut DuckDbWarehouse, sql: &str| -> i64 {
        query(wh, sql).rows[0][0].as_i64().expect("a count")
    };
    // CTE, JOIN, nested subquery, TABLE input with backticks, model name without a dataset.
    assert_eq!(
        count(
            &mut wh,
            "WITH p AS (SELECT * FROM ML.PREDICT(MODEL `models.two`, TABLE `features.points`))
             SELECT COUNT(*) FROM p JOIN ML.CENTROIDS(MODEL two) AS c USING (centroid_id)"
        ),
        6
    );
    assert_eq!(
        count(
            &mut wh,
            "SELECT COUNT(*) FROM (SELECT centroid_id FROM ML.PREDICT(MODEL models.two, (SELECT x FROM features.points WHERE x > 5))) WHERE centroid_id = 2"
        ),
        4
    );
    wh.execute_script(
        "CREATE TABLE inferenced.predictions (centroid_id INT64, x FLOAT64);
         INSERT INTO inferenced.predictions SELECT centroid_id, x FROM ML.PREDICT(MODEL models.two, TABLE features.points)",
    )
    .expect("INSERT … SELECT from ML.PREDICT");
    assert_eq!(
        count(
            &mut wh,
            "SELECT COUNT(*) FROM inferenced.predictions WHERE centroid_id = 1"
        ),
        2
    );
}

#[test]
fn ml_function_arguments_are_checked_like_bigquery() {
    let mut wh = warehouse();
    train_two_clusters(&mut wh);
    let error = |wh: &mut DuckDbWarehouse, sql: &str| -> String {
        wh.query(sql)
            .err()
            .unwrap_or_else(|| panic!("expected an error: {sql}"))
            .to_string()
    };
    let message = error(&mut wh, "SELECT * FROM ML.PREDICT(MODEL models.two)");
    assert!(
        message.contains("ML.PREDICT") && message.contains("needs input data"),
        "{message}"
    );
    let message = error(
        &mut wh,
        "SELECT * FROM ML.CENTROIDS(MODEL models.two, TABLE features.points)",
    );
    assert!(message.contains("takes no input data"), "{message}");
    let message = error(
        &mut wh,
        "SELECT * FROM ML.CENTROIDS(MODEL models.two, STRUCT(TRUE AS standardise))",
    );
    assert!(
        message.contains("`standardise`") && message.contains("allowed: standardize"),
        "{message}"
    );
    let message = error(
        &mut wh,
        "SELECT * FROM ML.DETECT_ANOMALIES(MODEL models.two, TABLE features.points)",
    );
    assert!(message.contains("contamination"), "{message}");
    let message = error(&mut wh, "SELECT * FROM ML.FEATURE_INFO(MODEL models.nope)");
    assert!(message.contains("models.nope does not exist"), "{message}");
    let message = error(
        &mut wh,
        "SELECT * FROM ML.EXPLAIN_FORECAST(MODEL models.two)",
    );
    assert!(message.contains("ML.EXPLAIN_FORECAST"), "{message}");
}

#[test]
fn training_info_and_evaluate_without_input_report_the_training_run() {
    let mut wh = warehouse();
    train_two_clusters(&mut wh);
    let info = query(
        &mut wh,
        "SELECT * FROM ML.TRAINING_INFO(MODEL models.two) ORDER BY iteration",
    );
    assert_eq!(
        info.columns,
        [
            "training_run",
            "iteration",
            "loss",
            "duration_ms",
            "cluster_info"
        ]
    );
    // The seeds 0 and 10 are already in their final clusters: one pass reaches the fixed point.
    let last = info.rows.last().expect("at least one iteration");
    assert!(close(float(&last[2]), 22.0 / 6.0), "final loss {last:?}");
    let Cell::List(clusters) = &last[4] else {
        panic!("cluster_info {:?}", last[4])
    };
    let clusters: Vec<(i64, f64, i64)> = clusters
        .iter()
        .map(|c| match c {
            Cell::Struct(f) => {
                assert_eq!(
                    [f[0].0.as_str(), f[1].0.as_str(), f[2].0.as_str()],
                    ["centroid_id", "cluster_radius", "cluster_size"]
                );
                (
                    f[0].1.as_i64().unwrap(),
                    float(&f[1].1),
                    f[2].1.as_i64().unwrap(),
                )
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(clusters.len(), 2);
    assert_eq!((clusters[0].0, clusters[0].2), (1, 2));
    assert!(close(clusters[0].1, 1.0));
    assert_eq!((clusters[1].0, clusters[1].2), (2, 4));
    assert!(close(clusters[1].1, 5f64.sqrt()));

    let stored = query(&mut wh, "SELECT * FROM ML.EVALUATE(MODEL models.two)");
    let recomputed = query(
        &mut wh,
        "SELECT * FROM ML.EVALUATE(MODEL models.two, TABLE features.points)",
    );
    assert!(close(float(&stored.rows[0][0]), 0.25));
    for (a, b) in stored.rows[0].iter().zip(&recomputed.rows[0]) {
        assert!(close(float(a), float(b)), "{stored:?} vs {recomputed:?}");
    }
}

#[test]
fn warm_start_continues_from_the_existing_centroids() {
    let mut wh = warehouse();
    train_two_clusters(&mut wh);
    // Shift every point by +1; one Lloyd pass from the old centroids (1 and 13) lands on the
    // new means, 2 and 14, with the old cluster numbering.
    wh.execute_script(
        "CREATE OR REPLACE TABLE features.points AS SELECT x + 1 AS x, seed FROM features.points;
         CREATE OR REPLACE MODEL models.two OPTIONS(model_type='kmeans', warm_start=TRUE, standardize_features=FALSE,
           max_iterations=1) AS SELECT x FROM features.points",
    )
    .expect("warm start");
    let centroids = query(
        &mut wh,
        "SELECT centroid_id, numerical_value FROM ML.CENTROIDS(MODEL models.two) ORDER BY centroid_id",
    );
    assert!(close(float(&centroids.rows[0][1]), 2.0), "{centroids:?}");
    assert!(close(float(&centroids.rows[1][1]), 14.0), "{centroids:?}");

    let error = wh
        .execute_script(
            "CREATE OR REPLACE MODEL models.two OPTIONS(model_type='kmeans', warm_start=TRUE, num_clusters=3)
             AS SELECT x FROM features.points",
        )
        .unwrap_err()
        .to_string();
    assert!(error.contains("keeps the model's 2 clusters"), "{error}");
    let error = wh
        .execute_script(
            "CREATE MODEL models.fresh OPTIONS(model_type='kmeans', warm_start=TRUE) AS SELECT x FROM features.points",
        )
        .unwrap_err()
        .to_string();
    assert!(error.contains("needs an existing model"), "{error}");
    let error = wh
        .execute_script(
            "CREATE OR REPLACE MODEL models.two OPTIONS(model_type='kmeans', warm_start=TRUE) AS SELECT x, x * 2 AS y FROM features.points",
        )
        .unwrap_err()
        .to_string();
    assert!(error.contains("feature columns"), "{error}");
}
