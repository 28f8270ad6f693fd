//! A long OneMax run under the benchmark protocol, for profilers and paired timings:
//! `perf record -g target/release/examples/profile_onemax [bits] [runs]` (defaults: 1000
//! bits, 100 runs of 200 generations, seeds 0 up). Prints the offspring rate and a digest
//! of every run's best key and evaluations, so that two builds can be checked to run the
//! same GA.
use exelixi_benches::onemax_protocol;
use ga_core::Engine;
use ga_core::problems::OneMax;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().expect("a number"));
    let bits = args.next().unwrap_or(1000) as usize;
    let runs = args.next().unwrap_or(100);
    let start = std::time::Instant::now();
    let (mut evals, mut digest) = (0, 0u64);
    for seed in 0..runs {
        let outcome =
            Engine::new(OneMax { bits }).params(onemax_protocol(200)).seed(seed).run(&mut |_: &_| {}).unwrap();
        evals += outcome.evaluations;
        let best = outcome.best().map_or(0, |b| b.key.0);
        digest = ga_core::rng::mix64(digest ^ best ^ outcome.evaluations.rotate_left(32));
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{evals} offspring in {secs:.3} s: {:.2} M/s (digest {digest:016x})", evals as f64 / secs / 1e6);
}
