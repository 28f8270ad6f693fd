//! `worker-service`: the long-running Exelixi worker, a tonic gRPC service that holds one
//! shard of a job, a task queue for batches from peer shards, and answers the framework's
//! phase calls.
//!
//! It knows nothing about genetic algorithms: a job (the worker side of a UnitOfWork)
//! plugs in through [`ShardWork`], created by name from a [`Registry`]. Phases run on a
//! blocking thread (the job's CPU work, e.g. fitness on rayon, never runs on the async
//! runtime); deliveries from peers are decoded on arrival, outside the job's lock, so two
//! workers sending to each other mid-phase cannot deadlock.
//!
//! Every call must carry the run's secret token and the protocol version
//! ([`PROTOCOL_VERSION`]); answers carry the version back and [`WorkerClient`] checks it.
//!
//! **Boundary:** depends on tokio, tonic and prost (and the small leaf crates getrandom,
//! subtle and tokio-stream); never on `ga-core`, `uow` or any Mesos type (the tidy test
//! checks it).

mod client;
mod compute;
mod conn;
mod fleet;
mod server;
mod work;

/// Generated from `proto/exelixi/worker/v1/worker.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("exelixi.worker.v1");
}

pub use client::{CONNECT_TIMEOUT, ClientError, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT, WorkerClient};
pub use compute::ComputeClass;
pub use conn::Limits;
pub use fleet::{Fleet, FleetError, Killer, MALLOC_TUNABLES_ENV, TOKEN_ENV, WORKER_MALLOC_TUNABLES};
/// Payloads as calls return them: shared slices of what was received, never copied again.
pub use prost::bytes::Bytes;
pub use server::{ServeError, WorkerConfig, serve, serve_process};
/// gRPC status codes, as [`ClientError::code`] reports them.
pub use tonic::Code;
pub use work::{
    Addressed, Batch, BatchDecoder, Job, JobDecoder, Outbox, PhaseOutput, Registry, Release, ShardWork, WorkError,
};

/// The wire protocol's version; both sides refuse any other. 2 added Ping, which the
/// framework relies on to name a hung worker; 3 the run id on deliveries, which recovery
/// relies on to refuse a batch from before a reconfiguration; 4 steps (two phases in one
/// round trip, deliveries tagged with their step), which a worker of 3 would take for a
/// lone phase; 5 the GA's parameters with islands (`Params::migration`) in its
/// configuration, which a worker of 4 cannot decode; 6 announced steps (a worker works on
/// the next step before it is asked and delivers its batches early, to peers that must
/// hold them for a step they have not been asked yet); 7 the GA's batches with genomes as
/// blocks (`uow::batch`), which a worker of 6 cannot decode; 8 chained steps (several steps
/// in one request, each decided by the workers from their peers' notes), which a worker of
/// 7 would run as one.
pub const PROTOCOL_VERSION: u32 = 8;

/// The metadata key carrying [`PROTOCOL_VERSION`].
pub const PROTOCOL_HEADER: &str = "x-exelixi-protocol";

/// Largest message a worker accepts or sends by default (64 MiB): a batch of individuals
/// is far smaller; anything larger is refused with OUT_OF_RANGE ("message length too large").
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// A fresh run token: 32 random bytes from the operating system, as hex.
pub fn generate_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
