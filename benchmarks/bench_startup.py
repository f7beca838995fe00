"""SPEC §1 bench: `mcrm --help` in at most 0.3 s (it must not import duckdb, polars, jinja2 or
requests).

Wall time of the installed console script as a subprocess, output discarded, after one
untimed warm-up run (byte-code and page cache). The baseline is the bare interpreter,
`python -c pass`, measured alternately in the same run: the ratio says what mcrm adds on top
of Python itself. The target is the absolute figure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from benchmarks.core import Context, Result, bench, compare, interleaved, run_wall

TARGET_S = 0.3
RUNS = 5


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCRM_")}
    env.update({"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "100"})
    return env


def _measure(ctx: Context, name: str, args: list[str]) -> Result:
    env = _env()
    argv = [ctx.mcrm_script, *args]
    base_argv = [ctx.python, "-c", "pass"]
    run_wall(argv, env=env)
    run_wall(base_argv, env=env)
    ours, base = interleaved(
        RUNS, lambda: run_wall(argv, env=env), lambda: run_wall(base_argv, env=env)
    )
    return compare(
        name,
        f"<= {TARGET_S} s",
        ours,
        base,
        "python -c pass",
        lambda m, _b: m <= TARGET_S,
        extra={"argv": ["mcrm", *args]},
    )


@bench("startup")
def startup(ctx: Context) -> Iterator[Result]:
    """`mcrm --help` and `mcrm import --help` wall time vs `python -c pass`."""
    yield _measure(ctx, "startup.help", ["--help"])
    yield _measure(ctx, "startup.import-help", ["import", "--help"])
