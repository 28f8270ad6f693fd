//! Genomes: what a problem's individuals carry, and how they are named and shown.

use std::fmt::Write as _;

use crate::rng::Rng;

/// A genome the engine can digest, deduplicate, report and move between threads.
///
/// Implemented for `Vec<i64>` (integer vectors), `Vec<f64>` (real vectors), `Vec<u32>`
/// (permutations) and [`Bits`] (packed bit strings); a problem may bring its own type.
pub trait Genome: Clone + Send + Sync + 'static {
    /// Appends the genome's canonical bytes: equal genomes must write equal bytes, on every
    /// platform. The individual's [`Key`](crate::Key) is the digest of these bytes.
    fn write_canonical(&self, out: &mut Vec<u8>);

    /// The genome's [`Key`](crate::Key): the digest of its canonical bytes. The default
    /// writes them into a per-thread buffer; a type may digest them where they lie, with
    /// the same result (the built-in genomes do, from their words, for 24 to 240 bytes).
    #[inline]
    fn key(&self) -> crate::Key {
        crate::individual::key_by_scratch(self)
    }

    /// Appends the genome as JSON, as the final report prints it (e.g. `[2, 37, 49, 62, 81]`).
    fn write_json(&self, out: &mut String);

    /// The genome as a JSON string.
    fn to_json(&self) -> String {
        let mut s = String::new();
        self.write_json(&mut s);
        s
    }

    /// Appends the genome as one block of bytes that [`Genome::from_block`] reads back into
    /// the very same genome, bit for bit, and returns `true`; or writes nothing and returns
    /// `false` (the default) for a type without such a form. A worker sends a genome with a
    /// block form as that block, copied whole, and any other genome field by field as serde
    /// writes it: the built-in vectors and bit strings have one (their words,
    /// little-endian), which moves a genome of tens of kilobytes at memory speed rather
    /// than a word at a time.
    fn write_block(&self, out: &mut Vec<u8>) -> bool {
        let _ = out;
        false
    }

    /// The genome [`Genome::write_block`] wrote as `block`, or why `block` is not one (it
    /// may come from the network: any bytes must give a genome or an error, never a panic).
    fn from_block(block: &[u8]) -> Result<Self, String> {
        let _ = block;
        Err("this genome type has no block form".into())
    }
}

/// Reads `block` as little-endian words of `N` bytes each.
fn words_of<T, const N: usize>(block: &[u8], word: impl Fn([u8; N]) -> T) -> Result<Vec<T>, String> {
    if block.len() % N != 0 {
        return Err(format!("a block of {} bytes is not a whole number of {N}-byte words", block.len()));
    }
    Ok(block.chunks_exact(N).map(|w| word(w.try_into().expect("chunks of N bytes"))).collect())
}

/// [`words_of`] for words stored as their little-endian bytes: on a little-endian machine,
/// the block copied into the words' memory in one go.
fn le_words_of<T, const N: usize>(block: &[u8], from_le_bytes: impl Fn([u8; N]) -> T) -> Result<Vec<T>, String>
where
    T: Copy + Default + zerocopy::FromBytes + zerocopy::IntoBytes,
{
    if !cfg!(target_endian = "little") || block.len() % N != 0 {
        return words_of(block, from_le_bytes);
    }
    let mut words = vec![T::default(); block.len() / N];
    zerocopy::IntoBytes::as_mut_bytes(words.as_mut_slice()).copy_from_slice(block);
    Ok(words)
}

fn write_json_list<T>(items: &[T], out: &mut String, mut item: impl FnMut(&T, &mut String)) {
    out.push('[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        item(x, out);
    }
    out.push(']');
}

/// Appends `words`, each mapped by `canonical`, as little-endian bytes: one resize, then
/// fixed-size stores the compiler vectorises (pushing 8 bytes at a time checked the
/// capacity on every word, and was most of a large genome's key).
#[inline]
fn extend_words<T: Copy, const N: usize>(out: &mut Vec<u8>, words: &[T], canonical: impl Fn(T) -> [u8; N]) {
    let start = out.len();
    out.resize(start + words.len() * N, 0);
    for (dst, &w) in out[start..].chunks_exact_mut(N).zip(words) {
        dst.copy_from_slice(&canonical(w));
    }
}

/// [`extend_words`] for words whose canonical bytes are their little-endian bytes: on a
/// little-endian machine, the words' memory as it is, in one copy.
#[inline]
fn extend_le_words<T, const N: usize>(out: &mut Vec<u8>, words: &[T], to_le_bytes: impl Fn(T) -> [u8; N])
where
    T: Copy + zerocopy::IntoBytes + zerocopy::Immutable,
{
    if cfg!(target_endian = "little") {
        out.extend_from_slice(zerocopy::IntoBytes::as_bytes(words));
    } else {
        extend_words(out, words, to_le_bytes);
    }
}

/// Integer vectors: little-endian bytes for the key, a JSON list for the report.
macro_rules! integer_genome {
    ($($t:ty),*) => {$(
        impl Genome for Vec<$t> {
            #[inline]
            fn key(&self) -> crate::Key {
                integer_key(self).unwrap_or_else(|| crate::individual::key_by_scratch(self))
            }
            fn write_canonical(&self, out: &mut Vec<u8>) {
                extend_le_words(out, self, <$t>::to_le_bytes);
            }
            /// The canonical bytes: every word as it is.
            fn write_block(&self, out: &mut Vec<u8>) -> bool {
                self.write_canonical(out);
                true
            }
            fn from_block(block: &[u8]) -> Result<Self, String> {
                le_words_of(block, <$t>::from_le_bytes)
            }
            fn write_json(&self, out: &mut String) {
                write_json_list(self, out, |x, o| {
                    let _ = write!(o, "{x}");
                });
            }
        }
    )*};
}

integer_genome!(i64, u32);

/// The key of an integer vector read where it is, when [`crate::key::xxh3_of_words`] takes
/// its length: 64-bit integers, or 32-bit ones two to a word (an even count).
#[inline]
fn integer_key<T: Copy + Into<i64> + 'static>(v: &[T]) -> Option<crate::Key> {
    if std::mem::size_of::<T>() == 8 {
        crate::key::xxh3_of_words(v.len(), |j| v[j].into() as u64)
    } else if v.len() % 2 == 0 {
        let half = |x: T| u64::from(x.into() as u32);
        crate::key::xxh3_of_words(v.len() / 2, |j| half(v[2 * j]) | half(v[2 * j + 1]) << 32)
    } else {
        None
    }
}

/// A real gene's canonical word: -0.0 and 0.0 are the same gene; every NaN is the same
/// (invalid) gene.
#[inline]
fn canonical_real(x: f64) -> u64 {
    let bits = if x == 0.0 { 0 } else { x.to_bits() };
    if x.is_nan() { f64::NAN.to_bits() } else { bits }
}

impl Genome for Vec<f64> {
    #[inline]
    fn key(&self) -> crate::Key {
        crate::key::xxh3_of_words(self.len(), |j| canonical_real(self[j]))
            .unwrap_or_else(|| crate::individual::key_by_scratch(self))
    }
    fn write_canonical(&self, out: &mut Vec<u8>) {
        extend_words(out, self, |x: f64| canonical_real(x).to_le_bytes());
    }
    fn write_block(&self, out: &mut Vec<u8>) -> bool {
        // Every bit as it is (a -0.0 stays one): the genome itself, not its identity.
        extend_le_words(out, self, |x: f64| x.to_bits().to_le_bytes());
        true
    }
    fn from_block(block: &[u8]) -> Result<Self, String> {
        le_words_of(block, |w| f64::from_bits(u64::from_le_bytes(w)))
    }
    fn write_json(&self, out: &mut String) {
        write_json_list(self, out, |x, o| {
            if x.is_finite() {
                // Rust's shortest round-trip form; always valid JSON for finite values.
                let _ = write!(o, "{x:?}");
            } else {
                o.push_str("null");
            }
        });
    }
}

/// A bit string packed 64 to a word: crossover, mutation, fitness and digest work on whole
/// words. Bits past `len` in the last word are always zero.
#[derive(Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "wire::BitsWire"))]
pub struct Bits {
    words: Vec<u64>,
    len: usize,
}

impl Clone for Bits {
    fn clone(&self) -> Self {
        Self { words: self.words.clone(), len: self.len }
    }

    /// Reuses this bit string's storage (a retired genome becoming a copy of a parent).
    fn clone_from(&mut self, source: &Self) {
        self.words.clone_from(&source.words);
        self.len = source.len;
    }
}

impl Bits {
    /// `len` zero bits.
    pub fn zeros(len: usize) -> Self {
        Self { words: vec![0; len.div_ceil(64)], len }
    }

    /// `len` uniformly random bits.
    pub fn random(len: usize, rng: &mut Rng) -> Self {
        let mut words: Vec<u64> = (0..len.div_ceil(64)).map(|_| rng.next_u64()).collect();
        mask_tail(&mut words, len);
        Self { words, len }
    }

    /// Bits from booleans.
    pub fn from_bools(bools: &[bool]) -> Self {
        let mut b = Self::zeros(bools.len());
        for (i, &v) in bools.iter().enumerate() {
            b.set(i, v);
        }
        b
    }

    /// The number of bits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bit `i`. Panics if `i >= len` (a programming error, like slice indexing).
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        assert!(i < self.len, "bit {i} out of {}", self.len);
        self.words[i / 64] >> (i % 64) & 1 == 1
    }

    /// Sets bit `i`. Panics if `i >= len`.
    #[inline]
    pub fn set(&mut self, i: usize, v: bool) {
        assert!(i < self.len, "bit {i} out of {}", self.len);
        let m = 1u64 << (i % 64);
        if v {
            self.words[i / 64] |= m;
        } else {
            self.words[i / 64] &= !m;
        }
    }

    /// Flips bit `i`. Panics if `i >= len`.
    #[inline]
    pub fn flip(&mut self, i: usize) {
        assert!(i < self.len, "bit {i} out of {}", self.len);
        self.words[i / 64] ^= 1u64 << (i % 64);
    }

    /// The number of set bits.
    #[inline]
    pub fn count_ones(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The packed words, least significant bit first.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Iterates over the bits.
    pub fn iter(&self) -> impl Iterator<Item = bool> + '_ {
        (0..self.len).map(|i| self.get(i))
    }

    /// Uniform crossover: each bit from `self` or `other` with equal chance, 64 bits per
    /// random draw. Both parents must have the same length.
    pub fn uniform_crossover(&self, other: &Self, rng: &mut Rng) -> Self {
        let mut child = Self { words: Vec::with_capacity(self.words.len()), len: 0 };
        self.uniform_crossover_into(other, rng, &mut child);
        child
    }

    /// [`Bits::uniform_crossover`] into `child`, reusing its storage.
    pub fn uniform_crossover_into(&self, other: &Self, rng: &mut Rng, child: &mut Self) {
        assert_eq!(self.len, other.len, "crossover of bit strings of different lengths");
        child.words.clear();
        child.words.extend(self.words.iter().zip(&other.words).map(|(&a, &b)| {
            let m = rng.next_u64();
            (a & m) | (b & !m)
        }));
        mask_tail(&mut child.words, self.len);
        child.len = self.len;
    }

    /// Uniform crossover making two complementary children from one mask: `first` takes
    /// each bit from `self` or `other` as [`Bits::uniform_crossover_into`] does with the
    /// same draws, `second` takes it from the other parent. Reuses both children's storage.
    pub fn uniform_crossover_pair_into(&self, other: &Self, rng: &mut Rng, first: &mut Self, second: &mut Self) {
        assert_eq!(self.len, other.len, "crossover of bit strings of different lengths");
        let n = self.words.len();
        first.words.resize(n, 0);
        second.words.resize(n, 0);
        let parents = self.words.iter().zip(&other.words);
        for ((f, s), (&a, &b)) in first.words.iter_mut().zip(second.words.iter_mut()).zip(parents) {
            // Where the mask is set, a to the first and b to the second; else the reverse.
            let differ = (a ^ b) & rng.next_u64();
            *f = b ^ differ;
            *s = a ^ differ;
        }
        mask_tail(&mut first.words, self.len);
        mask_tail(&mut second.words, self.len);
        (first.len, second.len) = (self.len, self.len);
    }

    /// One-point crossover: bits before a random cut from `self`, the rest from `other`.
    pub fn one_point_crossover(&self, other: &Self, rng: &mut Rng) -> Self {
        assert_eq!(self.len, other.len, "crossover of bit strings of different lengths");
        let cut = rng.index(self.len + 1);
        let mut words = other.words.clone();
        for (i, w) in words.iter_mut().enumerate() {
            let lo = i * 64;
            let m = if cut >= lo + 64 {
                u64::MAX
            } else if cut <= lo {
                0
            } else {
                (1u64 << (cut - lo)) - 1
            };
            *w = (self.words[i] & m) | (*w & !m);
        }
        Self { words, len: self.len }
    }

    /// Flips each bit independently with probability `p`, at a cost proportional to the
    /// number of flips (a binomial count of flips and which bits when few are expected,
    /// geometric gaps between flips otherwise). Returns that number.
    pub fn flip_each(&mut self, p: f64, rng: &mut Rng) -> usize {
        if p <= 0.0 || self.len == 0 {
            return 0;
        }
        if p >= 1.0 {
            for w in &mut self.words {
                *w = !*w;
            }
            mask_tail(&mut self.words, self.len);
            return self.len;
        }
        let words = &mut self.words;
        crate::rng::each_success(self.len, p, rng, |i, _| words[i / 64] ^= 1u64 << (i % 64))
    }
}

#[cfg(feature = "serde")]
mod wire {
    //! A bit string as it arrives from a peer, checked before it is believed.

    use super::Bits;

    #[derive(serde::Deserialize)]
    pub(super) struct BitsWire {
        words: Vec<u64>,
        len: usize,
    }

    impl TryFrom<BitsWire> for Bits {
        type Error = String;
        fn try_from(w: BitsWire) -> Result<Self, String> {
            Bits::from_parts(w.words, w.len)
        }
    }
}

impl Bits {
    /// A bit string of `len` bits from the words that hold them, checked as one from a peer
    /// must be: exactly enough words, and no bit set past the end.
    fn from_parts(words: Vec<u64>, len: usize) -> Result<Self, String> {
        if words.len() != len.div_ceil(64) {
            return Err(format!("{} words cannot hold exactly {len} bits", words.len()));
        }
        if len % 64 != 0 && words.last().is_some_and(|&last| last >> (len % 64) != 0) {
            return Err("bits set past the end of the bit string".into());
        }
        Ok(Bits { words, len })
    }
}

fn mask_tail(words: &mut [u64], len: usize) {
    if len % 64 != 0 {
        if let Some(last) = words.last_mut() {
            *last &= (1u64 << (len % 64)) - 1;
        }
    }
}

impl Genome for Bits {
    /// The digest of the length and the words, read where they are (no copy) for up to 29
    /// words (1 856 bits).
    #[inline]
    fn key(&self) -> crate::Key {
        let words = &self.words;
        let len = self.len as u64;
        let at = |j: usize| if j == 0 { len } else { words[j - 1] };
        crate::key::xxh3_of_words(1 + words.len(), at).unwrap_or_else(|| crate::individual::key_by_scratch(self))
    }
    fn write_canonical(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.len as u64).to_le_bytes());
        extend_le_words(out, &self.words, u64::to_le_bytes);
    }
    /// The canonical bytes: the length, then the words.
    fn write_block(&self, out: &mut Vec<u8>) -> bool {
        self.write_canonical(out);
        true
    }
    fn from_block(block: &[u8]) -> Result<Self, String> {
        let (len, words) = block.split_at_checked(8).ok_or("a bit string's block shorter than its length")?;
        let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
        let len = usize::try_from(len).map_err(|_| format!("{len} bits do not fit in memory"))?;
        Bits::from_parts(le_words_of(words, u64::from_le_bytes)?, len)
    }
    fn write_json(&self, out: &mut String) {
        out.reserve(self.len * 3);
        out.push('[');
        for i in 0..self.len {
            if i > 0 {
                out.push_str(", ");
            }
            out.push(if self.get(i) { '1' } else { '0' });
        }
        out.push(']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `Genome::key` must equal: the digest of the canonical bytes.
    fn digest<G: Genome>(g: &G) -> crate::Key {
        let mut bytes = Vec::new();
        g.write_canonical(&mut bytes);
        crate::Key::of_bytes(&bytes)
    }

    #[test]
    fn every_built_in_genome_s_key_is_the_digest_of_its_canonical_bytes() {
        let mut rng = Rng::new(5);
        for n in 0..70 {
            let bits = Bits::random(n * 31, &mut rng);
            assert_eq!(bits.key(), digest(&bits), "{} bits", bits.len());
            let ints: Vec<i64> = (0..n).map(|_| rng.next_u64() as i64).collect();
            assert_eq!(ints.key(), digest(&ints), "{n} i64");
            let perm: Vec<u32> = (0..n).map(|_| rng.next_u64() as u32).collect();
            assert_eq!(perm.key(), digest(&perm), "{n} u32");
            let mut reals: Vec<f64> = (0..n).map(|_| rng.range_f64(-5.0, 5.0)).collect();
            for (i, special) in [-0.0, 0.0, f64::NAN, -f64::NAN, f64::INFINITY].into_iter().enumerate() {
                if i < n {
                    reals[i * n / 5] = special;
                }
            }
            assert_eq!(reals.key(), digest(&reals), "{n} f64");
        }
        // The same gene twice: -0.0 and 0.0, two NaNs.
        assert_eq!(vec![-0.0, f64::NAN, 1.0].key(), vec![0.0, -f64::NAN, 1.0].key());
    }

    #[test]
    fn json_matches_the_original_format() {
        assert_eq!(vec![2i64, 37, 49, 62, 81].to_json(), "[2, 37, 49, 62, 81]");
        assert_eq!(vec![0.5f64, -1.0].to_json(), "[0.5, -1.0]");
        assert_eq!(Bits::from_bools(&[true, false, true]).to_json(), "[1, 0, 1]");
    }

    #[test]
    fn canonical_bytes_are_little_endian_words_with_one_zero_and_one_nan() {
        let mut out = vec![9u8];
        let odd_nan = f64::from_bits(0x7ff8_0000_0000_0001);
        vec![1.5f64, -0.0, odd_nan].write_canonical(&mut out);
        let mut expected = vec![9u8];
        for bits in [1.5f64.to_bits(), 0, f64::NAN.to_bits()] {
            expected.extend_from_slice(&bits.to_le_bytes());
        }
        assert_eq!(out, expected);
        let mut out = Vec::new();
        vec![-2i64, 7].write_canonical(&mut out);
        assert_eq!(out, [(-2i64).to_le_bytes(), 7i64.to_le_bytes()].concat());
        let mut out = Vec::new();
        Bits::from_bools(&[true, false, true]).write_canonical(&mut out);
        assert_eq!(out, [3u64.to_le_bytes(), 5u64.to_le_bytes()].concat());
    }

    #[test]
    fn a_block_gives_back_the_genome_bit_for_bit_and_broken_blocks_are_refused() {
        fn round_trip<G: Genome>(g: &G) -> G {
            let mut block = vec![7u8];
            assert!(g.write_block(&mut block));
            G::from_block(&block[1..]).unwrap()
        }
        // -0.0 and a NaN's payload survive (the key merges them; the genome does not).
        let odd_nan = f64::from_bits(0x7ff8_0000_0000_0001);
        let reals = vec![1.5f64, -0.0, odd_nan, f64::MIN_POSITIVE];
        let back = round_trip(&reals);
        assert_eq!(
            back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            reals.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(round_trip(&vec![-2i64, i64::MAX]), vec![-2i64, i64::MAX]);
        assert_eq!(round_trip(&vec![3u32, 0, u32::MAX]), vec![3u32, 0, u32::MAX]);
        let bits = Bits::from_bools(&[true, false, true, true]);
        assert_eq!(round_trip(&bits), bits);
        assert_eq!(round_trip(&Vec::<f64>::new()), Vec::<f64>::new());

        let err = Vec::<f64>::from_block(&[0; 12]).unwrap_err();
        assert!(err.contains("12 bytes") && err.contains("8-byte"), "{err}");
        assert!(Vec::<u32>::from_block(&[0; 6]).is_err());
        let bits_block = |len: u64, words: &[u64]| {
            [len.to_le_bytes().to_vec(), words.iter().flat_map(|w| w.to_le_bytes()).collect()].concat()
        };
        assert_eq!(Bits::from_block(&bits_block(4, &[0b1101])).unwrap(), bits);
        let err = Bits::from_block(&bits_block(4, &[0b1_0000])).unwrap_err();
        assert!(err.contains("past the end"), "{err}");
        let err = Bits::from_block(&bits_block(65, &[1])).unwrap_err();
        assert!(err.contains("1 words cannot hold exactly 65 bits"), "{err}");
        assert!(Bits::from_block(&[1, 2, 3]).unwrap_err().contains("shorter"));
        assert!(Bits::from_block(&bits_block(u64::MAX, &[])).is_err());
    }

    #[test]
    fn canonical_bytes_identify_genomes() {
        let key = |g: &dyn Fn(&mut Vec<u8>)| {
            let mut v = Vec::new();
            g(&mut v);
            v
        };
        assert_eq!(key(&|o| vec![0.0f64].write_canonical(o)), key(&|o| vec![-0.0f64].write_canonical(o)));
        assert_ne!(key(&|o| Bits::zeros(3).write_canonical(o)), key(&|o| Bits::zeros(4).write_canonical(o)));
    }

    #[test]
    fn tail_bits_stay_zero() {
        let mut r = Rng::new(1);
        let mut a = Bits::random(70, &mut r);
        let b = Bits::random(70, &mut r);
        assert_eq!(a.words()[1] >> 6, 0);
        a.flip_each(1.0, &mut r);
        assert_eq!(a.words()[1] >> 6, 0);
        let c = a.uniform_crossover(&b, &mut r);
        assert_eq!(c.words()[1] >> 6, 0);
        assert_eq!(c.iter().count(), 70);
    }

    #[test]
    fn a_uniform_pair_is_the_single_child_and_its_complement() {
        let mut r = Rng::new(8);
        for len in [0, 1, 63, 64, 70, 1000] {
            let (a, b) = (Bits::random(len, &mut r), Bits::random(len, &mut r));
            // Storage of other lengths and contents, to be overwritten.
            let (mut first, mut second) = (Bits::random(len + 65, &mut r), Bits::from_bools(&[true; 3]));
            let (mut single, mut twin) = (r.clone(), r.clone());
            a.uniform_crossover_pair_into(&b, &mut twin, &mut first, &mut second);
            assert_eq!(first, a.uniform_crossover(&b, &mut single), "{len} bits: the first child as one");
            assert_eq!(single, twin, "{len} bits: the same draws");
            assert_eq!((first.len(), second.len()), (len, len));
            for (i, ((x, y), (pa, pb))) in first.iter().zip(second.iter()).zip(a.iter().zip(b.iter())).enumerate() {
                assert!(
                    (x, y) == (pa, pb) || (x, y) == (pb, pa),
                    "{len} bits, bit {i}: each parent's bit to one child"
                );
            }
            // Both children's tails stay clear (a word's unused bits), so keys are canonical.
            assert_eq!(first.key(), digest(&first));
            assert_eq!(second.key(), digest(&second));
        }
    }

    #[test]
    fn one_point_crossover_takes_a_prefix_and_a_suffix() {
        let mut r = Rng::new(2);
        let ones = Bits::from_bools(&[true; 130]);
        let zeros = Bits::zeros(130);
        for _ in 0..50 {
            let c = ones.one_point_crossover(&zeros, &mut r);
            let bits: Vec<bool> = c.iter().collect();
            let cut = bits.iter().take_while(|&&b| b).count();
            assert!(bits[cut..].iter().all(|&b| !b), "{bits:?}");
        }
    }

    #[test]
    fn bit_flip_rate_is_p() {
        let mut r = Rng::new(4);
        let mut b = Bits::zeros(1000);
        let flips: usize = (0..2000).map(|_| b.flip_each(0.001, &mut r)).sum();
        let mean = flips as f64 / 2000.0;
        assert!((mean - 1.0).abs() < 0.1, "mean flips {mean}");
    }
}
