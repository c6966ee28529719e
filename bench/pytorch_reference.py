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
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

# Cosine similarity denominator floor (docs/reference.md, "Topographic loss").
EPS = 1e-8
# Weight of the topographic term in the total loss.
LAMBDA = 1.0


# --------------------------------------------------------------------------------------------
# Models. Layer names follow torchvision's so that the tapped layers of docs/reference.md resolve
# with `get_submodule` under the same dotted names.
# --------------------------------------------------------------------------------------------


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection; a 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class ResNet18(nn.Module):
    """ResNet-18 with a 3x3 stride-1 stem; the 3x3 stride-2 max pool after it is kept. `width`
    scales every stage's channels (rounded, at least 1), as `resnet18 { width: ... }` does in topo.
    Initialised as torchvision and the reference's code do: convs kaiming-normal (fan out), batch
    norms 1 and 0, the classifier at PyTorch's default, then the stem replaced by a fresh conv
    at PyTorch's default."""

    def __init__(self, classes: int, channels: int, width: float = 1.0) -> None:
        super().__init__()
        planes = [scaled(p, width) for p in (64, 128, 256, 512)]
        self.conv1 = conv3x3(channels, planes[0])
        self.bn1 = nn.BatchNorm2d(planes[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = planes[0]
        for index, planes_i in enumerate(planes, start=1):
            stride = 1 if index == 1 else 2
            stage = nn.Sequential(BasicBlock(cin, planes_i, stride), BasicBlock(planes_i, planes_i, 1))
            self.add_module(f"layer{index}", stage)
            cin = planes_i
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        self.conv1 = conv3x3(channels, planes[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# 13 convs of VGG-16 ("D"); 0 marks a 2x2 max pool.
VGG16_PLAN = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0]


def scaled(channels: int, width: float) -> int:
    """`channels * width` rounded half away from zero, at least 1: how a width multiplier
    scales every channel count (and VGG's hidden units, DenseNet's growth rate and stem)."""
    return max(1, math.floor(channels * width + 0.5))


class VGG16BN(nn.Module):
    """VGG-16 with batch norm: 13 convs, adaptive average pool to 7x7, 25088-4096-4096 head;
    `width` scales every conv and the two hidden layers."""

    def __init__(self, classes: int, channels: int, width: float = 1.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = channels
        for planes in VGG16_PLAN:
            if planes == 0:
                layers.append(nn.MaxPool2d(2, stride=2))
            else:
                planes = scaled(planes, width)
                layers += [
                    nn.Conv2d(cin, planes, 3, padding=1),
                    nn.BatchNorm2d(planes),
                    nn.ReLU(inplace=True),
                ]
                cin = planes
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        hidden = scaled(4096, width)
        self.classifier = nn.Sequential(
            nn.Linear(cin * 7 * 7, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(hidden, classes),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (bottleneck of bn_size * growth) then BN-ReLU-3x3 conv (growth)."""

    def __init__(self, cin: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(features, 1)
        x = self.conv1(self.relu1(self.norm1(x)))
        return self.conv2(self.relu2(self.norm2(x)))


class DenseBlock(nn.ModuleDict):
    """Each layer sees the concatenation of the block input and every earlier layer's output."""

    def __init__(self, layers: int, cin: int, growth: int, bn_size: int) -> None:
        super().__init__()
        for index in range(layers):
            self.add_module(f"denselayer{index + 1}", DenseLayer(cin + index * growth, growth, bn_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            OrderedDict(
                norm=nn.BatchNorm2d(cin),
                relu=nn.ReLU(inplace=True),
                conv=nn.Conv2d(cin, cout, 1, bias=False),
                pool=nn.AvgPool2d(2, stride=2),
            )
        )


class DenseNet121(nn.Module):
    """DenseNet-121 (growth 32, blocks 6-12-24-16, bn_size 4), 3x3 stride-1 stem, pool0 kept;
    `scale` multiplies the growth rate and the stem's 64 channels."""

    def __init__(self, classes: int, channels: int, scale: float = 1.0) -> None:
        super().__init__()
        growth, bn_size, width = scaled(32, scale), 4, scaled(64, scale)
        stages: OrderedDict[str, nn.Module] = OrderedDict(
            conv0=nn.Conv2d(channels, width, 3, padding=1, bias=False),
            norm0=nn.BatchNorm2d(width),
            relu0=nn.ReLU(inplace=True),
            pool0=nn.MaxPool2d(3, stride=2, padding=1),
        )
        blocks = [6, 12, 24, 16]
        for index, layers in enumerate(blocks, start=1):
            stages[f"denseblock{index}"] = DenseBlock(layers, width, growth, bn_size)
            width += layers * growth
            if index != len(blocks):
                stages[f"transition{index}"] = Transition(width, width // 2)
                width //= 2
        stages["norm5"] = nn.BatchNorm2d(width)
        self.features = nn.Sequential(stages)
        self.classifier = nn.Linear(width, classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.features(x), inplace=True)
        x = F.adaptive_avg_pool2d(x, 1)
        return self.classifier(torch.flatten(x, 1))


def init_weights(model: nn.Module) -> None:
    """The usual initialisation of these models; it does not change the timing, only keeps the
    activations in a realistic range."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.zeros_(module.bias)


MODELS = {"resnet18": ResNet18, "vgg16_bn": VGG16BN, "densenet121": DenseNet121}


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


class TopoLoss:
    """Forward hooks on the tapped convs record their outputs (before batch norm); `loss()` sums
    the layer losses and takes the mean over the batch."""

    def __init__(self, model: nn.Module, names: list[str], device: torch.device) -> None:
        self.outputs: dict[str, torch.Tensor] = {}
        self.targets: dict[str, TopoTarget] = {}
        for name in names:
            conv = model.get_submodule(name)
            if not isinstance(conv, nn.Conv2d):
                raise TypeError(f"{name} is a {type(conv).__name__}, not a Conv2d")
            self.targets[name] = TopoTarget(conv.out_channels, device)
            conv.register_forward_hook(self._recorder(name))

    def _recorder(self, name: str):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            self.outputs[name] = output

        return hook

    def loss(self) -> torch.Tensor:
        total = sum(layer_loss(self.outputs[n], t) for n, t in self.targets.items())
        self.outputs.clear()
        return total.mean()


# --------------------------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), required=True)
    parser.add_argument("--batch", type=positive, required=True)
    parser.add_argument("--mode", choices=["train", "eval"], required=True)
    parser.add_argument("--topo", choices=["none", "grid2d"], required=True)
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
    model = MODELS[args.model](args.classes, args.channels).to(device)
    topo = None
    if args.topo == "grid2d":
        topo = TopoLoss(model, topographic_layers(args.model, model), device)
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
