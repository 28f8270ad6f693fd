//! HTTP basic authentication against a real master started with `--auth` (tools/test sets
//! MESOS_AUTH_MASTER, MESOS_AUTH_PRINCIPAL and MESOS_AUTH_SECRET). Without it the test fails,
//! saying how to start one.

use std::time::{Duration, Instant};

use mesos_client::scheduler::{Calls, Credential, Events, SchedulerClient, SchedulerError, Session, SessionConfig};
use mesos_client::v1::FrameworkInfo;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set. This test needs a real Mesos master with authentication: run it through \
             `tools/test`, or start one with `tools/mesos-local/up --auth --port 5252` and export \
             MESOS_AUTH_MASTER, MESOS_AUTH_PRINCIPAL and MESOS_AUTH_SECRET from its output"
        )
    })
}

fn framework(principal: &str) -> FrameworkInfo {
    FrameworkInfo {
        user: "root".into(),
        name: "exelixi-auth".into(),
        principal: Some(principal.into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_secret_subscribes_and_a_wrong_one_is_refused_by_name_without_retrying() {
    let (master, principal, secret) = (var("MESOS_AUTH_MASTER"), var("MESOS_AUTH_PRINCIPAL"), var("MESOS_AUTH_SECRET"));

    let good = Credential { principal: principal.clone(), secret };
    let mut client = SchedulerClient::new(&master).unwrap().with_credential(Some(good));
    let sub = client.subscribe(framework(&principal)).await.unwrap();
    assert!(!sub.framework_id().value.is_empty());
    client.teardown().await.unwrap();

    // A session, which re-subscribes after transient failures, does not retry a refusal.
    let wrong = Credential { principal: principal.clone(), secret: "not-the-secret".into() };
    let mut config = SessionConfig::new(&master, framework(&principal));
    config.credential = Some(wrong);
    let mut session = Session::new(config).unwrap();
    let started = Instant::now();
    let err = session.next_event().await.expect("an answer").expect_err("refused");
    // A retry loop would go on for the 60 s a first subscription is given; one refused
    // request takes milliseconds. The ceiling leaves room for a loaded machine.
    assert!(started.elapsed() < Duration::from_secs(30), "no retry loop: {:?}", started.elapsed());
    assert!(matches!(&err, SchedulerError::Unauthorized { principal: Some(p) } if *p == principal), "{err:?}");
    assert!(err.to_string().contains(&format!("{principal:?}")), "the error names the principal: {err}");

    let mut anonymous = SchedulerClient::new(&master).unwrap();
    let err = anonymous.subscribe(framework(&principal)).await.err().expect("refused");
    assert!(matches!(err, SchedulerError::Unauthorized { principal: None }), "{err:?}");
}
