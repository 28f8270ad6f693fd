# Shared by the scripts beside it (sourced, not run).

# stamped COPY CMD...: runs CMD, copies its stdout to COPY, and prints when its first and
# last `gen` lines came (monotonic seconds) and how many there were; fails as CMD fails.
stamped() {
  local copy="$1"; shift
  python3 -c '
import subprocess, sys, time
out = open(sys.argv[1], "w")
p = subprocess.Popen(sys.argv[2:], stdout=subprocess.PIPE, text=True)
first = last = None; gens = 0
for line in p.stdout:
    out.write(line)
    if line.startswith("gen\t"):
        last = time.monotonic(); first = first or last; gens += 1
out.close()
sys.exit(p.wait() or print(first, last, gens, flush=True))
' "$copy" "$@"
}

# placement ERR: the placement time `exelixi mesos` reported on stderr (file ERR), seconds.
placement() {
  sed -n 's/^mesos: [0-9]* workers serving \([0-9.]*\) s.*/\1/p' "$1"
}
