"""The CLV summary SQL against a plain-Python computation of analytics reference §2.

Generated orders (seeded) in a workspace zone far from UTC, many near local midnight, with
several orders on one local day, refunded and cancelled orders, orders after the as-of instant,
orders without a user, and a first purchase on the as-of date itself.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mcrm.predict.run import summarise
from mcrm.predict.summary import end_date

ZONE = "America/Los_Angeles"
AS_OF = dt.datetime(2026, 11, 15, 7, 30)  # naive UTC: 2026-11-14 23:30 in Los Angeles


def orders(seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    start = dt.datetime(2025, 1, 1)
    for u in range(400):
        uid = f"u{u:03d}"
        for _ in range(rng.choice([1, 1, 1, 2, 3, 5, 9])):
            day = start + dt.timedelta(days=rng.randrange(0, 700))
            # hours around 07:00-08:00 UTC straddle midnight in Los Angeles
            ts = day + dt.timedelta(hours=rng.choice([7, 7, 8, 12, 23]), minutes=rng.randrange(60))
            status = rng.choices(["paid", "refunded", "cancelled"], [8, 1, 1])[0]
            amount = Decimal(rng.randrange(0, 50000)) / 100
            out.append({"user_id": uid, "ts": ts, "amount": amount, "status": status})
            if rng.random() < 0.2:  # a second order the same local day
                out.append(
                    {
                        "user_id": uid,
                        "ts": ts + dt.timedelta(minutes=5),
                        "amount": amount / 2,
                        "status": "paid",
                    }
                )
    out.append(
        {
            "user_id": None,
            "ts": dt.datetime(2026, 1, 5, 12),
            "amount": Decimal(9),
            "status": "paid",
        }
    )
    out.append(
        {
            "user_id": "today",
            "ts": AS_OF - dt.timedelta(minutes=1),
            "amount": Decimal(5),
            "status": "paid",
        }
    )
    out.append(
        {
            "user_id": "today",
            "ts": AS_OF + dt.timedelta(minutes=1),
            "amount": Decimal(5),
            "status": "paid",
        }
    )
    return out


def expected(rows: list[dict[str, Any]]) -> dict[str, tuple[int, int, int, float]]:
    z = ZoneInfo(ZONE)
    e = AS_OF.replace(tzinfo=dt.UTC).astimezone(z).date()
    days: dict[str, dict[dt.date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for r in rows:
        if r["status"] != "paid" or r["user_id"] is None or r["ts"] > AS_OF:
            continue
        d = r["ts"].replace(tzinfo=dt.UTC).astimezone(z).date()
        days[r["user_id"]][d] += r["amount"]
    out = {}
    for uid, per_day in days.items():
        ordered = sorted(per_day)
        first, last = ordered[0], ordered[-1]
        x = len(ordered) - 1
        mean = float(sum(per_day[d] for d in ordered[1:]) / x) if x else 0.0
        out[uid] = (x, (last - first).days, (e - first).days, mean)
    return out


@pytest.fixture
def data() -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    import pyarrow as pa

    from mcrm.db import connect, create_schema

    rows = orders()
    con = connect(":memory:")
    try:
        create_schema(con)
        t = pa.table(
            {
                "order_id": [f"o{i}" for i in range(len(rows))],
                "user_id": pa.array([r["user_id"] for r in rows], pa.string()),
                "ts": [r["ts"] for r in rows],
                "amount": pa.array([r["amount"] for r in rows], pa.decimal128(18, 3)),
                "status": [r["status"] for r in rows],
            }
        )
        con.register("gen", t)
        con.execute(
            "INSERT INTO purchases (order_id, user_id, ts, amount, currency, amount_base, status) "
            "SELECT order_id, user_id, ts, amount, 'EUR', amount, status FROM gen"
        )
        yield summarise(con, AS_OF, ZONE), rows
    finally:
        con.close()


def test_summary_matches_plain_python(data: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    got, rows = data
    want = expected(rows)
    assert list(got["user_id"]) == sorted(want)
    for i, uid in enumerate(got["user_id"]):
        x, tx, T, z = want[uid]
        assert int(got["frequency"][i]) == x, uid
        assert int(got["recency"][i]) == tx, uid
        assert int(got["T"][i]) == T, uid
        assert got["monetary_value"][i] == pytest.approx(z, abs=1e-9), uid
    # the data do exercise the edge cases
    assert any(v[0] == 0 for v in want.values()) and any(v[0] >= 3 for v in want.values())
    assert want["today"] == (0, 0, 0, 0.0)


def test_end_date_is_the_local_date() -> None:
    assert end_date(AS_OF, ZONE) == dt.date(2026, 11, 14)
    assert end_date(AS_OF, "UTC") == dt.date(2026, 11, 15)


def test_order_without_base_amount_is_an_error_naming_the_currency() -> None:
    from mcrm.db import connect, create_schema
    from mcrm.errors import DataError

    con = connect(":memory:")
    try:
        create_schema(con)
        con.execute(
            "INSERT INTO purchases (order_id, user_id, ts, amount, currency, amount_base, status) "
            "VALUES ('o1', 'u1', TIMESTAMP '2026-01-02 10:00', 10, 'CZK', NULL, 'paid')"
        )
        with pytest.raises(DataError, match=r"in CZK have no amount in the base currency"):
            summarise(con, AS_OF, ZONE)
    finally:
        con.close()
