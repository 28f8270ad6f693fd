//! Shared set-ups for the benchmarks in `benches/` and the figures in `examples/`.

use std::hint::black_box;

use ga_core::problems::{OneMax, Rastrigin};
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
    fn breed_into(&self, mother: &Bits, father: &Bits, rng: &mut Rng, child: &mut Bits) {
        self.0.breed_into(mother, father, rng, child)
    }
    fn breed_pair_into(&self, mother: &Bits, father: &Bits, rng: &mut Rng, first: &mut Bits, second: &mut Bits) {
        self.0.breed_pair_into(mother, father, rng, first, second)
    }
    fn fitness(&self, _: &Bits) -> f64 {
        0.5
    }
}

/// Rastrigin's function as written in the textbooks and in pygmo: `10n + Σ (x² − 10 cos 2πx)`
/// with libm's cosine of the rounded product 2π·x.
pub fn textbook_rastrigin(x: &[f64]) -> f64 {
    10.0 * x.len() as f64 + x.iter().map(|&v| v * v - 10.0 * (std::f64::consts::TAU * v).cos()).sum::<f64>()
}

/// Rastrigin-30 made costly: the fitness repeats the function `rounds` times, so that one
/// evaluation costs about 50 µs (the distributed benchmark's "expensive fitness"). It
/// computes the textbook formula with libm's cosine, not [`Rastrigin::value`], so that its
/// cost stays what the benchmark's figures were measured with when the engine's own
/// Rastrigin gets faster (its cosine did, 1.65×); its fitness is the same to 1e-14.
#[derive(Clone, Debug)]
pub struct SlowRastrigin {
    /// The function.
    pub inner: Rastrigin,
    /// Repetitions per evaluation.
    pub rounds: u32,
}

impl Default for SlowRastrigin {
    fn default() -> Self {
        // Measured here: 292 ns per textbook Rastrigin-30 evaluation, so 171 rounds ≈ 50 µs (the
        // benchmark prints the cost it sees).
        Self { inner: Rastrigin { dims: 30 }, rounds: 171 }
    }
}

impl Problem for SlowRastrigin {
    type Genome = Vec<f64>;
    fn random_genome(&self, rng: &mut Rng) -> Vec<f64> {
        self.inner.random_genome(rng)
    }
    fn mutate(&self, genome: &mut Vec<f64>, rng: &mut Rng) {
        self.inner.mutate(genome, rng)
    }
    fn breed(&self, mother: &Vec<f64>, father: &Vec<f64>, rng: &mut Rng) -> Vec<f64> {
        self.inner.breed(mother, father, rng)
    }
    fn fitness(&self, genome: &Vec<f64>) -> f64 {
        let mut f = 0.0;
        for _ in 0..self.rounds {
            f = 1.0 / (1.0 + textbook_rastrigin(black_box(genome)).max(0.0));
        }
        f
    }
    fn check(&self, genome: &Vec<f64>) -> Result<(), String> {
        self.inner.check(genome)
    }
    fn params(&self) -> Params {
        self.inner.params()
    }
}
