#!/usr/bin/env bash
# exelixi mesos --workers N against exelixi run --workers N on the same configuration,
# side by side, alternating, ROUNDS times each: placement time (start to all N workers
# serving, as exelixi mesos reports it), and wall time per generation after placement.
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

for i in $(seq "$rounds"); do
  start=$(date +%s.%N)
  "$exe" mesos --master "$MESOS_MASTER" --workers "$workers" "${flags[@]}" >"$out/mesos.out" 2>"$out/mesos.err"
  end=$(date +%s.%N)
  placement=$(sed -n 's/^mesos: [0-9]* workers serving \([0-9.]*\) s.*/\1/p' "$out/mesos.err")
  gens=$(grep -c '^gen' "$out/mesos.out")
  echo "mesos $end $start $placement $gens" >>"$out/times"
  start=$(date +%s.%N)
  "$exe" run --workers "$workers" "${flags[@]}" >"$out/local.out"
  end=$(date +%s.%N)
  echo "local $end $start 0 $(grep -c '^gen' "$out/local.out")" >>"$out/times"
  cmp -s "$out/mesos.out" "$out/local.out" || { echo "outputs differ" >&2; exit 1; }
done

python3 - "$out/times" "$workers" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def summary(kind):
    runs = [(float(e) - float(s), float(p), int(g)) for k, e, s, p, g in rows if k == kind]
    per_gen = [(wall - place) / gens * 1e3 for wall, place, gens in runs]
    return statistics.median(w for w, _, _ in runs), statistics.median(p for _, p, _ in runs), statistics.median(per_gen), runs[0][2]
m, l = summary("mesos"), summary("local")
print(f"workers {sys.argv[2]}, {m[3]} generations, {len(rows)//2} rounds each (medians):")
print(f"  exelixi mesos:        wall {m[0]:.3f} s, placement {m[1]:.3f} s, {m[2]:.3f} ms/generation after placement")
print(f"  exelixi run --workers: wall {l[0]:.3f} s, {l[2]:.3f} ms/generation (worker start included)")
print(f"  mesos / local per generation: {m[2] / l[2]:.3f}")
PY
