#!/usr/bin/env bash
# Makes sure the full Fashion-MNIST (60,000 + 10,000 images) is where
# experiments/fmnist_pruning.yaml reads it: /usr/share/datasets/fashion-mnist, as Debian's
# dataset-fashion-mnist package installs it. Installs that package with apt when missing.
set -euo pipefail

dir=/usr/share/datasets/fashion-mnist
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

have() {
    for f in "${files[@]}"; do
        [[ -e "$dir/$f.gz" || -e "$dir/$f" ]] || return 1
    done
}

if have; then
    echo "Fashion-MNIST: $dir"
    exit 0
fi
fix="download the four IDX files from https://github.com/zalandoresearch/fashion-mnist into $dir, \
or into any folder given with --set datasets.fmnist.root=FOLDER"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: the full Fashion-MNIST is not in $dir and this machine has no apt-get: $fix" >&2
    exit 1
fi
sudo=()
[[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
echo "installing Debian's dataset-fashion-mnist (the full Fashion-MNIST) into $dir"
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq dataset-fashion-mnist
if ! have; then
    echo "error: dataset-fashion-mnist installed, but $dir still lacks the IDX files: $fix" >&2
    exit 1
fi
