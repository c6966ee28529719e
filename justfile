# topo: topographic CNNs, from YAML experiments to the paper's tables.
# Recipes use the dev profile, which optimises every dependency (candle's kernels) and
# shares its build with the tests; `cargo build --release` gives the fastest binary.
# `just --list` shows every recipe.

# Train every pending run of an experiment, e.g. `just run experiments/quickstart.yaml`
run file *args:
    cargo run --quiet -- run {{file}} {{args}}

# Tables and figures for an experiment's results, e.g. `just report results/quickstart`
report dir:
    cargo run --quiet -- report {{dir}}

# The runs an experiment implies and their status
plan file *args:
    cargo run --quiet -- plan {{file}} {{args}}

# Check an experiment file
validate file:
    cargo run --quiet -- validate {{file}}

# The whole test suite (what CI runs)
test:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings
    cargo run --quiet -- schema --check
    cargo nextest run --workspace --no-fail-fast

# Regenerate the JSON schemas after changing the config types
schema:
    cargo run --quiet -- schema

# Benchmarks: planning, the topographic loss, the audio front end, the report
bench:
    cargo bench --bench plan
    cargo bench --bench topo_loss
    cargo bench --bench frontend
    cargo bench --bench report

# The quickstart end to end: train, then report
quickstart:
    cargo run --quiet -- run experiments/quickstart.yaml
    cargo run --quiet -- report results/quickstart

# A real one-node Slurm on localhost (root; installs slurm and munge): a 6-run job array, then a run cancelled and resumed
slurm-test:
    scripts/slurm_test.sh

# SIGKILL `topo run` 20 times across a tiny experiment; the results must equal an uninterrupted run's
kill-test:
    scripts/kill_test.sh
