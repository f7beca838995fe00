"""`mcrm segments ...`, `mcrm rfm`, `mcrm lifecycle` through the CLI: exit codes, clean stdout
(parsed as JSON / CSV / SQL) and messages on stderr, checked separately."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlglot
from typer.testing import CliRunner

from mcrm.cli.main import app
from tests.segdata import SegWS

D = dt.datetime(2025, 6, 15, 12, 0)
AS_OF = "2025-06-15T12:00:00Z"
EARLIER = "2025-05-16T12:00:00Z"  # D - 30 days

SEGMENTS = """\
places:
  prague_store: {lat: 50.0875, lon: 14.4213, radius_km: 5}
tiers: {window: 365d, levels: {bronze: 0, silver: 100, gold: 300}}
segments:
  ios_cz:
    description: iPhone users in Czechia
    where:
      all:
        - {attr: os, eq: iOS}
        - {country: CZ}
  carts:
    where: {event: add_to_cart, within: 7d}
  buyers:
    where: {purchase: {within: 30d}}
  everyone:
    description: All users
    where: {sql: "TRUE"}
  kitchen_sink:
    description: Every relation and most predicate kinds, for the SQL dialects
    where:
      any:
        - {rfm: [champions, loyal_customers]}
        - {lifecycle: reactivated}
        - {tier: gold}
        - {event: add_to_cart, within: 7d, count: {gte: 2}, where: {category: shoes}}
        - {spend: {within: 90d, between: [1, 50]}}
        - {near: prague_store}
        - {birthday: {within: 3d}}
        - {age: [25, 34]}
        - {bucket: {percent: 10, salt: s}}
        - {all: [{city: Brno}, {not: {attr: os, in: [iOS, Android]}}]}
"""

Run = Callable[..., "Result"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class World:
    w: SegWS
    run: Callable[..., Result]
    users: list[dict[str, Any]]
    events: list[dict[str, Any]]
    purchases: list[dict[str, Any]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    rng = random.Random(7)
    w = SegWS(tmp_path_factory.mktemp("cli"))
    users: list[dict[str, Any]] = []
    for i in range(40):
        users.append(
            {
                "user_id": f"u{i:02d}",
                "first_name": rng.choice(["Ann", "Bob", '=HYPERLINK("http://x")', "+1 boss"]),
                "os": rng.choice(["iOS", "Android"]),
                "country": rng.choice(["CZ", "SK"]),
                "city": rng.choice(["Prague", "Brno", None]),
                "home_lat": 50.09 if i % 5 == 0 else None,
                "home_lon": 14.42 if i % 5 == 0 else None,
                "first_seen": dt.datetime(2024, 1, 1),
            }
        )
    events: list[dict[str, Any]] = []
    for i in range(40):
        for _ in range(rng.randint(0, 4)):
            events.append(
                {
                    "user_id": f"u{i:02d}",
                    "name": rng.choice(["add_to_cart", "session_start"]),
                    "timestamp": D - dt.timedelta(days=rng.uniform(0, 45)),
                    "properties": {"category": rng.choice(["shoes", "hats"])},
                }
            )
    purchases: list[dict[str, Any]] = []
    for i in range(40):
        for k in range(rng.randint(0, 3)):
            purchases.append(
                {
                    "order_id": f"o{i}_{k}",
                    "user_id": f"u{i:02d}",
                    "timestamp": D - dt.timedelta(days=rng.uniform(0, 60)),
                    "amount": str(rng.choice([20, 80, 150])),
                    "currency": "EUR",
                }
            )
    for rows in (events, purchases):
        for r in rows:
            t = r["timestamp"]
            assert isinstance(t, dt.datetime)
            r["timestamp"] = t.replace(microsecond=0)
    w.load("users", users)
    w.load("events", events)
    w.load("purchases", purchases)
    w.write_segments(SEGMENTS)

    def run(*args: str) -> Result:
        r = CliRunner().invoke(app, ["--workspace", str(w.root), *args])
        return Result(r.exit_code, r.stdout, r.stderr)

    return World(w, run, users, events, purchases)


def ios_cz(world: World) -> set[str]:
    return {u["user_id"] for u in world.users if u["os"] == "iOS" and u["country"] == "CZ"}


def carts(world: World, at: dt.datetime) -> set[str]:
    return {
        e["user_id"]
        for e in world.events
        if e["name"] == "add_to_cart" and dt.timedelta(0) <= at - e["timestamp"] <= dt.timedelta(7)
    }


def test_compute_prints_sizes_and_stores_members(world: World) -> None:
    r = world.run("segments", "compute", "ios_cz", "carts", "--as-of", AS_OF, "-f", "json")
    assert r.code == 0, r.err
    rows = {x["segment"]: x for x in r.json()}
    assert set(rows) == {"ios_cz", "carts"}
    assert rows["ios_cz"]["size"] == len(ios_cz(world))
    assert rows["carts"]["size"] == len(carts(world, D))
    assert rows["ios_cz"]["description"] == "iPhone users in Czechia"
    assert "run " in r.err and "as of 2025-06-15T12:00:00Z" in r.err
    run_id = int(r.err.split("run ")[1].split()[0])
    assert world.w.members(run_id, "ios_cz") == ios_cz(world)
    assert world.w.members(run_id, "carts") == carts(world, D)


def test_compute_unknown_segment_is_a_usage_error(world: World) -> None:
    r = world.run("segments", "compute", "ios_cs", "--as-of", AS_OF)
    assert r.code == 2
    assert r.out == ""
    assert "unknown segment 'ios_cs'" in r.err and "did you mean 'ios_cz'?" in r.err


def test_list_and_show(world: World) -> None:
    world.run("segments", "compute", "everyone", "--as-of", AS_OF, "-f", "json")
    r = world.run("segments", "list", "-f", "json")
    assert r.code == 0, r.err
    rows = {x["segment"]: x for x in r.json()}
    assert list(rows) == ["ios_cz", "carts", "buyers", "everyone", "kitchen_sink"]
    assert rows["everyone"]["size"] == len(world.users)
    assert rows["everyone"]["description"] == "All users"
    assert rows["kitchen_sink"]["size"] is None or isinstance(rows["kitchen_sink"]["size"], int)

    r = world.run("segments", "show", "everyone", "-f", "json")
    assert r.code == 0, r.err
    history = r.json()
    assert history and all(h["size"] == len(world.users) for h in history)
    assert [h["run_id"] for h in history] == sorted(h["run_id"] for h in history)
    assert "everyone (segments.yaml:15): All users" in r.err

    r = world.run("segments", "show", "nobody")
    assert r.code == 2 and r.out == "" and "unknown segment 'nobody'" in r.err


@pytest.mark.parametrize(
    "dialect", ["duckdb", "spark", "bigquery", "snowflake", "clickhouse", "trino"]
)
def test_sql_in_every_dialect_parses(world: World, dialect: str) -> None:
    r = world.run("segments", "sql", "kitchen_sink", "--dialect", dialect, "--as-of", AS_OF)
    assert r.code == 0, r.err
    assert r.err == ""
    assert r.out.rstrip().endswith(";")
    statements = [s for s in sqlglot.parse(r.out, read=dialect) if s is not None]
    assert len(statements) == 1
    sql = r.out.lower()
    for rel in ("rfm as", "lifecycle as", "tiers as"):
        assert rel in sql, rel  # the shared relations travel with the query as CTEs


def test_duckdb_sql_gives_the_computed_members(world: World) -> None:
    r = world.run("segments", "sql", "kitchen_sink", "--as-of", AS_OF)
    assert r.code == 0, r.err
    got = {str(x[0]) for x in world.w.query(r.out.rstrip().rstrip(";"))}
    res = world.w.compute(["kitchen_sink"], D)
    assert got == world.w.members(res.run_id, "kitchen_sink")
    assert 0 < len(got) < len(world.users)


def test_sql_unknown_dialect(world: World) -> None:
    r = world.run("segments", "sql", "carts", "--dialect", "sparkk")
    assert r.code == 2 and r.out == ""
    assert "unknown dialect 'sparkk'" in r.err and "did you mean 'spark'?" in r.err


def test_explain_member_and_non_member(world: World) -> None:
    members = sorted(ios_cz(world))
    others = sorted({u["user_id"] for u in world.users} - ios_cz(world))
    member, other = (
        members[0],
        next(
            u for u in others if next(x for x in world.users if x["user_id"] == u)["os"] == "iOS"
        ),
    )
    r = world.run("segments", "explain", "ios_cz", member, "--as-of", AS_OF)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == f"{member} IS in ios_cz"
    assert lines[1] == "  ✓ all of these hold"
    assert "    ✓ os eq 'iOS'  — os = 'ios'" in lines  # stored lower-cased at import
    assert "    ✓ country eq 'CZ'  — country = 'CZ'" in lines

    r = world.run("segments", "explain", "ios_cz", other, "--as-of", AS_OF)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == f"{other} is NOT in ios_cz"
    assert lines[1] == "  ✗ all of these hold"
    assert "    ✓ os eq 'iOS'  — os = 'ios'" in lines  # stored lower-cased at import
    assert "    ✗ country eq 'CZ'  — country = 'SK'" in lines

    r = world.run("segments", "explain", "ios_cz", other, "--as-of", AS_OF, "-f", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["member"] is False and doc["user_id"] == other
    assert [c["held"] for c in doc["explanation"]["children"]] == [True, False]
    assert doc["explanation"]["children"][1]["line"] == 10


def test_explain_event_counts(world: World) -> None:
    member = sorted(carts(world, D))[0]
    r = world.run("segments", "explain", "carts", member, "--as-of", AS_OF)
    assert r.code == 0, r.err
    n = sum(
        1
        for e in world.events
        if e["user_id"] == member
        and e["name"] == "add_to_cart"
        and dt.timedelta(0) <= D - e["timestamp"] <= dt.timedelta(7)
    )
    assert r.out.splitlines()[1] == (
        f"  ✓ did 'add_to_cart' at least 1 time(s) in the last 7 days"
        f"  — {n} time(s) in the last 7 days"
    )


def test_explain_unknown_user(world: World) -> None:
    r = world.run("segments", "explain", "ios_cz", "nobody-here", "--as-of", AS_OF)
    assert r.code == 3 and r.out == ""
    assert "nobody-here" in r.err


def test_diff_after_two_computes(world: World) -> None:
    r1 = world.run("segments", "compute", "carts", "--as-of", EARLIER, "-f", "json")
    r2 = world.run("segments", "compute", "carts", "--as-of", AS_OF, "-f", "json")
    assert r1.code == 0 and r2.code == 0
    r = world.run("segments", "diff", "carts", "-f", "json")
    assert r.code == 0, r.err
    before = carts(world, D - dt.timedelta(days=30))
    after = carts(world, D)
    rows = r.json()
    assert {x["user_id"] for x in rows if x["change"] == "entered"} == after - before
    assert {x["user_id"] for x in rows if x["change"] == "left"} == before - after
    entered, left = len(after - before), len(before - after)
    assert f"{entered} entered, {left} left" in r.err
    assert entered and left  # the data moves both ways

    # --since a date picks the snapshot at or before it
    r = world.run("segments", "diff", "carts", "--since", "2025-05-20", "-f", "json")
    assert r.code == 0, r.err
    assert {x["user_id"] for x in r.json() if x["change"] == "left"} == before - after


def test_diff_needs_two_snapshots(world: World) -> None:
    r = world.run("segments", "diff", "buyers")
    assert r.code == 3 and r.out == ""
    assert "no snapshot" in r.err
    world.run("segments", "compute", "buyers", "--as-of", AS_OF, "-f", "json")
    r = world.run("segments", "diff", "buyers")
    assert r.code == 3 and "only one snapshot" in r.err


def test_export_csv_neutralises_formulas(world: World) -> None:
    r = world.run("segments", "export", "everyone", "--as-of", AS_OF, "-f", "csv")
    assert r.code == 0, r.err
    rows = list(csv.DictReader(io.StringIO(r.out)))
    assert len(rows) == len(world.users)
    by_id = {x["user_id"]: x for x in rows}
    for u in world.users:
        name = by_id[u["user_id"]]["first_name"]
        if u["first_name"][0] in "=+-@":
            assert name == "'" + u["first_name"]
        else:
            assert name == u["first_name"]
    assert any(u["first_name"].startswith("=") for u in world.users)

    r = world.run("segments", "export", "everyone", "--as-of", AS_OF, "-f", "csv", "--raw")
    raw = {x["user_id"]: x["first_name"] for x in csv.DictReader(io.StringIO(r.out))}
    assert raw == {u["user_id"]: u["first_name"] for u in world.users}


def test_export_jsonl(world: World) -> None:
    r = world.run("segments", "export", "ios_cz", "--as-of", AS_OF, "-f", "jsonl")
    assert r.code == 0, r.err
    docs = [json.loads(line) for line in r.out.splitlines()]
    assert {d["user_id"] for d in docs} == ios_cz(world)
    assert [d["user_id"] for d in docs] == sorted(d["user_id"] for d in docs)
    assert all(d["country"] == "CZ" and d["os"] == "ios" for d in docs)  # as stored


def test_rfm_compare_to(world: World) -> None:
    r = world.run("rfm", "--as-of", AS_OF, "--compare-to", EARLIER, "-f", "json")
    assert r.code == 0, r.err
    rows = r.json()
    assert rows
    buyers_now = {p["user_id"] for p in world.purchases if p["timestamp"] <= D}
    then = D - dt.timedelta(days=30)
    buyers_then = {p["user_id"] for p in world.purchases if p["timestamp"] <= then}
    assert sum(x["customers"] for x in rows) == len(buyers_now | buyers_then)
    assert sum(x["customers"] for x in rows if x["from_segment"] == "none") == len(
        buyers_now - buyers_then
    )
    r = world.run("rfm", "--as-of", EARLIER, "--compare-to", AS_OF)
    assert r.code == 2 and r.out == "" and "--compare-to must be before" in r.err


def test_lifecycle_counts_and_compare_to(world: World) -> None:
    r = world.run("lifecycle", "--as-of", AS_OF, "-f", "json")
    assert r.code == 0, r.err
    counts = {x["stage"]: x["users"] for x in r.json()}
    assert list(counts) == ["new", "reactivated", "active", "at_risk", "dormant", "churned"]
    active_users = {e["user_id"] for e in world.events if e["name"] == "session_start"} | {
        p["user_id"] for p in world.purchases
    }
    assert sum(counts.values()) == len(active_users)

    r = world.run("lifecycle", "--as-of", AS_OF, "--compare-to", EARLIER, "-f", "json")
    assert r.code == 0, r.err
    flow = r.json()
    then = D - dt.timedelta(days=30)
    before = {
        e["user_id"]
        for e in world.events
        if e["name"] == "session_start" and e["timestamp"] <= then
    } | {p["user_id"] for p in world.purchases if p["timestamp"] <= then}
    assert sum(x["users"] for x in flow) == len(active_users | before)
    assert sum(x["users"] for x in flow if x["from_stage"] == "none") == len(active_users - before)
    to_counts: dict[str, int] = {}
    for x in flow:
        to_counts[x["to_stage"]] = to_counts.get(x["to_stage"], 0) + x["users"]
    assert {k: v for k, v in to_counts.items() if k != "none"} == {
        k: v for k, v in counts.items() if v
    }
