//! The executor API: `POST …/api/v1/executor` on the local agent
//! (shared/docs/MESOS-HTTP-API.md §4).
//!
//! [`ExecutorConfig::from_env`] reads what the agent sets; the agent's URL is built from
//! `MESOS_SLAVE_PID` (`slave(N)@host:port` → `http://host:port/slave(N)/api/v1/executor`)
//! as libmesos does, falling back to `MESOS_AGENT_ENDPOINT`. [`ExecutorClient`] keeps every
//! UPDATE (each with a fresh v4 UUID) and every launched task until the agent
//! acknowledges them, so a re-subscription can resend them; through [`ExecutorApi`] it
//! also re-subscribes after losing the agent when the framework checkpoints
//! (shared/docs/MESOS-HTTP-API.md §4.5).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::codec::{CodecError, ContentType};
use crate::recordio::{RecordIoError, RecordStream, StreamFailure};
use crate::v1::executor::{Call, Event, call, event};
use crate::v1::{ExecutorId, FrameworkId, TaskInfo, TaskStatus, task_status};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Why the executor side failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// A variable the agent should have set is missing.
    #[error("{0} is not set: this program must be started by a Mesos agent as an executor")]
    Missing(&'static str),
    /// A variable is set but malformed.
    #[error("{name}={value:?} is malformed: {why}")]
    Malformed {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The agent could not be reached.
    #[error("cannot reach the agent at {url}: {reason}")]
    Transport {
        /// The executor URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The agent answered with an unexpected status.
    #[error("the agent answered {call} with HTTP {status}: {body}")]
    Status {
        /// The call.
        call: &'static str,
        /// The status.
        status: StatusCode,
        /// The agent's explanation.
        body: String,
    },
    /// The event stream is not valid RecordIO.
    #[error(transparent)]
    RecordIo(#[from] RecordIoError),
    /// An event does not decode, or a call does not encode.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The agent sent an ERROR event.
    #[error("the agent reported: {0}")]
    AgentError(String),
    /// The agent stayed unreachable for the whole recovery timeout.
    #[error("could not re-subscribe to the agent within {within:?}: {last}")]
    GaveUp {
        /// `MESOS_RECOVERY_TIMEOUT`.
        within: Duration,
        /// The last failure.
        last: Box<ExecutorError>,
    },
    /// No randomness for UUIDs.
    #[error("the operating system gave no random bytes for an update UUID: {0}")]
    Random(getrandom::Error),
}

/// What the agent tells an executor through its environment.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutorConfig {
    /// `MESOS_FRAMEWORK_ID`.
    pub framework_id: String,
    /// `MESOS_EXECUTOR_ID`.
    pub executor_id: String,
    /// The agent's executor API URL.
    pub agent_url: String,
    /// `MESOS_SANDBOX` (or `MESOS_DIRECTORY`), if set.
    pub sandbox: Option<String>,
    /// `MESOS_CHECKPOINT == "1"`: whether to retry after losing the agent.
    pub checkpoint: bool,
    /// `MESOS_RECOVERY_TIMEOUT`, when checkpointing.
    pub recovery_timeout: Option<Duration>,
    /// `MESOS_SUBSCRIPTION_BACKOFF_MAX`, when checkpointing.
    pub subscription_backoff_max: Option<Duration>,
}

impl ExecutorConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ExecutorError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the variables `var` returns (for tests and embedding).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ExecutorError> {
        let required = |name: &'static str| var(name).filter(|v| !v.is_empty()).ok_or(ExecutorError::Missing(name));
        let framework_id = required("MESOS_FRAMEWORK_ID")?;
        let executor_id = required("MESOS_EXECUTOR_ID")?;
        let agent_url = match var("MESOS_SLAVE_PID") {
            Some(pid) => agent_url_from_pid(&pid)?,
            None => {
                let endpoint = required("MESOS_AGENT_ENDPOINT")?;
                if !endpoint.contains(':') {
                    return Err(ExecutorError::Malformed {
                        name: "MESOS_AGENT_ENDPOINT",
                        value: endpoint,
                        why: "expected host:port",
                    });
                }
                format!("http://{endpoint}/api/v1/executor")
            }
        };
        let checkpoint = match var("MESOS_CHECKPOINT").as_deref() {
            None | Some("0") => false,
            Some("1") => true,
            Some(other) => {
                return Err(ExecutorError::Malformed {
                    name: "MESOS_CHECKPOINT",
                    value: other.into(),
                    why: "expected 0 or 1",
                });
            }
        };
        let duration = |name: &'static str| -> Result<Option<Duration>, ExecutorError> {
            var(name)
                .map(|v| {
                    parse_duration(&v).ok_or(ExecutorError::Malformed { name, value: v, why: "expected e.g. 15mins" })
                })
                .transpose()
        };
        Ok(Self {
            framework_id,
            executor_id,
            agent_url,
            sandbox: var("MESOS_SANDBOX").or_else(|| var("MESOS_DIRECTORY")),
            checkpoint,
            recovery_timeout: duration("MESOS_RECOVERY_TIMEOUT")?,
            subscription_backoff_max: duration("MESOS_SUBSCRIPTION_BACKOFF_MAX")?,
        })
    }
}

/// `slave(N)@host:port` → `http://host:port/slave(N)/api/v1/executor`, as libmesos' executor
/// library builds it (with mesos-local only this reaches an agent).
pub fn agent_url_from_pid(pid: &str) -> Result<String, ExecutorError> {
    let malformed = |why| ExecutorError::Malformed { name: "MESOS_SLAVE_PID", value: pid.to_string(), why };
    let (id, address) = pid.split_once('@').ok_or_else(|| malformed("expected slave(N)@host:port"))?;
    let (host, port) = address.rsplit_once(':').ok_or_else(|| malformed("expected slave(N)@host:port"))?;
    if id.is_empty() || host.is_empty() || port.parse::<u16>().is_err() || id.contains('/') {
        return Err(malformed("expected slave(N)@host:port"));
    }
    Ok(format!("http://{host}:{port}/{id}/api/v1/executor"))
}

/// A stout duration (`5secs`, `15mins`, `2.5hrs`, …).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0)?;
    let seconds = match unit {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "secs" => 1.0,
        "mins" => 60.0,
        "hrs" => 3600.0,
        "days" => 86_400.0,
        "weeks" => 604_800.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(value * seconds).ok()
}

/// A fresh RFC 4122 version-4 UUID, as the 16 bytes an UPDATE carries.
pub fn uuid_v4() -> Result<[u8; 16], ExecutorError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(ExecutorError::Random)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(b)
}

/// The executor's connection to its agent.
pub struct ExecutorClient {
    http: Client<HttpConnector, Full<Bytes>>,
    config: ExecutorConfig,
    content_type: ContentType,
    /// The open subscription of [`ExecutorApi::next_event`].
    events: Option<ExecutorEvents>,
    /// Whether a subscription ever succeeded (a loss after it is a disconnection).
    subscribed_before: bool,
    /// Updates sent and not yet ACKNOWLEDGED, by UUID.
    unacknowledged_updates: BTreeMap<[u8; 16], call::Update>,
    /// Tasks launched and not yet acknowledged through any update, by task id.
    unacknowledged_tasks: BTreeMap<String, TaskInfo>,
    /// A SUBSCRIBE under way, kept across a cancelled `next_event` (in a mutex only so
    /// that the client stays `Sync`; it is reached through `&mut self`, never locked).
    connecting: Option<std::sync::Mutex<Subscribing>>,
}

impl ExecutorClient {
    /// A client for the agent in `config`.
    pub fn new(config: ExecutorConfig) -> Self {
        let http = Client::builder(TokioExecutor::new()).build_http();
        Self {
            http,
            config,
            content_type: ContentType::default(),
            events: None,
            subscribed_before: false,
            unacknowledged_updates: BTreeMap::new(),
            unacknowledged_tasks: BTreeMap::new(),
            connecting: None,
        }
    }

    /// Encodes calls and asks for events in `content_type` (protobuf unless told).
    pub fn with_content_type(mut self, content_type: ContentType) -> Self {
        self.content_type = content_type;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }

    /// Updates not yet acknowledged.
    pub fn unacknowledged_updates(&self) -> usize {
        self.unacknowledged_updates.len()
    }

    fn call(&self, r#type: call::Type) -> Call {
        Call {
            executor_id: ExecutorId { value: self.config.executor_id.clone() },
            framework_id: FrameworkId { value: self.config.framework_id.clone() },
            r#type: Some(r#type as i32),
            ..Default::default()
        }
    }

    async fn post(
        &self,
        name: &'static str,
        call: &Call,
        expect: StatusCode,
    ) -> Result<http::Response<Incoming>, ExecutorError> {
        post(&self.http, &self.config.agent_url, self.content_type, name, call, expect).await
    }

    /// SUBSCRIBE, resending the unacknowledged tasks and updates; returns the event stream.
    pub async fn subscribe(&self) -> Result<ExecutorEvents, ExecutorError> {
        self.subscribing(false).await
    }

    /// A SUBSCRIBE (with retries when `retrying`, as [`retry`] says) that owns what it
    /// needs, so that [`ExecutorApi::next_event`] can keep it across a cancellation instead
    /// of starting over (a second SUBSCRIBE is a re-subscription to the agent, which
    /// then reports the launched tasks it did not list as TASK_LOST).
    fn subscribing(
        &self,
        retrying: bool,
    ) -> impl Future<Output = Result<ExecutorEvents, ExecutorError>> + Send + 'static {
        let mut call = self.call(call::Type::Subscribe);
        call.subscribe = Some(call::Subscribe {
            unacknowledged_tasks: self.unacknowledged_tasks.values().cloned().collect(),
            unacknowledged_updates: self.unacknowledged_updates.values().cloned().collect(),
        });
        let (http, config, content_type) = (self.http.clone(), self.config.clone(), self.content_type);
        let subscribed_before = self.subscribed_before;
        async move {
            let since = Instant::now();
            loop {
                let e = match post(&http, &config.agent_url, content_type, "SUBSCRIBE", &call, StatusCode::OK).await {
                    Ok(response) => {
                        return Ok(ExecutorEvents { records: RecordStream::new(response.into_body()), content_type });
                    }
                    Err(e) if !retrying => return Err(e),
                    Err(e) => e,
                };
                match retry(&config, subscribed_before, &e, since.elapsed()) {
                    Retry::After(wait) => tokio::time::sleep(wait).await,
                    Retry::Never => return Err(e),
                    Retry::TimedOut => {
                        let within = config.recovery_timeout.unwrap_or(DEFAULT_RECOVERY_TIMEOUT);
                        return Err(ExecutorError::GaveUp { within, last: Box::new(e) });
                    }
                }
            }
        }
    }

    /// Keeps the books on an event: LAUNCH adds an unacknowledged task, ACKNOWLEDGED
    /// retires an update and its task. Call it for every event received.
    pub fn observe(&mut self, e: &Event) {
        if let Some(launch) = &e.launch {
            self.unacknowledged_tasks.insert(launch.task.task_id.value.clone(), launch.task.clone());
        }
        if let Some(ack) = &e.acknowledged {
            if let Ok(uuid) = <[u8; 16]>::try_from(ack.uuid.as_slice()) {
                self.unacknowledged_updates.remove(&uuid);
            }
            self.unacknowledged_tasks.remove(&ack.task_id.value);
        }
    }

    /// UPDATE: sends a task's status with a fresh UUID, source EXECUTOR and this executor's
    /// id, and keeps it until ACKNOWLEDGED (also when sending fails: the next SUBSCRIBE
    /// resends it). Returns the UUID.
    pub async fn send_update(&mut self, mut status: TaskStatus) -> Result<[u8; 16], ExecutorError> {
        let uuid = uuid_v4()?;
        status.uuid = Some(uuid.to_vec());
        status.source = Some(task_status::Source::Executor as i32);
        status.executor_id = Some(ExecutorId { value: self.config.executor_id.clone() });
        let update = call::Update { status };
        self.unacknowledged_updates.insert(uuid, update.clone());
        let mut call = self.call(call::Type::Update);
        call.update = Some(update);
        self.post("UPDATE", &call, StatusCode::ACCEPTED).await?;
        Ok(uuid)
    }

    /// MESSAGE: data for the scheduler.
    pub async fn send_message(&self, data: Vec<u8>) -> Result<(), ExecutorError> {
        let mut call = self.call(call::Type::Message);
        call.message = Some(call::Message { data });
        self.post("MESSAGE", &call, StatusCode::ACCEPTED).await.map(drop)
    }
}

type Subscribing = std::pin::Pin<Box<dyn Future<Output = Result<ExecutorEvents, ExecutorError>> + Send>>;

/// POSTs `call` to the agent's executor API; anything but `expect` is an error.
async fn post(
    http: &Client<HttpConnector, Full<Bytes>>,
    url: &str,
    content_type: ContentType,
    name: &'static str,
    call: &Call,
    expect: StatusCode,
) -> Result<http::Response<Incoming>, ExecutorError> {
    let mime = content_type.mime();
    let transport = |reason: String| ExecutorError::Transport { url: url.to_string(), reason };
    let request = Request::post(url)
        .header(header::CONTENT_TYPE, mime)
        .header(header::ACCEPT, mime)
        .body(Full::new(Bytes::from(content_type.encode(call)?)))
        .map_err(|e| transport(e.to_string()))?;
    let response = tokio::time::timeout(crate::CALL_TIMEOUT, http.request(request))
        .await
        .map_err(|_| transport(format!("no answer to {name} within {:?}", crate::CALL_TIMEOUT)))?
        .map_err(|e| transport(e.to_string()))?;
    if response.status() != expect {
        let status = response.status();
        return Err(ExecutorError::Status { call: name, status, body: crate::explanation(response).await });
    }
    Ok(response)
}

/// `MESOS_RECOVERY_TIMEOUT`'s default in Mesos (`src/slave/constants.hpp`).
pub const DEFAULT_RECOVERY_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// `MESOS_SUBSCRIPTION_BACKOFF_MAX`'s default in Mesos (`DEFAULT_SUBSCRIPTION_BACKOFF_MAX`).
pub const DEFAULT_SUBSCRIPTION_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// What to do after a failed SUBSCRIBE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Try again after this wait.
    After(Duration),
    /// The recovery timeout is spent: give up.
    TimedOut,
    /// Do not retry: a refusal, or a lost agent while the framework does not checkpoint.
    Never,
}

/// Whether and when to retry SUBSCRIBE after `error`, `elapsed` into a recovery
/// (shared/docs/MESOS-HTTP-API.md §4.5). Retried: the agent unreachable, 503 (recovering)
/// or 404 (routes not installed yet) — before the first subscription always, after a loss
/// only when checkpointing — at a random wait in [0, `MESOS_SUBSCRIPTION_BACKOFF_MAX`], as
/// the C++ library does, within `MESOS_RECOVERY_TIMEOUT`.
pub fn retry(config: &ExecutorConfig, subscribed_before: bool, error: &ExecutorError, elapsed: Duration) -> Retry {
    let retryable = match error {
        ExecutorError::Transport { .. } => true,
        ExecutorError::Status { status, .. } => {
            *status == StatusCode::SERVICE_UNAVAILABLE || *status == StatusCode::NOT_FOUND
        }
        _ => false,
    };
    if !retryable || (subscribed_before && !config.checkpoint) {
        return Retry::Never;
    }
    let timeout = config.recovery_timeout.unwrap_or(DEFAULT_RECOVERY_TIMEOUT);
    if elapsed >= timeout {
        return Retry::TimedOut;
    }
    let max = config.subscription_backoff_max.unwrap_or(DEFAULT_SUBSCRIPTION_BACKOFF_MAX);
    let fraction = uuid_v4().map_or(0.5, |b| f64::from(u16::from_le_bytes([b[0], b[1]])) / f64::from(u16::MAX));
    let wait = Duration::try_from_secs_f64(max.as_secs_f64() * fraction).unwrap_or(max);
    Retry::After(wait.min(timeout - elapsed))
}

/// What executor logic needs from its agent, whatever provides it ([`ExecutorClient`], or
/// an in-memory double in tests).
pub trait ExecutorApi: Send {
    /// The next event. The first call subscribes; after the stream is lost it re-subscribes
    /// if the framework checkpoints (resending what is unacknowledged), else ends: `None`
    /// means the executor should exit. An ERROR event comes as [`ExecutorError::AgentError`].
    fn next_event(&mut self) -> impl Future<Output = Option<Result<Event, ExecutorError>>> + Send;

    /// UPDATE a task's status (kept until ACKNOWLEDGED); returns its UUID. An error while
    /// the agent is away (unreachable, or 503 while it recovers) loses nothing when the
    /// framework checkpoints: the update stays unacknowledged and the next SUBSCRIBE resends
    /// it.
    fn update(&mut self, status: TaskStatus) -> impl Future<Output = Result<[u8; 16], ExecutorError>> + Send;

    /// MESSAGE the scheduler.
    fn message(&mut self, data: Vec<u8>) -> impl Future<Output = Result<(), ExecutorError>> + Send;
}

impl ExecutorApi for ExecutorClient {
    async fn next_event(&mut self) -> Option<Result<Event, ExecutorError>> {
        loop {
            let Some(events) = self.events.as_mut() else {
                let retrying = true;
                let connecting = match self.connecting.as_mut() {
                    Some(c) => c,
                    None => self.connecting.insert(std::sync::Mutex::new(Box::pin(self.subscribing(retrying)))),
                };
                let connected = connecting.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).await;
                self.connecting = None;
                match connected {
                    Ok(events) => {
                        self.events = Some(events);
                        self.subscribed_before = true;
                        continue;
                    }
                    Err(e) => return Some(Err(e)),
                }
            };
            match events.next().await {
                Some(Ok(e)) => {
                    self.observe(&e);
                    if let Some(error) = &e.error {
                        self.events = None;
                        return Some(Err(ExecutorError::AgentError(error.message.clone())));
                    }
                    return Some(Ok(e));
                }
                // The agent is gone (or the stream broke): without checkpointing there
                // is nothing to come back to.
                Some(Err(_)) | None if !self.config.checkpoint => {
                    self.events = None;
                    return None;
                }
                Some(Err(_)) | None => self.events = None,
            }
        }
    }

    fn update(&mut self, status: TaskStatus) -> impl Future<Output = Result<[u8; 16], ExecutorError>> + Send {
        self.send_update(status)
    }

    fn message(&mut self, data: Vec<u8>) -> impl Future<Output = Result<(), ExecutorError>> + Send {
        self.send_message(data)
    }
}

/// The agent's events.
pub struct ExecutorEvents {
    records: RecordStream,
    content_type: ContentType,
}

impl ExecutorEvents {
    /// The next event; `None` when the agent closed the stream between records.
    pub async fn next(&mut self) -> Option<Result<Event, ExecutorError>> {
        Some(match self.records.next().await? {
            Ok(record) => self.content_type.decode::<Event>(&record).map_err(ExecutorError::from),
            Err(StreamFailure::RecordIo(e)) => Err(e.into()),
            Err(StreamFailure::Transport(reason)) => Err(ExecutorError::Transport { url: "(stream)".into(), reason }),
        })
    }
}

/// Whether an event is of `kind`.
pub fn is(e: &Event, kind: event::Type) -> bool {
    e.r#type == Some(kind as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn the_agent_url_comes_from_the_slave_pid_as_libmesos_builds_it() {
        let c = ExecutorConfig::from_vars(vars(&[
            ("MESOS_FRAMEWORK_ID", "f-0001"),
            ("MESOS_EXECUTOR_ID", "e1"),
            ("MESOS_SLAVE_PID", "slave(3)@127.0.0.1:5050"),
            ("MESOS_AGENT_ENDPOINT", "127.0.0.1:5050"),
            ("MESOS_CHECKPOINT", "1"),
            ("MESOS_RECOVERY_TIMEOUT", "15mins"),
            ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "2secs"),
        ]))
        .unwrap();
        assert_eq!(c.agent_url, "http://127.0.0.1:5050/slave(3)/api/v1/executor");
        assert!(c.checkpoint);
        assert_eq!(c.recovery_timeout, Some(Duration::from_secs(900)));
        assert_eq!(c.subscription_backoff_max, Some(Duration::from_secs(2)));
        let fallback = ExecutorConfig::from_vars(vars(&[
            ("MESOS_FRAMEWORK_ID", "f"),
            ("MESOS_EXECUTOR_ID", "e"),
            ("MESOS_AGENT_ENDPOINT", "10.0.0.1:5051"),
        ]))
        .unwrap();
        assert_eq!(fallback.agent_url, "http://10.0.0.1:5051/api/v1/executor");
        assert!(!fallback.checkpoint);
    }

    #[test]
    fn missing_and_malformed_variables_are_named() {
        let err = ExecutorConfig::from_vars(vars(&[("MESOS_EXECUTOR_ID", "e")])).unwrap_err();
        assert!(err.to_string().starts_with("MESOS_FRAMEWORK_ID is not set"), "{err}");
        let err = ExecutorConfig::from_vars(vars(&[
            ("MESOS_FRAMEWORK_ID", "f"),
            ("MESOS_EXECUTOR_ID", "e"),
            ("MESOS_SLAVE_PID", "garbage"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("MESOS_SLAVE_PID"), "{err}");
        let err = ExecutorConfig::from_vars(vars(&[
            ("MESOS_FRAMEWORK_ID", "f"),
            ("MESOS_EXECUTOR_ID", "e"),
            ("MESOS_AGENT_ENDPOINT", "a:1"),
            ("MESOS_RECOVERY_TIMEOUT", "soon"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("MESOS_RECOVERY_TIMEOUT"), "{err}");
        let err =
            ExecutorConfig::from_vars(vars(&[("MESOS_FRAMEWORK_ID", "f"), ("MESOS_EXECUTOR_ID", "e")])).unwrap_err();
        assert!(err.to_string().contains("MESOS_AGENT_ENDPOINT is not set"), "{err}");
    }

    #[test]
    fn durations_and_uuids() {
        assert_eq!(parse_duration("5secs"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("1.5hrs"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("-1secs"), None);
        assert_eq!(parse_duration("5parsecs"), None);
        let (a, b) = (uuid_v4().unwrap(), uuid_v4().unwrap());
        assert_ne!(a, b);
        assert_eq!(a[6] >> 4, 4, "version 4");
        assert_eq!(a[8] >> 6, 0b10, "RFC 4122 variant");
    }

    #[test]
    fn reconnection_follows_the_checkpoint_and_recovery_rules() {
        let config = |checkpoint| ExecutorConfig {
            framework_id: "f".into(),
            executor_id: "e".into(),
            agent_url: "http://a:1/slave(1)/api/v1/executor".into(),
            sandbox: None,
            checkpoint,
            recovery_timeout: Some(Duration::from_secs(10)),
            subscription_backoff_max: Some(Duration::from_millis(500)),
        };
        let gone = ExecutorError::Transport { url: "u".into(), reason: "connection refused".into() };
        let recovering =
            ExecutorError::Status { call: "SUBSCRIBE", status: StatusCode::SERVICE_UNAVAILABLE, body: String::new() };
        let refused = ExecutorError::Status { call: "SUBSCRIBE", status: StatusCode::BAD_REQUEST, body: String::new() };
        // Not checkpointing: after a loss, stop at once.
        let wait_of = |r: Retry| match r {
            Retry::After(wait) => wait,
            other => panic!("expected a wait, got {other:?}"),
        };
        assert_eq!(retry(&config(false), true, &gone, Duration::ZERO), Retry::Never);
        // Before the first subscription an agent not ready yet is waited for, either way.
        assert!(wait_of(retry(&config(false), false, &gone, Duration::ZERO)) <= Duration::from_millis(500));
        // Checkpointing: retry transport errors and 503 within the recovery timeout...
        for e in [&gone, &recovering] {
            let wait = wait_of(retry(&config(true), true, e, Duration::from_secs(3)));
            assert!(wait <= Duration::from_millis(500), "{wait:?}");
        }
        // ...never past it, and never a refusal.
        let wait = wait_of(retry(&config(true), true, &gone, Duration::from_millis(9_900)));
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert_eq!(retry(&config(true), true, &gone, Duration::from_secs(10)), Retry::TimedOut);
        assert_eq!(retry(&config(true), true, &refused, Duration::ZERO), Retry::Never);
    }
}
