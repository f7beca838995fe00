"""RFM, lifecycle and loyalty tiers as of an instant, as portable SQL relations.

Definitions are those of `reference/analytics.md` §1 (RFM) and §6 (lifecycle): populations,
day arithmetic in the workspace zone, NTILE with the md5-then-id tie-break, first matching
lifecycle row wins. Each function returns one SELECT that the engine materialises as a TEMP
table (`rfm`, `lifecycle`, `tiers`) or `segments sql` inlines as a CTE.
"""

from __future__ import annotations

from mcrm.segments.compile import Ctx, date_lit, lit, local_day, rf_cells


def rfm_sql(ctx: Ctx) -> str:
    s = ctx.seg.rfm
    today = date_lit(ctx.d_local)
    # the local day once per order (plain offset arithmetic, see compile.local_day), and md5
    # once per customer (the reference's md5(user_id), user_id tie-break)
    orders = (
        f"SELECT p.user_id, {local_day('p.ts', ctx.zone, ctx.as_of)} AS day, p.amount_base "
        "FROM purchases p WHERE p.status = 'paid' AND p.user_id IS NOT NULL "
        f"AND p.ts <= {ctx.d} AND p.ts >= {ctx.ago(s.window_days)}"
    )
    # per (customer, day) first, then per customer: cheaper than count(DISTINCT day)
    days = (
        f"SELECT o.user_id, o.day, sum(o.amount_base) AS amount FROM ({orders}) o "
        "GROUP BY o.user_id, o.day"
    )
    base = (
        f"SELECT d.user_id, md5(d.user_id) AS h, date_diff('day', max(d.day), {today}) "
        "AS recency_days, count(*) AS frequency, "
        "CAST(sum(d.amount) AS DECIMAL(18,3)) AS monetary "
        f"FROM ({days}) d GROUP BY d.user_id"
    )
    cells = rf_cells(s.scheme)
    # the segment of each (R, F) cell from a 25-row table joined on one integer key: cheaper
    # per customer than a 25-branch CASE
    cell_rows = ", ".join(f"({10 * r + f}, {lit(n)})" for n, r, f in cells)
    # (md5, id) ranked once; ordering by that rank is ordering by md5(user_id), user_id, and
    # three integer sorts are far cheaper than three sorts on 32-character strings
    ranked = f"SELECT b0.*, row_number() OVER (ORDER BY h, user_id) AS hr FROM ({base}) b0"
    scored = (
        "SELECT user_id, recency_days, frequency, monetary, "
        "NTILE(5) OVER (ORDER BY recency_days DESC, hr) AS r, "
        "NTILE(5) OVER (ORDER BY frequency ASC, hr) AS f, "
        "NTILE(5) OVER (ORDER BY monetary ASC, hr) AS m "
        f"FROM ({ranked}) b"
    )
    return (
        "SELECT s.user_id, s.recency_days, s.frequency, s.monetary, s.r, s.f, s.m, "
        "CAST(100 * s.r + 10 * s.f + s.m AS VARCHAR) AS cell, c.segment "
        f"FROM ({scored}) s JOIN (VALUES {cell_rows}) c(rf, segment) ON c.rf = 10 * s.r + s.f"
    )


def activity_days_sql(ctx: Ctx) -> str:
    """Distinct (user_id, day) of activity up to D, days in the workspace zone."""
    lc = ctx.seg.lifecycle
    names = [a for a in lc.activity if a != "purchase"]
    parts = []
    if names:
        parts.append(
            f"SELECT e.user_id, {local_day('e.ts', ctx.zone, ctx.as_of)} AS day FROM events e "
            f"WHERE e.user_id IS NOT NULL AND e.ts <= {ctx.d} "
            f"AND e.name IN ({', '.join(lit(n) for n in names)})"
        )
    if "purchase" in lc.activity:
        parts.append(
            f"SELECT p.user_id, {local_day('p.ts', ctx.zone, ctx.as_of)} AS day FROM purchases p "
            f"WHERE p.user_id IS NOT NULL AND p.status = 'paid' AND p.ts <= {ctx.d}"
        )
    union = " UNION ".join(parts) or "SELECT NULL AS user_id, NULL AS day WHERE FALSE"
    return union


def lifecycle_sql(ctx: Ctx) -> str:
    lc = ctx.seg.lifecycle
    today = date_lit(ctx.d_local)
    n, a, s, c = lc.new_days, lc.active_days, lc.dormant_days, lc.churn_days
    gaps = (
        "SELECT user_id, day, date_diff('day', LAG(day) OVER (PARTITION BY user_id "
        f"ORDER BY day), day) AS gap FROM ({activity_days_sql(ctx)}) d"
    )
    per_user = (
        f"SELECT user_id, min(day) AS first_day, max(day) AS last_day, "
        f"max(CASE WHEN date_diff('day', day, {today}) <= {a} AND gap > {s} THEN 1 ELSE 0 END)"
        f" AS returned FROM ({gaps}) g GROUP BY user_id"
    )
    since_first = f"date_diff('day', first_day, {today})"
    since_last = f"date_diff('day', last_day, {today})"
    stage = (
        f"CASE WHEN {since_first} <= {n} THEN 'new' "
        f"WHEN {since_last} <= {a} AND returned = 1 THEN 'reactivated' "
        f"WHEN {since_last} <= {a} THEN 'active' "
        f"WHEN {since_last} <= {s} THEN 'at_risk' "
        f"WHEN {since_last} <= {c} THEN 'dormant' ELSE 'churned' END"
    )
    return (
        f"SELECT user_id, first_day, last_day, {since_last} AS days_since_last, "
        f"{stage} AS stage FROM ({per_user}) x"
    )


def tiers_sql(ctx: Ctx) -> str:
    t = ctx.seg.tiers
    if t is None:
        return "SELECT NULL AS user_id, NULL AS tier, NULL AS spend WHERE FALSE"
    spend = (
        "SELECT p.user_id, sum(p.amount_base) AS spend FROM purchases p "
        f"WHERE p.status = 'paid' AND p.user_id IS NOT NULL AND p.ts <= {ctx.d} "
        f"AND p.ts >= {ctx.ago(t.window_days)} GROUP BY p.user_id"
    )
    case = " ".join(
        f"WHEN coalesce(s.spend, 0) >= {level} THEN {lit(name)}"
        for name, level in reversed(t.levels)
    )
    return (
        f"SELECT u.user_id, CASE {case} END AS tier, "
        f"CAST(coalesce(s.spend, 0) AS DECIMAL(18,3)) AS spend "
        f"FROM users u LEFT JOIN ({spend}) s ON s.user_id = u.user_id "
        f"WHERE u.first_seen IS NULL OR u.first_seen <= {ctx.d}"
    )


def predictions_sql(ctx: Ctx) -> str:
    """The CLV prediction each customer had as of D: the latest `mcrm predict clv` run at or
    before D (mcrm.predict.run). Whether there is one is checked by the engine."""
    from mcrm.predict.run import predictions_sql as sql

    return sql(ctx.d)


RELATIONS = {
    "rfm": rfm_sql,
    "lifecycle": lifecycle_sql,
    "tiers": tiers_sql,
    "clv_prediction": predictions_sql,
}
