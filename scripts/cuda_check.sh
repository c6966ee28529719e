#!/usr/bin/env bash
# `cargo check --features cuda` on a machine without a CUDA toolkit: NVIDIA's PyPI wheels
# provide nvcc, its C runtime headers, NVVM, the runtime headers and CCCL, installed into
# a venv of their own so nothing system-wide changes. candle-kernels' build script compiles
# its .cu files with that nvcc even under `cargo check`, so this takes a while (minutes)
# the first time; the CPU build never needs any of it.
set -euo pipefail

cd "$(dirname "$0")/.."

# 13.4 is the newest CUDA that cudarc 0.19 (candle 0.11's driver bindings) knows.
CUDA_WHEEL_VERSION="${CUDA_WHEEL_VERSION:-13.4.92}"
CUDARC_VERSION="${CUDARC_VERSION:-13040}"
VENV="${TOPO_CUDA_VENV:-$HOME/.cache/topo-cuda-${CUDA_WHEEL_VERSION}}"
SITE="$VENV/lib/python3.11/site-packages"

if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
if [[ ! -x "$(find "$SITE/nvidia" -path '*/bin/nvcc' 2>/dev/null | head -n1)" ]]; then
    "$VENV/bin/pip" install --quiet \
        "nvidia-cuda-nvcc==${CUDA_WHEEL_VERSION}" \
        "nvidia-cuda-crt==${CUDA_WHEEL_VERSION}" \
        "nvidia-nvvm==${CUDA_WHEEL_VERSION}" \
        "nvidia-cuda-runtime==${CUDA_WHEEL_VERSION}" \
        "nvidia-cuda-cccl<13.5"
fi
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
# The wheels unpack into one tree (nvidia/cu13/{bin,include,lib,nvvm}): that tree is
# the toolkit root nvcc and cudarc look for.
NVCC="$(find "$SITE/nvidia" -path '*/bin/nvcc' | head -n1)"
CUDA_HOME="$(dirname "$(dirname "$NVCC")")"
chmod +x "$CUDA_HOME"/bin/* "$CUDA_HOME"/nvvm/bin/* 2>/dev/null || true

export CUDA_HOME CUDA_PATH="$CUDA_HOME" CUDA_ROOT="$CUDA_HOME"
export PATH="$CUDA_HOME/bin:$PATH"
export CUDARC_CUDA_VERSION="$CUDARC_VERSION"
# No GPU to ask: compile for Ampere (sm_80), the oldest architecture with every kernel
# candle ships (bf16 WMMA).
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-80}"
# A target dir of its own: the CUDA feature set would otherwise rebuild candle in the
# CPU build's directory.
export CARGO_TARGET_DIR="${CUDA_TARGET_DIR:-target/cuda-check}"

echo "nvcc: $NVCC ($(nvcc --version | tail -n1))"
cargo check --features cuda --all-targets "$@"
