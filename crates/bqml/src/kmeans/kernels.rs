//! The distance arithmetic the passes over the rows spend their time in: distances, centroids
//! laid out for vectorized blocks, and the scan behind the final statistics and evaluation.
//! Kept together because training, those statistics and the SQL scoring agree bit for bit only
//! while every path sums its terms in the same order.

use super::options::{COSINE_ZERO_VECTOR_DISTANCE, DistanceType, UNDEFINED_METRIC};
use super::parallel::{parallel_map, row_chunks};

/// Defines a function whose body runs compiled for AVX2 and FMA when the processor has them
/// (checked at run time), else for the baseline instruction set. Only the instructions differ:
/// each vector lane performs the same IEEE operations in the same order (Rust never fuses a
/// multiply and an add on its own, and an explicit `mul_add` rounds once on both paths, in
/// software where the processor lacks FMA), so both paths give bit-identical results.
macro_rules! widest_vectors {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn portable($($arg: $ty),*) -> $ret $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) -> $ret {
                    portable($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the processor supports AVX2 and FMA, as just checked.
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}
pub(super) use widest_vectors;

/// The training matrix plus what the distance needs precomputed (row norms for cosine).
pub(super) struct Space<'a> {
    pub(super) data: &'a [f64],
    pub(super) dims: usize,
    pub(super) distance: DistanceType,
    norms: Vec<f64>,
}

impl<'a> Space<'a> {
    pub(super) fn new(data: &'a [f64], dims: usize, distance: DistanceType) -> Self {
        let norms = match distance {
            DistanceType::Euclidean => Vec::new(),
            DistanceType::Cosine => data.chunks_exact(dims).map(norm).collect(),
        };
        Self {
            data,
            dims,
            distance,
            norms,
        }
    }

    pub(super) fn rows(&self) -> usize {
        self.data.len() / self.dims
    }

    pub(super) fn row(&self, i: usize) -> &'a [f64] {
        &self.data[i * self.dims..(i + 1) * self.dims]
    }

    /// Norms are only needed (and only computed) for cosine.
    pub(super) fn norm(&self, i: usize) -> f64 {
        self.norms.get(i).copied().unwrap_or(0.0)
    }
}

/// Squared distance; for cosine, `na`/`nb` are the vectors' norms (ignored for Euclidean).
#[inline]
pub(super) fn sq_distance(distance: DistanceType, a: &[f64], na: f64, b: &[f64], nb: f64) -> f64 {
    match distance {
        DistanceType::Euclidean => sq_euclidean(a, b),
        DistanceType::Cosine => sq_cosine(dot(a, b), na, nb),
    }
}

/// The distance between two points of the preprocessed space under `distance`, with the same
/// zero-vector rules as training (for metrics computed outside a training pass).
pub fn point_distance(distance: DistanceType, a: &[f64], b: &[f64]) -> f64 {
    sq_distance(distance, a, norm(a), b, norm(b)).sqrt()
}

/// The squared cosine distance from the dot product and the two norms.
#[inline]
fn sq_cosine(dot: f64, na: f64, nb: f64) -> f64 {
    if na == 0.0 || nb == 0.0 {
        if na == nb {
            0.0
        } else {
            COSINE_ZERO_VECTOR_DISTANCE * COSINE_ZERO_VECTOR_DISTANCE
        }
    } else {
        (1.0 - dot / (na * nb)).max(0.0)
    }
}

// Sums run in dimension order everywhere (here, in the training kernel's lanes and in the SQL
// scoring's `POW(x0 − c0, 2) + POW(x1 − c1, 2) + …`), so all three agree bit for bit.
#[inline]
fn sq_euclidean(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(0.0, |acc, (x, y)| {
        let t = x - y;
        acc + t * t
    })
}

#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(0.0, |acc, (x, y)| acc + x * y)
}

/// The `ML.DETECT_ANOMALIES` rule shared by training and scoring: the 0-based cluster
/// minimizing distance / radius, and that value. `clusters` yields (centroid, its norm, radius).
pub(super) fn argmin_normalized<'c>(
    distance: DistanceType,
    row: &[f64],
    row_norm: f64,
    clusters: impl Iterator<Item = (&'c [f64], f64, f64)>,
) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (c, (centroid, centroid_norm, radius)) in clusters.enumerate() {
        let d = sq_distance(distance, row, row_norm, centroid, centroid_norm).sqrt() / radius;
        if d < best.1 {
            best = (c, d);
        }
    }
    best
}

pub(super) fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// Centroids per block of the distance kernel: 8 f64 fill one 512-bit or two 256-bit registers.
pub(super) const LANES: usize = 8;

/// Centroids laid out for the passes over the rows: transposed in blocks of [`LANES`], so a
/// row's distances to a whole block come from one loop over the dimensions whose body is the
/// same operation on every lane, which the compiler vectorizes. Each lane still sums its terms
/// in dimension order, so the distances equal [`sq_distance`]'s exactly.
pub(super) struct Centroids {
    pub(super) k: usize,
    dims: usize,
    pub(super) distance: DistanceType,
    /// `coords[b * dims + j][l]` is coordinate j of centroid `b * LANES + l` (0 past k).
    coords: Vec<[f64; LANES]>,
    /// Norms by block and lane, for cosine (0 past k).
    norms: Vec<[f64; LANES]>,
}

impl Centroids {
    /// `flat` is `k × dims`, row-major.
    pub(super) fn new(flat: &[f64], dims: usize, distance: DistanceType) -> Self {
        let k = flat.len() / dims;
        let blocks = k.div_ceil(LANES);
        let mut coords = vec![[0.0; LANES]; blocks * dims];
        let mut norms = vec![[0.0; LANES]; blocks];
        for (c, centroid) in flat.chunks_exact(dims).enumerate() {
            let (b, l) = (c / LANES, c % LANES);
            for (j, &x) in centroid.iter().enumerate() {
                coords[b * dims + j][l] = x;
            }
            norms[b][l] = norm(centroid);
        }
        Self {
            k,
            dims,
            distance,
            coords,
            norms,
        }
    }

    /// The squared distances of `row` to each block of centroids: `visit(index of the block's
    /// first centroid, centroids in the block, distances by lane)`.
    #[inline(always)]
    fn each_block(
        &self,
        row: &[f64],
        row_norm: f64,
        mut visit: impl FnMut(usize, usize, &[f64; LANES]),
    ) {
        for (b, block) in self.coords.chunks_exact(self.dims).enumerate() {
            let mut acc = [0.0; LANES];
            match self.distance {
                DistanceType::Euclidean => {
                    for (&x, c) in row.iter().zip(block) {
                        for l in 0..LANES {
                            let t = x - c[l];
                            acc[l] += t * t;
                        }
                    }
                }
                DistanceType::Cosine => {
                    for (&x, c) in row.iter().zip(block) {
                        for l in 0..LANES {
                            acc[l] += x * c[l];
                        }
                    }
                    acc = std::array::from_fn(|l| sq_cosine(acc[l], row_norm, self.norms[b][l]));
                }
            }
            let first = b * LANES;
            visit(first, (self.k - first).min(LANES), &acc);
        }
    }

    /// The squared Euclidean distances of `R` rows to each block of centroids: `visit(index of
    /// the block's first centroid, centroids in the block, distances by row and lane)`, each
    /// lane's terms `(x − c)²` summed in dimension order by `add(term root, sum)`. The rows'
    /// sums are independent dependency chains that the processor overlaps, where one row's
    /// chain keeps the vector units waiting on latency; a row's sums do not depend on the rows
    /// beside it.
    #[inline(always)]
    fn euclidean_blocks<const R: usize>(
        &self,
        rows: [&[f64]; R],
        add: impl Fn(f64, f64) -> f64,
        mut visit: impl FnMut(usize, usize, &[[f64; LANES]; R]),
    ) {
        let dims = self.dims;
        let rows = rows.map(|row| &row[..dims]);
        for (blk, block) in self.coords.chunks_exact(dims).enumerate() {
            let mut acc = [[0.0; LANES]; R];
            for (j, c) in block.iter().enumerate() {
                for (acc, row) in acc.iter_mut().zip(rows) {
                    let x = row[j];
                    for l in 0..LANES {
                        acc[l] = add(x - c[l], acc[l]);
                    }
                }
            }
            let first = blk * LANES;
            visit(first, (self.k - first).min(LANES), &acc);
        }
    }

    /// The nearest centroid of each of `R` rows and the squared Euclidean distance to it, as
    /// Lloyd's passes compute them: each term is added with a fused multiply-add (one rounding
    /// instead of two, and one instruction fewer). The assignment can differ from
    /// [`Self::nearest`]'s only where two centroids are within an ulp of a tie; the final
    /// scan, whose distances must equal the SQL scoring's, uses [`Self::scan_euclidean`].
    #[inline(always)]
    pub(super) fn nearest_euclidean_fused<const R: usize>(
        &self,
        rows: [&[f64]; R],
    ) -> [(usize, f64); R] {
        let mut best = [(0, f64::INFINITY); R];
        self.euclidean_blocks(
            rows,
            |t, sum| t.mul_add(t, sum),
            |first, valid, sq| {
                for (best, sq) in best.iter_mut().zip(sq) {
                    let (lane, d) = first_min(&sq[..valid]);
                    if d < best.1 {
                        *best = (first + lane, d);
                    }
                }
            },
        );
        best
    }

    /// [`RowNearest`] of each of `R` rows, for Euclidean distances: each lane's sum is the one
    /// [`Self::each_block`] computes, so the scan's distances still equal the SQL scoring's.
    #[inline(always)]
    fn scan_euclidean<const R: usize>(
        &self,
        rows: [&[f64]; R],
        radii: Option<&[[f64; LANES]]>,
    ) -> [RowNearest; R] {
        let mut nearest = std::array::from_fn(|_| RowNearest::new());
        self.euclidean_blocks(
            rows,
            |t, sum| sum + t * t,
            |first, valid, sq| {
                for (nearest, sq) in nearest.iter_mut().zip(sq) {
                    nearest.fold_block(first, valid, sq, radii);
                }
            },
        );
        nearest
    }

    /// The nearest centroid and the squared distance to it; ties go to the lowest index.
    #[inline(always)]
    pub(super) fn nearest(&self, row: &[f64], row_norm: f64) -> (usize, f64) {
        let mut best = (0, f64::INFINITY);
        self.each_block(row, row_norm, |first, valid, sq| {
            let (lane, d) = first_min(&sq[..valid]);
            if d < best.1 {
                best = (first + lane, d);
            }
        });
        best
    }
}

/// The first lane holding the smallest value, by a scan with strict `<`.
#[inline(always)]
fn first_min(sq: &[f64]) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (l, &d) in sq.iter().enumerate() {
        if d < best.1 {
            best = (l, d);
        }
    }
    best
}

/// Per-cluster totals of one pass over rows, each row in the cluster of its nearest centroid.
pub(super) struct Scan {
    pub(super) counts: Vec<u64>,
    sse: Vec<f64>,
    /// Sums of the (not squared) distances, for Davies–Bouldin.
    pub(super) distance_sums: Vec<f64>,
    /// Each row's normalized distance, in row order, when the pass was given radii.
    pub(super) normalized: Vec<f64>,
}

impl Scan {
    fn new(k: usize) -> Self {
        Self {
            counts: vec![0; k],
            sse: vec![0.0; k],
            distance_sums: vec![0.0; k],
            normalized: Vec::new(),
        }
    }

    pub(super) fn mean_squared_distance(&self) -> f64 {
        let rows: u64 = self.counts.iter().sum();
        if rows == 0 {
            return UNDEFINED_METRIC;
        }
        self.sse.iter().sum::<f64>() / rows as f64
    }
}

/// One parallel pass over `space` against fixed centroids; with `radii`, also every row's
/// normalized distance (the `ML.DETECT_ANOMALIES` rule, as [`argmin_normalized`] applies it).
pub(super) fn scan(space: &Space<'_>, centroids: &Centroids, radii: Option<&[f64]>) -> Scan {
    let k = centroids.k;
    // Radii by block and lane, like the centroids; 1 past k keeps the unused lanes finite.
    let radii_lanes: Option<Vec<[f64; LANES]>> = radii.map(|radii| {
        radii
            .chunks(LANES)
            .map(|r| std::array::from_fn(|l| r.get(l).copied().unwrap_or(1.0)))
            .collect()
    });
    let parts = parallel_map(row_chunks(space.data, space.dims), |(first, rows)| {
        scan_chunk(centroids, space, radii_lanes.as_deref(), first, rows)
    });
    let mut total = Scan::new(k);
    total
        .normalized
        .reserve_exact(if radii.is_some() { space.rows() } else { 0 });
    for part in parts {
        for c in 0..k {
            total.counts[c] += part.counts[c];
            total.sse[c] += part.sse[c];
            total.distance_sums[c] += part.distance_sums[c];
        }
        total.normalized.extend_from_slice(&part.normalized);
    }
    total
}

widest_vectors! {
    /// One chunk of a [`scan`]: rows `first..` of the matrix.
    fn scan_chunk(
        centroids: &Centroids,
        space: &Space<'_>,
        radii: Option<&[[f64; LANES]]>,
        first: usize,
        rows: &[f64],
    ) -> Scan {
        let dims = space.dims;
        let mut part = Scan::new(centroids.k);
        let mut record = |nearest: RowNearest| {
            let (c, sq) = nearest.plain;
            part.counts[c] += 1;
            part.sse[c] += sq;
            part.distance_sums[c] += sq.sqrt();
            if radii.is_some() {
                part.normalized.push(nearest.normalized);
            }
        };
        if centroids.distance == DistanceType::Euclidean {
            // Rows four at a time, recorded in row order just as one at a time.
            let mut quads = rows.chunks_exact(SCAN_ROWS * dims);
            for quad in &mut quads {
                prefetch_ahead(quad);
                let rows: [&[f64]; SCAN_ROWS] =
                    std::array::from_fn(|q| &quad[q * dims..(q + 1) * dims]);
                centroids.scan_euclidean(rows, radii).into_iter().for_each(&mut record);
            }
            for row in quads.remainder().chunks_exact(dims) {
                let [nearest] = centroids.scan_euclidean([row], radii);
                record(nearest);
            }
        } else {
            for (row, i) in rows.chunks_exact(dims).zip(first..) {
                let mut nearest = RowNearest::new();
                centroids.each_block(row, space.norm(i), |first, valid, sq| {
                    nearest.fold_block(first, valid, sq, radii);
                });
                record(nearest);
            }
        }
        part
    }
}

/// How far ahead of the rows being computed a pass asks for the matrix to be loaded. With the
/// hardware prefetcher alone, a core computing four rows at a time waited on memory for about a
/// fifth of each pass (measured single-threaded on 1M × 12: 21 ms a pass, 17 ms with this).
const PREFETCH_AHEAD_BYTES: usize = 1024;

/// Asks the processor to start loading the matrix [`PREFETCH_AHEAD_BYTES`] past `rows` (the
/// rows about to be computed, a slice of the matrix), as many cache lines as `rows` spans.
#[inline(always)]
pub(super) fn prefetch_ahead(rows: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        const CACHE_LINE: usize = 64;
        let ahead = rows
            .as_ptr()
            .cast::<i8>()
            .wrapping_add(PREFETCH_AHEAD_BYTES);
        for line in (0..std::mem::size_of_val(rows)).step_by(CACHE_LINE) {
            // SAFETY: a prefetch is only a hint: it reads nothing into the program, writes
            // nothing, and never faults, even for an address past the end of the matrix.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = rows;
}

/// Rows a [`scan`] takes at once for Euclidean distances.
const SCAN_ROWS: usize = 4;

/// What a [`scan`] finds for one row, block of centroids by block.
struct RowNearest {
    /// The nearest centroid and the squared distance to it.
    plain: (usize, f64),
    /// The smallest normalized distance, when the scan has radii.
    normalized: f64,
}

impl RowNearest {
    fn new() -> Self {
        Self {
            plain: (0, f64::INFINITY),
            normalized: f64::INFINITY,
        }
    }

    /// Takes in the squared distances `sq` to the `valid` centroids of the block that starts
    /// at centroid `first`.
    #[inline(always)]
    fn fold_block(
        &mut self,
        first: usize,
        valid: usize,
        sq: &[f64; LANES],
        radii: Option<&[[f64; LANES]]>,
    ) {
        let (lane, d) = first_min(&sq[..valid]);
        if d < self.plain.1 {
            self.plain = (first + lane, d);
        }
        if let Some(radii) = radii {
            let r = &radii[first / LANES];
            let nd: [f64; LANES] = std::array::from_fn(|l| sq[l].sqrt() / r[l]);
            let (_, d) = first_min(&nd[..valid]);
            if d < self.normalized {
                self.normalized = d;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn lane_kernel_distances_equal_the_scalar_distance_exactly() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let dims = 7;
        let mut random =
            |n: usize| -> Vec<f64> { (0..n).map(|_| rng.random::<f64>() * 20.0 - 10.0).collect() };
        let flat = random((LANES + 2) * dims);
        let rows = random(50 * dims);
        for distance in [DistanceType::Euclidean, DistanceType::Cosine] {
            let centroids = Centroids::new(&flat, dims, distance);
            for row in rows.chunks_exact(dims) {
                let mut seen = 0;
                centroids.each_block(row, norm(row), |first, valid, sq| {
                    for (l, &d) in sq[..valid].iter().enumerate() {
                        let c = first + l;
                        let centroid = &flat[c * dims..][..dims];
                        let expected =
                            sq_distance(distance, row, norm(row), centroid, norm(centroid));
                        assert_eq!(d.to_bits(), expected.to_bits(), "{distance} centroid {c}");
                    }
                    seen += valid;
                });
                assert_eq!(seen, LANES + 2);
            }
            if distance == DistanceType::Euclidean {
                let radii: Vec<[f64; LANES]> = (0..2)
                    .map(|_| std::array::from_fn(|_| rng.random::<f64>() + 0.5))
                    .collect();
                for quad in rows.chunks_exact(4 * dims) {
                    let quad: [&[f64]; 4] = std::array::from_fn(|q| &quad[q * dims..][..dims]);
                    let scanned = centroids.scan_euclidean(quad, Some(&radii));
                    for (row, scanned) in quad.into_iter().zip(scanned) {
                        let mut alone = RowNearest::new();
                        centroids.each_block(row, 0.0, |first, valid, sq| {
                            alone.fold_block(first, valid, sq, Some(&radii));
                        });
                        assert_eq!(scanned.plain.0, alone.plain.0);
                        assert_eq!(scanned.plain.1.to_bits(), alone.plain.1.to_bits());
                        assert_eq!(scanned.normalized.to_bits(), alone.normalized.to_bits());
                    }
                    let together = centroids.nearest_euclidean_fused(quad);
                    for (row, fused) in quad.into_iter().zip(together) {
                        assert_eq!(centroids.nearest_euclidean_fused([row]), [fused]);
                        let (nearest, sq) = centroids.nearest(row, 0.0);
                        assert_eq!(fused.0, nearest);
                        assert!((fused.1 - sq).abs() <= 1e-13 * sq, "{} vs {sq}", fused.1);
                    }
                }
            }
        }
    }
}
