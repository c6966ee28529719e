#!/usr/bin/env python3
"""Side-by-side training speed of PyTorch and topo's engine (issue 7), the driver of `just bench`.

For each configuration it runs `bench/pytorch_reference.py` and then the topo binary with the
same arguments, one subprocess each so that the peak memory is per configuration. Both print
one JSON line (framework, version, model, batch, mode, topo, threads, step_ms, img_per_s,
peak_rss_mb). The table gives images per second, the ratio topo/PyTorch, and peak memory.

    python3 bench/compare.py --topo-bin target/release/<bench binary> [--markdown bench/RESULTS.md]
    python3 bench/compare.py --quick --topo-bin ...      # smoke check: resnet18 train, batch 8
    python3 bench/compare.py --plain --topo-bin ...      # also topo on candle's own ops (--kernels candle)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "pytorch_reference.py"
KEYS = ("framework", "model", "batch", "mode", "topo", "step_ms", "img_per_s", "peak_rss_mb")


@dataclass(frozen=True)
class Config:
    model: str
    mode: str
    batch: int
    topo: str

    def label(self) -> str:
        return f"{self.model} {self.mode} {self.batch} {self.topo}"

    def args(self) -> list[str]:
        return [
            "--model", self.model, "--batch", str(self.batch),
            "--mode", self.mode, "--topo", self.topo,
        ]  # fmt: skip


# The configurations of issue 7: ResNet-18 as the paper uses it, plus VGG-16-BN and DenseNet-121.
FULL = [
    Config("resnet18", "train", 32, "none"),
    Config("resnet18", "train", 32, "grid2d"),
    Config("resnet18", "train", 128, "none"),
    Config("resnet18", "train", 128, "grid2d"),
    Config("resnet18", "eval", 128, "none"),
    Config("vgg16_bn", "train", 32, "none"),
    Config("densenet121", "train", 32, "none"),
]
QUICK = [Config("resnet18", "train", 8, "none"), Config("resnet18", "train", 8, "grid2d")]


@dataclass
class Outcome:
    """One framework's result for one configuration: a record, or why there is none."""

    record: dict | None = None
    error: str | None = None


@dataclass
class Row:
    config: Config
    pytorch: Outcome = field(default_factory=Outcome)
    topo: Outcome = field(default_factory=Outcome)
    # topo on candle's own ops (`--kernels candle`), when asked for with --plain.
    plain: Outcome = field(default_factory=Outcome)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topo-bin", type=Path, help="the topo benchmark binary (same CLI as pytorch_reference.py)")
    parser.add_argument("--steps", type=int, help="timed steps per configuration (default 10; 2 with --quick)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 2; 1 with --quick)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads for both (default: all cores)")
    parser.add_argument("--plain", action="store_true", help="also run topo on candle's own ops (--kernels candle), the baseline the fast kernels replace")
    parser.add_argument("--quick", action="store_true", help="smoke check: resnet18 train batch 8, none and grid2d")
    parser.add_argument("--only", metavar="SUBSTRING", help="only configurations whose label (e.g. 'resnet18 train 32 grid2d') contains it")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the table with the machine's description to FILE")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before a run counts as failed (default 3600)")
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = 2 if args.quick else 10
    if args.warmup is None:
        args.warmup = 1 if args.quick else 2
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--steps and --threads must be >= 1, --warmup >= 0")
    return args


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


def run_one(command: list[str], framework: str, config: Config, timeout: float) -> Outcome:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return Outcome(error=f"cannot run {command[0]}: no such file")
    except PermissionError:
        return Outcome(error=f"cannot run {command[0]}: not executable")
    except OSError as error:
        return Outcome(error=f"cannot run {command[0]}: {error.strerror}")
    except subprocess.TimeoutExpired:
        return Outcome(error=f"timed out after {timeout:.0f} s")
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        last = lines[-1].strip() if lines else "no message on stderr"
        # A negative code is a signal: 9 is usually the out-of-memory killer.
        status = f"killed by signal {-done.returncode}" if done.returncode < 0 else f"exit {done.returncode}"
        return Outcome(error=f"{status}: {last}")
    outcome = parse_record(done.stdout, framework)
    if outcome.record is not None:
        # A binary that ignored an argument would otherwise fill the wrong row.
        got = Config(outcome.record["model"], outcome.record["mode"], outcome.record["batch"], outcome.record["topo"])
        if got != config:
            return Outcome(error=f"ran {got.label()!r} instead of {config.label()!r}")
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
# Formatting
# ---------------------------------------------------------------------------------------------

HEADERS = [
    "model", "mode", "batch", "topo", "pytorch img/s", "topo img/s", "ratio",
    "candle img/s", "candle ratio", "pytorch peak MB", "topo peak MB", "memory ratio", "candle peak MB",
]  # fmt: skip
LEFT = {"model", "mode", "topo"}


def figure(outcome: Outcome, key: str, digits: int, notes: list[str], label: str) -> str:
    if outcome.record is not None:
        return f"{outcome.record[key]:.{digits}f}"
    if outcome.error is None:
        return "-"
    # One footnote per failure, referenced from both of its cells.
    note = f"{label}: {outcome.error}"
    if note not in notes:
        notes.append(note)
    return f"failed [{notes.index(note) + 1}]"


def ratio(num: Outcome, den: Outcome, key: str) -> str:
    if num.record is None or den.record is None or den.record[key] <= 0:
        return "-"
    return f"{num.record[key] / den.record[key]:.2f}"


def table(rows: list[Row]) -> tuple[list[str], list[str]]:
    """Markdown table lines (padded so they read as plain text too) and the failure notes."""
    notes: list[str] = []
    cells = []
    for row in rows:
        c, label = row.config, row.config.label()
        cells.append([
            c.model, c.mode, str(c.batch), c.topo,
            figure(row.pytorch, "img_per_s", 1, notes, f"pytorch {label}"),
            figure(row.topo, "img_per_s", 1, notes, f"topo {label}"),
            ratio(row.topo, row.pytorch, "img_per_s"),
            figure(row.plain, "img_per_s", 1, notes, f"candle {label}"),
            ratio(row.plain, row.pytorch, "img_per_s"),
            figure(row.pytorch, "peak_rss_mb", 0, notes, f"pytorch {label}"),
            figure(row.topo, "peak_rss_mb", 0, notes, f"topo {label}"),
            ratio(row.topo, row.pytorch, "peak_rss_mb"),
            figure(row.plain, "peak_rss_mb", 0, notes, f"candle {label}"),
        ])  # fmt: skip
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(HEADERS)]

    def line(values: list[str]) -> str:
        padded = [
            v.ljust(w) if h in LEFT else v.rjust(w) for v, w, h in zip(values, widths, HEADERS)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        "-" * (w + 2) if h in LEFT else "-" * (w + 1) + ":" for w, h in zip(widths, HEADERS)
    ) + "|"
    lines = [line(HEADERS), rule] + [line(r) for r in cells]
    return lines, [f"- [{i}] {note}" for i, note in enumerate(notes, start=1)]


def overhead(rows: list[Row]) -> list[str]:
    """Step time with the grid2d topographic loss over the step time without, per framework."""
    by_key = {(r.config.model, r.config.mode, r.config.batch, r.config.topo): r for r in rows}
    lines = []
    for row in rows:
        c = row.config
        if c.topo != "grid2d" or (c.model, c.mode, c.batch, "none") not in by_key:
            continue
        base = by_key[(c.model, c.mode, c.batch, "none")]
        parts = []
        for name, with_topo, without in (
            ("pytorch", row.pytorch, base.pytorch),
            ("topo", row.topo, base.topo),
            ("topo on candle's ops", row.plain, base.plain),
        ):
            if with_topo.record is None or without.record is None:
                if with_topo.error is not None or without.error is not None:
                    parts.append(f"{name} -")
                continue
            factor = with_topo.record["step_ms"] / without.record["step_ms"]
            parts.append(f"{name} {factor:.2f}x ({(factor - 1) * 100:+.0f}%)")
        lines.append(
            f"- topographic loss overhead, {c.model} {c.mode} batch {c.batch} "
            f"(step time grid2d / none): {', '.join(parts)}"
        )
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


def topo_version(rows: list[Row]) -> str:
    versions = {r.topo.record.get("version") for r in rows if r.topo.record is not None}
    versions.discard(None)
    return ", ".join(sorted(str(v) for v in versions)) or "-"


def markdown(rows: list[Row], args: argparse.Namespace, torch: Torch, body: list[str]) -> str:
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    header = [
        "# Training speed: topo against PyTorch",
        "",
        f"- date: {now}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} cores",
        f"- threads: {args.threads}; {args.warmup} warm-up steps, median of {args.steps} timed steps",
        f"- PyTorch {torch.version} (Python {platform.python_version()}); topo {topo_version(rows)}",
        f"- a process that only runs `import torch` peaks at {torch.import_rss_mb:.0f} MB "
        "(the CUDA build's libraries, loaded even on CPU); PyTorch's peaks below include it",
        "- command: `python3 bench/compare.py " + " ".join(sys.argv[1:]) + "`",
        "",
        "Images per second (higher is better), ratio = topo / PyTorch; \"candle\" columns: topo "
        "on candle 0.11's own ops (`--kernels candle`), the starting point. Peak memory is each "
        "process's peak resident set size.",
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
    torch = probe_torch()
    if torch is None:
        print(f"torch is not importable by {sys.executable}: install it first with `bash bench/setup.sh`", file=sys.stderr)
        return 2
    configs = [c for c in (QUICK if args.quick else FULL) if args.only is None or args.only in c.label()]
    if not configs:
        print(f"no configuration matches --only {args.only!r}", file=sys.stderr)
        return 2

    common = [
        "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads),
        "--classes", "10", "--size", "32", "--channels", "3",
    ]  # fmt: skip
    topo_bin = None
    if args.topo_bin is not None:
        if not args.topo_bin.is_file():
            print(f"--topo-bin {args.topo_bin}: no such file (build it first)", file=sys.stderr)
            return 2
        topo_bin = str(args.topo_bin.resolve())
    rows = []
    for config in configs:
        row = Row(config)
        print(f"{config.label()}: pytorch ...", end="", file=sys.stderr, flush=True)
        row.pytorch = run_one([sys.executable, str(REFERENCE)] + config.args() + common, "pytorch", config, args.timeout)
        if topo_bin is not None:
            print(" topo ...", end="", file=sys.stderr, flush=True)
            row.topo = run_one([topo_bin] + config.args() + common, "topo", config, args.timeout)
            if args.plain:
                print(" candle ...", end="", file=sys.stderr, flush=True)
                row.plain = run_one(
                    [topo_bin] + config.args() + common + ["--kernels", "candle"], "topo", config, args.timeout
                )
        print(" done", file=sys.stderr, flush=True)
        rows.append(row)

    lines, notes = table(rows)
    if topo_bin is None:
        notes.append("- topo not run: no --topo-bin given")
    body = lines + ([""] + notes if notes else [])
    extra = overhead(rows)
    body += [""] + extra if extra else []
    print("\n".join(body))
    if args.markdown is not None:
        write_atomic(args.markdown, markdown(rows, args, torch, body))
        print(f"wrote {args.markdown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
