//! The genetic algorithm as a UnitOfWork.
//!
//! Worker side ([`GaShard`]): one `ga_core::Shard`; candidates go to the shard that owns
//! their key on a hash ring of shard names (`shard/0`, `shard/1`, …, zero-padded to the
//! width of the count, as the original named them), in one batch per owner per phase.
//! Framework side ([`GaJob`]): `ga_core::evolve` over the cluster, so the loop, the
//! statistics and the termination test are the very ones of an in-process run.
//!
//! Phases: `init` (fresh genomes, routed), `next` (selection and variation with the
//! framework's cutoff; tournament and (μ+λ) children evaluated here; routed), `admit` (the
//! owner's queue admitted, what came without a fitness evaluated; answers the shard's
//! partial histogram, and when asked its `ShardDelta` since a snapshot, the members last
//! as their own encoding or in a spill slot), `report` (members at or above a cutoff), `restore` (the shard put back in a
//! `ShardState`; answers its census). `init` and `next` each run with `admit` as one step
//! ([`Cluster::step`]): a generation is one round trip.
//!
//! Checkpoints and recovery: every `every` generations the framework takes a snapshot of
//! every shard, riding on that step's admit answers (no round trip of its own: each shard
//! sends its members, or writes them to a spill slot when its worker shares the framework's
//! host ([`crate::spill`], [`GaJob::with_spill`]), and the keys it learnt since the last
//! snapshot), kept in memory and, if a [`Writer`] is given, encoded into a [`Checkpoint`]
//! on the writer's thread. After a lost worker is replaced, [`UnitOfWork::recover`] makes
//! the next orchestration restore every shard from the last snapshot and go on; the generations
//! replayed up to the last one reported are not reported again, so the output is the
//! uninterrupted run's.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::Write;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ga_core::{
    Ahead, Candidate, Census, GenerationStats, Genome, Histogram, Individual, Key, Neighbours, Observer, Outcome,
    Params, Population, Problem, Progress, Shard, ShardState, evolve_from,
};
use hashring::Ring;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use worker_service::{BatchDecoder, Job, Outbox, ShardWork, WorkError};

use crate::batch::{decode_candidates, encode_candidates};
use crate::checkpoint::{Checkpoint, RunIdentity, Writer};
use crate::spill::{SlotWriter, Spilled};
use crate::{Bytes, Cluster, UnitOfWork, UowError, decode, encode};

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

/// A shard's [`ShardDelta`] without its members (which follow it in an admit answer).
#[derive(Serialize, Deserialize)]
struct DeltaHead {
    seen_from: u64,
    #[serde(with = "ga_core::packed_keys")]
    seen: Vec<Key>,
    emitted_from: u64,
    #[serde(with = "ga_core::packed_keys")]
    emitted: Vec<Key>,
    admitted: u64,
    duplicates: u64,
    /// Where the members went, when not after this head ([`crate::spill`]).
    spilled: Option<Spilled>,
}

/// An admit request that asks for the shard's delta since a snapshot's key counts, its
/// members into a spill slot if `spill` names one.
#[derive(Serialize, Deserialize)]
struct AdmitRequest {
    seen: u64,
    emitted: u64,
    /// The spill folder and slot.
    spill: Option<(String, u8)>,
}

#[derive(Serialize, Deserialize)]
struct ShardCensus {
    histogram: Histogram,
    admitted: u64,
    duplicates: u64,
}

/// The run's census from every shard's, in shard order: the one merge the framework and a
/// worker deciding a chained step both make, so that they judge the same numbers.
fn merged<'a>(granularity: u32, censuses: impl IntoIterator<Item = &'a ShardCensus>) -> Census {
    let mut merged = Census { histogram: Histogram::new(granularity), admitted: 0, duplicates: 0 };
    for c in censuses {
        merged.histogram.merge(&c.histogram);
        merged.admitted += c.admitted;
        merged.duplicates += c.duplicates;
    }
    merged
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
    /// The size of the last admit answer that carried the members.
    members_bytes: usize,
    /// The members' encoding when they go to a spill slot (kept: its capacity is reused).
    spill_buffer: Vec<u8>,
    slots: SlotWriter,
    /// The next step, bred ahead of its request.
    ahead: Option<Ahead>,
    /// How many the last admission admitted (a note's second half: the run stalls when the
    /// shards' sum is 0).
    admitted_by_last: u64,
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
    let islands = config.params.migration.is_some();
    let core = Shard::new(problem.clone(), config.params, config.seed, shard, shards, pool)
        .map_err(|e| invalid(e.to_string()))?;
    let decoder = GaDecoder { problem, placement: placement.clone(), shard, islands };
    Ok(Job::new(
        GaShard {
            shard: core,
            placement,
            members_bytes: 0,
            spill_buffer: Vec::new(),
            slots: SlotWriter::default(),
            ahead: None,
            admitted_by_last: 0,
        },
        decoder,
    ))
}

/// `v`, emptied (its capacity kept).
fn clear(mut v: Vec<u8>) -> Vec<u8> {
    v.clear();
    v
}

fn failed(e: impl std::fmt::Display) -> WorkError {
    WorkError::Failed(e.to_string())
}

fn invalid_payload(e: UowError) -> WorkError {
    WorkError::Invalid { what: "phase payload", why: e.to_string() }
}

impl<P> GaShard<P>
where
    P: Problem + 'static,
    P::Genome: Serialize + DeserializeOwned,
{
    /// Sends each candidate to the shard that owns its key, one batch per owner.
    fn route(
        &self,
        candidates: Vec<Candidate<P::Genome>>,
        outbox: &mut Outbox<Vec<Candidate<P::Genome>>>,
    ) -> Result<(), WorkError> {
        let shards = self.placement.ring.len();
        let mut per_owner: Vec<Vec<Candidate<P::Genome>>> = (0..shards).map(|_| Vec::new()).collect();
        for c in candidates {
            per_owner[self.placement.owner(c.key) as usize].push(c);
        }
        for (owner, batch) in per_owner.into_iter().enumerate() {
            if batch.is_empty() {
                continue;
            }
            if owner as u32 == self.shard.index() {
                // Its own candidates stay as they are: no encoding, no checks of its own work.
                outbox.keep(batch);
            } else {
                outbox.send(owner as u32, encode_candidates(&batch).map_err(failed)?);
            }
        }
        Ok(())
    }

    fn shard_census(&self) -> ShardCensus {
        ShardCensus {
            histogram: self.shard.histogram(),
            admitted: self.shard.admitted(),
            duplicates: self.shard.duplicates(),
        }
    }

    fn census(&self) -> Result<Vec<u8>, WorkError> {
        encode("census", &self.shard_census()).map_err(failed)
    }

    /// Leaves this shard's census, and what its last admission admitted, for every peer:
    /// what each needs to make the framework's decision on a chained step
    /// ([`ShardWork::go_on`]).
    fn note(&self, outbox: &mut Outbox<Vec<Candidate<P::Genome>>>) -> Result<(), WorkError> {
        outbox.note(encode("note", &(self.shard_census(), self.admitted_by_last)).map_err(failed)?);
        Ok(())
    }
}

impl<P> ShardWork for GaShard<P>
where
    P: Problem + 'static,
    P::Genome: Serialize + DeserializeOwned,
{
    type Batch = Vec<Candidate<P::Genome>>;

    fn phase(
        &mut self,
        phase: &str,
        payload: &[u8],
        deliveries: Vec<Self::Batch>,
        outbox: &mut Outbox<Self::Batch>,
    ) -> Result<Vec<u8>, WorkError> {
        for batch in deliveries {
            self.shard.receive(batch);
        }
        // A step bred ahead is taken up by the very step it was bred for; any other phase
        // finds the shard as it was without it.
        if let Some(ahead) = self.ahead.take() {
            let asked = (phase == "next").then(|| decode::<NextRequest>("next request", payload).ok()).flatten();
            if asked.is_some_and(|r| r.generation == ahead.generation()) {
                self.shard.commit(ahead).map_err(failed)?;
                return Ok(Vec::new());
            }
            self.shard.discard(ahead).map_err(failed)?;
        }
        match phase {
            "init" => {
                let fresh = self.shard.init();
                self.route(fresh, outbox)?;
                Ok(Vec::new())
            }
            "next" => {
                let r: NextRequest = decode("next request", payload).map_err(invalid_payload)?;
                let children = self.shard.next(r.generation, r.cutoff_bin);
                self.route(children, outbox)?;
                self.note(outbox)?;
                Ok(Vec::new())
            }
            "island" => {
                let r: NextRequest = decode("island request", payload).map_err(invalid_payload)?;
                let Some(m) = self.shard.params().migration else {
                    return Err(WorkError::Invalid { what: "phase", why: "island, in a run without islands".into() });
                };
                self.shard.evolve_alone(r.generation, m.every).map_err(failed)?;
                let (me, islands) = (self.shard.index(), self.placement.ring.len() as u32);
                let migrants = self.shard.emigrants(m.migrants, r.generation.saturating_add(m.every));
                if !migrants.is_empty() {
                    let encoded = encode_candidates(&migrants).map_err(failed)?;
                    for to in m.topology.neighbours(me, islands) {
                        outbox.send(to, encoded.clone());
                    }
                }
                Ok(Vec::new())
            }
            "admit" => {
                // A request may ask for the shard's delta since a snapshot's key counts: a
                // checkpoint rides on the admit answer, with no round trip of its own.
                let since: Option<AdmitRequest> = if payload.is_empty() {
                    None
                } else {
                    Some(decode("admit request", payload).map_err(invalid_payload)?)
                };
                let before = self.shard.admitted();
                self.shard.admit().map_err(failed)?;
                self.admitted_by_last = self.shard.admitted().saturating_sub(before);
                let Some(since) = since else {
                    return encode("admitted", &(self.shard_census(), None::<DeltaHead>)).map_err(failed);
                };
                let d = self.shard.delta_with(since.seen, since.emitted, ());
                let spilled = match &since.spill {
                    None => None,
                    Some((dir, slot)) => {
                        let buffer = std::mem::take(&mut self.spill_buffer);
                        let buffer = postcard::to_extend(&self.shard.members(), clear(buffer)).map_err(failed)?;
                        let written = self.slots.write(std::path::Path::new(dir), self.shard.index(), *slot, &buffer);
                        self.spill_buffer = buffer;
                        // A slot that cannot be written (the folder gone, the memory full)
                        // costs only speed: the members go in the answer, as without one.
                        written.inspect_err(|why| tracing::warn!(%why, "snapshot not spilled; sent in the answer")).ok()
                    }
                };
                let head = DeltaHead {
                    seen_from: d.seen_from,
                    seen: d.seen,
                    emitted_from: d.emitted_from,
                    emitted: d.emitted,
                    admitted: d.admitted,
                    duplicates: d.duplicates,
                    spilled,
                };
                let answer = encode("admitted", &(self.shard_census(), Some(head))).map_err(failed)?;
                if spilled.is_some() {
                    return Ok(answer);
                }
                // Otherwise the members go last, as their own encoding, which the framework
                // keeps as it is (it never decodes them). Sized for last time's members,
                // then encoded in place: no growth, no copy.
                let mut answer = answer;
                answer.reserve(self.members_bytes + 64);
                let answer = postcard::to_extend(&self.shard.members(), answer).map_err(failed)?;
                self.members_bytes = answer.len();
                Ok(answer)
            }
            "report" => {
                let cutoff_bin: u32 = decode("report request", payload).map_err(invalid_payload)?;
                encode("report", &self.shard.enumerate(cutoff_bin)).map_err(failed)
            }
            "restore" => {
                // Whatever was queued belongs to the run before the restore (there is none
                // after a reconfiguration): the state replaces it.
                let state: ShardState<P::Genome> = decode("shard state", payload).map_err(invalid_payload)?;
                self.shard
                    .restore(state)
                    .map_err(|e| WorkError::Invalid { what: "shard state", why: e.to_string() })?;
                self.census()
            }
            other => Err(WorkError::UnknownPhase(other.to_string())),
        }
    }

    /// Breeds and evaluates the announced `next` step (tournament and (μ+λ) selection: the
    /// cutoff's depends on the census it has not seen) and routes its candidates; the step
    /// is the shard's once `next` asks for it. The candidates other shards own are
    /// evaluated first and released to them ([`Outbox::release`]) while this shard
    /// evaluates its own: the batches cross the network behind that work.
    fn ahead(&mut self, phase: &str, payload: &[u8], outbox: &mut Outbox<Self::Batch>) -> Result<bool, WorkError> {
        if let Some(stale) = self.ahead.take() {
            self.shard.discard(stale).map_err(failed)?;
        }
        if phase != "next" {
            return Ok(false);
        }
        let r: NextRequest = decode("next request", payload).map_err(invalid_payload)?;
        let Some((ahead, candidates)) = self.shard.breed_ahead(r.generation) else { return Ok(false) };
        let me = self.shard.index();
        let (mut own, mut theirs): (Vec<_>, Vec<_>) =
            candidates.into_iter().partition(|c| self.placement.owner(c.key) == me);
        self.shard.evaluate(&mut theirs);
        let routed = self.route(theirs, outbox).and_then(|()| self.note(outbox)).map(|()| outbox.release());
        let routed = routed.and_then(|()| {
            self.shard.evaluate(&mut own);
            self.route(own, outbox)
        });
        if let Err(e) = routed {
            self.shard.discard(ahead).map_err(failed)?;
            return Err(e);
        }
        self.ahead = Some(ahead);
        Ok(true)
    }

    /// A chained step goes on unless the framework would stop at the census before it:
    /// every shard's census merged in shard order, as the framework merges them, and its
    /// termination test ([`ga_core::verdict`]: the step's generation, the run stalled if no
    /// shard admitted anything last, then `Problem::stop`). Stopping undoes the step bred
    /// ahead.
    fn go_on(&mut self, notes: &[(u32, Bytes)]) -> Result<bool, WorkError> {
        let Some(generation) = self.ahead.as_ref().map(Ahead::generation) else {
            return Err(WorkError::Failed("a chained step that was not bred ahead".into()));
        };
        let invalid = |why: String| WorkError::Invalid { what: "note", why };
        let mut all = Vec::with_capacity(notes.len() + 1);
        all.push((self.shard.index(), self.shard_census(), self.admitted_by_last));
        for (from, note) in notes {
            let (census, admitted): (ShardCensus, u64) =
                decode("note", note).map_err(|e| invalid(format!("from shard {from}: {e}")))?;
            all.push((*from, census, admitted));
        }
        all.sort_by_key(|(shard, ..)| *shard);
        let shards = self.placement.ring.len();
        if all.len() != shards || all.windows(2).any(|w| w[0].0 == w[1].0) {
            let from: Vec<u32> = notes.iter().map(|(from, _)| *from).collect();
            return Err(invalid(format!("notes from shards {from:?}, for {shards} shards")));
        }
        let params = self.shard.params();
        let census = merged(params.hist_granularity, all.iter().map(|(_, c, _)| c));
        let stalled = all.iter().all(|(.., last)| *last == 0);
        let (hist, rate) = (&census.histogram, params.selection_rate);
        let stats = GenerationStats::from_histogram(generation, hist, census.admitted, census.duplicates, rate);
        let problem = self.shard.problem();
        let (reason, _) = ga_core::verdict(&stats, hist, rate, stalled, false, &|s| problem.stop(s, params));
        if reason.is_none() {
            return Ok(true);
        }
        if let Some(ahead) = self.ahead.take() {
            self.shard.discard(ahead).map_err(failed)?;
        }
        Ok(false)
    }
}

/// Decodes and checks a batch of candidates from a peer: each genome must be one the
/// problem accepts, its key must be its digest, and this shard must own it.
struct GaDecoder<P> {
    problem: Arc<P>,
    placement: Placement,
    shard: u32,
    /// Whether the run has islands, whose migrants are not their owner's.
    islands: bool,
}

impl<P> BatchDecoder<Vec<Candidate<P::Genome>>> for GaDecoder<P>
where
    P: Problem + 'static,
    P::Genome: Serialize + DeserializeOwned,
{
    fn decode(&self, payload: &[u8]) -> Result<Vec<Candidate<P::Genome>>, WorkError> {
        let invalid = |why: String| WorkError::Invalid { what: "delivery", why };
        let batch: Vec<Candidate<P::Genome>> =
            decode_candidates(payload).map_err(|e| invalid(format!("candidates: {e}")))?;
        for c in &batch {
            self.problem
                .check(&c.genome)
                .map_err(|why| invalid(format!("genome from shard {}: {why}", c.origin.shard)))?;
            // A fitness its breeder computed is taken as it is: it must be one.
            if let Some(f) = c.fitness.filter(|f| !(0.0..=1.0).contains(f)) {
                return Err(invalid(format!("key {}: fitness {f} is not in [0, 1]", c.key)));
            }
            let owner = self.placement.owner(c.key);
            // Migrants go to an island whatever their key; candidates, to their owner.
            if owner != self.shard && !self.islands {
                return Err(invalid(format!("key {} belongs to shard {owner}, not {}", c.key, self.shard)));
            }
        }
        Ok(batch)
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
    /// The spill folder's path, when the workers share this host.
    spill: Option<&'a str>,
    /// A checkpoint to start from, as given (decoded at the orchestration).
    resume: Option<Checkpoint>,
    /// What the next orchestration starts from (`None`: the beginning).
    restart: Option<Snapshot>,
    /// The last snapshot taken or restored.
    last: Option<Snapshot>,
    /// The last generation given to the observer.
    reported: Option<u32>,
}

impl<'a, P: Problem> GaJob<'a, P> {
    /// A run of `problem` (used for its termination test) configured by `config`,
    /// reporting each generation to `observer`.
    pub fn new(problem: &'a P, config: GaConfig, observer: &'a mut dyn Observer) -> Self {
        Self {
            config,
            problem,
            observer,
            every: 0,
            writer: None,
            spill: None,
            resume: None,
            restart: None,
            last: None,
            reported: None,
        }
    }

    /// Takes a snapshot of every shard every `every` generations (0: never), kept in
    /// memory for recovery and handed to `writer` if given.
    pub fn with_checkpoints(mut self, every: u32, writer: Option<&'a Writer>) -> Self {
        self.every = every;
        self.writer = writer;
        self
    }

    /// Has the workers, which must run on this host, put their snapshots' members into
    /// `dir` rather than their answers ([`crate::spill`]); a folder whose path is not
    /// UTF-8 is not used.
    pub fn with_spill(mut self, dir: &'a crate::spill::SpillDir) -> Self {
        self.spill = dir.path().to_str();
        self
    }

    /// Starts from `checkpoint` (of this run: see [`GaJob::identity`]) instead of the
    /// beginning: the first generation reported is the checkpoint's.
    pub fn resume_from(mut self, checkpoint: Checkpoint) -> Self {
        self.resume = Some(checkpoint);
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
/// twice), and remembers whether it cancelled the run (which the population needs to know).
struct Unreported<'o> {
    inner: &'o mut dyn Observer,
    reported: &'o mut Option<u32>,
    cancelled: Rc<Cell<bool>>,
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
        let cancelled = self.inner.cancelled();
        if cancelled {
            self.cancelled.set(true);
        }
        cancelled
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
        let mut population: ClusterPopulation<'_, P::Genome> = ClusterPopulation {
            cluster,
            census: None,
            granularity: params.hist_granularity,
            failure: None,
            every: self.every,
            writer: self.writer,
            identity,
            last: &mut self.last,
            pending: None,
            handed_over: None,
            spill: self.spill,
            islands: params.migration.is_some(),
            per_step: params.generations_per_step(),
            n_gen: params.n_gen,
            chained: VecDeque::new(),
            ended: false,
            cancelled: Rc::new(Cell::new(false)),
            step_time: None,
            announce: params.migration.is_none() && !matches!(params.selection, ga_core::Selection::Cutoff),
            _genome: PhantomData,
        };
        if let Some(checkpoint) = self.resume.take() {
            let differences = checkpoint.identity.differences(&population.identity);
            if !differences.is_empty() {
                return Err(UowError::Job(format!("a checkpoint of another run: {}", differences.join(", "))));
            }
            self.restart = Some(Snapshot::decode::<P::Genome>(&checkpoint)?);
        }
        let from = match self.restart.take() {
            None => None,
            Some(snapshot) => {
                population
                    .restore(&snapshot)
                    .map_err(|e| population.failure.take().unwrap_or(UowError::Job(e.to_string())))?;
                let at = snapshot.progress;
                *population.last = Some(snapshot);
                Some(at)
            }
        };
        let cancelled = population.cancelled.clone();
        let mut observer = Unreported { inner: &mut *self.observer, reported: &mut self.reported, cancelled };
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

/// Every shard's state at one generation, as the framework keeps it between snapshots.
#[derive(Clone)]
struct Snapshot {
    progress: Progress,
    books: Vec<Book>,
}

/// One shard's last snapshot as the framework keeps it: the members as the shard encoded
/// them (never decoded here), the ever-growing key lists as [`KeyLog`]s, so that handing a
/// copy to the disk writer copies neither.
#[derive(Clone)]
struct Book {
    index: u32,
    count: u32,
    members: Members,
    seen: KeyLog,
    emitted: KeyLog,
    admitted: u64,
    duplicates: u64,
}

/// A shard's members in a snapshot: `Vec<Individual<G>>`, postcard-encoded, held here or
/// in a spill slot ([`crate::spill`]).
#[derive(Clone)]
enum Members {
    Here(Bytes),
    Spilled { path: Arc<std::path::Path>, spilled: Spilled },
}

impl Members {
    fn len(&self) -> u64 {
        match self {
            Members::Here(b) => b.len() as u64,
            Members::Spilled { spilled, .. } => spilled.len,
        }
    }

    /// The bytes, read from their slot if they are in one.
    fn load(&self) -> Result<Bytes, String> {
        match self {
            Members::Here(b) => Ok(b.clone()),
            Members::Spilled { path, spilled } => crate::spill::read(path, spilled),
        }
    }

    /// The slot the next snapshot of this shard goes to: the other one.
    fn next_slot(&self) -> u8 {
        match self {
            Members::Spilled { spilled, .. } => 1 - spilled.slot.min(1),
            Members::Here(_) => 0,
        }
    }
}

/// Keys in arrival order, append-only: full chunks of [`KeyLog::CHUNK`] keys, shared by
/// every copy, and a tail shared until one copy appends to it (then that copy takes its
/// own: at most one chunk's worth). Each key is copied about twice however long the run,
/// and a copy of the log costs an atomic increment per chunk.
#[derive(Clone, Default)]
struct KeyLog {
    chunks: Vec<Arc<[Key]>>,
    tail: Arc<Vec<Key>>,
}

impl KeyLog {
    const CHUNK: usize = 8192;

    fn len(&self) -> u64 {
        (self.chunks.len() * Self::CHUNK + self.tail.len()) as u64
    }

    fn extend(&mut self, mut keys: &[Key]) {
        while !keys.is_empty() {
            let tail = Arc::make_mut(&mut self.tail);
            let room = Self::CHUNK - tail.len();
            let (now, rest) = keys.split_at(room.min(keys.len()));
            tail.extend_from_slice(now);
            keys = rest;
            if tail.len() == Self::CHUNK {
                self.chunks.push(Arc::from(std::mem::take(tail)));
            }
        }
    }

    #[cfg(test)]
    fn to_vec(&self) -> Vec<Key> {
        let mut all = Vec::with_capacity(self.len() as usize);
        for c in &self.chunks {
            all.extend_from_slice(c);
        }
        all.extend_from_slice(&self.tail);
        all
    }
}

impl Book {
    fn empty(index: u32, count: u32) -> Self {
        Self {
            index,
            count,
            members: Members::Here(encode("members", &Vec::<()>::new()).unwrap_or_default().into()),
            seen: KeyLog::default(),
            emitted: KeyLog::default(),
            admitted: 0,
            duplicates: 0,
        }
    }

    fn from_state<G: Serialize>(s: ShardState<G>) -> Result<Self, UowError> {
        let mut book = Self::empty(s.index, s.count);
        let head = DeltaHead {
            seen_from: 0,
            seen: s.seen,
            emitted_from: 0,
            emitted: s.emitted,
            admitted: s.admitted,
            duplicates: s.duplicates,
            spilled: None,
        };
        book.apply(head, Members::Here(encode("members", &s.members)?.into())).map_err(UowError::Job)?;
        Ok(book)
    }

    /// The key counts a delta on top of this book starts from.
    fn since(&self) -> (u64, u64) {
        (self.seen.len(), self.emitted.len())
    }

    /// Whether `d` continues this book; why not.
    fn check(&self, d: &DeltaHead) -> Result<(), String> {
        let (seen, emitted) = self.since();
        if (d.seen_from, d.emitted_from) != (seen, emitted) {
            return Err(format!(
                "shard {}'s snapshot starts at {} seen and {} emitted keys, not at {seen} and {emitted}",
                self.index, d.seen_from, d.emitted_from
            ));
        }
        Ok(())
    }

    fn apply(&mut self, d: DeltaHead, members: Members) -> Result<(), String> {
        self.check(&d)?;
        self.members = members;
        self.seen.extend(&d.seen);
        self.emitted.extend(&d.emitted);
        (self.admitted, self.duplicates) = (d.admitted, d.duplicates);
        Ok(())
    }

    /// The shard's `ShardState`, postcard-encoded (see [`Book::write_state`]).
    fn encoded_state(&self) -> Result<Vec<u8>, UowError> {
        let mut out = Vec::with_capacity(self.state_len() as usize);
        self.write_state(&mut out).map_err(|e| UowError::Codec { what: "shard state", reason: e.to_string() })?;
        Ok(out)
    }

    /// The length of [`Book::write_state`]'s bytes.
    fn state_len(&self) -> u64 {
        let keys = |log: &KeyLog| varint_len(8 * log.len()) + 8 * log.len();
        varint_len(u64::from(self.index))
            + varint_len(u64::from(self.count))
            + self.members.len()
            + keys(&self.seen)
            + keys(&self.emitted)
            + varint_len(self.admitted)
            + varint_len(self.duplicates)
    }

    /// Writes the shard's `ShardState` as postcard encodes it, from the parts: postcard
    /// writes a struct as its fields one after the other, unsigned integers as varints and a
    /// byte block as its length then its bytes (the postcard wire format, v1; key lists are
    /// one block, `ga_core::packed_keys`), so the members' own encoding goes in as it came
    /// and the keys straight from the logs (tested against encoding the whole).
    fn write_state(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let members = self.members.load().map_err(std::io::Error::other)?;
        write_varint(out, u64::from(self.index))?;
        write_varint(out, u64::from(self.count))?;
        out.write_all(&members)?;
        for log in [&self.seen, &self.emitted] {
            write_varint(out, 8 * log.len())?;
            let mut words = [0u8; 8 * 512];
            for part in log.chunks.iter().map(|c| &c[..]).chain([&log.tail[..]]) {
                for keys in part.chunks(512) {
                    for (w, k) in words.chunks_exact_mut(8).zip(keys) {
                        w.copy_from_slice(&k.0.to_le_bytes());
                    }
                    out.write_all(&words[..8 * keys.len()])?;
                }
            }
        }
        write_varint(out, self.admitted)?;
        write_varint(out, self.duplicates)
    }
}

/// Writes `v` as postcard writes an unsigned integer: LEB128, seven bits a byte, low first.
fn write_varint(out: &mut dyn Write, mut v: u64) -> std::io::Result<()> {
    let mut bytes = [0u8; 10];
    let mut n = 0;
    loop {
        let low = (v & 0x7f) as u8;
        v >>= 7;
        bytes[n] = if v == 0 { low } else { low | 0x80 };
        n += 1;
        if v == 0 {
            return out.write_all(&bytes[..n]);
        }
    }
}

fn varint_len(v: u64) -> u64 {
    u64::from((64 - v.leading_zeros()).max(1).div_ceil(7))
}

impl Snapshot {
    /// Each shard's state, postcard-encoded (as a checkpoint file and the restore phase
    /// carry them).
    fn encoded(&self) -> Result<Vec<Vec<u8>>, String> {
        self.books.iter().map(|b| b.encoded_state().map_err(|e| e.to_string())).collect()
    }

    /// Writes the postcard encoding of this snapshot's [`Checkpoint`] of the run `identity`
    /// (its fields in order; the shard states a sequence of byte blocks), each shard's state
    /// streamed from its book.
    fn write_checkpoint(&self, identity: &RunIdentity, out: &mut dyn Write) -> std::io::Result<()> {
        let head = postcard::to_allocvec(&(identity, self.progress)).map_err(std::io::Error::other)?;
        out.write_all(&head)?;
        write_varint(out, self.books.len() as u64)?;
        for book in &self.books {
            write_varint(out, book.state_len())?;
            book.write_state(out)?;
        }
        Ok(())
    }

    /// A checkpoint's snapshot (its shard states decoded: they are checked here).
    fn decode<G: Serialize + DeserializeOwned>(checkpoint: &Checkpoint) -> Result<Self, UowError> {
        let books = checkpoint
            .shards
            .iter()
            .map(|bytes| Book::from_state(decode::<ShardState<G>>("shard state", bytes)?))
            .collect::<Result<_, _>>()?;
        Ok(Self { progress: checkpoint.progress, books })
    }
}

/// A snapshot on its way: each shard's delta since the last one.
type Pending = Vec<Option<Delta>>;

/// A shard's delta as an admit answer brings it: its head, and its members.
type Delta = (DeltaHead, Members);

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
    last: &'c mut Option<Snapshot>,
    /// The deltas the last step's admit answered, when the generation it made is due for
    /// a snapshot.
    pending: Option<Pending>,
    /// The generation of the last snapshot handed to the writer.
    handed_over: Option<u32>,
    /// Where shards spill their snapshots' members (`None`: in their admit answers).
    spill: Option<&'c str>,
    /// Whether the run has islands (its steps are phase `island`, not `next`).
    islands: bool,
    /// Generations one step makes ([`Params::generations_per_step`]).
    per_step: u32,
    /// Whether each step announces the next (tournament and (μ+λ) steps without islands,
    /// whose request does not depend on the census).
    announce: bool,
    /// The run's `n_gen` (no step is chained past the last generation).
    n_gen: u32,
    /// The answers of chained steps the generation loop has not asked for yet: the
    /// generation each step was asked at, every shard's answer, and for the step that
    /// makes a snapshot (a chain's last) what each shard was asked for its delta.
    chained: VecDeque<(u32, Vec<Bytes>, Option<Vec<AdmitRequest>>)>,
    /// Whether the workers ended the last chain early: the loop must stop at the census
    /// of its last step, as they did.
    ended: bool,
    /// The time of one step, as last measured (how many to chain).
    step_time: Option<Duration>,
    /// Whether the observer cancelled the run (the only reason the loop may stop short of
    /// a chain the workers ran on).
    cancelled: Rc<Cell<bool>>,
    _genome: PhantomData<G>,
}

/// How long a chain of steps may take, by the last step's time: the framework prints a
/// chain's generations when it ends, so a longer one would show the run in bursts.
const CHAIN_TIME: Duration = Duration::from_millis(50);

/// The most steps after the first in one chain.
const MAX_LINKS: usize = 63;

/// Each shard's admit request, encoded (none: every shard's is empty).
fn encoded_admits(since: Option<&[AdmitRequest]>) -> ga_core::Result<Vec<Vec<u8>>> {
    since.unwrap_or_default().iter().map(|s| encode("admit request", s).map_err(population_error)).collect()
}

fn population_error(e: impl std::fmt::Display) -> ga_core::Error {
    ga_core::Error::Population(e.to_string())
}

impl<G> ClusterPopulation<'_, G> {
    /// Gives the writer the last snapshot, to write on its thread straight from a copy of
    /// the books (which shares their keys and members).
    fn hand_over(&mut self) -> ga_core::Result<()> {
        let (Some(writer), Some(last)) = (self.writer, self.last.as_ref()) else { return Ok(()) };
        let (identity, mut copy) = (self.identity.clone(), last.clone());
        // Spilled members are read now: their slots are written over two snapshots on,
        // perhaps before the writer is done.
        for book in &mut copy.books {
            if let Members::Spilled { .. } = book.members {
                book.members = Members::Here(book.members.load().map_err(population_error)?);
            }
        }
        let generation = copy.progress.generation;
        let payload = Box::new(move |out: &mut dyn Write| copy.write_checkpoint(&identity, out));
        writer.submit_payload(generation, payload).map_err(ga_core::Error::Checkpoint)?;
        self.handed_over = Some(generation);
        Ok(())
    }

    /// Runs a phase, keeping its error typed.
    fn phase(&mut self, phase: &str, payload: &mut dyn FnMut(u32) -> Vec<u8>) -> ga_core::Result<Vec<Bytes>> {
        self.cluster.phase(phase, payload).map_err(|e| {
            let engine = population_error(&e);
            self.failure.get_or_insert(UowError::Cluster(e));
            engine
        })
    }

    /// Runs `first` then `then` as one step ([`Cluster::step`]), announcing the next
    /// step's `first` payload if given ([`Cluster::step_announcing`]); keeps its error typed.
    fn step_phases(
        &mut self,
        first: (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        then: (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        ahead: Option<&[u8]>,
    ) -> ga_core::Result<Vec<Bytes>> {
        let stepped = match ahead {
            Some(ahead) => self.cluster.step_announcing(first, then, &mut |_| ahead.to_vec()),
            None => self.cluster.step(first, then),
        };
        stepped.map_err(|e| {
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

impl<G: Genome + Serialize + DeserializeOwned> ClusterPopulation<'_, G> {
    /// Whether the generation `g`, which a step made, gets a snapshot: whether the step
    /// reached or passed a multiple of `every` (a step of islands makes several
    /// generations).
    fn due(&self, g: u32) -> bool {
        self.every > 0 && g > 0 && g / self.every > g.saturating_sub(self.per_step) / self.every
    }

    /// Runs the phase `first` (with `request`) then admits every shard's queue, as one
    /// step ([`Cluster::step`]), and merges the censuses in shard order; returns how many
    /// were admitted.
    fn admit(&mut self, first: (&str, &[u8]), ahead: Option<&[u8]>) -> ga_core::Result<u64> {
        self.admit_with(first, None, ahead).map(|(admitted, _)| admitted)
    }

    /// [`ClusterPopulation::admit`], each shard also answering its delta since the key
    /// counts `since[shard]` when given.
    fn admit_with(
        &mut self,
        (first, request): (&str, &[u8]),
        since: Option<&[AdmitRequest]>,
        ahead: Option<&[u8]>,
    ) -> ga_core::Result<(u64, Vec<Option<Delta>>)> {
        let requests = encoded_admits(since)?;
        let mut admit_request = |i: u32| requests.get(i as usize).cloned().unwrap_or_default();
        // One round trip: each shard admits as soon as its peers' batches are in.
        let answers = self.step_phases((first, &mut |_| request.to_vec()), ("admit", &mut admit_request), ahead)?;
        self.read_admitted(answers, since)
    }

    /// Reads a step's admit answers: merges the censuses in shard order (returns how many
    /// were admitted) and, when the shards were asked for snapshot deltas (`since`), takes
    /// each one's delta; a delta not asked for is an error.
    fn read_admitted(
        &mut self,
        answers: Vec<Bytes>,
        since: Option<&[AdmitRequest]>,
    ) -> ga_core::Result<(u64, Vec<Option<Delta>>)> {
        let slot_of = |i: usize| since.and_then(|s| s.get(i)).and_then(|r| r.spill.as_ref()).map(|(_, slot)| *slot);
        let mut censuses = Vec::with_capacity(answers.len());
        let mut deltas = Vec::with_capacity(answers.len());
        for (i, a) in answers.into_iter().enumerate() {
            let ((census, head), members) = match postcard::take_from_bytes::<(ShardCensus, Option<DeltaHead>)>(&a) {
                Ok(parts) => parts,
                Err(e) => {
                    let e = UowError::Codec { what: "admitted", reason: e.to_string() };
                    let engine = population_error(&e);
                    self.failure.get_or_insert(e);
                    return Err(engine);
                }
            };
            censuses.push(census);
            let Some(head) = head else {
                deltas.push(None);
                continue;
            };
            if since.is_none() {
                let e = UowError::Job(format!("shard {i} answered a snapshot delta it was not asked for"));
                let engine = population_error(&e);
                self.failure.get_or_insert(e);
                return Err(engine);
            }
            let members = match (head.spilled, slot_of(i), self.spill) {
                (None, _, _) => {
                    // In the answer (also when a worker could not write its slot). Copied out, exactly sized: a slice would keep the whole receive buffer
                    // alive until the next snapshot, and the framework would touch fresh
                    // pages each step.
                    Members::Here(Bytes::copy_from_slice(members))
                }
                (Some(spilled), Some(slot), Some(dir)) if spilled.slot == slot => Members::Spilled {
                    path: crate::spill::slot_path(std::path::Path::new(dir), i as u32, slot).into(),
                    spilled,
                },
                (spilled, asked, _) => {
                    let e = UowError::Job(format!(
                        "shard {i} spilled its snapshot to slot {:?}, asked for {asked:?}",
                        spilled.map(|s| s.slot)
                    ));
                    let engine = population_error(&e);
                    self.failure.get_or_insert(e);
                    return Err(engine);
                }
            };
            deltas.push(Some((head, members)));
        }
        Ok((self.merge_censuses(censuses), deltas))
    }

    /// A step asked now (not in a chain before): alone, or followed by a chain of steps
    /// when the workers can decide them. Returns how many were admitted by this step, and
    /// how many steps ran (chained ones included).
    fn step_now(&mut self, generation: u32, cutoff_bin: u32) -> ga_core::Result<(u64, u32)> {
        // A tournament step takes no cutoff: sent as 0, the request of the next step is
        // known now, and announced, so that workers breed it while this one is judged.
        let cutoff_bin = if self.announce { 0 } else { cutoff_bin };
        let request = encode("next request", &NextRequest { generation, cutoff_bin }).map_err(population_error)?;
        let next = NextRequest { generation: generation.saturating_add(self.per_step), cutoff_bin };
        let ahead = if self.announce { Some(encode("next request", &next).map_err(population_error)?) } else { None };
        let ahead = ahead.as_deref();
        // Islands evolve alone, then send their migrants; otherwise one generation, routed.
        let first = if self.islands { "island" } else { "next" };
        if !self.due(generation.saturating_add(self.per_step)) {
            let links = self.links(generation);
            if !links.0.is_empty() {
                return self.chain((first, &request), generation, links, ahead);
            }
            return self.admit((first, &request), ahead).map(|admitted| (admitted, 1));
        }
        // The snapshot of the generation this step makes comes with its admit answers.
        let since = self.since();
        let (admitted, deltas) = self.admit_with((first, &request), Some(&since), ahead)?;
        self.pending = Some(deltas);
        Ok((admitted, 1))
    }

    /// The links of a chain after the step of `generation`: the steps the workers may run on
    /// their own (tournament and (μ+λ) steps, without islands: each worker can make the
    /// framework's decision from its peers' censuses), as many as [`CHAIN_TIME`] holds by the
    /// last step's time, none past the last generation; a step that makes a snapshot's
    /// generation ends the chain, its admit requests (returned) asking each shard for its
    /// delta.
    fn links(&self, generation: u32) -> (Vec<Vec<u8>>, Option<Vec<AdmitRequest>>) {
        let Some(step_time) = self.step_time.filter(|_| self.announce && !self.islands) else {
            return (Vec::new(), None);
        };
        let budget = (CHAIN_TIME.as_secs_f64() / step_time.as_secs_f64().max(1e-7)) as usize;
        let mut links = Vec::new();
        let mut g = generation.saturating_add(1);
        while links.len() < budget.min(MAX_LINKS) && g.saturating_add(1) < self.n_gen {
            let Ok(request) = encode("next request", &NextRequest { generation: g, cutoff_bin: 0 }) else { break };
            links.push(request);
            if self.due(g + 1) {
                return (links, Some(self.since()));
            }
            g += 1;
        }
        (links, None)
    }

    /// What each shard is asked for the delta of a snapshot made now: its key counts and
    /// spill slot in the last snapshot.
    fn since(&self) -> Vec<AdmitRequest> {
        let shards = self.cluster.shards() as usize;
        (0..shards)
            .map(|i| {
                let book = self.last.as_ref().and_then(|l| l.books.get(i));
                let (seen, emitted) = book.map_or((0, 0), Book::since);
                let slot = book.map_or(0, |b| b.members.next_slot());
                AdmitRequest { seen, emitted, spill: self.spill.map(|dir| (dir.to_string(), slot)) }
            })
            .collect()
    }

    /// Runs the step of `generation` and `links` as a chain ([`Cluster::step_chain`]),
    /// announcing the step after it (or the step alone, announcing `alone`, on a cluster
    /// that does not chain); keeps the chained steps' answers for the generation
    /// loop to take one by one. Returns the first step's admissions and the steps run.
    fn chain(
        &mut self,
        (first, request): (&str, &[u8]),
        generation: u32,
        (links, since): (Vec<Vec<u8>>, Option<Vec<AdmitRequest>>),
        alone: Option<&[u8]>,
    ) -> ga_core::Result<(u64, u32)> {
        let after = generation.saturating_add(1 + links.len() as u32);
        let ahead =
            encode("next request", &NextRequest { generation: after, cutoff_bin: 0 }).map_err(population_error)?;
        // The last link's admit asks each shard for its delta when it makes a snapshot.
        let last_admit = encoded_admits(since.as_deref())?;
        let mut per_shard_links = |i: u32| {
            let mut shard_links: Vec<(Vec<u8>, Vec<u8>)> = links.iter().map(|r| (r.clone(), Vec::new())).collect();
            if let (Some(last), Some(admit)) = (shard_links.last_mut(), last_admit.get(i as usize)) {
                last.1.clone_from(admit);
            }
            shard_links
        };
        let chained = self.cluster.step_chain(
            (first, &mut |_| request.to_vec()),
            ("admit", &mut |_| Vec::new()),
            (links.len(), &mut per_shard_links),
            Some(&mut |_| ahead.clone()),
        );
        let per_shard = match chained {
            Ok(Some(per_shard)) => per_shard,
            // A cluster that does not chain: the step alone, announcing the next as it would.
            Ok(None) => return self.admit((first, request), alone).map(|admitted| (admitted, 1)),
            Err(e) => {
                let engine = population_error(&e);
                self.failure.get_or_insert(UowError::Cluster(e));
                return Err(engine);
            }
        };
        // Every shard ran the same steps, and ended (or not) with the others.
        let (count, ended) = per_shard.first().map_or((0, false), |(a, e)| (a.len(), *e));
        if count == 0
            || per_shard.iter().any(|(a, e)| a.len() != count || *e != ended)
            || (!ended && count != links.len() + 1)
        {
            let runs: Vec<(usize, bool)> = per_shard.iter().map(|(a, e)| (a.len(), *e)).collect();
            return Err(population_error(format!(
                "the shards disagree on a chain of {} steps: (steps run, ended) {runs:?}",
                links.len() + 1
            )));
        }
        let mut steps: Vec<Vec<Bytes>> = (0..count).map(|_| Vec::with_capacity(per_shard.len())).collect();
        for (answers, _) in per_shard {
            for (step, answer) in steps.iter_mut().zip(answers) {
                step.push(answer);
            }
        }
        let mut steps = steps.into_iter();
        let first_answers = steps.next().unwrap_or_default();
        let mut since = since;
        for (k, answers) in steps.enumerate() {
            // Only the last link (when the chain ran to it) was asked for a snapshot delta.
            let asked = if k + 1 == links.len() { since.take() } else { None };
            self.chained.push_back((generation + 1 + k as u32, answers, asked));
        }
        self.ended = ended;
        Ok((self.read_admitted(first_answers, None)?.0, count as u32))
    }

    /// Puts every shard back in its state of `snapshot`; the census is theirs.
    fn restore(&mut self, snapshot: &Snapshot) -> ga_core::Result<()> {
        if snapshot.books.len() != self.cluster.shards() as usize {
            return Err(population_error(format!(
                "a checkpoint of {} shards for {} workers",
                snapshot.books.len(),
                self.cluster.shards()
            )));
        }
        let states = snapshot.encoded().map_err(population_error)?;
        self.census = None;
        self.chained.clear();
        self.ended = false;
        let answers = self.phase("restore", &mut |i| states[i as usize].clone())?;
        self.merge(answers).map(drop)
    }

    /// Merges the shards' encoded censuses in shard order; returns how many were
    /// admitted since the last census.
    fn merge(&mut self, answers: Vec<Bytes>) -> ga_core::Result<u64> {
        let mut censuses = Vec::with_capacity(answers.len());
        for a in answers {
            censuses.push(self.decode::<ShardCensus>("census", &a)?);
        }
        Ok(self.merge_censuses(censuses))
    }

    fn merge_censuses(&mut self, censuses: Vec<ShardCensus>) -> u64 {
        let merged = merged(self.granularity, &censuses);
        let before = self.census.as_ref().map_or(0, |c| c.admitted);
        let admitted = merged.admitted.saturating_sub(before);
        self.census = Some(merged);
        admitted
    }
}

impl<G: Genome + Serialize + DeserializeOwned> Population for ClusterPopulation<'_, G> {
    type Genome = G;

    fn init(&mut self) -> ga_core::Result<()> {
        self.admit(("init", &[]), None).map(drop)
    }

    fn census(&mut self) -> ga_core::Result<Census> {
        self.census.clone().ok_or_else(|| population_error("no census before init"))
    }

    fn step(&mut self, generation: u32, cutoff_bin: u32) -> ga_core::Result<u64> {
        // A step the workers ran in the last chain: its census is here already.
        if let Some((asked, answers, since)) = self.chained.pop_front() {
            if asked != generation {
                return Err(population_error(format!(
                    "the workers ran the step of generation {asked} where the run is at {generation}"
                )));
            }
            let (admitted, deltas) = self.read_admitted(answers, since.as_deref())?;
            if since.is_some() {
                self.pending = Some(deltas);
            }
            return Ok(admitted);
        }
        if self.ended {
            return Err(population_error(format!(
                "the workers ended the run at generation {generation}, which the framework goes on from"
            )));
        }
        let start = Instant::now();
        let (admitted, steps) = self.step_now(generation, cutoff_bin)?;
        self.step_time = Some(start.elapsed() / steps.max(1));
        Ok(admitted)
    }

    fn completed(&mut self, at: Progress) -> ga_core::Result<()> {
        let Some(deltas) = self.pending.take() else { return Ok(()) };
        let deltas: Vec<Delta> = deltas
            .into_iter()
            .map(|d| d.ok_or_else(|| population_error("a shard answered no snapshot delta")))
            .collect::<Result<_, _>>()?;
        let shards = self.cluster.shards();
        let mut first = None;
        let snapshot = match self.last.as_mut() {
            Some(last) => last,
            None => {
                first.insert(Snapshot { progress: at, books: (0..shards).map(|i| Book::empty(i, shards)).collect() })
            }
        };
        // Every delta is checked before any is applied: the last snapshot is brought up to
        // date whole (in place: its key logs only grow), or stays as it was.
        if deltas.len() != snapshot.books.len() {
            return Err(population_error(format!(
                "{} snapshot deltas for {} shards",
                deltas.len(),
                snapshot.books.len()
            )));
        }
        for (book, (head, _)) in snapshot.books.iter().zip(&deltas) {
            book.check(head).map_err(population_error)?;
        }
        for (book, (head, members)) in snapshot.books.iter_mut().zip(deltas) {
            book.apply(head, members).map_err(population_error)?;
        }
        snapshot.progress = at;
        if let Some(first) = first {
            *self.last = Some(first);
        }
        // Handed over only when the writer would start on it: a copy held while it rests
        // would make every later step copy the key logs' tails it shares.
        if self.writer.is_some_and(Writer::ready) {
            self.hand_over()?;
        }
        Ok(())
    }

    fn report(&mut self, cutoff_bin: u32) -> ga_core::Result<Vec<Individual<G>>> {
        // Steps of a chain the loop did not take: it stopped short of the workers' own
        // decision. A cancelled run (nobody reads its output) reports the generation the
        // shards hold; otherwise the two decisions differ, and the report would be wrong.
        if let Some((at, ..)) = self.chained.front() {
            if !self.cancelled.get() {
                return Err(population_error(format!(
                    "the run stopped at generation {at}, but its workers went on: their stop decisions differ \
                     (Problem::stop must depend on its arguments alone)"
                )));
            }
            tracing::warn!(steps = self.chained.len(), "the run was cancelled within steps the workers chained");
            self.chained.clear();
        }
        // The run's last snapshot goes to the disk whatever the writer is doing.
        if self.writer.is_some() && self.last.as_ref().map(|l| l.progress.generation) != self.handed_over {
            self.hand_over()?;
        }
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

#[cfg(test)]
mod tests {
    use ga_core::key_of;

    use super::*;

    fn individual(x: f64) -> Individual<Vec<f64>> {
        let genome = vec![x, -x, 0.5];
        Individual { key: key_of(&genome), genome, fitness: x.abs().min(1.0), born: 3 }
    }

    #[test]
    fn a_book_encodes_the_very_bytes_of_the_whole_state() {
        let first = ShardState {
            index: 1,
            count: 3,
            members: vec![individual(0.25), individual(0.75)],
            seen: vec![Key(1), Key(u64::MAX)],
            emitted: vec![Key(7)],
            admitted: 2,
            duplicates: 0,
        };
        let mut book = Book::from_state(first.clone()).unwrap();
        assert_eq!(book.encoded_state().unwrap(), encode("state", &first).unwrap());
        // A delta on top: members replaced, keys appended, counters taken.
        let members = vec![individual(0.5)];
        let head = DeltaHead {
            seen_from: 2,
            seen: vec![Key(9)],
            emitted_from: 1,
            emitted: vec![],
            admitted: 5,
            duplicates: 1,
            spilled: None,
        };
        book.apply(head, Members::Here(encode("members", &members).unwrap().into())).unwrap();
        let now =
            ShardState { members, seen: vec![Key(1), Key(u64::MAX), Key(9)], admitted: 5, duplicates: 1, ..first };
        assert_eq!(book.encoded_state().unwrap(), encode("state", &now).unwrap());
        assert_eq!(book.state_len(), encode("state", &now).unwrap().len() as u64);
        let stale = DeltaHead {
            seen_from: 0,
            seen: vec![],
            emitted_from: 0,
            emitted: vec![],
            admitted: 0,
            duplicates: 0,
            spilled: None,
        };
        assert!(book.apply(stale, Members::Here(Bytes::new())).unwrap_err().contains("not at 3 and 1"));
    }

    #[test]
    fn key_lists_travel_as_one_block_and_a_ragged_one_is_refused() {
        let state = ShardState::<Vec<f64>> {
            index: 0,
            count: 1,
            members: vec![],
            seen: vec![Key(1), Key(2)],
            emitted: vec![],
            admitted: 0,
            duplicates: 0,
        };
        let bytes = encode("state", &state).unwrap();
        // index, count, no members, 16 bytes of seen keys (length 16), none emitted, counters.
        assert_eq!(bytes.len(), 1 + 1 + 1 + (1 + 16) + 1 + 1 + 1);
        assert_eq!(decode::<ShardState<Vec<f64>>>("state", &bytes).unwrap(), state);
        let mut ragged = bytes.clone();
        ragged[3] = 15; // the block now claims 15 bytes
        ragged.remove(4 + 14);
        // (postcard keeps no custom message: the error names the message that failed.)
        let err = decode::<ShardState<Vec<f64>>>("state", &ragged).unwrap_err();
        assert!(err.to_string().starts_with("state: "), "{err}");
    }

    #[test]
    fn a_checkpoint_streamed_from_the_books_is_the_postcard_encoding_of_the_whole() {
        // Keys across a chunk boundary, counters and indexes of several varint lengths.
        let state = |index: u32, n: u64| ShardState {
            index,
            count: 200,
            members: vec![individual(0.125), individual(0.5)],
            seen: (0..n).map(|i| Key(i.wrapping_mul(0x9e37_79b9_7f4a_7c15))).collect(),
            emitted: (0..n / 3).map(Key).collect(),
            admitted: n << 20,
            duplicates: 127,
        };
        let books = vec![Book::from_state(state(3, 9000)).unwrap(), Book::from_state(state(199, 5)).unwrap()];
        let snapshot = Snapshot { progress: Progress { generation: 70_000, stalled: true }, books };
        let identity = RunIdentity {
            problem: "rastrigin".into(),
            size: Some(30),
            params: ga_core::Params::default(),
            seed: u64::MAX,
            shards: 200,
        };
        let mut streamed = Vec::new();
        snapshot.write_checkpoint(&identity, &mut streamed).unwrap();
        let whole =
            Checkpoint { identity: identity.clone(), progress: snapshot.progress, shards: snapshot.encoded().unwrap() };
        assert_eq!(streamed, postcard::to_allocvec(&whole).unwrap());
        for v in [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            write_varint(&mut out, v).unwrap();
            assert_eq!(out, postcard::to_allocvec(&v).unwrap(), "{v}");
            assert_eq!(varint_len(v), out.len() as u64, "{v}");
        }
    }

    #[test]
    fn a_key_log_keeps_every_key_in_order_and_its_copies_apart() {
        let mut log = KeyLog::default();
        let mut all = Vec::new();
        let mut copies = Vec::new();
        for i in 0..3000u64 {
            // Appends of 0 to 12 keys, some across a chunk's end (8192 keys in all at i ≈ 1365).
            let keys: Vec<Key> = (0..(i % 13)).map(|j| Key(i * 100 + j)).collect();
            all.extend(keys.iter().copied());
            log.extend(&keys);
            if i % 500 == 0 {
                copies.push((log.clone(), all.len()));
            }
        }
        assert_eq!(log.len(), all.len() as u64);
        assert_eq!(log.to_vec(), all);
        assert_eq!(log.chunks.len(), all.len() / KeyLog::CHUNK);
        // A copy taken earlier still holds exactly what the log held then.
        for (copy, n) in copies {
            assert_eq!(copy.to_vec(), all[..n]);
        }
        // One append longer than a chunk.
        let long: Vec<Key> = (0..20_000u64).map(Key).collect();
        log.extend(&long);
        all.extend(long);
        assert_eq!(log.to_vec(), all);
    }
}
