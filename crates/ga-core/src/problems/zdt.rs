//! ZDT1–ZDT3 (Zitzler, Deb & Thiele, "Comparison of multiobjective evolutionary
//! algorithms: empirical results", Evolutionary Computation 8(2), 2000): two objectives
//! over `n` variables in [0, 1]; the Pareto-optimal front has x₂ … xₙ = 0 (g = 1).

use crate::moo::{Evaluation, MultiObjective};
use crate::ops;
use crate::rng::Rng;

/// Which of the three.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZdtKind {
    /// Convex front: f₂ = 1 − √f₁.
    Zdt1,
    /// Non-convex front: f₂ = 1 − f₁².
    Zdt2,
    /// Disconnected front: f₂ = 1 − √f₁ − f₁ sin(10π f₁).
    Zdt3,
}

/// A ZDT problem of `n` variables (30 in the paper), with the operators of Deb's NSGA-II
/// (and pymoo's defaults): SBX of index 15, polynomial mutation of index 20 on each
/// variable with probability 1/n.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zdt {
    /// Which function.
    pub kind: ZdtKind,
    /// Variables.
    pub n: usize,
}

impl Zdt {
    /// The paper's instance: 30 variables.
    pub fn new(kind: ZdtKind) -> Self {
        Zdt { kind, n: 30 }
    }
}

impl MultiObjective for Zdt {
    type Genome = Vec<f64>;

    fn objectives(&self) -> usize {
        2
    }

    fn random_genome(&self, rng: &mut Rng) -> Vec<f64> {
        (0..self.n).map(|_| rng.next_f64()).collect()
    }

    fn mutate(&self, genome: &mut Vec<f64>, rng: &mut Rng) {
        ops::polynomial(genome, 1.0 / self.n.max(1) as f64, 20.0, 0.0, 1.0, rng);
    }

    fn breed(&self, mother: &Vec<f64>, father: &Vec<f64>, rng: &mut Rng) -> Vec<f64> {
        ops::sbx(mother, father, 15.0, 0.0, 1.0, rng)
    }

    fn evaluate(&self, x: &Vec<f64>) -> Evaluation {
        let f1 = x.first().copied().unwrap_or(0.0);
        let rest = x.len().saturating_sub(1).max(1) as f64;
        let g = 1.0 + 9.0 * x.iter().skip(1).sum::<f64>() / rest;
        let h = match self.kind {
            ZdtKind::Zdt1 => 1.0 - (f1 / g).sqrt(),
            ZdtKind::Zdt2 => 1.0 - (f1 / g).powi(2),
            ZdtKind::Zdt3 => 1.0 - (f1 / g).sqrt() - f1 / g * (10.0 * std::f64::consts::PI * f1).sin(),
        };
        Evaluation { objectives: vec![f1, g * h], violation: 0.0 }
    }

    fn reference(&self) -> Option<[f64; 2]> {
        Some([1.1, 1.1])
    }
}
