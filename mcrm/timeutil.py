"""Instants given on the command line: ISO dates or timestamps, naive ones in a zone."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from mcrm.errors import UsageError

DURATION_RE = re.compile(r"^(\d+)\s*([smhdw])$")


def parse_instant(text: str, zone: str, what: str = "timestamp") -> dt.datetime:
    """`2026-11-01`, `2026-11-01T10:00`, `...Z`, `...+01:00` -> naive UTC datetime."""
    t = text.strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    try:
        value = dt.datetime.fromisoformat(t)
    except ValueError:
        raise UsageError(
            f"{what}: cannot read '{text}' as a date or timestamp",
            hint="use ISO 8601, e.g. 2026-11-01 or 2026-11-01T10:00:00+01:00",
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(zone))
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def parse_duration(text: str, what: str = "duration") -> dt.timedelta:
    """`30d`, `12h`, `2w`, `90s`, `15m` -> timedelta."""
    m = DURATION_RE.match(text.strip())
    if not m:
        raise UsageError(f"{what}: cannot read '{text}' as a duration", hint="e.g. 30d, 12h, 2w")
    n, unit = int(m.group(1)), m.group(2)
    return {
        "s": dt.timedelta(seconds=n),
        "m": dt.timedelta(minutes=n),
        "h": dt.timedelta(hours=n),
        "d": dt.timedelta(days=n),
        "w": dt.timedelta(weeks=n),
    }[unit]
