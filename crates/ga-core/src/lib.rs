//! `ga-core`: the Exelixi genetic-algorithm engine.
//!
//! It owns the GA's semantics: the [`Problem`] trait users implement, [`Genome`]s and their
//! [`Key`] digests, the standard operators in [`ops`], the run [`Params`] (with the original
//! Exelixi's defaults), the fitness [`Histogram`] and its cutoff, and the [`Engine`] that
//! runs a population generation by generation, evaluating fitness in parallel on a rayon
//! pool the caller sizes. A seed fixes a run: the same seed prints the same result on one
//! thread or many.
//!
//! **Boundary:** no I/O, no async, no network. This crate never depends on tokio, tonic,
//! prost, hyper or any Mesos type; the services layer builds on it, never the reverse.
//!
//! ```
//! use ga_core::{Engine, problems::OneMax};
//! let outcome = Engine::new(OneMax { bits: 64 }).seed(1).run(&mut |_: &_| {}).unwrap();
//! assert_eq!(outcome.best().unwrap().fitness, 1.0);
//! ```

mod engine;
mod error;
mod evolve;
mod genome;
mod individual;
mod key;
mod memory;
pub mod moo;
pub mod ops;
mod parallel;
mod params;
mod problem;
pub mod problems;
pub mod rng;
mod shard;
mod stats;

pub use engine::{Checkpoints, Engine, MAX_THREADS, RunState};
pub use error::{Error, Result};
pub use evolve::{Census, Observer, Outcome, Population, Progress, evolve, evolve_from, verdict};
pub use genome::{Bits, Genome};
pub use individual::{Individual, key_of, sort_report};
#[cfg(feature = "serde")]
pub use key::packed_keys;
pub use key::{Key, KeySet};
pub use memory::estimate_bytes;
pub use params::{MAX_POP, Migration, Neighbours, PLUS_OFFSPRING, Params, Selection, StopReason, Topology};
pub use problem::{Measure, Problem};
pub use rng::Rng;
pub use shard::{Ahead, Candidate, Origin, Shard, ShardDelta, ShardState};
pub use stats::{GenerationStats, Histogram};
