//! Solution-quality figures quoted in README.md and docs/PERFORMANCE.md.
//!
//! `cargo run --release -p exelixi-benches --example quality`
//!
//! Each figure is over fixed seeds, so the output is the same on every run.

use exelixi_benches::onemax_protocol;
use ga_core::problems::{Knapsack, OneMax, Rastrigin, Sum231, Tsp};
use ga_core::{Engine, Params, Problem};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// "q1–q3": the quartiles (nearest rank), the seed-to-seed spread a median is quoted with.
fn quartiles(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!("{}–{}", at(0.25), at(0.75))
}

fn runs<P: Problem>(problem: &P, seeds: std::ops::Range<u64>) -> Vec<ga_core::Outcome<P::Genome>> {
    seeds.map(|s| Engine::new(problem).seed(s).run(&mut |_: &_| {}).expect("valid run")).collect()
}

fn main() {
    let sum = runs(&Sum231::default(), 0..100);
    let perfect = sum.iter().filter(|o| o.best().is_some_and(|b| b.fitness == 1.0)).count();
    let evals = median(sum.iter().map(|o| o.evaluations as f64).collect());
    println!("sum231 (original defaults): {perfect}/100 seeds found fitness 1.0000; median {evals} evaluations");

    for bits in [100, 1000] {
        let om = runs(&OneMax { bits }, 0..21);
        let solved = om.iter().filter(|o| o.best().is_some_and(|b| b.fitness == 1.0)).count();
        let all: Vec<f64> = om.iter().map(|o| o.evaluations as f64).collect();
        let (evals, spread) = (median(all.clone()), quartiles(all));
        let dups = median(om.iter().map(|o| o.duplicates as f64).collect());
        println!(
            "onemax-{bits} (pop 100, tournament 3, (μ+λ) survivors, 20 children a generation, uniform crossover 1.0, bit-flip 1/N): \
             {solved}/21 solved; median {evals} evaluations to optimum (quartiles {spread}), median {dups} duplicates refused"
        );
    }
    // The bar is over two groups of seeds.
    let late = runs(&OneMax { bits: 100 }, 21..42);
    let all: Vec<f64> = late.iter().map(|o| o.evaluations as f64).collect();
    println!(
        "onemax-100, seeds 21-41: median {} evaluations to optimum (quartiles {})",
        median(all.clone()),
        quartiles(all)
    );
    let field = Params { target_fitness: Some(1.0), max_indiv: 1_000_000, ..onemax_protocol(u32::MAX) };
    let evals: Vec<f64> = (0..21)
        .map(|s| Engine::new(OneMax { bits: 100 }).params(field.clone()).seed(s).run(&mut |_: &_| {}))
        .map(|o| o.expect("valid run").evaluations as f64)
        .collect();
    println!("onemax-100 with the field's crossover rate 0.8: median {} evaluations to optimum", median(evals));

    let kp = runs(&Knapsack::p07(), 0..21);
    let solved = kp.iter().filter(|o| o.best().is_some_and(|b| b.fitness == 1.0)).count();
    let all: Vec<f64> = kp.iter().map(|o| o.evaluations as f64).collect();
    println!(
        "knapsack P07 (optimum 1458): {solved}/21 solved; median {} evaluations (quartiles {})",
        median(all.clone()),
        quartiles(all)
    );

    let tsp = Tsp::berlin52();
    let tours = runs(&tsp, 0..21);
    let lengths: Vec<f64> =
        tours.iter().map(|o| tsp.tour_length(&o.best().expect("a best tour").genome) as f64).collect();
    let evals = median(tours.iter().map(|o| o.evaluations as f64).collect());
    println!(
        "tsp berlin52 (optimum 7542): median best tour {} (min {}, max {}) after median {evals} evaluations",
        median(lengths.clone()),
        lengths.iter().copied().fold(f64::INFINITY, f64::min),
        lengths.iter().copied().fold(0.0, f64::max),
    );

    let ras = Rastrigin::default();
    let outs = runs(&ras, 0..21);
    let values: Vec<f64> = outs.iter().map(|o| ras.value(&o.best().expect("a best point").genome)).collect();
    let reached = values.iter().filter(|&&v| v <= 1e-3).count();
    let all: Vec<f64> = outs.iter().map(|o| o.evaluations as f64).collect();
    println!(
        "rastrigin-10: {reached}/21 reached f <= 1e-3; median best f {:.2e} after median {} evaluations (quartiles {})",
        median(values),
        median(all.clone()),
        quartiles(all)
    );
}
