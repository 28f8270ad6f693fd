#!/usr/bin/env bash
# exelixi mesos --workers N against exelixi run --workers N on the same configuration,
# side by side, alternating, ROUNDS times each: placement time (start to all N workers
# serving, as exelixi mesos reports it), and time per generation from the first
# generation's line to the last's (start, placement, final report and teardown excluded,
# so both are measured alike).
# Needs a real Mesos master: MESOS_MASTER=host:port (e.g. from tools/mesos-local/up).
#
#   MESOS_MASTER=$(tools/mesos-local/up --agents 3 | tail -n 1) benches/scripts/mesos-vs-local.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${MESOS_MASTER:?set MESOS_MASTER to a Mesos master (tools/mesos-local/up prints one)}"
rounds="${ROUNDS:-7}"
workers="${WORKERS:-2}"
# Near-free fitness: the time per generation is the framework's coordination.
flags=(--problem rastrigin --size 30 --max-indiv 300000 --seed 3 --threads 1)

cargo build --release -q -p exelixi
exe=target/release/exelixi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# shellcheck source=benches/scripts/lib.sh
source benches/scripts/lib.sh

for i in $(seq "$rounds"); do
  read -r first last gens < <(stamped "$out/mesos.out" "$exe" mesos --master "$MESOS_MASTER" --workers "$workers" "${flags[@]}" 2>"$out/mesos.err")
  placement=$(placement "$out/mesos.err")
  echo "mesos $first $last $placement $gens" >>"$out/times"
  read -r first last gens < <(stamped "$out/local.out" "$exe" run --workers "$workers" "${flags[@]}")
  echo "local $first $last 0 $gens" >>"$out/times"
  cmp -s "$out/mesos.out" "$out/local.out" || { echo "outputs differ" >&2; exit 1; }
done

python3 - "$out/times" "$workers" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def summary(kind):
    runs = [(float(l) - float(f), float(p), int(g)) for k, f, l, p, g in rows if k == kind]
    per_gen = [span / (gens - 1) * 1e3 for span, _, gens in runs]
    return statistics.median(p for _, p, _ in runs), statistics.median(per_gen), runs[0][2]
m, l = summary("mesos"), summary("local")
print(f"workers {sys.argv[2]}, {m[2]} generations, {len(rows)//2} rounds each (medians), first to last generation:")
print(f"  exelixi mesos:         placement {m[0]:.3f} s, {m[1]:.3f} ms/generation")
print(f"  exelixi run --workers: {l[1]:.3f} ms/generation")
print(f"  mesos / local per generation: {m[1] / l[1]:.3f}")
PY
