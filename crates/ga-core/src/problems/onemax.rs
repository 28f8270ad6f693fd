use crate::genome::Bits;
use crate::params::{Params, Selection};
use crate::rng::Rng;
use crate::{Measure, Problem};

/// OneMax: maximise the number of ones in a string of `bits` bits. Uniform crossover on
/// every child (rate 1.0: a copy of a parent is mostly a genome already seen, bred again
/// at a cost; see docs/PERFORMANCE.md), bit-flip mutation at rate 1/`bits`; fitness is the
/// share of ones, so the optimum is 1.0.
#[derive(Clone, Debug, PartialEq)]
pub struct OneMax {
    /// String length.
    pub bits: usize,
}

impl Default for OneMax {
    fn default() -> Self {
        Self { bits: 100 }
    }
}

impl Problem for OneMax {
    type Genome = Bits;

    fn random_genome(&self, rng: &mut Rng) -> Bits {
        Bits::random(self.bits, rng)
    }

    fn mutate(&self, genome: &mut Bits, rng: &mut Rng) {
        genome.flip_each(1.0 / self.bits as f64, rng);
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
        if genome.len() == self.bits { Ok(()) } else { Err(format!("{} bits, expected {}", genome.len(), self.bits)) }
    }

    #[inline]
    fn fitness(&self, genome: &Bits) -> f64 {
        if self.bits == 0 { 1.0 } else { genome.count_ones() as f64 / self.bits as f64 }
    }

    fn params(&self) -> Params {
        Params {
            selection: Selection::Plus { size: 3, crossover_rate: 1.0, offspring: crate::PLUS_OFFSPRING },
            ..super::plus(1_000_000)
        }
    }

    fn measure(&self, genome: &Bits) -> Option<Measure> {
        Some(Measure { name: "ones", value: genome.count_ones() as f64 })
    }
}
