#!/usr/bin/env bash
# What the test suite needs beyond Rust, installed once when missing: TensorBoard (its
# reader checks the event files) and Chromium with its WebDriver (a test renders the
# HTML report), QEMU's user-mode emulator (the golden run's AVX2 records are checked
# under it on an AVX-512 machine). `just test` runs this first.
set -euo pipefail

if ! python3 -c 'import tensorboard' >/dev/null 2>&1; then
    echo "[test_deps] the tensorboard package is missing: pip install tensorboard (once)"
    pip install --quiet tensorboard
fi

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "[test_deps] chromium and chromedriver are missing and this is not root:" >&2
        echo "  sudo apt-get install chromium chromium-driver" >&2
        exit 1
    fi
    echo "[test_deps] chromium is missing: apt-get install chromium chromium-driver (once)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

if ! command -v qemu-x86_64 >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "[test_deps] qemu-x86_64 is missing and this is not root:" >&2
        echo "  sudo apt-get install qemu-user" >&2
        exit 1
    fi
    echo "[test_deps] qemu-x86_64 is missing: apt-get install qemu-user (once)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user >/dev/null
fi
