//! The engine's random numbers: a named algorithm with per-purpose streams.
//!
//! Reproducibility is an invariant of the engine, so the generator is written here rather
//! than borrowed: `rand`'s value-stability is only promised within a major version, and a
//! seed must print the same run after a dependency upgrade. The algorithm is xoshiro256++
//! (Blackman & Vigna, "Scrambled linear pseudorandom number generators", 2019, reference
//! code at <https://prng.di.unimi.it/xoshiro256plusplus.c>), seeded through SplitMix64 as its
//! authors recommend.
//!
//! Streams: [`Rng::stream`] derives an independent generator from a run seed and a path of
//! words (e.g. generation, shard, slot), so that work split across threads or processes
//! draws the same numbers whatever the split.

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The SplitMix64 finaliser (Steele, Lea & Flood, "Fast splittable pseudorandom number
/// generators", OOPSLA 2014): a bijective 64-bit mixer.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[inline]
fn path_step(h: u64, position: u64, word: u64) -> u64 {
    mix64(h ^ mix64(word.wrapping_add((position + 1).wrapping_mul(GOLDEN_GAMMA))))
}

fn path_hash(seed: u64, path: &[u64]) -> u64 {
    let mut h = mix64(seed ^ GOLDEN_GAMMA);
    for (i, &w) in path.iter().enumerate() {
        h = path_step(h, i as u64, w);
    }
    h
}

/// Streams that share a path prefix; see [`Rng::family`].
#[derive(Clone, Copy, Debug)]
pub struct StreamFamily {
    h: u64,
    depth: u64,
}

impl StreamFamily {
    /// The stream at `prefix ++ [index]`.
    #[inline]
    pub fn stream(&self, index: u64) -> Rng {
        Rng::new(path_step(self.h, self.depth, index))
    }
}

/// `ln(1 - p)` for geometric draws with success probability `p` in `(0, 1)`.
#[derive(Clone, Copy, Debug)]
pub struct Geometric {
    ln_q: f64,
}

impl Geometric {
    /// Precomputes `ln(1 - p)`: draw many gaps of one `p` with [`Rng::geometric_ln`] and
    /// this, rather than [`Rng::geometric`] (which computes it each time). The mutation
    /// operators' draws keep theirs per thread.
    #[inline]
    pub fn new(p: f64) -> Self {
        let ln_q = (-p).ln_1p();
        Self { ln_q }
    }
}

/// Calls `f(i, rng)` for each `i` in `0..n` whose own Bernoulli(`p`) trial succeeds, in
/// order, for `0 < p < 1`, at a cost in O(successes). Returns how many succeeded.
///
/// Two ways of drawing the same distribution, chosen by (n, p) alone:
/// - **Few successes** (n·p at most [`FEW`], the usual mutation rate of one gene or a few
///   per genome): the number of successes K from Binomial(n, p), by one 64-bit draw against
///   the distribution function's table (the probabilities to within about 10⁻¹³, the
///   rounding of their recurrence and sums), then which K positions, uniformly among the
///   K-subsets of `0..n`, by Floyd's algorithm (Bentley & Floyd, "A sample of brilliance",
///   CACM 30(9), 1987): K draws, no logarithm. Independent trials are exactly this: their number is binomial,
///   and given it every set of that size is as likely.
/// - **Many**: the geometric gaps between successes, as [`Rng::geometric`] draws them (one
///   draw per success and one that goes past `n`). That last draw is decided without its
///   logarithm when `u` is clearly below (1 − p)^r, r the positions left: the gap
///   ⌊ln u / ln(1 − p)⌋ is then at least r, by a margin (a relative 10⁻⁹ on u) that no
///   rounding of the logarithm, the quotient or the power comes near, so the outcome is the
///   one the logarithm would give, draw for draw. The powers are tabled for n up to
///   [`TABLED`] positions.
///
/// The tables are kept per thread for the last (p, n) asked (a mutation operator's, child
/// after child); the powers are built on the second call in a row.
pub(crate) fn each_success(n: usize, p: f64, rng: &mut Rng, mut f: impl FnMut(usize, &mut Rng)) -> usize {
    OVERSHOOT.with(|cell| match cell.try_borrow_mut() {
        Ok(mut table) => {
            let (ln_q, below, few) = table.prepare(p, n);
            if few.is_empty() { successes(n, ln_q, below, rng, &mut f) } else { few_successes(n, few, rng, &mut f) }
        }
        // Asked again from inside `f` (an operator whose per-position work draws successes
        // itself): tables of its own, the same draws.
        Err(_) => {
            let mut few = Vec::new();
            binomial_thresholds(n, p, &mut few);
            if few.is_empty() {
                successes(n, (-p).ln_1p(), &[], rng, &mut f)
            } else {
                few_successes(n, &few, rng, &mut f)
            }
        }
    })
}

/// Expected successes up to which [`each_success`] draws their number, then their places.
const FEW: f64 = 8.0;

/// A probability of a count small enough that the counts past it are drawn as it: 2⁻⁷⁰.
/// Past the mean P(K = j + 1) ≤ P(K = j) · j/(j + 1), so the counts past the last one
/// tabled (at most 63) hold less than 2⁻⁷⁰ · 65 < 2⁻⁶³ together.
const TAIL: f64 = 1.0 / 1_180_591_620_717_411_303_424.0;

/// Most entries of a [`binomial_thresholds`] table (and so most successes it can draw).
const FEW_MAX: usize = 64;

/// Fills `out` with t_k = ⌊2⁶⁴ · P(K ≤ k)⌋ for K ~ Binomial(n, p), k = 0, 1, … up to the
/// first k where the sum reaches 1 in floating point (that entry is `u64::MAX`) or n; empty
/// when n·p is above [`FEW`] or the table would be longer than [`FEW_MAX`].
fn binomial_thresholds(n: usize, p: f64, out: &mut Vec<u64>) {
    out.clear();
    if n as f64 * p > FEW {
        return;
    }
    // P(K = 0) = (1 − p)^n; P(K = k + 1) = P(K = k) · (n − k)/(k + 1) · p/(1 − p).
    let mut pmf = (n as f64 * (-p).ln_1p()).exp();
    let ratio = p / (1.0 - p);
    let (mean, mut cdf) = (n as f64 * p, 0.0);
    for k in 0..=n.min(FEW_MAX - 1) {
        cdf += pmf;
        let next = pmf * ((n - k) as f64 / (k + 1) as f64 * ratio);
        if !cdf.is_finite() || !next.is_finite() {
            break;
        }
        // The last count: n, or where the sum rounds to 1, or past the mean where the
        // probabilities left are negligible (`TAIL`; the sum may stay a rounding short of
        // 1 forever).
        if k == n || cdf >= 1.0 || (k as f64 >= mean && next < TAIL) {
            out.push(u64::MAX);
            return;
        }
        // Below 1, so below 2⁶⁴ once scaled (1 − 2⁻⁵³ at most).
        out.push((cdf * 18_446_744_073_709_551_616.0) as u64);
        pmf = next;
    }
    out.clear();
}

/// [`each_success`]'s draws for few successes, with the table `thresholds`.
#[inline(always)]
fn few_successes(n: usize, thresholds: &[u64], rng: &mut Rng, f: &mut impl FnMut(usize, &mut Rng)) -> usize {
    let x = rng.next_u64();
    // The last entry is u64::MAX: only x = u64::MAX passes it, and takes that count too.
    let k = thresholds.iter().position(|&t| x < t).unwrap_or(thresholds.len() - 1);
    // None or one (three draws in four at one mutation a genome): Floyd's first step alone.
    if k <= 1 {
        if k == 1 {
            let i = rng.index(n);
            f(i, rng);
        }
        return k;
    }
    // On the stack, never allocated: a small array for a few (zeroing the large one on
    // every call would cost more than the draws), the large one only for more.
    let (mut few, mut many) = ([0usize; 8], None);
    let picks: &mut [usize] = if k <= few.len() { &mut few[..k] } else { &mut many.insert([0usize; FEW_MAX])[..k] };
    // Floyd: for m from n − k up, a draw t in 0..=m, taken unless already taken, else m.
    for (j, m) in (n - k..n).enumerate() {
        let t = rng.index(m + 1);
        picks[j] = if picks[..j].contains(&t) { m } else { t };
    }
    // Insertion sort: a few entries, where the library's sort costs more in setting up.
    for j in 1..k {
        let (v, mut at) = (picks[j], j);
        while at > 0 && picks[at - 1] > v {
            picks[at] = picks[at - 1];
            at -= 1;
        }
        picks[at] = v;
    }
    for &i in picks.iter() {
        f(i, rng);
    }
    k
}

/// [`each_success`]'s draws, with `ln_q` = ln(1 − p) and the table `below` (maybe empty).
#[inline(always)]
fn successes(n: usize, ln_q: f64, below: &[f64], rng: &mut Rng, f: &mut impl FnMut(usize, &mut Rng)) -> usize {
    let (mut start, mut count) = (0usize, 0);
    loop {
        let left = n - start;
        let u = 1.0 - rng.next_f64();
        if below.get(left).is_some_and(|&t| u < t) {
            break;
        }
        // The gap as Rng::geometric_ln computes it from the same u.
        let k = (u.ln() / ln_q) as u64;
        if k >= left as u64 {
            break;
        }
        let i = start + k as usize;
        f(i, rng);
        count += 1;
        start = i + 1;
    }
    count
}

/// Genomes up to this many positions get a table of (1 − p)^r (8 bytes a position).
const TABLED: usize = 1 << 16;

/// One thread's tables for [`each_success`], for the last (p, n) asked: ln(1 − p), the
/// count table ([`binomial_thresholds`]) and, without one, the powers (1 − p)^r · (1 − 10⁻⁹)
/// for r in 0..=n.
struct Overshoot {
    p: u64,
    ln_q: f64,
    n: usize,
    below: Vec<f64>,
    few: Vec<u64>,
}

thread_local! {
    // Built empty without a first-use check (a const initialiser): asked once a mutation.
    static OVERSHOOT: std::cell::RefCell<Overshoot> = const {
        std::cell::RefCell::new(Overshoot { p: 0, ln_q: 0.0, n: 0, below: Vec::new(), few: Vec::new() })
    };
}

impl Overshoot {
    /// ln(1 − p), the powers and the count table for (p, n) (either may be empty: powers
    /// not yet built or not worth it, too many successes for a count). A new (p, n) gets its
    /// count table at once; the powers, only needed without one, on a second call in a row.
    #[inline]
    fn prepare(&mut self, p: f64, n: usize) -> (f64, &[f64], &[u64]) {
        if self.p != p.to_bits() || self.n != n {
            if self.p != p.to_bits() {
                // As Geometric::new computes it.
                (self.p, self.ln_q) = (p.to_bits(), (-p).ln_1p());
            }
            self.n = n;
            self.below.clear();
            binomial_thresholds(n, p, &mut self.few);
        } else if self.few.is_empty() && self.below.is_empty() && n <= TABLED {
            let ln_q = self.ln_q;
            self.below.extend((0..=n).map(|r| (r as f64 * ln_q).exp() * (1.0 - 1e-9)));
        }
        (self.ln_q, &self.below, &self.few)
    }
}

/// A xoshiro256++ generator. Cheap to create, so the engine makes one per unit of work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator seeded from one word through SplitMix64.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(GOLDEN_GAMMA);
            mix64(x)
        };
        let s = [next(), next(), next(), next()];
        // An all-zero state is the one fixed point of xoshiro; SplitMix64 never yields four
        // zeros in a row, but the guard costs nothing.
        if s == [0; 4] {
            return Self { s: [GOLDEN_GAMMA, 1, 2, 3] };
        }
        Self { s }
    }

    /// An independent stream for `seed` and a path of words, e.g. `[purpose, generation,
    /// shard, slot]`. Different paths give unrelated sequences; the same path always gives
    /// the same one.
    pub fn stream(seed: u64, path: &[u64]) -> Self {
        Self::new(path_hash(seed, path))
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform float in `[0, 1)` with 53 bits of precision.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `0..n`. `n` must be positive.
    ///
    /// Lemire's multiply-and-reject method ("Fast random integer generation in an
    /// interval", ACM TOMACS 2019): unbiased, and almost never divides.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0, "Rng::below(0)");
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// A uniform index in `0..len`. `len` must be positive.
    #[inline]
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// Fills `out` with independent uniform integers in `0..n` (`n` positive), from one
    /// 64-bit draw when n^len surely fits in 64 bits (len times n's bit length at most 64;
    /// else one [`Rng::below`] each): the method of Brackett-Rozinsky & Lemire ("Batched
    /// ranged random integer generation", Software: Practice and Experience, 2025).
    /// Multiplying the draw by n, then the low word left by n again, and so on, gives as high
    /// words the base-n digits of ⌊x · n^len / 2⁶⁴⌋ and, as the last low word, the low word
    /// of x · n^len: [`Rng::below`]'s method with the bound n^len, its rejection included,
    /// so the values are exactly uniform and independent. One value is [`Rng::below`]'s,
    /// draw for draw.
    #[inline]
    pub fn below_each(&mut self, n: u64, out: &mut [u64]) {
        debug_assert!(n > 0, "Rng::below_each(0)");
        // n^len < 2^span.
        let span = (64 - n.leading_zeros() as usize).saturating_mul(out.len());
        if span > 64 {
            for v in out.iter_mut() {
                *v = self.below(n);
            }
            return;
        }
        loop {
            let mut low = self.next_u64();
            for v in out.iter_mut() {
                let m = u128::from(low) * u128::from(n);
                (*v, low) = ((m >> 64) as u64, m as u64);
            }
            // At or above 2^span, so above n^len: taken at once. Else (rarely: with
            // probability under 2^span / 2⁶⁴) Lemire's test with the bound n^len.
            if span < 64 && low >> span != 0 {
                return;
            }
            let bound = n.pow(out.len() as u32);
            if low >= bound.wrapping_neg() % bound {
                return;
            }
        }
    }

    /// A uniform integer in `lo..=hi`. Requires `lo <= hi`.
    #[inline]
    pub fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        let span = hi.wrapping_sub(lo) as u64;
        if span == u64::MAX {
            return self.next_u64() as i64;
        }
        lo.wrapping_add(self.below(span + 1) as i64)
    }

    /// A uniform float in `[lo, hi)`.
    #[inline]
    pub fn range_f64(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// `true` with probability `p` (`p <= 0` never, `p >= 1` always).
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// A standard normal deviate (Box–Muller; one of the pair is discarded so that the
    /// generator carries no hidden state).
    pub fn normal(&mut self) -> f64 {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// The number of failures before the first success of a Bernoulli(`p`) sequence, for
    /// `0 < p < 1`: how many genes to skip before the next one that mutates. Drawing skips
    /// instead of one coin per gene makes low-rate mutation cost O(mutations), not O(genes).
    #[inline]
    pub fn geometric(&mut self, p: f64) -> u64 {
        self.geometric_ln(Geometric::new(p))
    }

    /// [`Rng::geometric`] with `ln(1 - p)` computed once by the caller, for loops that draw
    /// many gaps with the same `p`.
    #[inline]
    pub fn geometric_ln(&mut self, g: Geometric) -> u64 {
        let u = 1.0 - self.next_f64();
        // ln(u) ≤ 0 and ln(1 − p) < 0: the quotient is at least 0 (or −0), where floor is
        // truncation, which the saturating cast does (u64::MAX from 2^64 up) without the
        // libm call `floor` is on x86-64's baseline (2% of a OneMax run).
        (u.ln() / g.ln_q) as u64
    }

    /// A family of streams sharing a path prefix: `Rng::family(seed, prefix).stream(i)` equals
    /// `Rng::stream(seed, prefix ++ [i])`, but derives the prefix once for many `i`.
    pub fn family(seed: u64, prefix: &[u64]) -> StreamFamily {
        StreamFamily { h: path_hash(seed, prefix), depth: prefix.len() as u64 }
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro256pp_matches_the_reference_sequence() {
        // State {1, 2, 3, 4}: the first outputs of the authors' reference C code.
        let mut r = Rng { s: [1, 2, 3, 4] };
        let got: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(got, [41943041, 58720359, 3588806011781223, 3591011842654386]);
    }

    #[test]
    fn splitmix_seeding_matches_the_reference() {
        // SplitMix64 from seed 0 yields 0xe220a8397b1dcdaf first (reference implementation).
        let r = Rng::new(0);
        assert_eq!(r.s[0], 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn streams_differ_by_path_and_repeat_by_path() {
        let a: Vec<u64> = {
            let mut r = Rng::stream(7, &[1, 2]);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::stream(7, &[1, 2]);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = Rng::stream(7, &[2, 1]);
            (0..8).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(Rng::stream(7, &[]), Rng::stream(8, &[]));
    }

    #[test]
    fn a_family_stream_is_the_stream_of_the_full_path() {
        let fam = Rng::family(9, &[4, 5]);
        assert_eq!(fam.stream(6), Rng::stream(9, &[4, 5, 6]));
        assert_eq!(Rng::family(9, &[]).stream(1), Rng::stream(9, &[1]));
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut r = Rng::new(1);
        let mut counts = [0u32; 7];
        for _ in 0..70_000 {
            counts[r.below(7) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn geometric_has_the_right_mean() {
        let mut r = Rng::new(3);
        let p = 0.01;
        let n = 20_000;
        let mean = (0..n).map(|_| r.geometric(p) as f64).sum::<f64>() / n as f64;
        let expected = (1.0 - p) / p; // 99
        assert!((mean - expected).abs() < 5.0, "mean {mean}");
    }

    #[test]
    fn geometric_gaps_are_the_floor_of_the_quotient() {
        // The cast replaced `floor` then a saturating check: the same gap for every draw,
        // from a gap of 0 to past 2^64 (saturated).
        for p in [1e-300f64, 1e-18, 1e-9, 0.001, 0.5, 0.999_999] {
            let (mut a, mut b) = (Rng::new(7), Rng::new(7));
            let ln_q = (-p).ln_1p();
            for _ in 0..10_000 {
                let k = ((1.0 - b.next_f64()).ln() / ln_q).floor();
                let expected = if k >= u64::MAX as f64 { u64::MAX } else { k as u64 };
                assert_eq!(a.geometric(p), expected, "p = {p}");
            }
        }
    }

    #[test]
    fn many_successes_are_those_of_the_geometric_gaps_draw_for_draw() {
        // The reference: gaps from Rng::geometric_ln, as the operators drew them before the
        // table; each (p, n) asked many times in a row (the table is built on the second).
        let reference = |n: usize, p: f64, rng: &mut Rng| {
            let gap = Geometric::new(p);
            let (mut hits, mut i) = (Vec::new(), rng.geometric_ln(gap));
            while i < n as u64 {
                hits.push(i as usize);
                i = i.saturating_add(1).saturating_add(rng.geometric_ln(gap));
            }
            hits
        };
        // Every one expects more than FEW successes.
        for (n, p) in [(5000, 0.3), (200, 0.999), (70_000, 1e-3), (1000, 0.05), (100, 0.5), (9, 0.999)] {
            assert!(n as f64 * p > FEW);
            let (mut a, mut b) = (Rng::new(n as u64), Rng::new(n as u64));
            for call in 0..200 {
                let mut hits = Vec::new();
                let count = each_success(n, p, &mut a, |i, _| hits.push(i));
                assert_eq!(hits, reference(n, p, &mut b), "n {n}, p {p}, call {call}");
                assert_eq!(count, hits.len());
                assert_eq!(a, b, "the same draws consumed");
            }
        }
        // Alternating rates: the table follows the last (p, n), never a stale one.
        let (mut a, mut b) = (Rng::new(1), Rng::new(1));
        for call in 0..100 {
            let p = if call % 3 == 0 { 0.1 } else { 0.02 };
            let mut hits = Vec::new();
            each_success(500, p, &mut a, |i, _| hits.push(i));
            assert_eq!(hits, reference(500, p, &mut b), "call {call}");
        }
    }

    /// P(K = k) for K ~ Binomial(n, p), by logarithms (independent of the table's recurrence).
    fn binomial_pmf(n: usize, p: f64, k: usize) -> f64 {
        let ln_choose: f64 = (0..k).map(|i| ((n - i) as f64).ln() - ((i + 1) as f64).ln()).sum();
        (ln_choose + k as f64 * p.ln() + (n - k) as f64 * (-p).ln_1p()).exp()
    }

    #[test]
    fn few_successes_are_independent_trials_in_distribution() {
        // Expecting at most FEW successes: a count and a uniform set of that many positions.
        // Checked: ascending distinct positions below n; the count's distribution against
        // Binomial(n, p) and each position's rate against p (chi-square-like bounds that a
        // right sampler passes with room, and a count off by one, or positions not uniform,
        // fails by far); the same draws when asked from inside `f` (no table there).
        for (n, p, draws) in [
            (1000, 0.001, 40_000),
            (100, 0.01, 40_000),
            (30, 1.0 / 30.0, 40_000),
            (8, 0.9, 40_000),
            (20, 0.4, 40_000),
            (1, 0.5, 20_000),
            (64, 1e-12, 2_000),
        ] {
            assert!(n as f64 * p <= FEW);
            let mut rng = Rng::new(n as u64 ^ p.to_bits());
            let mut counts = vec![0u64; n + 1];
            let mut at = vec![0u64; n];
            for _ in 0..draws {
                let mut hits: Vec<usize> = Vec::new();
                let k = each_success(n, p, &mut rng, |i, _| hits.push(i));
                assert_eq!(k, hits.len());
                assert!(hits.windows(2).all(|w| w[0] < w[1]) && hits.iter().all(|&i| i < n), "{hits:?}");
                counts[k] += 1;
                for i in hits {
                    at[i] += 1;
                }
            }
            let draws = draws as f64;
            for (k, &c) in counts.iter().enumerate() {
                let expected = draws * binomial_pmf(n, p, k);
                let sd = expected.max(1.0).sqrt();
                assert!(
                    (c as f64 - expected).abs() < 6.0 * sd + 2.0,
                    "n {n}, p {p}: count {k} {c} times, expected {expected:.1}"
                );
            }
            let per_position = draws * p;
            let sd = (per_position * (1.0 - p)).sqrt().max(1.0);
            for (i, &c) in at.iter().enumerate() {
                assert!(
                    (c as f64 - per_position).abs() < 6.0 * sd + 2.0,
                    "n {n}, p {p}: position {i} {c} times, expected {per_position:.1}"
                );
            }
        }
        // From inside `f`: the same draws as from outside.
        let (mut a, mut b) = (Rng::new(4), Rng::new(4));
        for _ in 0..500 {
            let (mut outer, mut inner) = (Vec::new(), Vec::new());
            each_success(50, 0.05, &mut a, |i, rng| {
                outer.push(i);
                each_success(1000, 0.002, rng, |j, _| inner.push(j));
            });
            let (mut outer_b, mut inner_b) = (Vec::new(), Vec::new());
            let mut visits = Vec::new();
            each_success(50, 0.05, &mut b, |i, _| visits.push(i));
            for i in visits {
                outer_b.push(i);
                each_success(1000, 0.002, &mut b, |j, _| inner_b.push(j));
            }
            assert_eq!((outer, inner), (outer_b, inner_b));
        }
    }

    #[test]
    fn the_count_table_ends_at_the_last_count_worth_drawing() {
        let mut t = Vec::new();
        for (n, p) in [(1000, 0.001), (100, 0.01), (8, 0.9), (1, 0.5), (64, 1e-12), (0, 0.5), (3, 0.999_999)] {
            binomial_thresholds(n, p, &mut t);
            assert!(!t.is_empty() && t.len() <= n + 1 && t.len() <= FEW_MAX, "n {n}, p {p}: {}", t.len());
            assert_eq!(t.last(), Some(&u64::MAX), "n {n}, p {p}");
            assert!(t.windows(2).all(|w| w[0] <= w[1]), "n {n}, p {p}: ascending");
        }
        // Too many successes expected for a count: the gaps instead.
        for (n, p) in [(1000, 0.01), (20, 0.5), (1 << 20, 1e-5)] {
            binomial_thresholds(n, p, &mut t);
            assert!(t.is_empty(), "n {n}, p {p}");
        }
    }

    #[test]
    fn batched_draws_are_uniform_independent_and_below_s_for_one() {
        // Every triple of 0..5 equally often: 125 cells, 250 000 draws (2 000 a cell, whose
        // standard deviation is about 45; 6 of them is a bound no fair cell comes near).
        let mut r = Rng::new(12);
        let mut cells = vec![0u32; 125];
        let mut out = [0u64; 3];
        for _ in 0..250_000 {
            r.below_each(5, &mut out);
            cells[(out[0] * 25 + out[1] * 5 + out[2]) as usize] += 1;
        }
        assert!(cells.iter().all(|&c| c.abs_diff(2_000) < 270), "{cells:?}");
        // One value is Rng::below's, draw for draw; bounds whose powers do not fit in a word
        // are one Rng::below each, draw for draw.
        for (n, len) in [(7u64, 1usize), (1 << 40, 1), (1 << 40, 2), (1_000_003, 4), (3, 41)] {
            let (mut a, mut b) = (Rng::new(n), Rng::new(n));
            let mut out = vec![0u64; len];
            for _ in 0..200 {
                a.below_each(n, &mut out);
                let one_by_one: Vec<u64> = (0..len).map(|_| b.below(n)).collect();
                if len == 1 || (64 - n.leading_zeros() as usize) * len > 64 {
                    assert_eq!(out, one_by_one, "n {n}, len {len}");
                }
                assert!(out.iter().all(|&v| v < n), "n {n}, len {len}: {out:?}");
            }
        }
        // A bound of exactly 64 bits takes Lemire's test every time: still in range, and
        // both halves of the range reached.
        let n = (1u64 << 32) - 5;
        let mut out = [0u64; 2];
        let (mut low, mut high) = (false, false);
        for _ in 0..1_000 {
            r.below_each(n, &mut out);
            assert!(out.iter().all(|&v| v < n), "{out:?}");
            (low, high) = (low || out[1] < n / 2, high || out[1] >= n / 2);
        }
        assert!(low && high);
    }

    #[test]
    fn range_i64_covers_both_ends() {
        let mut r = Rng::new(5);
        let draws: Vec<i64> = (0..2_000).map(|_| r.range_i64(-2, 2)).collect();
        assert!(draws.iter().all(|d| (-2..=2).contains(d)));
        assert!(draws.contains(&-2) && draws.contains(&2));
        // The full range takes the no-rejection path: both signs must appear.
        let full: Vec<i64> = (0..64).map(|_| r.range_i64(i64::MIN, i64::MAX)).collect();
        assert!(full.iter().any(|&x| x < 0) && full.iter().any(|&x| x > 0));
    }
}
