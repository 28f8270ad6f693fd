# Recipes are single commands; `just` is optional (the README gives the plain forms).

# The main job: the standalone GA on the default problem (sum231).
run *ARGS:
    cargo run --release -p exelixi -- run {{ARGS}}

# The test command (what CI runs first): a real local Mesos, then cargo test --workspace.
test *ARGS:
    tools/test {{ARGS}}

# CI in full: tests, fmt, clippy, docs.
ci:
    bash .ci/run

# Criterion benchmarks of the engine's hot loop, then the distributed benchmark.
bench:
    cargo bench -p exelixi-benches

# Solution-quality figures (sum231 success rate, OneMax evaluations to optimum, ...).
quality:
    cargo run --release -p exelixi-benches --example quality

# A real local Mesos for trying things by hand (tools/mesos-local/README.md).
mesos-up:
    tools/mesos-local/up --agents 3 --port 5050
