# Recipes are single cargo commands; `just` is optional (the README gives the cargo forms).

# The main job: the standalone GA on the default problem (sum231).
run *ARGS:
    cargo run --release -p exelixi -- run {{ARGS}}

# The test command (what CI runs first).
test:
    cargo test --workspace

# CI in full: tests, fmt, clippy, docs.
ci:
    bash .ci/run

# Criterion benchmarks of the engine's hot loop.
bench:
    cargo bench -p exelixi-benches --bench engine

# Solution-quality figures (sum231 success rate, OneMax evaluations to optimum, ...).
quality:
    cargo run --release -p exelixi-benches --example quality
