//! Deciding, batch by batch, whether work is worth handing to rayon.

use std::time::Instant;

use rayon::prelude::*;

/// Below this much estimated work a batch runs on the calling thread: rayon's fork/join
/// costs more than it saves on small batches (see docs/PERFORMANCE.md).
const PARALLEL_MIN_NS: f64 = 40_000.0;

/// A running estimate of the cost per item of one kind of batch. Timing never changes
/// results, only where they are computed: outputs are always in index order.
#[derive(Clone, Debug)]
pub(crate) struct Cost {
    ns_per_item: f64,
}

impl Default for Cost {
    fn default() -> Self {
        // Unknown until measured: the first batch is tried in parallel.
        Self { ns_per_item: f64::INFINITY }
    }
}

impl Cost {
    /// `f(0), …, f(n-1)`, in order, on `pool` when the batch is worth it.
    pub(crate) fn map<R: Send>(
        &mut self,
        pool: Option<&rayon::ThreadPool>,
        n: usize,
        f: impl Fn(usize) -> R + Sync + Send,
    ) -> Vec<R> {
        // A vector of units is no allocation.
        self.map_owned(pool, vec![(); n], |i, ()| f(i))
    }

    /// `f(0, items[0]), …`, in order, on `pool` when the batch is worth it: each call owns
    /// its item (a retired genome to breed into, say).
    pub(crate) fn map_owned<T: Send, R: Send>(
        &mut self,
        pool: Option<&rayon::ThreadPool>,
        items: Vec<T>,
        f: impl Fn(usize, T) -> R + Sync + Send,
    ) -> Vec<R> {
        let n = items.len();
        let pool = match pool {
            Some(pool) if n > 1 && self.ns_per_item * n as f64 >= PARALLEL_MIN_NS => pool,
            // Nowhere else to run it: nothing to decide, nothing to time.
            None => return items.into_iter().enumerate().map(|(i, t)| f(i, t)).collect(),
            _ => {
                let start = Instant::now();
                let out: Vec<R> = items.into_iter().enumerate().map(|(i, t)| f(i, t)).collect();
                self.observe(start, n, 1);
                return out;
            }
        };
        let min_len = if self.ns_per_item.is_finite() {
            ((PARALLEL_MIN_NS / 4.0) / self.ns_per_item).ceil().max(1.0) as usize
        } else {
            1
        };
        let start = Instant::now();
        let out: Vec<R> =
            pool.install(|| items.into_par_iter().enumerate().with_min_len(min_len).map(|(i, t)| f(i, t)).collect());
        self.observe(start, n, pool.current_num_threads());
        out
    }

    fn observe(&mut self, start: Instant, n: usize, threads: usize) {
        if n == 0 {
            return;
        }
        let per = start.elapsed().as_nanos() as f64 * threads as f64 / n as f64;
        self.ns_per_item = if self.ns_per_item.is_finite() { 0.7 * self.ns_per_item + 0.3 * per } else { per };
    }
}
