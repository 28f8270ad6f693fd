//! `uow`: the UnitOfWork framework. A job ([`UnitOfWork`]) runs over the shards of a
//! [`Cluster`] step by step; each [`Cluster::phase`] is a barrier: it returns once every
//! shard has answered, and a shard answers only after the batches it sent to its peers
//! were queued there. The framework configures the shards, lets the job orchestrate, and
//! stops them.
//!
//! Two clusters implement the seam: [`LocalCluster`] (every shard in this process, for
//! tests and single-machine runs) and [`RemoteCluster`] (worker services over gRPC). A
//! job's worker side is a [`worker_service::ShardWork`], so the same job code runs in
//! both. The genetic algorithm is one job ([`ga`]), NSGA-II another ([`moo`]: the framework
//! breeds and selects, workers evaluate); `examples/pi-uow` is a third.
//!
//! **Boundary:** knows workers only through `worker-service`; never depends on Mesos types.

pub mod batch;
pub mod checkpoint;
pub mod ga;
mod local;
pub mod memory;
pub mod moo;
mod observe;
mod remote;
pub mod run;
pub mod spill;

pub use local::LocalCluster;
pub use observe::RunWatch;
pub use remote::{PING_LIMIT, RemoteCluster};
pub use run::{
    DEFAULT_MAX_RECOVERIES, LocalProcesses, Loss, Recovery, RecoveryHook, RunError, RunOptions, Workers, run,
};
pub use worker_service::Bytes;

/// Why a phase could not complete on every shard.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A shard's worker could not be reached or stopped answering.
    #[error("lost the worker of shard {shard} ({endpoint}) during phase {phase:?}: {reason}")]
    Lost {
        /// The shard.
        shard: u32,
        /// The worker's endpoint.
        endpoint: String,
        /// The phase under way.
        phase: String,
        /// What the transport said.
        reason: String,
    },
    /// A shard answered the phase with an error.
    #[error("shard {shard} failed phase {phase:?}: {reason}")]
    Refused {
        /// The shard.
        shard: u32,
        /// The phase.
        phase: String,
        /// The shard's error.
        reason: String,
    },
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum UowError {
    /// The cluster failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A payload did not encode or decode.
    #[error("{what}: {reason}")]
    Codec {
        /// Which message.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The job itself failed.
    #[error("{0}")]
    Job(String),
}

/// The shards of a run, as a job sees them.
pub trait Cluster {
    /// Number of shards.
    fn shards(&self) -> u32;

    /// Runs `phase` on every shard, with `payload(shard)` as its input; returns the answers
    /// in shard order once every shard has answered (the barrier).
    fn phase(&mut self, phase: &str, payload: &mut dyn FnMut(u32) -> Vec<u8>) -> Result<Vec<Bytes>, ClusterError>;

    /// Runs `first` then `then` on every shard as one step: a shard runs `then` once every
    /// batch that `first` addressed to it, from any shard, has arrived; returns `then`'s
    /// answers in shard order (`first`'s are dropped: a job that needs them runs two
    /// phases). What each shard computes is what the two phases in a row compute; the
    /// default runs them so, with two barriers, and a cluster of workers in one round trip
    /// (each worker waits for its peers' batches, not for the framework).
    fn step(
        &mut self,
        (first, first_payload): (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        (then, then_payload): (&str, &mut dyn FnMut(u32) -> Vec<u8>),
    ) -> Result<Vec<Bytes>, ClusterError> {
        self.phase(first, first_payload)?;
        self.phase(then, then_payload)
    }

    /// [`Cluster::step`], announcing the next call: unless the job ends first (any other
    /// call may follow), it is a step whose first phase is `first` again, with
    /// `ahead(shard)` as its payload. A cluster may start that phase as soon as a shard
    /// has answered this step (a worker's job may work ahead on it); one that breaks the
    /// announcement may be refused. The default ignores it.
    fn step_announcing(
        &mut self,
        first: (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        then: (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        ahead: &mut dyn FnMut(u32) -> Vec<u8>,
    ) -> Result<Vec<Bytes>, ClusterError> {
        let _ = ahead;
        self.step(first, then)
    }

    /// A step as [`Cluster::step_announcing`] (announcing if `ahead` is given), followed by
    /// a **chain** of `links.0` links: one more step per link, with the link's payloads for
    /// `first` and `then` (`links.1` gives each shard its `links.0` pairs), which each shard
    /// runs without another call, after its job has read every peer's note of the step and
    /// agreed to go on ([`worker_service::ShardWork::go_on`]). An announcement is then for the
    /// step after the last link. Returns, per shard, the answers of the step and of each link that ran, and
    /// whether its job ended the chain early; or `None`, having run nothing, if this cluster
    /// does not chain (the default).
    #[allow(clippy::type_complexity)]
    fn step_chain(
        &mut self,
        first: (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        then: (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        links: (usize, &mut dyn FnMut(u32) -> Vec<(Vec<u8>, Vec<u8>)>),
        ahead: Option<&mut dyn FnMut(u32) -> Vec<u8>>,
    ) -> Result<Option<Vec<(Vec<Bytes>, bool)>>, ClusterError> {
        let _ = (first, then, links, ahead);
        Ok(None)
    }
}

/// A distributed job: what the framework needs to run it over a set of workers.
///
/// Its worker side is a [`worker_service::ShardWork`] registered under [`UnitOfWork::job`];
/// this is the framework side.
pub trait UnitOfWork {
    /// What the job produces (the final report).
    type Output;

    /// The name workers know the job by.
    fn job(&self) -> &'static str;

    /// The configuration of shard `shard` of `shards`, as the worker side decodes it.
    fn shard_config(&self, shard: u32, shards: u32) -> Result<Vec<u8>, UowError>;

    /// Drives the job to its end: phases (each a barrier), merging the shards' partial
    /// results and testing termination between them; returns the final report.
    fn orchestrate(&mut self, cluster: &mut dyn Cluster) -> Result<Self::Output, UowError>;

    /// A worker was lost and will be replaced: set up the next [`UnitOfWork::orchestrate`]
    /// (on the same shards, every worker configured anew, the lost one's state gone) to go
    /// on from the job's last complete state, and say what that is (e.g. "every shard
    /// restored to generation 30"); `None` if the job cannot go on (the default), and the
    /// run ends with the loss.
    fn recover(&mut self) -> Option<String> {
        None
    }
}

/// Encodes a job message with postcard.
pub fn encode<T: serde::Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, UowError> {
    postcard::to_allocvec(value).map_err(|e| UowError::Codec { what, reason: e.to_string() })
}

/// Decodes a job message with postcard.
pub fn decode<'a, T: serde::Deserialize<'a>>(what: &'static str, bytes: &'a [u8]) -> Result<T, UowError> {
    postcard::from_bytes(bytes).map_err(|e| UowError::Codec { what, reason: e.to_string() })
}
