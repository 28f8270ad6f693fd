//! Fault tests: a [`Session`](mesos_client::scheduler::Session) against the real Mesos
//! master (MESOS_MASTER, from tools/test), through the fault-injecting proxy of
//! `support/proxy.rs` or around a real master restart. Nothing here imitates Mesos: every
//! answer the client handles is the real master's.

mod support;

use std::time::Duration;

use mesos_client::codec::ContentType;
use mesos_client::scheduler::{Calls, Events, SchedulerError};
use mesos_client::v1::scheduler::event;
use mesos_client::v1::{ExecutorId, FrameworkInfo, TaskState, task_status};
use support::proxy::Proxy;
use support::{Inbox, MASTER, framework, master, none_left, session};

/// A framework the master keeps for a minute after a disconnection, so it can come back.
fn lasting(name: &str) -> FrameworkInfo {
    FrameworkInfo { failover_timeout: Some(60.0), ..framework(name) }
}

/// The next error the session reports, skipping events; fails the test after 30 s.
async fn next_error(inbox: &mut Inbox) -> SchedulerError {
    loop {
        match inbox.next_any(Duration::from_secs(30)).await.expect("an error within 30 s") {
            Ok(_) => continue,
            Err(e) => return e,
        }
    }
}

async fn subscribed(inbox: &mut Inbox) -> mesos_client::v1::scheduler::event::Subscribed {
    let e = inbox.next_of(event::Type::Subscribed, Duration::from_secs(30)).await.expect("SUBSCRIBED within 30 s");
    e.subscribed.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_dropped_mid_run_resubscribes_with_the_framework_id_and_reconciles_its_task() {
    let _serial = MASTER.lock().await;
    let proxy = Proxy::start(&master()).await;
    // Records split into 1-13 byte chunks for the whole run, on real traffic.
    proxy.split_records(true);
    let mut inbox = Inbox::new(session(proxy.addr(), lasting("exelixi-drop"), ContentType::Protobuf));
    let first = subscribed(&mut inbox).await;
    let executor_id = ExecutorId { value: "exelixi-drop-executor".into() };
    let (offer, _) = inbox.launch_running("task-d", &executor_id, ContentType::Protobuf, None).await;
    assert_eq!(inbox.session.known_tasks().map(|(t, _)| t).collect::<Vec<_>>(), ["task-d"]);

    proxy.drop_streams();
    let again = subscribed(&mut inbox).await;
    assert_eq!(again.framework_id, first.framework_id, "re-subscribed under the same framework id");
    assert_eq!((proxy.drops(), proxy.subscribes(), inbox.session.reconnections()), (1, 2, 1));
    assert!(inbox.session.last_loss().is_some_and(|l| !l.is_empty()));
    // The session asked the master about its task: the answer is the master's (no uuid).
    let answer = inbox.next_of(event::Type::Update, Duration::from_secs(30)).await.expect("reconciliation");
    let answer = answer.update.unwrap().status;
    assert_eq!(answer.task_id.value, "task-d");
    assert_eq!(answer.state, TaskState::TaskRunning as i32);
    assert_eq!(answer.reason, Some(task_status::Reason::Reconciliation as i32));
    assert!(answer.uuid.is_none());

    // The task is still ours: finish it through the new subscription.
    inbox.session.message(offer.agent_id.clone(), executor_id.clone(), b"after".to_vec()).await.unwrap();
    let finished = inbox.next_update().await;
    assert_eq!(finished.state, TaskState::TaskFinished as i32, "{finished:?}");
    assert_eq!(finished.data.as_deref(), Some(&b"got:after"[..]));
    inbox.session.teardown().await.unwrap();
    assert!(inbox.ends_within(Duration::from_secs(30)).await);
    assert!(none_left(&executor_id, Duration::from_secs(30)).await, "the executor outlived TEARDOWN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_heartbeats_make_the_session_reconnect() {
    let _serial = MASTER.lock().await;
    let proxy = Proxy::start(&master()).await;
    // SUBSCRIBED (announcing 0.5 s heartbeats) and the first HEARTBEAT pass; then nothing.
    proxy.stall_next_stream(2);
    let mut inbox = Inbox::new(session(proxy.addr(), lasting("exelixi-stall"), ContentType::Json));
    let started = std::time::Instant::now();
    let first = subscribed(&mut inbox).await;
    assert_eq!(first.heartbeat_interval_seconds, Some(support::proxy::STALLED_HEARTBEAT_SECONDS));
    let again = subscribed(&mut inbox).await;
    // 5 missed intervals of 0.5 s: lost after 2.5 s, not the 75 s of the real interval.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(2500) && took < Duration::from_secs(45), "{took:?}");
    assert_eq!(again.framework_id, first.framework_id);
    assert_eq!(again.heartbeat_interval_seconds, Some(15.0), "the second stream is the master's own");
    assert_eq!(inbox.session.reconnections(), 1);
    let loss = inbox.session.last_loss().unwrap_or_default().to_string();
    assert!(loss.contains("no event from the Mesos master for 2.5s"), "{loss}");
    // The new subscription works.
    assert!(inbox.next_of(event::Type::Offers, Duration::from_secs(30)).await.is_some());
    inbox.session.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_307_leads_subscribe_to_the_leader_and_a_redirected_call_resubscribes_there() {
    let _serial = MASTER.lock().await;
    let master = master();
    let proxy = Proxy::start(&master).await;

    // SUBSCRIBE answered 307 with `Location: //master/api/v1/scheduler`: followed.
    proxy.redirect_next();
    let mut inbox = Inbox::new(session(proxy.addr(), lasting("exelixi-redirect"), ContentType::Protobuf));
    let first = subscribed(&mut inbox).await;
    assert_eq!(proxy.redirects(), 1);
    assert_eq!(proxy.subscribes(), 0, "the stream comes from the leader itself");
    assert_eq!(inbox.session.master(), master);
    inbox.session.teardown().await.unwrap();
    assert!(inbox.ends_within(Duration::from_secs(30)).await);

    // A call of a subscription answered 307: the leader changed, so the session re-subscribes there.
    let mut inbox = Inbox::new(session(proxy.addr(), lasting("exelixi-redirect-call"), ContentType::Json));
    let first_id = subscribed(&mut inbox).await.framework_id;
    assert_ne!(first_id, first.framework_id);
    assert_eq!(inbox.session.master(), proxy.addr());
    proxy.redirect_next();
    let err = inbox.session.revive().await.unwrap_err();
    assert!(matches!(&err, SchedulerError::Redirected { call: "REVIVE", leader } if *leader == master), "{err:?}");
    let again = subscribed(&mut inbox).await;
    assert_eq!(again.framework_id, first_id);
    assert_eq!(inbox.session.master(), master);
    assert_eq!(inbox.session.reconnections(), 1);
    inbox.session.revive().await.unwrap();
    inbox.session.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_master_restart_the_session_resubscribes_with_its_framework_id() {
    let _serial = MASTER.lock().await;
    let master = master();
    let port = master.rsplit_once(':').map(|(_, p)| p.to_string()).unwrap();
    let info = FrameworkInfo { failover_timeout: Some(300.0), ..framework("exelixi-failover") };
    let mut inbox = Inbox::new(session(&master, info, ContentType::Protobuf));
    let first = subscribed(&mut inbox).await;

    let restart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/mesos-local/restart");
    let status = tokio::process::Command::new(restart).args(["--port", &port]).status().await.unwrap();
    assert!(status.success(), "tools/mesos-local/restart failed");

    // The old stream ends with the old master; the session retries (transport errors, then
    // 503 while the new master recovers) and gets its id back.
    let again = subscribed(&mut inbox).await;
    assert_eq!(again.framework_id, first.framework_id);
    assert_eq!(inbox.session.reconnections(), 1);
    assert!(inbox.next_of(event::Type::Offers, Duration::from_secs(30)).await.is_some(), "offers after failover");
    inbox.session.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_that_loses_its_agent_stream_resubscribes_when_the_framework_checkpoints() {
    let _serial = MASTER.lock().await;
    // The executor reaches its real agent through the proxy; the scheduler talks to the master.
    let agent_proxy = Proxy::start(&master()).await;
    let info = FrameworkInfo { checkpoint: Some(true), ..lasting("exelixi-executor-resubscribe") };
    let mut inbox = Inbox::new(session(&master(), info, ContentType::Protobuf));
    let executor_id = ExecutorId { value: "exelixi-resubscribing-executor".into() };
    let via = Some(agent_proxy.addr());
    let (offer, _) = inbox.launch_running("task-r", &executor_id, ContentType::Protobuf, via).await;
    assert_eq!(agent_proxy.subscribes(), 1, "the executor subscribed through the proxy");

    agent_proxy.drop_streams();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while agent_proxy.subscribes() < 2 {
        assert!(std::time::Instant::now() < deadline, "the executor did not re-subscribe");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The agent delivers the scheduler's MESSAGE on the new stream.
    inbox.session.message(offer.agent_id.clone(), executor_id.clone(), b"again".to_vec()).await.unwrap();
    let finished = inbox.next_update().await;
    assert_eq!(finished.state, TaskState::TaskFinished as i32, "{finished:?}");
    assert_eq!(finished.data.as_deref(), Some(&b"got:again"[..]));
    inbox.session.teardown().await.unwrap();
    assert!(none_left(&executor_id, Duration::from_secs(30)).await, "the executor outlived TEARDOWN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_masters_errors_come_typed_mid_stream_and_a_removed_framework_registers_anew() {
    let _serial = MASTER.lock().await;
    let master = master();
    // Mid-stream: another SUBSCRIBE with our framework id makes the master send ERROR
    // "Framework failed over" on our stream.
    let mut inbox = Inbox::new(session(&master, lasting("exelixi-error"), ContentType::Json));
    let id = subscribed(&mut inbox).await.framework_id;
    let mut usurper = mesos_client::scheduler::SchedulerClient::new(&master).unwrap();
    let taken = usurper.subscribe(FrameworkInfo { id: Some(id.clone()), ..lasting("exelixi-error") }).await.unwrap();
    assert_eq!(taken.framework_id(), &id);
    let err = next_error(&mut inbox).await;
    assert!(matches!(&err, SchedulerError::MasterError(m) if m.contains("failed over")), "{err:?}");
    assert!(!inbox.session.is_subscribed());
    usurper.teardown().await.unwrap();
    drop(taken);

    // Torn down, the id is gone for good: re-subscribing with it is refused with an ERROR
    // that says so, and after forgetting it the session registers a new framework.
    let err = next_error(&mut inbox).await;
    assert!(err.framework_removed(), "{err:?}");
    inbox.session.forget_framework_id();
    let fresh = subscribed(&mut inbox).await.framework_id;
    assert_ne!(fresh, id);
    inbox.session.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppression_survives_a_resubscription() {
    let _serial = MASTER.lock().await;
    let proxy = Proxy::start(&master()).await;
    let mut inbox = Inbox::new(session(proxy.addr(), lasting("exelixi-suppressed"), ContentType::Protobuf));
    subscribed(&mut inbox).await;
    let e = inbox.next_of(event::Type::Offers, Duration::from_secs(30)).await.expect("OFFERS");
    let ids = e.offers.unwrap().offers.into_iter().map(|o| o.id).collect();
    inbox.session.suppress().await.unwrap();
    inbox.session.decline(ids, 0.0).await.unwrap();
    inbox.drop_skipped(event::Type::Offers);

    // A new SUBSCRIBE replaces the suppressed roles: the session sends them again, so the
    // resources declined without a filter do not come back.
    proxy.drop_streams();
    subscribed(&mut inbox).await;
    assert_eq!(inbox.session.reconnections(), 1);
    assert!(inbox.next_of(event::Type::Offers, Duration::from_secs(3)).await.is_none(), "offers while suppressed");
    inbox.session.revive().await.unwrap();
    assert!(inbox.next_of(event::Type::Offers, Duration::from_secs(30)).await.is_some());
    inbox.session.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_reconciliation_answer_is_asked_for_again() {
    let _serial = MASTER.lock().await;
    let proxy = Proxy::start(&master()).await;
    let mut inbox = Inbox::new(session(proxy.addr(), lasting("exelixi-reconcile-again"), ContentType::Json));
    subscribed(&mut inbox).await;
    let executor_id = ExecutorId { value: "exelixi-reconcile-executor".into() };
    inbox.launch_running("task-a", &executor_id, ContentType::Json, None).await;

    // The master answers the session's RECONCILE once; that answer never arrives.
    proxy.swallow_reconciliation_answers(1);
    proxy.drop_streams();
    subscribed(&mut inbox).await;
    let answer = inbox.next_of(event::Type::Update, Duration::from_secs(30)).await.expect("an answer, asked again");
    let answer = answer.update.unwrap().status;
    assert_eq!(
        (answer.task_id.value.as_str(), answer.reason),
        ("task-a", Some(task_status::Reason::Reconciliation as i32))
    );
    assert_eq!(proxy.swallowed(), 1, "the first answer was dropped: this one answers a second RECONCILE");
    inbox.session.teardown().await.unwrap();
    assert!(none_left(&executor_id, Duration::from_secs(30)).await, "the executor outlived TEARDOWN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_master_is_noticed_inside_a_select_with_a_busier_branch() {
    let _serial = MASTER.lock().await;
    let proxy = Proxy::start(&master()).await;
    proxy.stall_next_stream(2);
    let mut session = session(proxy.addr(), lasting("exelixi-select"), ContentType::Json);
    let started = std::time::Instant::now();
    // A framework's event loop: a 50 ms tick (a busier branch) wins every race against
    // the silent stream, dropping `next_event`'s future each time, and the first race
    // against the SUBSCRIBE too.
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut subscriptions = 0;
    let mut ticks = 0u32;
    while subscriptions < 2 && started.elapsed() < Duration::from_secs(40) {
        tokio::select! {
            _ = tick.tick() => ticks += 1,
            e = session.next_event() => {
                if let Some(Ok(e)) = e {
                    subscriptions += u32::from(e.r#type == Some(event::Type::Subscribed as i32));
                }
            }
        }
    }
    let took = started.elapsed();
    assert_eq!(subscriptions, 2, "the silence was never noticed in {took:?} ({ticks} ticks)");
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(ticks > 20, "the busier branch ran ({ticks} ticks)");
    // The tick is ready at once, while the first SUBSCRIBE is in flight: the attempt goes
    // on in the next call instead of being abandoned and made again (an abandoned one
    // would have taken the stalled stream, and registered a framework nobody reads).
    assert_eq!(proxy.subscribes(), 2, "one SUBSCRIBE per subscription");
    assert!(session.last_loss().unwrap_or_default().contains("no event from the Mesos master"));
    session.teardown().await.unwrap();
}
