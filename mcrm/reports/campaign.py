"""`mcrm report campaign NAME`: holdout uplift with intervals and a verdict (analytics.md §13–14).

Who is measured. The stored plans (`campaign_plans` / `plan_rows`) are the assignment record:
- a scheduled campaign may be planned several times for one occurrence (a re-plan replaces
  the earlier one); the report takes, per occurrence, the latest plan that reached the outbox,
  else the latest plan. Trigger campaigns keep every plan (each row is its own occurrence) and
  keep one row per (user, occurrence), chosen the same way. Plans made after `--as-of` do not
  exist for the report;
- treatment = rows that passed the checks that come before holdout placement: `planned` rows
  and the later suppressions `frequency_cap`, `quiet_hours_dropped`, `template_skip` (intent to
  treat, §14); holdout = `holdout` rows. Everything else (consent, address, reentry, global
  control, excluded) was never assigned;
- the window starts at the *planned* send time (`send_at`) and the group is the row's
  `variant`: the planner stores both for every assigned user, the later suppressions
  included (mcrm.campaigns.plan). Plans stored by older versions have NULL there for the
  later suppressions; for those rows they are rebuilt: the variant from the planner's hash
  (md5 of `variant:<campaign>:<user>`), the send time as the earliest planned send of the
  same plan in the same user zone (the zone's slot), else the occurrence instant (plus the
  delay for a trigger campaign);
- one unit per user: the first planned occurrence whose send time falls in the report range.

Conversions and money follow §13 (any-touch, window anchored on the send, at most once per
recipient) and §0 (paid orders only, base currency, DECIMAL sums). Everything is aggregated
in SQL to (n, conversions, Σy, Σy²) per group; the intervals come from `mcrm.reports.stats`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from mcrm.campaigns.plan import LATE_SUPPRESSIONS
from mcrm.errors import ConfigError, DataError
from mcrm.output import Rows
from mcrm.reports.common import Period, Report, ratio
from mcrm.reports.stats import (
    Moments,
    katz,
    newcombe,
    small_counts,
    verdict,
    verdict_words,
    welch,
)
from mcrm.segments.compile import hex8, lit, local_day, ts_lit

if TYPE_CHECKING:
    import duckdb

    from mcrm.campaigns.model import Campaign, Delivery
    from mcrm.config import Workspace

ALL = "(all variants)"
HOLDOUT = "holdout"
SENT_TYPES = ("sent", "processed")
"""Message events that mean "sent", as in `report messaging`: `sent` is the one row per real
message that caps and reentry count (dispatch's for mcrm's sends, the provider presets' for
another tool's); `processed` is a provider's report of a message — the same message as a
`sent` row when it links to the outbox, and kept here for history imported before the presets
stored foreign sends as `sent`. Reports count users and message keys, never rows, so a message
with both counts once."""
PCT = frozenset({"rate", "uplift", "ci_low", "ci_high", "relative", "rel_low", "rel_high"})


def _bucket(key_sql: str) -> str:
    return f"({hex8(f'md5({key_sql})')} % 10000)"


def _variant_sql(c: Campaign) -> str:
    """The planner's variant for `r.user_id` (mcrm.campaigns.plan.variant_cuts)."""
    from mcrm.campaigns.plan import variant_cuts

    cuts = variant_cuts(c)
    if len(cuts) == 1:
        return lit(cuts[0][0])
    vb = _bucket(f"{lit('variant:' + c.name + ':')} || r.user_id")
    return (
        "CASE "
        + " ".join(f"WHEN {vb} < {cut} THEN {lit(n)}" for n, cut in cuts[:-1])
        + f" ELSE {lit(cuts[-1][0])} END"
    )


def _occ_ts(expr: str) -> str:
    """An occurrence's text (`2026-11-16T09:00:00Z`) as a naive UTC timestamp."""
    return f"CAST(replace(replace({expr}, 'T', ' '), 'Z', '') AS TIMESTAMP)"


def units_sql(c: Campaign, period: Period) -> str:
    """One row per measured user: user_id, grp (variant or 'holdout'), anchor (planned send),
    occ, idempotency_key (see the module docstring: the stored variant and send time; the
    hash and the zone slot only for rows of older plans that lack them)."""

    d = ts_lit(period.as_of)
    late = ", ".join(lit(r) for r in LATE_SUPPRESSIONS)
    pick = "ORDER BY pl.was_sent DESC, pl.created_at DESC, pl.plan_id DESC"
    chosen = (
        "SELECT * FROM pl"
        if c.trigger is not None
        else f"SELECT * FROM pl QUALIFY row_number() OVER (PARTITION BY pl.plan_occ {pick}) = 1"
    )
    delay = int(round(c.trigger.delay_days * 86400)) if c.trigger is not None else 0
    return f"""
    WITH pl AS (
        SELECT cp.plan_id, cp.occurrence AS plan_occ, cp.created_at,
               cp.plan_id IN (SELECT o.plan_id FROM outbox o WHERE o.campaign = {lit(c.name)}
                              AND o.plan_id IS NOT NULL) AS was_sent
        FROM campaign_plans cp
        WHERE cp.campaign = {lit(c.name)} AND cp.as_of <= {d}
    ),
    ch AS ({chosen}),
    rw AS (
        SELECT r.user_id, coalesce(r.occurrence, pl.plan_occ) AS occ, r.status, r.reason,
               r.variant, r.send_at, r.zone, r.idempotency_key, pl.plan_id, pl.was_sent,
               pl.created_at,
               min(r.send_at) OVER (PARTITION BY r.plan_id, r.zone) AS zone_slot
        FROM plan_rows r JOIN ch pl ON pl.plan_id = r.plan_id
        WHERE r.status IN ('planned', 'holdout') OR r.reason IN ({late})
    ),
    one AS (
        SELECT * FROM rw pl
        QUALIFY row_number() OVER (PARTITION BY pl.user_id, pl.occ {pick}) = 1
    ),
    g AS (
        SELECT r.user_id, r.occ, r.plan_id, r.idempotency_key,
               CASE WHEN r.status = 'holdout' THEN {lit(HOLDOUT)}
                    ELSE coalesce(r.variant, {_variant_sql(c)}) END AS grp,
               coalesce(r.send_at, r.zone_slot,
                        {_occ_ts("r.occ")} + INTERVAL {delay} SECOND) AS anchor
        FROM one r
    )
    SELECT user_id, grp, anchor, occ, idempotency_key FROM g
    WHERE anchor >= {ts_lit(period.start_ts)} AND anchor <= {ts_lit(period.end_ts)}
    QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY anchor, occ, plan_id) = 1"""


def goal_sql(event: str, as_of: dt.datetime) -> str:
    """(user_id, ts) of goal events up to as_of; `purchase` = paid orders (§0)."""

    d = ts_lit(as_of)
    if event == "purchase":
        return (
            "SELECT p.user_id, p.ts FROM purchases p WHERE p.status = 'paid' "
            f"AND p.user_id IS NOT NULL AND p.ts <= {d}"
        )
    return (
        f"SELECT e.user_id, e.ts FROM events e WHERE e.name = {lit(event)} "
        f"AND e.user_id IS NOT NULL AND e.ts <= {d}"
    )


def per_unit_sql(c: Campaign, period: Period) -> str:
    """Per measured user: grp, converted, revenue (DECIMAL), sent, redemptions, window_open,
    unconverted (paid orders in the window without a base-currency amount)."""

    assert c.goal is not None
    d = ts_lit(period.as_of)
    w = f"INTERVAL {int(round(c.goal.within_days * 86400))} SECOND"
    return f"""
    WITH u AS ({units_sql(c, period)}),
    gl AS ({goal_sql(c.goal.event, period.as_of)}),
    paid AS (SELECT p.user_id, p.ts, p.amount_base, p.coupon_code FROM purchases p
             WHERE p.status = 'paid' AND p.user_id IS NOT NULL AND p.ts <= {d}),
    conv AS (SELECT u.user_id FROM u JOIN gl ON gl.user_id = u.user_id
             AND gl.ts >= u.anchor AND gl.ts <= u.anchor + {w} GROUP BY u.user_id),
    rev AS (SELECT u.user_id, sum(p.amount_base) AS revenue,
                   count(*) FILTER (WHERE p.amount_base IS NULL) AS unconverted FROM u JOIN paid p
            ON p.user_id = u.user_id AND p.ts >= u.anchor AND p.ts <= u.anchor + {w}
            GROUP BY u.user_id),
    snt AS (SELECT u.user_id FROM u JOIN message_events m ON m.user_id = u.user_id
            AND m.type IN ({", ".join(lit(t) for t in SENT_TYPES)})
            AND m.campaign = {lit(c.name)} AND m.ts <= {d}
            AND (m.event_id = u.idempotency_key
                 OR (m.ts >= u.anchor - INTERVAL 1 DAY AND m.ts <= u.anchor + {w}))
            GROUP BY u.user_id),
    red AS (SELECT u.user_id, count(*) AS n FROM u
            JOIN coupon_assignments a ON a.campaign = {lit(c.name)} AND a.user_id = u.user_id
            JOIN paid p ON p.user_id = u.user_id AND p.coupon_code IS NOT NULL
             AND upper(trim(p.coupon_code)) = upper(trim(a.code)) AND p.ts >= u.anchor
            GROUP BY u.user_id)
    SELECT u.user_id, u.grp,
           conv.user_id IS NOT NULL AS converted,
           coalesce(rev.revenue, CAST(0 AS DECIMAL(18, 3))) AS revenue,
           snt.user_id IS NOT NULL AS sent,
           coalesce(red.n, 0) AS redemptions,
           u.anchor + {w} > {d} AS window_open,
           coalesce(rev.unconverted, 0) AS unconverted
    FROM u LEFT JOIN conv ON conv.user_id = u.user_id
    LEFT JOIN rev ON rev.user_id = u.user_id
    LEFT JOIN snt ON snt.user_id = u.user_id
    LEFT JOIN red ON red.user_id = u.user_id"""


def _agg_sql(c: Campaign, period: Period) -> str:
    cols = (
        "count(*) AS n, count(*) FILTER (WHERE sent) AS sent, "
        "count(*) FILTER (WHERE converted) AS x, sum(revenue) AS s, "
        "sum(revenue * revenue) AS ss, sum(redemptions) AS red, "
        "count(*) FILTER (WHERE redemptions > 0) AS redeemers, "
        "count(*) FILTER (WHERE window_open) AS open_windows, "
        "sum(unconverted) AS unconverted"
    )
    return f"""
    WITH pu AS ({per_unit_sql(c, period)})
    SELECT grp, {cols} FROM pu GROUP BY grp
    UNION ALL
    SELECT {lit(ALL)} AS grp, {cols} FROM pu WHERE grp <> {lit(HOLDOUT)}"""


def _check_fx(con: duckdb.DuckDBPyConnection, c: Campaign, period: Period) -> None:
    """A paid order in a window without a base-currency amount is an error (§0)."""

    assert c.goal is not None
    w = f"INTERVAL {int(round(c.goal.within_days * 86400))} SECOND"
    row = con.execute(
        f"""WITH u AS ({units_sql(c, period)})
        SELECT p.currency, {local_day("p.ts", period.zone)} AS day FROM u JOIN purchases p
        ON p.user_id = u.user_id AND p.status = 'paid' AND p.amount_base IS NULL
        AND p.ts >= u.anchor AND p.ts <= u.anchor + {w} AND p.ts <= {ts_lit(period.as_of)}
        ORDER BY day, p.currency LIMIT 1"""
    ).fetchall()
    if row:
        cur, day = row[0]
        raise DataError(
            f"a paid order in {cur} on {day} has no amount in the base currency "
            "(no exchange rate for that date)",
            hint=f"import fx rates for {cur}: mcrm import fx_rates FILE",
        )


def _send_range_hint(con: duckdb.DuckDBPyConnection, name: str, period: Period) -> str:
    lo, hi = con.execute(
        "SELECT min(r.send_at), max(r.send_at) FROM plan_rows r JOIN campaign_plans cp "
        f"ON cp.plan_id = r.plan_id WHERE cp.campaign = {lit(name)} "
        f"AND cp.as_of <= {ts_lit(period.as_of)} AND r.status IN ('planned', 'holdout')"
    ).fetchall()[0]
    if lo is None:
        return "no plan made up to --as-of assigns anyone; plan it: mcrm campaigns plan " + name
    return (
        f"its planned sends (up to --as-of) run {lo:%Y-%m-%d %H:%M} .. {hi:%Y-%m-%d %H:%M} UTC; "
        "pick that range with --from / --to"
    )


class _G:
    """One group's aggregates."""

    def __init__(self, row: tuple[Any, ...]) -> None:
        self.name = str(row[0])
        self.n, self.sent, self.x = int(row[1]), int(row[2]), int(row[3])
        self.revenue = Decimal(row[4]) if row[4] is not None else Decimal(0)
        self.ss = float(row[5]) if row[5] is not None else 0.0
        self.redemptions, self.redeemers = int(row[6] or 0), int(row[7])
        self.open_windows = int(row[8])

    @property
    def moments(self) -> Moments:
        return Moments(self.n, float(self.revenue), self.ss)


def _r(v: float | None) -> float | None:
    """A ratio as computed (DOUBLE, analytics.md §0: rounded only for display)."""
    return v


def build(con: duckdb.DuckDBPyConnection, ws: Workspace, period: Period, name: str) -> Report:
    """The campaign report (see the module docstring and docs/reports.md)."""
    from mcrm.campaigns.engine import load

    c, delivery = load(ws, name)
    if c.goal is None:
        raise ConfigError(
            f"campaign '{name}' has no goal: conversions cannot be measured",
            hint=f"add `goal: {{event: purchase, within: 7d}}` to {c.file}",
        )
    plans = con.execute(
        "SELECT count(*), min(as_of) FROM campaign_plans WHERE campaign = ?", [name]
    ).fetchall()[0]
    if not plans[0]:
        raise DataError(
            f"campaign '{name}' has no stored plans: nothing was assigned to measure",
            hint=f"plan it first: mcrm campaigns plan {name}",
        )
    rows = con.execute(_agg_sql(c, period)).fetchall()
    if any(r[9] for r in rows):
        _check_fx(con, c, period)
    groups = {str(r[0]): _G(r) for r in rows}
    variants = [v.name for v in c.variants]
    if not any(groups[g].n for g in groups if g != ALL):
        raise DataError(
            f"campaign '{name}' has no planned sends between {period.start} and "
            f"{period.end} (as of {period.as_of:%Y-%m-%d %H:%M} UTC)",
            hint=_send_range_hint(con, name, period),
        )
    empty = _G(("", 0, 0, 0, None, None, 0, 0, 0, 0))
    order = [*variants, *(g for g in groups if g not in (*variants, ALL, HOLDOUT))]
    treat = [(v, groups.get(v, empty)) for v in order]
    if len(variants) > 1:
        treat.append((ALL, groups.get(ALL, empty)))
    hold = groups.get(HOLDOUT, empty)
    has_holdout = hold.n > 0

    report = Report(
        "campaign",
        {},
        params={
            "campaign": name,
            "goal": c.goal.event,
            "within": c.goal.within,
            "holdout": c.holdout,
            **period.params(),
        },
    )
    goal_words = f"{c.goal.event} within {c.goal.within} of the planned send"
    uplift_rows: list[tuple[Any, ...]] = []
    rev_rows: list[tuple[Any, ...]] = []
    warnings: list[str] = []
    for label, g in treat:
        if has_holdout and g.n:
            ci = newcombe(g.x, g.n, hold.x, hold.n)
            rel = katz(g.x, g.n, hold.x, hold.n)
            v = verdict(ci)
            uplift_rows.append(
                (
                    label,
                    g.n,
                    g.x,
                    ratio(g.x, g.n),
                    _r(ci.estimate),
                    _r(ci.low),
                    _r(ci.high),
                    v,
                    _r(rel.estimate) if rel else None,
                    _r(rel.low) if rel else None,
                    _r(rel.high) if rel else None,
                )
            )
            wci = welch(g.moments, hold.moments)
            rev_rows.append(
                (
                    label,
                    g.n,
                    _r(ratio(float(g.revenue), g.n)),
                    _r(ratio(float(hold.revenue), hold.n)),
                    _r(g.moments.mean - (hold.moments.mean or 0.0))
                    if g.moments.mean is not None
                    else None,
                    _r(wci.low) if wci else None,
                    _r(wci.high) if wci else None,
                    verdict(wci) if wci else None,
                )
            )
        else:
            uplift_rows.append(
                (label, g.n, g.x, ratio(g.x, g.n), None, None, None, None, None, None, None)
            )
            rev_rows.append(
                (label, g.n, _r(ratio(float(g.revenue), g.n)), None, None, None, None, None)
            )
    uplift_rows.append(
        (HOLDOUT, hold.n, hold.x, ratio(hold.x, hold.n), *([None] * 7))
        if has_holdout
        else (HOLDOUT, 0, 0, None, *([None] * 7))
    )
    report.tables["uplift"] = Rows(
        [
            "variant",
            "n",
            "conversions",
            "rate",
            "uplift",
            "ci_low",
            "ci_high",
            "verdict",
            "relative",
            "rel_low",
            "rel_high",
        ],
        uplift_rows,
        title=f"{name}: conversion ({goal_words}) vs holdout, 95% CI",
        percent_columns=PCT,
    )
    report.tables["revenue"] = Rows(
        ["variant", "n", "rpr", "rpr_holdout", "delta_rpr", "ci_low", "ci_high", "verdict"],
        rev_rows,
        title=f"{name}: revenue per recipient ({delivery_base(ws)}, zeros included) vs "
        "holdout, Welch 95% CI",
    )
    all_groups = [*treat, (HOLDOUT, hold)]
    report.tables["groups"] = Rows(
        [
            "group",
            "recipients",
            "sent",
            "conversions",
            "rate",
            "revenue",
            "rpr",
            "redemptions",
            "redeemers",
            "open_windows",
        ],
        [
            (
                label,
                g.n,
                g.sent,
                g.x,
                ratio(g.x, g.n),
                g.revenue,
                _r(ratio(float(g.revenue), g.n)),
                g.redemptions,
                g.redeemers,
                g.open_windows,
            )
            for label, g in all_groups
        ],
        title=f"{name}: groups as assigned (intent to treat)",
    )
    gc_table = global_control(con, ws, c, delivery, period)
    if gc_table is not None:
        report.tables["global_control"] = gc_table
    else:
        report.notes.append(
            "no global control group (delivery.global_control is 0%): no global_control table"
        )

    # words: verdicts, warnings, notes
    if not has_holdout:
        warnings.append(
            f"campaign '{name}' has no holdout"
            + ("" if c.holdout == 0 else " member in this range")
            + ": uplift cannot be measured; per-variant numbers only"
            + (" (add `holdout: 10%` to the campaign)" if c.holdout == 0 else "")
        )
    for label, g in all_groups:
        # the pooled group is never smaller than a variant: its warning would repeat theirs
        if label != ALL and g.n and small_counts(g.x, g.n):
            warnings.append(
                f"{label}: {g.x} conversions of {g.n} recipients: fewer than 5 conversions or "
                "non-conversions, so the interval is rough"
            )
    n_assigned = sum(g.n for _l, g in treat if _l != ALL)
    if n_assigned and not any(g.sent for _l, g in treat):
        warnings.append(
            "no message of this campaign was sent to the treatment group in this range "
            "(plans that were never sent): the comparison measures assignment only"
        )
    if hold.sent:
        warnings.append(f"{hold.sent} holdout member(s) were sent this campaign anyway")
    report.warnings.extend(warnings)
    notes = report.notes
    for row in uplift_rows:
        if row[7] is not None:
            notes.append(
                f"{row[0]}: {verdict_words(str(row[7]))} "
                f"(Δ {row[4] * 100:+.2f} pp, 95% CI {row[5] * 100:+.2f} .. {row[6] * 100:+.2f})"
            )
    for row in rev_rows:
        if row[7] is not None:
            notes.append(f"{row[0]}: {verdict_words(str(row[7]), 'revenue per recipient')}")
    x_total = sum(g.x for _l, g in all_groups if _l != ALL)
    if x_total == 0:
        notes.append(
            f"no conversions yet: no {c.goal.event} within {c.goal.within} of any planned send "
            f"up to {period.as_of:%Y-%m-%d %H:%M} UTC"
        )
    open_n = sum(g.open_windows for _l, g in all_groups if _l != ALL)
    if open_n:
        notes.append(
            f"{open_n} recipient(s) still have an open goal window at as-of; their conversions "
            "so far count (both groups alike)"
        )
    n_t = sum(g.n for _l, g in treat if _l != ALL)
    s_t = sum(g.sent for _l, g in treat if _l != ALL)
    notes.append(
        f"intent to treat: {n_t} assigned to the variants, {s_t} of them sent; users dropped "
        "after holdout placement (caps, quiet hours, template skips, failures) stay in treatment"
    )
    notes.append(
        f"attribution: any-touch (analytics.md §13), {goal_words}, at most once per recipient; "
        "each user counts once, at their first planned occurrence in the range"
    )
    if has_holdout and len(treat) > 1:
        notes.append(
            "each variant and the pooled variants are compared with the holdout at 95% each; "
            "there is no multiple-comparison correction"
        )
    if period.partial:
        notes.append(f"the period ends at as-of {period.as_of:%Y-%m-%d %H:%M} UTC")
    return report


def delivery_base(ws: Workspace) -> str:
    return str(ws.settings.base_currency)


def global_control(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    c: Campaign,
    delivery: Delivery,
    period: Period,
) -> Rows | None:
    """The global control group against everyone else over the period (§14 last part), for
    the campaign's goal event; None when no global control is configured."""

    assert c.goal is not None
    if delivery.global_control <= 0:
        return None
    start, end = ts_lit(period.start_ts), ts_lit(period.end_ts)
    cut = int(round(delivery.global_control * 10000))
    gcb = _bucket(f"{lit('gc:' + delivery.global_control_salt + ':')} || u.user_id")

    def consent(ch: str) -> str:
        return (
            "u.user_id IN (SELECT user_id FROM (SELECT c.user_id, c.granted FROM consents c "
            f"WHERE c.channel = {lit(ch)} AND c.purpose = 'marketing' AND c.ts <= {start} "
            "QUALIFY row_number() OVER (PARTITION BY c.user_id ORDER BY c.ts DESC, "
            "c.granted ASC, c.source) = 1) x WHERE granted)"
        )

    reach = " OR ".join(
        [
            f"(u.email IS NOT NULL AND {consent('email')})",
            f"(u.phone IS NOT NULL AND {consent('sms')})",
            "(u.user_id IN (SELECT user_id FROM devices WHERE push_token IS NOT NULL AND "
            f"coalesce(push_enabled, TRUE) AND (invalidated_at IS NULL OR invalidated_at > "
            f"{start})) AND {consent('push')})",
        ]
    )
    gl = goal_sql(c.goal.event, period.as_of)
    sql = f"""
    WITH el AS (
        SELECT u.user_id, CASE WHEN {gcb} < {cut} THEN 'global control' ELSE 'everyone else'
               END AS grp
        FROM users u WHERE u.first_seen < {start} AND ({reach})
    ),
    gl AS ({gl}),
    conv AS (SELECT DISTINCT gl.user_id FROM gl WHERE gl.ts >= {start} AND gl.ts <= {end}),
    rev AS (SELECT p.user_id, sum(p.amount_base) AS revenue FROM purchases p
            WHERE p.status = 'paid' AND p.ts >= {start} AND p.ts <= {end}
            AND p.ts <= {ts_lit(period.as_of)} GROUP BY p.user_id),
    pu AS (SELECT el.grp, conv.user_id IS NOT NULL AS x,
                  coalesce(rev.revenue, CAST(0 AS DECIMAL(18, 3))) AS y
           FROM el LEFT JOIN conv ON conv.user_id = el.user_id
           LEFT JOIN rev ON rev.user_id = el.user_id)
    SELECT grp, count(*), count(*) FILTER (WHERE x), sum(y), sum(y * y) FROM pu
    GROUP BY grp ORDER BY grp"""
    got = {str(r[0]): r for r in con.execute(sql).fetchall()}
    z = ("", 0, 0, None, None)
    rest, ctl = got.get("everyone else", z), got.get("global control", z)
    n_r, x_r, n_c, x_c = int(rest[1]), int(rest[2]), int(ctl[1]), int(ctl[2])
    m_r = Moments(n_r, float(rest[3] or 0), float(rest[4] or 0))
    m_c = Moments(n_c, float(ctl[3] or 0), float(ctl[4] or 0))
    rows: list[tuple[Any, ...]] = []
    ci = newcombe(x_r, n_r, x_c, n_c) if n_r and n_c else None
    wci = welch(m_r, m_c)
    rows.append(
        (
            "everyone else",
            n_r,
            x_r,
            ratio(x_r, n_r),
            _r(ci.estimate) if ci else None,
            _r(ci.low) if ci else None,
            _r(ci.high) if ci else None,
            verdict(ci) if ci else None,
            _r(m_r.mean),
            _r(wci.estimate) if wci else None,
            _r(wci.low) if wci else None,
            _r(wci.high) if wci else None,
        )
    )
    rows.append(
        ("global control", n_c, x_c, ratio(x_c, n_c), *([None] * 4), _r(m_c.mean))
        + (None, None, None)
    )
    return Rows(
        [
            "group",
            "users",
            "converted",
            "rate",
            "uplift",
            "ci_low",
            "ci_high",
            "verdict",
            "rpu",
            "delta_rpu",
            "rpu_low",
            "rpu_high",
        ],
        rows,
        title=f"global control ({delivery.global_control:.0%}) vs everyone else: "
        f"{c.goal.event} share and revenue per user, {period.start} .. {period.end}",
        percent_columns=frozenset({"rate", "uplift", "ci_low", "ci_high"}),
    )
