#!/usr/bin/env python3
"""`just parity --steps`: topo's first training steps retaken in PyTorch, number for number.

`topo trace` writes, for each run of `experiments/steps.yaml`, its weights before the first step
and, per step, the exact inputs and labels (after augmentation), VGG's dropout masks, TDANN's
neighbourhoods, the losses, every gradient, every weight, momentum buffer and batch-norm running
statistic after the update. This script builds the same model in plain PyTorch (the models of
`pytorch_reference.py`, torchvision's names), loads the initial weights (checked equal), and
takes the same steps on its own: the cross-entropy, the topographic loss written from each
method's definition (the paper's cosine-similarity loss, TDANN's spatial correlation loss,
TopoLoss's blurred cortical sheet), autograd, `torch.optim.SGD`, and the reference's warm-up
cosine schedule. After each step it compares everything topo wrote against its own values and
prints, per run, the worst relative difference of each quantity over the steps.

The two trajectories are independent: PyTorch never reads topo's state after the initial
weights, so a wrong gradient anywhere shows as a growing difference.

    python3 bench/steps.py --topo-bin target/debug/topo [--steps 20] [--precision f64 f32]
        [--model resnet18 vgg16 densenet121] [--out DIR]

Exits 1 when a difference exceeds its precision's bound (see BOUNDS).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from torch.nn.utils import prune

from parity import WarmupCosine
from pytorch_reference import DenseNet121, ResNet18, VGG16BN
from topo_torch.losses import poli2023, tdann, topoloss  # noqa: E402 (path set by pytorch_reference)

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "experiments" / "steps.yaml"
# Written by `write_data` from the shipped Fashion-MNIST subset; the experiment names it.
DATA = ROOT / "target" / "steps-data" / "cifar-10-batches-bin"
FMNIST = ROOT / "data" / "fashion-mnist-subset"

# The largest relative difference allowed, max |topo - torch| / max(max |torch|, 1) over a
# tensor's elements (so a loss of 2.3 and a gradient of 1e-3 are both held to the bound in
# their own units), each step starting from topo's state after the previous one.
# - float64 (candle's kernels): every quantity at every step within 1e-10. The frameworks
#   differ only by summation order, about 1e-16 per operation, which a step's depth of at
#   most 16 batch norms amplifies to 1e-12 at worst (measured); 1e-10 leaves room for that
#   and nothing else.
# - float32 (the fast kernels): rounding is 1e-7 per operation, and a ReLU or max pool whose
#   input lies within rounding of its kink (0, or a tie) can go either way in either
#   framework: the gradient then differs by O(1e-2) at that step, from that unit back (seen
#   in DenseNet's denseblock4, a pre-activation of 1.7e-6). So the forward quantities (rate,
#   cross-entropy, topographic losses, batch-norm statistics) are held to 1e-4 at every step,
#   and gradients, weights and momenta to 1e-4 at the median step; their worst is reported.
BOUNDS = {"f64": 1e-10, "f32": 1e-4}
FORWARD = ["lr", "ce", "topo", "bn_stats"]
BACKWARD = ["grad", "weight", "momentum"]


def failures(worst: "Worst", precision: str) -> list[str]:
    """The quantities over their precision's bound, named with where."""
    bound = BOUNDS[precision]
    out = []
    for quantity, (value, step, name) in worst.values.items():
        if precision == "f32" and quantity in BACKWARD:
            value = worst.median(quantity)
            if value > bound:
                out.append(f"{quantity} median {value:.1e}")
        elif value > bound:
            out.append(f"{quantity} {value:.1e} at step {step} {name}".rstrip())
    return out


# CIFAR-10's binary record: a label byte, then 32 x 32 red, green and blue bytes.
SIDE = 32
PER_FILE = 20


# --------------------------------------------------------------------------------------------
# Data: Fashion-MNIST images as a small CIFAR-10 folder (VGG's five pools need 32 x 32)
# --------------------------------------------------------------------------------------------


def read_idx(path: Path) -> bytes:
    with gzip.open(path, "rb") as f:
        return f.read()


def write_data(out: Path) -> None:
    """Writes five training files and a test file of PER_FILE examples each: the subset's first
    images, padded from 28 x 28 to 32 x 32 with zeros and repeated on three channels."""
    images = read_idx(FMNIST / "train-images-idx3-ubyte.gz")[16:]
    labels = read_idx(FMNIST / "train-labels-idx1-ubyte.gz")[8:]
    out.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for n, name in enumerate(names):
        records = bytearray()
        for i in range(n * PER_FILE, (n + 1) * PER_FILE):
            pixels = images[i * 784 : (i + 1) * 784]
            plane = bytearray(SIDE * SIDE)
            for row in range(28):
                start = (row + 2) * SIDE + 2
                plane[start : start + 28] = pixels[row * 28 : (row + 1) * 28]
            records += bytes([labels[i]]) + bytes(plane) * 3
        tmp = out / f".{name}.tmp"
        tmp.write_bytes(records)
        os.replace(tmp, out / name)


# --------------------------------------------------------------------------------------------
# The model, from topo's run record
# --------------------------------------------------------------------------------------------


class GivenDropout(nn.Module):
    """Dropout whose mask is the one topo drew for this step (0 or 1 / (1 - p) per element)."""

    def __init__(self) -> None:
        super().__init__()
        self.mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mask is None:
            raise RuntimeError("no dropout mask given for this step")
        return x * self.mask


def model_with(record: dict, weights: dict[str, torch.Tensor]) -> nn.Module:
    """The traced run's model, in its precision, holding `weights` (checked to fit)."""
    dtype = torch.float64 if record["dtype"] == "f64" else torch.float32
    model = build_model(record["run"], record["classes"], record["in_channels"], dtype)
    load_initial(model, weights)
    return model


def build_model(run: dict, classes: int, channels: int, dtype: torch.dtype) -> nn.Module:
    spec = run["model"]
    kind, width = spec["kind"], spec.get("width", 1.0)
    if kind == "resnet18":
        model = ResNet18(classes, channels, width)
    elif kind == "vgg16_bn":
        model = VGG16BN(classes, channels, width)
    elif kind == "densenet121":
        model = DenseNet121(classes, channels, width)
    else:
        raise ValueError(f"unknown model {kind!r}")
    return model.to(dtype)


def load_initial(model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Loads topo's initial weights; every name must match both ways, every shape too."""
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(state) - set(tensors))
    unexpected = sorted(set(tensors) - set(state))
    shapes = sorted(k for k in set(state) & set(tensors) if state[k].shape != tensors[k].shape)
    if missing or unexpected or shapes:
        raise SystemExit(
            f"the trace's weights do not fit the PyTorch model: missing {missing}, "
            f"unexpected {unexpected}, mis-shaped {shapes}"
        )
    model.load_state_dict(tensors, strict=False)
    for k, v in model.state_dict().items():
        if k in tensors and not torch.equal(v, tensors[k]):
            raise SystemExit(f"{k}: not equal after loading")


# --------------------------------------------------------------------------------------------
# The three topographic losses, from their definitions
# --------------------------------------------------------------------------------------------


def unit_of(kind: str, conv: str) -> tuple[str, bool]:
    """Where a conv's unit emits its output (`tap: block`): the module to hook and whether a
    ReLU follows it there. A conv followed by batch norm and ReLU: that batch norm, rectified.
    A residual block's second conv and its shortcut conv: the block. A DenseNet layer's
    second conv: itself (the layer's output). A transition's conv: its pool."""
    parts = conv.split(".")
    if kind == "resnet18":
        if conv == "conv1":
            return "bn1", True
        if parts[-1] == "conv1":
            return ".".join(parts[:-1] + ["bn1"]), True
        block = parts[:2]  # layerX.Y, for conv2 and downsample.0
        return ".".join(block), False
    if kind == "vgg16_bn":
        return f"features.{int(parts[1]) + 1}", True
    if kind == "densenet121":
        if conv == "features.conv0":
            return "features.norm0", True
        if parts[-1] == "conv1":
            return ".".join(parts[:-1] + ["norm2"]), True
        if parts[-1] == "conv2":
            return conv, False
        return ".".join(parts[:-1] + ["pool"]), False
    raise ValueError(f"unknown model {kind!r}")



# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------


def difference(topo: torch.Tensor, torch_: torch.Tensor) -> float:
    """max |a - b| / max(max |b|, 1), in float64."""
    a, b = topo.double(), torch_.detach().double()
    if a.shape != b.shape:
        return math.inf
    if a.numel() == 0:
        return 0.0
    return float((a - b).abs().max() / max(float(b.abs().max()), 1.0))


@dataclass
class Worst:
    """Per quantity: the worst difference of each step, and the worst of all with where it was."""

    per_step: dict[str, dict[int, float]] = field(default_factory=dict)
    values: dict[str, tuple[float, int, str]] = field(default_factory=dict)

    def add(self, quantity: str, value: float, step: int, name: str = "") -> None:
        if math.isnan(value):
            value = math.inf
        steps = self.per_step.setdefault(quantity, {})
        steps[step] = max(steps.get(step, 0.0), value)
        if quantity not in self.values or value > self.values[quantity][0]:
            self.values[quantity] = (value, step, name)

    def max(self) -> float:
        return max((v for v, _, _ in self.values.values()), default=0.0)

    def median(self, quantity: str) -> float:
        """The median over steps of each step's worst difference."""
        return statistics.median(self.per_step[quantity].values())


QUANTITIES = FORWARD + BACKWARD


def replay(trace_dir: Path, forced: bool) -> tuple[dict, Worst]:
    """Retakes the traced steps. `forced`: each step starts from topo's weights, batch-norm
    statistics and momenta after the previous one, so a difference is that step's alone;
    otherwise PyTorch follows its own trajectory from the initial weights."""
    record = json.loads((trace_dir / "trace.json").read_text())
    run = record["run"]
    dtype = torch.float64 if record["dtype"] == "f64" else torch.float32
    model = model_with(record, load_file(trace_dir / "initial.safetensors"))
    dropouts = []
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Dropout):
                given = GivenDropout()
                setattr(module, child_name, given)
                dropouts.append(given)
    model.train()

    # The objective: lambda, the loss, how layers combine.
    topography = run["topography"]
    if topography.get("lambda_schedule", {"kind": "constant"})["kind"] != "constant":
        raise SystemExit(f"{run['id']}: a lambda_schedule is not retaken here yet; "
                         "trace runs with a constant lambda")
    topographic = topography.get("kind") != "none"
    taps = [t["name"] for t in record["taps"]]
    outputs: dict[str, torch.Tensor] = {}
    at_block = topographic and topography.get("tap", "conv") == "block"
    for name in taps:
        module, rectify = unit_of(run["model"]["kind"], name) if at_block else (name, False)

        def hook(_m, _i, out, name=name, rectify=rectify):
            outputs[name] = F.relu(out) if rectify else out

        model.get_submodule(module).register_forward_hook(hook)
    loss = topography.get("loss", {"kind": "poli2023"}) if topographic else None
    if isinstance(loss, str):
        loss = {"kind": loss}
    spec = run["training"].get("topographic", {})
    reduction, eps = spec.get("reduction", "sum"), float(spec.get("eps", 1e-8))
    positions = [
        torch.tensor(t["positions"], dtype=dtype) if t["positions"] is not None else None
        for t in record["taps"]
    ]
    layer_weights = record["layer_weights"]

    optimizer_spec = run["training"]["optimizer"]
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=0.0,
        momentum=optimizer_spec["momentum"],
        weight_decay=optimizer_spec["weight_decay"],
    )
    # The reference's scheduler, stepped once per epoch as its training scripts step it.
    training = run["training"]
    schedule = training["schedule"]
    for group in optimizer.param_groups:
        group["lr"] = optimizer_spec["lr"]
    scheduler = None
    if schedule["kind"] == "warmup_cosine":
        scheduler = WarmupCosine(
            optimizer, schedule["warmup"] * training["epochs"], training["epochs"]
        )
    epoch = 1
    names = {id(p): n for n, p in model.named_parameters()}
    worst = Worst()
    previous: dict[str, torch.Tensor] | None = None
    for step in record["steps"]:
        s = step["step"]
        tensors = load_file(trace_dir / f"step-{s:04d}.safetensors")
        if forced and previous is not None:
            start_from(model, optimizer, previous)
        for k, given in enumerate(dropouts):
            given.mask = tensors[f"dropout.{k}"].to(dtype)
        while epoch < step["epoch"]:
            if scheduler is not None:
                scheduler.step()
            epoch += 1
        lr = optimizer.param_groups[0]["lr"]
        worst.add("lr", abs(lr - step["lr"]) / max(abs(lr), 1.0), s)

        optimizer.zero_grad(set_to_none=True)
        logits = model(tensors["input"])
        ce = F.cross_entropy(logits, tensors["label"].long())
        total = ce
        worst.add("ce", abs(float(ce.detach()) - step["ce"]) / max(abs(float(ce.detach())), 1.0), s)
        if topographic:
            per_layer = []
            for i, name in enumerate(taps):
                if loss["kind"] == "poli2023":
                    value = poli2023(outputs[name], positions[i], record["norm"], eps)
                elif loss["kind"] == "tdann":
                    groups = step["neighbourhoods"][i] if step["neighbourhoods"] else None
                    value = tdann(outputs[name], positions[i], record["norm"], groups)
                elif loss["kind"] == "topoloss":
                    value = topoloss(model.get_submodule(name).weight, float(loss["factor"]))
                else:
                    raise ValueError(f"unknown loss {loss['kind']!r}")
                per_layer.append(value)
            for i, value in enumerate(per_layer):
                d = abs(float(value.detach()) - step["topo_layers"][i]) / max(abs(float(value.detach())), 1.0)
                worst.add("topo", d, s, taps[i])
            weighted = torch.stack(per_layer) * torch.tensor(layer_weights, dtype=dtype)
            topo = weighted.sum() if reduction == "sum" else weighted.mean()
            total = ce + float(run["lambda"]) * topo
        total.backward()
        for name, p in model.named_parameters():
            key = f"grad/{name}"
            if key not in tensors:
                worst.add("grad", math.inf, s, f"{name} (no gradient in the trace)")
                continue
            worst.add("grad", difference(tensors[key], p.grad), s, name)
        optimizer.step()
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            quantity = "bn_stats" if name.endswith(("running_mean", "running_var")) else "weight"
            worst.add(quantity, difference(tensors[f"after/{name}"], t), s, name)
        for group in optimizer.param_groups:
            for p in group["params"]:
                buf = optimizer.state[p].get("momentum_buffer")
                name = names[id(p)]
                key = f"momentum/{name}"
                if buf is None or key not in tensors:
                    if (buf is None) != (key not in tensors):
                        worst.add("momentum", math.inf, s, f"{name} (buffer on one side only)")
                    continue
                worst.add("momentum", difference(tensors[key], buf), s, name)
        previous = tensors
    return record, worst


def start_from(model: nn.Module, optimizer: torch.optim.Optimizer, tensors: dict) -> None:
    """Sets the model's weights and statistics and the optimiser's momenta to topo's."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            key = f"after/{name}"
            if key in tensors:
                t.copy_(tensors[key])
        for name, p in model.named_parameters():
            key = f"momentum/{name}"
            if key in tensors:
                optimizer.state[p]["momentum_buffer"] = tensors[key].clone()


@dataclass
class Pruned:
    """The pruning points of one run: how many, how many chose other channels than topo, how
    many tested to another count of correct examples, and the worst logit difference."""

    points: int = 0
    other_channels: int = 0
    other_correct: int = 0
    logits: float = 0.0


def replay_pruning(trace_dir: Path) -> Pruned:
    """Prunes the weights topo had after its last step with torch's own pruning (as the
    reference's `scripts/pruning/evaluate.py`: `ln_structured` over output channels, the bias
    masked by its channel; topo's draw for `random`) and tests them on the same examples."""
    record = json.loads((trace_dir / "trace.json").read_text())
    result = Pruned()
    if not record["pruning"]:
        return result
    last = load_file(trace_dir / f"step-{record['steps'][-1]['step']:04d}.safetensors")
    final = {k.removeprefix("after/"): v for k, v in last.items() if k.startswith("after/")}
    test = load_file(trace_dir / "test.safetensors")
    taps = [t["name"] for t in record["taps"]]
    for index, point in enumerate(record["pruning"]):
        model = model_with(record, final)
        model.eval()
        chosen = []
        for layer, name in enumerate(taps):
            conv = model.get_submodule(name)
            if point["method"] == "random":
                mask = torch.ones_like(conv.weight)
                mask[point["channels"][layer]] = 0
                prune.custom_from_mask(conv, "weight", mask)
            else:
                n = 1 if point["method"] == "l1" else 2
                prune.ln_structured(conv, "weight", amount=point["proportion"], n=n, dim=0)
            if conv.bias is not None:
                prune.custom_from_mask(conv, "bias", conv.weight_mask.mean(dim=(1, 2, 3)))
            chosen.append(
                [int(c) for c in (conv.weight_mask.flatten(1).sum(1) == 0).nonzero().flatten()]
            )
        with torch.no_grad():
            logits = model(test["input"])
        theirs = load_file(trace_dir / f"prune-{index:02d}.safetensors")["logits"]
        correct = int((logits.argmax(1) == test["label"].long()).sum())
        result.points += 1
        result.other_channels += chosen != point["channels"]
        result.other_correct += correct != point["correct"]
        result.logits = max(result.logits, difference(theirs, logits))
    return result


def run_topo(topo_bin: Path, out: Path, precision: str, steps: int, only: list[str]) -> None:
    command = [
        str(topo_bin.resolve()),
        "trace",
        str(EXPERIMENT),
        "--out",
        str(out),
        "--precision",
        precision,
        "--steps",
        str(steps),
    ]
    for run_id in only:
        command += ["--only", run_id]
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def table(rows: list[tuple[str, str, Worst, Worst]]) -> str:
    head = "| run | precision | " + " | ".join(QUANTITIES) + " | worst at | own trajectory |"
    lines = [head, "|" + "---|" * (len(QUANTITIES) + 4)]
    for run_id, precision, worst, drift in rows:
        cells = []
        for q in QUANTITIES:
            v = worst.values.get(q)
            if v is None:
                cells.append("-")
            elif q in BACKWARD:
                cells.append(f"{worst.median(q):.1e} / {v[0]:.1e}")
            else:
                cells.append(f"{v[0]:.1e}")
        quantity, (value, step, name) = max(worst.values.items(), key=lambda kv: kv[1][0])
        lines.append(
            f"| {run_id} | {precision} | " + " | ".join(cells) + f" | {quantity} step {step} {name} "
            f"| {drift.max():.1e} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topo-bin", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--precision", nargs="+", choices=sorted(BOUNDS), default=["f64", "f32"])
    parser.add_argument(
        "--model", nargs="+", default=[], metavar="NAME", help="only these models of the experiment"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "target" / "steps-trace")
    args = parser.parse_args(argv)

    write_data(DATA)
    plan = json.loads(
        subprocess.run(
            [str(args.topo_bin.resolve()), "plan", str(EXPERIMENT), "--format", "json"],
            check=True,
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout
    )
    unknown = sorted(set(args.model) - {r["model"] for r in plan["runs"]})
    if unknown:
        parser.error(f"no model {unknown} in {EXPERIMENT.name}")
    only = [r["id"] for r in plan["runs"] if not args.model or r["model"] in args.model]
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    rows = []
    pruning_rows: list[tuple[str, str, Pruned]] = []
    failed = []
    for precision in args.precision:
        out = args.out / precision
        run_topo(args.topo_bin, out, precision, args.steps, only)
        for run_id in only:
            trace_dir = out / run_id
            record, worst = replay(trace_dir, forced=True)
            _, drift = replay(trace_dir, forced=False)
            pruned = replay_pruning(trace_dir)
            rows.append((trace_dir.name, f"{precision} ({record['kernels']})", worst, drift))
            pruning_rows.append((trace_dir.name, precision, pruned))
            over = failures(worst, precision)
            # In float64 the channels chosen and the examples right must be the same; in
            # float32 a near tie in a norm or a logit may go either way.
            if precision == "f64" and (
                pruned.other_channels or pruned.other_correct or pruned.logits > BOUNDS["f64"]
            ):
                over.append(
                    f"pruning: {pruned.other_channels} points choose other channels, "
                    f"{pruned.other_correct} test otherwise, logits {pruned.logits:.1e}"
                )
            if over:
                failed.append(f"{trace_dir.name} {precision}: {', '.join(over)}")
            print(
                f"{trace_dir.name} {precision}: per step {worst.max():.1e}, "
                f"own trajectory {drift.max():.1e}",
                file=sys.stderr,
            )
    print(
        f"Relative difference, topo against PyTorch, over {args.steps} steps, each step from "
        "topo's state after the previous one: the worst over the steps, and for gradients, "
        "weights and momenta the median step / the worst. Bounds: f64, every value "
        f"{BOUNDS['f64']:.0e}; f32, forward values and backward medians {BOUNDS['f32']:.0e} "
        "(see BOUNDS). Last column: the worst difference when PyTorch follows its own "
        "trajectory from the same initial weights (not bounded: training amplifies rounding "
        "once the rate is above 0).\n"
    )
    print(table(rows))
    print(
        "\nPruning the weights after the last step (each run's `pruning:` points), topo against "
        "torch.nn.utils.prune on the same weights and test examples:\n"
    )
    print("| run | precision | points | other channels | other correct count | worst logits |")
    print("|---|---|---:|---:|---:|---:|")
    for run_id, precision, p in pruning_rows:
        print(
            f"| {run_id} | {precision} | {p.points} | {p.other_channels} | {p.other_correct} "
            f"| {p.logits:.1e} |"
        )
    if failed:
        print("\nover the bound: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
