//! Checkpoints of a GA run on disk: one file per kept generation, written atomically, the
//! last two kept, each versioned and checksummed, so that a run killed at any instant can
//! be resumed from the newest whole file.
//!
//! A file is, in this order (integers little-endian):
//!
//! | bytes | what |
//! |---|---|
//! | 8 | magic `EXLXCKPT` |
//! | 4 | format version ([`FORMAT_VERSION`]) |
//! | 8 | payload length |
//! | 8 | XXH3-64 of the payload |
//! | n | payload: a postcard-encoded [`Checkpoint`] |
//!
//! **Version rule:** any change to the payload's layout or meaning (a field added, removed
//! or reordered in [`Checkpoint`], [`RunIdentity`], `ga_core::Params`, `ShardState` or a
//! genome's serde form; a change to what a generation means) raises [`FORMAT_VERSION`].
//! A reader takes only its own version; another is skipped with a warning naming both.
//!
//! Writing: a temporary file in the same folder, written whole, `fsync`ed, renamed to
//! `checkpoint-<generation>.exlx`, then the folder `fsync`ed: a crash leaves the previous
//! files intact and at worst a temporary file, which readers ignore. The file a write
//! retires is kept as `.spare.exlx` and becomes the next temporary file, written over in
//! place: blocks are not freed and allocated again at every checkpoint. [`Writer`] does it on
//! a thread of its own, so the run does not wait on the disk, and spends at most about a
//! fiftieth of the time on it; a newer checkpoint replaces one not yet written.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use ga_core::{Params, Progress};
use serde::{Deserialize, Serialize};

/// The payload format this build writes and reads. 2: `Params` gained `migration`
/// (islands), and the built-in problems' default selection and Rastrigin's operators
/// changed (the version should have risen with that change, one commit earlier). 3:
/// `Selection::Plus` gained `offspring`. 4: per-gene mutation at low rates draws how many
/// genes mutate, then which (`ga_core`'s `each_success`), and a tournament step's child
/// draws nothing for a rate of 1: the same distributions, other draws, so a run continued
/// from a version-3 checkpoint would not be the run it began. 5: tournament steps breed
/// children in pairs (one crossover, two children), other draws again.
pub const FORMAT_VERSION: u32 = 5;

const MAGIC: &[u8; 8] = b"EXLXCKPT";
/// A retired checkpoint file that the next write overwrites (readers list only
/// `checkpoint-*.exlx`).
const SPARE: &str = ".spare.exlx";
const HEADER: usize = 8 + 4 + 8 + 8;
/// Checkpoints kept in a folder: the newest and the one before.
pub const KEPT: usize = 2;

/// The writer rests this many times as long as its last write took before the next: it
/// spends at most 1/50 of the time (2% of a core) on checkpoints. The disk costs the run
/// more than the writer's own time (the kernel's writeback, and freeing the blocks of a
/// replaced file, which the spare now avoids): at 1/20, before the spare, a checkpoint
/// every generation cost 9 points of throughput more than the snapshots in memory alone;
/// at 1/50 with the spare, 0–4 (the distributed benchmark, 2026-12-01).
const IDLE_PER_BUSY: u32 = 49;

/// And it starts a write at most once a second. The writer's own time is not all a write
/// costs: the kernel's writeback and the journal's commit of each `fsync` come on top, on
/// the cores the run uses. Measured (the distributed benchmark, 2026-12-01), with the
/// rule above alone: 10 checkpoints of 5 MB in a 2 s run cost 5 points of throughput more
/// than snapshots in memory; 28 files of 100 KB cost 8 points (on tmpfs, 2). A crash loses
/// at most about a second more of the run.
pub const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// What makes two runs the same run: a checkpoint continues only the run it was taken of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// The problem's name.
    pub problem: String,
    /// The problem's size, if it has one.
    pub size: Option<usize>,
    /// The run's parameters.
    pub params: Params,
    /// The run seed.
    pub seed: u64,
    /// The number of shards (1 in process).
    pub shards: u32,
}

impl RunIdentity {
    /// What differs between the run a checkpoint is of (`self`) and `this` run, one item
    /// per field, e.g. `seed 7 (this run: 8)`; empty when they are the same run.
    pub fn differences(&self, this: &RunIdentity) -> Vec<String> {
        let mut out = Vec::new();
        let mut differ = |name: &str, theirs: String, ours: String| {
            if theirs != ours {
                out.push(format!("{name} {theirs} (this run: {ours})"));
            }
        };
        differ("problem", self.problem.clone(), this.problem.clone());
        differ("size", format!("{:?}", self.size), format!("{:?}", this.size));
        differ("seed", self.seed.to_string(), this.seed.to_string());
        differ("shard count", self.shards.to_string(), this.shards.to_string());
        let (a, b) = (&self.params, &this.params);
        differ("n_pop", a.n_pop.to_string(), b.n_pop.to_string());
        differ("n_gen", a.n_gen.to_string(), b.n_gen.to_string());
        differ("term_limit", format!("{:?}", a.term_limit), format!("{:?}", b.term_limit));
        differ("hist_granularity", a.hist_granularity.to_string(), b.hist_granularity.to_string());
        differ("selection_rate", format!("{:?}", a.selection_rate), format!("{:?}", b.selection_rate));
        differ("mutation_rate", format!("{:?}", a.mutation_rate), format!("{:?}", b.mutation_rate));
        differ("max_indiv", a.max_indiv.to_string(), b.max_indiv.to_string());
        differ("selection", format!("{:?}", a.selection), format!("{:?}", b.selection));
        differ("target_fitness", format!("{:?}", a.target_fitness), format!("{:?}", b.target_fitness));
        if out.is_empty() && self != this {
            out.push("the parameters (a field this build does not name)".into());
        }
        out
    }
}

/// A whole run between two generations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Which run.
    pub identity: RunIdentity,
    /// Where it stands.
    pub progress: Progress,
    /// Each shard's `ga_core::ShardState`, postcard-encoded, in shard order.
    pub shards: Vec<Vec<u8>>,
}

/// Why checkpoints could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file system refused.
    #[error("{path}: {reason}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// No file of the folder is a whole checkpoint of this format.
    #[error("no usable checkpoint in {dir}{}", reasons(.skipped))]
    NoCheckpoint {
        /// The folder.
        dir: PathBuf,
        /// Each file tried, and why it was skipped.
        skipped: Vec<String>,
    },
    /// The newest usable checkpoint is of another run.
    #[error("the checkpoint {path} is of another run: {}", .differences.join(", "))]
    OtherRun {
        /// The file.
        path: PathBuf,
        /// What differs.
        differences: Vec<String>,
    },
    /// The checkpoint could not be encoded.
    #[error("cannot encode a checkpoint: {0}")]
    Encode(String),
}

fn reasons(skipped: &[String]) -> String {
    if skipped.is_empty() { " (it has none)".into() } else { format!(": {}", skipped.join("; ")) }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> CheckpointError + '_ {
    move |e| CheckpointError::Io { path: path.to_path_buf(), reason: e.to_string() }
}

/// A checkpoint's bytes, as written to a file.
pub fn encode(checkpoint: &Checkpoint) -> Result<Vec<u8>, CheckpointError> {
    let payload = postcard::to_allocvec(checkpoint).map_err(|e| CheckpointError::Encode(e.to_string()))?;
    let mut out = header(payload.len() as u64, xxhash_rust::xxh3::xxh3_64(&payload));
    out.extend_from_slice(&payload);
    Ok(out)
}

/// The file header of a payload of `length` bytes whose XXH3-64 is `checksum`.
fn header(length: u64, checksum: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

/// `checkpoint`'s payload, encoded now, as the writer of it.
fn payload_of(checkpoint: &Checkpoint) -> Result<Payload, CheckpointError> {
    let payload = postcard::to_allocvec(checkpoint).map_err(|e| CheckpointError::Encode(e.to_string()))?;
    Ok(Box::new(move |out| out.write_all(&payload)))
}

/// Reads a checkpoint's bytes; any bytes give a checkpoint or a reason, never a panic.
pub fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
    let header = bytes.get(..HEADER).ok_or_else(|| format!("{} bytes: shorter than the header", bytes.len()))?;
    if &header[..8] != MAGIC {
        return Err("not an Exelixi checkpoint (wrong magic)".into());
    }
    let word = |at: usize, n: usize| header[at..at + n].iter().rev().fold(0u64, |acc, b| acc << 8 | u64::from(*b));
    let version = word(8, 4);
    if version != u64::from(FORMAT_VERSION) {
        return Err(format!("format version {version}; this build reads version {FORMAT_VERSION}"));
    }
    let (length, checksum) = (word(12, 8), word(20, 8));
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != length {
        return Err(format!("truncated or padded: {} payload bytes, the header says {length}", payload.len()));
    }
    if xxhash_rust::xxh3::xxh3_64(payload) != checksum {
        return Err("checksum mismatch: the file is corrupt".into());
    }
    postcard::from_bytes(payload).map_err(|e| format!("checksum right but the payload does not decode: {e}"))
}

fn file_name(generation: u32) -> String {
    format!("checkpoint-{generation:010}.exlx")
}

fn generation_of(name: &str) -> Option<u32> {
    name.strip_prefix("checkpoint-")?.strip_suffix(".exlx")?.parse().ok()
}

/// The checkpoint files of `dir`, newest first.
fn listed(dir: &Path) -> Result<Vec<(u32, PathBuf)>, CheckpointError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        if let Some(g) = entry.file_name().to_str().and_then(generation_of) {
            files.push((g, entry.path()));
        }
    }
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    Ok(files)
}

/// Writes `checkpoint` into `dir` atomically; of the older ones, keeps the [`KEPT`] newest
/// and makes the next the spare that the next write reuses.
pub fn write(dir: &Path, checkpoint: &Checkpoint) -> Result<PathBuf, CheckpointError> {
    write_payload(dir, checkpoint.progress.generation, payload_of(checkpoint)?)
}

/// A checkpoint's payload (the postcard encoding of a [`Checkpoint`]) as a writer of it,
/// so that a large state goes to the file as it is encoded, never whole in memory.
pub type Payload = Box<dyn FnOnce(&mut dyn Write) -> std::io::Result<()> + Send>;

/// Counts and hashes what goes through it.
struct Hashing<W> {
    inner: W,
    hasher: xxhash_rust::xxh3::Xxh3,
    length: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.length += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// [`write()`] of the checkpoint of `generation` whose payload `payload` writes: streamed
/// into the temporary file behind a header left blank, which is filled in (length and
/// checksum) once the payload is written, before the file is synced and renamed.
pub fn write_payload(dir: &Path, generation: u32, payload: Payload) -> Result<PathBuf, CheckpointError> {
    use std::io::{Seek, SeekFrom};
    fs::create_dir_all(dir).map_err(io(dir))?;
    let name = file_name(generation);
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let path = dir.join(&name);
    // The file the last write retired is written over rather than a new one allocated: its
    // blocks are never freed, which on a file system that discards freed blocks (ext4
    // mounted with `discard`, as on the machines measured) cost the run more than the write.
    let spare = dir.join(SPARE);
    if fs::rename(&spare, &temp).is_err() {
        // No spare yet (the first writes), or it went: a new file.
        fs::File::create(&temp).map_err(io(&temp))?;
    }
    let file = fs::OpenOptions::new().write(true).open(&temp).map_err(io(&temp))?;
    let mut out =
        Hashing { inner: std::io::BufWriter::with_capacity(1 << 20, file), hasher: Default::default(), length: 0 };
    out.inner.write_all(&[0; HEADER]).map_err(io(&temp))?;
    payload(&mut out).map_err(io(&temp))?;
    let header = header(out.length, out.hasher.digest());
    let mut file = out.inner.into_inner().map_err(|e| io(&temp)(e.into_error()))?;
    // A spare longer than this checkpoint keeps nothing of its own past the end.
    file.set_len(HEADER as u64 + out.length).map_err(io(&temp))?;
    file.seek(SeekFrom::Start(0)).and_then(|_| file.write_all(&header)).map_err(io(&temp))?;
    file.sync_all().map_err(io(&temp))?;
    drop(file);
    fs::rename(&temp, &path).map_err(io(&path))?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
    for (_, old) in listed(dir)?.into_iter().skip(KEPT) {
        // The first one past the kept becomes the spare (readers ignore it), others go.
        if spare.exists() {
            fs::remove_file(&old).map_err(io(&old))?;
        } else {
            fs::rename(&old, &spare).map_err(io(&old))?;
        }
    }
    Ok(path)
}

/// The newest whole checkpoint of `dir`, with a warning for each newer file skipped as
/// unreadable (truncated, corrupt, another format).
pub fn newest(dir: &Path) -> Result<(PathBuf, Checkpoint, Vec<String>), CheckpointError> {
    let mut skipped = Vec::new();
    for (_, path) in listed(dir)? {
        match fs::read(&path).map_err(|e| e.to_string()).and_then(|b| decode(&b)) {
            Ok(c) => return Ok((path, c, skipped)),
            Err(why) => {
                tracing::debug!(path = %path.display(), %why, "checkpoint skipped");
                skipped.push(format!("{} skipped: {why}", path.display()));
            }
        }
    }
    Err(CheckpointError::NoCheckpoint { dir: dir.to_path_buf(), skipped })
}

/// [`newest`], refused unless it is a checkpoint of the run `this`.
pub fn resume(dir: &Path, this: &RunIdentity) -> Result<(PathBuf, Checkpoint, Vec<String>), CheckpointError> {
    let (path, checkpoint, warnings) = newest(dir)?;
    let differences = checkpoint.identity.differences(this);
    if !differences.is_empty() {
        return Err(CheckpointError::OtherRun { path, differences });
    }
    Ok((path, checkpoint, warnings))
}

#[derive(Default)]
struct Slot {
    /// The generation and payload of the checkpoint to write next.
    pending: Option<(u32, Payload)>,
    busy: bool,
    closed: bool,
    /// Someone waits in [`Writer::flush`]: write at once.
    flushing: bool,
    failure: Option<String>,
    written: u64,
    /// Until when the writer rests after its last write.
    resting_until: Option<std::time::Instant>,
}

/// Writes checkpoints into a folder on a thread of its own: [`Writer::submit`] never waits
/// on the disk; a checkpoint not yet started is replaced by a newer one. The writer spends
/// at most about a fiftieth of the time writing (it rests 49 times as long as a write
/// took), and starts at most one write a second ([`MIN_INTERVAL`]): when generations come
/// faster than that, the file on disk is the newest snapshot as of the last write, up to
/// about a second behind the run; when they are slower, every one is written. Whatever
/// the pace, [`Writer::flush`] writes the last one submitted at once.
pub struct Writer {
    shared: Arc<(Mutex<Slot>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn lock(m: &Mutex<Slot>) -> std::sync::MutexGuard<'_, Slot> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Writer {
    /// A writer into `dir` (created if missing; checked writable now, not at the first
    /// checkpoint).
    pub fn new(dir: &Path) -> Result<Self, CheckpointError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let probe = dir.join(format!(".probe.{}.tmp", std::process::id()));
        fs::write(&probe, b"").and_then(|()| fs::remove_file(&probe)).map_err(io(dir))?;
        let shared = Arc::new((Mutex::new(Slot::default()), Condvar::new()));
        let (theirs, dir) = (shared.clone(), dir.to_path_buf());
        let thread = std::thread::Builder::new()
            .name("checkpoints".into())
            .spawn(move || {
                let (slot, wake) = &*theirs;
                loop {
                    let mut s = lock(slot);
                    while s.pending.is_none() && !s.closed {
                        s = wake.wait(s).unwrap_or_else(PoisonError::into_inner);
                    }
                    let Some((generation, payload)) = s.pending.take() else { return };
                    s.busy = true;
                    drop(s);
                    let started = std::time::Instant::now();
                    let result = write_payload(&dir, generation, payload);
                    let took = started.elapsed();
                    let mut s = lock(slot);
                    s.busy = false;
                    match result {
                        Ok(path) => {
                            tracing::debug!(path = %path.display(), generation, ?took, "checkpoint written");
                            s.written += 1;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, generation, "checkpoint not written");
                            s.failure.get_or_insert(e.to_string());
                        }
                    }
                    wake.notify_all();
                    // At most a fiftieth of the time writing: the newest snapshot waits
                    // (replaced by newer ones) rather than the disk taking the run's CPU.
                    // Nothing waits when the writer is told to finish.
                    let rest = took.saturating_mul(IDLE_PER_BUSY);
                    let deadline = (std::time::Instant::now() + rest).max(started + MIN_INTERVAL);
                    s.resting_until = Some(deadline);
                    while !s.closed && !s.flushing {
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        s = wake.wait_timeout(s, left).unwrap_or_else(PoisonError::into_inner).0;
                    }
                }
            })
            .map_err(|e| CheckpointError::Io { path: PathBuf::from("(thread)"), reason: e.to_string() })?;
        Ok(Self { shared, thread: Some(thread) })
    }

    /// Hands a checkpoint to the writer; the first write that failed, if one did.
    pub fn submit(&self, checkpoint: Checkpoint) -> Result<(), String> {
        let payload = payload_of(&checkpoint).map_err(|e| e.to_string())?;
        self.submit_payload(checkpoint.progress.generation, payload)
    }

    /// Hands the writer the checkpoint of `generation` as the writer of its payload, run on
    /// the writer's thread (encoding a large state is work the run need not wait for);
    /// it replaces one not started.
    pub fn submit_payload(&self, generation: u32, payload: Payload) -> Result<(), String> {
        let (slot, wake) = &*self.shared;
        let mut s = lock(slot);
        if let Some(f) = &s.failure {
            return Err(f.clone());
        }
        s.pending = Some((generation, payload));
        wake.notify_all();
        Ok(())
    }

    /// Whether the writer would start on a checkpoint now: not writing, none waiting, not
    /// resting. A caller whose checkpoints cost something to hand over (a copy that keeps
    /// its state from being updated in place) submits only then, and its last one at the
    /// end, whatever this says.
    pub fn ready(&self) -> bool {
        let s = lock(&self.shared.0);
        !s.busy && s.pending.is_none() && s.resting_until.is_none_or(|t| std::time::Instant::now() >= t)
    }

    /// Waits until everything submitted is on disk; the first failure, if any.
    pub fn flush(&self) -> Result<u64, String> {
        let (slot, wake) = &*self.shared;
        let mut s = lock(slot);
        s.flushing = true;
        wake.notify_all();
        while (s.pending.is_some() || s.busy) && self.thread.as_ref().is_some_and(|t| !t.is_finished()) {
            s = wake.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        s.flushing = false;
        match &s.failure {
            Some(f) => Err(f.clone()),
            None => Ok(s.written),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        lock(&self.shared.0).closed = true;
        self.shared.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
