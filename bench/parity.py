#!/usr/bin/env python3
"""`just parity`: topo against an independent PyTorch implementation of the same recipe.

For each seed, the baseline and the 2D grid of an experiment are trained by `topo` (its runs in
`results/`) and by this script in plain PyTorch: the same examples (from `topo splits`), model,
initialisation scheme, loss, optimiser, schedule, best-epoch rule and pruning, read from each
topo run's `run.yaml`. Randomness (initial weights, batch order, random pruning) is each
framework's own, so the two agree in distribution, not bit for bit. It then prints, per
topography, test accuracy in each framework with a Welch t statistic, the pruning curves, and
the pruning effect (the 2D grid's accuracy minus the baseline's, averaged over 10-60% of the
channels pruned) with its standard error, and writes the same text to `<results>/parity.md`.

    python3 bench/parity.py --topo-bin target/debug/topo [--experiment FILE] [--seeds 0 1 2 3 4]
        [--results DIR] [--set KEY=VALUE ...]

PyTorch's runs are kept as JSON in `<results>/pytorch/`, one file per run, so an interrupted
comparison resumes. Install torch with `bash bench/setup.sh`.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from pytorch_reference import EPS, ResNet18, TopoLoss, topographic_layers

# Fashion-MNIST's pixel statistics, as topo normalises it (src/data/fashion_mnist.rs).
FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530
# The proportions the pruning effect averages over.
EFFECT_FROM, EFFECT_TO = 0.1, 0.6
# The difference in pruning effect the comparison should tell from noise (issue 19).
RESOLVE_POINTS = 3.0
EVAL_BATCH = 256


# --------------------------------------------------------------------------------------------
# The recipe, from topo's run.yaml
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    width: float
    epochs: int
    batch: int
    lr: float
    momentum: float
    weight_decay: float
    warmup: float
    prune_methods: tuple[str, ...]
    proportions: tuple[float, ...]
    prune_seed: int

    @staticmethod
    def of(run: dict, path: Path) -> "Recipe":
        def need(ok: bool, what: str) -> None:
            if not ok:
                sys.exit(f"error: {path}: {what}; parity covers the recipe of experiments/fmnist_pruning.yaml")

        t, m = run["training"], run["model"]
        need(run["dataset"]["kind"] == "fashion_mnist", "the data set is not Fashion-MNIST")
        need(m["kind"] == "resnet18", f"model `{m['kind']}` (parity trains ResNet-18)")
        need(t["optimizer"]["kind"] == "sgd", "the optimiser is not SGD")
        need(t["schedule"]["kind"] == "warmup_cosine", "the schedule is not warmup_cosine")
        need(t["topographic"]["reduction"] == "sum", "the layer reduction is not `sum`")
        need(float(t["topographic"]["eps"]) == EPS, f"the loss's eps is not {EPS}")
        p = run["pruning"]["proportions"]
        if isinstance(p, dict):
            steps = int(p["steps"])
            proportions = tuple(p["from"] + (p["to"] - p["from"]) * i / (steps - 1) for i in range(steps))
        else:
            proportions = tuple(float(x) for x in p)
        return Recipe(
            width=float(m.get("width", 1.0)),
            epochs=int(t["epochs"]),
            batch=int(t["batch_size"]),
            lr=float(t["optimizer"]["lr"]),
            momentum=float(t["optimizer"]["momentum"]),
            weight_decay=float(t["optimizer"]["weight_decay"]),
            warmup=float(t["schedule"]["warmup"]),
            prune_methods=tuple(run["pruning"]["methods"]),
            proportions=proportions,
            prune_seed=int(run["pruning"].get("seed", 0)),
        )


def topography_of(run: dict, path: Path) -> str:
    """`base` or `grid2d`: the two this comparison trains."""
    t = run["topography"]
    if t.get("kind") == "none":
        return "base"
    if t.get("layout") == "grid" and int(t.get("dimension", 0)) == 2:
        return "grid2d"
    sys.exit(f"error: {path}: topography {t} (parity trains the baseline and the 2D grid)")


# --------------------------------------------------------------------------------------------
# Schedule: the reference's linear warm-up then cosine, stepped once per epoch
# --------------------------------------------------------------------------------------------


class WarmupCosine(torch.optim.lr_scheduler.LRScheduler):
    """Linear warm-up from 0 over `warmup` epochs, then a cosine towards 0 at `max_epochs`, in the
    recursive form of pl_bolts' LinearWarmupCosineAnnealingLR (the reference's scheduler), whose
    rate never quite reaches 0."""

    def __init__(self, optimizer: torch.optim.Optimizer, warmup: float, max_epochs: float) -> None:
        self.warmup, self.max_epochs = warmup, max_epochs
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        e, w, m = self.last_epoch, self.warmup, self.max_epochs
        out = []
        for base, group in zip(self.base_lrs, self.optimizer.param_groups):
            lr = group["lr"]
            if e == 0:
                new = 0.0
            elif e < w:
                new = lr + base / (w - 1)
            elif e == w:
                new = base
            elif (e - 1 - m) % (2 * (m - w)) == 0:
                new = lr + base * (1 - math.cos(math.pi / (m - w))) / 2
            else:
                new = (1 + math.cos(math.pi * (e - w) / (m - w))) / (
                    1 + math.cos(math.pi * (e - w - 1) / (m - w))
                ) * lr
            out.append(new if math.isfinite(new) else lr)
        return out


# --------------------------------------------------------------------------------------------
# Data: Fashion-MNIST's IDX files, the examples topo chose
# --------------------------------------------------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (root / name).exists():
            return root / name
    sys.exit(f"error: {root} has no {stem}[.gz]")


def load_fmnist(splits: dict) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    root = Path(splits["root"])
    files = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
    arrays = {k: (read_idx(find(root, i)), read_idx(find(root, l))) for k, (i, l) in files.items()}
    out = {}
    for split, source in (("train", "train"), ("validation", "train"), ("test", "test")):
        images, labels = arrays[source]
        idx = np.asarray(splits[split], dtype=np.int64)
        x = torch.from_numpy(images[idx].astype(np.float32) / 255.0).unsqueeze(1)
        out[split] = ((x - FMNIST_MEAN) / FMNIST_STD, torch.from_numpy(labels[idx].astype(np.int64)))
    return out


# --------------------------------------------------------------------------------------------
# One run: train, keep the best validation epoch, test it, prune it
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def accuracy(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor]) -> float:
    model.eval()
    x, y = data
    correct = sum(
        int((model(x[i : i + EVAL_BATCH]).argmax(1) == y[i : i + EVAL_BATCH]).sum())
        for i in range(0, len(y), EVAL_BATCH)
    )
    return correct / len(y)


def prune(model: nn.Module, method: str, proportion: float, rng: torch.Generator) -> nn.Module:
    """A copy with the given share of each tapped conv's output channels zeroed: the smallest
    by L2 or L1 norm of their weights (ties to the lower index), or chosen at random."""
    pruned = copy.deepcopy(model)
    with torch.no_grad():
        for name in topographic_layers("resnet18", pruned):
            conv = pruned.get_submodule(name)
            rows = conv.weight.flatten(1).double()
            count = min(round(proportion * rows.shape[0]), rows.shape[0])  # half to even
            if method == "random":
                chosen = torch.randperm(rows.shape[0], generator=rng)[:count]
            else:
                norm = rows.norm(dim=1) if method == "l2" else rows.abs().sum(1)
                chosen = torch.argsort(norm, stable=True)[:count]
            conv.weight[chosen] = 0
            if conv.bias is not None:
                conv.bias[chosen] = 0
    return pruned


def train_run(recipe: Recipe, topography: str, lam: float | None, seed: int, data: dict) -> dict:
    start = time.monotonic()
    torch.manual_seed(seed)
    model = ResNet18(classes=10, channels=1, width=recipe.width)
    topo = TopoLoss(model, topographic_layers("resnet18", model), torch.device("cpu")) if topography == "grid2d" else None
    opt = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )
    schedule = WarmupCosine(opt, recipe.warmup * recipe.epochs, recipe.epochs)
    order = torch.Generator().manual_seed(seed)
    x, y = data["train"]
    best_acc, best_epoch, best_state = -1.0, 0, None
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        for idx in torch.randperm(len(y), generator=order).split(recipe.batch):
            logits = model(x[idx])
            loss = F.cross_entropy(logits, y[idx])
            if topo is not None:
                loss = loss + lam * topo.loss()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        schedule.step()
        val = accuracy(model, data["validation"])
        print(f"    epoch {epoch}/{recipe.epochs}: val acc {100 * val:.2f}%", flush=True)
        if val >= best_acc:  # a later epoch wins a tie, as in topo
            best_acc, best_epoch, best_state = val, epoch, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    rng = torch.Generator().manual_seed(recipe.prune_seed)
    curve = [
        {"method": method, "proportion": p, "accuracy": accuracy(prune(model, method, p, rng), data["test"])}
        for method in recipe.prune_methods
        for p in recipe.proportions
    ]
    return {
        "framework": "pytorch",
        "torch": torch.__version__,
        "topography": topography,
        "lambda": lam,
        "seed": seed,
        "best_epoch": best_epoch,
        "validation_accuracy": best_acc,
        "test_accuracy": accuracy(model, data["test"]),
        "pruning": curve,
        "seconds": time.monotonic() - start,
    }


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        f.write(text)
        tmp = f.name
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------


@dataclass
class Result:
    topography: str
    seed: int
    test: float
    curve: dict[tuple[str, float], float]  # (method, proportion) -> accuracy


def topo_result(run_dir: Path, topography: str, seed: int) -> Result:
    summary = json.loads((run_dir / "summary.json").read_text())
    curve = {}
    for line in (run_dir / "pruning.csv").read_text().splitlines()[1:]:
        method, proportion, _pruned, _total, acc = line.split(",")
        curve[(method, round(float(proportion), 6))] = float(acc)
    return Result(topography, seed, summary["test_accuracy"], curve)


def torch_result(record: dict) -> Result:
    curve = {(p["method"], round(p["proportion"], 6)): p["accuracy"] for p in record["pruning"]}
    return Result(record["topography"], record["seed"], record["test_accuracy"], curve)


def mean_sd(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def welch_t(a: list[float], b: list[float]) -> str:
    if min(len(a), len(b)) < 2:
        return "n/a"
    (ma, sa), (mb, sb) = mean_sd(a), mean_sd(b)
    se = math.sqrt(sa**2 / len(a) + sb**2 / len(b))
    return f"{(ma - mb) / se:+.2f}" if se > 0 else "n/a"


def effect(results: list[Result], method: str) -> tuple[float, float]:
    """The grid's mean accuracy over 10-60% pruned minus the baseline's, in points, and its
    standard error over seeds (the two groups' variances added)."""

    def per_run(t: str) -> list[float]:
        return [
            100 * statistics.fmean(a for (m, p), a in r.curve.items() if m == method and EFFECT_FROM - 1e-9 <= p <= EFFECT_TO + 1e-9)
            for r in results
            if r.topography == t
        ]

    grid, base = per_run("grid2d"), per_run("base")
    (mg, sg), (mb, sb) = mean_sd(grid), mean_sd(base)
    return mg - mb, math.sqrt(sg**2 / len(grid) + sb**2 / len(base))


def report(topo: list[Result], torch_: list[Result], recipe: Recipe, header: str) -> str:
    pct = lambda m, s: f"{100 * m:.2f} ± {100 * s:.2f}"
    lines = [header, "", "## Test accuracy (%, mean ± std over seeds)", ""]
    lines += ["| topography | seeds | topo | PyTorch | Welch t |", "|---|---:|---:|---:|---:|"]
    for t in ("base", "grid2d"):
        a = [r.test for r in topo if r.topography == t]
        b = [r.test for r in torch_ if r.topography == t]
        lines.append(f"| {t} | {len(a)} / {len(b)} | {pct(*mean_sd(a))} | {pct(*mean_sd(b))} | {welch_t(a, b)} |")
    lines += ["", f"## Pruning effect: grid2d minus base, mean accuracy over {EFFECT_FROM:.0%}-{EFFECT_TO:.0%} of channels pruned (points ± standard error)", ""]
    lines += [
        f"| method | topo | PyTorch | difference | t | 2 SE of the difference | seeds for 2 SE < {RESOLVE_POINTS:.0f} |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    seeds = min(sum(r.topography == t for r in rs) for rs in (topo, torch_) for t in ("base", "grid2d"))
    resolved = []
    for method in recipe.prune_methods:
        (et, st), (ep, sp) = effect(topo, method), effect(torch_, method)
        se = math.sqrt(st**2 + sp**2)
        resolved.append(2 * se < RESOLVE_POINTS)
        t = f"{(et - ep) / se:+.2f}" if se > 0 else "n/a"
        # The standard error shrinks as 1/sqrt(seeds): the seeds per group that would bring
        # two of them under the difference to resolve, at the spreads measured.
        needed = math.ceil(seeds * (2 * se / RESOLVE_POINTS) ** 2) if seeds > 1 else "n/a"
        lines.append(
            f"| {method} | {et:+.2f} ± {st:.2f} | {ep:+.2f} ± {sp:.2f} | {et - ep:+.2f} | {t} | {2 * se:.2f} | {needed} |"
        )
    if seeds < 2:
        verdict = "With one seed per group there is no spread to judge a difference against."
    else:
        word = "tells" if all(resolved) else "does not tell"
        verdict = (
            f"At two standard errors, this comparison {word} a {RESOLVE_POINTS:.0f}-point difference "
            "in the pruning effect from noise for every method."
        )
    lines += ["", verdict]
    for method in recipe.prune_methods:
        lines += ["", f"## Pruning curve, {method} (test accuracy %, mean ± std over seeds)", ""]
        lines += ["| pruned | topo base | topo grid2d | PyTorch base | PyTorch grid2d |", "|---:|---:|---:|---:|---:|"]
        for p in recipe.proportions:
            key = (method, round(p, 6))
            cells = [
                pct(*mean_sd([r.curve[key] for r in rs if r.topography == t]))
                for rs in (topo, torch_)
                for t in ("base", "grid2d")
            ]
            lines.append(f"| {p:.0%} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topo-bin", required=True, help="the topo binary")
    parser.add_argument("--experiment", default="experiments/fmnist_pruning.yaml")
    parser.add_argument("--results", default="results", help="topo's results root")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed to topo, e.g. --set 'grid.seed=[0,1,2,3,4,5,6,7,8,9]' for more seeds",
    )
    args = parser.parse_args(argv)
    sets = [a for kv in args.sets for a in ("--set", kv)]
    torch.set_num_threads(args.threads)
    topo = lambda *a: subprocess.run([args.topo_bin, *a], check=True, capture_output=True, text=True).stdout

    plan = json.loads(topo("plan", args.experiment, *sets, "--results", args.results, "--format", "json"))
    runs = [
        r
        for r in plan["runs"]
        if r["seed"] in args.seeds
        and (r["topography"] == "base" or (r["topography"] == "grid2d" and r["lambda"] == 1))
    ]
    if not runs:
        sys.exit(f"error: {args.experiment} has no `base` or `grid2d` (lambda 1) run with seeds {args.seeds}")
    exp_dir = Path(plan["results"])
    print(f"topo: {len(runs)} runs of {plan['experiment']} (trained unless done)", flush=True)
    only = [a for r in runs for a in ("--only", r["id"])]
    subprocess.run([args.topo_bin, "run", args.experiment, *sets, "--results", args.results, "--no-report", *only], check=True)

    first = exp_dir / "runs" / runs[0]["id"] / "run.yaml"
    recipe = Recipe.of(yaml.safe_load(first.read_text()), first)
    dataset = runs[0]["dataset"]
    data = load_fmnist(json.loads(topo("splits", args.experiment, *sets, "--dataset", dataset)))
    out_dir = exp_dir / "pytorch"
    topo_results, torch_results = [], []
    for r in runs:
        run_dir = exp_dir / "runs" / r["id"]
        run = yaml.safe_load((run_dir / "run.yaml").read_text())
        if Recipe.of(run, run_dir / "run.yaml") != recipe:
            sys.exit(f"error: {run_dir}/run.yaml trains with another recipe than {first}")
        topography = topography_of(run, run_dir / "run.yaml")
        topo_results.append(topo_result(run_dir, topography, r["seed"]))
        record_path = out_dir / f"{r['id']}.json"
        if record_path.exists():
            record = json.loads(record_path.read_text())
        else:
            print(f"pytorch: {r['id']}", flush=True)
            record = train_run(recipe, topography, r["lambda"], r["seed"], data)
            write_atomic(record_path, json.dumps(record, indent=1) + "\n")
            print(f"    test {100 * record['test_accuracy']:.2f}% in {record['seconds']:.0f} s", flush=True)
        torch_results.append(torch_result(record))

    n = len(args.seeds)
    header = (
        f"# Parity: topo against PyTorch {torch.__version__}\n\n"
        f"{args.experiment}, the baseline and the 2D grid at lambda 1, seeds {', '.join(map(str, args.seeds))} "
        f"in each framework; ResNet-18 at width {recipe.width}, {recipe.epochs} epochs, "
        f"{len(data['train'][1])} training, {len(data['validation'][1])} validation and {len(data['test'][1])} test "
        f"examples, the same ones in both. Welch t: topo minus PyTorch over its standard error."
    )
    text = report(topo_results, torch_results, recipe, header)
    write_atomic(exp_dir / "parity.md", text)
    print(text)
    print(f"written: {exp_dir / 'parity.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
