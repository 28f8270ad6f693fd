//! The engine's errors.

/// What can go wrong in `ga-core`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A parameter is outside its domain.
    #[error("invalid {name}: {value} (expected {expected})")]
    InvalidParam {
        /// The parameter's name, as the command line spells it.
        name: &'static str,
        /// The offending value.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A problem's fitness function returned a value outside `[0, 1]`, or NaN.
    #[error("fitness {value} is outside [0, 1] for genome {genome}")]
    InvalidFitness {
        /// The value returned.
        value: f64,
        /// The genome, as JSON.
        genome: String,
    },
    /// A shard state to restore does not fit this run (another shard, a genome the problem
    /// refuses, a key that is not its digest).
    #[error("invalid shard state: {0}")]
    InvalidState(String),
    /// A checkpoint could not be kept (the caller's storage said why).
    #[error("cannot keep a checkpoint: {0}")]
    Checkpoint(String),
    /// The shards of a population could not do their part (e.g. a worker was lost).
    #[error("{0}")]
    Population(String),
    /// The rayon thread pool could not be built.
    #[error("cannot build a pool of {threads} threads: {reason}")]
    ThreadPool {
        /// Threads asked for.
        threads: usize,
        /// rayon's explanation.
        reason: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
