"""Lifecycle per period (analytics.md §7, PostHog buckets): `mcrm.reports.lifecycle.build`
against a plain-Python count of the same definition on generated data, plus the invariants
active(t) = new + returning + resurrecting and active(t−1) = returning(t) + dormant(t)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcrm.reports.common import Period, Report, period
from tests.conftest import Cli
from tests.repdata import (
    AS_OF,
    ZONE,
    Data,
    Ev,
    activity,
    generate,
    interval_start,
    local,
    next_interval,
    prev_interval,
)
from tests.segdata import SegWS


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SegWS, Data]]:
    w = SegWS(tmp_path_factory.mktemp("lifecycle_report"), timezone=ZONE)
    d = generate(11)
    d.load(w)
    yield w, d


def run(w: SegWS, p: Period, interval: str) -> list[dict[str, Any]]:
    from mcrm.db import open_db
    from mcrm.reports.lifecycle import build

    with open_db(w.ws) as con:
        rep: Report = build(con, w.ws, p, interval)
    t = rep.tables["lifecycle"]
    return [dict(zip(t.columns, r, strict=True)) for r in t.rows]


def reference(d: Data, p: Period, unit: str) -> list[dict[str, Any]]:
    per: dict[str, set[dt.date]] = {}
    for u, ts in activity(d, p.as_of):
        per.setdefault(u, set()).add(interval_start(local(ts), unit))
    first = {u: min(s) for u, s in per.items()}
    as_of_day = local(p.as_of)
    out = []
    t = interval_start(p.start, unit)
    while t <= min(p.end, as_of_day):
        prev = prev_interval(t, unit)
        active = {u for u, s in per.items() if t in s}
        before = {u for u, s in per.items() if prev in s}
        new = {u for u in active if first[u] == t}
        end = next_interval(t, unit) - dt.timedelta(days=1)
        out.append(
            {
                "start": t,
                "end": end,
                "active": len(active),
                "new": len(new),
                "returning": len((active & before) - new),
                "resurrecting": len(active - before - new),
                "dormant": len(before - active),
                "partial": end >= as_of_day,
            }
        )
        t = next_interval(t, unit)
    return out


CASES = [
    ("day", "2025-11-20", None),
    ("week", "2025-09-03", None),  # a Wednesday: the first week starts before --from
    ("week", "2025-10-01", "2025-11-05"),  # ends before the as-of week: nothing partial
    ("month", "2025-08-01", None),
]


@pytest.mark.parametrize(("unit", "from_", "to"), CASES)
def test_buckets_match_the_definition(
    gen: tuple[SegWS, Data], unit: str, from_: str, to: str | None
) -> None:
    w, d = gen
    p = period(ZONE, from_, to, AS_OF)
    got = run(w, p, unit)
    want = reference(d, p, unit)
    keys = list(want[0])
    assert [{k: r[k] for k in keys} for r in got] == want
    assert any(r["dormant"] and r["resurrecting"] and r["returning"] for r in got)


@pytest.mark.parametrize(("unit", "from_", "to"), CASES)
def test_invariants(gen: tuple[SegWS, Data], unit: str, from_: str, to: str | None) -> None:
    w, _ = gen
    rows = run(w, period(ZONE, from_, to, AS_OF), unit)
    for r in rows:
        assert r["active"] == r["new"] + r["returning"] + r["resurrecting"]
    for a, b in zip(rows, rows[1:], strict=False):
        assert a["active"] == b["returning"] + b["dormant"]


def test_the_interval_before_the_first_is_looked_at(gen: tuple[SegWS, Data]) -> None:
    """The first bar is not all resurrecting: returning users of the first interval exist."""
    w, _ = gen
    rows = run(w, period(ZONE, "2025-10-06", "2025-10-12", AS_OF), "week")
    assert len(rows) == 1 and rows[0]["returning"] > 0 and rows[0]["dormant"] > 0


def test_partial_only_for_the_interval_holding_the_as_of_day(gen: tuple[SegWS, Data]) -> None:
    w, _ = gen
    rows = run(w, period(ZONE, "2025-11-01", None, AS_OF), "week")
    assert [r["partial"] for r in rows] == [False] * (len(rows) - 1) + [True]
    assert rows[-1]["start"] == dt.date(2025, 12, 8)  # the as-of week (Monday)


def test_new_uses_all_history_and_refunds_are_not_activity(tmp_path: Path) -> None:
    w = SegWS(tmp_path / "w", timezone="UTC")
    d = Data(
        users=["a", "b", "c"],
        evs=[
            # a: first active long before the chart; back in week 2 -> resurrecting, not new
            Ev("a", dt.datetime(2025, 1, 6, 10), "e1", "session_start"),
            Ev("a", dt.datetime(2025, 3, 11, 10), "e2", "session_start"),
            # b: only a refunded order in week 1, a session in week 2 -> new in week 2
            Ev("b", dt.datetime(2025, 3, 4, 10), "o1", "purchase", True, "refunded"),
            Ev("b", dt.datetime(2025, 3, 12, 10), "e3", "session_start"),
            # c: a paid order in week 1 (activity), nothing in week 2 -> dormant in week 2
            Ev("c", dt.datetime(2025, 3, 5, 10), "o2", "purchase", True, "paid"),
            Ev("c", dt.datetime(2025, 3, 5, 11), "e4", "screen_view"),
        ],
    )
    d.load(w)
    p = period("UTC", "2025-03-03", "2025-03-16", dt.datetime(2025, 3, 20))
    rows = run(w, p, "week")
    assert [
        (r["active"], r["new"], r["returning"], r["resurrecting"], r["dormant"]) for r in rows
    ] == [
        (1, 1, 0, 0, 0),  # week of 03-03: c new
        (2, 1, 0, 1, 1),  # week of 03-10: b new, a resurrecting, c dormant
    ]


def test_cli_formats_and_bad_interval(gen: tuple[SegWS, Data], cli: Cli) -> None:
    w, _ = gen
    args = ["report", "lifecycle", "--interval", "month", "--from", "2025-10-01"]
    env = {"MCRM_AS_OF": "2025-12-10T16:30"}
    r = cli(w.root, *args, "--format", "json", env=env)
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert doc["report"] == "lifecycle" and doc["params"]["interval"] == "month"
    rows = doc["tables"]["lifecycle"]
    assert [x["interval"] for x in rows] == ["2025-10", "2025-11", "2025-12"]
    assert rows[-1]["partial"] is True and rows[0]["start"] == "2025-10-01"
    r = cli(w.root, *args, "--format", "csv", env=env)
    assert r.exit_code == 0 and r.stdout.splitlines()[0].startswith("interval,start,end,active")
    r = cli(w.root, "report", "lifecycle", "--interval", "fortnight", env=env)
    assert r.exit_code == 2 and "fortnight" in r.stderr and r.stdout == ""
