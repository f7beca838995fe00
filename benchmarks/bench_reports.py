"""SPEC §7 / issue 6 bench: the `overview`, `cohorts` and `funnel` reports on 1M users / 20M
events / 2M purchases each take at most 10 s.

Data: the segments benchmark's workspace (`benchmarks/.data/segments-<scale>/`, the same
`generate_scale(users=1M, events=20M, purchases=2M, seed=7)` import, zone Europe/Prague), so
the data set is generated and imported once for both. Before timing, one write connection
brings the database to the current schema (what any mcrm command would do; untimed).

Each line times what `mcrm report NAME` does after start-up: open a read-only connection,
`mcrm.reports.<name>.build(con, ws, period, ...)` with every table materialised, close. The
as-of instant is the end of the generated data. Three benchmarks, `--only reports.overview`,
`reports.cohorts` (with the lifecycle line) and `reports.funnel`, print these lines:

- `reports.overview`: `overview.build(...)` over the default 30 days, no `--by`;
- `reports.overview.by`: the same `by=["platform", "os"]` (SPEC: "by platform and OS");
- `reports.cohorts`: weekly recurring retention by first activity, the default 12 weeks;
- `reports.cohorts.year`: the same over the whole year of data (52 cohorts x 52 offsets);
- `reports.funnel`: `product_view add_to_cart purchase --within 1d`, the default 30 days;
- `reports.funnel.by`: the same `--by platform` (two level passes: total and groups);
- `reports.funnel.year`: the funnel with step 1 anywhere in the year (7M step events);
- `reports.lifecycle`: weekly lifecycle buckets, the default 12 weeks (informational target:
  the same 10 s).

Baseline, measured in the same run and interleaved with each line: one plain DuckDB pass over
the events, `SELECT user_id, count(*), max(ts) FROM events GROUP BY user_id` on a fresh
read-only connection (bench_segments' reference), so a ratio reads "the report costs N such
passes". Best of 2 runs each.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks import bench_segments as segs
from benchmarks.core import Context, Result, Timing, bench, compare, interleaved, timed

TARGET_S = 10.0
RUNS = 2
STEPS = ["product_view", "add_to_cart", "purchase"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def upgrade(root: Any) -> None:
    """Bring the database to the current schema once (untimed)."""
    from mcrm.config import open_workspace
    from mcrm.db import open_db

    ws = open_workspace(str(root), {}, root)
    with open_db(ws, write=True):
        pass


Builder = Callable[[Any, Any, dt.datetime], Any]


def _period(ws: Any, as_of: dt.datetime, from_: str | None = None, days: int = 30) -> Any:
    from mcrm.reports.common import period

    return period(ws.settings.timezone, from_, None, as_of, days)


def overview(con: Any, ws: Any, as_of: dt.datetime) -> Any:
    from mcrm.reports.overview import build

    return build(con, ws, _period(ws, as_of))


def overview_by(con: Any, ws: Any, as_of: dt.datetime) -> Any:
    from mcrm.reports.overview import build

    return build(con, ws, _period(ws, as_of), ["platform", "os"])


def cohorts(con: Any, ws: Any, as_of: dt.datetime) -> Any:
    from mcrm.reports.cohorts import build

    return build(con, ws, _period(ws, as_of, days=84), "week", "recurring", "activity")


def cohorts_year(con: Any, ws: Any, as_of: dt.datetime) -> Any:
    from mcrm.reports.cohorts import build

    return build(con, ws, _period(ws, as_of, days=366), "week", "recurring", "activity")


def funnel(con: Any, ws: Any, as_of: dt.datetime) -> Any:
    from mcrm.reports.funnel import build

    return build(con, ws, _period(ws, as_of), STEPS, dt.timedelta(days=1), None)


def funnel_by(con: Any, ws: Any, as_of: dt.datetime) -> Any:
    from mcrm.reports.funnel import build

    return build(con, ws, _period(ws, as_of), STEPS, dt.timedelta(days=1), "platform")


def funnel_year(con: Any, ws: Any, as_of: dt.datetime) -> Any:
    from mcrm.reports.funnel import build

    return build(con, ws, _period(ws, as_of, days=366), STEPS, dt.timedelta(days=1), None)


def lifecycle(con: Any, ws: Any, as_of: dt.datetime) -> Any:
    from mcrm.reports.lifecycle import build

    return build(con, ws, _period(ws, as_of, days=84), "week")


LINES: list[tuple[str, str, Builder, bool]] = [
    # name, what, builder, has a SPEC target of its own
    ("reports.overview", "overview, 30 days (the command's default)", overview, True),
    ("reports.overview.by", "overview --by platform --by os, 30 days", overview_by, True),
    ("reports.cohorts", "cohorts weekly recurring, 12 weeks", cohorts, True),
    ("reports.cohorts.year", "cohorts weekly recurring, the whole year", cohorts_year, True),
    ("reports.funnel", "funnel view > cart > purchase within 1d, 30 days", funnel, True),
    ("reports.funnel.by", "the funnel --by platform", funnel_by, True),
    ("reports.funnel.year", "the funnel, step 1 over the whole year", funnel_year, True),
    ("reports.lifecycle", "lifecycle weekly, 12 weeks", lifecycle, False),
]


def run_report(root: Any, fn: Builder, as_of: dt.datetime, out: list[Any]) -> Timing:
    import mcrm.db
    from mcrm.config import open_workspace

    ws = open_workspace(str(root), {}, root)
    path = str(segs.db_path(root))

    def go() -> None:
        con = mcrm.db.connect(path, read_only=True)
        try:
            rep = fn(con, ws, as_of)
            out.append({name: len(list(t.rows)) for name, t in rep.tables.items()})
        finally:
            con.close()

    return timed(go)


def run_lines(ctx: Context, lines: list[tuple[str, str, Builder, bool]]) -> Iterator[Result]:
    imp = segs.workspace(ctx)
    upgrade(imp.root)
    as_of = segs.scale_end()
    import mcrm.reports.cohorts  # noqa: F401  (imports are not what is measured)
    import mcrm.reports.funnel  # noqa: F401
    import mcrm.reports.overview  # noqa: F401

    log(
        f"  reports: {imp.rows['users']:,} users, {imp.rows['events']:,} events, "
        f"{imp.rows['purchases']:,} purchases; as of {as_of} UTC; best of {RUNS}"
    )
    for name, what, fn, targeted in lines:
        shapes: list[Any] = []
        ours, base = interleaved(
            RUNS,
            functools.partial(run_report, imp.root, fn, as_of, shapes),
            lambda: segs.run_reference(imp.root),
        )
        r = compare(
            name,
            f"<= {TARGET_S:g} s" if targeted else f"(<= {TARGET_S:g} s)",
            ours,
            base,
            "duckdb GROUP BY events (reference)",
            (lambda m, _b: m <= TARGET_S) if targeted else (lambda _m, _b: None),
            note=f"{what}; reference = one `{segs.REFERENCE_SQL}` pass",
            extra={"rows": shapes[-1] if shapes else None, "as_of_utc": as_of.isoformat()},
        )
        log(f"  {name}: best {r.measured:.2f} s (reference {r.baseline:.2f} s); rows {shapes[-1]}")
        yield r


@bench("reports.overview")
def bench_overview(ctx: Context) -> Iterator[Result]:
    """The overview report by platform and OS on 1M users / 20M events (<= 10 s)."""
    yield from run_lines(ctx, [x for x in LINES if x[0].startswith("reports.overview")])


@bench("reports.cohorts")
def bench_cohorts(ctx: Context) -> Iterator[Result]:
    """Cohorts (12 weeks, a year) and lifecycle on 1M users / 20M events (<= 10 s)."""
    yield from run_lines(
        ctx, [x for x in LINES if x[0].startswith(("reports.cohorts", "reports.l"))]
    )


@bench("reports.funnel")
def bench_funnel(ctx: Context) -> Iterator[Result]:
    """The funnel (30 days, by platform, a year) on 1M users / 20M events (<= 10 s)."""
    yield from run_lines(ctx, [x for x in LINES if x[0].startswith("reports.funnel")])
