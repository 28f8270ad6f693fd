//! The seam between the service and a job: what a job's worker side provides.

use std::any::Any;
use std::sync::Arc;

/// A batch from a peer, decoded by the job's [`DeliveryDecoder`].
pub type Delivery = Box<dyn Any + Send>;

/// Why a job refused a call. Mapped to gRPC codes by the service.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    /// The payload does not decode or breaks the job's rules (INVALID_ARGUMENT).
    #[error("invalid {what}: {why}")]
    Invalid {
        /// What was invalid (e.g. "delivery", "phase payload").
        what: &'static str,
        /// Why.
        why: String,
    },
    /// No job of that name here (NOT_FOUND).
    #[error("unknown job {0:?}")]
    UnknownJob(String),
    /// The job has no phase of that name (INVALID_ARGUMENT).
    #[error("unknown phase {0:?}")]
    UnknownPhase(String),
    /// The job failed (INTERNAL).
    #[error("{0}")]
    Failed(String),
}

/// Batches a phase addresses to shards; the service delivers them before it answers.
#[derive(Default)]
pub struct Outbox {
    pub(crate) batches: Vec<(u32, Vec<u8>)>,
    pub(crate) kept: Vec<Delivery>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("batches", &self.batches).field("kept", &self.kept.len()).finish()
    }
}

impl Outbox {
    /// Queues `payload` for shard `to` (this shard included: it is queued locally).
    pub fn send(&mut self, to: u32, payload: Vec<u8>) {
        self.batches.push((to, payload));
    }

    /// Queues a batch for this very shard as the job's [`DeliveryDecoder`] would have
    /// decoded it: it never goes through bytes, and arrives with the next phase's
    /// deliveries like any other.
    pub fn keep(&mut self, batch: Delivery) {
        self.kept.push(batch);
    }

    /// Batches queued so far (sent and kept).
    pub fn len(&self) -> usize {
        self.batches.len() + self.kept.len()
    }

    /// The batches sent, as (shard, payload), and those kept, each in the order queued.
    pub fn into_parts(self) -> (Vec<(u32, Vec<u8>)>, Vec<Delivery>) {
        (self.batches, self.kept)
    }

    /// Whether nothing was queued.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty() && self.kept.is_empty()
    }
}

/// The worker side of a job, for one shard.
pub trait ShardWork: Send + 'static {
    /// Runs one phase. `deliveries` are the batches queued since the last phase, in
    /// arrival order (a job that needs determinism orders them itself); batches for other
    /// shards go in `outbox`. Runs on a blocking thread.
    fn phase(
        &mut self,
        phase: &str,
        payload: &[u8],
        deliveries: Vec<Delivery>,
        outbox: &mut Outbox,
    ) -> Result<Vec<u8>, WorkError>;
}

/// Decodes and checks a delivery as it arrives, without the job's lock.
pub trait DeliveryDecoder: Send + Sync + 'static {
    /// The decoded batch, or why it is refused.
    fn decode(&self, payload: &[u8]) -> Result<Delivery, WorkError>;
}

/// A configured job on a worker.
pub struct Job {
    /// The job's state and phases.
    pub work: Box<dyn ShardWork>,
    /// Its delivery decoder.
    pub decoder: Arc<dyn DeliveryDecoder>,
}

/// The jobs a worker can run, by name.
pub trait Registry: Send + Sync + 'static {
    /// Creates shard `shard` of `shards` of job `job` from its configuration bytes.
    fn create(&self, job: &str, config: &[u8], shard: u32, shards: u32) -> Result<Job, WorkError>;

    /// The names of the jobs this registry creates, for the error that tells a framework
    /// it asked for another one (none listed by default).
    fn jobs(&self) -> Vec<String> {
        Vec::new()
    }
}
