//! Lloyd's iterations from the initial centroids to the trained ones, with what each iteration
//! reports to `ML.TRAINING_INFO`. Its assignment pass is the hot loop of training, so it stays
//! apart from the scan in `kernels`, whose distances must equal the SQL scoring's.

use std::time::Instant;

use super::kernels::{Centroids, Space, prefetch_ahead, widest_vectors};
use super::options::{
    DistanceType, EMPTY_CLUSTER_POLICY, EmptyClusterPolicy, KMeansOptions, STOP_AT_FIXED_POINT,
};
use super::parallel::{CHUNK_ROWS, parallel_map, row_chunks};

/// One cluster as an iteration left it (`ML.TRAINING_INFO`'s `cluster_info`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterInfo {
    /// Training rows assigned to the cluster.
    pub size: u64,
    /// RMS distance of those rows to the centroid, in the preprocessed space; 0 when empty.
    pub radius: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IterationInfo {
    /// From 0, as `ML.TRAINING_INFO` numbers them.
    pub iteration: usize,
    /// Mean squared distance of the rows to their nearest centroid, for the centroids this
    /// iteration produced (so the last loss is the final model's).
    pub loss: f64,
    /// Wall time of the iteration; iteration 0 includes the initialization.
    pub duration_ms: u64,
    /// Per centroid (id = index + 1), for the centroids this iteration produced.
    pub clusters: Vec<ClusterInfo>,
}

/// What a Lloyd assignment pass leaves for the centroid update and the loss.
pub(super) struct Pass {
    assignments: Vec<u32>,
    counts: Vec<u64>,
    sums: Vec<f64>,
    sse: Vec<f64>,
    total_sse: f64,
    changed: bool,
}

/// One chunk's share of a [`Pass`].
struct PassPart {
    counts: Vec<u64>,
    sums: Vec<f64>,
    sse: Vec<f64>,
    changed: bool,
}

/// Rows [`Centroids::nearest_euclidean_fused`] takes at once in a Lloyd pass.
const FUSED_ROWS: usize = 4;

widest_vectors! {
    /// One chunk of a [`Pass`]: rows `first..` of the matrix and their assignments.
    fn assign_chunk(
        centroids: &Centroids,
        space: &Space<'_>,
        first: usize,
        rows: &[f64],
        assigned: &mut [u32],
    ) -> PassPart {
        let (dims, k) = (space.dims, centroids.k);
        let mut part = PassPart {
            counts: vec![0; k],
            sums: vec![0.0; k * dims],
            sse: vec![0.0; k],
            changed: false,
        };
        let mut record = |row: &[f64], slot: &mut u32, (best, best_sq): (usize, f64)| {
            if *slot != best as u32 {
                *slot = best as u32;
                part.changed = true;
            }
            part.counts[best] += 1;
            part.sse[best] += best_sq;
            for (s, x) in part.sums[best * dims..(best + 1) * dims]
                .iter_mut()
                .zip(row)
            {
                *s += x;
            }
        };
        if centroids.distance == DistanceType::Euclidean {
            // Rows four at a time, recorded in row order just as one at a time.
            let mut quads = rows.chunks_exact(FUSED_ROWS * dims);
            let mut slots = assigned.chunks_exact_mut(FUSED_ROWS);
            for (quad, slots) in (&mut quads).zip(&mut slots) {
                prefetch_ahead(quad);
                let rows: [&[f64]; FUSED_ROWS] =
                    std::array::from_fn(|q| &quad[q * dims..(q + 1) * dims]);
                let nearest = centroids.nearest_euclidean_fused(rows);
                for ((row, slot), best) in rows.into_iter().zip(slots).zip(nearest) {
                    record(row, slot, best);
                }
            }
            for (row, slot) in quads.remainder().chunks_exact(dims).zip(slots.into_remainder()) {
                let [best] = centroids.nearest_euclidean_fused([row]);
                record(row, slot, best);
            }
        } else {
            for ((row, slot), i) in rows.chunks_exact(dims).zip(assigned).zip(first..) {
                record(row, slot, centroids.nearest(row, space.norm(i)));
            }
        }
        part
    }
}

impl Pass {
    fn new(rows: usize, k: usize, dims: usize) -> Self {
        Self {
            assignments: vec![u32::MAX; rows],
            counts: vec![0; k],
            sums: vec![0.0; k * dims],
            sse: vec![0.0; k],
            total_sse: 0.0,
            changed: false,
        }
    }

    /// Assigns every row to its nearest centroid and accumulates what the next update and the
    /// loss need.
    fn run(&mut self, space: &Space<'_>, centroids: &Centroids) {
        let dims = space.dims;
        let work: Vec<(usize, &[f64], &mut [u32])> = row_chunks(space.data, dims)
            .into_iter()
            .zip(self.assignments.chunks_mut(CHUNK_ROWS))
            .map(|((first, rows), assigned)| (first, rows, assigned))
            .collect();
        let parts = parallel_map(work, |(first, rows, assigned)| {
            assign_chunk(centroids, space, first, rows, assigned)
        });
        self.counts.fill(0);
        self.sums.fill(0.0);
        self.sse.fill(0.0);
        self.changed = false;
        for part in parts {
            for (a, b) in self.counts.iter_mut().zip(&part.counts) {
                *a += b;
            }
            for (a, b) in self.sums.iter_mut().zip(&part.sums) {
                *a += b;
            }
            for (a, b) in self.sse.iter_mut().zip(&part.sse) {
                *a += b;
            }
            self.changed |= part.changed;
        }
        self.total_sse = self.sse.iter().sum();
    }

    pub(super) fn clusters(&self) -> Vec<ClusterInfo> {
        self.counts
            .iter()
            .zip(&self.sse)
            .map(|(&size, &sse)| ClusterInfo {
                size,
                radius: if size > 0 {
                    (sse / size as f64).sqrt()
                } else {
                    0.0
                },
            })
            .collect()
    }
}

pub(super) struct LloydResult {
    pub(super) centroids: Vec<f64>,
    pub(super) last_pass: Pass,
    pub(super) iterations: Vec<IterationInfo>,
}

pub(super) fn lloyd(
    space: &Space<'_>,
    mut centroids: Vec<f64>,
    k: usize,
    options: &KMeansOptions,
    mut started: Instant,
) -> LloydResult {
    let rows = space.rows() as f64;
    let dims = space.dims;
    let mut pass = Pass::new(space.rows(), k, dims);
    pass.run(space, &Centroids::new(&centroids, dims, space.distance));
    let mut prev_loss = pass.total_sse / rows;
    let mut iterations = Vec::new();
    for iteration in 0..options.max_iterations {
        for (c, centroid) in centroids.chunks_exact_mut(dims).enumerate() {
            let count = pass.counts[c];
            if count == 0 {
                match EMPTY_CLUSTER_POLICY {
                    EmptyClusterPolicy::KeepPrevious => continue,
                }
            }
            let inv = 1.0 / count as f64;
            for (x, s) in centroid
                .iter_mut()
                .zip(&pass.sums[c * dims..(c + 1) * dims])
            {
                *x = s * inv;
            }
        }
        pass.run(space, &Centroids::new(&centroids, dims, space.distance));
        let loss = pass.total_sse / rows;
        let now = Instant::now();
        iterations.push(IterationInfo {
            iteration,
            loss,
            duration_ms: u64::try_from(now.duration_since(started).as_millis()).unwrap_or(u64::MAX),
            clusters: pass.clusters(),
        });
        started = now;
        if options.early_stop && stalled(prev_loss, loss, options.min_rel_progress) {
            break;
        }
        if STOP_AT_FIXED_POINT && !pass.changed {
            break;
        }
        prev_loss = loss;
    }
    LloydResult {
        centroids,
        last_pass: pass,
        iterations,
    }
}

/// Relative improvement below the minimum; a zero loss cannot improve, so it stops too.
fn stalled(prev: f64, cur: f64, min_rel_progress: f64) -> bool {
    if prev <= 0.0 || cur <= 0.0 {
        return true;
    }
    (prev - cur) / prev < min_rel_progress
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::kernels::LANES;
    use crate::kmeans::test_support::{assert_close, blobs, close, custom, num, plain};
    use crate::kmeans::train;

    #[test]
    fn lloyd_losses_follow_the_hand_computation() {
        // 1-D points 0, 1, 2, 10, 11, 12 starting from 0 and 1: the centroids go to (0, 7.2),
        // then (1, 11), which is a fixed point.
        let cols = [num("x", &[0.0, 1.0, 2.0, 10.0, 11.0, 12.0])];
        let model = train(&cols, &plain(custom(&[0, 1], 6))).unwrap();
        let losses: Vec<f64> = model.iterations.iter().map(|i| i.loss).collect();
        assert_eq!(losses.len(), 2);
        assert_close(losses[0], 50.32 / 6.0);
        assert_close(losses[1], 4.0 / 6.0);
        assert_eq!(model.centroids, vec![vec![1.0], vec![11.0]]);
        let ids: Vec<usize> = model.iterations.iter().map(|i| i.iteration).collect();
        assert_eq!(ids, vec![0, 1]);
    }

    #[test]
    fn early_stop_stops_after_the_first_iteration_below_min_rel_progress() {
        // Iteration 0 improves the initial loss 50.5 to 8.3867 (83%): below 0.9, so it stops.
        let cols = [num("x", &[0.0, 1.0, 2.0, 10.0, 11.0, 12.0])];
        let mut options = plain(custom(&[0, 1], 6));
        options.min_rel_progress = 0.9;
        let model = train(&cols, &options).unwrap();
        assert_eq!(model.iterations.len(), 1);
        assert_close(model.centroids[1][0], 7.2);

        options.early_stop = false;
        let model = train(&cols, &options).unwrap();
        assert_eq!(model.iterations.len(), 2);

        options.early_stop = true;
        options.max_iterations = 1;
        options.min_rel_progress = 0.0;
        assert_eq!(train(&cols, &options).unwrap().iterations.len(), 1);
    }

    #[test]
    fn early_stop_on_realistic_data_leaves_every_earlier_iteration_above_the_bar() {
        let cols = blobs(2000, 3, 4, 7);
        let options = KMeansOptions {
            num_clusters: Some(6),
            min_rel_progress: 0.01,
            max_iterations: 50,
            ..KMeansOptions::default()
        };
        let model = train(&cols, &options).unwrap();
        let losses: Vec<f64> = model.iterations.iter().map(|i| i.loss).collect();
        for w in losses.windows(2).take(losses.len().saturating_sub(2)) {
            assert!((w[0] - w[1]) / w[0] >= 0.01, "{losses:?}");
        }
        for w in losses.windows(2) {
            assert!(
                w[1] <= w[0] + 1e-12,
                "Euclidean Lloyd loss increased: {losses:?}"
            );
        }
    }

    #[test]
    fn iterations_report_each_clusters_size_and_rms_radius() {
        // As in `lloyd_losses_follow_the_hand_computation`: iteration 0 leaves centroids 0 and
        // 7.2 with rows {0, 1, 2} and {10, 11, 12}; iteration 1 leaves 1 and 11.
        let cols = [num("x", &[0.0, 1.0, 2.0, 10.0, 11.0, 12.0])];
        let model = train(&cols, &plain(custom(&[0, 1], 6))).unwrap();
        let first = &model.iterations[0].clusters;
        assert_eq!(first.iter().map(|c| c.size).collect::<Vec<_>>(), [3, 3]);
        assert_close(first[0].radius, (5.0f64 / 3.0).sqrt());
        assert_close(first[1].radius, (45.32f64 / 3.0).sqrt());
        let last = &model.iterations[1].clusters;
        for c in last {
            assert_eq!(c.size, 3);
            assert_close(c.radius, (2.0f64 / 3.0).sqrt());
        }
        assert_eq!(
            last.iter().map(|c| c.size).collect::<Vec<_>>(),
            model.cluster_sizes
        );
        assert_eq!(
            last.iter().map(|c| c.radius).collect::<Vec<_>>(),
            model.cluster_radii
        );
    }

    /// Textbook Lloyd, one row at a time, for comparison with the chunked parallel passes.
    fn reference_lloyd(
        data: &[f64],
        dims: usize,
        mut centroids: Vec<f64>,
        iterations: usize,
    ) -> Vec<f64> {
        let k = centroids.len() / dims;
        for _ in 0..iterations {
            let mut sums = vec![0.0; k * dims];
            let mut counts = vec![0usize; k];
            for row in data.chunks_exact(dims) {
                let mut best = (0, f64::INFINITY);
                for (c, centroid) in centroids.chunks_exact(dims).enumerate() {
                    let d: f64 = row
                        .iter()
                        .zip(centroid)
                        .map(|(x, y)| (x - y) * (x - y))
                        .sum();
                    if d < best.1 {
                        best = (c, d);
                    }
                }
                counts[best.0] += 1;
                for (s, x) in sums[best.0 * dims..][..dims].iter_mut().zip(row) {
                    *s += x;
                }
            }
            for c in 0..k {
                if counts[c] > 0 {
                    for j in 0..dims {
                        centroids[c * dims + j] = sums[c * dims + j] / counts[c] as f64;
                    }
                }
            }
        }
        centroids
    }

    #[test]
    fn chunked_parallel_training_matches_textbook_lloyd_and_repeats_exactly() {
        // Several chunks of rows, k above one block of lanes, overlapping clusters.
        let (rows, dims, k) = (3 * CHUNK_ROWS + 123, 5, LANES + 3);
        let cols = blobs(rows, dims, 4, 11);
        let seeds: Vec<usize> = (0..k).map(|i| i * 97).collect();
        let options = KMeansOptions {
            num_clusters: Some(k),
            early_stop: false,
            max_iterations: 6,
            ..plain(custom(&seeds, rows))
        };
        let model = train(&cols, &options).unwrap();
        let data = model.preprocessor.transform(&cols).unwrap();
        let start: Vec<f64> = seeds
            .iter()
            .flat_map(|&i| data[i * dims..][..dims].to_vec())
            .collect();
        let expected = reference_lloyd(&data, dims, start, model.iterations.len());
        for (ours, theirs) in model.centroids.iter().flatten().zip(&expected) {
            assert!(close(*ours, *theirs, 1e-12), "{ours} != {theirs}");
        }
        assert_eq!(model.cluster_sizes.iter().sum::<u64>(), rows as u64);

        let mut again = train(&cols, &options).unwrap();
        let mut first = model;
        for m in [&mut first, &mut again] {
            m.iterations.iter_mut().for_each(|i| i.duration_ms = 0);
        }
        assert_eq!(first, again);
    }
}
