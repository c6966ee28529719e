#!/usr/bin/env bash
# `just gpu-bundle`: the GPU check built here and carried whole to a GPU node that has CUDA,
# its driver and PyTorch but no Rust toolchain and no network (a cluster's batch node).
#
#   just gpu-bundle [--cpu] [--out DIR]
#
# Default: a release build with `--features cuda` for compute capability 9.0 (the H100; its
# kernels are PTX, which newer GPUs compile when they load it) against NVIDIA's CUDA 13.0
# wheels (scripts/cuda_env.sh), in target/gpu-bundle-cuda. Where this machine has no NVIDIA
# driver, the link step gets a stub of the driver's libcuda (every entry point an error):
# the binary names libcuda.so.1 and loads the node's real one.
# --cpu: the same layout from the CPU build of the tests (the dev profile), for the dry run
# (`DIR/run --device cpu`), which CI runs on every change.
#
# The folder (default target/gpu-bundle, or target/gpu-bundle-cpu with --cpu) holds:
#   run                the entry point: `./run [--device cuda|cpu] [--out DIR] [--quick]`
#   bin/               topo, train_step (the training-step benchmark), it (the test binary),
#                      stripped and xz-compressed
#   runner/            gpu_check.py with the benchmark driver and PyTorch reference it uses
#   experiments/, data/  the quickstart and the Fashion-MNIST subset it trains on
#   MANIFEST           the commit, the build and the files
# Its size is printed, and the build fails above 60 MiB (what such a node is sent).
set -euo pipefail
cd "$(dirname "$0")/.."

device=cuda
out=""
while (($#)); do
    case "$1" in
        --cpu) device=cpu ;;
        --out) out="${2:?--out needs a folder}"; shift ;;
        --out=*) out="${1#--out=}" ;;
        *) echo "gpu-bundle: unknown argument $1 (expected --cpu, --out DIR)" >&2; exit 2 ;;
    esac
    shift
done
limit_mib=60

if [[ "$device" == cuda ]]; then
    out="${out:-target/gpu-bundle}"
    export CUDA_WHEELS_MINOR="${CUDA_WHEELS_MINOR:-0}" CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
    export CUDA_WHEELS_LINK=1
    stub=""
    if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
        stub="$(python3 scripts/cuda_stub.py target/cuda-stub)"
        export CUDA_STUB_DIR="$stub"
    fi
    # shellcheck source=scripts/cuda_env.sh
    source scripts/cuda_env.sh
    export CARGO_TARGET_DIR="${CUDA_TARGET_DIR:-target/gpu-bundle-cuda}"
    profile=(--release --features cuda)
    kind=release
else
    out="${out:-target/gpu-bundle-cpu}"
    profile=()
    kind=debug
fi

echo "gpu-bundle: building ($device) ..." >&2
artifacts="$(mktemp)"
trap 'rm -f "$artifacts"' EXIT
cargo build "${profile[@]}" --bin topo --bench train_step --message-format=json-render-diagnostics >"$artifacts"
cargo test "${profile[@]}" --test it --no-run --message-format=json-render-diagnostics >>"$artifacts"
executable() {
    python3 - "$1" "$artifacts" <<'PY'
import json, sys
name, path = sys.argv[1], sys.argv[2]
found = [m["executable"] for m in map(json.loads, open(path)) if m.get("reason") == "compiler-artifact" and m["target"]["name"] == name and m.get("executable")]
print(found[-1] if found else "")
PY
}

rm -rf "$out"
mkdir -p "$out/bin" "$out/runner" "$out/experiments" "$out/data"
for name in topo train_step it; do
    path="$(executable "$name")"
    [[ -n "$path" ]] || { echo "gpu-bundle: cargo built no $name" >&2; exit 1; }
    cp "$path" "$out/bin/$name"
    strip "$out/bin/$name"
    # A seventh of the size (gzip: a fourth, which put the CUDA bundle at 67 MiB); the
    # runner unpacks them with Python's lzma, so the node needs nothing installed.
    if command -v xz >/dev/null; then
        xz -6 -T0 "$out/bin/$name"
    else
        python3 -c 'import lzma, pathlib, sys; p = pathlib.Path(sys.argv[1]); p.with_name(p.name + ".xz").write_bytes(lzma.compress(p.read_bytes(), preset=6)); p.unlink()' "$out/bin/$name"
    fi
done
cp scripts/gpu_check.py bench/compare.py bench/pytorch_reference.py "$out/runner/"
# pytorch_reference.py takes its models from the repository's package, beside runner/.
mkdir -p "$out/python"
cp -r python/topo_torch "$out/python/"
cp experiments/quickstart.yaml "$out/experiments/"
cp -r data/fashion-mnist-subset "$out/data/"
cat >"$out/run" <<'RUN'
#!/usr/bin/env bash
# The GPU check from this bundle (no Rust, no network needed): the device tests on the GPU
# against the CPU, the quickstart on both, ResNet-18 against the PyTorch installed here.
#   ./run [--device cuda|cpu] [--out DIR] [--quick]
# Results (at most 8 files) go to DIR, default ./gpu-check-<UTC time>.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
args=("$@")
case " ${args[*]} " in
    *" --out "* | *" --out="*) ;;
    *) args+=(--out "$PWD/gpu-check-$(date -u +%Y%m%d-%H%M%S)") ;;
esac
exec "${PYTHON:-python3}" "$here/runner/gpu_check.py" --prebuilt "$here/bin" --root "$here" "${args[@]}"
RUN
chmod +x "$out/run"
{
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (dirty)')"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), $device ($kind)"
    if [[ "$device" == cuda ]]; then
        echo "cuda: $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), compute capability $CUDA_COMPUTE_CAP${stub:+, linked against a stub libcuda}"
    fi
    echo "files:"
    (cd "$out" && find . -type f ! -name MANIFEST | sort | while read -r f; do echo "  $(stat -c %s "$f") $f"; done)
} >"$out/MANIFEST"

bytes="$(du -sb "$out" | cut -f1)"
mib="$(python3 -c "print(f'{$bytes / 2**20:.1f}')")"
echo "gpu-bundle: $out, $mib MiB ($device)"
if ((bytes > limit_mib * 1024 * 1024)); then
    echo "gpu-bundle: $mib MiB is over the ${limit_mib} MiB a GPU node is sent" >&2
    exit 1
fi
