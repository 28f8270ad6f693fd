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
    /// Its worker task reached a terminal state.
    pub ended: bool,
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
    /// Every worker serves and the run uses them: a lost one is reported (a loss).
    Running,
    /// The run replaces the lost worker of this shard: it is placed again from a new
    /// offer (and again if the new one is lost too); a loss of another is reported.
    Replacing(u32),
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
    /// Declined offers (for the logs, the status page and the tests).
    pub declined: u64,
    /// Accepted offers (each launched one executor).
    pub accepted: u64,
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

/// `n` ports of an offer's `ports` ranges, as ranges: the `n` that follow the first `skip`
/// of them (wrapping round to the first range), or `None` when the offer has fewer than `n`.
///
/// Successive launches pass growing `skip`s so that they take different ports: agents that
/// share one host (the local cluster's, or several agents on one machine) all offer the
/// same range, and workers that all took its first ports failed to bind but one per host.
fn take_ports(offer: &Offer, n: u32, skip: u64) -> Option<Vec<value::Range>> {
    let ranges: Vec<(u64, u64)> = offer
        .resources
        .iter()
        .filter(|r| r.name == "ports")
        .filter_map(|r| r.ranges.as_ref())
        .flat_map(|r| &r.range)
        .filter(|r| r.begin <= r.end)
        .map(|r| (r.begin, r.end))
        .collect();
    // Whatever the master sends: a range as wide as u64 must not overflow.
    let count = |(begin, end): (u64, u64)| (end - begin).saturating_add(1);
    let total = ranges.iter().fold(0u64, |sum, &r| sum.saturating_add(count(r)));
    let mut left = u64::from(n);
    if total < left {
        return None;
    }
    let mut taken = Vec::new();
    let (mut at, mut i) = (skip % total.max(1), 0);
    while left > 0 {
        let range = ranges[i];
        i = (i + 1) % ranges.len();
        if at >= count(range) {
            at -= count(range);
            continue;
        }
        let begin = range.0 + at;
        let take = count((begin, range.1)).min(left);
        taken.push(value::Range { begin, end: begin + (take - 1) });
        (left, at) = (left - take, 0);
    }
    Some(taken)
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
            accepted: 0,
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

    /// Starts replacing the worker of `shard` (lost while running): whatever is left of
    /// its executor is shut down, and offers are revived for a new one. Nothing happens
    /// unless the run is under way.
    pub async fn replace<C: Calls>(&mut self, calls: &mut C, shard: u32) -> Result<(), SchedulerError> {
        if self.phase != Phase::Running || shard >= self.config.workers {
            return Ok(());
        }
        self.phase = Phase::Replacing(shard);
        self.loss = None;
        if let Some(old) = self.slots[shard as usize].take() {
            let _ = calls.shutdown(ExecutorId { value: old.executor_id }, AgentId { value: old.agent_id }).await;
        }
        calls.revive().await?;
        self.suppressed = false;
        Ok(())
    }

    /// The replacement's endpoint once it serves; the run goes on with it.
    pub fn replaced(&mut self) -> Option<(u32, String)> {
        let Phase::Replacing(shard) = self.phase else { return None };
        let endpoint = self.slots[shard as usize].as_ref()?.endpoint.clone()?;
        self.phase = Phase::Running;
        Some((shard, endpoint))
    }

    /// Whether workers are being placed (at the start, or a replacement).
    fn placing(&self) -> bool {
        matches!(self.phase, Phase::Placing | Phase::Replacing(_))
    }

    /// The run is over: what is lost from now on is expected.
    pub fn finish(&mut self) {
        self.phase = Phase::Finishing;
    }

    /// Whether every placed worker task has ended (after a completed run, the workers exit
    /// by themselves and their executors report TASK_FINISHED).
    pub fn all_workers_ended(&self) -> bool {
        self.slots().all(|s| s.ended)
    }

    /// Handles one event from the master.
    pub async fn handle<C: Calls>(&mut self, calls: &mut C, e: Event) -> Result<(), SchedulerError> {
        tracing::debug!(event = e.r#type().as_str_name(), "mesos event");
        if let Some(update) = &e.update {
            let s = &update.status;
            tracing::info!(task = %s.task_id.value, state = %state_name(s.state), message = s.message.as_deref().unwrap_or(""), "task update");
        }
        if let Some(failure) = &e.failure {
            tracing::info!(agent = ?failure.agent_id.as_ref().map(|a| &a.value), executor = ?failure.executor_id.as_ref().map(|x| &x.value), status = ?failure.status, "failure");
        }
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
        if !self.placing() {
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
                Ok(operation) => {
                    tracing::info!(agent = %offer.agent_id.value, host = %offer.hostname, "offer accepted: launching an executor");
                    self.accepted += 1;
                    calls.accept(vec![offer.id.clone()], vec![operation]).await?
                }
                Err(why) => {
                    if let Some(why) = &why {
                        tracing::debug!(agent = %offer.agent_id.value, host = %offer.hostname, %why, "offer declined");
                    }
                    if let Some(why) = why {
                        self.last_failure = Some(format!(
                            "offer of agent {} ({}) declined: {why}",
                            offer.agent_id.value, offer.hostname
                        ));
                    }
                    decline.push(offer.id);
                }
            }
        }
        if !decline.is_empty() {
            self.declined += decline.len() as u64;
            calls.decline(decline, self.config.refuse_seconds).await?;
        }
        let placed = !self.placing() || self.slots.iter().all(Option::is_some);
        if placed && !self.suppressed {
            calls.suppress().await?;
            self.suppressed = true;
        }
        Ok(())
    }

    /// The LAUNCH of an executor with its two tasks on `offer`, or why not (`None`: not
    /// wanted, nothing wrong with the offer).
    fn launch_on(&mut self, offer: &Offer) -> Result<offer::Operation, Option<String>> {
        if !self.placing() {
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
        let ports = take_ports(offer, c.ports, u64::from(self.attempts) * u64::from(c.ports))
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
        let discovery = task(
            "discovery",
            protocol::DISCOVERY_TASK,
            vec![scalar("cpus", DISCOVERY_CPUS), scalar("mem", DISCOVERY_MEM)],
        );
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
            ended: false,
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
        let placing = matches!(self.phase, Phase::Placing | Phase::Replacing(_));
        if status.state == TaskState::TaskStarting as i32 && placing && slot.endpoint.is_none() {
            // The executor reports from its subscription: a MESSAGE reaches it now (the
            // tick re-sends it, should this one be lost).
            let (agent, executor) =
                (AgentId { value: slot.agent_id.clone() }, ExecutorId { value: slot.executor_id.clone() });
            return calls.message(agent, executor, protocol::token_message(&self.token)).await;
        }
        if is_terminal(status.state) || status.state == TaskState::TaskUnreachable as i32 {
            slot.ended |= is_terminal(status.state);
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

    /// A worker is gone: replaced while placing (or being replaced), reported to the run
    /// while running.
    async fn lose<C: Calls>(&mut self, calls: &mut C, shard: u32, why: String) -> Result<(), SchedulerError> {
        let Some(slot) = self.slots.get_mut(shard as usize).and_then(Option::as_mut) else { return Ok(()) };
        let reported = match self.phase {
            Phase::Finishing => return Ok(()),
            Phase::Placing => false,
            Phase::Running => true,
            // The shard being replaced is placed again; another one lost meanwhile is reported.
            Phase::Replacing(replaced) => replaced != shard,
        };
        if reported {
            if !slot.lost {
                slot.lost = true;
                slot.last_status.clone_from(&why);
                self.loss.get_or_insert(Loss { shard, reason: why });
            }
            return Ok(());
        }
        let slot = self.slots[shard as usize].take().expect("checked above");
        self.last_failure = Some(format!("shard {shard}: {why} ({})", slot.describe()));
        // Whatever is left of it goes; then offers again, filters cleared.
        let _ = calls.shutdown(ExecutorId { value: slot.executor_id }, AgentId { value: slot.agent_id }).await;
        calls.revive().await?;
        self.suppressed = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_client::v1::scheduler::Call;
    use mesos_client::v1::{FrameworkId, OfferId};

    /// An in-memory master: records every call.
    #[derive(Default)]
    struct Recorded(Vec<(&'static str, Call)>, Vec<&'static str>);

    impl Calls for Recorded {
        async fn call(&mut self, name: &'static str, call: Call) -> Result<(), SchedulerError> {
            self.0.push((name, call));
            self.1.push(name);
            Ok(())
        }
    }

    impl Recorded {
        fn names(&mut self) -> Vec<&'static str> {
            std::mem::take(&mut self.0).into_iter().map(|(n, _)| n).collect()
        }

        fn launched(&self) -> Vec<TaskInfo> {
            self.0
                .iter()
                .filter_map(|(_, c)| c.accept.as_ref())
                .flat_map(|a| &a.operations)
                .filter_map(|o| o.launch.as_ref())
                .flat_map(|l| l.task_infos.clone())
                .collect()
        }
    }

    fn config(workers: u32) -> Config {
        Config {
            workers,
            cpus: 1.0,
            mem: 256.0,
            ports: 4,
            executor: "/opt/exelixi".into(),
            executor_args: vec!["executor".into()],
            refuse_seconds: 30.0,
            run_id: "r1".into(),
        }
    }

    fn offer(id: &str, agent: &str, cpus: f64, mem: f64, ports: (u64, u64)) -> Offer {
        let ports = Resource {
            name: "ports".into(),
            r#type: value::Type::Ranges as i32,
            ranges: Some(value::Ranges { range: vec![value::Range { begin: ports.0, end: ports.1 }] }),
            ..Default::default()
        };
        Offer {
            id: OfferId { value: id.into() },
            framework_id: FrameworkId { value: "f".into() },
            agent_id: AgentId { value: agent.into() },
            hostname: format!("{agent}.example"),
            resources: vec![scalar("cpus", cpus), scalar("mem", mem), ports],
            ..Default::default()
        }
    }

    fn offers(list: Vec<Offer>) -> Event {
        Event {
            r#type: Some(event::Type::Offers as i32),
            offers: Some(event::Offers { offers: list }),
            ..Default::default()
        }
    }

    fn update(task: &str, agent: &str, state: TaskState, data: Option<&str>) -> Event {
        let status = TaskStatus {
            task_id: TaskId { value: task.into() },
            agent_id: Some(AgentId { value: agent.into() }),
            state: state as i32,
            data: data.map(|d| d.as_bytes().to_vec()),
            uuid: Some(vec![1; 16]),
            ..Default::default()
        };
        Event { r#type: Some(event::Type::Update as i32), update: Some(event::Update { status }), ..Default::default() }
    }

    fn framework(workers: u32) -> Framework {
        Framework::new(config(workers), "0123456789abcdef-token".into())
    }

    /// Places a worker on `agent` through one offer; returns its (discovery, worker) task ids.
    async fn place(f: &mut Framework, calls: &mut Recorded, agent: &str) -> (String, String) {
        f.handle(calls, offers(vec![offer(&format!("o-{agent}"), agent, 2.0, 1024.0, (31000, 31999))])).await.unwrap();
        let tasks = calls.launched();
        assert_eq!(tasks.len(), 2, "{:?}", calls.0.iter().map(|c| c.0).collect::<Vec<_>>());
        calls.0.clear();
        (tasks[0].task_id.value.clone(), tasks[1].task_id.value.clone())
    }

    async fn serve(f: &mut Framework, calls: &mut Recorded, agent: &str, worker: &str, port: u16) {
        let endpoint = format!("http://{agent}.example:{port}");
        f.handle(calls, update(worker, agent, TaskState::TaskRunning, Some(&endpoint))).await.unwrap();
        assert_eq!(calls.names(), ["ACKNOWLEDGE"]);
    }

    /// Two workers placed on agents a1 and a2, serving, and the run started; their
    /// worker task ids.
    async fn run_on_two_agents(f: &mut Framework, calls: &mut Recorded) -> (String, String) {
        let (_, w0) = place(f, calls, "a1").await;
        let (_, w1) = place(f, calls, "a2").await;
        serve(f, calls, "a1", &w0, 31000).await;
        serve(f, calls, "a2", &w1, 31000).await;
        f.start_run_if_placed().unwrap();
        (w0, w1)
    }

    #[tokio::test]
    async fn offers_too_small_or_short_of_ports_are_declined_and_one_agent_gets_one_executor() {
        let mut f = framework(2);
        let mut calls = Recorded::default();
        let list = vec![
            offer("small-cpu", "a1", 1.0, 4096.0, (31000, 31999)),
            offer("small-mem", "a2", 4.0, 256.0, (31000, 31999)),
            offer("few-ports", "a3", 4.0, 4096.0, (31000, 31002)),
            offer("good", "a4", 4.0, 4096.0, (31000, 31999)),
            offer("same-agent", "a4", 4.0, 4096.0, (32000, 32999)),
        ];
        f.handle(&mut calls, offers(list)).await.unwrap();
        let launched = calls.launched();
        assert_eq!(launched.len(), 2);
        assert!(launched.iter().all(|t| t.agent_id.value == "a4"));
        let worker = &launched[1];
        assert_eq!(worker.data.as_deref(), Some(protocol::WORKER_TASK));
        let ports = worker.resources.iter().find(|r| r.name == "ports").unwrap();
        assert_eq!(ports.ranges.as_ref().unwrap().range, [value::Range { begin: 31000, end: 31003 }]);
        let executor = worker.executor.as_ref().unwrap().command.as_ref().unwrap();
        assert_eq!(executor.arguments, ["/opt/exelixi", "executor"]);
        assert_eq!(launched[0].executor, worker.executor, "both tasks run in one executor");
        let declined: Vec<String> = calls
            .0
            .iter()
            .filter_map(|(_, c)| c.decline.as_ref())
            .flat_map(|d| d.offer_ids.iter().map(|o| o.value.clone()))
            .collect();
        assert_eq!(declined, ["small-cpu", "small-mem", "few-ports", "same-agent"]);
        let filter = calls.0.iter().find_map(|(_, c)| c.decline.as_ref()).unwrap().filters.unwrap();
        assert_eq!(filter.refuse_seconds, Some(30.0));
        assert!(f.last_failure().unwrap().contains("declined"), "{:?}", f.last_failure());
        assert!(!calls.names().contains(&"SUPPRESS"), "one worker is still to place");
        // The secret appears in no task: not in ids, names, data or the command.
        let text = format!("{launched:?}");
        assert!(!text.contains("0123456789abcdef"), "{text}");
    }

    #[test]
    fn ports_are_taken_from_the_offers_ranges_whatever_their_bounds() {
        let r = |begin, end| value::Range { begin, end };
        let mut o = offer("o", "a", 1.0, 1.0, (u64::MAX - 1, u64::MAX));
        assert_eq!(take_ports(&o, 4, 0), None, "two ports are not four");
        assert_eq!(take_ports(&o, 2, 0).unwrap(), [r(u64::MAX - 1, u64::MAX)]);
        assert_eq!(take_ports(&o, 2, 7).unwrap(), [r(u64::MAX, u64::MAX), r(u64::MAX - 1, u64::MAX - 1)]);
        o = offer("o", "a", 1.0, 1.0, (0, u64::MAX));
        assert_eq!(take_ports(&o, 3, 0).unwrap(), [r(0, 2)]);
        assert_eq!(take_ports(&o, 3, u64::MAX).unwrap(), [r(0, 2)], "u64::MAX wraps to the start");
        o = offer("o", "a", 1.0, 1.0, (9, 3));
        assert_eq!(take_ports(&o, 1, 0), None, "an inverted range offers nothing");
        // Two ranges: a skip walks over the first into the second, and wraps back.
        o = offer("o", "a", 1.0, 1.0, (100, 102));
        o.resources[2].ranges.as_mut().unwrap().range.push(r(200, 201));
        assert_eq!(take_ports(&o, 2, 0).unwrap(), [r(100, 101)]);
        assert_eq!(take_ports(&o, 2, 2).unwrap(), [r(102, 102), r(200, 200)]);
        assert_eq!(take_ports(&o, 2, 4).unwrap(), [r(201, 201), r(100, 100)]);
        assert_eq!(take_ports(&o, 5, 3).unwrap(), [r(200, 201), r(100, 102)]);
        assert_eq!(take_ports(&o, 6, 0), None);
    }

    #[tokio::test]
    async fn workers_on_agents_of_one_host_are_given_different_ports() {
        // The local cluster's agents all offer the same range on one host.
        let r = |begin, end| value::Range { begin, end };
        let mut f = framework(3);
        let mut calls = Recorded::default();
        let list = (1..=3).map(|a| offer(&format!("o{a}"), &format!("a{a}"), 4.0, 4096.0, (31000, 31009))).collect();
        f.handle(&mut calls, offers(list)).await.unwrap();
        let ports: Vec<_> = calls
            .launched()
            .iter()
            .filter_map(|t| t.resources.iter().find(|r| r.name == "ports"))
            .map(|r| r.ranges.clone().unwrap().range)
            .collect();
        assert_eq!(
            ports,
            [vec![r(31000, 31003)], vec![r(31004, 31007)], vec![r(31008, 31009), r(31000, 31001)]],
            "the third wraps round"
        );
    }

    #[tokio::test]
    async fn placing_every_worker_suppresses_offers_and_starts_the_run_in_shard_order() {
        let mut f = framework(2);
        let mut calls = Recorded::default();
        let (_, w0) = place(&mut f, &mut calls, "a1").await;
        let (d1, w1) = place(&mut f, &mut calls, "a2").await;
        assert_eq!(calls.1, ["ACCEPT", "ACCEPT", "SUPPRESS"], "offers suppressed once all are placed");
        f.tick(&mut calls).await.unwrap();
        let messages: Vec<&Call> = calls.0.iter().filter(|(n, _)| *n == "MESSAGE").map(|(_, c)| c).collect();
        assert_eq!(messages.len(), 2, "the token goes to each executor until its worker serves");
        assert_eq!(messages[0].message.as_ref().unwrap().data, protocol::token_message("0123456789abcdef-token"));
        calls.0.clear();
        // The executor's STARTING says it is subscribed: the token goes at once.
        f.handle(&mut calls, update(&w1, "a2", TaskState::TaskStarting, None)).await.unwrap();
        assert_eq!(calls.names(), ["ACKNOWLEDGE", "MESSAGE"]);
        assert_eq!(f.start_run_if_placed(), None);
        serve(&mut f, &mut calls, "a2", &w1, 31001).await;
        f.handle(&mut calls, update(&d1, "a2", TaskState::TaskFinished, Some("{\"cpu_num\":4}"))).await.unwrap();
        assert_eq!(calls.names(), ["ACKNOWLEDGE"]);
        serve(&mut f, &mut calls, "a1", &w0, 31000).await;
        assert_eq!(
            f.start_run_if_placed().unwrap(),
            ["http://a1.example:31000", "http://a2.example:31001"],
            "shards in placement order"
        );
        assert_eq!(f.phase(), Phase::Running);
        assert_eq!(f.slots().nth(1).unwrap().telemetry.as_deref(), Some("{\"cpu_num\":4}"));
        // Once running, offers are declined and the token is no longer sent.
        f.handle(&mut calls, offers(vec![offer("late", "a3", 4.0, 4096.0, (31000, 31999))])).await.unwrap();
        f.tick(&mut calls).await.unwrap();
        assert_eq!(calls.names(), ["DECLINE"]);
    }

    #[tokio::test]
    async fn an_executor_lost_before_the_run_is_replaced_from_a_new_offer() {
        for lost in [TaskState::TaskFailed, TaskState::TaskLost, TaskState::TaskUnreachable, TaskState::TaskGone] {
            let mut f = framework(1);
            let mut calls = Recorded::default();
            let (_, w) = place(&mut f, &mut calls, "a1").await;
            f.handle(&mut calls, update(&w, "a1", lost, None)).await.unwrap();
            assert_eq!(calls.names(), ["ACKNOWLEDGE", "SHUTDOWN", "REVIVE"], "{lost:?}");
            assert!(f.last_failure().unwrap().contains(lost.as_str_name()), "{:?}", f.last_failure());
            // A late update of the old task changes nothing; the new offer places anew.
            f.handle(&mut calls, update(&w, "a1", TaskState::TaskRunning, Some("http://x:1"))).await.unwrap();
            assert_eq!(calls.names(), ["ACKNOWLEDGE"]);
            let (_, w2) = place(&mut f, &mut calls, "a2").await;
            assert_ne!(w, w2);
            serve(&mut f, &mut calls, "a2", &w2, 31000).await;
            assert_eq!(f.start_run_if_placed().unwrap(), ["http://a2.example:31000"]);
        }
        // A FAILURE event (the executor exited) does the same.
        let mut f = framework(1);
        let mut calls = Recorded::default();
        let (_, w) = place(&mut f, &mut calls, "a1").await;
        let executor_id = f.slots().next().unwrap().executor_id.clone();
        let failure = event::Failure {
            agent_id: Some(AgentId { value: "a1".into() }),
            executor_id: Some(ExecutorId { value: executor_id }),
            status: Some(9),
        };
        let e = Event { r#type: Some(event::Type::Failure as i32), failure: Some(failure), ..Default::default() };
        f.handle(&mut calls, e).await.unwrap();
        assert_eq!(calls.names(), ["SHUTDOWN", "REVIVE"]);
        assert!(f.last_failure().unwrap().contains("exited with status 9"));
        assert_eq!(f.slots().count(), 0, "{w} is gone");
    }

    #[tokio::test]
    async fn a_worker_lost_during_the_run_ends_it_naming_shard_executor_and_agent() {
        for (lost, agent_gone) in
            [(TaskState::TaskUnreachable, false), (TaskState::TaskGone, false), (TaskState::TaskFailed, true)]
        {
            let mut f = framework(2);
            let mut calls = Recorded::default();
            let (_, w1) = run_on_two_agents(&mut f, &mut calls).await;
            calls.0.clear();
            if agent_gone {
                let failure =
                    event::Failure { agent_id: Some(AgentId { value: "a2".into() }), executor_id: None, status: None };
                let e =
                    Event { r#type: Some(event::Type::Failure as i32), failure: Some(failure), ..Default::default() };
                f.handle(&mut calls, e).await.unwrap();
            } else {
                f.handle(&mut calls, update(&w1, "a2", lost, None)).await.unwrap();
            }
            let loss = f.take_loss().unwrap();
            assert_eq!(loss.shard, 1);
            let described = f.describe(1);
            assert!(
                described.contains("agent a2 (a2.example)") && described.contains("executor exelixi-r1-1-"),
                "{described}"
            );
            assert!(!calls.names().contains(&"REVIVE"), "no replacement during the run (yet)");
            // Duplicates report nothing more.
            f.handle(&mut calls, update(&w1, "a2", TaskState::TaskLost, None)).await.unwrap();
            assert_eq!(f.take_loss(), None);
        }
    }

    #[tokio::test]
    async fn after_the_run_finished_workers_are_no_loss_and_are_counted_as_ended() {
        let mut f = framework(2);
        let mut calls = Recorded::default();
        let (w0, w1) = run_on_two_agents(&mut f, &mut calls).await;
        f.finish();
        f.handle(&mut calls, update(&w0, "a1", TaskState::TaskFinished, None)).await.unwrap();
        assert!(!f.all_workers_ended());
        f.handle(&mut calls, update(&w1, "a2", TaskState::TaskFinished, None)).await.unwrap();
        assert!(f.all_workers_ended());
        assert_eq!(f.take_loss(), None);
        assert_eq!(calls.names(), ["ACKNOWLEDGE", "ACKNOWLEDGE"]);
    }

    #[tokio::test]
    async fn a_rescinded_offer_and_out_of_order_updates_are_harmless() {
        let mut f = framework(1);
        let mut calls = Recorded::default();
        let rescind = event::Rescind { offer_id: OfferId { value: "gone".into() } };
        let e = Event { r#type: Some(event::Type::Rescind as i32), rescind: Some(rescind), ..Default::default() };
        f.handle(&mut calls, e).await.unwrap();
        assert!(calls.0.is_empty());
        let (d, w) = place(&mut f, &mut calls, "a1").await;
        // RUNNING arrives, then a stale STARTING, then RUNNING again (a reconciliation
        // answer, without data): the endpoint stands.
        serve(&mut f, &mut calls, "a1", &w, 31000).await;
        f.handle(&mut calls, update(&w, "a1", TaskState::TaskStarting, None)).await.unwrap();
        f.handle(&mut calls, update(&w, "a1", TaskState::TaskRunning, None)).await.unwrap();
        f.handle(&mut calls, update(&d, "a1", TaskState::TaskFinished, None)).await.unwrap();
        f.handle(&mut calls, update(&d, "a1", TaskState::TaskFinished, None)).await.unwrap();
        assert_eq!(calls.names(), ["ACKNOWLEDGE"; 4]);
        assert_eq!(f.start_run_if_placed().unwrap(), ["http://a1.example:31000"]);
        // An update of a task that is not ours is acknowledged and ignored.
        f.handle(&mut calls, update("someone-else", "a1", TaskState::TaskFailed, None)).await.unwrap();
        assert_eq!((calls.names(), f.take_loss()), (vec!["ACKNOWLEDGE"], None));
        // A RUNNING worker that names no endpoint cannot be used: lost.
        let mut f = framework(1);
        let (_, w) = place(&mut f, &mut calls, "a1").await;
        f.handle(&mut calls, update(&w, "a1", TaskState::TaskRunning, Some("garbage"))).await.unwrap();
        assert_eq!(calls.names(), ["ACKNOWLEDGE", "SHUTDOWN", "REVIVE"]);
    }

    #[tokio::test]
    async fn a_worker_lost_during_the_run_is_replaced_from_a_new_offer_on_request() {
        let mut f = framework(2);
        let mut calls = Recorded::default();
        let (w0, w1) = run_on_two_agents(&mut f, &mut calls).await;
        f.handle(&mut calls, update(&w1, "a2", TaskState::TaskFailed, None)).await.unwrap();
        let loss = f.take_loss().unwrap();
        assert_eq!(loss.shard, 1);
        calls.0.clear();
        // The run asks for a replacement: the old executor goes, offers come back.
        f.replace(&mut calls, 1).await.unwrap();
        assert_eq!(calls.names(), ["SHUTDOWN", "REVIVE"]);
        assert_eq!(f.phase(), Phase::Replacing(1));
        // a1 still has ours; a2 is free again (its executor is gone), a3 too.
        f.handle(&mut calls, offers(vec![offer("o-a1", "a1", 4.0, 4096.0, (31000, 31999))])).await.unwrap();
        assert!(calls.launched().is_empty(), "one executor per agent");
        calls.0.clear();
        let (_, new) = place(&mut f, &mut calls, "a3").await;
        assert_ne!(new, w1);
        assert!(new.starts_with("exelixi-r1-1-"), "{new}: shard 1's ids");
        assert_eq!(f.replaced(), None, "not serving yet");
        // Its STARTING gets the token; then RUNNING with its endpoint: the run goes on.
        f.handle(&mut calls, update(&new, "a3", TaskState::TaskStarting, None)).await.unwrap();
        assert_eq!(calls.names(), ["ACKNOWLEDGE", "MESSAGE"]);
        serve(&mut f, &mut calls, "a3", &new, 31005).await;
        assert_eq!(f.replaced(), Some((1, "http://a3.example:31005".to_string())));
        assert_eq!(f.phase(), Phase::Running);
        assert_eq!(f.replaced(), None, "once");
        // The old task's late update changes nothing; a new loss is reported again.
        f.handle(&mut calls, update(&w1, "a2", TaskState::TaskLost, None)).await.unwrap();
        assert_eq!(f.take_loss(), None);
        f.handle(&mut calls, update(&w0, "a1", TaskState::TaskKilled, None)).await.unwrap();
        assert_eq!(f.take_loss().map(|l| l.shard), Some(0));
    }

    #[tokio::test]
    async fn another_worker_lost_while_one_is_replaced_is_reported_not_replaced() {
        let mut f = framework(2);
        let mut calls = Recorded::default();
        let (w0, _) = run_on_two_agents(&mut f, &mut calls).await;
        f.replace(&mut calls, 1).await.unwrap();
        calls.0.clear();
        f.handle(&mut calls, update(&w0, "a1", TaskState::TaskFailed, None)).await.unwrap();
        assert_eq!(calls.names(), ["ACKNOWLEDGE"], "no SHUTDOWN or REVIVE for shard 0");
        assert_eq!(f.take_loss().map(|l| l.shard), Some(0));
        assert_eq!(f.phase(), Phase::Replacing(1));
    }
}
