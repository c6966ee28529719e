#!/usr/bin/env python3
"""PyTorch half of the side-by-side training-speed benchmark (issue 7).

The paper's three image models (docs/reference.md, "Models and their topographic layers") and its
topographic loss, written in plain PyTorch so that the same step can be timed against `topo`'s
engine. One run times one configuration and prints ONE JSON line on stdout:

    {"framework": "pytorch", "version": ..., "model": ..., "batch": ..., "mode": ..., "topo": ...,
     "threads": ..., "step_ms": ..., "img_per_s": ..., "peak_rss_mb": ...}

`bench/compare.py` runs this script and the topo binary with the same arguments.
Install torch first with `bash bench/setup.sh`.

`--device cuda` runs on the first GPU (the PyPI wheel is the CUDA build): each step is timed between
two `torch.cuda.synchronize()`, and the record adds "device" and "peak_device_mb" (the caching
allocator's peak, `torch.cuda.max_memory_allocated`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

# The models themselves live in the repository's Python package (python/topo_torch), which
# `topo export`'s weights load into; the benchmark builds the very same classes.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from topo_torch.losses import tdann, topoloss  # noqa: E402
from topo_torch.models import MODELS, DenseNet121, ResNet18, VGG16BN  # noqa: E402

# bench/steps.py takes the models from here.
__all__ = ["MODELS", "DenseNet121", "ResNet18", "VGG16BN"]

# Cosine similarity denominator floor (docs/reference.md, "Topographic loss").
EPS = 1e-8
# TopoLoss's shrink factor, topo's default.
TOPOLOSS_FACTOR = 2.0
# Weight of the topographic term in the total loss.
LAMBDA = 1.0




def topographic_layers(name: str, model: nn.Module) -> list[str]:
    """Dotted names of the convs whose outputs feed the topographic loss (docs/reference.md)."""
    if name == "resnet18":
        return ["conv1"] + [f"layer{i}.1.conv2" for i in range(1, 5)]
    if name == "vgg16_bn":
        return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if name == "densenet121":
        last = {1: 6, 2: 12, 3: 24, 4: 16}
        return ["features.conv0"] + [
            f"features.denseblock{b}.denselayer{n}.conv2" for b, n in last.items()
        ]
    raise ValueError(f"unknown model {name!r}")


# --------------------------------------------------------------------------------------------
# Topographic loss
# --------------------------------------------------------------------------------------------


def grid2d_positions(n: int) -> torch.Tensor:
    """Positions of n channels on a 2D grid: k = ceil(sqrt(n)) points per axis at linspace(0, 1, k),
    channel t at (x, y) = (c[t % k], c[t // k]) (torch meshgrid "xy" order, flattened)."""
    k = math.isqrt(n)
    if k * k < n:
        k += 1
    axis = torch.linspace(0.0, 1.0, k, dtype=torch.float64)
    t = torch.arange(n)
    return torch.stack([axis[t % k], axis[t // k]], dim=1)


class TopoTarget:
    """For one layer of C channels: the target similarity 1/(d+1) and the weight of each pair,
    1/(C(C-1)/2) on the upper triangle i < j and 0 elsewhere, so that the layer loss per sample
    is sum(weight * (S - target)^2). Computed once, on the model's device."""

    def __init__(self, channels: int, device: torch.device) -> None:
        positions = grid2d_positions(channels)
        distance = torch.cdist(positions, positions, p=2.0)
        self.target = (1.0 / (distance + 1.0)).to(torch.float32).to(device)
        pairs = channels * (channels - 1) / 2
        upper = torch.ones(channels, channels).triu(diagonal=1)
        self.weight = (upper / pairs if pairs > 0 else upper).to(device)


def layer_loss(y: torch.Tensor, target: TopoTarget) -> torch.Tensor:
    """Per-sample loss (B,) of one layer's output y of shape (B, C, H, W)."""
    flat = y.flatten(2)
    dots = torch.bmm(flat, flat.transpose(1, 2))
    norms = flat.norm(dim=2)
    cosine = dots / torch.clamp(norms.unsqueeze(2) * norms.unsqueeze(1), min=EPS)
    return ((cosine - target.target) ** 2 * target.weight).sum(dim=(1, 2))


class Recorder:
    """Forward hooks on tapped convs keep their latest outputs (before batch norm)."""

    def __init__(self) -> None:
        self.outputs: dict[str, torch.Tensor] = {}

    def record(self, conv: nn.Module, name: str) -> None:
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            self.outputs[name] = output

        conv.register_forward_hook(hook)


class TopoLoss(Recorder):
    """The paper's loss: `loss()` sums the tapped layers' losses and takes the mean over the
    batch."""

    def __init__(self, model: nn.Module, names: list[str], device: torch.device) -> None:
        super().__init__()
        self.targets: dict[str, TopoTarget] = {}
        for name in names:
            conv = model.get_submodule(name)
            if not isinstance(conv, nn.Conv2d):
                raise TypeError(f"{name} is a {type(conv).__name__}, not a Conv2d")
            self.targets[name] = TopoTarget(conv.out_channels, device)
            self.record(conv, name)

    def loss(self) -> torch.Tensor:
        total = sum(layer_loss(self.outputs[n], t) for n, t in self.targets.items())
        self.outputs.clear()
        return total.mean()


class TdannLoss(Recorder):
    """TDANN's loss on the same tapped convs' outputs, each layer one neighbourhood of all its
    channels on the 2D grid (topo's `loss: { kind: tdann, neighbourhood: all }`), summed."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.positions: dict[str, torch.Tensor] = {}
        for name in names:
            conv = model.get_submodule(name)
            self.positions[name] = grid2d_positions(conv.out_channels).to(torch.float32)
            self.record(conv, name)

    def loss(self) -> torch.Tensor:
        total = sum(tdann(self.outputs[n], p, "euclidean", None) for n, p in self.positions.items())
        self.outputs.clear()
        return total


class TopoLossLoss:
    """TopoLoss on the tapped convs' weights (each on its sheet, shrink factor 2), summed."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        self.convs = [model.get_submodule(n) for n in names]

    def loss(self) -> torch.Tensor:
        return sum(topoloss(c.weight, TOPOLOSS_FACTOR) for c in self.convs)


# --------------------------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), required=True)
    parser.add_argument("--batch", type=positive, required=True)
    parser.add_argument("--mode", choices=["train", "eval"], required=True)
    parser.add_argument("--topo", choices=["none", "grid2d", "tdann", "topoloss"], required=True)
    parser.add_argument("--width", type=float, default=1.0, help="channel width multiplier")
    parser.add_argument("--steps", type=positive, default=10)
    parser.add_argument("--warmup", type=non_negative, default=2)
    parser.add_argument("--threads", type=positive, default=os.cpu_count() or 1)
    parser.add_argument("--classes", type=positive, default=10)
    parser.add_argument("--size", type=positive, default=32)
    parser.add_argument("--channels", type=positive, default=3)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    return parser.parse_args(argv)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    random.seed(0)
    torch.manual_seed(0)

    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: torch sees no CUDA device", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    model = MODELS[args.model](args.classes, args.channels, args.width).to(device)
    topo = None
    taps = topographic_layers(args.model, model)
    if args.topo == "grid2d":
        topo = TopoLoss(model, taps, device)
    elif args.topo == "tdann":
        topo = TdannLoss(model, taps)
    elif args.topo == "topoloss":
        topo = TopoLossLoss(model, taps)
    inputs = torch.randn(args.batch, args.channels, args.size, args.size).to(device)
    labels = torch.randint(0, args.classes, (args.batch,)).to(device)

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    if args.mode == "train":
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)

        def step() -> None:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(inputs), labels)
            if topo is not None:
                loss = loss + LAMBDA * topo.loss()
            loss.backward()
            optimizer.step()

    else:
        model.eval()

        def step() -> None:
            with torch.no_grad():
                model(inputs)
                # The reference logs the topographic loss on evaluation too.
                if topo is not None:
                    topo.loss()

    for _ in range(args.warmup):
        step()
    synchronize()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        synchronize()
        times.append(time.perf_counter() - start)

    median = statistics.median(times)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    record = {
        "framework": "pytorch",
        "version": torch.__version__,
        "model": args.model,
        "batch": args.batch,
        "mode": args.mode,
        "topo": args.topo,
        "width": args.width,
        "size": args.size,
        "channels": args.channels,
        "threads": args.threads,
        "step_ms": round(median * 1e3, 3),
        "img_per_s": round(args.batch / median, 3),
        "peak_rss_mb": round(peak_kib / 1024, 1),
        "device": args.device,
    }
    if device.type == "cuda":
        record["peak_device_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
