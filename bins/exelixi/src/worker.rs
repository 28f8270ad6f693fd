//! `exelixi worker`: one shard of a run behind a gRPC service.

use std::net::SocketAddr;
use std::sync::Arc;

use uow::ga::{self, GaConfig};
use worker_service::{Job, Registry, WorkError, WorkerConfig};

use crate::cli::{ProblemName, WorkerArgs};
use crate::problems::{self, WithProblem};

/// The environment variable that carries the run's token to a worker (never the command
/// line, which other users can read).
pub use worker_service::TOKEN_ENV;

/// The jobs this binary's workers run: the GA over the built-in problems.
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
        P: ga_core::Problem + 'static,
        P::Genome: serde::Serialize + serde::de::DeserializeOwned,
    {
        // A worker refuses a shard it cannot hold rather than abort in the allocator.
        crate::memory::check(&problem, &self.config.params, self.shards, 1, "this worker's shard of a run")
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
        if config.size.is_some_and(|s| !(1..=crate::cli::MAX_SIZE).contains(&s)) {
            return Err(invalid(format!("size {:?} out of range", config.size)));
        }
        problems::visit(name, config.size, CreateShard { config, shard, shards })
    }

    fn jobs(&self) -> Vec<String> {
        vec![ga::JOB.to_string()]
    }
}

/// Serves until stopped by the framework, interrupted, or (with `--exit-with-parent`)
/// orphaned. Returns a message for the user on failure.
pub fn serve(args: &crate::cli::WorkerArgs) -> Result<(), String> {
    let token =
        std::env::var(TOKEN_ENV).map_err(|_| format!("{TOKEN_ENV} is not set: a worker needs the run's token"))?;
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("{TOKEN_ENV} must be at least 16 printable ASCII characters"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let served = runtime.block_on(serve_async(args, token));
    // Dropping a runtime waits for its blocking threads, and a phase may still be computing
    // on one: a worker told to stop does not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    served
}

async fn serve_async(args: &WorkerArgs, token: String) -> Result<(), String> {
    let config = WorkerConfig::new(token, Arc::new(BuiltinJobs));
    worker_service::serve_process(SocketAddr::new(args.host, args.port), config, args.exit_with_parent)
        .await
        .map_err(|e| e.to_string())
}
