"""`mcrm report cohorts`: retention by ISO week or month of first activity (analytics.md §8).

- Cohort: the interval (workspace zone) of a unit's first activity up to D, or with
  `cohort="purchase"` of a user's first paid order. The return event is always activity (§0,
  engagement units: a not-yet-linked anonymous id is its own unit).
- recurring(c, k): share of cohort c active in interval c+k; unbounded(c, k): active in c+k or
  any later interval up to D (never increases with k).
- A cell whose interval starts after the as-of day is `null` (unobserved, never 0); the cell
  whose interval holds the as-of day is `partial`.
- The `average` row weights every cohort by its size over the *complete* cells of that offset
  (observed and not partial); when the only observed cell of an offset is the partial one, the
  average is that cell and is itself partial. The reference says "observed cells"; a partial
  cell is observed but not finished, and counting it would pull every offset's average down.

Why this shape: SQL reduces the activity to distinct (unit, interval) pairs and then to counts
per (cohort, offset) — recurring — or per (cohort, last offset) — unbounded, whose suffix sums
give the cells. Python lays the few hundred counts out as the long table and the matrix.
The cohorts are the intervals that hold a day of [--from, --to] and start by the as-of day;
offsets run to the as-of interval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcrm.output import Rows
from mcrm.reports import intervals as iv
from mcrm.reports.common import Period, Report, activity_sql, ratio, segments_file

if TYPE_CHECKING:
    import datetime as dt

    import duckdb

    from mcrm.config import Workspace

MODES = ("recurring", "unbounded")
COHORT_BY = ("activity", "purchase")
UNITS = ("week", "month")
RETENTION_COLUMNS = [
    "cohort",
    "cohort_start",
    "cohort_size",
    "offset",
    "users",
    "retention",
    "partial",
]


def build(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    period: Period,
    unit: str = "week",
    mode: str = "recurring",
    cohort: str = "activity",
) -> Report:
    from mcrm.segments.compile import date_lit, local_day, ts_lit

    iv.check_unit(unit, "--unit", UNITS)
    iv.check_unit(mode, "--mode", MODES)
    iv.check_unit(cohort, "--cohort", COHORT_BY)
    seg = segments_file(ws)
    as_of_p = iv.start_of(period.as_of_day, unit)
    last_day = min(period.end, period.as_of_day)
    starts = iv.between(period.start, last_day, unit)
    first, last = starts[0], starts[-1]

    act_day = local_day("a.ts", period.zone, period.as_of)
    up = (
        f"SELECT DISTINCT a.unit, {iv.trunc_sql(act_day, unit)} AS p "
        f"FROM ({activity_sql(seg, period.as_of)}) a"
    )
    if cohort == "activity":
        coh = "SELECT up.unit, min(up.p) AS c FROM up GROUP BY up.unit"
    else:
        buy_day = local_day("o.ts", period.zone, period.as_of)
        coh = (
            f"SELECT o.user_id AS unit, min({iv.trunc_sql(buy_day, unit)}) AS c "
            "FROM purchases o WHERE o.user_id IS NOT NULL AND o.status = 'paid' "
            f"AND o.ts <= {ts_lit(period.as_of)} GROUP BY o.user_id"
        )
    if unit == "week":
        off = "CAST(date_diff('day', h.c, up.p) / 7 AS BIGINT)"
    else:
        off = "date_diff('month', h.c, up.p)"
    cells = (
        f"SELECT h.c, {off} AS k, count(*) AS n FROM h JOIN up ON up.unit = h.unit "
        "AND up.p >= h.c GROUP BY h.c, k"
        if mode == "recurring"
        else f"SELECT h.c, max({off}) AS k, h.unit FROM h JOIN up ON up.unit = h.unit "
        "AND up.p >= h.c GROUP BY h.c, h.unit"
    )
    if mode == "unbounded":
        cells = f"SELECT x.c, x.k, count(*) AS n FROM ({cells}) x GROUP BY x.c, x.k"
    sql = f"""
WITH up AS MATERIALIZED ({up}),
h AS (SELECT hc.unit, hc.c FROM ({coh}) hc
      WHERE hc.c >= {date_lit(first)} AND hc.c <= {date_lit(last)}),
cells AS ({cells})
SELECT 'size' AS kind, h.c, 0 AS k, count(*) AS n FROM h GROUP BY h.c
UNION ALL
SELECT 'cell', cells.c, cells.k, cells.n FROM cells
"""
    sizes: dict[dt.date, int] = {}
    raw: dict[tuple[dt.date, int], int] = {}
    for kind, c, k, n in con.execute(sql).fetchall():
        if kind == "size":
            sizes[c] = int(n)
        else:
            raw[(c, int(k))] = int(n)
    max_k = iv.offset(first, as_of_p, unit)

    def users(c: dt.date, k: int) -> int | None:
        if iv.shift(c, unit, k) > as_of_p:
            return None
        if mode == "recurring":
            return raw.get((c, k), 0)
        # unbounded: users whose last active offset is >= k
        return sum(n for (cc, kk), n in raw.items() if cc == c and kk >= k)

    long_rows: list[tuple[Any, ...]] = []
    grid: list[tuple[Any, ...]] = []
    for c in starts:
        size = sizes.get(c, 0)
        cells_c = []
        for k in range(max_k + 1):
            n = users(c, k)
            cells_c.append(ratio(n, size) if n is not None else None)
            if n is None:
                continue
            partial = iv.shift(c, unit, k) == as_of_p
            long_rows.append((iv.label(c, unit), c, size, k, n, ratio(n, size), partial))
        grid.append((iv.label(c, unit), c, size, *cells_c))

    # the weighted average over complete cells (see the module docstring)
    avg_cells: list[float | None] = []
    for k in range(max_k + 1):
        done = [
            (sizes.get(c, 0), users(c, k))
            for c in starts
            if iv.shift(c, unit, k) < as_of_p and users(c, k) is not None
        ]
        partial = False
        if not done:
            done = [
                (sizes.get(c, 0), users(c, k)) for c in starts if iv.shift(c, unit, k) == as_of_p
            ]
            partial = bool(done)
        if not done:
            avg_cells.append(None)
            continue
        w = sum(s for s, _ in done)
        n = sum(u or 0 for _, u in done)
        avg_cells.append(ratio(n, w))
        long_rows.append(("average", None, w, k, n, ratio(n, w), partial))
    grid.append(("average", None, sum(sizes.values()), *avg_cells))

    prefix = "w" if unit == "week" else "m"
    offset_cols = [f"{prefix}{k}" for k in range(max_k + 1)]
    matrix = Rows(
        ["cohort", "cohort_start", "cohort_size", *offset_cols],
        grid,
        percent_columns=frozenset(offset_cols),
    )
    retention = Rows(RETENTION_COLUMNS, long_rows, percent_columns=frozenset({"retention"}))
    cohort_what = "first activity" if cohort == "activity" else "first paid purchase"
    notes = [
        f"{mode} retention by {unit} of {cohort_what}; return event: activity "
        f"({', '.join(seg.lifecycle.activity)})",
        f"cells in {iv.label(as_of_p, unit)} (the as-of {unit}) are partial; later cells are "
        "unobserved (null); the average row uses complete cells only",
    ]
    params = {**period.params(), "unit": unit, "mode": mode, "cohort": cohort}
    return Report(
        "cohorts", {"retention": retention, "matrix": matrix}, params=params, notes=notes
    )
