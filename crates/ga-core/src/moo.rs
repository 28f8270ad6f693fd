//! Multi-objective optimisation: NSGA-II (Deb, Pratap, Agarwal & Meyarivan, "A fast and
//! elitist multiobjective genetic algorithm: NSGA-II", IEEE TEC 6(2), 2002) with Deb's
//! constraint domination (Deb, "An efficient constraint handling method for genetic
//! algorithms", CMAME 186, 2000). A [`MultiObjective`] problem sits beside [`Problem`]:
//! it returns objectives to minimise and a constraint violation instead of one fitness.
//!
//! [`Problem`]: crate::Problem

use crate::genome::Genome;
use crate::rng::Rng;
use crate::{Error, Result};

/// What a problem with several objectives gives for one genome.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Evaluation {
    /// The objectives, all to be minimised.
    pub objectives: Vec<f64>,
    /// How far the genome is from feasible: 0 when it meets every constraint, else the sum
    /// of the amounts by which it misses them.
    pub violation: f64,
}

/// A problem with several objectives (the multi-objective counterpart of
/// [`Problem`](crate::Problem)); methods must be deterministic given their inputs and `rng`.
pub trait MultiObjective: Send + Sync {
    /// The genome type.
    type Genome: Genome;
    /// How many objectives [`MultiObjective::evaluate`] returns.
    fn objectives(&self) -> usize;
    /// A fresh random genome.
    fn random_genome(&self, rng: &mut Rng) -> Self::Genome;
    /// Mutates a genome in place.
    fn mutate(&self, genome: &mut Self::Genome, rng: &mut Rng);
    /// A child of two parents.
    fn breed(&self, mother: &Self::Genome, father: &Self::Genome, rng: &mut Rng) -> Self::Genome;
    /// The genome's objectives (to minimise) and constraint violation.
    fn evaluate(&self, genome: &Self::Genome) -> Evaluation;
    /// A reference point for the hypervolume of two-objective fronts, if the problem has
    /// a customary one (ZDT: (1.1, 1.1)).
    fn reference(&self) -> Option<[f64; 2]> {
        None
    }
}

/// What evaluates a generation's genomes for [`Nsga2::run_evaluated`]: one evaluation per
/// genome, in order.
pub type Evaluate<'a, G> = dyn FnMut(&[G]) -> Result<Vec<Evaluation>> + 'a;

/// One NSGA-II generation, as an observer sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrontStats {
    /// The generation (0: the initial population).
    pub generation: u32,
    /// Population size.
    pub size: usize,
    /// Evaluations so far.
    pub evaluations: u64,
    /// Members of the non-dominated front.
    pub front: usize,
    /// The front's hypervolume, for two objectives and a [`MultiObjective::reference`].
    pub hypervolume: Option<f64>,
}

/// A member of an NSGA-II population.
#[derive(Clone, Debug)]
pub struct Solution<G> {
    /// Its genome.
    pub genome: G,
    /// Its objectives and violation.
    pub evaluation: Evaluation,
    /// Its front: 0 is the non-dominated one.
    pub rank: usize,
    /// Its crowding distance within its front (infinite at a front's ends).
    pub crowding: f64,
}

/// Whether `a` constraint-dominates `b`: a feasible solution beats an infeasible one, of
/// two infeasible ones the smaller violation wins, and of two feasible ones `a` must be no
/// worse in every objective and better in one.
pub fn dominates(a: &Evaluation, b: &Evaluation) -> bool {
    match (a.violation > 0.0, b.violation > 0.0) {
        (false, true) => true,
        (true, false) => false,
        (true, true) => a.violation < b.violation,
        (false, false) => {
            let mut better = false;
            for (x, y) in a.objectives.iter().zip(&b.objectives) {
                if x > y {
                    return false;
                }
                better |= x < y;
            }
            better
        }
    }
}

/// The fronts of `evals` by constraint domination, best first, each in index order (the
/// fast non-dominated sort of the NSGA-II paper: O(M N²)).
pub fn fronts(evals: &[&Evaluation]) -> Vec<Vec<usize>> {
    let n = evals.len();
    let mut dominated_by = vec![0usize; n];
    let mut dominating: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in i + 1..n {
            if dominates(evals[i], evals[j]) {
                dominating[i].push(j);
                dominated_by[j] += 1;
            } else if dominates(evals[j], evals[i]) {
                dominating[j].push(i);
                dominated_by[i] += 1;
            }
        }
    }
    let mut fronts = Vec::new();
    let mut current: Vec<usize> = (0..n).filter(|&i| dominated_by[i] == 0).collect();
    while !current.is_empty() {
        let mut next = Vec::new();
        for &i in &current {
            for &j in &dominating[i] {
                dominated_by[j] -= 1;
                if dominated_by[j] == 0 {
                    next.push(j);
                }
            }
        }
        next.sort_unstable();
        fronts.push(std::mem::replace(&mut current, next));
    }
    fronts
}

/// The crowding distance of each member of `front` (indices into `evals`), in its order:
/// for each objective, the normalised gap between its neighbours; infinite at the ends.
pub fn crowding(evals: &[&Evaluation], front: &[usize]) -> Vec<f64> {
    let mut distance = vec![0.0; front.len()];
    if front.len() <= 2 {
        distance.fill(f64::INFINITY);
        return distance;
    }
    let objectives = evals[front[0]].objectives.len();
    let mut order: Vec<usize> = (0..front.len()).collect();
    for m in 0..objectives {
        let value = |k: usize| evals[front[k]].objectives[m];
        order.sort_by(|&a, &b| value(a).total_cmp(&value(b)).then(a.cmp(&b)));
        let (lo, hi) = (value(order[0]), value(order[front.len() - 1]));
        distance[order[0]] = f64::INFINITY;
        distance[order[front.len() - 1]] = f64::INFINITY;
        if hi > lo {
            for w in order.windows(3) {
                distance[w[1]] += (value(w[2]) - value(w[0])) / (hi - lo);
            }
        }
    }
    distance
}

/// The hypervolume that a set of two-objective points dominates up to `reference` (both
/// objectives minimised; points not better than the reference in both count nothing).
pub fn hypervolume_2d(points: &[[f64; 2]], reference: [f64; 2]) -> f64 {
    let mut inside: Vec<[f64; 2]> =
        points.iter().copied().filter(|p| p[0] < reference[0] && p[1] < reference[1]).collect();
    inside.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    // The staircase of the non-dominated points, left to right (second objective falling):
    // each point owns the strip from itself to the next step, down to the reference.
    let mut steps: Vec<[f64; 2]> = Vec::new();
    for p in inside {
        if steps.last().is_none_or(|q| p[1] < q[1]) {
            steps.push(p);
        }
    }
    let mut volume = 0.0;
    for (i, p) in steps.iter().enumerate() {
        let right = steps.get(i + 1).map_or(reference[0], |q| q[0]);
        volume += (right - p[0]) * (reference[1] - p[1]);
    }
    volume
}

/// The points of the non-dominated members (rank 0) among `solutions`, in their order:
/// their first two objectives (members with fewer are left out).
pub fn front_points<'a, G: 'a>(solutions: impl IntoIterator<Item = &'a Solution<G>>) -> Vec<[f64; 2]> {
    solutions
        .into_iter()
        .filter(|s| s.rank == 0 && s.evaluation.objectives.len() >= 2)
        .map(|s| [s.evaluation.objectives[0], s.evaluation.objectives[1]])
        .collect()
}

/// NSGA-II's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Nsga2 {
    /// Population size (even, at least 4).
    pub population: usize,
    /// Generations after the first.
    pub generations: u32,
    /// Probability that a child is bred from two parents rather than copied from one.
    pub crossover_rate: f64,
    /// The run's seed.
    pub seed: u64,
}

impl Nsga2 {
    /// Runs NSGA-II on `problem`; returns the last population, best front first (rank,
    /// then crowding distance, descending), and the number of evaluations.
    pub fn run<P: MultiObjective>(&self, problem: &P) -> Result<(Vec<Solution<P::Genome>>, u64)> {
        self.run_observed(problem, &mut |_| {})
    }

    /// [`Nsga2::run`], telling `observer` of every generation (the initial one included).
    pub fn run_observed<P: MultiObjective>(
        &self,
        problem: &P,
        observer: &mut dyn FnMut(&FrontStats),
    ) -> Result<(Vec<Solution<P::Genome>>, u64)> {
        let mut here = |genomes: &[P::Genome]| Ok(genomes.iter().map(|g| problem.evaluate(g)).collect());
        self.run_evaluated(problem, &mut here, observer)
    }

    /// [`Nsga2::run_observed`], each generation's genomes evaluated together by `evaluate`
    /// (which must return one evaluation per genome, in order: e.g. by worker processes).
    /// A generation is bred whole before any of it is evaluated, so where the evaluations
    /// are made changes nothing in a seed's run.
    pub fn run_evaluated<P: MultiObjective>(
        &self,
        problem: &P,
        evaluate: &mut Evaluate<'_, P::Genome>,
        observer: &mut dyn FnMut(&FrontStats),
    ) -> Result<(Vec<Solution<P::Genome>>, u64)> {
        if self.population < 4 || self.population % 2 != 0 {
            return Err(Error::InvalidParam {
                name: "pop",
                value: self.population.to_string(),
                expected: "an even population of at least 4 for NSGA-II",
            });
        }
        if !(0.0..=1.0).contains(&self.crossover_rate) {
            return Err(Error::InvalidParam {
                name: "crossover-rate",
                value: self.crossover_rate.to_string(),
                expected: "a probability in [0, 1]",
            });
        }
        let n = self.population;
        // Path-derived streams, as the GA's: [NSGA-II's purpose word, generation].
        const PURPOSE: u64 = 0x4e53_4741_3200_0000; // "NSGA2"
        let mut solutions = |genomes: Vec<P::Genome>| -> Result<Vec<Solution<P::Genome>>> {
            let evaluations = evaluate(&genomes)?;
            if evaluations.len() != genomes.len() {
                return Err(Error::Population(format!(
                    "{} evaluations for {} genomes",
                    evaluations.len(),
                    genomes.len()
                )));
            }
            genomes
                .into_iter()
                .zip(evaluations)
                .map(|(genome, evaluation)| {
                    if evaluation.objectives.len() != problem.objectives()
                        || evaluation.objectives.iter().any(|v| !v.is_finite())
                        || evaluation.violation.is_nan()
                        || evaluation.violation < 0.0
                    {
                        return Err(Error::Population(format!(
                            "an evaluation must give {} finite objectives and a violation of at least 0, not {:?}",
                            problem.objectives(),
                            evaluation
                        )));
                    }
                    Ok(Solution { genome, evaluation, rank: 0, crowding: 0.0 })
                })
                .collect()
        };
        let mut rng = Rng::stream(self.seed, &[PURPOSE, 0]);
        let mut population = solutions((0..n).map(|_| problem.random_genome(&mut rng)).collect())?;
        let mut evaluations = n as u64;
        assign(&mut population);
        let tell = |population: &[Solution<P::Genome>], generation: u32, evaluations: u64| {
            let front = population.iter().filter(|s| s.rank == 0).count();
            let hypervolume = problem
                .reference()
                .filter(|_| problem.objectives() == 2)
                .map(|r| hypervolume_2d(&front_points(population), r));
            FrontStats { generation, size: population.len(), evaluations, front, hypervolume }
        };
        observer(&tell(&population, 0, evaluations));
        for generation in 1..=u64::from(self.generations) {
            let mut rng = Rng::stream(self.seed, &[PURPOSE, generation]);
            let mut children = Vec::with_capacity(n);
            while children.len() < n {
                let a = crowded_tournament(&population, &mut rng);
                let b = crowded_tournament(&population, &mut rng);
                let mut child = if rng.chance(self.crossover_rate) {
                    problem.breed(&population[a].genome, &population[b].genome, &mut rng)
                } else {
                    population[a].genome.clone()
                };
                problem.mutate(&mut child, &mut rng);
                children.push(child);
            }
            evaluations += n as u64;
            population.extend(solutions(children)?);
            population = survivors(population, n);
            observer(&tell(&population, generation as u32, evaluations));
        }
        population.sort_by(|a, b| a.rank.cmp(&b.rank).then(b.crowding.total_cmp(&a.crowding)));
        Ok((population, evaluations))
    }
}

/// Sets every member's rank and crowding distance.
fn assign<G>(population: &mut [Solution<G>]) {
    let evals: Vec<&Evaluation> = population.iter().map(|s| &s.evaluation).collect();
    let fronts = fronts(&evals);
    let mut ranks = vec![(0, 0.0); population.len()];
    for (rank, front) in fronts.iter().enumerate() {
        for (i, d) in front.iter().zip(crowding(&evals, front)) {
            ranks[*i] = (rank, d);
        }
    }
    for (s, (rank, d)) in population.iter_mut().zip(ranks) {
        s.rank = rank;
        s.crowding = d;
    }
}

/// The best `n` of parents and children: whole fronts, then the least crowded of the front
/// that does not fit.
fn survivors<G>(mut all: Vec<Solution<G>>, n: usize) -> Vec<Solution<G>> {
    assign(&mut all);
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|&a, &b| {
        all[a].rank.cmp(&all[b].rank).then(all[b].crowding.total_cmp(&all[a].crowding)).then(a.cmp(&b))
    });
    order.truncate(n);
    order.sort_unstable();
    let mut keep = vec![false; all.len()];
    for i in order {
        keep[i] = true;
    }
    let mut kept: Vec<Solution<G>> = all.into_iter().zip(keep).filter(|(_, k)| *k).map(|(s, _)| s).collect();
    // Ranks and distances within the survivors, for the next tournaments.
    assign(&mut kept);
    kept
}

/// Binary tournament by the crowded comparison: the lower rank, then the larger distance,
/// then the first drawn.
fn crowded_tournament<G>(population: &[Solution<G>], rng: &mut Rng) -> usize {
    let a = rng.index(population.len());
    let b = rng.index(population.len());
    let (x, y) = (&population[a], &population[b]);
    if y.rank < x.rank || (y.rank == x.rank && y.crowding > x.crowding) { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problems::{Zdt, ZdtKind};

    fn e(objectives: &[f64], violation: f64) -> Evaluation {
        Evaluation { objectives: objectives.to_vec(), violation }
    }

    #[test]
    fn constraint_domination_puts_feasible_first_then_smaller_violations_then_pareto() {
        assert!(dominates(&e(&[1.0, 1.0], 0.0), &e(&[2.0, 2.0], 0.0)));
        assert!(dominates(&e(&[1.0, 2.0], 0.0), &e(&[1.0, 3.0], 0.0)));
        assert!(!dominates(&e(&[1.0, 2.0], 0.0), &e(&[2.0, 1.0], 0.0)), "incomparable");
        assert!(!dominates(&e(&[1.0, 1.0], 0.0), &e(&[1.0, 1.0], 0.0)), "equal");
        assert!(dominates(&e(&[9.0, 9.0], 0.0), &e(&[0.0, 0.0], 0.5)), "feasible first");
        assert!(dominates(&e(&[9.0, 9.0], 0.1), &e(&[0.0, 0.0], 0.5)), "smaller violation");
        assert!(!dominates(&e(&[0.0, 0.0], 0.5), &e(&[9.0, 9.0], 0.1)));
    }

    #[test]
    fn fronts_and_crowding_of_a_small_set() {
        let points = [
            e(&[1.0, 5.0], 0.0), // front 0
            e(&[2.0, 3.0], 0.0), // front 0
            e(&[4.0, 1.0], 0.0), // front 0
            e(&[3.0, 4.0], 0.0), // front 1 (dominated by [2, 3])
            e(&[5.0, 5.0], 0.0), // front 2
            e(&[0.0, 0.0], 1.0), // infeasible: last
        ];
        let refs: Vec<&Evaluation> = points.iter().collect();
        assert_eq!(fronts(&refs), vec![vec![0, 1, 2], vec![3], vec![4], vec![5]]);
        let d = crowding(&refs, &[0, 1, 2]);
        assert!(d[0].is_infinite() && d[2].is_infinite());
        // The middle point: (4 - 1) / (4 - 1) + (5 - 1) / (5 - 1).
        assert!((d[1] - 2.0).abs() < 1e-12, "{d:?}");
    }

    #[test]
    fn hypervolume_of_known_sets() {
        assert_eq!(hypervolume_2d(&[], [1.0, 1.0]), 0.0);
        assert!((hypervolume_2d(&[[0.5, 0.5]], [1.0, 1.0]) - 0.25).abs() < 1e-12);
        // Two steps, a dominated point and one beyond the reference change nothing else.
        let hv = hypervolume_2d(&[[0.0, 0.5], [0.5, 0.0], [0.6, 0.6], [2.0, 0.0]], [1.0, 1.0]);
        assert!((hv - 0.75).abs() < 1e-12, "{hv}");
        // ZDT1's true front, sampled finely: the integral 0.1 + 2/3 + 0.11 (reference 1.1).
        let front: Vec<[f64; 2]> = (0..=10_000).map(|i| f64::from(i) / 10_000.0).map(|x| [x, 1.0 - x.sqrt()]).collect();
        let hv = hypervolume_2d(&front, [1.1, 1.1]);
        assert!((hv - (0.1 + 2.0 / 3.0 + 0.11)).abs() < 1e-3, "{hv}");
    }

    #[test]
    fn nsga2_approaches_the_zdt_fronts_and_a_seed_gives_one_run() {
        let settings = Nsga2 { population: 100, generations: 250, crossover_rate: 0.9, seed: 1 };
        for (kind, at_least) in [(ZdtKind::Zdt1, 0.86), (ZdtKind::Zdt2, 0.52), (ZdtKind::Zdt3, 1.31)] {
            let (population, evaluations) = settings.run(&Zdt::new(kind)).unwrap();
            assert_eq!(evaluations, 100 * 251);
            let hv = hypervolume_2d(&front_points(&population), [1.1, 1.1]);
            assert!(hv >= at_least, "{kind:?}: hypervolume {hv} below {at_least}");
        }
        let again = |seed| {
            let s = Nsga2 { population: 20, generations: 10, crossover_rate: 0.9, seed };
            s.run(&Zdt::new(ZdtKind::Zdt1))
                .unwrap()
                .0
                .iter()
                .map(|s| s.evaluation.objectives.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(again(3), again(3));
        assert_ne!(again(3), again(4));
    }

    #[test]
    fn bad_settings_and_bad_evaluations_are_errors() {
        let z = Zdt::new(ZdtKind::Zdt1);
        assert!(Nsga2 { population: 5, generations: 1, crossover_rate: 0.9, seed: 0 }.run(&z).is_err());
        assert!(Nsga2 { population: 8, generations: 1, crossover_rate: 1.5, seed: 0 }.run(&z).is_err());
        struct Nan;
        impl MultiObjective for Nan {
            type Genome = Vec<f64>;
            fn objectives(&self) -> usize {
                2
            }
            fn random_genome(&self, _: &mut Rng) -> Vec<f64> {
                vec![0.0]
            }
            fn mutate(&self, _: &mut Vec<f64>, _: &mut Rng) {}
            fn breed(&self, a: &Vec<f64>, _: &Vec<f64>, _: &mut Rng) -> Vec<f64> {
                a.clone()
            }
            fn evaluate(&self, _: &Vec<f64>) -> Evaluation {
                Evaluation { objectives: vec![f64::NAN, 0.0], violation: 0.0 }
            }
        }
        let err = Nsga2 { population: 8, generations: 1, crossover_rate: 0.9, seed: 0 }.run(&Nan).unwrap_err();
        assert!(err.to_string().contains("finite objectives"), "{err}");
    }
}
