//! Built-in problems with known optima, for demos, tests and benchmarks.

mod knapsack;
mod onemax;
mod rastrigin;
mod sum231;
mod tsp;

pub use knapsack::Knapsack;
pub use onemax::OneMax;
pub use rastrigin::Rastrigin;
pub use sum231::Sum231;
pub use tsp::Tsp;

use crate::params::{Params, Selection};

/// The names `exelixi run --problem` accepts.
pub const NAMES: &[&str] = &["sum231", "onemax", "rastrigin", "knapsack", "tsp"];

/// Parameters for the generational problems: population 100, tournaments of 3, one elite,
/// crossover 0.9, every child mutated (the operator sets its own per-gene rate), stop at
/// fitness 1.0 or after `max_indiv` evaluations.
fn generational(max_indiv: u64) -> Params {
    Params {
        n_pop: 100,
        n_gen: u32::MAX,
        term_limit: 0.0,
        mutation_rate: 1.0,
        max_indiv,
        selection: Selection::Tournament { size: 3, elites: 1, crossover_rate: 0.9 },
        target_fitness: Some(1.0),
        ..Params::default()
    }
}
