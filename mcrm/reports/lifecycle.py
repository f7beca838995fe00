"""`mcrm report lifecycle`: PostHog's lifecycle buckets per day, ISO week or month
(analytics.md §7), the "lifecycle flow" of the HTML report.

Per charted interval t, over the §0 "Activity" relation (engagement: a not-yet-linked anonymous
id counts as its own unit):

- new: active in t, and the unit's first-ever activity (all history up to D) is in t;
- returning: active in t and in t−1, not new;
- resurrecting: active in t, not in t−1, not new;
- dormant: active in t−1, not in t (a count here; the chart draws it below the axis).

Why this shape: one pass builds the distinct (unit, interval) pairs of all history (the first
interval needs all of it); LAG / LEAD over each unit's intervals in the charted range, plus the
one before it, decide the buckets, so the first charted interval is not all resurrecting. The
charted intervals are the whole calendar intervals that hold a day of [--from, --to] and start
by the as-of day; activity up to D counts in them even after --to, and an interval that holds
the as-of day is `partial`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcrm.output import Rows
from mcrm.reports import intervals as iv
from mcrm.reports.common import Period, Report, activity_sql, segments_file

if TYPE_CHECKING:
    import duckdb

    from mcrm.config import Workspace

COLUMNS = [
    "interval",
    "start",
    "end",
    "active",
    "new",
    "returning",
    "resurrecting",
    "dormant",
    "partial",
]


def build(
    con: duckdb.DuckDBPyConnection, ws: Workspace, period: Period, interval: str = "week"
) -> Report:
    from mcrm.segments.compile import date_lit, local_day

    unit = iv.check_unit(interval)
    seg = segments_file(ws)
    last_day = min(period.end, period.as_of_day)
    starts = iv.between(period.start, last_day, unit)
    before = iv.shift(starts[0], unit, -1)
    first, last = starts[0], starts[-1]
    day = local_day("a.ts", period.zone, period.as_of)
    units = (
        f"SELECT DISTINCT a.unit, {iv.trunc_sql(day, unit)} AS p "
        f"FROM ({activity_sql(seg, period.as_of)}) a"
    )
    prev_p = iv.shift_sql("w.p", unit, -1)
    next_p = iv.shift_sql("w.p", unit, 1)
    sql = f"""
WITH up AS MATERIALIZED ({units}),
fp AS (SELECT up.unit, min(up.p) AS fp FROM up GROUP BY up.unit),
w AS (
  SELECT up.unit, up.p, fp.fp,
         LAG(up.p) OVER (PARTITION BY up.unit ORDER BY up.p) AS lag_p,
         LEAD(up.p) OVER (PARTITION BY up.unit ORDER BY up.p) AS lead_p
  FROM up JOIN fp ON fp.unit = up.unit
  WHERE up.p >= {date_lit(before)} AND up.p <= {date_lit(last)}
)
SELECT w.p AS t, 'active' AS bucket, count(*) AS n FROM w
WHERE w.p >= {date_lit(first)} GROUP BY w.p
UNION ALL
SELECT w.p, 'new', count(*) FROM w WHERE w.p >= {date_lit(first)} AND w.fp = w.p GROUP BY w.p
UNION ALL
SELECT w.p, 'returning', count(*) FROM w
WHERE w.p >= {date_lit(first)} AND w.fp < w.p AND w.lag_p = {prev_p} GROUP BY w.p
UNION ALL
SELECT w.p, 'resurrecting', count(*) FROM w
WHERE w.p >= {date_lit(first)} AND w.fp < w.p AND (w.lag_p IS NULL OR w.lag_p <> {prev_p})
GROUP BY w.p
UNION ALL
SELECT {next_p}, 'dormant', count(*) FROM w
WHERE (w.lead_p IS NULL OR w.lead_p <> {next_p}) AND {next_p} <= {date_lit(last)}
GROUP BY {next_p}
"""
    counts: dict[tuple[Any, str], int] = {}
    for t, bucket, n in con.execute(sql).fetchall():
        counts[(t, str(bucket))] = int(n)
    rows = []
    for p in starts:
        end = iv.end_of(p, unit)
        rows.append(
            (
                iv.label(p, unit),
                p,
                end,
                counts.get((p, "active"), 0),
                counts.get((p, "new"), 0),
                counts.get((p, "returning"), 0),
                counts.get((p, "resurrecting"), 0),
                counts.get((p, "dormant"), 0),
                end >= period.as_of_day,
            )
        )
    notes = [
        "dormant = active in the interval before and not in this one (charted as a negative bar)",
        f"activity: {', '.join(seg.lifecycle.activity)} (purchase = a paid order)",
    ]
    if rows and rows[-1][-1]:
        notes.append(f"{rows[-1][0]} is still in progress at the as-of instant (partial)")
    params = {**period.params(), "interval": unit, "activity": list(seg.lifecycle.activity)}
    return Report(
        "lifecycle",
        {"lifecycle": Rows(COLUMNS, rows, percent_columns=frozenset())},
        params=params,
        notes=notes,
    )
