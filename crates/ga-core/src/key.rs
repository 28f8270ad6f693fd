//! Individual keys and the run's set of keys already seen.
//!
//! An individual's key is a digest of its genome's canonical bytes (see
//! [`Genome::write_canonical`](crate::Genome::write_canonical)), so every machine and build
//! derives the same key for the same genome. The original used SHA-224 over JSON; a
//! 64-bit XXH3 (Collet, <https://github.com/Cyan4973/xxHash>, a specified, stable algorithm)
//! over packed bytes is ~25× cheaper and ample: the chance that two of n distinct genomes
//! share a key is about n²/2⁶⁵ (≈ 3·10⁻⁸ for a million), and a collision only means one new
//! genome is taken for a known one and bred again.

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// A genome's digest: identity for deduplication and, in a distributed run, for placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Key(pub u64);

impl Key {
    /// The key of some canonical genome bytes.
    #[inline]
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Key(xxhash_rust::xxh3::xxh3_64(bytes))
    }

    /// The key's big-endian bytes, for placement on a hash ring.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// XXH3-64's default secret as far as its paths for 17 to 240 bytes read it: its first
/// 136 bytes (`kSecret` in the XXH3 specification,
/// <https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md>).
const SECRET: [u8; 136] = [
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c, //
    0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f, //
    0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21, //
    0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c, //
    0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3, //
    0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8, //
    0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d, //
    0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64, //
    0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3,
];

/// The secret's little-endian word at byte `at`.
const fn secret_word(at: usize) -> u64 {
    let mut w = 0u64;
    let mut i = 8;
    while i > 0 {
        i -= 1;
        w = (w << 8) | SECRET[at + i] as u64;
    }
    w
}

/// The secret's words at 8-byte steps: `ALIGNED[j]` is the word at byte 8j.
const ALIGNED: [u64; 16] = {
    let mut t = [0u64; 16];
    let mut j = 0;
    while j < 16 {
        t[j] = secret_word(8 * j);
        j += 1;
    }
    t
};

/// The words the 129-to-240-byte path reads after its first eight rounds: at byte 3 + 8j.
const SHIFTED: [u64; 14] = {
    let mut t = [0u64; 14];
    let mut j = 0;
    while j < 14 {
        t[j] = secret_word(3 + 8 * j);
        j += 1;
    }
    t
};

/// The words its last round reads (bytes 136 − 17 and on).
const LAST: (u64, u64) = (secret_word(119), secret_word(127));

const PRIME64_1: u64 = 0x9e37_79b1_85eb_ca87;

/// XXH3's 16-byte round (seed 0): the two words, each keyed by a secret word, multiplied
/// to 128 bits and folded.
#[inline(always)]
fn mix16(lo: u64, hi: u64, (s_lo, s_hi): (u64, u64)) -> u64 {
    let product = u128::from(lo ^ s_lo) * u128::from(hi ^ s_hi);
    (product as u64) ^ ((product >> 64) as u64)
}

#[inline(always)]
fn avalanche(mut h: u64) -> u64 {
    h ^= h >> 37;
    h = h.wrapping_mul(0x1656_6791_9e37_79f9);
    h ^ (h >> 32)
}

/// XXH3-64 (seed 0) of the little-endian bytes of `n` words, word `j` being `word(j)`:
/// the digest [`Key::of_bytes`] gives those bytes, without writing them anywhere. `None`
/// outside the lengths done here, 24 to 240 bytes (3 to 30 words); every read of these
/// paths is a whole word when the length is.
#[inline(always)]
pub(crate) fn xxh3_of_words(n: usize, word: impl Fn(usize) -> u64) -> Option<Key> {
    let len = 8 * n as u64;
    let pair = |j: usize| (word(j), word(j + 1));
    let secret = |j: usize| (ALIGNED[j], ALIGNED[j + 1]);
    let mut acc = len.wrapping_mul(PRIME64_1);
    let add = |acc: u64, (lo, hi): (u64, u64), s: (u64, u64)| acc.wrapping_add(mix16(lo, hi, s));
    match n {
        3..=16 => {
            // 17 to 128 bytes: pairs from both ends, inwards.
            if n > 12 {
                acc = add(acc, pair(6), secret(12));
                acc = add(acc, pair(n - 8), secret(14));
            }
            if n > 8 {
                acc = add(acc, pair(4), secret(8));
                acc = add(acc, pair(n - 6), secret(10));
            }
            if n > 4 {
                acc = add(acc, pair(2), secret(4));
                acc = add(acc, pair(n - 4), secret(6));
            }
            acc = add(acc, pair(0), secret(0));
            acc = add(acc, pair(n - 2), secret(2));
            Some(Key(avalanche(acc)))
        }
        17..=30 => {
            // 129 to 240 bytes: eight rounds, a mix, the other whole rounds, the last 16 bytes.
            for i in 0..8 {
                acc = add(acc, pair(2 * i), secret(2 * i));
            }
            acc = avalanche(acc);
            for i in 8..n / 2 {
                let j = 2 * (i - 8);
                acc = add(acc, pair(2 * i), (SHIFTED[j], SHIFTED[j + 1]));
            }
            acc = add(acc, pair(n - 2), LAST);
            Some(Key(avalanche(acc)))
        }
        _ => None,
    }
}

/// Keys are already uniform digests, so the set uses them as their own hash.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Only reached if someone hashes something other than a `Key`; fold the bytes in.
        for &b in bytes {
            self.0 = crate::rng::mix64(self.0 ^ u64::from(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Every key admitted in a run, so that a genome is evaluated and admitted at most once.
///
/// Stored as bare 64-bit words in an open-addressing table with no per-key hashing: about
/// 9 bytes per slot at up to 7/8 load, so 10⁶ keys take 9–18 MB and 10⁷ under 200 MB.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashSet<u64, BuildHasherDefault<KeyHasher>>,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set with room for `n` keys before it grows.
    pub fn with_capacity(n: usize) -> Self {
        Self { keys: HashSet::with_capacity_and_hasher(n, Default::default()) }
    }

    /// Adds `key`; `true` if it was not seen before.
    #[inline]
    pub fn insert(&mut self, key: Key) -> bool {
        self.keys.insert(key.0)
    }

    /// Forgets `key`; `true` if it was there.
    pub fn remove(&mut self, key: Key) -> bool {
        self.keys.remove(&key.0)
    }

    /// Whether `key` was seen.
    #[inline]
    pub fn contains(&self, key: Key) -> bool {
        self.keys.contains(&key.0)
    }

    /// How many keys were seen.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key was seen.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Approximate heap bytes held (slots times the 8-byte key and 1 control byte).
    pub fn heap_bytes(&self) -> usize {
        self.keys.capacity() * 9
    }
}

impl FromIterator<Key> for KeySet {
    fn from_iter<I: IntoIterator<Item = Key>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut set = Self::with_capacity(iter.size_hint().0);
        for k in iter {
            set.insert(k);
        }
        set
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet").field("len", &self.len()).finish()
    }
}

/// Key lists as serde sees them in [`ShardState`](crate::ShardState) and
/// [`ShardDelta`](crate::ShardDelta): one block of little-endian `u64`s (8 bytes a key,
/// copied in one go) rather than a number each. Use with `#[serde(with =
/// "ga_core::packed_keys")]` on a `Vec<Key>`.
#[cfg(feature = "serde")]
pub mod packed_keys {
    use super::Key;

    /// Writes `keys` as one byte block.
    pub fn serialize<S: serde::Serializer>(keys: &[Key], s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(keys.len() * 8);
        for k in keys {
            bytes.extend_from_slice(&k.0.to_le_bytes());
        }
        s.serialize_bytes(&bytes)
    }

    /// Reads a byte block back; a length that is not a multiple of 8 is an error.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Key>, D::Error> {
        d.deserialize_bytes(Block)
    }

    struct Block;

    impl<'de> serde::de::Visitor<'de> for Block {
        type Value = Vec<Key>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a block of 8-byte keys")
        }

        fn visit_bytes<E: serde::de::Error>(self, b: &[u8]) -> Result<Vec<Key>, E> {
            if b.len() % 8 != 0 {
                return Err(E::custom(format!("{} bytes is not a whole number of 8-byte keys", b.len())));
            }
            Ok(b.chunks_exact(8)
                .map(|c| {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(c);
                    Key(u64::from_le_bytes(word))
                })
                .collect())
        }

        fn visit_byte_buf<E: serde::de::Error>(self, b: Vec<u8>) -> Result<Vec<Key>, E> {
            self.visit_bytes(&b)
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Key>, A::Error> {
            // Formats that write bytes as a list of numbers.
            let mut bytes = Vec::new();
            while let Some(b) = seq.next_element::<u8>()? {
                bytes.push(b);
            }
            self.visit_bytes(&bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxh3_is_the_specified_function() {
        // XXH3_64bits of the empty input with seed 0 (xxHash's published test vector).
        assert_eq!(Key::of_bytes(b"").0, 0x2d06_8005_38d3_94c2);
    }

    #[test]
    fn the_word_digest_is_xxh3_of_the_words_bytes_at_every_length_it_takes() {
        let mut rng = crate::rng::Rng::new(11);
        for n in 0..40 {
            for _ in 0..50 {
                let words: Vec<u64> = (0..n).map(|_| rng.next_u64()).collect();
                let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
                let got = xxh3_of_words(n, |j| words[j]);
                if (3..=30).contains(&n) {
                    assert_eq!(got, Some(Key::of_bytes(&bytes)), "{n} words");
                } else {
                    assert_eq!(got, None, "{n} words");
                }
            }
        }
    }

    #[test]
    fn keyset_dedups() {
        let mut s = KeySet::new();
        assert!(s.insert(Key(5)));
        assert!(!s.insert(Key(5)));
        assert!(s.contains(Key(5)));
        assert!(!s.contains(Key(6)));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_million_keys_stay_compact() {
        let mut s = KeySet::new();
        for i in 0..1_000_000u64 {
            s.insert(Key(crate::rng::mix64(i)));
        }
        assert_eq!(s.len(), 1_000_000);
        assert!(s.heap_bytes() < 20 * 1_000_000, "{} bytes", s.heap_bytes());
    }
}
