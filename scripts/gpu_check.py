#!/usr/bin/env python3
"""`just gpu-check`: topo's GPU path proved in one run, on a machine with an NVIDIA GPU.

Run it through `just gpu-check` (scripts/gpu_check.sh), which refuses at once where there is no
GPU and sets up the CUDA compiler from NVIDIA's PyPI wheels. The steps, each logged under
OUT/logs/:

  build       cargo build --features cuda of the topo binary and the train-step benchmark
  kernels     the device tests (tests/it/device.rs) with TEST_DEVICE=cuda: every op of a
              training step of the three models on the GPU against the CPU, within 1e-4
  quickstart  experiments/quickstart.yaml trained on the CPU and on the GPU; test accuracies
              and per-epoch training losses compared (float rounding only)
  timing      ResNet-18 train steps at batch 128 and 256, without and with the topographic loss,
              in topo and in PyTorch on the same GPU (bench/pytorch_reference.py --device cuda),
              and in topo on candle's own convs (--kernels candle) beside them

It prints one table and a verdict line, and writes OUT/report.md (the same table, with the
machine), OUT/timings.jsonl (the raw records) and OUT/quickstart/ (both experiments' results).
It exits 0 when the build, the kernel tests and the quickstart comparison pass and every timing
ran; the speed ratios are figures, not a pass mark.

`--prebuilt DIR` skips the build: the binaries are DIR/topo, DIR/train_step and DIR/it (the test
binary), or the same xz-compressed, as `just gpu-bundle` lays them out beside this script for a GPU node without Rust or
network (see that bundle's `run`). Then each step has a time limit (`--limits`), a step that
fails or runs out of time is reported as such while the others go on, the CUDA libraries are
looked for where such a node has them (CUDA_HOME/lib64, or the nvidia-* wheels beside PyTorch),
PyTorch is the one installed there, and OUT holds at most 8 files (the quickstart's results
stay in a scratch folder; OUT/quickstart.json keeps what was compared).

`--device cpu` is the dry run: the same steps on a machine without a GPU, the CPU standing in for
it (the device side runs the ops a GPU runs: `--kernels unfold`). `--quick` trains
the quickstart on 1,000 examples and times batch 8 and 16 for two steps, for CI.
"""

from __future__ import annotations

import argparse
import datetime
import json
import lzma
import os
import platform
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
# In the repository this script sits in scripts/ and the benchmark in bench/; in a bundle both
# sit in runner/, beside each other.
ROOT = HERE.parent
sys.path.insert(0, str(HERE if (HERE / "compare.py").exists() else ROOT / "bench"))
import compare  # noqa: E402  (bench/compare.py: running and parsing one benchmark configuration)

# Seconds each step of a prebuilt check may take, 8 minutes in all: a GPU node is held for
# minutes, not hours.
DEFAULT_LIMITS = {"kernels": 120.0, "quickstart": 210.0, "timing": 150.0}
# What float rounding explains between two implementations of the same training (measured on
# the CPU: the quickstart on candle's own ops, and on the GPU's kernels (`--kernels unfold`),
# against the fast kernels: the same functions summed in other orders). The first epoch runs
# at a learning rate of 0 (the reference's warm-up starts there), so its training loss is the
# forward pass over every batch: it agreed to 5e-8. Training then amplifies the rounding as a
# new seed would: the training losses differed by up to 5.4% and the test accuracies by up to
# 2.4 points (of 1,000 examples). The bounds are about twice those: the first epoch checks the
# computation, the rest only that training went the same way (a broken backward does not).
FIRST_EPOCH_RELATIVE = 1e-3
LOSS_RELATIVE = 0.10
ACCURACY_POINTS = 5.0
# --quick trains the quickstart on half its examples. (Not on fewer epochs: the reference's
# schedule warms up from 0 for a quarter of them, so below 4 epochs the rate stays 0.)
QUICK_QUICKSTART = ["--set", "datasets.fmnist.limit=1000"]


@dataclass
class Step:
    name: str
    ok: bool
    summary: str
    seconds: float


@dataclass
class Timing:
    """One configuration timed once in each framework (and on candle's convs on a GPU)."""

    config: compare.Config
    pytorch: compare.Outcome = field(default_factory=compare.Outcome)
    topo: compare.Outcome = field(default_factory=compare.Outcome)
    plain: compare.Outcome = field(default_factory=compare.Outcome)


@dataclass
class Check:
    args: argparse.Namespace
    out: Path
    features: list[str]
    # Where experiments/, data/ and the benchmark live: the repository, or the bundle.
    root: Path = ROOT
    # Extra environment of every command (the CUDA libraries' folders of a prebuilt check).
    env: dict[str, str] = field(default_factory=dict)
    # Where the quickstart's results go (OUT/quickstart, or a scratch folder when prebuilt).
    scratch: Path | None = None
    steps: list[Step] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)

    @property
    def cuda(self) -> bool:
        return self.args.device == "cuda"

    def log(self, name: str) -> Path:
        path = self.out / "logs" / f"{name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def limit(self, step: str) -> float | None:
        """The step's time limit in seconds; None without one (a workstation's gpu-check)."""
        return self.args.limits.get(step)

    def run(self, name: str, command: list[str], env: dict[str, str] | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
        """Runs a command, its output appended to the step's log; past `timeout` seconds it is
        killed and its exit code is 124, as timeout(1) says it."""
        with self.log(name).open("a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(command)}\n")
            log.flush()
            try:
                done = subprocess.run(
                    command, cwd=self.root, env={**os.environ, **self.env, **(env or {})}, text=True,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False, timeout=timeout,
                )  # fmt: skip
            except subprocess.TimeoutExpired as e:
                text = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
                log.write(text + f"\n[timed out after {timeout:.0f} s]\n")
                return subprocess.CompletedProcess(command, 124, text, None)
            log.write(done.stdout)
        return done

    def left(self, step: str, start: float) -> float | None:
        """What is left of a step's time limit, at least a second."""
        limit = self.limit(step)
        return None if limit is None else max(1.0, limit - (time.monotonic() - start))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cuda (default), or cpu for the dry run")
    parser.add_argument("--out", type=Path, help="folder for the results (default results/gpu-check/<UTC time>)")
    parser.add_argument("--quick", action="store_true", help="the quickstart on 1,000 examples, timing at batch 8 and 16 for two steps (the dry run in CI)")
    parser.add_argument("--steps", type=int, help="timed steps per configuration (default 10; 2 with --quick)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 3; 1 with --quick)")
    parser.add_argument("--prebuilt", type=Path, help="no build: the binaries topo, train_step and it (the test binary) in this folder (a bundle's bin/)")
    parser.add_argument("--root", type=Path, help="the folder holding experiments/ and data/ (default: the repository, or the bundle of --prebuilt)")
    parser.add_argument(
        "--limits", type=parse_limits,
        help="seconds per step, e.g. kernels=120,quickstart=210,timing=150 (the default with --prebuilt; none without)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.limits is None:
        args.limits = dict(DEFAULT_LIMITS) if args.prebuilt else {}
    args.steps = args.steps if args.steps is not None else (2 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    return args


def parse_limits(text: str) -> dict[str, float]:
    limits = {}
    for part in filter(None, text.split(",")):
        name, _, seconds = part.partition("=")
        if name not in DEFAULT_LIMITS or not seconds:
            raise argparse.ArgumentTypeError(f"`{part}`: expected STEP=SECONDS with STEP one of {', '.join(DEFAULT_LIMITS)}")
        limits[name] = float(seconds)
    return limits


# ---------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------


def prebuilt(check: Check, folder: Path) -> dict[str, str] | None:
    """The bundle's binaries, after finding the libraries they load; None when one is missing."""
    start = time.monotonic()
    binaries = {name: folder / name for name in ("topo", "train_step", "it")}
    # A bundle ships them xz-compressed (a seventh of the size): unpacked into the scratch folder.
    for name, path in binaries.items():
        packed = path.with_name(path.name + ".xz")
        if not path.exists() and packed.exists() and check.scratch is not None:
            unpacked = check.scratch / "bin" / name
            unpacked.parent.mkdir(parents=True, exist_ok=True)
            with lzma.open(packed, "rb") as src, unpacked.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            unpacked.chmod(0o755)
            binaries[name] = unpacked
    missing = [str(p) for p in binaries.values() if not os.access(p, os.X_OK)]
    if missing:
        check.steps.append(Step("binaries", False, f"missing: {', '.join(missing)}", time.monotonic() - start))
        return None
    notes = []
    if check.cuda:
        dirs, found = cuda_library_dirs()
        if dirs:
            check.env["LD_LIBRARY_PATH"] = ":".join([*dirs, *filter(None, [os.environ.get("LD_LIBRARY_PATH")])])
        notes.append("CUDA libraries from " + (", ".join(sorted(set(found.values()))) or "the loader's default paths"))
    # What the loader cannot find is said before anything runs.
    unresolved = []
    for name, path in binaries.items():
        done = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False, env={**os.environ, **check.env})
        unresolved += [f"{name}: {line.split()[0]}" for line in done.stdout.splitlines() if "not found" in line]
    ok = not unresolved
    summary = "; ".join(notes + ([f"not found: {', '.join(unresolved)}"] if unresolved else [f"{len(binaries)} binaries load"]))
    check.steps.append(Step("binaries", ok, summary, time.monotonic() - start))
    return {name: str(path) for name, path in binaries.items()} if ok else None


def cuda_library_dirs() -> tuple[list[str], dict[str, str]]:
    """Folders holding the CUDA libraries the binaries load (cuBLAS, cuRAND, NVRTC, the runtime):
    CUDA_HOME's lib64, else the nvidia-* wheels of this Python's site-packages (PyTorch's), and
    the driver's libcuda; with the folder each library was found in."""
    wanted = ("libcublas.so", "libcublasLt.so", "libcurand.so", "libnvrtc.so", "libcudart.so")
    candidates = []
    if os.environ.get("CUDA_HOME"):
        candidates += [Path(os.environ["CUDA_HOME"]) / "lib64", Path(os.environ["CUDA_HOME"]) / "lib"]
    roots = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    for root in sorted(roots):
        candidates += sorted(Path(root).glob("nvidia/*/lib"))
    dirs, found = [], {}
    for folder in candidates:
        hits = [w for w in wanted if w not in found and any(folder.glob(w + ".*"))]
        for w in hits:
            found[w] = str(folder)
        if hits:
            dirs.append(str(folder))
    ldconfig = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=False).stdout
    for line in ldconfig.splitlines():
        if "libcuda.so.1 " in line and "=>" in line:
            found["libcuda.so"] = str(Path(line.split("=>")[1].strip()).parent)
            break
    return dirs, found


def build(check: Check) -> dict[str, str] | None:
    """Builds the topo binary and the train-step benchmark; their paths, or None."""
    start = time.monotonic()
    command = ["cargo", "build", "--bin", "topo", "--bench", "train_step", "--message-format=json-render-diagnostics"]
    done = check.run("build", command + check.features)
    binaries = {}
    for line in done.stdout.splitlines():
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if message.get("reason") == "compiler-artifact" and message.get("executable"):
            binaries[message["target"]["name"]] = message["executable"]
    ok = done.returncode == 0 and {"topo", "train_step"} <= binaries.keys()
    what = "cargo build " + " ".join(check.features) if check.features else "cargo build (CPU)"
    summary = f"{what}: ok" if ok else f"{what}: failed (exit {done.returncode}; see {check.log('build')})"
    check.steps.append(Step("build", ok, summary, time.monotonic() - start))
    return binaries if ok else None


def kernels(check: Check, tests: str | None) -> None:
    """The device tests on the device, against the CPU."""
    start = time.monotonic()
    if tests is None:
        command = ["cargo", "test", "--test", "it", *check.features, "device::", "--", "--test-threads=1"]
    else:
        command = [tests, "device::", "--test-threads=1"]
    done = check.run("kernels", command, {"TEST_DEVICE": check.args.device}, check.limit("kernels"))
    counts = re.findall(r"test result: \w+\. (\d+) passed; (\d+) failed", done.stdout)
    passed, failed = (int(counts[-1][0]), int(counts[-1][1])) if counts else (0, 0)
    ok = done.returncode == 0 and passed > 0 and failed == 0
    if ok:
        summary = f"{passed} passed: every op of a training step within 1e-4 of the CPU's"
    elif counts:
        failures = re.findall(r"^test (device::\S+) \.\.\. FAILED", done.stdout, re.MULTILINE)
        summary = f"{passed} passed, {failed} failed ({', '.join(failures)}; see {check.log('kernels')})"
    elif done.returncode == 124:
        summary = f"timed out after {check.limit('kernels'):.0f} s (see {check.log('kernels')})"
    else:
        summary = f"did not run (exit {done.returncode}; see {check.log('kernels')})"
    check.steps.append(Step(f"kernel tests on {check.args.device}", ok, summary, time.monotonic() - start))


def read_runs(results: Path) -> dict[str, dict]:
    """Each finished run's summary and training losses, by run id."""
    runs = {}
    for summary_path in sorted((results / "quickstart" / "runs").glob("*/summary.json")):
        summary = json.loads(summary_path.read_text())
        losses = []
        for line in (summary_path.parent / "metrics.jsonl").read_text().splitlines():
            record = json.loads(line)
            if record.get("split") == "train":
                losses.append(record["loss"])
        runs[summary["run_id"]] = {"summary": summary, "losses": losses}
    return runs


def quickstart(check: Check, topo: str) -> None:
    """The quickstart on the CPU and on the device; accuracies and losses compared."""
    start = time.monotonic()
    side = "cuda" if check.cuda else "cpu-unfold"
    device_args = ["--device", "cuda"] if check.cuda else ["--kernels", "unfold"]
    failures = []
    where = (check.scratch or check.out) / "quickstart"
    # Results of an earlier check in the same folder would be taken as done: start afresh.
    shutil.rmtree(where, ignore_errors=True)
    shorter = QUICK_QUICKSTART if check.args.quick else []
    quickstart_yaml = check.root / "experiments" / "quickstart.yaml"
    for name, extra in (("cpu", []), (side, device_args)):
        results = where / name
        command = [topo, "run", str(quickstart_yaml), "--results", str(results), "--no-report", *shorter, *extra]
        done = check.run("quickstart", command, timeout=check.left("quickstart", start))
        if done.returncode == 124:
            failures.append(f"the {name} run timed out ({check.limit('quickstart'):.0f} s for the step)")
        elif done.returncode != 0:
            failures.append(f"the {name} run failed (exit {done.returncode})")
    if failures:
        summary = "; ".join(failures) + f"; see {check.log('quickstart')}"
        check.steps.append(Step(f"quickstart cpu vs {side}", False, summary, time.monotonic() - start))
        return
    reference, other = read_runs(where / "cpu"), read_runs(where / side)
    if check.scratch is not None:
        compare.write_atomic(check.out / "quickstart.json", json.dumps({"cpu": reference, side: other}, indent=1) + "\n")
    if not reference or reference.keys() != other.keys():
        summary = f"different runs: {sorted(reference)} against {sorted(other)}"
        check.steps.append(Step(f"quickstart cpu vs {side}", False, summary, time.monotonic() - start))
        return
    parts, worst_points, worst_first, worst_loss = [], 0.0, 0.0, 0.0
    for run_id in sorted(reference):
        a, b = reference[run_id]["summary"], other[run_id]["summary"]
        topography = a["axes"]["topography"]
        parts.append(f"{topography} {100 * a['test_accuracy']:.1f} vs {100 * b['test_accuracy']:.1f}")
        worst_points = max(worst_points, 100 * abs(a["test_accuracy"] - b["test_accuracy"]))
        pairs = list(zip(reference[run_id]["losses"], other[run_id]["losses"], strict=True))
        diffs = [abs(x - y) / max(abs(x), 1e-12) for x, y in pairs]
        worst_first = max(worst_first, diffs[0] if diffs else float("inf"))
        worst_loss = max(worst_loss, *diffs)
    ok = worst_points <= ACCURACY_POINTS and worst_first <= FIRST_EPOCH_RELATIVE and worst_loss <= LOSS_RELATIVE
    summary = (
        f"test accuracy {', '.join(parts)} (difference {worst_points:.1f} <= {ACCURACY_POINTS:.0f} points); "
        f"training loss: first epoch {worst_first:.1e} (<= {FIRST_EPOCH_RELATIVE:.0e}), "
        f"all epochs {100 * worst_loss:.1f}% (<= {100 * LOSS_RELATIVE:.0f}%)"
    )
    check.steps.append(Step(f"quickstart cpu vs {side}", ok, summary, time.monotonic() - start))


def timing(check: Check, bench: str) -> None:
    """ResNet-18 train steps in PyTorch and topo, side by side on the device."""
    start = time.monotonic()
    if check.args.prebuilt:
        # A GPU node has no network: the PyTorch installed there is the one to time.
        setup = check.run("timing", [sys.executable, "-c", "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"])
        what = "PyTorch is not importable here"
    else:
        setup = check.run("timing", ["bash", str(ROOT / "bench" / "setup.sh")])
        what = "PyTorch could not be installed"
    if setup.returncode != 0:
        check.steps.append(Step("timing", False, f"{what} (see {check.log('timing')})", time.monotonic() - start))
        return
    batches = (8, 16) if check.args.quick else (128, 256)
    common = [
        "--steps", str(check.args.steps), "--warmup", str(check.args.warmup),
        "--threads", str(os.cpu_count() or 1), "--classes", "10", "--device", check.args.device,
    ]  # fmt: skip
    records = check.out / "timings.jsonl"
    records.unlink(missing_ok=True)
    for batch in batches:
        for topo in ("none", "grid2d"):
            config = compare.Config("resnet18", "train", batch, topo)
            row = Timing(config)
            print(f"  timing {config.label()} ...", file=sys.stderr, flush=True)
            reference = Path(compare.__file__).resolve().parent / "pytorch_reference.py"
            left = lambda: check.left("timing", start) or 3600.0  # noqa: E731
            row.pytorch = compare.run_one([sys.executable, str(reference), *config.args(), *common], "pytorch", config, left())
            row.topo = compare.run_one([bench, *config.args(), *common], "topo", config, left())
            if check.cuda:
                # candle's own convs beside them: what the column-matrix convs bought.
                row.plain = compare.run_one([bench, *config.args(), *common, "--kernels", "candle"], "topo", config, left())
            with records.open("a", encoding="utf-8") as out:
                for outcome in (row.pytorch, row.topo, row.plain):
                    if outcome.record is None and outcome.error is None:
                        continue
                    out.write(json.dumps(outcome.record if outcome.record else {"error": outcome.error, "config": config.label()}) + "\n")
            check.timings.append(row)
    failed = [r.config.label() for r in check.timings if r.pytorch.record is None or r.topo.record is None]
    ok = not failed
    summary = f"{len(check.timings)} configurations timed" if ok else f"failed: {', '.join(failed)} (see {records})"
    check.steps.append(Step("timing", ok, summary, time.monotonic() - start))


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def machine(check: Check) -> str:
    if check.cuda:
        if shutil.which("nvidia-smi") is None:
            return "no nvidia-smi here: no NVIDIA driver, so no GPU to check"
        query = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,compute_cap,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        gpu = query.stdout.strip().splitlines()[0] if query.returncode == 0 and query.stdout.strip() else "unknown GPU"
        return f"GPU {gpu}"
    return f"dry run on the CPU ({compare.cpu_model()}, {os.cpu_count()} cores): the device side is the CPU running the GPU's ops"


def table(check: Check) -> list[str]:
    rows = [("step", "result", "seconds")]
    rows += [(s.name, ("ok: " if s.ok else "FAILED: ") + s.summary, f"{s.seconds:.0f}") for s in check.steps]
    for row in check.timings:
        label = f"ResNet-18 train b{row.config.batch}" + (" + topographic loss" if row.config.topo == "grid2d" else "")
        if row.pytorch.record and row.topo.record:
            p, t = row.pytorch.record["img_per_s"], row.topo.record["img_per_s"]
            result = f"PyTorch {p:.1f} img/s, topo {t:.1f} img/s: topo/PyTorch {t / p:.2f}"
            if row.plain.record:
                result += f" (on candle's convs {row.plain.record['img_per_s']:.1f} img/s)"
            elif row.plain.error:
                result += f" (on candle's convs: {row.plain.error})"
        else:
            result = f"PyTorch: {row.pytorch.error or 'ok'}; topo: {row.topo.error or 'ok'}"
        rows.append((label, result, ""))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return [line(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows[1:]]


def verdict(check: Check) -> tuple[bool, str]:
    failed = [s.name for s in check.steps if not s.ok]
    ratios = [
        r.topo.record["img_per_s"] / r.pytorch.record["img_per_s"]
        for r in check.timings
        if r.topo.record and r.pytorch.record and r.pytorch.record["img_per_s"] > 0
    ]
    speed = f"; ResNet-18 train topo/PyTorch {min(ratios):.2f}-{max(ratios):.2f}" if ratios else ""
    where = "the GPU" if check.cuda else "the dry run"
    if failed:
        return False, f"gpu-check: FAIL on {where}: {', '.join(failed)}{speed}; results in {check.out}"
    made = "the bundle's binaries load" if check.args.prebuilt else "built"
    return True, f"gpu-check: PASS on {where}: {made}, kernels match the CPU, quickstart within float rounding{speed}; results in {check.out}"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = (args.out or ROOT / "results" / "gpu-check" / stamp).resolve()
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "logs", ignore_errors=True)
    check = Check(args, out, ["--features", "cuda"] if args.device == "cuda" else [])
    if args.prebuilt:
        check.root = (args.root or args.prebuilt.resolve().parent).resolve()
        check.scratch = Path(tempfile.mkdtemp(prefix="topo-gpu-check-"))
    elif args.root:
        check.root = args.root.resolve()
    print(f"gpu-check: {machine(check)}; logs in {out / 'logs'}", file=sys.stderr, flush=True)
    if args.prebuilt:
        print("gpu-check: binaries ...", file=sys.stderr, flush=True)
        binaries = prebuilt(check, args.prebuilt.resolve())
    else:
        print("gpu-check: build ...", file=sys.stderr, flush=True)
        binaries = build(check)
    if binaries is not None:
        print("gpu-check: kernel tests ...", file=sys.stderr, flush=True)
        kernels(check, binaries.get("it"))
        print("gpu-check: quickstart ...", file=sys.stderr, flush=True)
        quickstart(check, binaries["topo"])
        print("gpu-check: timing ...", file=sys.stderr, flush=True)
        timing(check, binaries["train_step"])
    lines = table(check)
    ok, final = verdict(check)
    header = f"# gpu-check, {stamp}\n\n{machine(check)}; topo {git_commit(check)}, {platform.platform()}\n"
    compare.write_atomic(out / "report.md", header + "\n" + "\n".join(lines) + "\n\n" + final + "\n")
    print("\n".join(lines))
    print(final)
    if check.scratch is not None:
        shutil.rmtree(check.scratch, ignore_errors=True)
    return 0 if ok else 1


def git_commit(check: Check) -> str:
    """The commit checked: the bundle's MANIFEST says it where there is no git."""
    manifest = check.root / "MANIFEST"
    if check.args.prebuilt and manifest.exists():
        for line in manifest.read_text().splitlines():
            if line.startswith("commit: "):
                return line.removeprefix("commit: ")
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else "(no git)"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
