//! ML.DETECT_ANOMALIES computed as SQL inside DuckDB gives the same normalized distances as the
//! Rust model bit for bit, not just closely: both sum the squared differences in dimension
//! order with the same IEEE operations.

use netsentinel_bqml::kmeans::{self, DistanceType, InitMethod, InputColumn, KMeansOptions};
use netsentinel_core::{Cell, Warehouse};
use netsentinel_duckdb::DuckDbWarehouse;

fn check(distance: DistanceType) {
    let mut wh = DuckDbWarehouse::open_in_memory().expect("warehouse");
    let rows: Vec<String> = (0..400)
        .map(|i: i64| {
            let f = i as f64;
            format!(
                "({i}, {:e}, {:e}, {:e})",
                (f * 0.37).sin() * 3.0 + (i % 4) as f64,
                (f * 0.11).cos() * 7.0 - (i % 3) as f64,
                ((i * 7919) % 101) as f64 / 13.0
            )
        })
        .collect();
    wh.execute_script(&format!(
        "CREATE TABLE features.pts (id INT64, a FLOAT64, b FLOAT64, c FLOAT64);
         INSERT INTO features.pts VALUES {};
         CREATE MODEL models.m OPTIONS(model_type='kmeans', num_clusters=5, kmeans_init_method='KMEANS++',
           distance_type='{distance}') AS SELECT a, b, c FROM features.pts",
        rows.join(", ")
    ))
    .expect("train");
    let scored = wh
        .query(
            "SELECT normalized_distance, centroid_id, a, b, c FROM ML.DETECT_ANOMALIES(MODEL models.m,
               STRUCT(0.02 AS contamination), TABLE features.pts) ORDER BY id",
        )
        .expect("detect");
    let column =
        |i: usize| -> Vec<Option<f64>> { scored.rows.iter().map(|r| r[i].as_f64()).collect() };
    let columns = vec![
        InputColumn::numeric("a", column(2)),
        InputColumn::numeric("b", column(3)),
        InputColumn::numeric("c", column(4)),
    ];
    let mut training = columns.clone();
    netsentinel_bqml::canonical_row_order(&mut training, None);
    let options = KMeansOptions {
        num_clusters: Some(5),
        init: InitMethod::KMeansPlusPlus,
        distance,
        ..KMeansOptions::default()
    };
    let model = kmeans::train(&training, &options).unwrap();
    let matrix = model.preprocessor.transform(&columns).unwrap();
    for (i, row) in matrix.chunks(model.dims()).enumerate() {
        let (centroid, d) = model.nearest(row);
        let Cell::Float(sql) = scored.rows[i][0] else {
            panic!("row {i}: {:?}", scored.rows[i]);
        };
        assert_eq!(
            sql.to_bits(),
            d.to_bits(),
            "{distance} row {i}: {sql} vs {d}"
        );
        assert_eq!(
            scored.rows[i][1],
            Cell::Int(centroid as i64),
            "{distance} row {i}"
        );
    }
}

#[test]
fn euclidean_sql_scoring_equals_the_rust_model_bit_for_bit() {
    check(DistanceType::Euclidean);
}

#[test]
fn cosine_sql_scoring_equals_the_rust_model_bit_for_bit() {
    check(DistanceType::Cosine);
}
