//! A long OneMax run under the benchmark protocol, for profilers and paired timings:
//! `perf record -g target/release/examples/profile_onemax [bits] [runs]` (defaults: 1000
//! bits, 100 runs of 200 generations, seeds 0 up). Prints the offspring rate and a digest
//! of every run's best key and evaluations, so that two builds can be checked to run the
//! same GA.
use exelixi_benches::onemax_protocol;
use ga_core::Engine;
use ga_core::problems::OneMax;

fn main() {
    let args: Result<Vec<u64>, String> = std::env::args().skip(1).map(|a| a.parse::<u64>().map_err(|_| a)).collect();
    let args = match args {
        Ok(args) if args.len() <= 2 => args,
        Ok(_) => usage("at most two arguments"),
        Err(bad) => usage(&format!("{bad:?} is not a whole number")),
    };
    let bits = args.first().copied().unwrap_or(1000) as usize;
    let runs = args.get(1).copied().unwrap_or(100);
    let start = std::time::Instant::now();
    let (mut evals, mut refused, mut digest) = (0, 0, 0u64);
    for seed in 0..runs {
        let outcome = Engine::new(OneMax { bits })
            .params(onemax_protocol(200))
            .seed(seed)
            .run(&mut |_: &_| {})
            .unwrap_or_else(|e| usage(&e.to_string()));
        evals += outcome.evaluations;
        refused += outcome.duplicates;
        let best = outcome.best().map_or(0, |b| b.key.0);
        digest = ga_core::rng::mix64(digest ^ best ^ outcome.evaluations.rotate_left(32));
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{evals} offspring ({refused} duplicates refused) in {secs:.3} s: {:.2} M/s (digest {digest:016x})",
        evals as f64 / secs / 1e6
    );
}

fn usage(why: &str) -> ! {
    eprintln!("profile_onemax: {why}; usage: profile_onemax [bits] [runs]");
    std::process::exit(2);
}
