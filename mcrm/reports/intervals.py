"""Calendar intervals (day, ISO week, month) in the workspace zone, in Python and in SQL.

Lifecycle per period (analytics.md §7) and cohort retention (§8) count calendar intervals, not
24-hour windows (§0 "Calendar units"). An interval is named by its first day: a Monday for a
week, the 1st for a month. The SQL side truncates a local DATE with `date_trunc` and casts back
to DATE (DuckDB's `date_trunc` returns a TIMESTAMP), so the same day gives the same interval
in both.
"""

from __future__ import annotations

import datetime as dt

from mcrm.errors import UsageError, did_you_mean

UNITS = ("day", "week", "month")


def check_unit(unit: str, what: str = "--interval", allowed: tuple[str, ...] = UNITS) -> str:
    if unit not in allowed:
        raise UsageError(
            f"{what} {unit}: expected one of {', '.join(allowed)}",
            hint=did_you_mean(unit, list(allowed)),
        )
    return unit


def start_of(day: dt.date, unit: str) -> dt.date:
    """The first day of the interval holding `day`."""
    if unit == "day":
        return day
    if unit == "week":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1)


def shift(p: dt.date, unit: str, n: int) -> dt.date:
    """The interval `n` intervals after the one starting on `p` (n may be negative)."""
    if unit == "day":
        return p + dt.timedelta(days=n)
    if unit == "week":
        return p + dt.timedelta(weeks=n)
    months = p.year * 12 + (p.month - 1) + n
    return dt.date(months // 12, months % 12 + 1, 1)


def end_of(p: dt.date, unit: str) -> dt.date:
    """The last day of the interval starting on `p`."""
    return shift(p, unit, 1) - dt.timedelta(days=1)


def offset(c: dt.date, p: dt.date, unit: str) -> int:
    """How many intervals `p` lies after `c` (both interval starts)."""
    if unit == "day":
        return (p - c).days
    if unit == "week":
        return (p - c).days // 7
    return (p.year - c.year) * 12 + (p.month - c.month)


def label(p: dt.date, unit: str) -> str:
    """`2026-11-15`, `2026-W46` (ISO week) or `2026-11`."""
    if unit == "day":
        return p.isoformat()
    if unit == "week":
        y, w, _ = p.isocalendar()
        return f"{y}-W{w:02d}"
    return f"{p.year}-{p.month:02d}"


def between(first: dt.date, last: dt.date, unit: str) -> list[dt.date]:
    """The starts of every interval that holds a day of [first, last]."""
    out = []
    p = start_of(first, unit)
    while p <= last:
        out.append(p)
        p = shift(p, unit, 1)
    return out


def trunc_sql(day: str, unit: str) -> str:
    """SQL: the interval start (DATE) of the local DATE expression `day`."""
    if unit == "day":
        return day
    return f"CAST(date_trunc('{unit}', {day}) AS DATE)"


def shift_sql(p: str, unit: str, n: int) -> str:
    """SQL: the interval start `n` intervals after the DATE `p` (an interval start)."""
    if n == 0:
        return p
    sign = "+" if n > 0 else "-"
    k = abs(n)
    if unit == "day":
        return f"CAST({p} {sign} INTERVAL {k} DAY AS DATE)"
    if unit == "week":
        return f"CAST({p} {sign} INTERVAL {7 * k} DAY AS DATE)"
    return f"CAST({p} {sign} INTERVAL {k} MONTH AS DATE)"
