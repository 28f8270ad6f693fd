//! The GA as a UnitOfWork: the same run in process, over local shards and over real
//! worker services on loopback, must print the same thing.

use std::sync::Arc;

use ga_core::problems::{OneMax, Sum231};
use ga_core::{Engine, GenerationStats, Migration, Outcome, Problem, Topology};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uow::ga::{self, GaConfig, GaJob};
use uow::{Cluster, ClusterError, LocalCluster, RemoteCluster, UnitOfWork};
use worker_service::Bytes;
use worker_service::{Job, Registry, WorkError, WorkerConfig};

/// The workers' side of the problems these tests run.
struct TestJobs;

impl Registry for TestJobs {
    fn create(&self, job: &str, config: &[u8], shard: u32, shards: u32) -> Result<Job, WorkError> {
        let c = GaConfig::decode(config)?;
        match (job, c.problem.as_str()) {
            (ga::JOB, "onemax") => ga::job(OneMax { bits: c.size.unwrap_or(100) }, c, shard, shards),
            (ga::JOB, "sum231") => ga::job(Sum231::default(), c, shard, shards),
            _ => Err(WorkError::UnknownJob(job.to_string())),
        }
    }
}

fn config<P: Problem>(name: &str, problem: &P, seed: u64) -> GaConfig {
    GaConfig { problem: name.into(), size: None, params: problem.params(), seed, threads: 1 }
}

/// Every generation's line and the final report, as text.
fn trace<G: ga_core::Genome>(lines: Vec<String>, outcome: &Outcome<G>) -> String {
    let mut all = lines;
    all.extend(outcome.report.iter().map(|m| format!("{:.4} {} {}", m.fitness, m.born, m.genome.to_json())));
    all.push(format!("{:?} {}", outcome.stop, outcome.evaluations));
    all.join("\n")
}

fn local<P>(problem: &P, cfg: GaConfig, shards: u32) -> String
where
    P: Problem,
    P::Genome: Serialize + DeserializeOwned,
{
    let mut lines = Vec::new();
    let mut observer = |s: &GenerationStats| lines.push(format!("{s:?}"));
    let mut job = GaJob::new(problem, cfg, &mut observer);
    let mut cluster = LocalCluster::new(&job, &TestJobs, shards).unwrap();
    let outcome = job.orchestrate(&mut cluster).unwrap();
    trace(lines, &outcome)
}

/// `shards` worker services on loopback, served by `runtime`: their endpoints and token.
fn workers(runtime: &tokio::runtime::Runtime, shards: u32) -> (Vec<String>, String) {
    let token = worker_service::generate_token().unwrap();
    let mut endpoints = Vec::new();
    for _ in 0..shards {
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        endpoints.push(format!("http://{}", listener.local_addr().unwrap()));
        let config = WorkerConfig::new(token.clone(), Arc::new(TestJobs));
        runtime.spawn(worker_service::serve(listener, config, std::future::pending()));
    }
    (endpoints, token)
}

fn remote<P>(problem: &P, cfg: GaConfig, shards: u32) -> String
where
    P: Problem,
    P::Genome: Serialize + DeserializeOwned,
{
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (endpoints, token) = workers(&runtime, shards);
    let mut lines = Vec::new();
    let mut observer = |s: &GenerationStats| lines.push(format!("{s:?}"));
    let mut job = GaJob::new(problem, cfg, &mut observer);
    let mut cluster = runtime
        .block_on(RemoteCluster::configure(runtime.handle().clone(), &job, &endpoints, &token, "test-run"))
        .unwrap();
    let outcome = job.orchestrate(&mut cluster).unwrap();
    runtime.block_on(cluster.stop()).unwrap();
    trace(lines, &outcome)
}

#[test]
fn one_shard_through_the_framework_is_the_in_process_engine() {
    let p = Sum231::default();
    let mut lines = Vec::new();
    let outcome = Engine::new(&p).seed(7).run(&mut |s: &GenerationStats| lines.push(format!("{s:?}"))).unwrap();
    assert_eq!(local(&p, config("sum231", &p, 7), 1), trace(lines, &outcome));
}

#[test]
fn real_workers_over_grpc_compute_what_local_shards_compute() {
    let p = Sum231::default();
    let local3 = local(&p, config("sum231", &p, 7), 3);
    assert_eq!(local3, local(&p, config("sum231", &p, 7), 3), "a seed fixes a three-shard run");
    assert_eq!(remote(&p, config("sum231", &p, 7), 3), local3);
    let om = OneMax { bits: 64 };
    let mut cfg = config("onemax", &om, 3);
    cfg.size = Some(64);
    cfg.params.max_indiv = 5_000;
    assert_eq!(remote(&om, cfg.clone(), 2), local(&om, cfg, 2));
}

#[test]
fn islands_over_real_workers_compute_what_local_islands_compute() {
    let om = OneMax { bits: 64 };
    let mut cfg = config("onemax", &om, 3);
    cfg.size = Some(64);
    cfg.params.max_indiv = 6_000;
    cfg.params.target_fitness = None;
    cfg.params.migration = Some(Migration { every: 5, migrants: 2, topology: Topology::Ring });
    let local3 = local(&om, cfg.clone(), 3);
    assert_eq!(local3, local(&om, cfg.clone(), 3), "a seed fixes an island run");
    assert_eq!(remote(&om, cfg.clone(), 3), local3);
    // A census every 5 generations: the islands evolve alone in between.
    assert!(local3.contains("generation: 0,") && local3.contains("generation: 5,"), "{local3}");
    assert!(!local3.contains("generation: 1,") && !local3.contains("generation: 4,"), "{local3}");
    // The migrants matter: islands that never meet make another run.
    cfg.params.migration = Some(Migration { every: 5, migrants: 0, topology: Topology::Ring });
    assert_ne!(local(&om, cfg, 3), local3);
}

/// The run of `local`, with a snapshot every generation written by a checkpoint writer
/// into `dir`, its members spilled into `spill` if given; the output and the last
/// checkpoint file's bytes.
fn checkpointed<P>(
    problem: &P,
    cfg: GaConfig,
    shards: u32,
    dir: &std::path::Path,
    spill: Option<&uow::spill::SpillDir>,
) -> (String, Vec<u8>)
where
    P: Problem,
    P::Genome: Serialize + DeserializeOwned,
{
    let writer = uow::checkpoint::Writer::new(dir).unwrap();
    let mut lines = Vec::new();
    let mut observer = |s: &GenerationStats| lines.push(format!("{s:?}"));
    let mut job = GaJob::new(problem, cfg, &mut observer).with_checkpoints(1, Some(&writer));
    if let Some(s) = spill {
        job = job.with_spill(s);
    }
    let mut cluster = LocalCluster::new(&job, &TestJobs, shards).unwrap();
    let outcome = job.orchestrate(&mut cluster).unwrap();
    drop(job);
    writer.flush().unwrap();
    let (path, _, _) = uow::checkpoint::newest(dir).unwrap();
    (trace(lines, &outcome), std::fs::read(path).unwrap())
}

/// A OneMax-64 run over `shards` local shards with a snapshot every generation, its
/// members spilled into a fresh spill folder (removed before the run if `folder_gone`),
/// checked against the same run with the members in the answers and without snapshots:
/// the same output and the same last checkpoint file. Returns how many slot files the
/// shards wrote (`None`: the folder is not there).
fn spilled_against_in_answers(shards: u32, folder_gone: bool) -> Option<usize> {
    let om = OneMax { bits: 64 };
    let mut cfg = config("onemax", &om, 5);
    cfg.size = Some(64);
    cfg.params.max_indiv = 4_000;
    let scratch = std::env::temp_dir().join(format!("uow-spill-{}-{folder_gone}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let spill = uow::spill::SpillDir::new_in(&scratch).unwrap();
    if folder_gone {
        std::fs::remove_dir_all(spill.path()).unwrap();
    }
    let (spilled, file) = checkpointed(&om, cfg.clone(), shards, &scratch.join("a"), Some(&spill));
    let slots = std::fs::read_dir(spill.path()).ok().map(|d| d.count());
    let (in_answers, file_in_answers) = checkpointed(&om, cfg.clone(), shards, &scratch.join("b"), None);
    assert_eq!(spilled, in_answers);
    assert_eq!(spilled, local(&om, cfg, shards), "snapshots change nothing in the run");
    assert_eq!(file, file_in_answers, "the checkpoint file does not depend on how the members travelled");
    drop(spill);
    let _ = std::fs::remove_dir_all(&scratch);
    slots
}

#[test]
fn spilled_snapshots_make_the_same_run_and_the_same_checkpoint_file() {
    assert_eq!(spilled_against_in_answers(3, false), Some(6), "two slots for each of 3 shards");
}

#[test]
fn a_spill_slot_that_cannot_be_written_sends_the_members_in_the_answer() {
    // No worker can write a slot, and none creates the folder.
    assert_eq!(spilled_against_in_answers(2, true), None);
}

/// A cluster that counts the chains it runs and those whose last link makes a snapshot
/// (its admit payload, a request for the shard's delta, is not empty).
struct Chains<C> {
    inner: C,
    chains: usize,
    ending_in_a_snapshot: usize,
}

impl<C: Cluster> Cluster for Chains<C> {
    fn shards(&self) -> u32 {
        self.inner.shards()
    }

    fn phase(&mut self, phase: &str, payload: &mut dyn FnMut(u32) -> Vec<u8>) -> Result<Vec<Bytes>, ClusterError> {
        self.inner.phase(phase, payload)
    }

    fn step(
        &mut self,
        first: (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        then: (&str, &mut dyn FnMut(u32) -> Vec<u8>),
    ) -> Result<Vec<Bytes>, ClusterError> {
        self.inner.step(first, then)
    }

    fn step_announcing(
        &mut self,
        first: (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        then: (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        ahead: &mut dyn FnMut(u32) -> Vec<u8>,
    ) -> Result<Vec<Bytes>, ClusterError> {
        self.inner.step_announcing(first, then, ahead)
    }

    fn step_chain(
        &mut self,
        first: (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        then: (&str, &mut dyn FnMut(u32) -> Vec<u8>),
        (count, links): (usize, &mut dyn FnMut(u32) -> Vec<(Vec<u8>, Vec<u8>)>),
        ahead: Option<&mut dyn FnMut(u32) -> Vec<u8>>,
    ) -> Result<Option<Vec<(Vec<Bytes>, bool)>>, ClusterError> {
        let mut snapshot = false;
        let mut seen = |i: u32| {
            let shard_links = links(i);
            snapshot |= shard_links.last().is_some_and(|(_, then)| !then.is_empty());
            shard_links
        };
        let ran = self.inner.step_chain(first, then, (count, &mut seen), ahead);
        self.chains += 1;
        self.ending_in_a_snapshot += usize::from(snapshot);
        ran
    }
}

/// A OneMax-64 run over 2 shards with a snapshot every 4 generations written to a
/// checkpoint file in `dir`, on the cluster `make` gives (then handed to `done`); the
/// output and the last checkpoint file's bytes.
fn checkpointed_every_4<C: Cluster>(
    dir: &std::path::Path,
    make: impl FnOnce(&GaJob<'_, OneMax>) -> C,
    done: impl FnOnce(C),
) -> (String, Vec<u8>) {
    let om = OneMax { bits: 64 };
    let mut cfg = config("onemax", &om, 5);
    cfg.size = Some(64);
    cfg.params.max_indiv = 4_000;
    let writer = uow::checkpoint::Writer::new(dir).unwrap();
    let mut lines = Vec::new();
    let mut observer = |s: &GenerationStats| lines.push(format!("{s:?}"));
    let mut job = GaJob::new(&om, cfg, &mut observer).with_checkpoints(4, Some(&writer));
    let mut cluster = make(&job);
    let outcome = job.orchestrate(&mut cluster).unwrap();
    done(cluster);
    drop(job);
    writer.flush().unwrap();
    let (path, _, _) = uow::checkpoint::newest(dir).unwrap();
    (trace(lines, &outcome), std::fs::read(path).unwrap())
}

#[test]
fn a_chain_ends_with_a_snapshots_step_and_the_run_and_its_checkpoint_are_unchanged() {
    let scratch = std::env::temp_dir().join(format!("uow-chained-snapshot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    // Local shards do not chain: every step is asked alone.
    let local = |job: &GaJob<'_, OneMax>| LocalCluster::new(job, &TestJobs, 2).unwrap();
    let (local_run, local_file) = checkpointed_every_4(&scratch.join("local"), local, drop);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (endpoints, token) = workers(&runtime, 2);
    let (mut chains, mut ending) = (0, 0);
    let remote = |job: &GaJob<'_, OneMax>| {
        let configured = RemoteCluster::configure(runtime.handle().clone(), job, &endpoints, &token, "chained");
        Chains { inner: runtime.block_on(configured).unwrap(), chains: 0, ending_in_a_snapshot: 0 }
    };
    let done = |mut counted: Chains<RemoteCluster>| {
        (chains, ending) = (counted.chains, counted.ending_in_a_snapshot);
        runtime.block_on(counted.inner.stop()).unwrap();
    };
    let (remote_run, remote_file) = checkpointed_every_4(&scratch.join("remote"), remote, done);
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(ending > 0 && ending <= chains, "{ending} of {chains} chains ended with a snapshot's step");
    assert_eq!(remote_run, local_run);
    assert_eq!(remote_file, local_file, "the same checkpoint whether its step was chained or not");
}
