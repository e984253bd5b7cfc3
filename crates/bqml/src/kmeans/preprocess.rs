//! Fitting the per-column preprocessing (NULL imputation, z-scoring, one-hot encoding) and
//! applying it to get the matrix the model works in; also carrying centroids from one fitted
//! preprocessing to another, which needs the same per-feature scaling.

use std::collections::{HashMap, HashSet};

use super::error::KMeansError;
use super::input::{CATEGORICAL_KIND, ColumnData, InputColumn, NUMERIC_KIND, NumericValues};
use super::options::{MAX_FEATURE_MATRIX_CELLS, NULL_CATEGORY_LABEL};
use super::parallel::{CHUNK_ROWS, parallel_map};
use super::profile::profile;

/// The fitted preprocessing of one feature column (also what `ML.FEATURE_INFO` reports).
#[derive(Debug, Clone, PartialEq)]
pub enum FeaturePrep {
    Numeric {
        name: String,
        /// Over the non-NULL training values; NULLs are imputed with it.
        mean: f64,
        /// Sample stddev (n − 1) over the non-NULL values; 0 for a constant column.
        stddev: f64,
        min: f64,
        max: f64,
        median: f64,
        null_count: u64,
    },
    Categorical {
        name: String,
        /// Training vocabulary: NULL (if present) first, then values in byte order.
        categories: Vec<Option<String>>,
        null_count: u64,
    },
}

impl FeaturePrep {
    pub fn name(&self) -> &str {
        match self {
            FeaturePrep::Numeric { name, .. } | FeaturePrep::Categorical { name, .. } => name,
        }
    }

    pub fn dims(&self) -> usize {
        match self {
            FeaturePrep::Numeric { .. } => 1,
            FeaturePrep::Categorical { categories, .. } => categories.len(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            FeaturePrep::Numeric { .. } => NUMERIC_KIND,
            FeaturePrep::Categorical { .. } => CATEGORICAL_KIND,
        }
    }
}

/// Maps raw columns to the row-major matrix the model works in.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessor {
    pub features: Vec<FeaturePrep>,
    pub standardize: bool,
}

impl Preprocessor {
    /// Fits on the training columns; their order is the feature order.
    pub fn fit(columns: &[InputColumn], standardize: bool) -> Result<Self, KMeansError> {
        let rows = common_len(columns.iter())?;
        if rows == 0 {
            return Err(KMeansError::NoRows);
        }
        let mut seen = HashSet::new();
        for c in columns {
            if !seen.insert(c.name.to_ascii_lowercase()) {
                return Err(KMeansError::DuplicateColumn {
                    column: c.name.clone(),
                });
            }
        }
        // Columns are independent, so they are fitted in parallel; the median's selection makes
        // this the slow part of fitting.
        let features = parallel_map(columns.iter().collect(), fit_feature)
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        let pre = Self {
            features,
            standardize,
        };
        check_matrix_size(rows, pre.dims())?;
        Ok(pre)
    }

    pub fn dims(&self) -> usize {
        self.features.iter().map(FeaturePrep::dims).sum()
    }

    /// Preprocesses `columns` into a row-major `rows × dims()` matrix. Columns are matched to
    /// features by name (case-insensitively, as BigQuery does); extra columns are ignored.
    pub fn transform(&self, columns: &[InputColumn]) -> Result<Vec<f64>, KMeansError> {
        let matched = self
            .features
            .iter()
            .map(|f| {
                columns
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case(f.name()))
                    .ok_or_else(|| KMeansError::MissingColumn {
                        column: f.name().to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rows = common_len(matched.iter().copied())?;
        let dims = self.dims();
        check_matrix_size(rows, dims)?;
        let kernels = self
            .features
            .iter()
            .zip(&matched)
            .map(|(feature, column)| Kernel::new(feature, column))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = vec![0.0; rows * dims];
        // Blocks of rows in parallel; within a block, feature by feature, so each loop reads one
        // input column while the block's output stays in cache.
        let blocks: Vec<(usize, &mut [f64])> = out
            .chunks_mut(CHUNK_ROWS * dims)
            .enumerate()
            .map(|(b, block)| (b * CHUNK_ROWS, block))
            .collect();
        let standardize = self.standardize;
        parallel_map(blocks, |(first_row, block)| {
            let mut offset = 0;
            for kernel in &kernels {
                kernel.write(first_row, block, dims, offset, standardize)?;
                offset += kernel.dims();
            }
            Ok(())
        })
        .into_iter()
        .collect::<Result<(), KMeansError>>()?;
        Ok(out)
    }

    /// One name per dimension: the column name for a numeric feature, `column=value` for each
    /// category (the NULL category as [`NULL_CATEGORY_LABEL`]).
    pub fn dimension_names(&self) -> Vec<String> {
        let mut names = Vec::with_capacity(self.dims());
        for f in &self.features {
            match f {
                FeaturePrep::Numeric { name, .. } => names.push(name.clone()),
                FeaturePrep::Categorical {
                    name, categories, ..
                } => names.extend(
                    categories
                        .iter()
                        .map(|c| format!("{name}={}", c.as_deref().unwrap_or(NULL_CATEGORY_LABEL))),
                ),
            }
        }
        names
    }
}

/// One feature's transform, bound to its input column.
enum Kernel<'a> {
    Numeric {
        name: &'a str,
        values: &'a NumericValues,
        mean: f64,
        stddev: f64,
    },
    Categorical {
        values: &'a [Option<String>],
        index: HashMap<Option<&'a str>, usize>,
    },
}

impl<'a> Kernel<'a> {
    fn new(feature: &'a FeaturePrep, column: &'a InputColumn) -> Result<Self, KMeansError> {
        match (feature, &column.data) {
            (
                FeaturePrep::Numeric {
                    name, mean, stddev, ..
                },
                ColumnData::Numeric(values),
            ) => Ok(Kernel::Numeric {
                name,
                values,
                mean: *mean,
                stddev: *stddev,
            }),
            (FeaturePrep::Categorical { categories, .. }, ColumnData::Categorical(values)) => {
                Ok(Kernel::Categorical {
                    values,
                    index: categories
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c.as_deref(), i))
                        .collect(),
                })
            }
            (feature, data) => Err(KMeansError::ColumnTypeMismatch {
                column: column.name.clone(),
                expected: feature.kind(),
                found: data.kind(),
            }),
        }
    }

    fn dims(&self) -> usize {
        match self {
            Kernel::Numeric { .. } => 1,
            Kernel::Categorical { index, .. } => index.len(),
        }
    }

    /// Writes this feature's dimensions, starting at `offset` in each row of `block` (rows
    /// `first_row..` of the input, `dims` wide, zero-initialized).
    fn write(
        &self,
        first_row: usize,
        block: &mut [f64],
        dims: usize,
        offset: usize,
        standardize: bool,
    ) -> Result<(), KMeansError> {
        let rows = block.chunks_exact_mut(dims).zip(first_row..);
        match self {
            Kernel::Numeric {
                name,
                values,
                mean,
                stddev,
            } => {
                for (out, row) in rows {
                    let x = match values.get(row) {
                        None => *mean,
                        Some(x) if x.is_finite() => x,
                        Some(x) => {
                            return Err(KMeansError::NonFinite {
                                column: name.to_string(),
                                row,
                                value: x,
                            });
                        }
                    };
                    out[offset] = scale(x, *mean, *stddev, standardize);
                }
            }
            Kernel::Categorical { values, index } => {
                for (out, row) in rows {
                    // An unseen value leaves the all-zero one-hot vector, as BigQuery does.
                    if let Some(&i) = index.get(&values[row].as_deref()) {
                        out[offset + i] = 1.0;
                    }
                }
            }
        }
        Ok(())
    }
}

fn scale(x: f64, mean: f64, stddev: f64, standardize: bool) -> f64 {
    if !standardize {
        x
    } else if stddev > 0.0 {
        (x - mean) / stddev
    } else {
        0.0
    }
}

fn unscale(z: f64, mean: f64, stddev: f64, standardize: bool) -> f64 {
    if !standardize {
        z
    } else if stddev > 0.0 {
        z * stddev + mean
    } else {
        mean
    }
}

fn common_len<'a>(
    mut columns: impl Iterator<Item = &'a InputColumn>,
) -> Result<usize, KMeansError> {
    let first = columns.next().ok_or(KMeansError::NoColumns)?;
    let expected = first.data.len();
    for c in columns {
        if c.data.len() != expected {
            return Err(KMeansError::ColumnLengthMismatch {
                column: c.name.clone(),
                first: first.name.clone(),
                expected,
                found: c.data.len(),
            });
        }
    }
    Ok(expected)
}

fn check_matrix_size(rows: usize, dims: usize) -> Result<(), KMeansError> {
    match rows.checked_mul(dims) {
        Some(cells) if cells <= MAX_FEATURE_MATRIX_CELLS => Ok(()),
        _ => Err(KMeansError::TooLarge {
            rows,
            dims,
            limit: MAX_FEATURE_MATRIX_CELLS,
        }),
    }
}

fn fit_feature(column: &InputColumn) -> Result<FeaturePrep, KMeansError> {
    let name = column.name.clone();
    match &column.data {
        ColumnData::Numeric(values) => {
            let present = values.present();
            if present.is_empty() {
                return Err(KMeansError::AllNull { column: name });
            }
            let profile = profile(&present).map_err(|(row, value)| KMeansError::NonFinite {
                column: name.clone(),
                row: values.row_of_present(row),
                value,
            })?;
            Ok(FeaturePrep::Numeric {
                name,
                mean: profile.mean,
                stddev: profile.stddev,
                min: profile.min,
                max: profile.max,
                median: profile.median,
                null_count: (values.len() - present.len()) as u64,
            })
        }
        ColumnData::Categorical(values) => {
            let distinct: HashSet<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
            let mut categories: Vec<Option<String>> = distinct
                .into_iter()
                .map(|v| v.map(str::to_string))
                .collect();
            categories.sort_unstable();
            let null_count = values.iter().filter(|v| v.is_none()).count() as u64;
            Ok(FeaturePrep::Categorical {
                name,
                categories,
                null_count,
            })
        }
    }
}

/// Centroids of a model preprocessed by `source`, expressed in `target`'s preprocessed space,
/// for warm-starting a retrain whose preprocessing was refitted on new data: numeric values go
/// back to original units with `source`'s statistics and forward with `target`'s; category
/// weights follow their category (0 for a category `source` never saw, dropped for one `target`
/// lacks).
pub fn map_centroids(
    source: &Preprocessor,
    centroids: &[Vec<f64>],
    target: &Preprocessor,
) -> Result<Vec<Vec<f64>>, KMeansError> {
    let ours = &source.features;
    if ours.len() != target.features.len() {
        return Err(KMeansError::SchemaMismatch {
            detail: format!(
                "the model has {} feature columns, the new data {}",
                ours.len(),
                target.features.len()
            ),
        });
    }
    for (a, b) in ours.iter().zip(&target.features) {
        if !a.name().eq_ignore_ascii_case(b.name()) || a.kind() != b.kind() {
            return Err(KMeansError::SchemaMismatch {
                detail: format!(
                    "model column `{}` is {}, new column `{}` is {}",
                    a.name(),
                    a.kind(),
                    b.name(),
                    b.kind()
                ),
            });
        }
    }
    let own_dims = source.dims();
    if let Some((i, c)) = centroids
        .iter()
        .enumerate()
        .find(|(_, c)| c.len() != own_dims)
    {
        return Err(KMeansError::SchemaMismatch {
            detail: format!(
                "the model's centroid {} has {} dimensions but its features have {own_dims}",
                i + 1,
                c.len()
            ),
        });
    }
    let dims = target.dims();
    let mut out = Vec::with_capacity(centroids.len());
    for centroid in centroids {
        let mut mapped = vec![0.0; dims];
        let (mut from, mut to) = (0, 0);
        for (a, b) in ours.iter().zip(&target.features) {
            match (a, b) {
                (
                    FeaturePrep::Numeric {
                        mean: m0,
                        stddev: s0,
                        ..
                    },
                    FeaturePrep::Numeric {
                        mean: m1,
                        stddev: s1,
                        ..
                    },
                ) => {
                    let raw = unscale(centroid[from], *m0, *s0, source.standardize);
                    mapped[to] = scale(raw, *m1, *s1, target.standardize);
                }
                (
                    FeaturePrep::Categorical { categories: c0, .. },
                    FeaturePrep::Categorical { categories: c1, .. },
                ) => {
                    let position: HashMap<&Option<String>, usize> =
                        c1.iter().enumerate().map(|(j, c)| (c, j)).collect();
                    for (i, cat) in c0.iter().enumerate() {
                        if let Some(&j) = position.get(cat) {
                            mapped[to + j] = centroid[from + i];
                        }
                    }
                }
                // Kinds were checked equal above.
                _ => {}
            }
            from += a.dims();
            to += b.dims();
        }
        out.push(mapped);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::test_support::{assert_close, cat, custom, num, plain, two_squares};
    use crate::kmeans::{KMeansOptions, train};

    #[test]
    fn standard_scaler_vector_matches_bigquery_documentation() {
        let pre = Preprocessor::fit(&[num("f", &[1.0, 2.0, 3.0, 4.0, 5.0])], true).unwrap();
        let z = pre
            .transform(&[num("f", &[1.0, 2.0, 3.0, 4.0, 5.0])])
            .unwrap();
        let expected = [
            -1.2649110640673518,
            -0.6324555320336759,
            0.0,
            0.6324555320336759,
            1.2649110640673518,
        ];
        for (a, b) in z.iter().zip(expected) {
            assert!((a - b).abs() <= 1e-15, "{a} != {b}");
        }
        match &pre.features[0] {
            FeaturePrep::Numeric {
                mean,
                stddev,
                min,
                max,
                median,
                null_count,
                ..
            } => {
                assert_eq!(
                    (*mean, *min, *max, *median, *null_count),
                    (3.0, 1.0, 5.0, 3.0, 0)
                );
                assert_close(*stddev, 2.5f64.sqrt());
            }
            other => panic!("expected numeric, got {other:?}"),
        }
    }

    #[test]
    fn null_is_imputed_with_the_training_mean_and_standardizes_to_zero() {
        let col = InputColumn::numeric("f", vec![Some(1.0), None, Some(4.0), Some(10.0)]);
        let pre = Preprocessor::fit(std::slice::from_ref(&col), true).unwrap();
        let z = pre.transform(&[col]).unwrap();
        assert_eq!(z[1], 0.0);
        let raw = Preprocessor::fit(
            &[InputColumn::numeric(
                "f",
                vec![Some(1.0), None, Some(4.0), Some(10.0)],
            )],
            false,
        )
        .unwrap();
        let x = raw
            .transform(&[InputColumn::numeric("f", vec![None])])
            .unwrap();
        assert_eq!(x, vec![5.0]);
        assert!(matches!(
            &raw.features[0],
            FeaturePrep::Numeric { null_count: 1, median, .. } if *median == 4.0
        ));
    }

    #[test]
    fn constant_column_maps_to_zero() {
        let col = num("c", &[0.1, 0.1, 0.1]);
        let pre = Preprocessor::fit(std::slice::from_ref(&col), true).unwrap();
        assert_eq!(pre.transform(&[col]).unwrap(), vec![0.0; 3]);
    }

    #[test]
    fn one_hot_has_null_category_and_unseen_values_map_to_zeros() {
        let train = cat("proto", &[Some("udp"), None, Some("tcp"), Some("udp")]);
        let pre = Preprocessor::fit(&[train], true).unwrap();
        assert_eq!(
            pre.dimension_names(),
            vec!["proto=<NULL>", "proto=tcp", "proto=udp"]
        );
        let x = pre
            .transform(&[cat(
                "PROTO",
                &[Some("tcp"), None, Some("icmp"), Some("udp")],
            )])
            .unwrap();
        #[rustfmt::skip]
        assert_eq!(x, vec![
            0.0, 1.0, 0.0,
            1.0, 0.0, 0.0,
            0.0, 0.0, 0.0,
            0.0, 0.0, 1.0,
        ]);
    }

    #[test]
    fn features_keep_query_column_order_and_one_hot_is_not_standardized() {
        let pre = Preprocessor::fit(
            &[
                cat("flag", &[Some("true"), Some("false")]),
                num("bytes", &[1.0, 3.0]),
            ],
            true,
        )
        .unwrap();
        assert_eq!(
            pre.dimension_names(),
            vec!["flag=false", "flag=true", "bytes"]
        );
        let x = pre
            .transform(&[
                num("bytes", &[1.0, 3.0]),
                cat("flag", &[Some("true"), Some("false")]),
            ])
            .unwrap();
        let z = 1.0 / 2.0f64.sqrt();
        assert_eq!(x.len(), 6);
        assert_eq!(&x[..2], &[0.0, 1.0]);
        assert_close(x[2], -z);
        assert_eq!(&x[3..5], &[1.0, 0.0]);
        assert_close(x[5], z);
    }

    #[test]
    fn centroids_for_maps_between_refitted_preprocessings() {
        let old = train(
            &two_squares(),
            &KMeansOptions {
                standardize_features: true,
                ..plain(custom(&[0, 4], 8))
            },
        )
        .unwrap();
        let shifted: Vec<InputColumn> = two_squares()
            .into_iter()
            .map(|c| match c.data {
                ColumnData::Numeric(v) => InputColumn::numeric(
                    c.name,
                    v.iter().map(|x| x.map(|x| x * 2.0 + 1.0)).collect(),
                ),
                other => InputColumn {
                    name: c.name,
                    data: other,
                },
            })
            .collect();
        let target = Preprocessor::fit(&shifted, false).unwrap();
        let mapped = old.centroids_for(&target).unwrap();
        assert_close(mapped[0][0], 1.0);
        assert_close(mapped[1][1], 11.0);
        let other = Preprocessor::fit(&[num("z", &[1.0])], true).unwrap();
        assert!(matches!(
            old.centroids_for(&other),
            Err(KMeansError::SchemaMismatch { .. })
        ));
    }

    #[test]
    fn input_errors_name_the_column() {
        let all_null = InputColumn::numeric("dur", vec![None, None, None]);
        let err = train(
            &[num("x", &[1.0, 2.0, 3.0]), all_null],
            &KMeansOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            KMeansError::AllNull {
                column: "dur".into()
            }
        );
        assert!(err.to_string().contains("`dur`"));

        let nan = InputColumn::numeric("b", vec![Some(1.0), Some(f64::NAN)]);
        assert!(matches!(
            Preprocessor::fit(&[nan], true).unwrap_err(),
            KMeansError::NonFinite { row: 1, .. }
        ));
        // The row is the input row, NULLs counted.
        let inf_after_null = InputColumn::numeric("b", vec![None, Some(1.0), Some(f64::INFINITY)]);
        assert!(matches!(
            Preprocessor::fit(&[inf_after_null], true).unwrap_err(),
            KMeansError::NonFinite { row: 2, .. }
        ));
        assert!(matches!(
            Preprocessor::fit(&[num("a", &[1.0]), num("A", &[2.0])], true).unwrap_err(),
            KMeansError::DuplicateColumn { .. }
        ));
        assert!(matches!(
            Preprocessor::fit(&[num("a", &[1.0]), num("b", &[2.0, 3.0])], true).unwrap_err(),
            KMeansError::ColumnLengthMismatch { .. }
        ));
        assert_eq!(
            Preprocessor::fit(&[], true).unwrap_err(),
            KMeansError::NoColumns
        );
        assert_eq!(
            Preprocessor::fit(&[num("a", &[])], true).unwrap_err(),
            KMeansError::NoRows
        );
        let pre = Preprocessor::fit(&[num("a", &[1.0, 2.0])], true).unwrap();
        assert_eq!(
            pre.transform(&[num("b", &[1.0])]).unwrap_err(),
            KMeansError::MissingColumn { column: "a".into() }
        );
        assert!(matches!(
            pre.transform(&[cat("a", &[Some("x")])]).unwrap_err(),
            KMeansError::ColumnTypeMismatch { .. }
        ));
    }
}
