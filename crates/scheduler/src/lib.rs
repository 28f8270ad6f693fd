//! `scheduler`: Exelixi's Mesos framework. It owns the decisions ([`Framework`]: offers →
//! at most one executor per agent, each with a discovery task and a worker task; every
//! update acknowledged; losses replaced while placing and fatal while running) and the
//! event loop that applies them to the real master ([`MesosWorkers`], one task owning the
//! [`Session`]); `MesosWorkers` is where a run's workers come from in `exelixi mesos`, as
//! `uow::LocalProcesses` is for `exelixi run --workers`.
//!
//! **Boundary:** knows Mesos through `mesos-client`'s traits and the workers through
//! `uow::Workers`; the executor's side of the protocol comes from `executor::protocol`.
//! Never depends on the GA.

mod framework;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use framework::{Config, DISCOVERY_CPUS, DISCOVERY_MEM, EXECUTOR_CPUS, EXECUTOR_MEM, Framework, Phase, Slot};
use mesos_client::scheduler::{Calls, Credential, Events, SchedulerError, Session, SessionConfig};
use mesos_client::v1::FrameworkInfo;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};
use uow::{Loss, Workers};

/// Heartbeat intervals (15 s each) without any event after which the subscription is
/// considered lost and renewed: short enough that an event loop held up by anything is
/// noticed (and seen re-subscribing), long enough for a loaded machine.
pub const MISSED_HEARTBEATS: u32 = 3;

/// How the framework meets Mesos.
#[derive(Clone, Debug)]
pub struct MesosSettings {
    /// The master, `host:port`.
    pub master: String,
    /// HTTP basic authentication (`Credential::from_env`).
    pub credential: Option<Credential>,
    /// How long the master keeps the framework's executors after losing the scheduler.
    pub failover_timeout: Duration,
    /// How long placing every worker may take.
    pub placement_timeout: Duration,
    /// Implicit reconciliation every so often.
    pub reconcile_every: Duration,
    /// What to place (its `workers` is set by [`Workers::start`]).
    pub placement: Config,
}

/// What the event loop shares with the run's thread.
#[derive(Default)]
struct Shared {
    slots: Vec<Slot>,
    framework_id: Option<String>,
    offers_accepted: u64,
    offers_declined: u64,
}

/// The framework as Mesos sees it, for a status page: [`MesosWorkers::viewer`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MesosView {
    /// The master, `host:port`.
    pub master: String,
    /// The framework id, once subscribed.
    pub framework_id: Option<String>,
    /// The placed executors, by shard (agent, tasks, telemetry, last task state).
    pub slots: Vec<Slot>,
    /// Offers accepted (one executor launched on each).
    pub offers_accepted: u64,
    /// Offers declined.
    pub offers_declined: u64,
}

enum Command {
    /// The run is over: TEARDOWN and end; after a completed run, first give the workers a
    /// moment to exit by themselves, so that their tasks end FINISHED rather than KILLED.
    Finish {
        /// Whether the run completed.
        completed: bool,
    },
    /// Place a new executor for the lost worker of `shard`; its endpoint goes to `reply`
    /// once it serves (or why not).
    Replace {
        /// The shard.
        shard: u32,
        /// Where the outcome goes.
        reply: oneshot::Sender<Result<String, String>>,
    },
}

/// How long a completed run waits for its worker tasks to finish before TEARDOWN.
const FINISH_GRACE: Duration = Duration::from_secs(3);

/// The workers of a run, as executors placed on Mesos agents.
pub struct MesosWorkers {
    settings: MesosSettings,
    shared: Arc<Mutex<Shared>>,
    commands: mpsc::UnboundedSender<Command>,
    receiver: Option<mpsc::UnboundedReceiver<Command>>,
    losses: (watch::Sender<Option<Loss>>, watch::Receiver<Option<Loss>>),
    task: Option<tokio::task::JoinHandle<Result<(), String>>>,
    placement: Option<Duration>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MesosWorkers {
    /// Workers to be placed through the master of `settings`.
    pub fn new(settings: MesosSettings) -> Self {
        let (commands, receiver) = mpsc::unbounded_channel();
        Self {
            settings,
            shared: Arc::default(),
            commands,
            receiver: Some(receiver),
            losses: watch::channel(None),
            task: None,
            placement: None,
        }
    }

    /// The placed executors (with their telemetry), by shard.
    pub fn slots(&self) -> Vec<Slot> {
        lock(&self.shared).slots.clone()
    }

    /// Something that reads the framework's state from any thread, at any time (for a
    /// status page that lives as long as the run).
    pub fn viewer(&self) -> impl Fn() -> MesosView + Send + Sync + 'static {
        let (shared, master) = (self.shared.clone(), self.settings.master.clone());
        move || {
            let s = lock(&shared);
            MesosView {
                master: master.clone(),
                framework_id: s.framework_id.clone(),
                slots: s.slots.clone(),
                offers_accepted: s.offers_accepted,
                offers_declined: s.offers_declined,
            }
        }
    }

    /// How long placing took: from [`Workers::start`] until every worker served.
    pub fn placement_time(&self) -> Option<Duration> {
        self.placement
    }

    /// The framework id, once subscribed.
    pub fn framework_id(&self) -> Option<String> {
        lock(&self.shared).framework_id.clone()
    }
}

fn framework_info(settings: &MesosSettings) -> FrameworkInfo {
    FrameworkInfo {
        user: std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "root".into()),
        name: format!("Exelixi {}", settings.placement.run_id),
        failover_timeout: Some(settings.failover_timeout.as_secs_f64()),
        principal: settings.credential.as_ref().map(|c| c.principal.clone()),
        ..Default::default()
    }
}

impl Workers for MesosWorkers {
    fn start(&mut self, runtime: &Handle, n: u32, token: &str) -> Result<Vec<String>, String> {
        let receiver = self.receiver.take().ok_or("the workers were started already")?;
        let mut config = self.settings.placement.clone();
        config.workers = n;
        let framework = Framework::new(config, token.to_string());
        let mut session_config = SessionConfig::new(self.settings.master.clone(), framework_info(&self.settings));
        session_config.credential.clone_from(&self.settings.credential);
        session_config.missed_heartbeats = MISSED_HEARTBEATS;
        let session = Session::new(session_config).map_err(|e| e.to_string())?;
        let (placed_tx, mut placed) = watch::channel(None);
        let event_loop = EventLoop {
            session,
            framework,
            commands: receiver,
            placed: placed_tx,
            losses: self.losses.0.clone(),
            shared: self.shared.clone(),
            settings: self.settings.clone(),
            replacing: None,
        };
        let started = Instant::now();
        self.task = Some(runtime.spawn(event_loop.run()));
        let endpoints = runtime.block_on(async {
            match placed.wait_for(Option::is_some).await {
                Ok(result) => result.clone().unwrap_or_else(|| Err("no placement".into())),
                Err(_) => Err("the framework's event loop ended".into()),
            }
        })?;
        self.placement = Some(started.elapsed());
        Ok(endpoints)
    }

    fn describe(&self, shard: u32) -> String {
        lock(&self.shared)
            .slots
            .iter()
            .find(|s| s.shard == shard)
            .map_or_else(|| format!("no executor placed for shard {shard}"), Slot::describe)
    }

    fn stopper(&self) -> Box<dyn Fn() + Send + Sync> {
        let commands = self.commands.clone();
        Box::new(move || {
            let _ = commands.send(Command::Finish { completed: false });
        })
    }

    fn losses(&self) -> Option<watch::Receiver<Option<Loss>>> {
        Some(self.losses.1.clone())
    }

    /// A new executor from a new offer (on any agent without one of ours, the lost one's
    /// included once its executor is gone), within the placement timeout.
    fn replace(&mut self, runtime: &Handle, shard: u32, _token: &str) -> Result<String, String> {
        let (reply, outcome) = oneshot::channel();
        self.commands.send(Command::Replace { shard, reply }).map_err(|_| "the framework's event loop ended")?;
        let limit = self.settings.placement_timeout;
        let endpoint = runtime
            .block_on(async { tokio::time::timeout(limit, outcome).await })
            .map_err(|_| format!("no new executor serving within the placement timeout ({} s)", limit.as_secs()))?;
        let endpoint = endpoint.map_err(|_| "the framework's event loop ended".to_string())??;
        // The loss that led here is answered: the next phases watch for new ones.
        self.losses.0.send_replace(None);
        Ok(endpoint)
    }

    fn finish(&mut self, runtime: &Handle, completed: bool) {
        let _ = self.commands.send(Command::Finish { completed });
        if let Some(task) = self.task.take() {
            match runtime.block_on(async { tokio::time::timeout(Duration::from_secs(30), task).await }) {
                Ok(Ok(Ok(()))) => {}
                // The loop's own failure already ended the placement or the run.
                Ok(Ok(Err(_))) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "the framework's event loop failed"),
                Err(_) => tracing::error!("the framework did not end within 30 s of TEARDOWN"),
            }
        }
    }
}

/// The one task that owns the session: events, commands and timers, never waiting on the
/// run (the GA runs on another thread).
struct EventLoop {
    session: Session,
    framework: Framework,
    commands: mpsc::UnboundedReceiver<Command>,
    placed: watch::Sender<Option<Result<Vec<String>, String>>>,
    losses: watch::Sender<Option<Loss>>,
    shared: Arc<Mutex<Shared>>,
    settings: MesosSettings,
    /// Where a replacement's endpoint goes once it serves.
    replacing: Option<oneshot::Sender<Result<String, String>>>,
}

impl EventLoop {
    async fn run(mut self) -> Result<(), String> {
        let result = self.serve().await;
        if let Err(e) = &result {
            // Whoever waits learns why: the placement, or a phase of the run.
            self.placed.send_if_modified(|p| {
                p.is_none() && {
                    *p = Some(Err(e.clone()));
                    true
                }
            });
            if matches!(self.framework.phase(), Phase::Running | Phase::Replacing(_)) {
                self.losses.send_if_modified(|l| {
                    l.is_none() && {
                        *l = Some(Loss { shard: 0, reason: format!("the Mesos framework failed: {e}") });
                        true
                    }
                });
            }
        }
        self.teardown().await;
        result
    }

    async fn serve(&mut self) -> Result<(), String> {
        let placement_deadline = Instant::now() + self.settings.placement_timeout;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_reconcile = Instant::now();
        let mut draining: Option<tokio::time::Instant> = None;
        loop {
            // The timer only runs while subscribed: a SUBSCRIBE dropped midway would leave
            // a registered framework behind and start another (only Finish may drop one).
            let subscribed = self.session.is_subscribed();
            tokio::select! {
                next = self.session.next_event() => match next {
                    None => return Ok(()),
                    Some(Err(e)) => return Err(e.to_string()),
                    Some(Ok(e)) => {
                        let result = self.framework.handle(&mut self.session, e).await;
                        self.call_failed(result)?;
                    }
                },
                command = self.commands.recv(), if draining.is_none() => {
                    if let Some(Command::Replace { shard, reply }) = command {
                        let result = self.framework.replace(&mut self.session, shard).await;
                        self.call_failed(result)?;
                        // A replacement asked for while one is under way answers the first.
                        self.replacing = Some(reply);
                    } else {
                        self.framework.finish();
                        self.placed.send_if_modified(|p| p.is_none() && { *p = Some(Err("interrupted".into())); true });
                        match command {
                            Some(Command::Finish { completed: true }) => {
                                draining = Some(tokio::time::Instant::now() + FINISH_GRACE);
                            }
                            _ => return Ok(()),
                        }
                    }
                },
                () = async { match draining { Some(at) => tokio::time::sleep_until(at).await, None => std::future::pending().await } } => {
                    return Ok(());
                }
                _ = tick.tick(), if subscribed => {
                    {
                        let result = self.framework.tick(&mut self.session).await;
                        self.call_failed(result)?;
                        if last_reconcile.elapsed() >= self.settings.reconcile_every {
                            last_reconcile = Instant::now();
                            let result = self.session.reconcile(Vec::new()).await;
                            self.call_failed(result)?;
                        }
                    }
                    if self.framework.phase() == Phase::Placing && Instant::now() >= placement_deadline {
                        let serving = self.framework.slots().filter(|s| s.endpoint.is_some()).count();
                        let mut why = format!(
                            "{serving} of {} workers serving after the placement timeout ({} s); each needs an agent \
                             of its own with --cpu and --mem free (see exelixi nodes)",
                            self.framework.workers(),
                            self.settings.placement_timeout.as_secs()
                        );
                        if let Some(last) = self.framework.last_failure() {
                            why.push_str(&format!("; last: {last}"));
                        }
                        return Err(why);
                    }
                }
            }
            self.publish();
            if draining.is_some() && self.framework.all_workers_ended() {
                return Ok(());
            }
        }
    }

    /// A failed call: the session re-subscribes by itself after a lost subscription; any
    /// other failure is the master refusing what we sent, which is a bug to report.
    fn call_failed(&mut self, result: Result<(), SchedulerError>) -> Result<(), String> {
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.loses_subscription() || matches!(e, SchedulerError::NotSubscribed(_)) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn publish(&mut self) {
        {
            let mut shared = lock(&self.shared);
            shared.slots = self.framework.slots().cloned().collect();
            shared.framework_id = self.session.framework_id().map(|f| f.value.clone());
            shared.offers_accepted = self.framework.accepted;
            shared.offers_declined = self.framework.declined;
        }
        if let Some(endpoints) = self.framework.start_run_if_placed() {
            self.placed.send_replace(Some(Ok(endpoints)));
        }
        if let Some((_, endpoint)) = self.framework.replaced() {
            if let Some(reply) = self.replacing.take() {
                let _ = reply.send(Ok(endpoint));
            }
        }
        if let Some(loss) = self.framework.take_loss() {
            // Another worker lost while one is being replaced: the replacement fails with it.
            if let Some(reply) = self.replacing.take() {
                let _ = reply.send(Err(format!("the worker of shard {} was lost too: {}", loss.shard, loss.reason)));
            }
            self.losses.send_if_modified(|l| {
                l.is_none() && {
                    *l = Some(loss);
                    true
                }
            });
        }
    }

    /// TEARDOWN, then the stream's end (the master kills every executor and task).
    async fn teardown(&mut self) {
        self.framework.finish();
        if !self.session.is_subscribed() {
            return;
        }
        if let Err(e) = self.session.teardown().await {
            tracing::error!(error = %e, "TEARDOWN failed");
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(Ok(_)) = self.session.next_event().await {}
        })
        .await;
    }
}
