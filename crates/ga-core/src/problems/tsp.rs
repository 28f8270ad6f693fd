use crate::ops;
use crate::params::Params;
use crate::rng::Rng;
use crate::{Measure, Problem};

/// The travelling salesman on cities in the plane with TSPLIB `EUC_2D` distances
/// (Euclidean, rounded to the nearest integer). Genomes are permutations of city
/// indices; fitness is `reference / length`, capped at 1.0, so a tour as short as the
/// reference scores 1.0.
#[derive(Clone, Debug, PartialEq)]
pub struct Tsp {
    n: usize,
    dist: Vec<u32>,
    reference: f64,
}

/// berlin52 from TSPLIB (Reinelt 1991): 52 locations in Berlin; optimal tour 7542.
const BERLIN52: [(f64, f64); 52] = [
    (565.0, 575.0),
    (25.0, 185.0),
    (345.0, 750.0),
    (945.0, 685.0),
    (845.0, 655.0),
    (880.0, 660.0),
    (25.0, 230.0),
    (525.0, 1000.0),
    (580.0, 1175.0),
    (650.0, 1130.0),
    (1605.0, 620.0),
    (1220.0, 580.0),
    (1465.0, 200.0),
    (1530.0, 5.0),
    (845.0, 680.0),
    (725.0, 370.0),
    (145.0, 665.0),
    (415.0, 635.0),
    (510.0, 875.0),
    (560.0, 365.0),
    (300.0, 465.0),
    (520.0, 585.0),
    (480.0, 415.0),
    (835.0, 625.0),
    (975.0, 580.0),
    (1215.0, 245.0),
    (1320.0, 315.0),
    (1250.0, 400.0),
    (660.0, 180.0),
    (410.0, 250.0),
    (420.0, 555.0),
    (575.0, 665.0),
    (1150.0, 1160.0),
    (700.0, 580.0),
    (685.0, 595.0),
    (685.0, 610.0),
    (770.0, 610.0),
    (795.0, 645.0),
    (720.0, 635.0),
    (760.0, 650.0),
    (475.0, 960.0),
    (95.0, 260.0),
    (875.0, 920.0),
    (700.0, 500.0),
    (555.0, 815.0),
    (830.0, 485.0),
    (1170.0, 65.0),
    (830.0, 610.0),
    (605.0, 625.0),
    (595.0, 360.0),
    (1340.0, 725.0),
    (1740.0, 245.0),
];

impl Tsp {
    /// An instance over `cities`, scored against a `reference` tour length (e.g. the known
    /// optimum, or a lower bound). `None` with fewer than 3 cities, a non-finite
    /// coordinate or a reference that is not positive.
    pub fn new(cities: &[(f64, f64)], reference: f64) -> Option<Self> {
        let n = cities.len();
        if n < 3 || !(reference > 0.0 && reference.is_finite()) {
            return None;
        }
        if cities.iter().any(|(x, y)| !x.is_finite() || !y.is_finite()) {
            return None;
        }
        let mut dist = vec![0u32; n * n];
        for (i, a) in cities.iter().enumerate() {
            for (j, b) in cities.iter().enumerate() {
                // TSPLIB EUC_2D: nint(sqrt(dx² + dy²)).
                dist[i * n + j] = ((a.0 - b.0).hypot(a.1 - b.1) + 0.5).floor() as u32;
            }
        }
        Some(Self { n, dist, reference })
    }

    /// TSPLIB's berlin52, scored against its optimal tour length 7542.
    pub fn berlin52() -> Self {
        Self::new(&BERLIN52, 7542.0).expect("berlin52 is a valid instance")
    }

    /// Number of cities.
    pub fn cities(&self) -> usize {
        self.n
    }

    /// Length of a closed tour.
    pub fn tour_length(&self, tour: &[u32]) -> u64 {
        let n = self.n;
        let Some(&last) = tour.last() else { return 0 };
        let mut prev = last as usize;
        let mut total = 0u64;
        for &c in tour {
            total += u64::from(self.dist[prev * n + c as usize]);
            prev = c as usize;
        }
        total
    }
}

impl Problem for Tsp {
    type Genome = Vec<u32>;

    fn random_genome(&self, rng: &mut Rng) -> Vec<u32> {
        ops::random_permutation(self.n, rng)
    }

    /// Reverses a random segment (a 2-opt move).
    fn mutate(&self, genome: &mut Vec<u32>, rng: &mut Rng) {
        ops::inversion(genome, rng);
    }

    fn breed(&self, mother: &Vec<u32>, father: &Vec<u32>, rng: &mut Rng) -> Vec<u32> {
        ops::order(mother, father, rng)
    }

    fn check(&self, genome: &Vec<u32>) -> Result<(), String> {
        if ops::is_permutation(genome, self.n) { Ok(()) } else { Err(format!("not a tour of the {} cities", self.n)) }
    }

    fn fitness(&self, genome: &Vec<u32>) -> f64 {
        // A genome that is not a permutation of the cities is not a tour.
        if genome.len() != self.n || genome.iter().any(|&c| c as usize >= self.n) {
            return 0.0;
        }
        (self.reference / self.tour_length(genome) as f64).min(1.0)
    }

    fn params(&self) -> Params {
        super::plus(500_000)
    }

    fn measure(&self, genome: &Vec<u32>) -> Option<Measure> {
        let valid = genome.len() == self.n && genome.iter().all(|&c| (c as usize) < self.n);
        valid.then(|| Measure { name: "tour length", value: self.tour_length(genome) as f64 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_optimal_tour_measures_7542() {
        // berlin52.opt.tour from TSPLIB (1-based).
        let opt: [u32; 52] = [
            1, 49, 32, 45, 19, 41, 8, 9, 10, 43, 33, 51, 11, 52, 14, 13, 47, 26, 27, 28, 12, 25, 4, 6, 15, 5, 24, 48,
            38, 37, 40, 39, 36, 35, 34, 44, 46, 16, 29, 50, 20, 23, 30, 2, 7, 42, 21, 17, 3, 18, 31, 22,
        ];
        let tour: Vec<u32> = opt.iter().map(|c| c - 1).collect();
        let tsp = Tsp::berlin52();
        assert_eq!(tsp.tour_length(&tour), 7542);
        assert_eq!(tsp.fitness(&tour), 1.0);
    }

    #[test]
    fn invalid_tours_score_zero() {
        let tsp = Tsp::berlin52();
        assert_eq!(tsp.fitness(&vec![0, 1, 2]), 0.0);
        assert_eq!(tsp.fitness(&vec![99; 52]), 0.0);
        assert!(Tsp::new(&[(0.0, 0.0)], 1.0).is_none());
        assert!(Tsp::new(&[(0.0, 0.0), (1.0, f64::NAN), (2.0, 2.0)], 1.0).is_none());
    }
}
