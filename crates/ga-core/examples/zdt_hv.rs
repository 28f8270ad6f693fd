//! Hypervolume (reference 1.1, 1.1) of NSGA-II's last front on ZDT1–3, population 100:
//! `cargo run --release -p ga-core --example zdt_hv [GENERATIONS [SEEDS]]` (defaults 249
//! and 11: 25 000 evaluations, seeds 0–10). One JSON line per run, then the medians.
use ga_core::moo::{Nsga2, front_points, hypervolume_2d};
use ga_core::problems::{Zdt, ZdtKind};

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().expect("whole numbers: GENERATIONS SEEDS"));
    let generations = args.next().unwrap_or(249) as u32;
    let seeds = args.next().unwrap_or(11);
    for kind in [ZdtKind::Zdt1, ZdtKind::Zdt2, ZdtKind::Zdt3] {
        let mut hvs = Vec::new();
        for seed in 0..seeds {
            let settings = Nsga2 { population: 100, generations, crossover_rate: 0.9, seed };
            let (population, evaluations) = settings.run(&Zdt::new(kind)).expect("a valid run");
            let hv = hypervolume_2d(&front_points(&population), [1.1, 1.1]);
            println!(r#"{{"problem": "{kind:?}", "seed": {seed}, "evaluations": {evaluations}, "hypervolume": {hv}}}"#);
            hvs.push(hv);
        }
        hvs.sort_by(f64::total_cmp);
        let median =
            if hvs.len() % 2 == 1 { hvs[hvs.len() / 2] } else { (hvs[hvs.len() / 2 - 1] + hvs[hvs.len() / 2]) / 2.0 };
        eprintln!("{kind:?}: median hypervolume {median:.4} over {seeds} seeds");
    }
}
