//! The framework against arbitrary event sequences, as a master (or a confused one) could
//! send them: it never panics, never places two executors on one agent or more than asked,
//! and acknowledges every update.

use mesos_client::scheduler::{Calls, SchedulerError};
use mesos_client::v1::scheduler::{Call, Event, event};
use mesos_client::v1::{AgentId, ExecutorId, FrameworkId, Offer, OfferId, Resource, TaskId, TaskStatus, value};
use proptest::prelude::*;
use scheduler::{Config, Framework};

#[derive(Default)]
struct Recorded(Vec<(&'static str, Call)>);

impl Calls for Recorded {
    async fn call(&mut self, name: &'static str, call: Call) -> Result<(), SchedulerError> {
        self.0.push((name, call));
        Ok(())
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

/// What one step of the master may say.
#[derive(Clone, Debug)]
enum Step {
    Offer {
        agent: u8,
        cpus: f64,
        mem: f64,
        begin: u64,
        end: u64,
    },
    /// An update of the `task`-th task launched so far (or of a stranger's task).
    Update {
        task: usize,
        state: i32,
        data: Option<Vec<u8>>,
        uuid: bool,
    },
    Failure {
        agent: Option<u8>,
        executor: Option<usize>,
        status: Option<i32>,
    },
    Rescind,
    StartRun,
    /// The run asks for a replacement of a shard's worker (any shard, any time).
    Replace(u32),
    /// The run takes a replacement's endpoint, if one serves.
    Replaced,
    Finish,
}

/// Port bounds, the edges included.
fn port() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(1), Just(u64::MAX - 1), Just(u64::MAX), 31_000..32_000u64, any::<u64>()]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..5, prop_oneof![Just(f64::NAN), -1.0..8.0f64], -10.0..4096.0f64, port(), port())
            .prop_map(|(agent, cpus, mem, begin, end)| Step::Offer { agent, cpus, mem, begin, end }),
        (0usize..12, -2i32..16, proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)), any::<bool>())
            .prop_map(|(task, state, data, uuid)| Step::Update { task, state, data, uuid }),
        (proptest::option::of(0u8..5), proptest::option::of(0usize..6), proptest::option::of(any::<i32>()))
            .prop_map(|(agent, executor, status)| Step::Failure { agent, executor, status }),
        Just(Step::Rescind),
        Just(Step::StartRun),
        (0u32..5).prop_map(Step::Replace),
        Just(Step::Replaced),
        Just(Step::Finish),
    ]
}

fn launched(calls: &Recorded) -> Vec<(String, String, String)> {
    calls
        .0
        .iter()
        .filter_map(|(_, c)| c.accept.as_ref())
        .flat_map(|a| &a.operations)
        .filter_map(|o| o.launch.as_ref())
        .flat_map(|l| &l.task_infos)
        .map(|t| {
            let executor = t.executor.as_ref().map(|e| e.executor_id.value.clone()).unwrap_or_default();
            (t.task_id.value.clone(), t.agent_id.value.clone(), executor)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_event_sequence_is_handled_without_panic_within_the_rules(
        workers in 1u32..4,
        steps in proptest::collection::vec(step(), 0..60),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let config = Config {
                workers,
                cpus: 1.0,
                mem: 256.0,
                ports: 4,
                executor: "/opt/exelixi".into(),
                executor_args: vec!["executor".into()],
                refuse_seconds: 5.0,
                run_id: "p".into(),
            };
            let mut f = Framework::new(config, "0123456789abcdef0123".into());
            let mut calls = Recorded::default();
            let mut updates_with_uuid = 0;
            for (i, s) in steps.into_iter().enumerate() {
                let e = match s {
                    Step::Offer { agent, cpus, mem, begin, end } => {
                        let ports = Resource {
                            name: "ports".into(),
                            r#type: value::Type::Ranges as i32,
                            ranges: Some(value::Ranges { range: vec![value::Range { begin, end }] }),
                            ..Default::default()
                        };
                        let offer = Offer {
                            id: OfferId { value: format!("o{i}") },
                            framework_id: FrameworkId { value: "f".into() },
                            agent_id: AgentId { value: format!("a{agent}") },
                            hostname: format!("h{agent}"),
                            resources: vec![scalar("cpus", cpus), scalar("mem", mem), ports],
                            ..Default::default()
                        };
                        Event { r#type: Some(event::Type::Offers as i32), offers: Some(event::Offers { offers: vec![offer] }), ..Default::default() }
                    }
                    Step::Update { task, state, data, uuid } => {
                        let tasks = launched(&calls);
                        let (task_id, agent) = tasks.get(task).map_or(("stranger".to_string(), "a0".to_string()), |t| (t.0.clone(), t.1.clone()));
                        updates_with_uuid += usize::from(uuid);
                        let status = TaskStatus {
                            task_id: TaskId { value: task_id },
                            agent_id: Some(AgentId { value: agent }),
                            state,
                            data,
                            uuid: uuid.then(|| vec![7; 16]),
                            ..Default::default()
                        };
                        Event { r#type: Some(event::Type::Update as i32), update: Some(event::Update { status }), ..Default::default() }
                    }
                    Step::Failure { agent, executor, status } => {
                        let tasks = launched(&calls);
                        let failure = event::Failure {
                            agent_id: agent.map(|a| AgentId { value: format!("a{a}") }),
                            executor_id: executor.map(|e| ExecutorId { value: tasks.get(e).map_or_else(|| "nobody".into(), |t| t.2.clone()) }),
                            status,
                        };
                        Event { r#type: Some(event::Type::Failure as i32), failure: Some(failure), ..Default::default() }
                    }
                    Step::Rescind => Event {
                        r#type: Some(event::Type::Rescind as i32),
                        rescind: Some(event::Rescind { offer_id: OfferId { value: format!("o{}", i / 2) } }),
                        ..Default::default()
                    },
                    Step::StartRun => {
                        let _ = f.start_run_if_placed();
                        continue;
                    }
                    Step::Replace(shard) => {
                        f.replace(&mut calls, shard).await.unwrap();
                        continue;
                    }
                    Step::Replaced => {
                        if let Some((shard, endpoint)) = f.replaced() {
                            prop_assert!(shard < workers);
                            prop_assert!(endpoint.starts_with("http://"));
                            prop_assert_eq!(f.phase(), scheduler::Phase::Running);
                        }
                        continue;
                    }
                    Step::Finish => {
                        f.finish();
                        continue;
                    }
                };
                f.handle(&mut calls, e).await.unwrap();
                // The rules, after every step.
                let mut agents: Vec<&str> = f.slots().map(|s| s.agent_id.as_str()).collect();
                let placed = agents.len();
                agents.sort_unstable();
                agents.dedup();
                prop_assert_eq!(agents.len(), placed, "two executors on one agent");
                prop_assert!(placed <= workers as usize);
                let _ = f.take_loss();
            }
            let acks = calls.0.iter().filter(|(n, _)| *n == "ACKNOWLEDGE").count();
            prop_assert_eq!(acks, updates_with_uuid, "every update with a uuid is acknowledged once");
            // Nothing the framework sent carries the token outside the MESSAGE.
            for (name, call) in &calls.0 {
                if *name != "MESSAGE" {
                    prop_assert!(!format!("{call:?}").contains("0123456789abcdef0123"), "{}", name);
                }
            }
            Ok(())
        })?;
    }
}
