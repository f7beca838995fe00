"""`reachable: email | sms` and the invalid-address registry (docs/segments.md).

A user whose address is registered invalid (a hard bounce, a dead number: table
`invalid_addresses`, keyed by the lowercase hex sha256 of `<channel>:<normalised address>`) at or
before the as-of instant is not reachable on that channel, as the planner treats it. Checked
against a plain-Python model of the rule, against the planner (`plan.build` on a campaign over
the same users: planned exactly when reachable), and, on ClickHouse (chDB, marker `chdb`),
against the SQL `segments sql --dialect clickhouse` prints, whose sha256 must stay hex.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcrm.campaigns.engine import load
from mcrm.campaigns.plan import build
from mcrm.db import connect, open_db
from mcrm.segments.engine import segment_sql
from tests.segdata import SegWS

D = dt.datetime(2026, 11, 15, 20, 0)
DAY = dt.timedelta(days=1)

# (user, email, phone, [(channel, registered address, invalid_at)])
PEOPLE: list[tuple[str, str | None, str | None, list[tuple[str, str, dt.datetime]]]] = [
    ("e_ok", "ok@example.com", None, []),
    # registered under the normalised address (trimmed, lowercase): the stored one differs
    ("e_bounced", "Bounce@Example.com", None, [("email", "bounce@example.com", D - DAY)]),
    ("e_bounced_at_d", "atd@example.com", None, [("email", "atd@example.com", D)]),
    ("e_bounced_later", "later@example.com", None, [("email", "later@example.com", D + DAY)]),
    # the same text registered for another channel does not count
    ("e_other_channel", "oc@example.com", None, [("sms", "oc@example.com", D - DAY)]),
    ("e_other_address", "mine@example.com", None, [("email", "theirs@example.com", D - DAY)]),
    ("s_ok", None, "+420601123456", []),
    ("s_dead", "dead@example.com", "+420601123457", [("sms", "+420601123457", D - DAY)]),
    ("s_dead_later", None, "+420601123458", [("sms", "+420601123458", D + DAY)]),
    ("both_dead", "b@example.com", "+420601123459",
     [("email", "b@example.com", D - 3 * DAY), ("sms", "+420601123459", D - 3 * DAY)]),
]  # fmt: skip


def key(channel: str, address: str) -> str:
    a = address.strip().lower() if channel == "email" else address.strip()
    return hashlib.sha256(f"{channel}:{a}".encode()).hexdigest()


def expected(channel: str, as_of: dt.datetime) -> set[str]:
    """Everyone has a marketing consent for both channels: reachable = an address that is
    not registered invalid for the channel at or before as-of."""
    out = set()
    for uid, email, phone, bad in PEOPLE:
        addr = email if channel == "email" else phone
        if addr is None:
            continue
        dead = {key(ch, a) for ch, a, t in bad if ch == channel and t <= as_of}
        if key(channel, addr) not in dead:
            out.add(uid)
    return out


@pytest.fixture(scope="module")
def seg(tmp_path_factory: pytest.TempPathFactory) -> SegWS:
    w = SegWS(tmp_path_factory.mktemp("reachable"))
    w.load(
        "users",
        [
            {"user_id": u, "email": e, "phone": p, "first_seen": D - 90 * DAY}
            for u, e, p, _ in PEOPLE
        ],
    )
    w.load(
        "consents",
        [
            {
                "user_id": u,
                "channel": ch,
                "purpose": "marketing",
                "granted": True,
                "timestamp": D - 30 * DAY,
                "source": "test",
            }
            for u, _, _, _ in PEOPLE
            for ch in ("email", "sms")
        ],
    )
    con = connect(str(w.ws.db_path))
    try:  # the registry is written by `send` and provider receipts, not by import
        con.executemany(
            "INSERT INTO invalid_addresses (address_hash, channel, reason, invalid_at) "
            "VALUES (?, ?, 'hard_bounce', ?)",
            [[key(ch, a), ch, t] for _, _, _, bad in PEOPLE for ch, a, t in bad],
        )
    finally:
        con.close()
    w.write_segments(
        {
            "segments": {
                "everyone": {"where": {"attr": "user_id", "exists": True}},
                "reach_email": {"where": {"reachable": "email"}},
                "reach_sms": {"where": {"reachable": "sms"}},
            }
        }
    )
    return w


@pytest.mark.parametrize("as_of", [D, D + 2 * DAY], ids=["at_d", "two_days_later"])
@pytest.mark.parametrize("channel", ["email", "sms"])
def test_reachable_skips_registered_invalid_addresses(
    seg: SegWS, channel: str, as_of: dt.datetime
) -> None:
    _, got = seg.compute_members([f"reach_{channel}"], as_of)
    want = expected(channel, as_of)
    assert got[f"reach_{channel}"] == want
    # the data has both outcomes and the registry changes some of them
    with_address = {u for u, e, p, _ in PEOPLE if (e if channel == "email" else p)}
    assert want and want != with_address


@pytest.mark.parametrize("as_of", [D, D + 2 * DAY], ids=["at_d", "two_days_later"])
@pytest.mark.parametrize("channel", ["email", "sms"])
def test_reachable_agrees_with_the_planner(seg: SegWS, channel: str, as_of: dt.datetime) -> None:
    """A campaign on the channel, with nothing but reachability to stop it, plans exactly
    the users the segment says are reachable."""
    root: Path = seg.root
    (root / "mcrm.yaml").write_text(
        yaml.safe_dump(
            {
                "timezone": "UTC",
                "delivery": {
                    "global_control": 0,
                    "unsubscribe": {"url": "https://u.example.com/u/{token}"},
                },
            }
        ),
        encoding="utf-8",
    )
    templates = {"email": {"subject": "t.j2", "text": "t.j2"}, "sms": {"body": "t.j2"}}
    (root / "campaigns").mkdir(exist_ok=True)
    (root / "campaigns" / "t.j2").write_text("Hi", encoding="utf-8")
    (root / "campaigns" / "c.yaml").write_text(
        yaml.safe_dump(
            {
                "segment": "everyone",
                "channels": [channel],
                "purpose": "marketing",
                "templates": {channel: templates[channel]},
            }
        ),
        encoding="utf-8",
    )
    c, delivery = load(seg.ws, "c")
    with open_db(seg.ws) as con:
        res = build(con, seg.ws, c, delivery, as_of)
        rows = con.execute(f"SELECT user_id, status, reason FROM {res.rows_table}").fetchall()
    planned = {u for u, st, _ in rows if st == "planned"}
    assert planned == expected(channel, as_of)
    assert {r for _, st, r in rows if st != "planned"} == {"no_address"}
    _, got = seg.compute_members([f"reach_{channel}"], as_of)
    assert got[f"reach_{channel}"] == planned


@pytest.mark.chdb
@pytest.mark.parametrize("channel", ["email", "sms"])
def test_clickhouse_sql_matches_the_hex_keys(seg: SegWS, channel: str) -> None:
    """The printed ClickHouse SQL, run in chDB on the same rows, finds the same members: its
    sha256 is turned into lowercase hex like the registry's keys."""
    chdb_session = pytest.importorskip("chdb.session", reason="needs chDB: pip install chdb")
    ch = chdb_session.Session()
    try:
        ch.query("SET session_timezone = 'UTC'")
        tables: dict[str, tuple[str, list[tuple[Any, ...]]]] = {
            "users": (
                "user_id String, email Nullable(String), phone Nullable(String), "
                "first_seen Nullable(DateTime64(6))",
                seg.query("SELECT user_id, email, phone, first_seen FROM users"),
            ),
            "consents": (
                "user_id String, channel String, purpose String, granted Bool, "
                "ts DateTime64(6), source Nullable(String)",
                seg.query("SELECT user_id, channel, purpose, granted, ts, source FROM consents"),
            ),
            "invalid_addresses": (
                "address_hash String, channel String, invalid_at DateTime64(6)",
                seg.query("SELECT address_hash, channel, invalid_at FROM invalid_addresses"),
            ),
        }
        for name, (cols, rows) in tables.items():
            ch.query(f"CREATE TABLE {name} ({cols}) ENGINE = Memory")
            ch.query(f"INSERT INTO {name} VALUES {values(rows)}")
        sql = segment_sql(seg.ws, f"reach_{channel}", D, "clickhouse").rstrip().rstrip(";")
        got = json.loads(ch.query(sql, "JSONCompact").bytes() or b'{"data": []}')["data"]
    finally:
        ch.close()
    assert {r[0] for r in got} == expected(channel, D)


def values(rows: list[tuple[Any, ...]]) -> str:
    def one(v: Any) -> str:
        if v is None:
            return "NULL"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, dt.datetime):
            return f"'{v.isoformat(sep=' ', timespec='microseconds')}'"
        return "'" + str(v).replace("'", "''") + "'"

    return ", ".join("(" + ", ".join(one(v) for v in r) + ")" for r in rows)
