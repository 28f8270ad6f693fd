//! Shards on worker services, over gRPC.

use tokio::runtime::Handle;
use worker_service::WorkerClient;
use worker_service::pb::ConfigureRequest;

use crate::{Cluster, ClusterError, UnitOfWork, UowError};

/// A cluster of worker services, one shard each. Phases block the calling thread (which
/// must not be a runtime worker thread) on `runtime` until every worker has answered.
pub struct RemoteCluster {
    runtime: Handle,
    workers: Vec<WorkerClient>,
}

impl RemoteCluster {
    /// Configures one shard of `uow` on each worker at `endpoints` (in shard order).
    pub async fn configure<U: UnitOfWork>(
        runtime: Handle,
        uow: &U,
        endpoints: &[String],
        token: &str,
        run_id: &str,
    ) -> Result<Self, UowError> {
        let shards = endpoints.len() as u32;
        let mut workers = Vec::with_capacity(endpoints.len());
        for (i, endpoint) in endpoints.iter().enumerate() {
            let lost = |reason: String| ClusterError::Lost {
                shard: i as u32,
                endpoint: endpoint.clone(),
                phase: "configure".into(),
                reason,
            };
            let mut client = WorkerClient::connect_lazy(endpoint, token).map_err(|e| lost(e.to_string()))?;
            let request = ConfigureRequest {
                run_id: run_id.to_string(),
                job: uow.job().to_string(),
                shard: i as u32,
                shards,
                peers: endpoints.to_vec(),
                config: uow.shard_config(i as u32, shards)?,
            };
            client.configure(request).await.map_err(|e| lost(e.to_string()))?;
            workers.push(client);
        }
        Ok(Self { runtime, workers })
    }

    /// Asks every worker to exit; returns the first failure, after asking all.
    pub async fn stop(&mut self) -> Result<(), ClusterError> {
        let mut first = None;
        for (i, w) in self.workers.iter_mut().enumerate() {
            if let Err(e) = w.stop().await {
                first.get_or_insert(ClusterError::Lost {
                    shard: i as u32,
                    endpoint: w.endpoint().to_string(),
                    phase: "stop".into(),
                    reason: e.to_string(),
                });
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Cluster for RemoteCluster {
    fn shards(&self) -> u32 {
        self.workers.len() as u32
    }

    fn phase(&mut self, phase: &str, payload: &mut dyn FnMut(u32) -> Vec<u8>) -> Result<Vec<Vec<u8>>, ClusterError> {
        let calls: Vec<_> = self
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let (mut w, input, phase) = (w.clone(), payload(i as u32), phase.to_string());
                self.runtime.spawn(async move { w.phase(&phase, input).await })
            })
            .collect();
        let results = self.runtime.block_on(async {
            let mut results = Vec::with_capacity(calls.len());
            for call in calls {
                results.push(call.await);
            }
            results
        });
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let endpoint = self.workers[i].endpoint().to_string();
                let lost =
                    |reason: String| ClusterError::Lost { shard: i as u32, endpoint, phase: phase.into(), reason };
                match r {
                    Ok(Ok(answer)) => Ok(answer),
                    Ok(Err(e)) => match e.code() {
                        Some(tonic_code) if is_refusal(tonic_code) => {
                            Err(ClusterError::Refused { shard: i as u32, phase: phase.into(), reason: e.to_string() })
                        }
                        _ => Err(lost(e.to_string())),
                    },
                    Err(join) => Err(lost(join.to_string())),
                }
            })
            .collect()
    }
}

/// Codes with which a live worker answers a call it could not complete (as opposed to a
/// transport failure): ABORTED is a live worker whose peer did not take a batch.
fn is_refusal(code: worker_service::Code) -> bool {
    use worker_service::Code;
    matches!(code, Code::InvalidArgument | Code::FailedPrecondition | Code::NotFound | Code::Internal | Code::Aborted)
}
