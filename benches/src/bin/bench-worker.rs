//! A worker for the distributed benchmark: `exelixi worker`'s service with the benchmark's
//! problems (`slow-rastrigin`, `onemax`). Started by `benches/distributed.rs`, with
//! `--compute-class normal` for the comparison (idle by default, as `exelixi worker`).

use std::sync::Arc;

use exelixi_benches::SlowRastrigin;
use worker_service::WorkerConfig;

fn main() {
    let token = std::env::var(worker_service::TOKEN_ENV).expect("the token in EXELIXI_TOKEN");
    // As exelixi worker: the network on this one thread, computing on blocking threads.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // The built-in problems, and the benchmark's own.
    let catalog =
        exelixi::Catalog::builtin().fixed("slow-rastrigin", "Rastrigin-30 at about 50 µs", SlowRastrigin::default);
    let mut config = WorkerConfig::new(token, Arc::new(catalog));
    let args: Vec<String> = std::env::args().collect();
    config.compute = match args.iter().position(|a| a == "--compute-class") {
        Some(i) => args.get(i + 1).expect("--compute-class CLASS").parse().expect("--compute-class idle or normal"),
        None => worker_service::ComputeClass::Idle,
    };
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    runtime.block_on(worker_service::serve_process(address, config, true)).unwrap();
    // As exelixi worker: a phase still computing does not hold the process.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
}
