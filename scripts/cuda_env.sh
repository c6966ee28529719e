#!/usr/bin/env bash
# Sourced by scripts/cuda_check.sh and scripts/gpu_check.sh: a CUDA toolkit for building
# `--features cuda`, exported as CUDA_HOME, PATH, CUDARC_CUDA_VERSION and CUDA_COMPUTE_CAP.
#
# A toolkit the user already has (CUDA_HOME pointing at one with bin/nvcc, e.g. after
# `module load cuda`) is used as it is. Otherwise NVIDIA's PyPI wheels of CUDA 13 are
# installed once into a venv of their own under ~/.cache, so nothing system-wide changes:
# nvcc with its C runtime headers, NVVM, the runtime headers and CCCL (enough for `cargo
# check`), and with CUDA_WHEELS_LINK=1 also the libraries the binary links and loads
# (cuBLAS, cuRAND, NVRTC), with unversioned links for the linker in LIBRARY_PATH and the
# libraries in LD_LIBRARY_PATH.
#
# Where nvidia-smi answers, the GPU decides: its compute capability (CUDA_COMPUTE_CAP) and
# the driver's newest CUDA, which the wheels must not pass (a driver older than the toolkit
# cannot load its PTX); a GPU older than CUDA 13 supports (7.5) or a driver older than CUDA
# 13 is refused in one line unless CUDA_HOME names a toolkit for it.
#
# Inputs, all optional: CUDA_WHEELS_MINOR, the CUDA 13 minor version of the wheels (default:
# the driver's, at most 4; 13.4 is the newest CUDA that cudarc 0.19, candle 0.11's driver
# bindings, knows); CUDA_COMPUTE_CAP (default: the GPU's, else 80, Ampere: the oldest
# architecture with every kernel candle ships); CUDA_WHEELS_LINK=1; CUDA_WHEELS_VENV;
# CUDA_STUB_DIR, a stub libcuda to link against where no driver is installed
# (scripts/cuda_stub.py, for just gpu-bundle).

cuda_env_fail() {
    echo "cuda: $*" >&2
    return 1
}

# The GPU's compute capability and the driver's CUDA version, where nvidia-smi answers.
cuda_env_detect() {
    local cap cuda major minor
    cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' .')" || cap=""
    [[ "$cap" =~ ^[0-9]+$ ]] || return 0
    export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-$cap}"
    cuda="$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9]*\)\.\([0-9]*\).*/\1 \2/p' | head -n1)"
    read -r major minor <<<"${cuda:-0 0}"
    if [[ -n "${CUDA_HOME:-}" ]]; then
        return 0
    fi
    if ((cap < 75)); then
        cuda_env_fail "the GPU's compute capability is ${cap:0:-1}.${cap: -1}, older than CUDA 13 (the PyPI toolkit) supports (7.5): set CUDA_HOME to a CUDA 12 toolkit"
        return 1
    fi
    if ((major < 13)); then
        cuda_env_fail "the driver runs CUDA ${major}.${minor} at most and the PyPI toolkit is CUDA 13: update the driver (R580 or later) or set CUDA_HOME to a CUDA ${major} toolkit"
        return 1
    fi
    if ((major == 13)); then
        export CUDA_WHEELS_MINOR="${CUDA_WHEELS_MINOR:-$((minor < 4 ? minor : 4))}"
    fi
}

cuda_env_setup() {
    cuda_env_detect || return 1
    if [[ -n "${CUDA_HOME:-}" && -x "$CUDA_HOME/bin/nvcc" ]]; then
        echo "cuda: using the toolkit in CUDA_HOME=$CUDA_HOME" >&2
        if [[ "${CUDA_WHEELS_LINK:-0}" == 1 ]]; then
            # cudarc links from lib64 (and the driver stub in lib64/stubs); the binary then
            # loads the toolkit's libraries from there.
            export LD_LIBRARY_PATH="$CUDA_HOME/lib64:$CUDA_HOME/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        fi
    else
        local minor="${CUDA_WHEELS_MINOR:-4}"
        local venv="${CUDA_WHEELS_VENV:-$HOME/.cache/topo-cuda-13.$minor}"
        local wheels=(
            "nvidia-cuda-nvcc==13.$minor.*" "nvidia-cuda-crt==13.$minor.*"
            "nvidia-nvvm==13.$minor.*" "nvidia-cuda-runtime==13.$minor.*"
            "nvidia-cuda-cccl<13.$((minor + 1))"
        )
        if [[ "${CUDA_WHEELS_LINK:-0}" == 1 ]]; then
            wheels+=("nvidia-cuda-nvrtc==13.$minor.*" "nvidia-cublas>=13,<14" "nvidia-curand>=10.4,<11")
        fi
        if [[ ! -x "$venv/bin/python" ]]; then
            python3 -m venv "$venv" || cuda_env_fail "cannot create the venv $venv" || return 1
        fi
        # pip is quick when everything is there already.
        "$venv/bin/pip" install --quiet --disable-pip-version-check "${wheels[@]}" \
            || cuda_env_fail "cannot install the CUDA 13.$minor wheels into $venv" || return 1
        local site
        site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
        # The wheels unpack into one tree (nvidia/cu13/{bin,include,lib,nvvm}): the
        # toolkit root nvcc and cudarc look for.
        local nvcc
        nvcc="$(find "$site/nvidia" -path '*/bin/nvcc' | head -n1)"
        [[ -n "$nvcc" ]] || cuda_env_fail "no nvcc in the wheels under $site/nvidia" || return 1
        CUDA_HOME="$(dirname "$(dirname "$nvcc")")"
        chmod +x "$CUDA_HOME"/bin/* "$CUDA_HOME"/nvvm/bin/* 2>/dev/null || true
        export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-130${minor}0}"
        if [[ "${CUDA_WHEELS_LINK:-0}" == 1 ]]; then
            cuda_env_link_dir "$CUDA_HOME/lib" "$venv/link" || return 1
        fi
    fi
    export CUDA_HOME CUDA_PATH="$CUDA_HOME" CUDA_ROOT="$CUDA_HOME"
    export PATH="$CUDA_HOME/bin:$PATH"
    export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-80}"
    echo "cuda: nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), compute capability $CUDA_COMPUTE_CAP" >&2
}

# Unversioned links (libcublas.so -> libcublas.so.13) for the linker's -l flags, and the
# driver's libcuda, which the wheels do not ship.
cuda_env_link_dir() {
    local lib="$1" link="$2"
    mkdir -p "$link"
    local name found
    for name in cublas cublasLt curand nvrtc cudart; do
        found="$(find "$lib" -maxdepth 1 -name "lib$name.so.*" | sort | head -n1)"
        [[ -n "$found" ]] || cuda_env_fail "no lib$name.so.* in $lib" || return 1
        ln -sf "$found" "$link/lib$name.so"
    done
    found="$(ldconfig -p 2>/dev/null | sed -n 's/.*libcuda\.so\.1 .*=> \(.*\)/\1/p' | head -n1)"
    # Building for another machine (just gpu-bundle) links against a stub of the driver.
    if [[ -z "$found" && -n "${CUDA_STUB_DIR:-}" ]]; then
        found="$CUDA_STUB_DIR/libcuda.so.1"
    fi
    [[ -n "$found" ]] || cuda_env_fail "no libcuda.so.1 (the NVIDIA driver's library) in ldconfig's cache" || return 1
    ln -sf "$found" "$link/libcuda.so"
    export LIBRARY_PATH="$link${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

cuda_env_setup
