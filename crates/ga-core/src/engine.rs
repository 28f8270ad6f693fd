//! The engine: runs a [`Problem`] generation by generation over one population.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::evolve::{Census, Observer, Outcome, Population, Progress, evolve, evolve_from};
use crate::individual::{Individual, check_fitness};
use crate::parallel::Cost;
use crate::params::Params;
use crate::problem::Problem;
use crate::shard::{Shard, ShardState};
use crate::stats::GenerationStats;

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
        evolve(&mut LocalPopulation { shard, checkpoints: None }, &self.params, &stop, observer)
    }

    /// [`Engine::run`] with checkpoints: continues from `checkpoints.resume` if given
    /// (refused with [`Error::InvalidState`] unless it is a one-shard state of a run with
    /// these problem, parameters and seed — the caller checks the last three), and hands
    /// the run's state to `checkpoints.keep` every `checkpoints.every` generations. The
    /// output from generation g on is the one the uninterrupted run prints from g on.
    pub fn run_checkpointed(
        &self,
        observer: &mut dyn Observer,
        mut checkpoints: Checkpoints<'_, P::Genome>,
    ) -> Result<Outcome<P::Genome>> {
        let mut shard = Shard::new(&self.problem, self.params.clone(), self.seed, 0, 1, self.pool.clone())?;
        let from = match checkpoints.resume.take() {
            None => None,
            Some(state) => {
                let [one] = <[ShardState<P::Genome>; 1]>::try_from(state.shards).map_err(|shards| {
                    Error::InvalidState(format!("{} shards: an in-process run has one", shards.len()))
                })?;
                shard.restore(one)?;
                Some(state.progress)
            }
        };
        let stop = |stats: &GenerationStats| self.problem.stop(stats, &self.params);
        let mut population = LocalPopulation { shard, checkpoints: Some(checkpoints) };
        evolve_from(&mut population, &self.params, &stop, observer, from)
    }
}

/// A population that is one shard in this process, owning every key.
/// A whole run between two generations: its progress and every shard's state, in shard
/// order. What a checkpoint holds besides the run's identity (problem, parameters, seed).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RunState<G> {
    /// Where the run stands.
    pub progress: Progress,
    /// Each shard's state.
    pub shards: Vec<ShardState<G>>,
}

/// Checkpoints of an in-process run, as [`Engine::run_checkpointed`] takes them.
pub struct Checkpoints<'a, G> {
    /// The state to continue from (`None`: from the start).
    pub resume: Option<RunState<G>>,
    /// Keep a checkpoint every this many generations (0: never).
    pub every: u32,
    /// Keeps one; an error ends the run with [`Error::Checkpoint`].
    pub keep: &'a mut dyn FnMut(&RunState<G>) -> std::result::Result<(), String>,
}

struct LocalPopulation<'a, P: Problem> {
    shard: Shard<P>,
    checkpoints: Option<Checkpoints<'a, P::Genome>>,
}

impl<P: Problem> Population for LocalPopulation<'_, P> {
    type Genome = P::Genome;

    fn completed(&mut self, at: Progress) -> Result<()> {
        let Some(c) = self.checkpoints.as_mut() else { return Ok(()) };
        if c.every == 0 || at.generation == 0 || at.generation % c.every != 0 {
            return Ok(());
        }
        let state = RunState { progress: at, shards: vec![self.shard.state()] };
        (c.keep)(&state).map_err(Error::Checkpoint)
    }

    fn init(&mut self) -> Result<()> {
        let fresh = self.shard.init();
        self.shard.receive(fresh);
        self.shard.admit().map(drop)
    }

    fn census(&mut self) -> Result<Census> {
        Ok(Census {
            histogram: self.shard.histogram(),
            admitted: self.shard.admitted(),
            duplicates: self.shard.duplicates(),
        })
    }

    fn step(&mut self, generation: u32, cutoff_bin: u32) -> Result<u64> {
        if let Some(m) = self.shard.params().migration {
            // One island: its generations alone, and no neighbour to migrate to.
            let admitted = self.shard.evolve_alone(generation, m.every)?;
            return Ok(admitted + self.shard.admit()?);
        }
        let children = self.shard.next(generation, cutoff_bin);
        self.shard.receive(children);
        self.shard.admit()
    }

    fn report(&mut self, cutoff_bin: u32) -> Result<Vec<Individual<P::Genome>>> {
        Ok(self.shard.enumerate(cutoff_bin))
    }
}
