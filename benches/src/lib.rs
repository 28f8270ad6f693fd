//! Shared set-ups for the benchmarks in `benches/` and the figures in `examples/`.

use ga_core::problems::OneMax;
use ga_core::{Bits, Params, Problem, Rng, Selection};

/// The field's OneMax protocol (docs/BENCHMARKS in the shared material): population 100,
/// tournaments of 3, uniform crossover with probability 0.8, bit-flip 1/N on every child,
/// one elite; run for `generations` generations with no early stop.
pub fn onemax_protocol(generations: u32) -> Params {
    Params {
        n_gen: generations,
        max_indiv: u64::MAX,
        target_fitness: None,
        term_limit: 0.0,
        selection: Selection::Tournament { size: 3, elites: 1, crossover_rate: 0.8 },
        ..OneMax::default().params()
    }
}

/// OneMax with a fitness that costs nothing: what is left of a run's time is the engine's.
pub struct ZeroCostOneMax(pub OneMax);

impl Problem for ZeroCostOneMax {
    type Genome = Bits;
    fn random_genome(&self, rng: &mut Rng) -> Bits {
        self.0.random_genome(rng)
    }
    fn mutate(&self, genome: &mut Bits, rng: &mut Rng) {
        self.0.mutate(genome, rng)
    }
    fn breed(&self, mother: &Bits, father: &Bits, rng: &mut Rng) -> Bits {
        self.0.breed(mother, father, rng)
    }
    fn fitness(&self, _: &Bits) -> f64 {
        0.5
    }
}
