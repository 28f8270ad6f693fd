//! `exelixi`: the command line. It parses flags into a validated configuration and calls
//! the libraries; it holds no GA logic of its own.

mod cli;
mod progress;
mod report;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command, ProblemName, RunConfig};
use ga_core::problems::{Knapsack, OneMax, Rastrigin, Sum231, Tsp};
use ga_core::{Engine, Problem};

/// Exit status for bad input (flags, parameters), as clap and BSD's EX_USAGE convention.
const EXIT_USAGE: u8 = 2;

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
        Command::Run(args) => match RunConfig::try_from(args) {
            Ok(config) => run(&config),
            Err(msg) => usage_error(&msg),
        },
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(EXIT_USAGE)
}

fn run(config: &RunConfig) -> ExitCode {
    let size = config.size;
    let result = match config.problem {
        ProblemName::Sum231 => run_problem(Sum231 { length: size.unwrap_or(5), ..Sum231::default() }, config),
        ProblemName::OneMax => run_problem(OneMax { bits: size.unwrap_or(100) }, config),
        ProblemName::Rastrigin => run_problem(Rastrigin { dims: size.unwrap_or(10) }, config),
        ProblemName::Knapsack => run_problem(Knapsack::p07(), config),
        ProblemName::Tsp => run_problem(Tsp::berlin52(), config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(RunError::Usage(e)) => usage_error(&e.to_string()),
        // A closed stdout (e.g. `| head`) ends the run quietly.
        Err(RunError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why a run failed: bad parameters (exit 2), an engine error or unwritable output (exit 1).
#[derive(Debug)]
enum RunError {
    Usage(ga_core::Error),
    Engine(ga_core::Error),
    Output(io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Usage(e) | RunError::Engine(e) => e.fmt(f),
            RunError::Output(e) => write!(f, "cannot write the report: {e}"),
        }
    }
}

fn run_problem<P: Problem>(problem: P, config: &RunConfig) -> Result<(), RunError> {
    let params = config.params.apply(problem.params()).map_err(RunError::Usage)?;
    let mut progress = progress::Progress::new(&params);
    let engine =
        Engine::new(problem).params(params).seed(config.seed).threads(config.threads).map_err(RunError::Usage)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut write_error: Option<io::Error> = None;
    let outcome = engine.run(&mut |stats: &ga_core::GenerationStats| {
        progress.update(stats);
        if write_error.is_some() {
            return;
        }
        let line =
            if config.json { report::generation_json(stats).to_string() } else { report::generation_line(stats) };
        if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
            write_error = Some(e);
        }
    });
    progress.finish();
    if let Some(e) = write_error {
        return Err(RunError::Output(e));
    }
    let outcome = outcome.map_err(RunError::Engine)?;
    report::write_outcome(&mut out, &outcome, config.json).and_then(|()| out.flush()).map_err(RunError::Output)
}
