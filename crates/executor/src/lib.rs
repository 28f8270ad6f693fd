//! `executor`: Exelixi's Mesos executor, the program the agents start for the framework.
//! It owns the executor's side of the protocol between scheduler and executor ([`protocol`])
//! and its event loop ([`run`]): the **discovery task** finishes at once with the node's
//! [`telemetry`] as its data; the **worker task** waits for the run's token in a framework
//! MESSAGE, starts a worker service process on the first free port of the task's `ports`,
//! and reports TASK_RUNNING with the worker's endpoint (the agent's hostname, not the bind
//! address). KILL and SHUTDOWN stop the worker and report TASK_KILLED; the worker process
//! also exits when the executor dies (its stdin closes), so nothing outlives the executor.
//!
//! **Boundary:** knows Mesos through `mesos-client`'s [`ExecutorApi`] trait (tested against
//! an in-memory agent) and worker processes through `worker-service`'s `Fleet`; never
//! depends on the GA, `uow` or the scheduler.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use mesos_client::executor::{ExecutorApi, ExecutorError};
use mesos_client::v1::executor::{Event, event};
use mesos_client::v1::{Resource, TaskId, TaskInfo, TaskState, TaskStatus};
use worker_service::Fleet;

/// What the scheduler and the executor agree on: the tasks' data, the MESSAGE that carries
/// the run's token, and what a worker task reports.
pub mod protocol {
    /// `TaskInfo.data` of a discovery task.
    pub const DISCOVERY_TASK: &[u8] = b"exelixi/discovery";
    /// `TaskInfo.data` of a worker task.
    pub const WORKER_TASK: &[u8] = b"exelixi/worker";
    /// The prefix of the framework MESSAGE that carries the run's token to the executor.
    pub const TOKEN_MESSAGE: &[u8] = b"exelixi/token:";

    /// The MESSAGE data that carries `token`.
    pub fn token_message(token: &str) -> Vec<u8> {
        [TOKEN_MESSAGE, token.as_bytes()].concat()
    }

    /// The token in a MESSAGE's data, if it carries one.
    pub fn token_of(data: &[u8]) -> Option<&str> {
        let token = std::str::from_utf8(data.strip_prefix(TOKEN_MESSAGE)?).ok()?;
        (token.len() >= 16 && token.bytes().all(|b| b.is_ascii_graphic())).then_some(token)
    }
}

/// How the executor starts a worker and reads its node.
pub struct Settings {
    /// The worker process listening on `port` of every interface (e.g. `exelixi worker
    /// --host 0.0.0.0 --port P --exit-with-parent`); it gets the token in
    /// [`worker_service::TOKEN_ENV`] from the executor.
    pub worker: Box<dyn Fn(u16) -> Command + Send + Sync>,
    /// The discovery task's data (default: [`telemetry::Telemetry::collect`] as JSON).
    pub telemetry: Box<dyn Fn() -> String + Send + Sync>,
    /// How long SHUTDOWN waits for the agent to acknowledge the last updates
    /// (`MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD`, default 5 s).
    pub shutdown_grace: Duration,
}

impl Settings {
    /// Workers from `worker`, the real telemetry, the grace period of the environment.
    pub fn new(worker: impl Fn(u16) -> Command + Send + Sync + 'static) -> Self {
        let grace = std::env::var("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD")
            .ok()
            .and_then(|v| mesos_client::executor::parse_duration(&v))
            .unwrap_or(Duration::from_secs(5));
        Self {
            worker: Box::new(worker),
            telemetry: Box::new(|| telemetry::Telemetry::collect().to_json()),
            // Keep a margin inside the agent's own limit, after which it kills us.
            shutdown_grace: grace.mul_f64(0.8),
        }
    }
}

/// Why the executor stopped short.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The agent side failed.
    #[error(transparent)]
    Agent(#[from] ExecutorError),
}

/// The ports of a task's `ports` resources, in order.
pub fn task_ports(resources: &[Resource]) -> Vec<u16> {
    resources
        .iter()
        .filter(|r| r.name == "ports")
        .filter_map(|r| r.ranges.as_ref())
        .flat_map(|r| &r.range)
        .flat_map(|r| r.begin..=r.end.min(r.begin.saturating_add(1024)))
        .filter_map(|p| u16::try_from(p).ok())
        .filter(|&p| p > 0)
        .collect()
}

fn status(task: &TaskId, state: TaskState, message: Option<String>, data: Option<Vec<u8>>) -> TaskStatus {
    TaskStatus { task_id: task.clone(), state: state as i32, message, data, ..Default::default() }
}

/// A worker task and its process, once started.
struct WorkerTask {
    id: TaskId,
    ports: Vec<u16>,
    process: Option<Fleet>,
}

/// The executor's books.
#[derive(Default)]
struct State {
    hostname: Option<String>,
    token: Option<String>,
    worker: Option<WorkerTask>,
    /// Launched tasks not yet in a terminal state.
    open: BTreeSet<String>,
    /// Updates sent and not yet acknowledged, by UUID.
    unacknowledged: BTreeMap<[u8; 16], String>,
}

/// Runs the executor until its tasks are over and acknowledged, SHUTDOWN, or the agent
/// closes the stream. The worker process never outlives the call.
pub async fn run<A: ExecutorApi>(api: &mut A, settings: Arc<Settings>) -> Result<(), Error> {
    let mut state = State::default();
    let result = event_loop(api, &settings, &mut state).await;
    if let Some(w) = state.worker.as_mut() {
        w.process.take();
    }
    result
}

async fn event_loop<A: ExecutorApi>(api: &mut A, settings: &Arc<Settings>, state: &mut State) -> Result<(), Error> {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            next = api.next_event() => match next {
                None => return Ok(()),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(e)) => {
                    if is(&e, event::Type::Shutdown) {
                        return shutdown(api, settings, state).await;
                    }
                    handle(api, settings, state, e).await?;
                }
            },
            _ = tick.tick() => watch_worker(api, state).await?,
        }
        // Its purpose is the worker task: once that is over (the discovery task may well end
        // before the worker task's LAUNCH arrives) and the agent has every update, it exits.
        if state.worker.is_some() && state.open.is_empty() && state.unacknowledged.is_empty() {
            return Ok(());
        }
    }
}

fn is(e: &Event, kind: event::Type) -> bool {
    e.r#type == Some(kind as i32)
}

async fn send<A: ExecutorApi>(api: &mut A, state: &mut State, status: TaskStatus) -> Result<(), Error> {
    let task = status.task_id.value.clone();
    if mesos_client::scheduler::is_terminal(status.state) {
        state.open.remove(&task);
    }
    let uuid = api.update(status).await?;
    state.unacknowledged.insert(uuid, task);
    Ok(())
}

async fn handle<A: ExecutorApi>(
    api: &mut A,
    settings: &Arc<Settings>,
    state: &mut State,
    e: Event,
) -> Result<(), Error> {
    if let Some(subscribed) = &e.subscribed {
        state.hostname = Some(subscribed.agent_info.hostname.clone());
    }
    if let Some(ack) = &e.acknowledged {
        if let Ok(uuid) = <[u8; 16]>::try_from(ack.uuid.as_slice()) {
            state.unacknowledged.remove(&uuid);
        }
    }
    if let Some(launch) = e.launch {
        launch_task(api, settings, state, launch.task).await?;
    }
    if let Some(message) = &e.message {
        // Repeats (the scheduler re-sends until the worker task reports) are ignored.
        if let (Some(token), None) = (protocol::token_of(&message.data), &state.token) {
            state.token = Some(token.to_string());
            start_worker(api, settings, state).await?;
        }
    }
    if let Some(kill) = &e.kill {
        kill_task(api, state, &kill.task_id).await?;
    }
    Ok(())
}

async fn launch_task<A: ExecutorApi>(
    api: &mut A,
    settings: &Arc<Settings>,
    state: &mut State,
    task: TaskInfo,
) -> Result<(), Error> {
    state.open.insert(task.task_id.value.clone());
    tracing::info!(task = %task.task_id.value, "launch");
    match task.data.as_deref() {
        Some(protocol::DISCOVERY_TASK) => {
            let collect = settings.clone();
            let json = tokio::task::spawn_blocking(move || (collect.telemetry)())
                .await
                .unwrap_or_else(|e| format!("{{\"error\":\"telemetry failed: {e}\"}}"));
            send(api, state, status(&task.task_id, TaskState::TaskFinished, None, Some(json.into_bytes()))).await
        }
        Some(protocol::WORKER_TASK) if state.worker.is_none() => {
            let ports = task_ports(&task.resources);
            state.worker = Some(WorkerTask { id: task.task_id.clone(), ports, process: None });
            send(api, state, status(&task.task_id, TaskState::TaskStarting, None, None)).await?;
            start_worker(api, settings, state).await
        }
        other => {
            let why = match other {
                Some(protocol::WORKER_TASK) => "this executor already runs a worker task".to_string(),
                _ => "not an Exelixi task (unknown TaskInfo.data)".to_string(),
            };
            send(api, state, status(&task.task_id, TaskState::TaskFailed, Some(why), None)).await
        }
    }
}

/// Starts the worker once both the worker task and the token are here: on the first of the
/// task's ports where it comes up (another task of the same host may hold a port).
async fn start_worker<A: ExecutorApi>(api: &mut A, settings: &Arc<Settings>, state: &mut State) -> Result<(), Error> {
    let (Some(token), Some(worker)) = (state.token.clone(), state.worker.as_ref()) else { return Ok(()) };
    if worker.process.is_some() {
        return Ok(());
    }
    let (id, ports) = (worker.id.clone(), worker.ports.clone());
    let start = settings.clone();
    let started = tokio::task::spawn_blocking(move || {
        let mut failures = Vec::new();
        for port in ports {
            match Fleet::start(1, &token, |_| (start.worker)(port)) {
                Ok(fleet) => return Ok((fleet, port)),
                Err(e) => failures.push(format!("port {port}: {e}")),
            }
        }
        Err(if failures.is_empty() { "the task has no ports".to_string() } else { failures.join("; ") })
    })
    .await
    .unwrap_or_else(|e| Err(format!("the start failed: {e}")));
    match started {
        Ok((fleet, port)) => {
            let host = state.hostname.clone().unwrap_or_else(|| "127.0.0.1".to_string());
            let endpoint = format!("http://{host}:{port}");
            tracing::info!(%endpoint, "worker serving");
            if let Some(w) = state.worker.as_mut() {
                w.process = Some(fleet);
            }
            send(api, state, status(&id, TaskState::TaskRunning, None, Some(endpoint.into_bytes()))).await
        }
        Err(why) => {
            let message = format!("the worker service did not start: {why}");
            tracing::error!(%message);
            send(api, state, status(&id, TaskState::TaskFailed, Some(message), None)).await
        }
    }
}

/// Reports a worker process that ended by itself: FINISHED after a clean exit (the
/// framework told it to stop), FAILED otherwise.
async fn watch_worker<A: ExecutorApi>(api: &mut A, state: &mut State) -> Result<(), Error> {
    let Some(w) = state.worker.as_mut() else { return Ok(()) };
    let Some(ended) = w.process.as_ref().and_then(|f| f.exit_status(0)) else { return Ok(()) };
    w.process = None;
    let id = w.id.clone();
    if !state.open.contains(&id.value) {
        return Ok(());
    }
    tracing::info!(%ended, "worker ended");
    let (state_now, message) = if ended == "exited with status 0" {
        (TaskState::TaskFinished, None)
    } else {
        (TaskState::TaskFailed, Some(format!("the worker service {ended}")))
    };
    send(api, state, status(&id, state_now, message, None)).await
}

async fn kill_task<A: ExecutorApi>(api: &mut A, state: &mut State, task: &TaskId) -> Result<(), Error> {
    tracing::info!(task = %task.value, "kill");
    if let Some(w) = state.worker.as_mut().filter(|w| &w.id == task) {
        w.process.take(); // Dropping the fleet kills and reaps the worker.
    }
    if state.open.contains(&task.value) {
        send(api, state, status(task, TaskState::TaskKilled, None, None)).await?;
    }
    Ok(())
}

/// SHUTDOWN: every task still running is killed and reported, and the executor waits
/// (within the grace period) for the agent to acknowledge, as Mesos expects.
async fn shutdown<A: ExecutorApi>(api: &mut A, settings: &Settings, state: &mut State) -> Result<(), Error> {
    tracing::info!("shutdown");
    if let Some(w) = state.worker.as_mut() {
        w.process.take();
    }
    let open: Vec<String> = state.open.iter().cloned().collect();
    for task in open {
        send(api, state, status(&TaskId { value: task }, TaskState::TaskKilled, None, None)).await?;
    }
    let _ = tokio::time::timeout(settings.shutdown_grace, async {
        while !state.unacknowledged.is_empty() {
            match api.next_event().await {
                Some(Ok(e)) => {
                    if let Some(ack) = &e.acknowledged {
                        if let Ok(uuid) = <[u8; 16]>::try_from(ack.uuid.as_slice()) {
                            state.unacknowledged.remove(&uuid);
                        }
                    }
                }
                _ => return,
            }
        }
    })
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_client::v1::{AgentInfo, ExecutorInfo, FrameworkInfo, value};
    use std::collections::VecDeque;

    /// What the in-memory agent does after an update: scripts the events that follow.
    type Script = Box<dyn FnMut(&TaskStatus, &mut VecDeque<Event>) + Send>;

    /// An in-memory agent: hands out the scripted events, acknowledges every update at
    /// once, and ends the stream when the script is done.
    #[derive(Default)]
    struct Agent {
        script: VecDeque<Event>,
        updates: Vec<TaskStatus>,
        /// Called after each update, to script what follows.
        after_update: Option<Script>,
        next_uuid: u8,
    }

    impl ExecutorApi for Agent {
        async fn next_event(&mut self) -> Option<Result<Event, ExecutorError>> {
            self.script.pop_front().map(Ok)
        }
        async fn update(&mut self, status: TaskStatus) -> Result<[u8; 16], ExecutorError> {
            self.next_uuid += 1;
            let uuid = [self.next_uuid; 16];
            let ack = event::Acknowledged { task_id: status.task_id.clone(), uuid: uuid.to_vec() };
            self.script.push_front(Event {
                r#type: Some(event::Type::Acknowledged as i32),
                acknowledged: Some(ack),
                ..Default::default()
            });
            if let Some(f) = self.after_update.as_mut() {
                f(&status, &mut self.script);
            }
            self.updates.push(status);
            Ok(uuid)
        }
        async fn message(&mut self, _data: Vec<u8>) -> Result<(), ExecutorError> {
            Ok(())
        }
    }

    fn subscribed() -> Event {
        Event {
            r#type: Some(event::Type::Subscribed as i32),
            subscribed: Some(event::Subscribed {
                executor_info: ExecutorInfo::default(),
                framework_info: FrameworkInfo::default(),
                agent_info: AgentInfo { hostname: "node-7".into(), ..Default::default() },
                container_id: None,
            }),
            ..Default::default()
        }
    }

    fn launch(id: &str, data: &[u8], ports: &[(u64, u64)]) -> Event {
        let ranges = value::Ranges { range: ports.iter().map(|&(begin, end)| value::Range { begin, end }).collect() };
        let task = TaskInfo {
            task_id: TaskId { value: id.into() },
            data: Some(data.to_vec()),
            resources: vec![Resource { name: "ports".into(), ranges: Some(ranges), ..Default::default() }],
            ..Default::default()
        };
        Event { r#type: Some(event::Type::Launch as i32), launch: Some(event::Launch { task }), ..Default::default() }
    }

    fn message(data: Vec<u8>) -> Event {
        Event {
            r#type: Some(event::Type::Message as i32),
            message: Some(event::Message { data }),
            ..Default::default()
        }
    }

    fn kill(id: &str) -> Event {
        let kill = event::Kill { task_id: TaskId { value: id.into() }, kill_policy: None };
        Event { r#type: Some(event::Type::Kill as i32), kill: Some(kill), ..Default::default() }
    }

    /// A stand-in worker: announces `listening http://0.0.0.0:PORT` and lives until its
    /// stdin closes, as a real one does; port 1 "is taken" (it exits before listening).
    fn settings() -> Arc<Settings> {
        let mut s = Settings::new(|port| {
            let mut c = Command::new("sh");
            let script = if port == 1 { "exit 3" } else { "echo \"listening http://0.0.0.0:$0\"; exec cat >/dev/null" };
            c.args(["-c", script, &port.to_string()]);
            c
        });
        s.telemetry = Box::new(|| "{\"cpu_num\":2}".into());
        Arc::new(s)
    }

    fn states(agent: &Agent) -> Vec<(String, TaskState)> {
        agent.updates.iter().map(|u| (u.task_id.value.clone(), TaskState::try_from(u.state).unwrap())).collect()
    }

    const TOKEN: &str = "0123456789abcdef0123";

    #[tokio::test]
    async fn discovery_finishes_with_telemetry_and_the_worker_reports_its_endpoint_on_the_agents_host() {
        let mut agent = Agent::default();
        agent.script.extend([
            subscribed(),
            launch("d", protocol::DISCOVERY_TASK, &[]),
            launch("w", protocol::WORKER_TASK, &[(1, 1), (40123, 40125)]),
            message(b"not a token".to_vec()),
            message(protocol::token_message(TOKEN)),
            message(protocol::token_message("another-token-that-is-ignored")),
        ]);
        // Once running, the framework's run ends: the worker is killed.
        agent.after_update = Some(Box::new(|s, script| {
            if s.state == TaskState::TaskRunning as i32 {
                script.push_back(kill("w"));
            }
        }));
        run(&mut agent, settings()).await.unwrap();
        assert_eq!(
            states(&agent),
            [
                ("d".into(), TaskState::TaskFinished),
                ("w".into(), TaskState::TaskStarting),
                ("w".into(), TaskState::TaskRunning),
                ("w".into(), TaskState::TaskKilled)
            ]
        );
        assert_eq!(agent.updates[0].data.as_deref(), Some(&b"{\"cpu_num\":2}"[..]));
        // Port 1 was taken; the next one of the task's ports served, under the agent's name.
        assert_eq!(agent.updates[2].data.as_deref(), Some(&b"http://node-7:40123"[..]));
        assert!(agent.updates.iter().all(|u| u.message.as_deref().is_none_or(|m| !m.contains(TOKEN))));
    }

    #[tokio::test]
    async fn a_worker_that_cannot_start_fails_its_task_and_shutdown_kills_what_runs() {
        let mut agent = Agent::default();
        agent.script.extend([
            subscribed(),
            message(protocol::token_message(TOKEN)),
            launch("x", b"something else", &[]),
            launch("w", protocol::WORKER_TASK, &[(1, 1)]),
        ]);
        run(&mut agent, settings()).await.unwrap();
        assert_eq!(
            states(&agent),
            [
                ("x".into(), TaskState::TaskFailed),
                ("w".into(), TaskState::TaskStarting),
                ("w".into(), TaskState::TaskFailed)
            ]
        );
        let why = agent.updates[2].message.clone().unwrap();
        assert!(why.contains("port 1") && why.contains("did not start"), "{why}");

        let mut agent = Agent::default();
        agent.script.extend([
            subscribed(),
            launch("w", protocol::WORKER_TASK, &[(40200, 40200)]),
            message(protocol::token_message(TOKEN)),
        ]);
        agent.after_update = Some(Box::new(|s, script| {
            if s.state == TaskState::TaskRunning as i32 {
                script.push_back(Event { r#type: Some(event::Type::Shutdown as i32), ..Default::default() });
            }
        }));
        run(&mut agent, settings()).await.unwrap();
        assert_eq!(states(&agent).last().unwrap(), &("w".to_string(), TaskState::TaskKilled));
    }

    #[test]
    fn ports_come_from_the_tasks_port_ranges_in_order() {
        let r = |ranges: &[(u64, u64)]| Resource {
            name: "ports".into(),
            ranges: Some(value::Ranges {
                range: ranges.iter().map(|&(begin, end)| value::Range { begin, end }).collect(),
            }),
            ..Default::default()
        };
        assert_eq!(task_ports(&[r(&[(31000, 31002), (31010, 31010)])]), [31000, 31001, 31002, 31010]);
        assert_eq!(task_ports(&[r(&[(0, 0), (70000, 70001)])]), Vec::<u16>::new(), "no port 0, none above 65535");
        assert_eq!(task_ports(&[Resource { name: "cpus".into(), ..Default::default() }]), Vec::<u16>::new());
        assert_eq!(protocol::token_of(&protocol::token_message(TOKEN)), Some(TOKEN));
        assert_eq!(protocol::token_of(b"exelixi/token:short"), None);
    }
}
