//! `exelixi worker`: one shard of a run behind a gRPC service.

use std::net::SocketAddr;
use std::sync::Arc;

use worker_service::WorkerConfig;

use crate::Catalog;
use crate::cli::WorkerArgs;

/// The environment variable that carries the run's token to a worker (never the command
/// line, which other users can read).
pub use worker_service::TOKEN_ENV;

/// Serves shards of the problems of `catalog` (and its other jobs) until stopped by the framework, interrupted, or (with `--exit-with-parent`)
/// orphaned. Returns a message for the user on failure.
pub fn serve(args: &WorkerArgs, catalog: Catalog) -> Result<(), String> {
    let token =
        std::env::var(TOKEN_ENV).map_err(|_| format!("{TOKEN_ENV} is not set: a worker needs the run's token"))?;
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("{TOKEN_ENV} must be at least 16 printable ASCII characters"));
    }
    // The network on this one thread; phases, work ahead and large decodes run on the
    // runtime's blocking threads. One thread answers a delivery with no hand-off between
    // threads: with 2 workers a generation's coordination took 0.25 ms on it against 0.31
    // on one worker thread and 0.40 on two (docs/PERFORMANCE.md).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let mut config = WorkerConfig::new(token, Arc::new(catalog));
    config.compute = args.compute_class;
    let address = SocketAddr::new(args.host, args.port);
    let served = runtime.block_on(worker_service::serve_process(address, config, args.exit_with_parent));
    // Dropping a runtime waits for its blocking threads, and a phase may still be computing
    // on one: a worker told to stop does not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    served.map_err(|e| e.to_string())
}
