"""`mcrm report acquisition`: installs, first purchases, conversion, LTV and ad-spend returns by
first-touch source (and campaign), analytics.md §11 (LTV_N) and §12.

Populations (all first touch, from `users`):
- installs: users whose install time falls in the period;
- acquired: users whose acquisition time (install time, else `first_seen`) falls in the period,
  the LTV population of §11;
- first purchases: users whose first-ever paid order falls in the period, by their source.

Choices where the reference is silent:
- "Revenue within N days of acquisition" counts paid orders with acquisition <= ts <=
  acquisition + N days (orders before the install, e.g. in the e-shop, are not value of the
  acquisition); conversion_30d likewise counts a paid order within [install, install + 30d].
- ROAS_N / ROI_N use the install days `d` of the period whose whole day lies N days before the
  as-of instant (end of d + N days <= D), both for the installs' N-day revenue and for the cost,
  so every install counted is mature and the cost is that of the same days.
- A source or campaign that is empty or unknown is `(none)`; ad spend is matched to users on the
  exact source (and campaign) strings.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from mcrm.errors import DataError
from mcrm.output import Rows
from mcrm.reports.common import Period, Report, _local_midnight, check_by, ratio
from mcrm.reports.overview import PERCENT, fetch
from mcrm.segments.compile import date_lit, local_day, ts_lit

if TYPE_CHECKING:
    import duckdb

    from mcrm.config import Workspace

BY = ("source", "campaign")
HORIZONS = (30, 90)


def mature_install_day(p: Period, n: int) -> dt.date:
    """The last local day d whose end + n days is no later than the as-of instant."""
    limit = p.as_of - dt.timedelta(days=n)
    d = limit.replace(tzinfo=dt.UTC).date() + dt.timedelta(days=1)
    while _local_midnight(d + dt.timedelta(days=1), p.zone) > limit:
        d -= dt.timedelta(days=1)
    return d


def label(expr: str) -> str:
    return f"coalesce(nullif(trim({expr}), ''), '(none)')"


def build(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    period: Period,
    by: list[str] | None = None,
) -> Report:
    """Tables `acquisition` (total row, then one per source, or per source and campaign with
    `by=["campaign"]`)."""

    bys = check_by(by, BY)
    with_campaign = "campaign" in bys
    p = period
    d, s_ts, e_ts = ts_lit(p.as_of), ts_lit(p.start_ts), ts_lit(p.end_ts)
    acq = (
        f"SELECT u.user_id, {label('u.acq_source')} AS src, {label('u.acq_campaign')} AS camp, "
        "u.install_time, coalesce(u.install_time, u.first_seen) AS at FROM users u "
        "WHERE coalesce(u.install_time, u.first_seen) IS NOT NULL"
    )
    orders = (
        "SELECT p.user_id, p.ts, p.amount_base AS amount FROM purchases p "
        f"WHERE p.status = 'paid' AND p.user_id IS NOT NULL AND p.ts <= {d}"
    )
    missing = fetch(
        con,
        "SELECT p.currency, CAST(p.ts AS DATE) FROM purchases p WHERE p.status = 'paid' "
        f"AND p.amount_base IS NULL AND p.ts <= {d} ORDER BY 2, 1 LIMIT 1",
    )
    if missing:
        raise DataError(
            f"no fx rate for {missing[0][0]} on {missing[0][1]}: paid orders in it cannot be "
            "converted",
            hint="import rates: mcrm import fx-rates FILE",
        )
    firsts = f"SELECT o.user_id, min(o.ts) AS first_ts FROM ({orders}) o GROUP BY o.user_id"
    iday = local_day("a.install_time", p.zone, p.as_of)

    def within(t: str, n: int) -> str:
        return f"o.ts >= a.{t} AND o.ts <= a.{t} + INTERVAL {n} DAY"

    def mature(t: str, n: int) -> str:
        return f"a.{t} + INTERVAL {n} DAY <= {d}"

    sums = ", ".join(
        f"sum(CASE WHEN {within('at', n)} THEN o.amount END) AS rev{n}, "
        f"sum(CASE WHEN {within('install_time', n)} THEN o.amount END) AS irev{n}"
        for n in HORIZONS
    )
    per_user = (
        f"SELECT a.user_id, a.src, a.camp, a.install_time >= {s_ts} AND a.install_time <= {e_ts}"
        f" AS installed, a.at >= {s_ts} AND a.at <= {e_ts} AS acquired, {iday} AS iday, "
        + ", ".join(f"{mature('at', n)} AS m{n}" for n in HORIZONS)
        + f", {mature('install_time', 30)} AS im30, "
        f"coalesce(max(CASE WHEN {within('install_time', 30)} THEN 1 ELSE 0 END), 0) AS conv30, "
        f"{sums}, max(f.first_ts) >= {s_ts} AND max(f.first_ts) <= {e_ts} AS first_buy "
        f"FROM ({acq}) a LEFT JOIN ({orders}) o ON o.user_id = a.user_id "
        f"LEFT JOIN ({firsts}) f ON f.user_id = a.user_id "
        f"WHERE (a.at >= {s_ts} AND a.at <= {e_ts}) OR (f.first_ts >= {s_ts} AND "
        f"f.first_ts <= {e_ts}) "
        "GROUP BY a.user_id, a.src, a.camp, a.install_time, a.at"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE aq_u AS {per_user}")
    keys = ["x.src", "x.camp"] if with_campaign else ["x.src"]
    cut = {n: mature_install_day(p, n) for n in HORIZONS}
    aggs = [
        "count(*) FILTER (WHERE x.installed)",
        "count(*) FILTER (WHERE x.acquired)",
        "count(*) FILTER (WHERE x.first_buy)",
        "count(*) FILTER (WHERE x.installed AND x.im30)",
        "count(*) FILTER (WHERE x.installed AND x.im30 AND x.conv30 = 1)",
    ]
    for n in HORIZONS:
        aggs += [
            f"count(*) FILTER (WHERE x.acquired AND x.m{n})",
            f"count(*) FILTER (WHERE x.acquired AND NOT x.m{n})",
            f"CAST(coalesce(sum(x.rev{n}) FILTER (WHERE x.acquired AND x.m{n}), 0) "
            "AS DECIMAL(18,3))",
            f"CAST(coalesce(sum(x.irev{n}) FILTER (WHERE x.installed AND x.iday <= "
            f"{date_lit(cut[n])}), 0) AS DECIMAL(18,3))",
        ]
    agg_sql = ", ".join(aggs)

    def users_rows(group: bool) -> dict[tuple[str, ...], tuple[Any, ...]]:
        if group:
            sql = f"SELECT {', '.join(keys)}, {agg_sql} FROM aq_u x GROUP BY {', '.join(keys)}"
            k = len(keys)
            return {tuple(r[:k]): tuple(r[k:]) for r in fetch(con, sql)}
        r = fetch(con, f"SELECT {agg_sql} FROM aq_u x")[0]
        return {(): tuple(r)}

    spend_n = int(fetch(con, "SELECT count(*) FROM ad_spend")[0][0])
    no_rate = fetch(
        con,
        "SELECT s.currency, s.date FROM ad_spend s WHERE s.cost_base IS NULL "
        f"AND s.date >= {date_lit(p.start)} AND s.date <= {date_lit(p.end)} ORDER BY 2, 1 LIMIT 1",
    )
    if no_rate:
        raise DataError(
            f"no fx rate for {no_rate[0][0]} on {no_rate[0][1]}: ad spend in it cannot be "
            "converted",
            hint="import rates: mcrm import fx-rates FILE",
        )
    last = min(p.end, p.as_of_day)
    in_p = f"s.date >= {date_lit(p.start)} AND s.date <= {date_lit(last)}"
    skeys = [label("s.source")] + ([label("s.campaign")] if with_campaign else [])
    cost_aggs = f"CAST(coalesce(sum(s.cost_base) FILTER (WHERE {in_p}), 0) AS DECIMAL(18,3))"
    for n in HORIZONS:
        cost_aggs += (
            f", CAST(coalesce(sum(s.cost_base) FILTER (WHERE {in_p} AND s.date <= "
            f"{date_lit(cut[n])}), 0) AS DECIMAL(18,3))"
        )

    def cost_rows(group: bool) -> dict[tuple[str, ...], tuple[Any, ...]]:
        if group:
            sql = (
                f"SELECT {', '.join(skeys)}, {cost_aggs} FROM ad_spend s "
                f"GROUP BY {', '.join(skeys)}"
            )
            k = len(skeys)
            return {tuple(r[:k]): tuple(r[k:]) for r in fetch(con, sql)}
        return {(): tuple(fetch(con, f"SELECT {cost_aggs} FROM ad_spend s")[0])}

    zero = Decimal("0.000")
    key_cols = ["source", "campaign"] if with_campaign else ["source"]
    columns = [
        *key_cols,
        "installs",
        "acquired",
        "first_purchases",
        "conversion_30d",
        "mature_30",
        "immature_30",
        "revenue_30",
        "ltv_30",
        "mature_90",
        "immature_90",
        "revenue_90",
        "ltv_90",
        "cost",
        "cpi",
        "cac",
        "roas_30",
        "roi_30",
        "roas_90",
        "roi_90",
    ]

    def row(
        key: tuple[str, ...], u: tuple[Any, ...] | None, c: tuple[Any, ...] | None
    ) -> tuple[Any, ...]:
        u = u or (0, 0, 0, 0, 0, 0, 0, zero, zero, 0, 0, zero, zero)
        inst, acqd, firsts_n, im30, conv = (int(v) for v in u[:5])
        m30, i30, rev30, irev30, m90, i90, rev90, irev90 = u[5:]
        cost = c[0] if (c and spend_n) else None
        cost30 = c[1] if (c and spend_n) else None
        cost90 = c[2] if (c and spend_n) else None
        roas30, roas90 = ratio(irev30, cost30), ratio(irev90, cost90)
        return (
            *key,
            inst,
            acqd,
            firsts_n,
            ratio(conv, im30),
            int(m30),
            int(i30),
            rev30,
            ratio(rev30, m30),
            int(m90),
            int(i90),
            rev90,
            ratio(rev90, m90),
            cost,
            ratio(cost, inst),
            ratio(cost, firsts_n),
            roas30,
            None if roas30 is None else roas30 - 1,
            roas90,
            None if roas90 is None else roas90 - 1,
        )

    total_key = ("(all)", "(all)") if with_campaign else ("(all)",)
    rows = [row(total_key, users_rows(False)[()], cost_rows(False)[()])]
    ug, cg = users_rows(True), cost_rows(True)
    for key in sorted(set(ug) | set(cg)):
        if key not in ug and not any(v for v in cg[key]):
            continue  # spend outside the period, and no users in it
        rows.append(row(key, ug.get(key), cg.get(key)))
    con.execute("DROP TABLE IF EXISTS aq_u")
    notes = [
        f"LTV_N and revenue_N count mature users only (acquired at least N days before the "
        f"as-of instant); immature_N says how many were left out. ROAS_N uses installs and "
        f"cost on days up to {cut[30]} (N=30) and {cut[90]} (N=90)."
    ]
    if not spend_n:
        notes.append("no ad spend imported: cost, CPI, CAC, ROAS and ROI are empty")
    params = {**p.params(), "by": bys}
    table = Rows(columns, rows, title="acquisition", percent_columns=PERCENT)
    return Report("acquisition", {"acquisition": table}, params, notes)
