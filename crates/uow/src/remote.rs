//! Shards on worker services, over gRPC.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::watch;
use worker_service::pb::ConfigureRequest;
use worker_service::{ClientError, WorkerClient};

use crate::run::Loss;
use crate::{Bytes, Cluster, ClusterError, RunWatch, UnitOfWork, UowError};

/// A cluster of worker services, one shard each. Phases block the calling thread (which
/// must not be a runtime worker thread) on `runtime` until every worker has answered, or
/// until the phase timeout (if set) says one never will.
pub struct RemoteCluster {
    runtime: Handle,
    workers: Vec<WorkerClient>,
    phase_timeout: Option<Duration>,
    losses: Option<watch::Receiver<Option<Loss>>>,
    /// The last step number used (steps number from 1 in a configuration).
    steps: u64,
    watch: Option<Arc<dyn RunWatch>>,
}

/// How long a worker whose phase timed out has to answer a ping before it counts as hung.
pub const PING_LIMIT: Duration = Duration::from_secs(1);

impl RemoteCluster {
    /// Configures one shard of `uow` on each worker at `endpoints` (in shard order).
    pub async fn configure<U: UnitOfWork>(
        runtime: Handle,
        uow: &U,
        endpoints: &[String],
        token: &str,
        run_id: &str,
    ) -> Result<Self, UowError> {
        let shards = endpoints.len() as u32;
        let mut workers = Vec::with_capacity(endpoints.len());
        for (i, endpoint) in endpoints.iter().enumerate() {
            let lost = |reason: String| ClusterError::Lost {
                shard: i as u32,
                endpoint: endpoint.clone(),
                phase: "configure".into(),
                reason,
            };
            let mut client = WorkerClient::connect_lazy(endpoint, token).map_err(|e| lost(e.to_string()))?;
            let request = ConfigureRequest {
                run_id: run_id.to_string(),
                job: uow.job().to_string(),
                shard: i as u32,
                shards,
                peers: endpoints.to_vec(),
                config: uow.shard_config(i as u32, shards)?.into(),
            };
            client.configure(request).await.map_err(|e| call_error(i as u32, endpoint, "configure", e))?;
            workers.push(client);
        }
        Ok(Self { runtime, workers, phase_timeout: None, losses: None, steps: 0, watch: None })
    }

    /// Gives up on a phase that a worker has not answered within `limit` (`None`: wait as
    /// long as the workers are alive). Every worker is then pinged: one that does not
    /// answer within [`PING_LIMIT`] is reported as hung — the culprit, rather than the live
    /// workers that were waiting on it.
    pub fn with_phase_timeout(mut self, limit: Option<Duration>) -> Self {
        self.phase_timeout = limit;
        self
    }

    /// Ends a phase as soon as `losses` reports a lost worker (its supervisor may know
    /// before any call fails: e.g. Mesos reporting the agent gone).
    pub fn with_losses(mut self, losses: Option<watch::Receiver<Option<Loss>>>) -> Self {
        self.losses = losses;
        self
    }

    /// Tells `watch` of every worker's answer to every phase (its time and sizes).
    pub fn with_watch(mut self, watch: Option<Arc<dyn RunWatch>>) -> Self {
        self.watch = watch;
        self
    }

    /// Asks every worker to exit; returns the first failure, after asking all.
    pub async fn stop(&mut self) -> Result<(), ClusterError> {
        let mut first = None;
        for (i, w) in self.workers.iter_mut().enumerate() {
            if let Err(e) = w.stop().await {
                first.get_or_insert(ClusterError::Lost {
                    shard: i as u32,
                    endpoint: w.endpoint().to_string(),
                    phase: "stop".into(),
                    reason: e.to_string(),
                });
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Cluster for RemoteCluster {
    fn shards(&self) -> u32 {
        self.workers.len() as u32
    }

    fn phase(&mut self, phase: &str, payload: &mut dyn FnMut(u32) -> Vec<u8>) -> Result<Vec<Bytes>, ClusterError> {
        let calls = self.spawn_calls(phase, |i, mut w| {
            let (input, phase) = (payload(i), phase.to_string());
            (input.len(), async move { w.phase(&phase, input).await })
        });
        self.gather(phase, calls)
    }

    fn step(
        &mut self,
        first: (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        then: (&str, &mut dyn FnMut(u32) -> Vec<u8>),
    ) -> Result<Vec<Bytes>, ClusterError> {
        self.step_with(first, then, None)
    }

    fn step_announcing(
        &mut self,
        first: (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        then: (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        ahead: &mut dyn FnMut(u32) -> Vec<u8>,
    ) -> Result<Vec<Bytes>, ClusterError> {
        self.step_with(first, then, Some(ahead))
    }

    fn step_chain(
        &mut self,
        (first, first_payload): (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        (then, then_payload): (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        (count, links): (usize, &mut dyn FnMut(u32) -> Vec<(Vec<u8>, Vec<u8>)>),
        mut ahead: Option<&mut dyn FnMut(u32) -> Vec<u8>>,
    ) -> Result<Option<Vec<(Vec<Bytes>, bool)>>, ClusterError> {
        let step = self.steps + 1;
        self.steps += 1 + count as u64;
        // Named as a lone step: a chain is one call whichever its length (the status
        // board's metrics label calls by it).
        let name = format!("{first} then {then}");
        let calls = self.spawn_calls(&name, |i, mut w| {
            let (first, input, then, then_input) =
                (first.to_string(), first_payload(i), then.to_string(), then_payload(i));
            let ahead = ahead.as_mut().map(|a| a(i));
            let mut links = links(i);
            links.truncate(count);
            let sent = input.len() + then_input.len() + links.iter().map(|(p, t)| p.len() + t.len()).sum::<usize>();
            (sent, async move {
                let (answer, chained, ended) =
                    w.step_chain((&first, input), (&then, then_input), step, links, ahead).await?;
                // One answer for the barrier: the step's and the links' answers, framed.
                let answers: Vec<Vec<u8>> = std::iter::once(answer).chain(chained).map(|a| a.to_vec()).collect();
                postcard::to_allocvec(&(answers, ended))
                    .map(Bytes::from)
                    .map_err(|e| ClientError::Endpoint { endpoint: w.endpoint().to_string(), reason: e.to_string() })
            })
        });
        let framed = self.gather(&name, calls)?;
        let mut out = Vec::with_capacity(framed.len());
        for (i, f) in framed.iter().enumerate() {
            let (answers, ended): (Vec<Vec<u8>>, bool) =
                postcard::from_bytes(f).map_err(|e| ClusterError::Refused {
                    shard: i as u32,
                    phase: name.clone(),
                    reason: format!("a chain's answers do not decode: {e}"),
                })?;
            out.push((answers.into_iter().map(Bytes::from).collect(), ended));
        }
        Ok(Some(out))
    }
}

type Call = tokio::task::JoinHandle<Outcome>;

impl RemoteCluster {
    /// A step, in one round trip per worker; announcing the next one when `ahead` is given.
    fn step_with(
        &mut self,
        (first, first_payload): (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        (then, then_payload): (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        mut ahead: Option<&mut dyn FnMut(u32) -> Vec<u8>>,
    ) -> Result<Vec<Bytes>, ClusterError> {
        self.steps += 1;
        let step = self.steps;
        let name = format!("{first} then {then}");
        let calls = self.spawn_calls(&name, |i, mut w| {
            let (first, input, then, then_input) =
                (first.to_string(), first_payload(i), then.to_string(), then_payload(i));
            let ahead = ahead.as_mut().map(|a| a(i));
            let sent = input.len() + then_input.len() + ahead.as_ref().map_or(0, Vec::len);
            (sent, async move {
                match ahead {
                    Some(ahead) => w.step_announcing((&first, input), (&then, then_input), step, ahead).await,
                    None => w.step((&first, input), (&then, then_input), step).await,
                }
            })
        });
        self.gather(&name, calls)
    }

    /// Starts `call(shard, its client)` (the bytes it sends, and the call) on every worker,
    /// each bounded by the phase timeout; the watch, if any, is told of each answer.
    fn spawn_calls<F>(&self, phase: &str, mut call: impl FnMut(u32, WorkerClient) -> (usize, F)) -> Vec<Call>
    where
        F: Future<Output = Result<Bytes, ClientError>> + Send + 'static,
    {
        let limit = self.phase_timeout;
        let phase: Arc<str> = phase.into();
        self.workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let (sent, call) = call(i as u32, w.clone());
                let (watch, phase) = (self.watch.clone(), phase.clone());
                self.runtime.spawn(async move {
                    let start = Instant::now();
                    let outcome = match limit {
                        Some(limit) => {
                            tokio::time::timeout(limit, call).await.map_or(Outcome::TimedOut(limit), Outcome::Answer)
                        }
                        None => Outcome::Answer(call.await),
                    };
                    let took = start.elapsed();
                    tracing::debug!(shard = i, phase = &*phase, ?took, "answered");
                    if let (Some(w), Outcome::Answer(Ok(answer))) = (&watch, &outcome) {
                        w.answered(i as u32, &phase, took, sent, answer.len());
                    }
                    outcome
                })
            })
            .collect()
    }

    /// Waits for every call of `phase` (the barrier), or for a reported loss; names the
    /// worker lost or hung, if any, else the first refusal.
    fn gather(&mut self, phase: &str, mut calls: Vec<Call>) -> Result<Vec<Bytes>, ClusterError> {
        let mut losses = self.losses.clone();
        let results = self.runtime.block_on(async {
            // In the order they end: a lost worker ends the wait at once, as the others may
            // be waiting on it (a step's second phase waits for every peer's batches).
            let answers = async {
                let mut results: Vec<Option<Outcome>> = calls.iter().map(|_| None).collect();
                std::future::poll_fn(|cx| {
                    for (call, result) in calls.iter_mut().zip(results.iter_mut()) {
                        if result.is_some() {
                            continue;
                        }
                        if let Poll::Ready(r) = Pin::new(call).poll(cx) {
                            let outcome = r.unwrap_or_else(|e| Outcome::Failed(e.to_string()));
                            let lost = outcome.is_loss();
                            *result = Some(outcome);
                            if lost {
                                return Poll::Ready(());
                            }
                        }
                    }
                    if results.iter().all(Option::is_some) { Poll::Ready(()) } else { Poll::Pending }
                })
                .await;
                results
            };
            let lost = async {
                match losses.as_mut() {
                    Some(l) => match l.wait_for(Option::is_some).await {
                        Ok(loss) => loss.clone(),
                        Err(_) => std::future::pending().await,
                    },
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                results = answers => Ok(results),
                Some(loss) = lost => Err(loss),
            }
        });
        let lost = |i: usize, reason: String| ClusterError::Lost {
            shard: i as u32,
            endpoint: self.workers.get(i).map(|w| w.endpoint().to_string()).unwrap_or_default(),
            phase: phase.into(),
            reason,
        };
        // The wait ended early only on a lost worker, which the loop below names: the calls
        // still running are given up, and only those that ended are looked at.
        let results: Vec<(usize, Outcome)> = match results {
            Ok(results) => {
                if results.iter().any(Option::is_none) {
                    for call in &calls {
                        call.abort();
                    }
                }
                results.into_iter().enumerate().filter_map(|(i, r)| r.map(|r| (i, r))).collect()
            }
            Err(loss) => {
                for call in &calls {
                    call.abort();
                }
                return Err(lost(loss.shard as usize, loss.reason));
            }
        };
        // A worker that answered its own phase may hang right after, leaving the others
        // waiting to hand it their batches: once anything timed out, every worker is pinged.
        if let Some(limit) =
            results.iter().find_map(|(_, r)| if let Outcome::TimedOut(l) = r { Some(*l) } else { None })
        {
            if let Some(hung) = self.first_hung() {
                return Err(lost(
                    hung,
                    format!(
                        "no answer to a ping within {PING_LIMIT:?} after the phase ran past {limit:?}: the worker is hung"
                    ),
                ));
            }
        }
        let mut answers = Vec::with_capacity(results.len());
        let mut refused = None;
        for (i, r) in results {
            match r {
                Outcome::Answer(Ok(answer)) => answers.push(answer),
                Outcome::Failed(reason) => return Err(lost(i, reason)),
                Outcome::Answer(Err(e)) => match call_error(i as u32, self.workers[i].endpoint(), phase, e) {
                    // A live worker's refusal may only echo a lost peer ("shard 1 did not
                    // take its batch"): a lost worker, if any, is the one to name.
                    refusal @ ClusterError::Refused { .. } => {
                        refused.get_or_insert(refusal);
                    }
                    loss => return Err(loss),
                },
                Outcome::TimedOut(limit) => {
                    return Err(lost(
                        i,
                        format!("no answer within {limit:?} (it answers pings: the phase is slow, or waits on a peer)"),
                    ));
                }
            }
        }
        match refused {
            None => Ok(answers),
            // The lost peer may have answered its own call before it went: ask them all.
            Some(refusal) => match self.first_hung() {
                Some(i) => Err(lost(i, format!("it does not answer a ping (and {refusal})"))),
                None => Err(refusal),
            },
        }
    }
}

impl Outcome {
    /// Whether the call says its worker is lost (rather than answering, refusing or
    /// running late).
    fn is_loss(&self) -> bool {
        match self {
            Outcome::Failed(_) => true,
            Outcome::Answer(Err(e)) => !e.code().is_some_and(is_refusal),
            Outcome::Answer(Ok(_)) | Outcome::TimedOut(_) => false,
        }
    }
}

/// How one worker's phase call ended.
enum Outcome {
    /// It answered (maybe with an error).
    Answer(Result<Bytes, ClientError>),
    /// It did not answer within the phase timeout.
    TimedOut(Duration),
    /// The task that made the call failed (a panic).
    Failed(String),
}

impl RemoteCluster {
    /// The first worker that does not answer a ping within [`PING_LIMIT`].
    fn first_hung(&self) -> Option<usize> {
        let pings: Vec<_> = self
            .workers
            .iter()
            .map(|w| {
                let mut w = w.clone();
                self.runtime
                    .spawn(async move { matches!(tokio::time::timeout(PING_LIMIT, w.ping()).await, Ok(Ok(()))) })
            })
            .collect();
        self.runtime.block_on(async {
            for (i, ping) in pings.into_iter().enumerate() {
                if !ping.await.unwrap_or(false) {
                    return Some(i);
                }
            }
            None
        })
    }
}

/// What a failed call to the worker of `shard` means: a refusal when a live worker
/// answered no (e.g. it does not run this job), else the worker is lost.
fn call_error(shard: u32, endpoint: &str, phase: &str, e: ClientError) -> ClusterError {
    match e.code() {
        Some(code) if is_refusal(code) => ClusterError::Refused { shard, phase: phase.into(), reason: e.to_string() },
        _ => {
            let mut reason = e.to_string();
            if reason.ends_with("http2 error") {
                // What hyper says when its keepalive ping went unanswered (or the stream broke).
                reason.push_str(&format!(
                    " (the connection broke: no answer to HTTP/2 keepalive pings within {:?}, so the worker or its host stopped answering)",
                    worker_service::KEEPALIVE_TIMEOUT
                ));
            }
            ClusterError::Lost { shard, endpoint: endpoint.into(), phase: phase.into(), reason }
        }
    }
}

/// Codes with which a live worker answers a call it could not complete (as opposed to a
/// transport failure): ABORTED is a live worker whose peer did not take a batch.
fn is_refusal(code: worker_service::Code) -> bool {
    use worker_service::Code;
    matches!(code, Code::InvalidArgument | Code::FailedPrecondition | Code::NotFound | Code::Internal | Code::Aborted)
}
