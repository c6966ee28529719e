# topo: topographic CNNs, from YAML experiments to the paper's tables.
# Recipes use the dev profile, which optimises the training hot path (candle, gemm, this
# crate's kernels, every dependency without its debug assertions) and shares its build with
# the tests; it trains as fast as `cargo build --release`, which optimises all.
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

# The whole test suite: fmt, clippy, the schema check, every test (installs cargo-nextest, TensorBoard, Chromium and QEMU once if missing; as root, also the tests that need it)
test:
    #!/usr/bin/env bash
    set -euo pipefail
    bash scripts/test_deps.sh
    if ! cargo nextest --version >/dev/null 2>&1; then
        echo "cargo-nextest is missing: installing it once with 'cargo install --locked cargo-nextest' (a few minutes)"
        cargo install --locked --quiet cargo-nextest
    fi
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo run --quiet -- schema --check
    # Tests that need root (a tmpfs to fill) are ignored elsewhere, and say so.
    ignored=()
    if [ "$(id -u)" = 0 ]; then ignored=(--run-ignored all); fi
    cargo nextest run --workspace --no-fail-fast "${ignored[@]}"

# Regenerate the JSON schemas after changing the config types
schema:
    cargo run --quiet -- schema

# Training speed against PyTorch, side by side, 3 rounds per row with the frameworks alternating: medians and ranges of the ratios, every model a CPU user trains, each loss, and one whole fmnist_pruning run (installs torch and the full Fashion-MNIST once; about an hour); writes bench/RESULTS-<instruction set>.md. `just bench --quick`: one narrow row, one round. `just bench --cap-avx2` on an AVX-512 CPU: both frameworks held to AVX2 (topo built without its `avx512` feature, in target/avx2), written to bench/RESULTS-avx2-capped.md
bench *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    bash bench/setup.sh
    bash scripts/fashion_mnist.sh
    features=()
    isa=$(grep -q avx512f /proc/cpuinfo && echo avx512 || echo avx2)
    case " {{ARGS}} " in
        *" --cap-avx2 "*)
            # Its own target folder: the feature change would otherwise rebuild the default one.
            features=(--no-default-features)
            export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/avx2"
            isa=avx2-capped
            ;;
    esac
    cargo build --quiet --release "${features[@]}" --bin topo
    bin=$(cargo bench "${features[@]}" --bench train_step --no-run --message-format=json \
        | python3 -c 'import json, sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "train_step" and m.get("executable")][-1])')
    python3 bench/compare.py --topo-bin "$bin" --topo-cli "${CARGO_TARGET_DIR:-target}/release/topo" --markdown "bench/RESULTS-$isa.md" {{ARGS}}

# topo against an independent PyTorch implementation of the same recipe (bench/parity.py): the base and 2D grid runs of experiments/fmnist_pruning.yaml, 5 seeds in each framework; installs torch and the full Fashion-MNIST once. `just parity --steps [N]`: instead, N steps (20) of experiments/steps.yaml traced by `topo trace` and retaken in PyTorch, compared step by step (bench/steps.py)
parity *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    bash bench/setup.sh
    cargo build --quiet
    bin="${CARGO_TARGET_DIR:-target}/debug/topo"
    set -- {{ARGS}}
    if [ "${1:-}" = --steps ]; then
        # `--steps` alone takes the default count; `--steps N` passes N on.
        if ! [[ "${2:-}" =~ ^[0-9]+$ ]]; then shift; fi
        exec python3 bench/steps.py --topo-bin "$bin" "$@"
    fi
    bash scripts/fashion_mnist.sh
    python3 bench/parity.py --topo-bin "$bin" "$@"

# The analyses against an independent numpy implementation (bench/analyses.py): trains the quickstart if it has not run, re-analyses it keeping the raw responses, and recomputes every map and statistic from them
analyses-check *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    bash bench/setup.sh
    cargo build --quiet
    bin="${CARGO_TARGET_DIR:-target}/debug/topo"
    "$bin" run experiments/quickstart.yaml --no-report
    "$bin" analyse results/quickstart --force --responses --no-report
    python3 bench/analyses.py results/quickstart {{ARGS}}

# Your own images, end to end: the shipped Fashion-MNIST subset written as a PNG image folder (the IDX loader's very examples), then base vs 2D grid through both loaders, 3 seeds each, and the report (about 3 minutes)
image-folder-demo *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --quiet
    bin="${CARGO_TARGET_DIR:-target}/debug/topo"
    python3 scripts/image_folder_demo.py --topo-bin "$bin"
    "$bin" run experiments/image_folder.yaml {{ARGS}}

# The paper's pruning claim at CPU scale: narrow ResNet-18s on the full Fashion-MNIST (installed with apt once), 25 runs, then the report
fmnist-pruning *ARGS:
    bash scripts/fashion_mnist.sh
    cargo run --quiet -- run experiments/fmnist_pruning.yaml {{ARGS}}

# The parts' benchmarks: planner, topographic loss, audio front end, report
bench-parts:
    cargo bench --bench plan
    cargo bench --bench topo_loss
    cargo bench --bench frontend
    cargo bench --bench report

# `cargo check --features cuda` with nvcc from NVIDIA's PyPI wheels (no GPU or toolkit needed)
cuda-check:
    bash scripts/cuda_check.sh

# Train on the first NVIDIA GPU, e.g. `just run-cuda experiments/table1.yaml`: CUDA for this GPU and driver (scripts/cuda_env.sh: NVIDIA's wheels, or CUDA_HOME), the build in target/cuda (gpu-check's), then `topo run FILE --device cuda`
run-cuda file *args:
    #!/usr/bin/env bash
    set -euo pipefail
    export CUDA_WHEELS_LINK=1
    source scripts/cuda_env.sh
    export CARGO_TARGET_DIR="${CUDA_TARGET_DIR:-target/cuda}"
    cargo run --quiet --features cuda -- run {{file}} --device cuda {{args}}

# On a machine with an NVIDIA GPU: build with CUDA, the kernel tests on the GPU against the CPU, the quickstart on both, ResNet-18 against PyTorch on the GPU; one table and a verdict (`--device cpu`: the dry run)
gpu-check *ARGS:
    bash scripts/gpu_check.sh {{ARGS}}

# The quickstart end to end: build, train (the report is written at the end), then print where it is
quickstart:
    cargo run -- run experiments/quickstart.yaml

# A real one-node Slurm on localhost (root; installs slurm and munge): a 6-run job array, then a run cancelled and resumed
slurm-test:
    scripts/slurm_test.sh

# The GPU check as one folder for a GPU node without Rust or network: CUDA release build for compute capability 9.0, binaries, quickstart and runner, at most 60 MiB (`--cpu`: the same layout from the CPU build, for the dry run `DIR/run --device cpu`)
gpu-bundle *ARGS:
    bash scripts/gpu_bundle.sh {{ARGS}}

# SIGKILL `topo run` 20 times across a tiny experiment; the results must equal an uninterrupted run's
kill-test:
    scripts/kill_test.sh
