//! The problems a binary offers: `--problem NAME` on `run` and `mesos`, and what its
//! `worker` processes (and the workers its Mesos executors start) can hold a shard of.

use std::sync::Arc;

use ga_core::Problem;
use ga_core::moo::MultiObjective;
use ga_core::problems::{Knapsack, OneMax, Rastrigin, Sum231, Tsp, Zdt, ZdtKind};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uow::ga::{self, GaConfig};
use uow::memory::{MAX_SIZE, check_memory};
use worker_service::{Job, Registry, WorkError};

use crate::RunError;
use crate::cli::RunConfig;

/// A named problem, with its genome type erased: what the command line and the workers do
/// with it, monomorphised when it is added.
trait Entry: Send + Sync {
    /// Its name, description and size.
    fn named(&self) -> &Named;
    fn name(&self) -> &str {
        &self.named().name
    }
    /// Runs it as `config` says (in process, over workers or on Mesos) and prints.
    fn run(&self, config: &RunConfig) -> Result<(), RunError>;
    /// A worker's shard of a run of it.
    fn shard(&self, config: GaConfig, shard: u32, shards: u32) -> Result<Job, WorkError>;
    /// A worker's part of an NSGA-II run of it (multi-objective problems only).
    fn evaluator(&self, size: Option<usize>) -> Result<Job, WorkError> {
        let _ = size;
        Err(WorkError::Invalid { what: "NSGA-II configuration", why: format!("{} has one objective", self.name()) })
    }
}

/// What every entry has, whatever its kind.
struct Named {
    name: String,
    about: String,
    /// `Some(default)` when the problem takes `--size`.
    default_size: Option<usize>,
}

struct Typed<P> {
    named: Named,
    make: Box<dyn Fn(Option<usize>) -> P + Send + Sync>,
}

impl Named {
    fn new(name: &str, about: &str, default_size: Option<usize>) -> Self {
        Named { name: name.into(), about: about.into(), default_size }
    }
}

impl<P> Entry for Typed<P>
where
    P: Problem + 'static,
    P::Genome: Serialize + DeserializeOwned,
{
    fn named(&self) -> &Named {
        &self.named
    }

    fn run(&self, config: &RunConfig) -> Result<(), RunError> {
        crate::run_problem((self.make)(config.size), config)
    }

    fn shard(&self, config: GaConfig, shard: u32, shards: u32) -> Result<Job, WorkError> {
        let problem = (self.make)(config.size);
        // A worker refuses a shard it cannot hold rather than abort in the allocator.
        check_memory(&problem, &config.params, shards, 1, "this worker's shard of a run")
            .map_err(|why| WorkError::Invalid { what: "GA configuration", why })?;
        ga::job(problem, config, shard, shards)
    }
}

/// A multi-objective problem, run by NSGA-II (`uow::moo` over workers).
struct TypedMulti<P> {
    named: Named,
    make: Box<dyn Fn(Option<usize>) -> P + Send + Sync>,
}

impl<P> Entry for TypedMulti<P>
where
    P: MultiObjective + 'static,
    P::Genome: Serialize + DeserializeOwned,
{
    fn named(&self) -> &Named {
        &self.named
    }

    fn run(&self, config: &RunConfig) -> Result<(), RunError> {
        crate::run_multi(&(self.make)(config.size), config)
    }

    fn shard(&self, _: GaConfig, _: u32, _: u32) -> Result<Job, WorkError> {
        Err(WorkError::Invalid {
            what: "GA configuration",
            why: format!("{} is multi-objective: it runs as NSGA-II's job", self.name()),
        })
    }

    fn evaluator(&self, size: Option<usize>) -> Result<Job, WorkError> {
        Ok(uow::moo::shard((self.make)(size)))
    }
}

/// The problems a binary offers, by name, and any other jobs its workers run. The
/// built-in binary is `exelixi::main_with(Catalog::builtin())`; a binary of one's own adds
/// its problems (and may leave the built-in ones out with [`Catalog::new`]):
///
/// ```no_run
/// # use ga_core::problems::OneMax as MyProblem;
/// fn main() -> std::process::ExitCode {
///     let catalog = exelixi::Catalog::builtin()
///         .sized("mine", "my problem of N genes", 100, |n| MyProblem { bits: n });
///     exelixi::main_with(catalog)
/// }
/// ```
///
/// Every command then knows it: `run --problem mine`, `run --workers N`, `worker`, `mesos`
/// and the executor the agents start (this same binary).
#[derive(Clone, Default)]
pub struct Catalog {
    entries: Vec<Arc<dyn Entry>>,
    jobs: Option<Arc<dyn Registry>>,
}

impl Catalog {
    /// No problem yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in problems: sum231 (the default), onemax, rastrigin, knapsack, tsp.
    pub fn builtin() -> Self {
        Self::new()
            .sized(
                "sum231",
                "five integers in 0..=100 summing to 231 (the original's default); --size: genes",
                5,
                |n| Sum231 { length: n, ..Sum231::default() },
            )
            .sized("onemax", "bits, all ones; --size: bits", 100, |bits| OneMax { bits })
            .sized("rastrigin", "the Rastrigin function; --size: dimensions", 10, |dims| Rastrigin { dims })
            .fixed("knapsack", "knapsack P07 (optimum 1458)", Knapsack::p07)
            .fixed("tsp", "TSP berlin52 (optimum 7542)", Tsp::berlin52)
            .multi("zdt1", "ZDT1, two objectives, NSGA-II (in process); --size: variables", 30, |n| Zdt {
                kind: ZdtKind::Zdt1,
                n,
            })
            .multi("zdt2", "ZDT2, likewise", 30, |n| Zdt { kind: ZdtKind::Zdt2, n })
            .multi("zdt3", "ZDT3, likewise", 30, |n| Zdt { kind: ZdtKind::Zdt3, n })
    }

    /// Adds the multi-objective problem `name`, run by NSGA-II (in process only for now),
    /// with `--size N` (`default_size` without it): `make(N)` builds it.
    pub fn multi<P, F>(self, name: &str, about: &str, default_size: usize, make: F) -> Self
    where
        P: MultiObjective + 'static,
        P::Genome: Serialize + DeserializeOwned,
        F: Fn(usize) -> P + Send + Sync + 'static,
    {
        let make = Box::new(move |size: Option<usize>| make(size.unwrap_or(default_size)));
        self.with(Arc::new(TypedMulti { named: Named::new(name, about, Some(default_size)), make }))
    }

    /// Adds the problem `name` (described by `about` in `--help`) that takes `--size N`
    /// (`default_size` without it; 1 to 1 000 000): `make(N)` builds it, in the framework
    /// and in every worker. A name already in the catalog is replaced.
    pub fn sized<P, F>(self, name: &str, about: &str, default_size: usize, make: F) -> Self
    where
        P: Problem + 'static,
        P::Genome: Serialize + DeserializeOwned,
        F: Fn(usize) -> P + Send + Sync + 'static,
    {
        let make = Box::new(move |size: Option<usize>| make(size.unwrap_or(default_size)));
        self.with(Arc::new(Typed { named: Named::new(name, about, Some(default_size)), make }))
    }

    /// Adds the problem `name` that has no size: `make()` builds it.
    pub fn fixed<P, F>(self, name: &str, about: &str, make: F) -> Self
    where
        P: Problem + 'static,
        P::Genome: Serialize + DeserializeOwned,
        F: Fn() -> P + Send + Sync + 'static,
    {
        let make = Box::new(move |_: Option<usize>| make());
        self.with(Arc::new(Typed { named: Named::new(name, about, None), make }))
    }

    /// Also serves the jobs of `registry` in this binary's workers (a UnitOfWork of one's
    /// own, run with `uow::run`); the GA's job stays this catalog's.
    pub fn jobs(mut self, registry: impl Registry + 'static) -> Self {
        self.jobs = Some(Arc::new(registry));
        self
    }

    fn with(mut self, entry: Arc<dyn Entry>) -> Self {
        self.entries.retain(|e| e.name() != entry.name());
        self.entries.push(entry);
        self
    }

    /// The problems' names, in the order they were added.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name()).collect()
    }

    /// `--problem`'s default: the first problem added.
    pub(crate) fn default_name(&self) -> Option<&str> {
        self.entries.first().map(|e| e.name())
    }

    /// One line per problem, for `--help`.
    pub(crate) fn describe(&self) -> String {
        self.entries.iter().map(|e| format!("{}: {}", e.name(), e.named().about)).collect::<Vec<_>>().join("; ")
    }

    fn find(&self, name: &str) -> Result<&dyn Entry, String> {
        self.entries
            .iter()
            .find(|e| e.name() == name)
            .map(|e| e.as_ref())
            .ok_or_else(|| format!("invalid problem: {name:?} (expected one of: {})", self.names().join(", ")))
    }

    /// Whether `name` takes `--size` (`Err` naming the choices when there is no such problem).
    pub(crate) fn sized_problem(&self, name: &str) -> Result<bool, String> {
        self.find(name).map(|e| e.named().default_size.is_some())
    }

    pub(crate) fn run(&self, config: &RunConfig) -> Result<(), RunError> {
        self.find(&config.problem).map_err(RunError::Workers)?.run(config)
    }
}

impl Registry for Catalog {
    fn create(&self, job: &str, config: &[u8], shard: u32, shards: u32) -> Result<Job, WorkError> {
        if job == uow::moo::JOB {
            let config = uow::moo::MooConfig::decode(config)?;
            let entry =
                self.find(&config.problem).map_err(|why| WorkError::Invalid { what: "NSGA-II configuration", why })?;
            if config.size.is_some_and(|s| !(1..=MAX_SIZE).contains(&s)) {
                return Err(WorkError::Invalid {
                    what: "NSGA-II configuration",
                    why: format!("size {:?} out of range (1 to {MAX_SIZE})", config.size),
                });
            }
            return entry.evaluator(config.size);
        }
        if job != ga::JOB {
            return match &self.jobs {
                Some(jobs) => jobs.create(job, config, shard, shards),
                None => Err(WorkError::UnknownJob(job.to_string())),
            };
        }
        let invalid = |why: String| WorkError::Invalid { what: "GA configuration", why };
        let config = GaConfig::decode(config)?;
        let entry = self.find(&config.problem).map_err(invalid)?;
        match (config.size, entry.named().default_size) {
            (Some(s), Some(_)) if !(1..=MAX_SIZE).contains(&s) => {
                return Err(invalid(format!("size {s} out of range (1 to {MAX_SIZE})")));
            }
            (Some(_), None) => return Err(invalid(format!("problem {} has no size", config.problem))),
            _ => {}
        }
        entry.shard(config, shard, shards)
    }

    fn jobs(&self) -> Vec<String> {
        let mut jobs = vec![ga::JOB.to_string(), uow::moo::JOB.to_string()];
        jobs.extend(self.jobs.iter().flat_map(|j| j.jobs()));
        jobs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_names_its_problems_and_refuses_others_naming_them() {
        let c = Catalog::builtin();
        assert_eq!(c.names(), ["sum231", "onemax", "rastrigin", "knapsack", "tsp", "zdt1", "zdt2", "zdt3"]);
        assert_eq!(c.default_name(), Some("sum231"));
        assert_eq!(c.sized_problem("onemax"), Ok(true));
        assert_eq!(c.sized_problem("tsp"), Ok(false));
        let err = c.sized_problem("nope").unwrap_err();
        assert!(err.contains("\"nope\"") && err.contains("sum231, onemax, rastrigin, knapsack, tsp, zdt1"), "{err}");
        // Replacing keeps one entry of a name.
        let c = c.fixed("tsp", "another", Tsp::berlin52);
        assert_eq!(c.names().iter().filter(|n| **n == "tsp").count(), 1);
    }
}
