//! Built-in problems with known optima, for demos, tests and benchmarks.

mod knapsack;
mod onemax;
mod rastrigin;
mod sum231;
mod tsp;
mod zdt;

pub use knapsack::Knapsack;
pub use onemax::OneMax;
pub use rastrigin::Rastrigin;
pub use sum231::Sum231;
pub use tsp::Tsp;
pub use zdt::{Zdt, ZdtKind};

use crate::params::{Params, Selection};

/// The single-objective built-in problems' names (the command line also offers zdt1–zdt3,
/// run by NSGA-II; its catalog is `exelixi::Catalog::builtin`).
pub const NAMES: &[&str] = &["sum231", "onemax", "rastrigin", "knapsack", "tsp"];

/// Parameters for the built-in problems but sum231: population 100, tournaments of 3,
/// crossover 0.9, every child mutated (the operator sets its own per-gene rate), (μ+λ)
/// survivors, stop at fitness 1.0 or after `max_indiv` evaluations.
fn plus(max_indiv: u64) -> Params {
    Params {
        n_pop: 100,
        n_gen: u32::MAX,
        term_limit: 0.0,
        mutation_rate: 1.0,
        max_indiv,
        selection: Selection::Plus { size: 3, crossover_rate: 0.9, offspring: crate::PLUS_OFFSPRING },
        target_fitness: Some(1.0),
        ..Params::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bits, Problem, Rng};

    #[test]
    fn checks_accept_their_own_genomes_and_refuse_foreign_ones() {
        let mut rng = Rng::new(1);
        let s = Sum231::default();
        assert!(s.check(&s.random_genome(&mut rng)).is_ok());
        assert!(s.check(&vec![1, 2]).unwrap_err().contains("2 genes"));
        assert!(s.check(&vec![1, 2, 3, 4, 500]).is_err());
        let o = OneMax { bits: 10 };
        assert!(o.check(&o.random_genome(&mut rng)).is_ok());
        assert!(o.check(&Bits::zeros(11)).is_err());
        let r = Rastrigin { dims: 3 };
        assert!(r.check(&r.random_genome(&mut rng)).is_ok());
        assert!(r.check(&vec![0.0, f64::NAN, 0.0]).is_err());
        let k = Knapsack::p07();
        assert!(k.check(&k.random_genome(&mut rng)).is_ok());
        assert!(k.check(&Bits::zeros(3)).is_err());
        let t = Tsp::berlin52();
        assert!(t.check(&t.random_genome(&mut rng)).is_ok());
        assert!(t.check(&vec![0; 52]).is_err());
        assert!(t.check(&(0..51).collect()).is_err());
    }

    /// `breed_into` leaves what `breed` returns for the same draws, whatever the storage
    /// held before (shorter, longer, another genome), for every built-in problem.
    #[test]
    fn breeding_into_a_dropped_genome_breeds_the_same_child() {
        fn same<P: Problem<Genome: PartialEq>>(p: &P, seed: u64) {
            let mut rng = Rng::new(seed);
            let (a, b) = (p.random_genome(&mut rng), p.random_genome(&mut rng));
            let mut storage = p.random_genome(&mut rng);
            for round in 0..50 {
                let expected = p.breed(&a, &b, &mut Rng::new(round));
                p.breed_into(&a, &b, &mut Rng::new(round), &mut storage);
                assert!(storage == expected, "round {round}");
            }
        }
        same(&OneMax { bits: 1000 }, 1);
        same(&OneMax { bits: 3 }, 2);
        same(&Rastrigin { dims: 30 }, 3);
        same(&Rastrigin { dims: 7 }, 4);
        same(&Knapsack::p07(), 5);
        same(&Tsp::berlin52(), 6);
        same(&Sum231::default(), 7);
        // Storage of another length first: a genome of a different problem size.
        let (small, large) = (OneMax { bits: 3 }, OneMax { bits: 1000 });
        let mut rng = Rng::new(8);
        let (a, b) = (large.random_genome(&mut rng), large.random_genome(&mut rng));
        let mut storage = small.random_genome(&mut rng);
        large.breed_into(&a, &b, &mut Rng::new(9), &mut storage);
        assert_eq!(storage, large.breed(&a, &b, &mut Rng::new(9)));
        let mut reals = vec![1.0; 90];
        Rastrigin { dims: 30 }.breed_into(&vec![0.5; 30], &vec![-0.5; 30], &mut Rng::new(10), &mut reals);
        assert_eq!(reals, Rastrigin { dims: 30 }.breed(&vec![0.5; 30], &vec![-0.5; 30], &mut Rng::new(10)));
    }
}
