"""`mcrm report features`: what people use: screens, features, sessions and time in app.

Definitions (analytics.md §10 for sessions; the reference is silent on the rest):
- A *screen* is the events' `screen` column: a unit uses a screen in an interval when one of its
  events (any name but a background one) carries it.
- A *feature* is an event name that is not app lifecycle, background or messaging
  (`NOT_FEATURES`): on the sample data that leaves product_view, add_to_cart and purchase (the
  app event; paid orders live in purchases) and whatever custom events an app sends.
- Units are those of engagement (§0): canonical users, or the anonymous id of events not yet
  linked. `share` = the screen's or feature's users ÷ the units with any §0 activity in the
  interval (can exceed 1 when the activity events are a narrower set).
- Sessions as in the overview (distinct session ids; events without one split at 30-minute
  gaps), dated by their first event. Time in app = the sum of session lengths; per active user
  it is divided by the units with activity in the interval.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from mcrm.output import Rows
from mcrm.reports.common import Period, Report, ratio
from mcrm.reports.intervals import check_unit
from mcrm.reports.overview import (
    BACKGROUND_EVENTS,
    days_between,
    fetch,
    interval_key,
    interval_of,
    last_day,
    natural_end,
    prepare,
    session_totals_sql,
)
from mcrm.segments.compile import date_lit, lit, local_day, ts_lit

if TYPE_CHECKING:
    import duckdb

    from mcrm.config import Workspace

NOT_FEATURES = (
    *BACKGROUND_EVENTS,
    "session_start",
    "session_end",
    "app_open",
    "app_close",
    "first_open",
    "app_remove",
    "screen_view",
    "push_open",
    "push_dismiss",
    "email_open",
    "email_click",
    "inapp_open",
    "inapp_click",
    "inapp_dismiss",
)
PERCENT = frozenset({"share"})


def build(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    period: Period,
    interval: str = "week",
) -> Report:
    """Tables `usage` (the period: one row per screen and per feature), `sessions` (per
    interval), `screens` and `features` (per interval and name)."""

    check_unit(interval)
    p = period
    last = last_day(p)
    prepare(con, ws, p, [])
    s0, l0 = date_lit(p.start), date_lit(last)
    day = local_day("e.ts", p.zone, p.as_of)
    bg = ", ".join(lit(n) for n in BACKGROUND_EVENTS)
    nf = ", ".join(lit(n) for n in NOT_FEATURES)
    unit = "coalesce(e.user_id, e.anonymous_id)"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE ft_ev AS SELECT {unit} AS unit, {day} AS day, "
        "CASE WHEN e.screen IS NOT NULL AND e.name NOT IN "
        f"({bg}) THEN e.screen END AS screen, CASE WHEN e.name NOT IN ({nf}) THEN e.name END "
        "AS feature FROM events e WHERE (e.user_id IS NOT NULL OR e.anonymous_id IS NOT NULL) "
        f"AND e.ts >= {ts_lit(p.start_ts)} "
        f"AND e.ts <= {ts_lit(p.end_ts)} AND (e.screen IS NOT NULL OR e.name NOT IN ({nf}))"
    )
    k_ud = interval_key("x.day", interval, p.start)
    active = {
        r[0]: int(r[1])
        for r in fetch(
            con,
            f"SELECT {k_ud} AS k, count(DISTINCT x.unit) FROM ov_ud x WHERE x.day >= {s0} "
            f"AND x.day <= {l0} GROUP BY {k_ud}",
        )
    }
    active_all = int(
        fetch(
            con,
            f"SELECT count(DISTINCT x.unit) FROM ov_ud x WHERE x.day >= {s0} AND x.day <= {l0}",
        )[0][0]
    )
    k_ev = interval_key("f.day", interval, p.start)

    def usage(col: str) -> list[tuple[Any, ...]]:
        return fetch(
            con,
            f"SELECT f.{col}, count(DISTINCT f.unit), count(*) FROM ft_ev f "
            f"WHERE f.{col} IS NOT NULL GROUP BY f.{col} ORDER BY 2 DESC, 3 DESC, 1",
        )

    def trend(col: str) -> list[tuple[Any, ...]]:
        return fetch(
            con,
            f"SELECT {k_ev} AS k, f.{col}, count(DISTINCT f.unit), count(*) FROM ft_ev f "
            f"WHERE f.{col} IS NOT NULL GROUP BY {k_ev}, f.{col} ORDER BY 1, 3 DESC, 4 DESC, 2",
        )

    usage_rows: list[tuple[Any, ...]] = []
    for kind, col in (("screen", "screen"), ("feature", "feature")):
        for name, users, events in usage(col):
            usage_rows.append(
                (
                    kind,
                    name,
                    int(users),
                    int(events),
                    ratio(users, active_all),
                    ratio(events, users),
                )
            )

    def trend_rows(col: str) -> list[tuple[Any, ...]]:
        return [
            (k, name, int(u), int(n), ratio(u, active.get(k, 0)), ratio(n, u))
            for k, name, u, n in trend(col)
        ]

    k_s = interval_key("t.day", interval, p.start)
    sess = {
        r[0]: r[1:]
        for r in fetch(
            con,
            f"SELECT {k_s} AS k, count(*), count(DISTINCT t.unit), avg(t.seconds), "
            f"quantile_cont(t.seconds, 0.5), sum(t.seconds) FROM ({session_totals_sql()}) t "
            f"GROUP BY {k_s}",
        )
    }
    buckets: dict[dt.date, int] = {}
    for d in days_between(p.start, last):
        k = interval_of(d, interval, p.start)
        buckets[k] = buckets.get(k, 0) + 1
    session_rows = []
    for k, n_days in buckets.items():
        n, users, mean_s, med_s, sum_s = sess.get(k, (0, 0, None, None, None))
        session_rows.append(
            (
                k,
                n_days,
                natural_end(k, interval) >= p.as_of_day,
                active.get(k, 0),
                int(n),
                int(users),
                None if mean_s is None else float(mean_s),
                None if med_s is None else float(med_s),
                0.0 if sum_s is None else float(sum_s),
                ratio(sum_s or 0.0, active.get(k, 0)),
            )
        )
    screens, feats = trend_rows("screen"), trend_rows("feature")
    for t in ("ft_ev", "ov_ud", "ov_st", "ov_ord", "ov_linked"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    name_cols = ["users", "events", "share", "events_per_user"]
    tables = {
        "usage": Rows(
            ["kind", "name", *name_cols], usage_rows, title="usage", percent_columns=PERCENT
        ),
        "sessions": Rows(
            [
                "date",
                "days",
                "partial",
                "active_users",
                "sessions",
                "session_users",
                "mean_session_s",
                "median_session_s",
                "time_in_app_s",
                "time_in_app_s_per_active_user",
            ],
            session_rows,
            title="sessions",
            percent_columns=PERCENT,
        ),
        "screens": Rows(
            ["date", "screen", *name_cols],
            screens,
            title="screens",
            percent_columns=PERCENT,
        ),
        "features": Rows(
            ["date", "feature", *name_cols],
            feats,
            title="features",
            percent_columns=PERCENT,
        ),
    }
    notes = [
        "features are event names other than lifecycle, background and messaging ones "
        "(docs/reports.md)"
    ]
    if p.partial:
        notes.append(f"{last} is still in progress at the as-of instant (partial)")
    params = {**p.params(), "interval": interval}
    return Report("features", tables, params, notes)
