//! The generation loop, over a population that may live anywhere.
//!
//! [`evolve`] is the framework side of the GA: census, report, termination test, cutoff,
//! step, in that order, every generation. A [`Population`] says where the shards are: one
//! [`Shard`](crate::Shard) in this process ([`Engine::run`](crate::Engine::run)) or one
//! per worker behind the network (the `uow` crate). Both run this same loop, so the GA
//! means the same thing wherever it runs.

use crate::engine::{Individual, Observer, Outcome, sort_report};
use crate::error::Result;
use crate::params::{Params, StopReason};
use crate::stats::{GenerationStats, Histogram};

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
    /// barrier), admit. Returns how many individuals were admitted.
    fn step(&mut self, generation: u32, cutoff_bin: u32) -> Result<u64>;

    /// Every individual at or above `cutoff_bin`, from every shard, in any order.
    fn report(&mut self, cutoff_bin: u32) -> Result<Vec<Individual<Self::Genome>>>;
}

/// Runs the generation loop to termination. `stop` is the termination test (usually
/// [`Problem::stop`](crate::Problem::stop)).
pub fn evolve<Pop: Population>(
    population: &mut Pop,
    params: &Params,
    stop: &dyn Fn(&GenerationStats) -> Option<StopReason>,
    observer: &mut dyn Observer,
) -> Result<Outcome<Pop::Genome>> {
    params.validate()?;
    population.init()?;
    let rate = params.selection_rate;
    let mut generation = 0u32;
    // Whether the last step admitted nothing new: then this generation is the last.
    let mut stalled = false;
    loop {
        let census = population.census()?;
        let hist = &census.histogram;
        let stats = GenerationStats::from_histogram(generation, hist, census.admitted, census.duplicates, rate);
        observer.on_generation(&stats);
        let (reason, cutoff_bin) = match hist.cutoff_bin(rate) {
            None => (Some(StopReason::Stalled), 0),
            Some(bin) if stalled => (Some(StopReason::Stalled), bin),
            Some(bin) => (stop(&stats), bin),
        };
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
        generation += 1;
    }
}
