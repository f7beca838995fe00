"""Lifecycle stages as of D (SPEC §4.3, analytics reference §6), rule by rule and boundary by
boundary, with the default thresholds new 7, active 30, dormant 60, churn 90.

One workspace holds one user per case; a single compute stores every user's stage in
`lifecycle_history`, and one segment per stage must agree with it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from tests.segdata import SegWS

D = dt.datetime(2025, 3, 1, 12, 0)
STAGES = ("new", "reactivated", "active", "at_risk", "dormant", "churned")

# user -> (activities as (days before D, kind), expected stage or None)
# kinds: s = session_start (an activity event), p = paid purchase, r = refunded purchase,
# c = cancelled purchase, o = another event (not an activity)
CASES: dict[str, tuple[list[tuple[int, str]], str | None]] = {
    # new: first activity within new_days
    "new_today": ([(0, "s")], "new"),
    "new_exactly_7": ([(7, "s")], "new"),
    "new_8_is_active": ([(8, "s")], "active"),
    "new_first_long_ago": ([(8, "s"), (1, "s")], "active"),
    # active: last activity within active_days
    "active_exactly_30": ([(40, "s"), (30, "s")], "active"),
    "at_risk_31": ([(40, "s"), (31, "s")], "at_risk"),
    # at_risk: more than active_days, at most dormant_days
    "at_risk_exactly_60": ([(70, "s"), (60, "s")], "at_risk"),
    "dormant_61": ([(70, "s"), (61, "s")], "dormant"),
    # dormant: more than dormant_days, at most churn_days
    "dormant_exactly_90": ([(95, "s"), (90, "s")], "dormant"),
    "churned_91": ([(95, "s"), (91, "s")], "churned"),
    "churned_long_ago": ([(400, "s")], "churned"),
    # reactivated: a return within active_days after a gap longer than dormant_days
    "react_gap_61": ([(66, "s"), (5, "s")], "reactivated"),
    "react_gap_exactly_60": ([(65, "s"), (5, "s")], "active"),
    "react_return_exactly_30_ago": ([(91, "s"), (30, "s")], "reactivated"),
    "react_return_31_ago": ([(100, "s"), (31, "s"), (5, "s")], "active"),
    "react_stays_after_next_session": ([(100, "s"), (20, "s"), (3, "s")], "reactivated"),
    "react_from_churned": ([(300, "s"), (2, "s")], "reactivated"),
    # purchases: only paid orders are activity
    "purchase_paid": ([(20, "p")], "active"),
    "purchase_refunded_only": ([(3, "r")], None),
    "purchase_cancelled_only": ([(3, "c")], None),
    "refund_after_session": ([(50, "s"), (3, "r")], "at_risk"),
    "purchase_returns": ([(80, "p"), (4, "p")], "reactivated"),
    # other events are not activity; no activity -> no stage
    "other_event_only": ([(3, "o")], None),
    "other_after_session": ([(45, "s"), (1, "o")], "at_risk"),
    "no_activity": ([], None),
    # activity after D is invisible as of D
    "future_session": ([(35, "s"), (-1, "s")], "at_risk"),
}


def ts(days_ago: int, hour: int = 10) -> dt.datetime:
    day = D.date() - dt.timedelta(days=days_ago)
    return dt.datetime(day.year, day.month, day.day, hour, 0)


def load_cases(w: SegWS, cases: dict[str, tuple[list[tuple[int, str]], str | None]]) -> None:
    users = [{"user_id": u, "first_seen": ts(500)} for u in cases]
    events: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    for uid, (acts, _) in cases.items():
        for k, (ago, kind) in enumerate(acts):
            if kind in "so":
                name = "session_start" if kind == "s" else "page_view"
                events.append({"user_id": uid, "name": name, "timestamp": ts(ago)})
            else:
                status = {"p": "paid", "r": "refunded", "c": "cancelled"}[kind]
                orders.append(
                    {
                        "order_id": f"{uid}-{k}",
                        "user_id": uid,
                        "timestamp": ts(ago),
                        "amount": "10",
                        "currency": "EUR",
                        "status": status,
                    }
                )
    w.load("users", users)
    w.load("events", events)
    w.load("purchases", orders)


def stage_segments() -> dict[str, Any]:
    segs: dict[str, Any] = {s: {"where": {"lifecycle": s}} for s in STAGES}
    segs["some_stage"] = {"where": {"lifecycle": list(STAGES)}}
    segs["no_stage"] = {"where": {"not": {"lifecycle": list(STAGES)}}}
    return {"segments": segs}


@dataclass
class Computed:
    history: dict[str, str]
    members: dict[str, set[str]]


@pytest.fixture(scope="module")
def computed(tmp_path_factory: pytest.TempPathFactory) -> Computed:
    w = SegWS(tmp_path_factory.mktemp("lifecycle"))
    load_cases(w, CASES)
    w.write_segments(stage_segments())
    res, members = w.compute_members([*STAGES, "some_stage", "no_stage"], D)
    hist = {
        str(u): str(s)
        for u, s in w.query(
            "SELECT user_id, stage FROM lifecycle_history WHERE run_id = ?", [res.run_id]
        )
    }
    return Computed(hist, members)


@pytest.mark.parametrize("user", list(CASES))
def test_stage_rule_and_boundary(computed: Computed, user: str) -> None:
    expected = CASES[user][1]
    assert computed.history.get(user) == expected
    for s in STAGES:
        assert (user in computed.members[s]) == (s == expected), s
    assert (user in computed.members["some_stage"]) == (expected is not None)
    assert (user in computed.members["no_stage"]) == (expected is None)


def test_stages_partition_the_users_with_activity(computed: Computed) -> None:
    seen = [u for s in STAGES for u in computed.members[s]]
    assert len(seen) == len(set(seen))
    assert set(seen) == {u for u, (_, e) in CASES.items() if e is not None}


# ---------------------------------------------------------------------------------------------
# zones: calendar days are taken in the workspace zone


ZONE_CASES: dict[str, list[dt.datetime]] = {
    # 23:30 UTC on Jan 29 is 07:30 on Jan 30 in Shanghai: 30 days before Mar 1 there, 31 in UTC
    "late_utc": [dt.datetime(2024, 12, 1, 10), dt.datetime(2025, 1, 29, 23, 30)],
    # 15:00 UTC on Feb 22 is 23:00 Feb 22 in Shanghai; D2 (17:00 UTC Mar 1) is Mar 2 there
    "first_near_midnight": [dt.datetime(2025, 2, 22, 15, 0)],
}


@pytest.mark.parametrize(
    ("zone", "as_of", "expected"),
    [
        ("Asia/Shanghai", D, {"late_utc": "active", "first_near_midnight": "new"}),
        ("UTC", D, {"late_utc": "at_risk", "first_near_midnight": "new"}),
        (
            "Asia/Shanghai",
            dt.datetime(2025, 3, 1, 17, 0),
            {"late_utc": "at_risk", "first_near_midnight": "active"},
        ),
        (
            "UTC",
            dt.datetime(2025, 3, 1, 17, 0),
            {"late_utc": "at_risk", "first_near_midnight": "new"},
        ),
    ],
)
def test_day_arithmetic_uses_the_workspace_zone(
    tmp_path_factory: pytest.TempPathFactory,
    zone: str,
    as_of: dt.datetime,
    expected: dict[str, str],
) -> None:
    w = SegWS(tmp_path_factory.mktemp("zone"), zone)
    w.load(
        "events",
        [
            {"user_id": u, "name": "session_start", "timestamp": t}
            for u, times in ZONE_CASES.items()
            for t in times
        ],
    )
    w.write_segments(stage_segments())
    res, members = w.compute_members(list(STAGES), as_of)
    got = {u: s for s in STAGES for u in members[s]}
    assert got == expected


def test_custom_activity_and_thresholds(tmp_path_factory: pytest.TempPathFactory) -> None:
    w = SegWS(tmp_path_factory.mktemp("custom"))
    cases: dict[str, tuple[list[tuple[int, str]], str | None]] = {
        "a": ([(20, "o"), (12, "o")], "at_risk"),  # page_view is activity here
        "b": ([(20, "s"), (2, "s")], None),  # session_start is not
        "c": ([(30, "o"), (3, "p")], "dormant"),  # purchase is not in the list
        "d": ([(3, "o")], "new"),
    }
    load_cases(w, cases)
    spec = stage_segments()
    spec["lifecycle"] = {
        "activity": ["page_view"],
        "new_days": 3,
        "active_days": 10,
        "dormant_days": 25,
        "churn_days": 40,
    }
    w.write_segments(spec)
    _, members = w.compute_members(list(STAGES), D)
    got = {u: s for s in STAGES for u in members[s]}
    assert got == {u: e for u, (_, e) in cases.items() if e is not None}


# ---------------------------------------------------------------------------------------------
# lifecycle_change after computes at different as-of times


@pytest.fixture(scope="module")
def change_ws(tmp_path_factory: pytest.TempPathFactory) -> SegWS:
    w = SegWS(tmp_path_factory.mktemp("change"))
    cases: dict[str, tuple[list[tuple[int, str]], str | None]] = {
        # D1 = D - 20d: last 65 days before -> dormant; D: came back 5 days ago -> reactivated
        "dormant_to_react": ([(90, "s"), (85, "s"), (5, "s")], None),
        # D1: dormant (65); D: dormant (85)
        "stays_dormant": ([(90, "s"), (85, "s")], None),
        # D1: churned (130); D: reactivated
        "churned_to_react": ([(150, "s"), (3, "s")], None),
        # D1: active; D: active
        "stays_active": ([(40, "s"), (25, "s"), (2, "s")], None),
        # D1: at_risk (45 ago); D: dormant (65 ago)
        "at_risk_to_dormant": ([(80, "s"), (65, "s")], None),
    }
    load_cases(w, cases)
    w.write_segments(stage_segments())
    w.compute(["new"], D - dt.timedelta(days=20))
    w.compute(["new"], D)
    return w


@pytest.mark.parametrize(
    ("spec", "as_of", "expected"),
    [
        ({"from": "dormant", "to": "reactivated", "within": "7d"}, D, {"dormant_to_react"}),
        (
            {"from": ["dormant", "churned"], "to": "reactivated", "within": "7d"},
            D,
            {"dormant_to_react", "churned_to_react"},
        ),
        ({"from": "at_risk", "to": "dormant", "within": "7d"}, D, {"at_risk_to_dormant"}),
        ({"from": "active", "to": "active"}, D, {"stays_active"}),
        ({"from": "dormant", "to": "churned", "within": "7d"}, D, set()),
        # the D transition is 5 days old at D+5 (inside 7d) and 10 days old at D+10 (outside)
        (
            {"from": "dormant", "to": "reactivated", "within": "7d"},
            D + dt.timedelta(days=5),
            {"dormant_to_react"},
        ),
        (
            {"from": "dormant", "to": "reactivated", "within": "7d"},
            D + dt.timedelta(days=10),
            set(),
        ),
        (
            {"from": "dormant", "to": "reactivated", "within": "14d"},
            D + dt.timedelta(days=10),
            {"dormant_to_react"},
        ),
    ],
)
def test_lifecycle_change_between_stored_evaluations(
    change_ws: SegWS, spec: dict[str, Any], as_of: dt.datetime, expected: set[str]
) -> None:
    assert change_ws.segment({"lifecycle_change": spec}, as_of) == expected


def test_lifecycle_change_needs_two_evaluations(tmp_path_factory: pytest.TempPathFactory) -> None:
    w = SegWS(tmp_path_factory.mktemp("single"))
    load_cases(w, {"x": ([(90, "s"), (85, "s"), (5, "s")], None)})
    # only one evaluation (this compute): no previous stage, no change
    got = w.segment({"lifecycle_change": {"from": "dormant", "to": "reactivated"}}, D)
    assert got == set()
    got = w.segment({"lifecycle": "reactivated"}, D)
    assert got == {"x"}
