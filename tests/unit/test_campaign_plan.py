"""The send plan's policy, checked against an independent Python computation on seeded
random users: one row per audience member, exactly one reason for each suppressed one, no
planned message without consent and an address, caps over sent messages, quiet hours
(defer and drop) in the user's zone, reentry, global control and holdout by a stable hash."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mcrm.campaigns.engine import plan_campaign, why
from mcrm.campaigns.plan import idempotency_key
from mcrm.db import open_db
from mcrm.segments.compile import bucket_of
from tests.conftest import WS, WorkspaceFactory

AS_OF = dt.datetime(2026, 3, 2, 6, 0)  # a Monday, 06:00 UTC
ZONES = ["Europe/Prague", "Asia/Shanghai", "America/New_York", "Europe/London"]
SEGMENTS = """\
segments:
  everyone: {where: {attr: user_id, exists: true}}
  vip: {where: {attr: attributes.vip, eq: true}}
"""


def config(action: str = "defer", gc: str = "5%") -> str:
    return f"""\
timezone: Europe/Prague
delivery:
  quiet_hours: {{start: "21:00", end: "08:00", action: {action}}}
  frequency_caps:
    - {{channel: push, max: 2, per: 1d}}
    - {{channel: any, max: 3, per: 7d}}
  global_control: {gc}
  unsubscribe: {{url: "https://u.example.com/u/{{token}}"}}
"""


CAMPAIGN = """\
segment: everyone
exclude: [vip]
channels: [push, email]
schedule: {{cron: "0 {hour} * * *", timezone: user}}
reentry: {reentry}
holdout: 10%
templates:
  push: {{body: p.j2}}
  email: {{subject: p.j2, text: p.j2}}
"""


def build(
    workspace: WorkspaceFactory,
    n: int,
    seed: int,
    *,
    hour: int = 10,
    reentry: str = "7d",
    action: str = "defer",
    gc: str = "5%",
) -> tuple[WS, list[dict[str, Any]]]:
    rng = random.Random(seed)
    w = workspace(
        config(action, gc),
        {
            "segments.yaml": SEGMENTS,
            "campaigns/promo.yaml": CAMPAIGN.format(hour=hour, reentry=reentry),
            "campaigns/p.j2": "Hi",
        },
    )
    people = []
    for i in range(n):
        p: dict[str, Any] = {
            "id": f"u{i:05d}",
            "zone": rng.choice(ZONES),
            "vip": rng.random() < 0.1,
            "email": f"u{i}@example.com" if rng.random() < 0.7 else None,
            "email_consent": rng.choice([True, False, None]),
            "token": rng.random() < 0.6,
            "dead": rng.random() < 0.1,
            "push_consent": rng.choice([True, False, None]),
            "sent_push_today": rng.choice([0, 0, 1, 2]),
            "sent_email_week": rng.choice([0, 0, 1, 3]),
            "got_promo": rng.choice([None, None, 3, 10]),  # days ago
        }
        people.append(p)
    with open_db(w.ws, write=True) as con:
        _insert(
            con,
            "users",
            ["user_id", "email", "timezone", "attributes", "first_seen"],
            [
                [
                    p["id"],
                    p["email"],
                    p["zone"],
                    '{"vip": ' + str(p["vip"]).lower() + "}",
                    AS_OF - dt.timedelta(days=100),
                ]
                for p in people
            ],
        )
        dev: list[list[Any]] = []
        cons: list[list[Any]] = []
        msgs: list[list[Any]] = []
        for p in people:
            if p["token"]:
                dev.append(
                    [
                        p["id"],
                        "d-" + p["id"],
                        "ios",
                        "tok-" + p["id"],
                        True,
                        AS_OF - dt.timedelta(days=1) if p["dead"] else None,
                    ]
                )
            for ch in ("email", "push"):
                g = p[f"{ch}_consent"]
                if g is not None:
                    cons.append([p["id"], ch, "marketing", g, AS_OF - dt.timedelta(days=5)])
            for k in range(p["sent_push_today"]):
                msgs.append(
                    [f"m{len(msgs)}", p["id"], "other", "push", AS_OF - dt.timedelta(hours=2 + k)]
                )
            for k in range(p["sent_email_week"]):
                msgs.append(
                    [f"m{len(msgs)}", p["id"], "other", "email", AS_OF - dt.timedelta(days=2 + k)]
                )
            if p["got_promo"] is not None:
                msgs.append(
                    [
                        f"m{len(msgs)}",
                        p["id"],
                        "promo",
                        "email",
                        AS_OF - dt.timedelta(days=p["got_promo"]),
                    ]
                )
        if dev:
            _insert(
                con,
                "devices",
                [
                    "user_id",
                    "device_id",
                    "platform",
                    "push_token",
                    "push_enabled",
                    "invalidated_at",
                ],
                dev,
            )
        if cons:
            _insert(con, "consents", ["user_id", "channel", "purpose", "granted", "ts"], cons)
        if msgs:
            _insert(
                con,
                "message_events",
                ["event_id", "user_id", "campaign", "channel", "type", "ts"],
                [[m[0], m[1], m[2], m[3], "sent", m[4]] for m in msgs],
            )
    return w, people


def _insert(con: Any, table: str, cols: list[str], rows: list[list[Any]]) -> None:
    """Bulk rows through an Arrow table (executemany is far too slow for thousands)."""
    import pyarrow as pa

    frame = pa.table({c: [r[i] for r in rows] for i, c in enumerate(cols)})
    con.register("frame", frame)
    con.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT * FROM frame")
    con.unregister("frame")


def local_send(zone: str, hour: int) -> dt.datetime:
    """The next `hour`:00 in the zone at or after AS_OF, as naive UTC."""
    z = ZoneInfo(zone)
    t = AS_OF.replace(tzinfo=dt.UTC).astimezone(z)
    cand = t.replace(hour=hour, minute=0, second=0, microsecond=0)
    if cand < t:
        cand += dt.timedelta(days=1)
    return cand.astimezone(dt.UTC).replace(tzinfo=None)


def expected(
    p: dict[str, Any], hour: int, reentry_days: float | None, action: str
) -> tuple[str | None, str | None]:
    """(reason, channel) computed independently of the SQL."""
    if p["vip"]:
        return "excluded_segment", None
    push = (
        "ok"
        if p["push_consent"] and p["token"] and not p["dead"]
        else (
            "no_consent"
            if not p["push_consent"]
            else ("no_address" if not p["token"] else "invalid_token")
        )
    )
    email = (
        "ok"
        if p["email_consent"] and p["email"]
        else ("no_consent" if not p["email_consent"] else "no_address")
    )
    channel = "push" if push == "ok" else ("email" if email == "ok" else None)
    if channel is None:
        return push, None
    if p["got_promo"] is not None and (reentry_days is None or p["got_promo"] < reentry_days):
        return "reentry", channel
    if bucket_of(p["id"], "gc:global-control") < 5:
        return "global_control", channel
    if bucket_of(p["id"], "holdout:promo") < 10:
        return "holdout", channel
    send = local_send(p["zone"], hour)
    local = send.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(p["zone"])).time()
    quiet = local >= dt.time(21) or local < dt.time(8)
    if quiet and action == "defer":
        send = deferred(p["zone"], send)
    # caps: messages sent in the window before the send time (all are before AS_OF)
    push_in_day = sum(
        1
        for k in range(p["sent_push_today"])
        if AS_OF - dt.timedelta(hours=2 + k) > send - dt.timedelta(days=1)
    )
    email_in_week = sum(
        1
        for k in range(p["sent_email_week"])
        if AS_OF - dt.timedelta(days=2 + k) > send - dt.timedelta(days=7)
    )
    promo_in_week = (
        1
        if p["got_promo"] is not None
        and AS_OF - dt.timedelta(days=p["got_promo"]) > send - dt.timedelta(days=7)
        else 0
    )
    any_in_week = (
        sum(
            1
            for k in range(p["sent_push_today"])
            if AS_OF - dt.timedelta(hours=2 + k) > send - dt.timedelta(days=7)
        )
        + email_in_week
        + promo_in_week
    )
    if channel == "push" and push_in_day + 1 > 2:
        return "frequency_cap", channel
    if any_in_week + 1 > 3:
        return "frequency_cap", channel
    if quiet and action == "drop":
        return "quiet_hours_dropped", channel
    return None, channel


def deferred(zone: str, send: dt.datetime) -> dt.datetime:
    z = ZoneInfo(zone)
    loc = send.replace(tzinfo=dt.UTC).astimezone(z)
    day = loc.date() + (dt.timedelta(days=1) if loc.time() >= dt.time(21) else dt.timedelta())
    return dt.datetime.combine(day, dt.time(8), z).astimezone(dt.UTC).replace(tzinfo=None)


def plan_rows(w: WS) -> dict[str, dict[str, Any]]:
    with open_db(w.ws) as con:
        cur = con.execute("SELECT * FROM plan_rows")
        cols = [d[0] for d in cur.description]
        return {
            r[0 + cols.index("user_id")]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()
        }


@pytest.mark.parametrize(
    ("seed", "hour", "action"),
    [(1, 10, "defer"), (2, 22, "defer"), (3, 22, "drop"), (4, 7, "defer")],
)
def test_plan_matches_an_independent_computation(
    workspace: WorkspaceFactory, seed: int, hour: int, action: str
) -> None:
    w, people = build(workspace, 400, seed, hour=hour, action=action)
    res = plan_campaign(w.ws, "promo", AS_OF)
    rows = plan_rows(w)
    assert res.audience == len(people) == len(rows)
    for p in people:
        row = rows[p["id"]]
        reason, channel = expected(p, hour, 7.0, action)
        assert row["reason"] == reason, (p, row)
        if reason is None:
            assert row["status"] == "planned"
            assert row["channel"] == channel
            assert row["idempotency_key"] == idempotency_key(
                "promo", res.occurrence, p["id"], str(channel)
            )
            send = local_send(p["zone"], hour)
            loc = send.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(p["zone"])).time()
            if loc >= dt.time(21) or loc < dt.time(8):
                send = deferred(p["zone"], send)
            assert row["send_at"] == send
            # the safety promises: consent, address / live token, outside quiet hours
            if channel == "push":
                assert p["push_consent"] and p["token"] and not p["dead"]
            else:
                assert p["email_consent"] and p["email"]
            lt = row["send_at"].replace(tzinfo=dt.UTC).astimezone(ZoneInfo(p["zone"])).time()
            assert dt.time(8) <= lt < dt.time(21)
        else:
            assert row["status"] == ("holdout" if reason == "holdout" else "suppressed")
            assert row["idempotency_key"] is None


def test_reentry_never_blocks_anyone_who_ever_got_it(workspace: WorkspaceFactory) -> None:
    w, people = build(workspace, 200, 5, reentry="never")
    plan_campaign(w.ws, "promo", AS_OF)
    rows = plan_rows(w)
    for p in people:
        reason, _ = expected(p, 10, None, "defer")
        assert rows[p["id"]]["reason"] == reason


def test_holdout_and_control_shares_are_stable(workspace: WorkspaceFactory) -> None:
    w, _ = build(workspace, 6000, 6, gc="0%")
    plan_campaign(w.ws, "promo", AS_OF)
    with open_db(w.ws) as con:
        n_hold, n_assigned = con.execute(
            "SELECT count(*) FILTER (WHERE reason = 'holdout'), count(*) FILTER "
            "(WHERE reason IS NULL OR reason IN ('holdout', 'frequency_cap'))  FROM plan_rows"
        ).fetchall()[0]
        first = dict(con.execute("SELECT user_id, status FROM plan_rows").fetchall())
    share = n_hold / n_assigned
    # 10% holdout: binomial sd at n≈2000 is ~0.7 points; 4 sd of tolerance
    assert 0.07 < share < 0.13, share
    plan_campaign(w.ws, "promo", AS_OF)
    with open_db(w.ws) as con:
        again = dict(con.execute("SELECT user_id, status FROM plan_rows").fetchall())
    assert again == first


def test_why_explains_in_words(workspace: WorkspaceFactory) -> None:
    w, people = build(workspace, 120, 7)
    plan_campaign(w.ws, "promo", AS_OF)
    rows = plan_rows(w)
    by_reason: dict[str | None, str] = {}
    for uid, r in rows.items():
        by_reason.setdefault(r["reason"], uid)
    assert "no_consent" in by_reason and None in by_reason
    out = why(w.ws, "promo", by_reason["no_consent"], AS_OF)
    assert out["reason"] == "no_consent"
    assert "has not consented" in out["explanation"]
    out = why(w.ws, "promo", by_reason[None], AS_OF)
    assert out["status"] == "planned"
    assert "will receive it by" in out["explanation"]
    vip = next(p["id"] for p in people if p["vip"])
    out = why(w.ws, "promo", vip, AS_OF)
    assert out["reason"] == "excluded_segment"
    assert "vip" in out["explanation"]


def test_planned_users_get_a_sticky_coupon(workspace: WorkspaceFactory) -> None:
    w, _ = build(workspace, 300, 8)
    text = (w.root / "campaigns/promo.yaml").read_text(encoding="utf-8")
    (w.root / "campaigns/promo.yaml").write_text(text + "coupon: {prefix: BACK15}\n", "utf-8")
    plan_campaign(w.ws, "promo", AS_OF)
    with open_db(w.ws) as con:
        codes = dict(con.execute("SELECT user_id, code FROM coupon_assignments").fetchall())
        planned = {
            r[0]
            for r in con.execute(
                "SELECT user_id FROM plan_rows WHERE status = 'planned'"
            ).fetchall()
        }
    assert set(codes) == planned and planned
    assert len(set(codes.values())) == len(codes)
    assert all(code.startswith("BACK15-") for code in codes.values())
    plan_campaign(w.ws, "promo", AS_OF)
    with open_db(w.ws) as con:
        again = dict(con.execute("SELECT user_id, code FROM coupon_assignments").fetchall())
    assert again == codes


def test_keys_from_sql_and_python_agree_with_the_spec(workspace: WorkspaceFactory) -> None:
    """Plain ids take the SQL path, ids JSON escapes the Python one: both equal uuid5."""
    from mcrm.campaigns.engine import _set_keys

    w = workspace()
    ids = ["usr_1", "email:ab12", "a.b@c+d-e", 'quo"te', "back\\slash", "Dvořák", "tab\there"]
    with open_db(w.ws, write=True) as con:
        con.execute(
            "CREATE TEMP TABLE plan_rows_tmp (user_id VARCHAR, occurrence VARCHAR, "
            "channel VARCHAR, status VARCHAR, idempotency_key VARCHAR)"
        )
        for uid in ids:
            con.execute(
                "INSERT INTO plan_rows_tmp VALUES (?, '2026-03-02T09:00:00Z', 'push', 'planned', "
                "NULL)",
                [uid],
            )
        _set_keys(con, "promo")
        got = dict(con.execute("SELECT user_id, idempotency_key FROM plan_rows_tmp").fetchall())
    for uid in ids:
        assert got[uid] == idempotency_key("promo", "2026-03-02T09:00:00Z", uid, "push"), uid
