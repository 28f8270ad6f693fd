//! The one place that turns a problem's name into a problem.

use ga_core::Problem;
use ga_core::problems::{Knapsack, OneMax, Rastrigin, Sum231, Tsp};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cli::ProblemName;

/// Something to do with a problem whatever its genome type.
pub trait WithProblem {
    type Output;
    fn with<P>(self, problem: P) -> Self::Output
    where
        P: Problem + 'static,
        P::Genome: Serialize + DeserializeOwned;
}

/// Builds the named problem (of `size`, where it has one) and hands it to `f`.
pub fn visit<F: WithProblem>(name: ProblemName, size: Option<usize>, f: F) -> F::Output {
    match name {
        ProblemName::Sum231 => f.with(Sum231 { length: size.unwrap_or(5), ..Sum231::default() }),
        ProblemName::OneMax => f.with(OneMax { bits: size.unwrap_or(100) }),
        ProblemName::Rastrigin => f.with(Rastrigin { dims: size.unwrap_or(10) }),
        ProblemName::Knapsack => f.with(Knapsack::p07()),
        ProblemName::Tsp => f.with(Tsp::berlin52()),
    }
}
