//! A worker for the distributed benchmark: `exelixi worker`'s service with the benchmark's
//! problems (`slow-rastrigin`, `onemax`). Started by `benches/distributed.rs`.

use std::sync::Arc;

use exelixi_benches::SlowRastrigin;
use uow::builtin::BuiltinJobs;
use uow::ga::{self, GaConfig};
use worker_service::{Job, Registry, WorkError, WorkerConfig};

/// The built-in problems, and the benchmark's own.
struct BenchJobs;

impl Registry for BenchJobs {
    fn create(&self, job: &str, config: &[u8], shard: u32, shards: u32) -> Result<Job, WorkError> {
        let c = GaConfig::decode(config)?;
        match (job, c.problem.as_str()) {
            (ga::JOB, "slow-rastrigin") => ga::job(SlowRastrigin::default(), c, shard, shards),
            _ => BuiltinJobs.create(job, config, shard, shards),
        }
    }
}

fn main() {
    let token = std::env::var(worker_service::TOKEN_ENV).expect("the token in EXELIXI_TOKEN");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let config = WorkerConfig::new(token, Arc::new(BenchJobs));
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    runtime.block_on(worker_service::serve_process(address, config, true)).unwrap();
    // As exelixi worker: a phase still computing does not hold the process.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
}
