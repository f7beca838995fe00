"""`mcrm report overview`: engagement and revenue (analytics.md §10, §11), in set-based SQL.

Shape. Everything starts from four TEMP relations built once per report:
- `ov_ud`: distinct (unit, local day, platform, os, country) of the §0 activity, from 29 days
  before `--from` (MAU and the 30-day mean DAU of the first day need them) to the period's end;
- `ov_st`: one row per (unit, session) of the period's events: first event, length, local day,
  and per breakdown dimension its smallest and largest value (a session with two values also
  gets its rows in `ov_multi_DIM`);
- `ov_ord`: the paid orders of the period (user, instant, local day, base amount);
- `ov_linked`: the linked users (units that are users) active in the period.

Rolling DAU / WAU / MAU for the trend are not one distinct count per day (a days x users join
over 20M events): for each unit's activity day `a` with next activity day `n`, the unit is in
the rolling-W count on days [a, min(a + W, n)), and those spans do not overlap. So +1 at `a` and
-1 at min(a + W, n), summed per day and accumulated over a complete day series, is the rolling
distinct count; one LEAD window over (unit, day) and two GROUP BYs.

Breakdowns (`--by`). A group is a value of the activity row (platform, os, country) or the
membership of the latest snapshot of a segment. A unit counts in a group on a day when one of
that day's activity rows has the value; a (unit, day) whose rows carry no value (paid orders
carry no device) counts under `(none)`. A group's revenue is that of its linked users: the
users active in the group in the period (analytics.md §0 "Breakdowns": a user counts in every
group they qualify for, and the total is computed on its own).

Sessions (§10): distinct (unit, session id); events without a session id are split at gaps of
more than 30 minutes. Background events that happen without the user in the app
(`BACKGROUND_EVENTS`) make no session. A session is dated by its first event.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from mcrm.errors import DataError, UsageError, did_you_mean
from mcrm.output import Rows
from mcrm.reports.common import (
    BREAKDOWNS,
    Period,
    Report,
    _local_midnight,
    activity_sql,
    check_by,
    ratio,
    segments_file,
)
from mcrm.reports.intervals import check_unit
from mcrm.segments.compile import date_lit, lit, local_day, ts_lit

if TYPE_CHECKING:
    import duckdb

    from mcrm.config import Workspace

BY = (*BREAKDOWNS, "segment")
SESSION_GAP_MINUTES = 30
BACKGROUND_EVENTS = (
    "install",
    "uninstall",
    "app_update",
    "location",
    "push_received",
    "push_delivered",
    "push_bounce",
)
"""Events that happen without the user in the app: they make no session and are no feature."""

PERCENT = frozenset({"stickiness", "payer_share", "repeat_rate", "conversion_30d"})


def fetch(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return list(con.execute(sql).fetchall())


def days_between(a: dt.date, b: dt.date) -> list[dt.date]:
    return [a + dt.timedelta(days=i) for i in range((b - a).days + 1)]


def last_day(p: Period) -> dt.date:
    """The period's last day that the as-of instant has reached."""
    return min(p.end, p.as_of_day)


def interval_key(expr: str, interval: str, start: dt.date) -> str:
    """The first day of the interval (clipped to the period's start) of a DATE expression."""
    if interval == "day":
        return expr
    check_unit(interval)
    return f"greatest(CAST(date_trunc('{interval}', {expr}) AS DATE), {date_lit(start)})"


def interval_of(d: dt.date, interval: str, start: dt.date) -> dt.date:
    if interval == "day":
        k = d
    elif interval == "week":
        k = d - dt.timedelta(days=d.weekday())
    else:
        k = d.replace(day=1)
    return max(k, start)


def natural_end(d: dt.date, interval: str) -> dt.date:
    """The last day of the (unclipped) interval holding `d`."""
    if interval == "day":
        return d
    if interval == "week":
        return d + dt.timedelta(days=6 - d.weekday())
    nxt = (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return nxt - dt.timedelta(days=1)


def check_money(con: duckdb.DuckDBPyConnection, where: str) -> None:
    """A paid order without a base amount has no fx rate: an error naming currency and date."""
    rows = fetch(
        con,
        "SELECT p.currency, CAST(p.ts AS DATE) FROM purchases p WHERE p.status = 'paid' "
        f"AND p.amount_base IS NULL AND {where} ORDER BY 2, 1 LIMIT 1",
    )
    if rows:
        cur, day = rows[0]
        raise DataError(
            f"no fx rate for {cur} on {day}: paid orders in it cannot be converted",
            hint="import rates: mcrm import fx-rates FILE",
        )


def segment_members_sql(con: duckdb.DuckDBPyConnection, ws: Workspace, name: str) -> str:
    """`SELECT user_id` of the latest stored snapshot of segment `name`."""

    rows = fetch(
        con,
        f"SELECT max(run_id) FROM segment_snapshots WHERE segment = {lit(name)}",
    )
    if not rows or rows[0][0] is None:
        known = sorted(segments_file(ws).segments)
        if name not in known:
            raise UsageError(
                f"--by segment:{name}: no such segment in segments.yaml",
                hint=did_you_mean(name, known) or "see mcrm segments list",
            )
        raise UsageError(
            f"--by segment:{name}: the segment has no stored snapshot",
            hint=f"compute it first: mcrm segments compute {name}",
        )
    run = int(rows[0][0])
    return (
        f"SELECT m.user_id FROM segment_members m WHERE m.run_id = {run} "
        f"AND m.segment = {lit(name)}"
    )


def prepare(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    p: Period,
    dims: list[str],
) -> set[str]:
    """Materialise ov_ud, ov_st, ov_ord, ov_linked for period `p` (see the docstring); return
    the dimensions some session has two values of (their ov_multi_DIM tables exist)."""

    seg = segments_file(ws)
    zone, as_of = p.zone, p.as_of
    last = last_day(p)
    ext_ts = _local_midnight(p.start - dt.timedelta(days=29), zone)
    start_ts, end_ts = ts_lit(p.start_ts), ts_lit(p.end_ts)
    dim_cols = "".join(f", a.{d}" for d in dims)
    act = activity_sql(seg, p.end_ts, since=ext_ts)
    day = local_day("a.ts", zone, as_of)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE ov_ud AS SELECT a.unit, {day} AS day{dim_cols} "
        f"FROM ({act}) a GROUP BY a.unit, {day}{dim_cols}"
    )
    # sessions over the period's events (background ones excluded)
    bg = ", ".join(lit(n) for n in BACKGROUND_EVENTS)
    edims = "".join(f", e.{d}" for d in dims)
    sdims = "".join(f", s.{d}" for d in dims)
    gap = SESSION_GAP_MINUTES
    sev = (
        "SELECT coalesce(e.user_id, e.anonymous_id) AS unit, e.event_id, e.ts, e.session_id"
        f"{edims} FROM events e WHERE (e.user_id IS NOT NULL OR e.anonymous_id IS NOT NULL) "
        f"AND e.ts >= {start_ts} AND e.ts <= {end_ts} AND e.name NOT IN ({bg})"
    )
    lagged = (
        "SELECT s.*, LAG(s.ts) OVER (PARTITION BY s.unit ORDER BY s.ts, s.event_id) AS prev "
        f"FROM ({sev}) s WHERE s.session_id IS NULL"
    )
    numbered = (
        "SELECT s.*, SUM(CASE WHEN s.prev IS NULL OR s.ts > s.prev + "
        f"INTERVAL {gap} MINUTE THEN 1 ELSE 0 END) OVER (PARTITION BY s.unit ORDER BY s.ts, "
        "s.event_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS k "
        f"FROM ({lagged}) s"
    )
    keyed = (
        f"SELECT s.unit, s.session_id AS skey, 0 AS sk, s.ts{sdims} FROM ({sev}) s "
        "WHERE s.session_id IS NOT NULL UNION ALL "
        f"SELECT s.unit, NULL AS skey, s.k AS sk, s.ts{sdims} FROM ({numbered}) s"
    )
    # one row per session; per dimension its smallest and largest value (NULLs ignored), so a
    # session with one value (nearly all) needs no second pass
    sday = local_day("t.t0", zone, as_of)
    seconds = "CAST(date_diff('millisecond', t.t0, t.t1) AS DOUBLE) / 1000.0"
    lohi = "".join(f", min(s.{d}) AS {d}_lo, max(s.{d}) AS {d}_hi" for d in dims)
    tlohi = "".join(f", t.{d}_lo, t.{d}_hi" for d in dims)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE ov_st AS SELECT t.unit, t.skey, t.sk, t.t0, {seconds} "
        f"AS seconds, {sday} AS day{tlohi} FROM (SELECT s.unit, s.skey, s.sk, min(s.ts) AS t0, "
        f"max(s.ts) AS t1{lohi} FROM ({keyed}) s GROUP BY s.unit, s.skey, s.sk) t"
    )
    multi: set[str] = set()
    for d in dims:
        if fetch(con, f"SELECT count(*) FROM ov_st t WHERE t.{d}_lo <> t.{d}_hi")[0][0]:
            multi.add(d)
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE ov_multi_{d} AS SELECT s.unit, s.skey, s.sk, "
                f"s.{d} AS g FROM ({keyed}) s JOIN (SELECT t.unit, t.skey, t.sk FROM ov_st t "
                f"WHERE t.{d}_lo <> t.{d}_hi) x ON x.unit = s.unit AND x.sk = s.sk "
                "AND x.skey IS NOT DISTINCT FROM s.skey "
                f"WHERE s.{d} IS NOT NULL GROUP BY s.unit, s.skey, s.sk, s.{d}"
            )
    where = f"p.ts >= {start_ts} AND p.ts <= {end_ts}"
    check_money(con, where)
    pday = local_day("p.ts", zone, as_of)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE ov_ord AS SELECT p.user_id, p.ts, "
        f"{pday} AS day, p.amount_base AS amount FROM purchases p "
        f"WHERE p.status = 'paid' AND p.user_id IS NOT NULL AND {where}"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE ov_linked AS SELECT DISTINCT u.unit FROM ov_ud u "
        f"WHERE u.day >= {date_lit(p.start)} AND u.day <= {date_lit(last)} "
        "AND u.unit IN (SELECT x.user_id FROM users x)"
    )
    return multi


def session_totals_sql() -> str:
    """One row per session: unit, skey (the session id; NULL for sessions split at gaps) and sk
    (the gap session's number; 0 for ids), t0 (first event), seconds (last event - first event),
    day (the local day of t0)."""
    return "SELECT t.unit, t.skey, t.sk, t.t0, t.seconds, t.day FROM ov_st t"


def daily_series(
    con: duckdb.DuckDBPyConnection, first: dt.date, last: dt.date
) -> dict[dt.date, tuple[int, int, int, float]]:
    """Per day in [first - 29, last]: (DAU, WAU, MAU, mean DAU over the 30 days ending on it),
    from ov_ud (see the module docstring)."""
    ext = first - dt.timedelta(days=29)
    days = days_between(ext, last)
    values = ", ".join(f"({date_lit(d)})" for d in days)
    spans = (
        "SELECT u.day, LEAD(u.day) OVER (PARTITION BY u.unit ORDER BY u.day) AS nxt "
        "FROM (SELECT DISTINCT x.unit, x.day FROM ov_ud x) u"
    )

    def end(w: int) -> str:
        return (
            f"CASE WHEN l.nxt IS NOT NULL AND l.nxt < CAST(l.day + INTERVAL {w} DAY AS DATE) "
            f"THEN l.nxt ELSE CAST(l.day + INTERVAL {w} DAY AS DATE) END"
        )

    deltas = (
        "SELECT l.day AS d, 1 AS s, 0 AS w, 0 AS m FROM l "
        f"UNION ALL SELECT {end(7)}, 0, 1, 0 FROM l "
        f"UNION ALL SELECT {end(30)}, 0, 0, 1 FROM l"
    )
    sql = (
        f"WITH l AS ({spans}), dd(d) AS (VALUES {values}), "
        f"x AS (SELECT z.d, sum(z.s) AS s, sum(z.w) AS w, sum(z.m) AS m FROM ({deltas}) z "
        "GROUP BY z.d), "
        "c AS (SELECT dd.d, coalesce(x.s, 0) AS dau, "
        "sum(coalesce(x.s, 0) - coalesce(x.w, 0)) OVER (ORDER BY dd.d ROWS BETWEEN "
        "UNBOUNDED PRECEDING AND CURRENT ROW) AS wau, "
        "sum(coalesce(x.s, 0) - coalesce(x.m, 0)) OVER (ORDER BY dd.d ROWS BETWEEN "
        "UNBOUNDED PRECEDING AND CURRENT ROW) AS mau FROM dd LEFT JOIN x ON x.d = dd.d) "
        "SELECT c.d, c.dau, c.wau, c.mau, sum(c.dau) OVER (ORDER BY c.d ROWS BETWEEN 29 "
        "PRECEDING AND CURRENT ROW) AS dau30 FROM c ORDER BY c.d"
    )
    out: dict[dt.date, tuple[int, int, int, float]] = {}
    for d, dau, wau, mau, dau30 in fetch(con, sql):
        out[d] = (int(dau), int(wau), int(mau), float(dau30) / 30.0)
    return out


# -- summary -----------------------------------------------------------------------------


def group_sources(
    dim: str, members: str | None, name: str, p: Period, multi: set[str] | None = None
) -> tuple[str, str, str]:
    """(unit, day, g), (g, seconds) — one row per session and group — and (unit, g) (linked
    users, for revenue) relations of one breakdown; `dim` is "total", a dimension column or
    "segment"; `multi` the dimensions with an ov_multi_DIM table."""
    last = last_day(p)
    in_period = f"x.day >= {date_lit(p.start)} AND x.day <= {date_lit(last)}"
    everyone = (
        "SELECT l.unit FROM ov_linked l UNION SELECT o.user_id FROM ov_ord o"  # active or paying
    )
    if dim == "total":
        ud = "SELECT x.unit, x.day, '(all)' AS g FROM ov_ud x GROUP BY x.unit, x.day"
        ss = "SELECT '(all)' AS g, t.seconds FROM ov_st t"
        us = f"SELECT e.unit, '(all)' AS g FROM ({everyone}) e"
        return ud, ss, us
    if dim == "segment":
        assert members is not None
        lab = "'" + name.replace("'", "''") + "'"
        other = "'(not " + name.replace("'", "''") + ")'"
        case = f"CASE WHEN {{u}} IN ({members}) THEN {lab} ELSE {other} END"
        ud = (
            f"SELECT x.unit, x.day, {case.format(u='x.unit')} AS g FROM "
            "(SELECT y.unit, y.day FROM ov_ud y GROUP BY y.unit, y.day) x"
        )
        ss = f"SELECT {case.format(u='t.unit')} AS g, t.seconds FROM ov_st t"
        us = f"SELECT e.unit, {case.format(u='e.unit')} AS g FROM ({everyone}) e"
        return ud, ss, us
    ud = (
        f"SELECT x.unit, x.day, x.{dim} AS g FROM ov_ud x WHERE x.{dim} IS NOT NULL "
        f"GROUP BY x.unit, x.day, x.{dim} UNION ALL "
        "SELECT x.unit, x.day, '(none)' AS g FROM ov_ud x GROUP BY x.unit, x.day "
        f"HAVING count(x.{dim}) = 0"
    )
    ss = (
        f"SELECT coalesce(t.{dim}_lo, '(none)') AS g, t.seconds FROM ov_st t "
        f"WHERE t.{dim}_lo IS NULL OR t.{dim}_lo = t.{dim}_hi"
    )
    if multi and dim in multi:
        ss += (
            f" UNION ALL SELECT m.g, t.seconds FROM ov_multi_{dim} m JOIN ov_st t "
            "ON t.unit = m.unit AND t.sk = m.sk AND t.skey IS NOT DISTINCT FROM m.skey"
        )
    us = (  # ov_gud: `ud` materialised by summary_rows
        f"SELECT x.unit, x.g FROM ov_gud x WHERE {in_period} "
        "AND x.unit IN (SELECT l.unit FROM ov_linked l) GROUP BY x.unit, x.g"
    )
    return ud, ss, us


SUMMARY_COLUMNS = [
    "by",
    "group",
    "active_users",
    "dau",
    "wau",
    "mau",
    "mean_dau",
    "stickiness",
    "sessions",
    "sessions_per_user",
    "mean_session_s",
    "median_session_s",
    "time_in_app_s_per_user",
    "revenue",
    "orders",
    "payers",
    "aov",
    "arpu",
    "arppu",
    "payer_share",
    "repeat_rate",
]


def summary_rows(
    con: duckdb.DuckDBPyConnection,
    p: Period,
    by_label: str,
    srcs: tuple[str, str, str],
    ensure: tuple[str, ...] = (),
) -> list[tuple[Any, ...]]:
    ud, ss, us = srcs
    # each relation once: the groups' days and the groups' linked users are read several times
    con.execute(f"CREATE OR REPLACE TEMP TABLE ov_gud AS {ud}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE ov_gus AS {us}")
    last = last_day(p)
    s0, l0 = date_lit(p.start), date_lit(last)
    w0 = date_lit(last - dt.timedelta(days=6))
    m0 = date_lit(last - dt.timedelta(days=29))
    ndays = (last - p.start).days + 1
    eng = {
        r[0]: r[1:]
        for r in fetch(
            con,
            "SELECT u.g, "
            f"count(DISTINCT u.unit) FILTER (WHERE u.day >= {s0} AND u.day <= {l0}), "
            f"count(DISTINCT u.unit) FILTER (WHERE u.day = {l0}), "
            f"count(DISTINCT u.unit) FILTER (WHERE u.day >= {w0} AND u.day <= {l0}), "
            f"count(DISTINCT u.unit) FILTER (WHERE u.day >= {m0} AND u.day <= {l0}), "
            f"count(*) FILTER (WHERE u.day >= {s0} AND u.day <= {l0}), "
            f"count(*) FILTER (WHERE u.day >= {m0} AND u.day <= {l0}) "
            "FROM ov_gud u GROUP BY u.g",
        )
    }
    sess_sql = (
        "SELECT t.g, count(*), avg(t.seconds), quantile_cont(t.seconds, 0.5), sum(t.seconds) "
        f"FROM ({ss}) t GROUP BY t.g"
    )
    sess = {r[0]: r[1:] for r in fetch(con, sess_sql) if r[1]}
    rev = {
        r[0]: r[1:]
        for r in fetch(
            con,
            "SELECT m.g, CAST(sum(o.amount) AS DECIMAL(18,3)), count(*), "
            "count(DISTINCT o.user_id) FROM ov_ord o JOIN ov_gus m ON m.unit = o.user_id "
            "GROUP BY m.g",
        )
    }
    dens: dict[Any, int] = {}
    rep: dict[Any, int] = {}
    for g, n, n_rep in fetch(
        con,
        "SELECT m.g, count(*), count(r.user_id) FROM ov_gus m "
        "LEFT JOIN ov_rep r ON r.user_id = m.unit GROUP BY m.g",
    ):
        dens[g], rep[g] = int(n), int(n_rep)
    groups = sorted(
        set(eng) | set(sess) | set(rev) | set(dens) | set(ensure), key=lambda g: (g is None, g)
    )
    out: list[tuple[Any, ...]] = []
    for g in groups:
        active, dau, wau, mau, ud_p, ud_30 = eng.get(g, (0, 0, 0, 0, 0, 0))
        n_s, mean_s, med_s, sum_s = sess.get(g, (0, None, None, None))
        revenue, orders, payers = rev.get(g, (Decimal("0.000"), 0, 0))
        den = dens.get(g, 0)
        out.append(
            (
                by_label,
                g,
                int(active),
                int(dau),
                int(wau),
                int(mau),
                ratio(ud_p, ndays),
                ratio(ratio(ud_30, 30), mau),
                int(n_s),
                ratio(n_s, active),
                None if mean_s is None else float(mean_s),
                None if med_s is None else float(med_s),
                ratio(sum_s, active),
                revenue,
                int(orders),
                int(payers),
                ratio(revenue, orders),
                ratio(revenue, den),
                ratio(revenue, payers),
                ratio(payers, den),
                ratio(rep.get(g, 0), payers) if payers else None,
            )
        )
    return out


# -- trend --------------------------------------------------------------------------------

TREND_COLUMNS = [
    "date",
    "days",
    "partial",
    "dau",
    "wau",
    "mau",
    "stickiness",
    "sessions",
    "revenue",
    "orders",
    "payers",
    "aov",
    "arpu",
    "arppu",
]


def trend_rows(con: duckdb.DuckDBPyConnection, p: Period, interval: str) -> list[tuple[Any, ...]]:
    last = last_day(p)
    series = daily_series(con, p.start, last)
    key_ud = interval_key("x.day", interval, p.start)
    key_ord = interval_key("o.day", interval, p.start)
    s0, l0 = date_lit(p.start), date_lit(last)
    key_sess = interval_key("t.day", interval, p.start)
    dens = {
        r[0]: int(r[1])
        for r in fetch(
            con,
            f"SELECT z.k, count(DISTINCT z.unit) FROM (SELECT {key_ud} AS k, x.unit FROM ov_ud x "
            f"WHERE x.day >= {s0} AND x.day <= {l0} AND x.unit IN (SELECT l.unit FROM ov_linked "
            f"l) UNION ALL SELECT {key_ord} AS k, o.user_id FROM ov_ord o) z GROUP BY z.k",
        )
    }
    rev = {
        r[0]: r[1:]
        for r in fetch(
            con,
            f"SELECT {key_ord} AS k, CAST(sum(o.amount) AS DECIMAL(18,3)), count(*), "
            f"count(DISTINCT o.user_id) FROM ov_ord o GROUP BY {key_ord}",
        )
    }
    sess = {
        r[0]: int(r[1])
        for r in fetch(
            con,
            f"SELECT {key_sess} AS k, count(*) FROM ({session_totals_sql()}) t "
            f"GROUP BY {key_sess}",
        )
    }
    buckets: dict[dt.date, list[dt.date]] = {}
    for d in days_between(p.start, last):
        buckets.setdefault(interval_of(d, interval, p.start), []).append(d)
    out: list[tuple[Any, ...]] = []
    for k, ds in buckets.items():
        end = ds[-1]
        _, wau, mau, dau30 = series[end]
        _, wau, mau, dau30 = series[end]
        revenue, orders, payers = rev.get(k, (Decimal("0.000"), 0, 0))
        out.append(
            (
                k,
                len(ds),
                natural_end(ds[0], interval) >= p.as_of_day,
                series[end][0] if interval == "day" else sum(series[d][0] for d in ds) / len(ds),
                wau,
                mau,
                ratio(dau30, mau),
                sess.get(k, 0),
                revenue,
                int(orders),
                int(payers),
                ratio(revenue, orders),
                ratio(revenue, dens.get(k, 0)),
                ratio(revenue, payers),
            )
        )
    return out


def build(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    period: Period,
    by: list[str] | None = None,
    interval: str = "day",
) -> Report:
    """The overview report: tables `summary` (total row, then one row per group of each
    `--by`) and `trend` (one row per day, week or month of the period)."""
    check_unit(interval)
    bys = check_by(by, BY)
    dims = [b for b in BREAKDOWNS if b in bys]
    members = {
        b.split(":", 1)[1]: segment_members_sql(con, ws, b.split(":", 1)[1])
        for b in bys
        if b.startswith("segment:")
    }
    p = period
    multi = prepare(con, ws, p, dims)

    # payers of the period with at least two distinct purchase days up to `to`
    con.execute(
        "CREATE OR REPLACE TEMP TABLE ov_rep AS SELECT h.user_id FROM (SELECT p.user_id, "
        f"{local_day('p.ts', p.zone, p.as_of)} AS day FROM purchases p WHERE p.status = 'paid' "
        f"AND p.ts <= {ts_lit(p.end_ts)} AND p.user_id IN (SELECT o.user_id FROM ov_ord o) "
        f"GROUP BY p.user_id, {local_day('p.ts', p.zone, p.as_of)}) h GROUP BY h.user_id "
        "HAVING count(*) >= 2"
    )
    rows = summary_rows(con, p, "total", group_sources("total", None, "", p), ("(all)",))
    for b in bys:
        if b.startswith("segment:"):
            name = b.split(":", 1)[1]
            srcs = group_sources("segment", members[name], name, p)
        else:
            srcs = group_sources(b, None, "", p, multi)
        rows += summary_rows(con, p, b, srcs)
    summary = Rows(SUMMARY_COLUMNS, rows, title="summary", percent_columns=PERCENT)
    trend = Rows(
        TREND_COLUMNS, trend_rows(con, p, interval), title="trend", percent_columns=PERCENT
    )
    notes: list[str] = []
    last = last_day(p)
    if p.end > last:
        notes.append(f"the period is cut at the as-of day {last}")
    if p.partial:
        notes.append(f"{last} is still in progress at the as-of instant (partial)")
    if any(b.startswith("segment:") for b in bys):
        notes.append("segment groups use each segment's latest stored snapshot")
    params = {**p.params(), "by": bys, "interval": interval, "last_day": last}
    drops = ["ov_ud", "ov_st", "ov_ord", "ov_linked", "ov_rep", "ov_gud", "ov_gus"]
    drops += [f"ov_multi_{d}" for d in multi]
    for t in drops:
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return Report("overview", {"summary": summary, "trend": trend}, params, notes)
