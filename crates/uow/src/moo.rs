//! NSGA-II as a job: the framework keeps the population, breeds and selects
//! (`ga_core::moo::Nsga2`); each worker evaluates a contiguous slice of every generation.
//! Workers hold no state, and a generation is bred whole before it is evaluated, so a run
//! over any number of workers prints what the run in process prints.

use ga_core::moo::{Evaluation, FrontStats, MultiObjective, Nsga2, Solution};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use worker_service::{BatchDecoder, Job, Outbox, ShardWork, WorkError};

use crate::{Cluster, UnitOfWork, UowError, decode, encode};

/// The job's name on the workers.
pub const JOB: &str = "nsga2";

/// What a worker needs to build the problem: its name in the binary's catalog and size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MooConfig {
    /// The problem's name.
    pub problem: String,
    /// Its size, if it has one.
    pub size: Option<usize>,
}

impl MooConfig {
    /// Decodes a worker's configuration.
    pub fn decode(bytes: &[u8]) -> Result<Self, WorkError> {
        decode("NSGA-II configuration", bytes)
            .map_err(|e| WorkError::Invalid { what: "NSGA-II configuration", why: e.to_string() })
    }
}

/// A worker's side: phase `evaluate` takes genomes and answers their evaluations.
pub fn shard<P>(problem: P) -> Job
where
    P: MultiObjective + 'static,
    P::Genome: Serialize + DeserializeOwned,
{
    Job::new(Evaluator(problem), NoDeliveries)
}

struct Evaluator<P>(P);

impl<P> ShardWork for Evaluator<P>
where
    P: MultiObjective + 'static,
    P::Genome: Serialize + DeserializeOwned,
{
    type Batch = ();

    fn phase(&mut self, phase: &str, payload: &[u8], _: Vec<()>, _: &mut Outbox<()>) -> Result<Vec<u8>, WorkError> {
        if phase != "evaluate" {
            return Err(WorkError::UnknownPhase(phase.to_string()));
        }
        let genomes: Vec<P::Genome> =
            decode("genomes", payload).map_err(|e| WorkError::Invalid { what: "genomes", why: e.to_string() })?;
        let evaluations: Vec<Evaluation> = genomes.iter().map(|g| self.0.evaluate(g)).collect();
        encode("evaluations", &evaluations).map_err(|e| WorkError::Failed(e.to_string()))
    }
}

struct NoDeliveries;

impl BatchDecoder<()> for NoDeliveries {
    fn decode(&self, _: &[u8]) -> Result<(), WorkError> {
        Err(WorkError::Invalid { what: "delivery", why: "NSGA-II's workers exchange nothing".into() })
    }
}

/// The framework's side: [`Nsga2`] with each generation's evaluations made by the cluster.
pub struct Nsga2Job<'a, P> {
    problem: &'a P,
    config: MooConfig,
    settings: Nsga2,
    observer: &'a mut dyn FnMut(&FrontStats),
    /// The last generation told to the observer: after a recovery the run starts again
    /// and the generations told already are not told again.
    told: Option<u32>,
}

impl<'a, P> Nsga2Job<'a, P> {
    /// NSGA-II as `settings` say on `problem` (named and sized for the workers by `config`),
    /// telling `observer` of every generation.
    pub fn new(problem: &'a P, config: MooConfig, settings: Nsga2, observer: &'a mut dyn FnMut(&FrontStats)) -> Self {
        Self { problem, config, settings, observer, told: None }
    }
}

impl<P> UnitOfWork for Nsga2Job<'_, P>
where
    P: MultiObjective,
    P::Genome: Serialize + DeserializeOwned,
{
    type Output = (Vec<Solution<P::Genome>>, u64);

    fn job(&self) -> &'static str {
        JOB
    }

    fn shard_config(&self, _shard: u32, _shards: u32) -> Result<Vec<u8>, UowError> {
        encode("NSGA-II configuration", &self.config)
    }

    fn orchestrate(&mut self, cluster: &mut dyn Cluster) -> Result<Self::Output, UowError> {
        let mut failure: Option<UowError> = None;
        let mut evaluate = |genomes: &[P::Genome]| -> ga_core::Result<Vec<Evaluation>> {
            let shards = cluster.shards() as usize;
            let per = genomes.len().div_ceil(shards.max(1));
            let slices: Vec<Vec<u8>> = (0..shards)
                .map(|i| {
                    let slice = &genomes[(i * per).min(genomes.len())..((i + 1) * per).min(genomes.len())];
                    encode("genomes", &slice)
                })
                .collect::<Result<_, _>>()
                .map_err(|e| ga_core::Error::Population(e.to_string()))?;
            let answers = cluster.phase("evaluate", &mut |i| slices[i as usize].clone()).map_err(|e| {
                let message = e.to_string();
                failure.get_or_insert(UowError::Cluster(e));
                ga_core::Error::Population(message)
            })?;
            let mut all = Vec::with_capacity(genomes.len());
            for a in answers {
                let part: Vec<Evaluation> =
                    decode("evaluations", &a).map_err(|e| ga_core::Error::Population(e.to_string()))?;
                all.extend(part);
            }
            Ok(all)
        };
        let (told, observer) = (&mut self.told, &mut *self.observer);
        let mut tell = |s: &FrontStats| {
            if told.is_none_or(|t| s.generation > t) {
                observer(s);
                *told = Some(s.generation);
            }
        };
        let outcome = self.settings.run_evaluated(self.problem, &mut evaluate, &mut tell);
        match (outcome, failure) {
            (Ok(done), _) => Ok(done),
            (Err(_), Some(cluster)) => Err(cluster),
            (Err(e), None) => Err(UowError::Job(e.to_string())),
        }
    }

    fn recover(&mut self) -> Option<String> {
        // Workers hold nothing and a seed fixes the run: it starts again, the same.
        Some("NSGA-II starts again from generation 0 (its workers only evaluate); the generations printed are not printed again".into())
    }
}
