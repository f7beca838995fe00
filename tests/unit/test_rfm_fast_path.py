"""The DuckDB fast path for RFM (`analytics.materialise_rfm`) gives exactly the rows of the
portable `rfm_sql` (analytics reference §1: NTILE(5) with the md5(user_id), user_id
tie-break), on generated purchases full of ties: equal amounts, equal days, one-time buyers,
n below 5 and not a multiple of 5, NULL amounts, ids with quotes and non-ASCII letters.

`rfm_sql` itself is checked against a plain-Python computation in test_segments_rfm.py; here
the fast path is run three ways: as the engine runs it, and with tiny histograms (2 bins, at
most 1 row sorted) so that every narrowing step (by value, then by the md5 key inside one
value) is taken on small data.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mcrm.db import connect
from mcrm.segments.analytics import materialise_rfm, ntile_starts, rfm_sql
from mcrm.segments.compile import Ctx
from mcrm.segments.model import load_segments
from tests.segdata import ntile5

ZONE = "Europe/Prague"
AS_OF = dt.datetime(2026, 3, 29, 22, 30)  # 00:30 local on the 30th, the day after DST starts
WINDOW = 40
IDS = ["u1", "u2", "u10", "a", "o'neil", "žofie", "Z", "u 3", "", "🙂", "u0001", "b'"]
AMOUNTS = [None, Decimal("0"), Decimal("10"), Decimal("10"), Decimal("35.5"), Decimal("99.999")]
STATUSES = ["paid", "paid", "paid", "paid", "refunded"]

Order = tuple[int, int, int, int, int]  # user, days before D, minute of day, amount, status


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Ctx:
    root: Path = tmp_path_factory.mktemp("rfm_fast")
    (root / "segments.yaml").write_text(
        f"rfm: {{ window: {WINDOW}d, scheme: rfm11 }}\nsegments: {{}}\n", encoding="utf-8"
    )
    return Ctx(load_segments(root), AS_OF, ZONE)


def rows_of(con: Any, table: str) -> list[tuple[Any, ...]]:
    return sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)


def both(ctx: Ctx, orders: list[Order], n_ids: int) -> None:
    con = connect(":memory:")
    try:
        con.execute(
            "CREATE TABLE purchases (user_id VARCHAR, ts TIMESTAMP, amount_base DECIMAL(18,3), "
            "status VARCHAR)"
        )
        rows = [
            (
                IDS[u % n_ids],
                AS_OF - dt.timedelta(days=d) + dt.timedelta(minutes=m - 720),
                AMOUNTS[a],
                STATUSES[s],
            )
            for u, d, m, a, s in orders
        ]
        if rows:
            con.executemany("INSERT INTO purchases VALUES (?, ?, ?, ?)", rows)
        con.execute(f"CREATE TEMP TABLE portable AS {rfm_sql(ctx)}")
        materialise_rfm(con, ctx, "fast")
        materialise_rfm(con, ctx, "tiny", bins=2, exact_rows=1)
        want = rows_of(con, "portable")
        assert rows_of(con, "fast") == want
        assert rows_of(con, "tiny") == want
        desc = con.execute("DESCRIBE portable").fetchall()
        assert con.execute("DESCRIBE fast").fetchall() == desc
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        assert "_rfm_base" not in tables
    finally:
        con.close()


orders_st = st.lists(
    st.tuples(
        st.integers(0, len(IDS) - 1),
        st.integers(0, WINDOW + 2),
        st.integers(0, 1439),
        st.integers(0, len(AMOUNTS) - 1),
        st.integers(0, len(STATUSES) - 1),
    ),
    max_size=80,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(orders=orders_st, n_ids=st.integers(1, len(IDS)))
@example(orders=[], n_ids=1)
@example(orders=[(0, 1, 600, 2, 0)], n_ids=1)  # one customer: scores 1/1/1
@example(orders=[(i, 3, 600, 2, 0) for i in range(7)], n_ids=7)  # 7 identical customers
@example(orders=[(i, i % 2, 600, i % 3 + 1, 0) for i in range(12)], n_ids=12)
def test_fast_path_equals_portable_sql(ctx: Ctx, orders: list[Order], n_ids: int) -> None:
    both(ctx, orders, n_ids)


def test_many_customers_one_value(ctx: Ctx) -> None:
    """2,003 customers with identical measures: every score is decided by md5 alone."""
    con = connect(":memory:")
    try:
        con.execute(
            "CREATE TABLE purchases AS SELECT 'c' || i AS user_id, "
            f"TIMESTAMP '{AS_OF - dt.timedelta(days=2)}' AS ts, "
            "CAST(5 AS DECIMAL(18,3)) AS amount_base, 'paid' AS status FROM range(2003) t(i)"
        )
        con.execute(f"CREATE TEMP TABLE portable AS {rfm_sql(ctx)}")
        materialise_rfm(con, ctx, "fast", bins=16, exact_rows=8)
        assert rows_of(con, "fast") == rows_of(con, "portable")
        sizes = con.execute("SELECT r, count(*) FROM fast GROUP BY r ORDER BY r").fetchall()
        assert sizes == [(1, 401), (2, 401), (3, 401), (4, 400), (5, 400)]
    finally:
        con.close()


@pytest.mark.parametrize("n", range(0, 23))
def test_ntile_starts(n: int) -> None:
    ids = [f"x{i:02d}" for i in range(n)]
    buckets = ntile5(ids)
    want = [next((i for i, x in enumerate(ids) if buckets[x] > b), n) for b in range(1, 5)]
    assert [min(p, n) for p in ntile_starts(n)] == want
