//! The scheduler client against a real Mesos 1.11 master (tools/mesos-local), found through
//! MESOS_MASTER. Without it these tests fail, saying how to start one: they never pass
//! silently.

use std::collections::HashSet;
use std::time::Duration;

use mesos_client::scheduler::{EventStream, SchedulerClient, SchedulerError};
use mesos_client::v1::scheduler::{Event, event};
use mesos_client::v1::{FrameworkInfo, OfferId};

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

async fn next_of(events: &mut EventStream, kind: event::Type, within: Duration) -> Option<Event> {
    tokio::time::timeout(within, async {
        loop {
            match events.next().await {
                Some(Ok(e)) if e.r#type == Some(kind as i32) => return Some(e),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("stream error: {e}"),
                None => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_get_offers_from_every_agent_decline_revive_and_teardown() {
    let mut client = SchedulerClient::new(&master()).unwrap();
    let mut sub = client.subscribe(framework("exelixi-conformance")).await.unwrap();
    assert!(!sub.framework_id.value.is_empty());
    assert_eq!(sub.heartbeat_interval_seconds, Some(15.0));
    assert!(client.stream_id().is_some_and(|s| !s.is_empty()));
    // Right after SUBSCRIBED the master sends a HEARTBEAT.
    assert!(next_of(&mut sub.events, event::Type::Heartbeat, Duration::from_secs(5)).await.is_some());

    // Offers from all three agents (one event may carry several).
    let mut agents = HashSet::new();
    let mut offers: Vec<OfferId> = Vec::new();
    while agents.len() < 3 {
        let e =
            next_of(&mut sub.events, event::Type::Offers, Duration::from_secs(10)).await.expect("OFFERS within 10 s");
        for o in e.offers.unwrap().offers {
            assert!(o.resources.iter().any(|r| r.name == "cpus"));
            agents.insert(o.agent_id.value.clone());
            offers.push(o.id);
        }
    }
    // Declined for an hour, they do not come back; REVIVE brings them back.
    client.decline(offers, 3600.0).await.unwrap();
    assert!(next_of(&mut sub.events, event::Type::Offers, Duration::from_secs(3)).await.is_none());
    client.revive().await.unwrap();
    assert!(next_of(&mut sub.events, event::Type::Offers, Duration::from_secs(10)).await.is_some());

    client.teardown().await.unwrap();
    // The master closes the stream of a torn-down framework.
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = sub.events.next().await {
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
