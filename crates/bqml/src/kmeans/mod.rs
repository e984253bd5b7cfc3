//! BigQuery ML k-means trained in process, with the semantics of `BQML_KMEANS.md`.
//!
//! This module owns feature preprocessing (NULL imputation, z-scoring, one-hot encoding),
//! training (RANDOM / KMEANS++ / CUSTOM / warm-start initialization, Lloyd iterations, early
//! stop), the statistics `ML.DETECT_ANOMALIES` needs after training (cluster sizes, radii, sorted
//! training normalized distances), and the exact scoring math that the SQL scoring path must
//! reproduce. It does not parse SQL or options, and it does not store models.
//!
//! Local choices, where the BigQuery documentation leaves a detail open (each a `pub const`):
//! - [`DEFAULT_SEED`]: seed of the initialization when none is given.
//! - [`EMPTY_CLUSTER_POLICY`]: a cluster left without rows keeps its previous centroid.
//! - [`STOP_AT_FIXED_POINT`]: training ends once an iteration changes no assignment.
//! - [`ZERO_RADIUS_FALLBACK`]: how a cluster of radius 0 is scored.
//! - [`COSINE_ZERO_VECTOR_DISTANCE`]: cosine distance involving a zero vector.
//! - [`THRESHOLD_RANK_TOLERANCE`]: float slack in the contamination nearest-rank rule.
//! - [`UNDEFINED_METRIC`]: value of an evaluation metric that has no defined value.
//! - [`MAX_FEATURE_MATRIX_CELLS`]: cap on the preprocessed matrix, instead of running out of memory.
//! - [`NULL_CATEGORY_LABEL`]: how the NULL category is spelled in dimension names.
//!
//! Further fixed rules: the numeric stddev is the sample stddev (n − 1), 0 when there is a single
//! non-NULL value or all values are equal; non-finite numeric values (NaN, ±Infinity) are
//! rejected; a categorical vocabulary is sorted with NULL first, then by byte order; an even-sized
//! median is the mean of the two middle values; ties between centroids go to the lowest id.
//!
//! The submodules are private and split the work by concern; everything public is re-exported
//! here, so callers name it `kmeans::X` whichever file defines it.

mod error;
mod init;
mod input;
mod kernels;
mod lloyd;
mod model;
mod options;
mod parallel;
mod preprocess;
mod profile;
#[cfg(test)]
mod test_support;

pub use error::KMeansError;
pub use input::{ColumnData, InputColumn, NumericValues};
pub use kernels::point_distance;
pub use lloyd::{ClusterInfo, IterationInfo};
pub use model::{KMeansModel, threshold_rank, train, train_owned, train_with_preprocessor};
pub use options::{
    COSINE_ZERO_VECTOR_DISTANCE, DEFAULT_SEED, DistanceType, EMPTY_CLUSTER_POLICY,
    EmptyClusterPolicy, InitMethod, KMeansOptions, MAX_FEATURE_MATRIX_CELLS, MAX_NUM_CLUSTERS,
    MIN_NUM_CLUSTERS, NULL_CATEGORY_LABEL, STOP_AT_FIXED_POINT, THRESHOLD_RANK_TOLERANCE,
    UNDEFINED_METRIC, ZERO_RADIUS_FALLBACK, default_num_clusters,
};
pub use preprocess::{FeaturePrep, Preprocessor, map_centroids};
