"""`mcrm report acquisition` (analytics.md §11 LTV_N, §12) and `mcrm report segments` (§10 last
bullet) against plain-Python computations on generated data."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.segdata import SegWS

ZONE = "Europe/Prague"
AS_OF = dt.datetime(2026, 6, 30, 12, 0)
START, END = dt.date(2026, 3, 1), dt.date(2026, 6, 30)


def midnight(d: dt.date) -> dt.datetime:
    return (
        dt.datetime.combine(d, dt.time(), tzinfo=ZoneInfo(ZONE))
        .astimezone(dt.UTC)
        .replace(tzinfo=None)
    )


def local_day(t: dt.datetime) -> dt.date:
    return t.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(ZONE)).date()


def load(root: Path, seed: int = 3) -> SegWS:
    rng = random.Random(seed)
    w = SegWS(root, timezone=ZONE)
    users: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    for i in range(60):
        uid = f"u{i:02d}"
        at = dt.datetime(2026, 2, 10) + dt.timedelta(minutes=rng.randint(0, 140 * 24 * 60))
        installed = i % 10 != 0  # every tenth user is an e-shop customer (first_seen only)
        users.append(
            {
                "user_id": uid,
                "first_seen": at,
                "install_time": at if installed else None,
                "acq_source": rng.choice(["Facebook Ads", "google", None, ""])
                if installed
                else None,
                "acq_campaign": rng.choice(["c1", "c2", None]),
            }
        )
        for k in range(rng.choice([0, 0, 1, 2, 4])):
            t = at + dt.timedelta(minutes=rng.randint(-5 * 24 * 60, 130 * 24 * 60))
            status = rng.choice(["paid", "paid", "refunded", "cancelled"])
            orders.append(
                {
                    "order_id": f"{uid}-{k}",
                    "user_id": uid,
                    "timestamp": t,
                    "amount": f"{rng.randint(5, 300)}.{rng.randint(10, 99)}",
                    "currency": "EUR",
                    "status": status,
                }
            )
    spend = []
    d = dt.date(2026, 2, 1)
    while d <= dt.date(2026, 7, 2):
        for src, camp in (("Facebook Ads", "c1"), ("Facebook Ads", "c2"), ("google", "c1")):
            spend.append(
                {
                    "date": d,
                    "source": src,
                    "campaign": camp,
                    "cost": f"{rng.randint(1, 40)}.5",
                    "currency": "EUR",
                }
            )
        d += dt.timedelta(days=1)
    w.load("users", users)
    w.load("purchases", [o for o in orders if o["timestamp"] <= dt.datetime(2026, 12, 1)])
    w.load("ad-spend", spend)
    return w


def rows_of(report: Any, name: str) -> list[dict[str, Any]]:
    t = report.tables[name]
    return [dict(zip(t.columns, r, strict=True)) for r in t.rows]


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> SegWS:
    return load(tmp_path_factory.mktemp("acq"))


def reference(w: SegWS, campaign: bool) -> dict[tuple[str, ...], dict[str, Any]]:
    start_ts = midnight(START)
    end_ts = min(midnight(END + dt.timedelta(days=1)) - dt.timedelta(microseconds=1), AS_OF)
    last = min(END, local_day(AS_OF))

    def lab(v: Any) -> str:
        return v.strip() if isinstance(v, str) and v.strip() else "(none)"

    # the acquisition columns as stored (imports may move first_seen earlier)
    users = {
        r[0]: (lab(r[1]), lab(r[2]), r[3], r[3] or r[4])
        for r in w.query(
            "SELECT user_id, acq_source, acq_campaign, install_time, first_seen FROM users"
        )
    }
    paid: dict[str, list[tuple[dt.datetime, Decimal]]] = defaultdict(list)
    for uid, t, amount in w.query(
        "SELECT user_id, ts, amount FROM purchases WHERE status = 'paid' ORDER BY ts"
    ):
        if t <= AS_OF:
            paid[uid].append((t, amount))
    spend = [
        (r[0], lab(r[1]), lab(r[2]), r[3])
        for r in w.query("SELECT date, source, campaign, cost FROM ad_spend")
    ]

    def cut(n: int) -> dt.date:
        d = local_day(AS_OF)
        while midnight(d + dt.timedelta(days=1)) + dt.timedelta(days=n) > AS_OF:
            d -= dt.timedelta(days=1)
        return d

    def key(src: str, camp: str) -> tuple[str, ...]:
        return (src, camp) if campaign else (src,)

    keys = {key(s, c) for s, c, _, _ in users.values()} | {key(s, c) for _, s, c, _ in spend}
    keys.add(("(all)", "(all)") if campaign else ("(all)",))
    out = {}
    for k in keys:
        mine = {u: v for u, v in users.items() if k[0] == "(all)" or key(v[0], v[1]) == k}

        def rev(u: str, t0: dt.datetime, n: int) -> Decimal:
            return sum((a for t, a in paid[u] if t0 <= t <= t0 + dt.timedelta(days=n)), Decimal(0))

        installed = {u for u, v in mine.items() if v[2] and start_ts <= v[2] <= end_ts}
        acquired = {u for u, v in mine.items() if start_ts <= v[3] <= end_ts}
        firsts = {u for u in mine if paid[u] and start_ts <= paid[u][0][0] <= end_ts}
        m30i = {u for u in installed if mine[u][2] + dt.timedelta(days=30) <= AS_OF}
        conv = {
            u
            for u in m30i
            if rev(u, mine[u][2], 30) > 0
            or any(mine[u][2] <= t <= mine[u][2] + dt.timedelta(days=30) for t, _ in paid[u])
        }
        cost_rows = [(d, c) for d, s, cp, c in spend if k[0] == "(all)" or key(s, cp) == k]
        cost = sum((c for d, c in cost_rows if START <= d <= last), Decimal(0))
        row: dict[str, Any] = {
            "installs": len(installed),
            "acquired": len(acquired),
            "first_purchases": len(firsts),
            "conversion_30d": len(conv) / len(m30i) if m30i else None,
            "cost": cost if cost_rows else None,
        }
        for n in (30, 90):
            mature = {u for u in acquired if mine[u][3] + dt.timedelta(days=n) <= AS_OF}
            r = sum((rev(u, mine[u][3], n) for u in mature), Decimal(0))
            row[f"mature_{n}"] = len(mature)
            row[f"immature_{n}"] = len(acquired) - len(mature)
            row[f"revenue_{n}"] = r
            row[f"ltv_{n}"] = float(r) / len(mature) if mature else None
            c_n = cut(n)
            irev = sum(
                (rev(u, mine[u][2], n) for u in installed if local_day(mine[u][2]) <= c_n),
                Decimal(0),
            )
            ccost = sum((c for d, c in cost_rows if START <= d <= c_n), Decimal(0))
            roas = float(irev) / float(ccost) if cost_rows and ccost else None
            row[f"roas_{n}"] = roas
            row[f"roi_{n}"] = None if roas is None else roas - 1
        row["cpi"] = float(cost) / len(installed) if cost_rows and installed else None
        row["cac"] = float(cost) / len(firsts) if cost_rows and firsts else None
        out[k] = row
    return out


@pytest.mark.parametrize("campaign", [False, True])
def test_acquisition_matches_the_definitions(aws: SegWS, campaign: bool) -> None:
    from mcrm.db import open_db
    from mcrm.reports.acquisition import build
    from mcrm.reports.common import period

    p = period(ZONE, START.isoformat(), END.isoformat(), AS_OF)
    with open_db(aws.ws) as con:
        rep = build(con, aws.ws, p, ["campaign"] if campaign else None)
    rows = rep.tables["acquisition"]
    nk = 2 if campaign else 1
    got = {tuple(r[:nk]): dict(zip(rows.columns, r, strict=True)) for r in rows.rows}
    ref = reference(aws, campaign)
    assert list(got)[0][0] == "(all)"
    assert set(got) == set(ref)
    for k, exp in ref.items():
        for col, v in exp.items():
            if v is None or isinstance(v, Decimal | int):
                assert got[k][col] == v, (k, col)
            else:
                assert got[k][col] == pytest.approx(v, rel=1e-9), (k, col)
    total = got[list(got)[0]]
    assert total["immature_30"] > 0 and total["immature_90"] > total["immature_30"]
    assert ("(none)",) in got or ("(none)", "(none)") in got or campaign


def test_acquisition_without_ad_spend_says_so(tmp_path: Path) -> None:
    from mcrm.db import open_db
    from mcrm.reports.acquisition import build
    from mcrm.reports.common import period

    w = SegWS(tmp_path / "nospend", timezone=ZONE)
    w.load("users", [{"user_id": "u1", "install_time": "2026-06-01T10:00:00Z"}])
    with open_db(w.ws) as con:
        rep = build(con, w.ws, period(ZONE, "2026-06-01", "2026-06-30", AS_OF))
    total = rows_of(rep, "acquisition")[0]
    assert total["installs"] == 1 and total["cost"] is None and total["cpi"] is None
    assert total["ltv_30"] is None and total["immature_30"] == 1
    assert any("no ad spend" in n for n in rep.notes)


# ---------------------------------------------------------------------------------------------
# segments over time


def test_segment_sizes_entries_and_exits(tmp_path: Path) -> None:
    from mcrm.db import open_db
    from mcrm.reports.common import period
    from mcrm.reports.segments_report import build

    w = SegWS(tmp_path / "segs", timezone="UTC")
    rng = random.Random(9)
    d0 = dt.datetime(2026, 5, 1, 12)
    events = [
        {
            "user_id": f"u{rng.randint(0, 30):02d}",
            "name": "session_start",
            "timestamp": d0 + dt.timedelta(hours=rng.randint(0, 60 * 24)),
        }
        for _ in range(200)
    ]
    w.load("events", events)
    recent: dict[str, Any] = {
        "segments": {
            "recent": {"where": {"event": "session_start", "within": "7d"}},
            "once": {"where": {"event": "session_start"}},
        }
    }
    w.write_segments(recent)
    runs = [w.compute(["recent"], d0 + dt.timedelta(days=k)).run_id for k in (10, 20, 30)]
    recent["segments"]["recent"]["where"]["within"] = "14d"
    w.write_segments(recent)
    runs.append(w.compute(["recent", "once"], d0 + dt.timedelta(days=40)).run_id)
    with open_db(w.ws) as con:
        rep = build(
            con, w.ws, period("UTC", "2026-05-01", "2026-06-30", d0 + dt.timedelta(days=50))
        )
    rows = rows_of(rep, "segments")
    rec = [r for r in rows if r["segment"] == "recent"]
    assert [r["run_id"] for r in rec] == runs
    members = [w.members(r, "recent") for r in runs]
    assert rec[0]["entries"] is None and rec[0]["exits"] is None
    for i in range(1, 4):
        assert rec[i]["size"] == len(members[i])
        assert rec[i]["entries"] == len(members[i] - members[i - 1])
        assert rec[i]["exits"] == len(members[i - 1] - members[i])
        assert rec[i]["net_change"] == rec[i]["size"] - rec[i - 1]["size"]
    assert [r["definition_changed"] for r in rec] == [False, False, False, True]
    assert any(r["entries"] for r in rec[1:]) and any(r["exits"] for r in rec[1:])
    assert any("fewer than two snapshots stored for once" in n for n in rep.notes)
    # a period that holds only the last run still compares it with the one before
    with open_db(w.ws) as con:
        rep2 = build(
            con,
            w.ws,
            period("UTC", "2026-06-09", "2026-06-10", d0 + dt.timedelta(days=50)),
            ["recent"],
        )
    (only,) = rows_of(rep2, "segments")
    assert only["run_id"] == runs[-1] and only["entries"] == rec[-1]["entries"]
