//! Checkpoint files on a real file system: atomic writes keep the last two; any damage to
//! the newest (truncation, flipped bits, garbage, another format) makes the reader fall
//! back to the one before with a warning, or say there is none; never a panic.

use std::path::PathBuf;

use ga_core::{Params, Problem, Progress, problems::OneMax};
use proptest::prelude::*;
use uow::checkpoint::{self, Checkpoint, CheckpointError, RunIdentity};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("exelixi-ckpt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn identity() -> RunIdentity {
    RunIdentity { problem: "onemax".into(), size: Some(64), params: OneMax { bits: 64 }.params(), seed: 7, shards: 2 }
}

fn at(generation: u32) -> Checkpoint {
    let shards = (0..2u8).map(|i| vec![i; 40 + generation as usize]).collect();
    Checkpoint { identity: identity(), progress: Progress { generation, stalled: false }, shards }
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn the_last_two_are_kept_and_the_newest_is_read() {
    let dir = scratch("keep");
    for g in [5, 10, 15] {
        checkpoint::write(&dir, &at(g)).unwrap();
    }
    // The retired one is the spare that the next write overwrites.
    assert_eq!(names(&dir), [".spare.exlx", "checkpoint-0000000010.exlx", "checkpoint-0000000015.exlx"]);
    let (path, c, warnings) = checkpoint::resume(&dir, &identity()).unwrap();
    assert!(path.ends_with("checkpoint-0000000015.exlx"));
    assert_eq!((c, warnings), (at(15), Vec::<String>::new()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_checkpoint_written_over_a_longer_spare_keeps_nothing_of_it() {
    let dir = scratch("spare");
    for g in [500, 501, 502] {
        checkpoint::write(&dir, &at(g)).unwrap();
    }
    let spare = std::fs::metadata(dir.join(".spare.exlx")).unwrap().len();
    let small = Checkpoint { shards: vec![vec![1; 3], vec![2; 3]], ..at(503) };
    let path = checkpoint::write(&dir, &small).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() < spare);
    let (newest, c, warnings) = checkpoint::newest(&dir).unwrap();
    assert_eq!((newest, c, warnings), (path, small, Vec::<String>::new()));
    assert_eq!(names(&dir), [".spare.exlx", "checkpoint-0000000502.exlx", "checkpoint-0000000503.exlx"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_checkpoint_of_another_run_is_refused_naming_each_difference() {
    let dir = scratch("other");
    checkpoint::write(&dir, &at(4)).unwrap();
    let this = RunIdentity { seed: 8, shards: 3, params: Params { n_pop: 50, ..identity().params }, ..identity() };
    let err = checkpoint::resume(&dir, &this).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, CheckpointError::OtherRun { .. }), "{text}");
    for part in ["seed 7 (this run: 8)", "shard count 2 (this run: 3)", "n_pop"] {
        assert!(text.contains(part), "{text}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_empty_or_missing_folder_says_so() {
    let dir = scratch("empty");
    let err = checkpoint::newest(&dir).unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }), "{err}");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".checkpoint-0000000009.exlx.1.tmp"), b"half").unwrap();
    let err = checkpoint::newest(&dir).unwrap_err();
    assert!(err.to_string().contains("(it has none)"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_writer_thread_puts_the_last_submitted_on_disk() {
    let dir = scratch("writer");
    let writer = checkpoint::Writer::new(&dir).unwrap();
    for g in 1..=20 {
        writer.submit(at(g)).unwrap();
    }
    assert!(writer.flush().unwrap() >= 1);
    let (_, c, _) = checkpoint::newest(&dir).unwrap();
    assert_eq!(c, at(20));
    drop(writer);
    let file = dir.join("not-a-folder");
    std::fs::write(&file, b"").unwrap();
    assert!(checkpoint::Writer::new(&file.join("sub")).is_err(), "an unwritable folder is refused at once");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[derive(Debug, Clone)]
enum Damage {
    Truncate(usize),
    Flip(usize, u8),
    Garbage(Vec<u8>),
    Append(Vec<u8>),
    Version(u32),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Damage::Flip(at, bit)),
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(Damage::Garbage),
        proptest::collection::vec(any::<u8>(), 1..20).prop_map(Damage::Append),
        (2u32..u32::MAX).prop_map(Damage::Version),
    ]
}

fn apply(bytes: &mut Vec<u8>, d: &Damage) {
    match d {
        Damage::Truncate(n) => bytes.truncate(n % bytes.len()),
        Damage::Flip(at, bit) => {
            let at = at % bytes.len();
            bytes[at] ^= 1 << bit;
        }
        Damage::Garbage(g) => *bytes = g.clone(),
        Damage::Append(extra) => bytes.extend_from_slice(extra),
        Damage::Version(v) => bytes[8..12].copy_from_slice(&v.to_le_bytes()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn a_damaged_newest_checkpoint_falls_back_to_the_previous(d in damage(), both in any::<bool>()) {
        let dir = scratch("damage");
        checkpoint::write(&dir, &at(3)).unwrap();
        checkpoint::write(&dir, &at(6)).unwrap();
        let newest = dir.join("checkpoint-0000000006.exlx");
        let mut bytes = std::fs::read(&newest).unwrap();
        apply(&mut bytes, &d);
        std::fs::write(&newest, &bytes).unwrap();
        if both {
            let older = dir.join("checkpoint-0000000003.exlx");
            let mut bytes = std::fs::read(&older).unwrap();
            apply(&mut bytes, &d);
            std::fs::write(&older, &bytes).unwrap();
        }
        match checkpoint::newest(&dir) {
            Ok((_, c, warnings)) => {
                prop_assert_eq!(c.progress.generation, 3, "the damaged one is never taken");
                prop_assert!(!both);
                prop_assert_eq!(warnings.len(), 1);
                prop_assert!(warnings[0].contains("checkpoint-0000000006.exlx skipped"), "{:?}", warnings);
            }
            Err(e) => {
                prop_assert!(both, "{}", e);
                prop_assert!(matches!(e, CheckpointError::NoCheckpoint { ref skipped, .. } if skipped.len() == 2), "{}", e);
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn any_bytes_decode_to_a_checkpoint_or_a_reason(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = checkpoint::decode(&bytes);
        // With a valid header and checksum around arbitrary payload bytes too.
        let mut framed = b"EXLXCKPT".to_vec();
        framed.extend_from_slice(&checkpoint::FORMAT_VERSION.to_le_bytes());
        framed.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        framed.extend_from_slice(&xxh3(&bytes).to_le_bytes());
        framed.extend_from_slice(&bytes);
        let _ = checkpoint::decode(&framed);
    }
}

fn xxh3(bytes: &[u8]) -> u64 {
    // The checksum is XXH3-64, the function ga-core's keys use.
    ga_core::Key::of_bytes(bytes).0
}
