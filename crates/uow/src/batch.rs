//! A batch of candidates as it crosses the wire between GA shards.
//!
//! A genome whose type has a block form ([`Genome::write_block`]: the built-in vectors and
//! bit strings) travels as that block, written straight into the batch and read back with
//! one copy; any other genome goes as postcard writes it. A `Vec<f64>` of 4 000 genes
//! through serde is 4 000 calls each way: one batch of 25 Rastrigin-4000 genomes (800 KB)
//! encodes several times faster as blocks than through serde (`benches/examples/codec.rs`;
//! the figures are in docs/PERFORMANCE.md, "Genomes as blocks").
//!
//! A batch of `n` candidates: `n` as a little-endian `u32`, then each candidate: its
//! header as postcard writes `(key, born, origin, fitness)`, one byte saying the
//! genome's form, and the genome: form 1, the block's length as a little-endian `u32` and
//! the block; form 0, the genome as postcard writes it.

use ga_core::{Candidate, Genome, Key, Origin, key_of};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A candidate's header: everything but its genome.
type Header = (Key, u32, Origin, Option<f64>);

const FIELDS: u8 = 0;
const BLOCK: u8 = 1;

/// Encodes `batch` for the wire (see the module's doc for the form).
pub fn encode_candidates<G: Genome + Serialize>(batch: &[Candidate<G>]) -> Result<Vec<u8>, String> {
    let count = u32::try_from(batch.len()).map_err(|_| format!("{} candidates in one batch", batch.len()))?;
    let mut out = count.to_le_bytes().to_vec();
    for (i, c) in batch.iter().enumerate() {
        let header: Header = (c.key, c.born, c.origin, c.fitness);
        out = postcard::to_extend(&header, out).map_err(|e| e.to_string())?;
        let form = out.len();
        out.push(BLOCK);
        out.extend_from_slice(&[0; 4]);
        if c.genome.write_block(&mut out) {
            let len = out.len() - form - 5;
            let len = u32::try_from(len).map_err(|_| format!("key {}: a block of {len} bytes", c.key))?;
            out[form + 1..form + 5].copy_from_slice(&len.to_le_bytes());
            if i == 0 {
                // One allocation for a batch of blocks of one size (the usual case).
                out.reserve((batch.len() - 1) * (out.len() - 4));
            }
        } else {
            out.truncate(form);
            out.push(FIELDS);
            out = postcard::to_extend(&c.genome, out).map_err(|e| e.to_string())?;
        }
    }
    Ok(out)
}

/// Decodes a batch [`encode_candidates`] wrote, or says what is wrong with it: bytes that
/// are not such a batch, a block that is not a genome of this type, or a key that is not
/// its genome's digest ([`key_of`]). Checks nothing else (fitness, the problem's rules,
/// ownership: the receiver's business).
pub fn decode_candidates<G: Genome + DeserializeOwned>(bytes: &[u8]) -> Result<Vec<Candidate<G>>, String> {
    let (count, mut rest) = take_u32(bytes).ok_or("a batch shorter than its count")?;
    // The count is the sender's word: room for a few, then as the candidates come.
    let mut batch = Vec::with_capacity((count as usize).min(1024));
    for i in 0..count {
        let cut = || format!("candidate {i} of {count} cut short");
        let ((key, born, origin, fitness), after) =
            postcard::take_from_bytes::<Header>(rest).map_err(|e| format!("candidate {i} of {count}: {e}"))?;
        let (&form, after) = after.split_first().ok_or_else(cut)?;
        let genome = match form {
            BLOCK => {
                let (len, after) = take_u32(after).ok_or_else(cut)?;
                let (block, after) = after.split_at_checked(len as usize).ok_or_else(cut)?;
                rest = after;
                G::from_block(block).map_err(|why| format!("key {key}: {why}"))?
            }
            FIELDS => {
                let (genome, after) =
                    postcard::take_from_bytes::<G>(after).map_err(|e| format!("key {key}: its genome: {e}"))?;
                rest = after;
                genome
            }
            other => return Err(format!("key {key}: unknown genome form {other}")),
        };
        if key_of(&genome) != key {
            return Err(format!("key {key} is not the digest of its genome"));
        }
        batch.push(Candidate { genome, key, born, origin, fitness });
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after the last of {count} candidates", rest.len()));
    }
    Ok(batch)
}

fn take_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (n, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*n), rest))
}

#[cfg(test)]
mod tests {
    use ga_core::Bits;
    use serde::Deserialize;

    use super::*;

    fn candidate<G: Genome>(genome: G, seq: u32) -> Candidate<G> {
        Candidate { key: key_of(&genome), genome, born: 3, origin: Origin { shard: 1, seq }, fitness: Some(0.25) }
    }

    /// A genome with no block form: it travels through serde.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Word(String);

    impl Genome for Word {
        fn write_canonical(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(self.0.as_bytes());
        }
        fn write_json(&self, out: &mut String) {
            out.push_str(&self.0);
        }
    }

    #[test]
    fn a_batch_comes_back_as_it_went_blocks_and_fields_alike() {
        let reals = vec![candidate(vec![1.5f64, -0.0, 2.0], 0), candidate(vec![], 1), candidate(vec![9.0; 1000], 2)];
        let back: Vec<Candidate<Vec<f64>>> = decode_candidates(&encode_candidates(&reals).unwrap()).unwrap();
        assert_eq!(back, reals);
        assert_eq!(back[0].genome[1].to_bits(), (-0.0f64).to_bits());
        let bits = vec![candidate(Bits::from_bools(&[true, false, true]), 0)];
        assert_eq!(decode_candidates::<Bits>(&encode_candidates(&bits).unwrap()).unwrap(), bits);
        let words = vec![candidate(Word("tea".into()), 0), candidate(Word(String::new()), 1)];
        assert_eq!(decode_candidates::<Word>(&encode_candidates(&words).unwrap()).unwrap(), words);
        assert!(decode_candidates::<Word>(&encode_candidates::<Word>(&[]).unwrap()).unwrap().is_empty());
        // A block is the genome's words and a few bytes around them, not a field each.
        let one = encode_candidates(&[candidate(vec![0.5f64; 4000], 0)]).unwrap();
        assert!(one.len() < 4000 * 8 + 40, "{}", one.len());
    }

    #[test]
    fn broken_batches_are_refused_with_a_reason() {
        let good = encode_candidates(&[candidate(vec![1.0f64, 2.0], 0)]).unwrap();
        // Cut anywhere: an error, never a panic or a short batch.
        for cut in 0..good.len() {
            assert!(decode_candidates::<Vec<f64>>(&good[..cut]).is_err(), "cut at {cut}");
        }
        // A block that is not a whole number of words.
        let odd = encode_candidates(&[candidate(vec![7u32, 8, 9], 0)]).unwrap();
        let err = decode_candidates::<Vec<f64>>(&odd).unwrap_err();
        assert!(err.contains("12 bytes") && err.contains("key"), "{err}");
        // A block of another genome type is held to this one's rules.
        let err = decode_candidates::<Bits>(&encode_candidates(&[candidate(vec![1i64], 0)]).unwrap()).unwrap_err();
        assert!(err.contains("0 words cannot hold exactly 1 bits"), "{err}");
        // Bytes after the last candidate, an unknown form, a count the bytes cannot hold.
        let mut long = good.clone();
        long.push(0);
        assert!(decode_candidates::<Vec<f64>>(&long).unwrap_err().contains("1 bytes after the last of 1"));
        let mut form = good.clone();
        let at = form.len() - 16 - 5;
        assert_eq!(form[at], 1, "the block form byte");
        form[at] = 9;
        assert!(decode_candidates::<Vec<f64>>(&form).unwrap_err().contains("unknown genome form 9"));
        // A key that is not its genome's digest, from a block and through serde alike.
        let mut forged = candidate(vec![1.0f64, 2.0], 0);
        forged.key = key_of(&vec![1.0f64]);
        let err = decode_candidates::<Vec<f64>>(&encode_candidates(&[forged]).unwrap()).unwrap_err();
        assert!(err.contains("is not the digest of its genome"), "{err}");
        let mut forged = candidate(vec![-0.0f64], 0);
        forged.key = key_of(&vec![1.0f64]);
        assert!(decode_candidates::<Vec<f64>>(&encode_candidates(&[forged]).unwrap()).is_err());
        let mut forged = candidate(Word("tea".into()), 0);
        forged.key = key_of(&Word("tee".into()));
        assert!(decode_candidates::<Word>(&encode_candidates(&[forged]).unwrap()).is_err());
        let mut many = good.clone();
        many[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = decode_candidates::<Vec<f64>>(&many).unwrap_err();
        assert!(err.contains("candidate 1 of 4294967295"), "{err}");
    }
}
