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
from mcrm.reports.common import BREAKDOWNS, Period, Report, ratio

if TYPE_CHECKING:
    import duckdb

    from mcrm.config import Workspace

BY = BREAKDOWNS
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
    """Over relation `x` (sid, gno, ts, id, si, m1..mn), one row per segment sid (a unit, or a
    (unit, group) pair): r1..rn (reached level k) and t2..tn (microseconds from the start to
    the first reach of k)."""
    order = "PARTITION BY y.sid ORDER BY y.ts, y.si, y.id"
    base = ["sid", "gno", "ts", "id", "si", *[f"m{i}" for i in range(1, n + 1)]]
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
    return f"SELECT l.sid, l.gno, {', '.join(aggs)} FROM ({cur}) l GROUP BY l.sid, l.gno"


def _funnel(
    con: duckdb.DuckDBPyConnection,
    steps_sql: str,
    n: int,
    within: Any,
    grouped: bool,
    engine: str = "polars",
) -> dict[str, list[tuple[int, float | None]]]:
    """Per group: [(reached(k), median seconds to k)] for k = 1..n.

    The step events are materialised once; each segment (a unit, or a unit and the group of
    one of its step-1 events) gets an integer id `sid` and each group a number `gno`, so the
    level pass sorts and partitions on integers rather than on user-id strings. Segments are
    numbered in no particular order: nothing in the result depends on the numbering."""
    ms = [f"st.m{i}" for i in range(1, n + 1)]
    if grouped:
        g = f"coalesce(st.g, '{NONE}')"
        x = (
            f"WITH st AS MATERIALIZED ({steps_sql}), "
            f"gr AS (SELECT DISTINCT st.unit, {g} AS grp FROM st WHERE st.m1), "
            "gl AS (SELECT d.grp, row_number() OVER (ORDER BY d.grp) AS gno "
            "FROM (SELECT DISTINCT gr.grp FROM gr) d), "
            "seg AS (SELECT gr.unit, gr.grp, gl.gno, row_number() OVER () AS sid "
            "FROM gr JOIN gl ON gl.grp = gr.grp), "
            "x AS (SELECT seg.sid, seg.gno, st.ts, st.id, st.si, "
            + ", ".join([f"st.m1 AND {g} = seg.grp AS m1", *ms[1:]])
            + " FROM st JOIN seg ON seg.unit = st.unit) "
        )
        labels_sql = x + "SELECT gl.gno, gl.grp FROM gl"
    else:
        x = (
            f"WITH st AS MATERIALIZED ({steps_sql}), "
            "seg AS (SELECT d.unit, row_number() OVER () AS sid "
            "FROM (SELECT DISTINCT st.unit FROM st WHERE st.m1) d), "
            f"x AS (SELECT seg.sid, 0 AS gno, st.ts, st.id, st.si, {', '.join(ms)} "
            "FROM st JOIN seg ON seg.unit = st.unit) "
        )
        labels_sql = None
    if engine == "polars":
        keep = ["x.sid", "x.gno", "x.ts", "x.si", *(["x.id"] if grouped else [])]
        cols = ", ".join([*keep, *[f"x.m{i}" for i in range(1, n + 1)]])
        per = _levels_polars(con, f"{x}SELECT {cols} FROM x", n, within)
    else:
        aggs = [f"count(*) FILTER (WHERE p.r{k}) AS n{k}" for k in range(1, n + 1)]
        aggs += [f"quantile_cont(p.t{k}, 0.5) AS q{k}" for k in range(2, n + 1)]
        sql = (
            f"{x}SELECT p.gno, {', '.join(aggs)} FROM ({_levels_sql(n, within)}) p GROUP BY p.gno"
        )
        per = {}
        for row in con.execute(sql).fetchall():
            counts = [int(v) for v in row[1 : n + 1]]
            medians: list[float | None] = [None]
            medians += [None if q is None else float(q) / 1e6 for q in row[n + 1 :]]
            per[int(row[0])] = list(zip(counts, medians, strict=True))
    if labels_sql is None:
        return {ALL: per[0]} if 0 in per else {}
    labels = {int(a): str(b) for a, b in con.execute(labels_sql).fetchall()}
    return {labels[k]: v for k, v in per.items()}


def _levels_polars(
    con: duckdb.DuckDBPyConnection, x_sql: str, n: int, within: dt.timedelta | None
) -> dict[int, list[tuple[int, float | None]]]:
    """The same pass as `_levels_sql`, vectorised in polars over the sorted step events.

    A start is kept as its row number in the frame sorted by (sid, ts, si), so the
    latest start before a row is one global running maximum: within a segment the row numbers
    grow with (ts, si), and anything below the segment's first row belongs to
    an earlier segment, i.e. "no start yet". A segment's first reach of level k is the row
    where its running count of level-k successes becomes 1; counting those rows per group
    gives reached(k), and their t_k − s_k give the median (polars' median interpolates
    linearly, as quantile_cont(0.5))."""
    import polars as pl

    df = con.sql(x_sql).pl()
    if df.height == 0:
        return {}
    # Without a breakdown, rows tied on (ts, si) are events of one name at one instant: they
    # match the same steps, so their order cannot change the result and the event-id
    # tie-break can be left out (it is a string sort). With one, two such events can differ
    # in m1 (their groups differ), so the id is kept.
    keys = ["sid", "ts", "si", "id"] if "id" in df.columns else ["sid", "ts", "si"]
    df = df.sort(keys).with_row_index("idx")
    df = df.with_columns(pl.col("idx").cast(pl.Int64))
    new = pl.col("sid") != pl.col("sid").shift(1)
    df = df.with_columns(new.fill_null(True).alias("new")).with_columns(
        pl.when(pl.col("new")).then(pl.col("idx")).forward_fill().alias("seg_first")
    )
    aggs: list[pl.Expr] = []
    for k in range(1, n + 1):
        if k == 1:
            sk = pl.when(pl.col("m1")).then(pl.col("idx"))
        else:
            a = pl.col(f"s{k - 1}").fill_null(-1).cum_max().shift(1, fill_value=-1)
            df = df.with_columns(a.alias("a"))
            ok = pl.col(f"m{k}") & (pl.col("a") >= pl.col("seg_first"))
            if within is not None:
                start_ts = pl.col("ts").gather(pl.col("a").clip(lower_bound=0))
                ok = ok & ((pl.col("ts") - start_ts) <= pl.duration(microseconds=_us(within)))
            sk = pl.when(ok).then(pl.col("a"))
        df = df.with_columns(sk.alias(f"s{k}"))
        nn = pl.col(f"s{k}").is_not_null().cast(pl.Int64)
        df = df.with_columns(nn.cum_sum().alias("c")).with_columns(
            pl.when(pl.col("new")).then(pl.col("c") - nn).forward_fill().alias("base")
        )
        first = pl.col(f"s{k}").is_not_null() & ((pl.col("c") - pl.col("base")) == 1)
        ttc = pl.col("ts") - pl.col("ts").gather(pl.col(f"s{k}").fill_null(0))
        df = df.with_columns(
            first.alias(f"f{k}"),
            pl.when(first).then(ttc.dt.total_microseconds()).alias(f"t{k}"),
        )
        aggs.append(pl.col(f"f{k}").sum().alias(f"n{k}"))
        if k > 1:
            aggs.append(pl.col(f"t{k}").median().alias(f"q{k}"))
    res = df.group_by("gno").agg(aggs)
    out: dict[int, list[tuple[int, float | None]]] = {}
    for rec in res.iter_rows(named=True):
        counts = [int(rec[f"n{k}"]) for k in range(1, n + 1)]
        medians: list[float | None] = [None]
        for k in range(2, n + 1):
            q = rec[f"q{k}"]
            medians.append(None if q is None else float(q) / 1e6)
        out[int(rec["gno"])] = list(zip(counts, medians, strict=True))
    return out


def _us(w: dt.timedelta) -> int:
    return w.days * 86_400_000_000 + w.seconds * 1_000_000 + w.microseconds


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
    engine: str = "polars",
) -> Report:
    """The funnel of `steps` (see the module docstring). `engine="sql"` runs the level pass
    as DuckDB window functions instead of polars: the same result, and the portable form."""
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
    total = _funnel(con, _steps_sql(st, period, within, None), n, within, False, engine)
    groups: dict[str, list[tuple[int, float | None]]] = {ALL: total.get(ALL) or [(0, None)] * n}
    if by is not None:
        per = _funnel(con, _steps_sql(st, period, within, by), n, within, True, engine)
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
        (
            f"window {w_text}: every step within {w_text} of step 1; step 1 in "
            f"{period.start}..{period.end}, later steps up to min(step 1 + window, as-of)"
        )
        if within is not None
        else (
            f"no window: step 1 in {period.start}..{period.end}, later steps up to the as-of "
            "instant"
        ),
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
