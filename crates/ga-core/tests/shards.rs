//! Shards as a distributed run uses them: candidates routed to the owner of their key,
//! queued in whatever order the network delivers them, admitted after the barrier.

use ga_core::problems::OneMax;
use ga_core::{Bits, Candidate, Histogram, Params, Problem, Shard};

const SHARDS: u32 = 3;

/// Batches addressed to shards, as (owner, candidates).
type Batches = Vec<(usize, Vec<Candidate<Bits>>)>;

fn owner(c: &Candidate<Bits>) -> usize {
    (c.key.0 % u64::from(SHARDS)) as usize
}

/// Runs `gens` generations over three shards, delivering each step's batches in the
/// order `order` gives; returns every member's (key, fitness, born), sorted.
fn run(order: &dyn Fn(Batches) -> Batches) -> Vec<(u64, u64, u32)> {
    let problem = OneMax { bits: 64 };
    let params = Params { n_pop: 30, ..problem.params() };
    let mut shards: Vec<Shard<&OneMax>> =
        (0..SHARDS).map(|i| Shard::new(&problem, params.clone(), 9, i, SHARDS, None).unwrap()).collect();
    let route = |shards: &mut Vec<Shard<&OneMax>>, out: Vec<Vec<Candidate<Bits>>>| {
        let mut batches = Vec::new();
        for emitted in out {
            let mut per_owner: Vec<Vec<Candidate<Bits>>> = vec![Vec::new(); SHARDS as usize];
            for c in emitted {
                per_owner[owner(&c)].push(c);
            }
            batches.extend(per_owner.into_iter().enumerate());
        }
        for (to, batch) in order(batches) {
            shards[to].receive(batch);
        }
        shards.iter_mut().map(|s| s.admit().unwrap()).sum::<u64>()
    };
    let out: Vec<_> = shards.iter_mut().map(|s| s.init()).collect();
    assert_eq!(route(&mut shards, out), 30, "every fresh genome is new");
    for generation in 0..15 {
        let mut hist = Histogram::new(params.hist_granularity);
        for s in &shards {
            hist.merge(&s.histogram());
        }
        let cutoff = hist.cutoff_bin(params.selection_rate).unwrap();
        let out: Vec<_> = shards.iter_mut().map(|s| s.next(generation, cutoff)).collect();
        route(&mut shards, out);
    }
    for (i, s) in shards.iter().enumerate() {
        for m in s.members() {
            assert!(m.born == 0 || owner_of_key(m.key.0) == i, "a member sits on the shard that owns it");
        }
    }
    let mut all: Vec<(u64, u64, u32)> =
        shards.iter().flat_map(|s| s.members().iter().map(|m| (m.key.0, m.fitness.to_bits(), m.born))).collect();
    all.sort_unstable();
    all
}

fn owner_of_key(k: u64) -> usize {
    (k % u64::from(SHARDS)) as usize
}

#[test]
fn delivery_order_does_not_change_the_run() {
    let forward = run(&|b| b);
    let reversed = run(&|mut b| {
        b.reverse();
        b
    });
    assert_eq!(forward, reversed);
    let keys: std::collections::HashSet<u64> = forward.iter().map(|m| m.0).collect();
    assert_eq!(keys.len(), forward.len(), "no key is held twice");
    assert!(forward.len() >= 25, "the population stays near n_pop: {}", forward.len());
}

#[test]
fn quotas_split_the_population() {
    let p = OneMax::default();
    let params = Params { n_pop: 23, ..Params::default() };
    let quotas: Vec<usize> = (0..3).map(|i| Shard::new(&p, params.clone(), 0, i, 3, None).unwrap().quota()).collect();
    assert_eq!(quotas, [8, 8, 7]);
    assert!(Shard::new(&p, params, 0, 3, 3, None).is_err());
}

#[test]
fn a_shard_count_above_the_population_is_refused() {
    let problem = OneMax { bits: 8 };
    let params = Params { n_pop: 4, ..problem.params() };
    assert!(Shard::new(&problem, params.clone(), 1, 3, 4, None).is_ok());
    let e = Shard::new(&problem, params, 1, 0, 5, None).err().expect("refused");
    assert!(e.to_string().starts_with("invalid workers: 5 (expected at most the population"), "{e}");
}

#[test]
fn a_state_brought_up_to_date_by_deltas_is_the_shards_state() {
    let problem = OneMax { bits: 64 };
    let params = Params { n_pop: 30, ..problem.params() };
    let mut shard = Shard::new(&problem, params, 4, 0, 1, None).unwrap();
    let fresh = shard.init();
    shard.receive(fresh);
    shard.admit().unwrap();
    let mut book = shard.state();
    for generation in 0..6 {
        let children = shard.next(generation, 0);
        shard.receive(children);
        shard.admit().unwrap();
        if generation % 2 == 1 {
            let delta = shard.delta(book.seen.len() as u64, book.emitted.len() as u64);
            assert!(delta.emitted.len() < shard.state().emitted.len(), "a delta carries only the new keys");
            book.apply(delta).unwrap();
            assert_eq!(book, shard.state(), "generation {generation}");
        }
    }
    // A delta that does not follow on is refused, and changes nothing.
    let stale = shard.delta(0, 0);
    let before = book.clone();
    let err = book.apply(stale).unwrap_err();
    assert!(err.to_string().contains("a delta from 0 seen and 0 emitted keys"), "{err}");
    assert_eq!(book, before);
}
