//! Choosing the centroids Lloyd starts from (RANDOM, KMEANS++, CUSTOM rows, or given
//! centroids). This is also where k is settled and checked, since its default and its upper
//! bound depend on the rows.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::error::KMeansError;
use super::kernels::{Space, sq_distance};
use super::options::{InitMethod, KMeansOptions, default_num_clusters, validate_num_clusters};
use super::parallel::{CHUNK_ROWS, parallel_map};

pub(super) fn initial_centroids(
    space: &Space<'_>,
    options: &KMeansOptions,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<f64>, KMeansError> {
    let rows = space.rows();
    let dims = space.dims;
    if let Some(warm) = &options.warm_start_centroids {
        return given_centroids(warm, options.num_clusters, rows, dims);
    }
    let requested_k = || {
        let k = options
            .num_clusters
            .unwrap_or_else(|| default_num_clusters(rows));
        validate_num_clusters(k, rows).map(|()| k)
    };
    let chosen = match &options.init {
        InitMethod::Centroids(given) => {
            return given_centroids(given, options.num_clusters, rows, dims);
        }
        InitMethod::Custom { selected_rows } => {
            let k = requested_k()?;
            if selected_rows.len() != rows {
                return Err(KMeansError::CustomInitLength {
                    rows,
                    found: selected_rows.len(),
                });
            }
            let chosen: Vec<usize> = (0..rows).filter(|&i| selected_rows[i]).collect();
            if chosen.len() != k {
                return Err(KMeansError::CustomInitCount {
                    flagged: chosen.len(),
                    num_clusters: k,
                });
            }
            chosen
        }
        InitMethod::Random => random_distinct_rows(space, requested_k()?, rng)?,
        InitMethod::KMeansPlusPlus => kmeans_plus_plus(space, requested_k()?, rng)?,
    };
    let mut flat = Vec::with_capacity(chosen.len() * dims);
    for i in chosen {
        flat.extend_from_slice(space.row(i));
    }
    Ok(flat)
}

/// Centroids given in the preprocessed space (warm start): as many clusters as centroids, each
/// with the features' dimensions and finite.
fn given_centroids(
    given: &[Vec<f64>],
    num_clusters: Option<usize>,
    rows: usize,
    dims: usize,
) -> Result<Vec<f64>, KMeansError> {
    if let Some(k) = num_clusters
        && k != given.len()
    {
        return Err(KMeansError::WarmStartCount {
            expected: k,
            found: given.len(),
        });
    }
    validate_num_clusters(given.len(), rows)?;
    let mut flat = Vec::with_capacity(given.len() * dims);
    for (i, c) in given.iter().enumerate() {
        if c.len() != dims {
            return Err(KMeansError::WarmStartDims {
                centroid: i + 1,
                expected: dims,
                found: c.len(),
            });
        }
        if c.iter().any(|x| !x.is_finite()) {
            return Err(KMeansError::WarmStartNonFinite { centroid: i + 1 });
        }
        flat.extend_from_slice(c);
    }
    Ok(flat)
}

/// k distinct rows: a lazy Fisher–Yates shuffle, skipping rows equal to one already chosen.
fn random_distinct_rows(
    space: &Space<'_>,
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<usize>, KMeansError> {
    let rows = space.rows();
    let mut order: Vec<usize> = (0..rows).collect();
    let mut chosen: Vec<usize> = Vec::with_capacity(k);
    for i in 0..rows {
        let j = rng.random_range(i..rows);
        order.swap(i, j);
        let candidate = space.row(order[i]);
        if chosen.iter().all(|&c| space.row(c) != candidate) {
            chosen.push(order[i]);
            if chosen.len() == k {
                return Ok(chosen);
            }
        }
    }
    Err(KMeansError::NotEnoughDistinctRows {
        num_clusters: k,
        distinct: chosen.len(),
        init: InitMethod::Random.sql_name(),
    })
}

/// Standard D² sampling (Arthur & Vassilvitskii), without scikit-learn's greedy extra trials.
fn kmeans_plus_plus(
    space: &Space<'_>,
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<usize>, KMeansError> {
    let rows = space.rows();
    let first = rng.random_range(0..rows);
    let mut chosen = vec![first];
    let mut weights = vec![f64::INFINITY; rows];
    nearer_to(space, &mut weights, first);
    while chosen.len() < k {
        let total: f64 = weights.iter().sum();
        // Every row is at distance 0 from a chosen centre: no further distinct row exists.
        if total.is_nan() || total <= 0.0 {
            return Err(KMeansError::NotEnoughDistinctRows {
                num_clusters: k,
                distinct: chosen.len(),
                init: InitMethod::KMeansPlusPlus.sql_name(),
            });
        }
        let target = rng.random::<f64>() * total;
        let mut acc = 0.0;
        let mut pick = None;
        let mut last_positive = 0;
        for (i, &w) in weights.iter().enumerate() {
            if w > 0.0 {
                acc += w;
                last_positive = i;
                if acc > target {
                    pick = Some(i);
                    break;
                }
            }
        }
        // Rounding can leave the running sum just short of `target`; the last row with weight
        // is then the one the sample fell into.
        let pick = pick.unwrap_or(last_positive);
        chosen.push(pick);
        nearer_to(space, &mut weights, pick);
    }
    Ok(chosen)
}

/// Lowers each row's weight to its squared distance to row `centre` where that is smaller.
fn nearer_to(space: &Space<'_>, weights: &mut [f64], centre: usize) {
    let (c, nc) = (space.row(centre), space.norm(centre));
    let work: Vec<(usize, &mut [f64])> = weights
        .chunks_mut(CHUNK_ROWS)
        .enumerate()
        .map(|(b, w)| (b * CHUNK_ROWS, w))
        .collect();
    parallel_map(work, |(first, weights)| {
        for (w, i) in weights.iter_mut().zip(first..) {
            let d = sq_distance(space.distance, space.row(i), space.norm(i), c, nc);
            if d < *w {
                *w = d;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::test_support::{blobs, custom, num, plain, two_squares};
    use crate::kmeans::train;

    #[test]
    fn training_is_deterministic_for_a_seed() {
        let cols = blobs(500, 4, 3, 1);
        for init in [InitMethod::Random, InitMethod::KMeansPlusPlus] {
            let options = KMeansOptions {
                init,
                num_clusters: Some(4),
                ..KMeansOptions::default()
            };
            let mut a = train(&cols, &options).unwrap();
            let mut b = train(&cols, &options).unwrap();
            for m in [&mut a, &mut b] {
                m.iterations.iter_mut().for_each(|i| i.duration_ms = 0);
            }
            assert_eq!(a, b);
        }
    }

    #[test]
    fn kmeans_plus_plus_finds_separated_clusters() {
        let cols = blobs(1000, 3, 3, 3);
        let options = KMeansOptions {
            init: InitMethod::KMeansPlusPlus,
            num_clusters: Some(3),
            ..KMeansOptions::default()
        };
        let model = train(&cols, &options).unwrap();
        let mut sizes = model.cluster_sizes.clone();
        sizes.sort_unstable();
        assert!(sizes[0] > 250, "{sizes:?}");
        assert_eq!(sizes.iter().sum::<u64>(), 1000);
    }

    #[test]
    fn warm_start_continues_from_given_centroids() {
        let cols = two_squares();
        let options = KMeansOptions {
            warm_start_centroids: Some(vec![vec![0.0, 0.0], vec![12.0, 12.0]]),
            num_clusters: None,
            ..plain(InitMethod::Random)
        };
        let model = train(&cols, &options).unwrap();
        assert_eq!(model.centroids, vec![vec![1.0, 1.0], vec![11.0, 11.0]]);

        let bad = KMeansOptions {
            warm_start_centroids: Some(vec![vec![0.0], vec![12.0]]),
            ..options.clone()
        };
        let err = train(&cols, &bad).unwrap_err();
        assert!(matches!(
            err,
            KMeansError::WarmStartDims {
                expected: 2,
                found: 1,
                ..
            }
        ));
    }

    #[test]
    fn bad_num_clusters_is_rejected_with_the_allowed_range() {
        let cols = two_squares();
        for k in [0, 1, 101] {
            let options = KMeansOptions {
                num_clusters: Some(k),
                ..KMeansOptions::default()
            };
            let err = train(&cols, &options).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("num_clusters") && msg.contains("from 2 to 100"),
                "{msg}"
            );
        }
        let options = KMeansOptions {
            num_clusters: Some(9),
            ..KMeansOptions::default()
        };
        assert_eq!(
            train(&cols, &options).unwrap_err(),
            KMeansError::MoreClustersThanRows {
                num_clusters: 9,
                rows: 8
            }
        );
        // Three rows, two of them equal: RANDOM cannot find three distinct rows.
        let dup = [num("x", &[1.0, 1.0, 5.0])];
        for init in [InitMethod::Random, InitMethod::KMeansPlusPlus] {
            let options = KMeansOptions {
                num_clusters: Some(3),
                init,
                ..KMeansOptions::default()
            };
            assert!(matches!(
                train(&dup, &options).unwrap_err(),
                KMeansError::NotEnoughDistinctRows {
                    num_clusters: 3,
                    distinct: 2,
                    ..
                }
            ));
        }
    }

    #[test]
    fn custom_init_count_must_equal_num_clusters() {
        let err = train(&two_squares(), &plain(custom(&[0, 4, 5], 8))).unwrap_err();
        assert_eq!(
            err,
            KMeansError::CustomInitCount {
                flagged: 3,
                num_clusters: 2
            }
        );
        assert!(err.to_string().contains("kmeans_init_col"));
        let short = InitMethod::Custom {
            selected_rows: vec![true, true],
        };
        assert!(matches!(
            train(&two_squares(), &plain(short)).unwrap_err(),
            KMeansError::CustomInitLength { rows: 8, found: 2 }
        ));
    }

    #[test]
    fn init_from_given_centroids_takes_k_from_them_and_checks_their_dimensions() {
        let start = |centroids: Vec<Vec<f64>>| KMeansOptions {
            num_clusters: None,
            ..plain(InitMethod::Centroids(centroids))
        };
        let model = train(
            &two_squares(),
            &start(vec![vec![0.0, 0.0], vec![12.0, 12.0]]),
        )
        .unwrap();
        assert_eq!(model.centroids, vec![vec![1.0, 1.0], vec![11.0, 11.0]]);
        let three = train(
            &two_squares(),
            &start(vec![vec![0.0, 0.0], vec![12.0, 12.0], vec![0.0, 12.0]]),
        )
        .unwrap();
        assert_eq!(three.num_clusters(), 3);

        let err = train(&two_squares(), &start(vec![vec![0.0], vec![12.0]])).unwrap_err();
        assert_eq!(
            err,
            KMeansError::WarmStartDims {
                centroid: 1,
                expected: 2,
                found: 1
            }
        );
        assert!(
            err.to_string()
                .contains("has 1 dimensions but the features have 2")
        );
        let mismatch = KMeansOptions {
            num_clusters: Some(3),
            ..start(vec![vec![0.0, 0.0], vec![12.0, 12.0]])
        };
        assert!(matches!(
            train(&two_squares(), &mismatch).unwrap_err(),
            KMeansError::WarmStartCount {
                expected: 3,
                found: 2
            }
        ));
    }
}
