//! BigQuery ML in pure Rust, for an engine that has none: recognizing BQML statements
//! (`statement`), k-means training with BigQuery's semantics (`kmeans`), the trained model as
//! scoring needs it (`model`), and the SQL that scores rows with it (`scoring`). Where the model
//! is stored is the engine's business. On BigQuery none of this runs: BQML is native.

pub mod kmeans;
pub mod model;
pub mod scoring;
pub mod statement;

use std::cmp::Ordering;

use kmeans::{ColumnData, DistanceType, InitMethod, InputColumn, KMeansError, KMeansOptions};
use statement::{CreateModel, OptionValue};

#[derive(Debug, thiserror::Error)]
pub enum BqmlError {
    #[error("line {line}: {message}")]
    Syntax { line: u64, message: String },
    #[error("line {line}: {construct} is not supported on the local engine: {hint}")]
    Unsupported {
        line: u64,
        construct: String,
        hint: String,
    },
    #[error("CREATE MODEL {model}: {message}")]
    Option { model: String, message: String },
    #[error("model {model}: {source}")]
    Training {
        model: String,
        #[source]
        source: KMeansError,
    },
    #[error("model {0} does not exist: train it first (run the pipeline that creates it)")]
    NoSuchModel(String),
    #[error("model {0} already exists: use CREATE OR REPLACE MODEL or CREATE MODEL IF NOT EXISTS")]
    ModelExists(String),
    #[error("{0} is a table: models and tables share one namespace, pick another model name")]
    NameTaken(String),
    #[error("{function} on model {model}: {message}")]
    Call {
        function: &'static str,
        model: String,
        message: String,
    },
    #[error("model store: {0}")]
    Store(String),
}

impl From<BqmlError> for netsentinel_core::EngineError {
    fn from(error: BqmlError) -> Self {
        netsentinel_core::EngineError::engine(error)
    }
}

/// The options CREATE MODEL accepts locally, for messages.
const KNOWN_OPTIONS: &str = "model_type, num_clusters, kmeans_init_method, kmeans_init_col, distance_type, standardize_features, max_iterations, early_stop, min_rel_progress, warm_start";

/// Training options from `OPTIONS(…)`, plus the name of the CUSTOM init column (not a feature).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub options: KMeansOptions,
    pub init_column: Option<String>,
    /// `warm_start = TRUE`: start from the existing model's centroids.
    pub warm_start: bool,
}

pub fn model_spec(create: &CreateModel) -> Result<ModelSpec, BqmlError> {
    let model = create.model.to_string();
    let fail = |message: String| BqmlError::Option {
        model: model.clone(),
        message,
    };
    let mut options = KMeansOptions::default();
    let mut init_method = "RANDOM".to_string();
    let mut init_column = None;
    let mut model_type = None;
    let mut warm_start = false;
    for (name, value) in &create.options {
        let invalid = |allowed: &str| fail(format!("invalid {name} = {value}; allowed: {allowed}"));
        match (name.as_str(), value) {
            ("model_type", OptionValue::String(t)) => model_type = Some(t.to_ascii_lowercase()),
            ("num_clusters", OptionValue::Number(n))
                if n.fract() == 0.0 && (2.0..=100.0).contains(n) =>
            {
                options.num_clusters = Some(*n as usize)
            }
            ("num_clusters", _) => return Err(invalid("an integer from 2 to 100")),
            ("kmeans_init_method", OptionValue::String(m))
                if ["RANDOM", "KMEANS++", "CUSTOM"].contains(&m.to_ascii_uppercase().as_str()) =>
            {
                init_method = m.to_ascii_uppercase()
            }
            ("kmeans_init_method", _) => return Err(invalid("'RANDOM', 'KMEANS++', 'CUSTOM'")),
            ("kmeans_init_col", OptionValue::String(c)) => init_column = Some(c.clone()),
            ("kmeans_init_col", _) => return Err(invalid("a column name in quotes")),
            ("distance_type", OptionValue::String(d)) => {
                options.distance = match d.to_ascii_uppercase().as_str() {
                    "EUCLIDEAN" => DistanceType::Euclidean,
                    "COSINE" => DistanceType::Cosine,
                    _ => return Err(invalid("'EUCLIDEAN', 'COSINE'")),
                }
            }
            ("distance_type", _) => return Err(invalid("'EUCLIDEAN', 'COSINE'")),
            ("standardize_features", OptionValue::Bool(b)) => options.standardize_features = *b,
            ("standardize_features", _) => return Err(invalid("TRUE, FALSE")),
            ("max_iterations", OptionValue::Number(n)) if n.fract() == 0.0 && *n >= 1.0 => {
                options.max_iterations = *n as usize
            }
            ("max_iterations", _) => return Err(invalid("a positive integer")),
            ("early_stop", OptionValue::Bool(b)) => options.early_stop = *b,
            ("early_stop", _) => return Err(invalid("TRUE, FALSE")),
            ("min_rel_progress", OptionValue::Number(n)) if (0.0..=1.0).contains(n) => {
                options.min_rel_progress = *n
            }
            ("min_rel_progress", _) => return Err(invalid("a number from 0 to 1")),
            ("warm_start", OptionValue::Bool(b)) => warm_start = *b,
            ("warm_start", _) => return Err(invalid("TRUE, FALSE")),
            (other, _) => {
                return Err(fail(format!(
                    "unknown option `{other}`; k-means options are {KNOWN_OPTIONS}"
                )));
            }
        }
    }
    match model_type.as_deref() {
        Some("kmeans") => {}
        Some(other) => {
            return Err(fail(format!(
                "model_type '{other}' is not supported locally: the local engine trains 'kmeans' (BigQuery runs the others natively)"
            )));
        }
        None => return Err(fail("OPTIONS(model_type = 'kmeans', …) is required".into())),
    }
    match (init_method.as_str(), &init_column) {
        ("CUSTOM", None) => {
            return Err(fail(
                "kmeans_init_method = 'CUSTOM' needs kmeans_init_col = 'a BOOL column'".into(),
            ));
        }
        ("CUSTOM", Some(_)) => {
            options.init = InitMethod::Custom {
                selected_rows: Vec::new(),
            }
        }
        (_, Some(_)) => {
            return Err(fail(
                "kmeans_init_col is only used with kmeans_init_method = 'CUSTOM'".into(),
            ));
        }
        ("KMEANS++", None) => options.init = InitMethod::KMeansPlusPlus,
        _ => options.init = InitMethod::Random,
    }
    if warm_start && init_column.is_some() {
        return Err(fail(
            "warm_start = TRUE starts from the existing model's centroids; drop kmeans_init_method = 'CUSTOM'".into(),
        ));
    }
    Ok(ModelSpec {
        options,
        init_column,
        warm_start,
    })
}

/// Puts training rows in a canonical order (by their values, column by column). Initialization
/// picks rows by position, and a table's physical row order depends on how it was written, so
/// without this the same data could train different models. Local choice: BigQuery makes no
/// promise either way, and reruns here must be reproducible. `flags` (CUSTOM init) move with
/// their rows.
pub fn canonical_row_order(columns: &mut [InputColumn], flags: Option<&mut Vec<bool>>) {
    let Some(first) = columns.first() else {
        return;
    };
    // An order-preserving integer key of the first column settles almost every comparison
    // without chasing the columns; only equal keys compare the rows cell by cell, and identical
    // rows keep their arrival order.
    let mut keyed: Vec<(u64, usize)> = (0..first.data.len())
        .map(|i| (sort_key(&first.data, i), i))
        .collect();
    keyed.sort_unstable_by(|&(ka, a), &(kb, b)| {
        ka.cmp(&kb).then_with(|| {
            columns
                .iter()
                .map(|c| compare_cells(&c.data, a, b))
                .find(|o| o.is_ne())
                .unwrap_or_else(|| a.cmp(&b))
        })
    });
    let order: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
    for column in columns.iter_mut() {
        match &mut column.data {
            ColumnData::Numeric(v) => *v = v.permuted(&order),
            ColumnData::Categorical(v) => {
                let mut old = std::mem::take(v);
                *v = order.iter().map(|&i| old[i].take()).collect();
            }
        }
    }
    if let Some(flags) = flags {
        *flags = order.iter().map(|&i| flags[i]).collect();
    }
}

/// A key whose order agrees with [`compare_cells`] wherever two keys differ: the total order of
/// a number's bits, or the first 8 bytes of a string; NULL gets 0, the smallest.
fn sort_key(data: &ColumnData, row: usize) -> u64 {
    match data {
        ColumnData::Numeric(v) => v.get(row).map_or(0, |x| {
            let bits = x.to_bits();
            if bits >> 63 == 1 {
                !bits
            } else {
                bits | 1 << 63
            }
        }),
        ColumnData::Categorical(v) => v[row].as_deref().map_or(0, |s| {
            let mut prefix = [0u8; 8];
            let n = s.len().min(8);
            prefix[..n].copy_from_slice(&s.as_bytes()[..n]);
            u64::from_be_bytes(prefix)
        }),
    }
}

fn compare_cells(data: &ColumnData, a: usize, b: usize) -> Ordering {
    match data {
        ColumnData::Numeric(v) => match (v.get(a), v.get(b)) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (x, y) => x.is_some().cmp(&y.is_some()),
        },
        ColumnData::Categorical(v) => v[a].cmp(&v[b]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statement::{Recognized, recognize};

    #[test]
    fn canonical_order_ignores_the_order_rows_arrive_in() {
        let mut a = vec![
            InputColumn::numeric("x", vec![Some(3.0), None, Some(1.0), Some(1.0)]),
            InputColumn::categorical(
                "c",
                vec![
                    Some("b".into()),
                    Some("a".into()),
                    Some("z".into()),
                    Some("y".into()),
                ],
            ),
        ];
        let mut flags = vec![true, false, false, true];
        canonical_row_order(&mut a, Some(&mut flags));
        assert_eq!(
            a[0].data,
            ColumnData::Numeric(vec![None, Some(1.0), Some(1.0), Some(3.0)].into())
        );
        assert_eq!(
            a[1].data,
            ColumnData::Categorical(vec![
                Some("a".into()),
                Some("y".into()),
                Some("z".into()),
                Some("b".into())
            ])
        );
        assert_eq!(flags, [false, true, false, true]);
    }

    #[test]
    fn canonical_order_equals_a_full_comparison_sort() {
        // Ties in the first column's key (NULL vs 0, equal numbers, strings sharing 8 bytes)
        // must fall through to the later columns and finally to the arrival order.
        let numbers = [
            None,
            Some(-0.0),
            Some(0.0),
            Some(-1.5),
            Some(2.0),
            Some(f64::MIN),
        ];
        let words = [
            None,
            Some(""),
            Some("abcdefgh"),
            Some("abcdefghZ"),
            Some("abcdefghA"),
            Some("b"),
        ];
        let rows = 300;
        let x: Vec<Option<f64>> = (0..rows)
            .map(|i| numbers[(i * 7) % numbers.len()])
            .collect();
        let w: Vec<Option<String>> = (0..rows)
            .map(|i| words[(i * 5 + i / 3) % words.len()].map(str::to_string))
            .collect();
        let y: Vec<Option<f64>> = (0..rows).map(|i| Some(((i * 13) % 4) as f64)).collect();
        let mut columns = vec![
            InputColumn::categorical("w", w.clone()),
            InputColumn::numeric("x", x.clone()),
            InputColumn::numeric("y", y.clone()),
        ];
        let mut flags: Vec<bool> = (0..rows).map(|i| i % 11 == 0).collect();
        let original = columns.clone();
        let mut expected: Vec<usize> = (0..rows).collect();
        expected.sort_by(|&a, &b| {
            original
                .iter()
                .map(|c| compare_cells(&c.data, a, b))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        });
        let expected_flags: Vec<bool> = expected.iter().map(|&i| flags[i]).collect();
        canonical_row_order(&mut columns, Some(&mut flags));
        assert_eq!(
            columns[0].data,
            ColumnData::Categorical(expected.iter().map(|&i| w[i].clone()).collect())
        );
        assert_eq!(
            columns[1].data,
            ColumnData::Numeric(expected.iter().map(|&i| x[i]).collect())
        );
        assert_eq!(
            columns[2].data,
            ColumnData::Numeric(expected.iter().map(|&i| y[i]).collect())
        );
        assert_eq!(flags, expected_flags);
    }

    fn spec(options: &str) -> Result<ModelSpec, BqmlError> {
        let sql = format!("CREATE MODEL models.m OPTIONS({options}) AS SELECT 1 AS x");
        let Recognized::CreateModel(create) = recognize(&sql).unwrap() else {
            panic!("not a CREATE MODEL")
        };
        model_spec(&create)
    }

    #[test]
    fn options_map_to_training_settings() {
        let s = spec("model_type='KMEANS', num_clusters=4, kmeans_init_method='kmeans++', max_iterations=50, early_stop=FALSE, min_rel_progress=0.001, standardize_features=FALSE").unwrap();
        assert_eq!(s.options.num_clusters, Some(4));
        assert_eq!(s.options.init, InitMethod::KMeansPlusPlus);
        assert_eq!(s.options.max_iterations, 50);
        assert!(!s.options.early_stop && !s.options.standardize_features);
        assert_eq!(s.options.min_rel_progress, 0.001);
    }

    #[test]
    fn bad_options_name_the_option_and_the_allowed_values() {
        for (options, expected) in [
            (
                "model_type='kmeans', num_clusters=1",
                "invalid num_clusters = 1; allowed: an integer from 2 to 100",
            ),
            (
                "model_type='kmeans', num_clusters=101",
                "num_clusters = 101",
            ),
            (
                "model_type='kmeans', distance_type='manhattan'",
                "'EUCLIDEAN', 'COSINE'",
            ),
            (
                "model_type='kmeans', colour='red'",
                "unknown option `colour`",
            ),
            (
                "model_type='linear_reg'",
                "model_type 'linear_reg' is not supported locally",
            ),
            ("num_clusters=3", "model_type = 'kmeans'"),
            (
                "model_type='kmeans', kmeans_init_method='CUSTOM'",
                "needs kmeans_init_col",
            ),
            (
                "model_type='kmeans', warm_start=TRUE, kmeans_init_method='CUSTOM', kmeans_init_col='s'",
                "drop kmeans_init_method = 'CUSTOM'",
            ),
            (
                "model_type='kmeans', max_iterations=0",
                "invalid max_iterations = 0; allowed: a positive integer",
            ),
            (
                "model_type='kmeans', early_stop='yes'",
                "invalid early_stop = 'yes'; allowed: TRUE, FALSE",
            ),
        ] {
            let err = spec(options).unwrap_err().to_string();
            assert!(err.contains(expected), "{options}: {err}");
        }
    }
}
