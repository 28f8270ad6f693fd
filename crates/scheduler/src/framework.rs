//! [`Framework`]: the scheduler's logic as a state machine over `mesos-client`'s [`Calls`]
//! — events in, calls out — so that it is tested without a network against an in-memory
//! [`Calls`] (see the tests below) and run against the real master by [`crate::MesosWorkers`].

use std::path::PathBuf;

use executor::protocol;
use mesos_client::scheduler::{Calls, SchedulerError, is_terminal};
use mesos_client::v1::scheduler::{Event, event};
use mesos_client::v1::{
    AgentId, CommandInfo, ExecutorId, ExecutorInfo, Offer, Resource, TaskId, TaskInfo, TaskState, TaskStatus,
    executor_info, offer, value,
};
use uow::Loss;

/// Resources of the executor itself, beside its tasks.
pub const EXECUTOR_CPUS: f64 = 0.1;
/// Memory of the executor itself, MB.
pub const EXECUTOR_MEM: f64 = 32.0;
/// Resources of the discovery task (Mesos refuses a task without any).
pub const DISCOVERY_CPUS: f64 = 0.01;
/// Memory of the discovery task, MB.
pub const DISCOVERY_MEM: f64 = 1.0;

/// What the framework places.
#[derive(Clone, Debug)]
pub struct Config {
    /// Workers to place, one per agent.
    pub workers: u32,
    /// CPUs of each worker task.
    pub cpus: f64,
    /// Memory of each worker task, MB.
    pub mem: f64,
    /// Ports each worker task takes from the offer (the worker listens on the first free one).
    pub ports: u32,
    /// The executable the agents run (absolute: the agents have no fetcher here).
    pub executor: PathBuf,
    /// Its arguments (e.g. `["executor"]`).
    pub executor_args: Vec<String>,
    /// How long a declined offer's resources are refused, seconds.
    pub refuse_seconds: f64,
    /// A name for the run's ids (random, never derived from the token).
    pub run_id: String,
}

/// Where a placed executor stands.
#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    /// Its shard.
    pub shard: u32,
    /// The agent.
    pub agent_id: String,
    /// The agent's hostname.
    pub hostname: String,
    /// The executor.
    pub executor_id: String,
    /// Its discovery task.
    pub discovery_task: String,
    /// Its worker task.
    pub worker_task: String,
    /// The worker's endpoint, once its task is RUNNING.
    pub endpoint: Option<String>,
    /// The discovery task's telemetry (JSON), once it finished.
    pub telemetry: Option<String>,
    /// The worker task's last state, as Mesos names it, with its message.
    pub last_status: String,
    /// Lost during the run.
    pub lost: bool,
}

impl Slot {
    /// The slot described for the user.
    pub fn describe(&self) -> String {
        let endpoint = self.endpoint.as_deref().unwrap_or("no endpoint yet");
        format!(
            "executor {} on agent {} ({}), {endpoint}, {}",
            self.executor_id, self.agent_id, self.hostname, self.last_status
        )
    }
}

/// Where the run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Placing workers: a lost one is replaced from a new offer.
    Placing,
    /// Every worker serves and the run uses them: a lost one ends the run.
    Running,
    /// The run is over: losses are expected.
    Finishing,
}

/// The framework's books and decisions.
pub struct Framework {
    config: Config,
    token: String,
    /// One per shard; `None` while it is being (re)placed.
    slots: Vec<Option<Slot>>,
    attempts: u32,
    phase: Phase,
    suppressed: bool,
    loss: Option<Loss>,
    last_failure: Option<String>,
    /// Declined offers (for the logs and the tests).
    pub declined: u64,
}

fn scalar(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    }
}

fn state_name(state: i32) -> String {
    TaskState::try_from(state).map_or_else(|_| format!("state {state}"), |s| s.as_str_name().to_string())
}

/// Unreserved scalar `name` of an offer.
fn offered(offer: &Offer, name: &str) -> f64 {
    offer.resources.iter().filter(|r| r.name == name).filter_map(|r| r.scalar.as_ref()).map(|s| s.value).sum()
}

/// The first `n` ports of an offer's `ports` ranges, as ranges.
fn take_ports(offer: &Offer, n: u32) -> Option<Vec<value::Range>> {
    let mut left = u64::from(n);
    let mut taken = Vec::new();
    for r in offer.resources.iter().filter(|r| r.name == "ports").filter_map(|r| r.ranges.as_ref()).flat_map(|r| &r.range)
    {
        if left == 0 {
            break;
        }
        if r.end < r.begin {
            continue;
        }
        let count = (r.end - r.begin + 1).min(left);
        taken.push(value::Range { begin: r.begin, end: r.begin + count - 1 });
        left -= count;
    }
    (left == 0).then_some(taken)
}

impl Framework {
    /// A framework that places `config.workers` workers for a run whose token is `token`.
    pub fn new(config: Config, token: String) -> Self {
        let slots = vec![None; config.workers as usize];
        Self {
            config,
            token,
            slots,
            attempts: 0,
            phase: Phase::Placing,
            suppressed: false,
            loss: None,
            last_failure: None,
            declined: 0,
        }
    }

    /// How many workers it places.
    pub fn workers(&self) -> u32 {
        self.config.workers
    }

    /// Where the run stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The placed executors, by shard.
    pub fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().flatten()
    }

    /// The worker of `shard` described for the user.
    pub fn describe(&self, shard: u32) -> String {
        match self.slots.get(shard as usize) {
            Some(Some(slot)) => slot.describe(),
            _ => format!("no executor placed for shard {shard}"),
        }
    }

    /// Why the last offer or executor did not work out, if one did not.
    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    /// The endpoints in shard order once every worker serves; the run starts with them
    /// (from then on, a lost worker ends the run instead of being replaced).
    pub fn start_run_if_placed(&mut self) -> Option<Vec<String>> {
        if self.phase != Phase::Placing {
            return None;
        }
        let endpoints: Option<Vec<String>> = self.slots.iter().map(|s| s.as_ref()?.endpoint.clone()).collect();
        if endpoints.is_some() {
            self.phase = Phase::Running;
        }
        endpoints
    }

    /// The first worker lost during the run, once.
    pub fn take_loss(&mut self) -> Option<Loss> {
        self.loss.take()
    }

    /// The run is over: what is lost from now on is expected.
    pub fn finish(&mut self) {
        self.phase = Phase::Finishing;
    }

    /// Handles one event from the master.
    pub async fn handle<C: Calls>(&mut self, calls: &mut C, e: Event) -> Result<(), SchedulerError> {
        if e.subscribed.is_some() {
            // Offers are forgotten by the master at every (re)subscription; so are the
            // filters, but a Session re-sends its suppression.
            return Ok(());
        }
        if let Some(offers) = e.offers {
            self.on_offers(calls, offers.offers).await?;
        }
        if let Some(update) = e.update {
            self.on_update(calls, update.status).await?;
        }
        if let Some(failure) = e.failure {
            self.on_failure(calls, failure).await?;
        }
        // RESCIND: an offer is only ever used at once or declined, so nothing is cached to
        // drop; tasks launched on a rescinded offer come back TASK_DROPPED or LOST.
        Ok(())
    }

    /// Re-sends the token to every executor whose worker does not serve yet (a MESSAGE to
    /// an executor that has not subscribed is dropped by its agent). Call it every second.
    pub async fn tick<C: Calls>(&mut self, calls: &mut C) -> Result<(), SchedulerError> {
        if self.phase != Phase::Placing {
            return Ok(());
        }
        let waiting: Vec<(String, String)> = self
            .slots()
            .filter(|s| s.endpoint.is_none())
            .map(|s| (s.agent_id.clone(), s.executor_id.clone()))
            .collect();
        for (agent, executor) in waiting {
            let data = protocol::token_message(&self.token);
            calls.message(AgentId { value: agent }, ExecutorId { value: executor }, data).await?;
        }
        Ok(())
    }

    async fn on_offers<C: Calls>(&mut self, calls: &mut C, offers: Vec<Offer>) -> Result<(), SchedulerError> {
        let mut decline = Vec::new();
        for offer in offers {
            match self.launch_on(&offer) {
                Ok(operation) => calls.accept(vec![offer.id.clone()], vec![operation]).await?,
                Err(why) => {
                    if let Some(why) = why {
                        self.last_failure = Some(format!("offer of agent {} ({}) declined: {why}", offer.agent_id.value, offer.hostname));
                    }
                    decline.push(offer.id);
                }
            }
        }
        if !decline.is_empty() {
            self.declined += decline.len() as u64;
            calls.decline(decline, self.config.refuse_seconds).await?;
        }
        if self.phase != Phase::Placing || self.slots.iter().all(Option::is_some) {
            if !self.suppressed {
                calls.suppress().await?;
                self.suppressed = true;
            }
        }
        Ok(())
    }

    /// The LAUNCH of an executor with its two tasks on `offer`, or why not (`None`: not
    /// wanted, nothing wrong with the offer).
    fn launch_on(&mut self, offer: &Offer) -> Result<offer::Operation, Option<String>> {
        if self.phase != Phase::Placing {
            return Err(None);
        }
        let Some(shard) = self.slots.iter().position(Option::is_none) else { return Err(None) };
        if self.slots().any(|s| s.agent_id == offer.agent_id.value) {
            return Err(None); // at most one executor per agent
        }
        let c = &self.config;
        let (cpus, mem) = (c.cpus + EXECUTOR_CPUS + DISCOVERY_CPUS, c.mem + EXECUTOR_MEM + DISCOVERY_MEM);
        let (have_cpus, have_mem) = (offered(offer, "cpus"), offered(offer, "mem"));
        if have_cpus + 1e-9 < cpus || have_mem + 1e-9 < mem {
            return Err(Some(format!(
                "{have_cpus} cpus and {have_mem} MB offered, {cpus:.2} cpus and {mem} MB needed (--cpu, --mem, and the executor's own)"
            )));
        }
        let ports = take_ports(offer, c.ports)
            .ok_or_else(|| Some(format!("fewer than the {} ports a worker task takes", c.ports)))?;
        self.attempts += 1;
        let base = format!("exelixi-{}-{shard}-{}", c.run_id, self.attempts);
        let executor_id = ExecutorId { value: format!("{base}-executor") };
        let executor = ExecutorInfo {
            r#type: Some(executor_info::Type::Custom as i32),
            executor_id: executor_id.clone(),
            name: Some(format!("Exelixi executor, shard {shard}")),
            command: Some(CommandInfo {
                shell: Some(false),
                value: Some(c.executor.display().to_string()),
                arguments: std::iter::once(c.executor.display().to_string()).chain(c.executor_args.clone()).collect(),
                ..Default::default()
            }),
            resources: vec![scalar("cpus", EXECUTOR_CPUS), scalar("mem", EXECUTOR_MEM)],
            ..Default::default()
        };
        let task = |kind: &str, data: &[u8], resources: Vec<Resource>| TaskInfo {
            name: format!("Exelixi {kind}, shard {shard}"),
            task_id: TaskId { value: format!("{base}-{kind}") },
            agent_id: offer.agent_id.clone(),
            resources,
            executor: Some(executor.clone()),
            data: Some(data.to_vec()),
            ..Default::default()
        };
        let ports_resource = Resource {
            name: "ports".into(),
            r#type: value::Type::Ranges as i32,
            ranges: Some(value::Ranges { range: ports }),
            ..Default::default()
        };
        let discovery = task("discovery", protocol::DISCOVERY_TASK, vec![
            scalar("cpus", DISCOVERY_CPUS),
            scalar("mem", DISCOVERY_MEM),
        ]);
        let worker =
            task("worker", protocol::WORKER_TASK, vec![scalar("cpus", c.cpus), scalar("mem", c.mem), ports_resource]);
        self.slots[shard] = Some(Slot {
            shard: shard as u32,
            agent_id: offer.agent_id.value.clone(),
            hostname: offer.hostname.clone(),
            executor_id: executor_id.value,
            discovery_task: discovery.task_id.value.clone(),
            worker_task: worker.task_id.value.clone(),
            endpoint: None,
            telemetry: None,
            last_status: "launched".into(),
            lost: false,
        });
        Ok(offer::Operation {
            r#type: Some(offer::operation::Type::Launch as i32),
            launch: Some(offer::operation::Launch { task_infos: vec![discovery, worker] }),
        })
    }

    async fn on_update<C: Calls>(&mut self, calls: &mut C, status: TaskStatus) -> Result<(), SchedulerError> {
        // Every update is acknowledged, ours or not, known or stale: the agent holds the
        // task's next update until then.
        calls.acknowledge(&status).await?;
        let task = status.task_id.value.as_str();
        let Some(slot) = self.slots.iter_mut().flatten().find(|s| s.discovery_task == task || s.worker_task == task)
        else {
            return Ok(()); // a replaced slot's late or duplicate update
        };
        let shard = slot.shard;
        if slot.discovery_task == task {
            if status.state == TaskState::TaskFinished as i32 {
                slot.telemetry = status.data.as_deref().and_then(|d| std::str::from_utf8(d).ok()).map(str::to_string);
            }
            return Ok(());
        }
        let mut described = state_name(status.state);
        if let Some(m) = status.message.as_deref().filter(|m| !m.is_empty()) {
            described = format!("{described}: {m}");
        }
        slot.last_status.clone_from(&described);
        if status.state == TaskState::TaskRunning as i32 {
            let endpoint = status.data.as_deref().and_then(|d| std::str::from_utf8(d).ok());
            match endpoint.filter(|e| e.starts_with("http://") && e.len() < 300) {
                Some(e) => slot.endpoint = Some(e.to_string()),
                // A reconciliation answer carries no data: keep what the executor said.
                None if slot.endpoint.is_some() => {}
                None => {
                    let why = "its worker task is RUNNING without an endpoint".to_string();
                    return self.lose(calls, shard, why).await;
                }
            }
            return Ok(());
        }
        if is_terminal(status.state) || status.state == TaskState::TaskUnreachable as i32 {
            let why = format!("worker task {task} is {described}");
            return self.lose(calls, shard, why).await;
        }
        Ok(())
    }

    async fn on_failure<C: Calls>(&mut self, calls: &mut C, f: event::Failure) -> Result<(), SchedulerError> {
        let hit: Vec<(u32, String)> = self
            .slots()
            .filter(|s| match (&f.executor_id, &f.agent_id) {
                (Some(e), _) => e.value == s.executor_id,
                (None, Some(a)) => a.value == s.agent_id,
                (None, None) => false,
            })
            .map(|s| {
                let why = match (&f.executor_id, f.status) {
                    (Some(e), Some(code)) => format!("executor {} exited with status {code}", e.value),
                    (Some(e), None) => format!("executor {} exited", e.value),
                    (None, _) => format!("agent {} was lost", s.agent_id),
                };
                (s.shard, why)
            })
            .collect();
        for (shard, why) in hit {
            self.lose(calls, shard, why).await?;
        }
        Ok(())
    }

    /// A worker is gone: replaced while placing, the run's end while running.
    async fn lose<C: Calls>(&mut self, calls: &mut C, shard: u32, why: String) -> Result<(), SchedulerError> {
        let Some(slot) = self.slots.get_mut(shard as usize).and_then(Option::as_mut) else { return Ok(()) };
        match self.phase {
            Phase::Finishing => Ok(()),
            Phase::Running => {
                if !slot.lost {
                    slot.lost = true;
                    slot.last_status.clone_from(&why);
                    self.loss.get_or_insert(Loss { shard, reason: why });
                }
                Ok(())
            }
            Phase::Placing => {
                let slot = self.slots[shard as usize].take().expect("checked above");
                self.last_failure = Some(format!("shard {shard}: {why} ({})", slot.describe()));
                // Whatever is left of it goes; then offers again, filters cleared.
                let _ = calls
                    .shutdown(ExecutorId { value: slot.executor_id }, AgentId { value: slot.agent_id })
                    .await;
                calls.revive().await?;
                self.suppressed = false;
                Ok(())
            }
        }
    }
}
