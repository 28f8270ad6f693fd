use crate::genome::Bits;
use crate::params::Params;
use crate::rng::Rng;
use crate::{Measure, Problem};

/// 0/1 knapsack: choose items (one bit each) to maximise profit within a capacity.
///
/// Fitness is the profit over a `reference` profit (the instance's known optimum for the
/// built-in instances, so the optimum scores 1.0). An overweight choice is penalised by
/// twice the best profit-per-weight ratio for each unit of excess, and can never score as
/// high as 1.0.
#[derive(Clone, Debug, PartialEq)]
pub struct Knapsack {
    weights: Vec<u64>,
    profits: Vec<u64>,
    capacity: u64,
    reference: u64,
    penalty: f64,
}

impl Knapsack {
    /// An instance. `reference` scales fitness (use the known optimum when there is one, else
    /// the sum of all profits). Returns `None` if the lists differ in length or are empty,
    /// or a weight or the reference is zero.
    pub fn new(weights: Vec<u64>, profits: Vec<u64>, capacity: u64, reference: u64) -> Option<Self> {
        if weights.len() != profits.len() || weights.is_empty() || reference == 0 || weights.contains(&0) {
            return None;
        }
        let penalty = 2.0 * weights.iter().zip(&profits).map(|(&w, &p)| p as f64 / w as f64).fold(0.0, f64::max);
        Some(Self { weights, profits, capacity, reference, penalty })
    }

    /// P07 of the classic KNAPSACK_01 data set (Kreher & Stinson; distributed by
    /// J. Burkardt): 15 items, capacity 750, optimum profit 1458.
    pub fn p07() -> Self {
        Self::new(
            vec![70, 73, 77, 80, 82, 87, 90, 94, 98, 106, 110, 113, 115, 118, 120],
            vec![135, 139, 149, 150, 156, 163, 173, 184, 192, 201, 210, 214, 221, 229, 240],
            750,
            1458,
        )
        .expect("P07 is a valid instance")
    }

    /// Number of items.
    pub fn items(&self) -> usize {
        self.weights.len()
    }

    /// Total (weight, profit) of a choice.
    pub fn load(&self, choice: &Bits) -> (u64, u64) {
        choice
            .iter()
            .zip(self.weights.iter().zip(&self.profits))
            .filter(|(taken, _)| *taken)
            .fold((0, 0), |(w, p), (_, (&wi, &pi))| (w + wi, p + pi))
    }

    /// The best profit by exhaustive search (for instances of up to 25 items).
    pub fn brute_force_optimum(&self) -> Option<u64> {
        let n = self.items();
        if n > 25 {
            return None;
        }
        (0u64..1 << n)
            .filter_map(|mask| {
                let (w, p) = (0..n)
                    .filter(|i| mask >> i & 1 == 1)
                    .fold((0, 0), |(w, p), i| (w + self.weights[i], p + self.profits[i]));
                (w <= self.capacity).then_some(p)
            })
            .max()
    }
}

impl Problem for Knapsack {
    type Genome = Bits;

    fn random_genome(&self, rng: &mut Rng) -> Bits {
        Bits::random(self.items(), rng)
    }

    fn mutate(&self, genome: &mut Bits, rng: &mut Rng) {
        if genome.flip_each(1.0 / self.items() as f64, rng) == 0 {
            genome.flip(rng.index(self.items()));
        }
    }

    fn breed(&self, mother: &Bits, father: &Bits, rng: &mut Rng) -> Bits {
        mother.uniform_crossover(father, rng)
    }

    fn breed_into(&self, mother: &Bits, father: &Bits, rng: &mut Rng, child: &mut Bits) {
        mother.uniform_crossover_into(father, rng, child);
    }

    fn breed_pair_into(&self, mother: &Bits, father: &Bits, rng: &mut Rng, first: &mut Bits, second: &mut Bits) {
        mother.uniform_crossover_pair_into(father, rng, first, second);
    }

    fn check(&self, genome: &Bits) -> Result<(), String> {
        if genome.len() == self.items() {
            Ok(())
        } else {
            Err(format!("{} bits, expected one per item ({})", genome.len(), self.items()))
        }
    }

    fn fitness(&self, genome: &Bits) -> f64 {
        let (w, p) = self.load(genome);
        let reference = self.reference as f64;
        if w <= self.capacity {
            (p as f64 / reference).min(1.0)
        } else {
            let penalised = p as f64 - self.penalty * (w - self.capacity) as f64;
            (penalised / reference).clamp(0.0, 0.999)
        }
    }

    fn params(&self) -> Params {
        super::plus(100_000)
    }

    fn measure(&self, genome: &Bits) -> Option<Measure> {
        let (w, p) = self.load(genome);
        let name = if w <= self.capacity { "profit" } else { "profit (over capacity)" };
        Some(Measure { name, value: p as f64 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p07_optimum_is_1458_by_exhaustive_search() {
        assert_eq!(Knapsack::p07().brute_force_optimum(), Some(1458));
    }

    #[test]
    fn the_published_optimal_choice_scores_one() {
        let k = Knapsack::p07();
        let choice = Bits::from_bools(&[1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1].map(|b| b == 1));
        assert_eq!(k.load(&choice), (749, 1458));
        assert_eq!(k.fitness(&choice), 1.0);
        let all = Bits::from_bools(&[true; 15]);
        assert!(k.fitness(&all) < 1.0);
    }

    #[test]
    fn bad_instances_are_refused() {
        assert!(Knapsack::new(vec![1], vec![1, 2], 3, 3).is_none());
        assert!(Knapsack::new(vec![], vec![], 3, 3).is_none());
        assert!(Knapsack::new(vec![0], vec![1], 3, 3).is_none());
    }
}
