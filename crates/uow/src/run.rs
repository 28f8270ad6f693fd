//! A job run over worker services, wherever the workers come from: the seam between the
//! framework's logic (configure, orchestrate, stop) and what places the workers —
//! processes on this machine ([`LocalProcesses`]) or Mesos executors (the `scheduler`
//! crate). `exelixi run --workers`, `exelixi mesos`, the benchmark and a user's own binary
//! all run through [`run`].

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::watch;
use worker_service::{Fleet, Killer};

use crate::{ClusterError, RemoteCluster, RunWatch, UnitOfWork, UowError};

/// A worker lost as its supervisor saw it (e.g. Mesos reporting the task failed), possibly
/// before any call to it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loss {
    /// The shard.
    pub shard: u32,
    /// What happened, for the user.
    pub reason: String,
}

/// Where a run's workers come from.
pub trait Workers {
    /// Starts `n` workers that accept `token`, one per shard, and returns their endpoints
    /// in shard order. Called on a plain thread (it may block); `runtime` is the run's.
    fn start(&mut self, runtime: &Handle, n: u32, token: &str) -> Result<Vec<String>, String>;

    /// The worker of `shard` described for the user, with what became of it if known
    /// (e.g. "pid 42, http://…, was killed by signal 9", or its executor and agent).
    fn describe(&self, shard: u32) -> String;

    /// Something that stops every worker from another thread (on Ctrl-C or SIGTERM); after
    /// it, [`Workers::start`] and the run's phases fail soon.
    fn stopper(&self) -> Box<dyn Fn() + Send + Sync>;

    /// Losses noticed by whoever supervises the workers: the run ends with the first one
    /// even when no call to that worker has failed yet.
    fn losses(&self) -> Option<watch::Receiver<Option<Loss>>> {
        None
    }

    /// Replaces the worker of `shard`, lost: starts a new one that accepts `token` (the old
    /// one stopped first if it still runs) and returns its endpoint. Workers that cannot be
    /// replaced say so (the default), and the run ends with the loss.
    fn replace(&mut self, runtime: &Handle, shard: u32, token: &str) -> Result<String, String> {
        let _ = (runtime, shard, token);
        Err("these workers cannot be replaced".into())
    }

    /// The run is over, `completed` or not: release every worker (after a completed run
    /// they were asked to stop and may be given a moment to exit by themselves).
    fn finish(&mut self, runtime: &Handle, completed: bool);
}

/// Why a distributed run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Something this process needs (randomness, an async runtime) is missing.
    #[error("{0}")]
    Setup(String),
    /// The workers could not be started or placed.
    #[error("cannot start the workers: {0}")]
    Start(String),
    /// A shard's worker was lost.
    #[error("lost the worker of shard {shard} ({worker}) during phase {phase:?}: {reason}")]
    Lost {
        /// The shard.
        shard: u32,
        /// Its worker, as [`Workers::describe`] says.
        worker: String,
        /// The phase under way.
        phase: String,
        /// What the transport or the supervisor said.
        reason: String,
    },
    /// A worker refused, or the job failed.
    #[error(transparent)]
    Job(UowError),
    /// Ctrl-C or SIGTERM.
    #[error("interrupted")]
    Interrupted,
}

/// A lost worker replaced and the job set to go on: what [`RunOptions::on_recovery`] is
/// told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// This recovery's number in the run (from 1).
    pub number: u32,
    /// [`RunOptions::max_recoveries`].
    pub max: u32,
    /// The shard whose worker was lost.
    pub shard: u32,
    /// The lost worker, as [`Workers::describe`] said.
    pub lost: String,
    /// The phase under way.
    pub phase: String,
    /// What the transport or the supervisor said.
    pub reason: String,
    /// The new worker's endpoint.
    pub replacement: String,
    /// What the job restores, as [`UnitOfWork::recover`] said.
    pub restored: String,
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "recovery {} of {}: lost the worker of shard {} ({}) during phase {:?}: {}; shard {} now served at {}; {}",
            self.number,
            self.max,
            self.shard,
            self.lost,
            self.phase,
            self.reason,
            self.shard,
            self.replacement,
            self.restored
        )
    }
}

/// What [`RunOptions::on_recovery`] calls.
pub type RecoveryHook = Arc<dyn Fn(&Recovery) + Send + Sync>;

/// How a run goes.
#[derive(Clone)]
pub struct RunOptions {
    /// Give up on a worker silent for this long in one phase (`None`: wait while it lives).
    pub phase_timeout: Option<Duration>,
    /// Stop the workers on Ctrl-C or SIGTERM and end with [`RunError::Interrupted`].
    pub handle_signals: bool,
    /// Lost workers replaced in one run (when the job can go on, see
    /// [`UnitOfWork::recover`]); the next loss ends the run with [`RunError::Lost`].
    pub max_recoveries: u32,
    /// Told of each recovery (e.g. to print it).
    pub on_recovery: Option<RecoveryHook>,
    /// Told of placements, phase answers, losses and recoveries (a status page, metrics).
    pub watch: Option<Arc<dyn RunWatch>>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("phase_timeout", &self.phase_timeout)
            .field("handle_signals", &self.handle_signals)
            .field("max_recoveries", &self.max_recoveries)
            .field("on_recovery", &self.on_recovery.as_ref().map(|_| "…"))
            .field("watch", &self.watch.as_ref().map(|_| "…"))
            .finish()
    }
}

/// [`RunOptions::max_recoveries`]'s default.
pub const DEFAULT_MAX_RECOVERIES: u32 = 3;

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            phase_timeout: Some(Duration::from_secs(600)),
            handle_signals: true,
            max_recoveries: DEFAULT_MAX_RECOVERIES,
            on_recovery: None,
            watch: None,
        }
    }
}

/// Runs `job` over `n` workers from `workers`: a fresh token for the run, the workers
/// started, one shard configured on each, the job orchestrated, the workers stopped. No
/// worker outlives the call, whatever happens.
pub fn run<U: UnitOfWork>(
    job: &mut U,
    workers: &mut dyn Workers,
    n: u32,
    options: &RunOptions,
) -> Result<U::Output, RunError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| RunError::Setup(format!("{what}: {e}"));
    let token = worker_service::generate_token().map_err(|e| setup("cannot make a run token", &e))?;
    // Shown in workers' logs: random on its own, never a part of the token.
    let run_id = worker_service::generate_token().map_err(|e| setup("cannot make a run id", &e))?[..8].to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| setup("cannot start the async runtime", &e))?;
    let interrupted = Arc::new(AtomicBool::new(false));
    if options.handle_signals {
        let (stop, flag) = (workers.stopper(), interrupted.clone());
        runtime.spawn(async move {
            interrupted_by_signal().await;
            flag.store(true, Ordering::SeqCst);
            stop();
        });
    }
    let result = run_on(&runtime, job, workers, n, options, &token, &run_id);
    workers.finish(runtime.handle(), result.is_ok());
    // A phase may still be computing on a blocking thread: do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(500));
    if interrupted.load(Ordering::SeqCst) {
        return Err(RunError::Interrupted);
    }
    result
}

fn run_on<U: UnitOfWork>(
    runtime: &tokio::runtime::Runtime,
    job: &mut U,
    workers: &mut dyn Workers,
    n: u32,
    options: &RunOptions,
    token: &str,
    run_id: &str,
) -> Result<U::Output, RunError> {
    let mut endpoints = workers.start(runtime.handle(), n, token).map_err(RunError::Start)?;
    let watch = options.watch.as_deref();
    if let Some(w) = watch {
        for (shard, endpoint) in endpoints.iter().enumerate() {
            w.placed(shard as u32, endpoint, &workers.describe(shard as u32));
        }
    }
    let mut recoveries = 0;
    // Each configuration of the workers has its own id: a batch sent under an earlier one
    // (by a worker that had not yet heard of a loss) is refused, never admitted.
    let mut configuration = run_id.to_string();
    loop {
        let err = match orchestrate_on(runtime, job, workers, &endpoints, options, token, &configuration) {
            Ok(output) => return Ok(output),
            Err(e) => e,
        };
        let UowError::Cluster(ClusterError::Lost { shard, endpoint: _, phase, reason }) = err else {
            return Err(RunError::Job(err));
        };
        let lost = workers.describe(shard);
        tracing::info!(shard, worker = %lost, %phase, %reason, "worker lost");
        if let Some(w) = watch {
            w.lost(shard, &lost, &phase, &reason);
        }
        let gave_up = |reason: String| RunError::Lost { shard, worker: lost.clone(), phase: phase.clone(), reason };
        if recoveries >= options.max_recoveries {
            return Err(gave_up(if options.max_recoveries == 0 {
                reason
            } else {
                format!("{reason} (after {recoveries} recoveries, the most allowed)")
            }));
        }
        let Some(restored) = job.recover() else { return Err(gave_up(reason)) };
        let replacement = match workers.replace(runtime.handle(), shard, token) {
            Ok(endpoint) => endpoint,
            Err(why) => return Err(gave_up(format!("{reason}; no replacement: {why}"))),
        };
        endpoints[shard as usize].clone_from(&replacement);
        recoveries += 1;
        configuration = format!("{run_id}.r{recoveries}");
        let recovery = Recovery {
            number: recoveries,
            max: options.max_recoveries,
            shard,
            lost,
            phase,
            reason,
            replacement,
            restored,
        };
        tracing::info!(shard, replacement = %recovery.replacement, restored = %recovery.restored, "worker replaced");
        if let Some(w) = watch {
            w.placed(shard, &recovery.replacement, &workers.describe(shard));
            w.recovered(&recovery);
        }
        if let Some(tell) = &options.on_recovery {
            tell(&recovery);
        }
    }
}

/// Configures the workers at `endpoints` as `configuration` and orchestrates the job
/// over them; on success asks them to stop. A worker that cannot be told (lost after the
/// job's end) changes nothing: the output is whole, and [`Workers::finish`] releases it.
fn orchestrate_on<U: UnitOfWork>(
    runtime: &tokio::runtime::Runtime,
    job: &mut U,
    workers: &dyn Workers,
    endpoints: &[String],
    options: &RunOptions,
    token: &str,
    configuration: &str,
) -> Result<U::Output, UowError> {
    let mut cluster = runtime
        .block_on(RemoteCluster::configure(runtime.handle().clone(), job, endpoints, token, configuration))?
        .with_phase_timeout(options.phase_timeout)
        .with_losses(workers.losses())
        .with_watch(options.watch.clone());
    let outcome = job.orchestrate(&mut cluster)?;
    let _ = runtime.block_on(cluster.stop());
    Ok(outcome)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn interrupted_by_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

/// Workers as processes on this machine, through [`Fleet`]: shard `i` runs `command(i)`, a
/// program that calls [`worker_service::serve_process`] with `exit_with_parent` (e.g.
/// `exelixi worker --port 0 --exit-with-parent`).
pub struct LocalProcesses<F> {
    command: F,
    fleet: Option<Fleet>,
    /// The fleet's killer once started, and whether a stop came first.
    stop: Arc<Mutex<(Option<Killer>, bool)>>,
}

impl<F: Fn(u32) -> Command> LocalProcesses<F> {
    /// Workers started with `command`.
    pub fn new(command: F) -> Self {
        Self { command, fleet: None, stop: Arc::default() }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<F: Fn(u32) -> Command> Workers for LocalProcesses<F> {
    fn start(&mut self, _runtime: &Handle, n: u32, token: &str) -> Result<Vec<String>, String> {
        let fleet = Fleet::start(n, token, &self.command).map_err(|e| e.to_string())?;
        let mut stop = lock(&self.stop);
        if stop.1 {
            return Err("stopped while starting".into());
        }
        stop.0 = Some(fleet.killer());
        drop(stop);
        let endpoints = fleet.endpoints();
        self.fleet = Some(fleet);
        Ok(endpoints)
    }

    fn describe(&self, shard: u32) -> String {
        self.fleet.as_ref().map_or_else(|| "not started".to_string(), |f| f.describe(shard))
    }

    fn stopper(&self) -> Box<dyn Fn() + Send + Sync> {
        let stop = self.stop.clone();
        Box::new(move || {
            let mut stop = lock(&stop);
            stop.1 = true;
            if let Some(killer) = &stop.0 {
                killer.kill_all();
            }
        })
    }

    fn replace(&mut self, _runtime: &Handle, shard: u32, token: &str) -> Result<String, String> {
        let fleet = self.fleet.as_ref().ok_or("the workers were not started")?;
        if lock(&self.stop).1 {
            return Err("stopped".into());
        }
        fleet.replace(shard, token, &self.command).map_err(|e| e.to_string())
    }

    fn finish(&mut self, _runtime: &Handle, completed: bool) {
        if let Some(fleet) = self.fleet.take() {
            if completed {
                fleet.finish(Duration::from_secs(5));
            }
            // Dropping it kills and reaps whatever is left.
        }
    }
}
