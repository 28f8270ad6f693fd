//! The scheduler client against a real Mesos 1.11 master (tools/mesos-local), found through
//! MESOS_MASTER. Without it these tests fail, saying how to start one: they never pass
//! silently.

use std::collections::HashSet;
use std::time::Duration;

use mesos_client::scheduler::{EventStream, SchedulerClient, SchedulerError};
use mesos_client::v1::scheduler::{Event, event};
use mesos_client::v1::{
    CommandInfo, ExecutorId, ExecutorInfo, FrameworkInfo, Offer, OfferId, Resource, TaskId, TaskInfo, TaskState,
    executor_info, offer, value,
};

/// One framework at a time: frameworks on one master compete for the same offers.
static MASTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn master() -> String {
    std::env::var("MESOS_MASTER").unwrap_or_else(|_| {
        panic!(
            "MESOS_MASTER is not set. These tests need a real Mesos master: run them through `tools/test` \
             (which starts tools/mesos-local), or start one with `tools/mesos-local/up` and export \
             MESOS_MASTER=127.0.0.1:5050"
        )
    })
}

fn framework(name: &str) -> FrameworkInfo {
    FrameworkInfo { user: "root".into(), name: name.into(), failover_timeout: Some(0.0), ..Default::default() }
}

/// Events read from a subscription; those skipped while looking for one kind are kept
/// for later (the master does not promise an order between, say, an executor's MESSAGE and
/// its task's UPDATE).
struct Inbox {
    events: EventStream,
    skipped: Vec<Event>,
}

impl Inbox {
    fn new(events: EventStream) -> Self {
        Self { events, skipped: Vec::new() }
    }

    async fn next_of(&mut self, kind: event::Type, within: Duration) -> Option<Event> {
        if let Some(i) = self.skipped.iter().position(|e| e.r#type == Some(kind as i32)) {
            return Some(self.skipped.remove(i));
        }
        let (events, skipped) = (&mut self.events, &mut self.skipped);
        tokio::time::timeout(within, async {
            loop {
                match events.next().await {
                    Some(Ok(e)) if e.r#type == Some(kind as i32) => return Some(e),
                    Some(Ok(e)) => skipped.push(e),
                    Some(Err(e)) => panic!("stream error: {e}"),
                    None => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// Forgets skipped events of `kind` (e.g. offers made before a DECLINE).
    fn drop_skipped(&mut self, kind: event::Type) {
        self.skipped.retain(|e| e.r#type != Some(kind as i32));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_get_offers_from_every_agent_decline_revive_and_teardown() {
    let _serial = MASTER.lock().await;
    let mut client = SchedulerClient::new(&master()).unwrap();
    let sub = client.subscribe(framework("exelixi-conformance")).await.unwrap();
    assert!(!sub.framework_id.value.is_empty());
    assert_eq!(sub.heartbeat_interval_seconds, Some(15.0));
    assert!(client.stream_id().is_some_and(|s| !s.is_empty()));
    let mut inbox = Inbox::new(sub.events);
    // Right after SUBSCRIBED the master sends a HEARTBEAT.
    assert!(inbox.next_of(event::Type::Heartbeat, Duration::from_secs(5)).await.is_some());

    // Offers from all three agents (one event may carry several).
    let mut agents = HashSet::new();
    let mut offers: Vec<OfferId> = Vec::new();
    while agents.len() < 3 {
        let e = inbox.next_of(event::Type::Offers, Duration::from_secs(10)).await.expect("OFFERS within 10 s");
        for o in e.offers.unwrap().offers {
            assert!(o.resources.iter().any(|r| r.name == "cpus"));
            agents.insert(o.agent_id.value.clone());
            offers.push(o.id);
        }
    }
    // Declined for an hour, they do not come back; REVIVE brings them back.
    client.decline(offers, 3600.0).await.unwrap();
    inbox.drop_skipped(event::Type::Offers);
    assert!(inbox.next_of(event::Type::Offers, Duration::from_secs(3)).await.is_none());
    client.revive().await.unwrap();
    assert!(inbox.next_of(event::Type::Offers, Duration::from_secs(10)).await.is_some());

    client.teardown().await.unwrap();
    // The master closes the stream of a torn-down framework.
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = inbox.events.next().await {
            e.unwrap();
        }
    })
    .await;
    assert!(end.is_ok(), "the stream stayed open after TEARDOWN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_need_a_subscription_and_an_unreachable_master_is_named() {
    let client = SchedulerClient::new(&master()).unwrap();
    assert!(matches!(client.teardown().await, Err(SchedulerError::NotSubscribed("TEARDOWN"))));
    assert!(matches!(SchedulerClient::new("no-port"), Err(SchedulerError::BadMaster(_))));

    let mut unreachable = SchedulerClient::new("127.0.0.1:1").unwrap();
    let err = unreachable.subscribe(framework("nobody")).await.err().unwrap();
    assert!(err.to_string().contains("cannot reach the Mesos master at 127.0.0.1:1"), "{err}");
}

fn scalar(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    }
}

/// Processes whose command line mentions `needle`.
fn processes_running(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|cmd| String::from_utf8_lossy(cmd).contains(needle))
        .count()
}

async fn next_update(inbox: &mut Inbox, client: &SchedulerClient) -> mesos_client::v1::TaskStatus {
    let e = inbox.next_of(event::Type::Update, Duration::from_secs(30)).await.expect("an UPDATE within 30 s");
    let status = e.update.unwrap().status;
    // Updates from the agent carry a uuid and hold the next one until acknowledged.
    client.acknowledge(&status).await.unwrap();
    status
}

/// A LAUNCH of one task of ours on `offer`'s agent, run by `mesos-test-executor`.
fn launch_our_executor(offer: &Offer, task_id: &str, executor_id: &ExecutorId) -> offer::Operation {
    let executor_path = env!("CARGO_BIN_EXE_mesos-test-executor");
    let task = TaskInfo {
        name: "conformance".into(),
        task_id: TaskId { value: task_id.into() },
        agent_id: offer.agent_id.clone(),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        executor: Some(ExecutorInfo {
            r#type: Some(executor_info::Type::Custom as i32),
            executor_id: executor_id.clone(),
            command: Some(CommandInfo { value: Some(executor_path.into()), ..Default::default() }),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_our_executor_exchange_messages_and_finish_with_data() {
    let _serial = MASTER.lock().await;
    let executor_path = env!("CARGO_BIN_EXE_mesos-test-executor");
    let mut client = SchedulerClient::new(&master()).unwrap();
    let mut inbox = Inbox::new(client.subscribe(framework("exelixi-launch")).await.unwrap().events);
    let e = inbox.next_of(event::Type::Offers, Duration::from_secs(10)).await.expect("OFFERS");
    let offer: Offer = e.offers.unwrap().offers.remove(0);
    let executor_id = ExecutorId { value: "exelixi-test-executor".into() };
    let launch = launch_our_executor(&offer, "task-1", &executor_id);
    client.accept(vec![offer.id.clone()], vec![launch]).await.unwrap();

    let running = next_update(&mut inbox, &client).await;
    assert_eq!(running.state, TaskState::TaskRunning as i32, "{running:?}");
    assert!(running.uuid.is_some(), "an executor's update carries a uuid");
    let hello = inbox.next_of(event::Type::Message, Duration::from_secs(30)).await.expect("executor MESSAGE");
    let hello = hello.message.unwrap();
    assert_eq!(hello.data, b"hello");
    assert_eq!(hello.executor_id, executor_id);
    client.message(offer.agent_id.clone(), executor_id.clone(), b"ping".to_vec()).await.unwrap();
    let finished = next_update(&mut inbox, &client).await;
    assert_eq!(finished.state, TaskState::TaskFinished as i32, "{finished:?}");
    assert_eq!(finished.data.as_deref(), Some(&b"got:ping"[..]));

    // Explicit reconciliation of the finished task answers with its state (no uuid).
    client.reconcile(vec![(TaskId { value: "task-1".into() }, Some(offer.agent_id.clone()))]).await.unwrap();
    let reconciled = inbox.next_of(event::Type::Update, Duration::from_secs(10)).await.expect("reconcile answer");
    let reconciled = reconciled.update.unwrap().status;
    assert!(reconciled.uuid.is_none(), "the master's own updates carry no uuid: {reconciled:?}");

    client.teardown().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while processes_running(executor_path) > 0 {
        assert!(std::time::Instant::now() < deadline, "the executor outlived TEARDOWN");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_a_running_task_and_reconcile_implicitly() {
    let _serial = MASTER.lock().await;
    let mut client = SchedulerClient::new(&master()).unwrap();
    let mut inbox = Inbox::new(client.subscribe(framework("exelixi-kill")).await.unwrap().events);
    let e = inbox.next_of(event::Type::Offers, Duration::from_secs(10)).await.expect("OFFERS");
    let offer = e.offers.unwrap().offers.remove(0);
    let executor_id = ExecutorId { value: "exelixi-kill-executor".into() };
    client.accept(vec![offer.id.clone()], vec![launch_our_executor(&offer, "task-k", &executor_id)]).await.unwrap();
    let running = next_update(&mut inbox, &client).await;
    assert_eq!(running.state, TaskState::TaskRunning as i32, "{running:?}");

    // Implicit reconciliation (no tasks named) reports every task the master knows.
    client.reconcile(Vec::new()).await.unwrap();
    let known = inbox.next_of(event::Type::Update, Duration::from_secs(10)).await.expect("reconcile answer");
    let known = known.update.unwrap().status;
    assert_eq!((known.task_id.value.as_str(), known.state), ("task-k", TaskState::TaskRunning as i32));
    assert!(known.uuid.is_none());

    client.kill(TaskId { value: "task-k".into() }, Some(offer.agent_id.clone())).await.unwrap();
    let killed = next_update(&mut inbox, &client).await;
    assert_eq!(killed.state, TaskState::TaskKilled as i32, "{killed:?}");
    client.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppress_stops_offers_until_revive() {
    let _serial = MASTER.lock().await;
    let mut client = SchedulerClient::new(&master()).unwrap();
    let mut inbox = Inbox::new(client.subscribe(framework("exelixi-suppress")).await.unwrap().events);
    let e = inbox.next_of(event::Type::Offers, Duration::from_secs(10)).await.expect("OFFERS");
    let ids: Vec<OfferId> = e.offers.unwrap().offers.into_iter().map(|o| o.id).collect();
    client.suppress().await.unwrap();
    // Declined without a filter, the resources would come back at once; suppressed, they do not.
    client.decline(ids, 0.0).await.unwrap();
    inbox.drop_skipped(event::Type::Offers);
    assert!(inbox.next_of(event::Type::Offers, Duration::from_secs(3)).await.is_none());
    client.revive().await.unwrap();
    assert!(inbox.next_of(event::Type::Offers, Duration::from_secs(10)).await.is_some());
    client.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_master_restart_the_framework_resubscribes_with_its_id() {
    let _serial = MASTER.lock().await;
    let master = master();
    let port = master.rsplit_once(':').map(|(_, p)| p.to_string()).unwrap();
    let mut client = SchedulerClient::new(&master).unwrap();
    let info = FrameworkInfo { failover_timeout: Some(300.0), ..framework("exelixi-failover") };
    let mut sub = client.subscribe(info.clone()).await.unwrap();
    let id = sub.framework_id.clone();

    let restart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/mesos-local/restart");
    let status = tokio::process::Command::new(restart).args(["--port", &port]).status().await.unwrap();
    assert!(status.success(), "tools/mesos-local/restart failed");

    // The old stream ends (or errors) with the old master.
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match sub.next_event().await {
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream survived a master restart");

    // Re-subscribing with the framework id (within failover_timeout) gets the same id back,
    // once the new master has recovered (503 meanwhile, retried).
    let again = client
        .subscribe_with_retry(FrameworkInfo { id: Some(id.clone()), ..info }, 20, Duration::from_millis(250))
        .await
        .unwrap();
    assert_eq!(again.framework_id, id);
    assert!(again.liveness_timeout() >= Duration::from_secs(45));
    client.teardown().await.unwrap();
}
