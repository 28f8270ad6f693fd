//! `hashring`: a consistent hash ring that decides which shard owns a key.
//!
//! Nodes and keys are explicit bytes hashed with XXH3-64 (a specified algorithm), so a key
//! lands on the same node on every machine and build. Each node stands at `vnodes` points
//! on the ring (`node bytes ‖ point index`, hashed), and a key belongs to the first point
//! at or after its hash, wrapping around. Adding or removing one of N nodes moves about
//! 1/N of the keys, and only to or from that node; [`Ring::moved`] lists the hash ranges
//! that change owner between two rings, which is what a leaving worker must hand over.
//!
//! The original Exelixi used MD5 with 3 points per node; 3 points leave shares uneven by
//! a factor of two or more, so the default here is [`DEFAULT_VNODES`].
//!
//! **Boundary:** pure data structure; no I/O, no async, no knowledge of genomes or workers.

use std::fmt;

use xxhash_rust::xxh3::xxh3_64;

/// Points per node unless told otherwise: shares within about ±10% of even.
pub const DEFAULT_VNODES: u32 = 160;

/// Where a key falls on the ring: XXH3-64 of its bytes.
#[inline]
pub fn key_point(key: &[u8]) -> u64 {
    xxh3_64(key)
}

fn node_point(node: &[u8], index: u32) -> u64 {
    let mut buf = Vec::with_capacity(node.len() + 4);
    buf.extend_from_slice(node);
    buf.extend_from_slice(&index.to_le_bytes());
    xxh3_64(&buf)
}

/// The hashes `h` with `start < h <= end` on the circle of `u64`s; when `start >= end` the
/// range wraps through `u64::MAX` to 0 (and `start == end` is the whole circle).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashRange {
    /// Exclusive lower end.
    pub start: u64,
    /// Inclusive upper end.
    pub end: u64,
}

impl HashRange {
    /// Whether the range holds `h`.
    pub fn contains(&self, h: u64) -> bool {
        if self.start < self.end { self.start < h && h <= self.end } else { h > self.start || h <= self.end }
    }
}

/// A range of hashes whose owner differs between two rings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move<N> {
    /// The hashes concerned.
    pub range: HashRange,
    /// Owner in the old ring.
    pub from: N,
    /// Owner in the new ring.
    pub to: N,
}

/// A consistent hash ring over nodes named by bytes (`String`, `Vec<u8>`, …).
#[derive(Clone)]
pub struct Ring<N> {
    vnodes: u32,
    nodes: Vec<N>,
    /// (point, index into `nodes`), sorted by point then node bytes, so that the rare
    /// collision of two points resolves the same way whatever the insertion order.
    points: Vec<(u64, usize)>,
}

impl<N: AsRef<[u8]> + Clone + Eq> Ring<N> {
    /// An empty ring with `vnodes` points per node (at least 1).
    pub fn new(vnodes: u32) -> Self {
        Self { vnodes: vnodes.max(1), nodes: Vec::new(), points: Vec::new() }
    }

    /// A ring over `nodes` with [`DEFAULT_VNODES`] points each.
    pub fn with_nodes(nodes: impl IntoIterator<Item = N>) -> Self {
        let mut ring = Self::new(DEFAULT_VNODES);
        for n in nodes {
            ring.add(n);
        }
        ring
    }

    /// Adds a node; `false` if it was already there.
    pub fn add(&mut self, node: N) -> bool {
        if self.nodes.contains(&node) {
            return false;
        }
        self.nodes.push(node);
        self.rebuild();
        true
    }

    /// Removes a node; `false` if it was not there.
    pub fn remove(&mut self, node: &N) -> bool {
        let Some(i) = self.nodes.iter().position(|n| n == node) else { return false };
        self.nodes.remove(i);
        self.rebuild();
        true
    }

    fn rebuild(&mut self) {
        self.points = self
            .nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| (0..self.vnodes).map(move |v| (node_point(n.as_ref(), v), i)))
            .collect();
        let nodes = &self.nodes;
        self.points.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| nodes[a.1].as_ref().cmp(nodes[b.1].as_ref())));
    }

    /// The nodes, in insertion order.
    pub fn nodes(&self) -> &[N] {
        &self.nodes
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the ring has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node that owns `key`, `None` on an empty ring.
    pub fn owner(&self, key: &[u8]) -> Option<&N> {
        self.owner_of_point(key_point(key))
    }

    /// The node that owns hash `h`.
    pub fn owner_of_point(&self, h: u64) -> Option<&N> {
        if self.points.is_empty() {
            return None;
        }
        let i = self.points.partition_point(|&(p, _)| p < h);
        let (_, node) = self.points[if i == self.points.len() { 0 } else { i }];
        Some(&self.nodes[node])
    }

    /// The hash ranges whose owner differs from `self` (old) to `new`, adjacent ranges with
    /// the same pair of owners merged. A key moved iff its [`key_point`] lies in one of them.
    pub fn moved(&self, new: &Ring<N>) -> Vec<Move<N>> {
        if self.is_empty() || new.is_empty() {
            return Vec::new();
        }
        // Every boundary of either ring splits the circle into segments (prev, b] within
        // which both owners are constant: the owner of b itself in each ring.
        let mut bounds: Vec<u64> = self.points.iter().chain(&new.points).map(|&(p, _)| p).collect();
        bounds.sort_unstable();
        bounds.dedup();
        let mut moves: Vec<Move<N>> = Vec::new();
        for (i, &b) in bounds.iter().enumerate() {
            let prev = if i == 0 { bounds[bounds.len() - 1] } else { bounds[i - 1] };
            let (from, to) = match (self.owner_of_point(b), new.owner_of_point(b)) {
                (Some(f), Some(t)) if f != t => (f, t),
                _ => continue,
            };
            match moves.last_mut() {
                Some(m) if m.range.end == prev && &m.from == from && &m.to == to => m.range.end = b,
                _ => moves.push(Move { range: HashRange { start: prev, end: b }, from: from.clone(), to: to.clone() }),
            }
        }
        // The first and last moves may be one range cut at the wrap-around.
        if moves.len() > 1 {
            let (first, last) = (&moves[0], &moves[moves.len() - 1]);
            if last.range.end == first.range.start && last.from == first.from && last.to == first.to {
                let start = last.range.start;
                moves.pop();
                moves[0].range.start = start;
            }
        }
        moves
    }
}

impl<N: fmt::Debug> fmt::Debug for Ring<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring").field("vnodes", &self.vnodes).field("nodes", &self.nodes).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shards(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("shard/{i}")).collect()
    }

    fn keys(n: u64) -> Vec<[u8; 8]> {
        (0..n).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes()).collect()
    }

    #[test]
    fn placement_is_fixed_by_the_bytes() {
        // Pinned so that a change of hash function or point layout cannot pass unnoticed:
        // placement must agree between machines and releases.
        assert_eq!(key_point(b""), 0x2d06_8005_38d3_94c2);
        let ring = Ring::with_nodes(shards(3));
        let owners: Vec<&String> = keys(6).iter().map(|k| ring.owner(k).unwrap()).collect();
        let again = Ring::with_nodes(shards(3).into_iter().rev());
        let owners_again: Vec<&String> = keys(6).iter().map(|k| again.owner(k).unwrap()).collect();
        assert_eq!(owners, owners_again, "insertion order must not matter");
    }

    #[test]
    fn shares_are_near_even() {
        let ring = Ring::with_nodes(shards(4));
        let mut counts = [0usize; 4];
        for k in keys(40_000) {
            let owner = ring.owner(&k).unwrap();
            counts[shards(4).iter().position(|s| s == owner).unwrap()] += 1;
        }
        for c in counts {
            assert!((8_000..12_000).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn empty_ring_and_single_node() {
        let mut ring: Ring<String> = Ring::new(8);
        assert_eq!(ring.owner(b"k"), None);
        assert!(ring.add("a".into()));
        assert!(!ring.add("a".into()));
        assert_eq!(ring.owner(b"k").map(String::as_str), Some("a"));
        assert!(ring.remove(&"a".to_string()));
        assert!(!ring.remove(&"a".to_string()));
        assert!(ring.is_empty());
    }

    #[test]
    fn hash_range_wraps() {
        let r = HashRange { start: u64::MAX - 1, end: 2 };
        assert!(r.contains(u64::MAX) && r.contains(0) && r.contains(2));
        assert!(!r.contains(3) && !r.contains(u64::MAX - 1));
        assert!(HashRange { start: 5, end: 5 }.contains(1));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn adding_one_of_n_moves_about_one_nth_and_only_to_it(n in 1usize..12) {
            let old = Ring::with_nodes(shards(n));
            let mut new = old.clone();
            let added = format!("shard/{n}");
            new.add(added.clone());
            let ks = keys(20_000);
            let mut moved = 0;
            for k in &ks {
                let (a, b) = (old.owner(k).unwrap(), new.owner(k).unwrap());
                if a != b {
                    moved += 1;
                    prop_assert_eq!(b, &added);
                }
            }
            let share = moved as f64 / ks.len() as f64;
            let expected = 1.0 / (n + 1) as f64;
            prop_assert!(share > 0.6 * expected && share < 1.4 * expected, "{} vs {}", share, expected);
        }

        #[test]
        fn removing_a_node_moves_only_its_keys(n in 2usize..12, victim in 0usize..12) {
            let victim = format!("shard/{}", victim % n);
            let old = Ring::with_nodes(shards(n));
            let mut new = old.clone();
            new.remove(&victim);
            for k in keys(5_000) {
                let (a, b) = (old.owner(&k).unwrap(), new.owner(&k).unwrap());
                prop_assert!(a == b || a == &victim);
            }
        }

        #[test]
        fn moved_ranges_are_exactly_the_keys_that_move(n in 1usize..8, add in any::<bool>(), vnodes in 1u32..40) {
            let mut old = Ring::new(vnodes);
            for s in shards(n + 1) {
                old.add(s);
            }
            let mut new = old.clone();
            if add { new.add("shard/new".to_string()); } else { new.remove(&"shard/0".to_string()); }
            let moves = old.moved(&new);
            for k in keys(3_000) {
                let h = key_point(&k);
                let (a, b) = (old.owner(&k).unwrap(), new.owner(&k).unwrap());
                let hits: Vec<&Move<String>> = moves.iter().filter(|m| m.range.contains(h)).collect();
                if a == b {
                    prop_assert!(hits.is_empty());
                } else {
                    prop_assert_eq!(hits.len(), 1);
                    prop_assert_eq!(&hits[0].from, a);
                    prop_assert_eq!(&hits[0].to, b);
                }
            }
        }
    }
}
