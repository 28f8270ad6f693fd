//! The [`Problem`] trait: what a user writes to put the engine to work.

use crate::genome::Genome;
use crate::params::{Params, StopReason};
use crate::rng::Rng;
use crate::stats::GenerationStats;

/// A problem for the GA: how to make, vary and score genomes (the original's
/// `FeatureFactory`). Methods take `&self` and must be deterministic given their inputs and
/// `rng`, so that a seed reproduces a run on any number of threads.
pub trait Problem: Send + Sync {
    /// The genome type.
    type Genome: Genome;

    /// A fresh random genome.
    fn random_genome(&self, rng: &mut Rng) -> Self::Genome;

    /// Mutates a genome in place.
    fn mutate(&self, genome: &mut Self::Genome, rng: &mut Rng);

    /// A child of two parents.
    fn breed(&self, mother: &Self::Genome, father: &Self::Genome, rng: &mut Rng) -> Self::Genome;

    /// [`Problem::breed`] into `child`, a retired genome whose storage may be reused: the
    /// engine hands the genomes of members it drops back here, so a run that implements
    /// this allocates no genome once its first generations are done. It must leave in
    /// `child` exactly what `breed` returns for the same draws (whatever `child` held). The
    /// default breeds a new genome and drops the old one.
    fn breed_into(&self, mother: &Self::Genome, father: &Self::Genome, rng: &mut Rng, child: &mut Self::Genome) {
        *child = self.breed(mother, father, rng);
    }

    /// Two children of the same two parents, into `first` and `second` (retired genomes, as
    /// for [`Problem::breed_into`]): the engine's tournament steps breed in pairs, as DEAP,
    /// pygmo and Jenetics do, one crossover for two children. It must leave the same pair
    /// for the same draws whatever the two held. The default breeds `first` from (mother,
    /// father) and then `second` from (father, mother), in that order; a crossover that
    /// makes complementary children (uniform, one-point, SBX) does better to make both
    /// from one set of draws.
    fn breed_pair_into(
        &self,
        mother: &Self::Genome,
        father: &Self::Genome,
        rng: &mut Rng,
        first: &mut Self::Genome,
        second: &mut Self::Genome,
    ) {
        self.breed_into(mother, father, rng, first);
        self.breed_into(father, mother, rng, second);
    }

    /// Fitness in `[0, 1]`, higher is better. Called once per admitted genome, possibly on
    /// several threads at once. A value outside `[0, 1]` (or NaN) stops the run with
    /// [`Error::InvalidFitness`](crate::Error::InvalidFitness).
    fn fitness(&self, genome: &Self::Genome) -> f64;

    /// Whether a genome that came from elsewhere (a peer worker, a file) is one this
    /// problem can work with; the reason if not. Operators may assume it holds (equal
    /// lengths for crossover, say), so a worker checks every genome it receives.
    fn check(&self, _genome: &Self::Genome) -> std::result::Result<(), String> {
        Ok(())
    }

    /// The parameters this problem runs best with. Defaults to the original's.
    fn params(&self) -> Params {
        Params::default()
    }

    /// Whether to stop after the generation `stats` describes. Defaults to the original's
    /// test ([`Params::stop_reason`]). It must depend on its arguments alone: over workers,
    /// each worker also applies it to decide the steps it runs without the framework's word
    /// (chained steps), and they must all stop where the framework does.
    fn stop(&self, stats: &GenerationStats, params: &Params) -> Option<StopReason> {
        params.stop_reason(stats)
    }

    /// The problem's own measure of a genome, for people reading a report: a tour's length,
    /// a knapsack's profit, the function's value. `None` (the default) when fitness says
    /// it all.
    fn measure(&self, _genome: &Self::Genome) -> Option<Measure> {
        None
    }
}

/// A problem's own measure of a genome ([`Problem::measure`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measure {
    /// What it is, e.g. "tour length".
    pub name: &'static str,
    /// Its value.
    pub value: f64,
}

/// A shared or borrowed problem is a problem: shards and decoders can share one.
macro_rules! delegate_problem {
    ($($ptr:ty),*) => {$(
        impl<P: Problem + ?Sized> Problem for $ptr {
            type Genome = P::Genome;
            fn random_genome(&self, rng: &mut Rng) -> Self::Genome {
                (**self).random_genome(rng)
            }
            fn mutate(&self, genome: &mut Self::Genome, rng: &mut Rng) {
                (**self).mutate(genome, rng)
            }
            fn breed(&self, mother: &Self::Genome, father: &Self::Genome, rng: &mut Rng) -> Self::Genome {
                (**self).breed(mother, father, rng)
            }
            fn breed_into(&self, mother: &Self::Genome, father: &Self::Genome, rng: &mut Rng, child: &mut Self::Genome) {
                (**self).breed_into(mother, father, rng, child)
            }
            fn breed_pair_into(
                &self,
                mother: &Self::Genome,
                father: &Self::Genome,
                rng: &mut Rng,
                first: &mut Self::Genome,
                second: &mut Self::Genome,
            ) {
                (**self).breed_pair_into(mother, father, rng, first, second)
            }
            fn fitness(&self, genome: &Self::Genome) -> f64 {
                (**self).fitness(genome)
            }
            fn check(&self, genome: &Self::Genome) -> std::result::Result<(), String> {
                (**self).check(genome)
            }
            fn params(&self) -> Params {
                (**self).params()
            }
            fn stop(&self, stats: &GenerationStats, params: &Params) -> Option<StopReason> {
                (**self).stop(stats, params)
            }
            fn measure(&self, genome: &Self::Genome) -> Option<Measure> {
                (**self).measure(genome)
            }
        }
    )*};
}

delegate_problem!(&P, std::sync::Arc<P>);

#[cfg(test)]
mod tests {
    use super::*;

    /// Breeds the mother's first element plus a draw, to show which parent came first.
    struct Tagged;

    impl Problem for Tagged {
        type Genome = Vec<i64>;
        fn random_genome(&self, rng: &mut Rng) -> Vec<i64> {
            vec![rng.below(10) as i64]
        }
        fn mutate(&self, _: &mut Vec<i64>, _: &mut Rng) {}
        fn breed(&self, mother: &Vec<i64>, _: &Vec<i64>, rng: &mut Rng) -> Vec<i64> {
            vec![mother[0], rng.below(1000) as i64]
        }
        fn fitness(&self, _: &Vec<i64>) -> f64 {
            0.0
        }
    }

    #[test]
    fn a_pair_by_default_is_two_children_with_the_parents_roles_swapped() {
        let (mother, father) = (vec![1], vec![2]);
        let (mut a, mut b) = (Rng::new(3), Rng::new(3));
        let (mut first, mut second) = (vec![7; 5], Vec::new());
        Tagged.breed_pair_into(&mother, &father, &mut a, &mut first, &mut second);
        let expected = (Tagged.breed(&mother, &father, &mut b), Tagged.breed(&father, &mother, &mut b));
        assert_eq!((first, second), expected);
        assert_eq!(a, b, "the same draws");
        // Through a shared reference, the same.
        let (mut first, mut second) = (Vec::new(), Vec::new());
        <&Tagged as Problem>::breed_pair_into(&&Tagged, &mother, &father, &mut Rng::new(3), &mut first, &mut second);
        assert_eq!((first, second), expected);
    }
}
