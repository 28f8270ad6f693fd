//! The engine: runs a [`Problem`] generation by generation over one population.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::genome::Genome;
use crate::key::{Key, KeySet};
use crate::ops;
use crate::params::{Params, Selection, StopReason};
use crate::problem::Problem;
use crate::rng::Rng;
use crate::stats::{GenerationStats, Histogram};

/// One member of the population.
#[derive(Clone, Debug, PartialEq)]
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

// Stream purposes: each draws from its own family of generators.
const STREAM_INIT: u64 = 1;
const STREAM_INIT_RETRY: u64 = 2;
const STREAM_CUTOFF: u64 = 3;
const STREAM_CHILD: u64 = 4;
const STREAM_CHILD_RETRY: u64 = 5;

/// Attempts to find an unseen genome for one slot before giving up on it.
const RETRIES: u32 = 8;

/// Below this much estimated work a batch runs on the calling thread: rayon's fork/join
/// costs more than it saves on small batches (see docs/PERFORMANCE.md).
const PARALLEL_MIN_NS: f64 = 40_000.0;

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
        let fitness: Vec<f64> = match &self.pool {
            Some(pool) if genomes.len() > 1 => {
                pool.install(|| genomes.par_iter().with_min_len(64).map(|g| self.problem.fitness(g)).collect())
            }
            _ => genomes.iter().map(|g| self.problem.fitness(g)).collect(),
        };
        for (g, &f) in genomes.iter().zip(&fitness) {
            check_fitness(f, g)?;
        }
        Ok(fitness)
    }

    /// Runs the GA to termination, calling `observer` once per generation.
    pub fn run(&self, observer: &mut dyn Observer) -> Result<Outcome<P::Genome>> {
        self.params.validate()?;
        let mut run = Run {
            engine: self,
            members: Vec::new(),
            seen: KeySet::with_capacity(expected_keys(&self.params)),
            duplicates: 0,
            evaluations: 0,
            breed_cost: Cost::new(self.pool.as_deref()),
            eval_cost: Cost::new(self.pool.as_deref()),
        };
        run.init()?;
        let granularity = self.params.hist_granularity;
        let mut generation = 0u32;
        // Whether the last step admitted nothing new: then this generation is the last.
        let mut stalled = false;
        loop {
            let hist = Histogram::of(granularity, run.members.iter().map(|m| m.fitness));
            let stats = GenerationStats::from_histogram(
                generation,
                &hist,
                run.evaluations,
                run.duplicates,
                self.params.selection_rate,
            );
            observer.on_generation(&stats);
            let (stop, cutoff_bin) = match hist.cutoff_bin(self.params.selection_rate) {
                None => (Some(StopReason::Stalled), 0),
                Some(bin) if stalled => (Some(StopReason::Stalled), bin),
                Some(bin) => (self.problem.stop(&stats, &self.params), bin),
            };
            if let Some(stop) = stop {
                return Ok(run.finish(&hist, cutoff_bin, stop, stats));
            }
            let before = run.evaluations;
            run.next_generation(generation, cutoff_bin, &hist)?;
            stalled = run.evaluations == before;
            generation += 1;
        }
    }
}

/// How many keys a run will likely admit, to size the seen-set once instead of rehashing
/// as it grows (capped: an unbounded run grows the set as it goes).
fn expected_keys(p: &Params) -> usize {
    let by_generations = (p.n_pop as u64).saturating_mul(u64::from(p.n_gen).saturating_add(1));
    by_generations.min(p.max_indiv).min(1 << 20) as usize
}

fn check_fitness<G: Genome>(f: f64, genome: &G) -> Result<()> {
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

/// A running estimate of the cost per item of a kind of batch, to decide whether it is
/// worth handing to rayon. Timing never changes results, only where they are computed.
struct Cost<'a> {
    pool: Option<&'a rayon::ThreadPool>,
    ns_per_item: f64,
}

impl<'a> Cost<'a> {
    fn new(pool: Option<&'a rayon::ThreadPool>) -> Self {
        Self { pool, ns_per_item: f64::INFINITY }
    }

    /// `f(0), …, f(n-1)`, in order, in parallel when the batch is worth it.
    fn map<R: Send>(&mut self, n: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
        let pool = match self.pool {
            Some(pool) if n > 1 && self.ns_per_item * n as f64 >= PARALLEL_MIN_NS => pool,
            _ => {
                let start = Instant::now();
                let out: Vec<R> = (0..n).map(f).collect();
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
        let out: Vec<R> = pool.install(|| (0..n).into_par_iter().with_min_len(min_len).map(f).collect());
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

/// A genome admitted to the run, waiting for its fitness.
struct Candidate<G> {
    genome: G,
    key: Key,
    born: u32,
}

/// The state of one run: the population and the run-wide record of seen keys.
struct Run<'a, P: Problem> {
    engine: &'a Engine<P>,
    members: Vec<Individual<P::Genome>>,
    seen: KeySet,
    duplicates: u64,
    evaluations: u64,
    breed_cost: Cost<'a>,
    eval_cost: Cost<'a>,
}

impl<P: Problem> Run<'_, P> {
    fn problem(&self) -> &P {
        &self.engine.problem
    }

    /// Admits `genome` if its key is new.
    fn admit(&mut self, genome: P::Genome, born: u32) -> Option<Candidate<P::Genome>> {
        let key = key_of(&genome);
        self.admit_keyed(genome, key, born)
    }

    fn admit_keyed(&mut self, genome: P::Genome, key: Key, born: u32) -> Option<Candidate<P::Genome>> {
        if self.seen.insert(key) {
            Some(Candidate { genome, key, born })
        } else {
            self.duplicates += 1;
            None
        }
    }

    /// Evaluates admitted candidates (in parallel when worth it).
    fn evaluate(&mut self, candidates: Vec<Candidate<P::Genome>>) -> Result<Vec<Individual<P::Genome>>> {
        let problem = &self.engine.problem;
        let fitness = self.eval_cost.map(candidates.len(), |i| problem.fitness(&candidates[i].genome));
        self.evaluations += candidates.len() as u64;
        candidates
            .into_iter()
            .zip(fitness)
            .map(|(c, f)| {
                check_fitness(f, &c.genome)?;
                Ok(Individual { genome: c.genome, key: c.key, fitness: f, born: c.born })
            })
            .collect()
    }

    /// The original's `pop/init`: `n_pop` fresh genomes, each from its own stream.
    fn init(&mut self) -> Result<()> {
        let seed = self.engine.seed;
        let n = self.engine.params.n_pop;
        let problem = &self.engine.problem;
        let streams = Rng::family(seed, &[STREAM_INIT]);
        let fresh = self.breed_cost.map(n, |i| {
            let g = problem.random_genome(&mut streams.stream(i as u64));
            let k = key_of(&g);
            (g, k)
        });
        let mut admitted = Vec::with_capacity(n);
        for (i, (genome, key)) in fresh.into_iter().enumerate() {
            if let Some(c) = self.admit_keyed(genome, key, 0) {
                admitted.push(c);
                continue;
            }
            let mut rng = Rng::stream(seed, &[STREAM_INIT_RETRY, i as u64]);
            for _ in 0..RETRIES {
                let g = self.problem().random_genome(&mut rng);
                if let Some(c) = self.admit(g, 0) {
                    admitted.push(c);
                    break;
                }
            }
        }
        self.members = self.evaluate(admitted)?;
        Ok(())
    }

    fn next_generation(&mut self, generation: u32, cutoff_bin: u32, hist: &Histogram) -> Result<()> {
        match self.engine.params.selection {
            Selection::Cutoff => self.next_by_cutoff(generation, cutoff_bin, hist),
            Selection::Tournament { size, elites, crossover_rate } => {
                self.next_by_tournament(generation, size, elites, crossover_rate)
            }
        }
    }

    /// The original's `pop/next`, on one shard.
    fn next_by_cutoff(&mut self, generation: u32, cutoff_bin: u32, hist: &Histogram) -> Result<()> {
        let params = &self.engine.params;
        let (n_pop, mutation_rate) = (params.n_pop, params.mutation_rate);
        let mut rng = Rng::stream(self.engine.seed, &[STREAM_CUTOFF, u64::from(generation)]);
        let members = std::mem::take(&mut self.members);
        let mut size = members.len();
        let (mut kept, poor): (Vec<_>, Vec<_>) = members.into_iter().partition(|m| hist.bin(m.fitness) >= cutoff_bin);
        let survivors = kept.len();
        let mut fresh = Vec::new();
        for ind in poor {
            if rng.chance(mutation_rate) {
                let mut mutant = ind.genome.clone();
                self.problem().mutate(&mut mutant, &mut rng);
                match self.admit(mutant, generation) {
                    Some(c) => fresh.push(c),
                    None => kept.push(ind),
                }
            } else if size > 3 {
                size -= 1;
            } else {
                kept.push(ind);
            }
        }
        // Pairs of random survivors breed the shard back to n_pop (all remaining members
        // when fewer than two survived); fresh genomes backfill what breeding could not.
        let parents = if survivors >= 2 { survivors } else { kept.len() };
        let budget = RETRIES as usize * n_pop;
        let mut attempts = 0;
        while parents >= 2 && kept.len() + fresh.len() < n_pop && attempts < budget {
            attempts += 1;
            let a = rng.index(parents);
            let b = (a + 1 + rng.index(parents - 1)) % parents;
            let child = self.problem().breed(&kept[a].genome, &kept[b].genome, &mut rng);
            if let Some(c) = self.admit(child, generation) {
                fresh.push(c);
            }
        }
        attempts = 0;
        while kept.len() + fresh.len() < n_pop && attempts < budget {
            attempts += 1;
            let g = self.problem().random_genome(&mut rng);
            if let Some(c) = self.admit(g, generation) {
                fresh.push(c);
            }
        }
        kept.extend(self.evaluate(fresh)?);
        self.members = kept;
        Ok(())
    }

    /// A generational step: elites carry over, tournaments choose parents, every child
    /// comes from its own stream so children can be bred on any number of threads.
    fn next_by_tournament(&mut self, generation: u32, size: usize, elites: usize, crossover_rate: f64) -> Result<()> {
        let seed = self.engine.seed;
        let n_pop = self.engine.params.n_pop;
        let mutation_rate = self.engine.params.mutation_rate;
        let problem = &self.engine.problem;
        let members = std::mem::take(&mut self.members);
        let fitness: Vec<f64> = members.iter().map(|m| m.fitness).collect();
        let child = |rng: &mut Rng| {
            let a = ops::tournament(&fitness, size, rng);
            let b = ops::tournament(&fitness, size, rng);
            let mut g = if rng.chance(crossover_rate) {
                problem.breed(&members[a].genome, &members[b].genome, rng)
            } else {
                members[a].genome.clone()
            };
            if rng.chance(mutation_rate) {
                problem.mutate(&mut g, rng);
            }
            g
        };
        let slots = n_pop.saturating_sub(elites);
        let gen64 = u64::from(generation);
        let streams = Rng::family(seed, &[STREAM_CHILD, gen64]);
        let bred = self.breed_cost.map(slots, |i| {
            let g = child(&mut streams.stream(i as u64));
            let k = key_of(&g);
            (g, k)
        });
        let mut admitted = Vec::with_capacity(slots);
        for (i, (genome, key)) in bred.into_iter().enumerate() {
            if let Some(c) = self.admit_keyed(genome, key, generation) {
                admitted.push(c);
                continue;
            }
            let mut rng = Rng::stream(seed, &[STREAM_CHILD_RETRY, gen64, i as u64]);
            let found = (0..RETRIES).find_map(|_| {
                let g = child(&mut rng);
                self.admit(g, generation)
            });
            let found = found.or_else(|| {
                let g = problem.random_genome(&mut rng);
                self.admit(g, generation)
            });
            admitted.extend(found);
        }
        let children = self.evaluate(admitted)?;
        // The elites, then (only when retries left slots empty) the best of the rest of the
        // old population, so the population never shrinks. Ranked by fitness, ties by
        // position: a total order, so the choice is deterministic.
        let missing = n_pop.saturating_sub(elites + children.len());
        let ranked = best_indices(&fitness, elites + missing);
        let mut next = Vec::with_capacity(n_pop);
        next.extend(ranked[..elites.min(ranked.len())].iter().map(|&i| members[i].clone()));
        next.extend(children);
        next.extend(ranked.iter().skip(elites).map(|&i| members[i].clone()));
        self.members = next;
        Ok(())
    }

    fn finish(self, hist: &Histogram, cutoff_bin: u32, stop: StopReason, last: GenerationStats) -> Outcome<P::Genome> {
        let mut report: Vec<_> = self.members.into_iter().filter(|m| hist.bin(m.fitness) >= cutoff_bin).collect();
        sort_report(&mut report);
        Outcome { report, stop, last, evaluations: self.evaluations, duplicates: self.duplicates }
    }
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
fn best_indices(fitness: &[f64], k: usize) -> Vec<usize> {
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
