#!/usr/bin/env bash
# The engine against an earlier build of itself, side by side: OneMax at 1 000 and 100
# bits under the benchmark protocol, one thread.
#
#   benches/scripts/engine-ab.sh REV [ROUNDS]
#
# Builds `profile_onemax` (this tree's source of it, which REV's engine API also serves)
# and the criterion `engine` bench at REV, in a scratch worktree with a target directory
# of its own (the first build there takes minutes), and both here; then
#   1. ROUNDS (default 10) alternating rounds of `profile_onemax 1000 100` and
#      `profile_onemax 100 300` of each build: medians and the paired median ratio, and
#      the runs' digests, which must agree (the same GA, or the script fails);
#   2. criterion's `onemax1000/full` of REV, of this tree, and again of each (the two
#      binaries alternating), and this tree's `onemax100/full`.
# This machine's speed moves by up to 2x within the hour: quote the paired ratios, not the
# absolute rates of different runs. The worktree stays for the next run's build; remove it
# with `git worktree remove --force ${TMPDIR:-/tmp}/exelixi-engine-ab-REV/tree`.
set -euo pipefail

rev="${1:?usage: engine-ab.sh REV [ROUNDS]}"
rounds="${2:-10}"
here="$(git rev-parse --show-toplevel)"
cd "$here"
sha="$(git rev-parse --short "$rev^{commit}")"
scratch="${TMPDIR:-/tmp}/exelixi-engine-ab-$sha"
tree="$scratch/tree"
target="$scratch/target"

if [ ! -d "$tree" ]; then
  git worktree add --detach -f "$tree" "$sha" >/dev/null
fi
cp benches/examples/profile_onemax.rs "$tree/benches/examples/profile_onemax.rs"
build() { # DIR TARGET: builds profile_onemax and the engine bench, prints the bench's path
  (cd "$1" && CARGO_TARGET_DIR="$2" cargo build -q --profile bench -p exelixi-benches --example profile_onemax >&2 \
    && CARGO_TARGET_DIR="$2" cargo bench -p exelixi-benches --bench engine --no-run 2>&1 \
      | sed -n 's/.*Executable benches\/engine.rs (\(.*\))/\1/p' | tail -n 1)
}
absolute() { # DIR PATH
  case "$2" in /*) echo "$2" ;; *) echo "$1/$2" ;; esac
}
echo "building $sha in $tree ..." >&2
old_bench="$(absolute "$tree" "$(build "$tree" "$target")")"
old_po="$target/release/examples/profile_onemax"
echo "building this tree ..." >&2
new_target="${CARGO_TARGET_DIR:-$here/target}"
new_bench="$(absolute "$here" "$(build "$here" "$new_target")")"
new_po="$new_target/release/examples/profile_onemax"
for f in "$old_bench" "$old_po" "$new_bench" "$new_po"; do
  [ -x "$f" ] || { echo "engine-ab.sh: no $f after the build" >&2; exit 1; }
done

python3 - "$rounds" "$old_po" "$new_po" "$sha" <<'EOF'
import statistics, subprocess, sys, time
rounds, old, new, sha = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
for args in (["1000", "100"], ["100", "300"]):
    t = {old: [], new: []}
    digests = set()
    for r in range(rounds):
        for exe in (old, new) if r % 2 == 0 else (new, old):
            s = time.perf_counter()
            out = subprocess.run([exe, *args], capture_output=True, text=True, check=True).stdout
            t[exe].append(time.perf_counter() - s)
            digests.add(out.split("digest ")[1].rstrip(")\n"))
    if len(digests) != 1:
        sys.exit(f"profile_onemax {' '.join(args)}: the builds ran different GAs (digests {sorted(digests)})")
    paired = statistics.median(n / o for o, n in zip(t[old], t[new]))
    print(f"profile_onemax {args[0]} bits, {args[1]} runs, {rounds} rounds: {sha} "
          f"{statistics.median(t[old]) * 1e3:.0f} ms, this tree {statistics.median(t[new]) * 1e3:.0f} ms, "
          f"paired time ratio {paired:.3f} ({1 / paired:.2f}x the throughput); digests agree")
EOF

for pass in 1 2; do
  for which in old new; do
    if [ "$which" = old ]; then exe="$old_bench"; name="$sha"; else exe="$new_bench"; name="this tree"; fi
    echo "criterion onemax1000/full, $name, pass $pass:"
    "$exe" --bench onemax1000/full --noplot 2>&1 | grep -E "thrpt:" | head -n 1
  done
done
echo "criterion onemax100/full, this tree:"
"$new_bench" --bench onemax100/full --noplot 2>&1 | grep -E "thrpt:" | head -n 1
