"""The topographic losses `topo` trains with, in plain PyTorch: the paper's (Poli et al.
2023), TDANN's (Margalit et al. 2024) and TopoLoss's (Deb et al. 2025), as topo computes
them (docs/methods), so that a notebook can measure an exported model's layers the same way.
`bench/steps.py` replays topo's training steps with them; `bench/pytorch_reference.py`
times them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["distances", "poli2023", "tdann", "topoloss", "sheet"]


def distances(positions: torch.Tensor, norm: str) -> torch.Tensor:
    return torch.cdist(positions, positions, p=2.0 if norm == "euclidean" else 1.0)


def upper_pairs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    i, j = torch.triu_indices(n, n, offset=1)
    return i, j


def poli2023(y: torch.Tensor, positions: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """Poli et al. 2023, eq. 1-3: per sample, the cosine similarity of every pair of channel maps
    (norms' product floored at eps) against 1 / (d + 1), squared, averaged over pairs i < j;
    then averaged over the batch."""
    flat = y.flatten(2)
    norms = flat.norm(dim=2)
    cosine = (flat @ flat.transpose(1, 2)) / torch.clamp(norms[:, :, None] * norms[:, None, :], min=eps)
    target = 1.0 / (distances(positions, norm) + 1.0)
    i, j = upper_pairs(y.shape[1])
    return ((cosine[:, i, j] - target[i, j]) ** 2).mean(dim=1).mean()


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a - a.mean(), b - b.mean()
    return (a * b).sum() / (a.norm() * b.norm())


def tdann(
    y: torch.Tensor, positions: torch.Tensor, norm: str, neighbourhoods: list[list[int]] | None
) -> torch.Tensor:
    """Margalit et al. 2024 (TDANN), with a channel as the unit: the Pearson correlation of every
    pair of channels' responses over the batch's images and positions (a channel that never
    varies has spread 1, so its correlations are 0; clamped to [-1, 1]), correlated over pairs
    i < j with 1 / (d + 1); the loss is (1 - r) / 2, averaged over the step's neighbourhoods."""
    responses = y.transpose(0, 1).reshape(y.shape[1], -1)
    inverse = 1.0 / (distances(positions, norm) + 1.0)
    groups = neighbourhoods or [list(range(y.shape[1]))]
    losses = []
    for units in groups:
        idx = torch.tensor(units)
        r = responses[idx]
        centred = r - r.mean(dim=1, keepdim=True)
        spread = centred.norm(dim=1)
        spread = torch.where(spread == 0, torch.ones_like(spread), spread)
        corr = ((centred @ centred.T) / (spread[:, None] * spread[None, :])).clamp(-1.0, 1.0)
        i, j = upper_pairs(len(units))
        losses.append((1.0 - pearson(corr[i, j], inverse[idx][:, idx][i, j])) / 2.0)
    return torch.stack(losses).mean()


def sheet(channels: int) -> tuple[int, int]:
    """TopoLoss's cortical sheet: height the largest divisor of C at most sqrt(C)."""
    h = math.isqrt(channels)
    while h > 1 and channels % h:
        h -= 1
    h = max(h, 1)
    return h, channels // h


def topoloss(weight: torch.Tensor, factor: float) -> torch.Tensor:
    """Deb et al. 2025 (TopoLoss): the conv's output channels on an h x w sheet (channel
    row * w + col) holding their flattened weights, shrunk by `factor` and grown back with
    bilinear interpolation; 1 - the mean over cells of the cosine of each cell's weights with
    its blurred weights."""
    h, w = sheet(weight.shape[0])
    grid = weight.reshape(h, w, -1).permute(2, 0, 1).unsqueeze(0)
    small = F.interpolate(grid, scale_factor=(1 / factor, 1 / factor), mode="bilinear")
    blurred = F.interpolate(small, size=(h, w), mode="bilinear")
    cells = grid.squeeze(0).permute(1, 2, 0).reshape(h * w, -1)
    blurred = blurred.squeeze(0).permute(1, 2, 0).reshape(h * w, -1)
    return 1.0 - F.cosine_similarity(cells, blurred, dim=-1).mean()
