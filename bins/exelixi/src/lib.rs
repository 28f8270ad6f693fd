//! `exelixi`: the command line — `run` (in process or over worker processes), `worker`,
//! `mesos`, `nodes` and the Mesos executor — over a [`Catalog`] of problems. The `exelixi`
//! binary is [`main_with`] over the built-in ones; a binary of one's own is the same over
//! its own problems (`examples/queens`). It parses flags into a validated configuration
//! and calls the libraries; it holds no GA logic of its own.

mod catalog;
mod cli;
mod mesos;
mod progress;
mod report;
mod worker;

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;

pub use catalog::Catalog;
use clap::{CommandFactory, FromArgMatches};
use cli::{Cli, Command, RunConfig};
use ga_core::{Engine, GenerationStats, Outcome, Params, Problem};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uow::checkpoint::{self, Checkpoint, RunIdentity};
use uow::ga::{GaConfig, GaJob};
use uow::memory;

/// Exit status for bad input (flags, parameters), as clap and BSD's EX_USAGE convention.
const EXIT_USAGE: u8 = 2;
/// Exit status after Ctrl-C or SIGTERM (128 + SIGINT), as shells report it.
const EXIT_INTERRUPTED: u8 = 130;

/// Logs go to stderr (around the progress bar), filtered by `RUST_LOG` as `tracing`'s
/// targets (`warn`, `uow=debug,scheduler=info`, …); `warn` when unset.
fn init_logs() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let spec = std::env::var("RUST_LOG").unwrap_or_default();
    let targets = match spec.trim() {
        "" => tracing_subscriber::filter::Targets::new().with_default(tracing::Level::WARN),
        spec => spec.parse().unwrap_or_else(|e| {
            progress::say(&format!("warning: RUST_LOG={spec:?} is not a filter ({e}); logging warnings"));
            tracing_subscriber::filter::Targets::new().with_default(tracing::Level::WARN)
        }),
    };
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(|| progress::LogWriter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = tracing_subscriber::registry().with(logs).with(targets).try_init();
}

/// The whole command line over the problems of `catalog`: parses this process's
/// arguments, runs the command, and says how it ended (0; 1 for a failed run; 2 for bad
/// input; 130 after Ctrl-C). A binary's `main` is this call.
pub fn main_with(catalog: Catalog) -> ExitCode {
    init_logs();
    let name = std::env::args_os()
        .next()
        .and_then(|a| std::path::Path::new(&a).file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "exelixi".into());
    // clap names a command with a `&'static str` (without its `string` feature): once a process.
    let name: &'static str = Box::leak(name.into_boxed_str());
    let problems = format!("The problem: {}.", catalog.describe());
    let command = Cli::command()
        .name(name)
        .bin_name(name)
        .mut_subcommand("run", |c| c.mut_arg("problem", |a| a.help(problems.clone())))
        .mut_subcommand("mesos", |c| c.mut_arg("problem", |a| a.help(problems.clone())));
    let cli = match command.try_get_matches().and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // clap's first line names the flag and the problem; its usage tip follows.
            let text = e.to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: bad command line"));
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => {
            // --help, --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    match cli.command {
        Command::Run(args) => match RunConfig::from_run(*args, &catalog) {
            Ok(config) => run(&config, &catalog),
            Err(msg) => usage_error(&msg),
        },
        Command::Mesos(args) => match RunConfig::from_mesos(*args, &catalog) {
            Ok(config) => run(&config, &catalog),
            Err(msg) => usage_error(&msg),
        },
        Command::Nodes(args) => mesos::nodes(&args),
        Command::Executor(args) => mesos::executor(&args),
        Command::Worker(args) => match worker::serve(&args, catalog) {
            Ok(()) => ExitCode::SUCCESS,
            Err(msg) => {
                eprintln!("error: {msg}");
                ExitCode::FAILURE
            }
        },
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(EXIT_USAGE)
}

fn run(config: &RunConfig, catalog: &Catalog) -> ExitCode {
    match catalog.run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(RunError::Usage(e)) => usage_error(&e.to_string()),
        Err(RunError::Memory(why)) => usage_error(&why),
        Err(RunError::Interrupted) => {
            eprintln!("\ninterrupted: workers stopped");
            ExitCode::from(EXIT_INTERRUPTED)
        }
        // A closed stdout (e.g. `| head`) ends the run quietly.
        Err(RunError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why a run failed: bad parameters (exit 2), or the run itself (exit 1).
#[derive(Debug)]
pub(crate) enum RunError {
    Usage(ga_core::Error),
    /// The run would not fit in memory (exit 2, as bad input).
    Memory(String),
    Engine(ga_core::Error),
    Workers(String),
    /// Checkpoints could not be read or written (exit 1).
    Checkpoint(String),
    Output(io::Error),
    /// Ctrl-C or SIGTERM: the workers are stopped (exit 130).
    Interrupted,
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Usage(e) | RunError::Engine(e) => e.fmt(f),
            RunError::Workers(msg) | RunError::Memory(msg) | RunError::Checkpoint(msg) => f.write_str(msg),
            RunError::Output(e) => write!(f, "cannot write the report: {e}"),
            RunError::Interrupted => f.write_str("interrupted: workers stopped"),
        }
    }
}

/// Prints each generation's line, draws the progress bar and tells the status board.
/// Once stdout fails (a reader that went away, as `| head -1` does) it cancels the run:
/// nobody reads what follows.
struct Printer<W: Write> {
    out: W,
    json: bool,
    write_error: Option<io::Error>,
    board: Option<Arc<status::Board>>,
}

impl<W: Write> ga_core::Observer for Printer<W> {
    fn on_generation(&mut self, stats: &GenerationStats) {
        if let Some(board) = &self.board {
            board.generation(stats);
        }
        progress::update(stats);
        if self.write_error.is_some() {
            return;
        }
        let line = if self.json { report::generation_json(stats).to_string() } else { report::generation_line(stats) };
        let out = &mut self.out;
        if let Err(e) = progress::around_stdout(|| writeln!(out, "{line}").and_then(|()| out.flush())) {
            self.write_error = Some(e);
        }
    }

    fn cancelled(&self) -> bool {
        self.write_error.is_some()
    }
}

/// Runs the multi-objective `problem` with NSGA-II in this process, as `config` says, and
/// prints a line per generation (its front's size, and hypervolume where the problem has a
/// reference point) and the final non-dominated front (`front` lines: the objectives, then
/// the genome), or JSON lines.
pub(crate) fn run_multi<P>(problem: &P, config: &RunConfig) -> Result<(), RunError>
where
    P: ga_core::moo::MultiObjective,
    P::Genome: Serialize + DeserializeOwned,
{
    let refuse = |name: &'static str, value: &str| {
        Err(RunError::Usage(ga_core::Error::InvalidParam {
            name,
            value: value.to_string(),
            expected: "not with a multi-objective problem: NSGA-II runs in process only, so far",
        }))
    };
    if let Some(addr) = &config.status {
        return refuse("status", addr);
    }
    if config.checkpoint.is_some() || config.resume.is_some() {
        return refuse("checkpoint", "given");
    }
    let p = &config.params;
    let generations = p.gens.unwrap_or(250);
    if generations == 0 {
        return refuse("gens", "0");
    }
    let settings = ga_core::moo::Nsga2 {
        population: p.pop.unwrap_or(100),
        generations: generations - 1,
        crossover_rate: p.crossover_rate.unwrap_or(0.9),
        seed: config.seed,
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut failed: Option<io::Error> = None;
    let mut observer = |s: &ga_core::moo::FrontStats| {
        if failed.is_some() {
            return;
        }
        let line = if config.json {
            serde_json::json!({"gen": s.generation, "size": s.size, "total": s.evaluations, "front": s.front, "hv": s.hypervolume})
                .to_string()
        } else {
            let hv = s.hypervolume.map(|h| format!("\thv\t{h:.6}")).unwrap_or_default();
            format!("gen\t{}\tsize\t{}\ttotal\t{}\tfront\t{}{hv}", s.generation, s.size, s.evaluations, s.front)
        };
        if let Err(e) = progress::around_stdout(|| writeln!(out, "{line}").and_then(|()| out.flush())) {
            failed = Some(e);
        }
    };
    let (population, evaluations) = match config.workers {
        None => settings.run_observed(problem, &mut observer).map_err(RunError::Usage)?,
        Some(n) => {
            // Each worker evaluates a slice of every generation; the framework breeds and
            // selects. A lost worker is replaced and the run starts again (the same run:
            // workers hold nothing), printing only what it had not printed.
            let moo = uow::moo::MooConfig { problem: config.problem.clone(), size: config.size };
            let mut job = uow::moo::Nsga2Job::new(problem, moo, settings, &mut observer);
            let options = run_options(config, None);
            let outcome = match &config.mesos {
                None => uow::run(&mut job, &mut local_workers(config.compute_class)?, n, &options),
                Some(m) => {
                    let mut workers = mesos_workers(m, config.compute_class)?;
                    let outcome = uow::run(&mut job, &mut workers, n, &options);
                    say_placement(&workers, m, n);
                    outcome
                }
            };
            outcome.map_err(run_error)?
        }
    };
    if let Some(e) = failed {
        return Err(RunError::Output(e));
    }
    let mut front: Vec<&ga_core::moo::Solution<P::Genome>> = population.iter().filter(|s| s.rank == 0).collect();
    front.sort_by(|a, b| {
        a.evaluation
            .objectives
            .iter()
            .zip(&b.evaluation.objectives)
            .fold(std::cmp::Ordering::Equal, |o, (x, y)| o.then(x.total_cmp(y)))
    });
    if let Some(path) = &config.plot {
        let points = ga_core::moo::front_points(front.iter().copied());
        let title = format!("{}, seed {}: the last front ({} points)", config.problem, config.seed, points.len());
        std::fs::write(path, status::plot::front_svg(&points, &title, 700, 500)).map_err(|e| {
            RunError::Output(io::Error::new(e.kind(), format!("cannot write the plot {}: {e}", path.display())))
        })?;
    }
    let last = generations - 1;
    let written = (|| -> io::Result<()> {
        if config.json {
            let front: Vec<serde_json::Value> = front
                .iter()
                .map(|s| serde_json::json!({"objectives": s.evaluation.objectives, "violation": s.evaluation.violation, "genome": serde_json::to_value(&s.genome).unwrap_or(serde_json::Value::Null)}))
                .collect();
            let result = serde_json::json!({"result": {"stop": "generations", "generations": generations, "evaluations": evaluations, "front": front}});
            writeln!(out, "{result}")?;
        } else {
            for s in &front {
                let objectives: Vec<String> = s.evaluation.objectives.iter().map(|v| format!("{v:.6}")).collect();
                let genome = serde_json::to_string(&s.genome).unwrap_or_default();
                writeln!(out, "front\t{}\t{genome}", objectives.join("\t"))?;
            }
            writeln!(out, "# stopped: all n_gen generations ran at generation {last}")?;
        }
        out.flush()
    })();
    written.map_err(RunError::Output)
}

/// Runs `problem` as `config` says (in process, over workers or on Mesos) and prints the
/// report: what every problem of a [`Catalog`] does on `run` and `mesos`.
pub(crate) fn run_problem<P>(problem: P, config: &RunConfig) -> Result<(), RunError>
where
    P: Problem + 'static,
    P::Genome: Serialize + DeserializeOwned,
{
    let params = config.params.apply(problem.params()).map_err(RunError::Usage)?;
    let shards = config.workers.unwrap_or(1);
    params.check_shards(shards).map_err(RunError::Usage)?;
    // Before anything is allocated: the allocator aborts a process it cannot serve.
    // On Mesos the shards live on the agents (each worker checks its own).
    let here = if config.mesos.is_some() { 0 } else { shards };
    memory::check_memory(&problem, &params, shards, here, "a run")
        .map_err(|why| RunError::Memory(format!("invalid configuration: {why}")))?;
    let board = (config.status.is_some() || config.plot.is_some()).then(|| {
        let title = match config.size {
            Some(size) => format!("{}-{size}, seed {}", config.problem.as_str(), config.seed),
            None => format!("{}, seed {}", config.problem.as_str(), config.seed),
        };
        let mode = match (&config.mesos, config.workers) {
            (Some(m), Some(n)) => format!("{n} workers on Mesos ({})", m.master),
            (None, Some(n)) => format!("{n} worker processes on this machine"),
            _ => "in process".to_string(),
        };
        Arc::new(status::Board::new(&title, &mode))
    });
    let _server = match (&config.status, &board) {
        (Some(addr), Some(board)) => {
            let server = status::serve(addr, board.clone()).map_err(|e| RunError::Workers(e.to_string()))?;
            progress::say(&format!("exelixi: status page at http://{}/", server.addr()));
            Some(server)
        }
        _ => None,
    };
    let stdout = io::stdout();
    progress::start(&params);
    let mut observer =
        Printer { out: io::BufWriter::new(stdout.lock()), json: config.json, write_error: None, board: board.clone() };
    let identity = RunIdentity {
        problem: config.problem.as_str().to_string(),
        size: config.size,
        params: params.clone(),
        seed: config.seed,
        shards,
    };
    let resume = config.resume.as_deref().map(|dir| resume(dir, &identity)).transpose()?;
    let writer = config
        .checkpoint
        .as_deref()
        .map(checkpoint::Writer::new)
        .transpose()
        .map_err(|e| RunError::Checkpoint(format!("cannot write checkpoints: {e}")))?;
    let checkpoints = (writer.as_ref(), resume);
    // `mesos` always has workers (its flags are refused without --workers).
    let outcome = match config.workers {
        Some(n) => over_workers(&problem, config, params, n, checkpoints, &mut observer, board.as_ref()),
        None => in_process(&problem, config, params, checkpoints, identity, &mut observer),
    };
    progress::finish();
    let why = match &outcome {
        Ok(o) => format!("{} at generation {}", o.stop.describe(), o.last.generation),
        Err(e) => format!("failed: {e}"),
    };
    if let Some(board) = &board {
        board.stopped(&why);
    }
    if let (Some(path), Some(board)) = (&config.plot, &board) {
        std::fs::write(path, board.plot(900, 450)).map_err(|e| {
            RunError::Output(io::Error::new(e.kind(), format!("cannot write the plot {}: {e}", path.display())))
        })?;
    }
    // The last checkpoint on disk before the run says it is over.
    let flushed = writer.as_ref().map(checkpoint::Writer::flush);
    if let (Ok(_), Some(Err(e))) = (&outcome, flushed) {
        return Err(RunError::Checkpoint(format!("cannot write a checkpoint: {e}")));
    }
    // A failed run is reported even when stdout is gone: a closed pipe (quiet exit 0,
    // as for `| head`) must not hide a lost worker or a bad fitness.
    let outcome = outcome?;
    let Printer { mut out, write_error, .. } = observer;
    if let Some(e) = write_error {
        return Err(RunError::Output(e));
    }
    let measure = |g: &P::Genome| problem.measure(g);
    progress::around_stdout(|| {
        report::write_outcome(&mut out, &outcome, config.json, &measure)?;
        if !config.json {
            // The original's readers skip it: every other line starts with a keyword.
            writeln!(out, "# stopped: {why}")?;
        }
        out.flush()
    })
    .map_err(RunError::Output)
}

/// Where a run's checkpoints go, and the one it resumes from.
type Checkpointing<'w> = (Option<&'w checkpoint::Writer>, Option<Checkpoint>);

/// The newest checkpoint of this run in `dir`, saying on stderr which, and which newer
/// files were skipped.
fn resume(dir: &std::path::Path, identity: &RunIdentity) -> Result<Checkpoint, RunError> {
    let (path, found, skipped) =
        checkpoint::resume(dir, identity).map_err(|e| RunError::Checkpoint(format!("cannot resume: {e}")))?;
    for why in skipped {
        progress::say(&format!("warning: {why}"));
    }
    progress::say(&format!("exelixi: resuming from {} (generation {})", path.display(), found.progress.generation));
    Ok(found)
}

/// Runs the GA in this process, with checkpoints if asked.
fn in_process<P>(
    problem: &P,
    config: &RunConfig,
    params: Params,
    (writer, resume): Checkpointing<'_>,
    identity: RunIdentity,
    observer: &mut dyn ga_core::Observer,
) -> Result<Outcome<P::Genome>, RunError>
where
    P: Problem,
    P::Genome: Serialize + DeserializeOwned,
{
    let engine =
        Engine::new(problem).params(params).seed(config.seed).threads(config.threads).map_err(RunError::Usage)?;
    if writer.is_none() && resume.is_none() {
        return engine.run(observer).map_err(RunError::Engine);
    }
    let resume = match resume {
        None => None,
        Some(c) => {
            let shards = c
                .shards
                .iter()
                .map(|bytes| uow::decode("shard state", bytes))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| RunError::Checkpoint(format!("the checkpoint's shard does not decode: {e}")))?;
            Some(ga_core::RunState { progress: c.progress, shards })
        }
    };
    let mut keep = |state: &ga_core::RunState<P::Genome>| {
        let Some(writer) = writer else { return Ok(()) };
        let shards = state
            .shards
            .iter()
            .map(|s| uow::encode("shard state", s).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        writer.submit(Checkpoint { identity: identity.clone(), progress: state.progress, shards })
    };
    let every = if writer.is_some() { config.checkpoint_every } else { 0 };
    engine.run_checkpointed(observer, ga_core::Checkpoints { resume, every, keep: &mut keep }).map_err(RunError::Engine)
}

/// Worker processes of this very binary (`worker`) on 127.0.0.1, started by the run.
fn local_workers(
    class: worker_service::ComputeClass,
) -> Result<uow::LocalProcesses<impl Fn(u32) -> std::process::Command>, RunError> {
    let exe = std::env::current_exe().map_err(|e| RunError::Workers(format!("cannot find this executable: {e}")))?;
    let class = class.to_string();
    Ok(uow::LocalProcesses::new(move |_| {
        let mut worker = std::process::Command::new(&exe);
        worker.args(["worker", "--port", "0", "--host", "127.0.0.1", "--exit-with-parent", "--compute-class", &class]);
        worker
    }))
}

/// Runs the GA over `n` workers: processes on this machine (none outlives the run), or
/// executors placed on Mesos agents when the run is `exelixi mesos`.
fn over_workers<P>(
    problem: &P,
    config: &RunConfig,
    params: Params,
    n: u32,
    checkpoints: Checkpointing<'_>,
    observer: &mut dyn ga_core::Observer,
    board: Option<&Arc<status::Board>>,
) -> Result<Outcome<P::Genome>, RunError>
where
    P: Problem,
    P::Genome: Serialize + DeserializeOwned,
{
    let watch = board.map(|b| b.clone() as Arc<dyn uow::RunWatch>);
    let Some(m) = &config.mesos else {
        let mut workers = local_workers(config.compute_class)?;
        // Workers on this host hand their snapshots' members over through memory files
        // (a run over workers always takes snapshots: --checkpoint-every is at least 1).
        let spill = uow::spill::SpillDir::new()
            .inspect_err(|e| tracing::warn!(error = %e, "no spill folder: snapshots travel in the answers"))
            .ok();
        // The cores are shared by the workers: each gets its part unless told otherwise.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let threads = if config.threads == 0 { (cores / n as usize).max(1) } else { config.threads };
        return distributed(
            problem,
            config,
            params,
            Workers { n, threads, watch, spill: spill.as_ref() },
            &mut workers,
            checkpoints,
            observer,
        );
    };
    let mut workers = mesos_workers(m, config.compute_class)?;
    // Each worker's fitness threads: its task's CPUs (the output does not depend on them).
    let threads = if config.threads == 0 { (m.cpus.floor() as usize).max(1) } else { config.threads };
    if let Some(board) = board {
        board.set_mesos(workers.viewer());
    }
    let outcome = distributed(
        problem,
        config,
        params,
        Workers { n, threads, watch, spill: None },
        &mut workers,
        checkpoints,
        observer,
    );
    say_placement(&workers, m, n);
    outcome
}

/// What the original logged after a Mesos run: the framework, and each agent's telemetry.
fn say_placement(workers: &scheduler::MesosWorkers, m: &cli::MesosConfig, n: u32) {
    if let Some(id) = workers.framework_id() {
        progress::say(&format!("mesos: framework {id} on master {}", m.master));
    }
    if let Some(took) = workers.placement_time() {
        progress::say(&format!("mesos: {n} workers serving {:.3} s after the start of placement", took.as_secs_f64()));
    }
    for slot in workers.slots() {
        let telemetry = slot.telemetry.as_deref().unwrap_or("null");
        progress::say(&format!(
            "mesos: shard {} on agent {} ({}): telemetry {telemetry}",
            slot.shard, slot.agent_id, slot.hostname
        ));
    }
}

/// How many workers a run has, each one's fitness threads, who watches them, and where
/// they spill snapshots when they share this host.
struct Workers<'s> {
    n: u32,
    threads: usize,
    watch: Option<Arc<dyn uow::RunWatch>>,
    spill: Option<&'s uow::spill::SpillDir>,
}

/// Runs the GA over `n` workers from `workers`, each with `threads` fitness threads.
fn distributed<P>(
    problem: &P,
    config: &RunConfig,
    params: Params,
    Workers { n, threads, watch, spill }: Workers<'_>,
    workers: &mut dyn uow::Workers,
    (writer, resume): Checkpointing<'_>,
    observer: &mut dyn ga_core::Observer,
) -> Result<Outcome<P::Genome>, RunError>
where
    P: Problem,
    P::Genome: Serialize + DeserializeOwned,
{
    let job_config = GaConfig {
        problem: config.problem.as_str().to_string(),
        size: config.size,
        params,
        seed: config.seed,
        threads,
    };
    let mut job = GaJob::new(problem, job_config, observer).with_checkpoints(config.checkpoint_every, writer);
    if let Some(dir) = spill {
        job = job.with_spill(dir);
    }
    if let Some(c) = resume {
        job = job.resume_from(c);
    }
    uow::run(&mut job, workers, n, &run_options(config, watch)).map_err(run_error)
}

/// How a run over workers goes: the phase timeout and recoveries of `config`, Ctrl-C
/// handled, each recovery said on stderr, `watch` told.
fn run_options(config: &RunConfig, watch: Option<Arc<dyn uow::RunWatch>>) -> uow::RunOptions {
    uow::RunOptions {
        phase_timeout: Some(config.phase_timeout),
        handle_signals: true,
        max_recoveries: config.max_recoveries,
        on_recovery: Some(Arc::new(|r: &uow::Recovery| progress::say(&format!("exelixi: {r}")))),
        watch,
    }
}

fn run_error(e: uow::RunError) -> RunError {
    match e {
        uow::RunError::Interrupted => RunError::Interrupted,
        other => RunError::Workers(other.to_string()),
    }
}

/// The workers of an `exelixi mesos` run, with the credentials of the environment.
fn mesos_workers(
    m: &cli::MesosConfig,
    class: worker_service::ComputeClass,
) -> Result<scheduler::MesosWorkers, RunError> {
    let credential = mesos_client::scheduler::Credential::from_env().map_err(|e| RunError::Workers(e.to_string()))?;
    Ok(mesos::workers(m, credential, class))
}
