#!/usr/bin/env bash
# `cargo check --features cuda` on a machine without a CUDA toolkit or GPU: nvcc from
# NVIDIA's PyPI wheels (scripts/cuda_env.sh). candle-kernels' build script and this crate's
# own (crates/kernels/build.rs) compile their .cu files with that nvcc even under `cargo
# check`, so this takes a while (minutes) the first time; the CPU build needs none of it.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/cuda_env.sh
source scripts/cuda_env.sh
# A target dir of its own: the CUDA feature set would otherwise rebuild candle in the
# CPU build's directory.
export CARGO_TARGET_DIR="${CUDA_TARGET_DIR:-target/cuda-check}"
cargo check --features cuda --all-targets "$@"
