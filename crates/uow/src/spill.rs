//! Snapshot members handed over through files in memory, for workers on the framework's
//! own host.
//!
//! A snapshot's members are most of its bytes (under generational selection every member
//! but the elites is new at each generation). Through the admit answer they cross tonic
//! and HTTP/2 twice per shard and generation; workers that share the framework's host
//! write them instead into a file of a folder in memory (tmpfs, `/dev/shm` where there is
//! one), and the answer says only which slot, how long and its XXH3-64. The framework
//! reads a slot only when it needs the bytes: to hand a snapshot to the checkpoint writer,
//! or to restore the shards after a lost worker. A worker's files outlive the worker, so
//! a SIGKILLed worker's last snapshot is still there to restore.
//!
//! Each shard has two slots, `shard-<index>.0` and `.1`; the framework names the slot a
//! snapshot goes to, the other one than its last complete snapshot's, so the snapshot it
//! holds is never written over while it holds it (one step is in flight at a time). A
//! slot whose bytes do not match the length and checksum its answer gave is refused when
//! read, naming the file. A worker that cannot write its slot puts the members in its
//! answer instead, as a worker without a spill folder does.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::Bytes;

/// The prefix of spill folders' names; the rest is the framework's process id.
const PREFIX: &str = "exelixi-spill-";

/// A spill folder of this process, removed when dropped.
#[derive(Debug)]
pub struct SpillDir {
    path: PathBuf,
}

impl SpillDir {
    /// A new spill folder: in `/dev/shm` if this machine has it (memory, not a disk),
    /// else in the temporary folder. Folders left by framework processes no longer
    /// running (killed before they could remove theirs) are removed first.
    pub fn new() -> std::io::Result<Self> {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        Self::new_in(&base)
    }

    /// A new spill folder in `base`.
    pub fn new_in(base: &Path) -> std::io::Result<Self> {
        remove_stale(base);
        let path = base.join(format!("{PREFIX}{}", std::process::id()));
        // A folder of the same name is an earlier run of this very process: start afresh.
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path)?;
        Ok(Self { path })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Removes the spill folders in `base` of processes that are gone (Linux: no
/// `/proc/<pid>`; elsewhere nothing is removed).
fn remove_stale(base: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(base) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// The file of `shard`'s slot `slot` in `dir`.
pub(crate) fn slot_path(dir: &Path, shard: u32, slot: u8) -> PathBuf {
    dir.join(format!("shard-{shard}.{slot}"))
}

/// Where a shard's members went instead of its admit answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Spilled {
    pub slot: u8,
    pub len: u64,
    pub hash: u64,
}

/// A worker's side: its two slot files, opened once.
#[derive(Default)]
pub(crate) struct SlotWriter {
    dir: Option<PathBuf>,
    files: [Option<fs::File>; 2],
}

impl SlotWriter {
    /// Writes `bytes` into `shard`'s slot `slot` of the folder `dir`, which must exist
    /// (a worker creates no folder and writes no other file).
    pub fn write(&mut self, dir: &Path, shard: u32, slot: u8, bytes: &[u8]) -> Result<Spilled, String> {
        if slot > 1 {
            return Err(format!("spill slot {slot}: only 0 and 1 exist"));
        }
        if !dir.is_absolute() {
            return Err(format!("spill folder {} is not an absolute path", dir.display()));
        }
        if self.dir.as_deref() != Some(dir) {
            *self = Self { dir: Some(dir.to_path_buf()), files: [None, None] };
        }
        let path = slot_path(dir, shard, slot);
        let file = match &mut self.files[usize::from(slot)] {
            Some(f) => f,
            empty => empty.insert(
                fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?,
            ),
        };
        // Written over in place; what lies past `len` is not read.
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(bytes))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(Spilled { slot, len: bytes.len() as u64, hash: xxhash_rust::xxh3::xxh3_64(bytes) })
    }
}

/// The bytes of a slot as its answer described them; refused, naming the file, when they
/// are missing, shorter or different.
pub(crate) fn read(path: &Path, s: &Spilled) -> Result<Bytes, String> {
    let len = usize::try_from(s.len).map_err(|_| format!("{}: {} bytes is too long", path.display(), s.len))?;
    let mut bytes = vec![0; len];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read the snapshot in {} ({} bytes): {e}", path.display(), s.len))?;
    if xxhash_rust::xxh3::xxh3_64(&bytes) != s.hash {
        return Err(format!("the snapshot in {} does not match its checksum", path.display()));
    }
    Ok(bytes.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_reads_back_what_was_written_and_refuses_anything_else() {
        let base = std::env::temp_dir().join(format!("spill-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        let dir = SpillDir::new_in(&base).unwrap();
        let mut w = SlotWriter::default();
        let long = w.write(dir.path(), 3, 1, &[7; 1000]).unwrap();
        // A shorter write over it: only its own bytes count.
        let short = w.write(dir.path(), 3, 1, b"members").unwrap();
        let path = slot_path(dir.path(), 3, 1);
        assert_eq!(&read(&path, &short).unwrap()[..], b"members");
        assert!(read(&path, &long).unwrap_err().contains("does not match"), "the old description no longer holds");
        let missing = read(&slot_path(dir.path(), 4, 0), &short).unwrap_err();
        assert!(missing.contains("shard-4.0"), "{missing}");
        assert!(w.write(dir.path(), 3, 2, b"x").unwrap_err().contains("slot 2"));
        assert!(w.write(Path::new("relative"), 3, 0, b"x").unwrap_err().contains("absolute"));
        let gone = base.join("no-such-folder");
        assert!(w.write(&gone, 3, 0, b"x").unwrap_err().contains("cannot open"));
        // Removed when dropped.
        let kept = dir.path().to_path_buf();
        drop(dir);
        assert!(!kept.exists());
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn a_folder_of_a_process_that_is_gone_is_removed() {
        if !Path::new("/proc/self").exists() {
            return;
        }
        let base = std::env::temp_dir().join(format!("spill-stale-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        // No process has the pid u32::MAX (Linux's pid_max is at most 2^22).
        let stale = base.join(format!("{PREFIX}{}", u32::MAX));
        fs::create_dir_all(&stale).unwrap();
        let other = base.join("unrelated");
        fs::create_dir_all(&other).unwrap();
        let dir = SpillDir::new_in(&base).unwrap();
        assert!(!stale.exists());
        assert!(other.exists());
        assert!(dir.path().exists());
        drop(dir);
        let _ = fs::remove_dir_all(&base);
    }
}
