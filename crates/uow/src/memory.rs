//! The memory check that refuses a run (or a worker's shard) this machine cannot hold,
//! before anything is allocated; and the largest problem size the command line takes.
//! (The problems themselves are named in the `exelixi` crate's `Catalog`.)

use ga_core::{Params, Problem};

/// The largest `--size` a problem takes.
pub const MAX_SIZE: usize = 1_000_000;

/// Bytes available to this process: `MemAvailable` of `/proc/meminfo`, or less if a cgroup
/// (v2) limit leaves less. `None` where neither can be read (then nothing is refused).
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let mem_available = meminfo.as_deref().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib.saturating_mul(1024))
    });
    let read = |path: &str| std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse::<u64>().ok());
    // "max" (no limit) does not parse, as wanted.
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .map(|max| max.saturating_sub(read("/sys/fs/cgroup/memory.current").unwrap_or(0)));
    match (mem_available, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

/// Refuses a run of `problem` over `shards` shards when this machine cannot hold the part
/// of it that lives here (`here` of the shards: all of them for a run on this machine, one
/// for a worker), as `ga_core::estimate_bytes` reckons it from one random genome; `what`
/// says whose memory (e.g. "a run", "this worker's shard").
pub fn check_memory<P: Problem>(
    problem: &P,
    params: &Params,
    shards: u32,
    here: u32,
    what: &str,
) -> Result<(), String> {
    let sample = problem.random_genome(&mut ga_core::Rng::new(0));
    let whole = ga_core::estimate_bytes(params, &sample, shards);
    let need = whole / u64::from(shards.max(1)) * u64::from(here);
    match available_memory() {
        Some(have) if need > have => Err(format!(
            "{what} of this size needs about {} of memory and {} is available: lower --pop, --size, --gens or --max-indiv",
            gib(need),
            gib(have)
        )),
        _ => Ok(()),
    }
}
