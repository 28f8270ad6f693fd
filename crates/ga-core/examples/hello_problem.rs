//! A problem of your own in under 40 lines: evolve a string toward a target phrase.
//! `cargo run --release -p ga-core --example hello_problem`
use ga_core::{Engine, Params, Problem, Rng, Selection, ops};

const TARGET: &[u8] = b"EXELIXI MEANS PROGRESS";
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ ";

struct Phrase;

impl Problem for Phrase {
    type Genome = Vec<u32>; // indices into ALPHABET

    fn random_genome(&self, rng: &mut Rng) -> Vec<u32> {
        TARGET.iter().map(|_| rng.index(ALPHABET.len()) as u32).collect()
    }
    fn mutate(&self, genome: &mut Vec<u32>, rng: &mut Rng) {
        let i = rng.index(genome.len());
        genome[i] = rng.index(ALPHABET.len()) as u32;
    }
    fn breed(&self, mother: &Vec<u32>, father: &Vec<u32>, rng: &mut Rng) -> Vec<u32> {
        ops::uniform(mother, father, rng)
    }
    fn fitness(&self, genome: &Vec<u32>) -> f64 {
        let right = genome.iter().zip(TARGET).filter(|(g, t)| ALPHABET[**g as usize] == **t);
        right.count() as f64 / TARGET.len() as f64
    }
    fn params(&self) -> Params {
        let selection = Selection::Tournament { size: 3, elites: 1, crossover_rate: 0.9 };
        let (n_gen, term_limit, target_fitness) = (1000, 0.0, Some(1.0));
        Params {
            n_pop: 100,
            n_gen,
            max_indiv: 100_000,
            term_limit,
            target_fitness,
            mutation_rate: 1.0,
            selection,
            ..Params::default()
        }
    }
}

fn main() -> Result<(), ga_core::Error> {
    let outcome = Engine::new(Phrase).seed(42).run(&mut |s: &ga_core::GenerationStats| {
        println!("gen {:>3}  best {:.3}", s.generation, s.best);
    })?;
    let best = outcome.best().expect("a non-empty report");
    let text: String = best.genome.iter().map(|&g| ALPHABET[g as usize] as char).collect();
    println!("{text:?} after {} evaluations ({:?})", outcome.evaluations, outcome.stop);
    Ok(())
}
