"""Funnels (analytics.md §9): `mcrm.reports.funnel.build` against a brute-force reference
that tries every step-1 occurrence as a start and matches greedily from it (optimal for a fixed
start), on generated data and on hand-made cases: the reference's own example, out-of-order
and simultaneous steps, steps after `to`, the window boundary, repeated steps, refunds, and the
breakdown taken from the path's step-1 event."""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcrm.errors import UsageError
from mcrm.reports.common import Period, Report, period
from tests.conftest import Cli
from tests.repdata import AS_OF, ZONE, Data, Ev, generate
from tests.segdata import SegWS

DAY = dt.timedelta(days=1)


def matches(step: str, e: Ev) -> bool:
    if step.startswith("event:"):
        return not e.is_order and e.name == step[6:]
    if step == "purchase":
        return e.is_order and e.status == "paid"
    return not e.is_order and e.name == step


def reference(
    d: Data, steps: list[str], p: Period, within: dt.timedelta | None, by: bool = False
) -> dict[str, list[tuple[int, float | None]]]:
    """Per group ("(all)", or each platform of a step-1 event): [(reached, median s)]."""
    n = len(steps)
    units: dict[str, list[Ev]] = {}
    for e in d.evs:
        if e.ts <= p.as_of and any(matches(s, e) for s in steps):
            units.setdefault(e.unit, []).append(e)
    reached: dict[str, list[int]] = {}
    times: dict[str, list[list[float]]] = {}
    for evs in units.values():

        def first_step(e: Ev) -> int:
            return min(i for i, s in enumerate(steps) if matches(s, e))

        seq = sorted(evs, key=lambda e: (e.ts, first_step(e), e.id))
        starts = [
            i for i, e in enumerate(seq) if matches(steps[0], e) and p.start_ts <= e.ts <= p.end_ts
        ]
        groups = {"(all)": starts}
        if by:
            groups = {}
            for i in starts:
                groups.setdefault(seq[i].platform or "(none)", []).append(i)
        for g, gs in groups.items():
            if not gs:
                continue
            # greedy from each start: the earliest position of each level
            paths = []
            for i in gs:
                pos = [i]
                j = i + 1
                for k in range(1, n):
                    while j < len(seq) and not (
                        matches(steps[k], seq[j])
                        and (within is None or seq[j].ts - seq[i].ts <= within)
                    ):
                        j += 1
                    if j == len(seq):
                        break
                    pos.append(j)
                    j += 1
                paths.append(pos)
            level = max(len(x) for x in paths)
            r = reached.setdefault(g, [0] * n)
            t = times.setdefault(g, [[] for _ in range(n)])
            for k in range(level):
                r[k] += 1
                if k == 0:
                    continue
                first = min(x[k] for x in paths if len(x) > k)
                start = max(x[0] for x in paths if len(x) > k and x[k] == first)
                t[k].append((seq[first].ts - seq[start].ts).total_seconds())
    out = {}
    for g, r in reached.items():
        med = [statistics.median(x) if x else None for x in times[g]]
        med[0] = None
        out[g] = list(zip(r, med, strict=True))
    return out


def run(
    w: SegWS, p: Period, steps: list[str], within: dt.timedelta | None, by: str | None = None
) -> Report:
    from mcrm.db import open_db
    from mcrm.reports.funnel import build

    with open_db(w.ws) as con:
        return build(con, w.ws, p, steps, within, by)


def got_levels(rep: Report, by: str | None = None) -> dict[str, list[tuple[int, float | None]]]:
    t = rep.tables["funnel"]
    out: dict[str, list[tuple[int, float | None]]] = {}
    for r in t.rows:
        rec = dict(zip(t.columns, r, strict=True))
        g = rec[by] if by else "(all)"
        out.setdefault(g, []).append((rec["users"], rec["median_seconds"]))
    return out


def close(a: dict[str, list[tuple[int, float | None]]], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for g in a:
        for (n1, m1), (n2, m2) in zip(a[g], b[g], strict=True):
            if n1 != n2 or (m1 is None) != (m2 is None):
                return False
            if m1 is not None and abs(m1 - m2) > 1e-6:
                return False
    return True


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SegWS, Data]]:
    w = SegWS(tmp_path_factory.mktemp("funnel_report"), timezone=ZONE)
    d = generate(5, users=200, anons=40)
    d.load(w)
    yield w, d


GENERATED = [
    (["product_view", "add_to_cart"], DAY, "2025-11-01", None),
    (["product_view", "add_to_cart", "purchase"], DAY, "2025-09-15", "2025-11-30"),
    (["product_view", "add_to_cart", "purchase"], dt.timedelta(hours=2), "2025-08-01", None),
    (["session_start", "product_view", "add_to_cart", "purchase"], None, "2025-10-01", None),
    (["product_view", "product_view", "add_to_cart"], dt.timedelta(days=3), "2025-10-01", None),
    (["add_to_cart", "product_view"], DAY, "2025-08-01", "2025-10-31"),
]


@pytest.mark.parametrize(("steps", "within", "from_", "to"), GENERATED)
def test_generated_data_matches_the_brute_force(
    gen: tuple[SegWS, Data],
    steps: list[str],
    within: dt.timedelta | None,
    from_: str,
    to: str | None,
) -> None:
    w, d = gen
    p = period(ZONE, from_, to, AS_OF)
    want = reference(d, steps, p, within)
    got = got_levels(run(w, p, steps, within))
    assert close(got, want), (got, want)
    assert want["(all)"][1][0] > 0  # the data exercise the second step


@pytest.mark.parametrize(("steps", "within", "from_", "to"), GENERATED[:3])
def test_breakdown_by_platform_matches_the_brute_force(
    gen: tuple[SegWS, Data],
    steps: list[str],
    within: dt.timedelta | None,
    from_: str,
    to: str | None,
) -> None:
    w, d = gen
    p = period(ZONE, from_, to, AS_OF)
    rep = run(w, p, steps, within, "platform")
    got = got_levels(rep, "platform")
    want = reference(d, steps, p, within, by=True)
    total = reference(d, steps, p, within)
    assert got.pop("(all)") == got_levels(run(w, p, steps, within))["(all)"]
    assert close(got, want), (got, want)
    assert len(want) >= 3
    # a user counts in every group they started from, so groups may sum to more than the total
    assert sum(v[0][0] for v in want.values()) >= total["(all)"][0][0]


@pytest.mark.parametrize(("steps", "within", "from_", "to"), GENERATED)
def test_sql_engine_agrees(
    gen: tuple[SegWS, Data],
    steps: list[str],
    within: dt.timedelta | None,
    from_: str,
    to: str | None,
) -> None:
    """The portable window-function pass and the polars pass give the same report."""
    from mcrm.db import open_db
    from mcrm.reports.funnel import build

    w, _ = gen
    p = period(ZONE, from_, to, AS_OF)
    with open_db(w.ws) as con:
        a = build(con, w.ws, p, steps, within, "platform", engine="sql")
        b = build(con, w.ws, p, steps, within, "platform", engine="polars")
    assert close(got_levels(a, "platform"), got_levels(b, "platform"))


def test_ratios(gen: tuple[SegWS, Data]) -> None:
    w, _ = gen
    p = period(ZONE, "2025-09-01", None, AS_OF)
    t = run(w, p, ["product_view", "add_to_cart", "purchase"], DAY).tables["funnel"]
    rows = [dict(zip(t.columns, r, strict=True)) for r in t.rows]
    n = [r["users"] for r in rows]
    assert rows[0]["overall"] == 1.0 and rows[0]["step_conversion"] is None
    for k in (1, 2):
        assert rows[k]["overall"] == pytest.approx(n[k] / n[0])
        assert rows[k]["step_conversion"] == pytest.approx(n[k] / n[k - 1])
        assert rows[k]["drop_off"] == pytest.approx(1 - n[k] / n[k - 1])


# ---------------------------------------------------------------------------------------------
# hand-made cases, one user each (UTC workspace)

T0 = dt.datetime(2025, 3, 1, 10)


def at(days: float = 0, seconds: float = 0) -> dt.datetime:
    return T0 + dt.timedelta(days=days, seconds=seconds)


CASES: dict[str, tuple[list[tuple[str, dt.datetime, str]], int]] = {
    # the §9 example: view day 1, view day 10, cart day 10 -> the second view converts
    "ref_example": ([("v", at(0), "a1"), ("v", at(9), "a2"), ("c", at(9, 60), "a3")], 2),
    "out_of_order": ([("c", at(0), "b1"), ("v", at(0, 60), "b2")], 1),
    # simultaneous view and cart count in funnel order, whatever the ids
    "simultaneous": ([("c", at(1), "c1"), ("v", at(1), "c2")], 2),
    "window_exact": ([("v", at(2), "d1"), ("c", at(3), "d2")], 2),
    "window_plus_1s": ([("v", at(2), "e1"), ("c", at(3, 1), "e2")], 1),
    # step 1 on the last day (03-14), step 2 after `to` but before the as-of (03-15 00:30)
    "step2_after_to": ([("v", at(13, 3600 * 2), "f1"), ("c", at(13, 3600 * 14 + 600), "f2")], 2),
    # step 1 after `to` does not start a path
    "step1_after_to": ([("v", at(13, 3600 * 14 + 300), "g1"), ("c", at(13, 50700), "g2")], 0),
    # step 1 before `from` does not start a path either
    "step1_before_from": ([("v", at(-1), "h1"), ("c", at(-1, 60), "h2")], 0),
    # the cart after the as-of instant does not exist
    "step2_after_as_of": ([("v", at(13, 3600 * 13), "i1"), ("c", at(13, 3600 * 15), "i2")], 1),
    # a paid order completes step 3; a refunded one does not
    "paid": ([("v", at(4), "j1"), ("c", at(4, 60), "j2"), ("o", at(4, 120), "j3")], 3),
    "refunded": ([("v", at(5), "k1"), ("c", at(5, 60), "k2"), ("r", at(5, 120), "k3")], 2),
    # one event fills one step: a cart then a second cart does not skip the view
    "no_skipping": ([("c", at(6), "l1"), ("c", at(6, 60), "l2"), ("o", at(6, 120), "l3")], 0),
}


def hand_period() -> Period:
    # step 1 from 03-01 to 03-14 (UTC), as of 03-15 00:30
    return period("UTC", "2025-03-01", "2025-03-14", at(13, 3600 * 14 + 1800))


@pytest.mark.parametrize("case", list(CASES))
def test_hand_made_case(tmp_path: Path, case: str) -> None:
    items, want = CASES[case]
    evs = []
    for kind, t, eid in items:
        if kind in "or":
            evs.append(Ev("u", t, eid, "purchase", True, "paid" if kind == "o" else "refunded"))
        else:
            name = "product_view" if kind == "v" else "add_to_cart"
            evs.append(Ev("u", t, eid, name, platform="ios"))
    d = Data(evs=evs, users=["u"])
    w = SegWS(tmp_path / "w", timezone="UTC")
    d.load(w)
    steps = ["product_view", "add_to_cart", "purchase"]
    p = hand_period()
    levels = got_levels(run(w, p, steps, DAY))["(all)"]
    assert [n for n, _ in levels] == [1] * want + [0] * (3 - want)
    assert [n for n, _ in reference(d, steps, p, DAY).get("(all)", [(0, None)] * 3)] == [
        n for n, _ in levels
    ]


def test_time_to_convert_is_from_the_latest_start(tmp_path: Path) -> None:
    """views at 0 and 600 s, cart at 900 s: the path from the second view is the one that
    converts first, so the time is 300 s, not 900 s."""
    w = SegWS(tmp_path / "w", timezone="UTC")
    evs = [
        Ev("a", at(0), "1", "product_view"),
        Ev("a", at(0, 600), "2", "product_view"),
        Ev("a", at(0, 900), "3", "add_to_cart"),
        Ev("b", at(0), "4", "product_view"),
        Ev("b", at(0, 100), "5", "add_to_cart"),
        Ev("c", at(0), "6", "product_view"),
        Ev("c", at(0, 1000), "7", "add_to_cart"),
    ]
    Data(evs=evs, users=["a", "b", "c"]).load(w)
    rep = run(w, hand_period(), ["product_view", "add_to_cart"], DAY)
    assert got_levels(rep) == {"(all)": [(3, None), (3, 300.0)]}


def test_breakdown_takes_the_step1_platform(tmp_path: Path) -> None:
    w = SegWS(tmp_path / "w", timezone="UTC")
    evs = [
        # a: starts on ios, carts on android -> converts in ios only
        Ev("a", at(0), "1", "product_view", platform="ios"),
        Ev("a", at(0, 60), "2", "add_to_cart", platform="android"),
        # b: views on both; only the android path (the later start) is within the window
        Ev("b", at(0), "3", "product_view", platform="ios"),
        Ev("b", at(2), "4", "product_view", platform="android"),
        Ev("b", at(2, 60), "5", "add_to_cart", platform="ios"),
        # c: no platform
        Ev("c", at(0), "6", "product_view"),
    ]
    Data(evs=evs, users=["a", "b", "c"]).load(w)
    rep = run(w, hand_period(), ["product_view", "add_to_cart"], DAY, "platform")
    got = {g: [n for n, _ in v] for g, v in got_levels(rep, "platform").items()}
    assert got == {"(all)": [3, 2], "ios": [2, 1], "android": [1, 1], "(none)": [1, 0]}


def test_simultaneous_repeated_step_on_two_platforms(tmp_path: Path) -> None:
    """Steps view, view, cart; an android and an ios view at one instant order by event id
    ("a" first): the android path reaches the cart, the ios one stays at step 1."""
    w = SegWS(tmp_path / "w", timezone="UTC")
    evs = [
        Ev("u", at(0), "b", "product_view", platform="ios"),
        Ev("u", at(0), "a", "product_view", platform="android"),
        Ev("u", at(0, 60), "c", "add_to_cart", platform="ios"),
    ]
    d = Data(evs=evs, users=["u"])
    d.load(w)
    steps = ["product_view", "product_view", "add_to_cart"]
    p = hand_period()
    for engine in ("polars", "sql"):
        from mcrm.db import open_db
        from mcrm.reports.funnel import build

        with open_db(w.ws) as con:
            rep = build(con, w.ws, p, steps, DAY, "platform", engine=engine)
        got = {g: [n for n, _ in v] for g, v in got_levels(rep, "platform").items()}
        assert got == {"(all)": [1, 1, 1], "android": [1, 1, 1], "ios": [1, 0, 0]}, engine
    want = reference(d, steps, p, DAY, by=True)
    assert {g: [n for n, _ in v] for g, v in want.items()} == {
        "android": [1, 1, 1],
        "ios": [1, 0, 0],
    }


def test_bad_input() -> None:
    from mcrm.reports.funnel import parse_steps, parse_within

    with pytest.raises(UsageError, match="at least 2 steps"):
        parse_steps(["product_view"])
    with pytest.raises(UsageError, match="--within"):
        parse_within("tomorrow")
    with pytest.raises(UsageError, match="longer than 0"):
        parse_within("0d")
    assert parse_within("none") is None
    assert parse_within(None) == DAY
    assert parse_within("90m") == dt.timedelta(minutes=90)


def test_unknown_event_warns_with_a_suggestion(gen: tuple[SegWS, Data]) -> None:
    w, _ = gen
    p = period(ZONE, "2025-11-01", None, AS_OF)
    rep = run(w, p, ["product_view", "add_to_cartt"], DAY)
    assert len(rep.warnings) == 1
    assert "add_to_cartt" in rep.warnings[0] and "add_to_cart" in rep.warnings[0]
    assert got_levels(rep)["(all)"][1][0] == 0


def test_cli(gen: tuple[SegWS, Data], cli: Cli) -> None:
    w, d = gen
    env = {"MCRM_AS_OF": "2025-12-10T16:30"}
    args = ["report", "funnel", "product_view", "add_to_cart", "purchase", "--within", "1d"]
    r = cli(w.root, *args, "--from", "2025-10-01", "--format", "json", env=env)
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert doc["params"]["steps"] == ["product_view", "add_to_cart", "purchase"]
    assert doc["params"]["within_seconds"] == 86400
    rows = doc["tables"]["funnel"]
    p = period(ZONE, "2025-10-01", None, AS_OF)
    want = reference(d, ["product_view", "add_to_cart", "purchase"], p, DAY)["(all)"]
    assert [x["users"] for x in rows] == [n for n, _ in want]
    r = cli(w.root, *args, "--by", "platform", "--format", "csv", env=env)
    assert r.exit_code == 0 and r.stdout.splitlines()[0].startswith("platform,step,event,users")
    for bad in (
        ["report", "funnel", "product_view"],
        [*args[:4], "--within", "soon"],
        [*args[:4], "--by", "city"],
        [
            "report",
            "funnel",
            "product_view",
            "add_to_cart",
            "--from",
            "2025-12-01",
            "--to",
            "2025-11-01",
        ],
    ):
        r = cli(w.root, *bad, env=env)
        assert r.exit_code == 2, (bad, r.stderr)
        assert r.stdout == "" and r.stderr.strip()
    r = cli(w.root, "report", "funnel", "product_veiw", "add_to_cart", "-f", "json", env=env)
    assert r.exit_code == 0 and "did you mean 'product_view'" in r.stderr
