//! The scheduler API: `POST /api/v1/scheduler` (shared/docs/MESOS-HTTP-API.md §1–2).
//!
//! Three layers, each usable on its own:
//! - [`SchedulerClient`] speaks HTTP to one master: SUBSCRIBE opens the event stream and
//!   keeps the `Mesos-Stream-Id` it returns; every other call carries that id and the
//!   framework id and must be answered 202. A 307 from a non-leading master is followed
//!   (its `Location` is protocol-relative). Protobuf by default, JSON on request.
//! - [`Subscription`] reads events (RecordIO, strictly by length) and declares the
//!   subscription lost when no event, not even a HEARTBEAT, arrived for
//!   [`MISSED_HEARTBEATS`] heartbeat intervals. An in-stream ERROR is returned as
//!   [`SchedulerError::MasterError`].
//! - [`Session`] keeps a framework subscribed: after a dropped stream, silence, a redirect
//!   or a master failover it re-subscribes with backoff under the same framework id and
//!   reconciles the tasks it knows, as `docs/reconciliation.md` asks.
//!
//! Scheduler logic should depend on the [`Calls`] and [`Events`] traits, not on these
//! types, so that it can be tested against an in-memory implementation.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::CALL_TIMEOUT;
use crate::codec::{CodecError, ContentType};
use crate::recordio::{RecordIoError, RecordStream, StreamFailure};
use crate::v1::scheduler::{Call, Event, call, event};
use crate::v1::{AgentId, ExecutorId, Filters, FrameworkId, FrameworkInfo, OfferId, TaskId, TaskStatus, offer};

const STREAM_ID: &str = "mesos-stream-id";

/// How many 307s one request follows before giving up (a loop between masters).
const MAX_REDIRECTS: usize = 3;

/// Why a scheduler call or stream failed.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The master address is not `host:port`.
    #[error("invalid Mesos master {0:?} (expected host:port)")]
    BadMaster(String),
    /// The request cannot be built (e.g. a stream id that is not a valid header value).
    #[error("cannot send {call}: {reason}")]
    Request {
        /// The call.
        call: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The connection failed.
    #[error("cannot reach the Mesos master at {master}: {reason}")]
    Transport {
        /// The master.
        master: String,
        /// What failed.
        reason: String,
    },
    /// The master answered with an unexpected status.
    #[error("the Mesos master answered {call} with HTTP {status}: {body}")]
    Status {
        /// The call.
        call: &'static str,
        /// The status.
        status: StatusCode,
        /// The body (the master's explanation).
        body: String,
    },
    /// A 307 without a usable `Location`, or too many of them.
    #[error("bad redirect from the Mesos master for {call}: {why}")]
    BadRedirect {
        /// The call.
        call: &'static str,
        /// What was wrong.
        why: String,
    },
    /// A call of a subscription went to a master that is no longer the leader; the client
    /// now points at `leader` and must SUBSCRIBE there (a [`Session`] does).
    #[error("{call} was redirected to the leading master {leader}: re-subscribe there")]
    Redirected {
        /// The call.
        call: &'static str,
        /// The leader's `host:port`.
        leader: String,
    },
    /// SUBSCRIBE succeeded without a `Mesos-Stream-Id`.
    #[error("the Mesos master's SUBSCRIBE answer has no Mesos-Stream-Id")]
    NoStreamId,
    /// The events are not in the content type asked for.
    #[error("the Mesos master streams events as {got:?}, not {expected}")]
    ContentType {
        /// What we asked for.
        expected: ContentType,
        /// The response's `Content-Type`.
        got: String,
    },
    /// A call needs a subscription first.
    #[error("not subscribed: {0} needs a framework id and a stream id")]
    NotSubscribed(&'static str),
    /// The event stream is not valid RecordIO.
    #[error(transparent)]
    RecordIo(#[from] RecordIoError),
    /// An event does not decode, or a call does not encode.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The master sent an ERROR event (e.g. a refused FrameworkInfo, "Framework has been
    /// removed"); the subscription is over.
    #[error("the Mesos master reported: {0}")]
    MasterError(String),
    /// The master refused the credentials (HTTP 401). Not retried: a wrong secret stays wrong.
    #[error("the Mesos master refused {}: check DEFAULT_PRINCIPAL and DEFAULT_SECRET", match principal {
        Some(p) => format!("the credentials of principal {p:?}"),
        None => "a framework without credentials (set MESOS_AUTHENTICATE, DEFAULT_PRINCIPAL and DEFAULT_SECRET)".to_string(),
    })]
    Unauthorized {
        /// The principal presented, if any.
        principal: Option<String>,
    },
    /// No event (not even a HEARTBEAT) arrived for several heartbeat intervals: the
    /// connection is dead even if TCP has not noticed.
    #[error("no event from the Mesos master for {0:?}: the subscription is considered lost")]
    Silent(Duration),
    /// A [`Session`] could not re-subscribe in time.
    #[error("could not re-subscribe to the Mesos master within {within:?}: {last}")]
    GaveUp {
        /// How long it tried.
        within: Duration,
        /// The last failure.
        last: Box<SchedulerError>,
    },
    /// `MESOS_AUTHENTICATE` is set but a credential variable is missing.
    #[error("MESOS_AUTHENTICATE is set but {0} is not: both DEFAULT_PRINCIPAL and DEFAULT_SECRET are needed")]
    MissingCredential(&'static str),
}

impl SchedulerError {
    /// The master's ERROR saying the framework id is gone for good (failover timeout
    /// expired, or torn down): re-subscribing with that id can never succeed.
    pub fn framework_removed(&self) -> bool {
        matches!(self, Self::MasterError(m) if m.contains("Framework has been removed"))
    }

    /// Whether the failure may pass by itself (the master unreachable, restarting, or
    /// electing a leader: 503), so that SUBSCRIBE is worth retrying.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Redirected { .. } => true,
            Self::Status { status, .. } => *status == StatusCode::SERVICE_UNAVAILABLE,
            _ => false,
        }
    }

    /// Whether a call's failure means the subscription is gone (shared/docs/MESOS-HTTP-API.md
    /// §1.9: a 307, 403 "not subscribed", or 400 for a stale stream or an unknown framework).
    pub fn loses_subscription(&self) -> bool {
        match self {
            Self::Redirected { .. } | Self::Transport { .. } => true,
            Self::Status { status, body, .. } => {
                *status == StatusCode::FORBIDDEN
                    || (*status == StatusCode::BAD_REQUEST
                        && (body.contains("Mesos-Stream-Id") || body.contains("cannot be found")))
            }
            _ => false,
        }
    }
}
/// A principal and secret for HTTP basic authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The principal (also `FrameworkInfo.principal`).
    pub principal: String,
    /// The secret.
    pub secret: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("principal", &self.principal).finish_non_exhaustive()
    }
}

impl Credential {
    /// As the original Exelixi read them: when `MESOS_AUTHENTICATE` is set (to anything but
    /// the empty string), `DEFAULT_PRINCIPAL` and `DEFAULT_SECRET` are required.
    pub fn from_env() -> Result<Option<Self>, SchedulerError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`Credential::from_env`] over any source of variables.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, SchedulerError> {
        if var("MESOS_AUTHENTICATE").is_none_or(|v| v.is_empty()) {
            return Ok(None);
        }
        let principal = var("DEFAULT_PRINCIPAL").filter(|v| !v.is_empty());
        let secret = var("DEFAULT_SECRET").filter(|v| !v.is_empty());
        match (principal, secret) {
            (None, _) => Err(SchedulerError::MissingCredential("DEFAULT_PRINCIPAL")),
            (_, None) => Err(SchedulerError::MissingCredential("DEFAULT_SECRET")),
            (Some(principal), Some(secret)) => Ok(Some(Self { principal, secret })),
        }
    }

    pub(crate) fn header(&self) -> String {
        format!("Basic {}", base64(format!("{}:{}", self.principal, self.secret).as_bytes()))
    }
}

/// Standard base64 with padding (RFC 4648 §4), for the Authorization header.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A connection to the scheduler API of one master (the leader, after redirects).
#[derive(Clone)]
pub struct SchedulerClient {
    http: Client<HttpConnector, Full<Bytes>>,
    master: String,
    content_type: ContentType,
    stream_id: Option<String>,
    framework_id: Option<FrameworkId>,
    credential: Option<Credential>,
}

fn valid_master(master: &str) -> bool {
    master
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p > 0))
}

/// The `host:port` a 307's `Location` names: `//host:port/path` (what Mesos sends),
/// `http://host:port/path`, or a bare `host:port`. The scheme and path stay ours, as
/// mesos-go and pymesos do (shared/docs/MESOS-HTTP-API.md §1.11).
pub fn redirect_target(location: &str) -> Option<String> {
    let rest = location
        .strip_prefix("//")
        .or_else(|| location.strip_prefix("http://"))
        .or_else(|| location.strip_prefix("https://"))
        .unwrap_or(location);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    valid_master(authority).then(|| authority.to_string())
}

impl SchedulerClient {
    /// A client for the master at `host:port`.
    pub fn new(master: &str) -> Result<Self, SchedulerError> {
        if !valid_master(master) {
            return Err(SchedulerError::BadMaster(master.to_string()));
        }
        let http = Client::builder(TokioExecutor::new()).build_http();
        Ok(Self {
            http,
            master: master.to_string(),
            content_type: ContentType::default(),
            stream_id: None,
            framework_id: None,
            credential: None,
        })
    }

    /// Authenticates every call with HTTP basic authentication.
    pub fn with_credential(mut self, credential: Option<Credential>) -> Self {
        self.credential = credential;
        self
    }

    /// Encodes calls and asks for events in `content_type` (protobuf unless told).
    pub fn with_content_type(mut self, content_type: ContentType) -> Self {
        self.content_type = content_type;
        self
    }

    /// The master this client talks to (the leader, once a redirect was followed).
    pub fn master(&self) -> &str {
        &self.master
    }

    /// The content type of calls and events.
    pub fn content_type(&self) -> ContentType {
        self.content_type
    }

    /// The framework id the master assigned, once subscribed.
    pub fn framework_id(&self) -> Option<&FrameworkId> {
        self.framework_id.as_ref()
    }

    /// The current `Mesos-Stream-Id`, once subscribed.
    pub fn stream_id(&self) -> Option<&str> {
        self.stream_id.as_deref()
    }

    /// POSTs `body` to the current master, following up to [`MAX_REDIRECTS`] 307s when
    /// `follow` (SUBSCRIBE); a call of a subscription that meets a 307 switches to the
    /// leader and reports [`SchedulerError::Redirected`] instead, as its stream id
    /// belongs to the old master.
    async fn post(
        &mut self,
        name: &'static str,
        body: Bytes,
        stream_id: Option<&str>,
        follow: bool,
    ) -> Result<http::Response<Incoming>, SchedulerError> {
        let mime = self.content_type.mime();
        for _ in 0..=MAX_REDIRECTS {
            let mut builder = Request::post(format!("http://{}/api/v1/scheduler", self.master))
                .header(header::CONTENT_TYPE, mime)
                .header(header::ACCEPT, mime);
            if let Some(id) = stream_id {
                builder = builder.header(STREAM_ID, id);
            }
            if let Some(c) = &self.credential {
                builder = builder.header(header::AUTHORIZATION, c.header());
            }
            let request = builder
                .body(Full::new(body.clone()))
                .map_err(|e| SchedulerError::Request { call: name, reason: e.to_string() })?;
            let transport = |reason: String| SchedulerError::Transport { master: self.master.clone(), reason };
            let response = tokio::time::timeout(CALL_TIMEOUT, self.http.request(request))
                .await
                .map_err(|_| transport(format!("no answer to {name} within {CALL_TIMEOUT:?}")))?
                .map_err(|e| transport(e.to_string()))?;
            if response.status() != StatusCode::TEMPORARY_REDIRECT {
                return Ok(response);
            }
            let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let leader = redirect_target(location).ok_or_else(|| SchedulerError::BadRedirect {
                call: name,
                why: format!("unusable Location {location:?}"),
            })?;
            self.master = leader.clone();
            if !follow {
                return Err(SchedulerError::Redirected { call: name, leader });
            }
        }
        Err(SchedulerError::BadRedirect { call: name, why: format!("more than {MAX_REDIRECTS} redirects") })
    }

    /// SUBSCRIBE: opens the event stream and reads its first event. A `framework_info`
    /// with an `id` re-subscribes that framework (failover).
    pub async fn subscribe(&mut self, framework_info: FrameworkInfo) -> Result<Subscription, SchedulerError> {
        self.subscribe_suppressed(framework_info, Vec::new()).await
    }

    /// SUBSCRIBE with offers for `suppressed_roles` suppressed from the start. A
    /// re-subscription's list replaces the old one: without it, every role is revived.
    pub async fn subscribe_suppressed(
        &mut self,
        framework_info: FrameworkInfo,
        suppressed_roles: Vec<String>,
    ) -> Result<Subscription, SchedulerError> {
        let call = Call {
            framework_id: framework_info.id.clone(),
            r#type: Some(call::Type::Subscribe as i32),
            subscribe: Some(call::Subscribe { framework_info, suppressed_roles }),
            ..Default::default()
        };
        let body = Bytes::from(self.content_type.encode(&call)?);
        // SUBSCRIBE never carries a stream id; a new one replaces the old.
        self.stream_id = None;
        let response = self.post("SUBSCRIBE", body, None, true).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(SchedulerError::Unauthorized {
                principal: self.credential.as_ref().map(|c| c.principal.clone()),
            });
        }
        if response.status() != StatusCode::OK {
            return Err(status_error("SUBSCRIBE", response).await);
        }
        let got = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if ContentType::from_mime(got) != Some(self.content_type) {
            return Err(SchedulerError::ContentType { expected: self.content_type, got: got.to_string() });
        }
        let stream_id = response
            .headers()
            .get(STREAM_ID)
            .and_then(|v| v.to_str().ok())
            .ok_or(SchedulerError::NoStreamId)?
            .to_string();
        let mut events =
            EventStream { records: RecordStream::new(response.into_body()), content_type: self.content_type };
        // The first event is SUBSCRIBED, or ERROR followed by the end of the stream.
        let first = tokio::time::timeout(CALL_TIMEOUT, events.next()).await.map_err(|_| SchedulerError::Transport {
            master: self.master.clone(),
            reason: format!("no SUBSCRIBED event within {CALL_TIMEOUT:?}"),
        })?;
        match first.transpose()? {
            Some(Event { r#type: Some(t), subscribed: Some(subscribed), .. })
                if t == event::Type::Subscribed as i32 =>
            {
                tracing::info!(master = %self.master, framework = %subscribed.framework_id.value, "subscribed");
                self.framework_id = Some(subscribed.framework_id.clone());
                self.stream_id = Some(stream_id);
                Ok(Subscription {
                    subscribed,
                    events,
                    missed_heartbeats: MISSED_HEARTBEATS,
                    last_event: tokio::time::Instant::now(),
                })
            }
            Some(e) => Err(SchedulerError::MasterError(format!("the first event is {:?}, not SUBSCRIBED", e.r#type))),
            None => Err(SchedulerError::MasterError("the stream ended before SUBSCRIBED".into())),
        }
    }

    /// SUBSCRIBE, retried with exponential backoff (from `first_wait`, doubling, at most 15
    /// s between attempts) while the failure [is transient](SchedulerError::is_transient),
    /// for at most `attempts` attempts. Refusals (401, 400, an ERROR event) return at once.
    pub async fn subscribe_with_retry(
        &mut self,
        framework_info: FrameworkInfo,
        attempts: u32,
        first_wait: Duration,
    ) -> Result<Subscription, SchedulerError> {
        let mut backoff = Backoff::new(first_wait, MAX_BACKOFF);
        let mut attempt = 1;
        loop {
            match self.subscribe(framework_info.clone()).await {
                Err(e) if attempt < attempts && e.is_transient() => {
                    let wait = backoff.next_wait();
                    tracing::warn!(attempt, error = %e, ?wait, "SUBSCRIBE failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Sends a call of the current subscription; the master must answer 202.
    pub async fn send(&mut self, name: &'static str, mut call: Call) -> Result<(), SchedulerError> {
        let (Some(framework_id), Some(stream_id)) = (&self.framework_id, self.stream_id.clone()) else {
            return Err(SchedulerError::NotSubscribed(name));
        };
        call.framework_id = Some(framework_id.clone());
        let body = Bytes::from(self.content_type.encode(&call)?);
        let response = self.post(name, body, Some(&stream_id), false).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(status_error(name, response).await);
        }
        Ok(())
    }
}

/// The longest wait between re-subscription attempts (the scheduler docs suggest ~15 s).
pub const MAX_BACKOFF: Duration = Duration::from_secs(15);

/// Truncated exponential backoff: `first`, doubling, at most `max`.
#[derive(Clone, Debug)]
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(first: Duration, max: Duration) -> Self {
        Self { next: first.min(max), max }
    }

    fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }
}

async fn status_error(call: &'static str, response: http::Response<Incoming>) -> SchedulerError {
    let status = response.status();
    SchedulerError::Status { call, status, body: crate::explanation(response).await }
}

/// Sending scheduler calls: what scheduler logic needs to act, whatever connects it to
/// Mesos ([`SchedulerClient`], [`Session`], or an in-memory double in tests). Every
/// provided method builds its [`Call`] and goes through [`Calls::call`].
pub trait Calls: Send {
    /// Sends `call` (any type but SUBSCRIBE) for the subscribed framework; `name` names it
    /// in errors.
    fn call(&mut self, name: &'static str, call: Call) -> impl Future<Output = Result<(), SchedulerError>> + Send;

    /// ACCEPT offers with operations (e.g. LAUNCH).
    fn accept(
        &mut self,
        offer_ids: Vec<OfferId>,
        operations: Vec<offer::Operation>,
    ) -> impl Future<Output = Result<(), SchedulerError>> + Send {
        let accept = call::Accept { offer_ids, operations, filters: None };
        self.call(
            "ACCEPT",
            Call { r#type: Some(call::Type::Accept as i32), accept: Some(accept), ..Default::default() },
        )
    }

    /// DECLINE offers, refusing them for `refuse_seconds`.
    fn decline(
        &mut self,
        offer_ids: Vec<OfferId>,
        refuse_seconds: f64,
    ) -> impl Future<Output = Result<(), SchedulerError>> + Send {
        let decline = call::Decline { offer_ids, filters: Some(Filters { refuse_seconds: Some(refuse_seconds) }) };
        self.call(
            "DECLINE",
            Call { r#type: Some(call::Type::Decline as i32), decline: Some(decline), ..Default::default() },
        )
    }

    /// REVIVE: clears the filters and asks for offers again (all roles).
    fn revive(&mut self) -> impl Future<Output = Result<(), SchedulerError>> + Send {
        let revive = Some(call::Revive::default());
        self.call("REVIVE", Call { r#type: Some(call::Type::Revive as i32), revive, ..Default::default() })
    }

    /// SUPPRESS offers (all roles) until REVIVE.
    fn suppress(&mut self) -> impl Future<Output = Result<(), SchedulerError>> + Send {
        let suppress = Some(call::Suppress::default());
        self.call("SUPPRESS", Call { r#type: Some(call::Type::Suppress as i32), suppress, ..Default::default() })
    }

    /// ACKNOWLEDGE a status update that carried a `uuid` (the agent holds the next update
    /// of the task until then). Updates without a uuid come from the master and are not
    /// acknowledged: for them this sends nothing.
    fn acknowledge(&mut self, status: &TaskStatus) -> impl Future<Output = Result<(), SchedulerError>> + Send {
        let ack = match (status.agent_id.clone(), status.uuid.clone()) {
            (Some(agent_id), Some(uuid)) => Some(call::Acknowledge { agent_id, task_id: status.task_id.clone(), uuid }),
            _ => None,
        };
        async move {
            match ack {
                Some(a) => {
                    let c = Call {
                        r#type: Some(call::Type::Acknowledge as i32),
                        acknowledge: Some(a),
                        ..Default::default()
                    };
                    self.call("ACKNOWLEDGE", c).await
                }
                None => Ok(()),
            }
        }
    }

    /// MESSAGE: data for an executor.
    fn message(
        &mut self,
        agent_id: AgentId,
        executor_id: ExecutorId,
        data: Vec<u8>,
    ) -> impl Future<Output = Result<(), SchedulerError>> + Send {
        let message = Some(call::Message { agent_id, executor_id, data });
        self.call("MESSAGE", Call { r#type: Some(call::Type::Message as i32), message, ..Default::default() })
    }

    /// KILL a task.
    fn kill(
        &mut self,
        task_id: TaskId,
        agent_id: Option<AgentId>,
    ) -> impl Future<Output = Result<(), SchedulerError>> + Send {
        let kill = Some(call::Kill { task_id, agent_id, kill_policy: None });
        self.call("KILL", Call { r#type: Some(call::Type::Kill as i32), kill, ..Default::default() })
    }

    /// SHUTDOWN an executor.
    fn shutdown(
        &mut self,
        executor_id: ExecutorId,
        agent_id: AgentId,
    ) -> impl Future<Output = Result<(), SchedulerError>> + Send {
        let shutdown = Some(call::Shutdown { executor_id, agent_id });
        self.call("SHUTDOWN", Call { r#type: Some(call::Type::Shutdown as i32), shutdown, ..Default::default() })
    }

    /// RECONCILE the given tasks (explicit), or every task the master knows (implicit,
    /// with an empty list). Answers arrive as UPDATE events without a uuid.
    fn reconcile(
        &mut self,
        tasks: Vec<(TaskId, Option<AgentId>)>,
    ) -> impl Future<Output = Result<(), SchedulerError>> + Send {
        let tasks = tasks.into_iter().map(|(task_id, agent_id)| call::reconcile::Task { task_id, agent_id }).collect();
        let reconcile = Some(call::Reconcile { tasks });
        self.call("RECONCILE", Call { r#type: Some(call::Type::Reconcile as i32), reconcile, ..Default::default() })
    }

    /// TEARDOWN: ends the framework, its tasks and executors. Only on purpose: a scheduler
    /// that merely stops should not tear down (it may fail over).
    fn teardown(&mut self) -> impl Future<Output = Result<(), SchedulerError>> + Send {
        self.call("TEARDOWN", Call { r#type: Some(call::Type::Teardown as i32), ..Default::default() })
    }
}

/// Receiving scheduler events.
pub trait Events: Send {
    /// The next event; `None` once the framework is over (the stream closed after
    /// TEARDOWN, or by the master for a plain [`Subscription`]).
    fn next_event(&mut self) -> impl Future<Output = Option<Result<Event, SchedulerError>>> + Send;
}

impl Calls for SchedulerClient {
    fn call(&mut self, name: &'static str, call: Call) -> impl Future<Output = Result<(), SchedulerError>> + Send {
        self.send(name, call)
    }
}

/// An open subscription: what SUBSCRIBED said, and the events after it.
pub struct Subscription {
    /// The SUBSCRIBED event's content (framework id, heartbeat interval, master).
    pub subscribed: event::Subscribed,
    /// The events that follow.
    pub events: EventStream,
    missed_heartbeats: u32,
    /// When the last event (SUBSCRIBED, at first) arrived: the silence is counted from
    /// there, not from each call, so that a `next_event` dropped by a busier `select!`
    /// branch does not restart it.
    last_event: tokio::time::Instant,
}

/// Heartbeat intervals without any event after which a subscription is considered lost
/// (shared/docs/MESOS-HTTP-API.md §6.9 suggests about 5).
pub const MISSED_HEARTBEATS: u32 = 5;

/// The heartbeat interval when SUBSCRIBED does not say (Mesos' `DEFAULT_HEARTBEAT_INTERVAL`).
const DEFAULT_HEARTBEAT: f64 = 15.0;

impl Subscription {
    /// The framework's id.
    pub fn framework_id(&self) -> &FrameworkId {
        &self.subscribed.framework_id
    }

    /// How long to wait for an event before declaring the subscription lost: `missed`
    /// heartbeat intervals ([`MISSED_HEARTBEATS`] unless changed with
    /// [`Subscription::set_missed_heartbeats`]).
    pub fn liveness_timeout(&self) -> Duration {
        let interval = self
            .subscribed
            .heartbeat_interval_seconds
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(DEFAULT_HEARTBEAT);
        Duration::try_from_secs_f64(interval * f64::from(self.missed_heartbeats.max(1)))
            .unwrap_or(Duration::from_secs(3600))
    }

    /// Changes how many silent heartbeat intervals mean a lost subscription.
    pub fn set_missed_heartbeats(&mut self, missed: u32) {
        self.missed_heartbeats = missed.max(1);
    }
}

impl Events for Subscription {
    /// The next event, [`SchedulerError::Silent`] if none came within the liveness
    /// timeout of the last one, [`SchedulerError::MasterError`] for an ERROR event; `None`
    /// when the master closed the stream. Cancel-safe: dropping the future loses no event
    /// and does not restart the silence timer.
    fn next_event(&mut self) -> impl Future<Output = Option<Result<Event, SchedulerError>>> + Send {
        let limit = self.liveness_timeout();
        let deadline = self.last_event + limit;
        async move {
            match tokio::time::timeout_at(deadline, self.events.next()).await {
                Ok(next) => {
                    self.last_event = tokio::time::Instant::now();
                    next
                }
                Err(_) => Some(Err(SchedulerError::Silent(limit))),
            }
        }
    }
}

/// The master's events, decoded from the RecordIO stream.
pub struct EventStream {
    records: RecordStream,
    content_type: ContentType,
}

impl EventStream {
    /// The next event; an ERROR event comes as [`SchedulerError::MasterError`]; `None` when
    /// the master closed the stream between records.
    pub async fn next(&mut self) -> Option<Result<Event, SchedulerError>> {
        Some(match self.records.next().await? {
            Ok(record) => match self.content_type.decode::<Event>(&record) {
                Ok(Event { error: Some(e), .. }) => Err(SchedulerError::MasterError(e.message)),
                Ok(Event { r#type: Some(t), .. }) if t == event::Type::Error as i32 => {
                    Err(SchedulerError::MasterError("(an ERROR event without a message)".into()))
                }
                other => other.map_err(SchedulerError::from),
            },
            Err(StreamFailure::RecordIo(e)) => Err(e.into()),
            Err(StreamFailure::Transport(reason)) => {
                Err(SchedulerError::Transport { master: "(stream)".into(), reason })
            }
        })
    }
}

mod session;
pub use session::{Session, SessionConfig, is_terminal};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }

    #[test]
    fn credentials_follow_the_original_rules() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
        };
        assert_eq!(Credential::from_vars(env(&[])).unwrap(), None);
        let err = Credential::from_vars(env(&[("MESOS_AUTHENTICATE", "1"), ("DEFAULT_SECRET", "s")])).unwrap_err();
        assert!(err.to_string().contains("DEFAULT_PRINCIPAL is not"), "{err}");
        let err = Credential::from_vars(env(&[("MESOS_AUTHENTICATE", "1"), ("DEFAULT_PRINCIPAL", "p")])).unwrap_err();
        assert!(err.to_string().contains("DEFAULT_SECRET is not"), "{err}");
        let c = Credential::from_vars(env(&[
            ("MESOS_AUTHENTICATE", "1"),
            ("DEFAULT_PRINCIPAL", "p"),
            ("DEFAULT_SECRET", "s"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.header(), "Basic cDpz");
        assert_eq!(format!("{c:?}"), "Credential { principal: \"p\", .. }", "Debug never prints the secret");
    }

    #[test]
    fn redirect_locations_in_every_form_mesos_and_others_write() {
        assert_eq!(redirect_target("//m2.example:5050/api/v1/scheduler").as_deref(), Some("m2.example:5050"));
        assert_eq!(redirect_target("//127.0.0.1:5051").as_deref(), Some("127.0.0.1:5051"));
        assert_eq!(
            redirect_target("http://10.0.0.2:5050/master/api/v1/scheduler?x=1").as_deref(),
            Some("10.0.0.2:5050")
        );
        assert_eq!(redirect_target("masterhost2:5050").as_deref(), Some("masterhost2:5050"));
        for bad in ["", "//", "/api/v1/scheduler", "//host/api", "//host:0/", "//:5050/", "//host:99999/"] {
            assert_eq!(redirect_target(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(1));
        let waits: Vec<u128> = (0..5).map(|_| b.next_wait().as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 1000, 1000]);
    }

    #[test]
    fn which_failures_are_retried_and_which_lose_the_subscription() {
        let status = |status: StatusCode, body: &str| SchedulerError::Status { call: "X", status, body: body.into() };
        let transport = SchedulerError::Transport { master: "m:1".into(), reason: "refused".into() };
        assert!(transport.is_transient() && transport.loses_subscription());
        assert!(status(StatusCode::SERVICE_UNAVAILABLE, "No leader elected").is_transient());
        assert!(!SchedulerError::Unauthorized { principal: None }.is_transient());
        assert!(!status(StatusCode::BAD_REQUEST, "Failed to validate").is_transient());
        assert!(status(StatusCode::FORBIDDEN, "Framework is not subscribed").loses_subscription());
        assert!(
            status(StatusCode::BAD_REQUEST, "The stream ID included in this request didn't match the Mesos-Stream-Id")
                .loses_subscription()
        );
        assert!(!status(StatusCode::BAD_REQUEST, "Failed to validate scheduler::Call").loses_subscription());
        assert!(SchedulerError::MasterError("Framework has been removed".into()).framework_removed());
        assert!(!SchedulerError::MasterError("Framework failed over".into()).framework_removed());
    }

    #[test]
    fn terminal_states_are_mesos_ones_plus_unknown() {
        use crate::v1::TaskState::*;
        for s in [
            TaskFinished,
            TaskFailed,
            TaskKilled,
            TaskError,
            TaskLost,
            TaskDropped,
            TaskGone,
            TaskGoneByOperator,
            TaskUnknown,
        ] {
            assert!(is_terminal(s as i32), "{s:?}");
        }
        for s in [TaskStaging, TaskStarting, TaskRunning, TaskKilling, TaskUnreachable] {
            assert!(!is_terminal(s as i32), "{s:?}");
        }
        assert!(!is_terminal(999));
    }

    /// An in-memory [`Calls`]: what scheduler logic is tested against without a network.
    #[derive(Default)]
    struct Recorded(Vec<(&'static str, Call)>);

    impl Calls for Recorded {
        async fn call(&mut self, name: &'static str, call: Call) -> Result<(), SchedulerError> {
            self.0.push((name, call));
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_provided_calls_build_what_mesos_expects() {
        let mut calls = Recorded::default();
        let agent = AgentId { value: "a-S0".into() };
        let task = TaskId { value: "t".into() };
        // An update from the master (no uuid) is not acknowledged; one from the agent is.
        let mut status = TaskStatus { task_id: task.clone(), agent_id: Some(agent.clone()), ..Default::default() };
        calls.acknowledge(&status).await.unwrap();
        assert!(calls.0.is_empty());
        status.uuid = Some(vec![7; 16]);
        calls.acknowledge(&status).await.unwrap();
        calls.decline(vec![OfferId { value: "o".into() }], 3600.0).await.unwrap();
        calls.reconcile(vec![(task.clone(), Some(agent.clone()))]).await.unwrap();
        calls.teardown().await.unwrap();
        let names: Vec<&str> = calls.0.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["ACKNOWLEDGE", "DECLINE", "RECONCILE", "TEARDOWN"]);
        let types: Vec<Option<i32>> = calls.0.iter().map(|(_, c)| c.r#type).collect();
        assert_eq!(
            types,
            [call::Type::Acknowledge, call::Type::Decline, call::Type::Reconcile, call::Type::Teardown]
                .map(|t| Some(t as i32))
        );
        let ack = calls.0[0].1.acknowledge.as_ref().unwrap();
        assert_eq!((&ack.agent_id, &ack.task_id, ack.uuid.as_slice()), (&agent, &task, &[7; 16][..]));
        assert_eq!(calls.0[1].1.decline.as_ref().unwrap().filters.as_ref().unwrap().refuse_seconds, Some(3600.0));
        assert_eq!(calls.0[2].1.reconcile.as_ref().unwrap().tasks[0].agent_id.as_ref(), Some(&agent));
    }
}
