//! The genetic algorithm as a UnitOfWork.
//!
//! Worker side ([`GaShard`]): one `ga_core::Shard`; candidates go to the shard that owns
//! their key on a hash ring of shard names (`shard/0`, `shard/1`, …, zero-padded to the
//! width of the count, as the original named them), in one batch per owner per phase.
//! Framework side ([`GaJob`]): `ga_core::evolve` over the cluster, so the loop, the
//! statistics and the termination test are the very ones of an in-process run.
//!
//! Phases: `init` (fresh genomes, routed), `next` (selection and variation with the
//! framework's cutoff, routed), `admit` (the owner's queue admitted, evaluated; answers
//! the shard's partial histogram), `report` (members at or above a cutoff), `snapshot`
//! (the shard's `ShardState`, between generations), `restore` (the shard put back in a
//! state; answers its census).
//!
//! Checkpoints and recovery: every `every` generations the framework takes a snapshot of
//! every shard (a [`Checkpoint`], kept in memory and handed to the disk [`Writer`] if
//! any). After a lost worker is replaced, [`UnitOfWork::recover`] makes the next
//! orchestration restore every shard from the last snapshot and go on; the generations
//! replayed up to the last one reported are not reported again, so the output is the
//! uninterrupted run's.

use std::marker::PhantomData;
use std::sync::Arc;

use ga_core::{
    Candidate, Census, GenerationStats, Histogram, Individual, Key, Observer, Outcome, Params, Population, Problem,
    Progress, Shard, ShardState, evolve_from, key_of,
};
use hashring::Ring;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use worker_service::{Delivery, DeliveryDecoder, Job, Outbox, ShardWork, WorkError};

use crate::checkpoint::{Checkpoint, RunIdentity, Writer};
use crate::{Cluster, UnitOfWork, UowError, decode, encode};

/// The job's name on workers.
pub const JOB: &str = "ga";

/// What every shard of a GA run is told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GaConfig {
    /// The problem, by name, for the worker's registry to build.
    pub problem: String,
    /// The problem's size, if it has one.
    pub size: Option<usize>,
    /// The run's parameters (`n_pop` is the whole population).
    pub params: Params,
    /// The run seed.
    pub seed: u64,
    /// Fitness threads per worker (0: one per core; 1: the phase's own thread).
    pub threads: usize,
}

impl GaConfig {
    /// Decodes a configuration as a worker receives it: the one place the bytes are read,
    /// so that a registry can choose the problem and hand the result to [`job`].
    pub fn decode(bytes: &[u8]) -> Result<Self, WorkError> {
        decode("GA configuration", bytes)
            .map_err(|e| WorkError::Invalid { what: "GA configuration", why: e.to_string() })
    }
}

#[derive(Serialize, Deserialize)]
struct NextRequest {
    generation: u32,
    cutoff_bin: u32,
}

#[derive(Serialize, Deserialize)]
struct ShardCensus {
    histogram: Histogram,
    admitted: u64,
    duplicates: u64,
}

/// A shard's name on the ring.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ShardName {
    index: u32,
    name: String,
}

impl AsRef<[u8]> for ShardName {
    fn as_ref(&self) -> &[u8] {
        self.name.as_bytes()
    }
}

/// Which shard owns a key: identical on the framework and on every worker.
#[derive(Clone)]
pub struct Placement {
    ring: Ring<ShardName>,
}

impl Placement {
    /// The placement over `shards` shards.
    pub fn new(shards: u32) -> Self {
        let width = shards.saturating_sub(1).to_string().len();
        let names = (0..shards).map(|index| ShardName { index, name: format!("shard/{index:0width$}") });
        Self { ring: Ring::with_nodes(names) }
    }

    /// The shard that owns `key`.
    pub fn owner(&self, key: Key) -> u32 {
        self.ring.owner(&key.to_bytes()).map_or(0, |n| n.index)
    }
}

/// The worker side of the GA: one shard.
pub struct GaShard<P: Problem> {
    shard: Shard<Arc<P>>,
    placement: Placement,
}

/// Creates shard `shard` of `shards` of a GA job over `problem` (decoded with
/// [`GaConfig::decode`]).
pub fn job<P>(problem: P, config: GaConfig, shard: u32, shards: u32) -> Result<Job, WorkError>
where
    P: Problem + 'static,
    P::Genome: Serialize + DeserializeOwned,
{
    let invalid = |why: String| WorkError::Invalid { what: "GA configuration", why };
    let pool = match config.threads {
        1 => None,
        n => Some(Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n.min(ga_core::MAX_THREADS))
                .thread_name(|i| format!("ga-fitness-{i}"))
                .build()
                .map_err(|e| WorkError::Failed(format!("cannot build the fitness pool: {e}")))?,
        )),
    };
    let problem = Arc::new(problem);
    let placement = Placement::new(shards);
    let core = Shard::new(problem.clone(), config.params, config.seed, shard, shards, pool)
        .map_err(|e| invalid(e.to_string()))?;
    let decoder = Arc::new(GaDecoder { problem, placement: placement.clone(), shard });
    Ok(Job { work: Box::new(GaShard { shard: core, placement }), decoder })
}

fn failed(e: impl std::fmt::Display) -> WorkError {
    WorkError::Failed(e.to_string())
}

impl<P> GaShard<P>
where
    P: Problem + 'static,
    P::Genome: Serialize + DeserializeOwned,
{
    /// Sends each candidate to the shard that owns its key, one batch per owner.
    fn route(&self, candidates: Vec<Candidate<P::Genome>>, outbox: &mut Outbox) -> Result<(), WorkError> {
        let shards = self.placement.ring.len();
        let mut per_owner: Vec<Vec<Candidate<P::Genome>>> = (0..shards).map(|_| Vec::new()).collect();
        for c in candidates {
            per_owner[self.placement.owner(c.key) as usize].push(c);
        }
        for (owner, batch) in per_owner.into_iter().enumerate() {
            if !batch.is_empty() {
                outbox.send(owner as u32, encode("candidates", &batch).map_err(failed)?);
            }
        }
        Ok(())
    }

    fn census(&self) -> Result<Vec<u8>, WorkError> {
        let census = ShardCensus {
            histogram: self.shard.histogram(),
            admitted: self.shard.admitted(),
            duplicates: self.shard.duplicates(),
        };
        encode("census", &census).map_err(failed)
    }
}

impl<P> ShardWork for GaShard<P>
where
    P: Problem + 'static,
    P::Genome: Serialize + DeserializeOwned,
{
    fn phase(
        &mut self,
        phase: &str,
        payload: &[u8],
        deliveries: Vec<Delivery>,
        outbox: &mut Outbox,
    ) -> Result<Vec<u8>, WorkError> {
        for d in deliveries {
            let batch = d.downcast::<Vec<Candidate<P::Genome>>>().map_err(|_| failed("a delivery of another job"))?;
            self.shard.receive(*batch);
        }
        let invalid = |e: UowError| WorkError::Invalid { what: "phase payload", why: e.to_string() };
        match phase {
            "init" => {
                let fresh = self.shard.init();
                self.route(fresh, outbox)?;
                Ok(Vec::new())
            }
            "next" => {
                let r: NextRequest = decode("next request", payload).map_err(invalid)?;
                let children = self.shard.next(r.generation, r.cutoff_bin);
                self.route(children, outbox)?;
                Ok(Vec::new())
            }
            "admit" => {
                self.shard.admit().map_err(failed)?;
                self.census()
            }
            "report" => {
                let cutoff_bin: u32 = decode("report request", payload).map_err(invalid)?;
                encode("report", &self.shard.enumerate(cutoff_bin)).map_err(failed)
            }
            "snapshot" => encode("shard state", &self.shard.state()).map_err(failed),
            "restore" => {
                // Whatever was queued belongs to the run before the restore (there is none
                // after a reconfiguration): the state replaces it.
                let state: ShardState<P::Genome> = decode("shard state", payload).map_err(invalid)?;
                self.shard
                    .restore(state)
                    .map_err(|e| WorkError::Invalid { what: "shard state", why: e.to_string() })?;
                self.census()
            }
            other => Err(WorkError::UnknownPhase(other.to_string())),
        }
    }
}

/// Decodes and checks a batch of candidates from a peer: each genome must be one the
/// problem accepts, its key must be its digest, and this shard must own it.
struct GaDecoder<P> {
    problem: Arc<P>,
    placement: Placement,
    shard: u32,
}

impl<P> DeliveryDecoder for GaDecoder<P>
where
    P: Problem + 'static,
    P::Genome: Serialize + DeserializeOwned,
{
    fn decode(&self, payload: &[u8]) -> Result<Delivery, WorkError> {
        let invalid = |why: String| WorkError::Invalid { what: "delivery", why };
        let batch: Vec<Candidate<P::Genome>> = decode("candidates", payload).map_err(|e| invalid(e.to_string()))?;
        for c in &batch {
            self.problem
                .check(&c.genome)
                .map_err(|why| invalid(format!("genome from shard {}: {why}", c.origin.shard)))?;
            if key_of(&c.genome) != c.key {
                return Err(invalid(format!("key {} is not the digest of its genome", c.key)));
            }
            let owner = self.placement.owner(c.key);
            if owner != self.shard {
                return Err(invalid(format!("key {} belongs to shard {owner}, not {}", c.key, self.shard)));
            }
        }
        Ok(Box::new(batch))
    }
}

/// The framework side of a GA run.
pub struct GaJob<'a, P: Problem> {
    config: GaConfig,
    problem: &'a P,
    observer: &'a mut dyn Observer,
    /// Generations between snapshots (0: none).
    every: u32,
    writer: Option<&'a Writer>,
    /// What the next orchestration starts from (`None`: the beginning).
    restart: Option<Checkpoint>,
    /// The last snapshot taken or restored.
    last: Option<Checkpoint>,
    /// The last generation given to the observer.
    reported: Option<u32>,
}

impl<'a, P: Problem> GaJob<'a, P> {
    /// A run of `problem` (used for its termination test) configured by `config`,
    /// reporting each generation to `observer`.
    pub fn new(problem: &'a P, config: GaConfig, observer: &'a mut dyn Observer) -> Self {
        Self { config, problem, observer, every: 0, writer: None, restart: None, last: None, reported: None }
    }

    /// Takes a snapshot of every shard every `every` generations (0: never), kept in
    /// memory for recovery and handed to `writer` if given.
    pub fn with_checkpoints(mut self, every: u32, writer: Option<&'a Writer>) -> Self {
        self.every = every;
        self.writer = writer;
        self
    }

    /// Starts from `checkpoint` (of this run: see [`GaJob::identity`]) instead of the
    /// beginning: the first generation reported is the checkpoint's.
    pub fn resume_from(mut self, checkpoint: Checkpoint) -> Self {
        self.restart = Some(checkpoint);
        self
    }

    /// What identifies this run over `shards` shards, as its checkpoints record it.
    pub fn identity(&self, shards: u32) -> RunIdentity {
        RunIdentity {
            problem: self.config.problem.clone(),
            size: self.config.size,
            params: self.config.params.clone(),
            seed: self.config.seed,
            shards,
        }
    }
}

/// Passes on each generation not reported yet (a replay after a recovery reports nothing
/// twice).
struct Unreported<'o> {
    inner: &'o mut dyn Observer,
    reported: &'o mut Option<u32>,
}

impl Observer for Unreported<'_> {
    fn on_generation(&mut self, stats: &GenerationStats) {
        if self.reported.is_some_and(|r| stats.generation <= r) {
            return;
        }
        *self.reported = Some(stats.generation);
        self.inner.on_generation(stats);
    }

    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
}

impl<P> UnitOfWork for GaJob<'_, P>
where
    P: Problem,
    P::Genome: Serialize + DeserializeOwned,
{
    type Output = Outcome<P::Genome>;

    fn job(&self) -> &'static str {
        JOB
    }

    fn shard_config(&self, _shard: u32, _shards: u32) -> Result<Vec<u8>, UowError> {
        encode("GA configuration", &self.config)
    }

    fn orchestrate(&mut self, cluster: &mut dyn Cluster) -> Result<Self::Output, UowError> {
        let params = self.config.params.clone();
        let identity = self.identity(cluster.shards());
        let problem = self.problem;
        let stop = |stats: &GenerationStats| problem.stop(stats, &params);
        let mut population = ClusterPopulation {
            cluster,
            census: None,
            granularity: params.hist_granularity,
            failure: None,
            every: self.every,
            writer: self.writer,
            identity,
            last: &mut self.last,
            _genome: PhantomData,
        };
        let from = match self.restart.take() {
            None => None,
            Some(checkpoint) => {
                let differences = checkpoint.identity.differences(&population.identity);
                if !differences.is_empty() {
                    return Err(UowError::Job(format!("a checkpoint of another run: {}", differences.join(", "))));
                }
                population
                    .restore(&checkpoint)
                    .map_err(|e| population.failure.take().unwrap_or(UowError::Job(e.to_string())))?;
                let at = checkpoint.progress;
                *population.last = Some(checkpoint);
                Some(at)
            }
        };
        let mut observer = Unreported { inner: &mut *self.observer, reported: &mut self.reported };
        let outcome = evolve_from(&mut population, &params, &stop, &mut observer, from);
        // The engine only carries a message across its `Population` seam; the cluster's own
        // error goes back typed, so that a lost shard maps to its worker.
        outcome.map_err(|e| population.failure.take().unwrap_or_else(|| UowError::Job(e.to_string())))
    }

    fn recover(&mut self) -> Option<String> {
        self.restart = self.last.clone();
        Some(match &self.restart {
            Some(c) => format!("every shard restored to generation {}", c.progress.generation),
            None => "every shard starts again from generation 0 (no snapshot yet)".into(),
        })
    }
}

/// The shards of a cluster as `ga_core::evolve` drives them.
struct ClusterPopulation<'c, G> {
    cluster: &'c mut dyn Cluster,
    census: Option<Census>,
    granularity: u32,
    /// The first failure, typed; the engine gets its message.
    failure: Option<UowError>,
    every: u32,
    writer: Option<&'c Writer>,
    identity: RunIdentity,
    last: &'c mut Option<Checkpoint>,
    _genome: PhantomData<G>,
}

fn population_error(e: impl std::fmt::Display) -> ga_core::Error {
    ga_core::Error::Population(e.to_string())
}

impl<G> ClusterPopulation<'_, G> {
    /// Runs a phase, keeping its error typed.
    fn phase(&mut self, phase: &str, payload: &mut dyn FnMut(u32) -> Vec<u8>) -> ga_core::Result<Vec<Vec<u8>>> {
        self.cluster.phase(phase, payload).map_err(|e| {
            let engine = population_error(&e);
            self.failure.get_or_insert(UowError::Cluster(e));
            engine
        })
    }

    /// Decodes an answer, keeping its error typed.
    fn decode<'a, T: Deserialize<'a>>(&mut self, what: &'static str, bytes: &'a [u8]) -> ga_core::Result<T> {
        decode(what, bytes).map_err(|e| {
            let engine = population_error(&e);
            self.failure.get_or_insert(e);
            engine
        })
    }
}

impl<G: DeserializeOwned> ClusterPopulation<'_, G> {
    /// Admits every shard's queue (the second half of the barrier) and merges the
    /// censuses in shard order; returns how many were admitted.
    fn admit(&mut self) -> ga_core::Result<u64> {
        let answers = self.phase("admit", &mut |_| Vec::new())?;
        self.merge(answers)
    }

    /// Puts every shard back in its state of `checkpoint`; the census is theirs.
    fn restore(&mut self, checkpoint: &Checkpoint) -> ga_core::Result<()> {
        if checkpoint.shards.len() != self.cluster.shards() as usize {
            return Err(population_error(format!(
                "a checkpoint of {} shards for {} workers",
                checkpoint.shards.len(),
                self.cluster.shards()
            )));
        }
        self.census = None;
        let answers = self.phase("restore", &mut |i| checkpoint.shards[i as usize].clone())?;
        self.merge(answers).map(drop)
    }

    /// Merges the shards' censuses in shard order; returns how many were admitted since
    /// the last census.
    fn merge(&mut self, answers: Vec<Vec<u8>>) -> ga_core::Result<u64> {
        let mut merged = Census { histogram: Histogram::new(self.granularity), admitted: 0, duplicates: 0 };
        for a in answers {
            let c: ShardCensus = self.decode("census", &a)?;
            merged.histogram.merge(&c.histogram);
            merged.admitted += c.admitted;
            merged.duplicates += c.duplicates;
        }
        let before = self.census.as_ref().map_or(0, |c| c.admitted);
        let admitted = merged.admitted.saturating_sub(before);
        self.census = Some(merged);
        Ok(admitted)
    }
}

impl<G: DeserializeOwned> Population for ClusterPopulation<'_, G> {
    type Genome = G;

    fn init(&mut self) -> ga_core::Result<()> {
        self.phase("init", &mut |_| Vec::new())?;
        self.admit().map(drop)
    }

    fn census(&mut self) -> ga_core::Result<Census> {
        self.census.clone().ok_or_else(|| population_error("no census before init"))
    }

    fn step(&mut self, generation: u32, cutoff_bin: u32) -> ga_core::Result<u64> {
        let request = encode("next request", &NextRequest { generation, cutoff_bin }).map_err(population_error)?;
        self.phase("next", &mut |_| request.clone())?;
        self.admit()
    }

    fn completed(&mut self, at: Progress) -> ga_core::Result<()> {
        if self.every == 0 || at.generation == 0 || at.generation % self.every != 0 {
            return Ok(());
        }
        let shards = self.phase("snapshot", &mut |_| Vec::new())?;
        let checkpoint = Checkpoint { identity: self.identity.clone(), progress: at, shards };
        if let Some(writer) = self.writer {
            writer.submit(checkpoint.clone()).map_err(ga_core::Error::Checkpoint)?;
        }
        *self.last = Some(checkpoint);
        Ok(())
    }

    fn report(&mut self, cutoff_bin: u32) -> ga_core::Result<Vec<Individual<G>>> {
        let request = encode("report request", &cutoff_bin).map_err(population_error)?;
        let answers = self.phase("report", &mut |_| request.clone())?;
        let mut all = Vec::new();
        for a in answers {
            let part: Vec<Individual<G>> = self.decode("report", &a)?;
            all.extend(part);
        }
        Ok(all)
    }
}
