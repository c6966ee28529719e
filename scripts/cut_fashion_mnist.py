#!/usr/bin/env python3
"""Cut the Fashion-MNIST subset shipped in data/fashion-mnist-subset/.

Takes, in file order, the first 500 training and the first 100 test images of each of
the 10 classes (5000 + 1000 images, balanced), and writes them as gzipped IDX files with
the original names and a zero gzip timestamp, so the output is byte-for-byte
reproducible. Standard library only.

Usage: python3 scripts/cut_fashion_mnist.py [SOURCE] [DEST]
  SOURCE: folder of the full data set (default /usr/share/datasets/fashion-mnist, from
          `apt-get install dataset-fashion-mnist`; or the files of
          https://github.com/zalandoresearch/fashion-mnist)
  DEST:   default data/fashion-mnist-subset
"""
import gzip
import os
import struct
import sys

PER_CLASS = {"train": 500, "t10k": 100}


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    assert zero == 0 and dtype == 0x08, f"{path}: not an unsigned-byte IDX file"
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def write_idx(path, dims, payload):
    header = struct.pack(">HBB", 0, 0x08, len(dims)) + struct.pack(">" + "I" * len(dims), *dims)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
            f.write(header + payload)


def find(src, name):
    for candidate in (name + ".gz", name):
        if os.path.exists(os.path.join(src, candidate)):
            return os.path.join(src, candidate)
    sys.exit(f"{src}: no {name}[.gz]")


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    dest = sys.argv[2] if len(sys.argv) > 2 else "data/fashion-mnist-subset"
    os.makedirs(dest, exist_ok=True)
    for prefix, per_class in PER_CLASS.items():
        (n, h, w), pixels = read_idx(find(src, f"{prefix}-images-idx3-ubyte"))
        (n_labels,), labels = read_idx(find(src, f"{prefix}-labels-idx1-ubyte"))
        assert n == n_labels
        taken, chosen = [0] * 10, []
        for i, label in enumerate(labels):
            if taken[label] < per_class:
                taken[label] += 1
                chosen.append(i)
        size = h * w
        write_idx(os.path.join(dest, f"{prefix}-images-idx3-ubyte.gz"), (len(chosen), h, w),
                  b"".join(pixels[i * size:(i + 1) * size] for i in chosen))
        write_idx(os.path.join(dest, f"{prefix}-labels-idx1-ubyte.gz"), (len(chosen),),
                  bytes(labels[i] for i in chosen))
        print(f"{prefix}: {len(chosen)} images, {per_class} per class")


if __name__ == "__main__":
    main()
