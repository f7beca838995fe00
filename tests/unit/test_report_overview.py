"""`mcrm report overview` and `features` against plain-Python computations of analytics.md §10
and §11 on generated data (workspace zone Europe/Prague, across the March 2026 DST change).

The generator mixes what the definitions single out: anonymous-only units, events without a
session id (gaps of 10, 30 and 31+ minutes), background events, session ids reused by different
users, refunded and cancelled orders, CZK orders converted at the rate of their local date,
users on two platforms, payers with no app events, and data after the as-of instant.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.segdata import SegWS

ZONE = "Europe/Prague"
AS_OF = dt.datetime(2026, 3, 31, 21, 30)  # naive UTC: 23:30 local, the day after DST began
START, END = dt.date(2026, 3, 10), dt.date(2026, 3, 31)
BACKGROUND = {"install", "location"}
SEGMENTS = {
    "lifecycle": {"activity": ["session_start", "purchase"]},
    "segments": {"buyers": {"where": {"purchase": {"within": "120d"}}}},
}


def local_day(t: dt.datetime) -> dt.date:
    return t.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(ZONE)).date()


def midnight(d: dt.date) -> dt.datetime:
    return (
        dt.datetime.combine(d, dt.time(), tzinfo=ZoneInfo(ZONE))
        .astimezone(dt.UTC)
        .replace(tzinfo=None)
    )


def rate(d: dt.date) -> Decimal:
    return Decimal("0.04") if d.toordinal() % 2 else Decimal("0.05")


@dataclass
class Data:
    events: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    users: list[str] = field(default_factory=list)


def generate(seed: int = 5) -> Data:
    rng = random.Random(seed)
    data = Data()
    n = 0

    def ev(unit: str, anon: bool, name: str, t: dt.datetime, **kw: Any) -> None:
        nonlocal n
        n += 1
        row = {"event_id": f"e{n:05d}", "name": name, "timestamp": t, **kw}
        row["anonymous_id" if anon else "user_id"] = unit
        data.events.append(row)

    units = [(f"u{i:02d}", False) for i in range(24)] + [(f"a{i:02d}", True) for i in range(4)]
    for unit, anon in units:
        if not anon:
            data.users.append(unit)
        home = rng.choice(["ios", "android", "web"])
        country = rng.choice(["CZ", "IT", None])
        ev(
            unit,
            anon,
            "install",
            dt.datetime(2026, 1, 1, 8) + dt.timedelta(hours=rng.randint(0, 500)),
        )
        for day_off in sorted(rng.sample(range(0, 75), rng.randint(3, 25))):
            day = dt.date(2026, 1, 20) + dt.timedelta(days=day_off)
            for sn in range(rng.randint(1, 2)):
                plat = home if rng.random() < 0.85 else rng.choice(["ios", "android"])
                osn = {"ios": "ios", "android": "android", "web": rng.choice(["chrome", None])}[
                    plat
                ]
                t0 = dt.datetime.combine(day, dt.time(rng.randint(0, 23), rng.randint(0, 59)))
                sid = f"{day_off}-{sn}"  # the same ids for every unit: sessions are per unit
                common = {"session_id": sid, "platform": plat, "os": osn, "country": country}
                ev(unit, anon, "session_start", t0, **common)
                for k in range(rng.randint(0, 4)):
                    t = t0 + dt.timedelta(minutes=rng.randint(0, 40), seconds=k)
                    name = rng.choice(["screen_view", "product_view", "add_to_cart"])
                    screen = rng.choice(["Home", "ProductDetail", "Search"])
                    ev(unit, anon, name, t, screen=screen, **common)
            if rng.random() < 0.3:  # taps without a session id: gaps of 10, 30, 31, 45 minutes
                t = dt.datetime.combine(day, dt.time(rng.randint(0, 20), 0))
                for gap in rng.sample([10, 30, 31, 45, 5], 3):
                    t += dt.timedelta(minutes=gap)
                    ev(unit, anon, "tap", t, platform=home)
            if rng.random() < 0.3:
                t = dt.datetime.combine(day, dt.time(rng.randint(0, 23)))
                ev(unit, anon, "location", t, platform=home)
    # one session on two platforms: it counts in both groups, with its whole length
    t_mx = dt.datetime(2026, 3, 20, 9)
    ev("u03", False, "session_start", t_mx, session_id="mx", platform="ios", os="ios")
    ev("u03", False, "product_view", t_mx + dt.timedelta(minutes=7), session_id="mx",
       platform="android", os="android", screen="Home")  # fmt: skip
    # one user on two platforms on the last day, and data after the as-of instant
    ev(
        "u00",
        False,
        "session_start",
        AS_OF - dt.timedelta(hours=2),
        session_id="x1",
        platform="ios",
        os="ios",
    )
    ev(
        "u00",
        False,
        "session_start",
        AS_OF - dt.timedelta(hours=1),
        session_id="x2",
        platform="android",
        os="android",
    )
    ev(
        "u01",
        False,
        "session_start",
        AS_OF + dt.timedelta(minutes=5),
        session_id="late",
        platform="ios",
        os="ios",
    )
    # orders: users with events and payers without any
    payers = [f"u{i:02d}" for i in range(0, 24, 2)] + ["p1", "p2"]
    data.users += ["p1", "p2"]
    k = 0
    for uid in payers:
        for _ in range(rng.randint(1, 5)):
            k += 1
            t = dt.datetime(2026, 1, 15) + dt.timedelta(minutes=rng.randint(0, 78 * 24 * 60))
            data.orders.append(
                {
                    "order_id": f"o{k:04d}",
                    "user_id": uid,
                    "timestamp": t,
                    "amount": f"{rng.randint(50, 3000)}.{rng.randint(0, 9)}",
                    "currency": rng.choice(["EUR", "CZK", "CZK"]),
                    "status": rng.choice(["paid", "paid", "paid", "refunded", "cancelled"]),
                }
            )
    return data


def load(root: Path, data: Data) -> SegWS:
    w = SegWS(root, timezone=ZONE)
    w.write_segments(SEGMENTS)
    days = [dt.date(2025, 12, 1) + dt.timedelta(days=i) for i in range(160)]
    w.load("fx-rates", [{"date": d, "currency": "CZK", "rate": str(rate(d))} for d in days])
    w.load("users", [{"user_id": u, "first_seen": dt.datetime(2025, 12, 1)} for u in data.users])
    w.load("events", data.events)
    w.load("purchases", data.orders)
    return w


# ---------------------------------------------------------------------------------------------
# the reference: plain Python over the generated rows


class Ref:
    def __init__(self, data: Data, start: dt.date, end: dt.date) -> None:
        self.start, self.last = start, min(end, local_day(AS_OF))
        self.start_ts = midnight(start)
        self.end_ts = min(
            midnight(end + dt.timedelta(days=1)) - dt.timedelta(microseconds=1), AS_OF
        )
        self.users = set(data.users)
        # activity: (unit, day, platform, os)
        self.act: list[tuple[str, dt.date, str | None, str | None, str | None]] = []
        for e in data.events:
            if e["name"] == "session_start" and e["timestamp"] <= AS_OF:
                unit = e.get("user_id") or e["anonymous_id"]
                self.act.append(
                    (
                        unit,
                        local_day(e["timestamp"]),
                        e.get("platform"),
                        e.get("os"),
                        e.get("country"),
                    )
                )
        self.paid = [
            (
                o["user_id"],
                o["timestamp"],
                Decimal(o["amount"])
                * (rate(local_day(o["timestamp"])) if o["currency"] == "CZK" else Decimal(1)),
            )
            for o in data.orders
            if o["status"] == "paid" and o["timestamp"] <= AS_OF
        ]
        for uid, t, _ in self.paid:
            self.act.append((uid, local_day(t), None, None, None))
        self.events = [
            e
            for e in data.events
            if self.start_ts <= e["timestamp"] <= self.end_ts and e["name"] not in BACKGROUND
        ]

    def groups_of_days(self, dim: str | None) -> dict[tuple[str, dt.date], set[str]]:
        vals: dict[tuple[str, dt.date], set[str]] = defaultdict(set)
        for unit, day, plat, osn, country in self.act:
            v = {"platform": plat, "os": osn, "country": country, None: "(all)"}[dim]
            vals[(unit, day)]
            if v is not None:
                vals[(unit, day)].add(v)
        return {k: (v or {"(none)"}) for k, v in vals.items()}

    def sessions(self, dim: str | None) -> list[tuple[str, float, set[str]]]:
        by_sid: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        loose: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in self.events:
            unit = e.get("user_id") or e["anonymous_id"]
            if e.get("session_id"):
                by_sid[(unit, e["session_id"])].append(e)
            else:
                loose[unit].append(e)
        out: list[list[dict[str, Any]]] = list(by_sid.values())
        for _, evs in loose.items():
            evs.sort(key=lambda e: (e["timestamp"], e["event_id"]))
            cur = [evs[0]]
            for prev, e in zip(evs, evs[1:], strict=False):
                if e["timestamp"] - prev["timestamp"] > dt.timedelta(minutes=30):
                    out.append(cur)
                    cur = []
                cur.append(e)
            out.append(cur)
        res = []
        for evs in out:
            ts = [e["timestamp"] for e in evs]
            unit = evs[0].get("user_id") or evs[0]["anonymous_id"]
            vals = {e.get(dim) for e in evs if dim and e.get(dim)} if dim else {"(all)"}
            res.append((unit, (max(ts) - min(ts)).total_seconds(), vals or {"(none)"}, min(ts)))
        return res  # type: ignore[return-value]

    def summary(self, dim: str | None) -> dict[str, dict[str, Any]]:
        gdays = self.groups_of_days(dim)
        days = [
            self.start + dt.timedelta(days=i) for i in range((self.last - self.start).days + 1)
        ]
        groups = sorted({g for v in gdays.values() for g in v})
        sess = self.sessions(dim)
        repeat_users = {
            u
            for u in {u for u, _, _ in self.paid}
            if len({local_day(t) for x, t, _ in self.paid if x == u and t <= self.end_ts}) >= 2
        }
        out = {}
        for g in groups:
            ud = {k for k, v in gdays.items() if g in v}

            def units(a: dt.date, b: dt.date, ud: set[tuple[str, dt.date]] = ud) -> set[str]:
                return {u for u, d in ud if a <= d <= b}

            last = self.last
            active = units(self.start, last)
            mau = units(last - dt.timedelta(days=29), last)
            ud30 = sum(1 for _, d in ud if last - dt.timedelta(days=29) <= d <= last)
            lens = [s[1] for s in sess if g in s[2]]
            if dim is None:
                people = {u for u in active if u in self.users} | {
                    u for u, t, _ in self.paid if self.start_ts <= t <= self.end_ts
                }
            else:
                people = {u for u in active if u in self.users}
            orders = [
                (u, a)
                for u, t, a in self.paid
                if self.start_ts <= t <= self.end_ts and u in people
            ]
            revenue = sum((a for _, a in orders), Decimal(0))
            payers = {u for u, _ in orders}
            out[g] = {
                "active_users": len(active),
                "dau": len(units(last, last)),
                "wau": len(units(last - dt.timedelta(days=6), last)),
                "mau": len(mau),
                "mean_dau": sum(len(units(d, d)) for d in days) / len(days),
                "stickiness": ud30 / 30 / len(mau) if mau else None,
                "sessions": len(lens),
                "mean_session_s": statistics.mean(lens) if lens else None,
                "median_session_s": statistics.median(lens) if lens else None,
                "revenue": revenue,
                "orders": len(orders),
                "payers": len(payers),
                "aov": float(revenue) / len(orders) if orders else None,
                "arpu": float(revenue) / len(people) if people else None,
                "arppu": float(revenue) / len(payers) if payers else None,
                "payer_share": len(payers) / len(people) if people else None,
                "repeat_rate": len(payers & repeat_users) / len(payers) if payers else None,
            }
        return out

    def trend(self) -> dict[dt.date, dict[str, Any]]:
        gdays = self.groups_of_days(None)
        ud = set(gdays)
        sess = self.sessions(None)
        out = {}
        d = self.start
        while d <= self.last:

            def units(a: dt.date, b: dt.date) -> set[str]:
                return {u for u, x in ud if a <= x <= b}

            mau = units(d - dt.timedelta(days=29), d)
            dau30 = sum(len(units(x, x)) for x in (d - dt.timedelta(days=i) for i in range(30)))
            orders = [(u, a) for u, t, a in self.paid if local_day(t) == d and t <= self.end_ts]
            revenue = sum((a for _, a in orders), Decimal(0))
            people = {u for u in units(d, d) if u in self.users} | {u for u, _ in orders}
            out[d] = {
                "dau": len(units(d, d)),
                "wau": len(units(d - dt.timedelta(days=6), d)),
                "mau": len(mau),
                "stickiness": dau30 / 30 / len(mau) if mau else None,
                "sessions": sum(1 for s in sess if local_day(s[3]) == d),  # type: ignore[misc]
                "revenue": revenue,
                "orders": len(orders),
                "arpu": float(revenue) / len(people) if people else None,
            }
            d += dt.timedelta(days=1)
        return out


# ---------------------------------------------------------------------------------------------


@dataclass
class Env:
    w: SegWS
    data: Data


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    data = generate()
    w = load(tmp_path_factory.mktemp("overview"), data)
    w.compute(["buyers"], AS_OF)
    return Env(w, data)


def run(env: Env, start: dt.date = START, end: dt.date = END, **kw: Any) -> Any:
    from mcrm.db import open_db
    from mcrm.reports.common import period
    from mcrm.reports.overview import build

    p = period(ZONE, start.isoformat(), end.isoformat(), AS_OF)
    with open_db(env.w.ws) as con:
        return build(con, env.w.ws, p, **kw)


def table(report: Any, name: str) -> list[dict[str, Any]]:
    rows = report.tables[name]
    return [dict(zip(rows.columns, r, strict=True)) for r in rows.rows]


def check(row: dict[str, Any], ref: dict[str, Any]) -> None:
    for k, v in ref.items():
        if isinstance(v, Decimal):
            assert row[k] == v, k
        elif v is None:
            assert row[k] is None, k
        else:
            assert row[k] == pytest.approx(v, rel=1e-9), k


def test_total_row_matches_the_definitions(env: Env) -> None:
    rep = run(env)
    rows = table(rep, "summary")
    assert rows[0]["by"] == "total" and rows[0]["group"] == "(all)"
    ref = Ref(env.data, START, END).summary(None)["(all)"]
    check(rows[0], ref)
    assert ref["sessions"] > 0 and ref["revenue"] > 0 and ref["repeat_rate"] is not None


@pytest.mark.parametrize("dim", ["platform", "os", "country"])
def test_breakdown_groups_match_and_are_not_summed(env: Env, dim: str) -> None:
    rep = run(env, by=[dim])
    rows = table(rep, "summary")
    ref = Ref(env.data, START, END)
    expected = ref.summary(dim)
    got = {r["group"]: r for r in rows if r["by"] == dim}
    assert set(got) == set(expected)
    for g, e in expected.items():
        check(got[g], e)
    total = rows[0]
    if dim != "country":
        # u00 is on ios and android on the last day: it counts in both, once in the total
        assert sum(r["dau"] for r in got.values()) > total["dau"]
    assert "(none)" in got  # the payers without app events


def test_segment_breakdown_uses_the_latest_snapshot(env: Env) -> None:
    rep = run(env, by=["segment:buyers"])
    rows = [r for r in table(rep, "summary") if r["by"] == "segment:buyers"]
    members = env.w.members(
        int(env.w.query("SELECT max(run_id) FROM segment_runs")[0][0]), "buyers"
    )
    assert {r["group"] for r in rows} == {"buyers", "(not buyers)"}
    buyers = next(r for r in rows if r["group"] == "buyers")
    ref = Ref(env.data, START, END)
    active_members = {u for u, d, *_ in ref.act if ref.start <= d <= ref.last and u in members}
    assert buyers["active_users"] == len(active_members)
    # a segment is a user attribute: members active or paying, and all their orders
    people = {u for u in active_members if u in ref.users} | {
        u for u, t, _ in ref.paid if ref.start_ts <= t <= ref.end_ts and u in members
    }
    revenue = sum(
        (a for u, t, a in ref.paid if ref.start_ts <= t <= ref.end_ts and u in members),
        Decimal(0),
    )
    assert buyers["revenue"] == revenue and revenue > 0
    assert buyers["arpu"] == pytest.approx(float(revenue) / len(people))
    assert any(n.startswith("segment groups use") for n in rep.notes)


def test_trend_rows_match_the_rolling_definitions(env: Env) -> None:
    rep = run(env)
    rows = table(rep, "trend")
    ref = Ref(env.data, START, END).trend()
    assert [r["date"] for r in rows] == sorted(ref)
    for r in rows:
        check(r, ref[r["date"]])
    assert rows[-1]["partial"] is True and rows[0]["partial"] is False


def test_weekly_trend_aggregates_days(env: Env) -> None:
    daily = {r["date"]: r for r in table(run(env), "trend")}
    weekly = table(run(env, interval="week"), "trend")
    # 2026-03-10 is a Tuesday: the first week is clipped to the period
    assert weekly[0]["date"] == START and weekly[0]["days"] == 6
    assert weekly[1]["date"] == dt.date(2026, 3, 16)
    for w in weekly:
        ds = [w["date"] + dt.timedelta(days=i) for i in range(w["days"])]
        assert w["dau"] == pytest.approx(statistics.mean(daily[d]["dau"] for d in ds))
        assert w["mau"] == daily[ds[-1]]["mau"]
        assert w["revenue"] == sum((daily[d]["revenue"] for d in ds), Decimal(0))
        assert w["sessions"] == sum(daily[d]["sessions"] for d in ds)


def test_empty_period_gives_null_ratios(env: Env) -> None:
    rep = run(env, dt.date(2025, 6, 1), dt.date(2025, 6, 30))
    total = table(rep, "summary")[0]
    assert total["active_users"] == 0 and total["mau"] == 0 and total["orders"] == 0
    assert total["revenue"] == 0
    for k in (
        "stickiness",
        "aov",
        "arpu",
        "arppu",
        "payer_share",
        "repeat_rate",
        "mean_session_s",
    ):
        assert total[k] is None, k
    assert all(r["dau"] == 0 and r["stickiness"] is None for r in table(rep, "trend"))


def test_missing_fx_rate_is_an_error_naming_currency_and_date(tmp_path: Path) -> None:
    from mcrm.errors import DataError

    w = SegWS(tmp_path / "fx", timezone=ZONE)
    # a GBP order without a rate is rejected at import; a rate removed afterwards leaves
    # amount_base empty, which the report refuses
    w.load("fx-rates", [{"date": "2026-03-20", "currency": "GBP", "rate": "1.2"}])
    w.load(
        "purchases",
        [
            {
                "order_id": "o1",
                "user_id": "u1",
                "timestamp": "2026-03-20T10:00:00Z",
                "amount": "100",
                "currency": "GBP",
                "status": "paid",
            }
        ],
    )
    from mcrm.db import connect

    con = connect(str(w.ws.db_path))
    con.execute("UPDATE purchases SET amount_base = NULL")
    con.close()
    from mcrm.db import open_db
    from mcrm.reports.common import period
    from mcrm.reports.overview import build

    with open_db(w.ws) as c, pytest.raises(DataError, match="GBP on 2026-03-20"):
        build(c, w.ws, period(ZONE, "2026-03-01", "2026-03-31", AS_OF))


# ---------------------------------------------------------------------------------------------
# features


def test_features_usage_and_sessions(env: Env) -> None:
    from mcrm.db import open_db
    from mcrm.reports.common import period
    from mcrm.reports.features import build

    p = period(ZONE, START.isoformat(), END.isoformat(), AS_OF)
    with open_db(env.w.ws) as con:
        rep = build(con, env.w.ws, p, "week")
    ref = Ref(env.data, START, END)
    usage = {(r["kind"], r["name"]): r for r in table(rep, "usage")}
    feats: dict[str, list[str]] = defaultdict(list)
    screens: dict[str, list[str]] = defaultdict(list)
    for e in ref.events:
        unit = e.get("user_id") or e["anonymous_id"]
        if e["name"] not in {"session_start", "screen_view"}:
            feats[e["name"]].append(unit)
        if e.get("screen"):
            screens[e["screen"]].append(unit)
    assert {k for k in usage if k[0] == "feature"} == {("feature", n) for n in feats}
    assert "tap" in feats and "location" not in feats  # background events are no feature
    for kind, got in (("feature", feats), ("screen", screens)):
        for name, us in got.items():
            row = usage[(kind, name)]
            assert (row["users"], row["events"]) == (len(set(us)), len(us))
    sess = table(rep, "sessions")
    lens = [s[1] for s in ref.sessions(None)]
    assert sum(r["sessions"] for r in sess) == len(lens)
    assert sum(r["time_in_app_s"] for r in sess) == pytest.approx(sum(lens))
    assert sess[0]["date"] == START and sess[1]["date"] == dt.date(2026, 3, 16)
