use std::f64::consts::TAU;

use crate::ops;
use crate::params::Params;
use crate::rng::Rng;
use crate::{Measure, Problem};

/// The Rastrigin function in `dims` dimensions on `[-5.12, 5.12]`:
/// `f(x) = 10n + Σ (x_i² − 10 cos 2πx_i)`, minimum 0 at the origin. Fitness is
/// `1 / (1 + f)`, so the optimum is 1.0.
#[derive(Clone, Debug, PartialEq)]
pub struct Rastrigin {
    /// Dimensions.
    pub dims: usize,
}

impl Default for Rastrigin {
    fn default() -> Self {
        Self { dims: 10 }
    }
}

const BOUND: f64 = 5.12;
/// The distribution index of SBX, and the smallest of polynomial mutation (pygmo's `sga`
/// defaults, 1 and 1; pymoo's GA uses 15 and 20, which converged 10⁵ times less far on
/// Rastrigin-30).
const ETA_CROSSOVER: f64 = 1.0;
const ETA_MUTATION: f64 = 1.0;

impl Rastrigin {
    /// The function's value (lower is better).
    pub fn value(&self, x: &[f64]) -> f64 {
        10.0 * x.len() as f64 + x.iter().map(|&v| v * v - 10.0 * (TAU * v).cos()).sum::<f64>()
    }
}

impl Problem for Rastrigin {
    type Genome = Vec<f64>;

    fn random_genome(&self, rng: &mut Rng) -> Vec<f64> {
        (0..self.dims).map(|_| rng.range_f64(-BOUND, BOUND)).collect()
    }

    /// Polynomial mutation of each gene with probability 1/`dims` (a third of the children
    /// keep crossover's genes unchanged, which is what fine-tunes a converged population),
    /// with a distribution index drawn log-uniformly from 1 to 100 at each call: index 1
    /// makes the long jumps that leave a local minimum of Rastrigin, 100 the short steps
    /// (docs/PERFORMANCE.md says what else was tried).
    fn mutate(&self, genome: &mut Vec<f64>, rng: &mut Rng) {
        let eta = ETA_MUTATION * (std::f64::consts::LN_10 * 2.0 * rng.next_f64()).exp();
        let p = 1.0 / self.dims.max(1) as f64;
        ops::polynomial(genome, p, eta, -BOUND, BOUND, rng);
    }

    /// Simulated binary crossover of index 1: wide, so that the population stays spread
    /// enough to keep converging.
    fn breed(&self, mother: &Vec<f64>, father: &Vec<f64>, rng: &mut Rng) -> Vec<f64> {
        ops::sbx(mother, father, ETA_CROSSOVER, -BOUND, BOUND, rng)
    }

    fn check(&self, genome: &Vec<f64>) -> Result<(), String> {
        if genome.len() != self.dims {
            return Err(format!("{} dimensions, expected {}", genome.len(), self.dims));
        }
        if genome.iter().any(|x| !(-BOUND..=BOUND).contains(x)) {
            return Err(format!("a coordinate outside [-{BOUND}, {BOUND}] (or NaN)"));
        }
        Ok(())
    }

    fn fitness(&self, genome: &Vec<f64>) -> f64 {
        1.0 / (1.0 + self.value(genome).max(0.0))
    }

    fn params(&self) -> Params {
        Params { target_fitness: Some(0.999), ..super::plus(500_000) }
    }

    fn measure(&self, genome: &Vec<f64>) -> Option<Measure> {
        Some(Measure { name: "rastrigin", value: self.value(genome) })
    }
}
