//! The engine's contract: reproducibility, at-most-once admission, errors, and that each
//! built-in problem reaches its optimum or a stated quality in a stated budget.

use ga_core::problems::{Knapsack, OneMax, Rastrigin, Sum231, Tsp};
use ga_core::{Engine, Error, GenerationStats, Migration, Params, Problem, Rng, Selection, StopReason, Topology};

/// Every generation's statistics and the final report, as one string.
fn trace<P: Problem>(engine: &Engine<P>) -> String {
    let mut lines = Vec::new();
    let outcome = engine.run(&mut |s: &GenerationStats| lines.push(format!("{s:?}"))).expect("run");
    for m in &outcome.report {
        lines.push(format!("{} {} {} {}", m.fitness, m.born, m.key, ga_core::Genome::to_json(&m.genome)));
    }
    lines.push(format!("{:?} {} {}", outcome.stop, outcome.evaluations, outcome.duplicates));
    lines.join("\n")
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

#[test]
fn a_seed_gives_the_same_run_on_one_thread_and_on_many() {
    let params = |p: &dyn Fn() -> Params| p();
    let one = trace(&Engine::new(Sum231::default()).seed(11).threads(1).unwrap());
    let four = trace(&Engine::new(Sum231::default()).seed(11).threads(4).unwrap());
    assert_eq!(one, four);
    let om = OneMax { bits: 200 };
    let tournament = params(&|| Params { max_indiv: 20_000, ..om.params() });
    let one = trace(&Engine::new(&om).params(tournament.clone()).seed(3).threads(1).unwrap());
    let two = trace(&Engine::new(&om).params(tournament).seed(3).threads(2).unwrap());
    assert_eq!(one, two);
    let other_seed = trace(&Engine::new(Sum231::default()).seed(12).threads(1).unwrap());
    assert_ne!(trace(&Engine::new(Sum231::default()).seed(11)), other_seed);
}

#[test]
fn a_key_is_admitted_and_evaluated_at_most_once() {
    use std::collections::HashSet;
    use std::sync::Mutex;
    // A problem whose fitness records every genome it is asked to score.
    struct Recording(Sum231, Mutex<Vec<Vec<i64>>>);
    impl Problem for Recording {
        type Genome = Vec<i64>;
        fn random_genome(&self, rng: &mut Rng) -> Vec<i64> {
            self.0.random_genome(rng)
        }
        fn mutate(&self, g: &mut Vec<i64>, rng: &mut Rng) {
            self.0.mutate(g, rng)
        }
        fn breed(&self, a: &Vec<i64>, b: &Vec<i64>, rng: &mut Rng) -> Vec<i64> {
            self.0.breed(a, b, rng)
        }
        fn fitness(&self, g: &Vec<i64>) -> f64 {
            self.1.lock().unwrap().push(g.clone());
            self.0.fitness(g)
        }
    }
    // A tiny search space (3 genes in 0..=4: 35 sorted multisets) forces many duplicates.
    let p = Recording(Sum231 { length: 3, min: 0, max: 4, target: 12 }, Mutex::new(Vec::new()));
    let params = Params { n_gen: 50, max_indiv: 10_000, term_limit: 0.0, ..Params::default() };
    let outcome = Engine::new(&p).params(params).seed(5).threads(2).unwrap().run(&mut |_: &_| {}).unwrap();
    let scored = p.1.lock().unwrap();
    let distinct: HashSet<&Vec<i64>> = scored.iter().collect();
    assert_eq!(distinct.len(), scored.len(), "a genome was evaluated twice");
    assert_eq!(outcome.evaluations, scored.len() as u64);
    assert!(scored.len() <= 35);
    assert!(outcome.duplicates > 0);
    assert_eq!(outcome.stop, StopReason::Stalled);
}

#[test]
fn the_cutoff_step_keeps_the_population_at_n_pop_and_report_above_cutoff() {
    let mut sizes = Vec::new();
    let mut last_cutoff = 0.0;
    let outcome = Engine::new(Sum231::default())
        .seed(1)
        .run(&mut |s: &GenerationStats| {
            sizes.push(s.size);
            last_cutoff = s.cutoff;
        })
        .unwrap();
    assert!(sizes.iter().all(|&s| s == 23), "{sizes:?}");
    assert!(!outcome.report.is_empty());
    assert!(outcome.report.iter().all(|m| (m.fitness * 1000.0).round() / 1000.0 >= last_cutoff));
    assert!(outcome.report.windows(2).all(|w| w[0].fitness >= w[1].fitness - 5e-5));
}

#[test]
fn an_observer_that_cancels_ends_the_run_after_that_generation_with_its_report() {
    struct StopAt(u32, u32);
    impl ga_core::Observer for StopAt {
        fn on_generation(&mut self, stats: &GenerationStats) {
            self.1 = stats.generation;
        }
        fn cancelled(&self) -> bool {
            self.1 >= self.0
        }
    }
    let params = Params { n_gen: 1000, max_indiv: u64::MAX, term_limit: 0.0, ..Params::default() };
    let mut observer = StopAt(3, 0);
    let o = Engine::new(OneMax { bits: 400 }).params(params).seed(1).run(&mut observer).unwrap();
    assert_eq!(o.stop, StopReason::Cancelled);
    assert_eq!((o.last.generation, observer.1), (3, 3), "no generation after the one that cancelled");
    assert!(!o.report.is_empty(), "the report of the last generation");
}

#[test]
fn a_fitness_outside_the_unit_interval_is_an_error_naming_the_genome() {
    struct Broken;
    impl Problem for Broken {
        type Genome = Vec<i64>;
        fn random_genome(&self, rng: &mut Rng) -> Vec<i64> {
            vec![rng.range_i64(0, 9)]
        }
        fn mutate(&self, _: &mut Vec<i64>, _: &mut Rng) {}
        fn breed(&self, a: &Vec<i64>, _: &Vec<i64>, _: &mut Rng) -> Vec<i64> {
            a.clone()
        }
        fn fitness(&self, g: &Vec<i64>) -> f64 {
            if g[0] == 7 { f64::NAN } else { 0.5 }
        }
    }
    let err = Engine::new(Broken).run(&mut |_: &_| {}).unwrap_err();
    match &err {
        Error::InvalidFitness { genome, .. } => assert_eq!(genome, "[7]"),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("NaN"));
}

#[test]
fn invalid_parameters_are_refused_before_the_run() {
    let err = Engine::new(Sum231::default())
        .params(Params { selection_rate: 1.5, ..Params::default() })
        .run(&mut |_: &_| {})
        .unwrap_err();
    assert!(err.to_string().contains("selection-rate"));
    assert!(Engine::new(Sum231::default()).threads(1_000_000).is_err());
}

// --- Each built-in problem reaches its optimum or a stated quality in a stated budget. ---

#[test]
fn sum231_finds_a_perfect_individual_in_most_seeds_with_the_original_defaults() {
    let perfect = (0..100u64)
        .filter(|&s| {
            let o = Engine::new(Sum231::default()).seed(s).run(&mut |_: &_| {}).unwrap();
            o.best().is_some_and(|b| b.fitness == 1.0)
        })
        .count();
    // 68 of seeds 0..100 (README); "most" is the acceptance bar.
    assert!(perfect > 50, "{perfect}/100");
}

#[test]
fn onemax_100_reaches_the_optimum_in_fewer_evaluations_than_deap() {
    let evals: Vec<u64> = (0..21u64)
        .map(|s| {
            let o = Engine::new(OneMax { bits: 100 }).seed(s).run(&mut |_: &_| {}).unwrap();
            assert_eq!(o.stop, StopReason::TargetReached, "seed {s}");
            o.evaluations
        })
        .collect();
    // DEAP 1.4.4's median on the same problem is 2 377 evaluations (docs/PERFORMANCE.md).
    assert!(median(evals.clone()) <= 2377, "{evals:?}");
}

#[test]
fn the_original_cutoff_selection_climbs_on_onemax() {
    let p = OneMax { bits: 64 };
    let params = Params {
        n_pop: 60,
        n_gen: 400,
        term_limit: 0.0,
        max_indiv: 200_000,
        mutation_rate: 0.3,
        target_fitness: Some(1.0),
        selection: Selection::Cutoff,
        ..Params::default()
    };
    let mut first_best = None;
    let o = Engine::new(p)
        .params(params)
        .seed(2)
        .run(&mut |s: &GenerationStats| {
            first_best.get_or_insert(s.best);
        })
        .unwrap();
    // Random 64-bit strings start near 0.6; the original's scheme climbs until the whole
    // population reaches the cutoff and it stalls.
    let (first, last) = (first_best.unwrap(), o.best().unwrap().fitness);
    assert!(last >= first + 0.25, "{first} -> {last}");
    assert!(matches!(o.stop, StopReason::Stalled | StopReason::TargetReached), "{:?}", o.stop);
}

#[test]
fn knapsack_p07_reaches_its_optimum_1458() {
    let k = Knapsack::p07();
    for s in 0..5 {
        let o = Engine::new(&k).seed(s).run(&mut |_: &_| {}).unwrap();
        let best = o.best().unwrap();
        assert_eq!(k.load(&best.genome).1, 1458, "seed {s}");
        assert!(o.evaluations <= 100_000);
    }
}

#[test]
fn tsp_berlin52_gets_within_12_percent_of_optimal_in_300k_evaluations() {
    let tsp = Tsp::berlin52();
    let params = Params { max_indiv: 300_000, ..tsp.params() };
    let lengths: Vec<u64> = (0..3u64)
        .map(|s| {
            let o = Engine::new(&tsp).params(params.clone()).seed(s).threads(2).unwrap().run(&mut |_: &_| {}).unwrap();
            tsp.tour_length(&o.best().unwrap().genome)
        })
        .collect();
    // 7542 × 1.12 = 8447.
    assert!(median(lengths.clone()) <= 8447, "{lengths:?}");
}

#[test]
fn rastrigin_10_gets_within_1e_3_of_the_minimum() {
    let r = Rastrigin { dims: 10 };
    let reached = (0..3u64)
        .filter(|&s| {
            let o = Engine::new(&r).seed(s).run(&mut |_: &_| {}).unwrap();
            r.value(&o.best().unwrap().genome) <= 1e-3
        })
        .count();
    assert!(reached >= 2, "{reached}/3");
}

#[test]
fn rastrigin_30_beats_pygmo_s_sga_figure_in_100_000_evaluations() {
    // pygmo 2.20's sga (SBX, polynomial mutation, tournament 3), population 100, 100 000
    // evaluations: median best value 0.004 over seeds 0-4 (docs/PERFORMANCE.md). Exelixi's
    // was 14 with uniform crossover, Gaussian steps and one elite.
    let r = Rastrigin { dims: 30 };
    let params = Params { max_indiv: 100_000, ..r.params() };
    let mut values: Vec<f64> = (0..3u64)
        .map(|s| {
            let o = Engine::new(&r).params(params.clone()).seed(s).run(&mut |_: &_| {}).unwrap();
            assert!(o.evaluations <= 100_100, "seed {s}: {} evaluations", o.evaluations);
            r.value(&o.best().unwrap().genome)
        })
        .collect();
    values.sort_by(f64::total_cmp);
    assert!(values[1] <= 0.004, "{values:?}");
}

#[test]
fn one_island_is_the_run_reported_every_k_generations() {
    // One shard has no neighbour: its island steps are K plain generations each.
    let om = OneMax { bits: 200 };
    let generational = Selection::Tournament { size: 3, elites: 2, crossover_rate: 0.9 };
    for selection in [om.params().selection, generational] {
        let plain = Params { n_gen: 41, target_fitness: None, selection, ..om.params() };
        let migration = Some(Migration { every: 5, migrants: 2, topology: Topology::Ring });
        let island = Params { migration, ..plain.clone() };
        let stats = |params: &Params| {
            let mut lines = Vec::new();
            let o =
                Engine::new(&om).params(params.clone()).seed(4).run(&mut |s: &GenerationStats| lines.push(s.clone()));
            (lines, o.unwrap())
        };
        let (all, plain_end) = stats(&plain);
        let (every_fifth, island_end) = stats(&island);
        assert_eq!(all.len(), 41);
        let expected: Vec<GenerationStats> = all.into_iter().filter(|s| s.generation % 5 == 0).collect();
        assert_eq!(every_fifth, expected, "{selection:?}");
        assert_eq!(island_end.report, plain_end.report, "{selection:?}");
        assert_eq!(island_end.evaluations, plain_end.evaluations);
    }
}

/// Runs `engine` with a checkpoint every `every` generations kept in memory; returns the
/// trace and the checkpoints.
fn checkpointed_trace<P: Problem>(
    engine: &Engine<P>,
    resume: Option<ga_core::RunState<P::Genome>>,
    every: u32,
) -> (Vec<String>, Vec<ga_core::RunState<P::Genome>>)
where
    P::Genome: Clone,
{
    let mut kept = Vec::new();
    let mut lines = Vec::new();
    let mut keep = |s: &ga_core::RunState<P::Genome>| {
        kept.push(s.clone());
        Ok(())
    };
    let checkpoints = ga_core::Checkpoints { resume, every, keep: &mut keep };
    let outcome =
        engine.run_checkpointed(&mut |s: &GenerationStats| lines.push(format!("{s:?}")), checkpoints).expect("run");
    for m in &outcome.report {
        lines.push(format!("{} {} {} {}", m.fitness, m.born, m.key, ga_core::Genome::to_json(&m.genome)));
    }
    lines.push(format!("{:?} {} {}", outcome.stop, outcome.evaluations, outcome.duplicates));
    (lines, kept)
}

fn resumes_bit_for_bit<P: Problem>(engine: &Engine<P>)
where
    P::Genome: Clone,
{
    let whole: Vec<String> = trace(engine).lines().map(str::to_string).collect();
    let (lines, kept) = checkpointed_trace(engine, None, 3);
    assert_eq!(lines, whole, "checkpoints change nothing");
    assert!(kept.len() >= 3, "{} checkpoints", kept.len());
    for state in [&kept[0], &kept[kept.len() / 2], &kept[kept.len() - 1]] {
        let g = state.progress.generation as usize;
        assert_eq!(g % 3, 0);
        let (resumed, _) = checkpointed_trace(engine, Some(state.clone()), 3);
        // Generation g and after: the very lines of the uninterrupted run.
        assert_eq!(resumed, whole[g..], "resumed at generation {g}");
    }
}

#[test]
fn a_run_resumed_from_any_checkpoint_goes_on_as_the_uninterrupted_run() {
    let om = OneMax { bits: 120 };
    resumes_bit_for_bit(&Engine::new(om.clone()).params(Params { n_gen: 30, ..om.params() }).seed(3));
    let cutoff = Params { n_gen: 20, selection: Selection::Cutoff, ..Rastrigin { dims: 8 }.params() };
    resumes_bit_for_bit(&Engine::new(Rastrigin { dims: 8 }).params(cutoff).seed(5));
    resumes_bit_for_bit(&Engine::new(Tsp::berlin52()).params(Params { n_gen: 12, ..Tsp::berlin52().params() }).seed(9));
}

#[test]
fn a_state_of_another_shard_is_refused() {
    let engine = Engine::new(OneMax { bits: 64 }).seed(1);
    let (_, kept) = checkpointed_trace(&engine, None, 2);
    let mut other = kept[0].clone();
    other.shards[0].index = 1;
    other.shards[0].count = 2;
    let mut keep = |_: &ga_core::RunState<_>| Ok(());
    let c = ga_core::Checkpoints { resume: Some(other), every: 0, keep: &mut keep };
    let err = engine.run_checkpointed(&mut |_: &GenerationStats| {}, c).unwrap_err();
    assert!(matches!(&err, Error::InvalidState(m) if m.contains("shard 1 of 2")), "{err}");
    let mut tampered = kept[0].clone();
    tampered.shards[0].members[0].key = ga_core::Key(1);
    let c = ga_core::Checkpoints { resume: Some(tampered), every: 0, keep: &mut keep };
    let err = engine.run_checkpointed(&mut |_: &GenerationStats| {}, c).unwrap_err();
    assert!(matches!(&err, Error::InvalidState(m) if m.contains("digest")), "{err}");
}
