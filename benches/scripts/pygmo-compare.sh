#!/usr/bin/env bash
# Exelixi against pygmo 2.20 on Rastrigin-30, side by side in one run.
#
#   benches/scripts/pygmo-compare.sh [quality|archipelago|all]   (default: all)
#
# Installs pygmo 2.20.0 into a scratch virtualenv (target/pygmo-venv; PyPI must be
# reachable the first time) and builds `exelixi` (release). Two comparisons, seeds 0-4:
#
# - quality: pygmo's sga (population 100, 1 000 generations = 100 000 evaluations; SBX
#   crossover, polynomial mutation, tournament 3, as in ../shared/docs/BENCHMARKS.md) against
#   `exelixi run --problem rastrigin --size 30 --pop 100 --max-indiv 100000`, with its default
#   target (f <= 0.001) and without it (--target 1): the best Rastrigin value reached (0 is
#   the optimum), per seed and median.
# - archipelago: pygmo's two mp_islands of 100 on a ring, 10 evolve() of 100 generations,
#   against `exelixi run --workers 2` on the same total (population 200, 1 000 generations),
#   as 2 islands migrating 1 individual every 100 generations (`--migrate-every 100
#   --migrants 1`, ring) and as one population: evaluations per second and best value.
#   pygmo's and exelixi's island runs of a seed alternate 3 times (the median of the three
#   is the seed's rate).
#
# Exelixi prints fitness 1/(1+f); the script converts it back to the Rastrigin value f.
set -euo pipefail
cd "$(dirname "$0")/../.."
what="${1:-all}"
case "$what" in quality | archipelago | all) ;; *)
    echo "usage: $0 [quality|archipelago|all]" >&2
    exit 2
    ;;
esac

venv="${CARGO_TARGET_DIR:-target}/pygmo-venv"
if ! "$venv/bin/python" -c 'import pygmo; assert pygmo.__version__ == "2.20.0"' 2>/dev/null; then
    echo "pygmo-compare: installing pygmo 2.20.0 into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check pygmo==2.20.0
fi
cargo build --release --quiet -p exelixi
exelixi="${CARGO_TARGET_DIR:-target}/release/exelixi"

# A file, not stdin: mp_island's worker processes import the main module again.
driver="${CARGO_TARGET_DIR:-target}/pygmo-compare.py"
cat >"$driver" <<'PY'
import json, statistics, subprocess, sys, time
import pygmo as pg

SEEDS = range(5)
ROUNDS = 3

def sga(gen, seed):
    return pg.algorithm(pg.sga(gen=gen, cr=0.9, eta_c=1.0, m=1.0 / 30, param_m=1.0, param_s=3,
                               crossover="sbx", mutation="polynomial", selection="tournament", seed=seed))

def exelixi_run(exelixi, args):
    """Runs exelixi with --json; returns (evaluations, best Rastrigin value, seconds), and
    the same two counts from its first generation's line to its last (evaluations after the
    initial population, seconds after the workers started and evaluated it), which is what
    pygmo's timing of evolve() covers."""
    start = time.perf_counter()
    p = subprocess.Popen([exelixi, "run", "--json", *args], stdout=subprocess.PIPE, text=True)
    gens, stamps = [], []
    for line in p.stdout:
        if line.strip():
            record = json.loads(line)
            if "gen" in record:
                gens.append(record)
                stamps.append(time.perf_counter())
    if p.wait() != 0:
        raise SystemExit(f"exelixi {' '.join(args)} failed")
    seconds = time.perf_counter() - start
    best_fitness = max(g["best"] for g in gens)
    return (gens[-1]["total"], 1.0 / best_fitness - 1.0, seconds,
            (gens[-1]["total"] - gens[0]["total"], stamps[-1] - stamps[0]))

def show(title, rows):
    print(title)
    for name, values in rows:
        print(f"  {name:<44} " + "  ".join(f"{v:10.4g}" for v in values) + f"   median {statistics.median(values):.4g}")

def main(what, exelixi):
    if what in ("quality", "all"):
        ours, used, whole, theirs = [], [], [], []
        for s in SEEDS:
            pop = pg.population(pg.problem(pg.rastrigin(30)), size=100, seed=s)
            pop = sga(1000, s).evolve(pop)
            theirs.append(pop.champion_f[0])
            args = ["--problem", "rastrigin", "--size", "30", "--pop", "100", "--max-indiv", "100000", "--seed", str(s)]
            evaluations, best, _, _ = exelixi_run(exelixi, args)
            ours.append(best)
            used.append(evaluations)
            # Without the default target (fitness 0.999, f <= 0.001) the run uses the budget.
            whole.append(exelixi_run(exelixi, [*args, "--target", "1"])[1])
        show("quality: Rastrigin-30, population 100, 100 000 evaluations, best value by seed 0-4 (lower is better)",
             [("pygmo 2.20 sga (SBX, polynomial, tournament 3)", theirs),
              ("exelixi run --problem rastrigin (defaults)", ours),
              ("  its evaluations (it stops at f <= 0.001)", used),
              ("exelixi, the same with --target 1", whole)])

    if what in ("archipelago", "all"):
        rates, bests, sync_rates, sync_bests, island_rates, island_bests, island_evolve = [], [], [], [], [], [], []
        # Both exelixi runs go the whole 1 000 generations: no target, and a histogram fine
        # enough that the population never reads as converged.
        common = ["--workers", "2", "--problem", "rastrigin", "--size", "30", "--pop", "200", "--gens", "1000", "--offspring", "1",
                  "--target", "1", "--term-limit", "0", "--hist-granularity", "9"]
        # Each seed's pygmo and exelixi island runs alternate ROUNDS times: on a shared
        # machine one sample per seed can land in a slow second; rates are the median of a
        # seed's rounds (the runs of a seed are the same run, so best values do not vary).
        for s in SEEDS:
            rate, whole, evolve = [], [], []
            for _ in range(ROUNDS):
                archi = pg.archipelago(n=2, t=pg.topology(pg.ring()), algo=sga(100, s),
                                       prob=pg.problem(pg.rastrigin(30)), pop_size=100, udi=pg.mp_island(), seed=s)
                before = sum(i.get_population().problem.get_fevals() for i in archi)
                start = time.perf_counter()
                for _ in range(10):
                    archi.evolve()
                    archi.wait_check()
                seconds = time.perf_counter() - start
                fevals = sum(i.get_population().problem.get_fevals() for i in archi) - before
                rate.append(fevals / seconds)
                evaluations, best, seconds, (evolved, evolving) = exelixi_run(
                    exelixi, [*common, "--migrate-every", "100", "--migrants", "1", "--seed", str(s)])
                whole.append(evaluations / seconds)
                evolve.append(evolved / evolving)
            rates.append(statistics.median(rate))
            bests.append(min(f[0] for f in archi.get_champions_f()))
            island_rates.append(statistics.median(whole))
            island_evolve.append(statistics.median(evolve))
            island_bests.append(best)
            evaluations, best, seconds, _ = exelixi_run(exelixi, [*common, "--seed", str(s)])
            sync_rates.append(evaluations / seconds)
            sync_bests.append(best)
        pg.mp_island.shutdown_pool()
        show("archipelago: Rastrigin-30, 2 x 100 individuals, 1 000 generations, seeds 0-4: evaluations per second",
             [("pygmo 2 mp_islands, ring, 10 x evolve(100)", rates),
              ("exelixi 2 islands (--migrate-every 100)", island_rates),
              ("  the same, first to last generation", island_evolve),
              ("exelixi one population of 200", sync_rates)])
        show("  best value (lower is better)",
             [("pygmo archipelago", bests), ("exelixi 2 islands", island_bests),
              ("exelixi one population of 200", sync_bests)])
        print(f"  exelixi islands / pygmo evaluations per second: "
              f"{statistics.median(island_rates) / statistics.median(rates):.2f} for the whole command (starting"
              f" its workers and evaluating the first population), "
              f"{statistics.median(island_evolve) / statistics.median(rates):.2f} from the first generation to the"
              " last, as pygmo's timing of evolve() (its pool warm after seed 0, its population evaluated before)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
PY
"$venv/bin/python" "$driver" "$what" "$exelixi"
