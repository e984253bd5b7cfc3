//! The trained model, and training end to end: preprocess, initialize, iterate, then one final
//! scan with the model's scoring radii, so that the training distances that set the anomaly
//! threshold follow the same rule as scoring. Also what scoring and `ML.EVALUATE` ask of a model.

use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::error::KMeansError;
use super::init::initial_centroids;
use super::input::InputColumn;
use super::kernels::{Centroids, Scan, Space, argmin_normalized, norm, scan, sq_distance};
use super::lloyd::{IterationInfo, lloyd};
use super::options::{
    DistanceType, KMeansOptions, THRESHOLD_RANK_TOLERANCE, UNDEFINED_METRIC, ZERO_RADIUS_FALLBACK,
    validate_options,
};
use super::parallel::parallel_map;
use super::preprocess::{Preprocessor, map_centroids};

#[derive(Debug, Clone, PartialEq)]
pub struct KMeansModel {
    pub preprocessor: Preprocessor,
    pub distance: DistanceType,
    /// `k × dims`, in the preprocessed space; centroid id = index + 1.
    pub centroids: Vec<Vec<f64>>,
    pub cluster_sizes: Vec<u64>,
    /// RMS distance of each cluster's training rows to its centroid (0 for an empty cluster).
    pub cluster_radii: Vec<f64>,
    /// Every training row's normalized distance, ascending.
    pub training_normalized_distances: Vec<f64>,
    pub iterations: Vec<IterationInfo>,
    pub training_rows: u64,
    /// `ML.EVALUATE` without input: [`KMeansModel::davies_bouldin_index`] of the training rows.
    pub davies_bouldin_index: f64,
    /// `ML.EVALUATE` without input: [`KMeansModel::mean_squared_distance`] of the training
    /// rows, which is also the last iteration's loss.
    pub mean_squared_distance: f64,
}

/// Fits the preprocessing on `columns` and trains a model on them.
pub fn train(columns: &[InputColumn], options: &KMeansOptions) -> Result<KMeansModel, KMeansError> {
    let preprocessor = Preprocessor::fit(columns, options.standardize_features)?;
    train_with_preprocessor(preprocessor, columns, options)
}

/// [`train`], freeing the columns as soon as they are preprocessed: the raw columns and the
/// training state are then never held at once, which bounds `CREATE MODEL`'s peak memory.
pub fn train_owned(
    columns: Vec<InputColumn>,
    options: &KMeansOptions,
) -> Result<KMeansModel, KMeansError> {
    validate_options(options)?;
    let preprocessor = Preprocessor::fit(&columns, options.standardize_features)?;
    let data = preprocessor.transform(&columns)?;
    drop(columns);
    train_matrix(preprocessor, &data, options)
}

/// Trains with an already fitted preprocessing (e.g. one fitted first to map warm-start
/// centroids into its space); `options.standardize_features` is ignored in favour of it.
pub fn train_with_preprocessor(
    preprocessor: Preprocessor,
    columns: &[InputColumn],
    options: &KMeansOptions,
) -> Result<KMeansModel, KMeansError> {
    validate_options(options)?;
    let data = preprocessor.transform(columns)?;
    train_matrix(preprocessor, &data, options)
}

/// Trains on `data`, the row-major matrix `preprocessor` produced.
fn train_matrix(
    preprocessor: Preprocessor,
    data: &[f64],
    options: &KMeansOptions,
) -> Result<KMeansModel, KMeansError> {
    let dims = preprocessor.dims();
    let rows = data.len().checked_div(dims).unwrap_or(0);
    if rows == 0 {
        return Err(KMeansError::NoRows);
    }
    let space = Space::new(data, dims, options.distance);
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let centroids = initial_centroids(&space, options, &mut rng)?;
    let k = centroids.len() / dims;
    let lloyd = lloyd(&space, centroids, k, options, started);
    let clusters = lloyd.last_pass.clusters();
    let mut model = KMeansModel {
        preprocessor,
        distance: options.distance,
        centroids: lloyd
            .centroids
            .chunks_exact(dims)
            .map(<[f64]>::to_vec)
            .collect(),
        cluster_sizes: clusters.iter().map(|c| c.size).collect(),
        cluster_radii: clusters.iter().map(|c| c.radius).collect(),
        training_normalized_distances: Vec::new(),
        iterations: lloyd.iterations,
        training_rows: rows as u64,
        davies_bouldin_index: UNDEFINED_METRIC,
        mean_squared_distance: UNDEFINED_METRIC,
    };
    // One final pass gives what scoring and ML.EVALUATE need: the radii must be known first.
    let radii = model.scoring_radii();
    let last = scan(
        &space,
        &Centroids::new(&lloyd.centroids, dims, options.distance),
        Some(&radii),
    );
    model.davies_bouldin_index = model.davies_bouldin(&last);
    model.mean_squared_distance = last.mean_squared_distance();
    model.training_normalized_distances = sorted_distances(last.normalized);
    Ok(model)
}

/// Sorts non-negative distances ascending: two halves in parallel, then one merge. Such values
/// sort like their bit patterns, which compare faster; equal patterns are equal values, so the
/// result is the one a single sort gives.
fn sorted_distances(mut distances: Vec<f64>) -> Vec<f64> {
    let mid = distances.len() / 2;
    let (a, b) = distances.split_at_mut(mid);
    parallel_map(vec![a, b], |half| {
        half.sort_unstable_by_key(|d| d.to_bits())
    });
    let (a, b) = distances.split_at(mid);
    let mut merged = Vec::with_capacity(distances.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].to_bits() <= b[j].to_bits() {
            merged.push(a[i]);
            i += 1;
        } else {
            merged.push(b[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&a[i..]);
    merged.extend_from_slice(&b[j..]);
    merged
}

/// 1-based nearest rank of the contamination threshold among `n` sorted training distances:
/// ceil((1 − c)·n), clamped to 1..=n. Errors unless c ∈ [0, 0.5].
pub fn threshold_rank(n: usize, contamination: f64) -> Result<usize, KMeansError> {
    if !(0.0..=0.5).contains(&contamination) {
        return Err(KMeansError::InvalidOption {
            option: "contamination",
            value: contamination.to_string(),
            allowed: "a number from 0 to 0.5".into(),
        });
    }
    if n == 0 {
        return Err(KMeansError::NoRows);
    }
    let x = (1.0 - contamination) * n as f64;
    let nearest = x.round();
    let rank = if (x - nearest).abs() <= THRESHOLD_RANK_TOLERANCE * x.max(1.0) {
        nearest
    } else {
        x.ceil()
    };
    Ok((rank as usize).clamp(1, n))
}

impl KMeansModel {
    pub fn num_clusters(&self) -> usize {
        self.centroids.len()
    }

    pub fn dims(&self) -> usize {
        self.preprocessor.dims()
    }

    /// The radii scoring divides by: the training radii with [`ZERO_RADIUS_FALLBACK`] applied.
    /// The SQL scoring path must use these, not `cluster_radii`.
    pub fn scoring_radii(&self) -> Vec<f64> {
        let substitute = self.zero_radius_substitute();
        self.cluster_radii
            .iter()
            .map(|&r| if r > 0.0 { r } else { substitute })
            .collect()
    }

    fn zero_radius_substitute(&self) -> f64 {
        let smallest = self
            .cluster_radii
            .iter()
            .copied()
            .filter(|&r| r > 0.0)
            .fold(f64::INFINITY, f64::min);
        if smallest.is_finite() {
            smallest
        } else {
            ZERO_RADIUS_FALLBACK
        }
    }

    /// The `ML.DETECT_ANOMALIES` threshold: the nearest-rank ceil((1 − c)·n) training
    /// normalized distance; c = 0 gives the maximum. c must lie in [0, 0.5].
    pub fn anomaly_threshold(&self, contamination: f64) -> Result<f64, KMeansError> {
        let rank = threshold_rank(self.training_normalized_distances.len(), contamination)?;
        Ok(self.training_normalized_distances[rank - 1])
    }

    /// `ML.DETECT_ANOMALIES` scoring of a preprocessed row: (centroid id, normalized distance),
    /// argmin over clusters of distance / radius.
    pub fn nearest(&self, row: &[f64]) -> (usize, f64) {
        debug_assert_eq!(row.len(), self.dims());
        let substitute = self.zero_radius_substitute();
        let clusters = self
            .centroids
            .iter()
            .zip(&self.cluster_radii)
            .map(|(c, &r)| (c.as_slice(), norm(c), if r > 0.0 { r } else { substitute }));
        let (c, d) = argmin_normalized(self.distance, row, norm(row), clusters);
        (c + 1, d)
    }

    /// `ML.PREDICT` of a preprocessed row: (centroid id, plain distance) of the nearest centroid.
    pub fn predict(&self, row: &[f64]) -> (usize, f64) {
        let (c, sq) = self.nearest_plain_sq(row);
        (c + 1, sq.sqrt())
    }

    /// `ML.PREDICT`'s `nearest_centroids_distance`: up to `limit` (centroid id, distance) pairs,
    /// ascending by distance, ties by id.
    pub fn nearest_centroids(&self, row: &[f64], limit: usize) -> Vec<(usize, f64)> {
        let mut all: Vec<(usize, f64)> = self
            .centroids
            .iter()
            .enumerate()
            .map(|(c, centroid)| (c + 1, self.distance(row, centroid)))
            .collect();
        all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        all.truncate(limit);
        all
    }

    /// The model's distance between two preprocessed vectors.
    pub fn distance(&self, a: &[f64], b: &[f64]) -> f64 {
        sq_distance(self.distance, a, norm(a), b, norm(b)).sqrt()
    }

    fn nearest_plain_sq(&self, row: &[f64]) -> (usize, f64) {
        debug_assert_eq!(row.len(), self.dims());
        let row_norm = norm(row);
        let mut best = (0, f64::INFINITY);
        for (c, centroid) in self.centroids.iter().enumerate() {
            let sq = sq_distance(self.distance, row, row_norm, centroid, norm(centroid));
            if sq < best.1 {
                best = (c, sq);
            }
        }
        best
    }

    /// `ML.EVALUATE`'s Davies–Bouldin index over preprocessed rows (row-major), each row in the
    /// cluster of its nearest centroid. Clusters with no rows are left out, as scikit-learn
    /// does; two coincident centroids contribute 0 (scikit-learn's convention). Fewer than two
    /// clusters with rows: [`UNDEFINED_METRIC`].
    pub fn davies_bouldin_index(&self, rows: &[f64]) -> f64 {
        match self.scan_rows(rows) {
            Some(scan) => self.davies_bouldin(&scan),
            None => UNDEFINED_METRIC,
        }
    }

    /// `ML.EVALUATE`'s mean squared distance of preprocessed rows (row-major) to their nearest
    /// centroid; [`UNDEFINED_METRIC`] for no rows.
    pub fn mean_squared_distance(&self, rows: &[f64]) -> f64 {
        self.scan_rows(rows)
            .map_or(UNDEFINED_METRIC, |scan| scan.mean_squared_distance())
    }

    fn scan_rows(&self, rows: &[f64]) -> Option<Scan> {
        let dims = self.dims();
        if dims == 0 || self.centroids.is_empty() {
            return None;
        }
        let centroids = Centroids::new(&self.centroids.concat(), dims, self.distance);
        Some(scan(
            &Space::new(rows, dims, self.distance),
            &centroids,
            None,
        ))
    }

    /// Davies–Bouldin from a pass's per-cluster distance sums; see [`Self::davies_bouldin_index`].
    fn davies_bouldin(&self, scan: &Scan) -> f64 {
        let k = self.num_clusters();
        let present: Vec<usize> = (0..k).filter(|&c| scan.counts[c] > 0).collect();
        if present.len() < 2 {
            return UNDEFINED_METRIC;
        }
        let scatter: Vec<f64> = (0..k)
            .map(|c| {
                if scan.counts[c] > 0 {
                    scan.distance_sums[c] / scan.counts[c] as f64
                } else {
                    0.0
                }
            })
            .collect();
        let total: f64 = present
            .iter()
            .map(|&i| {
                present
                    .iter()
                    .filter(|&&j| j != i)
                    .map(|&j| {
                        let d = self.distance(&self.centroids[i], &self.centroids[j]);
                        if d > 0.0 {
                            (scatter[i] + scatter[j]) / d
                        } else {
                            0.0
                        }
                    })
                    .fold(0.0, f64::max)
            })
            .sum();
        total / present.len() as f64
    }

    /// This model's centroids in `target`'s preprocessed space: see [`map_centroids`].
    pub fn centroids_for(&self, target: &Preprocessor) -> Result<Vec<Vec<f64>>, KMeansError> {
        map_centroids(&self.preprocessor, &self.centroids, target)
    }
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;
    use crate::kmeans::test_support::{assert_close, blobs, custom, num, plain, two_squares};
    use crate::kmeans::{COSINE_ZERO_VECTOR_DISTANCE, InitMethod};

    fn model_with_distances(distances: Vec<f64>) -> KMeansModel {
        KMeansModel {
            preprocessor: Preprocessor {
                features: vec![],
                standardize: true,
            },
            distance: DistanceType::Euclidean,
            centroids: vec![],
            cluster_sizes: vec![],
            cluster_radii: vec![],
            training_rows: distances.len() as u64,
            training_normalized_distances: distances,
            iterations: vec![],
            davies_bouldin_index: UNDEFINED_METRIC,
            mean_squared_distance: UNDEFINED_METRIC,
        }
    }

    #[test]
    fn custom_init_converges_to_the_known_means() {
        let model = train(&two_squares(), &plain(custom(&[0, 4], 8))).unwrap();
        assert_eq!(model.centroids, vec![vec![1.0, 1.0], vec![11.0, 11.0]]);
        assert_eq!(model.cluster_sizes, vec![4, 4]);
        for r in &model.cluster_radii {
            assert_close(*r, 2.0f64.sqrt());
        }
        assert_eq!(model.training_rows, 8);
        // Every point is at distance √2 from its centre, i.e. at normalized distance 1.
        for d in &model.training_normalized_distances {
            assert_close(*d, 1.0);
        }
        let last = model.iterations.last().unwrap();
        assert_close(last.loss, 2.0);
        let data = model.preprocessor.transform(&two_squares()).unwrap();
        assert_close(model.mean_squared_distance(&data), last.loss);
        // s_i = √2, d(μ1, μ2) = 10√2, so DB = 2√2 / 10√2.
        assert_close(model.davies_bouldin_index(&data), 0.2);
        assert_eq!(model.nearest(&[11.0, 11.0]), (2, 0.0));
        let (id, nd) = model.nearest(&[1.0, 4.0]);
        assert_eq!(id, 1);
        assert_close(nd, 3.0 / 2.0f64.sqrt());
        assert_eq!(model.predict(&[10.0, 10.0]).0, 2);
    }

    #[test]
    fn anomaly_threshold_uses_the_nearest_rank() {
        let m = model_with_distances((1..=10).map(|i| i as f64 / 10.0).collect());
        assert_eq!(m.anomaly_threshold(0.1).unwrap(), 0.9);
        assert_eq!(m.anomaly_threshold(0.0).unwrap(), 1.0);
        assert_eq!(m.anomaly_threshold(0.5).unwrap(), 0.5);
        assert_eq!(m.anomaly_threshold(0.15).unwrap(), 0.9); // ceil(8.5) = 9
        for bad in [0.6, -0.01, f64::NAN] {
            let err = m.anomaly_threshold(bad).unwrap_err();
            assert!(err.to_string().contains("contamination"), "{err}");
            assert!(err.to_string().contains("0 to 0.5"), "{err}");
        }
        // (1 − 0.29)·100 is 71.00000000000001 in binary floating point.
        assert_eq!(threshold_rank(100, 0.29).unwrap(), 71);
        assert_eq!(threshold_rank(1, 0.5).unwrap(), 1);
    }

    #[test]
    fn cosine_distance_values() {
        let mut m = model_with_distances(vec![1.0]);
        m.distance = DistanceType::Cosine;
        assert_close(m.distance(&[1.0, 0.0], &[0.0, 1.0]), 1.0);
        assert_close(
            m.distance(&[1.0, 0.0], &[1.0, 1.0]),
            (1.0 - 1.0 / 2.0f64.sqrt()).sqrt(),
        );
        assert_close(m.distance(&[1.0, 0.0], &[-3.0, 0.0]), 2.0f64.sqrt());
        // Same direction: the documented formula leaves sqrt(one rounding error) ≈ 1.5e-8, as
        // the SQL path computing 1 − x·y/(‖x‖‖y‖) does too.
        assert!(m.distance(&[1.0, 2.0], &[2.0, 4.0]) < 2e-8);
        assert_eq!(
            m.distance(&[0.0, 0.0], &[1.0, 2.0]),
            COSINE_ZERO_VECTOR_DISTANCE
        );
        assert_eq!(m.distance(&[0.0, 0.0], &[0.0, 0.0]), 0.0);
    }

    #[test]
    fn cosine_training_groups_by_direction() {
        let cols = [
            num("x", &[1.0, 2.0, 3.0, 0.0, 0.1, 0.0]),
            num("y", &[0.0, 0.1, 0.0, 1.0, 2.0, 3.0]),
        ];
        let options = KMeansOptions {
            distance: DistanceType::Cosine,
            ..plain(custom(&[0, 3], 6))
        };
        let model = train(&cols, &options).unwrap();
        assert_eq!(model.cluster_sizes, vec![3, 3]);
        assert_eq!(model.nearest(&[5.0, 0.0]).0, 1);
        assert_eq!(model.nearest(&[0.0, 5.0]).0, 2);
    }

    #[test]
    fn zero_radius_clusters_score_with_the_smallest_positive_radius() {
        // A singleton cluster at 100 has radius 0; scores near it must stay finite.
        let cols = [num("x", &[0.0, 2.0, 100.0])];
        let model = train(&cols, &plain(custom(&[0, 2], 3))).unwrap();
        assert_eq!(model.cluster_radii, vec![1.0, 0.0]);
        assert_eq!(model.scoring_radii(), vec![1.0, 1.0]);
        assert_eq!(model.nearest(&[103.0]), (2, 3.0));
        assert!(
            model
                .training_normalized_distances
                .iter()
                .all(|d| d.is_finite())
        );
    }

    #[test]
    fn evaluation_metrics_are_undefined_without_rows() {
        let model = train(&two_squares(), &plain(custom(&[0, 4], 8))).unwrap();
        assert!(model.mean_squared_distance(&[]).is_nan());
        assert!(model.davies_bouldin_index(&[1.0, 1.0]).is_nan());
        let near = model.nearest_centroids(&[2.0, 2.0], 5);
        assert_eq!(near.len(), 2);
        assert_eq!(near[0].0, 1);
        assert!(near[0].1 < near[1].1);
    }

    #[test]
    fn distances_sort_like_a_single_sort() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for n in [0, 1, 2, 3, 1000, 1001] {
            let v: Vec<f64> = (0..n)
                .map(|i| {
                    if i % 7 == 0 {
                        0.5
                    } else {
                        rng.random::<f64>() * 3.0
                    }
                })
                .collect();
            let mut expected = v.clone();
            expected.sort_by(f64::total_cmp);
            assert_eq!(sorted_distances(v), expected);
        }
    }

    #[test]
    fn training_metrics_equal_the_evaluation_of_the_training_rows() {
        let model = train(&two_squares(), &plain(custom(&[0, 4], 8))).unwrap();
        assert_close(model.mean_squared_distance, 2.0);
        assert_close(model.davies_bouldin_index, 0.2);

        let cols = blobs(3000, 3, 4, 5);
        for distance in [DistanceType::Euclidean, DistanceType::Cosine] {
            let options = KMeansOptions {
                num_clusters: Some(4),
                distance,
                ..KMeansOptions::default()
            };
            let model = train(&cols, &options).unwrap();
            let data = model.preprocessor.transform(&cols).unwrap();
            assert_eq!(
                model.davies_bouldin_index,
                model.davies_bouldin_index(&data)
            );
            assert_eq!(
                model.mean_squared_distance,
                model.mean_squared_distance(&data)
            );
            assert_close(
                model.mean_squared_distance,
                model.iterations.last().unwrap().loss,
            );
        }

        // A centroid far from every row keeps no rows; Davies–Bouldin leaves it out, both ways:
        // s = 0.5 for {0, 1} and {10, 11}, centroids 10 apart, so DB = (1/10 + 1/10) / 2.
        let cols = [num("x", &[0.0, 1.0, 10.0, 11.0])];
        let options = plain(InitMethod::Centroids(vec![
            vec![0.5],
            vec![10.5],
            vec![100.0],
        ]));
        let model = train(
            &cols,
            &KMeansOptions {
                num_clusters: None,
                ..options
            },
        )
        .unwrap();
        assert_eq!(model.cluster_sizes, [2, 2, 0]);
        assert_close(model.davies_bouldin_index, 0.1);
        let data = model.preprocessor.transform(&cols).unwrap();
        assert_eq!(
            model.davies_bouldin_index,
            model.davies_bouldin_index(&data)
        );
        assert_close(model.mean_squared_distance, 0.25);
    }
}
