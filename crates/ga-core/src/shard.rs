//! One shard of a population: the unit a worker holds.
//!
//! A run splits `n_pop` individuals over `count` shards (shard `i` holds about
//! `n_pop / count`). Every step a shard emits [`Candidate`]s — fresh genomes, mutants,
//! children — and each goes to the shard that owns its key (the caller routes: a hash
//! ring between processes, the shard itself in a one-shard run). The owner queues them
//! ([`Shard::receive`]), then, once every shard has finished sending (the barrier),
//! [`Shard::admit`] drops keys it has seen before and evaluates the rest. Nothing here
//! depends on the order in which batches arrive: the queue is sorted by origin first.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::individual::{Individual, best_indices, check_fitness, key_of};
use crate::key::{Key, KeySet};
use crate::ops;
use crate::parallel::Cost;
use crate::params::{Params, Selection};
use crate::problem::Problem;
use crate::rng::Rng;
use crate::stats::Histogram;

// Stream purposes: each draws from its own family of generators.
const STREAM_INIT: u64 = 1;
const STREAM_INIT_RETRY: u64 = 2;
const STREAM_CUTOFF: u64 = 3;
const STREAM_CHILD: u64 = 4;
const STREAM_CHILD_RETRY: u64 = 5;

/// Elites up to this many leave the members one by one at a step (each a move of the
/// members after it), more through a pass over all of them.
const FEW_ELITES: usize = 4;

/// Attempts to breed a genome this shard has not emitted before, per slot.
const RETRIES: u32 = 8;

/// Where a candidate was made: the shard and its sequence number in that shard's step.
/// Owners admit their queue in this order, so arrival order never matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Origin {
    /// The emitting shard.
    pub shard: u32,
    /// Position in that shard's emission for the step.
    pub seq: u32,
}

/// A genome on its way to the shard that owns its key.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Candidate<G> {
    /// The genome.
    pub genome: G,
    /// Its key (the owner recomputes nothing; a worker receiving it over the network checks
    /// it with [`key_of`]).
    pub key: Key,
    /// The generation whose selection produced it.
    pub born: u32,
    /// Where it was made.
    pub origin: Origin,
    /// Its fitness, when the shard that bred it evaluated it (tournament and (μ+λ)
    /// children: each shard evaluates exactly what it breeds, whatever the ring routes
    /// where); else the owner evaluates it at admission. Fitness is a function of the
    /// genome, so where it is computed changes nothing else.
    pub fitness: Option<f64>,
}

/// Everything a shard carries from one complete generation to the next: what a checkpoint
/// holds for it. A shard restored from it ([`Shard::restore`]) continues bit for bit as the
/// shard it was taken from (the random streams are derived from seed, generation and
/// index, never carried).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ShardState<G> {
    /// The shard's index.
    pub index: u32,
    /// The run's shard count.
    pub count: u32,
    /// The members, in order (order matters: ties and pairings follow it).
    pub members: Vec<Individual<G>>,
    /// Keys this shard owns that were ever admitted, in the order it learnt them.
    #[cfg_attr(feature = "serde", serde(with = "crate::packed_keys"))]
    pub seen: Vec<Key>,
    /// Keys this shard ever emitted, in the order it emitted them.
    #[cfg_attr(feature = "serde", serde(with = "crate::packed_keys"))]
    pub emitted: Vec<Key>,
    /// Individuals admitted by this shard in the run.
    pub admitted: u64,
    /// Candidates this shard did not evaluate as duplicates.
    pub duplicates: u64,
}

/// What changed in a shard since an earlier [`ShardState`] of it: the members (whole:
/// they change every generation), the keys learnt since (the key lists only grow), and
/// the counters. [`ShardState::apply`] brings the earlier state up to date; this is what
/// a checkpoint every generation sends instead of the whole, ever-growing state.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ShardDelta<M> {
    /// The members now (`Vec<Individual<G>>`, or whatever stands for them: see
    /// [`Shard::delta_with`]).
    pub members: M,
    /// How many seen keys the earlier state had.
    pub seen_from: u64,
    /// Seen keys learnt since.
    #[cfg_attr(feature = "serde", serde(with = "crate::packed_keys"))]
    pub seen: Vec<Key>,
    /// How many emitted keys the earlier state had.
    pub emitted_from: u64,
    /// Keys emitted since.
    #[cfg_attr(feature = "serde", serde(with = "crate::packed_keys"))]
    pub emitted: Vec<Key>,
    /// Individuals admitted in the run.
    pub admitted: u64,
    /// Duplicates in the run.
    pub duplicates: u64,
}

impl<G> ShardState<G> {
    /// Brings this state up to date with `delta`, taken of the same shard from this
    /// state's key counts; refused (and nothing changed) when it does not follow on.
    pub fn apply(&mut self, delta: ShardDelta<Vec<Individual<G>>>) -> Result<()> {
        let (seen, emitted) = (self.seen.len() as u64, self.emitted.len() as u64);
        if (delta.seen_from, delta.emitted_from) != (seen, emitted) {
            return Err(Error::InvalidState(format!(
                "a delta from {} seen and {} emitted keys for a state with {seen} and {emitted}",
                delta.seen_from, delta.emitted_from
            )));
        }
        self.members = delta.members;
        self.seen.extend(delta.seen);
        self.emitted.extend(delta.emitted);
        self.admitted = delta.admitted;
        self.duplicates = delta.duplicates;
        Ok(())
    }
}

/// A key set that remembers the order keys came in (what a state or delta lists).
#[derive(Default)]
struct Journal {
    set: KeySet,
    order: Vec<Key>,
}

impl Journal {
    fn with_capacity(n: usize) -> Self {
        Self { set: KeySet::with_capacity(n), order: Vec::with_capacity(n) }
    }

    /// Adds `key`; `false` if it was there.
    #[inline]
    fn insert(&mut self, key: Key) -> bool {
        let new = self.set.insert(key);
        if new {
            self.order.push(key);
        }
        new
    }

    /// Forgets every key after the first `len`.
    fn truncate(&mut self, len: usize) {
        for key in self.order.drain(len.min(self.order.len())..) {
            self.set.remove(key);
        }
    }

    fn from_order(order: Vec<Key>) -> Self {
        let set = order.iter().copied().collect();
        Self { set, order }
    }
}

/// One shard: its members, the keys it owns that were ever admitted, and its task queue.
pub struct Shard<P: Problem> {
    problem: P,
    params: Params,
    seed: u64,
    index: u32,
    count: u32,
    quota: usize,
    pool: Option<Arc<rayon::ThreadPool>>,
    members: Vec<Individual<P::Genome>>,
    /// Old members that may pad the shard back to its quota after admission (tournament).
    reserve: Vec<Individual<P::Genome>>,
    /// Whether the last step was a (μ+λ) one: admission then keeps the best of the
    /// children and the whole reserve, up to the quota.
    plus_step: bool,
    /// Whether the last step was an island's generations alone: admission (of immigrants)
    /// then keeps the best of members and immigrants, up to the quota.
    island_step: bool,
    /// Slots of the last tournament step that got no candidate (breeding found nothing
    /// new): padded from the reserve at admission, with the candidates refused there.
    shortfall: usize,
    inbox: Vec<Candidate<P::Genome>>,
    /// Genomes of members dropped at admission, whose storage the next step's children
    /// reuse ([`Problem::breed_into`]); at most a quota's worth.
    spare: Vec<P::Genome>,
    /// Keys this shard owns that were ever admitted: the run-wide at-most-once rule.
    seen: Journal,
    /// Keys this shard ever emitted, wherever they went: it breeds again rather than send
    /// a genome it already sent (in a one-shard run this makes refusals impossible).
    emitted: Journal,
    admitted: u64,
    duplicates: u64,
    breed_cost: Cost,
    eval_cost: Cost,
}

impl<P: Problem> Shard<P> {
    /// Shard `index` of `count` for a run of `params` (validated here) and `seed`, evaluating
    /// on `pool` when given.
    pub fn new(
        problem: P,
        params: Params,
        seed: u64,
        index: u32,
        count: u32,
        pool: Option<Arc<rayon::ThreadPool>>,
    ) -> Result<Self> {
        params.validate()?;
        params.check_shards(count)?;
        if index >= count {
            return Err(Error::InvalidParam {
                name: "shard",
                value: format!("{index} of {count}"),
                expected: "an index below the shard count",
            });
        }
        let (base, extra) = (params.n_pop / count as usize, params.n_pop % count as usize);
        let quota = base + usize::from((index as usize) < extra);
        let expected = (quota as u64).saturating_mul(u64::from(params.n_gen).saturating_add(1));
        let expected = expected.min(params.max_indiv).min(1 << 20) as usize;
        Ok(Self {
            problem,
            params,
            seed,
            index,
            count,
            quota,
            pool,
            members: Vec::new(),
            reserve: Vec::new(),
            shortfall: 0,
            plus_step: false,
            island_step: false,
            inbox: Vec::new(),
            spare: Vec::new(),
            seen: Journal::with_capacity(if count > 1 { expected } else { 0 }),
            emitted: Journal::with_capacity(expected),
            admitted: 0,
            duplicates: 0,
            breed_cost: Cost::default(),
            eval_cost: Cost::default(),
        })
    }

    /// This shard's index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The number of individuals this shard aims to hold.
    pub fn quota(&self) -> usize {
        self.quota
    }

    /// The problem.
    pub fn problem(&self) -> &P {
        &self.problem
    }

    /// The run's parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The current members.
    pub fn members(&self) -> &[Individual<P::Genome>] {
        &self.members
    }

    /// Individuals this shard admitted (and evaluated) in the run.
    pub fn admitted(&self) -> u64 {
        self.admitted
    }

    /// Candidates this shard did not evaluate because their key had been seen: bred again
    /// because it had emitted them before, or refused as owner.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Candidates queued, waiting for [`Shard::admit`].
    pub fn queued(&self) -> usize {
        self.inbox.len()
    }

    /// The partial histogram of this shard's members.
    pub fn histogram(&self) -> Histogram {
        Histogram::of(self.params.hist_granularity, self.members.iter().map(|m| m.fitness))
    }

    /// Members whose binned fitness is at or above `cutoff_bin` (the final report's part).
    pub fn enumerate(&self, cutoff_bin: u32) -> Vec<Individual<P::Genome>> {
        let hist = Histogram::new(self.params.hist_granularity);
        self.members.iter().filter(|m| hist.bin(m.fitness) >= cutoff_bin).cloned().collect()
    }

    /// The shard's state between generations (after [`Shard::admit`], before the next
    /// [`Shard::next`]): what to keep to continue the run from here later.
    pub fn state(&self) -> ShardState<P::Genome> {
        ShardState {
            index: self.index,
            count: self.count,
            members: self.members.clone(),
            seen: self.seen.order.clone(),
            emitted: self.emitted.order.clone(),
            admitted: self.admitted,
            duplicates: self.duplicates,
        }
    }

    /// What changed since a state of this shard with `seen_from` seen and `emitted_from`
    /// emitted keys (the counts of that state's lists): see [`ShardDelta`]. Asked with
    /// counts beyond the shard's own, it gives every key (and [`ShardState::apply`] will
    /// refuse it).
    pub fn delta(&self, seen_from: u64, emitted_from: u64) -> ShardDelta<Vec<Individual<P::Genome>>> {
        self.delta_with(seen_from, emitted_from, self.members.clone())
    }

    /// [`Shard::delta`] with `members` in place of the shard's own (e.g. `()` for a
    /// caller that sends [`Shard::members`] its own way, without copying them).
    pub fn delta_with<M>(&self, seen_from: u64, emitted_from: u64, members: M) -> ShardDelta<M> {
        let tail = |order: &[Key], from: u64| order.get(from as usize..).unwrap_or(order).to_vec();
        let seen_from = seen_from.min(self.seen.order.len() as u64);
        let emitted_from = emitted_from.min(self.emitted.order.len() as u64);
        ShardDelta {
            members,
            seen_from,
            seen: tail(&self.seen.order, seen_from),
            emitted_from,
            emitted: tail(&self.emitted.order, emitted_from),
            admitted: self.admitted,
            duplicates: self.duplicates,
        }
    }

    /// Puts the shard back in `state` (taken by [`Shard::state`] of the same shard of a run
    /// with the same problem, parameters and seed); anything queued is dropped. Refuses a
    /// state of another shard index or count, a member the problem's
    /// [`check`](Problem::check) rejects, a key that is not its genome's digest, or a
    /// fitness outside [0, 1].
    pub fn restore(&mut self, state: ShardState<P::Genome>) -> Result<()> {
        if (state.index, state.count) != (self.index, self.count) {
            return Err(Error::InvalidState(format!(
                "it is shard {} of {}, this is shard {} of {}",
                state.index, state.count, self.index, self.count
            )));
        }
        for m in &state.members {
            self.problem
                .check(&m.genome)
                .map_err(|why| Error::InvalidState(format!("a member the problem refuses: {why}")))?;
            if key_of(&m.genome) != m.key {
                return Err(Error::InvalidState(format!("member key {} is not its genome's digest", m.key)));
            }
            check_fitness(m.fitness, &m.genome)?;
        }
        self.members = state.members;
        self.seen = Journal::from_order(state.seen);
        self.emitted = Journal::from_order(state.emitted);
        self.admitted = state.admitted;
        self.duplicates = state.duplicates;
        self.reserve.clear();
        self.shortfall = 0;
        (self.plus_step, self.island_step) = (false, false);
        self.inbox.clear();
        Ok(())
    }

    /// Queues candidates that this shard owns (the task queue).
    pub fn receive(&mut self, batch: impl IntoIterator<Item = Candidate<P::Genome>>) {
        self.inbox.extend(batch);
    }

    /// The original's `pop/init`: this shard's quota of fresh genomes, to be routed.
    pub fn init(&mut self) -> Vec<Candidate<P::Genome>> {
        let (seed, index, problem) = (self.seed, self.index, &self.problem);
        let streams = Rng::family(seed, &[STREAM_INIT, u64::from(index)]);
        let fresh = self.breed_cost.map(self.pool.as_deref(), self.quota, |i| {
            let g = problem.random_genome(&mut streams.stream(i as u64));
            let k = key_of(&g);
            (g, k)
        });
        let mut out = Emission::new(index, 0, &mut self.emitted, self.quota);
        for (i, (genome, key)) in fresh.into_iter().enumerate() {
            if out.push(genome, key) {
                continue;
            }
            let mut rng = Rng::stream(seed, &[STREAM_INIT_RETRY, u64::from(index), i as u64]);
            for _ in 0..RETRIES {
                let g = problem.random_genome(&mut rng);
                let k = key_of(&g);
                if out.push(g, k) {
                    break;
                }
            }
        }
        self.duplicates += out.refused;
        out.candidates
    }

    /// One generation's selection and variation: keeps some members, and returns the
    /// candidates (mutants, children, fresh genomes) to route to their owners.
    pub fn next(&mut self, generation: u32, cutoff_bin: u32) -> Vec<Candidate<P::Genome>> {
        match self.tournament() {
            None => self.next_by_cutoff(generation, cutoff_bin),
            Some(tournament) => {
                let (bred, mut candidates) = self.breed_by_tournament(generation, tournament);
                self.evaluate(&mut candidates);
                self.take_up(bred);
                candidates
            }
        }
    }

    /// A tournament step's (size, survivors, crossover rate); `None` for the cutoff step.
    fn tournament(&self) -> Option<(usize, Survivors, f64)> {
        match self.params.selection {
            Selection::Cutoff => None,
            Selection::Tournament { size, elites, crossover_rate } => {
                Some((size, Survivors::Elites(elites), crossover_rate))
            }
            Selection::Plus { size, crossover_rate, offspring } => {
                Some((size, Survivors::Plus { offspring }, crossover_rate))
            }
        }
    }

    /// Admits the queued candidates in origin order: keys seen before are refused, the rest
    /// evaluated (in parallel when worth it) and added to the members. Returns how many
    /// were admitted.
    pub fn admit(&mut self) -> Result<u64> {
        let mut inbox = std::mem::take(&mut self.inbox);
        // Usually in order already (a one-shard run's own emission, in sequence).
        if !inbox.is_sorted_by_key(|c| c.origin) {
            inbox.sort_by_key(|c| c.origin);
        }
        // A shard alone in its run receives only its own emissions, which `emitted` already
        // made unique: the owner's check would repeat it key for key.
        let mut refused = 0;
        if self.count > 1 {
            let before = inbox.len();
            inbox.retain(|c| self.seen.insert(c.key));
            refused = before - inbox.len();
            self.duplicates += refused as u64;
        }
        let problem = &self.problem;
        // Candidates their breeder evaluated keep that fitness (checked below as any).
        let fitness = self.eval_cost.map(self.pool.as_deref(), inbox.len(), |i| {
            inbox[i].fitness.unwrap_or_else(|| problem.fitness(&inbox[i].genome))
        });
        let admitted = inbox.len() as u64;
        self.admitted += admitted;
        for (c, f) in inbox.into_iter().zip(fitness) {
            check_fitness(f, &c.genome)?;
            self.members.push(Individual { genome: c.genome, key: c.key, fitness: f, born: c.born });
        }
        // Slots left empty — a candidate refused here as a duplicate, or a slot of this
        // shard's step that bred nothing new — go to the best of the old members kept in
        // reserve, so a generational population does not shrink. Only those: how many
        // candidates the ring routed here is not this shard's to even out (padding every
        // shard to its quota grew the population past n_pop over many shards).
        let missing = refused + std::mem::take(&mut self.shortfall);
        let mut reserve = std::mem::take(&mut self.reserve);
        // Immigrants after an island's generations (if any arrived: else the members stay
        // as the plain run has them) and a (μ+λ) step both keep the best up to the quota.
        let immigrants = std::mem::take(&mut self.island_step) && admitted > 0;
        let plus = std::mem::take(&mut self.plus_step);
        if plus {
            // Children first, so that the stable sort below puts a child before a parent
            // of equal fitness.
            self.members.append(&mut reserve);
        } else if missing > 0 && !reserve.is_empty() {
            // Stable: ties keep member order.
            reserve.sort_by(|a, b| b.fitness.total_cmp(&a.fitness));
            let kept = missing.min(reserve.len());
            self.members.extend(reserve.drain(..kept));
        }
        if plus || immigrants {
            self.members.sort_by(|a, b| b.fitness.total_cmp(&a.fitness));
            let cut = self.quota.min(self.members.len());
            reserve.extend(self.members.drain(cut..));
        }
        // What is dropped leaves its storage for the next step's children (tournament and
        // (μ+λ) steps breed into it; the cutoff step breeds few, so it keeps none).
        if !matches!(self.params.selection, Selection::Cutoff) {
            let room = self.quota.saturating_sub(self.spare.len());
            self.spare.extend(reserve.into_iter().take(room).map(|m| m.genome));
        }
        Ok(admitted)
    }

    /// `generations` generations of this shard alone, from `generation` on (the island
    /// model): its own selection, variation and admission each generation, no candidate
    /// routed anywhere. The next [`Shard::admit`] takes immigrants in place of the worst
    /// members. Returns how many individuals were admitted.
    pub fn evolve_alone(&mut self, generation: u32, generations: u32) -> Result<u64> {
        let mut admitted = 0;
        for g in generation..generation.saturating_add(generations) {
            // Islands run tournament or plus selection, which take no cutoff.
            let children = self.next(g, 0);
            self.receive(children);
            admitted += self.admit()?;
        }
        self.island_step = true;
        Ok(admitted)
    }

    /// Copies of this shard's `count` best members as candidates for another island,
    /// best first (ties by position), marked born at `born`.
    pub fn emigrants(&self, count: usize, born: u32) -> Vec<Candidate<P::Genome>> {
        let fitness: Vec<f64> = self.members.iter().map(|m| m.fitness).collect();
        best_indices(&fitness, count)
            .into_iter()
            .enumerate()
            .map(|(seq, i)| {
                let m = &self.members[i];
                Candidate {
                    genome: m.genome.clone(),
                    key: m.key,
                    born,
                    origin: Origin { shard: self.index, seq: seq as u32 },
                    // Evaluated again by the island that admits it, as the model says.
                    fitness: None,
                }
            })
            .collect()
    }

    /// The original's `pop/next` on this shard.
    fn next_by_cutoff(&mut self, generation: u32, cutoff_bin: u32) -> Vec<Candidate<P::Genome>> {
        let (quota, mutation_rate) = (self.quota, self.params.mutation_rate);
        let problem = &self.problem;
        let mut rng = Rng::stream(self.seed, &[STREAM_CUTOFF, u64::from(generation), u64::from(self.index)]);
        let mut out = Emission::new(self.index, generation, &mut self.emitted, quota);
        let hist = Histogram::new(self.params.hist_granularity);
        let members = std::mem::take(&mut self.members);
        let mut size = members.len();
        let (mut kept, poor): (Vec<_>, Vec<_>) = members.into_iter().partition(|m| hist.bin(m.fitness) >= cutoff_bin);
        let survivors = kept.len();
        // Members leaving the shard (evicted, replaced by a mutant, trimmed below) stand in,
        // best first, for candidates an owner refuses as duplicates at admission.
        let mut reserve = Vec::new();
        for ind in poor {
            if rng.chance(mutation_rate) {
                // The mutant replaces the individual, unless this step already emitted it.
                let mut mutant = ind.genome.clone();
                problem.mutate(&mut mutant, &mut rng);
                let key = key_of(&mutant);
                if out.push(mutant, key) {
                    reserve.push(ind);
                } else {
                    kept.push(ind);
                }
            } else if size > 3 {
                size -= 1;
                reserve.push(ind);
            } else {
                kept.push(ind);
            }
        }
        // Pairs of random survivors (all remaining members when fewer than two survived)
        // breed the shard back to its quota; fresh genomes backfill what breeding could
        // not (the original's "avoid population collapse").
        // The shard keeps no more than its quota: routing by key can leave it holding more,
        // and the shards together must hold n_pop. Best first; in a one-shard run this
        // never cuts (kept and mutants replace at most the members, who fill the quota).
        let mut survivors = survivors;
        if kept.len() + out.candidates.len() > quota {
            // Stable: ties keep member order, and survivors stay ahead of the poor.
            kept.sort_by(|a, b| b.fitness.total_cmp(&a.fitness));
            reserve.extend(kept.drain(quota.min(kept.len())..));
            out.candidates.truncate(quota - kept.len());
            survivors = survivors.min(kept.len());
        }
        let parents = if survivors >= 2 { survivors } else { kept.len() };
        let target = quota.saturating_sub(kept.len());
        let budget = RETRIES as usize * quota;
        let mut attempts = 0;
        while parents >= 2 && out.candidates.len() < target && attempts < budget {
            attempts += 1;
            let a = rng.index(parents);
            let b = (a + 1 + rng.index(parents - 1)) % parents;
            let child = problem.breed(&kept[a].genome, &kept[b].genome, &mut rng);
            let key = key_of(&child);
            out.push(child, key);
        }
        attempts = 0;
        while out.candidates.len() < target && attempts < budget {
            attempts += 1;
            let fresh = problem.random_genome(&mut rng);
            let key = key_of(&fresh);
            out.push(fresh, key);
        }
        self.duplicates += out.refused;
        self.members = kept;
        self.reserve = reserve;
        out.candidates
    }

    /// The step [`Shard::next`] would take for `generation`, bred and evaluated without
    /// making it this shard's yet: its candidates, to route as `next`'s, and the step
    /// itself, for [`Shard::commit`] (which then does what `next` would have done to the
    /// shard) or [`Shard::discard`] (which leaves the shard as it was). `None` for the
    /// cutoff selection, whose step depends on the census of the generation before.
    ///
    /// What it is for: a worker breeds its next step while the framework is still deciding
    /// whether there is one, and no phase other than the step sees the difference.
    pub fn next_ahead(&mut self, generation: u32) -> Option<(Ahead, Vec<Candidate<P::Genome>>)> {
        let (ahead, mut candidates) = self.breed_ahead(generation)?;
        self.evaluate(&mut candidates);
        Some((ahead, candidates))
    }

    /// [`Shard::next_ahead`] without the evaluation: the candidates come with no fitness,
    /// for the caller to evaluate with [`Shard::evaluate`] before it routes them, in parts
    /// and in any order (a worker evaluates its peers' first, and sends them while it
    /// evaluates its own). Fitness is a function of the genome: the step is the same.
    pub fn breed_ahead(&mut self, generation: u32) -> Option<(Ahead, Vec<Candidate<P::Genome>>)> {
        let tournament = self.tournament()?;
        let emitted_before = self.emitted.order.len();
        let (step, candidates) = self.breed_by_tournament(generation, tournament);
        Some((Ahead { generation, emitted_before, after: self.stamp(), step }, candidates))
    }

    /// Evaluates every one of `candidates` on the shard's threads (each one's fitness set).
    pub fn evaluate(&mut self, candidates: &mut [Candidate<P::Genome>]) {
        let problem = &self.problem;
        if self.pool.is_none() {
            // One thread: each in place, no vector of values between.
            for c in candidates.iter_mut() {
                c.fitness = Some(problem.fitness(&c.genome));
            }
            return;
        }
        let view: &[Candidate<P::Genome>] = candidates;
        let fitness = self.eval_cost.map(self.pool.as_deref(), view.len(), |i| problem.fitness(&view[i].genome));
        for (c, f) in candidates.iter_mut().zip(fitness) {
            c.fitness = Some(f);
        }
    }

    /// Makes a step bred by [`Shard::next_ahead`] this shard's, as [`Shard::next`] would
    /// have: refused (and the shard left as it is) if the shard changed since.
    pub fn commit(&mut self, ahead: Ahead) -> Result<()> {
        self.check_unchanged(&ahead)?;
        self.take_up(ahead.step);
        Ok(())
    }

    /// Forgets a step bred by [`Shard::next_ahead`]: the shard is again as it was before,
    /// its emitted keys included. Refused (and nothing changed) if the shard changed since.
    pub fn discard(&mut self, ahead: Ahead) -> Result<()> {
        self.check_unchanged(&ahead)?;
        self.emitted.truncate(ahead.emitted_before);
        Ok(())
    }

    /// What a phase after a step bred ahead would change: emitted keys, admissions,
    /// members (breeding ahead changes only the first).
    fn stamp(&self) -> (usize, u64, usize) {
        (self.emitted.order.len(), self.admitted, self.members.len())
    }

    /// Whether the shard is as `ahead` left it (no phase ran since).
    fn check_unchanged(&self, ahead: &Ahead) -> Result<()> {
        if self.stamp() != ahead.after {
            return Err(Error::InvalidState(format!(
                "the step of generation {} was bred ahead of a shard that changed since",
                ahead.generation
            )));
        }
        Ok(())
    }

    /// A generational step on this shard: its `elites` best stay, every other slot of its
    /// quota gets a child, bred in pairs (two tournament winners, one crossover, two
    /// children; each pair from its own stream, slots 2i and 2i + 1 from pair i). With
    /// no `elites` (a (μ+λ) step) every slot gets a child and every member waits in the
    /// reserve for [`Shard::admit`] to keep the best of both. Breeds the candidates (their
    /// caller evaluates them); only the emitted keys (and the spare genomes used) change
    /// here, the rest is [`Shard::take_up`]'s.
    fn breed_by_tournament(
        &mut self,
        generation: u32,
        (size, survivors, crossover_rate): (usize, Survivors, f64),
    ) -> (Bred, Vec<Candidate<P::Genome>>) {
        let (elites, offspring) = match survivors {
            Survivors::Elites(elites) => (elites, 1.0),
            Survivors::Plus { offspring } => (0, offspring),
        };
        let (seed, index, mutation_rate) = (self.seed, self.index, self.params.mutation_rate);
        let problem = &self.problem;
        let members = &self.members;
        let fitness: Vec<f64> = members.iter().map(|m| m.fitness).collect();
        // A certain event takes no draw (rates of 1 are the built-in problems' usual).
        let certain = |rng: &mut Rng, p: f64| p >= 1.0 || rng.chance(p);
        let parents = |rng: &mut Rng| {
            let a = ops::tournament(&fitness, size, rng);
            let b = ops::tournament(&fitness, size, rng);
            (&members[a].genome, &members[b].genome)
        };
        // Two children of two tournament winners, in dropped members' storage where there
        // is some (the same genomes either way): one crossover (or, at its rate's miss,
        // copies of the parents), then each mutated at its rate.
        let pair = |rng: &mut Rng, (first, second): (Option<P::Genome>, Option<P::Genome>)| {
            if members.is_empty() {
                return [problem.random_genome(rng), problem.random_genome(rng)];
            }
            let (a, b) = ops::tournament_pair(&fitness, size, rng);
            let (mother, father) = (&members[a].genome, &members[b].genome);
            let mut first = first.unwrap_or_else(|| mother.clone());
            let mut second = second.unwrap_or_else(|| father.clone());
            if certain(rng, crossover_rate) {
                problem.breed_pair_into(mother, father, rng, &mut first, &mut second);
            } else {
                first.clone_from(mother);
                second.clone_from(father);
            }
            for g in [&mut first, &mut second] {
                if certain(rng, mutation_rate) {
                    problem.mutate(g, rng);
                }
            }
            [first, second]
        };
        // One child, for a slot whose child of the pair was refused.
        let child = |rng: &mut Rng, spare: Option<P::Genome>| {
            if members.is_empty() {
                return problem.random_genome(rng);
            }
            let (mother, father) = parents(rng);
            let mut g = match (certain(rng, crossover_rate), spare) {
                (true, Some(mut g)) => {
                    problem.breed_into(mother, father, rng, &mut g);
                    g
                }
                (true, None) => problem.breed(mother, father, rng),
                (false, Some(mut g)) => {
                    g.clone_from(mother);
                    g
                }
                (false, None) => mother.clone(),
            };
            if certain(rng, mutation_rate) {
                problem.mutate(&mut g, rng);
            }
            g
        };
        let elites = elites.min(members.len()).min(self.quota);
        let open = self.quota - elites;
        let slots = ((open as f64 * offspring).round() as usize).max(1).min(open);
        let gen64 = u64::from(generation);
        // Pair i from stream i fills slots 2i and 2i + 1 (an odd count's last second child
        // is not used: its storage goes back to the spares).
        let streams = Rng::family(seed, &[STREAM_CHILD, gen64, u64::from(index)]);
        let spares: Vec<_> = (0..slots.div_ceil(2)).map(|_| (self.spare.pop(), self.spare.pop())).collect();
        let bred = self.breed_cost.map_owned(self.pool.as_deref(), spares, |i, spares| {
            let [first, second] = pair(&mut streams.stream(i as u64), spares);
            let keys = (key_of(&first), key_of(&second));
            [(first, keys.0), (second, keys.1)]
        });
        // Retries draw from streams of their own, slot by slot.
        let retries = Rng::family(seed, &[STREAM_CHILD_RETRY, gen64, u64::from(index)]);
        let mut out = Emission::new(index, generation, &mut self.emitted, slots);
        for (i, (genome, key)) in bred.into_iter().flatten().enumerate() {
            if i == slots {
                self.spare.push(genome);
                break;
            }
            // A refused genome's storage takes the next attempt (the same genome either way).
            let Err(refused) = out.try_push(genome, key) else { continue };
            let mut refused = Some(refused);
            let mut rng = retries.stream(i as u64);
            let found = (0..RETRIES).any(|_| {
                let g = child(&mut rng, refused.take());
                let k = key_of(&g);
                out.try_push(g, k).map_err(|g| refused = Some(g)).is_ok()
            });
            if !found {
                let g = problem.random_genome(&mut rng);
                let k = key_of(&g);
                out.push(g, k);
            }
        }
        let refused = out.refused;
        let shortfall = slots - out.candidates.len();
        // Evaluated by the caller, once the emission is unique: the breeding shard's load
        // is its quota, where the owners' share of the keys varies from step to step.
        let candidates = out.candidates;
        // Elites ranked by fitness, ties by position (a total order, so the choice is
        // deterministic); the rest stay in member order as the reserve.
        let elites = best_indices(&fitness, elites);
        let plus = matches!(survivors, Survivors::Plus { .. });
        (Bred { elites, refused, shortfall, plus }, candidates)
    }

    /// What a tournament step does to the shard once its candidates are out: the elites
    /// stay, the other members wait in the reserve, the counts of the step are kept.
    fn take_up(&mut self, bred: Bred) {
        self.duplicates += bred.refused;
        self.shortfall = bred.shortfall;
        self.plus_step = bred.plus;
        let mut rest = std::mem::take(&mut self.members);
        self.members = Vec::with_capacity(self.quota);
        if bred.elites.len() <= FEW_ELITES {
            // A few taken out where they stand, from the last position down (so that each
            // position still holds its member); the rest move up in order.
            let mut positions = bred.elites.clone();
            positions.sort_unstable_by(|a, b| b.cmp(a));
            let mut taken: Vec<_> = positions.into_iter().map(|i| (i, rest.remove(i))).collect();
            for &i in &bred.elites {
                if let Some(at) = taken.iter().position(|&(j, _)| j == i) {
                    self.members.push(taken.swap_remove(at).1);
                }
            }
            self.reserve = rest;
            return;
        }
        let mut by_index: Vec<Option<Individual<P::Genome>>> = rest.into_iter().map(Some).collect();
        self.members.extend(bred.elites.iter().filter_map(|&i| by_index[i].take()));
        self.reserve = by_index.into_iter().flatten().collect();
    }
}

/// A tournament step's effect on its shard beyond the candidates it emitted.
#[derive(Debug)]
struct Bred {
    /// The members that stay, by index, best first.
    elites: Vec<usize>,
    /// Children refused because the shard had emitted them before.
    refused: u64,
    /// Slots that got no candidate.
    shortfall: usize,
    /// Whether it was a (μ+λ) step.
    plus: bool,
}

/// A step bred ahead of time ([`Shard::next_ahead`]), waiting for [`Shard::commit`] or
/// [`Shard::discard`].
#[derive(Debug)]
pub struct Ahead {
    generation: u32,
    /// Emitted keys before it (what a discard goes back to).
    emitted_before: usize,
    /// The shard's stamp right after it (what a commit or discard checks).
    after: (usize, u64, usize),
    step: Bred,
}

impl Ahead {
    /// The generation it is a step of.
    pub fn generation(&self) -> u32 {
        self.generation
    }
}

/// Who survives a tournament step: generational (`elites` carried over, every other slot
/// a child), or (μ+λ) (a fraction `offspring` of the quota bred, at least one, the
/// parents all kept in reserve for the best-of-both cut at admission).
#[derive(Clone, Copy)]
enum Survivors {
    Elites(usize),
    Plus { offspring: f64 },
}

/// The candidates one shard emits in one step, never a key it emitted before.
struct Emission<'a, G> {
    shard: u32,
    born: u32,
    emitted: &'a mut Journal,
    refused: u64,
    candidates: Vec<Candidate<G>>,
}

impl<'a, G> Emission<'a, G> {
    fn new(shard: u32, born: u32, emitted: &'a mut Journal, capacity: usize) -> Self {
        Self { shard, born, emitted, refused: 0, candidates: Vec::with_capacity(capacity) }
    }

    /// Adds a genome unless this shard emitted its key before; `true` if added.
    fn push(&mut self, genome: G, key: Key) -> bool {
        self.try_push(genome, key).is_ok()
    }

    /// [`Emission::push`], giving a refused genome back.
    #[inline]
    fn try_push(&mut self, genome: G, key: Key) -> std::result::Result<(), G> {
        if !self.emitted.insert(key) {
            self.refused += 1;
            return Err(genome);
        }
        let origin = Origin { shard: self.shard, seq: self.candidates.len() as u32 };
        self.candidates.push(Candidate { genome, key, born: self.born, origin, fitness: None });
        Ok(())
    }
}
