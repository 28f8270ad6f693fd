#!/usr/bin/env bash
# How a generation's cost grows with the number of workers: `exelixi mesos --workers N` and
# `exelixi run --workers N` on the same configuration with a near-free fitness (so that a
# generation's time is the framework's coordination), for N in WORKERS (default
# 1 2 4 8 16 32 50), ROUNDS rounds (default 3) alternating. Reports the median placement
# time and time per generation (first generation's line to the last's), fits
# t(N) = a + b N + c N^2 to the Mesos medians, and the time per delivery ((t(N) - t(1)) /
# (N (N - 1))), prints a Markdown table and writes an SVG
# plot to PLOT (default target/mesos-scale.svg). Every Mesos run's stdout is compared byte
# for byte with the local run's, and after each Mesos run no executor or worker process may
# be left. Needs a real Mesos master with at least max(WORKERS) agents:
#
#   MESOS_MASTER=$(tools/mesos-local/up --agents 50 --port 5271 | tail -n 1) benches/scripts/mesos-scale.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${MESOS_MASTER:?set MESOS_MASTER to a Mesos master with enough agents (tools/mesos-local/up --agents 50)}"
rounds="${ROUNDS:-3}"
read -r -a counts <<<"${WORKERS:-1 2 4 8 16 32 50}"
plot="${PLOT:-target/mesos-scale.svg}"
# Near-free fitness (Rastrigin-30, ~0.1 µs), population 100, about 150 generations.
flags=(--problem rastrigin --size 30 --pop 100 --max-indiv 15000 --seed 3 --threads 1)

cargo build --release -q -p exelixi
exe="$PWD/target/release/exelixi"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# shellcheck source=benches/scripts/lib.sh
source benches/scripts/lib.sh

# Fails when an executor or worker of this build is still running 15 s after a run ended.
nothing_left() {
  for _ in $(seq 150); do
    pgrep -f "^$exe (executor|worker)" >/dev/null || return 0
    sleep 0.1
  done
  echo "processes left after the run with $1 workers:" >&2
  pgrep -af "^$exe (executor|worker)" >&2
  exit 1
}

for i in $(seq "$rounds"); do
  for n in "${counts[@]}"; do
    read -r first last gens < <(stamped "$out/mesos.out" "$exe" mesos --master "$MESOS_MASTER" --workers "$n" "${flags[@]}" 2>"$out/mesos.err") \
      || { tail -n 5 "$out/mesos.err" >&2; exit 1; }
    nothing_left "$n"
    echo "mesos $n $first $last $(placement "$out/mesos.err") $gens" >>"$out/times"
    read -r first last gens < <(stamped "$out/local.out" "$exe" run --workers "$n" "${flags[@]}")
    echo "local $n $first $last 0 $gens" >>"$out/times"
    cmp -s "$out/mesos.out" "$out/local.out" || { echo "outputs differ with $n workers" >&2; exit 1; }
    echo "round $i, $n workers: $gens generations" >&2
  done
done

python3 - "$out/times" "$plot" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def med(kind, n, col):
    runs = [r for r in rows if r[0] == kind and int(r[1]) == n]
    if col == "per_gen":
        return statistics.median((float(r[3]) - float(r[2])) / (int(r[5]) - 1) * 1e3 for r in runs)
    return statistics.median(float(r[4]) for r in runs)
ns = sorted({int(r[1]) for r in rows})
mesos = [med("mesos", n, "per_gen") for n in ns]
local = [med("local", n, "per_gen") for n in ns]
place = [med("mesos", n, "placement") for n in ns]

# Least squares for t = a + b n + c n^2 (normal equations, Gaussian elimination).
X = [[1.0, n, n * n] for n in ns]
A = [[sum(x[i] * x[j] for x in X) for j in range(3)] + [sum(x[i] * t for x, t in zip(X, mesos))] for i in range(3)]
for i in range(3):
    p = max(range(i, 3), key=lambda r: abs(A[r][i])); A[i], A[p] = A[p], A[i]
    for r in range(3):
        if r != i:
            f = A[r][i] / A[i][i]; A[r] = [u - f * v for u, v in zip(A[r], A[i])]
a, b, c = (A[i][3] / A[i][i] for i in range(3))
fit = lambda n: a + b * n + c * n * n

gens = rows[0][5]
print(f"{len(rows) // (2 * len(ns))} rounds, {gens} generations per run (Rastrigin-30, population 100); medians")
print()
# Each of N workers sends one delivery to each of the N - 1 others per generation: what a
# generation costs beyond one worker's, per delivery.
per_delivery = lambda n, t: f"{(t - mesos[0]) / (n * (n - 1)) * 1e3:.0f}" if n > 1 and ns[0] == 1 else ""
print("| workers | placement (s) | ms/generation, mesos | ms/generation, run --workers | fit | µs per delivery, mesos |")
print("|---:|---:|---:|---:|---:|---:|")
for n, p, m, l in zip(ns, place, mesos, local):
    print(f"| {n} | {p:.3f} | {m:.2f} | {l:.2f} | {fit(n):.2f} | {per_delivery(n, m)} |")
print()
print(f"fit (mesos): t(N) = {a:.3f} + {b:.4f} N + {c:.5f} N^2 ms")

# The plot: both series and the fit, linear axes.
W, H, L, R, T, B = 640, 400, 60, 20, 30, 50
xmax, ymax = max(ns), max(mesos + local) * 1.1
sx = lambda n: L + (W - L - R) * n / xmax
sy = lambda t: H - B - (H - T - B) * t / ymax
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W / 2}" y="18" text-anchor="middle">Time per generation against workers (near-free fitness, one machine)</text>',
       f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
       f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>',
       f'<text x="{W / 2}" y="{H - 12}" text-anchor="middle">workers</text>',
       f'<text x="14" y="{H / 2}" transform="rotate(-90 14 {H / 2})" text-anchor="middle">ms per generation</text>']
for n in ns:
    svg.append(f'<text x="{sx(n):.1f}" y="{H - B + 16}" text-anchor="middle">{n}</text>')
step = 10 ** len(str(int(ymax))) / 10 or 1
for k in range(0, int(ymax / step) + 1):
    svg.append(f'<text x="{L - 6}" y="{sy(k * step) + 4:.1f}" text-anchor="end">{k * step:g}</text>')
    svg.append(f'<line x1="{L}" y1="{sy(k * step):.1f}" x2="{W - R}" y2="{sy(k * step):.1f}" stroke="#ddd"/>')
curve = " ".join(f"{sx(x):.1f},{sy(fit(x)):.1f}" for x in [xmax * i / 100 for i in range(101)])
svg.append(f'<polyline points="{curve}" fill="none" stroke="#999" stroke-dasharray="4 3"/>')
for name, ys, colour, y in (("exelixi mesos", mesos, "#c0392b", T + 14), ("exelixi run --workers", local, "#2471a3", T + 30)):
    svg.append(f'<polyline points="{" ".join(f"{sx(n):.1f},{sy(t):.1f}" for n, t in zip(ns, ys))}" fill="none" stroke="{colour}" stroke-width="2"/>')
    svg += [f'<circle cx="{sx(n):.1f}" cy="{sy(t):.1f}" r="3" fill="{colour}"/>' for n, t in zip(ns, ys)]
    svg.append(f'<text x="{L + 12}" y="{y}" fill="{colour}">{name}</text>')
svg.append(f'<text x="{L + 12}" y="{T + 46}" fill="#777">fit: {a:.2f} + {b:.3f} N + {c:.4f} N²</text>')
svg.append("</svg>")
open(sys.argv[2], "w").write("\n".join(svg) + "\n")
print(f"plot: {sys.argv[2]}")
PY
