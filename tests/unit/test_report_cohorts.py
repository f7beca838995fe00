"""Cohort retention (analytics.md §8): `mcrm.reports.cohorts.build` against a plain-Python
computation of recurring and unbounded retention on generated data, by week and month, cohorts
by first activity and by first paid purchase; unobserved cells null, the as-of cells partial,
the weighted average over complete cells."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcrm.reports.common import Period, Report, period
from tests.conftest import Cli
from tests.repdata import (
    AS_OF,
    ZONE,
    Data,
    Ev,
    activity,
    generate,
    interval_index,
    interval_start,
    local,
    next_interval,
)
from tests.segdata import SegWS


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SegWS, Data]]:
    w = SegWS(tmp_path_factory.mktemp("cohorts_report"), timezone=ZONE)
    d = generate(23, users=160)
    d.load(w)
    yield w, d


def run(w: SegWS, p: Period, unit: str, mode: str, cohort: str) -> Report:
    from mcrm.db import open_db
    from mcrm.reports.cohorts import build

    with open_db(w.ws) as con:
        return build(con, w.ws, p, unit, mode, cohort)


def records(rep: Report, table: str) -> list[dict[str, Any]]:
    t = rep.tables[table]
    return [dict(zip(t.columns, r, strict=True)) for r in t.rows]


def shift(p: dt.date, unit: str, k: int) -> dt.date:
    for _ in range(k):
        p = next_interval(p, unit)
    return p


def reference(d: Data, p: Period, unit: str, mode: str, cohort: str) -> dict[str, Any]:
    per: dict[str, set[dt.date]] = {}
    for u, t in activity(d, p.as_of):
        per.setdefault(u, set()).add(interval_start(local(t), unit))
    if cohort == "activity":
        c_of = {u: min(s) for u, s in per.items()}
    else:
        c_of = {}
        for e in d.evs:
            if e.is_order and e.status == "paid" and e.ts <= p.as_of:
                c = interval_start(local(e.ts), unit)
                c_of[e.unit] = min(c, c_of.get(e.unit, c))
    as_of_day = local(p.as_of)
    as_of_p = interval_start(as_of_day, unit)
    starts = []
    c = interval_start(p.start, unit)
    while c <= min(p.end, as_of_day):
        starts.append(c)
        c = next_interval(c, unit)
    max_k = interval_index(starts[0], as_of_p, unit)
    cells: dict[tuple[dt.date, int], tuple[int, int, bool] | None] = {}
    for c in starts:
        members = [u for u, cu in c_of.items() if cu == c]
        for k in range(max_k + 1):
            q = shift(c, unit, k)
            if q > as_of_p:
                cells[(c, k)] = None
                continue
            if mode == "recurring":
                n = sum(1 for u in members if q in per.get(u, set()))
            else:
                n = sum(1 for u in members if any(x >= q for x in per.get(u, set())))
            cells[(c, k)] = (len(members), n, q == as_of_p)
    return {"starts": starts, "max_k": max_k, "cells": cells, "as_of_p": as_of_p}


CASES = [
    ("week", "recurring", "activity", "2025-09-10", None),
    ("week", "unbounded", "activity", "2025-09-10", None),
    ("month", "recurring", "activity", "2025-08-01", None),
    ("month", "unbounded", "purchase", "2025-08-01", None),
    ("week", "recurring", "purchase", "2025-10-01", "2025-11-15"),
]


@pytest.mark.parametrize(("unit", "mode", "cohort", "from_", "to"), CASES)
def test_cells_match_the_definition(
    gen: tuple[SegWS, Data], unit: str, mode: str, cohort: str, from_: str, to: str | None
) -> None:
    w, d = gen
    p = period(ZONE, from_, to, AS_OF)
    rep = run(w, p, unit, mode, cohort)
    ref = reference(d, p, unit, mode, cohort)
    got = {
        (r["cohort_start"], r["offset"]): (r["cohort_size"], r["users"], r["partial"])
        for r in records(rep, "retention")
        if r["cohort"] != "average"
    }
    want = {key: v for key, v in ref["cells"].items() if v is not None}
    assert got == want
    assert any(v[1] > 0 for k, v in want.items() if k[1] > 0)
    for r in records(rep, "retention"):
        if r["cohort"] != "average":
            size, n = r["cohort_size"], r["users"]
            assert r["retention"] == (n / size if size else None)
    # the matrix: same cells, null where unobserved
    prefix = "w" if unit == "week" else "m"
    matrix = [r for r in records(rep, "matrix") if r["cohort"] != "average"]
    assert [r["cohort_start"] for r in matrix] == ref["starts"]
    for r in matrix:
        for k in range(ref["max_k"] + 1):
            cell = ref["cells"][(r["cohort_start"], k)]
            want_v = None if cell is None or cell[0] == 0 else cell[1] / cell[0]
            assert r[f"{prefix}{k}"] == want_v, (r["cohort"], k)


@pytest.mark.parametrize(("unit", "mode", "cohort", "from_", "to"), CASES)
def test_average_row_weights_complete_cells(
    gen: tuple[SegWS, Data], unit: str, mode: str, cohort: str, from_: str, to: str | None
) -> None:
    w, d = gen
    p = period(ZONE, from_, to, AS_OF)
    rep = run(w, p, unit, mode, cohort)
    ref = reference(d, p, unit, mode, cohort)
    avg = {r["offset"]: r for r in records(rep, "retention") if r["cohort"] == "average"}
    for k in range(ref["max_k"] + 1):
        cells = [ref["cells"][(c, k)] for c in ref["starts"]]
        done = [x for x in cells if x is not None and not x[2]]
        partial = False
        if not done:
            done = [x for x in cells if x is not None]
            partial = True
        size = sum(x[0] for x in done)
        n = sum(x[1] for x in done)
        assert avg[k]["cohort_size"] == size and avg[k]["users"] == n
        assert avg[k]["retention"] == (n / size if size else None)
        assert avg[k]["partial"] is partial


def test_recurring_offset_zero_is_one_and_unbounded_never_increases(
    gen: tuple[SegWS, Data],
) -> None:
    w, _ = gen
    p = period(ZONE, "2025-08-01", None, AS_OF)
    for unit in ("week", "month"):
        rec = records(run(w, p, unit, "recurring", "activity"), "retention")
        zero = [r for r in rec if r["offset"] == 0 and r["cohort_size"]]
        assert zero and all(r["retention"] == 1.0 for r in zero)
        unb = records(run(w, p, unit, "unbounded", "activity"), "retention")
        by_cohort: dict[Any, list[float]] = {}
        for r in unb:
            if r["cohort"] != "average" and r["retention"] is not None:
                by_cohort.setdefault(r["cohort"], []).append(r["retention"])
        assert any(len(v) > 3 for v in by_cohort.values())
        for v in by_cohort.values():
            assert all(a >= b for a, b in zip(v, v[1:], strict=False))
            assert v[0] == 1.0


def test_unobserved_cells_are_null_and_the_as_of_week_is_partial(
    gen: tuple[SegWS, Data],
) -> None:
    w, _ = gen
    p = period(ZONE, "2025-11-17", None, AS_OF)  # cohorts 11-17, 11-24, 12-01, 12-08
    rep = run(w, p, "week", "recurring", "activity")
    m = [r for r in records(rep, "matrix") if r["cohort"] != "average"]
    assert [r["cohort"] for r in m] == ["2025-W47", "2025-W48", "2025-W49", "2025-W50"]
    assert [r[f"w{k}"] is None for r in m for k in range(4)] == [
        *[False] * 4,
        *[False] * 3 + [True],
        *[False] * 2 + [True] * 2,
        *[False] + [True] * 3,
    ]
    partial = {(r["cohort"], r["offset"]) for r in records(rep, "retention") if r["partial"]}
    assert partial == {
        ("2025-W47", 3),
        ("2025-W48", 2),
        ("2025-W49", 1),
        ("2025-W50", 0),
        ("average", 3),  # only the partial cell is observed at offset 3
    }


def test_empty_cohort_and_dst_and_purchase_cohort(tmp_path: Path) -> None:
    """A week without newcomers is a row of size 0 with null retention; a session at 23:30 UTC
    on Sunday 2025-03-30 (after the spring DST change) is Monday in Prague; refunded orders do
    not start a purchase cohort."""
    w = SegWS(tmp_path / "w", timezone=ZONE)
    d = Data(
        users=["a", "b"],
        evs=[
            Ev("a", dt.datetime(2025, 3, 24, 9), "e1", "session_start"),
            Ev("a", dt.datetime(2025, 3, 30, 23, 30), "e2", "session_start"),  # Mon 31 local
            Ev("b", dt.datetime(2025, 3, 25, 9), "o1", "purchase", True, "refunded"),
            Ev("b", dt.datetime(2025, 4, 15, 9), "o2", "purchase", True, "paid"),
        ],
    )
    d.load(w)
    p = period(ZONE, "2025-03-24", "2025-04-20", dt.datetime(2025, 4, 30))
    rows = records(run(w, p, "week", "recurring", "activity"), "matrix")
    by = {r["cohort"]: r for r in rows}
    assert by["2025-W13"]["cohort_size"] == 1 and by["2025-W13"]["w1"] == 1.0
    assert by["2025-W14"]["cohort_size"] == 0 and by["2025-W14"]["w0"] is None
    assert by["2025-W16"]["cohort_size"] == 1  # b, first activity = the paid order
    pur = records(run(w, p, "week", "recurring", "purchase"), "matrix")
    assert [(r["cohort"], r["cohort_size"]) for r in pur if r["cohort_size"]] == [
        ("2025-W16", 1),
        ("average", 1),
    ]


def test_cli_tables_formats_and_bad_options(gen: tuple[SegWS, Data], cli: Cli) -> None:
    w, _ = gen
    env = {"MCRM_AS_OF": "2025-12-10T16:30"}
    base = ["report", "cohorts", "--unit", "month", "--from", "2025-10-01"]
    r = cli(w.root, *base, "--format", "json", env=env)
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert list(doc["tables"]) == ["retention", "matrix"]
    assert doc["params"]["mode"] == "recurring" and doc["params"]["unit"] == "month"
    assert list(doc["tables"]["matrix"][0]) == [
        "cohort",
        "cohort_start",
        "cohort_size",
        "m0",
        "m1",
        "m2",
    ]
    assert doc["tables"]["matrix"][-2]["m2"] is None  # the 2025-12 cohort, offset 2
    assert doc["tables"]["matrix"][-1]["cohort"] == "average"
    r = cli(w.root, *base, "--format", "csv", "--table", "matrix", env=env)
    assert (
        r.exit_code == 0 and r.stdout.splitlines()[0] == "cohort,cohort_start,cohort_size,m0,m1,m2"
    )
    r = cli(w.root, *base, "--format", "jsonl", "--mode", "unbounded", env=env)
    lines = r.jsonl()
    assert {x["table"] for x in lines} == {"retention", "matrix"}
    r = cli(w.root, "report", "cohorts", "--unit", "day", env=env)
    assert r.exit_code == 2 and "day" in r.stderr and r.stdout == ""
    r = cli(w.root, "report", "cohorts", "--mode", "sometimes", env=env)
    assert r.exit_code == 2 and r.stdout == ""
    r = cli(w.root, *base, "--table", "heatmap", "--format", "csv", env=env)
    assert r.exit_code == 2 and "heatmap" in r.stderr


@given(
    day=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2040, 12, 31)),
    k=st.integers(min_value=-60, max_value=60),
    unit=st.sampled_from(["day", "week", "month"]),
)
def test_calendar_intervals(day: dt.date, k: int, unit: str) -> None:
    """The interval arithmetic the reports use agrees with plain date arithmetic."""
    from mcrm.reports import intervals as iv

    p = iv.start_of(day, unit)
    assert p == interval_start(day, unit) and p <= day <= iv.end_of(p, unit)
    q = iv.shift(p, unit, k)
    assert iv.offset(p, q, unit) == k and iv.start_of(q, unit) == q
    if k >= 0:
        assert interval_index(p, q, unit) == k
    if unit == "week":
        assert iv.label(p, unit) == f"{day.isocalendar()[0]}-W{day.isocalendar()[1]:02d}"
