//! The pi job on local shards and on real worker services: the framework is not GA-bound.

use std::sync::Arc;

use pi_uow::{PiConfig, PiJob};
use uow::{LocalCluster, RemoteCluster, UnitOfWork};
use worker_service::{Job, Registry, WorkError, WorkerConfig};

struct OnlyPi;

impl Registry for OnlyPi {
    fn create(&self, job: &str, config: &[u8], shard: u32, _shards: u32) -> Result<Job, WorkError> {
        if job == pi_uow::JOB { pi_uow::job(config, shard) } else { Err(WorkError::UnknownJob(job.into())) }
    }
}

fn pi_job() -> PiJob {
    PiJob { config: PiConfig { batch: 100_000, seed: 11 }, tolerance: 2e-3, max_steps: 100 }
}

#[test]
fn local_shards_estimate_pi_within_the_stated_error() {
    let mut job = pi_job();
    let mut cluster = LocalCluster::new(&job, &OnlyPi, 4).unwrap();
    let e = job.orchestrate(&mut cluster).unwrap();
    assert!(e.standard_error < 2e-3, "{e:?}");
    assert!((e.pi - std::f64::consts::PI).abs() < 4.0 * e.standard_error, "{e:?}");
    assert_eq!(e.thrown, 4 * 100_000 * u64::from(e.steps));
}

#[test]
fn real_workers_give_the_same_estimate_as_local_shards() {
    let mut job = pi_job();
    let local = job.orchestrate(&mut LocalCluster::new(&job, &OnlyPi, 3).unwrap()).unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let token = worker_service::generate_token().unwrap();
    let endpoints: Vec<String> = (0..3)
        .map(|_| {
            let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
            let endpoint = format!("http://{}", listener.local_addr().unwrap());
            runtime.spawn(worker_service::serve(
                listener,
                WorkerConfig::new(token.clone(), Arc::new(OnlyPi)),
                std::future::pending(),
            ));
            endpoint
        })
        .collect();
    let mut cluster =
        runtime.block_on(RemoteCluster::configure(runtime.handle().clone(), &job, &endpoints, &token, "pi")).unwrap();
    let remote = job.orchestrate(&mut cluster).unwrap();
    runtime.block_on(cluster.stop()).unwrap();
    assert_eq!(local, remote);
}
