"""Campaign coupons: pool files, derived codes, sticky assignment, redemptions (SPEC §5.1)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from mcrm.campaigns.coupons import (
    COUPON_DDL,
    AssignResult,
    CouponSpec,
    assign,
    codes_for,
    derived_code,
    foreign_redemption_count,
    foreign_redemptions,
    load_pool,
    parse_spec,
    redemptions,
)
from mcrm.db import connect, create_schema
from mcrm.errors import ConfigError, DataError

NOW = dt.datetime(2026, 11, 15, 10, 0)
SECRET = b"test-secret-0123456789"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = connect(str(tmp_path / "cpn.duckdb"))
    create_schema(c)
    try:
        yield c
    finally:
        c.close()


def audience(con: duckdb.DuckDBPyConnection, users: Sequence[str], name: str = "aud") -> str:
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} (user_id VARCHAR)")
    with con.appender(name) as app:
        app.append_rows([(u,) for u in users])
    return name


def rows(con: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    con.execute(COUPON_DDL)
    return list(
        con.execute(
            "SELECT campaign, user_id, code, source, plan_id FROM coupon_assignments "
            "ORDER BY campaign, user_id"
        ).fetchall()
    )


# ---------------------------------------------------------------------------------------------
# derived codes


def reference_code(prefix: str, campaign: str, user: str, secret: bytes) -> str:
    digest = hmac.new(secret, f"{campaign}|{user}".encode(), hashlib.sha256).digest()
    top50 = int.from_bytes(digest, "big") >> (256 - 50)
    chars = "".join(CROCKFORD[(top50 >> (5 * (9 - i))) & 31] for i in range(10))
    return f"{prefix}-{chars}"


def test_derived_code_shape_and_determinism() -> None:
    code = derived_code("BACK15", "winback", "u1", SECRET)
    assert re.fullmatch(r"BACK15-[0-9A-HJKMNP-TV-Z]{10}", code)
    assert code == derived_code("BACK15", "winback", "u1", SECRET)
    assert code == reference_code("BACK15", "winback", "u1", SECRET)
    assert code != derived_code("BACK15", "winback", "u2", SECRET)
    assert code != derived_code("BACK15", "other", "u1", SECRET)
    assert code != derived_code("BACK15", "winback", "u1", b"another secret")
    with pytest.raises(ValueError):
        derived_code("BACK15", "winback", "u1", b"")


def test_derived_codes_unique_across_10k_users(con: duckdb.DuckDBPyConnection) -> None:
    users = [f"user_{i:05d}" for i in range(10_000)]
    res = assign(con, "winback", "BACK15", None, audience(con, users), "plan1", NOW, SECRET)
    assert res == AssignResult(assigned=10_000, kept=0, pool_left=None)
    codes = codes_for(con, "winback", "aud")
    assert set(codes) == set(users)
    assert len({c.upper() for c in codes.values()}) == 10_000
    for u in users[:50]:
        assert codes[u] == reference_code("BACK15", "winback", u, SECRET)
    sources = con.execute("SELECT DISTINCT source, plan_id FROM coupon_assignments").fetchall()
    assert sources == [("derived", "plan1")]


def test_derived_collision_is_resolved(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(COUPON_DDL)
    taken = derived_code("BACK15", "winback", "u1", SECRET)
    con.execute(
        "INSERT INTO coupon_assignments VALUES ('older', 'x', lower(?), 'pool', NULL, ?)",
        [taken, NOW],
    )
    assign(con, "winback", "BACK15", None, audience(con, ["u1", "u2"]), None, NOW, SECRET)
    codes = codes_for(con, "winback", "aud")
    assert codes["u1"] == derived_code("BACK15", "winback", "u1", SECRET, salt=1)
    assert codes["u2"] == derived_code("BACK15", "winback", "u2", SECRET)


def test_derived_replan_keeps_codes(con: duckdb.DuckDBPyConnection) -> None:
    assign(con, "c", "P", None, audience(con, ["a", "b"]), "p1", NOW, SECRET)
    first = codes_for(con, "c", "aud")
    res = assign(con, "c", "P", None, audience(con, ["a", "b", "c"]), "p2", NOW, b"rotated")
    assert res == AssignResult(assigned=1, kept=2, pool_left=None)
    second = codes_for(con, "c", "aud")
    assert {k: second[k] for k in first} == first
    assert second["c"] == derived_code("P", "c", "c", b"rotated")
    assert len(rows(con)) == 3


# ---------------------------------------------------------------------------------------------
# pools


def test_pool_codes_in_file_order_to_users_in_id_order(con: duckdb.DuckDBPyConnection) -> None:
    pool = ["P-4", "P-1", "P-3", "P-2"]
    res = assign(con, "c", "P", pool, audience(con, ["u3", "u1", "u2", "u1"]), "p1", NOW, SECRET)
    assert res == AssignResult(assigned=3, kept=0, pool_left=1)
    assert codes_for(con, "c", "aud") == {"u1": "P-4", "u2": "P-1", "u3": "P-3"}
    assert {r[3] for r in rows(con)} == {"pool"}


def test_pool_replan_keeps_codes_and_never_reuses(con: duckdb.DuckDBPyConnection) -> None:
    pool = ["P-1", "P-2", "P-3", "P-4"]
    assign(con, "c", "P", pool, audience(con, ["u2", "u3"]), "p1", NOW, SECRET)
    res = assign(con, "c", "P", pool, audience(con, ["u1", "u2", "u3"]), "p2", NOW, SECRET)
    assert res == AssignResult(assigned=1, kept=2, pool_left=1)
    assert codes_for(con, "c", "aud") == {"u1": "P-3", "u2": "P-1", "u3": "P-2"}
    # same again: nothing new
    again = assign(con, "c", "P", pool, "aud", "p3", NOW, SECRET)
    assert again == AssignResult(assigned=0, kept=3, pool_left=1)
    assert len(rows(con)) == 3


def test_pool_shared_by_two_campaigns_hands_each_code_once(
    con: duckdb.DuckDBPyConnection,
) -> None:
    pool = ["P-1", "P-2", "P-3"]
    assign(con, "a", "P", pool, audience(con, ["u1", "u2"]), None, NOW, SECRET)
    res = assign(
        con, "b", "P", [c.lower() for c in pool], audience(con, ["u1"]), None, NOW, SECRET
    )
    assert res.pool_left == 0
    assert codes_for(con, "b", "aud") == {"u1": "p-3"}


def test_exhausted_pool_writes_nothing(con: duckdb.DuckDBPyConnection) -> None:
    assign(con, "c", "P", ["P-1", "P-2"], audience(con, ["u1"]), None, NOW, SECRET)
    before = rows(con)
    with pytest.raises(DataError) as err:
        assign(con, "c", "P", ["P-1", "P-2"], audience(con, ["u1", "u2", "u3"]), None, NOW, SECRET)
    assert "1 free code(s) left, 2 needed" in err.value.message
    assert rows(con) == before
    tables = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '_cpn%'"
    ).fetchall()
    assert tables == []


# ---------------------------------------------------------------------------------------------
# pool files


def pool_file(tmp_path: Path, content: str | bytes, name: str = "pool.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return p


def test_load_pool_bom_crlf_extra_columns_blank_lines(tmp_path: Path) -> None:
    p = pool_file(
        tmp_path, "\ufeffbatch,Code \r\n1, BACK15-A \r\n\r\n2,BACK15-B\r\n1,back15-c\r\n"
    )
    assert load_pool(p, "data/pool.csv", prefix="BACK15") == ["BACK15-A", "BACK15-B", "back15-c"]


def test_load_pool_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_pool(tmp_path / "nope.csv", "data/nope.csv")
    assert err.value.render() == "coupon pool file not found: data/nope.csv (data/nope.csv)"


def test_load_pool_no_code_column(tmp_path: Path) -> None:
    p = pool_file(tmp_path, "id,coupon\n1,X\n")
    with pytest.raises(DataError) as err:
        load_pool(p, "pool.csv")
    assert err.value.render() == "coupon pool has no `code` column; found: id, coupon (pool.csv:1)"


def test_load_pool_empty_code_names_the_line(tmp_path: Path) -> None:
    p = pool_file(tmp_path, "code,n\nA,1\n\n ,2\n")
    with pytest.raises(DataError) as err:
        load_pool(p, "pool.csv")
    assert err.value.render() == "empty coupon code (pool.csv:4)"


def test_load_pool_duplicate_names_both_lines(tmp_path: Path) -> None:
    p = pool_file(tmp_path, 'code\nA\n"multi\nline"\nB\na \n')
    with pytest.raises(DataError) as err:
        load_pool(p, "pool.csv")
    assert err.value.render() == "duplicate coupon code 'a' (first on line 2) (pool.csv:6)"


def test_load_pool_wrong_prefix_is_an_error(tmp_path: Path) -> None:
    p = pool_file(tmp_path, "code\nBACK15-1\nSPRING-2\n")
    assert load_pool(p, "pool.csv") == ["BACK15-1", "SPRING-2"]
    with pytest.raises(DataError) as err:
        load_pool(p, "pool.csv", prefix="back15")
    assert err.value.where is not None and err.value.where.line == 3
    assert "'SPRING-2' does not start with the campaign prefix 'back15'" in err.value.message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "coupon pool file is empty (no header)"),
        ("code\r\n\r\n", "coupon pool has no codes"),
        (b"code\n\xff\xfe\n", "coupon pool file is not UTF-8 text"),
    ],
)
def test_load_pool_empty_or_undecodable(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    with pytest.raises(DataError) as err:
        load_pool(pool_file(tmp_path, content), "pool.csv")
    assert err.value.message == message


def test_parse_spec() -> None:
    assert parse_spec({"prefix": "BACK15"}) == CouponSpec("BACK15", None)
    assert parse_spec({"prefix": "BACK15", "pool": "data/c.csv"}) == CouponSpec(
        "BACK15", "data/c.csv"
    )
    with pytest.raises(ConfigError, match="prefix is required"):
        parse_spec({"pool": "x.csv"})
    with pytest.raises(ConfigError) as err:
        parse_spec({"prefix": "B", "pol": "x.csv"})
    assert err.value.hint == "did you mean 'pool'?"
    with pytest.raises(ConfigError, match="only letters"):
        parse_spec({"prefix": "BACK 15"})
    with pytest.raises(ConfigError, match="file path"):
        parse_spec({"prefix": "B", "pool": 12})
    with pytest.raises(ConfigError, match="mapping"):
        parse_spec("BACK15")


# ---------------------------------------------------------------------------------------------
# redemptions


def purchase(
    con: duckdb.DuckDBPyConnection,
    order_id: str,
    user: str | None,
    code: str | None,
    ts: dt.datetime,
    status: str = "paid",
    amount: str = "20.000",
) -> None:
    con.execute(
        "INSERT INTO purchases (order_id, user_id, ts, amount, currency, amount_base, status, "
        "coupon_code) VALUES (?, ?, ?, ?, 'EUR', ?, ?, ?)",
        [order_id, user, ts, Decimal(amount), Decimal(amount), status, code],
    )


def test_redemptions_match_case_and_whitespace(con: duckdb.DuckDBPyConnection) -> None:
    assign(con, "c", "P", ["P-AA", "P-BB", "P-CC"], audience(con, ["u1", "u2", "u3"]), None, NOW,
           SECRET)  # fmt: skip
    later = NOW + dt.timedelta(days=1)
    purchase(con, "o1", "u1", "  p-aa ", later, amount="10.500")
    purchase(con, "o2", "u1", "P-AA", later + dt.timedelta(hours=1))  # used twice by its owner
    purchase(con, "o3", "u2", "P-BB", NOW - dt.timedelta(days=1))  # before it was assigned
    purchase(con, "o4", "u2", "P-BB", later, status="cancelled")
    purchase(con, "o5", "u3", "P-CC", later + dt.timedelta(days=30))  # after as_of
    purchase(con, "o6", "u2", "p-cc", later)  # u3's code used by u2: foreign
    purchase(con, "o7", None, "P-AA", later)  # guest order: foreign
    purchase(con, "o8", "u1", "WELCOME10", later)  # not a campaign code
    as_of = NOW + dt.timedelta(days=10)
    own = redemptions(con, "c", as_of=as_of)
    assert [(r.assignee, r.user_id, r.code, r.order_id, r.amount_base) for r in own] == [
        ("u1", "u1", "P-AA", "o1", Decimal("10.500")),
        ("u1", "u1", "P-AA", "o2", Decimal("20.000")),
    ]
    assert own[0].ts == later
    foreign = foreign_redemptions(con, "c", as_of=as_of)
    assert sorted((r.assignee, r.user_id, r.order_id) for r in foreign) == [
        ("u1", None, "o7"),
        ("u3", "u2", "o6"),
    ]
    assert foreign_redemption_count(con, "c", as_of=as_of) == 2
    assert {r.order_id for r in redemptions(con, "c")} == {"o1", "o2", "o5"}
    assert {r.order_id for r in redemptions(con, "c", statuses=("paid", "cancelled"))} == {
        "o1",
        "o2",
        "o4",
        "o5",
    }
    assert redemptions(con, "other") == []


def test_redemptions_count_from_the_planned_send_not_the_planning_clock(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """A backfill: plans made today (assigned_at = NOW) for a past as-of. An order counts from
    the user's planned send time in the assigning plan; without a plan row for the user, from
    the plan's as-of; without a stored plan, from assigned_at."""
    as_of = dt.datetime(2026, 3, 1, 12, 0)
    send = dt.datetime(2026, 3, 2, 9, 0)  # the plan's slot for b1 and b2
    con.execute(
        "INSERT INTO campaign_plans (plan_id, campaign, occurrence, as_of, created_at) VALUES "
        "('p1', 'c', '2026-03-02T09:00:00Z', ?, ?)",
        [as_of, NOW],
    )
    con.execute(
        "INSERT INTO plan_rows (plan_id, user_id, status, send_at) VALUES "
        "('p1', 'b1', 'planned', ?), ('p1', 'b2', 'planned', ?)",
        [send, send + dt.timedelta(hours=5)],  # b2: a later send time (its own zone, habit)
    )
    assign(con, "c", "P", ["P-B1", "P-B2", "P-B3"], audience(con, ["b1", "b2", "b3"]), "p1",
           NOW, SECRET)  # fmt: skip
    assign(con, "c", "P", ["P-N1"], audience(con, ["n1"], "aud2"), None, NOW, SECRET)
    purchase(con, "o1", "b1", "P-B1", send + dt.timedelta(days=1))  # after the send
    purchase(con, "o2", "b1", "P-B1", send - dt.timedelta(minutes=1))  # before it: no code yet
    purchase(con, "o3", "b2", "P-B2", send + dt.timedelta(hours=1))  # before b2's own send
    purchase(con, "o4", "b2", "P-B2", send + dt.timedelta(hours=5))  # at it
    purchase(con, "o5", "b3", "P-B3", as_of + dt.timedelta(hours=1))  # no row: from as-of
    purchase(con, "o6", "b3", "P-B3", as_of - dt.timedelta(hours=1))
    purchase(con, "o7", "n1", "P-N1", send)  # no stored plan: before assigned_at
    purchase(con, "o8", "n1", "P-N1", NOW + dt.timedelta(hours=1))
    purchase(con, "o9", None, "P-B1", send + dt.timedelta(hours=2))  # foreign, after the send
    purchase(con, "o10", "x", "P-B1", send - dt.timedelta(hours=2))  # foreign, before it
    assert NOW > send + dt.timedelta(days=1)  # the old rule (ts >= assigned_at) finds none
    got = redemptions(con, "c", as_of=NOW + dt.timedelta(days=1))
    assert [r.order_id for r in got] == ["o1", "o4", "o5", "o8"]
    assert [r.order_id for r in foreign_redemptions(con, "c")] == ["o9"]


def test_codes_for_only_the_given_users(con: duckdb.DuckDBPyConnection) -> None:
    assign(con, "c", "P", None, audience(con, ["u1", "u2"]), None, NOW, SECRET)
    assert list(codes_for(con, "c", audience(con, ["u2", "u9"], "sub"))) == ["u2"]
    with pytest.raises(ValueError):
        codes_for(con, "c", "aud; DROP TABLE users")
