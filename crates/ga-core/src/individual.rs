//! A member of the population and what names it: the types that the loop ([`evolve`]),
//! the shards and the engine share. Nothing here depends on them.
//!
//! [`evolve`]: crate::evolve

use std::cell::RefCell;

use crate::error::{Error, Result};
use crate::genome::Genome;
use crate::key::Key;

/// One member of the population.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Individual<G> {
    /// The genome.
    pub genome: G,
    /// The digest of the genome.
    pub key: Key,
    /// Fitness in `[0, 1]`, computed once at admission.
    pub fitness: f64,
    /// The generation whose selection produced it (0 for the initial population).
    pub born: u32,
}

pub(crate) fn check_fitness<G: Genome>(f: f64, genome: &G) -> Result<()> {
    if (0.0..=1.0).contains(&f) { Ok(()) } else { Err(Error::InvalidFitness { value: f, genome: genome.to_json() }) }
}

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The key of a genome: [`Genome::key`], the digest of its canonical bytes.
#[inline]
pub fn key_of<G: Genome>(genome: &G) -> Key {
    genome.key()
}

/// [`Genome::key`] by default: the canonical bytes written into a per-thread buffer.
pub(crate) fn key_by_scratch<G: Genome>(genome: &G) -> Key {
    SCRATCH.with(|s| {
        let mut buf = s.borrow_mut();
        buf.clear();
        genome.write_canonical(&mut buf);
        Key::of_bytes(&buf)
    })
}

/// Orders a final report best first: by fitness as printed (4 decimals), then the latest
/// born (as the original's reverse-sorted lines did), then by key, so that the order is
/// total and the same however the population was split.
pub fn sort_report<G>(report: &mut [Individual<G>]) {
    report.sort_by(|a, b| {
        let printed = |m: &Individual<G>| (m.fitness * 1e4).round() as i64;
        (printed(b), b.born).cmp(&(printed(a), a.born)).then(a.key.cmp(&b.key))
    });
}

/// The indices of the `k` best fitness values, best first, ties by lower index.
pub(crate) fn best_indices(fitness: &[f64], k: usize) -> Vec<usize> {
    let k = k.min(fitness.len());
    if k == 0 {
        return Vec::new();
    }
    if k == 1 {
        // One elite, the usual case: the first of the highest, in one pass.
        // f64::total_cmp's order, as integers: each value keyed once.
        let key = |f: f64| {
            let bits = f.to_bits() as i64;
            bits ^ (((bits >> 63) as u64) >> 1) as i64
        };
        let first = (0, key(fitness[0]));
        let (best, _) = fitness.iter().enumerate().skip(1).fold(first, |(best, top), (i, &f)| {
            let k = key(f);
            if k > top { (i, k) } else { (best, top) }
        });
        return vec![best];
    }
    let rank = |a: &usize, b: &usize| fitness[*b].total_cmp(&fitness[*a]).then(a.cmp(b));
    let mut idx: Vec<usize> = (0..fitness.len()).collect();
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, rank);
        idx.truncate(k);
    }
    idx.sort_unstable_by(rank);
    idx
}

#[cfg(test)]
mod tests {
    use super::best_indices;

    #[test]
    fn best_indices_rank_by_fitness_then_position() {
        let mut rng = crate::Rng::new(4);
        for len in 0..40 {
            // Few distinct values, so ties are common.
            let fitness: Vec<f64> = (0..len).map(|_| rng.index(5) as f64 / 4.0).collect();
            let mut all: Vec<usize> = (0..len).collect();
            all.sort_by(|&a, &b| fitness[b].total_cmp(&fitness[a]).then(a.cmp(&b)));
            for k in 0..=len + 1 {
                assert_eq!(best_indices(&fitness, k), all[..k.min(len)], "{fitness:?}, k = {k}");
            }
        }
    }
}
