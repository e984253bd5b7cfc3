//! The local model store: trained k-means models in DuckDB tables under the `models` schema
//! (`models.__models` lists them), so a model survives restarts and can be inspected with SQL.

use duckdb::{Connection, OptionalExt, params};

use netsentinel_bqml::BqmlError;
use netsentinel_bqml::kmeans::{
    DistanceType, FeaturePrep, KMeansModel, Preprocessor, threshold_rank,
};
use netsentinel_bqml::model::{StoredFeature, StoredModel};
use netsentinel_core::TableRef;

/// Idempotent DDL for the store; no primary keys, because DuckDB checks them eagerly and would
/// reject the delete-then-insert of a model replaced inside one transaction.
pub const STORE_DDL: &str = "
CREATE TABLE IF NOT EXISTS models.__models (model_name VARCHAR, model_type VARCHAR, created_at TIMESTAMP, training_rows BIGINT, num_clusters INTEGER, dimensions INTEGER, distance_type VARCHAR, standardize BOOLEAN, options VARCHAR, training_query VARCHAR, davies_bouldin_index DOUBLE, mean_squared_distance DOUBLE);
CREATE TABLE IF NOT EXISTS models.__model_features (model_name VARCHAR, position INTEGER, feature VARCHAR, kind VARCHAR, mean DOUBLE, stddev DOUBLE, min DOUBLE, max DOUBLE, median DOUBLE, null_count BIGINT, categories VARCHAR, category_count BIGINT);
CREATE TABLE IF NOT EXISTS models.__model_centroids (model_name VARCHAR, centroid_id INTEGER, dimension INTEGER, value DOUBLE);
CREATE TABLE IF NOT EXISTS models.__model_clusters (model_name VARCHAR, centroid_id INTEGER, cluster_size BIGINT, cluster_radius DOUBLE, scoring_radius DOUBLE);
CREATE TABLE IF NOT EXISTS models.__model_training_distances (model_name VARCHAR, rank BIGINT, normalized_distance DOUBLE);
CREATE TABLE IF NOT EXISTS models.__model_iterations (model_name VARCHAR, iteration INTEGER, loss DOUBLE, duration_ms BIGINT);
CREATE TABLE IF NOT EXISTS models.__model_iteration_clusters (model_name VARCHAR, iteration INTEGER, centroid_id INTEGER, cluster_size BIGINT, cluster_radius DOUBLE);
";

const MODEL_TABLES: [&str; 7] = [
    "models.__models",
    "models.__model_features",
    "models.__model_centroids",
    "models.__model_clusters",
    "models.__model_training_distances",
    "models.__model_iterations",
    "models.__model_iteration_clusters",
];

fn store_error(e: impl std::fmt::Display) -> BqmlError {
    BqmlError::Store(e.to_string())
}

pub fn exists(conn: &Connection, model: &TableRef) -> Result<bool, BqmlError> {
    let count: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM models.__models WHERE model_name = ?",
            params![model.to_string()],
            |r| r.get(0),
        )
        .map_err(store_error)?;
    Ok(count > 0)
}

pub fn drop(conn: &Connection, model: &TableRef) -> Result<(), BqmlError> {
    for table in MODEL_TABLES {
        conn.execute(
            &format!("DELETE FROM {table} WHERE model_name = ?"),
            params![model.to_string()],
        )
        .map_err(store_error)?;
    }
    Ok(())
}

/// Replaces whatever is stored under `model` with `trained`.
pub fn save(
    conn: &Connection,
    model: &TableRef,
    trained: &KMeansModel,
    options: &str,
    training_query: &str,
) -> Result<(), BqmlError> {
    drop(conn, model)?;
    let name = model.to_string();
    conn.execute(
        "INSERT INTO models.__models (model_name, model_type, created_at, training_rows, num_clusters, \
         dimensions, distance_type, standardize, options, training_query, davies_bouldin_index, \
         mean_squared_distance) \
         VALUES (?, 'KMEANS', now()::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            name,
            trained.training_rows as i64,
            trained.num_clusters() as i32,
            trained.dims() as i32,
            trained.distance.to_string(),
            trained.preprocessor.standardize,
            options,
            training_query,
            trained.davies_bouldin_index,
            trained.mean_squared_distance
        ],
    )
    .map_err(store_error)?;
    save_features(conn, &name, trained)?;
    let mut centroids = conn
        .appender_to_db("__model_centroids", "models")
        .map_err(store_error)?;
    for (c, centroid) in trained.centroids.iter().enumerate() {
        for (d, value) in centroid.iter().enumerate() {
            centroids
                .append_row(params![name, c as i32 + 1, d as i32, value])
                .map_err(store_error)?;
        }
    }
    centroids.flush().map_err(store_error)?;
    let mut clusters = conn
        .appender_to_db("__model_clusters", "models")
        .map_err(store_error)?;
    for (c, ((size, radius), scoring)) in trained
        .cluster_sizes
        .iter()
        .zip(&trained.cluster_radii)
        .zip(trained.scoring_radii())
        .enumerate()
    {
        clusters
            .append_row(params![name, c as i32 + 1, *size as i64, radius, scoring])
            .map_err(store_error)?;
    }
    clusters.flush().map_err(store_error)?;
    let mut distances = conn
        .appender_to_db("__model_training_distances", "models")
        .map_err(store_error)?;
    for (rank, distance) in trained.training_normalized_distances.iter().enumerate() {
        distances
            .append_row(params![name, rank as i64 + 1, distance])
            .map_err(store_error)?;
    }
    distances.flush().map_err(store_error)?;
    let mut iterations = conn
        .appender_to_db("__model_iterations", "models")
        .map_err(store_error)?;
    for info in &trained.iterations {
        iterations
            .append_row(params![
                name,
                info.iteration as i32,
                info.loss,
                info.duration_ms as i64
            ])
            .map_err(store_error)?;
    }
    iterations.flush().map_err(store_error)?;
    let mut clusters = conn
        .appender_to_db("__model_iteration_clusters", "models")
        .map_err(store_error)?;
    for info in &trained.iterations {
        for (c, cluster) in info.clusters.iter().enumerate() {
            clusters
                .append_row(params![
                    name,
                    info.iteration as i32,
                    c as i32 + 1,
                    cluster.size as i64,
                    cluster.radius
                ])
                .map_err(store_error)?;
        }
    }
    clusters.flush().map_err(store_error)?;
    Ok(())
}

fn save_features(conn: &Connection, name: &str, trained: &KMeansModel) -> Result<(), BqmlError> {
    let mut insert = conn
        .prepare(
            "INSERT INTO models.__model_features (model_name, position, feature, kind, mean, stddev, \
             min, max, median, null_count, categories, category_count) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .map_err(store_error)?;
    for (position, feature) in trained.preprocessor.features.iter().enumerate() {
        match feature {
            FeaturePrep::Numeric {
                name: feature,
                mean,
                stddev,
                min,
                max,
                median,
                null_count,
            } => insert.execute(params![
                name,
                position as i32,
                feature,
                "numeric",
                mean,
                stddev,
                min,
                max,
                median,
                *null_count as i64,
                None::<String>,
                None::<i64>
            ]),
            FeaturePrep::Categorical {
                name: feature,
                categories,
                null_count,
            } => insert.execute(params![
                name,
                position as i32,
                feature,
                "categorical",
                None::<f64>,
                None::<f64>,
                None::<f64>,
                None::<f64>,
                None::<f64>,
                *null_count as i64,
                serde_json::to_string(categories).map_err(store_error)?,
                categories.iter().flatten().count() as i64
            ]),
        }
        .map_err(store_error)?;
    }
    Ok(())
}

pub fn load(conn: &Connection, model: &TableRef) -> Result<StoredModel, BqmlError> {
    let name = model.to_string();
    let header: Option<(i64, String, bool)> = conn
        .query_row(
            "SELECT training_rows, distance_type, standardize FROM models.__models WHERE model_name = ?",
            params![name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(store_error)?;
    let (training_rows, distance, standardize) =
        header.ok_or_else(|| BqmlError::NoSuchModel(name.clone()))?;
    let distance = match distance.as_str() {
        "COSINE" => DistanceType::Cosine,
        _ => DistanceType::Euclidean,
    };
    let mut statement = conn
        .prepare("SELECT feature, kind, mean, stddev, categories FROM models.__model_features WHERE model_name = ? ORDER BY position")
        .map_err(store_error)?;
    let features = statement
        .query_map(params![name], |r| {
            let feature: String = r.get(0)?;
            let kind: String = r.get(1)?;
            Ok(if kind == "numeric" {
                StoredFeature::Numeric {
                    name: feature,
                    mean: r.get(2)?,
                    stddev: r.get(3)?,
                }
            } else {
                let categories: String = r.get(4)?;
                StoredFeature::Categorical {
                    name: feature,
                    categories: serde_json::from_str(&categories).unwrap_or_default(),
                }
            })
        })
        .map_err(store_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(store_error)?;
    let mut centroids: Vec<Vec<f64>> = Vec::new();
    let mut statement = conn
        .prepare("SELECT centroid_id, value FROM models.__model_centroids WHERE model_name = ? ORDER BY centroid_id, dimension")
        .map_err(store_error)?;
    let rows = statement
        .query_map(params![name], |r| {
            Ok((r.get::<_, i32>(0)?, r.get::<_, f64>(1)?))
        })
        .map_err(store_error)?;
    for row in rows {
        let (id, value) = row.map_err(store_error)?;
        if centroids.len() < id as usize {
            centroids.push(Vec::new());
        }
        if let Some(centroid) = centroids.last_mut() {
            centroid.push(value);
        }
    }
    let mut statement = conn
        .prepare("SELECT scoring_radius FROM models.__model_clusters WHERE model_name = ? ORDER BY centroid_id")
        .map_err(store_error)?;
    let scoring_radii = statement
        .query_map(params![name], |r| r.get::<_, f64>(0))
        .map_err(store_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(store_error)?;
    Ok(StoredModel {
        name: model.clone(),
        features,
        standardize,
        distance,
        centroids,
        scoring_radii,
        training_rows: training_rows as u64,
    })
}

/// The preprocessing a stored model was trained with (for warm starts).
pub fn load_preprocessor(conn: &Connection, model: &TableRef) -> Result<Preprocessor, BqmlError> {
    let name = model.to_string();
    let standardize: bool = conn
        .query_row(
            "SELECT standardize FROM models.__models WHERE model_name = ?",
            params![name],
            |r| r.get(0),
        )
        .optional()
        .map_err(store_error)?
        .ok_or_else(|| BqmlError::NoSuchModel(name.clone()))?;
    let mut statement = conn
        .prepare(
            "SELECT feature, kind, mean, stddev, min, max, median, null_count, categories \
             FROM models.__model_features WHERE model_name = ? ORDER BY position",
        )
        .map_err(store_error)?;
    let features = statement
        .query_map(params![name], |r| {
            let feature: String = r.get(0)?;
            let kind: String = r.get(1)?;
            let null_count = r.get::<_, i64>(7)? as u64;
            Ok(if kind == "numeric" {
                FeaturePrep::Numeric {
                    name: feature,
                    mean: r.get(2)?,
                    stddev: r.get(3)?,
                    min: r.get(4)?,
                    max: r.get(5)?,
                    median: r.get(6)?,
                    null_count,
                }
            } else {
                let categories: String = r.get(8)?;
                FeaturePrep::Categorical {
                    name: feature,
                    categories: serde_json::from_str(&categories).unwrap_or_default(),
                    null_count,
                }
            })
        })
        .map_err(store_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(store_error)?;
    Ok(Preprocessor {
        features,
        standardize,
    })
}

/// The ML.DETECT_ANOMALIES threshold for `contamination`: the nearest-rank training
/// normalized distance.
pub fn anomaly_threshold(
    conn: &Connection,
    model: &StoredModel,
    contamination: f64,
) -> Result<f64, BqmlError> {
    let rank = threshold_rank(model.training_rows as usize, contamination).map_err(|e| {
        BqmlError::Call {
            function: "ML.DETECT_ANOMALIES",
            model: model.name.to_string(),
            message: e.to_string(),
        }
    })?;
    conn.query_row(
        "SELECT normalized_distance FROM models.__model_training_distances WHERE model_name = ? AND rank = ?",
        params![model.name.to_string(), rank as i64],
        |r| r.get(0),
    )
    .map_err(store_error)
}
