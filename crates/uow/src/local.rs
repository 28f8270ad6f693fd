//! Every shard in this process: the same job code as on workers, routed in memory.

use worker_service::{Batch, Job, JobDecoder, Registry, WorkError};

use crate::{Bytes, Cluster, ClusterError, UnitOfWork, UowError};

struct LocalShard {
    job: Job,
    decoder: JobDecoder,
    queue: Vec<Batch>,
}

/// A cluster whose shards are jobs created from a [`Registry`] in this process.
pub struct LocalCluster {
    shards: Vec<LocalShard>,
}

impl LocalCluster {
    /// Creates `shards` shards of `uow`'s job from `registry`.
    pub fn new<U: UnitOfWork>(uow: &U, registry: &dyn Registry, shards: u32) -> Result<Self, UowError> {
        let shards = (0..shards)
            .map(|i| {
                let config = uow.shard_config(i, shards)?;
                let job = registry.create(uow.job(), &config, i, shards).map_err(|e| UowError::Job(e.to_string()))?;
                Ok(LocalShard { decoder: job.decoder(), job, queue: Vec::new() })
            })
            .collect::<Result<Vec<_>, UowError>>()?;
        Ok(Self { shards })
    }
}

impl Cluster for LocalCluster {
    fn shards(&self) -> u32 {
        self.shards.len() as u32
    }

    fn phase(&mut self, phase: &str, payload: &mut dyn FnMut(u32) -> Vec<u8>) -> Result<Vec<Bytes>, ClusterError> {
        let refused =
            |shard: u32, e: WorkError| ClusterError::Refused { shard, phase: phase.to_string(), reason: e.to_string() };
        let mut answers = Vec::with_capacity(self.shards.len());
        let mut sent: Vec<(u32, Vec<u8>)> = Vec::new();
        for (i, shard) in self.shards.iter_mut().enumerate() {
            let input = payload(i as u32);
            let deliveries = std::mem::take(&mut shard.queue);
            let (answer, (batches, kept, _)) =
                shard.job.phase(phase, &input, deliveries).map_err(|e| refused(i as u32, e))?;
            answers.push(answer.into());
            sent.extend(batches);
            shard.queue.extend(kept);
        }
        // Batches are delivered after every shard ran the phase, as with workers, where
        // they may arrive at any time before the next phase.
        for (to, batch) in sent {
            let shard = self.shards.get_mut(to as usize).ok_or_else(|| ClusterError::Refused {
                shard: to,
                phase: phase.to_string(),
                reason: format!("a batch was addressed to shard {to}, which does not exist"),
            })?;
            let decoded = shard.decoder.decode(&batch).map_err(|e| refused(to, e))?;
            shard.queue.push(decoded);
        }
        Ok(answers)
    }
}
