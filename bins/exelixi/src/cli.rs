//! Command-line flags, parsed by clap, then validated into a [`RunConfig`].

use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ga_core::{Migration, Params, Selection, Topology};
pub use uow::memory::MAX_SIZE;
use worker_service::ComputeClass;

use crate::Catalog;

/// Exelixi: distributed genetic algorithms.
#[derive(Debug, Parser)]
#[command(name = "exelixi", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a GA to termination on this machine and print the original's report.
    Run(Box<RunArgs>),
    /// Serve one shard of a run as a worker (started by `exelixi run --workers`, or by hand).
    /// The run's token comes from the EXELIXI_TOKEN environment variable.
    Worker(WorkerArgs),
    /// Run a GA on Apache Mesos: one executor and worker per agent, placed from offers;
    /// prints what `exelixi run --workers N` prints for the same flags.
    Mesos(Box<MesosArgs>),
    /// List a Mesos cluster's agents and their resources.
    Nodes(NodesArgs),
    /// The Mesos executor (started by the agents, not by hand).
    #[command(hide = true)]
    Executor(ExecutorArgs),
}

/// `exelixi executor`: what it passes on to the worker it starts.
#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// The worker's --compute-class.
    #[arg(long, value_name = "CLASS", default_value_t = ComputeClass::Idle, value_parser = compute_class)]
    pub compute_class: ComputeClass,
}

/// How a worker's computing threads are scheduled, as `--compute-class` names it.
fn compute_class(s: &str) -> Result<ComputeClass, String> {
    s.parse()
}

/// `exelixi mesos`: every flag of `run`, and where and how to place the workers.
#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct MesosArgs {
    /// The Mesos master, host:port.
    #[arg(long, value_name = "HOST:PORT")]
    pub master: String,
    /// CPUs of each worker task (its fitness threads are this, rounded down, at least 1).
    #[arg(long = "cpu", value_name = "C", default_value_t = 1.0, value_parser = real("a number of CPUs, 0.1 to 1024"))]
    pub cpus: f64,
    /// Memory of each worker task, MB.
    #[arg(long, value_name = "M", default_value_t = 256.0, value_parser = real("megabytes, 16 to 1048576"))]
    pub mem: f64,
    /// The exelixi executable on the agents, by absolute path (default: this one, for a
    /// cluster whose agents share this machine's file system).
    #[arg(long, value_name = "PATH")]
    pub executor: Option<std::path::PathBuf>,
    /// Give up when the workers are not all serving after SECS.
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = whole::<u64>("1 to 86400 seconds"))]
    pub placement_timeout: u64,
    /// How long Mesos keeps the executors after losing this scheduler, SECS.
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = whole::<u64>("0 to 31536000 seconds"))]
    pub failover_timeout: u64,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `exelixi nodes`.
#[derive(Debug, Args)]
pub struct NodesArgs {
    /// The Mesos master, host:port.
    #[arg(long, value_name = "HOST:PORT")]
    pub master: String,
}

/// A validated `exelixi mesos`.
#[derive(Debug, Clone)]
pub struct MesosConfig {
    pub master: String,
    pub cpus: f64,
    pub mem: f64,
    pub executor: std::path::PathBuf,
    pub placement_timeout: std::time::Duration,
    pub failover_timeout: std::time::Duration,
}

impl RunConfig {
    /// `exelixi mesos`'s flags, validated against the problems of `catalog`.
    pub fn from_mesos(a: MesosArgs, catalog: &Catalog) -> Result<Self, String> {
        if a.run.workers.is_none() {
            return Err("invalid workers: exelixi mesos needs --workers N (one executor per agent)".into());
        }
        if !(0.1..=1024.0).contains(&a.cpus) {
            return Err(format!("invalid cpu: {} (expected 0.1 to 1024)", a.cpus));
        }
        if !(16.0..=1_048_576.0).contains(&a.mem) {
            return Err(format!("invalid mem: {} (expected 16 to 1048576 MB)", a.mem));
        }
        if !(1..=MAX_PHASE_TIMEOUT).contains(&a.placement_timeout) {
            return Err(format!(
                "invalid placement-timeout: {} (expected 1 to {MAX_PHASE_TIMEOUT})",
                a.placement_timeout
            ));
        }
        if a.failover_timeout > 31_536_000 {
            return Err(format!("invalid failover-timeout: {} (expected 0 to 31536000)", a.failover_timeout));
        }
        let executor = match a.executor {
            Some(p) if p.is_absolute() => p,
            Some(p) => {
                return Err(format!(
                    "invalid executor: {} (expected an absolute path: the agents run it as is)",
                    p.display()
                ));
            }
            None => std::env::current_exe().map_err(|e| format!("cannot find this executable for the agents: {e}"))?,
        };
        let mesos = MesosConfig {
            master: a.master,
            cpus: a.cpus,
            mem: a.mem,
            executor,
            placement_timeout: std::time::Duration::from_secs(a.placement_timeout),
            failover_timeout: std::time::Duration::from_secs(a.failover_timeout),
        };
        let mut config = RunConfig::from_run(a.run, catalog)?;
        config.mesos = Some(mesos);
        Ok(config)
    }
}

/// The most worker processes `run --workers` starts on one machine.
pub const MAX_WORKERS: u32 = 64;

#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct WorkerArgs {
    /// Port to listen on; 0 picks a free one. The worker prints `listening http://HOST:PORT`.
    #[arg(long, value_name = "P", default_value_t = 0, value_parser = whole::<u16>("0 to 65535"))]
    pub port: u16,
    /// Address to listen on (loopback unless told otherwise).
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Exit when standard input closes: how `run --workers` makes sure that no worker
    /// outlives it, even when it is killed.
    #[arg(long, hide = true)]
    pub exit_with_parent: bool,
    /// How the threads that compute (breed, evaluate, admit) are scheduled: `idle` (Linux's
    /// SCHED_IDLE: the worker's network threads, and any other program's, preempt them at
    /// once, so that messages never wait for a core) or `normal`.
    #[arg(long, value_name = "CLASS", default_value_t = ComputeClass::Idle, value_parser = compute_class)]
    pub compute_class: ComputeClass,
}

/// A value parser for a whole-number flag whose error names the flag's domain: clap puts
/// it after `invalid value 'V' for '--FLAG <N>':`, so `--pop -5` reads "expected 2 to
/// 100000000" rather than a parse error, or an "unexpected argument" for a value never typed
/// (which is what clap says of a negative number unless told to allow them, as every
/// command here is).
fn whole<T: FromStr>(domain: &'static str) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |s| s.parse().map_err(|_| format!("expected a whole number, {domain}"))
}

/// As [`whole`], for a real-number flag.
fn real(domain: &'static str) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |s| s.parse().map_err(|_| format!("expected {domain}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SelectionName {
    /// The original's histogram cutoff.
    Cutoff,
    /// Tournaments with elitism: a generational GA.
    Tournament,
    /// Tournaments, then the best of parents and children survive: (μ+λ).
    Plus,
}

#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct RunArgs {
    /// The problem (the binary's catalog lists them here) [default: the first].
    #[arg(long, value_name = "NAME")]
    pub problem: Option<String>,
    /// Problem size, for the problems that take one (each has its default).
    #[arg(long, value_name = "N", value_parser = whole::<usize>("1 to 1000000"))]
    pub size: Option<usize>,
    /// Run seed; the same seed prints the same output on any number of threads.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = whole::<u64>("0 to 18446744073709551615"))]
    pub seed: u64,
    /// Fitness threads; 0 means one per core.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = whole::<usize>("0 (one per core) to 1024"))]
    pub threads: usize,
    /// Print one JSON object per generation and one for the result instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Run the population over N worker processes on 127.0.0.1 (ephemeral ports), one
    /// shard each, over gRPC; without it the run stays in this process.
    #[arg(long, value_name = "N", value_parser = whole::<u32>("1 to 64"))]
    pub workers: Option<u32>,
    /// With --workers: give up when a worker has not answered a phase within SECS seconds
    /// (a worker that no longer answers pings either is named as hung).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_PHASE_TIMEOUT, value_parser = whole::<u64>("1 to 86400 seconds"))]
    pub phase_timeout: u64,
    /// Write a checkpoint of the whole run into DIR (created if missing) every
    /// --checkpoint-every generations, keeping the last two.
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<std::path::PathBuf>,
    /// Generations between checkpoints (also between the snapshots a distributed run
    /// keeps in memory to recover a lost worker) [default: 10].
    #[arg(long, value_name = "K", value_parser = whole::<u32>("1 to 1000000 generations"))]
    pub checkpoint_every: Option<u32>,
    /// Continue the run from the newest valid checkpoint in DIR (which must be of this
    /// very run: problem, size, parameters, seed and shard count), writing the next ones
    /// there too unless --checkpoint says elsewhere.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<std::path::PathBuf>,
    /// With --workers or on Mesos: lost workers replaced in one run before a loss ends it
    /// [default: 3].
    #[arg(long, value_name = "N", value_parser = whole::<u32>("0 to 1000"))]
    pub max_recoveries: Option<u32>,
    /// With --workers or on Mesos: how the workers' computing threads are scheduled,
    /// `idle` (preempted at once by their network threads and by any other program: the
    /// fastest on a machine given to the run) or `normal` (sharing the cores evenly with
    /// other programs) [default: idle].
    #[arg(long, value_name = "CLASS", value_parser = compute_class)]
    pub compute_class: Option<ComputeClass>,
    /// Serve a live status page (and Prometheus metrics at /metrics) on ADDR, e.g.
    /// 127.0.0.1:8080 (port 0: any free port); the address bound is printed on stderr.
    #[arg(long, value_name = "ADDR")]
    pub status: Option<String>,
    /// After the run, write the convergence plot (best, median and mean fitness, and MSE,
    /// against evaluations) to FILE as SVG.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub params: ParamFlags,
}

/// `--checkpoint-every`'s default.
pub const DEFAULT_CHECKPOINT_EVERY: u32 = 10;

/// The largest `--checkpoint-every` and `--max-recoveries`.
const MAX_CHECKPOINT_EVERY: u32 = 1_000_000;
const MAX_RECOVERIES: u32 = 1000;

/// `--phase-timeout`'s default: ten minutes, far beyond any healthy generation.
pub const DEFAULT_PHASE_TIMEOUT: u64 = 600;

/// The longest `--phase-timeout`: a day.
pub const MAX_PHASE_TIMEOUT: u64 = 86_400;

/// The GA parameter flags; each one given overrides the problem's own default.
#[derive(Debug, Clone, Default, Args)]
pub struct ParamFlags {
    /// Individuals in the population (n_pop).
    #[arg(long, value_name = "N", value_parser = whole::<usize>("2 to 100000000"))]
    pub(crate) pop: Option<usize>,
    /// Generations at most (n_gen).
    #[arg(long, value_name = "N", value_parser = whole::<u32>("1 to 4294967295"))]
    pub(crate) gens: Option<u32>,
    /// Stop when the fitness MSE against 1.0 is at most this.
    #[arg(long, value_name = "X", allow_hyphen_values = true, value_parser = real("a finite number >= 0"))]
    term_limit: Option<f64>,
    /// Decimals kept when binning fitness into the histogram.
    #[arg(long, value_name = "N", value_parser = whole::<u32>("0 to 9 decimals"))]
    hist_granularity: Option<u32>,
    /// Share of the population above the fitness cutoff.
    #[arg(long, value_name = "X", allow_hyphen_values = true, value_parser = real("a number in (0, 1]"))]
    selection_rate: Option<f64>,
    /// Probability of mutating a poor-fit individual (cutoff) or a child (tournament).
    #[arg(long, value_name = "X", allow_hyphen_values = true, value_parser = real("a number in [0, 1]"))]
    mutation_rate: Option<f64>,
    /// Stop once this many individuals were evaluated.
    #[arg(long, value_name = "N", value_parser = whole::<u64>("at least 1"))]
    max_indiv: Option<u64>,
    /// Parent selection.
    #[arg(long, value_name = "KIND")]
    selection: Option<SelectionName>,
    /// Contestants per tournament.
    #[arg(long, value_name = "N", value_parser = whole::<usize>("at least 1"))]
    tournament_size: Option<usize>,
    /// Best individuals copied into the next generation (tournament selection).
    #[arg(long, value_name = "N", value_parser = whole::<usize>("0 or more, fewer than the population"))]
    elites: Option<usize>,
    /// Probability that a pair of children is bred from its two parents rather than copied (tournament selection).
    #[arg(long, value_name = "X", allow_hyphen_values = true, value_parser = real("a number in [0, 1]"))]
    pub(crate) crossover_rate: Option<f64>,
    /// Children bred each generation as a fraction of the population, in (0, 1] (plus
    /// selection; the built-in problems breed 0.2).
    #[arg(long, value_name = "X", allow_hyphen_values = true, value_parser = real("a fraction in (0, 1]"))]
    offspring: Option<f64>,
    /// Stop as soon as an individual reaches this fitness.
    #[arg(long, value_name = "X", allow_hyphen_values = true, value_parser = real("a number in [0, 1]"))]
    target: Option<f64>,
    /// Islands: each shard (each worker; in one process, the one shard) evolves alone for
    /// K generations, then sends migrants to its neighbours; a report line every K.
    #[arg(long, value_name = "K", value_parser = whole::<u32>("at least 1"))]
    migrate_every: Option<u32>,
    /// Individuals each island sends to each neighbour at a migration (with --migrate-every).
    #[arg(long, value_name = "M", value_parser = whole::<usize>("0 or more, at most the population"))]
    migrants: Option<usize>,
    /// Which islands are neighbours (with --migrate-every).
    #[arg(long, value_name = "KIND")]
    topology: Option<TopologyName>,
}

/// The island topologies `--topology` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TopologyName {
    /// Each island's neighbours are the ones before and after it in a circle.
    Ring,
    /// Every island is every other's neighbour.
    Full,
}

/// A validated run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub problem: String,
    pub size: Option<usize>,
    pub seed: u64,
    pub threads: usize,
    pub json: bool,
    pub workers: Option<u32>,
    pub phase_timeout: std::time::Duration,
    /// Where checkpoints go (`--checkpoint`, else `--resume`'s folder).
    pub checkpoint: Option<std::path::PathBuf>,
    pub checkpoint_every: u32,
    pub resume: Option<std::path::PathBuf>,
    pub max_recoveries: u32,
    /// How the workers' computing threads are scheduled (`--compute-class`).
    pub compute_class: ComputeClass,
    /// Where the status page is served (`--status`).
    pub status: Option<String>,
    /// Where the convergence plot goes (`--plot`).
    pub plot: Option<std::path::PathBuf>,
    pub params: ParamFlags,
    /// Run on Mesos (`exelixi mesos`) rather than here.
    pub mesos: Option<MesosConfig>,
}

impl ParamFlags {
    fn tournament_flags(&self) -> bool {
        self.tournament_size.is_some() || self.elites.is_some() || self.crossover_rate.is_some()
    }

    /// The problem's parameters with the flags laid over them, validated.
    pub fn apply(&self, mut p: Params) -> Result<Params, ga_core::Error> {
        macro_rules! set {
            ($($flag:ident => $field:ident),*) => { $(if let Some(v) = self.$flag { p.$field = v; })* };
        }
        set!(pop => n_pop, gens => n_gen, term_limit => term_limit, hist_granularity => hist_granularity,
             selection_rate => selection_rate, mutation_rate => mutation_rate, max_indiv => max_indiv);
        if self.target.is_some() {
            p.target_fitness = self.target;
        }
        let (size, elites, crossover_rate, offspring) = match p.selection {
            Selection::Tournament { size, elites, crossover_rate } => {
                (size, elites, crossover_rate, ga_core::PLUS_OFFSPRING)
            }
            Selection::Plus { size, crossover_rate, offspring } => (size, 1, crossover_rate, offspring),
            Selection::Cutoff => (3, 1, 0.9, ga_core::PLUS_OFFSPRING),
        };
        let size = self.tournament_size.unwrap_or(size);
        let crossover_rate = self.crossover_rate.unwrap_or(crossover_rate);
        let tournament = Selection::Tournament { size, elites: self.elites.unwrap_or(elites), crossover_rate };
        let plus = Selection::Plus { size, crossover_rate, offspring: self.offspring.unwrap_or(offspring) };
        p.selection = match (self.selection, p.selection) {
            (Some(SelectionName::Cutoff), _) => Selection::Cutoff,
            (Some(SelectionName::Tournament), _) => tournament,
            (Some(SelectionName::Plus), _) | (None, Selection::Plus { .. }) => plus,
            (None, Selection::Tournament { .. }) => tournament,
            (None, Selection::Cutoff) if self.tournament_flags() => tournament,
            (None, Selection::Cutoff) => Selection::Cutoff,
        };
        match (self.migrate_every, self.migrants, self.topology) {
            (Some(every), migrants, topology) => {
                let topology = match topology.unwrap_or(TopologyName::Ring) {
                    TopologyName::Ring => Topology::Ring,
                    TopologyName::Full => Topology::Full,
                };
                p.migration = Some(Migration { every, migrants: migrants.unwrap_or(1), topology });
            }
            (None, Some(_), _) | (None, _, Some(_)) => {
                return Err(ga_core::Error::InvalidParam {
                    name: "migrants",
                    value: "given".into(),
                    expected: "--migrants and --topology go with --migrate-every K (islands)",
                });
            }
            (None, None, None) => {}
        }
        if let (Some(offspring), Selection::Tournament { .. } | Selection::Cutoff) = (self.offspring, p.selection) {
            return Err(ga_core::Error::InvalidParam {
                name: "offspring",
                value: offspring.to_string(),
                expected: "--offspring with plus selection only (tournament selection breeds every slot but the elites)",
            });
        }
        if let (Some(elites), Selection::Plus { .. }) = (self.elites, p.selection) {
            return Err(ga_core::Error::InvalidParam {
                name: "elites",
                value: elites.to_string(),
                expected: "no --elites under plus selection, which keeps the best of parents and children (--selection tournament has elites)",
            });
        }
        p.validate()?;
        Ok(p)
    }
}

impl RunConfig {
    /// `exelixi run`'s flags, validated against the problems of `catalog`.
    pub fn from_run(a: RunArgs, catalog: &Catalog) -> Result<Self, String> {
        let problem = match a.problem {
            Some(p) => p,
            None => catalog.default_name().ok_or("invalid problem: this binary offers none")?.to_string(),
        };
        let sized = catalog.sized_problem(&problem)?;
        if a.size.is_some() && !sized {
            let sized: Vec<&str> =
                catalog.names().into_iter().filter(|n| catalog.sized_problem(n) == Ok(true)).collect();
            return Err(format!("invalid size: --size applies to {} only", sized.join(", ")));
        }
        if let Some(size) = a.size.filter(|s| !(1..=MAX_SIZE).contains(s)) {
            return Err(format!("invalid size: {size} (expected 1 to {MAX_SIZE})"));
        }
        if a.params.selection == Some(SelectionName::Cutoff) && a.params.tournament_flags() {
            return Err(
                "invalid selection: --tournament-size, --elites and --crossover-rate need --selection tournament"
                    .into(),
            );
        }
        if let Some(n) = a.workers.filter(|n| !(1..=MAX_WORKERS).contains(n)) {
            return Err(format!("invalid workers: {n} (expected 1 to {MAX_WORKERS})"));
        }
        if !(1..=MAX_PHASE_TIMEOUT).contains(&a.phase_timeout) {
            return Err(format!(
                "invalid phase-timeout: {} (expected 1 to {MAX_PHASE_TIMEOUT} seconds)",
                a.phase_timeout
            ));
        }
        if a.checkpoint_every.is_some() && a.checkpoint.is_none() && a.resume.is_none() && a.workers.is_none() {
            return Err("invalid checkpoint-every: it needs --checkpoint DIR (or --resume DIR, or --workers)".into());
        }
        let checkpoint_every = a.checkpoint_every.unwrap_or(DEFAULT_CHECKPOINT_EVERY);
        if !(1..=MAX_CHECKPOINT_EVERY).contains(&checkpoint_every) {
            return Err(format!(
                "invalid checkpoint-every: {checkpoint_every} (expected 1 to {MAX_CHECKPOINT_EVERY} generations)"
            ));
        }
        if a.max_recoveries.is_some() && a.workers.is_none() {
            return Err("invalid max-recoveries: it applies to runs over workers (--workers N, or mesos)".into());
        }
        if a.compute_class.is_some() && a.workers.is_none() {
            return Err("invalid compute-class: it applies to runs over workers (--workers N, or mesos)".into());
        }
        let max_recoveries = a.max_recoveries.unwrap_or(uow::DEFAULT_MAX_RECOVERIES);
        if max_recoveries > MAX_RECOVERIES {
            return Err(format!("invalid max-recoveries: {max_recoveries} (expected 0 to {MAX_RECOVERIES})"));
        }
        if let Some(addr) = &a.status {
            addr.parse::<std::net::SocketAddr>().map_err(|_| {
                format!("invalid status: {addr:?} (expected an address and port, e.g. 127.0.0.1:8080 or [::1]:0)")
            })?;
        }
        if let Some(plot) = &a.plot {
            if plot.as_os_str().is_empty() || plot.is_dir() {
                return Err(format!("invalid plot: {:?} (expected a file to write the SVG to)", plot.display()));
            }
        }
        Ok(RunConfig {
            problem,
            size: a.size,
            seed: a.seed,
            threads: a.threads,
            json: a.json,
            workers: a.workers,
            phase_timeout: std::time::Duration::from_secs(a.phase_timeout),
            checkpoint: a.checkpoint.or_else(|| a.resume.clone()),
            checkpoint_every,
            resume: a.resume,
            max_recoveries,
            compute_class: a.compute_class.unwrap_or(ComputeClass::Idle),
            status: a.status,
            plot: a.plot,
            params: a.params,
            mesos: None,
        })
    }
}
