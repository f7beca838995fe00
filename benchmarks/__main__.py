"""`python -m benchmarks [--only NAME]... [--scale small|full] [--json FILE]`.

Prints one line per SPEC target (see docs/performance.md); exits 1 if any target fails,
2 on a usage error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import pkgutil
import shutil
import sys
import time
from pathlib import Path

import benchmarks
from benchmarks.core import (
    DATA_DIR,
    REGISTRY,
    SCALES,
    Context,
    Result,
    load,
    machine,
    render_markdown,
    render_text,
    write_json,
)


def load_all() -> None:
    """Import every `bench_*` module so its `@bench` functions register."""
    for mod in pkgutil.iter_modules(benchmarks.__path__):
        if mod.name.startswith("bench_"):
            importlib.import_module(f"benchmarks.{mod.name}")


def mcrm_script() -> str:
    """The installed console script next to this interpreter (what users run)."""
    found = Path(sys.executable).parent / "mcrm"
    if found.exists():
        return str(found)
    which = shutil.which("mcrm")
    if which:
        return which
    raise SystemExit("benchmarks: no `mcrm` console script next to the interpreter or on PATH")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Measure mcrm's SPEC benchmark targets."
    )
    p.add_argument("--only", action="append", metavar="NAME", help="run only NAME (repeatable)")
    p.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default="full",
        help="full = SPEC sizes; small = a tenth, for a quick check (default: full)",
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--regen", action="store_true", help="regenerate the scale data")
    p.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="KIND=FILE",
        help="use this file instead of generated data (e.g. events=path/to/events.csv)",
    )
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    load_all()
    if args.list:
        for b in REGISTRY.values():
            print(f"{b.name:12} {b.doc}")
        return 0
    names = args.only or list(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        print(
            f"benchmarks: unknown benchmark {', '.join(unknown)}; known: {', '.join(REGISTRY)}",
            file=sys.stderr,
        )
        return 2
    inputs: dict[str, Path] = {}
    for item in args.input:
        kind, sep, file = item.partition("=")
        if not sep or not Path(file).is_file():
            print(
                f"benchmarks: --input wants KIND=FILE (an existing file): {item}", file=sys.stderr
            )
            return 2
        inputs[kind] = Path(file).resolve()
    ctx = Context(
        scale=args.scale,
        data_dir=DATA_DIR,
        python=sys.executable,
        mcrm_script=mcrm_script(),
        regen=args.regen,
        inputs=inputs,
    )
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    info = machine()
    print(
        f"mcrm benchmarks, scale {ctx.scale}, {started}; {info['nproc']} CPUs, "
        f"{info['memory_gb']} GB, python {info['python']}, duckdb {info.get('duckdb')}",
        file=sys.stderr,
        flush=True,
    )
    results: list[Result] = []
    for name in names:
        t0 = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        before = load()
        got = list(REGISTRY[name].fn(ctx))
        after = load()
        for r in got:
            r.extra.setdefault("load_before", before)
            r.extra.setdefault("load_after", after)
        results.extend(got)
        print(
            f"  {name} took {time.perf_counter() - t0:.0f} s; machine load before {before}, "
            f"after {after}",
            file=sys.stderr,
            flush=True,
        )
    shutil.rmtree(DATA_DIR / "scratch", ignore_errors=True)
    sys.stderr.flush()
    print(render_markdown(results) if args.markdown else render_text(results), flush=True)
    if args.json:
        write_json(args.json, ctx, results, started)
    return 1 if any(r.passed is False for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
