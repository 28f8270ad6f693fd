//! The built-in problems as a GA job: the one registry that `exelixi run --workers`, the
//! worker processes, the Mesos executor and the benchmark share, and the memory check
//! that refuses a run (or a worker's shard) this machine cannot hold.

use std::str::FromStr;

use ga_core::problems::{Knapsack, NAMES, OneMax, Rastrigin, Sum231, Tsp};
use ga_core::{Params, Problem};
use serde::Serialize;
use serde::de::DeserializeOwned;
use worker_service::{Job, Registry, WorkError};

use crate::ga::{self, GaConfig};

/// The largest `--size` a built-in problem takes.
pub const MAX_SIZE: usize = 1_000_000;

/// A built-in problem, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemName {
    /// Five integers in 0..=100 summing to 231 (the original's default).
    Sum231,
    /// Bits, all ones.
    OneMax,
    /// The Rastrigin function.
    Rastrigin,
    /// Knapsack P07 (optimum 1458).
    Knapsack,
    /// TSP berlin52 (optimum 7542).
    Tsp,
}

impl FromStr for ProblemName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "sum231" => Self::Sum231,
            "onemax" => Self::OneMax,
            "rastrigin" => Self::Rastrigin,
            "knapsack" => Self::Knapsack,
            "tsp" => Self::Tsp,
            _ => return Err(format!("unknown problem (expected one of: {})", NAMES.join(", "))),
        })
    }
}

impl ProblemName {
    /// The name the command line and the workers use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sum231 => "sum231",
            Self::OneMax => "onemax",
            Self::Rastrigin => "rastrigin",
            Self::Knapsack => "knapsack",
            Self::Tsp => "tsp",
        }
    }

    /// Whether the problem has a size (`--size`).
    pub fn sized(self) -> bool {
        !matches!(self, Self::Knapsack | Self::Tsp)
    }
}

/// Something to do with a problem whatever its genome type.
pub trait WithProblem {
    /// What it gives.
    type Output;
    /// Does it.
    fn with<P>(self, problem: P) -> Self::Output
    where
        P: Problem + 'static,
        P::Genome: Serialize + DeserializeOwned;
}

/// Builds the named problem (of `size`, where it has one) and hands it to `f`.
pub fn visit<F: WithProblem>(name: ProblemName, size: Option<usize>, f: F) -> F::Output {
    match name {
        ProblemName::Sum231 => f.with(Sum231 { length: size.unwrap_or(5), ..Sum231::default() }),
        ProblemName::OneMax => f.with(OneMax { bits: size.unwrap_or(100) }),
        ProblemName::Rastrigin => f.with(Rastrigin { dims: size.unwrap_or(10) }),
        ProblemName::Knapsack => f.with(Knapsack::p07()),
        ProblemName::Tsp => f.with(Tsp::berlin52()),
    }
}

/// The jobs a worker of the built-in problems runs: the GA over them.
pub struct BuiltinJobs;

struct CreateShard {
    config: GaConfig,
    shard: u32,
    shards: u32,
}

impl WithProblem for CreateShard {
    type Output = Result<Job, WorkError>;
    fn with<P>(self, problem: P) -> Self::Output
    where
        P: Problem + 'static,
        P::Genome: Serialize + DeserializeOwned,
    {
        // A worker refuses a shard it cannot hold rather than abort in the allocator.
        check_memory(&problem, &self.config.params, self.shards, 1, "this worker's shard of a run")
            .map_err(|why| WorkError::Invalid { what: "GA configuration", why })?;
        ga::job(problem, self.config, self.shard, self.shards)
    }
}

impl Registry for BuiltinJobs {
    fn create(&self, job: &str, config: &[u8], shard: u32, shards: u32) -> Result<Job, WorkError> {
        if job != ga::JOB {
            return Err(WorkError::UnknownJob(job.to_string()));
        }
        let invalid = |why: String| WorkError::Invalid { what: "GA configuration", why };
        let config = GaConfig::decode(config)?;
        let name: ProblemName = config.problem.parse().map_err(invalid)?;
        if config.size.is_some_and(|s| !(1..=MAX_SIZE).contains(&s)) {
            return Err(invalid(format!("size {:?} out of range", config.size)));
        }
        visit(name, config.size, CreateShard { config, shard, shards })
    }

    fn jobs(&self) -> Vec<String> {
        vec![ga::JOB.to_string()]
    }
}

/// Bytes available to this process: `MemAvailable` of `/proc/meminfo`, or less if a cgroup
/// (v2) limit leaves less. `None` where neither can be read (then nothing is refused).
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let mem_available = meminfo.as_deref().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib.saturating_mul(1024))
    });
    let read = |path: &str| std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse::<u64>().ok());
    // "max" (no limit) does not parse, as wanted.
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .map(|max| max.saturating_sub(read("/sys/fs/cgroup/memory.current").unwrap_or(0)));
    match (mem_available, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

/// Refuses a run of `problem` over `shards` shards when this machine cannot hold the part
/// of it that lives here (`here` of the shards: all of them for a run on this machine, one
/// for a worker), as `ga_core::estimate_bytes` reckons it from one random genome; `what`
/// says whose memory (e.g. "a run", "this worker's shard").
pub fn check_memory<P: Problem>(
    problem: &P,
    params: &Params,
    shards: u32,
    here: u32,
    what: &str,
) -> Result<(), String> {
    let sample = problem.random_genome(&mut ga_core::Rng::new(0));
    let whole = ga_core::estimate_bytes(params, &sample, shards);
    let need = whole / u64::from(shards.max(1)) * u64::from(here);
    match available_memory() {
        Some(have) if need > have => Err(format!(
            "{what} of this size needs about {} of memory and {} is available: lower --pop, --size, --gens or --max-indiv",
            gib(need),
            gib(have)
        )),
        _ => Ok(()),
    }
}
