//! The engine's hot loop. `cargo bench -p exelixi-benches --bench engine`
//!
//! - `onemax1000/full`: offspring bred, deduplicated and evaluated per second, one thread.
//! - `onemax1000/zero_cost_fitness`: the same run with a free fitness: the engine's share.
//! - `onemax1000/fitness_only`: the fitness alone, per genome.
//! - `rastrigin30_1e6/threads_{1,2}`: one batch of 10⁶ evaluations on 1 and 2 threads.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use exelixi_benches::{ZeroCostOneMax, onemax_protocol};
use ga_core::problems::{OneMax, Rastrigin};
use ga_core::{Engine, Problem, Rng};

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

criterion_group!(benches, onemax, rastrigin_million);
criterion_main!(benches);
