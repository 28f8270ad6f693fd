//! The engine's hot loop. `cargo bench -p exelixi-benches --bench engine`
//!
//! - `onemax1000/full`: offspring bred, deduplicated and evaluated per second, one thread.
//! - `onemax1000/zero_cost_fitness`: the same run with a free fitness: the engine's share.
//! - `onemax1000/fitness_only`: the fitness alone, per genome.
//! - `onemax100/full`: `onemax1000/full` with 100 bits (the other length issue 16 names).
//! - `rastrigin30_1e6/threads_{1,2}`: one batch of 10⁶ evaluations on 1 and 2 threads.
//! - `rastrigin30/run`: offspring bred, deduplicated and evaluated per second by a
//!   Rastrigin-30 run of the built-in defaults breeding the whole population (the island
//!   benchmark's per-island work), one thread; `rastrigin30/sbx`: one child of SBX η = 1;
//!   `rastrigin30/value` and `value_textbook`: the function by the engine's cosine and by
//!   libm's, side by side.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use exelixi_benches::{ZeroCostOneMax, onemax_protocol, textbook_rastrigin};
use ga_core::problems::{OneMax, Rastrigin};
use ga_core::{Engine, Params, Problem, Rng, Selection, ops};

const GENERATIONS: u32 = 200;

fn onemax(c: &mut Criterion) {
    let problem = OneMax { bits: 1000 };
    let params = onemax_protocol(GENERATIONS);
    let mut g = c.benchmark_group("onemax1000");
    g.sample_size(30);

    let engine = Engine::new(&problem).params(params.clone()).seed(1);
    let evaluations = engine.run(&mut |_: &_| {}).unwrap().evaluations;
    g.throughput(Throughput::Elements(evaluations));
    g.bench_function("full", |b| b.iter(|| black_box(engine.run(&mut |_: &_| {}).unwrap().evaluations)));

    let zero = ZeroCostOneMax(problem.clone());
    let engine = Engine::new(&zero).params(params).seed(1);
    let evaluations = engine.run(&mut |_: &_| {}).unwrap().evaluations;
    g.throughput(Throughput::Elements(evaluations));
    g.bench_function("zero_cost_fitness", |b| b.iter(|| black_box(engine.run(&mut |_: &_| {}).unwrap().evaluations)));

    let mut rng = Rng::new(3);
    let genomes: Vec<_> = (0..100).map(|_| problem.random_genome(&mut rng)).collect();
    g.throughput(Throughput::Elements(genomes.len() as u64));
    g.bench_function("fitness_only", |b| b.iter(|| genomes.iter().map(|x| problem.fitness(black_box(x))).sum::<f64>()));
    g.finish();

    let engine = Engine::new(OneMax { bits: 100 }).params(onemax_protocol(GENERATIONS)).seed(1);
    let mut g = c.benchmark_group("onemax100");
    g.sample_size(30);
    g.throughput(Throughput::Elements(engine.run(&mut |_: &_| {}).unwrap().evaluations));
    g.bench_function("full", |b| b.iter(|| black_box(engine.run(&mut |_: &_| {}).unwrap().evaluations)));
    g.finish();
}

fn rastrigin_million(c: &mut Criterion) {
    let problem = Rastrigin { dims: 30 };
    let mut rng = Rng::new(5);
    let genomes: Vec<Vec<f64>> = (0..1_000_000).map(|_| problem.random_genome(&mut rng)).collect();
    let mut g = c.benchmark_group("rastrigin30_1e6");
    g.sample_size(10);
    g.throughput(Throughput::Elements(genomes.len() as u64));
    for threads in [1, 2] {
        let engine = Engine::new(&problem).threads(threads).unwrap();
        g.bench_function(format!("threads_{threads}"), |b| {
            b.iter_batched(|| (), |()| black_box(engine.evaluate(&genomes).unwrap().len()), BatchSize::SmallInput)
        });
    }
    g.finish();
}

fn rastrigin(c: &mut Criterion) {
    let problem = Rastrigin { dims: 30 };
    let mut g = c.benchmark_group("rastrigin30");
    g.sample_size(20);
    let mut params = Params { n_gen: 200, target_fitness: None, term_limit: 0.0, ..problem.params() };
    if let Selection::Plus { offspring, .. } = &mut params.selection {
        *offspring = 1.0;
    }
    let engine = Engine::new(&problem).params(params).seed(1);
    g.throughput(Throughput::Elements(engine.run(&mut |_: &_| {}).unwrap().evaluations));
    g.bench_function("run", |b| b.iter(|| black_box(engine.run(&mut |_: &_| {}).unwrap().evaluations)));

    let mut rng = Rng::new(3);
    let genomes: Vec<Vec<f64>> = (0..100).map(|_| problem.random_genome(&mut rng)).collect();
    // Children of each genome and the next: 99.
    g.throughput(Throughput::Elements(genomes.len() as u64 - 1));
    g.bench_function("sbx", |b| {
        b.iter(|| {
            genomes.windows(2).map(|w| ops::sbx(black_box(&w[0]), &w[1], 1.0, -5.12, 5.12, &mut rng)[0]).sum::<f64>()
        })
    });
    g.throughput(Throughput::Elements(genomes.len() as u64));
    g.bench_function("value", |b| b.iter(|| genomes.iter().map(|x| problem.value(black_box(x))).sum::<f64>()));
    g.bench_function("value_textbook", |b| {
        b.iter(|| genomes.iter().map(|x| textbook_rastrigin(black_box(x))).sum::<f64>())
    });
    g.finish();
}

criterion_group!(benches, onemax, rastrigin_million, rastrigin);
criterion_main!(benches);
