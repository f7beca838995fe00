"""The fast local-day SQL (offset periods worked out in Python) equals AT TIME ZONE exactly."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

import duckdb
import pytest

from mcrm.segments.compile import _offset_periods, local_day

AS_OF = dt.datetime(2026, 11, 15, 20, 58, 16)
ZONES = ["Europe/Prague", "Asia/Shanghai", "UTC", "America/New_York", "Australia/Lord_Howe"]


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    c.execute("SET TimeZone='UTC'")
    yield c
    c.close()


@pytest.mark.parametrize("zone", ZONES)
def test_fast_local_day_equals_at_time_zone(con: duckdb.DuckDBPyConnection, zone: str) -> None:
    rng = random.Random(zone)
    stamps = [AS_OF - dt.timedelta(seconds=rng.randint(0, 86400 * 365 * 25)) for _ in range(3000)]
    # every transition, a second and a microsecond either side of it
    for start, _off in _offset_periods(zone, AS_OF.replace(minute=0, second=0)):
        if start is not None:
            for d in (-1.0, -0.000001, 0.0, 0.000001, 1.0):
                stamps.append(start + dt.timedelta(seconds=d))
    values = ", ".join(f"(TIMESTAMP '{t.isoformat(sep=' ')}')" for t in stamps)
    con.execute(f"CREATE TEMP TABLE t AS SELECT * FROM (VALUES {values}) v(ts)")
    bad = con.execute(
        f"SELECT ts FROM t WHERE {local_day('ts', zone, AS_OF)} <> {local_day('ts', zone)}"
    ).fetchall()
    assert bad == []


def test_zone_without_changes_is_one_offset() -> None:
    assert _offset_periods("Asia/Shanghai", AS_OF) == ((None, 8 * 3600),)
    assert "CASE" not in local_day("ts", "UTC", AS_OF)
