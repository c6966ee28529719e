#!/usr/bin/env python3
"""Writes the Fashion-MNIST subset shipped in data/ out as a PNG image folder,

    data/fashion-mnist-png/{train,val,test}/<NN-class>/<index>.png

holding exactly the examples that `topo` takes for each split of the `fmnist` data set of
experiments/image_folder.yaml (read from `topo splits`), so that the experiment compares
the two loaders on the same examples. Python's standard library only.

    python3 scripts/image_folder_demo.py [--topo-bin target/debug/topo]
"""

import argparse
import gzip
import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

CLASSES = ["t-shirt-top", "trouser", "pullover", "dress", "coat",
           "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
EXPERIMENT = "experiments/image_folder.yaml"
OUT = Path("data/fashion-mnist-png")


def read_idx(path):
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return dims, raw[4 + 4 * ndim:]


def png(width, height, pixels):
    """An 8-bit greyscale PNG: one filter byte (none) before each row."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\0" + pixels[y * width:(y + 1) * width] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topo-bin", default=None,
                    help="the topo binary (default: cargo run)")
    args = ap.parse_args()
    topo = [args.topo_bin] if args.topo_bin else ["cargo", "run", "--quiet", "--"]
    out = subprocess.run(topo + ["splits", EXPERIMENT, "--dataset", "fmnist"],
                         check=True, capture_output=True, text=True).stdout
    splits = json.loads(out)
    root = Path(splits["root"])
    files = {}
    for part in ("train", "t10k"):
        images = sorted(root.glob(f"{part}-images-idx3-ubyte*"))[0]
        labels = sorted(root.glob(f"{part}-labels-idx1-ubyte*"))[0]
        (n, h, w), pixels = read_idx(images)
        _, label_bytes = read_idx(labels)
        files[part] = (h, w, pixels, label_bytes)
    if OUT.exists():
        shutil.rmtree(OUT)
    written = 0
    for split, part, folder in (("train", "train", "train"),
                                ("validation", "train", "val"),
                                ("test", "t10k", "test")):
        h, w, pixels, labels = files[part]
        for i in splits[split]:
            label = labels[i]
            d = OUT / folder / f"{label:02d}-{CLASSES[label]}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{i:05d}.png").write_bytes(png(w, h, pixels[i * h * w:(i + 1) * h * w]))
            written += 1
    print(f"wrote {written} PNG images to {OUT}/ (train {len(splits['train'])}, "
          f"val {len(splits['validation'])}, test {len(splits['test'])})")


if __name__ == "__main__":
    sys.exit(main())
