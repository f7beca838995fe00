"""RFM (SPEC §4.2, analytics reference §1) against an independent plain-Python computation.

The generated purchases are chosen to hit every rule at once: a workspace zone whose calendar
day differs from UTC's at the as-of instant, orders in CZK converted at a rate that changes
every day, refunded and cancelled orders, several orders on one local day, orders just inside
and just outside the window, orders after the as-of instant, and many ties (one-time buyers,
equal amounts, equal days) so the md5 tie-break decides most scores.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mcrm.cli.main import app
from mcrm.segments.analytics import rfm_sql
from mcrm.segments.compile import Ctx
from mcrm.segments.model import load_segments
from tests.segdata import SegWS, local_date, md5_hex, ntile5, rfm_segment_name

ZONE = "America/New_York"
D = dt.datetime(2025, 6, 30, 3, 30)  # 2025-06-29 23:30 in New York: local date differs
WINDOW = 120
SEGMENTS = (
    "champions loyal_customers potential_loyalists new_customers promising need_attention "
    "about_to_sleep at_risk cant_lose_them hibernating"
).split()


def rate_for(day: dt.date) -> Decimal:
    """CZK -> EUR, different every day so the order's local date matters."""
    return Decimal("0.040") + Decimal(day.toordinal() % 5) / 1000


@dataclass
class Data:
    purchases: list[dict[str, Any]]
    fx: list[dict[str, Any]]


def generate(seed: int, n_users: int = 60) -> Data:
    rng = random.Random(seed)
    orders: list[dict[str, Any]] = []
    day0 = D.replace(hour=0, minute=0)
    n = 0

    def order(uid: str, ts: dt.datetime, status: str = "paid") -> None:
        nonlocal n
        n += 1
        if rng.random() < 0.3:
            cur, amount = "CZK", str(rng.choice([250, 500, 500, 1234]))
        else:
            cur, amount = "EUR", rng.choice(["10", "20", "20", "35.5", "99.99"])
        orders.append(
            {
                "order_id": f"o{n:05d}",
                "user_id": uid,
                "timestamp": ts,
                "amount": amount,
                "currency": cur,
                "status": status,
            }
        )

    for i in range(n_users):
        uid = f"u{i:03d}"
        kind = rng.random()
        if kind < 0.08:  # only refunded / cancelled orders: unscored
            order(
                uid,
                day0 - dt.timedelta(days=rng.randint(1, 60)),
                rng.choice(["refunded", "cancelled"]),
            )
            continue
        if kind < 0.13:  # bought only before the window: unscored
            order(uid, day0 - dt.timedelta(days=rng.randint(WINDOW + 2, 200), hours=-5))
            continue
        for _ in range(rng.choice([1, 1, 1, 1, 2, 2, 3, 4, 6])):
            ago = rng.choice([0, 0, 1, 3, 7, 7, 14, 30, 30, 60, 90, 119, 125, 135])
            hour = rng.choice([1, 2, 3, 4, 12, 18, 23])
            ts = (
                day0
                - dt.timedelta(days=ago)
                + dt.timedelta(hours=hour, minutes=rng.randint(0, 59))
            )
            status = rng.choices(["paid", "refunded", "cancelled"], [85, 10, 5])[0]
            order(uid, ts, status)
            if rng.random() < 0.3:  # a second order the same (local) day
                order(uid, ts + dt.timedelta(minutes=20))
        if rng.random() < 0.15:  # history cut by the window, to the second
            order(uid, D - dt.timedelta(days=WINDOW))
            order(uid, D - dt.timedelta(days=WINDOW, seconds=1))
    first = D.date() - dt.timedelta(days=220)
    fx = [
        {
            "date": (first + dt.timedelta(days=k)).isoformat(),
            "currency": "CZK",
            "rate": str(rate_for(first + dt.timedelta(days=k))),
        }
        for k in range(240)
    ]
    return Data(orders, fx)


@dataclass(frozen=True)
class Scored:
    recency: int
    frequency: int
    monetary: Decimal
    r: int
    f: int
    m: int


def reference(orders: list[dict[str, Any]], as_of: dt.datetime = D) -> dict[str, Scored]:
    """RFM by the book: analytics reference §1, computed without SQL."""
    lo = as_of - dt.timedelta(days=WINDOW)
    today = local_date(as_of, ZONE)
    days: dict[str, set[dt.date]] = {}
    money: dict[str, Decimal] = {}
    for o in orders:
        ts = o["timestamp"]
        if o["status"] != "paid" or not lo <= ts <= as_of:
            continue
        day = local_date(ts, ZONE)
        amount = Decimal(o["amount"])
        base = (
            amount
            if o["currency"] == "EUR"
            else (amount * rate_for(day)).quantize(Decimal("0.001"))
        )
        days.setdefault(o["user_id"], set()).add(day)
        money[o["user_id"]] = money.get(o["user_id"], Decimal(0)) + base
    rec = {u: (today - max(d)).days for u, d in days.items()}
    freq = {u: len(d) for u, d in days.items()}
    users = sorted(days)
    r = ntile5(sorted(users, key=lambda u: (-rec[u], md5_hex(u), u)))
    f = ntile5(sorted(users, key=lambda u: (freq[u], md5_hex(u), u)))
    m = ntile5(sorted(users, key=lambda u: (money[u], md5_hex(u), u)))
    return {u: Scored(rec[u], freq[u], money[u], r[u], f[u], m[u]) for u in users}


Built = Callable[[int], tuple[SegWS, Data]]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One imported workspace per seed, shared by the module's tests (they only read data)."""
    cache: dict[int, tuple[SegWS, Data]] = {}

    def get(seed: int) -> tuple[SegWS, Data]:
        if seed not in cache:
            w = SegWS(tmp_path_factory.mktemp(f"rfm{seed}"), ZONE)
            data = generate(seed)
            w.load("fx-rates", data.fx)
            w.load("purchases", data.purchases)
            cache[seed] = (w, data)
        w, data = cache[seed]
        w.write_segments({"rfm": {"window": f"{WINDOW}d"}, "segments": {}})
        return w, data

    return get


def sql_rfm(w: SegWS) -> dict[str, tuple[Any, ...]]:
    seg = load_segments(w.root)
    rows = w.query(rfm_sql(Ctx(seg, D, ZONE)))
    return {r[0]: tuple(r[1:]) for r in rows}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_measures_and_scores_match_an_independent_computation(built: Built, seed: int) -> None:
    w, data = built(seed)
    ref = reference(data.purchases)
    got = sql_rfm(w)
    assert set(got) == set(ref)
    assert len(ref) >= 30
    for uid, s in ref.items():
        rec, freq, mon, r, f, m, cell, segment = got[uid]
        assert (rec, freq, mon) == (s.recency, s.frequency, s.monetary), uid
        assert (r, f, m) == (s.r, s.f, s.m), uid
        assert cell == f"{s.r}{s.f}{s.m}"
        assert segment == rfm_segment_name(s.r, s.f, "rf10")


@pytest.mark.parametrize("seed", [2, 5])  # n = 5q + 3 and 5q + 4
def test_ntile_puts_the_extra_users_in_the_lowest_scores(built: Built, seed: int) -> None:
    w, data = built(seed)
    got = sql_rfm(w)
    n = len(got)
    q, s = divmod(n, 5)
    assert s != 0, "pick a seed where n is not a multiple of 5"
    expected = [q + 1 if k < s else q for k in range(5)]
    for idx in (3, 4, 5):  # r, f, m
        sizes = Counter(v[idx] for v in got.values())
        assert [sizes[k] for k in range(1, 6)] == expected


def test_the_data_exercises_every_rule() -> None:
    """Guard: the generator really produces what the other tests rely on."""
    data = generate(1)
    p = data.purchases
    assert any(o["currency"] == "CZK" and o["status"] == "paid" for o in p)
    assert any(o["status"] == "refunded" for o in p) and any(o["status"] == "cancelled" for o in p)
    assert any(o["timestamp"] > D for o in p)
    assert any(o["timestamp"] < D - dt.timedelta(days=WINDOW) for o in p)
    # two orders whose UTC dates differ from their New York dates
    assert any(local_date(o["timestamp"], ZONE) != o["timestamp"].date() for o in p)
    ref = reference(p)
    assert max(Counter(s.frequency for s in ref.values()).values()) / len(ref) > 0.2


@pytest.mark.parametrize("scheme", ["rf10", "rfm11"])
def test_segment_membership_matches_the_reference(built: Built, scheme: str) -> None:
    w, data = built(2)
    ref = reference(data.purchases)
    names = [*SEGMENTS, "lost"] if scheme == "rfm11" else SEGMENTS
    segs: dict[str, Any] = {n: {"where": {"rfm": n}} for n in names}
    segs["r3"] = {"where": {"rfm": {"r": 3}}}
    segs["f12"] = {"where": {"rfm": {"f": [1, 2]}}}
    segs["m45"] = {"where": {"rfm": {"m": [4, 5]}}}
    segs["recent_rare"] = {"where": {"rfm": {"r": [4, 5], "f": [1, 2], "m": [2, 5]}}}
    segs["best_two"] = {"where": {"rfm": ["champions", "loyal_customers"]}}
    segs["not_champions"] = {"where": {"not": {"rfm": "champions"}}}
    w.write_segments({"rfm": {"window": f"{WINDOW}d", "scheme": scheme}, "segments": segs})
    _, got = w.compute_members(segs, D)

    expect_seg = {u: rfm_segment_name(s.r, s.f, scheme) for u, s in ref.items()}
    for n in names:
        assert got[n] == {u for u, s in expect_seg.items() if s == n}, n
    # every scored customer is in exactly one named segment; unscored in none
    assert Counter(u for n in names for u in got[n]) == Counter(set(ref))
    assert got["r3"] == {u for u, s in ref.items() if s.r == 3}
    assert got["f12"] == {u for u, s in ref.items() if s.f <= 2}
    assert got["m45"] == {u for u, s in ref.items() if s.m >= 4}
    assert got["recent_rare"] == {
        u for u, s in ref.items() if s.r >= 4 and s.f <= 2 and 2 <= s.m <= 5
    }
    assert got["best_two"] == got["champions"] | got["loyal_customers"]
    # users exist from their first order on (first_seen); later sign-ups are not evaluated
    everyone = {o["user_id"] for o in data.purchases if o["timestamp"] <= D}
    assert everyone <= w.user_ids()
    assert got["not_champions"] == everyone - got["champions"]
    assert everyone - set(ref) <= got["not_champions"]  # unscored users included
    if scheme == "rfm11":
        assert got["lost"] == {u for u, s in ref.items() if s.r == 1 and s.f == 1}
        assert got["hibernating"].isdisjoint(got["lost"])


def test_rf10_and_rfm11_differ_only_by_lost(built: Built) -> None:
    w, data = built(1)
    ref = reference(data.purchases)
    w.write_segments(
        {"rfm": {"window": f"{WINDOW}d"}, "segments": {"h": {"where": {"rfm": "hibernating"}}}}
    )
    _, a = w.compute_members(["h"], D)
    w.write_segments(
        {
            "rfm": {"window": f"{WINDOW}d", "scheme": "rfm11"},
            "segments": {"h": {"where": {"rfm": "hibernating"}}, "l": {"where": {"rfm": "lost"}}},
        }
    )
    _, b = w.compute_members(["h", "l"], D)
    lost = {u for u, s in ref.items() if (s.r, s.f) == (1, 1)}
    assert lost, "the data should have R1 F1 customers"
    assert b["l"] == lost
    assert a["h"] == b["h"] | lost


def _warning_for(warnings: list[str], measure: str) -> str | None:
    return next((x for x in warnings if x.startswith(f"rfm: {measure} = ")), None)


@pytest.mark.parametrize("seed", [1, 5])
def test_tie_warning_when_one_value_covers_more_than_20_percent(built: Built, seed: int) -> None:
    w, data = built(seed)
    w.write_segments(
        {"rfm": {"window": f"{WINDOW}d"}, "segments": {"c": {"where": {"rfm": "champions"}}}}
    )
    res = w.compute(["c"], D)
    ref = reference(data.purchases)
    n = len(ref)
    for measure, values in (
        ("recency_days", [s.recency for s in ref.values()]),
        ("frequency", [s.frequency for s in ref.values()]),
        ("monetary", [s.monetary for s in ref.values()]),
    ):
        value, count = sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0]))[0]
        warning = _warning_for(res.warnings, measure)
        if count / n > 0.2:
            assert warning is not None, (measure, res.warnings)
            assert f"covers {count / n:.0%} of customers" in warning
            if measure != "monetary":
                assert warning.startswith(f"rfm: {measure} = {value} covers")
        else:
            assert warning is None, warning


def test_no_tie_warning_when_values_are_spread(tmp_path: Path) -> None:
    w = SegWS(tmp_path / "spread")
    # 10 customers, all different recency, frequency and spend
    rows = []
    for i in range(10):
        for k in range(i + 1):
            rows.append(
                {
                    "order_id": f"o{i}_{k}",
                    "user_id": f"u{i}",
                    "timestamp": D - dt.timedelta(days=i * 11 + k),
                    "amount": str(10 * (i + 1) + k),
                    "currency": "EUR",
                }
            )
    w.load("purchases", rows)
    w.write_segments({"segments": {"c": {"where": {"rfm": "champions"}}}})
    res = w.compute(["c"], D)
    assert not [x for x in res.warnings if x.startswith("rfm:")]


def test_fewer_than_five_customers_score_only_up_to_n(tmp_path: Path) -> None:
    w = SegWS(tmp_path / "few")
    w.load(
        "purchases",
        [
            {
                "order_id": f"o{i}",
                "user_id": f"u{i}",
                "timestamp": D - dt.timedelta(days=i),
                "amount": "10",
                "currency": "EUR",
            }
            for i in range(3)
        ],
    )
    w.write_segments({"segments": {f"r{k}": {"where": {"rfm": {"r": k}}} for k in range(1, 6)}})
    res, got = w.compute_members([f"r{k}" for k in range(1, 6)], D)
    # most recent (u0) best: r = 3, then u1 = 2, u2 = 1; nobody reaches 4 or 5
    assert got == {"r1": {"u2"}, "r2": {"u1"}, "r3": {"u0"}, "r4": set(), "r5": set()}
    assert any("only 3 scored customer" in x for x in res.warnings)


def test_a_lone_customer_scores_111(tmp_path: Path) -> None:
    w = SegWS(tmp_path / "one")
    w.load(
        "purchases",
        [{"order_id": "o", "user_id": "solo", "timestamp": D, "amount": "5", "currency": "EUR"}],
    )
    w.write_segments({"segments": {"x": {"where": {"rfm": {"r": 1, "f": 1, "m": 1}}}}})
    _, got = w.compute_members(["x"], D)
    assert got["x"] == {"solo"}


# ---------------------------------------------------------------------------------------------
# `mcrm rfm` through the CLI


def run_cli(w: SegWS, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--workspace", str(w.root), *args])
    return result.exit_code, result.stdout, result.stderr


def test_rfm_grid_totals_add_up(built: Built) -> None:
    w, data = built(3)
    ref = reference(data.purchases)
    at = "2025-06-30T03:30:00Z"
    code, out, err = run_cli(w, "rfm", "--as-of", at, "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    by_seg = {r["segment"]: r for r in rows}
    assert set(by_seg) == set(SEGMENTS)
    expect = Counter(rfm_segment_name(s.r, s.f, "rf10") for s in ref.values())
    assert {k: v["customers"] for k, v in by_seg.items()} == {s: expect[s] for s in SEGMENTS}
    assert sum(r["customers"] for r in rows) == len(ref)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    for name, row in by_seg.items():
        mons = [s.monetary for s in ref.values() if rfm_segment_name(s.r, s.f, "rf10") == name]
        if mons:
            assert float(row["avg_monetary"]) == pytest.approx(
                float(sum(mons) / len(mons)), abs=0.011
            )
        else:
            assert row["avg_monetary"] is None
    # unscored: paid customers up to D without a paid order in the window
    paid_ever = {
        o["user_id"] for o in data.purchases if o["status"] == "paid" and o["timestamp"] <= D
    }
    assert f"{len(ref)} scored customers; {len(paid_ever - set(ref))} unscored" in err
    assert "rfm: frequency = 1 covers" in err  # the tie warning reaches stderr

    code, out, err = run_cli(w, "rfm", "--as-of", at, "--cells", "--format", "json")
    assert code == 0, err
    cells = json.loads(out)
    assert len(cells) == 25
    assert sorted((c["r"], c["f"]) for c in cells) == [
        (r, f) for r in range(1, 6) for f in range(1, 6)
    ]
    cell_counts = Counter((s.r, s.f) for s in ref.values())
    for c in cells:
        assert c["customers"] == cell_counts[(c["r"], c["f"])]
        assert c["segment"] == rfm_segment_name(c["r"], c["f"], "rf10")
    assert sum(c["customers"] for c in cells) == len(ref)


def test_rfm_compare_to_transition_matrix(built: Built) -> None:
    w, data = built(2)
    d0 = D - dt.timedelta(days=30)
    now_ref = reference(data.purchases)
    then_ref = reference(data.purchases, d0)
    code, out, err = run_cli(
        w,
        "rfm",
        "--as-of",
        "2025-06-30T03:30:00Z",
        "--compare-to",
        "2025-05-31T03:30:00Z",
        "--format",
        "json",
    )
    assert code == 0, err
    rows = json.loads(out)
    got = {(r["from_segment"], r["to_segment"]): r["customers"] for r in rows}
    expect: Counter[tuple[str, str]] = Counter()
    for u in set(now_ref) | set(then_ref):
        a = rfm_segment_name(then_ref[u].r, then_ref[u].f, "rf10") if u in then_ref else "none"
        b = rfm_segment_name(now_ref[u].r, now_ref[u].f, "rf10") if u in now_ref else "none"
        expect[(a, b)] += 1
    assert got == dict(expect)
    totals: Counter[str] = Counter()
    for r in rows:
        totals[r["from_segment"]] += r["customers"]
    for r in rows:
        assert r["row_share"] == pytest.approx(r["customers"] / totals[r["from_segment"]])
    assert ("none", "none") not in got
