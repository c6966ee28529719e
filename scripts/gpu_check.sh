#!/usr/bin/env bash
# `just gpu-check`: the GPU path proved in one run on a machine with an NVIDIA GPU and its
# driver (scripts/gpu_check.py says what it does). Here: refuse at once, in one line, where
# there is no GPU; otherwise set up CUDA for this GPU and driver (scripts/cuda_env.sh)
# before handing over. `--device cpu` is the dry run: every
# step on the CPU, no CUDA needed.
set -euo pipefail
cd "$(dirname "$0")/.."

device=cuda
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[$i]}" in
        --device) device="${args[$((i + 1))]:-}" ;;
        --device=*) device="${args[$i]#--device=}" ;;
    esac
done

if [[ "$device" == cuda ]]; then
    if ! gpus="$(nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader 2>/dev/null)" || [[ -z "$gpus" ]]; then
        echo "gpu-check: no NVIDIA GPU here (nvidia-smi lists none): run it on a machine with one and its driver, or \`just gpu-check --device cpu\` for the dry run" >&2
        exit 1
    fi
    export CUDA_WHEELS_LINK=1
    # shellcheck source=scripts/cuda_env.sh
    source scripts/cuda_env.sh || exit 1
    export CARGO_TARGET_DIR="${CUDA_TARGET_DIR:-target/cuda}"
fi

exec python3 scripts/gpu_check.py "$@"
