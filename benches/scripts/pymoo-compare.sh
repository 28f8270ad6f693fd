#!/usr/bin/env bash
# Exelixi's NSGA-II against pymoo 0.6.2's on ZDT1-3, side by side in one run.
#
#   benches/scripts/pymoo-compare.sh
#
# Installs pymoo 0.6.2 into a scratch virtualenv (target/pymoo-venv; PyPI must be
# reachable the first time). Both: population 100, 25 000 evaluations (pymoo: n_gen 250,
# the first generation included; exelixi: the initial population and 249 generations),
# SBX of index 15 with probability 0.9 and polynomial mutation of index 20 (pymoo's
# defaults, and ga-core's ZDT operators), seeds 0-10; the hypervolume of the final
# non-dominated set with reference point (1.1, 1.1) (pymoo's HV indicator for pymoo,
# ga_core::moo::hypervolume_2d for exelixi), per seed and median.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${CARGO_TARGET_DIR:-target}/pymoo-venv"
if ! "$venv/bin/python" -c 'import pymoo; assert pymoo.__version__ == "0.6.2"' 2>/dev/null; then
    echo "pymoo-compare: installing pymoo 0.6.2 into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check pymoo==0.6.2
fi
cargo build --release --quiet -p ga-core --example zdt_hv
ours="$(cargo run --release --quiet -p ga-core --example zdt_hv -- 249 11 2>/dev/null)"

OURS="$ours" "$venv/bin/python" - <<'PY'
import json, os, statistics
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.indicators.hv import HV
from pymoo.optimize import minimize
from pymoo.problems import get_problem

hv = HV(ref_point=[1.1, 1.1])
ours = [json.loads(l) for l in os.environ["OURS"].splitlines() if l.strip()]
print(f"{'problem':8} {'seed':>4} {'pymoo':>8} {'exelixi':>8}")
for name in ["zdt1", "zdt2", "zdt3"]:
    theirs, mine = [], []
    for seed in range(11):
        res = minimize(get_problem(name), NSGA2(pop_size=100), ("n_gen", 250), seed=seed, verbose=False)
        assert res.algorithm.evaluator.n_eval == 25000
        t = hv(res.F)
        m = next(o for o in ours if o["problem"].lower() == name and o["seed"] == seed)
        assert m["evaluations"] == 25000
        theirs.append(t)
        mine.append(m["hypervolume"])
        print(f"{name:8} {seed:>4} {t:8.4f} {m['hypervolume']:8.4f}")
    print(f"{name:8} {'median':>4} {statistics.median(theirs):8.4f} {statistics.median(mine):8.4f}"
          f"   (exelixi {'at least' if statistics.median(mine) >= statistics.median(theirs) else 'BELOW'} pymoo)")
PY
