//! Fixtures the submodules' tests share: small hand-checkable inputs and seeded blobs, so
//! each test states only what it checks.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{InitMethod, InputColumn, KMeansOptions};

pub(super) fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

pub(super) fn assert_close(a: f64, b: f64) {
    assert!(close(a, b, 1e-12), "{a} != {b}");
}

pub(super) fn num(name: &str, v: &[f64]) -> InputColumn {
    InputColumn::numeric(name, v.iter().map(|&x| Some(x)).collect())
}

pub(super) fn cat(name: &str, v: &[Option<&str>]) -> InputColumn {
    InputColumn::categorical(name, v.iter().map(|x| x.map(str::to_string)).collect())
}

pub(super) fn plain(init: InitMethod) -> KMeansOptions {
    KMeansOptions {
        init,
        standardize_features: false,
        num_clusters: Some(2),
        ..KMeansOptions::default()
    }
}

/// Two 2-D squares of 4 points: means (1, 1) and (11, 11).
pub(super) fn two_squares() -> Vec<InputColumn> {
    vec![
        num("x", &[0.0, 0.0, 2.0, 2.0, 10.0, 10.0, 12.0, 12.0]),
        num("y", &[0.0, 2.0, 0.0, 2.0, 10.0, 12.0, 10.0, 12.0]),
    ]
}

pub(super) fn custom(flags: &[usize], rows: usize) -> InitMethod {
    InitMethod::Custom {
        selected_rows: (0..rows).map(|i| flags.contains(&i)).collect(),
    }
}

/// Deterministic pseudo-random blobs, row-major, without pulling in a distribution crate.
pub(super) fn blobs(rows: usize, dims: usize, centers: usize, seed: u64) -> Vec<InputColumn> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cols = vec![Vec::with_capacity(rows); dims];
    for _ in 0..rows {
        let c = rng.random_range(0..centers) as f64;
        for (d, col) in cols.iter_mut().enumerate() {
            let noise: f64 = rng.random::<f64>() + rng.random::<f64>() - 1.0;
            col.push(Some(c * 5.0 * ((d % 3) as f64 - 1.0) + noise));
        }
    }
    cols.into_iter()
        .enumerate()
        .map(|(d, v)| InputColumn::numeric(format!("f{d}"), v))
        .collect()
}
