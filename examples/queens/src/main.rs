//! N queens on an N×N board, none attacking another, as a problem of one's own with the
//! whole Exelixi command line: `queens run`, `queens run --workers 2`, `queens worker`,
//! `queens mesos` and the executor the agents start (this binary). The problem is ordinary
//! `ga_core` code; the glue is `main`.

use ga_core::{Measure, Params, Problem, Rng, Selection, ops};

/// Queen `i` stands in row `i`, column `genome[i]`: a permutation, so rows and columns
/// never clash; only diagonals can.
struct Queens {
    n: usize,
}

impl Queens {
    /// Pairs of queens on a shared diagonal.
    fn clashes(&self, cols: &[u32]) -> usize {
        let mut clashes = 0;
        for i in 0..cols.len() {
            for j in i + 1..cols.len() {
                if cols[i].abs_diff(cols[j]) as usize == j - i {
                    clashes += 1;
                }
            }
        }
        clashes
    }
}

impl Problem for Queens {
    type Genome = Vec<u32>;

    fn random_genome(&self, rng: &mut Rng) -> Vec<u32> {
        ops::random_permutation(self.n, rng)
    }

    fn mutate(&self, genome: &mut Vec<u32>, rng: &mut Rng) {
        ops::swap(genome, rng);
    }

    fn breed(&self, mother: &Vec<u32>, father: &Vec<u32>, rng: &mut Rng) -> Vec<u32> {
        ops::order(mother, father, rng)
    }

    fn fitness(&self, genome: &Vec<u32>) -> f64 {
        let pairs = (self.n * self.n.saturating_sub(1) / 2).max(1);
        1.0 - self.clashes(genome) as f64 / pairs as f64
    }

    fn check(&self, genome: &Vec<u32>) -> Result<(), String> {
        if ops::is_permutation(genome, self.n) { Ok(()) } else { Err(format!("not a permutation of 0..{}", self.n)) }
    }

    fn params(&self) -> Params {
        Params {
            n_pop: 100,
            n_gen: 10_000,
            term_limit: 0.0,
            mutation_rate: 0.3,
            max_indiv: 1_000_000,
            target_fitness: Some(1.0),
            selection: Selection::Plus { size: 3, crossover_rate: 0.9, offspring: ga_core::PLUS_OFFSPRING },
            ..Params::default()
        }
    }

    fn measure(&self, genome: &Vec<u32>) -> Option<Measure> {
        Some(Measure { name: "clashes", value: self.clashes(genome) as f64 })
    }
}

fn main() -> std::process::ExitCode {
    let catalog = exelixi::Catalog::new().sized("queens", "N queens, none attacking; --size: N", 8, |n| Queens { n });
    exelixi::main_with(catalog)
}
