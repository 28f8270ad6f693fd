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
    /// The function's value (lower is better). Each cos 2πx is computed by an exact
    /// reduction and a polynomial (absolute error below 4e-16 on [-5.12, 5.12]; libm's
    /// cosine for coordinates of 2^51 and more), two coordinates at a time; the terms are
    /// summed in coordinate order.
    pub fn value(&self, x: &[f64]) -> f64 {
        let n = 10.0 * x.len() as f64;
        if !x.iter().all(|v| v.abs() < REDUCIBLE) {
            return n + x.iter().map(|&v| v * v - 10.0 * (TAU * v).cos()).sum::<f64>();
        }
        let term = |v: f64| v * v - 10.0 * cos_tau(v);
        let mut sum = 0.0;
        let pairs = x.chunks_exact(2);
        let last = pairs.remainder().first().copied();
        for pair in pairs {
            let (t0, t1) = (term(pair[0]), term(pair[1]));
            sum += t0;
            sum += t1;
        }
        if let Some(v) = last {
            sum += term(v);
        }
        n + sum
    }
}

/// Below this magnitude, [`cos_tau`]'s reduction is exact (2^51: adding 1.5 · 2^52
/// rounds to a whole number).
const REDUCIBLE: f64 = 2_251_799_813_685_248.0;

/// cos(2πx) for |x| < 2^51, with no call and no branch. The argument is reduced exactly —
/// x minus its nearest whole number, then by symmetry to t in [0, 1/4] — and cos(2πt) is
/// a polynomial of degree 8 in t², fitted on [0, 1/16] (Chebyshev, by mpmath's `chebyfit`;
/// error of the fit 3.9e-18). Absolute error below 4e-16 on Rastrigin's [-5.12, 5.12]
/// (checked against mpmath at 10⁵ points); `(2π · x).cos()` errs by up to 3.3e-15 there,
/// its argument rounded before the cosine. Several times cheaper than libm's `cos`, as
/// the compiler packs two coordinates at a time (the engine benchmark's
/// `rastrigin30/value` against `value_textbook`; docs/PERFORMANCE.md).
#[inline(always)]
fn cos_tau(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 9] = [
        0.2719458494999813,
        -1.7132184107005932,
        7.903462492085097,
        -26.426254066690255,
        60.24464131316041,
        -85.45681720598061,
        64.93939402266395,
        -19.739208802178705,
        1.0,
    ];
    const ROUND: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52
    // |x − n| in [0, 1/2], exact (Sterbenz).
    let r = (x - ((x + ROUND) - ROUND)).abs();
    // cos 2π(1/2 − r) = −cos 2πr.
    let far = ops::mask(r > 0.25);
    let t = ops::select(far, 0.5 - r, r);
    let z = t * t;
    let p = COEFFICIENTS[1..].iter().fold(COEFFICIENTS[0], |p, c| p * z + c);
    f64::from_bits(p.to_bits() ^ (far & (1 << 63)))
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

    fn breed_into(&self, mother: &Vec<f64>, father: &Vec<f64>, rng: &mut Rng, child: &mut Vec<f64>) {
        ops::sbx_into(mother, father, ETA_CROSSOVER, -BOUND, BOUND, rng, child);
    }

    fn check(&self, genome: &Vec<f64>) -> Result<(), String> {
        if genome.len() != self.dims {
            return Err(format!("{} dimensions, expected {}", genome.len(), self.dims));
        }
        // Without a branch a coordinate, so that the loop is vectorised (a genome from a
        // peer is checked on arrival; NaN fails the comparison).
        if !genome.iter().fold(true, |within, x| within & (x.abs() <= BOUND)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cos_tau_is_the_cosine_of_two_pi_x() {
        // cos(2π·x) of these doubles, by mpmath at 30 digits, rounded.
        let exact = [
            (0.1, 0.8090169943749475),
            (0.3, -0.30901699437494734),
            (1.7, -0.3090169943749477),
            (-2.345678, -0.5656016299190314),
            (4.9999, 0.9999998026079184),
            (5.12, 0.7289686274214111),
            (0.2499999, 6.28318530735985e-07),
            (1e-05, 0.9999999980260791),
        ];
        for (x, c) in exact {
            assert!((cos_tau(x) - c).abs() <= 4e-16, "cos_tau({x}) = {}, not {c}", cos_tau(x));
            assert_eq!(cos_tau(-x).to_bits(), cos_tau(x).to_bits(), "even at {x}");
        }
        for k in -20..=20 {
            let x = f64::from(k) / 2.0;
            assert_eq!(cos_tau(x), if k % 2 == 0 { 1.0 } else { -1.0 }, "at {x}");
            assert!(cos_tau(x + 0.25).abs() <= 4e-16, "a zero at {}", x + 0.25);
        }
        let mut rng = Rng::new(3);
        for _ in 0..100_000 {
            let x = rng.range_f64(-BOUND, BOUND);
            assert!((cos_tau(x) - (TAU * x).cos()).abs() < 4e-15, "at {x}");
        }
    }

    #[test]
    fn the_value_is_rastrigins_whatever_the_coordinates() {
        let r = Rastrigin { dims: 3 };
        assert_eq!(r.value(&[0.0, 0.0, 0.0]), 0.0);
        assert_eq!(r.value(&[1.0, -2.0]), 5.0, "odd dims and whole numbers: x² only");
        assert_eq!(r.value(&[]), 0.0);
        let x = [0.5, 4.5, -1.5];
        assert_eq!(r.value(&x), 30.0 + 0.25 + 20.25 + 2.25 + 30.0);
        // Past the exact reduction, the plain cosine: still a value, never a panic.
        assert_eq!(r.value(&[3e15]), 10.0 + (9e30 - 10.0 * (TAU * 3e15).cos()));
        assert!(r.value(&[1e300, 0.0]).is_infinite());
        assert!(r.value(&[f64::NAN]).is_nan());
    }
}
