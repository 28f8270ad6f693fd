//! Shards as a distributed run uses them: candidates routed to the owner of their key,
//! queued in whatever order the network delivers them, admitted after the barrier.

use ga_core::problems::OneMax;
use ga_core::{Bits, Candidate, Histogram, Migration, Neighbours, Params, Problem, Selection, Shard, Topology};

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

#[test]
fn plus_keeps_the_best_of_parents_and_children_on_every_shard() {
    let problem = OneMax { bits: 64 };
    let params = Params {
        n_pop: 30,
        selection: Selection::Plus { size: 3, crossover_rate: 0.9, offspring: ga_core::PLUS_OFFSPRING },
        ..problem.params()
    };
    let mut shards: Vec<Shard<&OneMax>> =
        (0..SHARDS).map(|i| Shard::new(&problem, params.clone(), 5, i, SHARDS, None).unwrap()).collect();
    let mut emitted: Vec<Vec<Candidate<Bits>>> = shards.iter_mut().map(|s| s.init()).collect();
    let (mut best, mut olds) = (0.0, vec![Vec::new(); SHARDS as usize]);
    let mut full = false;
    for generation in 0..12 {
        let mut received: Vec<Vec<(u64, f64)>> = vec![Vec::new(); SHARDS as usize];
        for c in emitted.into_iter().flatten() {
            received[owner(&c)].push((c.key.0, problem.fitness(&c.genome)));
            shards[owner(&c)].receive([c]);
        }
        for (i, shard) in shards.iter_mut().enumerate() {
            shard.admit().unwrap();
            let kept: Vec<f64> = shard.members().iter().map(|m| m.fitness).collect();
            let pool = olds[i].len() + received[i].len();
            if generation > 0 {
                // After a (μ+λ) step: the quota, best first, and nothing left out was better.
                assert_eq!(kept.len(), shard.quota().min(pool), "shard {i}, generation {generation}");
                assert!(kept.windows(2).all(|w| w[0] >= w[1]), "best first: {kept:?}");
                let worst_kept = kept.last().copied().unwrap_or(1.0);
                // The pool, each key once (a child may be a parent's twin, refused as seen).
                let pool: std::collections::HashMap<u64, f64> = olds[i].iter().chain(&received[i]).copied().collect();
                let mut everything: Vec<f64> = pool.into_values().collect();
                everything.sort_by(|a, b| b.total_cmp(a));
                assert_eq!(kept[0], everything[0], "the best of the pool stays");
                assert!(everything.len() < kept.len() || everything[kept.len() - 1] <= worst_kept + 1e-12);
            }
        }
        let now = shards.iter().flat_map(|s| s.members()).map(|m| m.fitness).fold(0.0, f64::max);
        assert!(now >= best, "the best is never lost: {best} -> {now}");
        // Never more than n_pop. Fewer for a generation or two after the start: the ring
        // routes the initial genomes unevenly, and a shard below its quota keeps its whole
        // pool (checked above) without making up what another shard cut; once every shard
        // holds its quota, each keeps it, and the population is n_pop from then on.
        let size: usize = shards.iter().map(|s| s.members().len()).sum();
        assert!(size <= 30, "the population is at most n_pop: {size}");
        full |= shards.iter().all(|s| s.members().len() == s.quota());
        assert!(generation < 4 || full, "generation {generation}: every shard reaches its quota");
        assert!(!full || size == 30, "generation {generation}: every shard reached its quota, then {size}");
        best = now;
        let mut hist = Histogram::new(params.hist_granularity);
        shards.iter().for_each(|s| hist.merge(&s.histogram()));
        let cutoff = hist.cutoff_bin(params.selection_rate).unwrap();
        olds = shards.iter().map(|s| s.members().iter().map(|m| (m.key.0, m.fitness)).collect()).collect();
        emitted = shards.iter_mut().map(|s| s.next(generation, cutoff)).collect();
    }
}

#[test]
fn islands_send_their_best_and_keep_the_best_of_residents_and_immigrants() {
    let problem = OneMax { bits: 64 };
    let migration = Migration { every: 4, migrants: 3, topology: Topology::Ring };
    let params = Params { n_pop: 30, migration: Some(migration), ..problem.params() };
    let mut shards: Vec<Shard<&OneMax>> =
        (0..SHARDS).map(|i| Shard::new(&problem, params.clone(), 6, i, SHARDS, None).unwrap()).collect();
    for shard in &mut shards {
        let fresh = shard.init();
        shard.receive(fresh);
        shard.admit().unwrap();
    }
    for epoch in 0..3u32 {
        let generation = epoch * migration.every;
        let mut outgoing = Vec::new();
        for shard in &mut shards {
            let before = shard.admitted();
            let admitted = shard.evolve_alone(generation, migration.every).unwrap();
            assert_eq!(shard.admitted() - before, admitted);
            // An island of 10 breeds a fifth of itself a generation (PLUS_OFFSPRING).
            assert!((4..=4 * 2).contains(&admitted), "four generations of 2 children: {admitted}");
            let sent = shard.emigrants(migration.migrants, generation + migration.every);
            let mut fitness: Vec<f64> = shard.members().iter().map(|m| m.fitness).collect();
            fitness.sort_by(|a, b| b.total_cmp(a));
            let sent_fitness: Vec<f64> = sent.iter().map(|c| problem.fitness(&c.genome)).collect();
            assert_eq!(sent_fitness, fitness[..3], "the three best, best first");
            outgoing.push(sent);
        }
        let mut arriving: Vec<Vec<(u64, f64)>> = vec![Vec::new(); SHARDS as usize];
        for (from, sent) in outgoing.into_iter().enumerate() {
            for to in migration.topology.neighbours(from as u32, SHARDS) {
                arriving[to as usize].extend(sent.iter().map(|c| (c.key.0, problem.fitness(&c.genome))));
                shards[to as usize].receive(sent.clone());
            }
        }
        for (shard, arriving) in shards.iter_mut().zip(arriving) {
            let residents: Vec<(u64, f64)> = shard.members().iter().map(|m| (m.key.0, m.fitness)).collect();
            shard.admit().unwrap();
            let kept: Vec<f64> = shard.members().iter().map(|m| m.fitness).collect();
            assert_eq!(kept.len(), shard.quota(), "immigrants replace the worst");
            let pool: std::collections::HashMap<u64, f64> = residents.into_iter().chain(arriving).collect();
            let mut best: Vec<f64> = pool.into_values().collect();
            best.sort_by(|a, b| b.total_cmp(a));
            assert_eq!(kept, best[..kept.len()], "epoch {epoch}: the best of residents and immigrants");
        }
    }
}

#[test]
fn a_shard_restored_in_the_middle_of_an_island_step_goes_on_as_a_fresh_one() {
    // A recovery aborts a step after the islands' generations, before the immigrants'
    // admission, and restores every surviving shard: nothing of the aborted step may stay.
    let problem = OneMax { bits: 64 };
    let migration = Some(Migration { every: 3, migrants: 2, topology: Topology::Ring });
    let selection = Selection::Tournament { size: 3, elites: 1, crossover_rate: 0.9 };
    let params = Params { n_pop: 30, selection, migration, ..problem.params() };
    let mut survivor = Shard::new(&problem, params.clone(), 8, 1, SHARDS, None).unwrap();
    let fresh = survivor.init();
    survivor.receive(fresh);
    survivor.admit().unwrap();
    let state = survivor.state();
    survivor.evolve_alone(0, 3).unwrap();
    survivor.restore(state.clone()).unwrap();
    let mut replacement = Shard::new(&problem, params, 8, 1, SHARDS, None).unwrap();
    replacement.restore(state).unwrap();
    for shard in [&mut survivor, &mut replacement] {
        shard.evolve_alone(0, 3).unwrap();
        shard.admit().unwrap();
        let children = shard.next(3, 0);
        shard.receive(children);
        shard.admit().unwrap();
    }
    assert_eq!(survivor.state(), replacement.state());
}

/// Steps bred ahead ([`Shard::next_ahead`]), whether taken up or forgotten first, change
/// nothing: every candidate and every shard state is the one plain `next` steps give.
#[test]
fn a_step_bred_ahead_is_the_step_next_would_take() {
    let problem = OneMax { bits: 64 };
    let plus = Selection::Plus { size: 3, crossover_rate: 0.9, offspring: ga_core::PLUS_OFFSPRING };
    for selection in [problem.params().selection, plus] {
        let params = Params { n_pop: 30, selection, ..problem.params() };
        let make = || -> Vec<Shard<&OneMax>> {
            (0..SHARDS).map(|i| Shard::new(&problem, params.clone(), 11, i, SHARDS, None).unwrap()).collect()
        };
        let (mut plain, mut early) = (make(), make());
        let deliver = |shards: &mut Vec<Shard<&OneMax>>, out: Vec<Vec<Candidate<Bits>>>| {
            for c in out.into_iter().flatten() {
                shards[owner(&c)].receive([c]);
            }
            for s in shards.iter_mut() {
                s.admit().unwrap();
            }
        };
        let fresh: Vec<_> = plain.iter_mut().map(|s| s.init()).collect();
        deliver(&mut plain, fresh);
        let fresh: Vec<_> = early.iter_mut().map(|s| s.init()).collect();
        deliver(&mut early, fresh);
        for generation in 0..12 {
            let expected: Vec<_> = plain.iter_mut().map(|s| s.next(generation, 0)).collect();
            let mut got = Vec::new();
            for shard in &mut early {
                // A step bred for a generation that does not come (the run ended, say) is
                // forgotten, emitted keys and all.
                if generation % 3 == 1 {
                    let (stale, _) = shard.next_ahead(generation + 7).expect("a tournament step");
                    shard.discard(stale).unwrap();
                }
                let (ahead, candidates) = shard.next_ahead(generation).expect("a tournament step");
                assert_eq!(ahead.generation(), generation);
                shard.commit(ahead).unwrap();
                got.push(candidates);
            }
            assert_eq!(got, expected, "{selection:?}, generation {generation}");
            deliver(&mut plain, expected);
            deliver(&mut early, got);
            for (a, b) in plain.iter().zip(&early) {
                assert_eq!(a.state(), b.state(), "{selection:?}, generation {generation}");
            }
        }
        // A step bred ahead of a shard that changed since is refused, and changes nothing.
        let shard = &mut early[0];
        let (ahead, candidates) = shard.next_ahead(50).unwrap();
        shard.receive(candidates);
        shard.admit().unwrap();
        let before = shard.state();
        let err = shard.commit(ahead).unwrap_err();
        assert!(err.to_string().contains("bred ahead of a shard that changed since"), "{err}");
        assert_eq!(shard.state(), before);
    }
    // The cutoff step depends on the census before it: it is never bred ahead.
    let params = Params { n_pop: 30, selection: Selection::Cutoff, ..problem.params() };
    let mut shard = Shard::new(&problem, params, 1, 0, 1, None).unwrap();
    let fresh = shard.init();
    shard.receive(fresh);
    shard.admit().unwrap();
    assert!(shard.next_ahead(0).is_none());
}

/// A tournament step keeps its `elites` best members, best first, ties by position: taken
/// out in place (up to four) or by a pass over all (more), the same choice.
#[test]
fn a_step_keeps_its_elites_best_first_however_many() {
    let problem = OneMax { bits: 12 };
    for elites in [1, 3, 4, 5, 8] {
        let selection = Selection::Tournament { size: 3, elites, crossover_rate: 0.9 };
        let params = Params { n_pop: 20, selection, ..problem.params() };
        let mut shard = Shard::new(&problem, params, 5, 0, 1, None).unwrap();
        let fresh = shard.init();
        shard.receive(fresh);
        shard.admit().unwrap();
        let before: Vec<_> = shard.members().iter().map(|m| (m.key, m.fitness)).collect();
        let mut ranked: Vec<usize> = (0..before.len()).collect();
        ranked.sort_by(|&a, &b| before[b].1.total_cmp(&before[a].1).then(a.cmp(&b)));
        let expected: Vec<_> = ranked[..elites].iter().map(|&i| before[i].0).collect();
        let children = shard.next(0, 0);
        let kept: Vec<_> = shard.members().iter().map(|m| m.key).collect();
        assert_eq!(kept, expected, "{elites} elites");
        shard.receive(children);
        shard.admit().unwrap();
        assert_eq!(shard.members().len(), 20, "{elites} elites: the population is whole again");
    }
}
