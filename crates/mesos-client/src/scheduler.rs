//! The scheduler API: `POST /api/v1/scheduler` (shared/docs/MESOS-HTTP-API.md §1–2).
//!
//! [`SchedulerClient::subscribe`] opens the event stream and keeps the `Mesos-Stream-Id`
//! it returns; every other call carries that id and the framework id, and must be
//! answered 202. Events are decoded from RecordIO strictly by length.

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prost::Message;

use crate::recordio::{RecordIoError, RecordStream, StreamFailure};
use crate::v1::scheduler::{Call, Event, call, event};
use crate::v1::{AgentId, ExecutorId, Filters, FrameworkId, FrameworkInfo, OfferId, TaskId, TaskStatus, offer};

const PROTOBUF: &str = "application/x-protobuf";
const STREAM_ID: &str = "mesos-stream-id";

/// Why a scheduler call or stream failed.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The master address is not `host:port`.
    #[error("invalid Mesos master {0:?} (expected host:port)")]
    BadMaster(String),
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
    /// SUBSCRIBE succeeded without a `Mesos-Stream-Id`.
    #[error("the Mesos master's SUBSCRIBE answer has no Mesos-Stream-Id")]
    NoStreamId,
    /// A call needs a subscription first.
    #[error("not subscribed: {0} needs a framework id and a stream id")]
    NotSubscribed(&'static str),
    /// The event stream is not valid RecordIO.
    #[error(transparent)]
    RecordIo(#[from] RecordIoError),
    /// An event does not decode.
    #[error("undecodable event from the Mesos master: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The master reported an error in the stream (e.g. a refused FrameworkInfo).
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
    Silent(std::time::Duration),
    /// `MESOS_AUTHENTICATE` is set but a credential variable is missing.
    #[error("MESOS_AUTHENTICATE is set but {0} is not: both DEFAULT_PRINCIPAL and DEFAULT_SECRET are needed")]
    MissingCredential(&'static str),
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

    fn header(&self) -> String {
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

/// A connection to the scheduler API of one master.
pub struct SchedulerClient {
    http: Client<HttpConnector, Full<Bytes>>,
    master: String,
    stream_id: Option<String>,
    framework_id: Option<FrameworkId>,
    credential: Option<Credential>,
}

impl SchedulerClient {
    /// A client for the master at `host:port`.
    pub fn new(master: &str) -> Result<Self, SchedulerError> {
        let valid = master
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
        if !valid {
            return Err(SchedulerError::BadMaster(master.to_string()));
        }
        let http = Client::builder(TokioExecutor::new()).build_http();
        Ok(Self { http, master: master.to_string(), stream_id: None, framework_id: None, credential: None })
    }

    /// Authenticates every call with HTTP basic authentication.
    pub fn with_credential(mut self, credential: Option<Credential>) -> Self {
        self.credential = credential;
        self
    }

    /// The framework id the master assigned, once subscribed.
    pub fn framework_id(&self) -> Option<&FrameworkId> {
        self.framework_id.as_ref()
    }

    /// The current `Mesos-Stream-Id`, once subscribed.
    pub fn stream_id(&self) -> Option<&str> {
        self.stream_id.as_deref()
    }

    fn request(&self, call: &Call, stream_id: Option<&str>) -> Result<Request<Full<Bytes>>, SchedulerError> {
        let mut builder = Request::post(format!("http://{}/api/v1/scheduler", self.master))
            .header(header::CONTENT_TYPE, PROTOBUF)
            .header(header::ACCEPT, PROTOBUF);
        if let Some(id) = stream_id {
            builder = builder.header(STREAM_ID, id);
        }
        if let Some(c) = &self.credential {
            builder = builder.header(header::AUTHORIZATION, c.header());
        }
        builder
            .body(Full::new(Bytes::from(call.encode_to_vec())))
            .map_err(|e| SchedulerError::BadMaster(format!("{}: {e}", self.master)))
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Result<http::Response<Incoming>, SchedulerError> {
        self.http
            .request(request)
            .await
            .map_err(|e| SchedulerError::Transport { master: self.master.clone(), reason: e.to_string() })
    }

    /// SUBSCRIBE: opens the event stream and reads its first event. A `framework_info`
    /// with an `id` re-subscribes that framework (failover).
    pub async fn subscribe(&mut self, framework_info: FrameworkInfo) -> Result<Subscription, SchedulerError> {
        let call = Call {
            framework_id: framework_info.id.clone(),
            r#type: Some(call::Type::Subscribe as i32),
            subscribe: Some(call::Subscribe { framework_info, suppressed_roles: Vec::new() }),
            ..Default::default()
        };
        // SUBSCRIBE must never carry a stream id.
        let response = self.send(self.request(&call, None)?).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(SchedulerError::Unauthorized {
                principal: self.credential.as_ref().map(|c| c.principal.clone()),
            });
        }
        if response.status() != StatusCode::OK {
            return Err(status_error("SUBSCRIBE", response).await);
        }
        let stream_id = response
            .headers()
            .get(STREAM_ID)
            .and_then(|v| v.to_str().ok())
            .ok_or(SchedulerError::NoStreamId)?
            .to_string();
        let mut events = EventStream { records: RecordStream::new(response.into_body()) };
        // The first event is SUBSCRIBED, or ERROR followed by the end of the stream.
        let first = events.next().await.transpose()?;
        match first {
            Some(Event { r#type: Some(t), subscribed: Some(s), .. }) if t == event::Type::Subscribed as i32 => {
                self.framework_id = Some(s.framework_id.clone());
                self.stream_id = Some(stream_id);
                Ok(Subscription {
                    framework_id: s.framework_id,
                    heartbeat_interval_seconds: s.heartbeat_interval_seconds,
                    events,
                })
            }
            Some(Event { error: Some(e), .. }) => Err(SchedulerError::MasterError(e.message)),
            Some(e) => Err(SchedulerError::MasterError(format!("the first event is {:?}, not SUBSCRIBED", e.r#type))),
            None => Err(SchedulerError::MasterError("the stream ended before SUBSCRIBED".into())),
        }
    }

    /// SUBSCRIBE, retried with exponential backoff (from `first_wait`, doubling, at most 8
    /// s between attempts) while the failure is transient — the master unreachable, or 503
    /// while it elects a leader or recovers — for at most `attempts` attempts. Refusals
    /// (401, 400, an in-stream ERROR) are returned at once.
    pub async fn subscribe_with_retry(
        &mut self,
        framework_info: FrameworkInfo,
        attempts: u32,
        first_wait: std::time::Duration,
    ) -> Result<Subscription, SchedulerError> {
        let mut wait = first_wait;
        let mut attempt = 1;
        loop {
            match self.subscribe(framework_info.clone()).await {
                Err(e) if attempt < attempts && is_transient(&e) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(8));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Sends a call of an existing subscription; the master must answer 202.
    pub async fn call(&self, name: &'static str, mut call: Call) -> Result<(), SchedulerError> {
        let (Some(framework_id), Some(stream_id)) = (&self.framework_id, &self.stream_id) else {
            return Err(SchedulerError::NotSubscribed(name));
        };
        call.framework_id = Some(framework_id.clone());
        let response = self.send(self.request(&call, Some(stream_id))?).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(status_error(name, response).await);
        }
        Ok(())
    }

    /// DECLINE offers, refusing them for `refuse_seconds`.
    pub async fn decline(&self, offer_ids: Vec<OfferId>, refuse_seconds: f64) -> Result<(), SchedulerError> {
        let call = Call {
            r#type: Some(call::Type::Decline as i32),
            decline: Some(call::Decline { offer_ids, filters: Some(Filters { refuse_seconds: Some(refuse_seconds) }) }),
            ..Default::default()
        };
        self.call("DECLINE", call).await
    }

    /// REVIVE: clears the filters and asks for offers again (all roles).
    pub async fn revive(&self) -> Result<(), SchedulerError> {
        let call = Call {
            r#type: Some(call::Type::Revive as i32),
            revive: Some(call::Revive::default()),
            ..Default::default()
        };
        self.call("REVIVE", call).await
    }

    /// ACCEPT offers with operations (e.g. LAUNCH).
    pub async fn accept(
        &self,
        offer_ids: Vec<OfferId>,
        operations: Vec<offer::Operation>,
    ) -> Result<(), SchedulerError> {
        let call = Call {
            r#type: Some(call::Type::Accept as i32),
            accept: Some(call::Accept { offer_ids, operations, filters: None }),
            ..Default::default()
        };
        self.call("ACCEPT", call).await
    }

    /// ACKNOWLEDGE a status update that carried a `uuid` (the agent holds the next update
    /// of the task until then). Updates without a uuid come from the master: do not call this.
    pub async fn acknowledge(&self, status: &TaskStatus) -> Result<(), SchedulerError> {
        let (Some(agent_id), Some(uuid)) = (status.agent_id.clone(), status.uuid.clone()) else {
            return Ok(());
        };
        let call = Call {
            r#type: Some(call::Type::Acknowledge as i32),
            acknowledge: Some(call::Acknowledge { agent_id, task_id: status.task_id.clone(), uuid }),
            ..Default::default()
        };
        self.call("ACKNOWLEDGE", call).await
    }

    /// MESSAGE: data for an executor.
    pub async fn message(
        &self,
        agent_id: AgentId,
        executor_id: ExecutorId,
        data: Vec<u8>,
    ) -> Result<(), SchedulerError> {
        let call = Call {
            r#type: Some(call::Type::Message as i32),
            message: Some(call::Message { agent_id, executor_id, data }),
            ..Default::default()
        };
        self.call("MESSAGE", call).await
    }

    /// KILL a task.
    pub async fn kill(&self, task_id: TaskId, agent_id: Option<AgentId>) -> Result<(), SchedulerError> {
        let call = Call {
            r#type: Some(call::Type::Kill as i32),
            kill: Some(call::Kill { task_id, agent_id, kill_policy: None }),
            ..Default::default()
        };
        self.call("KILL", call).await
    }

    /// SHUTDOWN an executor.
    pub async fn shutdown(&self, executor_id: ExecutorId, agent_id: AgentId) -> Result<(), SchedulerError> {
        let call = Call {
            r#type: Some(call::Type::Shutdown as i32),
            shutdown: Some(call::Shutdown { executor_id, agent_id }),
            ..Default::default()
        };
        self.call("SHUTDOWN", call).await
    }

    /// RECONCILE the given tasks (explicit), or every task the master knows (implicit,
    /// with an empty list).
    pub async fn reconcile(&self, tasks: Vec<(TaskId, Option<AgentId>)>) -> Result<(), SchedulerError> {
        let tasks = tasks.into_iter().map(|(task_id, agent_id)| call::reconcile::Task { task_id, agent_id }).collect();
        let call = Call {
            r#type: Some(call::Type::Reconcile as i32),
            reconcile: Some(call::Reconcile { tasks }),
            ..Default::default()
        };
        self.call("RECONCILE", call).await
    }

    /// SUPPRESS offers (all roles) until REVIVE.
    pub async fn suppress(&self) -> Result<(), SchedulerError> {
        let call = Call {
            r#type: Some(call::Type::Suppress as i32),
            suppress: Some(call::Suppress::default()),
            ..Default::default()
        };
        self.call("SUPPRESS", call).await
    }

    /// TEARDOWN: ends the framework, its tasks and executors.
    pub async fn teardown(&self) -> Result<(), SchedulerError> {
        self.call("TEARDOWN", Call { r#type: Some(call::Type::Teardown as i32), ..Default::default() }).await
    }
}

/// Whether a SUBSCRIBE failure may pass by itself.
fn is_transient(e: &SchedulerError) -> bool {
    match e {
        SchedulerError::Transport { .. } => true,
        SchedulerError::Status { status, .. } => *status == StatusCode::SERVICE_UNAVAILABLE,
        _ => false,
    }
}

async fn status_error(call: &'static str, response: http::Response<Incoming>) -> SchedulerError {
    let status = response.status();
    SchedulerError::Status { call, status, body: crate::explanation(response).await }
}

/// An open subscription: what SUBSCRIBED said, and the events after it.
pub struct Subscription {
    /// The framework's id.
    pub framework_id: FrameworkId,
    /// How often the master promises a HEARTBEAT.
    pub heartbeat_interval_seconds: Option<f64>,
    /// The events that follow.
    pub events: EventStream,
}

/// Heartbeat intervals without any event after which a subscription is considered lost
/// (mesos-go and the C++ library use a small multiple too).
pub const MISSED_HEARTBEATS: u32 = 3;

impl Subscription {
    /// How long to wait for an event before declaring the subscription lost:
    /// [`MISSED_HEARTBEATS`] heartbeat intervals (15 s each unless the master said otherwise).
    pub fn liveness_timeout(&self) -> std::time::Duration {
        let interval = self.heartbeat_interval_seconds.filter(|s| s.is_finite() && *s > 0.0).unwrap_or(15.0);
        std::time::Duration::from_secs_f64(interval * f64::from(MISSED_HEARTBEATS))
    }

    /// The next event, or [`SchedulerError::Silent`] if none came within the liveness
    /// timeout; `None` when the master closed the stream.
    pub async fn next_event(&mut self) -> Option<Result<Event, SchedulerError>> {
        let limit = self.liveness_timeout();
        match tokio::time::timeout(limit, self.events.next()).await {
            Ok(next) => next,
            Err(_) => Some(Err(SchedulerError::Silent(limit))),
        }
    }
}

/// The master's events, decoded from the RecordIO stream.
pub struct EventStream {
    records: RecordStream,
}

impl EventStream {
    /// The next event; `None` when the master closed the stream between records.
    pub async fn next(&mut self) -> Option<Result<Event, SchedulerError>> {
        Some(match self.records.next().await? {
            Ok(record) => Event::decode(record).map_err(SchedulerError::from),
            Err(StreamFailure::RecordIo(e)) => Err(e.into()),
            Err(StreamFailure::Transport(reason)) => {
                Err(SchedulerError::Transport { master: "(stream)".into(), reason })
            }
        })
    }
}

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
}
