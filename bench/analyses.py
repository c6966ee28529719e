#!/usr/bin/env python3
"""Checks topo's analyses against an independent numpy implementation.

For every run under a results folder analysed with `topo analyse DIR --responses`, reads the
raw responses topo kept (responses.safetensors: each tapped layer's spatially averaged
response to every probe example, grating and tone), recomputes from them, with numpy and the
definitions alone, every map and statistic analyses.json holds that does not depend on the
shuffles: d' of each class against the rest, preferred orientation and selectivity (vector sum
at twice the angle) and preferred spatial frequency, preferred frequency, the smoothness curve
and index, Moran's I with inverse-distance weights, and the pinwheel count on grid layouts.
Exit 1 when any value differs by more than --tolerance (relative, 1e-9 by default), or a
preferred orientation by more than 1e-5 degrees.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

BINS = 10
# Degrees: the bound on preferred orientations (see Checker.same).
ANGLE_TOLERANCE = 1e-5


def dprime(x, labels, classes):
    out = np.full((x.shape[1], classes), np.nan)
    for k in range(classes):
        a, b = x[labels == k], x[labels != k]
        if len(a) < 2 or len(b) < 2:
            continue
        pooled = np.sqrt((a.var(axis=0, ddof=1) + b.var(axis=0, ddof=1)) / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = (a.mean(axis=0) - b.mean(axis=0)) / pooled
        out[:, k] = np.where(pooled > 0, d, np.nan)
    return out


def orientation(r, g, conv):
    no, nf, npz = len(g["orientations"]), len(g["frequencies"]), g["phases"]
    r = r.reshape(no, nf, npz, -1).mean(axis=2)  # orientation x frequency x channel
    best = r.sum(axis=0).argmax(axis=0)
    tuning = r[:, best, np.arange(r.shape[2])]  # orientation x channel
    if conv:
        tuning = tuning - tuning.min(axis=0)
    theta = np.radians(2 * np.asarray(g["orientations"]))[:, None]
    x, y = (tuning * np.cos(theta)).sum(0), (tuning * np.sin(theta)).sum(0)
    total = tuning.sum(0)
    ok = (total > 0) & (tuning >= 0).all(0)
    pref = np.where(ok, np.mod(np.degrees(np.arctan2(y, x)) / 2, 180), np.nan)
    osi = np.where(ok, np.clip(np.hypot(x, y) / np.where(ok, total, 1), 0, 1), np.nan)
    sf = np.where(ok, np.log2(np.asarray(g["frequencies"])[best]), np.nan)
    return pref, osi, sf


def preferred_frequency(r, tones):
    flat = r.max(0) <= r.min(0)
    return np.where(flat, np.nan, np.log2(np.asarray(tones)[r.argmax(0)]))


def map_checks(values, pos, angle):
    """Observed curve, smoothness index and Moran's I of the channels with a value."""
    keep = ~np.isnan(values)
    v, p = values[keep], pos[keep]
    n = len(v)
    if n < 3:
        return None
    iu = np.triu_indices(n, 1)
    dist = np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1))[iu]
    if angle:
        d = np.abs(v[:, None] - v[None, :])[iu] % 180
        diff = np.minimum(d, 180 - d)
    else:
        diff = np.abs(v[:, None] - v[None, :])[iu]
    lo, hi = dist.min(), dist.max()
    width = (hi - lo) / BINS
    k = np.minimum(((dist - lo) / width).astype(int), BINS - 1) if width > 0 else np.zeros_like(dist, int)
    curve = [diff[k == b].mean() if (k == b).any() else None for b in range(BINS)]
    near = next(c for c in curve if c is not None)
    everything = diff.mean()
    if not everything > 0:
        return None
    w = np.where(dist > 0, 1 / np.where(dist > 0, dist, 1), 0)
    comps = [np.cos(np.radians(2 * v)), np.sin(np.radians(2 * v))] if angle else [v]
    cross = spread = 0.0
    for c in comps:
        z = c - c.mean()
        spread += (z * z).sum()
        cross += (w * z[iu[0]] * z[iu[1]]).sum()
    moran = n / (2 * w.sum()) * 2 * cross / spread
    return {"curve": curve, "smoothness": 1 - near / everything, "moran": moran}


def pinwheels(pref, pos):
    xs, ys = np.unique(pos[:, 0]), np.unique(pos[:, 1])
    if len(xs) < 2 or len(ys) < 2 or len(xs) * len(ys) > 2 * len(pos):
        return None
    grid = np.full((len(ys), len(xs)), np.nan)
    for c, (x, y) in enumerate(pos):
        grid[np.searchsorted(ys, y), np.searchsorted(xs, x)] = pref[c]
    count = 0
    for r in range(len(ys) - 1):
        for c in range(len(xs) - 1):
            ring = [grid[r, c], grid[r, c + 1], grid[r + 1, c + 1], grid[r + 1, c]]
            if any(np.isnan(ring)):
                continue
            turn = sum((ring[(i + 1) % 4] - ring[i] + 90) % 180 - 90 for i in range(4))
            count += round(turn / 180) != 0
    return count


class Checker:
    def __init__(self, tolerance):
        self.tolerance, self.values, self.worst, self.failures = tolerance, 0, 0.0, []

    def same(self, what, got, want, angle=False):
        got = np.asarray([np.nan if g is None else g for g in np.atleast_1d(got)], float)
        want = np.asarray([np.nan if w is None else w for w in np.atleast_1d(want)], float)
        if got.shape != want.shape or (np.isnan(got) != np.isnan(want)).any():
            self.failures.append(f"{what}: defined at different channels")
            return
        ok = ~np.isnan(got)
        rel = np.abs(got[ok] - want[ok]) / np.maximum(1.0, np.abs(want[ok]))
        if angle:
            # Degrees, compared round the circle. The angle of a nearly cancelling vector sum
            # (an unselective channel) amplifies summation order: the bound is 1e-5 degrees.
            d = np.abs(got[ok] - want[ok]) % 180
            rel = np.minimum(d, 180 - d) * self.tolerance / ANGLE_TOLERANCE
        self.values += int(ok.sum())
        if rel.size:
            self.worst = max(self.worst, float(rel.max()))
            if rel.max() > self.tolerance:
                self.failures.append(f"{what}: off by {rel.max():.3g}")


def check_run(run, check):
    a = json.loads((run / "analyses.json").read_text())
    t = json.loads((run / "topography.json").read_text())
    raw = load_file(str(run / "responses.safetensors"))
    positions = {l["layer"]: np.asarray(l["positions"]["coords"]).reshape(-1, l["positions"]["dim"]) for l in t["layers"]}
    conv = a["at"] == "conv"
    maps = 0
    for layer in a["layers"]:
        name, by = layer["layer"], {}
        for m in layer["maps"]:
            key = m["map"]["kind"] + (f":{m['map']['class']}" if "class" in m["map"] else "")
            by[key] = m
        probe = raw.get(f"probe.{name}")
        if probe is not None and any(k.startswith("dprime") for k in by):
            labels = raw["probe.labels"].astype(int)
            classes = 1 + max(m["map"]["class"] for m in layer["maps"] if "class" in m["map"])
            d = dprime(probe, labels, classes)
            for k in range(classes):
                check.same(f"{run.name} {name} d' class {k}", by[f"dprime:{k}"]["values"], d[:, k])
        if "preferred_orientation" in by:
            pref, osi, sf = orientation(raw[f"gratings.{name}"], a["gratings"], conv)
            check.same(f"{run.name} {name} preferred orientation", by["preferred_orientation"]["values"], pref,
                       angle=True)
            check.same(f"{run.name} {name} selectivity", by["orientation_selectivity"]["values"], osi)
            check.same(f"{run.name} {name} spatial frequency", by["preferred_spatial_frequency"]["values"], sf)
            count = pinwheels(pref, positions[name]) if positions[name].shape[1] == 2 else None
            if count is not None and layer.get("pinwheels") is not None:
                check.same(f"{run.name} {name} pinwheels", len(layer["pinwheels"]["pinwheels"]), count)
        if "preferred_frequency" in by:
            check.same(f"{run.name} {name} preferred frequency", by["preferred_frequency"]["values"],
                       preferred_frequency(raw[f"tones.{name}"], a["tones"]))
        for key, m in by.items():
            got = m["statistics"]
            want = map_checks(np.asarray([np.nan if v is None else v for v in m["values"]]), positions[name],
                              key == "preferred_orientation")
            if (got is None) != (want is None):
                check.failures.append(f"{run.name} {name} {key}: statistics present in one only")
                continue
            if got is None:
                continue
            maps += 1
            check.same(f"{run.name} {name} {key} curve", [b["difference"] for b in got["curve"]], want["curve"])
            check.same(f"{run.name} {name} {key} smoothness", got["smoothness"], want["smoothness"])
            check.same(f"{run.name} {name} {key} Moran's I", got["moran"], want["moran"])
    return maps


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="results/<experiment>, analysed with --responses")
    ap.add_argument("--tolerance", type=float, default=1e-9)
    args = ap.parse_args()
    runs = sorted(p.parent for p in (args.results / "runs").glob("*/responses.safetensors"))
    if not runs:
        sys.exit(f"no run under {args.results}/runs has responses.safetensors: "
                 f"run `topo analyse {args.results} --force --responses` first")
    check = Checker(args.tolerance)
    maps = sum(check_run(run, check) for run in runs)
    print(f"{len(runs)} runs, {maps} maps, {check.values} values against numpy: "
          f"the worst difference is {check.worst / args.tolerance:.2g} of its bound "
          f"(relative {args.tolerance:g}; {ANGLE_TOLERANCE:g} degrees for orientations)")
    # What the analyses cost against training, per run (the budget: a tenth).
    ratios = []
    for run in runs:
        spent = json.loads((run / "analyses.json").read_text())["seconds"]
        trained = json.loads((run / "summary.json").read_text())["seconds"]
        ratios.append((spent, trained))
    spent, trained = np.median([r[0] for r in ratios]), np.median([r[1] for r in ratios])
    print(f"analyses: median {spent:.2f} s a run against {trained:.1f} s for the run "
          f"(training, testing, pruning and analyses): {spent / trained:.1%}")
    for f in check.failures:
        print("  FAIL", f)
    sys.exit(1 if check.failures else 0)


if __name__ == "__main__":
    main()
