"""The sample's message history (data/ in the repository), derived from the sample itself.

The story: the team **moved to mcrm `MOVE_WEEKS` (4) weeks before the end of the data**
(`moved(end)`: 2026-10-18 for the sample ending 2026-11-15). `write(out, seed, end)` reads the
files `mcrm.demo.generate_sample` has just written (users, consents, devices and the app's push
opens) and adds what the team brought along from its previous tools:

- `sendgrid_events.jsonl.gz` — the SendGrid Event Webhook log of the two e-mail campaigns the
  previous tool sent (`EMAIL_CAMPAIGNS`: `winback_dormant` on Mondays at 10:00,
  `vip_recommendations` on the 1st at 11:00, each user's zone), from 10 weeks before the end of
  the data up to the move, to a deterministic share of the users with e-mail marketing
  consent. Nothing is sent from the move on: from then the weekly win-back is sent by mcrm
  itself (`mcrm demo` backfills those weeks through the file outbox, `mcrm.demo.backfill`), so
  no campaign is sent twice on one day by two systems. The monthly VIP e-mail (no holdout, so
  nothing to measure) was switched off with the old tool: its last send is 2026-10-01, and
  mcrm's first is the plan you make for 2026-12-01. Events as SendGrid posts them (processed,
  delivered, deferred, open — Apple Mail prefetches flagged `sg_machine_open` —, click,
  bounce / blocked, dropped, unsubscribe, group_unsubscribe, spamreport), the campaign in the
  `mcrm_campaign` custom arg. The sends before the move are the same as before the move date
  existed (same random stream), the log just stops there.
- `push_sends.csv.gz` — the sends of the app's weekly push campaigns (`weekly_<month>_<cc>`,
  Thursdays at 10:00 local, to every user with a push token in that country; the last 10
  weeks), as generic `message-events` rows. The app team sends these from the Firebase
  console and did not move them (they are not in `campaigns/`): their sends go on to the end,
  as the app's own `push_open` events (Amplitude, Firebase) that give their opens do.

Same inputs and seed, same bytes (gzip without a timestamp).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import gzip
import io
import json
import random
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

FILES = ("sendgrid_events.jsonl.gz", "push_sends.csv.gz")
MACHINE_DOMAINS = ("icloud.com", "me.com", "mac.com")
EMAIL_CAMPAIGNS = ("winback_dormant", "vip_recommendations")
"""The campaigns the previous e-mail tool sent, up to the move."""
MOVE_WEEKS = 4


def moved(end: dt.date) -> dt.date:
    """The day the team moved to mcrm: `MOVE_WEEKS` weeks before the data's last day `end`.
    The history's last send is the day before; mcrm's first occurrences fall on or after it."""
    return end - dt.timedelta(weeks=MOVE_WEEKS)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _gzip(path: Path, text: str) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as g:
        g.write(text.encode("utf-8"))
    path.write_bytes(buf.getvalue())


def _epoch(t: dt.datetime) -> int:
    return int(t.replace(tzinfo=dt.UTC).timestamp())


def _utc(local: dt.datetime, zone: str) -> dt.datetime:
    return local.replace(tzinfo=ZoneInfo(zone)).astimezone(dt.UTC).replace(tzinfo=None)


def _sg_id(rng: random.Random) -> str:
    return base64.urlsafe_b64encode(rng.randbytes(16)).decode().rstrip("=")


def _email_events(
    users: list[dict[str, str]], consented: set[str], seed: int, end: dt.date, zone: str
) -> list[str]:
    rng = random.Random(f"{seed}:sendgrid")
    people = sorted(
        (u for u in users if u["email"] and u["email"].lower() in consented),
        key=lambda u: u["user_id"],
    )
    first = end - dt.timedelta(days=70)
    slots: list[tuple[str, dt.date, int, float]] = []
    d = first
    while d < moved(end):
        if d.weekday() == 0:
            slots.append(("winback_dormant", d, 10, 0.12))
        if d.day == 1:
            slots.append(("vip_recommendations", d, 11, 0.06))
        d += dt.timedelta(days=1)
    unsubscribed: set[str] = set()
    bounced: set[str] = set()
    lines: list[tuple[int, int, str]] = []
    for campaign, day, hour, share in slots:
        batch = _sg_id(rng)
        for u in people:
            email = u["email"].lower()
            if email in unsubscribed or email in bounced or rng.random() >= share:
                continue
            sent = _utc(dt.datetime.combine(day, dt.time(hour)), u["timezone"] or zone)
            sent += dt.timedelta(seconds=rng.randrange(600))
            mid = f"{batch}.filterdrecv-{rng.randrange(16**8):08x}-1-{len(lines):06X}.0"
            base: dict[str, object] = {
                "email": u["email"],
                "category": [campaign],
                "sg_message_id": mid,
                "mcrm_campaign": campaign,
            }

            def ev(
                event: str, at: dt.datetime, base: dict[str, object] = base, **kw: object
            ) -> None:
                doc = {"timestamp": _epoch(at), "event": event, "sg_event_id": _sg_id(rng)}
                doc.update(base)
                doc.update(kw)
                lines.append((_epoch(at), len(lines), json.dumps(doc, ensure_ascii=False)))

            ev("processed", sent)
            fate = rng.random()
            if fate < 0.004:
                ev("dropped", sent + dt.timedelta(seconds=1), reason="Bounced Address")
                bounced.add(email)
                continue
            if fate < 0.014:
                hard = rng.random() < 0.7
                ev(
                    "bounce",
                    sent + dt.timedelta(seconds=rng.randrange(2, 60)),
                    type="bounce" if hard else "blocked",
                    status="5.1.1" if hard else "5.7.1",
                    reason="550 5.1.1 The email account that you tried to reach does not exist"
                    if hard
                    else "550 5.7.1 Message rejected due to local policy",
                    bounce_classification="Invalid Address" if hard else "Reputation",
                )
                if hard:
                    bounced.add(email)
                continue
            delay = dt.timedelta(seconds=rng.randrange(1, 30))
            if rng.random() < 0.03:
                ev("deferred", sent + delay, response="421 4.7.0 Try again later", attempt="1")
                delay += dt.timedelta(minutes=rng.randrange(5, 90))
            ev("delivered", sent + delay, response="250 2.0.0 OK")
            t = sent + delay
            if email.rsplit("@", 1)[-1] in MACHINE_DOMAINS and rng.random() < 0.9:
                ev("open", t + dt.timedelta(seconds=rng.randrange(5, 300)), sg_machine_open=True)
            if rng.random() < 0.28:
                t += dt.timedelta(minutes=rng.randrange(2, 48 * 60))
                ev("open", t, sg_machine_open=False, useragent="Mozilla/5.0")
                if rng.random() < 0.3:
                    t += dt.timedelta(seconds=rng.randrange(5, 600))
                    ev(
                        "click",
                        t,
                        url=f"https://shop.example.com/offers/{campaign}?utm_medium=email",
                    )
                if rng.random() < 0.02:
                    ev("unsubscribe", t + dt.timedelta(seconds=20))
                    unsubscribed.add(email)
                elif rng.random() < 0.01:
                    ev("group_unsubscribe", t + dt.timedelta(seconds=20), asm_group_id=1)
                    unsubscribed.add(email)
            elif rng.random() < 0.002:
                ev("spamreport", t + dt.timedelta(hours=rng.randrange(1, 30)))
                unsubscribed.add(email)
    limit = _epoch(dt.datetime.combine(end, dt.time(23, 0)))
    return [text for ts, _i, text in sorted(lines) if ts <= limit]


def _push_opens(out: Path) -> dict[str, set[dt.date]]:
    """Each weekly push campaign's send days (the Thursday on or before each open)."""
    days: dict[str, set[dt.date]] = defaultdict(set)

    def add(campaign: str | None, ts: dt.datetime) -> None:
        if campaign and campaign.startswith("weekly_"):
            day = ts.date()
            days[campaign].add(day - dt.timedelta(days=(day.weekday() - 3) % 7))

    with gzip.open(out / "amplitude_events.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            if '"push_open"' not in line:
                continue
            doc = json.loads(line)
            if doc.get("event_type") == "push_open":
                props = doc.get("event_properties") or {}
                add(props.get("campaign_id"), dt.datetime.fromisoformat(doc["event_time"]))
    with (out / "firebase_events.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if "notification_open" not in line:
                continue
            doc = json.loads(line)
            if doc.get("event_name") != "notification_open":
                continue
            params = {
                p["key"]: p["value"].get("string_value") for p in doc.get("event_params", [])
            }
            ts = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(doc["event_timestamp"]))
            add(params.get("message_name") or params.get("label"), ts)
    return days


def _push_sends(out: Path, users: list[dict[str, str]], since: dt.date) -> list[list[str]]:
    from mcrm.demo import COUNTRIES

    # a campaign `weekly_<month>_<cc>` goes out at 10:00 in its country's zone
    zones = {c.code.lower(): (c.code, c.zone) for c in COUNTRIES}
    tokens = {d["user_id"] for d in _read_csv(out / "devices.csv") if d["push_token"]}
    by_country: dict[str, list[str]] = defaultdict(list)
    for u in users:
        if u["user_id"] in tokens:
            by_country[u["country"]].append(u["user_id"])
    rows: list[list[str]] = []
    for campaign, days in sorted(_push_opens(out).items()):
        cc = campaign.rsplit("_", 1)[-1]
        if cc not in zones:
            continue
        country, zone = zones[cc]
        for day in sorted(days):
            if day < since:
                continue
            at = _utc(dt.datetime.combine(day, dt.time(10)), zone)
            stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
            for uid in sorted(by_country[country]):
                mid = f"{campaign}:{day.isoformat()}:{uid}"
                rows.append([f"push:{mid}", "fcm", mid, uid, campaign, "push", "sent", stamp])
    return rows


def write(out: Path, seed: int, end: dt.date, zone: str = "Europe/Prague") -> list[Path]:
    """Write FILES into `out` (see the module docstring); returns their paths."""
    users = _read_csv(out / "users.csv")
    email_of = {u["user_id"]: u["email"].lower() for u in users if u["email"]}
    latest: dict[str, tuple[str, str]] = {}
    for c in _read_csv(out / "consents.csv"):
        if c["channel"] != "email" or c["purpose"] != "marketing":
            continue
        key = c["email"].lower() if c["email"] else email_of.get(c["user_id"], "")
        if key and (key not in latest or c["timestamp"] >= latest[key][0]):
            latest[key] = (c["timestamp"], c["granted"])
    consented = {e for e, (_t, g) in latest.items() if g.lower() == "true"}
    sg = out / FILES[0]
    _gzip(sg, "\n".join(_email_events(users, consented, seed, end, zone)) + "\n")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "event_id",
            "provider",
            "message_id",
            "user_id",
            "campaign",
            "channel",
            "type",
            "timestamp",
        ]
    )
    w.writerows(_push_sends(out, users, end - dt.timedelta(days=70)))
    push = out / FILES[1]
    _gzip(push, buf.getvalue())
    return [sg, push]
