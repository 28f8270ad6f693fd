//! Conformance of the scheduler side against a real Mesos 1.11 master (tools/mesos-local),
//! found through MESOS_MASTER, once with protobuf and once with JSON. Without a master these
//! tests fail, saying how to start one: they never pass silently.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use mesos_client::codec::ContentType;
use mesos_client::scheduler::{Calls, SchedulerClient, SchedulerError};
use mesos_client::v1::scheduler::event;
use mesos_client::v1::{ExecutorId, OfferId, TaskId, TaskState, task_status};
use support::{Inbox, MASTER, framework, master, none_left, session};

/// Runs a conformance scenario once per content type.
macro_rules! both_content_types {
    ($($scenario:ident => $protobuf:ident, $json:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $protobuf() {
            $scenario(ContentType::Protobuf).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $json() {
            $scenario(ContentType::Json).await
        }
    )*};
}

both_content_types! {
    offers_decline_revive_teardown => offers_from_every_agent_decline_revive_teardown_protobuf,
        offers_from_every_agent_decline_revive_teardown_json;
    launch_exchange_finish => launch_our_executor_exchange_messages_finish_with_data_protobuf,
        launch_our_executor_exchange_messages_finish_with_data_json;
    kill_and_reconcile => kill_a_running_task_and_reconcile_implicitly_protobuf,
        kill_a_running_task_and_reconcile_implicitly_json;
    suppress_revive => suppress_stops_offers_until_revive_protobuf, suppress_stops_offers_until_revive_json;
}

async fn offers_decline_revive_teardown(content_type: ContentType) {
    let _serial = MASTER.lock().await;
    let mut inbox = Inbox::new(session(&master(), framework("exelixi-conformance"), content_type));
    let subscribed = inbox.next_of(event::Type::Subscribed, Duration::from_secs(10)).await.expect("SUBSCRIBED");
    let subscribed = subscribed.subscribed.unwrap();
    assert!(!subscribed.framework_id.value.is_empty());
    assert_eq!(subscribed.heartbeat_interval_seconds, Some(15.0));
    assert_eq!(inbox.session.framework_id(), Some(&subscribed.framework_id));
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
    inbox.session.decline(offers, 3600.0).await.unwrap();
    inbox.drop_skipped(event::Type::Offers);
    assert!(inbox.next_of(event::Type::Offers, Duration::from_secs(3)).await.is_none());
    inbox.session.revive().await.unwrap();
    assert!(inbox.next_of(event::Type::Offers, Duration::from_secs(10)).await.is_some());

    inbox.session.teardown().await.unwrap();
    // The master closes the stream of a torn-down framework, and that ends the session.
    assert!(inbox.ends_within(Duration::from_secs(10)).await, "the stream stayed open after TEARDOWN");
    assert_eq!(inbox.session.reconnections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_need_a_subscription_and_an_unreachable_master_is_named() {
    let mut client = SchedulerClient::new(&master()).unwrap();
    assert!(matches!(client.teardown().await, Err(SchedulerError::NotSubscribed("TEARDOWN"))));
    assert!(matches!(SchedulerClient::new("no-port"), Err(SchedulerError::BadMaster(_))));

    let mut unreachable = SchedulerClient::new("127.0.0.1:1").unwrap();
    let err = unreachable.subscribe(framework("nobody")).await.err().unwrap();
    assert!(err.to_string().contains("cannot reach the Mesos master at 127.0.0.1:1"), "{err}");
}

async fn launch_exchange_finish(content_type: ContentType) {
    let _serial = MASTER.lock().await;
    let mut inbox = Inbox::new(session(&master(), framework("exelixi-launch"), content_type));
    let executor_id = ExecutorId { value: "exelixi-test-executor".into() };
    let (offer, running) = inbox.launch_running("task-1", &executor_id, content_type, None).await;
    assert!(running.uuid.is_some(), "an executor's update carries a uuid");
    assert_eq!(support::executors_running(&executor_id), 1, "our executor's process is seen");
    assert_eq!(running.source, Some(task_status::Source::Executor as i32));
    // The executor says hello once the agent ACKNOWLEDGED its TASK_RUNNING.
    let hello = inbox.next_of(event::Type::Message, Duration::from_secs(30)).await.expect("executor MESSAGE");
    let hello = hello.message.unwrap();
    assert_eq!(hello.data, b"hello");
    assert_eq!(hello.executor_id, executor_id);
    inbox.session.message(offer.agent_id.clone(), executor_id.clone(), b"ping".to_vec()).await.unwrap();
    let finished = inbox.next_update().await;
    assert_eq!(finished.state, TaskState::TaskFinished as i32, "{finished:?}");
    assert_eq!(finished.data.as_deref(), Some(&b"got:ping"[..]));
    assert_eq!(inbox.session.known_tasks().count(), 0, "a finished task is off the books");
    // The executor exits 0 only once the agent ACKNOWLEDGED all its updates; the master
    // reports the exit as FAILURE with the wait status.
    let exited = inbox.next_of(event::Type::Failure, Duration::from_secs(30)).await.expect("the executor's exit");
    let exited = exited.failure.unwrap();
    assert_eq!((exited.executor_id.as_ref(), exited.status), (Some(&executor_id), Some(0)), "{exited:?}");

    // Explicit reconciliation of the finished task answers with its state (no uuid).
    inbox.session.reconcile(vec![(TaskId { value: "task-1".into() }, Some(offer.agent_id.clone()))]).await.unwrap();
    let reconciled = inbox.next_of(event::Type::Update, Duration::from_secs(10)).await.expect("reconcile answer");
    let reconciled = reconciled.update.unwrap().status;
    assert_eq!(reconciled.task_id.value, "task-1");
    assert_eq!(reconciled.reason, Some(task_status::Reason::Reconciliation as i32));
    assert!(reconciled.uuid.is_none(), "the master's own updates carry no uuid: {reconciled:?}");

    inbox.session.teardown().await.unwrap();
    assert!(none_left(&executor_id, Duration::from_secs(15)).await, "the executor outlived TEARDOWN");
}

async fn kill_and_reconcile(content_type: ContentType) {
    let _serial = MASTER.lock().await;
    let mut inbox = Inbox::new(session(&master(), framework("exelixi-kill"), content_type));
    let executor_id = ExecutorId { value: "exelixi-kill-executor".into() };
    let (offer, _) = inbox.launch_running("task-k", &executor_id, content_type, None).await;

    // Implicit reconciliation (no tasks named) reports every task the master knows.
    inbox.session.reconcile(Vec::new()).await.unwrap();
    let known = inbox.next_of(event::Type::Update, Duration::from_secs(10)).await.expect("reconcile answer");
    let known = known.update.unwrap().status;
    assert_eq!((known.task_id.value.as_str(), known.state), ("task-k", TaskState::TaskRunning as i32));
    assert!(known.uuid.is_none());

    inbox.session.kill(TaskId { value: "task-k".into() }, Some(offer.agent_id.clone())).await.unwrap();
    let killed = inbox.next_update().await;
    assert_eq!(killed.state, TaskState::TaskKilled as i32, "{killed:?}");
    inbox.session.teardown().await.unwrap();
    assert!(none_left(&executor_id, Duration::from_secs(15)).await, "the executor outlived TEARDOWN");
}

async fn suppress_revive(content_type: ContentType) {
    let _serial = MASTER.lock().await;
    let mut inbox = Inbox::new(session(&master(), framework("exelixi-suppress"), content_type));
    let e = inbox.next_of(event::Type::Offers, Duration::from_secs(10)).await.expect("OFFERS");
    let ids: Vec<OfferId> = e.offers.unwrap().offers.into_iter().map(|o| o.id).collect();
    inbox.session.suppress().await.unwrap();
    // Declined without a filter, the resources would come back at once; suppressed, they do not.
    inbox.session.decline(ids, 0.0).await.unwrap();
    inbox.drop_skipped(event::Type::Offers);
    assert!(inbox.next_of(event::Type::Offers, Duration::from_secs(3)).await.is_none());
    inbox.session.revive().await.unwrap();
    assert!(inbox.next_of(event::Type::Offers, Duration::from_secs(10)).await.is_some());
    inbox.session.teardown().await.unwrap();
}
