#!/usr/bin/env python3
"""Side-by-side training speed of PyTorch and topo's engine, the driver of `just bench`.

Every row is measured in several rounds (3 by default). In each round PyTorch
(`bench/pytorch_reference.py`) and topo (the `train_step` bench binary) run the row once each,
one subprocess per measurement so that peak memory is per configuration, the order swapped
from one round to the next so that a machine that slows down or speeds up over a round does
not favour either. A round's ratio is topo's images per second over PyTorch's in that round;
the table gives the median ratio over rounds with its range (lowest-highest), so that a
single noisy pass on a shared machine cannot pass for a result. A round runs every row in
turn, so a loss's row and its loss-free partner, whose step times give the loss's share,
run seconds apart in the same round.

Rows: ResNet-18, VGG-16-BN and DenseNet-121 as the paper trains them (32 x 32, full width);
the narrow ResNet-18 CPU users train (width 1/8 on Fashion-MNIST's 28 x 28, batch 64, as
experiments/quickstart.yaml and experiments/fmnist_pruning.yaml do) and ResNet-18 at width
1/4 on CIFAR's 32 x 32, each alone and with each of the three topographic losses; and one
whole job: a run of experiments/fmnist_pruning.yaml (train, evaluate, prune) by `topo run`
against bench/parity.py's PyTorch run of the same recipe, wall time.

    python3 bench/compare.py --topo-bin <train_step bench binary> --topo-cli target/debug/topo \\
        [--rounds 3] [--only narrow] [--markdown bench/RESULTS.md]
    python3 bench/compare.py --quick --topo-bin ...      # smoke check: one narrow row, 1 round
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REFERENCE = HERE / "pytorch_reference.py"
KEYS = ("framework", "model", "batch", "mode", "topo", "step_ms", "img_per_s", "peak_rss_mb")
JOB_EXPERIMENT = "experiments/fmnist_pruning.yaml"


@dataclass(frozen=True)
class Config:
    model: str
    mode: str
    batch: int
    topo: str
    width: float = 1.0
    size: int = 32
    channels: int = 3
    # The row's name in the table: what a reader recognises.
    name: str = ""
    # Timed steps are `--steps` times this: a narrow model's step takes 20-60 ms, and ten of
    # them are too short a measurement on a shared machine.
    repeat: int = 1

    def label(self) -> str:
        return f"{self.name or self.model} {self.mode} {self.batch} {self.topo}"

    def args(self) -> list[str]:
        return [
            "--model", self.model, "--batch", str(self.batch), "--mode", self.mode,
            "--topo", self.topo, "--width", str(self.width), "--size", str(self.size),
            "--channels", str(self.channels),
        ]  # fmt: skip


LOSSES = ("none", "grid2d", "tdann", "topoloss")
NARROW = [Config("resnet18", "train", 64, t, 0.125, 28, 1, "resnet18 w1/8 28px", 6) for t in LOSSES]
QUARTER = [Config("resnet18", "train", 64, t, 0.25, 32, 3, "resnet18 w1/4 32px", 4) for t in LOSSES]
PAPER = [
    Config("resnet18", "train", 32, "none"),
    Config("resnet18", "train", 32, "grid2d"),
    Config("resnet18", "train", 128, "none"),
    Config("resnet18", "train", 128, "grid2d"),
    Config("resnet18", "eval", 128, "none"),
    Config("vgg16_bn", "train", 32, "none"),
    Config("densenet121", "train", 32, "none"),
]
FULL = NARROW + QUARTER + PAPER
QUICK = [NARROW[0]]
# The whole-job row's label, for --only.
JOB_LABEL = "job fmnist_pruning"


@dataclass
class Outcome:
    """One measurement: a record, or why there is none."""

    record: dict | None = None
    error: str | None = None


@dataclass
class Row:
    config: Config
    # One outcome per round, per side.
    pytorch: list[Outcome] = field(default_factory=list)
    topo: list[Outcome] = field(default_factory=list)
    plain: list[Outcome] = field(default_factory=list)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topo-bin", type=Path, help="the train_step bench binary (same CLI as pytorch_reference.py)")
    parser.add_argument("--topo-cli", type=Path, help="the topo binary, for the whole-job row (left out: no job row)")
    parser.add_argument("--rounds", type=int, help="rounds per row, frameworks alternating (default 3; 1 with --quick)")
    parser.add_argument("--steps", type=int, help="timed steps per measurement (default 10; 2 with --quick)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 2; 1 with --quick)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads for both (default: all cores)")
    parser.add_argument("--plain", action="store_true", help="also run topo on candle's own ops (--kernels candle), the baseline the fast kernels replace")
    parser.add_argument("--quick", action="store_true", help="smoke check: the narrow ResNet-18 alone, one round")
    parser.add_argument("--only", metavar="SUBSTRING", help=f"only rows whose label (e.g. 'resnet18 w1/8 28px train 64 grid2d', '{JOB_LABEL}') contains it")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the table with the machine's description to FILE")
    parser.add_argument(
        "--cap-avx2",
        action="store_true",
        help="on an AVX-512 CPU, measure both at AVX2: PyTorch under " + " ".join(f"{k}={v}" for k, v in CAP_AVX2.items())
        + "; topo's binaries built without the `avx512` feature (checked on every record and the job's run)",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before a measurement counts as failed (default 3600)")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.steps is None:
        args.steps = 2 if args.quick else 10
    if args.warmup is None:
        args.warmup = 1 if args.quick else 2
    if args.steps < 1 or args.warmup < 0 or args.threads < 1 or args.rounds < 1:
        parser.error("--steps, --rounds and --threads must be >= 1, --warmup >= 0")
    return args


# What caps PyTorch at AVX2 on an AVX-512 CPU: its own kernels (ATen's dispatch), oneDNN's
# convolutions and MKL's matrix products.
CAP_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


@dataclass(frozen=True)
class Torch:
    version: str
    # Peak RSS of a process that only imports torch: the PyPI wheel is the CUDA build, whose
    # libraries count in every PyTorch peak before any tensor exists.
    import_rss_mb: float


PROBE = (
    "import resource, torch; "
    "print(torch.__version__, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
)


def probe_torch() -> Torch | None:
    """The torch this interpreter imports, asked in a subprocess so that the driver's own memory
    stays out of the measurements; None when torch is missing or broken."""
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=False)
    fields = probe.stdout.split()
    if probe.returncode != 0 or len(fields) != 2:
        return None
    return Torch(fields[0], float(fields[1]))


def run_command(command: list[str], timeout: float, cwd: Path | None = None) -> tuple[str | None, str]:
    """Runs `command`; (None, stdout) when it succeeds, else (why, stdout)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd)
    except FileNotFoundError:
        return f"cannot run {command[0]}: no such file", ""
    except PermissionError:
        return f"cannot run {command[0]}: not executable", ""
    except OSError as error:
        return f"cannot run {command[0]}: {error.strerror}", ""
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f} s", ""
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        last = lines[-1].strip() if lines else "no message on stderr"
        # A negative code is a signal: 9 is usually the out-of-memory killer.
        status = f"killed by signal {-done.returncode}" if done.returncode < 0 else f"exit {done.returncode}"
        return f"{status}: {last}", done.stdout
    return None, done.stdout


def run_one(command: list[str], framework: str, config: Config, timeout: float, isa: str | None = None) -> Outcome:
    """One measurement; `isa`: the instruction set the record must report (topo's kernels)."""
    error, stdout = run_command(command, timeout)
    if error is not None:
        return Outcome(error=error)
    outcome = parse_record(stdout, framework)
    if outcome.record is not None and isa is not None and outcome.record.get("isa") != isa:
        return Outcome(error=f"the kernels ran {outcome.record.get('isa')}, not {isa}: build without the avx512 feature")
    if outcome.record is not None:
        # A binary that ignored an argument would otherwise fill the wrong row.
        r = outcome.record
        got = (r["model"], r["mode"], r["batch"], r["topo"], float(r.get("width", 1.0)), r.get("size"), r.get("channels"))
        want = (config.model, config.mode, config.batch, config.topo, config.width, config.size, config.channels)
        if got != want:
            return Outcome(error=f"ran {got} instead of {want}")
    return outcome


def parse_record(stdout: str, framework: str) -> Outcome:
    """The last stdout line that is a JSON object; checked for the keys the table uses."""
    for line in reversed(stdout.splitlines()):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        missing = [key for key in KEYS if key not in record]
        if missing:
            return Outcome(error=f"JSON line lacks {', '.join(missing)}")
        if record["framework"] != framework:
            return Outcome(error=f"framework is {record['framework']!r}, expected {framework!r}")
        try:
            for key in ("step_ms", "img_per_s", "peak_rss_mb"):
                record[key] = float(record[key])
        except (TypeError, ValueError):
            return Outcome(error=f"non-numeric figure in {line.strip()}")
        return Outcome(record=record)
    return Outcome(error="no JSON line on stdout")


# ---------------------------------------------------------------------------------------------
# The whole job: one run of experiments/fmnist_pruning.yaml in each framework
# ---------------------------------------------------------------------------------------------


@dataclass
class Job:
    """Wall seconds of the job per round, per framework, or why a round has none."""

    topo: list[float | str] = field(default_factory=list)
    pytorch: list[float | str] = field(default_factory=list)


JOB_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import torch, yaml
from pathlib import Path
import parity
torch.set_num_threads(int(sys.argv[5]))
run = yaml.safe_load(Path(sys.argv[2]).read_text())
recipe = parity.Recipe.of(run, Path(sys.argv[2]))
topography = parity.topography_of(run, Path(sys.argv[2]))
splits = json.loads(Path(sys.argv[3]).read_text())
start = time.perf_counter()
data = parity.load_fmnist(splits)
record = parity.train_run(recipe, topography, float(sys.argv[4]) if sys.argv[4] != "none" else None, 0, data)
print(json.dumps({"seconds": time.perf_counter() - start, "test": record["test_accuracy"]}))
"""


def job_round(
    topo_cli: Path, threads: int, timeout: float, keep: Path, pytorch_first: bool, job: Job, isa: str | None = None
) -> None:
    """One round of the whole-job row: the baseline run of seed 0 trained, evaluated and
    pruned from scratch by `topo run` (its analyses off: PyTorch's side has none) and by
    parity.py's PyTorch recipe, read from a topo run's run.yaml (kept in `keep` from the
    first round, which runs topo first), in the order asked. `isa`: the instruction set the
    topo run must have recorded (its summary's provenance)."""
    sets = ["--set", "analyses.measures=[]", "--set", "grid.seed=[0]", "--set", "grid.topography=[base]"]
    recipe = keep / "run.yaml"
    splits = keep / "splits.json"
    with tempfile.TemporaryDirectory(prefix="topo-bench-job-") as tmp:
        results = Path(tmp) / "results"

        def topo_side() -> None:
            start = time.perf_counter()
            error, _ = run_command(
                [str(topo_cli), "run", JOB_EXPERIMENT, *sets, "--results", str(results), "--no-report"], timeout, ROOT
            )
            seconds = time.perf_counter() - start
            if error is None and isa is not None:
                ran = {json.loads(p.read_text())["provenance"]["isa"] for p in results.glob("*/runs/*/summary.json")}
                if ran != {isa}:
                    error = f"the kernels ran {', '.join(sorted(ran)) or 'nothing'}, not {isa}: build without the avx512 feature"
            job.topo.append(seconds if error is None else error)
            written = list(results.glob("*/runs/*/run.yaml"))
            if error is None and written and not recipe.exists():
                recipe.write_text(written[0].read_text())

        def pytorch_side() -> None:
            if not recipe.exists():
                job.pytorch.append("no topo run.yaml to read the recipe from (topo's run failed)")
                return
            if not splits.exists():
                error, out = run_command(
                    [str(topo_cli), "splits", JOB_EXPERIMENT, *sets, "--dataset", "fmnist"], timeout, ROOT
                )
                if error is not None:
                    job.pytorch.append(f"topo splits: {error}")
                    return
                splits.write_text(out)
            error, out = run_command(
                [sys.executable, "-c", JOB_SCRIPT, str(HERE), str(recipe), str(splits), "none", str(threads)],
                timeout,
                ROOT,
            )
            job.pytorch.append(json.loads(out.splitlines()[-1])["seconds"] if error is None else error)

        for side in (pytorch_side, topo_side) if pytorch_first and recipe.exists() else (topo_side, pytorch_side):
            side()


# ---------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------

HEADERS = [
    "row", "mode", "batch", "loss", "pytorch img/s", "topo img/s", "ratio (median)", "ratio range",
    "candle ratio", "pytorch peak MB", "topo peak MB",
]  # fmt: skip
LEFT = {"row", "mode", "loss"}


def values(outcomes: list[Outcome], key: str) -> list[float]:
    return [o.record[key] for o in outcomes if o.record is not None]


def ratios(num: list[Outcome], den: list[Outcome], key: str = "img_per_s") -> list[float]:
    """Per round, num / den, for rounds where both measured."""
    return [
        a.record[key] / b.record[key]
        for a, b in zip(num, den)
        if a.record is not None and b.record is not None and b.record[key] > 0
    ]


def median_cell(xs: list[float], digits: int) -> str:
    return f"{statistics.median(xs):.{digits}f}" if xs else "-"


def range_cell(xs: list[float]) -> str:
    return f"{min(xs):.2f}-{max(xs):.2f}" if xs else "-"


def failures(outcomes: list[Outcome], label: str, notes: list[str]) -> str:
    """A footnote mark for a side's failed rounds ("" when none failed)."""
    errors = [o.error for o in outcomes if o.error is not None]
    if not errors:
        return ""
    note = f"{label}: {len(errors)} of {len(outcomes)} rounds failed; {errors[0]}"
    notes.append(note)
    return f" [{len(notes)}]"


def table(rows: list[Row]) -> tuple[list[str], list[str]]:
    """Markdown table lines (padded so they read as plain text too) and the failure notes."""
    notes: list[str] = []
    cells = []
    for row in rows:
        c, label = row.config, row.config.label()
        r = ratios(row.topo, row.pytorch)
        cells.append([
            c.name or c.model, c.mode, str(c.batch), c.topo,
            median_cell(values(row.pytorch, "img_per_s"), 1) + failures(row.pytorch, f"pytorch {label}", notes),
            median_cell(values(row.topo, "img_per_s"), 1) + failures(row.topo, f"topo {label}", notes),
            median_cell(r, 2), range_cell(r),
            median_cell(ratios(row.plain, row.pytorch), 2) + failures(row.plain, f"candle {label}", notes),
            median_cell(values(row.pytorch, "peak_rss_mb"), 0),
            median_cell(values(row.topo, "peak_rss_mb"), 0),
        ])  # fmt: skip
    headers = HEADERS
    if not any(row.plain for row in rows):
        # Without --plain the candle column is empty: leave it out.
        drop = HEADERS.index("candle ratio")
        headers = HEADERS[:drop] + HEADERS[drop + 1 :]
        cells = [c[:drop] + c[drop + 1 :] for c in cells]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(vals: list[str]) -> str:
        padded = [v.ljust(w) if h in LEFT else v.rjust(w) for v, w, h in zip(vals, widths, headers)]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) if h in LEFT else "-" * (w + 1) + ":" for w, h in zip(widths, headers)) + "|"
    lines = [line(headers), rule] + [line(r) for r in cells]
    return lines, [f"- [{i}] {note}" for i, note in enumerate(notes, start=1)]


def overhead(rows: list[Row]) -> list[str]:
    """Each loss's share of the step: per round, the step time with the loss over the step
    time without (same framework, same round), median and range."""
    base = {(r.config.name, r.config.model, r.config.mode, r.config.batch): r for r in rows if r.config.topo == "none"}
    lines = []
    for row in rows:
        c = row.config
        key = (c.name, c.model, c.mode, c.batch)
        if c.topo == "none" or key not in base:
            continue
        parts = []
        for name, with_loss, without in (("pytorch", row.pytorch, base[key].pytorch), ("topo", row.topo, base[key].topo)):
            factors = ratios(with_loss, without, "step_ms")
            if factors:
                parts.append(
                    f"{name} {(statistics.median(factors) - 1) * 100:+.0f}% "
                    f"({(min(factors) - 1) * 100:+.0f}% to {(max(factors) - 1) * 100:+.0f}%)"
                )
        lines.append(f"- {c.topo} loss, {c.label().rsplit(' ', 1)[0]}: step time {', '.join(parts) or '-'}")
    return lines


def job_lines(job: Job) -> list[str]:
    topo = [t for t in job.topo if isinstance(t, float)]
    torch_ = [t for t in job.pytorch if isinstance(t, float)]
    r = [p / t for t, p in zip(job.topo, job.pytorch) if isinstance(t, float) and isinstance(p, float)]
    lines = [
        "",
        f"Whole job: one run of `{JOB_EXPERIMENT}` (baseline, seed 0: train, evaluate, prune), wall "
        "seconds, `topo run` (analyses off) against `bench/parity.py`'s PyTorch recipe read from the "
        "run's run.yaml; ratio = PyTorch's time / topo's (above 1: topo is faster).",
        "",
        "| job | pytorch s | topo s | ratio (median) | ratio range |",
        "|---|---:|---:|---:|---:|",
        f"| fmnist_pruning run | {median_cell(torch_, 1)} | {median_cell(topo, 1)} | {median_cell(r, 2)} | {range_cell(r)} |",
    ]
    errors = [e for e in job.topo + job.pytorch if isinstance(e, str)]
    if errors:
        lines += ["", f"- job rounds failed: {'; '.join(errors)}"]
    return lines


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for entry in cpuinfo:
                if entry.startswith("model name"):
                    return entry.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def instruction_set(capped: bool = False) -> str:
    """The widest x86 vector extension the CPU reports (what gemm and PyTorch pick), or
    AVX2 under `--cap-avx2`."""
    if capped:
        return "AVX2 (capped on an AVX-512 CPU)"
    try:
        flags = set()
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for entry in cpuinfo:
                if entry.startswith("flags"):
                    flags = set(entry.split(":", 1)[1].split())
                    break
    except OSError:
        return "unknown"
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX")):
        if flag in flags:
            return name
    return platform.machine()


def topo_version(rows: list[Row]) -> str:
    versions = {o.record.get("version") for r in rows for o in r.topo if o.record is not None}
    versions.discard(None)
    return ", ".join(sorted(str(v) for v in versions)) or "-"


def markdown(rows: list[Row], args: argparse.Namespace, torch: Torch, body: list[str]) -> str:
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    header = [
        f"# Training speed: topo against PyTorch ({instruction_set(args.cap_avx2)})",
        "",
        f"- date: {now}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} cores, {instruction_set()}",
        *(
            [
                "- both capped at AVX2: PyTorch under " + ", ".join(f"`{k}={v}`" for k, v in CAP_AVX2.items())
                + "; topo built without the `avx512` feature (every record says its kernels ran AVX2). "
                "A stand-in for an AVX2-only machine, not one: the same cores run both"
            ]
            if args.cap_avx2
            else []
        ),
        f"- threads: {args.threads}; {args.rounds} rounds per row, the frameworks alternating; "
        f"each measurement {args.warmup} warm-up steps, then the median of {args.steps} timed steps "
        "(6x as many for the width-1/8 rows, 4x for the width-1/4 ones)",
        f"- PyTorch {torch.version} (Python {platform.python_version()}); topo {topo_version(rows)}",
        f"- a process that only runs `import torch` peaks at {torch.import_rss_mb:.0f} MB "
        "(the CUDA build's libraries, loaded even on CPU); PyTorch's peaks below include it",
        "- command: `python3 bench/compare.py " + " ".join(sys.argv[1:]) + "`",
        "",
        "Images per second (higher is better), medians over rounds; ratio = topo / PyTorch per "
        "round, median and range over rounds; \"candle ratio\": topo on candle 0.11's own ops "
        "(`--kernels candle`), the starting point. Peak memory is each process's peak resident set.",
        "",
    ]
    return "\n".join(header + body) + "\n"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        # mkstemp creates the file 0600; give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.cap_avx2:
        if instruction_set() != "AVX-512":
            print("--cap-avx2 is for AVX-512 CPUs: this one already stops below", file=sys.stderr)
            return 2
        # Inherited by every PyTorch process, the probe's included.
        os.environ.update(CAP_AVX2)
    torch = probe_torch()
    if torch is None:
        print(f"torch is not importable by {sys.executable}: install it first with `bash bench/setup.sh`", file=sys.stderr)
        return 2
    configs = [c for c in (QUICK if args.quick else FULL) if args.only is None or args.only in c.label()]
    with_job = args.topo_cli is not None and not args.quick and (args.only is None or args.only in JOB_LABEL)
    if not configs and not with_job:
        print(f"no row matches --only {args.only!r}", file=sys.stderr)
        return 2
    base = ["--warmup", str(args.warmup), "--threads", str(args.threads), "--classes", "10"]
    topo_bin = None
    for path in (args.topo_bin, args.topo_cli):
        if path is not None and not path.is_file():
            print(f"{path}: no such file (build it first)", file=sys.stderr)
            return 2
    if args.topo_bin is not None:
        topo_bin = str(args.topo_bin.resolve())
    print(f"{instruction_set(args.cap_avx2)}: {cpu_model()}, {args.rounds} rounds", file=sys.stderr)
    isa = "avx2" if args.cap_avx2 else None
    rows = [Row(config) for config in configs]
    # Round by round over all rows, so that a loss's row and its loss-free partner run
    # seconds apart, not minutes: the loss shares compare them within a round, and this
    # machine's slow spells last minutes.
    for round_ in range(args.rounds):
        for row in rows:
            config = row.config
            common = base + ["--steps", str(args.steps * config.repeat)]
            print(f"round {round_ + 1}/{args.rounds} {config.label()}:", end="", file=sys.stderr, flush=True)
            sides = [("pytorch", lambda: run_one([sys.executable, str(REFERENCE)] + config.args() + common, "pytorch", config, args.timeout), row.pytorch)]
            if topo_bin is not None:
                sides.append(("topo", lambda: run_one([topo_bin] + config.args() + common, "topo", config, args.timeout, isa), row.topo))
                if args.plain:
                    sides.append(
                        ("candle", lambda: run_one([topo_bin] + config.args() + common + ["--kernels", "candle"], "topo", config, args.timeout, isa), row.plain)
                    )
            # Swapped every other round: neither framework always runs on a warmer machine.
            for name, measure, into in sides if round_ % 2 == 0 else list(reversed(sides)):
                print(f" {name}", end="", file=sys.stderr, flush=True)
                into.append(measure())
            print(file=sys.stderr, flush=True)
    for row in rows:
        r = ratios(row.topo, row.pytorch)
        print(f"{row.config.label()}: ratio {median_cell(r, 2)} ({range_cell(r)})", file=sys.stderr, flush=True)

    lines, notes = table(rows)
    if topo_bin is None:
        notes.append("- topo not run: no --topo-bin given")
    body = lines + ([""] + notes if notes else [])
    extra = overhead(rows)
    body += ["", "Topographic losses, their share of the step (step time with the loss over without, same framework and round; median, range):", ""] + extra if extra else []
    if with_job:
        job = Job()
        with tempfile.TemporaryDirectory(prefix="topo-bench-recipe-") as keep:
            for round_ in range(args.rounds):
                print(f"{JOB_LABEL}: round {round_ + 1}/{args.rounds}", file=sys.stderr, flush=True)
                job_round(args.topo_cli.resolve(), args.threads, args.timeout, Path(keep), round_ % 2 == 1, job, isa)
        body += job_lines(job)
    print("\n".join(body))
    if args.markdown is not None:
        write_atomic(args.markdown, markdown(rows, args, torch, body))
        print(f"wrote {args.markdown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
