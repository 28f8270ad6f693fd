//! The generation loop, over a population that may live anywhere.
//!
//! [`evolve`] is the framework side of the GA: census, report, termination test, cutoff,
//! step, in that order, every generation. A [`Population`] says where the shards are: one
//! [`Shard`](crate::Shard) in this process ([`Engine::run`](crate::Engine::run)) or one
//! per worker behind the network (the `uow` crate). Both run this same loop, so the GA
//! means the same thing wherever it runs.

use crate::error::Result;
use crate::individual::{Individual, sort_report};
use crate::params::{Params, StopReason};
use crate::stats::{GenerationStats, Histogram};

/// Receives each generation's statistics as the run goes.
pub trait Observer {
    /// Called once per generation, before the termination test.
    fn on_generation(&mut self, stats: &GenerationStats);

    /// Asked after each [`Observer::on_generation`]: `true` ends the run there, as
    /// [`StopReason::Cancelled`], with the report of that generation (e.g. the reader of
    /// the output went away). A closure observer never cancels.
    fn cancelled(&self) -> bool {
        false
    }
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

/// What every shard reported for one generation, merged.
#[derive(Clone, Debug, PartialEq)]
pub struct Census {
    /// The merged fitness histogram.
    pub histogram: Histogram,
    /// Individuals admitted in the run, over all shards.
    pub admitted: u64,
    /// Candidates not evaluated because their key had been seen, over all shards.
    pub duplicates: u64,
}

/// The shards of a run, as the generation loop drives them.
pub trait Population {
    /// The genome type.
    type Genome;

    /// Creates the initial population on every shard and admits it.
    fn init(&mut self) -> Result<()>;

    /// The merged histogram and counters.
    fn census(&mut self) -> Result<Census>;

    /// One generation on every shard with the fitness cutoff `cutoff_bin`: select and
    /// vary, route the candidates to their owners, wait until all were delivered (the
    /// barrier), admit. With islands ([`Params::migration`](crate::Params::migration)):
    /// `every` generations on each shard alone ([`Shard::evolve_alone`](crate::Shard::evolve_alone)),
    /// then the migration. Returns how many individuals were admitted.
    fn step(&mut self, generation: u32, cutoff_bin: u32) -> Result<u64>;

    /// Every individual at or above `cutoff_bin`, from every shard, in any order.
    fn report(&mut self, cutoff_bin: u32) -> Result<Vec<Individual<Self::Genome>>>;

    /// Called once the shards hold a complete generation, before its census: after
    /// [`Population::init`] and after each [`Population::step`]. A population that keeps
    /// checkpoints takes them here; `at` is what the run needs besides the shards to go on
    /// from this point ([`evolve_from`]). Does nothing by default.
    fn completed(&mut self, at: Progress) -> Result<()> {
        let _ = at;
        Ok(())
    }
}

/// Where a run stands between two generations, besides its shards: the generation whose
/// census comes next, and whether the step that made it admitted nothing (then that
/// generation is the last).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Progress {
    /// The generation the shards hold.
    pub generation: u32,
    /// Whether the last step admitted nothing.
    pub stalled: bool,
}

/// The generation loop's termination test at one census: why the run stops there, if it
/// does, and the fitness cutoff bin (of the final report, or of the next step). In order: a
/// histogram with no cutoff (an empty population) stalls; a cancelled run stops; a step
/// that admitted nothing (`stalled`) ends the run; then `stop`. Workers deciding a chained
/// step on their own apply it too (never cancelled), so that they stop where the loop does.
pub fn verdict(
    stats: &GenerationStats,
    hist: &Histogram,
    rate: f64,
    stalled: bool,
    cancelled: bool,
    stop: &dyn Fn(&GenerationStats) -> Option<StopReason>,
) -> (Option<StopReason>, u32) {
    match hist.cutoff_bin(rate) {
        None => (Some(StopReason::Stalled), 0),
        Some(bin) if cancelled => (Some(StopReason::Cancelled), bin),
        Some(bin) if stalled => (Some(StopReason::Stalled), bin),
        Some(bin) => (stop(stats), bin),
    }
}

/// Runs the generation loop to termination. `stop` is the termination test (usually
/// [`Problem::stop`](crate::Problem::stop)).
pub fn evolve<Pop: Population>(
    population: &mut Pop,
    params: &Params,
    stop: &dyn Fn(&GenerationStats) -> Option<StopReason>,
    observer: &mut dyn Observer,
) -> Result<Outcome<Pop::Genome>> {
    evolve_from(population, params, stop, observer, None)
}

/// [`evolve`], or with `from`, its continuation from a population already restored to
/// that point (no init; the first generation observed is `from.generation`): given the
/// shards' states and progress of a run at some generation, the rest of the run is the
/// very one the uninterrupted run had.
pub fn evolve_from<Pop: Population>(
    population: &mut Pop,
    params: &Params,
    stop: &dyn Fn(&GenerationStats) -> Option<StopReason>,
    observer: &mut dyn Observer,
    from: Option<Progress>,
) -> Result<Outcome<Pop::Genome>> {
    params.validate()?;
    let Progress { mut generation, mut stalled } = match from {
        Some(at) => at,
        None => {
            population.init()?;
            let at = Progress { generation: 0, stalled: false };
            population.completed(at)?;
            at
        }
    };
    let rate = params.selection_rate;
    loop {
        let census = population.census()?;
        let hist = &census.histogram;
        let stats = GenerationStats::from_histogram(generation, hist, census.admitted, census.duplicates, rate);
        observer.on_generation(&stats);
        let (reason, cutoff_bin) = verdict(&stats, hist, rate, stalled, observer.cancelled(), stop);
        if let Some(reason) = reason {
            let mut report = population.report(cutoff_bin)?;
            sort_report(&mut report);
            return Ok(Outcome {
                report,
                stop: reason,
                last: stats,
                evaluations: census.admitted,
                duplicates: census.duplicates,
            });
        }
        stalled = population.step(generation, cutoff_bin)? == 0;
        generation = generation.saturating_add(params.generations_per_step());
        population.completed(Progress { generation, stalled })?;
    }
}
