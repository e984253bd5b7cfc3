//! BigQuery ML statements on the embedded engine: CREATE MODEL trains, ML.DETECT_ANOMALIES
//! follows BigQuery's documented rules, and the model survives a restart.

use netsentinel::bqml::kmeans::{self, InputColumn, KMeansOptions};
use netsentinel::engine::duckdb::DuckDbWarehouse;
use netsentinel::engine::{Cell, Warehouse};

fn warehouse() -> DuckDbWarehouse {
    DuckDbWarehouse::open_in_memory().expect("in-memory warehouse")
}

/// Two 1-D clusters with hand-computable statistics: {0, 2} (centroid 1, radius 1) and
/// {10, 12, 14, 16} (centroid 13, radius √5). Training normalized distances, sorted:
/// [1/√5, 1/√5, 1, 1, 3/√5, 3/√5].
fn train_two_clusters(wh: &mut DuckDbWarehouse) {
    wh.execute_script(
        "CREATE TABLE features.points AS
         SELECT * FROM UNNEST([STRUCT(0.0 AS x, TRUE AS seed), STRUCT(2.0 AS x, FALSE AS seed), STRUCT(10.0 AS x, TRUE AS seed),
                               STRUCT(12.0 AS x, FALSE AS seed), STRUCT(14.0 AS x, FALSE AS seed), STRUCT(16.0 AS x, FALSE AS seed)]);
         CREATE MODEL models.two OPTIONS(model_type='kmeans', num_clusters=2, kmeans_init_method='CUSTOM',
           kmeans_init_col='seed', standardize_features=FALSE) AS SELECT x, seed FROM features.points",
    )
    .expect("train");
}

fn detect(wh: &mut DuckDbWarehouse, contamination: &str, points: &str) -> Vec<(bool, f64, i64, f64)> {
    let result = wh
        .query(&format!(
            "SELECT * FROM ML.DETECT_ANOMALIES(MODEL models.two, STRUCT({contamination} AS contamination),
               (SELECT x FROM UNNEST([{points}]) AS x)) ORDER BY x"
        ))
        .expect("detect");
    assert_eq!(result.columns, ["is_anomaly", "normalized_distance", "centroid_id", "x"]);
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
    assert_eq!(rows[1].0, false, "normalized distance 1.0 is not > threshold 1.0");
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

    let err = wh
        .query("SELECT * FROM ML.DETECT_ANOMALIES(MODEL models.two, STRUCT(0.6 AS contamination), (SELECT 1.0 AS x))")
        .unwrap_err()
        .to_string();
    assert!(err.contains("contamination"), "{err}");
}

#[test]
fn sql_scoring_matches_the_rust_model_on_mixed_features() {
    let mut wh = warehouse();
    wh.execute_script(
        "CREATE TABLE features.mixed AS
         SELECT IF(MOD(i, 17) = 0, NULL, SIN(i) * 10 + MOD(i, 3) * 20) AS a,
                CAST(MOD(i * 7, 11) AS INT64) AS b,
                CASE MOD(i, 5) WHEN 0 THEN NULL WHEN 1 THEN 'x' WHEN 2 THEN 'y' ELSE 'z' END AS c,
                MOD(i, 2) = 0 AS d
         FROM UNNEST(GENERATE_ARRAY(1, 300)) AS i;
         CREATE MODEL models.mixed OPTIONS(model_type='kmeans', num_clusters=3, kmeans_init_method='KMEANS++')
         AS SELECT a, b, c, d FROM features.mixed",
    )
    .expect("train");
    let scored = wh
        .query(
            "SELECT normalized_distance, centroid_id, a, b, c, d FROM ML.DETECT_ANOMALIES(MODEL `models.mixed`,
               STRUCT(0.05 AS contamination), TABLE features.mixed)",
        )
        .expect("detect");
    assert_eq!(scored.rows.len(), 300);

    // The same training in Rust (same data, options and seed) must score every row the same.
    let column = |i: usize| scored.rows.iter().map(move |r| r[i].clone());
    let numeric = |i: usize| column(i).map(|c| c.as_f64()).collect::<Vec<_>>();
    let text = |i: usize| column(i).map(|c| match c { Cell::Null => None, other => Some(other.to_string()) }).collect::<Vec<_>>();
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
    // Row order of the scored output is the training order, which is what the model saw.
    let model = kmeans::train(&columns, &options).unwrap();
    let matrix = model.preprocessor.transform(&columns).unwrap();
    for (i, row) in matrix.chunks(model.dims()).enumerate() {
        let (centroid, distance) = model.nearest(row);
        let sql_distance = scored.rows[i][0].as_f64().unwrap();
        assert_eq!(scored.rows[i][1], Cell::Int(centroid as i64), "row {i}");
        assert!((sql_distance - distance).abs() <= 1e-9 * distance.max(1.0), "row {i}: {sql_distance} vs {distance}");
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
    assert!(err.contains("lacks the model's feature column(s) x"), "{err}");

    wh.execute_script("DROP MODEL models.two").unwrap();
    assert!(wh.execute_script("DROP MODEL models.two").is_err());
    wh.execute_script("DROP MODEL IF EXISTS models.two").unwrap();
    let err = wh
        .execute_script("CREATE MODEL features.points OPTIONS(model_type='kmeans') AS SELECT 1.0 AS x")
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a table"), "{err}");
}
