//! BigQuery ML statements on the embedded engine: CREATE MODEL trains, ML.DETECT_ANOMALIES
//! follows BigQuery's documented rules, and the model survives a restart.

use netsentinel_bqml::kmeans::{self, InputColumn, KMeansOptions};
use netsentinel_core::{Cell, Warehouse};
use netsentinel_duckdb::DuckDbWarehouse;

use crate::{train_two_clusters, warehouse};

fn detect(
    wh: &mut DuckDbWarehouse,
    contamination: &str,
    points: &str,
) -> Vec<(bool, f64, i64, f64)> {
    let result = wh
        .query(&format!(
            "SELECT * FROM ML.DETECT_ANOMALIES(MODEL models.two, STRUCT({contamination} AS contamination),
               (SELECT x FROM UNNEST([{points}]) AS x)) ORDER BY x"
        ))
        .expect("detect");
    assert_eq!(
        result.columns,
        ["is_anomaly", "normalized_distance", "centroid_id", "x"]
    );
    result
        .rows
        .iter()
        .map(|r| match r.as_slice() {
            [Cell::Bool(a), Cell::Float(d), Cell::Int(c), x] => (*a, *d, *c, x.as_f64().unwrap()),
            other => panic!("unexpected row {other:?}"),
        })
        .collect()
}

#[test]
fn detect_anomalies_uses_the_training_quantile_and_a_strict_threshold() {
    let mut wh = warehouse();
    train_two_clusters(&mut wh);
    let sqrt5 = 5f64.sqrt();

    // c = 0.5: rank ceil(0.5·6) = 3 → threshold 1.0; a point at exactly 1.0 is not anomalous.
    let rows = detect(&mut wh, "0.5", "1.0, 2.0, 3.0, 13.0, 18.0");
    assert_eq!(rows[0], (false, 0.0, 1, 1.0));
    assert!(!rows[1].0, "normalized distance 1.0 is not > threshold 1.0");
    assert!((rows[1].1 - 1.0).abs() < 1e-12);
    assert_eq!((rows[2].0, rows[2].2), (true, 1));
    assert!((rows[2].1 - 2.0).abs() < 1e-12);
    assert_eq!((rows[3].0, rows[3].1, rows[3].2), (false, 0.0, 2));
    assert!((rows[4].1 - 5.0 / sqrt5).abs() < 1e-12 && rows[4].0);

    // c = 0.2: rank ceil(0.8·6) = 5 → threshold 3/√5 ≈ 1.342; 3.0 (nd 2) is still anomalous,
    // 2.5 (nd 1.5) too, 1.0+1.3 (nd 1.3) is not.
    let rows = detect(&mut wh, "0.2", "2.3, 2.5");
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [false, true]);

    // c = 0: the maximum training distance.
    let rows = detect(&mut wh, "0", "16.0, 16.5");
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [false, true]);

    // ML calls nest: the input of one can be the output of another.
    let nested = wh
        .query(
            "SELECT centroid_id, x FROM ML.DETECT_ANOMALIES(MODEL models.two, STRUCT(0.5 AS contamination),
               (SELECT x FROM ML.DETECT_ANOMALIES(MODEL models.two, STRUCT(0.5 AS contamination),
                  (SELECT x FROM UNNEST([13.0]) AS x))))",
        )
        .unwrap();
    assert_eq!(nested.rows, [vec![Cell::Int(2), Cell::Float(13.0)]]);

    let err = wh
        .query("SELECT * FROM ML.DETECT_ANOMALIES(MODEL models.two, STRUCT(0.6 AS contamination), (SELECT 1.0 AS x))")
        .unwrap_err()
        .to_string();
    assert!(err.contains("contamination"), "{err}");
}

#[test]
fn sql_scoring_matches_the_rust_model_on_mixed_features() {
    let mut wh = warehouse();
    let rows: Vec<String> = (1..=300)
        .map(|i: i64| {
            let a = if i % 17 == 0 {
                "NULL".to_string()
            } else {
                format!("{}", (i as f64).sin() * 10.0 + (i % 3) as f64 * 20.0)
            };
            let c = match i % 5 {
                0 => "NULL",
                1 => "'x'",
                2 => "'y'",
                _ => "'z'",
            };
            format!("({i}, {a}, {}, {c}, {})", (i * 7) % 11, i % 2 == 0)
        })
        .collect();
    wh.execute_script(&format!(
        "CREATE TABLE features.mixed (id INT64, a FLOAT64, b INT64, c STRING, d BOOL);
         INSERT INTO features.mixed (id, a, b, c, d) VALUES {};
         CREATE MODEL models.mixed OPTIONS(model_type='kmeans', num_clusters=3, kmeans_init_method='KMEANS++')
         AS SELECT a, b, c, d FROM features.mixed ORDER BY id",
        rows.join(", ")
    ))
    .expect("train");
    let scored = wh
        .query(
            "SELECT normalized_distance, centroid_id, a, b, c, d FROM ML.DETECT_ANOMALIES(MODEL `models.mixed`,
               STRUCT(0.05 AS contamination), TABLE features.mixed) ORDER BY id",
        )
        .expect("detect");
    assert_eq!(scored.rows.len(), 300);

    // The same training in Rust (same data, options and seed) must score every row the same.
    let column = |i: usize| scored.rows.iter().map(move |r| r[i].clone());
    let numeric = |i: usize| column(i).map(|c| c.as_f64()).collect::<Vec<_>>();
    let text = |i: usize| {
        column(i)
            .map(|c| match c {
                Cell::Null => None,
                other => Some(other.to_string()),
            })
            .collect::<Vec<_>>()
    };
    let columns = vec![
        InputColumn::numeric("a", numeric(2)),
        InputColumn::numeric("b", numeric(3)),
        InputColumn::categorical("c", text(4)),
        InputColumn::categorical("d", text(5)),
    ];
    let options = KMeansOptions {
        num_clusters: Some(3),
        init: kmeans::InitMethod::KMeansPlusPlus,
        ..KMeansOptions::default()
    };
    // Training sees the rows in canonical order; scoring is per row, in any order.
    let mut training = columns.clone();
    netsentinel_bqml::canonical_row_order(&mut training, None);
    let model = kmeans::train(&training, &options).unwrap();
    let matrix = model.preprocessor.transform(&columns).unwrap();
    for (i, row) in matrix.chunks(model.dims()).enumerate() {
        let (centroid, distance) = model.nearest(row);
        let sql_distance = scored.rows[i][0].as_f64().unwrap();
        assert_eq!(scored.rows[i][1], Cell::Int(centroid as i64), "row {i}");
        assert!(
            (sql_distance - distance).abs() <= 1e-9 * distance.max(1.0),
            "row {i}: {sql_distance} vs {distance}"
        );
    }
}

#[test]
fn models_survive_a_restart_and_errors_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.duckdb");
    {
        let mut wh = DuckDbWarehouse::open(&path).unwrap();
        train_two_clusters(&mut wh);
        let err = wh
            .execute_script("CREATE MODEL models.two OPTIONS(model_type='kmeans') AS SELECT x FROM features.points")
            .unwrap_err()
            .to_string();
        assert!(err.contains("already exists"), "{err}");
    }
    let mut wh = DuckDbWarehouse::open(&path).unwrap();
    let rows = detect(&mut wh, "0.5", "3.0");
    assert!(rows[0].0, "the reopened model still scores");

    let err = wh
        .query("SELECT * FROM ML.DETECT_ANOMALIES(MODEL models.nope, STRUCT(0.1 AS contamination), TABLE features.points)")
        .unwrap_err()
        .to_string();
    assert!(err.contains("models.nope does not exist"), "{err}");
    let err = wh
        .query("SELECT * FROM ML.DETECT_ANOMALIES(MODEL models.two, STRUCT(0.1 AS contamination), (SELECT 1 AS y))")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("lacks the model's feature column(s) x"),
        "{err}"
    );

    wh.execute_script("DROP MODEL models.two").unwrap();
    assert!(wh.execute_script("DROP MODEL models.two").is_err());
    wh.execute_script("DROP MODEL IF EXISTS models.two")
        .unwrap();
    let err = wh
        .execute_script(
            "CREATE MODEL features.points OPTIONS(model_type='kmeans') AS SELECT 1.0 AS x",
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a table"), "{err}");
}

#[test]
fn training_columns_that_start_with_nulls_keep_every_row() {
    let mut wh = warehouse();
    wh.execute_script(
        "CREATE TABLE features.gaps (x FLOAT64, y FLOAT64);
         INSERT INTO features.gaps (x, y) VALUES (NULL, 1.0), (NULL, 2.0), (3.0, 30.0), (5.0, 40.0);
         CREATE MODEL models.gaps OPTIONS(model_type='kmeans', num_clusters=2) AS SELECT x, y FROM features.gaps",
    )
    .expect("train with leading NULLs");
    let rows = wh
        .query("SELECT COUNT(*) FROM ML.DETECT_ANOMALIES(MODEL models.gaps, STRUCT(0.1 AS contamination), TABLE features.gaps)")
        .unwrap();
    assert_eq!(rows.scalar(), Some(&Cell::Int(4)));
    let stats = wh
        .query("SELECT mean, null_count FROM models.__model_features WHERE model_name = 'models.gaps' AND feature = 'x'")
        .unwrap();
    assert_eq!(
        stats.rows,
        [vec![Cell::Float(4.0), Cell::Int(2)]],
        "the mean imputes the 2 NULLs"
    );
}

#[test]
fn a_rolled_back_run_leaves_the_tables_and_models_as_they_were() {
    let mut wh = warehouse();
    train_two_clusters(&mut wh);
    let inside = wh
        .rolled_back(|wh| {
            wh.execute_script(
                "DELETE FROM features.points WHERE x > 5;
                 CREATE OR REPLACE MODEL models.two OPTIONS(model_type='kmeans', num_clusters=2, standardize_features=FALSE) AS SELECT x FROM features.points;
                 CREATE TABLE features.scratch AS SELECT 1 AS one",
            )
            .expect("the script runs inside the transaction");
            let points = wh.query("SELECT COUNT(*) FROM features.points").unwrap();
            let broken = wh.query("SELECT no_such_column FROM features.points");
            (points.rows[0][0].clone(), broken.is_err())
        })
        .expect("rollback");
    assert_eq!(inside, (Cell::Int(2), true));
    let points = wh.query("SELECT COUNT(*) FROM features.points").unwrap();
    assert_eq!(points.rows[0][0], Cell::Int(6));
    assert!(wh.query("SELECT * FROM features.scratch").is_err());
    // The model trained on all six points is back (the one on {0, 2} would have 0 and 2).
    let centroids = wh
        .query("SELECT numerical_value FROM ML.CENTROIDS(MODEL models.two) ORDER BY 1")
        .unwrap();
    assert_eq!(centroids.rows, [[Cell::Float(1.0)], [Cell::Float(13.0)]]);
}
