//! Calling a worker: the framework's and the peers' side of the protocol.

use std::time::Duration;
use tonic::Request;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;

use tonic::transport::{Channel, Endpoint};

use crate::Bytes;
use crate::pb::worker_client::WorkerClient as RawClient;
use crate::pb::{ConfigureRequest, DeliverRequest, Link, PhaseRequest, PingRequest, StopRequest};
use crate::{MAX_MESSAGE_BYTES, PROTOCOL_HEADER, PROTOCOL_VERSION};

/// Why a call to a worker failed; always names the worker.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint is not a usable URI.
    #[error("invalid worker endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// The endpoint given.
        endpoint: String,
        /// Why it is unusable.
        reason: String,
    },
    /// The worker answered with an error, or could not be reached.
    #[error("worker {endpoint}: {code:?}: {message}")]
    Rpc {
        /// The worker.
        endpoint: String,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
    /// The worker speaks another protocol version.
    #[error("worker {endpoint} speaks protocol {got:?}, this side speaks {PROTOCOL_VERSION}")]
    Protocol {
        /// The worker.
        endpoint: String,
        /// The version it announced, if any.
        got: Option<String>,
    },
}

impl ClientError {
    /// The gRPC code, for errors the worker returned.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            ClientError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Adds the run token and the protocol version to every request.
#[derive(Clone)]
pub(crate) struct Credentials {
    authorization: AsciiMetadataValue,
    version: AsciiMetadataValue,
}

impl Credentials {
    pub(crate) fn new(token: &str, version: u32) -> Option<Self> {
        Some(Self {
            authorization: format!("Bearer {token}").parse().ok()?,
            version: version.to_string().parse().ok()?,
        })
    }
}

impl Interceptor for Credentials {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.authorization.clone());
        request.metadata_mut().insert(PROTOCOL_HEADER, self.version.clone());
        Ok(request)
    }
}

/// How long a connection to a worker may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a client pings its worker over HTTP/2, busy or idle: a worker computes its
/// phases off the async runtime, so even a long phase answers pings at once.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// A ping unanswered this long closes the connection and fails the calls on it: a worker
/// whose host vanished without a reset (a partition, a stopped process) is noticed in
/// seconds rather than after the phase timeout.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// A connection to one worker. Cheap to clone; connects on first use.
#[derive(Clone)]
pub struct WorkerClient {
    endpoint: String,
    inner: RawClient<InterceptedService<Channel, Credentials>>,
}

impl WorkerClient {
    /// A client for `endpoint` (e.g. `http://127.0.0.1:7070`) presenting `token`.
    pub fn connect_lazy(endpoint: &str, token: &str) -> Result<Self, ClientError> {
        Self::with_version(endpoint, token, PROTOCOL_VERSION)
    }

    /// As [`WorkerClient::connect_lazy`], announcing another protocol version (for tests of
    /// version checking).
    pub fn with_version(endpoint: &str, token: &str, version: u32) -> Result<Self, ClientError> {
        let bad = |reason: String| ClientError::Endpoint { endpoint: endpoint.to_string(), reason };
        let credentials = Credentials::new(token, version).ok_or_else(|| bad("token is not ASCII".into()))?;
        let channel = Endpoint::from_shared(endpoint.to_string())
            .map_err(|e| bad(e.to_string()))?
            .tcp_nodelay(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .connect_lazy();
        let inner = RawClient::with_interceptor(channel, credentials)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self { endpoint: endpoint.to_string(), inner })
    }

    /// The worker's endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn rpc_error(&self, status: tonic::Status) -> ClientError {
        ClientError::Rpc { endpoint: self.endpoint.clone(), code: status.code(), message: status.message().to_string() }
    }

    fn check(&self, metadata: &MetadataMap) -> Result<(), ClientError> {
        let got = metadata.get(PROTOCOL_HEADER).and_then(|v| v.to_str().ok());
        if got == Some(PROTOCOL_VERSION.to_string().as_str()) {
            Ok(())
        } else {
            Err(ClientError::Protocol { endpoint: self.endpoint.clone(), got: got.map(str::to_string) })
        }
    }

    /// Configures the worker's shard of a job.
    pub async fn configure(&mut self, request: ConfigureRequest) -> Result<(), ClientError> {
        let response = self.inner.configure(request).await.map_err(|s| self.rpc_error(s))?;
        self.check(response.metadata())
    }

    /// Runs one phase; returns the job's answer.
    pub async fn phase(&mut self, phase: &str, payload: Vec<u8>) -> Result<Bytes, ClientError> {
        self.call_phase(PhaseRequest { phase: phase.to_string(), payload: payload.into(), ..PhaseRequest::default() })
            .await
    }

    async fn call_phase(&mut self, request: PhaseRequest) -> Result<Bytes, ClientError> {
        let response = self.inner.phase(request).await.map_err(|s| self.rpc_error(s))?;
        self.check(response.metadata())?;
        Ok(response.into_inner().payload)
    }

    async fn call_deliver(&mut self, request: DeliverRequest) -> Result<u32, ClientError> {
        let response = self.inner.deliver(request).await.map_err(|s| self.rpc_error(s))?;
        self.check(response.metadata())?;
        Ok(response.into_inner().queued)
    }

    /// Runs `phase` then, once every peer's batches of `step` have arrived, `then`: one
    /// round trip for what took two phases; returns `then`'s answer (`phase`'s is dropped).
    /// Steps number from 1 in a configuration.
    pub async fn step(
        &mut self,
        (phase, payload): (&str, Vec<u8>),
        (then, then_payload): (&str, Vec<u8>),
        step: u64,
    ) -> Result<Bytes, ClientError> {
        self.call_phase(step_request((phase, payload), (then, then_payload), step)).await
    }

    /// [`WorkerClient::step`], announcing the next step: unless the configuration ends
    /// first, the next request is step `step + 1`, whose first phase is `phase` again with
    /// `ahead` as its payload. The worker may start that phase as soon as it has answered
    /// this one; it refuses a later request that breaks the announcement.
    pub async fn step_announcing(
        &mut self,
        (phase, payload): (&str, Vec<u8>),
        (then, then_payload): (&str, Vec<u8>),
        step: u64,
        ahead: Vec<u8>,
    ) -> Result<Bytes, ClientError> {
        let request = PhaseRequest {
            ahead: true,
            ahead_payload: ahead.into(),
            ..step_request((phase, payload), (then, then_payload), step)
        };
        self.call_phase(request).await
    }

    /// [`WorkerClient::step_announcing`] (`ahead`, if given) followed by a chain: one more
    /// step per link (its first and second phases' payloads), numbered on from `step`, which
    /// the workers run without a request, each after its job has read its peers' notes of the
    /// step and agreed to go on. Returns the step's answer, the answers of the links that
    /// ran, and whether a job ended the chain before its last link.
    pub async fn step_chain(
        &mut self,
        (phase, payload): (&str, Vec<u8>),
        (then, then_payload): (&str, Vec<u8>),
        step: u64,
        chain: Vec<(Vec<u8>, Vec<u8>)>,
        ahead: Option<Vec<u8>>,
    ) -> Result<(Bytes, Vec<Bytes>, bool), ClientError> {
        let request = PhaseRequest {
            ahead: ahead.is_some(),
            ahead_payload: ahead.unwrap_or_default().into(),
            chain: chain.into_iter().map(|(p, t)| Link { payload: p.into(), then_payload: t.into() }).collect(),
            ..step_request((phase, payload), (then, then_payload), step)
        };
        let response = self.inner.phase(request).await.map_err(|s| self.rpc_error(s))?;
        self.check(response.metadata())?;
        let reply = response.into_inner();
        Ok((reply.payload, reply.chained, reply.ended))
    }

    /// Delivers shard `from_shard`'s batches of `step` (maybe none: the delivery still
    /// counts) and its job's `note` for this peer in the configuration `run_id`; returns how
    /// many batches of the step wait there.
    pub async fn deliver_step(
        &mut self,
        run_id: &str,
        from_shard: u32,
        step: u64,
        batches: Vec<Vec<u8>>,
        note: Bytes,
    ) -> Result<u32, ClientError> {
        let request = DeliverRequest {
            from_shard,
            payload: Bytes::new(),
            run_id: run_id.to_string(),
            step,
            batches: batches.into_iter().map(Bytes::from).collect(),
            note,
        };
        self.call_deliver(request).await
    }

    /// Delivers a batch from shard `from_shard` of the configuration `run_id` (the worker
    /// refuses one of another); returns how many batches wait there.
    pub async fn deliver(&mut self, run_id: &str, from_shard: u32, payload: Vec<u8>) -> Result<u32, ClientError> {
        let request = DeliverRequest {
            from_shard,
            payload: payload.into(),
            run_id: run_id.to_string(),
            ..DeliverRequest::default()
        };
        self.call_deliver(request).await
    }

    /// Asks whether the worker process is alive; answered at once even mid-phase.
    pub async fn ping(&mut self) -> Result<(), ClientError> {
        let response = self.inner.ping(PingRequest {}).await.map_err(|s| self.rpc_error(s))?;
        self.check(response.metadata())
    }

    /// Asks the worker to exit.
    pub async fn stop(&mut self) -> Result<(), ClientError> {
        let response = self.inner.stop(StopRequest {}).await.map_err(|s| self.rpc_error(s))?;
        self.check(response.metadata())
    }
}

fn step_request((phase, payload): (&str, Vec<u8>), (then, then_payload): (&str, Vec<u8>), step: u64) -> PhaseRequest {
    PhaseRequest {
        phase: phase.to_string(),
        payload: payload.into(),
        then_phase: then.to_string(),
        then_payload: then_payload.into(),
        step,
        ..PhaseRequest::default()
    }
}
