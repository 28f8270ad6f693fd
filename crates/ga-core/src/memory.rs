//! What a run will need in memory, estimated before anything is allocated, so that a
//! caller can refuse a configuration that cannot fit rather than have the allocator abort
//! the process halfway.

use std::mem::size_of;

use crate::genome::Genome;
use crate::individual::Individual;
use crate::params::Params;
use crate::shard::Candidate;

/// Bytes a key takes in a shard: its [`KeySet`](crate::KeySet) slot with the table's slack
/// (9 to 18 bytes), and 8 in the order kept for checkpoints (see the `Keys and memory`
/// section of docs/ARCHITECTURE.md).
const KEY_BYTES: u64 = 26;

/// Bytes an allocator adds to each heap block, about.
const BLOCK_OVERHEAD: u64 = 16;

/// Copies of the population alive at once at the peak of a step: the members, the
/// candidates bred from them (or the reserve), and the queue being admitted; over workers,
/// plus the encoded batches on their way.
const COPIES_IN_PROCESS: u64 = 3;
const COPIES_DISTRIBUTED: u64 = 4;

/// The memory, in bytes, that a run of `params` needs from its start over `shards` shards, all counted
/// together (on one machine, or divide by the shards for one worker's share), for genomes
/// like `sample` (e.g. one random genome of the problem). An estimate, meant to tell 2 GB
/// from 200 GB, not to budget to the megabyte: measured against peak RSS it was 15–18%
/// high (OneMax-100 at 2 000 000: 703 MB for 598; Rastrigin-1000 at 50 000: 1 185 MB for
/// 1 035).
pub fn estimate_bytes<G: Genome>(params: &Params, sample: &G, shards: u32) -> u64 {
    let mut canonical = Vec::new();
    sample.write_canonical(&mut canonical);
    let genome = canonical.len() as u64 + BLOCK_OVERHEAD;
    let record = size_of::<Individual<G>>().max(size_of::<Candidate<G>>()) as u64;
    let copies = if shards > 1 { COPIES_DISTRIBUTED } else { COPIES_IN_PROCESS };
    let population = (params.n_pop as u64).saturating_mul(genome + record).saturating_mul(copies);
    // The key sets (the emitter's, and over shards the owner's) are sized for the keys a
    // run expects, at most 2^20 per shard at the start (as `Shard::new` sizes them); they
    // grow by KEY_BYTES per evaluation after that, which a run that stops early never
    // needs, so that growth is not refused up front.
    let expected =
        (params.n_pop as u64).saturating_mul(u64::from(params.n_gen).saturating_add(1)).min(params.max_indiv);
    let keys = expected.min(u64::from(shards.max(1)) << 20);
    let sets = if shards > 1 { 2 } else { 1 };
    population.saturating_add(keys.saturating_mul(KEY_BYTES * sets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_grows_with_the_population_the_genome_and_the_budget() {
        let p = Params { n_pop: 1000, n_gen: 10, max_indiv: 1_000_000, ..Params::default() };
        let small = estimate_bytes(&p, &vec![0i64; 5], 1);
        // 1000 genomes of 40 bytes, three copies: some hundreds of kilobytes.
        assert!((100_000..2_000_000).contains(&small), "{small}");
        assert!(estimate_bytes(&p, &vec![0i64; 5000], 1) > 100 * small);
        assert!(estimate_bytes(&Params { n_pop: 100_000_000, ..p.clone() }, &vec![0i64; 5], 1) > 10_000_000_000);
        // A budget the run may never reach is not memory it needs at the start.
        let long = Params { n_gen: u32::MAX, max_indiv: u64::MAX, ..p.clone() };
        assert!(estimate_bytes(&long, &vec![0i64; 5], 1) < 100_000_000);
        assert!(estimate_bytes(&p, &vec![0i64; 5], 4) > small);
        let huge = Params { n_pop: usize::MAX, n_gen: u32::MAX, max_indiv: u64::MAX, ..p };
        assert_eq!(estimate_bytes(&huge, &vec![0i64; 5], 2), u64::MAX, "saturates, never overflows");
    }
}
