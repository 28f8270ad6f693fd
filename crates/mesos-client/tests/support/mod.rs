//! What the Mesos test binaries share: finding the real master, a patient event reader,
//! launching our test executor, and the fault-injecting proxy ([`proxy`]).
#![allow(dead_code)] // each test binary uses a part

pub mod proxy;

use std::time::Duration;

use mesos_client::codec::ContentType;
use mesos_client::scheduler::{Calls, Events, SchedulerError, Session, SessionConfig};
use mesos_client::v1::scheduler::{Event, event};
use mesos_client::v1::{
    CommandInfo, Environment, ExecutorId, ExecutorInfo, FrameworkInfo, Offer, Resource, TaskId, TaskInfo, TaskStatus,
    environment, executor_info, offer, value,
};

/// One framework at a time: frameworks on one master compete for the same offers.
pub static MASTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The real master's `host:port`, from MESOS_MASTER; without it the test fails saying how
/// to start one.
pub fn master() -> String {
    std::env::var("MESOS_MASTER").unwrap_or_else(|_| {
        panic!(
            "MESOS_MASTER is not set. These tests need a real Mesos master: run them through `tools/test` \
             (which starts tools/mesos-local), or start one with `tools/mesos-local/up` and export \
             MESOS_MASTER=127.0.0.1:5050"
        )
    })
}

/// A framework that the master forgets as soon as it disconnects (failover_timeout 0).
pub fn framework(name: &str) -> FrameworkInfo {
    FrameworkInfo { user: "root".into(), name: name.into(), failover_timeout: Some(0.0), ..Default::default() }
}

/// A session with test-friendly backoff (250 ms doubling to 2 s).
pub fn session(master: &str, info: FrameworkInfo, content_type: ContentType) -> Session {
    let mut config = SessionConfig::new(master, info);
    config.content_type = content_type;
    config.first_backoff = Duration::from_millis(250);
    config.max_backoff = Duration::from_secs(2);
    Session::new(config).unwrap()
}

/// Events read from a session; those skipped while looking for one kind are kept for later
/// (the master does not promise an order between, say, an executor's MESSAGE and its
/// task's UPDATE).
pub struct Inbox {
    pub session: Session,
    skipped: Vec<Event>,
}

impl Inbox {
    pub fn new(session: Session) -> Self {
        Self { session, skipped: Vec::new() }
    }

    /// The next event of `kind` within `within`; `None` if none came. Stream errors fail
    /// the test.
    pub async fn next_of(&mut self, kind: event::Type, within: Duration) -> Option<Event> {
        if let Some(i) = self.skipped.iter().position(|e| e.r#type == Some(kind as i32)) {
            return Some(self.skipped.remove(i));
        }
        let (session, skipped) = (&mut self.session, &mut self.skipped);
        tokio::time::timeout(within, async {
            loop {
                match session.next_event().await {
                    Some(Ok(e)) if e.r#type == Some(kind as i32) => return Some(e),
                    Some(Ok(e)) => skipped.push(e),
                    Some(Err(e)) => panic!("session error: {e}"),
                    None => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// The next event whatever it is, within `within`.
    pub async fn next_any(&mut self, within: Duration) -> Option<Result<Event, SchedulerError>> {
        if !self.skipped.is_empty() {
            return Some(Ok(self.skipped.remove(0)));
        }
        tokio::time::timeout(within, self.session.next_event()).await.ok().flatten()
    }

    /// Forgets skipped events of `kind` (e.g. offers made before a DECLINE).
    pub fn drop_skipped(&mut self, kind: event::Type) {
        self.skipped.retain(|e| e.r#type != Some(kind as i32));
    }

    /// The next UPDATE, acknowledged when it carries a uuid (the agent holds the next
    /// update of the task until then).
    pub async fn next_update(&mut self) -> TaskStatus {
        let e = self.next_of(event::Type::Update, Duration::from_secs(30)).await.expect("an UPDATE within 30 s");
        let status = e.update.unwrap().status;
        self.session.acknowledge(&status).await.unwrap();
        status
    }

    /// Takes the next offer, launches one task of ours on it (`mesos-test-executor` as
    /// `executor_id`, speaking `content_type`, reaching its agent through `via` if given),
    /// and returns the offer and the task's acknowledged TASK_RUNNING.
    pub async fn launch_running(
        &mut self,
        task_id: &str,
        executor_id: &ExecutorId,
        content_type: ContentType,
        via: Option<&str>,
    ) -> (Offer, TaskStatus) {
        let Some(e) = self.next_of(event::Type::Offers, Duration::from_secs(30)).await else {
            panic!("no OFFERS within 30 s; the master: {}", master_picture().await);
        };
        let offer = e.offers.unwrap().offers.remove(0);
        let launch = launch_our_executor_via(&offer, task_id, executor_id, content_type, via);
        self.session.accept(vec![offer.id.clone()], vec![launch]).await.unwrap();
        let running = self.next_update().await;
        assert_eq!(running.state, mesos_client::v1::TaskState::TaskRunning as i32, "{running:?}");
        (offer, running)
    }

    /// Reads events until the session ends (`None`), within `within`; false if it did not.
    pub async fn ends_within(&mut self, within: Duration) -> bool {
        tokio::time::timeout(within, async {
            while let Some(e) = self.session.next_event().await {
                e.unwrap();
            }
        })
        .await
        .is_ok()
    }
}

fn scalar(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    }
}

/// The test executor binary.
pub fn executor_path() -> &'static str {
    env!("CARGO_BIN_EXE_mesos-test-executor")
}

/// A LAUNCH of one task of ours on `offer`'s agent, run by `mesos-test-executor` speaking
/// `content_type` to the agent, through `via` (a proxy) if given.
fn launch_our_executor_via(
    offer: &Offer,
    task_id: &str,
    executor_id: &ExecutorId,
    content_type: ContentType,
    via: Option<&str>,
) -> offer::Operation {
    let name = if content_type == ContentType::Json { "json" } else { "protobuf" };
    let variable =
        |name: &str, value: &str| environment::Variable { name: name.into(), r#type: None, value: Some(value.into()) };
    let mut variables = vec![variable("EXELIXI_TEST_CONTENT_TYPE", name)];
    variables.extend(via.map(|v| variable("EXELIXI_TEST_AGENT_VIA", v)));
    let environment = Environment { variables };
    let task = TaskInfo {
        name: "conformance".into(),
        task_id: TaskId { value: task_id.into() },
        agent_id: offer.agent_id.clone(),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        executor: Some(ExecutorInfo {
            r#type: Some(executor_info::Type::Custom as i32),
            executor_id: executor_id.clone(),
            // Run directly (no shell), with the executor id as an argument so that
            // `none_left` can tell this executor's process from any other test's.
            command: Some(CommandInfo {
                shell: Some(false),
                value: Some(executor_path().into()),
                arguments: vec![executor_path().into(), executor_id.value.clone()],
                environment: Some(environment),
                ..Default::default()
            }),
            resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
            ..Default::default()
        }),
        ..Default::default()
    };
    offer::Operation {
        r#type: Some(offer::operation::Type::Launch as i32),
        launch: Some(offer::operation::Launch { task_infos: vec![task] }),
    }
}

/// Processes of our test executor running as `executor_id`.
pub fn executors_running(executor_id: &ExecutorId) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|cmd| {
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            args.first().is_some_and(|a| *a == executor_path().as_bytes())
                && args.get(1).is_some_and(|a| *a == executor_id.value.as_bytes())
        })
        .count()
}

/// What the master holds (from `/master/state`): each framework with its offers and tasks,
/// and each agent's resources in use. For failure messages: who has the resources a test
/// waited for.
pub async fn master_picture() -> String {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let Ok(uri) = format!("http://{}/master/state", master()).parse() else { return "(bad master address)".into() };
    let state = match tokio::time::timeout(Duration::from_secs(10), client.get(uri)).await {
        Ok(Ok(r)) => match r.into_body().collect().await {
            Ok(body) => serde_json::from_slice::<serde_json::Value>(&body.to_bytes()).unwrap_or_default(),
            Err(e) => return format!("(state unreadable: {e})"),
        },
        Ok(Err(e)) => return format!("(no state: {e})"),
        Err(_) => return "(no state within 10 s)".into(),
    };
    let empty = Vec::new();
    let list = |v: &serde_json::Value| v.as_array().unwrap_or(&empty).clone();
    let frameworks: Vec<String> = list(&state["frameworks"])
        .iter()
        .map(|f| {
            format!(
                "{} {} active={} connected={} offers={} tasks={}",
                f["name"],
                f["id"],
                f["active"],
                f["connected"],
                list(&f["offers"]).len(),
                list(&f["tasks"]).len()
            )
        })
        .collect();
    let agents: Vec<String> = list(&state["slaves"])
        .iter()
        .map(|a| format!("{} used={} offered={}", a["id"], a["used_resources"], a["offered_resources"]))
        .collect();
    format!("frameworks [{}]; agents [{}]", frameworks.join(", "), agents.join(", "))
}

/// Waits until no test executor runs as `executor_id`; false after `within`.
pub async fn none_left(executor_id: &ExecutorId, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    while executors_running(executor_id) > 0 {
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}
