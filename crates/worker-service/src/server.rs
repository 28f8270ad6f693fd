//! Serving a worker.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};

use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use crate::Bytes;
use crate::client::{ClientError, WorkerClient};
use crate::compute::{self, ComputeClass};
use crate::conn::{self, Limits};
use crate::pb::worker_server::{Worker, WorkerServer};
use crate::pb::{
    ConfigureReply, ConfigureRequest, DeliverReply, DeliverRequest, PhaseReply, PhaseRequest, PingReply, PingRequest,
    StopReply, StopRequest,
};
use crate::work::{Batch, Job, JobDecoder, Registry, Release, WorkError};
use crate::{MAX_MESSAGE_BYTES, PROTOCOL_HEADER, PROTOCOL_VERSION};

/// How a worker is set up.
#[derive(Clone)]
pub struct WorkerConfig {
    /// The run's secret; calls without it are refused with UNAUTHENTICATED.
    pub token: String,
    /// The jobs this worker can run.
    pub registry: Arc<dyn Registry>,
    /// The largest request accepted (default [`MAX_MESSAGE_BYTES`]).
    pub max_message_bytes: usize,
    /// Bounds on connections: how many, how long a silent one is kept, how long a
    /// shutdown waits for calls in flight.
    pub limits: Limits,
    /// How the threads that run the job (its phases, work ahead, large deliveries'
    /// decoding) are scheduled (default [`ComputeClass::Normal`]; `exelixi worker` runs
    /// them [`ComputeClass::Idle`]).
    pub compute: ComputeClass,
}

impl WorkerConfig {
    /// A worker for `token` running the jobs of `registry`.
    pub fn new(token: impl Into<String>, registry: Arc<dyn Registry>) -> Self {
        Self {
            token: token.into(),
            registry,
            max_message_bytes: MAX_MESSAGE_BYTES,
            limits: Limits::default(),
            compute: ComputeClass::Normal,
        }
    }
}

/// Why a worker stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The `listening` line could not be written.
    #[error("cannot announce the listening address on stdout: {0}")]
    Announce(std::io::Error),
    /// The listener's address could not be read.
    #[error("cannot read the listening address: {0}")]
    Address(std::io::Error),
    /// The transport failed.
    #[error("the worker's gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The configured job of a worker.
struct Running {
    run_id: String,
    shard: u32,
    shards: u32,
    job: Job,
}

/// What a phase addressed: batches sent (shard, payload), and those kept for its shard.
type Sent = crate::Addressed;

/// A configuration as deliveries are checked against it.
#[derive(Clone)]
struct Configured {
    run_id: Arc<str>,
    decoder: JobDecoder,
    shard: u32,
    shards: u32,
}

/// Batches waiting for a phase.
#[derive(Default)]
struct Queue {
    /// Batches of lone phases: handed to the next phase, whatever it is.
    loose: Vec<Batch>,
    /// Batches of steps, by step, until the step's second phase takes them.
    steps: BTreeMap<u64, StepBox>,
    /// Counts the configurations: a step waiting for its peers across a reconfiguration
    /// gives up rather than take the batches of the new one.
    epoch: u64,
}

impl Queue {
    /// Refuses a wait for `step` begun in the configuration of `epoch` when another one is
    /// served now.
    fn still(&self, step: u64, epoch: u64) -> Result<(), Status> {
        if self.epoch != epoch {
            return Err(Status::aborted(format!(
                "step {step}: the worker was configured anew while it waited for its peers' batches"
            )));
        }
        Ok(())
    }

    /// The batches and notes of `step`, taken out of the queue, once `peers` peers have
    /// delivered it.
    fn take_step(&mut self, step: u64, peers: usize) -> Option<StepBatches> {
        if self.steps.get(&step).map_or(0, |b| b.from.len()) < peers {
            return None;
        }
        Some(self.steps.remove(&step).map(|b| (b.batches, b.notes)).unwrap_or_default())
    }
}

/// One step's batches at their owner: the peers whose delivery of the step has come, and
/// every batch of the step so far (this shard's own included).
#[derive(Default)]
struct StepBox {
    from: Vec<u32>,
    batches: Vec<Batch>,
    /// Each peer's note of the step (shard, note).
    notes: Vec<(u32, Bytes)>,
}

/// A step's batches and its peers' notes, as its second phase takes them.
type StepBatches = (Vec<Batch>, Vec<(u32, Bytes)>);

/// What a job's phase (or a step's phases) answered: the answer, what it addressed, and the
/// configuration it ran in (shard, shards, run id).
type Ran = (Vec<u8>, Sent, u32, u32, String);

/// Sets its flag when dropped: a request's handler that is given up says so to the
/// computing thread it started.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Steps a worker holds batches of at once. A peer is at most one step ahead (a step ends
/// only when every worker has its batches), so more is a broken or hostile peer.
const MAX_PENDING_STEPS: usize = 4;

struct Shared {
    token: String,
    registry: Arc<dyn Registry>,
    compute: ComputeClass,
    running: Mutex<Option<Running>>,
    /// The configuration's run id and decoder: a delivery is checked against them, and
    /// queued under the read lock, so that a reconfiguration (which clears the queue under
    /// the write lock) never finds a batch of the configuration before it.
    decoder: RwLock<Option<Configured>>,
    peers: RwLock<Vec<WorkerClient>>,
    queue: Mutex<Queue>,
    /// Told whenever a peer's delivery of a step arrives, and at a reconfiguration.
    arrived: Notify,
    /// The same, for a chain waiting on its computing thread (with the queue's lock).
    arrived_here: Condvar,
    stop: Notify,
    /// The announced step this worker works on ahead of its request, if any.
    ahead: Mutex<Option<AheadSlot>>,
}

/// An announced step's first phase, run as soon as the step before it answered
/// ([`ShardWork::ahead`](crate::ShardWork::ahead)), and the delivery of its batches.
struct AheadSlot {
    step: u64,
    phase: String,
    payload: Bytes,
    /// The configuration's epoch and shard count when it started.
    epoch: u64,
    shards: u32,
    /// Set when the step will not come as announced: work not started yet is skipped.
    cancelled: Arc<AtomicBool>,
    /// Whether the job worked ahead (then its batches are on their way), once it is done.
    worked: oneshot::Receiver<Result<bool, Status>>,
    /// The delivery of those batches to every peer.
    delivered: JoinHandle<Result<(), Status>>,
}

impl AheadSlot {
    /// The step will not come: work not begun is skipped; work done is the job's to undo
    /// at its next phase, and batches delivered wait unused until the next configuration.
    fn cancel(self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    fn is_for(&self, step: u64, phase: &str, payload: &[u8]) -> bool {
        self.step == step && self.phase == phase && *self.payload == *payload
    }
}

fn joined<T>(what: &str, r: Result<Result<T, Status>, tokio::task::JoinError>) -> Result<T, Status> {
    r.map_err(|e| Status::internal(format!("{what} panicked: {e}")))?
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A job that panicked mid-phase leaves its state as it was; the worker keeps serving
    // and reports the panic, so the lock is taken back rather than poisoned forever.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn status(e: WorkError) -> Status {
    match e {
        WorkError::Invalid { .. } | WorkError::UnknownPhase(_) => Status::invalid_argument(e.to_string()),
        WorkError::UnknownJob(_) => Status::not_found(e.to_string()),
        WorkError::Failed(_) => Status::internal(e.to_string()),
    }
}

/// Runs `phase` of `job` with the loose batches and `more`; with `done_ahead`, runs that
/// phase first: the first phase of a step the job worked on ahead, which must address
/// nothing now (its batches went out then). On a computing thread, the job's lock held.
fn take_up_and_run(
    shared: &Shared,
    job: &mut Job,
    done_ahead: Option<(&str, &[u8])>,
    (phase, payload): (&str, &[u8]),
    more: Vec<Batch>,
) -> Result<(Vec<u8>, Sent), Status> {
    let mut deliveries = std::mem::take(&mut lock(&shared.queue).loose);
    if let Some((first, first_payload)) = done_ahead {
        let (_, (sent, kept, _)) = job.phase(first, first_payload, deliveries).map_err(status)?;
        if !sent.is_empty() || !kept.is_empty() {
            return Err(Status::internal(format!(
                "the job worked ahead on phase {first:?}, then addressed its batches again"
            )));
        }
        deliveries = Vec::new();
    }
    deliveries.extend(more);
    job.phase(phase, payload, deliveries).map_err(status)
}

/// "unknown job "pi": this worker (/usr/bin/exelixi) runs ga": the job, and which binary
/// to give it, so that whoever started the workers knows what to change.
fn unknown_job(job: &str, known: &[String]) -> String {
    let exe = std::env::current_exe().map_or_else(|_| "an unknown executable".to_string(), |p| p.display().to_string());
    let runs = if known.is_empty() { "lists no jobs".to_string() } else { format!("runs {}", known.join(", ")) };
    format!("unknown job {job:?}: this worker ({exe}) {runs}")
}

fn reply<T>(message: T) -> Response<T> {
    let mut response = Response::new(message);
    response.metadata_mut().insert(PROTOCOL_HEADER, PROTOCOL_VERSION.into());
    response
}

/// Checks the token and the protocol version before any handler runs.
#[derive(Clone)]
struct Gate {
    expected: Arc<str>,
}

impl tonic::service::Interceptor for Gate {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let md = request.metadata();
        // The token first: a caller without it learns nothing about this worker, not even
        // the protocol it speaks.
        let token = md.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        // Compared in constant time: the token is the run's only secret.
        let authentic = token.is_some_and(|t| bool::from(t.as_bytes().ct_eq(self.expected.as_bytes())));
        if !authentic {
            return Err(Status::unauthenticated("missing or wrong run token"));
        }
        let version = md.get(PROTOCOL_HEADER).and_then(|v| v.to_str().ok());
        if version != Some(PROTOCOL_VERSION.to_string().as_str()) {
            return Err(Status::failed_precondition(format!(
                "protocol version {} is not supported: this worker speaks {PROTOCOL_VERSION}",
                version.unwrap_or("(none)")
            )));
        }
        Ok(request)
    }
}

/// The largest HTTP/2 frame a worker accepts (the protocol's default is 16 KiB).
const MAX_FRAME_BYTES: u32 = 1 << 20;
/// A worker's HTTP/2 receive window per stream (twice that per connection): what a peer
/// may send before the worker has read it.
const WINDOW_BYTES: u32 = 8 << 20;

/// Deliveries at least this large are decoded on a blocking thread (about 1 ns a byte for
/// the GA's batches: from here on, tens of microseconds).
const BLOCKING_DECODE_BYTES: usize = 64 << 10;

/// A delivery of the configuration `run_id` to a worker that now serves `configured`.
fn stale(run_id: &str, configured: &str) -> Status {
    Status::failed_precondition(format!("a delivery of run {run_id}; this worker now serves run {configured}"))
}

#[derive(Clone)]
struct Service(Arc<Shared>);

/// `current`, if it is the configuration `run_id` (a delivery's sender's).
fn serving<'a>(current: Option<&'a Configured>, run_id: &str) -> Result<&'a Configured, Status> {
    match current {
        Some(c) if *c.run_id == *run_id => Ok(c),
        Some(c) => Err(stale(run_id, &c.run_id)),
        None => Err(Status::failed_precondition("this worker is not configured yet")),
    }
}

/// Runs `decode` on the runtime for a delivery of fewer than [`BLOCKING_DECODE_BYTES`],
/// else on a blocking thread: decoding and checking a batch is the job's CPU work, but for
/// a small one (tens of microseconds) the hand-off costs more than it saves, on every
/// step's critical path (measured: 0.1 ms a generation for Rastrigin-30 at population 400).
async fn decode_off_runtime_if_large(
    bytes: usize,
    class: ComputeClass,
    decode: impl FnOnce() -> Result<u32, Status> + Send + 'static,
) -> Result<u32, Status> {
    if bytes < BLOCKING_DECODE_BYTES {
        return decode();
    }
    tokio::task::spawn_blocking(move || {
        compute::enter(class);
        decode()
    })
    .await
    .map_err(|e| Status::internal(format!("decoding a delivery panicked: {e}")))?
}

impl Service {
    /// The configuration a delivery of `run_id` is for, if it is the one served.
    fn configured(&self, run_id: &str) -> Result<Configured, Status> {
        serving(self.0.decoder.read().unwrap_or_else(PoisonError::into_inner).as_ref(), run_id).cloned()
    }

    fn enqueue(&self, run_id: &str, payload: &[u8]) -> Result<u32, Status> {
        // Decoded outside every lock: a large batch does not hold up the others.
        let batch = self.configured(run_id)?.decoder.decode(payload).map_err(status)?;
        self.queue_decoded(run_id, batch)
    }

    /// Queues a decoded batch of the configuration `run_id`, if it is still the one served.
    fn queue_decoded(&self, run_id: &str, batch: Batch) -> Result<u32, Status> {
        self.queue_with(run_id, |queue| {
            queue.loose.push(batch);
            Ok(queue.loose.len() as u32)
        })
    }

    /// Runs `f` on the queue under the configuration's read lock, if `run_id` is still the
    /// configuration served (a reconfiguration clears the queue under the write lock, so it
    /// never finds a batch of the configuration before it).
    fn queue_with<T>(&self, run_id: &str, f: impl FnOnce(&mut Queue) -> Result<T, Status>) -> Result<T, Status> {
        let current = self.0.decoder.read().unwrap_or_else(PoisonError::into_inner);
        serving(current.as_ref(), run_id)?;
        f(&mut lock(&self.0.queue))
    }

    /// Takes a peer's delivery of `step` (its batches for this worker, maybe none).
    fn enqueue_step(&self, run_id: &str, from: u32, step: u64, batches: &[Bytes], note: Bytes) -> Result<u32, Status> {
        let configured = self.configured(run_id)?;
        if from >= configured.shards || from == configured.shard {
            return Err(Status::invalid_argument(format!(
                "a delivery of step {step} from shard {from}, to shard {} of {}: it must come from another shard",
                configured.shard, configured.shards
            )));
        }
        let decoded =
            batches.iter().map(|b| configured.decoder.decode(b)).collect::<Result<Vec<_>, _>>().map_err(status)?;
        let queued = self.queue_with(run_id, |queue| {
            if !queue.steps.contains_key(&step) && queue.steps.len() >= MAX_PENDING_STEPS {
                return Err(Status::failed_precondition(format!(
                    "a delivery of step {step} while batches of {MAX_PENDING_STEPS} other steps wait here: a peer is too far ahead"
                )));
            }
            let waiting = queue.steps.entry(step).or_default();
            if waiting.from.contains(&from) {
                return Err(Status::invalid_argument(format!("shard {from} already delivered step {step}")));
            }
            waiting.from.push(from);
            waiting.notes.push((from, note));
            waiting.batches.extend(decoded);
            Ok(waiting.batches.len() as u32)
        })?;
        self.0.arrived.notify_waiters();
        self.0.arrived_here.notify_all();
        Ok(queued)
    }

    /// Runs `phase` of the configured job with the loose batches and `more`; returns its
    /// answer and what it addressed, and the configuration it ran in. With `done_ahead`,
    /// runs that phase first, on the same thread: the first phase of a step the job
    /// worked on ahead, which must address nothing now (its batches went out then).
    async fn run_job(
        &self,
        done_ahead: Option<(String, Bytes)>,
        phase: String,
        payload: Bytes,
        more: Vec<Batch>,
    ) -> Result<Ran, Status> {
        let shared = self.0.clone();
        let name = phase.clone();
        let ran = tokio::task::spawn_blocking(move || {
            compute::enter(shared.compute);
            let mut running = lock(&shared.running);
            let Some(running) = running.as_mut() else {
                return Err(Status::failed_precondition("this worker is not configured yet"));
            };
            let first = done_ahead.as_ref().map(|(phase, payload)| (phase.as_str(), &payload[..]));
            let (answer, sent) = take_up_and_run(&shared, &mut running.job, first, (&name, &payload), more)?;
            Ok((answer, sent, running.shard, running.shards, running.run_id.clone()))
        })
        .await;
        joined(&format!("phase {phase:?}"), ran)
    }

    /// Starts the announced `step`'s first phase, `phase` with `payload`, on a blocking
    /// thread, and the delivery of what it addresses; [`Service::run_phase`] takes it up
    /// when the step's request comes, or cancels it when something else does.
    fn work_ahead(
        &self,
        step: u64,
        (phase, payload): (String, Bytes),
        (me, shards): (u32, u32),
        run_id: String,
        epoch: u64,
    ) {
        let cancelled = Arc::new(AtomicBool::new(false));
        let (tell, worked) = oneshot::channel();
        let (service, flag, name, input) = (self.clone(), cancelled.clone(), phase.clone(), payload.clone());
        let delivered = tokio::spawn(async move {
            let (shared, id) = (service.0.clone(), run_id.clone());
            let (release, released) = oneshot::channel();
            let ran = tokio::task::spawn_blocking(move || {
                compute::enter(shared.compute);
                let mut running = lock(&shared.running);
                // Another configuration since, a request that ended the announcement, or
                // batches of a lone phase the early run would not see: no work ahead.
                let Some(running) = running.as_mut().filter(|r| r.run_id == id) else { return Ok(None) };
                if flag.load(Ordering::SeqCst) || !lock(&shared.queue).loose.is_empty() {
                    return Ok(None);
                }
                let release: Release = Box::new(move |sent, note| {
                    let _ = release.send((sent, note));
                });
                running.job.ahead(&name, &input, Some(release)).map_err(status)
            });
            // A delivery the job releases before it ends goes at once, while it computes on
            // (the sender is dropped, and this wait ends, when the job ends without one).
            let early = match released.await {
                Ok((sent, note)) => {
                    match service.deliver_step((sent, Vec::new(), note), (me, shards), &run_id, step, false) {
                        Ok(sending) => Some(tokio::spawn(sending)),
                        Err(e) => {
                            let _ = tell.send(Err(e.clone()));
                            return Err(e);
                        }
                    }
                }
                Err(_) => None,
            };
            // Own batches are in the step's box before the step is told the work is done.
            let released = early.is_some();
            let delivery = joined("working ahead", ran.await).and_then(|sent| match sent {
                Some(sent) => service.deliver_step(sent, (me, shards), &run_id, step, released).map(Some),
                None if released => Err(Status::internal(format!(
                    "the job released its delivery of step {step}, then did not work ahead on it"
                ))),
                None => Ok(None),
            });
            let _ = tell.send(delivery.as_ref().map(Option::is_some).map_err(Status::clone));
            if let Some(delivery) = delivery? {
                delivery.await?;
            }
            match early {
                Some(early) => joined("a delivery", early.await),
                None => Ok(()),
            }
        });
        let slot = AheadSlot { step, phase, payload, epoch, shards, cancelled, worked, delivered };
        if let Some(old) = lock(&self.0.ahead).replace(slot) {
            old.cancel();
        }
    }

    /// Delivers a lone phase's batches, each to its owner, before the phase answers: when
    /// all phases of a step have answered, every batch of the step waits in its owner's
    /// queue.
    async fn deliver_loose(&self, (sent, kept, _): Sent, me: u32, run_id: &str, phase: &str) -> Result<(), Status> {
        for batch in kept {
            self.queue_decoded(run_id, batch)?;
        }
        let mut to_peers = Vec::with_capacity(sent.len());
        for (to, batch) in sent {
            if to == me {
                self.enqueue(run_id, &batch)?;
            } else {
                to_peers.push((to, batch));
            }
        }
        let no_peer = |to| Status::internal(format!("phase {phase:?} addressed shard {to}, which does not exist"));
        self.send_to_peers(run_id, to_peers, no_peer, |mut peer, run_id, batch| async move {
            peer.deliver(&run_id, me, batch).await
        })
        .await
    }

    /// Sends each `(shard, item)` to that peer with `send`, all at once, and waits until
    /// every one was taken (`no_peer` names a shard without one). A peer that did not take
    /// its item makes the call ABORTED, not UNAVAILABLE: this worker is fine.
    async fn send_to_peers<T, F>(
        &self,
        run_id: &str,
        items: Vec<(u32, T)>,
        no_peer: impl Fn(u32) -> Status,
        send: impl Fn(WorkerClient, String, T) -> F,
    ) -> Result<(), Status>
    where
        F: std::future::Future<Output = Result<u32, ClientError>> + Send + 'static,
    {
        let peers = self.0.peers.read().unwrap_or_else(PoisonError::into_inner).clone();
        let mut sends = JoinSet::new();
        for (to, item) in items {
            let peer = peers.get(to as usize).cloned().ok_or_else(|| no_peer(to))?;
            let sent = send(peer, run_id.to_string(), item);
            sends.spawn(async move { sent.await.map_err(|e| (to, e)) });
        }
        while let Some(sent) = sends.join_next().await {
            match sent {
                Ok(Ok(_)) => {}
                Ok(Err((to, e))) => {
                    return Err(Status::aborted(format!("run {run_id}: shard {to} did not take its batch: {e}")));
                }
                Err(e) => return Err(Status::internal(format!("a delivery task failed: {e}"))),
            }
        }
        Ok(())
    }

    /// Keeps this shard's own batches of `step` in the step's box, at once, and returns
    /// the delivery to every peer of its one delivery of the step (its batches, maybe none).
    /// With `released` (the job released that delivery earlier: [`Outbox::release`]),
    /// `sent` may address only this shard, and the delivery returned sends nothing.
    fn deliver_step(
        &self,
        (sent, kept, note): Sent,
        (me, shards): (u32, u32),
        run_id: &str,
        step: u64,
        released: bool,
    ) -> Result<impl std::future::Future<Output = Result<(), Status>> + Send + use<>, Status> {
        let mut per_peer: Vec<Vec<Vec<u8>>> = vec![Vec::new(); shards as usize];
        let mut own = kept;
        let decoder = self.configured(run_id)?.decoder;
        for (to, batch) in sent {
            let Some(batches) = per_peer.get_mut(to as usize) else {
                return Err(Status::internal(format!("step {step} addressed shard {to}, which does not exist")));
            };
            if to == me {
                own.push(decoder.decode(&batch).map_err(status)?);
            } else if released {
                return Err(Status::internal(format!(
                    "step {step} addressed shard {to} after its delivery to its peers was released"
                )));
            } else {
                batches.push(batch);
            }
        }
        self.queue_with(run_id, |queue| {
            queue.steps.entry(step).or_default().batches.extend(own);
            Ok(())
        })?;
        // Every peer, even with no batch: its delivery of the step is what it waits for.
        let to_peers: Vec<_> = if released {
            Vec::new()
        } else {
            per_peer.into_iter().enumerate().map(|(to, b)| (to as u32, b)).filter(|(to, _)| *to != me).collect()
        };
        let (run_id, note, service) = (run_id.to_string(), Bytes::from(note.unwrap_or_default()), self.clone());
        Ok(async move {
            let no_peer = |to| Status::internal(format!("shard {to} has no endpoint"));
            service
                .send_to_peers(&run_id, to_peers, no_peer, |mut peer, run_id, batches| {
                    let note = note.clone();
                    async move { peer.deliver_step(&run_id, me, step, batches, note).await }
                })
                .await
        })
    }

    /// Waits until `peers` peers have delivered `step`, then takes its batches. Gives up if
    /// the worker is configured anew meanwhile (`epoch` is the configuration's).
    async fn wait_step(&self, step: u64, peers: usize, epoch: u64) -> Result<StepBatches, Status> {
        loop {
            let notified = self.0.arrived.notified();
            tokio::pin!(notified);
            // Registered before the check: an arrival between the two is not missed.
            notified.as_mut().enable();
            {
                let mut queue = lock(&self.0.queue);
                queue.still(step, epoch)?;
                if let Some(batches) = queue.take_step(step, peers) {
                    return Ok(batches);
                }
            }
            notified.await;
        }
    }

    /// Runs a chain's links, each the step after the one before (from `step` + 1), on one
    /// computing thread ([`Service::chain_here`]); then waits for its deliveries to be
    /// taken. Returns every link's answer, whether a job ended the chain, and the last step
    /// run. A request given up (the caller gone) ends the chain at its next wait.
    async fn run_chain(
        &self,
        step: u64,
        phases: (String, String),
        chain: Vec<crate::pb::Link>,
        place: (u32, u32),
        run_id: String,
        epoch: u64,
    ) -> Result<(Vec<Bytes>, bool, u64), Status> {
        let (service, gone) = (self.clone(), Arc::new(AtomicBool::new(false)));
        let _gone_on_drop = SetOnDrop(gone.clone());
        let handle = tokio::runtime::Handle::current();
        let ran = tokio::task::spawn_blocking(move || {
            compute::enter(service.0.compute);
            let mut sends = Vec::new();
            let ran = service.chain_here(&handle, (step, phases, chain), place, (&run_id, epoch), &gone, &mut sends);
            (ran, sends)
        })
        .await;
        let (ran, sends) = ran.map_err(|e| Status::internal(format!("a chain panicked: {e}")))?;
        let ran = ran?;
        for send in sends {
            joined("a delivery", send.await)?;
        }
        Ok(ran)
    }

    /// A chain's links on this computing thread, the job's lock held throughout: each link
    /// worked ahead, its delivery sent on the runtime (as soon as the job releases it), its
    /// peers' deliveries awaited here, the job asked whether to go on, and the step's
    /// phases run. A generation's only hand-offs between threads are its delivery out and
    /// its peers' in. The deliveries' tasks go in `sends`.
    fn chain_here(
        &self,
        handle: &tokio::runtime::Handle,
        (step, (phase, then), chain): (u64, (String, String), Vec<crate::pb::Link>),
        (me, shards): (u32, u32),
        (run_id, epoch): (&str, u64),
        gone: &AtomicBool,
        sends: &mut Vec<JoinHandle<Result<(), Status>>>,
    ) -> Result<(Vec<Bytes>, bool, u64), Status> {
        let mut running = lock(&self.0.running);
        let Some(running) = running.as_mut().filter(|r| r.run_id == run_id) else {
            return Err(Status::aborted(format!("step {step}: the worker was configured anew before its chain")));
        };
        // A delivery that failed, for the wait to see (set under the queue's lock).
        let failed: Arc<Mutex<Option<Status>>> = Arc::default();
        let (mut answers, mut last) = (Vec::with_capacity(chain.len()), step);
        for link in chain {
            last += 1;
            let (release, released) = std::sync::mpsc::channel();
            let (service, id, step) = (self.clone(), run_id.to_string(), last);
            let (handle_, failed_) = (handle.clone(), failed.clone());
            // Sent from the runtime now, while the job computes on (its own candidates).
            let early: Release = Box::new(move |sent, note| {
                let delivery = service.deliver_step((sent, Vec::new(), note), (me, shards), &id, step, false);
                let _ = release.send(delivery.map(|d| spawn_send(&handle_, &service, &failed_, d)));
            });
            let addressed = running.job.ahead(&phase, &link.payload, Some(early)).map_err(status)?;
            let released = match released.try_recv() {
                Ok(sending) => {
                    sends.push(sending?);
                    true
                }
                Err(_) => false,
            };
            let Some(addressed) = addressed else {
                return Err(Status::failed_precondition(format!(
                    "step {last} was chained, but the job does not work ahead on phase {phase:?}"
                )));
            };
            let delivery = self.deliver_step(addressed, (me, shards), run_id, last, released)?;
            if !released {
                sends.push(spawn_send(handle, self, &failed, delivery));
            }
            let (batches, notes) = self.wait_step_here(last, shards as usize - 1, epoch, gone, &failed)?;
            // The job may end the chain here instead (its work ahead undone).
            if !running.job.go_on(&notes).map_err(status)? {
                return Ok((answers, true, last - 1));
            }
            let first = Some((phase.as_str(), &link.payload[..]));
            let (answer, sent) =
                take_up_and_run(&self.0, &mut running.job, first, (&then, &link.then_payload), batches)?;
            if !sent.0.is_empty() || !sent.1.is_empty() {
                handle.block_on(self.deliver_loose(sent, me, run_id, &then))?;
            }
            answers.push(answer.into());
        }
        Ok((answers, false, last))
    }

    /// [`Service::wait_step`] on a computing thread: also gives up when one of the chain's
    /// own deliveries `failed`, or its request is `gone`.
    fn wait_step_here(
        &self,
        step: u64,
        peers: usize,
        epoch: u64,
        gone: &AtomicBool,
        failed: &Mutex<Option<Status>>,
    ) -> Result<StepBatches, Status> {
        let mut queue = lock(&self.0.queue);
        loop {
            queue.still(step, epoch)?;
            if let Some(e) = lock(failed).take() {
                return Err(e);
            }
            if gone.load(Ordering::SeqCst) {
                return Err(Status::cancelled(format!("step {step}: the chain's request was given up")));
            }
            if let Some(batches) = queue.take_step(step, peers) {
                return Ok(batches);
            }
            // The request's end sets no condition variable: it is looked at now and then.
            queue = self
                .0
                .arrived_here
                .wait_timeout(queue, std::time::Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Sends a chain's step delivery from the runtime; a failure is recorded in `failed` and
/// wakes the chain's wait for its peers.
fn spawn_send(
    handle: &tokio::runtime::Handle,
    service: &Service,
    failed: &Arc<Mutex<Option<Status>>>,
    delivery: impl std::future::Future<Output = Result<(), Status>> + Send + 'static,
) -> JoinHandle<Result<(), Status>> {
    let (service, failed) = (service.clone(), failed.clone());
    handle.spawn(async move {
        let sent = delivery.await;
        if let Err(e) = &sent {
            let _queue = lock(&service.0.queue);
            *lock(&failed) = Some(e.clone());
            service.0.arrived_here.notify_all();
        }
        sent
    })
}

impl Service {
    /// A phase, or a step of two phases, or a chain of steps (see [`Worker::phase`]).
    async fn run_phase(&self, request: PhaseRequest) -> Result<Response<PhaseReply>, Status> {
        let PhaseRequest { phase, payload, then_phase, then_payload, step, ahead, ahead_payload, chain } = request;
        let early = lock(&self.0.ahead).take();
        if then_phase.is_empty() {
            if step != 0 || ahead || !chain.is_empty() {
                return Err(Status::invalid_argument(format!("step {step} with no second phase")));
            }
            // The announced step will not come next: the job undoes any work ahead.
            if let Some(early) = early {
                early.cancel();
            }
            let (answer, sent, me, _, run_id) = self.run_job(None, phase.clone(), payload, Vec::new()).await?;
            self.deliver_loose(sent, me, &run_id, &phase).await?;
            return Ok(reply(PhaseReply { payload: answer.into(), ..PhaseReply::default() }));
        }
        if step == 0 {
            return Err(Status::invalid_argument(format!(
                "phases {phase:?} then {then_phase:?} as a step need a step number (from 1)"
            )));
        }
        let then = (then_phase, then_payload);
        let (answer, me, shards, run_id, epoch) = match early {
            Some(early) if early.is_for(step, &phase, &payload) => {
                self.step_ahead(early, (phase.clone(), payload), then.clone()).await?
            }
            Some(early) => {
                let announced = (early.step, early.phase.clone());
                early.cancel();
                return Err(Status::failed_precondition(format!(
                    "step {step} (phase {phase:?}) is not the one announced: step {} (phase {:?}) with another payload",
                    announced.0, announced.1
                )));
            }
            None => self.step_now((phase.clone(), payload), then.clone(), step).await?,
        };
        let (chained, ended, last) = if chain.is_empty() {
            (Vec::new(), false, step)
        } else {
            self.run_chain(step, (phase.clone(), then.0.clone()), chain, (me, shards), run_id.clone(), epoch).await?
        };
        if ahead && !ended {
            self.work_ahead(last + 1, (phase, ahead_payload), (me, shards), run_id, epoch);
        }
        Ok(reply(PhaseReply { payload: answer.into(), chained, ended }))
    }

    /// A step run when asked: the first phase, its batches delivered while the peers'
    /// arrive, the second phase. Returns the answer and the configuration it ran in.
    async fn step_now(
        &self,
        first: (String, Bytes),
        (then, then_payload): (String, Bytes),
        step: u64,
    ) -> Result<(Vec<u8>, u32, u32, String, u64), Status> {
        let epoch = lock(&self.0.queue).epoch;
        let (_, sent, me, shards, run_id) = self.run_job(None, first.0, first.1, Vec::new()).await?;
        // Own batches are in the step's box before the wait looks at it.
        let delivered = self.deliver_step(sent, (me, shards), &run_id, step, false)?;
        tokio::pin!(delivered);
        let ((batches, _), done) = self.wait_step_delivering(step, shards, epoch, delivered.as_mut()).await?;
        let (answer, sent, me, _, run_id) = self.run_job(None, then.clone(), then_payload, batches).await?;
        if !done {
            delivered.await?;
        }
        self.deliver_loose(sent, me, &run_id, &then).await?;
        Ok((answer, me, shards, run_id, epoch))
    }

    /// Waits until every peer (of `shards` shards) has delivered `step`, and meanwhile for
    /// `delivered`, this worker's own delivery of the step: its failure ends the wait, its
    /// success does not (the second phase needs the peers' batches, not their receipts).
    /// Returns the batches and notes, and whether `delivered` is done.
    async fn wait_step_delivering(
        &self,
        step: u64,
        shards: u32,
        epoch: u64,
        mut delivered: std::pin::Pin<&mut impl std::future::Future<Output = Result<(), Status>>>,
    ) -> Result<(StepBatches, bool), Status> {
        let peers = shards as usize - 1;
        let mut done = false;
        loop {
            tokio::select! {
                batches = self.wait_step(step, peers, epoch) => return Ok((batches?, done)),
                d = &mut delivered, if !done => {
                    d?;
                    done = true;
                }
            }
        }
    }

    /// A step whose first phase began ahead of its request: the peers' batches awaited
    /// (and the answers to this worker's early ones), the first phase's work taken up and
    /// the second phase run on one thread.
    async fn step_ahead(
        &self,
        early: AheadSlot,
        first: (String, Bytes),
        (then, then_payload): (String, Bytes),
    ) -> Result<(Vec<u8>, u32, u32, String, u64), Status> {
        let AheadSlot { step, epoch, shards, worked, delivered, .. } = early;
        let worked = worked.await.map_err(|_| Status::internal("the work ahead ended without a word"))??;
        if !worked {
            return self.step_now(first, (then, then_payload), step).await;
        }
        let delivered = async move { joined("a delivery", delivered.await) };
        tokio::pin!(delivered);
        let ((batches, _), done) = self.wait_step_delivering(step, shards, epoch, delivered.as_mut()).await?;
        let (answer, sent, me, shards, run_id) = self.run_job(Some(first), then.clone(), then_payload, batches).await?;
        if !done {
            delivered.await?;
        }
        self.deliver_loose(sent, me, &run_id, &then).await?;
        Ok((answer, me, shards, run_id, epoch))
    }
}

#[tonic::async_trait]
impl Worker for Service {
    async fn configure(&self, request: Request<ConfigureRequest>) -> Result<Response<ConfigureReply>, Status> {
        let r = request.into_inner();
        if r.shards == 0 || r.shard >= r.shards || r.peers.len() != r.shards as usize {
            return Err(Status::invalid_argument(format!(
                "shard {} of {} with {} peers: the shard must be below the count and one peer given per shard",
                r.shard,
                r.shards,
                r.peers.len()
            )));
        }
        let peers = r
            .peers
            .iter()
            .map(|p| WorkerClient::connect_lazy(p, &self.0.token))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let (registry, job, config, shard, shards) = (self.0.registry.clone(), r.job, r.config, r.shard, r.shards);
        let (known, class) = (registry.clone(), self.0.compute);
        // On a computing thread: a job's own threads (a fitness pool) inherit its class.
        let created = tokio::task::spawn_blocking(move || {
            compute::enter(class);
            registry.create(&job, &config, shard, shards)
        })
        .await
        .map_err(|e| Status::internal(format!("creating the job panicked: {e}")))?
        .map_err(|e| match e {
            WorkError::UnknownJob(job) => Status::not_found(unknown_job(&job, &known.jobs())),
            other => status(other),
        })?;
        if let Some(early) = lock(&self.0.ahead).take() {
            early.cancel();
        }
        *self.0.peers.write().unwrap_or_else(PoisonError::into_inner) = peers;
        let run_id: Arc<str> = r.run_id.as_str().into();
        let mut decoder = self.0.decoder.write().unwrap_or_else(PoisonError::into_inner);
        *decoder = Some(Configured { run_id, decoder: created.decoder(), shard, shards });
        {
            let mut queue = lock(&self.0.queue);
            let epoch = queue.epoch + 1;
            *queue = Queue { epoch, ..Queue::default() };
        }
        drop(decoder);
        // A step still waiting for the configuration before gives up.
        self.0.arrived.notify_waiters();
        self.0.arrived_here.notify_all();
        tracing::info!(run_id = %r.run_id, shard, shards, "configured");
        *lock(&self.0.running) = Some(Running { run_id: r.run_id, shard, shards, job: created });
        Ok(reply(ConfigureReply {}))
    }

    async fn phase(&self, request: Request<PhaseRequest>) -> Result<Response<PhaseReply>, Status> {
        let start = std::time::Instant::now();
        let r = request.into_inner();
        let (phase, then, step) = (r.phase.clone(), r.then_phase.clone(), r.step);
        let result = self.run_phase(r).await;
        match &result {
            Ok(answer) => {
                tracing::debug!(%phase, %then, step, took = ?start.elapsed(), bytes = answer.get_ref().payload.len(), "phase answered");
            }
            Err(e) => tracing::debug!(%phase, %then, step, code = ?e.code(), message = e.message(), "phase failed"),
        }
        result
    }

    async fn deliver(&self, request: Request<DeliverRequest>) -> Result<Response<DeliverReply>, Status> {
        let r = request.into_inner();
        if r.step != 0 {
            if !r.payload.is_empty() {
                return Err(Status::invalid_argument(
                    "a delivery of a step carries its batches in `batches`, not `payload`",
                ));
            }
            let (bytes, service) = (r.batches.iter().map(Bytes::len).sum(), self.clone());
            let queued = decode_off_runtime_if_large(bytes, self.0.compute, move || {
                service.enqueue_step(&r.run_id, r.from_shard, r.step, &r.batches, r.note)
            })
            .await?;
            return Ok(reply(DeliverReply { queued }));
        }
        if !r.batches.is_empty() {
            return Err(Status::invalid_argument("batches in a delivery of no step (step 0)"));
        }
        let (bytes, service) = (r.payload.len(), self.clone());
        let queued =
            decode_off_runtime_if_large(bytes, self.0.compute, move || service.enqueue(&r.run_id, &r.payload)).await?;
        Ok(reply(DeliverReply { queued }))
    }

    async fn stop(&self, _request: Request<StopRequest>) -> Result<Response<StopReply>, Status> {
        tracing::info!("told to stop");
        self.0.stop.notify_one();
        Ok(reply(StopReply {}))
    }

    async fn ping(&self, _request: Request<PingRequest>) -> Result<Response<PingReply>, Status> {
        Ok(reply(PingReply {}))
    }
}

/// Serves a worker on `listener` until a Stop call or `shutdown` completes, then gives
/// calls in flight [`Limits::shutdown_grace`] to finish and returns, whatever they are
/// doing: a worker told to stop is gone within a bounded time, even with a call stuck on a
/// hung peer or a connection that never spoke. (Connection tasks left behind end with the
/// runtime; a process should shut its runtime down with a timeout after this returns.)
pub async fn serve(
    listener: TcpListener,
    config: WorkerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let _: SocketAddr = listener.local_addr().map_err(ServeError::Address)?;
    let limits = config.limits;
    let shared = Arc::new(Shared {
        token: config.token.clone(),
        registry: config.registry,
        compute: config.compute,
        running: Mutex::new(None),
        decoder: RwLock::new(None),
        peers: RwLock::new(Vec::new()),
        queue: Mutex::new(Queue::default()),
        arrived: Notify::new(),
        arrived_here: Condvar::new(),
        stop: Notify::new(),
        ahead: Mutex::new(None),
    });
    let server = WorkerServer::new(Service(shared.clone()))
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let service = InterceptedService::new(server, Gate { expected: config.token.into() });
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let signal = &stopping_tx;
    let stopped = async move {
        tokio::select! {
            () = shared.stop.notified() => {}
            () = shutdown => {}
        }
        let _ = signal.send(true);
    };
    let grace_over = async {
        let mut stopping = stopping_tx.subscribe();
        let _ = stopping.wait_for(|s| *s).await;
        tokio::time::sleep(limits.shutdown_grace).await;
    };
    let incoming = conn::incoming(listener, limits, stopping);
    let serving = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(limits.keepalive))
        .http2_keepalive_timeout(Some(limits.keepalive))
        // Large deliveries (a peer's batch of large genomes: megabytes) cross in few frames
        // and without waiting for window updates: at HTTP/2's default 16 KB frames, an
        // 800 KB batch took about 100 writes and 200 reads, each waking the other process.
        .max_frame_size(Some(MAX_FRAME_BYTES))
        .initial_stream_window_size(Some(WINDOW_BYTES))
        .initial_connection_window_size(Some(2 * WINDOW_BYTES))
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, stopped);
    tokio::select! {
        served = serving => served?,
        () = grace_over => {}
    }
    Ok(())
}

/// Runs a worker as its own process: listens on `address` (port 0 picks a free one),
/// announces `listening http://HOST:PORT` as the first line of stdout (how a parent learns
/// an ephemeral port), and serves until a Stop call, Ctrl-C, or — with `exit_with_parent` —
/// the end of stdin, which is how a parent makes sure that no worker outlives it, even when
/// the parent is killed. Its connection limit is fitted to the process's open-file limit
/// ([`Limits::within_open_file_limit`]).
pub async fn serve_process(
    address: SocketAddr,
    mut config: WorkerConfig,
    exit_with_parent: bool,
) -> Result<(), ServeError> {
    use std::io::Write;
    let listener = TcpListener::bind(address).await.map_err(|source| ServeError::Bind { address, source })?;
    let bound = listener.local_addr().map_err(ServeError::Address)?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening http://{bound}").and_then(|()| out.flush()).map_err(ServeError::Announce)?;
    }
    let orphaned = Arc::new(Notify::new());
    if exit_with_parent {
        let notify = orphaned.clone();
        std::thread::spawn(move || {
            // Blocks until the parent closes our stdin: on exit, kill or crash alike.
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
            notify.notify_one();
        });
    }
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = orphaned.notified() => {}
        }
    };
    config.limits = config.limits.within_open_file_limit();
    serve(listener, config, shutdown).await
}
