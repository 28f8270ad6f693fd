//! A long OneMax-1000 run under the benchmark protocol, for profilers:
//! `perf record -g target/release/examples/profile_onemax`.
use exelixi_benches::onemax_protocol;
use ga_core::Engine;
use ga_core::problems::OneMax;

fn main() {
    let start = std::time::Instant::now();
    let mut evals = 0;
    for seed in 0..100 {
        evals += Engine::new(OneMax { bits: 1000 })
            .params(onemax_protocol(200))
            .seed(seed)
            .run(&mut |_: &_| {})
            .unwrap()
            .evaluations;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{evals} offspring in {secs:.3} s: {:.2} M/s", evals as f64 / secs / 1e6);
}
