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
