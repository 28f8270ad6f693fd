use std::f64::consts::TAU;

use crate::Problem;
use crate::ops;
use crate::params::Params;
use crate::rng::Rng;

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

    /// Gaussian steps on about one gene in `dims`, with a step size drawn log-uniformly
    /// from 0.5 down to 0.0005, so that one operator both explores and fine-tunes.
    fn mutate(&self, genome: &mut Vec<f64>, rng: &mut Rng) {
        let sigma = 0.5 * 10f64.powf(-3.0 * rng.next_f64());
        let p = 1.0 / self.dims.max(1) as f64;
        if ops::gaussian(genome, p, sigma, -BOUND, BOUND, rng) == 0 && !genome.is_empty() {
            let i = rng.index(genome.len());
            genome[i] = (genome[i] + sigma * rng.normal()).clamp(-BOUND, BOUND);
        }
    }

    fn breed(&self, mother: &Vec<f64>, father: &Vec<f64>, rng: &mut Rng) -> Vec<f64> {
        ops::uniform(mother, father, rng)
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
        Params { target_fitness: Some(0.999), ..super::generational(500_000) }
    }
}
