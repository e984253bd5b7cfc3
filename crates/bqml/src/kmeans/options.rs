//! What the caller chooses (`KMeansOptions`) next to what this module chooses where BigQuery
//! leaves a detail open (the local-choice constants), so every setting that shapes a model is
//! read in one place, and the checks of the options that need no data.

use std::fmt;

use super::error::KMeansError;

/// Smallest `num_clusters` BigQuery ML accepts.
pub const MIN_NUM_CLUSTERS: usize = 2;
/// Largest `num_clusters` BigQuery ML accepts.
pub const MAX_NUM_CLUSTERS: usize = 100;

/// Local choice: seed of the RANDOM / KMEANS++ initialization (a ChaCha8 stream) when the caller
/// gives none. BigQuery's initialization is not reproducible; fixing the seed makes a local
/// `CREATE MODEL` rerun give the same model, which idempotent pipeline reruns rely on.
pub const DEFAULT_SEED: u64 = 0x6e65_7473_656e_7469; // "netsenti"

/// What happens to a cluster that receives no rows during a Lloyd iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyClusterPolicy {
    /// The centroid stays where it was, so it can win rows back in a later iteration and the
    /// loss never increases because of the empty cluster.
    KeepPrevious,
}

/// Local choice: an empty cluster keeps its previous centroid. BigQuery does not document this;
/// keeping it is deterministic, never increases the loss and keeps `num_clusters` centroids.
pub const EMPTY_CLUSTER_POLICY: EmptyClusterPolicy = EmptyClusterPolicy::KeepPrevious;

/// Local choice: training ends after an iteration that changed no row's assignment, even with
/// `early_stop = FALSE`, because every further iteration would reproduce the same centroids and
/// loss. `ML.TRAINING_INFO` then has fewer rows than `max_iterations`.
pub const STOP_AT_FIXED_POINT: bool = true;

/// Local choice: a cluster whose radius is 0 (a single training row, or only duplicates) is
/// scored as if its radius were the smallest positive radius of the model, and with this value
/// when every radius is 0. Dividing by 0 (or by a denormal) would give infinite or overflowing
/// normalized distances, making every nearby point an anomaly and the threshold meaningless.
pub const ZERO_RADIUS_FALLBACK: f64 = 1.0;

/// Local choice: the cosine distance between a zero vector and a non-zero vector (the angle is
/// undefined). 1.0 treats them as orthogonal; two zero vectors are at distance 0, like any two
/// identical points.
pub const COSINE_ZERO_VECTOR_DISTANCE: f64 = 1.0;

/// Local choice: `(1 − c)·n` within this relative distance of an integer is taken as that
/// integer before the ceiling, so that binary rounding (e.g. `(1 − 0.29)·100 = 71.00000000000001`)
/// does not move the contamination threshold up by one rank.
pub const THRESHOLD_RANK_TOLERANCE: f64 = 1e-9;

/// Local choice: value of an `ML.EVALUATE` metric that is undefined (no rows, or fewer than two
/// clusters with rows for Davies–Bouldin). NaN so callers store SQL NULL rather than a number.
pub const UNDEFINED_METRIC: f64 = f64::NAN;

/// Local choice: the largest preprocessed matrix (rows × one-hot dimensions) the module builds,
/// 8 GiB of `f64`. A high-cardinality STRING feature (an IP column, say) would otherwise abort
/// the process out of memory instead of failing with an error that names the cause.
pub const MAX_FEATURE_MATRIX_CELLS: usize = 1 << 30;

/// Local choice: how the NULL category appears in [`Preprocessor::dimension_names`].
///
/// [`Preprocessor::dimension_names`]: super::Preprocessor::dimension_names
pub const NULL_CATEGORY_LABEL: &str = "<NULL>";

#[derive(Debug, Clone, PartialEq)]
pub enum InitMethod {
    Random,
    KMeansPlusPlus,
    /// Rows whose `kmeans_init_col` is TRUE, in row order; one flag per training row.
    Custom {
        selected_rows: Vec<bool>,
    },
    /// Start from these centroids, given in the preprocessed space (`warm_start`); k is their
    /// count.
    Centroids(Vec<Vec<f64>>),
}

impl InitMethod {
    pub(super) fn sql_name(&self) -> &'static str {
        match self {
            InitMethod::Random => "RANDOM",
            InitMethod::KMeansPlusPlus => "KMEANS++",
            InitMethod::Custom { .. } => "CUSTOM",
            InitMethod::Centroids(_) => "warm start",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistanceType {
    Euclidean,
    /// `sqrt(max(0, 1 − x·y/(‖x‖‖y‖)))`; centroids are still arithmetic means.
    Cosine,
}

impl fmt::Display for DistanceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DistanceType::Euclidean => "EUCLIDEAN",
            DistanceType::Cosine => "COSINE",
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct KMeansOptions {
    /// `None`: max(2, round(log10(rows))), or the warm-start centroid count.
    pub num_clusters: Option<usize>,
    pub init: InitMethod,
    pub distance: DistanceType,
    pub standardize_features: bool,
    pub max_iterations: usize,
    /// Stop after the first iteration whose relative loss improvement `(prev − cur) / prev` is
    /// below `min_rel_progress`; iteration 0 is measured against the initial centroids' loss.
    pub early_stop: bool,
    pub min_rel_progress: f64,
    /// Centroids in the preprocessed space of the features being trained on; see
    /// [`KMeansModel::centroids_for`] to carry an existing model's centroids over.
    ///
    /// [`KMeansModel::centroids_for`]: super::KMeansModel::centroids_for
    pub warm_start_centroids: Option<Vec<Vec<f64>>>,
    /// Seeds the RANDOM / KMEANS++ choice of initial rows (ChaCha8).
    pub seed: u64,
}

impl Default for KMeansOptions {
    fn default() -> Self {
        Self {
            num_clusters: None,
            init: InitMethod::Random,
            distance: DistanceType::Euclidean,
            standardize_features: true,
            max_iterations: 20,
            early_stop: true,
            min_rel_progress: 0.01,
            warm_start_centroids: None,
            seed: DEFAULT_SEED,
        }
    }
}

pub(super) fn validate_options(options: &KMeansOptions) -> Result<(), KMeansError> {
    if options.max_iterations == 0 {
        return Err(KMeansError::InvalidOption {
            option: "max_iterations",
            value: "0".into(),
            allowed: "an integer >= 1".into(),
        });
    }
    if !(options.min_rel_progress.is_finite() && options.min_rel_progress >= 0.0) {
        return Err(KMeansError::InvalidOption {
            option: "min_rel_progress",
            value: options.min_rel_progress.to_string(),
            allowed: "a finite number >= 0".into(),
        });
    }
    Ok(())
}

pub(super) fn validate_num_clusters(k: usize, rows: usize) -> Result<(), KMeansError> {
    if !(MIN_NUM_CLUSTERS..=MAX_NUM_CLUSTERS).contains(&k) {
        return Err(KMeansError::InvalidOption {
            option: "num_clusters",
            value: k.to_string(),
            allowed: format!("an integer from {MIN_NUM_CLUSTERS} to {MAX_NUM_CLUSTERS}"),
        });
    }
    if k > rows {
        return Err(KMeansError::MoreClustersThanRows {
            num_clusters: k,
            rows,
        });
    }
    Ok(())
}

/// BigQuery's documented default is log10(n); rounding and the floor of 2 are the local reading.
pub fn default_num_clusters(rows: usize) -> usize {
    let k = (rows.max(1) as f64).log10().round() as usize;
    k.max(MIN_NUM_CLUSTERS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::test_support::{blobs, two_squares};
    use crate::kmeans::train;

    #[test]
    fn default_num_clusters_is_rounded_log10_with_a_floor_of_two() {
        assert_eq!(default_num_clusters(5), 2);
        assert_eq!(default_num_clusters(1000), 3);
        assert_eq!(default_num_clusters(40_000), 5);
        let model = train(&blobs(1000, 2, 3, 9), &KMeansOptions::default()).unwrap();
        assert_eq!(model.num_clusters(), 3);
    }

    #[test]
    fn invalid_training_options_are_rejected() {
        let cols = two_squares();
        let zero_iter = KMeansOptions {
            max_iterations: 0,
            ..KMeansOptions::default()
        };
        assert!(
            train(&cols, &zero_iter)
                .unwrap_err()
                .to_string()
                .contains("max_iterations")
        );
        let neg = KMeansOptions {
            min_rel_progress: -1.0,
            ..KMeansOptions::default()
        };
        assert!(
            train(&cols, &neg)
                .unwrap_err()
                .to_string()
                .contains("min_rel_progress")
        );
    }
}
