//! A UnitOfWork that is not a genetic algorithm: estimating π by Monte Carlo over shards.
//!
//! Each step, every shard throws `batch` points into the unit square (from its own seeded
//! stream) and answers how many fell inside the quarter circle; the framework sums the
//! partial counts, and stops once the estimate's standard error is below `tolerance` or
//! `max_steps` steps ran. It shows what a job must provide to `uow`: a name, per-shard
//! configuration, a worker side ([`PiShard`]) and an orchestration ([`PiJob`]).

use ga_core::rng::Rng;
use serde::{Deserialize, Serialize};
use uow::{Cluster, UnitOfWork, UowError, decode, encode};
use worker_service::{BatchDecoder, Job, Outbox, ShardWork, WorkError};

/// The job's name on workers.
pub const JOB: &str = "pi";

/// What each shard is told.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PiConfig {
    /// Points per shard per step.
    pub batch: u64,
    /// The run seed.
    pub seed: u64,
}

/// A shard's partial result: points inside the quarter circle, points thrown.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct Tally {
    inside: u64,
    thrown: u64,
}

/// The worker side: throws points.
pub struct PiShard {
    config: PiConfig,
    shard: u32,
    step: u64,
}

/// Creates a shard of the job (for a worker's registry).
pub fn job(config: &[u8], shard: u32) -> Result<Job, WorkError> {
    let config: PiConfig = decode("pi configuration", config)
        .map_err(|e| WorkError::Invalid { what: "pi configuration", why: e.to_string() })?;
    if config.batch == 0 || config.batch > 1 << 32 {
        return Err(WorkError::Invalid { what: "pi configuration", why: format!("batch {}", config.batch) });
    }
    Ok(Job::new(PiShard { config, shard, step: 0 }, NoDeliveries))
}

impl ShardWork for PiShard {
    /// Nothing travels between shards.
    type Batch = ();

    fn phase(&mut self, phase: &str, _payload: &[u8], _: Vec<()>, _: &mut Outbox<()>) -> Result<Vec<u8>, WorkError> {
        if phase != "throw" {
            return Err(WorkError::UnknownPhase(phase.to_string()));
        }
        let mut rng = Rng::stream(self.config.seed, &[u64::from(self.shard), self.step]);
        self.step += 1;
        let inside = (0..self.config.batch)
            .filter(|_| {
                let (x, y) = (rng.next_f64(), rng.next_f64());
                x * x + y * y <= 1.0
            })
            .count() as u64;
        encode("tally", &Tally { inside, thrown: self.config.batch }).map_err(|e| WorkError::Failed(e.to_string()))
    }
}

/// This job sends nothing between shards.
struct NoDeliveries;

impl BatchDecoder<()> for NoDeliveries {
    fn decode(&self, _: &[u8]) -> Result<(), WorkError> {
        Err(WorkError::Invalid { what: "delivery", why: "the pi job exchanges nothing between shards".into() })
    }
}

/// The estimate, with how it was reached.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// The estimate of π.
    pub pi: f64,
    /// Its standard error.
    pub standard_error: f64,
    /// Points thrown in all.
    pub thrown: u64,
    /// Steps run.
    pub steps: u32,
}

/// The framework side: steps until the estimate is precise enough.
pub struct PiJob {
    /// Shard configuration.
    pub config: PiConfig,
    /// Stop when the standard error is below this.
    pub tolerance: f64,
    /// Stop after this many steps anyway.
    pub max_steps: u32,
}

impl UnitOfWork for PiJob {
    type Output = Estimate;

    fn job(&self) -> &'static str {
        JOB
    }

    fn shard_config(&self, _shard: u32, _shards: u32) -> Result<Vec<u8>, UowError> {
        encode("pi configuration", &self.config)
    }

    fn orchestrate(&mut self, cluster: &mut dyn Cluster) -> Result<Estimate, UowError> {
        let mut total = Tally::default();
        let mut steps = 0;
        loop {
            // One step on every shard, then merge the partial tallies.
            for answer in cluster.phase("throw", &mut |_| Vec::new())? {
                let t: Tally = decode("tally", &answer)?;
                total.inside += t.inside;
                total.thrown += t.thrown;
            }
            steps += 1;
            // Each point is a Bernoulli trial with p = π/4; the estimate is 4p̂.
            let p = total.inside as f64 / total.thrown as f64;
            let standard_error = 4.0 * (p * (1.0 - p) / total.thrown as f64).sqrt();
            if standard_error < self.tolerance || steps >= self.max_steps {
                return Ok(Estimate { pi: 4.0 * p, standard_error, thrown: total.thrown, steps });
            }
        }
    }
}
