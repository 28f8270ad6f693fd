//! What a run tells whoever watches it: a status page, metrics, logs. Every method has a
//! default that does nothing, so a watcher implements what it shows.

use std::time::Duration;

use crate::run::Recovery;

/// A watcher of a distributed run ([`crate::RunOptions::watch`]). Called from the run's
/// threads, including its async runtime: each method must return at once (record, never
/// wait on I/O).
pub trait RunWatch: Send + Sync {
    /// The worker of `shard` serves at `endpoint` (after the start, or as a replacement);
    /// `worker` is how its [`crate::Workers`] describes it.
    fn placed(&self, shard: u32, endpoint: &str, worker: &str) {
        let _ = (shard, endpoint, worker);
    }

    /// The worker of `shard` answered `phase` after `took`, having been sent `sent` payload
    /// bytes and answered `received`.
    fn answered(&self, shard: u32, phase: &str, took: Duration, sent: usize, received: usize) {
        let _ = (shard, phase, took, sent, received);
    }

    /// The worker of `shard` (as its `Workers` describes it) was lost during `phase`.
    fn lost(&self, shard: u32, worker: &str, phase: &str, reason: &str) {
        let _ = (shard, worker, phase, reason);
    }

    /// A lost worker was replaced and the job restored.
    fn recovered(&self, recovery: &Recovery) {
        let _ = recovery;
    }
}
