//! Distributed throughput: `cargo bench -p exelixi-benches --bench distributed`
//!
//! On a fitness that costs ≈ 50 µs (`SlowRastrigin`), evaluations per second of the
//! in-process engine on all cores against 1, 2 and 4 worker processes on loopback,
//! interleaved, median of several runs; the coordination overhead per generation with a
//! near-free fitness (OneMax-100); and the wire bytes per individual.

use std::process::Command;
use std::time::{Duration, Instant};

use exelixi_benches::SlowRastrigin;
use ga_core::problems::OneMax;
use ga_core::{Candidate, Engine, Origin, Params, Problem, Rng, Selection, key_of};
use uow::ga::{GaConfig, GaJob};
use uow::{Cluster, LocalProcesses, RunOptions, UnitOfWork, UowError};

const REPEATS: usize = 5;
const CORES: usize = 2;

fn params(n_pop: usize, n_gen: u32) -> Params {
    Params {
        n_pop,
        n_gen,
        max_indiv: u64::MAX,
        term_limit: 0.0,
        target_fitness: None,
        mutation_rate: 1.0,
        selection: Selection::Tournament { size: 3, elites: 1, crossover_rate: 0.9 },
        ..Params::default()
    }
}

/// (evaluations, seconds, generations) of one distributed run.
fn distributed<P>(problem: &P, name: &str, params: &Params, workers: usize) -> (u64, f64, u32)
where
    P: Problem,
    P::Genome: serde::Serialize + serde::de::DeserializeOwned,
{
    let config = GaConfig {
        problem: name.into(),
        size: None,
        params: params.clone(),
        seed: 1,
        threads: (CORES / workers).max(1),
    };
    let mut observer = |_: &ga_core::GenerationStats| {};
    // Through the same path as `exelixi run --workers`; only orchestration is timed.
    let mut job = Timed { job: GaJob::new(problem, config, &mut observer), took: Duration::ZERO };
    let mut fleet = LocalProcesses::new(|_| Command::new(env!("CARGO_BIN_EXE_bench-worker")));
    let options = RunOptions { phase_timeout: None, handle_signals: false, ..RunOptions::default() };
    let outcome = uow::run(&mut job, &mut fleet, workers as u32, &options).expect("a distributed run");
    (outcome.evaluations, job.took.as_secs_f64(), outcome.last.generation + 1)
}

/// A job whose orchestration (every phase, not the workers' start) is timed.
struct Timed<U> {
    job: U,
    took: Duration,
}

impl<U: UnitOfWork> UnitOfWork for Timed<U> {
    type Output = U::Output;

    fn job(&self) -> &'static str {
        self.job.job()
    }

    fn shard_config(&self, shard: u32, shards: u32) -> Result<Vec<u8>, UowError> {
        self.job.shard_config(shard, shards)
    }

    fn orchestrate(&mut self, cluster: &mut dyn Cluster) -> Result<U::Output, UowError> {
        let start = Instant::now();
        let outcome = self.job.orchestrate(cluster);
        self.took = start.elapsed();
        outcome
    }
}

fn in_process<P: Problem>(problem: &P, params: &Params) -> (u64, f64) {
    let engine = Engine::new(problem).params(params.clone()).seed(1).threads(CORES).unwrap();
    let start = Instant::now();
    let outcome = engine.run(&mut |_: &_| {}).unwrap();
    (outcome.evaluations, start.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and test discovery: nothing to list.
    }
    let slow = SlowRastrigin::default();
    let mut rng = Rng::new(1);
    let sample: Vec<Vec<f64>> = (0..400).map(|_| slow.random_genome(&mut rng)).collect();
    let start = Instant::now();
    let total: f64 = sample.iter().map(|g| slow.fitness(g)).sum();
    let per_eval = start.elapsed() / sample.len() as u32;
    println!("fitness cost: {per_eval:?} per evaluation (checksum {total:.3})");

    for (n_pop, n_gen) in [(100usize, 40u32), (400, 12)] {
        let p = params(n_pop, n_gen);
        let mut local = Vec::new();
        let mut remote: Vec<Vec<f64>> = vec![Vec::new(); 3];
        for _ in 0..REPEATS {
            // Interleaved: every configuration once per round.
            let (e, s) = in_process(&slow, &p);
            local.push(e as f64 / s);
            for (i, w) in [1, 2, 4].into_iter().enumerate() {
                let (e, s, _) = distributed(&slow, "slow-rastrigin", &p, w);
                remote[i].push(e as f64 / s);
            }
        }
        let base = median(local);
        println!("population {n_pop}, {n_gen} generations, fitness ≈ 50 µs, median of {REPEATS}:");
        println!("  in process, {CORES} threads: {base:>9.0} evaluations/s");
        for (i, w) in [1, 2, 4].into_iter().enumerate() {
            let m = median(remote[i].clone());
            println!("  {w} worker(s):            {m:>9.0} evaluations/s  ({:.1}% of in-process)", 100.0 * m / base);
        }
    }

    // Coordination: with a nearly free fitness, a generation's wall time is the framework's
    // own cost: two barriered phases (next with deliveries, admit with censuses).
    let om = OneMax { bits: 100 };
    let p = params(100, 200);
    for w in [1, 2, 4] {
        let per_gen: Vec<f64> = (0..REPEATS)
            .map(|_| {
                let (_, s, g) = distributed(&om, "onemax", &p, w);
                s / f64::from(g)
            })
            .collect();
        println!(
            "coordination, {w} worker(s): {:.3} ms per generation (OneMax-100, population 100)",
            median(per_gen) * 1e3
        );
    }

    // Wire: a routed batch is postcard-encoded candidates.
    let batch = |problem: &dyn Fn(&mut Rng) -> Vec<f64>| {
        let mut rng = Rng::new(2);
        let b: Vec<Candidate<Vec<f64>>> = (0..50u32)
            .map(|seq| {
                let g = problem(&mut rng);
                Candidate { key: key_of(&g), genome: g, born: 7, origin: Origin { shard: 1, seq } }
            })
            .collect();
        uow::encode("batch", &b).unwrap().len() as f64 / 50.0
    };
    println!("wire: {:.1} payload bytes per Rastrigin-30 individual", batch(&|r| slow.random_genome(r)));
    let mut rng = Rng::new(3);
    let bits: Vec<Candidate<ga_core::Bits>> = (0..50u32)
        .map(|seq| {
            let g = om.random_genome(&mut rng);
            Candidate { key: key_of(&g), genome: g, born: 7, origin: Origin { shard: 1, seq } }
        })
        .collect();
    let per = uow::encode("batch", &bits).unwrap().len() as f64 / 50.0;
    println!("wire: {per:.1} payload bytes per OneMax-100 individual");
}
