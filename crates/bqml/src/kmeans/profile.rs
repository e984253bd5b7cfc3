//! The statistics fitting keeps of a numeric column (mean, sample stddev, min, max, median),
//! in passes that neither copy nor sort the column: it is as long as the training data, and
//! the median is the slow part of fitting.

/// What `ML.FEATURE_INFO` reports of a numeric column, besides its NULL count.
pub(super) struct Profile {
    pub(super) mean: f64,
    pub(super) stddev: f64,
    pub(super) min: f64,
    pub(super) max: f64,
    pub(super) median: f64,
}

/// Independent running sums in a column pass: one sum's chain of dependent additions would
/// hold the pass to one addition per add latency, and the lanes vectorize.
const SUM_LANES: usize = 8;

/// Bits of the order key [`KeyHistogram`] buckets on.
const RADIX_BITS: u32 = 16;

/// The profile of non-empty `values`, or the index and value of the first non-finite one.
pub(super) fn profile(values: &[f64]) -> Result<Profile, (usize, f64)> {
    let mut min = [f64::INFINITY; SUM_LANES];
    let mut max = [f64::NEG_INFINITY; SUM_LANES];
    let mut sum = [0.0; SUM_LANES];
    for_each_lane(values, |l, x| {
        min[l] = min[l].min(x);
        max[l] = max[l].max(x);
        sum[l] += x;
    });
    let min = min.into_iter().fold(f64::INFINITY, f64::min);
    let max = max.into_iter().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = sum.into_iter().sum();
    // f64::min and max skip a NaN, which still poisons the sum.
    if !(min.is_finite() && max.is_finite() && sum.is_finite())
        && let Some(row) = values.iter().position(|x| !x.is_finite())
    {
        return Err((row, values[row]));
    }
    let count = values.len() as f64;
    // A rounded sum/count can miss a constant by an ulp, and the resulting tiny stddev would
    // blow rounding noise up to ±1 after standardization.
    let (mean, stddev) = if min == max {
        (min, 0.0)
    } else {
        let mean = sum / count;
        let mut squares = [0.0; SUM_LANES];
        for_each_lane(values, |l, x| squares[l] += (x - mean) * (x - mean));
        let ss: f64 = squares.into_iter().sum();
        (mean, (ss / (count - 1.0)).sqrt())
    };
    Ok(Profile {
        mean,
        stddev,
        min,
        max,
        median: median(values),
    })
}

/// The median of non-empty `values` by radix selection: one pass counts the values by the
/// leading bits of their order key, a second keeps those in the buckets that hold the middle
/// ranks, and a selection among them finishes, so the column is neither copied nor sorted.
fn median(values: &[f64]) -> f64 {
    let mid = values.len() / 2;
    let ranks = if values.len() % 2 == 1 {
        [mid, mid]
    } else {
        [mid - 1, mid]
    };
    let mut histogram = KeyHistogram::new();
    for &x in values {
        histogram.add(x);
    }
    let (low, below) = histogram.locate(ranks[0]);
    let (high, _) = histogram.locate(ranks[1]);
    // The ranks are adjacent, so no value lies in a bucket between theirs.
    let mut middle = Vec::new();
    for &x in values {
        let key = order_key(x);
        let bucket = KeyHistogram::bucket(key);
        if bucket == low || bucket == high {
            middle.push(key);
        }
    }
    let (_, lower, above) = middle.select_nth_unstable(ranks[0] - below);
    let lower = from_order_key(*lower);
    if ranks[0] == ranks[1] {
        lower
    } else {
        let upper = above.iter().copied().min().map_or(lower, from_order_key);
        (lower + upper) / 2.0
    }
}

/// Calls `visit(lane, value)` for every value, the lane cycling through `0..SUM_LANES`.
#[inline(always)]
fn for_each_lane(values: &[f64], mut visit: impl FnMut(usize, f64)) {
    let mut chunks = values.chunks_exact(SUM_LANES);
    for chunk in &mut chunks {
        for (l, &x) in chunk.iter().enumerate() {
            visit(l, x);
        }
    }
    for (l, &x) in chunks.remainder().iter().enumerate() {
        visit(l, x);
    }
}

/// Counts of values by the leading [`RADIX_BITS`] of their [`order_key`].
struct KeyHistogram {
    counts: Vec<usize>,
}

impl KeyHistogram {
    fn new() -> Self {
        Self {
            counts: vec![0; 1 << RADIX_BITS],
        }
    }

    fn bucket(key: u64) -> usize {
        (key >> (64 - RADIX_BITS)) as usize
    }

    fn add(&mut self, x: f64) {
        self.counts[Self::bucket(order_key(x))] += 1;
    }

    /// The bucket holding 0-based `rank` in key order, and how many values lie below it.
    fn locate(&self, rank: usize) -> (usize, usize) {
        let mut below = 0;
        for (bucket, &n) in self.counts.iter().enumerate() {
            if below + n > rank {
                return (bucket, below);
            }
            below += n;
        }
        unreachable!("rank {rank} of {below} values")
    }
}

/// Maps an f64 to a u64 that orders as [`f64::total_cmp`] orders the floats.
fn order_key(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

fn from_order_key(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    })
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn median_equals_the_middle_of_the_sorted_values() {
        let by_sorting = |values: &[f64]| {
            let mut sorted = values.to_vec();
            sorted.sort_by(f64::total_cmp);
            let mid = sorted.len() / 2;
            if sorted.len() % 2 == 1 {
                sorted[mid]
            } else {
                (sorted[mid - 1] + sorted[mid]) / 2.0
            }
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let cases: Vec<Vec<f64>> = vec![
            vec![5.0],
            vec![2.0, -1.0],
            vec![3.0, 3.0, 3.0, 3.0],
            vec![-0.0, 0.0, -0.0],
            vec![1e300, -1e300, 5e-324, -5e-324, 0.0],
            // Values sharing their leading bits fall in one bucket of the first pass.
            (0..1001)
                .map(|i| 1.0 + f64::from(i) * f64::EPSILON)
                .rev()
                .collect(),
            (0..10_000).map(|_| rng.random_range(-1e6..1e6)).collect(),
            (0..9_999)
                .map(|_| f64::from(rng.random_range(0..7_u8)))
                .collect(),
        ];
        for values in cases {
            assert_eq!(
                median(&values).to_bits(),
                by_sorting(&values).to_bits(),
                "{} values",
                values.len()
            );
        }
    }
}
