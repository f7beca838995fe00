"""`mcrm report messaging` against a plain-Python computation of reference/analytics.md §13 on
generated outbox, message events, app push opens, purchases and goal events: unique opens and
clicks per message (machine opens apart), events linked by key or else to the latest message
of the same user, campaign and channel, receipts deciding the denominator, messages refused
as invalid, any-touch conversions and revenue within each campaign's goal window, the as-of
cut and the period. One campaign's e-mail goes out by two lanes, one with delivery receipts
(SendGrid-like) and one without (a file outbox): each lane is its own row, with its own base."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest

from mcrm.db import open_db
from mcrm.reports.common import period
from tests.conftest import WS, Cli, WorkspaceFactory

T0 = dt.datetime(2026, 2, 25)
AS_OF = dt.datetime(2026, 3, 12)
FROM, TO = "2026-03-01", "2026-03-10"
GOALS: dict[str, tuple[str, float]] = {"alpha": ("purchase", 3.0), "beta": ("session_start", 1.0)}
CHANNELS = ("email", "push", "sms")
SEGMENTS = "segments:\n  everyone: {where: {attr: user_id, exists: true}}\n"


def campaign_yaml(name: str) -> str:
    goal = ""
    if name in GOALS:
        ev, days = GOALS[name]
        goal = f"goal: {{event: {ev}, within: {int(days)}d}}\n"
    return (
        "segment: everyone\nchannels: [email, push, sms]\n" + goal + "templates:\n"
        "  email: {subject: s.j2, text: t.j2, html: h.html.j2}\n"
        "  push: {title: s.j2, body: t.j2}\n  sms: {body: t.j2}\n"
    )


def generate(seed: int) -> dict[str, list[Any]]:
    rng = random.Random(seed)
    users = [f"u{i:03d}" for i in range(40)]
    out: dict[str, list[Any]] = defaultdict(list)
    minute = dt.timedelta(minutes=1)
    for i in range(500):
        key = f"k{i:04d}"
        user = rng.choice(users)
        camp = rng.choice(["alpha", "beta", "gamma"])
        ch = rng.choice(CHANNELS)
        sent = T0 + dt.timedelta(seconds=rng.randrange(16 * 86400))
        refused = rng.random() < 0.04
        status = "invalid_recipient" if refused else "sent"
        receipt = None
        lane = {"email": "sendgrid", "push": "fcm", "sms": "twilio"}[ch]
        if ch == "email" and rng.random() < 0.4:
            lane = "file"  # the same campaigns by a lane that reports nothing back
        if ch == "push" and camp == "alpha":
            lane = "expo"
            if not refused:  # an Expo lane: receipts
                receipt = rng.choice(["ok", "ok", "error"])
                if receipt == "error":
                    status = "invalid_recipient"
        out["outbox"].append((key, camp, user, ch, status, receipt, sent, lane))
        if refused:
            continue
        out["sent"].append((key, user, camp, ch, sent, lane))

        def ev(
            typ: str,
            ts: dt.datetime,
            linked: bool = True,
            msg: tuple[str, str, str, str] = (key, user, camp, ch),
            **props: Any,
        ) -> None:
            if linked:
                props["mcrm_id"] = msg[0]
            out["events"].append((f"e{len(out['events'])}", typ, ts, *msg[1:], json.dumps(props)))

        late = AS_OF + dt.timedelta(hours=1)
        if lane == "file":
            # no receipts; a click tracked by the shop's own links, matched by user
            if rng.random() < 0.2:
                ev("clicked", sent + 3 * minute, linked=False)
        elif ch == "email":
            if rng.random() < 0.85:
                ev("delivered", sent + minute)
                if rng.random() < 0.5:
                    ev("opened", sent + 2 * minute, machine_open=rng.random() < 0.3)
                if rng.random() < 0.3:
                    # some providers' events carry no key: matched by user, campaign, channel
                    ev("clicked", sent + 3 * minute, linked=rng.random() < 0.7)
                if rng.random() < 0.1:
                    ev("unsubscribed", sent + 4 * minute)
                if rng.random() < 0.05:
                    ev("spam_report", sent + 5 * minute)
            elif rng.random() < 0.6:
                ev("bounced", sent + minute, invalid=rng.random() < 0.5)
            else:
                ev("dropped", sent + minute)
            if rng.random() < 0.05:
                ev("opened", late)  # after as-of: does not exist for the report
        elif ch == "push":
            if rng.random() < 0.35:
                props = {"mcrm_id": key} if rng.random() < 0.6 else {"campaign_id": camp}
                out["push_opens"].append(
                    (f"p{len(out['push_opens'])}", user, sent + 7 * minute, json.dumps(props))
                )
        else:
            if rng.random() < 0.2:
                ev("failed", sent + minute, invalid=rng.random() < 0.5)
            if rng.random() < 0.1:
                ev("opened", sent + 9 * minute, linked=False)
    for j in range(300):
        user = rng.choice(users)
        ts = T0 + dt.timedelta(seconds=rng.randrange(18 * 86400))
        status = "paid" if rng.random() < 0.85 else "refunded"
        amount = Decimal(rng.randrange(500, 20000)) / 100
        out["purchases"].append((f"o{j}", user, ts, amount, status))
    for j in range(300):
        user = rng.choice(users)
        ts = T0 + dt.timedelta(seconds=rng.randrange(18 * 86400))
        out["goal_events"].append((f"s{j}", user, rng.choice(["session_start", "other"]), ts))
    return out


def store(w: WS, data: dict[str, list[Any]]) -> None:
    with open_db(w.ws, write=True) as con:
        for key, camp, user, ch, status, receipt, sent, lane in data["outbox"]:
            con.execute(
                "INSERT INTO outbox (idempotency_key, campaign, occurrence, user_id, channel, "
                "lane, status, receipt_status, send_at, created_at, updated_at) "
                "VALUES (?, ?, 'o', ?, ?, ?, ?, ?, ?, ?, ?)",
                [key, camp, user, ch, lane, status, receipt, sent, sent, sent],
            )
        # dispatch's row: provider = the lane
        con.executemany(
            "INSERT INTO message_events (event_id, user_id, campaign, channel, type, ts, "
            "provider) VALUES (?, ?, ?, ?, 'sent', ?, ?)",
            [list(r) for r in data["sent"]],
        )
        con.executemany(
            "INSERT INTO message_events (event_id, provider, type, ts, user_id, campaign, "
            "channel, properties) VALUES (?, 'p', ?, ?, ?, ?, ?, ?)",
            [list(r) for r in data["events"]],
        )
        con.executemany(
            "INSERT INTO events (event_id, user_id, name, ts, properties) "
            "VALUES (?, ?, 'push_open', ?, ?)",
            [list(r) for r in data["push_opens"]],
        )
        con.executemany(
            "INSERT INTO events (event_id, user_id, name, ts) VALUES (?, ?, ?, ?)",
            [list(r) for r in data["goal_events"]],
        )
        con.executemany(
            "INSERT INTO purchases (order_id, user_id, ts, amount, currency, amount_base, "
            "status) VALUES (?, ?, ?, ?, 'EUR', ?, ?)",
            [[o, u, t, a, a, s] for o, u, t, a, s in data["purchases"]],
        )


def expected(data: dict[str, list[Any]], start: dt.datetime, end: dt.datetime) -> dict[Any, Any]:
    """The §13 definitions, computed without SQL."""
    sent = {k: (u, c, ch, t) for k, u, c, ch, t, _lane in data["sent"] if t <= AS_OF}
    lane_of = {r[0]: r[7] for r in data["outbox"]}
    outbox = {r[0]: r for r in data["outbox"]}
    flags: dict[str, set[str]] = defaultdict(set)

    def credit(key: str | None, user: str, camp: str, ch: str, ts: dt.datetime, flag: str) -> None:
        if key is None or key not in sent:
            cands = [
                (t, k)
                for k, (u, c, h, t) in sent.items()
                if (u, c, h) == (user, camp, ch) and t <= ts
            ]
            if not cands:
                return
            key = max(cands)[1]
        flags[key].add(flag)

    for _eid, typ, ts, user, camp, ch, props in data["events"]:
        if ts > AS_OF:
            continue
        p = json.loads(props)
        flag = {"opened": "machine" if p.get("machine_open") else "opened"}.get(typ, typ)
        credit(p.get("mcrm_id"), user, camp, ch, ts, flag)
        if p.get("invalid"):
            credit(p.get("mcrm_id"), user, camp, ch, ts, "invalid")
    for _eid, user, ts, props in data["push_opens"]:
        if ts > AS_OF:
            continue
        p = json.loads(props)
        credit(p.get("mcrm_id"), user, p.get("campaign_id") or "", "push", ts, "opened")
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}

    def row(ch: str, camp: str, lane: str) -> dict[str, Any]:
        return rows.setdefault(
            (ch, camp, lane), defaultdict(int, {"revenue": Decimal(0), "receipts": False})
        )

    for key, (user, camp, ch, t) in sent.items():
        if not start <= t <= end:
            continue
        f = flags[key]
        ob = outbox[key]
        r = row(ch, camp, lane_of[key])
        r["sent"] += 1
        delivered = "delivered" in f or ob[5] == "ok"
        r["delivered"] += delivered
        r["receipts"] |= bool(f & {"delivered", "bounced", "dropped", "failed"}) or ob[5] in (
            "ok",
            "error",
        )
        r["opens"] += "opened" in f
        r["machine"] += "machine" in f
        r["clicks"] += "clicked" in f
        r["unsubs"] += "unsubscribed" in f
        r["spam"] += "spam_report" in f
        r["bounces"] += "bounced" in f
        r["failed"] += bool(f & {"failed", "dropped"})
        r["invalid"] += "invalid" in f or ob[4] == "invalid_recipient"
        if camp in GOALS:
            ev, days = GOALS[camp]
            hi = t + dt.timedelta(days=days)
            paid = [(ts, a) for _o, u, ts, a, s in data["purchases"] if u == user and s == "paid"]
            hits = (
                [ts for ts, _a in paid]
                if ev == "purchase"
                else [ts for _s, u, n, ts in data["goal_events"] if u == user and n == ev]
            )
            r["conversions"] += any(t <= c <= hi and c <= AS_OF for c in hits)
            r["revenue"] += sum((a for ts, a in paid if t <= ts <= hi and ts <= AS_OF), Decimal(0))
    for key, camp, _user, ch, status, _receipt, t, lane in data["outbox"]:
        if status == "invalid_recipient" and key not in sent and start <= t <= end:
            row(ch, camp, lane)["invalid"] += 1
    return rows


def test_messaging_matches_the_definitions(workspace: WorkspaceFactory, cli: Cli) -> None:
    files = {"segments.yaml": SEGMENTS}
    for name in ("alpha", "beta", "gamma"):
        files[f"campaigns/{name}.yaml"] = campaign_yaml(name)
    for t in ("s.j2", "t.j2", "h.html.j2"):
        files[f"campaigns/{t}"] = "x"
    w = workspace({"timezone": "UTC"}, files)
    data = generate(11)
    store(w, data)
    r = cli(
        w,
        "report",
        "messaging",
        "--from",
        FROM,
        "--to",
        TO,
        "--as-of",
        AS_OF.isoformat() + "Z",
        "--format",
        "json",
    )
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert doc["warnings"] == []
    p = period("UTC", FROM, TO, AS_OF)
    want = expected(data, p.start_ts, p.end_ts)
    got = {(x["channel"], x["campaign"], x["provider"]): x for x in doc["tables"]["messaging"]}
    assert set(got) == set(want)
    for k, e in want.items():
        g = got[k]
        base = e["delivered"] if e["receipts"] else e["sent"]
        assert g["sent"] == e["sent"], k
        assert g["base"] == ("delivered" if e["receipts"] else "sent"), k
        assert g["delivered"] == (e["delivered"] if e["receipts"] else None), k
        assert (g["unique_opens"], g["machine_opens"], g["unique_clicks"]) == (
            e["opens"],
            e["machine"],
            e["clicks"],
        ), k
        assert (g["unsubscribes"], g["spam_reports"], g["bounces"], g["failed"]) == (
            e["unsubs"],
            e["spam"],
            e["bounces"],
            e["failed"],
        ), k
        assert g["invalid"] == e["invalid"], k
        assert g["open_rate"] == (pytest.approx(e["opens"] / base) if base else None), k
        assert g["ctr"] == (pytest.approx(e["clicks"] / base) if base else None), k
        cto = e["clicks"] / e["opens"] if e["opens"] else None
        assert g["click_to_open"] == (pytest.approx(cto) if cto is not None else None), k
        if k[1] in GOALS:
            assert g["conversions"] == e["conversions"], k
            assert g["conversion_rate"] == pytest.approx(e["conversions"] / e["sent"]), k
            assert Decimal(g["revenue"]) == e["revenue"], k
        else:
            assert (g["conversions"], g["conversion_rate"], g["revenue"]) == (None, None, None)
    # the mixed case: one campaign's e-mail by both lanes, each row with its own base
    for camp in ("alpha", "beta", "gamma"):
        sg, file = got[("email", camp, "sendgrid")], got[("email", camp, "file")]
        assert (sg["base"], file["base"]) == ("delivered", "sent")
        assert file["delivered"] is None and file["delivery_rate"] is None
        assert sg["delivery_rate"] == pytest.approx(sg["delivered"] / sg["sent"])
    # the channels table: computed per channel and provider, with no conversion columns
    chans = {(x["channel"], x["provider"]): x for x in doc["tables"]["channels"]}
    assert set(chans) == {(k[0], k[2]) for k in want}
    for (ch, lane), c in chans.items():
        mine = [e for k, e in want.items() if (k[0], k[2]) == (ch, lane)]
        assert c["sent"] == sum(e["sent"] for e in mine)
        assert c["base"] == ("delivered" if any(e["receipts"] for e in mine) else "sent")
        assert "conversions" not in c
    assert ("email", "file") in chans and ("email", "sendgrid") in chans
    assert any("no delivery receipts for" in n and "push/beta/fcm" in n for n in doc["notes"])
    assert any("email/alpha/file" in n for n in doc["notes"])
    assert any("Privacy Protection" in n for n in doc["notes"])
    # sanity: the generated data exercises every path
    assert all(want[k]["sent"] for k in want)
    assert sum(e["machine"] for e in want.values()) and sum(e["invalid"] for e in want.values())


def test_by_channel_and_empty(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = workspace({"timezone": "UTC"}, {"segments.yaml": SEGMENTS})
    with open_db(w.ws, write=True):
        pass
    r = cli(w, "report", "messaging", "--as-of", "2026-03-12", "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert r.json()["tables"] == {"messaging": [], "channels": []}
    r = cli(w, "report", "messaging", "--by-channel", "--as-of", "2026-03-12", "--format", "json")
    assert r.json()["tables"] == {"messaging": []}
