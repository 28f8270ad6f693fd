//! Serving a worker.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use crate::client::WorkerClient;
use crate::conn::{self, Limits};
use crate::pb::worker_server::{Worker, WorkerServer};
use crate::pb::{
    ConfigureReply, ConfigureRequest, DeliverReply, DeliverRequest, PhaseReply, PhaseRequest, PingReply, PingRequest,
    StopReply, StopRequest,
};
use crate::work::{Delivery, DeliveryDecoder, Outbox, Registry, ShardWork, WorkError};
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
}

impl WorkerConfig {
    /// A worker for `token` running the jobs of `registry`.
    pub fn new(token: impl Into<String>, registry: Arc<dyn Registry>) -> Self {
        Self { token: token.into(), registry, max_message_bytes: MAX_MESSAGE_BYTES, limits: Limits::default() }
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
    work: Box<dyn ShardWork>,
}

/// A configuration's run id and the decoder of its deliveries.
type Configured = (Arc<str>, Arc<dyn DeliveryDecoder>);

struct Shared {
    token: String,
    registry: Arc<dyn Registry>,
    running: Mutex<Option<Running>>,
    /// The configuration's run id and decoder: a delivery is checked against them, and
    /// queued under the read lock, so that a reconfiguration (which clears the queue under
    /// the write lock) never finds a batch of the configuration before it.
    decoder: RwLock<Option<Configured>>,
    peers: RwLock<Vec<WorkerClient>>,
    queue: Mutex<Vec<Delivery>>,
    stop: Notify,
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

/// Deliveries at least this large are decoded on a blocking thread (about 1 ns a byte for
/// the GA's batches: from here on, tens of microseconds).
const BLOCKING_DECODE_BYTES: usize = 64 << 10;

/// A delivery of the configuration `run_id` to a worker that now serves `configured`.
fn stale(run_id: &str, configured: &str) -> Status {
    Status::failed_precondition(format!("a delivery of run {run_id}; this worker now serves run {configured}"))
}

#[derive(Clone)]
struct Service(Arc<Shared>);

impl Service {
    fn enqueue(&self, run_id: &str, payload: &[u8]) -> Result<u32, Status> {
        let current = self.0.decoder.read().unwrap_or_else(PoisonError::into_inner).clone();
        let Some((configured, decoder)) = current else {
            return Err(Status::failed_precondition("this worker is not configured yet"));
        };
        if *configured != *run_id {
            return Err(stale(run_id, &configured));
        }
        // Decoded outside every lock: a large batch does not hold up the others.
        let batch = decoder.decode(payload).map_err(status)?;
        self.queue_decoded(run_id, batch)
    }

    /// Queues a decoded batch of the configuration `run_id`, if it is still the one served.
    fn queue_decoded(&self, run_id: &str, batch: Delivery) -> Result<u32, Status> {
        let current = self.0.decoder.read().unwrap_or_else(PoisonError::into_inner);
        match current.as_ref() {
            Some((now, _)) if **now == *run_id => {}
            Some((now, _)) => return Err(stale(run_id, now)),
            None => return Err(Status::failed_precondition("this worker is not configured yet")),
        }
        let mut queue = lock(&self.0.queue);
        queue.push(batch);
        Ok(queue.len() as u32)
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
        let known = registry.clone();
        let created = tokio::task::spawn_blocking(move || registry.create(&job, &config, shard, shards))
            .await
            .map_err(|e| Status::internal(format!("creating the job panicked: {e}")))?
            .map_err(|e| match e {
                WorkError::UnknownJob(job) => Status::not_found(unknown_job(&job, &known.jobs())),
                other => status(other),
            })?;
        *self.0.peers.write().unwrap_or_else(PoisonError::into_inner) = peers;
        let run_id: Arc<str> = r.run_id.as_str().into();
        let mut decoder = self.0.decoder.write().unwrap_or_else(PoisonError::into_inner);
        *decoder = Some((run_id, created.decoder));
        lock(&self.0.queue).clear();
        drop(decoder);
        *lock(&self.0.running) = Some(Running { run_id: r.run_id, shard, work: created.work });
        Ok(reply(ConfigureReply {}))
    }

    async fn phase(&self, request: Request<PhaseRequest>) -> Result<Response<PhaseReply>, Status> {
        let PhaseRequest { phase, payload } = request.into_inner();
        let shared = self.0.clone();
        let name = phase.clone();
        let (answer, outbox, me, run_id) = tokio::task::spawn_blocking(move || {
            let mut running = lock(&shared.running);
            let Some(running) = running.as_mut() else {
                return Err(Status::failed_precondition("this worker is not configured yet"));
            };
            let deliveries = std::mem::take(&mut *lock(&shared.queue));
            let mut outbox = Outbox::default();
            let answer = running.work.phase(&name, &payload, deliveries, &mut outbox).map_err(status)?;
            Ok((answer, outbox, running.shard, running.run_id.clone()))
        })
        .await
        .map_err(|e| Status::internal(format!("phase {phase:?} panicked: {e}")))??;
        // Deliver every batch before answering: when all phases of a step have answered,
        // every batch of the step waits in its owner's queue.
        let (sent, kept) = outbox.into_parts();
        for batch in kept {
            self.queue_decoded(&run_id, batch)?;
        }
        let peers = self.0.peers.read().unwrap_or_else(PoisonError::into_inner).clone();
        let mut sends = JoinSet::new();
        for (to, batch) in sent {
            if to == me {
                self.enqueue(&run_id, &batch)?;
                continue;
            }
            let Some(mut peer) = peers.get(to as usize).cloned() else {
                return Err(Status::internal(format!("phase {phase:?} addressed shard {to}, which does not exist")));
            };
            let run_id = run_id.clone();
            sends.spawn(async move { peer.deliver(&run_id, me, batch).await.map_err(|e| (to, e)) });
        }
        while let Some(sent) = sends.join_next().await {
            match sent {
                Ok(Ok(_)) => {}
                // ABORTED, not UNAVAILABLE: this worker is fine, a peer did not take its batch.
                Ok(Err((to, e))) => {
                    return Err(Status::aborted(format!("run {run_id}: shard {to} did not take its batch: {e}")));
                }
                Err(e) => return Err(Status::internal(format!("a delivery task failed: {e}"))),
            }
        }
        Ok(reply(PhaseReply { payload: answer.into() }))
    }

    async fn deliver(&self, request: Request<DeliverRequest>) -> Result<Response<DeliverReply>, Status> {
        let r = request.into_inner();
        // Decoding and checking a batch is the job's CPU work: a large one goes off the async
        // runtime. A small one (tens of microseconds) is decoded here: the hand-off to a
        // blocking thread would cost more than it saves, on every step's critical path
        // (measured: 0.1 ms a generation for Rastrigin-30 at population 400).
        let queued = if r.payload.len() < BLOCKING_DECODE_BYTES {
            self.enqueue(&r.run_id, &r.payload)?
        } else {
            let service = self.clone();
            tokio::task::spawn_blocking(move || service.enqueue(&r.run_id, &r.payload))
                .await
                .map_err(|e| Status::internal(format!("decoding a delivery panicked: {e}")))??
        };
        Ok(reply(DeliverReply { queued }))
    }

    async fn stop(&self, _request: Request<StopRequest>) -> Result<Response<StopReply>, Status> {
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
        running: Mutex::new(None),
        decoder: RwLock::new(None),
        peers: RwLock::new(Vec::new()),
        queue: Mutex::new(Vec::new()),
        stop: Notify::new(),
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
