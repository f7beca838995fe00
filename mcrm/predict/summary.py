"""The CLV summary (BTYD inputs, analytics reference §2) as one DuckDB query.

Per customer, from paid orders up to the as-of instant D, each truncated to its calendar day in
the workspace zone (`compile.local_day`, the same day arithmetic as RFM and lifecycle), with a
customer's orders of one day merged into one purchase (amounts summed, base currency):

- `frequency` x = purchase days − 1 (repeat purchase days);
- `recency` t_x = last purchase day − first purchase day, in days (0 for one-time buyers);
- `T` = E − first purchase day, in days, where E is D's date (inclusive: a first purchase on E
  gives T = 0);
- `monetary_value` z̄ = the mean of the repeat days' amounts (the first day excluded), from the
  raw DECIMAL amounts (not rounded), 0 when x = 0.

Single pass, no window function; equal to `lifetimes.utils.summary_data_from_transaction_data`
up to float rounding of the mean.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from mcrm.segments.compile import date_lit, local_day, ts_lit


def end_date(as_of: dt.datetime, zone: str) -> dt.date:
    """E: the as-of instant's calendar date in the workspace zone."""
    return as_of.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone)).date()


def summary_sql(as_of: dt.datetime, zone: str, source: str = "purchases") -> str:
    """One row per customer: user_id, frequency, recency, T, monetary_value (days)."""
    e = date_lit(end_date(as_of, zone))
    orders = (
        f"SELECT p.user_id, {local_day('p.ts', zone, as_of)} AS d, p.amount_base AS v "
        f"FROM {source} p WHERE p.status = 'paid' AND p.user_id IS NOT NULL "
        f"AND p.ts <= {ts_lit(as_of)}"
    )
    daily = f"SELECT o.user_id, o.d, sum(o.v) AS v FROM ({orders}) o GROUP BY o.user_id, o.d"
    return (
        "SELECT y.user_id, CAST(count(*) - 1 AS INTEGER) AS frequency, "
        "CAST(date_diff('day', min(y.d), max(y.d)) AS INTEGER) AS recency, "
        f"CAST(date_diff('day', min(y.d), {e}) AS INTEGER) AS \"T\", "
        "CASE WHEN count(*) > 1 THEN CAST(sum(y.v) - min_by(y.v, y.d) AS DOUBLE) "
        "/ (count(*) - 1) ELSE 0.0 END AS monetary_value "
        f"FROM ({daily}) y GROUP BY y.user_id"
    )


def unconverted_sql(as_of: dt.datetime, source: str = "purchases") -> str:
    """Paid orders up to D without a base-currency amount: (currency, first UTC day, count)."""
    return (
        "SELECT p.currency, CAST(min(p.ts) AS DATE), count(*) FROM "
        f"{source} p WHERE p.status = 'paid' AND p.user_id IS NOT NULL "
        f"AND p.ts <= {ts_lit(as_of)} AND p.amount_base IS NULL "
        "GROUP BY p.currency ORDER BY p.currency"
    )
