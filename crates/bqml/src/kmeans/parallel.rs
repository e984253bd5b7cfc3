//! Spreading work over every core without the result depending on how many there are: passes
//! over the rows split it into fixed chunks, and results always come back in item order.

use std::num::NonZeroUsize;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread;

/// Rows per unit of parallel work. Each chunk sums its own rows and the chunks' sums are added
/// in chunk order, so a model is the same bit for bit whatever the number of threads.
pub(super) const CHUNK_ROWS: usize = 8192;

/// Threads the passes over the rows use: the machine's available parallelism.
fn worker_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| thread::available_parallelism().map_or(1, NonZeroUsize::get))
}

/// `items.map(work)` on up to [`worker_threads`] threads (the caller's included), results in
/// item order. Threads take the next item as they finish one, so a core slowed by other load
/// does less of the work.
pub(super) fn parallel_map<I: Send, R: Send>(
    items: Vec<I>,
    work: impl Fn(I) -> R + Sync,
) -> Vec<R> {
    let threads = worker_threads().min(items.len());
    if threads <= 1 {
        return items.into_iter().map(work).collect();
    }
    let queue = Mutex::new(items.into_iter().enumerate());
    let drain = || {
        let mut done = Vec::new();
        loop {
            let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
            match next {
                Some((i, item)) => done.push((i, work(item))),
                None => return done,
            }
        }
    };
    let mut results = thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(drain)).collect();
        let mut results = drain();
        for helper in helpers {
            match helper.join() {
                Ok(done) => results.extend(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    });
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// The rows of `data` in [`CHUNK_ROWS`] chunks, each with the index of its first row.
pub(super) fn row_chunks(data: &[f64], dims: usize) -> Vec<(usize, &[f64])> {
    data.chunks(CHUNK_ROWS * dims)
        .enumerate()
        .map(|(c, rows)| (c * CHUNK_ROWS, rows))
        .collect()
}
