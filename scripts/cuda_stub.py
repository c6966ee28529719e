#!/usr/bin/env python3
"""A stub of the NVIDIA driver's library, for linking `--features cuda` on a machine without
the driver (`just gpu-bundle` here, for a GPU node elsewhere).

candle links cudarc's driver bindings against libcuda. This writes DIR/libcuda.so.1 (and the
link libcuda.so) exporting every driver entry point cudarc declares, each returning
CUDA_ERROR_UNKNOWN, so the linker is satisfied; the binary records libcuda.so.1 as needed and
loads the real one on the node. It is only ever linked against, never shipped.

    python3 scripts/cuda_stub.py DIR    # prints DIR
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def cudarc_driver_bindings() -> Path:
    """cudarc's generated driver bindings, from the version Cargo.lock pins."""
    lock = (Path(__file__).resolve().parent.parent / "Cargo.lock").read_text()
    match = re.search(r'name = "cudarc"\nversion = "([^"]+)"', lock)
    if not match:
        sys.exit("cuda_stub: Cargo.lock pins no cudarc")
    cargo_home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    found = sorted(cargo_home.glob(f"registry/src/*/cudarc-{match.group(1)}/src/driver/sys/mod.rs"))
    if not found:
        sys.exit(f"cuda_stub: cudarc {match.group(1)}'s source is not under {cargo_home}/registry: run `cargo fetch` first")
    return found[0]


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    names = sorted(set(re.findall(r"^\s+fn (cu[A-Za-z0-9_]+)\(", cudarc_driver_bindings().read_text(), re.MULTILINE)))
    if len(names) < 100:
        sys.exit(f"cuda_stub: only {len(names)} driver entry points found: cudarc's bindings changed shape")
    source = out / "libcuda_stub.c"
    # 999 is CUDA_ERROR_UNKNOWN: a binary that ever ran on the stub would say so at cuInit.
    source.write_text("".join(f"int {n}(void) {{ return 999; }}\n" for n in names))
    library = out / "libcuda.so.1"
    subprocess.run(["cc", "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o", str(library), str(source)], check=True)
    link = out / "libcuda.so"
    link.unlink(missing_ok=True)
    link.symlink_to(library.name)
    print(out)


if __name__ == "__main__":
    main()
