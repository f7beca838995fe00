"""Result records, the registry, timing helpers and the report table."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(__file__).resolve().parent / ".data"

SCALES = {"small": 0.1, "full": 1.0}


@dataclass
class Result:
    """One line of the report.

    `passed` is None for informational lines (no SPEC target of their own). `measured` and
    `baseline` are in `unit`; `ratio` is measured / baseline. `samples` and `baseline_samples`
    hold every run; `stat` says which statistic of them the figures are. `cpu` and
    `baseline_cpu` are the matching best CPU seconds, where measured.
    """

    name: str
    target: str
    measured: float
    unit: str
    passed: bool | None
    baseline: float | None = None
    baseline_name: str = ""
    stat: str = ""
    note: str = ""
    samples: list[float] = field(default_factory=list)
    baseline_samples: list[float] = field(default_factory=list)
    cpu: float | None = None
    baseline_cpu: float | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.measured / self.baseline

    @property
    def cpu_ratio(self) -> float | None:
        if self.cpu is None or not self.baseline_cpu:
            return None
        return self.cpu / self.baseline_cpu

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["ratio"] = self.ratio
        d["cpu_ratio"] = self.cpu_ratio
        return d


@dataclass(frozen=True)
class Context:
    """What a benchmark needs to know about this run."""

    scale: str
    data_dir: Path
    python: str
    mcrm_script: str
    regen: bool = False
    inputs: dict[str, Path] = field(default_factory=dict)  # --input KIND=FILE overrides

    @property
    def factor(self) -> float:
        return SCALES[self.scale]

    def size(self, full: int) -> int:
        """A SPEC size scaled for this run (`small` is a tenth)."""
        return max(1, int(full * self.factor))

    def scratch(self, name: str) -> Path:
        """A fresh directory on the same disk as the data (not /tmp, which may be RAM)."""
        import shutil

        path = self.data_dir / "scratch" / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path


BenchFn = Callable[[Context], Iterable[Result]]


@dataclass(frozen=True)
class Bench:
    name: str
    fn: BenchFn
    doc: str


REGISTRY: dict[str, Bench] = {}


def bench(name: str) -> Callable[[BenchFn], BenchFn]:
    """Register a benchmark under `name` (what `--only` selects)."""

    def deco(fn: BenchFn) -> BenchFn:
        if name in REGISTRY:
            raise ValueError(f"benchmark {name!r} registered twice")
        REGISTRY[name] = Bench(name, fn, (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return deco


# ---------------------------------------------------------------------------------------------
# Timing


class Timing(NamedTuple):
    """Wall seconds, and CPU seconds of every thread of the process (or child) doing the work.

    On a shared machine wall time swells with other people's load; CPU time much less, so a
    CPU ratio is the steadier cross-check of a wall ratio (the targets are wall time)."""

    wall: float
    cpu: float


def timed(fn: Callable[[], object]) -> Timing:
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return Timing(time.perf_counter() - t0, time.process_time() - c0)


def interleaved(
    runs: int, measured: Callable[[], Timing], baseline: Callable[[], Timing]
) -> tuple[list[Timing], list[Timing]]:
    """`runs` samples of each, alternating baseline and measured so load hits both alike.

    Each callable does its own set-up and returns the timing of the part being measured."""
    a: list[Timing] = []
    b: list[Timing] = []
    for _ in range(runs):
        b.append(baseline())
        a.append(measured())
    return a, b


def run_wall(
    argv: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> Timing:
    """Wall and CPU (user + sys) time of a subprocess; output discarded; non-zero exit raises."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    secs = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}"
        )
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return Timing(secs, cpu)


def compare(
    name: str,
    target: str,
    ours: Sequence[Timing],
    base: Sequence[Timing],
    baseline_name: str,
    passed: Callable[[float, float], bool | None],
    **kw: Any,
) -> Result:
    """A result from samples: the best (minimum) wall and CPU time of each side.

    `passed(measured, baseline)` decides the verdict from the best wall times."""
    m = min(t.wall for t in ours)
    b = min(t.wall for t in base)
    return Result(
        name=name,
        target=target,
        measured=m,
        unit="s",
        passed=passed(m, b),
        baseline=b,
        baseline_name=baseline_name,
        stat=f"min of {len(ours)}",
        samples=[round(t.wall, 4) for t in ours],
        baseline_samples=[round(t.wall, 4) for t in base],
        cpu=min(t.cpu for t in ours),
        baseline_cpu=min(t.cpu for t in base),
        **kw,
    )


def load() -> dict[str, float]:
    """How busy the machine is: load average and CPU pressure (share of time some task
    waited for a CPU, 0-100, over the last 10 s) where the kernel reports it."""
    out: dict[str, float] = {"loadavg1": round(os.getloadavg()[0], 2)}
    try:
        with open("/proc/pressure/cpu") as fh:
            some = fh.readline().split()
        out["cpu_pressure10"] = float(some[1].split("=")[1])
    except (OSError, IndexError, ValueError):
        pass
    return out


# ---------------------------------------------------------------------------------------------
# Machine and report


def machine() -> dict[str, object]:
    mem_gb: float | None = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    cpu = ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), ""
            )
    except OSError:
        pass
    info: dict[str, object] = {
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": mem_gb,
        "cpu": cpu,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }
    try:
        import duckdb

        info["duckdb"] = duckdb.__version__
    except ImportError:
        pass
    try:
        from mcrm import __version__

        info["mcrm"] = __version__
    except ImportError:
        pass
    return info


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:.3g} {unit}"


def table_rows(results: Sequence[Result]) -> list[list[str]]:
    rows = [
        ["benchmark", "target", "measured", "baseline", "ratio", "cpu ratio", "stat", "result"]
    ]
    for r in results:
        verdict = "PASS" if r.passed else "FAIL" if r.passed is False else "info"
        rows.append(
            [
                r.name,
                r.target,
                _fmt(r.measured, r.unit),
                f"{_fmt(r.baseline, r.unit)} ({r.baseline_name})" if r.baseline_name else "-",
                f"{r.ratio:.2f}x" if r.ratio is not None else "-",
                f"{r.cpu_ratio:.2f}x" if r.cpu_ratio is not None else "-",
                r.stat,
                verdict,
            ]
        )
    return rows


def render_text(results: Sequence[Result]) -> str:
    rows = table_rows(results)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {r.name}: {r.note}" for r in results if r.note]
    if notes:
        lines += ["", "notes:", *notes]
    return "\n".join(lines)


def render_markdown(results: Sequence[Result]) -> str:
    rows = table_rows(results)
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows[1:]]
    return "\n".join(out)


def write_json(path: Path, ctx: Context, results: Sequence[Result], started: str) -> None:
    doc = {
        "started": started,
        "scale": ctx.scale,
        "machine": machine(),
        "results": [r.to_json() for r in results],
    }
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
