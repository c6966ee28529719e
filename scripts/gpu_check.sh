#!/usr/bin/env bash
# `just gpu-check`: the GPU path proved in one run on a machine with an NVIDIA GPU and its
# driver (scripts/gpu_check.py says what it does). Here: refuse at once, in one line, where
# there is no GPU; otherwise set up CUDA (scripts/cuda_env.sh, the driver's CUDA version
# and the GPU's compute capability) before handing over. `--device cpu` is the dry run: every
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
    IFS=, read -r _ cap _ <<<"$(head -n1 <<<"$gpus")"
    export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-$(tr -d ' .' <<<"$cap")}"
    # The newest CUDA the driver runs; the wheels must not be newer, or it cannot load
    # their PTX.
    driver_cuda="$(nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9]*\)\.\([0-9]*\).*/\1 \2/p' | head -n1)"
    read -r major minor <<<"${driver_cuda:-0 0}"
    if [[ -z "${CUDA_HOME:-}" ]]; then
        if ((CUDA_COMPUTE_CAP < 75)); then
            echo "gpu-check: the GPU's compute capability ${cap// /} is older than CUDA 13 (the PyPI toolkit) supports (7.5): set CUDA_HOME to a CUDA 12 toolkit" >&2
            exit 1
        fi
        if ((major < 13)); then
            echo "gpu-check: the driver runs CUDA ${major}.${minor} at most and the PyPI toolkit is CUDA 13: update the driver (R580 or later) or set CUDA_HOME to a CUDA ${major} toolkit" >&2
            exit 1
        fi
        if ((major == 13)); then
            export CUDA_WHEELS_MINOR="${CUDA_WHEELS_MINOR:-$((minor < 4 ? minor : 4))}"
        fi
    fi
    export CUDA_WHEELS_LINK=1
    # shellcheck source=scripts/cuda_env.sh
    source scripts/cuda_env.sh
    export CARGO_TARGET_DIR="${CUDA_TARGET_DIR:-target/cuda}"
fi

exec python3 scripts/gpu_check.py "$@"
