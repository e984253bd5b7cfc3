//! The ML table functions on the local engine: each `ML.<FUNCTION>(MODEL m, …)` call becomes a
//! DuckDB subquery. Row-scoring functions (DETECT_ANOMALIES, PREDICT, EVALUATE with input) are
//! vectorized SQL over the input (`scoring`); the model-inspection functions (CENTROIDS,
//! FEATURE_INFO, TRAINING_INFO, EVALUATE without input) read the model store. Arguments are
//! checked here against what BigQuery accepts for a k-means model.

use duckdb::Connection;

use netsentinel_bqml::BqmlError;
use netsentinel_bqml::model::{StoredFeature, StoredModel};
use netsentinel_bqml::scoring::{self, double, quote_text};
use netsentinel_bqml::statement::{MlCall, MlFunction, OptionValue};

use crate::models;

/// What a function accepts besides the model: its STRUCT settings and whether it takes data.
struct Signature {
    settings: &'static [&'static str],
    input: InputRule,
}

#[derive(PartialEq)]
enum InputRule {
    Required,
    Optional,
    None,
}

fn signature(function: MlFunction) -> Signature {
    let (settings, input): (&'static [&'static str], InputRule) = match function {
        MlFunction::DetectAnomalies => (&["contamination"], InputRule::Required),
        MlFunction::Predict => (&[], InputRule::Required),
        MlFunction::Evaluate => (&[], InputRule::Optional),
        MlFunction::Centroids => (&["standardize"], InputRule::None),
        MlFunction::TrainingInfo | MlFunction::FeatureInfo => (&[], InputRule::None),
    };
    Signature { settings, input }
}

/// The DuckDB SQL for one ML call; `input_sql` is its data argument, already translated.
pub fn expand(
    conn: &Connection,
    call: &MlCall,
    input_sql: Option<&str>,
) -> Result<String, BqmlError> {
    check_arguments(call, input_sql.is_some())?;
    let model = models::load(conn, &call.model)?;
    match (call.function, input_sql) {
        (MlFunction::DetectAnomalies, Some(input)) => {
            let contamination = number_setting(call, "contamination")?.ok_or_else(|| {
                call_error(
                    call,
                    "k-means needs STRUCT(<number> AS contamination) as the second argument",
                )
            })?;
            let threshold = models::anomaly_threshold(conn, &model, contamination)?;
            Ok(scoring::detect_anomalies_sql(&model, threshold, input))
        }
        (MlFunction::Predict, Some(input)) => Ok(scoring::predict_sql(&model, input)),
        (MlFunction::Evaluate, Some(input)) => Ok(scoring::evaluate_sql(&model, input)),
        (MlFunction::Evaluate, None) => Ok(stored_evaluation_sql(&model)),
        (MlFunction::Centroids, None) => {
            let standardize = bool_setting(call, "standardize")?.unwrap_or(false);
            Ok(centroids_sql(&model, standardize))
        }
        (MlFunction::FeatureInfo, None) => Ok(feature_info_sql(&model)),
        (MlFunction::TrainingInfo, None) => Ok(training_info_sql(&model)),
        _ => unreachable!("check_arguments enforces each function's input rule"),
    }
}

fn call_error(call: &MlCall, message: impl Into<String>) -> BqmlError {
    BqmlError::Call {
        function: call.function.sql_name(),
        model: call.model.to_string(),
        message: message.into(),
    }
}

fn check_arguments(call: &MlCall, has_input: bool) -> Result<(), BqmlError> {
    let signature = signature(call.function);
    for (name, _) in &call.settings {
        if !signature.settings.contains(&name.as_str()) {
            let allowed = if signature.settings.is_empty() {
                "none for a k-means model".to_string()
            } else {
                signature.settings.join(", ")
            };
            return Err(call_error(
                call,
                format!("unknown STRUCT setting `{name}`; allowed: {allowed}"),
            ));
        }
    }
    match (&signature.input, has_input) {
        (InputRule::Required, false) => Err(call_error(
            call,
            "needs input data: TABLE name or (query) as the last argument",
        )),
        (InputRule::None, true) => Err(call_error(
            call,
            "takes no input data: pass only the model (and its STRUCT settings)",
        )),
        _ => Ok(()),
    }
}

fn number_setting(call: &MlCall, name: &str) -> Result<Option<f64>, BqmlError> {
    match call.settings.iter().find(|(k, _)| k == name) {
        None => Ok(None),
        Some((_, OptionValue::Number(n))) => Ok(Some(*n)),
        Some((_, other)) => Err(call_error(
            call,
            format!("{name} must be a number, got {other}"),
        )),
    }
}

fn bool_setting(call: &MlCall, name: &str) -> Result<Option<bool>, BqmlError> {
    match call.settings.iter().find(|(k, _)| k == name) {
        None => Ok(None),
        Some((_, OptionValue::Bool(b))) => Ok(Some(*b)),
        Some((_, other)) => Err(call_error(
            call,
            format!("{name} must be TRUE or FALSE, got {other}"),
        )),
    }
}

const CATEGORY_LIST_TYPE: &str = "STRUCT(category VARCHAR, value DOUBLE)[]";

/// ML.CENTROIDS: one row per (centroid, feature). Numeric features give their centroid
/// coordinate in original units (or standardized with `standardize`); categorical ones give the
/// share of each training category in the cluster.
fn centroids_sql(model: &StoredModel, standardize: bool) -> String {
    let mut rows = Vec::new();
    for (c, centroid) in model.centroids.iter().enumerate() {
        let mut dims = centroid.iter();
        for feature in &model.features {
            let (numerical, categorical) = match feature {
                StoredFeature::Numeric { mean, stddev, .. } => {
                    let value = *dims.next().unwrap_or(&f64::NAN);
                    let original = if model.standardize && !standardize {
                        value * stddev + mean
                    } else {
                        value
                    };
                    (
                        double(original),
                        format!("CAST([] AS {CATEGORY_LIST_TYPE})"),
                    )
                }
                StoredFeature::Categorical { categories, .. } => {
                    let shares: Vec<String> = categories
                        .iter()
                        .map(|category| {
                            let label = category.as_deref().map_or("NULL".into(), quote_text);
                            let share = *dims.next().unwrap_or(&f64::NAN);
                            format!("{{'category': {label}, 'value': {}}}", double(share))
                        })
                        .collect();
                    (
                        "CAST(NULL AS DOUBLE)".to_string(),
                        format!("CAST([{}] AS {CATEGORY_LIST_TYPE})", shares.join(", ")),
                    )
                }
            };
            rows.push(format!(
                "({}, {}, {numerical}, {categorical}, CAST(NULL AS VARCHAR))",
                c + 1,
                quote_text(feature.name())
            ));
        }
    }
    format!(
        "SELECT CAST(centroid_id AS BIGINT) AS centroid_id, feature, numerical_value, categorical_value, geography_value \
         FROM (VALUES {}) AS __ns_centroids(centroid_id, feature, numerical_value, categorical_value, geography_value)",
        rows.join(", ")
    )
}

/// ML.FEATURE_INFO: the training statistics of each input column, in feature order.
fn feature_info_sql(model: &StoredModel) -> String {
    format!(
        "SELECT feature AS input, min, max, mean, median, stddev, category_count, null_count \
         FROM models.__model_features WHERE model_name = {} ORDER BY position",
        quote_text(&model.name.to_string())
    )
}

/// ML.TRAINING_INFO: one row per Lloyd iteration, with each cluster's radius and size after it.
fn training_info_sql(model: &StoredModel) -> String {
    let name = quote_text(&model.name.to_string());
    format!(
        "SELECT CAST(0 AS BIGINT) AS training_run, CAST(i.iteration AS BIGINT) AS iteration, i.loss, \
         i.duration_ms, COALESCE((SELECT list({{'centroid_id': CAST(c.centroid_id AS BIGINT), \
         'cluster_radius': c.cluster_radius, 'cluster_size': c.cluster_size}} ORDER BY c.centroid_id) \
         FROM models.__model_iteration_clusters AS c WHERE c.model_name = i.model_name AND c.iteration = i.iteration), []) AS cluster_info \
         FROM models.__model_iterations AS i WHERE i.model_name = {name} ORDER BY i.iteration DESC"
    )
}

/// ML.EVALUATE without input: the metrics of the training data, kept from training.
fn stored_evaluation_sql(model: &StoredModel) -> String {
    format!(
        "SELECT davies_bouldin_index, mean_squared_distance FROM models.__models WHERE model_name = {}",
        quote_text(&model.name.to_string())
    )
}
