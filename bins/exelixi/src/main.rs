//! `exelixi`: the command line. It parses flags into a validated configuration and calls
//! the libraries; it holds no GA logic of its own.

mod cli;
mod memory;
mod problems;
mod progress;
mod report;
mod worker;

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use cli::{Cli, Command, RunConfig};
use ga_core::{Engine, GenerationStats, Outcome, Params, Problem};
use problems::WithProblem;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uow::ga::{GaConfig, GaJob};
use uow::{RemoteCluster, UnitOfWork};

/// Exit status for bad input (flags, parameters), as clap and BSD's EX_USAGE convention.
const EXIT_USAGE: u8 = 2;
/// Exit status after Ctrl-C or SIGTERM (128 + SIGINT), as shells report it.
const EXIT_INTERRUPTED: i32 = 130;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
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
        Command::Run(args) => match RunConfig::try_from(*args) {
            Ok(config) => run(&config),
            Err(msg) => usage_error(&msg),
        },
        Command::Worker(args) => match worker::serve(&args) {
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

fn run(config: &RunConfig) -> ExitCode {
    match problems::visit(config.problem, config.size, RunProblem(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(RunError::Usage(e)) => usage_error(&e.to_string()),
        Err(RunError::Memory(why)) => usage_error(&why),
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
enum RunError {
    Usage(ga_core::Error),
    /// The run would not fit in memory (exit 2, as bad input).
    Memory(String),
    Engine(ga_core::Error),
    Workers(String),
    Output(io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Usage(e) | RunError::Engine(e) => e.fmt(f),
            RunError::Workers(msg) | RunError::Memory(msg) => f.write_str(msg),
            RunError::Output(e) => write!(f, "cannot write the report: {e}"),
        }
    }
}

/// Prints each generation's line and draws the progress bar. Once stdout fails (a reader
/// that went away, as `| head -1` does) it cancels the run: nobody reads what follows.
struct Printer<W: Write> {
    progress: progress::Progress,
    out: W,
    json: bool,
    write_error: Option<io::Error>,
}

impl<W: Write> ga_core::Observer for Printer<W> {
    fn on_generation(&mut self, stats: &GenerationStats) {
        self.progress.update(stats);
        if self.write_error.is_some() {
            return;
        }
        let line = if self.json { report::generation_json(stats).to_string() } else { report::generation_line(stats) };
        if let Err(e) = writeln!(self.out, "{line}").and_then(|()| self.out.flush()) {
            self.write_error = Some(e);
        }
    }

    fn cancelled(&self) -> bool {
        self.write_error.is_some()
    }
}

struct RunProblem<'a>(&'a RunConfig);

impl WithProblem for RunProblem<'_> {
    type Output = Result<(), RunError>;

    fn with<P>(self, problem: P) -> Result<(), RunError>
    where
        P: Problem + 'static,
        P::Genome: Serialize + DeserializeOwned,
    {
        let config = self.0;
        let params = config.params.apply(problem.params()).map_err(RunError::Usage)?;
        let shards = config.workers.unwrap_or(1);
        params.check_shards(shards).map_err(RunError::Usage)?;
        // Before anything is allocated: the allocator aborts a process it cannot serve.
        memory::check(&problem, &params, shards, shards, "a run")
            .map_err(|why| RunError::Memory(format!("invalid configuration: {why}")))?;
        let stdout = io::stdout();
        let mut observer = Printer {
            progress: progress::Progress::new(&params),
            out: io::BufWriter::new(stdout.lock()),
            json: config.json,
            write_error: None,
        };
        let outcome = match config.workers {
            None => Engine::new(problem)
                .params(params)
                .seed(config.seed)
                .threads(config.threads)
                .map_err(RunError::Usage)?
                .run(&mut observer)
                .map_err(RunError::Engine),
            Some(n) => run_on_workers(&problem, config, params, n, &mut observer),
        };
        observer.progress.finish();
        // A failed run is reported even when stdout is gone: a closed pipe (quiet exit 0,
        // as for `| head`) must not hide a lost worker or a bad fitness.
        let outcome = outcome?;
        let Printer { mut out, write_error, .. } = observer;
        if let Some(e) = write_error {
            return Err(RunError::Output(e));
        }
        report::write_outcome(&mut out, &outcome, config.json).and_then(|()| out.flush()).map_err(RunError::Output)
    }
}

/// Runs the GA over `n` worker processes on this machine; none outlives the run.
fn run_on_workers<P>(
    problem: &P,
    config: &RunConfig,
    params: Params,
    n: u32,
    observer: &mut dyn ga_core::Observer,
) -> Result<Outcome<P::Genome>, RunError>
where
    P: Problem,
    P::Genome: Serialize + DeserializeOwned,
{
    let fail = |msg: String| RunError::Workers(msg);
    let token = worker_service::generate_token().map_err(|e| fail(format!("cannot make a run token: {e}")))?;
    let run_id = token[..8].to_string();
    let exe = std::env::current_exe().map_err(|e| fail(format!("cannot find this executable: {e}")))?;
    let fleet = worker_service::Fleet::start(n, &token, |_| {
        let mut worker = std::process::Command::new(&exe);
        worker.args(["worker", "--port", "0", "--host", "127.0.0.1", "--exit-with-parent"]);
        worker
    })
    .map_err(|e| fail(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| fail(format!("cannot start the async runtime: {e}")))?;
    let killer = fleet.killer();
    runtime.spawn(async move {
        interrupted().await;
        killer.kill_all();
        eprintln!("\ninterrupted: workers stopped");
        std::process::exit(EXIT_INTERRUPTED);
    });
    // The cores are shared by the workers: each gets its part unless told otherwise.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = if config.threads == 0 { (cores / n as usize).max(1) } else { config.threads };
    let job_config = GaConfig {
        problem: config.problem.as_str().to_string(),
        size: config.size,
        params,
        seed: config.seed,
        threads,
    };
    let mut job = GaJob::new(problem, job_config, observer);
    let endpoints = fleet.endpoints();
    let result = runtime
        .block_on(RemoteCluster::configure(runtime.handle().clone(), &job, &endpoints, &token, &run_id))
        .map(|cluster| cluster.with_phase_timeout(Some(config.phase_timeout)))
        .and_then(|mut cluster| {
            let outcome = job.orchestrate(&mut cluster)?;
            runtime.block_on(cluster.stop())?;
            Ok(outcome)
        });
    match result {
        Ok(outcome) => {
            fleet.finish(Duration::from_secs(5));
            Ok(outcome)
        }
        Err(e) => {
            let lost = fleet.lost();
            drop(fleet);
            let msg = if lost.is_empty() {
                format!("the run failed: {e}")
            } else {
                format!("lost worker {}: {e}", lost.join("; lost worker "))
            };
            Err(fail(msg))
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
