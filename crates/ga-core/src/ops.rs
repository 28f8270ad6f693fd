//! Standard variation and selection operators, for use inside a [`Problem`](crate::Problem).
//!
//! Crossovers take two parents of equal length and return a child; mutations change a
//! genome in place. [`Bits`](crate::Bits) has word-parallel versions of its own.

use crate::rng::Rng;

/// Uniform crossover: each gene from either parent with equal chance (one random word per
/// 64 genes). Panics if the parents differ in length.
pub fn uniform<T: Copy>(a: &[T], b: &[T], rng: &mut Rng) -> Vec<T> {
    assert_eq!(a.len(), b.len(), "crossover of parents of different lengths");
    let mut child = Vec::with_capacity(a.len());
    for (ca, cb) in a.chunks(64).zip(b.chunks(64)) {
        let mask = rng.next_u64();
        for (i, (&x, &y)) in ca.iter().zip(cb).enumerate() {
            child.push(if mask >> i & 1 == 1 { x } else { y });
        }
    }
    child
}

/// One-point crossover: genes before a random cut from `a`, the rest from `b`.
pub fn one_point<T: Copy>(a: &[T], b: &[T], rng: &mut Rng) -> Vec<T> {
    assert_eq!(a.len(), b.len(), "crossover of parents of different lengths");
    let cut = rng.index(a.len() + 1);
    a[..cut].iter().chain(&b[cut..]).copied().collect()
}

/// Two-point crossover: the genes between two random cuts from `b`, the rest from `a`.
pub fn two_point<T: Copy>(a: &[T], b: &[T], rng: &mut Rng) -> Vec<T> {
    assert_eq!(a.len(), b.len(), "crossover of parents of different lengths");
    let (mut i, mut j) = (rng.index(a.len() + 1), rng.index(a.len() + 1));
    if i > j {
        std::mem::swap(&mut i, &mut j);
    }
    let mut child = a.to_vec();
    child[i..j].copy_from_slice(&b[i..j]);
    child
}

/// A random permutation of `0..n` (a tour, a queens placement): the usual first genome of
/// a permutation problem.
pub fn random_permutation(n: usize, rng: &mut Rng) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n as u32).collect();
    rng.shuffle(&mut v);
    v
}

/// Whether `v` is a permutation of `0..n`: what a permutation problem's `check` asks of a
/// genome from the network.
pub fn is_permutation(v: &[u32], n: usize) -> bool {
    let mut seen = vec![false; n];
    v.len() == n && v.iter().all(|&c| (c as usize) < n && !std::mem::replace(&mut seen[c as usize], true))
}

/// Order crossover (OX1, Davis 1985) for permutations of `0..n`: the child keeps a random
/// slice of `a` in place and fills the other positions with the remaining values in the
/// order they appear in `b`, starting after the slice. Parents must be permutations of the
/// same `0..n`.
pub fn order(a: &[u32], b: &[u32], rng: &mut Rng) -> Vec<u32> {
    assert_eq!(a.len(), b.len(), "crossover of parents of different lengths");
    let n = a.len();
    if n < 2 {
        return a.to_vec();
    }
    let (mut i, mut j) = (rng.index(n), rng.index(n));
    if i > j {
        std::mem::swap(&mut i, &mut j);
    }
    let mut taken = vec![false; n];
    let mut child = vec![0u32; n];
    for k in i..=j {
        child[k] = a[k];
        taken[a[k] as usize] = true;
    }
    let mut pos = (j + 1) % n;
    for step in 0..n {
        let v = b[(j + 1 + step) % n];
        if !taken[v as usize] {
            child[pos] = v;
            taken[v as usize] = true;
            pos = (pos + 1) % n;
        }
    }
    child
}

/// Gaussian mutation: each gene, with probability `p`, moves by a normal step of standard
/// deviation `sigma` and is clamped to `[lo, hi]`. Returns how many genes moved.
pub fn gaussian(genes: &mut [f64], p: f64, sigma: f64, lo: f64, hi: f64, rng: &mut Rng) -> usize {
    each_with_probability(genes.len(), p, rng, |i, rng| {
        genes[i] = (genes[i] + sigma * rng.normal()).clamp(lo, hi);
    })
}

/// Simulated binary crossover (SBX; Deb & Agrawal 1995, in the bounded form of Deb's
/// NSGA-II code): each gene, with probability 1/2 and where the parents differ, is spread
/// around the parents' mean by a factor drawn from a polynomial distribution of index
/// `eta` ≥ 0 (larger keeps children nearer their parents), with the spread's tails cut at
/// `[lo, hi]`; one of the pair's two children is kept, per gene at random. Other genes come
/// from `a` or `b` at random. `a` and `b` must have equal lengths and lie in `[lo, hi]`.
/// One random draw per gene: its two low bits choose, its high 53 the spread.
pub fn sbx(a: &[f64], b: &[f64], eta: f64, lo: f64, hi: f64, rng: &mut Rng) -> Vec<f64> {
    let mut child = Vec::with_capacity(a.len().min(b.len()));
    sbx_into(a, b, eta, lo, hi, rng, &mut child);
    child
}

/// [`sbx`] into `child`, reusing its storage (whatever it held is replaced).
pub fn sbx_into(a: &[f64], b: &[f64], eta: f64, lo: f64, hi: f64, rng: &mut Rng, child: &mut Vec<f64>) {
    // The count of squarings a constant, so that the compiler unrolls them and packs the
    // loop (a count known only at run time kept it scalar, with branches).
    let index = SbxIndex::new(eta);
    let cross = match index.squarings {
        Some(0) => sbx_by_squarings::<0>,
        Some(1) => sbx_by_squarings::<1>,
        Some(2) => sbx_by_squarings::<2>,
        Some(3) => sbx_by_squarings::<3>,
        Some(4) => sbx_by_squarings::<4>,
        Some(5) => sbx_by_squarings::<5>,
        Some(6) => sbx_by_squarings::<6>,
        _ => sbx_general,
    };
    cross(a, b, &index, lo, hi, rng, child)
}

/// What [`sbx`] derives from its index η, once a call.
#[derive(Clone, Copy)]
struct SbxIndex {
    eta: f64,
    exponent: f64,
    /// Below this 1/β, β^−(η+1) < 2^−53 and α = 2 − β^−(η+1) rounds to 2 exactly: no
    /// power needed (genes whose parents are close to each other and far from the bounds).
    /// The power of two at or below 2^−53/(η+1), built from its bits: a pow per call cost
    /// as much as the crossover of a 30-gene vector.
    unbounded: f64,
    /// η + 1 when a whole number up to 64: β^−(η+1) is as many multiplications by
    /// repeated squaring.
    whole: Option<u32>,
    /// log2(η + 1) when η + 1 is a power of two up to 64 (η = 1 or 15, say): β^−(η+1) is
    /// as many squarings and its (η+1)-th root as many square roots, several times cheaper
    /// than `powf`, and correctly rounded everywhere.
    squarings: Option<u32>,
}

impl SbxIndex {
    fn new(eta: f64) -> Self {
        let exponent = 1.0 / (eta + 1.0);
        let unbounded = f64::from_bits((1023 - (53.0 * exponent).ceil().clamp(0.0, 1022.0) as u64) << 52);
        let whole = Some(eta + 1.0).filter(|n| n.fract() == 0.0 && (1.0..=64.0).contains(n)).map(|n| n as u32);
        let squarings = whole.filter(|n| n.is_power_of_two()).map(u32::trailing_zeros);
        Self { eta, exponent, unbounded, whole, squarings }
    }
}

/// [`sbx`] for any η, a branch per gene.
fn sbx_general(a: &[f64], b: &[f64], index: &SbxIndex, lo: f64, hi: f64, rng: &mut Rng, child: &mut Vec<f64>) {
    let SbxIndex { eta, exponent, unbounded, whole, squarings } = *index;
    let inverse_power = |inverse: f64| match whole {
        Some(n) => power(inverse, n),
        None => inverse.powf(eta + 1.0),
    };
    let root = |v: f64| match squarings {
        Some(k) => (0..k).fold(v, |v, _| v.sqrt()),
        None => v.powf(exponent),
    };
    child.clear();
    child.extend(a.iter().zip(b).map(|(&x, &y)| {
        let bits = rng.next_u64();
        let (crossed, side) = (bits & 1 == 1, bits & 2 == 2);
        if !crossed || (x - y).abs() <= 1e-14 {
            return if side { x } else { y };
        }
        let u = (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        let (y1, y2) = if x < y { (x, y) } else { (y, x) };
        let d = y2 - y1;
        // 1/β, β being 1 + twice the distance to the nearer bound in units of the
        // parents' distance: one division.
        let spread = |to_bound: f64| {
            let inverse = d / (d + 2.0 * to_bound);
            let alpha = if inverse < unbounded { 2.0 } else { 2.0 - inverse_power(inverse) };
            let ua = u * alpha;
            if ua <= 1.0 { root(ua) } else { root(1.0 / (2.0 - ua)) }
        };
        let c = if side { 0.5 * ((y1 + y2) - spread(y1 - lo) * d) } else { 0.5 * ((y1 + y2) + spread(hi - y2) * d) };
        c.clamp(lo, hi)
    }));
}

/// [`sbx`] for η + 1 = 2^`K`, gene for gene the same arithmetic with no branch: every
/// gene's spread is computed and a mask picks the crossed child or the parent's gene.
/// Which genes cross, which side and whether the spread exceeds 1 are coin flips, which a
/// branch predictor misses half the time, each miss costing more than the arithmetic; as
/// selects on bits, two genes at a time, the compiler turns the loop into packed
/// divisions and square roots (a Rastrigin-30 run 15% faster: docs/PERFORMANCE.md).
fn sbx_by_squarings<const K: u32>(
    a: &[f64],
    b: &[f64],
    index: &SbxIndex,
    lo: f64,
    hi: f64,
    rng: &mut Rng,
    out: &mut Vec<f64>,
) {
    let unbounded = index.unbounded;
    // Two genes at a time, each from its own draw (in gene order, as the general form
    // takes them).
    let pair = |x: [f64; 2], y: [f64; 2], draw: [u64; 2]| {
        let mut child = [0.0; 2];
        for j in 0..2 {
            let (x, y, bits) = (x[j], y[j], draw[j]);
            let (crossed, side) = (mask(bits & 1 == 1), mask(bits & 2 == 2));
            let u = (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
            let lower = mask(x < y);
            let (y1, y2) = (select(lower, x, y), select(lower, y, x));
            let d = y2 - y1;
            let inverse = d / (d + 2.0 * select(side, y1 - lo, hi - y2));
            let mut power = inverse;
            for _ in 0..K {
                power *= power;
            }
            let alpha = select(mask(inverse < unbounded), 2.0, 2.0 - power);
            let ua = u * alpha;
            let mut spread = select(mask(ua <= 1.0), ua, 1.0 / (2.0 - ua));
            for _ in 0..K {
                spread = spread.sqrt();
            }
            // Toward the lower bound the spread is subtracted: the product's sign flipped.
            let step = f64::from_bits((spread * d).to_bits() ^ (side & (1 << 63)));
            let c = 0.5 * ((y1 + y2) + step);
            // f64::clamp, NaN kept.
            let c = select(mask(c > hi), hi, select(mask(c < lo), lo, c));
            let apart = !mask((x - y).abs() <= 1e-14);
            child[j] = select(crossed & apart, c, select(side, x, y));
        }
        child
    };
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    // Written in place: no length to check and grow per pair.
    out.clear();
    out.resize(n, 0.0);
    for ((o, x), y) in out.chunks_exact_mut(2).zip(a.chunks_exact(2)).zip(b.chunks_exact(2)) {
        let draw = [rng.next_u64(), rng.next_u64()];
        let child = pair([x[0], x[1]], [y[0], y[1]], draw);
        (o[0], o[1]) = (child[0], child[1]);
    }
    if n % 2 == 1 {
        let child = pair([a[n - 1], 0.0], [b[n - 1], 0.0], [rng.next_u64(), 0]);
        out[n - 1] = child[0];
    }
}

/// `t` where `mask` is all ones, `f` where it is zero: a select the compiler keeps as bit
/// operations (packed, two lanes at a time), where an `if` on a coin flip may become a
/// branch that is mispredicted half the time.
#[inline(always)]
pub(crate) fn select(mask: u64, t: f64, f: f64) -> f64 {
    f64::from_bits((t.to_bits() & mask) | (f.to_bits() & !mask))
}

/// All ones if `b`, else zero.
#[inline(always)]
pub(crate) fn mask(b: bool) -> u64 {
    u64::from(b).wrapping_neg()
}

/// `x` to the power `n`, by repeated squaring.
fn power(mut x: f64, mut n: u32) -> f64 {
    let mut result = 1.0;
    while n > 0 {
        if n & 1 == 1 {
            result *= x;
        }
        x *= x;
        n >>= 1;
    }
    result
}

/// Polynomial mutation (Deb & Goyal 1996, in the bounded form of Deb's NSGA-II code): each
/// gene, with probability `p`, moves by a step drawn from a polynomial distribution of
/// index `eta` (larger means smaller steps) whose reach is scaled to the distance from the
/// gene to each bound, so it never leaves `[lo, hi]`. Returns how many genes moved.
pub fn polynomial(genes: &mut [f64], p: f64, eta: f64, lo: f64, hi: f64, rng: &mut Rng) -> usize {
    let width = hi - lo;
    if width.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return 0;
    }
    let exponent = 1.0 / (eta + 1.0);
    each_with_probability(genes.len(), p, rng, |i, rng| {
        let x = genes[i];
        let u = rng.next_f64();
        // x^y as exp(y ln x): two calls cheaper than glibc's pow at these arguments (a
        // Rastrigin run 6% faster).
        let pow = |x: f64, y: f64| (x.ln() * y).exp();
        let delta = if u < 0.5 {
            let reach = 1.0 - (x - lo) / width;
            pow(2.0 * u + (1.0 - 2.0 * u) * pow(reach, eta + 1.0), exponent) - 1.0
        } else {
            let reach = 1.0 - (hi - x) / width;
            1.0 - pow(2.0 * (1.0 - u) + 2.0 * (u - 0.5) * pow(reach, eta + 1.0), exponent)
        };
        genes[i] = (x + delta * width).clamp(lo, hi);
    })
}

/// Random-reset mutation: each gene, with probability `p`, is replaced by a uniform value in
/// `lo..=hi`. Returns how many genes were reset.
pub fn random_reset(genes: &mut [i64], p: f64, lo: i64, hi: i64, rng: &mut Rng) -> usize {
    each_with_probability(genes.len(), p, rng, |i, rng| {
        genes[i] = rng.range_i64(lo, hi);
    })
}

/// Swap mutation: exchanges two random positions.
pub fn swap<T>(genes: &mut [T], rng: &mut Rng) {
    if genes.len() >= 2 {
        let i = rng.index(genes.len());
        let j = rng.index(genes.len());
        genes.swap(i, j);
    }
}

/// Inversion mutation: reverses a random slice (for a tour, a 2-opt move).
pub fn inversion<T>(genes: &mut [T], rng: &mut Rng) {
    if genes.len() >= 2 {
        let (mut i, mut j) = (rng.index(genes.len()), rng.index(genes.len()));
        if i > j {
            std::mem::swap(&mut i, &mut j);
        }
        genes[i..=j].reverse();
    }
}

/// Tournament selection: the fittest of `k` uniform draws (with replacement) among
/// `fitness`, returned as an index; ties go to the earliest draw. `fitness` must not be
/// empty and `k` must be at least 1.
#[inline(always)]
pub fn tournament(fitness: &[f64], k: usize, rng: &mut Rng) -> usize {
    let first = rng.index(fitness.len());
    fittest(fitness, first, (1..k).map(|_| rng.index(fitness.len())))
}

/// The fittest of `first` and then `rest`, by index into `fitness`: strictly better only
/// replaces, so a tie stays with the earlier contestant.
#[inline(always)]
fn fittest(fitness: &[f64], first: usize, rest: impl Iterator<Item = usize>) -> usize {
    let (mut best, mut best_fitness) = (first, fitness[first]);
    for c in rest {
        let f = fitness[c];
        if f > best_fitness {
            (best, best_fitness) = (c, f);
        }
    }
    best
}

/// Two tournaments of `k` among `fitness` (the parents of a pair of children): the winners
/// of the first `k` and of the next `k` of 2`k` uniform draws, all from one 64-bit word
/// when they fit in it ([`Rng::below_each`]), else as two [`tournament`]s. Ties go to the
/// earliest draw. `fitness` must not be empty and `k` must be at least 1.
#[inline(always)]
pub fn tournament_pair(fitness: &[f64], k: usize, rng: &mut Rng) -> (usize, usize) {
    if k > BATCHED {
        return (tournament(fitness, k, rng), tournament(fitness, k, rng));
    }
    let mut drawn = [0u64; 2 * BATCHED];
    let drawn = &mut drawn[..2 * k];
    rng.below_each(fitness.len() as u64, drawn);
    let winner =
        |contestants: &[u64]| fittest(fitness, contestants[0] as usize, contestants[1..].iter().map(|&c| c as usize));
    let (first, second) = drawn.split_at(k);
    (winner(first), winner(second))
}

/// Most contestants of a tournament that [`tournament_pair`] draws together.
const BATCHED: usize = 8;

/// Visits each index in `0..n` with probability `p`, in order, at a cost proportional to the
/// visits (see `rng::each_success`).
fn each_with_probability(n: usize, p: f64, rng: &mut Rng, mut f: impl FnMut(usize, &mut Rng)) -> usize {
    if p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        for i in 0..n {
            f(i, rng);
        }
        return n;
    }
    crate::rng::each_success(n, p, rng, f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::{prop_assert, prop_assert_eq, proptest};

    fn perm(n: usize, seed: u64) -> Vec<u32> {
        random_permutation(n, &mut Rng::new(seed))
    }

    #[test]
    fn a_permutation_is_told_from_what_is_not() {
        assert!(is_permutation(&[2, 0, 1], 3));
        assert!(is_permutation(&[], 0));
        assert!(!is_permutation(&[0, 1], 3), "too short");
        assert!(!is_permutation(&[0, 1, 1], 3), "a repeat");
        assert!(!is_permutation(&[0, 1, 3], 3), "out of range");
    }

    proptest! {
        #[test]
        fn order_crossover_yields_a_permutation(n in 1usize..60, s1: u64, s2: u64, s3: u64) {
            let (a, b) = (perm(n, s1), perm(n, s2));
            let c = order(&a, &b, &mut Rng::new(s3));
            prop_assert!(is_permutation(&c, c.len()));
        }

        #[test]
        fn mutations_keep_permutations(n in 1usize..60, s1: u64, s2: u64) {
            let mut a = perm(n, s1);
            let mut r = Rng::new(s2);
            swap(&mut a, &mut r);
            inversion(&mut a, &mut r);
            prop_assert!(is_permutation(&a, a.len()));
        }

        #[test]
        fn crossovers_take_each_gene_from_a_parent(n in 0usize..200, s: u64) {
            let a: Vec<i64> = (0..n as i64).collect();
            let b: Vec<i64> = (0..n as i64).map(|x| -x - 1).collect();
            let mut r = Rng::new(s);
            for c in [uniform(&a, &b, &mut r), one_point(&a, &b, &mut r), two_point(&a, &b, &mut r)] {
                prop_assert_eq!(c.len(), n);
                for (i, g) in c.iter().enumerate() {
                    prop_assert!(*g == a[i] || *g == b[i]);
                }
            }
        }

        #[test]
        fn sbx_and_polynomial_mutation_stay_in_bounds(s: u64, eta in 0.0f64..1000.0, n in 0usize..40) {
            let mut r = Rng::new(s);
            let a: Vec<f64> = (0..n).map(|_| r.range_f64(-1.0, 1.0)).collect();
            let b: Vec<f64> = (0..n).map(|_| if r.chance(0.2) { 1.0 } else { r.range_f64(-1.0, 1.0) }).collect();
            let mut c = sbx(&a, &b, eta, -1.0, 1.0, &mut r);
            prop_assert_eq!(c.len(), n);
            prop_assert!(c.iter().all(|x| (-1.0..=1.0).contains(x)), "{:?}", c);
            prop_assert_eq!(&sbx(&a, &a, eta, -1.0, 1.0, &mut r), &a, "twins breed their twin");
            polynomial(&mut c, 0.5, eta, -1.0, 1.0, &mut r);
            prop_assert!(c.iter().all(|x| (-1.0..=1.0).contains(x)), "{:?}", c);
        }

        #[test]
        fn gaussian_respects_bounds(s: u64, sigma in 0.0f64..10.0) {
            let mut g = vec![0.0; 30];
            gaussian(&mut g, 0.5, sigma, -1.0, 1.0, &mut Rng::new(s));
            prop_assert!(g.iter().all(|x| (-1.0..=1.0).contains(x)));
        }
    }

    #[test]
    fn uniform_mixes_about_half() {
        let a = vec![1i64; 10_000];
        let b = vec![0i64; 10_000];
        let c = uniform(&a, &b, &mut Rng::new(9));
        let ones: i64 = c.iter().sum();
        assert!((4_700..5_300).contains(&ones), "{ones}");
    }

    #[test]
    fn tournament_prefers_the_fit() {
        let fitness: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        let mut r = Rng::new(3);
        let mean = (0..10_000).map(|_| tournament(&fitness, 3, &mut r)).sum::<usize>() as f64 / 1e4;
        // The maximum of 3 uniform draws on 0..100 has mean ≈ 74.
        assert!((70.0..78.0).contains(&mean), "{mean}");
        assert_eq!(tournament(&[0.3], 5, &mut r), 0);
    }

    #[test]
    fn tournament_pairs_are_two_tournaments_of_batched_draws() {
        let fitness: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        let mut r = Rng::new(3);
        let (mut sum, mut same) = ([0usize; 2], 0);
        for _ in 0..10_000 {
            let (a, b) = tournament_pair(&fitness, 3, &mut r);
            (sum[0], sum[1], same) = (sum[0] + a, sum[1] + b, same + usize::from(a == b));
        }
        for s in sum {
            // The maximum of 3 uniform draws on 0..100 has mean ≈ 74.
            let mean = s as f64 / 1e4;
            assert!((70.0..78.0).contains(&mean), "{mean}");
        }
        // Independent winners: equal with probability Σ P(i)² ≈ 0.018.
        assert!((100..300).contains(&same), "{same} of 10 000 pairs the same");
        // One contestant each is two uniform draws; among equals the earlier draw wins (the
        // first of each three).
        let flat = [0.5; 7];
        let mut batched = Rng::new(9);
        let (mut two, mut six) = ([0u64; 2], [0u64; 6]);
        for _ in 0..100 {
            let (a, b) = tournament_pair(&flat, 1, &mut batched.clone());
            let (c, d) = tournament_pair(&flat, 3, &mut batched.clone());
            batched.clone().below_each(7, &mut six);
            batched.below_each(7, &mut two);
            assert_eq!((a as u64, b as u64), (two[0], two[1]));
            assert_eq!((c as u64, d as u64), (six[0], six[3]));
        }
        // More contestants than are batched: two plain tournaments, draw for draw.
        let (mut x, mut y) = (Rng::new(4), Rng::new(4));
        let big = tournament_pair(&fitness, BATCHED + 1, &mut x);
        assert_eq!(big, (tournament(&fitness, BATCHED + 1, &mut y), tournament(&fitness, BATCHED + 1, &mut y)));
        assert_eq!(x, y);
    }

    #[test]
    fn sbx_spreads_children_around_the_parents_as_its_distribution_says() {
        // Parents far from the bounds: the spread factor is below 1 (a child between the
        // parents) with probability 1/2, and a gene is crossed with probability 1/2.
        let (a, b) = (vec![-0.1; 20_000], vec![0.1; 20_000]);
        let mut r = Rng::new(4);
        let spread = |eta: f64, r: &mut Rng| {
            let c = sbx(&a, &b, eta, -100.0, 100.0, r);
            let crossed: Vec<f64> = c.iter().copied().filter(|x| x.abs() != 0.1).collect();
            let inside = crossed.iter().filter(|x| x.abs() < 0.1).count() as f64 / crossed.len() as f64;
            let mean_distance = crossed.iter().map(|x| x.abs()).sum::<f64>() / crossed.len() as f64;
            (crossed.len() as f64 / c.len() as f64, inside, mean_distance)
        };
        let (crossed, inside, wide) = spread(2.0, &mut r);
        assert!((0.48..0.52).contains(&crossed), "{crossed}");
        assert!((0.48..0.52).contains(&inside), "{inside}");
        let (_, _, narrow) = spread(50.0, &mut r);
        assert!(narrow < wide && (0.09..0.11).contains(&narrow), "{narrow} {wide}");
    }

    #[test]
    fn whole_powers_are_repeated_squaring() {
        assert_eq!(power(1.7, 0), 1.0);
        assert_eq!(power(2.0, 10), 1024.0);
        assert_eq!(power(0.5, 3), 0.125);
        for n in 1..=64 {
            let (x, p) = (0.93f64, power(0.93, n));
            assert!((p / x.powi(n as i32) - 1.0).abs() < 1e-14, "{n}: {p}");
        }
        // SBX of a whole index and of the next representable one breed alike.
        let (a, b) = (vec![0.3, -1.2, 2.0, 4.9], vec![0.5, 1.0, -3.0, 5.0]);
        let whole = sbx(&a, &b, 1.0, -5.12, 5.12, &mut Rng::new(2));
        let other = sbx(&a, &b, f64::from_bits(1.0f64.to_bits() + 1), -5.12, 5.12, &mut Rng::new(2));
        assert!(whole.iter().zip(&other).all(|(x, y)| (x - y).abs() < 1e-9), "{whole:?} {other:?}");
    }

    #[test]
    fn sbx_without_branches_breeds_what_the_general_form_breeds() {
        // η + 1 a power of two takes the branch-free path, whose reference is the general
        // form (the only one before it): every child bit for bit, parents far apart,
        // close, equal and on the bounds.
        let mut g = Rng::new(11);
        for case in 0..3_000 {
            let (k, n) = (case % 7, case % 33);
            let a: Vec<f64> = (0..n).map(|_| g.range_f64(-5.12, 5.12)).collect();
            let b: Vec<f64> = a
                .iter()
                .map(|&x| match g.index(4) {
                    0 => x,
                    1 => x + (g.next_f64() - 0.5) * 1e-12,
                    2 => {
                        if g.chance(0.5) {
                            5.12
                        } else {
                            -5.12
                        }
                    }
                    _ => g.range_f64(-5.12, 5.12),
                })
                .collect();
            let eta = f64::from((1u32 << k) - 1);
            let ours = sbx(&a, &b, eta, -5.12, 5.12, &mut Rng::new(case as u64));
            let mut theirs = vec![7.0; 3];
            sbx_general(&a, &b, &SbxIndex::new(eta), -5.12, 5.12, &mut Rng::new(case as u64), &mut theirs);
            let same = ours.iter().zip(&theirs).all(|(p, q)| p.to_bits() == q.to_bits());
            assert!(same && ours.len() == n, "case {case}, eta {eta}: {ours:?} != {theirs:?}");
        }
    }

    #[test]
    fn polynomial_steps_have_the_distributions_mean() {
        // Mid-interval, with η large enough that the bounds cut nothing of note (a weight
        // of 2^−(η+1)), the step is δ·(hi − lo) with density (η+1)(1−|δ|)^η / 2 on [−1, 1],
        // whose mean |δ| is 1/(η+2) (Deb & Goyal 1996).
        for eta in [20.0, 50.0, 200.0] {
            let mut g = vec![0.0; 100_000];
            let moved = polynomial(&mut g, 0.3, eta, -1.0, 1.0, &mut Rng::new(8));
            assert!((29_000..31_000).contains(&moved), "{moved}");
            let mean = g.iter().filter(|x| **x != 0.0).map(|x| x.abs()).sum::<f64>() / moved as f64;
            let expected = 2.0 / (eta + 2.0);
            assert!((mean / expected - 1.0).abs() < 0.03, "eta {eta}: mean step {mean}, expected {expected}");
        }
        let mut g = vec![0.5; 10];
        assert_eq!(polynomial(&mut g, 1.0, 20.0, 1.0, 1.0, &mut Rng::new(1)), 0, "an empty interval moves nothing");
    }

    #[test]
    fn random_reset_rate() {
        let mut g = vec![0i64; 1000];
        let n = random_reset(&mut g, 1.0, 5, 5, &mut Rng::new(1));
        assert_eq!(n, 1000);
        assert!(g.iter().all(|&x| x == 5));
    }
}
