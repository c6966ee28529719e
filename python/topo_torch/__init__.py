"""Models trained by `topo`, in PyTorch.

    import topo_torch
    model, positions, config = topo_torch.load("export/")   # written by `topo export`
    table = topo_torch.runs("results/quickstart")            # one row per run

`load` builds the run's model in plain PyTorch under torchvision's names (python/topo_torch/models.py),
loads its best weights (every tensor must fit, both ways) and returns it in evaluation mode with
each tapped layer's channel positions (`positions[layer]`: a `channels x dim` tensor) and the
export's config (model, width, stem, classes, input channels, class names, normalisation,
layout and loss). `runs` reads an experiment's run records as a table: a pandas DataFrame when
pandas is installed, a list of dicts otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from .models import MODELS

__all__ = ["load", "runs", "MODELS"]


def load(export_dir: str | Path) -> tuple[torch.nn.Module, dict[str, torch.Tensor], dict]:
    export_dir = Path(export_dir)
    config = json.loads((export_dir / "config.json").read_text())
    kind = config["model"]["kind"]
    if kind not in MODELS:
        raise ValueError(f"{export_dir}: unknown model {kind!r} (known: {', '.join(MODELS)})")
    # Classes, input channels and width multiplier, in that order for every model.
    arguments = [config["classes"], config["in_channels"], config["model"].get("width", 1.0)]
    stem = config["model"].get("stem", "cifar")
    model = MODELS[kind](*arguments) if stem == "cifar" else MODELS[kind](*arguments, stem)
    tensors = load_file(str(export_dir / "model.safetensors"))
    state = model.state_dict()
    missing = sorted(set(state) - set(tensors))
    unexpected = sorted(set(tensors) - set(state))
    shapes = sorted(k for k in set(state) & set(tensors) if state[k].shape != tensors[k].shape)
    if missing or unexpected or shapes:
        raise ValueError(f"{export_dir}/model.safetensors does not fit {kind}: missing {missing}, "
                         f"unexpected {unexpected}, mis-shaped {shapes}")
    model.load_state_dict(tensors, strict=True)
    model.eval()
    layers = json.loads((export_dir / "positions.json").read_text())["layers"]
    positions = {l["layer"]: torch.tensor(l["coords"], dtype=torch.float64).reshape(-1, l["dim"])
                 for l in layers}
    return model, positions, config


def runs(results_dir: str | Path):
    """Every run folder's `summary.json` under `results_dir/runs`, flattened: run id, status,
    data set, model, topography, lambda, seed, best epoch, accuracies, seconds."""
    rows = []
    for summary in sorted(Path(results_dir).glob("runs/*/summary.json")):
        s = json.loads(summary.read_text())
        axes = s.get("axes", {})
        rows.append({
            "run_id": s.get("run_id"),
            "status": s.get("status"),
            "dataset": axes.get("dataset"),
            "model": axes.get("model"),
            "topography": axes.get("topography"),
            "lambda": axes.get("lambda"),
            "seed": axes.get("seed"),
            "best_epoch": s.get("best_epoch"),
            "validation_accuracy": s.get("validation_accuracy"),
            "test_accuracy": s.get("test_accuracy"),
            "seconds": s.get("seconds"),
        })
    try:
        import pandas
    except ImportError:
        return rows
    return pandas.DataFrame(rows)
