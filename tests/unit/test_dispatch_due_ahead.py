"""`outbox.due_ahead` (3b9eb94 fetches only the per-row columns and each plan's as-of once)
against the one-query form it replaced, the LEFT JOIN of every due row to its plan: two
campaigns, two channels, rows of two plans and of none, statuses, send times and retry times
due and not, the cursor and the limit."""

from __future__ import annotations

import datetime as dt
import random

import duckdb
import pytest

from mcrm.db import connect, create_schema
from mcrm.dispatch.outbox import _DUE, Claimed, _claimed, due_ahead

NOW = dt.datetime(2026, 3, 2, 9, 0)


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = connect(":memory:")
    create_schema(c)
    rng = random.Random(7)
    c.execute(
        "INSERT INTO campaign_plans (plan_id, campaign, occurrence, as_of, created_at) VALUES "
        "('p1', 'promo', '2026-03-02', TIMESTAMP '2026-03-01 00:00:00', now()), "
        "('p2', 'promo', '2026-03-09', TIMESTAMP '2026-03-08 12:30:00', now()), "
        "('p3', 'news', '2026-03-02', TIMESTAMP '2026-02-28 06:00:00', now())"
    )
    rows = []
    for i in range(1, 301):
        status = rng.choice(["pending", "pending", "retry_wait", "sent", "sending", "failed"])
        near = [None, NOW - dt.timedelta(hours=1), NOW + dt.timedelta(hours=1), NOW]
        rows.append(
            (
                i,
                f"k{i}",
                rng.choice(["p1", "p2", "p3", None]),
                rng.choice(["promo", "promo", "news"]),
                rng.choice(["2026-03-02", "2026-03-09"]),
                f"u{i % 37}",
                rng.choice(["email", "email", "push"]),
                rng.choice(["a", "b", None]),
                rng.choice([None, f"h{i}"]),
                status,
                rng.randrange(4),
                rng.choice(near),
                rng.choice(near) if status == "retry_wait" else None,
            )
        )
    c.executemany(
        "INSERT INTO outbox (id, idempotency_key, plan_id, campaign, occurrence, user_id, "
        "channel, variant, payload_hash, status, attempts, send_at, next_attempt_at, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), now())",
        rows,
    )
    return c


def joined(
    c: duckdb.DuckDBPyConnection, campaign: str, channel: str, lane: str, limit: int, after: int
) -> list[Claimed]:
    rows = c.execute(
        f"""SELECT o.id, o.idempotency_key, o.campaign, o.occurrence, o.user_id, o.channel,
                  o.variant, o.attempts, o.payload_hash, o.batch_key, o.send_at,
                  o.plan_id, p.as_of
           FROM (SELECT * FROM outbox WHERE id > ? AND {_DUE} ORDER BY id LIMIT ?) o
           LEFT JOIN campaign_plans p ON p.plan_id = o.plan_id
           ORDER BY o.id""",
        [after, campaign, channel, NOW, NOW, limit],
    ).fetchall()
    return [_claimed(r, lane) for r in rows]


@pytest.mark.parametrize("campaign", ["promo", "news"])
@pytest.mark.parametrize("channel", ["email", "push"])
def test_due_ahead_is_the_joined_select(
    con: duckdb.DuckDBPyConnection, campaign: str, channel: str
) -> None:
    seen = 0
    for after, limit in [(0, 1000), (0, 7), (40, 25), (150, 1000), (300, 5)]:
        got = due_ahead(con, campaign, channel, NOW, "lane1", limit, after_id=after)
        want = joined(con, campaign, channel, "lane1", limit, after)
        assert got == want
        seen += len(want)
        assert all(isinstance(r.as_of, dt.datetime) or r.plan_id is None for r in want)
    assert seen > 0


def test_a_keyed_batch_due_means_none(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "UPDATE outbox SET batch_key = 'b1', status = 'retry_wait', next_attempt_at = ? "
        "WHERE id = (SELECT min(id) FROM outbox WHERE campaign = 'news' AND channel = 'push')",
        [NOW],
    )
    assert due_ahead(con, "news", "push", NOW, "lane1", 100) is None
    assert due_ahead(con, "promo", "push", NOW, "lane1", 100) is not None
