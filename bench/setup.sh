#!/usr/bin/env bash
# Installs the PyTorch the benchmark compares against (bench/requirements.txt), once.
# Idempotent: does nothing when `import torch` already gives the pinned version.
#
# Recipe, tried on the benchmark machine (Python 3.11, x86-64, no GPU):
#   `pip install torch==2.15.0 --no-deps` plus its pure-Python dependencies does NOT work: the
#   PyPI wheel is the CUDA build and `import torch` fails with "libcudart.so.13: cannot open
#   shared object file" (torch/__init__.py preloads the CUDA libraries). So torch is installed
#   normally from PyPI with its dependencies (~0.5 GB wheel plus several GB of nvidia-* wheels,
#   about a minute here); it then runs on the CPU, with AVX-512 kernels where the CPU has them.
# Override the interpreter with PYTHON=..., e.g. `PYTHON=.venv/bin/python bash bench/setup.sh`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
want="$(sed -n 's/^torch==\([^[:space:]]*\).*/\1/p' "$here/requirements.txt")"

installed() {
    "$python" - "$want" <<'PY' 2>/dev/null
import sys
import numpy  # only silences torch's warning, but part of requirements.txt
import yaml  # bench/parity.py reads run.yaml
import safetensors  # bench/steps.py reads topo's traces
import torch
sys.exit(0 if torch.__version__.split("+")[0] == sys.argv[1] else 1)
PY
}

if installed; then
    echo "torch $want already installed for $("$python" -c 'import sys; print(sys.executable)')"
    exit 0
fi

echo "installing torch $want from PyPI (CUDA build with its nvidia-* dependencies, used on CPU)"
"$python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

if ! installed; then
    echo "error: torch $want still not importable by $python after installing" >&2
    exit 1
fi
# A conv forward and backward on the CPU: the check that the install is usable.
"$python" -c '
import torch
conv = torch.nn.Conv2d(3, 8, 3, padding=1)
x = torch.randn(2, 3, 8, 8, requires_grad=True)
conv(x).square().sum().backward()
assert x.grad is not None and torch.isfinite(x.grad).all()
print(f"torch {torch.__version__} ready (CPU capability {torch.backends.cpu.get_cpu_capability()})")
'
