//! Conformance of the local k-means with an independent reference computed in the same run:
//! scripts/kmeans_reference.py preprocesses a seeded data set as BQML_KMEANS.md documents (with
//! numpy) and fits it with scikit-learn and a numpy cosine Lloyd. The local engine trains on the
//! same rows through CREATE MODEL and reports through ML.CENTROIDS and ML.EVALUATE.
//!
//! The script needs numpy and scikit-learn (scripts/requirements-test.txt; `.ci/run` installs
//! them and points NETSENTINEL_PYTHON at that interpreter). Without them the reference tests
//! skip with a printed reason, except under CI=true, where that is a failure.

use std::process::Command;
use std::sync::OnceLock;

use netsentinel_core::{Cell, ResultSet, Warehouse};
use netsentinel_duckdb::DuckDbWarehouse;
use serde_json::Value;

/// Centroids agree to 1e-9 relative to the coordinate, or to the unit scale of standardized
/// data for coordinates near zero (where a relative bound means nothing).
const CENTROID_TOLERANCE: f64 = 1e-9;
const INERTIA_TOLERANCE: f64 = 0.01;

struct Reference {
    json: Value,
    warehouse: DuckDbWarehouse,
}

/// The reference is computed once per test binary (scikit-learn takes seconds).
fn reference() -> Option<Reference> {
    static JSON: OnceLock<Option<Value>> = OnceLock::new();
    let json = JSON.get_or_init(compute_reference).clone()?;
    let mut warehouse = DuckDbWarehouse::open_in_memory().expect("warehouse");
    load_rows(&mut warehouse, &json);
    Some(Reference { json, warehouse })
}

fn compute_reference() -> Option<Value> {
    let python = std::env::var("NETSENTINEL_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("reference.json");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/kmeans_reference.py"
    );
    let run = Command::new(&python).arg(script).arg(&out).output();
    let failure = match &run {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(String::from_utf8_lossy(&output.stderr).into_owned()),
        Err(e) => Some(format!("cannot start {python}: {e}")),
    };
    if let Some(reason) = failure {
        let message = format!(
            "the k-means reference needs numpy and scikit-learn: `pip install -r scripts/requirements-test.txt` and set NETSENTINEL_PYTHON if they live in a venv\n{reason}"
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message}");
        }
        eprintln!("skipping: {message}");
        return None;
    }
    Some(serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap())
}

fn load_rows(warehouse: &mut DuckDbWarehouse, json: &Value) {
    warehouse
        .execute_script(
            "CREATE TABLE features.conf (a FLOAT64, b FLOAT64, c FLOAT64, kind STRING, seed BOOL)",
        )
        .unwrap();
    let rows = json["rows"].as_array().unwrap();
    for chunk in rows.chunks(500) {
        let values: Vec<String> = chunk
            .iter()
            .map(|row| {
                let cells: Vec<String> = row
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|cell| match cell {
                        Value::Null => "NULL".into(),
                        // `{:e}` round-trips exactly and is read as a double, not a decimal.
                        Value::Number(n) => format!("{:e}", n.as_f64().unwrap()),
                        Value::String(s) => format!("'{s}'"),
                        Value::Bool(b) => b.to_string(),
                        other => panic!("unexpected cell {other}"),
                    })
                    .collect();
                format!("({})", cells.join(", "))
            })
            .collect();
        warehouse
            .execute_script(&format!(
                "INSERT INTO features.conf VALUES {}",
                values.join(", ")
            ))
            .unwrap();
    }
}

fn train(warehouse: &mut DuckDbWarehouse, name: &str, options: &str, columns: &str) {
    warehouse
        .execute_script(&format!(
            "CREATE MODEL models.{name} OPTIONS(model_type = 'kmeans', num_clusters = 4, {options}) AS SELECT {columns} FROM features.conf"
        ))
        .unwrap_or_else(|e| panic!("training {name}: {e}"));
}

fn query(warehouse: &mut DuckDbWarehouse, sql: &str) -> ResultSet {
    warehouse
        .query(sql)
        .unwrap_or_else(|e| panic!("{sql}\n{e}"))
}

/// The model's standardized centroids as vectors in the reference's dimension order.
fn standardized_centroids(
    warehouse: &mut DuckDbWarehouse,
    model: &str,
    json: &Value,
) -> Vec<Vec<f64>> {
    let categories: Vec<Option<String>> = json["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().map(str::to_string))
        .collect();
    let result = query(
        warehouse,
        &format!(
            "SELECT centroid_id, feature, numerical_value, categorical_value FROM ML.CENTROIDS(MODEL models.{model}, STRUCT(TRUE AS standardize)) ORDER BY centroid_id, feature"
        ),
    );
    let mut centroids: Vec<Vec<f64>> = Vec::new();
    for row in &result.rows {
        let id = row[0].as_i64().unwrap() as usize;
        if centroids.len() < id {
            centroids.push(vec![f64::NAN; 3 + categories.len()]);
        }
        let centroid = centroids.last_mut().unwrap();
        match &row[1] {
            Cell::Text(feature) if feature == "kind" => {
                let Cell::List(shares) = &row[3] else {
                    panic!("categorical_value {:?}", row[3])
                };
                for share in shares {
                    let Cell::Struct(fields) = share else {
                        panic!("{share:?}")
                    };
                    let category = match &fields[0].1 {
                        Cell::Text(t) => Some(t.clone()),
                        _ => None,
                    };
                    let position = categories.iter().position(|c| *c == category).unwrap();
                    centroid[3 + position] = fields[1].1.as_f64().unwrap();
                }
            }
            Cell::Text(feature) => {
                let position = ["a", "b", "c"].iter().position(|f| f == feature).unwrap();
                centroid[position] = row[2].as_f64().unwrap();
            }
            other => panic!("feature {other:?}"),
        }
    }
    centroids
}

fn assert_same_centroids(ours: &[Vec<f64>], reference: &Value, what: &str) {
    let reference: Vec<Vec<f64>> = reference
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(ours.len(), reference.len(), "{what}: number of centroids");
    // Centroid ids follow the model's row order, not the reference's: pair each reference
    // centroid with the nearest of ours.
    for expected in &reference {
        let nearest = ours
            .iter()
            .min_by(|a, b| gap(a, expected).total_cmp(&gap(b, expected)))
            .unwrap();
        for (j, (got, want)) in nearest.iter().zip(expected).enumerate() {
            assert!(
                (got - want).abs() <= CENTROID_TOLERANCE * want.abs().max(1.0),
                "{what}: dimension {j}: {got} vs reference {want}\nours: {nearest:?}\nreference: {expected:?}"
            );
        }
    }
}

fn gap(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

fn inertia(warehouse: &mut DuckDbWarehouse, model: &str, rows: usize) -> f64 {
    let result = query(
        warehouse,
        &format!(
            "SELECT mean_squared_distance FROM ML.EVALUATE(MODEL models.{model}, TABLE features.conf)"
        ),
    );
    result.rows[0][0].as_f64().unwrap() * rows as f64
}

#[test]
fn custom_init_centroids_equal_scikit_learn_with_nulls_and_one_hot() {
    let Some(Reference {
        json,
        mut warehouse,
    }) = reference()
    else {
        return;
    };
    train(
        &mut warehouse,
        "custom",
        &format!(
            "kmeans_init_method = 'CUSTOM', kmeans_init_col = 'seed', max_iterations = {}, early_stop = FALSE",
            json["max_iterations"]
        ),
        "a, b, c, kind, seed",
    );
    let ours = standardized_centroids(&mut warehouse, "custom", &json);
    assert_same_centroids(&ours, &json["custom_centroids"], "CUSTOM init, EUCLIDEAN");
}

#[test]
fn cosine_centroids_equal_a_numpy_lloyd() {
    let Some(Reference {
        json,
        mut warehouse,
    }) = reference()
    else {
        return;
    };
    train(
        &mut warehouse,
        "cosine",
        &format!(
            "kmeans_init_method = 'CUSTOM', kmeans_init_col = 'seed', distance_type = 'COSINE', max_iterations = {}, early_stop = FALSE",
            json["max_iterations"]
        ),
        "a, b, c, kind, seed",
    );
    let ours = standardized_centroids(&mut warehouse, "cosine", &json);
    assert_same_centroids(&ours, &json["cosine_centroids"], "CUSTOM init, COSINE");
}

#[test]
fn random_and_kmeans_plus_plus_reach_scikit_learns_inertia() {
    let Some(Reference {
        json,
        mut warehouse,
    }) = reference()
    else {
        return;
    };
    let rows = json["rows"].as_array().unwrap().len();
    for (model, init, key) in [
        ("random_init", "RANDOM", "random_inertia"),
        ("plus_plus_init", "KMEANS++", "kmeans_plus_plus_inertia"),
    ] {
        train(
            &mut warehouse,
            model,
            &format!(
                "kmeans_init_method = '{init}', max_iterations = {}, early_stop = FALSE",
                json["max_iterations"]
            ),
            "a, b, c, kind",
        );
        let ours = inertia(&mut warehouse, model, rows);
        let theirs = json[key].as_f64().unwrap();
        assert!(
            (ours - theirs).abs() <= INERTIA_TOLERANCE * theirs,
            "{init}: inertia {ours} vs scikit-learn {theirs}"
        );
    }
}

/// BigQuery's ML.STANDARD_SCALER documentation scales 1..5 to this vector (sample stddev). With
/// every row its own CUSTOM-seeded cluster, the standardized centroids are exactly the scaled
/// rows.
#[test]
fn standardization_matches_the_documented_standard_scaler_vector() {
    let mut warehouse = DuckDbWarehouse::open_in_memory().expect("warehouse");
    warehouse
        .execute_script(
            "CREATE TABLE features.s AS SELECT x, TRUE AS seed FROM UNNEST([1.0, 2.0, 3.0, 4.0, 5.0]) AS x;
             CREATE MODEL models.s OPTIONS(model_type = 'kmeans', num_clusters = 5, kmeans_init_method = 'CUSTOM',
               kmeans_init_col = 'seed') AS SELECT x, seed FROM features.s",
        )
        .unwrap();
    let result = query(
        &mut warehouse,
        "SELECT numerical_value FROM ML.CENTROIDS(MODEL models.s, STRUCT(TRUE AS standardize)) ORDER BY numerical_value",
    );
    let scaled: Vec<f64> = result.rows.iter().map(|r| r[0].as_f64().unwrap()).collect();
    let documented = [
        -1.2649110640673518,
        -0.6324555320336759,
        0.0,
        0.6324555320336759,
        1.2649110640673518,
    ];
    for (got, want) in scaled.iter().zip(documented) {
        assert!((got - want).abs() <= 1e-15, "{scaled:?}");
    }
}

/// A NULL numeric value is imputed with the training mean, so it scores exactly like the mean;
/// an unseen category is the all-zero vector, as far from every category as NULL-free data
/// allows.
#[test]
fn nulls_score_as_the_training_mean_and_unseen_categories_as_zeros() {
    let mut warehouse = DuckDbWarehouse::open_in_memory().expect("warehouse");
    warehouse
        .execute_script(
            "CREATE TABLE features.n (x FLOAT64, kind STRING);
             INSERT INTO features.n VALUES (1.0, 'a'), (2.0, 'a'), (NULL, 'b'), (9.0, 'b'), (10.0, 'a');
             CREATE MODEL models.n OPTIONS(model_type = 'kmeans', num_clusters = 2) AS SELECT x, kind FROM features.n",
        )
        .unwrap();
    let distances = |warehouse: &mut DuckDbWarehouse, x: &str, kind: &str| -> Vec<f64> {
        let result = query(
            warehouse,
            &format!(
                "SELECT nearest_centroids_distance FROM ML.PREDICT(MODEL models.n, (SELECT {x} AS x, {kind} AS kind))"
            ),
        );
        let Cell::List(items) = &result.rows[0][0] else {
            panic!("{result:?}")
        };
        let mut by_id: Vec<(i64, f64)> = items
            .iter()
            .map(|item| match item {
                Cell::Struct(f) => (f[0].1.as_i64().unwrap(), f[1].1.as_f64().unwrap()),
                other => panic!("{other:?}"),
            })
            .collect();
        by_id.sort_by_key(|(id, _)| *id);
        by_id.into_iter().map(|(_, d)| d).collect()
    };
    // The mean of the non-NULL training values: (1 + 2 + 9 + 10) / 4 = 5.5.
    assert_eq!(
        distances(&mut warehouse, "CAST(NULL AS FLOAT64)", "'a'"),
        distances(&mut warehouse, "5.5", "'a'")
    );
    let unseen = distances(&mut warehouse, "5.5", "'zzz'");
    let null_kind = distances(&mut warehouse, "5.5", "CAST(NULL AS STRING)");
    assert_eq!(
        unseen, null_kind,
        "NULL was not a training category, so it is unseen too"
    );
    let seen = distances(&mut warehouse, "5.5", "'a'");
    assert_ne!(unseen, seen);
}
