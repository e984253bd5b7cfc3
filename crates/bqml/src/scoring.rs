//! SQL that scores rows against a stored k-means model inside DuckDB: the model's preprocessing
//! and centroids become constant expressions, so scoring is vectorized by DuckDB instead of
//! looping over rows in Rust.

use crate::kmeans::{self, DistanceType};
use crate::model::{StoredFeature, StoredModel};

/// A DuckDB double literal that parses back to exactly `value` (scientific notation is read as
/// DOUBLE; a plain decimal literal would be read as DECIMAL and rounded on conversion).
pub fn double(value: f64) -> String {
    if value.is_finite() {
        format!("{value:e}")
    } else {
        "'NaN'::DOUBLE".to_string()
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub fn quote_text(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// One expression per model dimension, computing the preprocessed value from input columns.
pub fn preprocessed_dimensions(model: &StoredModel) -> Vec<String> {
    let mut dims = Vec::new();
    for feature in &model.features {
        match feature {
            StoredFeature::Numeric { name, mean, stddev } => {
                let imputed = format!(
                    "COALESCE(CAST({} AS DOUBLE), {})",
                    quote_ident(name),
                    double(*mean)
                );
                dims.push(if !model.standardize {
                    imputed
                } else if *stddev > 0.0 {
                    format!("(({imputed} - {}) / {})", double(*mean), double(*stddev))
                } else {
                    "0e0".to_string()
                });
            }
            StoredFeature::Categorical { name, categories } => {
                for category in categories {
                    dims.push(match category {
                        Some(value) => format!(
                            "CASE WHEN CAST({} AS VARCHAR) = {} THEN 1e0 ELSE 0e0 END",
                            quote_ident(name),
                            quote_text(value)
                        ),
                        None => format!(
                            "CASE WHEN {} IS NULL THEN 1e0 ELSE 0e0 END",
                            quote_ident(name)
                        ),
                    });
                }
            }
        }
    }
    dims
}

fn dimension_column(j: usize) -> String {
    format!("__ns_x{j}")
}

/// Distance from the row's preprocessed vector (columns `__ns_x<j>`) to a centroid. Squares are
/// products, not `POW(…, 2)`: DuckDB's `pow` call made scoring several times slower, and a
/// product is the exactly rounded square that training computes too. Sums run in dimension
/// order, as in `kmeans`, so SQL and Rust distances agree bit for bit.
fn distance_expr(model: &StoredModel, centroid: &[f64]) -> String {
    let square = |e: &str| format!("({e}) * ({e})");
    match model.distance {
        DistanceType::Euclidean => {
            let terms: Vec<String> = centroid
                .iter()
                .enumerate()
                .map(|(j, c)| square(&format!("{} - {}", dimension_column(j), double(*c))))
                .collect();
            format!("SQRT({})", terms.join(" + "))
        }
        DistanceType::Cosine => {
            let dot: Vec<String> = centroid
                .iter()
                .enumerate()
                .map(|(j, c)| format!("{} * {}", dimension_column(j), double(*c)))
                .collect();
            let norm: Vec<String> = (0..centroid.len())
                .map(|j| square(&dimension_column(j)))
                .collect();
            let centroid_norm = centroid.iter().map(|c| c * c).sum::<f64>().sqrt();
            let row_norm = format!("SQRT({})", norm.join(" + "));
            // Same rule as `kmeans`: two zero vectors are identical (0), a zero vector against a
            // non-zero one has no angle and counts as orthogonal.
            format!(
                "CASE WHEN {row_norm} = 0 AND {cn} = 0 THEN 0e0 WHEN {row_norm} * {cn} = 0 THEN {zero} \
                 ELSE SQRT(GREATEST(0e0, 1e0 - ({dot}) / ({row_norm} * {cn}))) END",
                cn = double(centroid_norm),
                zero = double(kmeans::COSINE_ZERO_VECTOR_DISTANCE),
                dot = dot.join(" + "),
            )
        }
    }
}

/// `SELECT <input columns>, <preprocessed dimensions> FROM (<input>)`.
fn with_dimensions(model: &StoredModel, input_sql: &str) -> String {
    let dims: Vec<String> = preprocessed_dimensions(model)
        .into_iter()
        .enumerate()
        .map(|(j, expr)| format!("{expr} AS {}", dimension_column(j)))
        .collect();
    format!(
        "SELECT __ns_in.*, {} FROM ({input_sql}) AS __ns_in",
        dims.join(", ")
    )
}

/// The scoring helper columns to drop from the output: the dimensions plus `extra`.
fn helper_columns(model: &StoredModel, extra: &str) -> String {
    (0..model.dimensions())
        .map(dimension_column)
        .chain([extra.to_string()])
        .collect::<Vec<_>>()
        .join(", ")
}

/// ML.DETECT_ANOMALIES: `is_anomaly`, `normalized_distance`, `centroid_id`, then the input
/// columns as given. The minimum is computed once, in its own projection, rather than once for
/// each output column that uses it.
pub fn detect_anomalies_sql(model: &StoredModel, threshold: f64, input_sql: &str) -> String {
    let normalized: Vec<String> = model
        .centroids
        .iter()
        .zip(&model.scoring_radii)
        .map(|(c, r)| format!("{} / {}", distance_expr(model, c), double(*r)))
        .collect();
    format!(
        "SELECT (__ns_min > {threshold}) AS is_anomaly, __ns_min AS normalized_distance, \
         CAST(list_position(__ns_d, __ns_min) AS BIGINT) AS centroid_id, \
         * EXCLUDE ({helpers}, __ns_min) \
         FROM (SELECT *, list_min(__ns_d) AS __ns_min \
         FROM (SELECT *, list_value({distances}) AS __ns_d FROM ({prepared})))",
        threshold = double(threshold),
        helpers = helper_columns(model, "__ns_d"),
        distances = normalized.join(", "),
        prepared = with_dimensions(model, input_sql),
    )
}

/// `ML.PREDICT` lists this many nearest centroids at most.
const NEAREST_CENTROIDS_LISTED: usize = 5;

/// ML.PREDICT: `centroid_id` (nearest by plain distance), `nearest_centroids_distance` (the
/// nearest few, ascending; ties by centroid id), then the input columns as given.
pub fn predict_sql(model: &StoredModel, input_sql: &str) -> String {
    let candidates: Vec<String> = model
        .centroids
        .iter()
        .enumerate()
        .map(|(c, centroid)| {
            format!(
                "{{'DISTANCE': {}, 'CENTROID_ID': CAST({} AS BIGINT)}}",
                distance_expr(model, centroid),
                c + 1
            )
        })
        .collect();
    let listed = NEAREST_CENTROIDS_LISTED.min(model.centroids.len());
    format!(
        "SELECT __ns_near[1].CENTROID_ID AS centroid_id, __ns_near AS nearest_centroids_distance, \
         * EXCLUDE ({helpers}) \
         FROM (SELECT *, list_transform(list_slice(list_sort(list_value({candidates})), 1, {listed}), \
         lambda __ns_c: {{'CENTROID_ID': __ns_c.CENTROID_ID, 'DISTANCE': __ns_c.DISTANCE}}) AS __ns_near \
         FROM ({prepared}))",
        helpers = helper_columns(model, "__ns_near"),
        candidates = candidates.join(", "),
        prepared = with_dimensions(model, input_sql),
    )
}

/// ML.EVALUATE over input rows: the Davies–Bouldin index and the mean squared distance, each
/// row in the cluster of its nearest centroid. Same rules as `KMeansModel::davies_bouldin_index`:
/// clusters without rows are left out, coincident centroids contribute 0, and fewer than two
/// clusters with rows (or no rows at all) give the undefined metric.
pub fn evaluate_sql(model: &StoredModel, input_sql: &str) -> String {
    let distances: Vec<String> = model
        .centroids
        .iter()
        .map(|c| distance_expr(model, c))
        .collect();
    let mut pairs = Vec::new();
    for (i, a) in model.centroids.iter().enumerate() {
        for (j, b) in model.centroids.iter().enumerate() {
            if i != j {
                let d = kmeans::point_distance(model.distance, a, b);
                pairs.push(format!("({}, {}, {})", i + 1, j + 1, double(d)));
            }
        }
    }
    let undefined = double(kmeans::UNDEFINED_METRIC);
    format!(
        "WITH __ns_assigned AS (\
           SELECT list_min(__ns_d) AS d, list_position(__ns_d, list_min(__ns_d)) AS c \
           FROM (SELECT list_value({distances}) AS __ns_d FROM ({prepared}))), \
         __ns_scatter AS (SELECT c, AVG(d) AS s FROM __ns_assigned GROUP BY c), \
         __ns_pairs(i, j, d) AS (VALUES {pairs}), \
         __ns_worst AS (SELECT a.c, MAX(CASE WHEN p.d > 0 THEN (a.s + b.s) / p.d ELSE 0e0 END) AS r \
           FROM __ns_scatter AS a JOIN __ns_scatter AS b ON a.c <> b.c \
           JOIN __ns_pairs AS p ON p.i = a.c AND p.j = b.c GROUP BY a.c) \
         SELECT (SELECT CASE WHEN COUNT(*) >= 2 THEN AVG(r) ELSE {undefined} END FROM __ns_worst) AS davies_bouldin_index, \
         (SELECT COALESCE(AVG(d * d), {undefined}) FROM __ns_assigned) AS mean_squared_distance",
        distances = distances.join(", "),
        prepared = with_dimensions(model, input_sql),
        pairs = pairs.join(", "),
    )
}
