//! What one batch of large genomes costs on its way between two workers:
//! `cargo run --release -p exelixi-benches --example codec`
//!
//! 25 Rastrigin-4000 candidates (32 KB of genes each, 800 KB in all, the batch one of two
//! workers sends the other every generation at population 100): encoded and decoded
//! through serde (postcard, a call a gene) and as `uow::batch` does it (each genome one
//! block); decoding includes checking each key against its genome's digest (through
//! serde: `key_of`, as the receiver did before blocks; as blocks, `decode_candidates`
//! hashes a canonical block as it came), then the problem's rules. Medians of 5 rounds of
//! 100 repetitions each, interleaved.

use std::time::{Duration, Instant};

use ga_core::{Candidate, Origin, Problem, Rng, key_of};

const REPEATS: u32 = 100;

fn main() {
    let problem = ga_core::problems::Rastrigin { dims: 4000 };
    let mut rng = Rng::new(1);
    let batch: Vec<Candidate<Vec<f64>>> = (0..25u32)
        .map(|seq| {
            let genome = problem.random_genome(&mut rng);
            Candidate { key: key_of(&genome), genome, born: 7, origin: Origin { shard: 1, seq }, fitness: Some(0.5) }
        })
        .collect();
    let serde = uow::encode("candidates", &batch).expect("encodes");
    let block = uow::batch::encode_candidates(&batch).expect("encodes");
    let mut rounds: [Vec<Duration>; 5] = Default::default();
    let mut sink = 0usize;
    for _ in 0..5 {
        let mut time = |i: usize, f: &mut dyn FnMut() -> usize| {
            let start = Instant::now();
            for _ in 0..REPEATS {
                sink = sink.wrapping_add(f());
            }
            rounds[i].push(start.elapsed() / REPEATS);
        };
        time(0, &mut || uow::encode("candidates", &batch).map_or(0, |b| b.len()));
        time(1, &mut || uow::batch::encode_candidates(&batch).map_or(0, |b| b.len()));
        time(2, &mut || {
            let decoded = uow::decode::<Vec<Candidate<Vec<f64>>>>("candidates", &serde).unwrap_or_default();
            decoded.iter().filter(|c| key_of(&c.genome) == c.key).count()
        });
        time(3, &mut || uow::batch::decode_candidates::<Vec<f64>>(&block).map_or(0, |b| b.len()));
        time(4, &mut || batch.iter().filter(|c| problem.check(&c.genome).is_ok()).count());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let [enc_serde, enc_block, dec_serde, dec_block, checks] = rounds.each_mut().map(median);
    println!(
        "one batch of 25 Rastrigin-4000 candidates ({} bytes as blocks, {} through serde):",
        block.len(),
        serde.len()
    );
    println!("  encode: serde {enc_serde:>10.1?}  blocks {enc_block:>10.1?}");
    println!("  decode, keys checked: serde {dec_serde:>10.1?}  blocks {dec_block:>10.1?}");
    println!("  the problem's rules (Rastrigin::check): {checks:.1?}");
    std::hint::black_box(sink);
}
