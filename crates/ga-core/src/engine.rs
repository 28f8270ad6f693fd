//! The engine: runs a [`Problem`] generation by generation over one population.

use std::cell::RefCell;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::evolve::{Census, Population, evolve};
use crate::genome::Genome;
use crate::key::Key;
use crate::parallel::Cost;
use crate::params::{Params, StopReason};
use crate::problem::Problem;
use crate::shard::Shard;
use crate::stats::GenerationStats;

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

/// Receives each generation's statistics as the run goes.
pub trait Observer {
    /// Called once per generation, before the termination test.
    fn on_generation(&mut self, stats: &GenerationStats);
}

impl<F: FnMut(&GenerationStats)> Observer for F {
    fn on_generation(&mut self, stats: &GenerationStats) {
        self(stats)
    }
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct Outcome<G> {
    /// Every individual at or above the last fitness cutoff, best first (the original's
    /// final report).
    pub report: Vec<Individual<G>>,
    /// Why the run stopped.
    pub stop: StopReason,
    /// The last generation's statistics.
    pub last: GenerationStats,
    /// Fitness evaluations made (each admitted individual once).
    pub evaluations: u64,
    /// Candidates refused because their key had been seen (evaluations saved).
    pub duplicates: u64,
}

impl<G> Outcome<G> {
    /// The best individual of the report, if any.
    pub fn best(&self) -> Option<&Individual<G>> {
        self.report.first()
    }
}

/// The most threads [`Engine::threads`] accepts: far beyond useful, well below what exhausts
/// the memory for thread stacks.
pub const MAX_THREADS: usize = 1024;

/// The GA engine for one problem.
///
/// ```
/// use ga_core::{Engine, problems::Sum231};
/// let outcome = Engine::new(Sum231::default()).seed(7).run(&mut |_: &_| {}).unwrap();
/// assert!(outcome.best().unwrap().fitness > 0.9);
/// ```
pub struct Engine<P: Problem> {
    problem: P,
    params: Params,
    seed: u64,
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl<P: Problem> Engine<P> {
    /// An engine with the problem's own parameters, seed 0 and no extra threads.
    pub fn new(problem: P) -> Self {
        let params = problem.params();
        Self { problem, params, seed: 0, pool: None }
    }

    /// Replaces the parameters (validated when the run starts).
    pub fn params(mut self, params: Params) -> Self {
        self.params = params;
        self
    }

    /// Sets the run seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Evaluates (and breeds) on a new pool of `threads` threads; 1 means the calling
    /// thread only, 0 means one per core, at most [`MAX_THREADS`]. The output does not
    /// depend on this.
    pub fn threads(mut self, threads: usize) -> Result<Self> {
        if threads > MAX_THREADS {
            return Err(Error::InvalidParam {
                name: "threads",
                value: threads.to_string(),
                expected: "0 (one per core) to 1024",
            });
        }
        self.pool = if threads == 1 {
            None
        } else {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("ga-fitness-{i}"))
                .build()
                .map_err(|e| Error::ThreadPool { threads, reason: e.to_string() })?;
            Some(Arc::new(pool))
        };
        Ok(self)
    }

    /// Shares a pool the caller owns.
    pub fn pool(mut self, pool: Arc<rayon::ThreadPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// The problem.
    pub fn problem(&self) -> &P {
        &self.problem
    }

    /// The parameters the run will use.
    pub fn current_params(&self) -> &Params {
        &self.params
    }

    /// Evaluates genomes on the engine's pool, in parallel when there is one: the fitness
    /// hot loop, exposed for callers that hold their own populations.
    pub fn evaluate(&self, genomes: &[P::Genome]) -> Result<Vec<f64>> {
        // The same mechanism as a shard's evaluation; with no estimate yet, a batch of more
        // than one genome goes to the pool.
        let problem = &self.problem;
        let fitness = Cost::default().map(self.pool.as_deref(), genomes.len(), |i| problem.fitness(&genomes[i]));
        for (g, &f) in genomes.iter().zip(&fitness) {
            check_fitness(f, g)?;
        }
        Ok(fitness)
    }

    /// Runs the GA to termination, calling `observer` once per generation.
    ///
    /// The population is one [`Shard`] that owns every key: the same steps a distributed
    /// run takes on each worker, with routing to itself.
    pub fn run(&self, observer: &mut dyn Observer) -> Result<Outcome<P::Genome>> {
        let shard = Shard::new(&self.problem, self.params.clone(), self.seed, 0, 1, self.pool.clone())?;
        let stop = |stats: &GenerationStats| self.problem.stop(stats, &self.params);
        evolve(&mut LocalPopulation(shard), &self.params, &stop, observer)
    }
}

/// A population that is one shard in this process, owning every key.
struct LocalPopulation<P: Problem>(Shard<P>);

impl<P: Problem> Population for LocalPopulation<P> {
    type Genome = P::Genome;

    fn init(&mut self) -> Result<()> {
        let fresh = self.0.init();
        self.0.receive(fresh);
        self.0.admit().map(drop)
    }

    fn census(&mut self) -> Result<Census> {
        Ok(Census { histogram: self.0.histogram(), admitted: self.0.admitted(), duplicates: self.0.duplicates() })
    }

    fn step(&mut self, generation: u32, cutoff_bin: u32) -> Result<u64> {
        let children = self.0.next(generation, cutoff_bin);
        self.0.receive(children);
        self.0.admit()
    }

    fn report(&mut self, cutoff_bin: u32) -> Result<Vec<Individual<P::Genome>>> {
        Ok(self.0.enumerate(cutoff_bin))
    }
}

pub(crate) fn check_fitness<G: Genome>(f: f64, genome: &G) -> Result<()> {
    if (0.0..=1.0).contains(&f) { Ok(()) } else { Err(Error::InvalidFitness { value: f, genome: genome.to_json() }) }
}

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The key of a genome, digesting its canonical bytes in a per-thread buffer.
pub fn key_of<G: Genome>(genome: &G) -> Key {
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
    let rank = |a: &usize, b: &usize| fitness[*b].total_cmp(&fitness[*a]).then(a.cmp(b));
    let mut idx: Vec<usize> = (0..fitness.len()).collect();
    if k == 0 {
        return Vec::new();
    }
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, rank);
        idx.truncate(k);
    }
    idx.sort_unstable_by(rank);
    idx
}
