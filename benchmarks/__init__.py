"""mcrm's benchmark harness: `python -m benchmarks` measures every SPEC "bench" target.

Each target is a function registered with `@bench` in a `bench_*.py` module of this package;
it takes a `Context` (scale, where the data lives, the interpreter and console script) and
returns one or more `Result` records: the measured figure, a baseline measured in the same run
(so a slow or busy machine moves both), their ratio, and whether the SPEC target holds.
Adding a target later is one decorated function in a new or existing `bench_*.py` module.

Why this shape:

- Timing lives here, never in unit tests (style §6, §7): a shared two-core machine makes any
  hard time limit in a test flaky. Each figure is the best (minimum) of a few runs, the
  statistic least disturbed by other processes; every sample is kept in the JSON output.
- Baselines run in the same process and alternate with the measured runs, so background load
  hits both sides of a ratio alike.
- Scale data is generated once into `benchmarks/.data/` (git-ignored) by `mcrm.demo`'s
  generator and reused; `--regen` rebuilds it.
"""

from __future__ import annotations
