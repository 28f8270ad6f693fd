use crate::Problem;
use crate::rng::Rng;

/// The original Exelixi's default problem: `length` integers in `min..=max`, kept sorted,
/// whose sum should be `target`. Fitness is `1 - |sum - target| / target`, floored at 0
/// (the original let it go negative for sums above twice the target).
#[derive(Clone, Debug, PartialEq)]
pub struct Sum231 {
    /// Genes per genome (5).
    pub length: usize,
    /// Smallest gene value (0).
    pub min: i64,
    /// Largest gene value (100).
    pub max: i64,
    /// The sum sought (231).
    pub target: i64,
}

impl Default for Sum231 {
    fn default() -> Self {
        Self { length: 5, min: 0, max: 100, target: 231 }
    }
}

impl Problem for Sum231 {
    type Genome = Vec<i64>;

    fn random_genome(&self, rng: &mut Rng) -> Vec<i64> {
        let mut g: Vec<i64> = (0..self.length).map(|_| rng.range_i64(self.min, self.max)).collect();
        g.sort_unstable();
        g
    }

    /// Replaces one random position with a fresh value, then re-sorts.
    fn mutate(&self, genome: &mut Vec<i64>, rng: &mut Rng) {
        if !genome.is_empty() {
            let i = rng.index(genome.len());
            genome[i] = rng.range_i64(self.min, self.max);
            genome.sort_unstable();
        }
    }

    /// The second half of the mother and the first half of the father, sorted.
    fn breed(&self, mother: &Vec<i64>, father: &Vec<i64>, _rng: &mut Rng) -> Vec<i64> {
        let split = mother.len() / 2;
        let mut child: Vec<i64> = mother[split..].iter().chain(&father[..split.min(father.len())]).copied().collect();
        child.sort_unstable();
        child
    }

    fn check(&self, genome: &Vec<i64>) -> Result<(), String> {
        if genome.len() != self.length {
            return Err(format!("{} genes, expected {}", genome.len(), self.length));
        }
        if genome.iter().any(|g| !(self.min..=self.max).contains(g)) {
            return Err(format!("a gene outside {}..={}", self.min, self.max));
        }
        Ok(())
    }

    fn fitness(&self, genome: &Vec<i64>) -> f64 {
        let sum: i64 = genome.iter().sum();
        (1.0 - (sum - self.target).abs() as f64 / self.target as f64).max(0.0)
    }
}
