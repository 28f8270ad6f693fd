//! The fitness histogram and the per-generation report computed from it.
//!
//! A [`Histogram`] is a monoid: shards build partial ones and [`Histogram::merge`] sums them,
//! so the framework derives the same statistics and cutoff whether the population lives in
//! one process or in many.

/// `x.round() as u32` for `x` in [0, 10⁹] (or NaN, which gives 0), without the library
/// call that `f64::round` is on x86-64's baseline: `x` minus its integer part is exact in
/// floating point below 2⁵², so comparing it with ½ rounds half away from zero as `round`
/// does (a test compares the two around every half).
#[inline]
fn round_half_up(x: f64) -> u32 {
    let whole = x as u32;
    whole + u32::from(x - f64::from(whole) >= 0.5)
}

/// Fitness values binned to `granularity` decimals, with the exact sum and best value.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "wire::HistogramWire"))]
pub struct Histogram {
    granularity: u32,
    /// (bin, count), bins descending; a bin is fitness × 10^granularity, rounded.
    bins: Vec<(u32, u64)>,
    count: u64,
    sum: f64,
    best: f64,
}

impl Histogram {
    /// An empty histogram with `granularity` decimals (at most 9).
    pub fn new(granularity: u32) -> Self {
        Self { granularity: granularity.min(9), bins: Vec::new(), count: 0, sum: 0.0, best: 0.0 }
    }

    /// The histogram of some fitness values, each in `[0, 1]`.
    pub fn of(granularity: u32, fitness: impl IntoIterator<Item = f64>) -> Self {
        let mut h = Self::new(granularity);
        let (mut sum, mut best) = (0.0, 0.0f64);
        let mut raw: Vec<u32> = fitness
            .into_iter()
            .map(|f| {
                sum += f;
                best = best.max(f);
                h.bin(f)
            })
            .collect();
        (h.sum, h.best) = (sum, best);
        h.count = raw.len() as u64;
        let (Some(&lo), Some(&hi)) = (raw.iter().min(), raw.iter().max()) else { return h };
        let span = (hi - lo) as usize + 1;
        if span <= 4 * raw.len() {
            // Bins close together (a population's usual spread): counted in place of a sort.
            let mut counts = vec![0u64; span];
            for &b in &raw {
                counts[(b - lo) as usize] += 1;
            }
            h.bins.reserve_exact(counts.iter().filter(|&&n| n > 0).count());
            h.bins.extend((lo..=hi).rev().zip(counts.into_iter().rev()).filter(|&(_, n)| n > 0));
        } else {
            raw.sort_unstable();
            // One allocation for the bins, however many there are.
            h.bins.reserve_exact(1 + raw.windows(2).filter(|w| w[0] != w[1]).count());
            for b in raw.into_iter().rev() {
                match h.bins.last_mut() {
                    Some((last, n)) if *last == b => *n += 1,
                    _ => h.bins.push((b, 1)),
                }
            }
        }
        h
    }

    /// The bin a fitness falls in: rounded to the histogram's decimals.
    #[inline]
    pub fn bin(&self, fitness: f64) -> u32 {
        round_half_up(fitness.clamp(0.0, 1.0) * self.scale())
    }

    /// The fitness a bin stands for.
    #[inline]
    pub fn value(&self, bin: u32) -> f64 {
        f64::from(bin) / self.scale()
    }

    #[inline]
    fn scale(&self) -> f64 {
        // Exact powers of ten (granularity is at most 9), without a call per bin.
        const POW10: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
        POW10[self.granularity.min(9) as usize]
    }

    /// Adds another shard's histogram to this one (same granularity).
    pub fn merge(&mut self, other: &Histogram) {
        debug_assert_eq!(self.granularity, other.granularity);
        let mut merged = Vec::with_capacity(self.bins.len() + other.bins.len());
        let (mut i, mut j) = (0, 0);
        while i < self.bins.len() || j < other.bins.len() {
            let next = match (self.bins.get(i), other.bins.get(j)) {
                (Some(&a), Some(&b)) if a.0 == b.0 => {
                    i += 1;
                    j += 1;
                    (a.0, a.1 + b.1)
                }
                (Some(&a), Some(&b)) if a.0 > b.0 => {
                    i += 1;
                    a
                }
                (Some(_), Some(&b)) | (None, Some(&b)) => {
                    j += 1;
                    b
                }
                (Some(&a), None) => {
                    i += 1;
                    a
                }
                (None, None) => unreachable!("loop condition"),
            };
            merged.push(next);
        }
        self.bins = merged;
        self.count += other.count;
        self.sum += other.sum;
        self.best = self.best.max(other.best);
    }

    /// The bins, highest first, as (bin, count).
    pub fn bins(&self) -> &[(u32, u64)] {
        &self.bins
    }

    /// Individuals counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The original's fitness cutoff: walk the bins from the highest down, accumulating
    /// counts; once the share reaches `selection_rate`, the cutoff is the *next* bin visited
    /// (or the lowest bin if none is left), exactly as the original coded it. `None` when
    /// empty.
    pub fn cutoff_bin(&self, selection_rate: f64) -> Option<u32> {
        let mut acc = 0u64;
        let mut break_next = false;
        let mut last = None;
        for &(bin, n) in &self.bins {
            if break_next {
                return Some(bin);
            }
            last = Some(bin);
            acc += n;
            break_next = acc as f64 / self.count as f64 >= selection_rate;
        }
        last
    }

    /// Mean squared error of the binned fitness against 1.0 (the original's convergence
    /// measure). 0 when empty.
    pub fn mse(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let sq: f64 = self.bins.iter().map(|&(b, n)| (1.0 - self.value(b)).powi(2) * n as f64).sum();
        sq / self.count as f64
    }

    /// The highest bin's fitness (0 when empty).
    pub fn max(&self) -> f64 {
        self.bins.first().map_or(0.0, |&(b, _)| self.value(b))
    }

    /// The median of the binned fitness values (mean of the middle two for an even count).
    pub fn median(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        // Positions counted from the top (bins are descending).
        let hi = (self.count - 1) / 2;
        let lo = self.count / 2;
        (self.nth_from_top(hi) + self.nth_from_top(lo)) / 2.0
    }

    fn nth_from_top(&self, k: u64) -> f64 {
        let mut acc = 0;
        for &(b, n) in &self.bins {
            acc += n;
            if k < acc {
                return self.value(b);
            }
        }
        0.0
    }

    /// The true mean of the exact fitness values. The original printed the sum of the
    /// *distinct bin values* over the count, which is not a mean; this is.
    pub fn mean(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum / self.count as f64 }
    }

    /// The best exact fitness.
    pub fn best(&self) -> f64 {
        self.best
    }
}

/// What one generation looked like: the original's report line and a little more.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationStats {
    /// Generation number, from 0.
    pub generation: u32,
    /// Individuals in the population.
    pub size: u64,
    /// Individuals admitted (and evaluated) in the run so far.
    pub total_indiv: u64,
    /// Fitness MSE against 1.0, over the histogram.
    pub mse: f64,
    /// Highest binned fitness.
    pub max: f64,
    /// Median binned fitness.
    pub median: f64,
    /// Mean exact fitness.
    pub mean: f64,
    /// Best exact fitness.
    pub best: f64,
    /// The fitness cutoff for the next generation (binned).
    pub cutoff: f64,
    /// Candidates refused so far because their key had been seen (cache hits).
    pub duplicates: u64,
}

impl GenerationStats {
    /// The statistics of a (merged) histogram.
    pub fn from_histogram(
        generation: u32,
        hist: &Histogram,
        total_indiv: u64,
        duplicates: u64,
        selection_rate: f64,
    ) -> Self {
        Self {
            generation,
            size: hist.count(),
            total_indiv,
            mse: hist.mse(),
            max: hist.max(),
            median: hist.median(),
            mean: hist.mean(),
            best: hist.best(),
            cutoff: hist.cutoff_bin(selection_rate).map_or(0.0, |b| hist.value(b)),
            duplicates,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bins_round_as_the_library_does() {
        let mut rng = crate::Rng::new(11);
        for scale in [1.0, 10.0, 1e3, 1e6, 1e9] {
            for k in 0..2_000u32 {
                // Every half, and the doubles next to it on both sides (positive: a step of
                // the bits is a step of the value).
                let half = f64::from(k) + 0.5;
                let (below, above) = (f64::from_bits(half.to_bits() - 1), f64::from_bits(half.to_bits() + 1));
                for x in [half, below, above, f64::from(k)] {
                    assert_eq!(round_half_up(x), x.round() as u32, "{x:e}");
                }
            }
            for _ in 0..10_000 {
                let x = rng.next_f64() * scale;
                assert_eq!(round_half_up(x), x.round() as u32, "{x:e}");
            }
            assert_eq!(round_half_up(scale), scale as u32);
        }
        assert_eq!(round_half_up(f64::from_bits(0.5f64.to_bits() - 1)), 0);
        assert_eq!(round_half_up(f64::NAN), 0);
        assert_eq!(Histogram::new(3).bin(f64::NAN), 0);
        assert_eq!(Histogram::new(9).bin(1.0), 1_000_000_000);
    }

    #[test]
    fn bins_statistics_and_cutoff() {
        let h = Histogram::of(3, [1.0, 0.9957, 0.9957, 0.5, 0.25]);
        assert_eq!(h.bins(), &[(1000, 1), (996, 2), (500, 1), (250, 1)]);
        assert_eq!(h.max(), 1.0);
        assert_eq!(h.median(), 0.996);
        assert!((h.mean() - (1.0 + 0.9957 * 2.0 + 0.75) / 5.0).abs() < 1e-12);
        let mse = (0.0 + 2.0 * 0.004f64.powi(2) + 0.25 + 0.5625) / 5.0;
        assert!((h.mse() - mse).abs() < 1e-12);
        // 1/5 = 0.2 reaches the rate at the first bin; the cutoff is the next one visited.
        assert_eq!(h.cutoff_bin(0.2), Some(996));
        // 3/5 at the second bin: cutoff is the third.
        assert_eq!(h.cutoff_bin(0.5), Some(500));
        // Never reached before the last bin: the last bin.
        assert_eq!(h.cutoff_bin(1.0), Some(250));
        assert_eq!(Histogram::new(3).cutoff_bin(0.2), None);
    }

    #[test]
    fn median_of_even_counts_averages_the_middle() {
        let h = Histogram::of(1, [0.1, 0.2, 0.3, 0.4]);
        assert!((h.median() - 0.25).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn bins_are_every_distinct_bin_counted_highest_first(
            granularity in 0u32..=9,
            base in 0.0f64..=1.0,
            spread in prop_oneof![Just(0.0), Just(1e-6), Just(1e-3), Just(0.05), Just(1.0)],
            offsets in proptest::collection::vec(0.0f64..=1.0, 0..120),
        ) {
            // Narrow spreads take the counting path, wide ones the sort.
            let fitness: Vec<f64> = offsets.iter().map(|o| (base + spread * (o - 0.5)).clamp(0.0, 1.0)).collect();
            let h = Histogram::of(granularity, fitness.iter().copied());
            let mut expected = std::collections::BTreeMap::new();
            for &f in &fitness {
                *expected.entry(h.bin(f)).or_insert(0u64) += 1;
            }
            let expected: Vec<(u32, u64)> = expected.into_iter().rev().collect();
            prop_assert_eq!(h.bins(), &expected[..]);
            prop_assert_eq!(h.count(), fitness.len() as u64);
        }

        #[test]
        fn merge_equals_building_at_once(a in proptest::collection::vec(0.0f64..=1.0, 0..50),
                                         b in proptest::collection::vec(0.0f64..=1.0, 0..50)) {
            let mut m = Histogram::of(2, a.iter().copied());
            m.merge(&Histogram::of(2, b.iter().copied()));
            let all = Histogram::of(2, a.iter().chain(&b).copied());
            prop_assert_eq!(m.bins(), all.bins());
            prop_assert_eq!(m.count(), all.count());
            prop_assert_eq!(m.cutoff_bin(0.2), all.cutoff_bin(0.2));
            prop_assert!((m.mean() - all.mean()).abs() < 1e-9);
        }
    }
}

#[cfg(feature = "serde")]
mod wire {
    //! A histogram as it arrives from a peer, checked before it is believed.

    use super::Histogram;

    #[derive(serde::Deserialize)]
    pub(super) struct HistogramWire {
        granularity: u32,
        bins: Vec<(u32, u64)>,
        count: u64,
        sum: f64,
        best: f64,
    }

    impl TryFrom<HistogramWire> for Histogram {
        type Error = String;
        fn try_from(w: HistogramWire) -> Result<Self, String> {
            if w.granularity > 9 {
                return Err(format!("histogram granularity {} is above 9", w.granularity));
            }
            let top = 10u32.pow(w.granularity);
            if w.bins.iter().any(|&(b, n)| b > top || n == 0) || w.bins.windows(2).any(|p| p[0].0 <= p[1].0) {
                return Err("histogram bins must be distinct, descending, within [0, 1] and non-empty".into());
            }
            let total = w.bins.iter().try_fold(0u64, |acc, &(_, n)| acc.checked_add(n));
            if total != Some(w.count) {
                return Err(format!("histogram bins add up to {total:?}, not the count {}", w.count));
            }
            if !(w.sum.is_finite() && w.sum >= 0.0 && w.sum <= w.count as f64 && (0.0..=1.0).contains(&w.best)) {
                return Err("histogram sum or best fitness out of range".into());
            }
            Ok(Histogram { granularity: w.granularity, bins: w.bins, count: w.count, sum: w.sum, best: w.best })
        }
    }
}
