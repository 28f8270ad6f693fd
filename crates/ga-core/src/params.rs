//! Run parameters, with the original Exelixi's defaults, and the termination test.

use crate::error::{Error, Result};
use crate::stats::GenerationStats;

/// The largest population [`Params::validate`] accepts (10⁸): beyond it a run cannot fit
/// in memory for any useful genome, and asking for it is a typo, not a plan.
pub const MAX_POP: usize = 100_000_000;

/// How parents are chosen each generation.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Selection {
    /// The original Exelixi scheme: individuals whose rounded fitness reaches the cutoff
    /// survive and breed in random pairs; the poor-fit ones are mutated with probability
    /// `mutation_rate` or evicted (at least three stay); fresh genomes backfill the rest.
    Cutoff,
    /// A generational GA: `elites` best individuals carry over; every other slot gets a child,
    /// bred in pairs: two parents chosen by tournaments of `size`, crossed with probability
    /// `crossover_rate` into two children ([`Problem::breed_pair_into`](crate::Problem::breed_pair_into);
    /// else copies of the two parents), each then mutated with probability `mutation_rate`.
    Tournament {
        /// Contestants per tournament (at least 1).
        size: usize,
        /// Best individuals copied unchanged into the next generation.
        elites: usize,
        /// Probability that a pair of children is bred from its two parents rather than copied.
        crossover_rate: f64,
    },
    /// (μ+λ) survivor selection: λ = `offspring` × μ children are bred each generation (at
    /// least one per shard) as under [`Selection::Tournament`] (parents by tournaments of
    /// `size`, crossover with probability `crossover_rate`, mutation with probability
    /// `mutation_rate`), and the next generation is the best `n_pop` of parents and
    /// children together, a child before a parent of equal fitness (so a population on a
    /// plateau keeps moving). No good individual is lost, as with elites, but every
    /// improvement stays, not only the best; pagmo's `sga` reinserts the same way (with
    /// λ = μ). Sharded, each shard keeps the best of its own parents and the children
    /// routed to it, up to its quota. A smaller λ puts each good child to use sooner, at
    /// the cost of more generations per evaluation ([`PLUS_OFFSPRING`] is the built-ins'
    /// choice).
    Plus {
        /// Contestants per tournament (at least 1).
        size: usize,
        /// Probability that a pair of children is bred from its two parents rather than copied.
        crossover_rate: f64,
        /// Children bred each generation, as a fraction of the population, in (0, 1].
        offspring: f64,
    },
}

/// The built-in problems' offspring fraction under [`Selection::Plus`]: 20 children a
/// generation for a population of 100. Chosen over 1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2 and
/// 0.1 by `exelixi-benches`' quality example (seeds 0–20): against breeding the whole
/// population, OneMax-100 needs 1 420 evaluations (2 000), OneMax-1000 15 400 (16 500),
/// knapsack P07 2 320 (2 900), Rastrigin-10 10 300 (11 500), and TSP berlin52's median tour
/// is 7 830 (7 734, within its seed-to-seed spread 7 542–8 135). Those were measured with
/// the mutation draws of then; since mutation draws its count (2026-12-02) the same runs
/// need 1 400, 15 740, 2 780 and 10 320, and the tour is 7 734; since children are bred in
/// pairs (the same night), 1 360, 15 320, 2 780 and 10 440, and 7 762. Tables in
/// docs/PERFORMANCE.md.
pub const PLUS_OFFSPRING: f64 = 0.2;

/// The island model: each shard evolves alone for `every` generations (no routing, no
/// barrier between them), then sends copies of its `migrants` best individuals to its
/// neighbours in `topology`, who admit them (evaluated again) in place of their worst. A
/// step of the run is then those `every` generations and the migration after them, so a
/// seed still gives one output. Needs [`Selection::Tournament`] or [`Selection::Plus`]:
/// the cutoff rule needs the whole population's histogram every generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Migration {
    /// Generations each island evolves alone between migrations (at least 1).
    pub every: u32,
    /// Individuals each island sends to each neighbour (0: islands never meet).
    pub migrants: usize,
    /// Which islands are neighbours.
    pub topology: Topology,
}

/// Which islands send migrants to which: the built-in [`Neighbours`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Topology {
    /// Each island's neighbours are the islands before and after it, in a circle
    /// (pygmo's `ring`); with two islands, each other.
    Ring,
    /// Every island is every other's neighbour.
    Full,
}

/// A migration topology: the islands that island `island` of `islands` sends migrants to,
/// in increasing order, never itself.
pub trait Neighbours {
    /// The neighbours of `island`.
    fn neighbours(&self, island: u32, islands: u32) -> Vec<u32>;
}

impl Neighbours for Topology {
    fn neighbours(&self, island: u32, islands: u32) -> Vec<u32> {
        if islands < 2 || island >= islands {
            return Vec::new();
        }
        let mut out = match self {
            Topology::Ring => vec![(island + islands - 1) % islands, (island + 1) % islands],
            Topology::Full => (0..islands).filter(|&i| i != island).collect(),
        };
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Why a run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StopReason {
    /// An individual reached `target_fitness`.
    TargetReached,
    /// The fitness MSE against 1.0 fell to `term_limit` or below.
    Converged,
    /// `max_indiv` individuals were admitted (tested after each generation).
    Budget,
    /// `n_gen` generations ran.
    Generations,
    /// A generation admitted no new individual: every genome bred had been seen before
    /// (a small search space), or, under [`Selection::Cutoff`], every individual reached the
    /// cutoff so the original's rule kept them all and bred nothing (the original idled like
    /// this until `n_gen`).
    Stalled,
    /// The observer asked to stop ([`Observer::cancelled`](crate::Observer::cancelled)).
    Cancelled,
}

impl StopReason {
    /// A short lower-case name, e.g. for JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::TargetReached => "target",
            StopReason::Converged => "converged",
            StopReason::Budget => "budget",
            StopReason::Generations => "generations",
            StopReason::Stalled => "stalled",
            StopReason::Cancelled => "cancelled",
        }
    }

    /// Why the run stopped, for people (e.g. "target fitness reached").
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::TargetReached => "target fitness reached",
            StopReason::Converged => "converged (fitness MSE at or below term_limit)",
            StopReason::Budget => "evaluation budget (max_indiv) spent",
            StopReason::Generations => "all n_gen generations ran",
            StopReason::Stalled => "stalled (a generation admitted no new individual)",
            StopReason::Cancelled => "cancelled",
        }
    }
}

/// The GA's parameters. [`Default`] gives the original Exelixi's values.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Params {
    /// Individuals in the whole population (`n_pop`, default 23), however many shards it
    /// is split over.
    pub n_pop: usize,
    /// Generations at most (`n_gen`, default 10).
    pub n_gen: u32,
    /// Stop when the fitness MSE against 1.0 is at most this (default 5.0e-3).
    pub term_limit: f64,
    /// Decimals kept when fitness is binned into the histogram (default 3).
    pub hist_granularity: u32,
    /// Share of the population above the fitness cutoff (default 0.2).
    pub selection_rate: f64,
    /// Probability of mutation (default 0.02): of a poor-fit individual under
    /// [`Selection::Cutoff`], of each child under [`Selection::Tournament`].
    pub mutation_rate: f64,
    /// Stop once this many individuals were admitted in the run (default 2000). Tested after
    /// each generation, so the run ends with the generation that reaches it: the count can
    /// pass it by up to one generation's worth (50 095 for 50 000 at population 100).
    pub max_indiv: u64,
    /// Parent selection (default [`Selection::Cutoff`], the original's).
    pub selection: Selection,
    /// Stop as soon as an individual reaches this fitness (default none, as the original).
    pub target_fitness: Option<f64>,
    /// The island model (default none: one population over all shards).
    pub migration: Option<Migration>,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            n_pop: 23,
            n_gen: 10,
            term_limit: 5.0e-3,
            hist_granularity: 3,
            selection_rate: 0.2,
            mutation_rate: 0.02,
            max_indiv: 2000,
            selection: Selection::Cutoff,
            target_fitness: None,
            migration: None,
        }
    }
}

fn invalid(name: &'static str, value: impl ToString, expected: &'static str) -> Error {
    Error::InvalidParam { name, value: value.to_string(), expected }
}

fn unit(name: &'static str, v: f64) -> Result<()> {
    if (0.0..=1.0).contains(&v) { Ok(()) } else { Err(invalid(name, v, "a number in [0, 1]")) }
}

impl Params {
    /// Checks every parameter, naming the first one out of its domain.
    pub fn validate(&self) -> Result<()> {
        if !(2..=MAX_POP).contains(&self.n_pop) {
            return Err(invalid("pop", self.n_pop, "2 to 100000000"));
        }
        if self.n_gen == 0 {
            return Err(invalid("gens", self.n_gen, "at least 1"));
        }
        if !(self.term_limit >= 0.0 && self.term_limit.is_finite()) {
            return Err(invalid("term-limit", self.term_limit, "a finite number >= 0"));
        }
        if self.hist_granularity > 9 {
            return Err(invalid("hist-granularity", self.hist_granularity, "0 to 9 decimals"));
        }
        if !(self.selection_rate > 0.0 && self.selection_rate <= 1.0) {
            return Err(invalid("selection-rate", self.selection_rate, "a number in (0, 1]"));
        }
        unit("mutation-rate", self.mutation_rate)?;
        if self.max_indiv == 0 {
            return Err(invalid("max-indiv", self.max_indiv, "at least 1"));
        }
        if let Some(t) = self.target_fitness {
            unit("target", t)?;
        }
        if let Selection::Tournament { size, elites, crossover_rate } = self.selection {
            if size == 0 {
                return Err(invalid("tournament-size", size, "at least 1"));
            }
            if elites >= self.n_pop {
                return Err(invalid("elites", elites, "fewer than the population"));
            }
            unit("crossover-rate", crossover_rate)?;
        }
        if let Some(m) = self.migration {
            if m.every == 0 {
                return Err(invalid("migrate-every", m.every, "at least 1"));
            }
            if m.migrants > self.n_pop {
                return Err(invalid("migrants", m.migrants, "at most the population"));
            }
            if self.selection == Selection::Cutoff {
                return Err(invalid(
                    "selection",
                    "cutoff",
                    "tournament or plus with islands: the cutoff needs the whole population every generation",
                ));
            }
        }
        if let Selection::Plus { size, crossover_rate, offspring } = self.selection {
            if size == 0 {
                return Err(invalid("tournament-size", size, "at least 1"));
            }
            unit("crossover-rate", crossover_rate)?;
            if !(offspring > 0.0 && offspring <= 1.0) {
                return Err(invalid("offspring", offspring, "a fraction of the population in (0, 1]"));
            }
        }
        Ok(())
    }

    /// Generations one step of the run makes: 1, or with islands the generations between
    /// migrations.
    pub fn generations_per_step(&self) -> u32 {
        self.migration.map_or(1, |m| m.every)
    }

    /// Checks that a population of these parameters can be split over `shards` shards: at
    /// least one, and no more than `n_pop` (every shard holds at least one individual).
    pub fn check_shards(&self, shards: u32) -> Result<()> {
        if shards == 0 || shards as usize > self.n_pop {
            return Err(invalid(
                "workers",
                shards,
                "at most the population (n_pop), and at least 1: every shard holds an individual",
            ));
        }
        Ok(())
    }

    /// The original termination test, extended with `target_fitness`: the reason to stop
    /// after the generation `stats` describes, if any.
    pub fn stop_reason(&self, stats: &GenerationStats) -> Option<StopReason> {
        if self.target_fitness.is_some_and(|t| stats.best >= t) {
            Some(StopReason::TargetReached)
        } else if stats.mse <= self.term_limit {
            Some(StopReason::Converged)
        } else if stats.total_indiv >= self.max_indiv {
            Some(StopReason::Budget)
        } else if stats.generation + 1 >= self.n_gen {
            Some(StopReason::Generations)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topologies_name_their_neighbours() {
        assert_eq!(Topology::Ring.neighbours(0, 1), Vec::<u32>::new(), "an island alone has none");
        assert_eq!(Topology::Ring.neighbours(0, 2), [1]);
        assert_eq!(Topology::Ring.neighbours(1, 2), [0]);
        assert_eq!(Topology::Ring.neighbours(0, 5), [1, 4]);
        assert_eq!(Topology::Ring.neighbours(3, 5), [2, 4]);
        assert_eq!(Topology::Full.neighbours(2, 4), [0, 1, 3]);
        assert_eq!(Topology::Full.neighbours(4, 4), Vec::<u32>::new(), "no such island");
    }

    #[test]
    fn defaults_are_the_originals() {
        let p = Params::default();
        assert_eq!((p.n_pop, p.n_gen, p.hist_granularity, p.max_indiv), (23, 10, 3, 2000));
        assert_eq!((p.term_limit, p.selection_rate, p.mutation_rate), (5.0e-3, 0.2, 0.02));
        assert!(p.validate().is_ok());
    }

    #[test]
    fn bad_values_are_named() {
        let bad = |f: fn(&mut Params)| {
            let mut p = Params::default();
            f(&mut p);
            p.validate().unwrap_err().to_string()
        };
        assert!(bad(|p| p.n_pop = 0).starts_with("invalid pop: 0"));
        assert!(bad(|p| p.n_pop = usize::MAX).starts_with("invalid pop"));
        assert!(bad(|p| p.selection_rate = 1.5).starts_with("invalid selection-rate: 1.5"));
        assert!(bad(|p| p.selection_rate = f64::NAN).contains("selection-rate"));
        assert!(bad(|p| p.mutation_rate = -0.1).contains("mutation-rate"));
        assert!(bad(|p| p.term_limit = f64::INFINITY).contains("term-limit"));
        assert!(bad(|p| p.hist_granularity = 12).contains("hist-granularity"));
        assert!(bad(|p| p.n_gen = 0).contains("gens"));
        assert!(bad(|p| p.max_indiv = 0).contains("max-indiv"));
        assert!(bad(|p| p.target_fitness = Some(2.0)).contains("target"));
        let selections = [
            (Selection::Tournament { size: 0, elites: 0, crossover_rate: 0.5 }, "tournament-size"),
            (Selection::Tournament { size: 2, elites: 23, crossover_rate: 0.5 }, "elites"),
            (Selection::Plus { size: 0, crossover_rate: 0.5, offspring: 1.0 }, "tournament-size"),
            (Selection::Plus { size: 2, crossover_rate: 0.5, offspring: 0.0 }, "offspring"),
            (Selection::Plus { size: 2, crossover_rate: 0.5, offspring: 1.5 }, "offspring"),
            (Selection::Plus { size: 2, crossover_rate: 0.5, offspring: f64::NAN }, "offspring"),
        ];
        for (selection, name) in selections {
            let p = Params { selection, ..Params::default() };
            let err = p.validate().unwrap_err().to_string();
            assert!(err.starts_with(&format!("invalid {name}")), "{selection:?}: {err}");
        }
        fn islands(p: &mut Params, every: u32, migrants: usize) {
            p.selection = Selection::Plus { size: 3, crossover_rate: 0.9, offspring: PLUS_OFFSPRING };
            p.migration = Some(Migration { every, migrants, topology: Topology::Ring });
        }
        assert!(
            bad(|p| p.migration = Some(Migration { every: 5, migrants: 1, topology: Topology::Ring }))
                .starts_with("invalid selection: cutoff (expected tournament or plus")
        );
        assert!(bad(|p| islands(p, 0, 1)).contains("migrate-every: 0"));
        assert!(bad(|p| islands(p, 5, 24)).contains("migrants: 24"));
        assert!(
            bad(|p| p.selection = Selection::Plus { size: 2, crossover_rate: 1.5, offspring: 1.0 })
                .contains("crossover-rate")
        );
    }
}
