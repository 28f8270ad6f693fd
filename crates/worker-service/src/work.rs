//! The seam between the service and a job: what a job's worker side provides.

use std::any::Any;
use std::sync::Arc;

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

/// Where a step's delivery to its peers goes when the job releases it before its phase
/// ends ([`Outbox::release`]): the batches sent so far (shard, payload) and the note.
pub type Release = Box<dyn FnOnce(Vec<(u32, Vec<u8>)>, Option<Vec<u8>>) + Send>;

/// Batches a phase addresses to shards; the service delivers them before it answers.
/// `B` is the job's decoded batch ([`ShardWork::Batch`]).
pub struct Outbox<B> {
    batches: Vec<(u32, Vec<u8>)>,
    kept: Vec<B>,
    note: Option<Vec<u8>>,
    release: Option<Release>,
}

impl<B> Default for Outbox<B> {
    fn default() -> Self {
        Self { batches: Vec::new(), kept: Vec::new(), note: None, release: None }
    }
}

impl<B> std::fmt::Debug for Outbox<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("batches", &self.batches).field("kept", &self.kept.len()).finish()
    }
}

impl<B> Outbox<B> {
    /// Queues `payload` for shard `to` (this shard included: it is queued locally).
    pub fn send(&mut self, to: u32, payload: Vec<u8>) {
        self.batches.push((to, payload));
    }

    /// Queues a batch for this very shard as its decoder would have decoded it: it never
    /// goes through bytes, and arrives with the next phase's deliveries like any other.
    pub fn keep(&mut self, batch: B) {
        self.kept.push(batch);
    }

    /// Leaves `note` for every peer with this step's delivery (the first phase of a step;
    /// ignored elsewhere): what a chained step's job reads before it goes on
    /// ([`ShardWork::go_on`]). A second note replaces the first.
    pub fn note(&mut self, note: Vec<u8>) {
        self.note = Some(note);
    }

    /// Lets the step's delivery to its peers go now, while the phase goes on: every batch
    /// sent so far, and the note, in one delivery to each peer (an empty one to a peer sent
    /// nothing). After it the job may still keep batches for its own shard, and must send
    /// nothing more to a peer (the step then fails). Worth it when what is left of the
    /// phase takes long: the peers receive while this shard still computes, and the step's
    /// network time hides behind its work. Only a step's first phase worked ahead
    /// ([`ShardWork::ahead`]) releases early; elsewhere the delivery goes when the phase
    /// returns, as without it. A second call does nothing.
    pub fn release(&mut self) {
        if let Some(release) = self.release.take() {
            release(std::mem::take(&mut self.batches), self.note.clone());
        }
    }

    /// Batches queued so far (sent and kept).
    pub fn len(&self) -> usize {
        self.batches.len() + self.kept.len()
    }

    /// The batches sent, as (shard, payload), and those kept, each in the order queued.
    pub fn into_parts(self) -> (Vec<(u32, Vec<u8>)>, Vec<B>) {
        (self.batches, self.kept)
    }

    /// Whether nothing was queued.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty() && self.kept.is_empty()
    }
}

/// The worker side of a job, for one shard.
pub trait ShardWork: Send + 'static {
    /// A batch from a shard as this job's [`BatchDecoder`] decodes it.
    type Batch: Send + 'static;

    /// Runs one phase. `deliveries` are the batches queued since the last phase, in
    /// arrival order (a job that needs determinism orders them itself); batches for other
    /// shards go in `outbox`. Runs on a blocking thread.
    fn phase(
        &mut self,
        phase: &str,
        payload: &[u8],
        deliveries: Vec<Self::Batch>,
        outbox: &mut Outbox<Self::Batch>,
    ) -> Result<Vec<u8>, WorkError>;

    /// Asked before the phases of a chained step (a step the framework asked for in a
    /// chain, not on its own), with every peer's note of the step (shard, note; see
    /// [`Outbox::note`]): `true` runs the step, `false` ends the chain there. The step's
    /// first phase was worked ahead ([`ShardWork::ahead`]); a job that answers `false` has
    /// undone that work (its next call finds it as it was before). Every job of a run must
    /// answer alike from the same notes, or the workers part ways (a peer waiting for a
    /// step the others ended gives up with the phase). Runs on a blocking thread; the
    /// default goes on.
    fn go_on(&mut self, notes: &[(u32, crate::Bytes)]) -> Result<bool, WorkError> {
        let _ = notes;
        Ok(true)
    }

    /// Works ahead on the phase `phase(phase, payload)` that the framework announced as the
    /// first of the next step, while it is still deciding whether that step comes: puts in
    /// `outbox` what that phase would address (with no deliveries) and returns `true`, or
    /// does nothing and returns `false` (the default: the phase then runs when asked).
    ///
    /// A job that returns `true` promises two things. The next call, if it is that very
    /// phase, finds the work done and addresses nothing (the service has already delivered
    /// this outbox, under the next step). Any other call finds the job as it was before
    /// this one: work ahead is undone, never seen. Runs on a blocking thread.
    fn ahead(&mut self, phase: &str, payload: &[u8], outbox: &mut Outbox<Self::Batch>) -> Result<bool, WorkError> {
        let _ = (phase, payload, outbox);
        Ok(false)
    }
}

/// Decodes and checks a batch as it arrives, without the job's lock (a phase may be
/// running): a batch that breaks the job's rules is refused to its sender.
pub trait BatchDecoder<B>: Send + Sync + 'static {
    /// The decoded batch, or why it is refused.
    fn decode(&self, payload: &[u8]) -> Result<B, WorkError>;
}

/// A decoded batch of some job, as the service holds it between its arrival and the
/// phase that takes it. Only the job that decoded it can open it.
pub struct Batch(Box<dyn Any + Send>);

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Batch")
    }
}

/// What a phase produced: its answer, and what it addressed.
pub type PhaseOutput = (Vec<u8>, Addressed);

/// What a job addressed: the batches it sent (shard, payload), those it kept for its own
/// shard, and its note for its peers ([`Outbox::note`]).
pub type Addressed = (Vec<(u32, Vec<u8>)>, Vec<Batch>, Option<Vec<u8>>);

/// A [`ShardWork`] behind a type-erased face: the service holds jobs of any batch type.
trait ErasedWork: Send {
    fn phase(&mut self, phase: &str, payload: &[u8], deliveries: Vec<Batch>) -> Result<PhaseOutput, WorkError>;
    fn ahead(&mut self, phase: &str, payload: &[u8], release: Option<Release>) -> Result<Option<Addressed>, WorkError>;
    fn go_on(&mut self, notes: &[(u32, crate::Bytes)]) -> Result<bool, WorkError>;
}

struct Typed<W>(W);

impl<W: ShardWork> ErasedWork for Typed<W> {
    fn phase(&mut self, phase: &str, payload: &[u8], deliveries: Vec<Batch>) -> Result<PhaseOutput, WorkError> {
        // A job's batches come only from its own decoder (a configuration clears the queue),
        // so this cannot fail; if it ever did, the phase fails rather than the worker.
        let deliveries = deliveries
            .into_iter()
            .map(|b| b.0.downcast::<W::Batch>().map(|b| *b))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| WorkError::Failed("a batch of another job reached this one".into()))?;
        let mut outbox = Outbox::default();
        let answer = self.0.phase(phase, payload, deliveries, &mut outbox)?;
        Ok((answer, erase(outbox)))
    }

    fn ahead(&mut self, phase: &str, payload: &[u8], release: Option<Release>) -> Result<Option<Addressed>, WorkError> {
        let mut outbox = Outbox { release, ..Outbox::default() };
        if !self.0.ahead(phase, payload, &mut outbox)? {
            return Ok(None);
        }
        Ok(Some(erase(outbox)))
    }

    fn go_on(&mut self, notes: &[(u32, crate::Bytes)]) -> Result<bool, WorkError> {
        self.0.go_on(notes)
    }
}

/// An outbox's contents, its kept batches type-erased.
fn erase<B: Send + 'static>(outbox: Outbox<B>) -> Addressed {
    let note = outbox.note;
    let (sent, kept) = (outbox.batches, outbox.kept);
    (sent, kept.into_iter().map(|b| Batch(Box::new(b))).collect(), note)
}

/// A job's decoder, type-erased like its batches; cheap to clone.
#[derive(Clone)]
pub struct JobDecoder(Arc<DecodeFn>);

type DecodeFn = dyn Fn(&[u8]) -> Result<Batch, WorkError> + Send + Sync;

impl JobDecoder {
    /// Decodes and checks a batch of the job.
    pub fn decode(&self, payload: &[u8]) -> Result<Batch, WorkError> {
        (self.0)(payload)
    }
}

impl std::fmt::Debug for JobDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobDecoder")
    }
}

/// A configured job on a worker: its work, and the decoder of its batches, typed together.
pub struct Job {
    work: Box<dyn ErasedWork>,
    decoder: JobDecoder,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Job {
    /// A job of `work`, whose batches `decoder` decodes.
    pub fn new<W: ShardWork>(work: W, decoder: impl BatchDecoder<W::Batch>) -> Self {
        Job {
            work: Box::new(Typed(work)),
            decoder: JobDecoder(Arc::new(move |payload| decoder.decode(payload).map(|b| Batch(Box::new(b))))),
        }
    }

    /// The job's decoder (a clone: it decodes without the job).
    pub fn decoder(&self) -> JobDecoder {
        self.decoder.clone()
    }

    /// Runs one phase with `deliveries` (batches this job's decoder or phases made).
    pub fn phase(&mut self, phase: &str, payload: &[u8], deliveries: Vec<Batch>) -> Result<PhaseOutput, WorkError> {
        self.work.phase(phase, payload, deliveries)
    }

    /// Works ahead on `phase` ([`ShardWork::ahead`]): what it addressed (sent, kept), or
    /// `None` if the job does not work ahead on it. With `release`, a delivery the job
    /// releases early ([`Outbox::release`]) goes there, and what it addressed is only what
    /// came after.
    pub fn ahead(
        &mut self,
        phase: &str,
        payload: &[u8],
        release: Option<Release>,
    ) -> Result<Option<Addressed>, WorkError> {
        self.work.ahead(phase, payload, release)
    }

    /// Whether a chained step goes on, given its peers' notes ([`ShardWork::go_on`]).
    pub fn go_on(&mut self, notes: &[(u32, crate::Bytes)]) -> Result<bool, WorkError> {
        self.work.go_on(notes)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Sums the numbers it receives; phase "keep" keeps its payload's length for itself.
    struct Sum(u64);

    impl ShardWork for Sum {
        type Batch = u64;

        fn phase(
            &mut self,
            phase: &str,
            payload: &[u8],
            deliveries: Vec<u64>,
            outbox: &mut Outbox<u64>,
        ) -> Result<Vec<u8>, WorkError> {
            self.0 += deliveries.iter().sum::<u64>();
            if phase == "keep" {
                outbox.keep(payload.len() as u64);
                outbox.send(1, payload.to_vec());
            }
            Ok(self.0.to_le_bytes().to_vec())
        }
    }

    struct Len;

    impl BatchDecoder<u64> for Len {
        fn decode(&self, payload: &[u8]) -> Result<u64, WorkError> {
            Ok(payload.len() as u64)
        }
    }

    struct Text;

    impl BatchDecoder<String> for Text {
        fn decode(&self, payload: &[u8]) -> Result<String, WorkError> {
            String::from_utf8(payload.to_vec()).map_err(|e| WorkError::Invalid { what: "text", why: e.to_string() })
        }
    }

    struct Echo;

    impl ShardWork for Echo {
        type Batch = String;

        fn phase(
            &mut self,
            _: &str,
            _: &[u8],
            deliveries: Vec<String>,
            _: &mut Outbox<String>,
        ) -> Result<Vec<u8>, WorkError> {
            Ok(deliveries.concat().into_bytes())
        }
    }

    #[test]
    fn a_jobs_batches_reach_its_phases_typed_and_another_jobs_are_refused() {
        let mut job = Job::new(Sum(0), Len);
        let (answer, (sent, kept, _)) = job.phase("keep", b"abc", Vec::new()).unwrap();
        assert_eq!((answer, sent), (0u64.to_le_bytes().to_vec(), vec![(1, b"abc".to_vec())]));
        // The kept batch and a decoded one come back as the job's own type.
        let mut deliveries = kept;
        deliveries.push(job.decoder().decode(b"12345").unwrap());
        let (answer, _) = job.phase("sum", b"", deliveries).unwrap();
        assert_eq!(answer, (3u64 + 5).to_le_bytes().to_vec());

        let other = Job::new(Echo, Text);
        let foreign = other.decoder().decode(b"hi").unwrap();
        let err = job.phase("sum", b"", vec![foreign]).unwrap_err();
        assert!(err.to_string().contains("a batch of another job"), "{err}");
        // The refused phase changed nothing.
        let (answer, _) = job.phase("sum", b"", Vec::new()).unwrap();
        assert_eq!(answer, 8u64.to_le_bytes().to_vec());
    }
}
