//! Distributed throughput: `cargo bench -p exelixi-benches --bench distributed`
//!
//! On a fitness that costs ≈ 50 µs (`SlowRastrigin`), evaluations per second of the
//! in-process engine on all cores against 1, 2 and 4 worker processes on loopback (their
//! computing threads in the idle class, as `exelixi worker` runs them; 2 workers also in
//! the normal class), interleaved, median of several runs; the coordination overhead per generation with a
//! near-free fitness (OneMax-100); the wire bytes per individual; and the cost of
//! checkpoints (Rastrigin-30, population 400, 2 workers: none, a snapshot every generation
//! kept in memory, one written to disk every generation or every 10, and a snapshot every
//! generation with the members in the answers as remote workers send them) with the time a run takes to
//! recover from a SIGKILLed worker; large genomes (Rastrigin-4000, population 100: in
//! process on one and two threads, and over 2 workers); and what a status board costs
//! (`-- status`: fed by the run, served, its page and metrics polled). `-- large` runs
//! the large genomes alone, `-- scaling` throughput, coordination and large genomes.

use std::process::Command;
use std::time::{Duration, Instant};

use exelixi_benches::SlowRastrigin;
use ga_core::problems::OneMax;
use ga_core::{Candidate, Engine, Origin, Params, Problem, Rng, Selection, key_of};
use uow::ga::{GaConfig, GaJob};
use uow::{Cluster, LocalProcesses, RunOptions, UnitOfWork, UowError};
use worker_service::ComputeClass;

const REPEATS: usize = 5;
/// The checkpoint runs: long enough (about a second each) to measure a few per cent.
const CHECKPOINT_REPEATS: usize = 15;
const CHECKPOINT_GENERATIONS: u32 = 1000;
/// The status board's rounds: its cost is near this machine's noise, so more of them.
const STATUS_REPEATS: usize = 31;
const CORES: usize = 2;

fn params(n_pop: usize, n_gen: u32) -> Params {
    Params {
        n_pop,
        n_gen,
        max_indiv: u64::MAX,
        term_limit: 0.0,
        target_fitness: None,
        mutation_rate: 1.0,
        selection: Selection::Tournament { size: 3, elites: 1, crossover_rate: 0.9 },
        ..Params::default()
    }
}

/// How many workers, and how their computing threads are scheduled.
#[derive(Clone, Copy)]
struct Team {
    workers: usize,
    class: ComputeClass,
}

/// A number of workers is a team of the default class, as `exelixi worker` runs them.
impl From<usize> for Team {
    fn from(workers: usize) -> Self {
        Team { workers, class: ComputeClass::Idle }
    }
}

/// (evaluations, seconds, generations) of one distributed run.
fn distributed<P>(problem: &P, name: &str, params: &Params, workers: impl Into<Team>) -> (u64, f64, u32)
where
    P: Problem,
    P::Genome: serde::Serialize + serde::de::DeserializeOwned,
{
    let (e, s, g, _) =
        distributed_with(problem, (name, None), params, workers, Checkpoints::None, &mut |_: &_| {}, None);
    (e, s, g)
}

/// What a run does with snapshots.
#[derive(Clone, Copy)]
enum Checkpoints<'a> {
    None,
    /// Every generation, kept in memory (what recovery uses).
    InMemory,
    /// Every generation, kept in memory, the members in the admit answers as remote
    /// workers (Mesos) send them, not spilled through memory files as local ones do.
    InAnswers,
    /// Every so many generations, and written into this folder.
    OnDisk(u32, &'a std::path::Path),
}

/// [`distributed`] of the problem `(name, size)` with checkpoints, reporting to `observer`;
/// the time includes writing the last checkpoint. Also says how many checkpoint files were
/// written (the writer skips snapshots that come while it writes).
fn distributed_with<P>(
    problem: &P,
    (name, size): (&str, Option<usize>),
    params: &Params,
    team: impl Into<Team>,
    checkpoints: Checkpoints<'_>,
    observer: &mut dyn ga_core::Observer,
    watch: Option<std::sync::Arc<dyn uow::RunWatch>>,
) -> (u64, f64, u32, u64)
where
    P: Problem,
    P::Genome: serde::Serialize + serde::de::DeserializeOwned,
{
    let Team { workers, class } = team.into();
    let config =
        GaConfig { problem: name.into(), size, params: params.clone(), seed: 1, threads: (CORES / workers).max(1) };
    let writer = match checkpoints {
        Checkpoints::OnDisk(_, dir) => Some(uow::checkpoint::Writer::new(dir).expect("a checkpoint folder")),
        _ => None,
    };
    let every = match checkpoints {
        Checkpoints::None => 0,
        Checkpoints::InMemory | Checkpoints::InAnswers => 1,
        Checkpoints::OnDisk(every, _) => every,
    };
    // Through the same path as `exelixi run --workers`; only orchestration is timed.
    // Local workers spill their snapshots' members, as under `exelixi run --workers`.
    let spill = uow::spill::SpillDir::new().expect("a spill folder");
    let mut job = GaJob::new(problem, config, observer).with_checkpoints(every, writer.as_ref());
    if !matches!(checkpoints, Checkpoints::InAnswers) {
        job = job.with_spill(&spill);
    }
    let mut job = Timed { job, took: Duration::ZERO };
    let class = class.to_string();
    let mut fleet = LocalProcesses::new(|_| {
        let mut worker = Command::new(env!("CARGO_BIN_EXE_bench-worker"));
        worker.args(["--compute-class", &class]);
        worker
    });
    let options = RunOptions { phase_timeout: None, handle_signals: false, watch, ..RunOptions::default() };
    let outcome = uow::run(&mut job, &mut fleet, workers as u32, &options).expect("a distributed run");
    let start = Instant::now();
    let written = writer.as_ref().map_or(0, |w| w.flush().expect("checkpoints written"));
    (outcome.evaluations, (job.took + start.elapsed()).as_secs_f64(), outcome.last.generation + 1, written)
}

/// A job whose orchestration (every phase, not the workers' start) is timed.
struct Timed<U> {
    job: U,
    took: Duration,
}

impl<U: UnitOfWork> UnitOfWork for Timed<U> {
    type Output = U::Output;

    fn job(&self) -> &'static str {
        self.job.job()
    }

    fn shard_config(&self, shard: u32, shards: u32) -> Result<Vec<u8>, UowError> {
        self.job.shard_config(shard, shards)
    }

    fn orchestrate(&mut self, cluster: &mut dyn Cluster) -> Result<U::Output, UowError> {
        let start = Instant::now();
        let outcome = self.job.orchestrate(cluster);
        // A recovery orchestrates again: its time counts.
        self.took += start.elapsed();
        outcome
    }

    fn recover(&mut self) -> Option<String> {
        self.job.recover()
    }
}

fn in_process<P: Problem>(problem: &P, params: &Params) -> (u64, f64) {
    in_process_on(problem, params, CORES)
}

fn in_process_on<P: Problem>(problem: &P, params: &Params, threads: usize) -> (u64, f64) {
    let engine = Engine::new(problem).params(params.clone()).seed(1).threads(threads).unwrap();
    let start = Instant::now();
    let outcome = engine.run(&mut |_: &_| {}).unwrap();
    (outcome.evaluations, start.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and test discovery: nothing to list.
    }
    if std::env::args().any(|a| a == "status") {
        // `cargo bench --bench distributed -- status`: that part alone.
        status_cost();
        return;
    }
    if std::env::args().any(|a| a == "checkpoints") {
        // `cargo bench --bench distributed -- checkpoints`: that part alone.
        checkpoint_cost();
        recovery_time();
        return;
    }
    if std::env::args().any(|a| a == "pair") {
        // `cargo bench --bench distributed -- pair`: population 100 over 2 workers against
        // in process, many rounds, for an A/B of two builds run alternately.
        pair();
        return;
    }
    if std::env::args().any(|a| a == "coordination") {
        // `cargo bench --bench distributed -- coordination`: that part alone, more rounds.
        coordination(15);
        return;
    }
    if std::env::args().any(|a| a == "large") {
        // `cargo bench --bench distributed -- large`: the large genomes alone.
        large_genomes();
        return;
    }
    // `cargo bench --bench distributed -- scaling`: throughput and coordination alone.
    let scaling_only = std::env::args().any(|a| a == "scaling");
    let slow = SlowRastrigin::default();
    let mut rng = Rng::new(1);
    let sample: Vec<Vec<f64>> = (0..400).map(|_| slow.random_genome(&mut rng)).collect();
    let start = Instant::now();
    let total: f64 = sample.iter().map(|g| slow.fitness(g)).sum();
    let per_eval = start.elapsed() / sample.len() as u32;
    println!("fitness cost: {per_eval:?} per evaluation (checksum {total:.3})");

    // Each worker count with the workers' default compute class (idle), and 2 workers with
    // the normal class beside them.
    let normal = Team { workers: 2, class: ComputeClass::Normal };
    let teams = [Team::from(1), Team::from(2), Team::from(4), normal];
    // About 0.8 s a run on this machine: a generation's cost, not the run's start and end
    // (until 2026-12-02: 40 and 12 generations, about 0.15 s).
    for (n_pop, n_gen) in [(100usize, 200u32), (400, 50)] {
        let p = params(n_pop, n_gen);
        let mut local = Vec::new();
        let mut remote: Vec<Vec<f64>> = vec![Vec::new(); teams.len()];
        for _ in 0..REPEATS {
            // Interleaved: every configuration once per round.
            let (e, s) = in_process(&slow, &p);
            local.push(e as f64 / s);
            for (i, team) in teams.into_iter().enumerate() {
                let (e, s, _) = distributed(&slow, "slow-rastrigin", &p, team);
                remote[i].push(e as f64 / s);
            }
        }
        let base = median(local.clone());
        println!("population {n_pop}, {n_gen} generations, fitness ≈ 50 µs, median of {REPEATS}:");
        println!("  in process, {CORES} threads: {base:>9.0} evaluations/s");
        for (i, team) in teams.into_iter().enumerate() {
            let m = median(remote[i].clone());
            // Each round ran every configuration back to back: the ratio to that round's
            // in-process run is paired, and this machine's drift between rounds cancels.
            let paired = median(remote[i].iter().zip(&local).map(|(r, l)| r / l).collect());
            let label = format!("{} worker(s), {}:", team.workers, team.class);
            println!(
                "  {label:<24}{m:>9.0} evaluations/s  ({:.1}% of in-process; {:.1}% paired by round)",
                100.0 * m / base,
                100.0 * paired
            );
        }
    }

    coordination(REPEATS);
    large_genomes();
    if scaling_only {
        return;
    }
    checkpoint_cost();
    recovery_time();
    status_cost();

    // Wire: a routed batch as `uow::batch` encodes it.
    let batch = |problem: &dyn Fn(&mut Rng) -> Vec<f64>| {
        let mut rng = Rng::new(2);
        let b: Vec<Candidate<Vec<f64>>> = (0..50u32)
            .map(|seq| {
                let g = problem(&mut rng);
                Candidate { key: key_of(&g), genome: g, born: 7, origin: Origin { shard: 1, seq }, fitness: None }
            })
            .collect();
        uow::batch::encode_candidates(&b).unwrap().len() as f64 / 50.0
    };
    println!("wire: {:.1} payload bytes per Rastrigin-30 individual", batch(&|r| slow.random_genome(r)));
    let mut rng = Rng::new(3);
    let bits: Vec<Candidate<ga_core::Bits>> = (0..50u32)
        .map(|seq| {
            let g = OneMax { bits: 100 }.random_genome(&mut rng);
            Candidate { key: key_of(&g), genome: g, born: 7, origin: Origin { shard: 1, seq }, fitness: None }
        })
        .collect();
    let per = uow::batch::encode_candidates(&bits).unwrap().len() as f64 / 50.0;
    println!("wire: {per:.1} payload bytes per OneMax-100 individual");
}

/// Coordination: with a nearly free fitness, a generation's wall time is the framework's
/// own cost: one step (next, the workers' batches to each other, admit with censuses).
/// Interleaved, `rounds` runs of each worker count.
fn coordination(rounds: usize) {
    let om = OneMax { bits: 100 };
    let p = params(100, 200);
    let counts = [1, 2, 4];
    let mut per_gen = vec![Vec::new(); counts.len()];
    for _ in 0..rounds {
        for (i, w) in counts.into_iter().enumerate() {
            let (_, s, g) = distributed(&om, "onemax", &p, w);
            per_gen[i].push(s / f64::from(g));
        }
    }
    for (w, times) in counts.into_iter().zip(per_gen) {
        println!(
            "coordination, {w} worker(s): {:.3} ms per generation (OneMax-100, population 100, median of {rounds})",
            median(times) * 1e3
        );
    }
}

/// Population 100, fitness about 50 µs, 200 generations: in process on both cores and 2
/// workers (idle class), interleaved for 15 rounds; each round's ratio, and their median.
/// The figure the acceptance of issue 14 names, with more rounds than `scaling` gives it.
fn pair() {
    const ROUNDS: usize = 15;
    let slow = SlowRastrigin::default();
    let p = params(100, 200);
    let mut ratios = Vec::with_capacity(ROUNDS);
    let (mut local, mut remote) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (e, s) = in_process(&slow, &p);
        let (re, rs, _) = distributed(&slow, "slow-rastrigin", &p, 2);
        let (l, r) = (e as f64 / s, re as f64 / rs);
        local.push(l);
        remote.push(r);
        ratios.push(r / l);
    }
    let each: Vec<String> = ratios.iter().map(|r| format!("{:.1}", 100.0 * r)).collect();
    println!("population 100, 200 generations, fitness ≈ 50 µs, 2 workers (idle) against in process, {ROUNDS} rounds:");
    println!("  in process {:.0}, 2 workers {:.0} evaluations/s (medians)", median(local), median(remote));
    println!("  each round: {}%", each.join(" "));
    println!("  median of the rounds: {:.1}%", 100.0 * median(ratios));
}

/// Large genomes: Rastrigin-4000 (32 KB of genes, a fitness of about 25 µs), population
/// 100, in process on one and two threads and over 2 workers; interleaved.
fn large_genomes() {
    const DIMS: usize = 4000;
    let problem = ga_core::problems::Rastrigin { dims: DIMS };
    let p = params(100, 100);
    let (mut one, mut two, mut workers, mut normal) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let run = |team: Team| {
        let (e, s, _, _) =
            distributed_with(&problem, ("rastrigin", Some(DIMS)), &p, team, Checkpoints::None, &mut |_: &_| {}, None);
        e as f64 / s
    };
    for _ in 0..REPEATS {
        let (e, s) = in_process_on(&problem, &p, 1);
        one.push(e as f64 / s);
        let (e, s) = in_process_on(&problem, &p, 2);
        two.push(e as f64 / s);
        workers.push(run(Team::from(2)));
        normal.push(run(Team { workers: 2, class: ComputeClass::Normal }));
    }
    // Each round's runs were back to back: their ratios are paired, and this machine's
    // drift between rounds (the in-process rate itself moves by a third) cancels.
    let paired = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(a, b)| a / b).collect());
    let (threads, idle, normal_paired) = (paired(&two, &one), paired(&workers, &two), paired(&normal, &two));
    let (one, two, workers, normal) = (median(one), median(two), median(workers), median(normal));
    println!("large genomes: Rastrigin-{DIMS}, population 100, 100 generations, median of {REPEATS}:");
    println!("  in process, 1 thread:   {one:>9.0} evaluations/s");
    println!(
        "  in process, 2 threads:  {two:>9.0} evaluations/s  ({:.2}x one thread; {threads:.2}x paired by round)",
        two / one
    );
    println!(
        "  2 workers, idle:        {workers:>9.0} evaluations/s  ({:.1}% of 2 threads; {:.1}% paired by round)",
        100.0 * workers / two,
        100.0 * idle
    );
    println!(
        "  2 workers, normal:      {normal:>9.0} evaluations/s  ({:.1}% of 2 threads; {:.1}% paired by round)",
        100.0 * normal / two,
        100.0 * normal_paired
    );
}

/// Throughput of Rastrigin-30 over 2 workers without checkpoints, with a snapshot every
/// generation in memory, and with one written to disk every generation; interleaved.
fn checkpoint_cost() {
    let rastrigin = ga_core::problems::Rastrigin { dims: 30 };
    let p = params(400, CHECKPOINT_GENERATIONS);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("checkpoint-cost");
    let kinds = [
        ("no checkpoints", Checkpoints::None),
        ("snapshot every generation, in memory", Checkpoints::InMemory),
        ("checkpoint every generation, on disk", Checkpoints::OnDisk(1, &dir)),
        ("checkpoint every 10 (the default), disk", Checkpoints::OnDisk(10, &dir)),
        ("every generation, members in the answers", Checkpoints::InAnswers),
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let mut written = Vec::new();
    let mut files: u64 = 0;
    for _ in 0..CHECKPOINT_REPEATS {
        for (i, (_, kind)) in kinds.iter().enumerate() {
            let _ = std::fs::remove_dir_all(&dir);
            // The file system's work for what was removed (its journal, freeing blocks) is
            // done now, not during the next run.
            if let Some(parent) = dir.parent() {
                let _ = std::fs::File::open(parent).and_then(|d| d.sync_all());
            }
            let (e, s, _, w) =
                distributed_with(&rastrigin, ("rastrigin", Some(30)), &p, 2, *kind, &mut |_: &_| {}, None);
            rates[i].push(e as f64 / s);
            if matches!(kind, Checkpoints::OnDisk(1, _)) {
                written.push(w as f64);
                files = std::fs::read_dir(&dir)
                    .map(|d| d.flatten().map(|e| e.metadata().map_or(0, |m| m.len())).sum())
                    .unwrap_or(0);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "checkpoints: Rastrigin-30, population 400, {CHECKPOINT_GENERATIONS} generations, 2 workers, median of {CHECKPOINT_REPEATS}:"
    );
    // Each round's configurations ran back to back: their ratio to that round's baseline
    // is paired, and this machine's drift between rounds (±15% of the baseline) cancels.
    for (i, (what, _)) in kinds.iter().enumerate() {
        let m = median(rates[i].clone());
        let paired = median(rates[i].iter().zip(&rates[0]).map(|(r, b)| r / b).collect());
        println!("  {what:<38} {m:>9.0} evaluations/s  ({:.1}% of none, paired by round)", 100.0 * paired);
    }
    println!(
        "  the checkpoint files left (the last two and the spare): {files} bytes; files written per run, every generation: {} of {CHECKPOINT_GENERATIONS} snapshots (median)",
        median(written)
    );
}

/// From a worker's SIGKILL to the next generation reported, over 2 workers on
/// Rastrigin-30 (population 400), with a snapshot every generation in memory.
fn recovery_time() {
    let rastrigin = ga_core::problems::Rastrigin { dims: 30 };
    let p = params(400, 80);
    let mut took = Vec::new();
    for _ in 0..REPEATS {
        let mut killed: Option<Instant> = None;
        let mut recovered: Option<Duration> = None;
        let mut observer = |s: &ga_core::GenerationStats| {
            if s.generation == 40 && killed.is_none() {
                // This process's children are the run's workers.
                let worker = children().into_iter().next().expect("a worker process");
                assert!(Command::new("kill").args(["-KILL", &worker.to_string()]).status().unwrap().success());
                killed = Some(Instant::now());
            } else if let (Some(at), None) = (killed, recovered) {
                recovered = Some(at.elapsed());
            }
        };
        distributed_with(&rastrigin, ("rastrigin", Some(30)), &p, 2, Checkpoints::InMemory, &mut observer, None);
        took.push(recovered.expect("a generation after the recovery").as_secs_f64());
    }
    println!(
        "recovery: {:.1} ms from a worker's SIGKILL to the next generation reported (Rastrigin-30, population 400, 2 workers; median of {REPEATS})",
        median(took) * 1e3
    );
}

/// The processes whose parent is this one.
fn children() -> Vec<u32> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        if rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(me) && !rest.starts_with('Z') {
            found.push(pid);
        }
    }
    found
}

/// What watching a run costs: Rastrigin-30 (population 400, 1 000 generations of about a
/// millisecond, so that a per-generation cost shows), 2 workers, without a status board,
/// and with one fed by the run, served, and polled every 250 ms by a "browser" (`/parts`,
/// what the page's script fetches, plot included) and a "Prometheus" (`/metrics`): four
/// times what the page and a usual scrape ask. Paired by round, as the checkpoints.
fn status_cost() {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let rastrigin = ga_core::problems::Rastrigin { dims: 30 };
    let p = params(400, CHECKPOINT_GENERATIONS);
    let (mut plain, mut watched, mut polls) = (Vec::new(), Vec::new(), 0usize);
    for round in 0..STATUS_REPEATS {
        for with_status in [round % 2 == 0, round % 2 != 0] {
            if !with_status {
                let (e, s, _, _) = distributed_with(
                    &rastrigin,
                    ("rastrigin", Some(30)),
                    &p,
                    2,
                    Checkpoints::None,
                    &mut |_: &_| {},
                    None,
                );
                plain.push(e as f64 / s);
                continue;
            }
            let board = Arc::new(status::Board::new("rastrigin-30", "2 workers"));
            let server = status::serve("127.0.0.1:0", board.clone()).expect("a status server");
            let (addr, stop) = (server.addr(), Arc::new(AtomicBool::new(false)));
            let pollers: Vec<_> = ["/parts", "/metrics"]
                .into_iter()
                .map(|path| {
                    let stop = stop.clone();
                    std::thread::spawn(move || {
                        let mut n = 0;
                        while !stop.load(Ordering::Relaxed) {
                            let mut s = std::net::TcpStream::connect(addr).expect("the status server");
                            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
                            let mut body = Vec::new();
                            s.read_to_end(&mut body).unwrap();
                            assert!(body.starts_with(b"HTTP/1.1 200"), "{path}");
                            n += 1;
                            std::thread::sleep(Duration::from_millis(250));
                        }
                        n
                    })
                })
                .collect();
            let feed = board.clone();
            let (e, s, _, _) = distributed_with(
                &rastrigin,
                ("rastrigin", Some(30)),
                &p,
                2,
                Checkpoints::None,
                &mut |stats: &ga_core::GenerationStats| feed.generation(stats),
                Some(board.clone() as Arc<dyn uow::RunWatch>),
            );
            stop.store(true, Ordering::Relaxed);
            polls += pollers.into_iter().map(|t| t.join().unwrap()).sum::<usize>();
            assert_eq!(board.points().len(), CHECKPOINT_GENERATIONS as usize);
            drop(server);
            watched.push(e as f64 / s);
        }
    }
    let paired = median(watched.iter().zip(&plain).map(|(w, p)| w / p).collect());
    println!(
        "status: Rastrigin-30, population 400, {CHECKPOINT_GENERATIONS} generations, 2 workers, median of {STATUS_REPEATS}:"
    );
    println!("  no status board                         {:>9.0} evaluations/s", median(plain));
    println!(
        "  status page + metrics, polled 4/s each  {:>9.0} evaluations/s  ({:.1}% of none, paired by round; {polls} polls answered)",
        median(watched),
        100.0 * paired
    );
}
