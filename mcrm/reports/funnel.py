"""`mcrm report funnel STEP STEP ...`: ordered steps with ClickHouse `windowFunnel` semantics
(analytics.md §9).

Semantics, exactly as the reference:
- events are ordered by (timestamp, step index, event id); an event that matches several
  steps (a repeated step name) sorts by its lowest step;
- for each level k a unit keeps the latest start s_k among the paths that reached k; a step-1
  event at t sets s_1 = t; a step-k event at t sets s_k = s_{k−1} when s_{k−1} exists and
  t − s_{k−1} ≤ W; levels update from high to low, so one event never advances two levels;
- step 1 must lie in [from, to]; later steps may lie after `to`, up to min(t_1 + W, D);
- time to convert to k is t_k − s_k when the unit first reaches k (so from the latest start
  leading there); its median is `quantile_cont(0.5)`;
- a breakdown takes its value from the step-1 event of the path (see below).

Why window functions and not a loop: s_k only ever increases (s_1 is the last step-1 time, and
each s_k copies an s_{k−1}), so the s_{k−1} an event sees is the largest start of the
level-(k−1) successes *before* it: `max(start_{k−1}) OVER (PARTITION BY unit ORDER BY ts,
step, id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)`. The frame stops before the current
row, which is the high-to-low update. If that latest start is outside the window, every older
one is too, so the event does not advance. One window per level, over the step events of the
units that have a step-1 event in the period only; a Python pass per event would not finish on
20M events.

Breakdown (`by`): a unit counts in every group of its step-1 events (§0 "Breakdowns"): the
funnel runs per (unit, group) with only that group's step-1 events able to start a path and
every later-step event available to each of the unit's groups. The total is computed
separately, over all paths. A missing value is the group `(none)`.

Steps are event names. `purchase` means a paid order from the purchases table (analytics.md §0,
as in lifecycle and activity: refunds drop out); `event:NAME` forces the events table, e.g.
`event:purchase` for the app's own purchase events.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcrm.errors import UsageError, did_you_mean
from mcrm.output import Rows
from mcrm.reports.common import Period, Report, ratio

if TYPE_CHECKING:
    import duckdb

    from mcrm.config import Workspace

BY = ("platform", "os", "country")
ALL = "(all)"
NONE = "(none)"
COLUMNS = [
    "step",
    "event",
    "users",
    "overall",
    "step_conversion",
    "drop_off",
    "median_seconds",
]
PERCENT = frozenset({"overall", "step_conversion", "drop_off"})


@dataclass(frozen=True)
class Step:
    name: str  # as given
    event: str  # the event name
    orders: bool  # the paid-orders relation (for `purchase`)


def parse_steps(steps: list[str]) -> list[Step]:
    if len(steps) < 2:
        raise UsageError(
            f"a funnel needs at least 2 steps, found {len(steps)}",
            hint="e.g. mcrm report funnel product_view add_to_cart purchase",
        )
    out = []
    for s in steps:
        text = s.strip()
        if text.startswith("event:"):
            name = text[len("event:") :].strip()
            if not name:
                raise UsageError(f"step '{s}': event: needs an event name")
            out.append(Step(text, name, False))
        elif not text:
            raise UsageError("a funnel step is empty")
        else:
            out.append(Step(text, text, text == "purchase"))
    return out


def parse_within(text: str | None) -> dt.timedelta | None:
    """`--within`: a duration (`30m`, `12h`, `1d`, `2w`) or `none` (no window; later steps up
    to D). Default 1d."""
    from mcrm.timeutil import parse_duration

    if text is None:
        return dt.timedelta(days=1)
    if text.strip().lower() == "none":
        return None
    w = parse_duration(text, "--within")
    if w <= dt.timedelta(0):
        raise UsageError(f"--within {text}: the window must be longer than 0", hint="e.g. 1d")
    return w


def _steps_sql(
    steps: list[Step], period: Period, within: dt.timedelta | None, by: str | None
) -> str:
    """The step events: unit, ts, id, g (the breakdown value), si (the lowest step matched)
    and m1..mn (matches step k; step 1 only up to the end of the period)."""
    from mcrm.segments.compile import lit, ts_lit

    hi = period.as_of if within is None else min(period.end_ts + within, period.as_of)
    lo, end = ts_lit(period.start_ts), ts_lit(period.end_ts)
    names = sorted({s.event for s in steps if not s.orders})
    col = f"e.{by}" if by else "CAST(NULL AS VARCHAR)"
    unit = "coalesce(e.user_id, e.anonymous_id)"
    parts = []
    if names:
        parts.append(
            f"SELECT {unit} AS unit, e.ts, e.event_id AS id, e.name, FALSE AS is_order, "
            f"{col} AS g FROM events e WHERE e.name IN ({', '.join(lit(n) for n in names)}) "
            f"AND e.ts >= {lo} AND e.ts <= {ts_lit(hi)} AND {unit} IS NOT NULL"
        )
    if any(s.orders for s in steps):
        parts.append(
            "SELECT o.user_id AS unit, o.ts, o.order_id AS id, 'purchase' AS name, "
            "TRUE AS is_order, CAST(NULL AS VARCHAR) AS g FROM purchases o "
            f"WHERE o.status = 'paid' AND o.user_id IS NOT NULL AND o.ts >= {lo} "
            f"AND o.ts <= {ts_lit(hi)}"
        )
    flags = []
    for i, s in enumerate(steps, start=1):
        cond = f"{'' if s.orders else 'NOT '}r.is_order AND r.name = {lit(s.event)}"
        if i == 1:
            cond = f"{cond} AND r.ts <= {end}"
        flags.append(f"({cond}) AS m{i}")
    n = len(steps)
    si = "CASE " + " ".join(f"WHEN f.m{i} THEN {i}" for i in range(1, n + 1)) + " END"
    ms = ", ".join(f"f.m{i}" for i in range(1, n + 1))
    return (
        f"SELECT f.unit, f.ts, f.id, f.g, {si} AS si, {ms} FROM (SELECT r.unit, r.ts, r.id, "
        f"r.g, {', '.join(flags)} FROM ({' UNION ALL '.join(parts)}) r) f "
        f"WHERE {' OR '.join(f'f.m{i}' for i in range(1, n + 1))}"
    )


def _levels_sql(n: int, within: dt.timedelta | None) -> str:
    """Over relation `x` (unit, grp, ts, id, si, m1..mn), one row per (unit, grp): r1..rn
    (reached level k) and t2..tn (microseconds from the start to the first reach of k)."""
    order = "PARTITION BY y.unit, y.grp ORDER BY y.ts, y.si, y.id"
    base = ["unit", "grp", "ts", "id", "si", *[f"m{i}" for i in range(1, n + 1)]]
    cols = [*base, "s1"]
    cur = f"SELECT {', '.join(f'x.{c}' for c in base)}, CASE WHEN x.m1 THEN x.ts END AS s1 FROM x"
    for k in range(2, n + 1):
        rn = f", row_number() OVER ({order}) AS rn" if k == 2 else ""
        ok = f"z.m{k} AND z.pk IS NOT NULL"
        if within is not None:
            ok += f" AND z.ts <= z.pk + INTERVAL ({int(within.total_seconds())}) SECOND"
        inner = (
            f"SELECT {', '.join(f'y.{c}' for c in cols)}{rn}, max(y.s{k - 1}) OVER ({order} "
            f"ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS pk FROM ({cur}) y"
        )
        if k == 2:
            cols.append("rn")
        cur = (
            f"SELECT {', '.join(f'z.{c}' for c in cols)}, CASE WHEN {ok} THEN z.pk END AS s{k} "
            f"FROM ({inner}) z"
        )
        cols.append(f"s{k}")
    aggs = [f"count(l.s{k}) > 0 AS r{k}" for k in range(1, n + 1)]
    aggs += [
        f"min_by(date_diff('microsecond', l.s{k}, l.ts), l.rn) FILTER (WHERE l.s{k} IS NOT "
        f"NULL) AS t{k}"
        for k in range(2, n + 1)
    ]
    return f"SELECT l.unit, l.grp, {', '.join(aggs)} FROM ({cur}) l GROUP BY l.unit, l.grp"


def _funnel(
    con: duckdb.DuckDBPyConnection, steps_sql: str, n: int, within: Any, grouped: bool
) -> dict[str, list[tuple[int, float | None]]]:
    """Per group: [(reached(k), median seconds to k)] for k = 1..n."""
    if grouped:
        x = (
            f"WITH st AS ({steps_sql}), "
            f"gr AS (SELECT DISTINCT st.unit, coalesce(st.g, '{NONE}') AS grp FROM st "
            "WHERE st.m1), "
            "x AS (SELECT st.unit, gr.grp, st.ts, st.id, st.si, "
            + ", ".join(
                (f"st.m1 AND coalesce(st.g, '{NONE}') = gr.grp AS m1" if i == 1 else f"st.m{i}")
                for i in range(1, n + 1)
            )
            + " FROM st JOIN gr ON gr.unit = st.unit) "
        )
    else:
        x = (
            f"WITH st AS ({steps_sql}), "
            "u AS (SELECT DISTINCT st.unit FROM st WHERE st.m1), "
            f"x AS (SELECT st.unit, '{ALL}' AS grp, st.ts, st.id, st.si, "
            + ", ".join(f"st.m{i}" for i in range(1, n + 1))
            + " FROM st WHERE st.unit IN (SELECT u.unit FROM u)) "
        )
    aggs = [f"count(*) FILTER (WHERE p.r{k}) AS n{k}" for k in range(1, n + 1)]
    aggs += [f"quantile_cont(p.t{k}, 0.5) AS q{k}" for k in range(2, n + 1)]
    sql = f"{x}SELECT p.grp, {', '.join(aggs)} FROM ({_levels_sql(n, within)}) p GROUP BY p.grp"
    out: dict[str, list[tuple[int, float | None]]] = {}
    for row in con.execute(sql).fetchall():
        counts = [int(v) for v in row[1 : n + 1]]
        medians: list[float | None] = [None]
        medians += [None if q is None else float(q) / 1e6 for q in row[n + 1 :]]
        out[str(row[0])] = list(zip(counts, medians, strict=True))
    return out


def _known_events(con: duckdb.DuckDBPyConnection, names: list[str]) -> tuple[set[str], list[str]]:
    from mcrm.segments.compile import lit

    if not names:
        return set(), []
    listed = ", ".join(lit(n) for n in names)
    q = f"SELECT DISTINCT e.name FROM events e WHERE e.name IN ({listed})"
    found = {str(r[0]) for r in con.execute(q).fetchall()}
    if len(found) == len(set(names)):
        return found, []
    every = [str(r[0]) for r in con.execute("SELECT DISTINCT e.name FROM events e").fetchall()]
    return found, every


def build(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    period: Period,
    steps: list[str],
    within: dt.timedelta | None = dt.timedelta(days=1),
    by: str | None = None,
) -> Report:
    st = parse_steps(list(steps))
    if by is not None and by not in BY:
        raise UsageError(
            f"--by {by}: the funnel breaks down by {', '.join(BY)}",
            hint=did_you_mean(by, list(BY)),
        )
    warnings = []
    event_names = sorted({s.event for s in st if not s.orders})
    found, every = _known_events(con, event_names)
    for s in st:
        if not s.orders and s.event not in found:
            hint = did_you_mean(s.event, every)
            warnings.append(
                f"funnel: no event named '{s.event}' in the events table"
                + (f"; {hint}" if hint else "")
            )
    n = len(st)
    total = _funnel(con, _steps_sql(st, period, within, None), n, within, False)
    groups: dict[str, list[tuple[int, float | None]]] = {ALL: total.get(ALL) or [(0, None)] * n}
    if by is not None:
        per = _funnel(con, _steps_sql(st, period, within, by), n, within, True)
        for g in sorted(per, key=lambda g: (-per[g][0][0], g)):
            groups[g] = per[g]
    rows: list[tuple[Any, ...]] = []
    for g, levels in groups.items():
        first = levels[0][0]
        for k, (reached, median) in enumerate(levels, start=1):
            prev = levels[k - 2][0] if k > 1 else None
            step = ratio(reached, prev) if k > 1 else None
            row: tuple[Any, ...] = (
                k,
                st[k - 1].name,
                reached,
                ratio(reached, first),
                step,
                None if step is None else 1.0 - step,
                median,
            )
            rows.append(((g,) + row) if by else row)
    columns = ([by] if by else []) + COLUMNS
    w_text = "none" if within is None else _duration_text(within)
    notes = [
        f"window {w_text}: every step within {w_text} of step 1; step 1 in "
        f"{period.start}..{period.end}, later steps up to min(step 1 + window, as-of)",
    ]
    if any(s.orders for s in st):
        notes.append("purchase = a paid order (purchases table); event:purchase for the events")
    if by:
        notes.append(
            f"{by}: the value of the path's step-1 event; a user counts in every group "
            f"they started from; {ALL} is computed separately"
        )
    params = {
        **period.params(),
        "steps": [s.name for s in st],
        "within": w_text,
        "within_seconds": None if within is None else int(within.total_seconds()),
        "by": by,
    }
    return Report(
        "funnel",
        {"funnel": Rows(columns, rows, percent_columns=PERCENT)},
        params=params,
        notes=notes,
        warnings=warnings,
    )


def _duration_text(w: dt.timedelta) -> str:
    s = int(w.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"
