//! The one error type of training and applying a model. Its messages reach the user, wrapped
//! by the BQML layer, so each names the column or option at fault and what to change.

/// Everything that can go wrong training or applying a k-means model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KMeansError {
    #[error("k-means needs at least one feature column, but the training query selected none")]
    NoColumns,
    #[error("k-means needs at least one training row, but the training query returned none")]
    NoRows,
    #[error(
        "column `{column}` has {found} rows but column `{first}` has {expected}; all feature columns must have the same number of rows"
    )]
    ColumnLengthMismatch {
        column: String,
        first: String,
        expected: usize,
        found: usize,
    },
    #[error(
        "column `{column}` appears more than once; feature column names must be unique (case-insensitively)"
    )]
    DuplicateColumn { column: String },
    #[error(
        "column `{column}` is NULL in every training row, so there is no mean to impute; drop it from the training query or fill it (IFNULL)"
    )]
    AllNull { column: String },
    #[error(
        "column `{column}` has the non-finite value {value} in row {row}; numeric features must be finite, so filter NaN and ±Infinity in the query"
    )]
    NonFinite {
        column: String,
        row: usize,
        value: f64,
    },
    #[error(
        "the model's feature column `{column}` is missing from the input; the input must contain every training column"
    )]
    MissingColumn { column: String },
    #[error("column `{column}` is {found} but the model was trained on it as {expected}")]
    ColumnTypeMismatch {
        column: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error(
        "{rows} rows × {dims} feature dimensions exceed the local limit of {limit} cells; reduce the number of distinct STRING values (one-hot dimensions) or the rows"
    )]
    TooLarge {
        rows: usize,
        dims: usize,
        limit: usize,
    },
    #[error("invalid {option} = {value}; allowed values: {allowed}")]
    InvalidOption {
        option: &'static str,
        value: String,
        allowed: String,
    },
    #[error(
        "num_clusters = {num_clusters} exceeds the {rows} training rows; num_clusters must be at most the number of rows"
    )]
    MoreClustersThanRows { num_clusters: usize, rows: usize },
    #[error(
        "num_clusters = {num_clusters} but the training data has only {distinct} distinct rows (rows at distance 0 from each other count once); {init} initialization needs num_clusters distinct rows, so lower num_clusters"
    )]
    NotEnoughDistinctRows {
        num_clusters: usize,
        distinct: usize,
        init: &'static str,
    },
    #[error(
        "kmeans_init_col has {found} values for {rows} training rows; it must have exactly one BOOL per training row"
    )]
    CustomInitLength { rows: usize, found: usize },
    #[error(
        "kmeans_init_col is TRUE in {flagged} rows but num_clusters is {num_clusters}; the number of TRUE rows must equal num_clusters"
    )]
    CustomInitCount { flagged: usize, num_clusters: usize },
    #[error(
        "warm start has {found} centroids but num_clusters is {expected}; omit num_clusters or set it to the existing model's number of clusters"
    )]
    WarmStartCount { expected: usize, found: usize },
    #[error(
        "warm start centroid {centroid} has {found} dimensions but the features have {expected}; warm_start needs the same feature columns and categories as the existing model"
    )]
    WarmStartDims {
        centroid: usize,
        expected: usize,
        found: usize,
    },
    #[error(
        "warm start centroid {centroid} has a non-finite value; the existing model is corrupt, retrain it without warm_start"
    )]
    WarmStartNonFinite { centroid: usize },
    #[error(
        "the feature columns differ from the model's ({detail}); warm_start needs the same feature columns, of the same types, in the same order"
    )]
    SchemaMismatch { detail: String },
}
