//! Hypervolume (reference 1.1, 1.1) of NSGA-II's last front on ZDT1–3, population 100,
//! 250 generations, seeds 0–10: `cargo run --release -p ga-core --example zdt_hv`.
use ga_core::moo::{Nsga2, hypervolume_2d};
use ga_core::problems::{Zdt, ZdtKind};

fn main() {
    for kind in [ZdtKind::Zdt1, ZdtKind::Zdt2, ZdtKind::Zdt3] {
        let mut hvs: Vec<f64> = (0..11)
            .map(|seed| {
                let settings = Nsga2 { population: 100, generations: 250, crossover_rate: 0.9, seed };
                let (population, _) = settings.run(&Zdt::new(kind)).expect("a valid run");
                let front: Vec<[f64; 2]> = population
                    .iter()
                    .filter(|s| s.rank == 0)
                    .map(|s| [s.evaluation.objectives[0], s.evaluation.objectives[1]])
                    .collect();
                hypervolume_2d(&front, [1.1, 1.1])
            })
            .collect();
        hvs.sort_by(f64::total_cmp);
        println!(
            "{kind:?}: hypervolume median {:.4} (min {:.4}, max {:.4}) over seeds 0-10, 25 100 evaluations",
            hvs[5], hvs[0], hvs[10]
        );
    }
}
