"""Property and statistical tests of the send plan (SPEC §5.3-5.4, reference/analytics.md §14).

Hypothesis draws workspaces of a few users with random consents (per channel and purpose,
granted and revoked rows over time, some after the as-of instant), devices (valid, invalidated,
push disabled, no token), emails and phones (valid, malformed, missing), time zones (real,
missing, not a zone) and message histories (`sent` rows, and other types that must not count),
and campaigns over push / email / sms, marketing and transactional, with quiet hours (defer and
drop), caps (workspace and campaign), reentry, variants, holdout and global control. The plan
is checked against a plain-Python model of the policy computed from the generated data (never
by re-reading mcrm's SQL):

- every audience member has exactly one row, which is planned, holdout or suppressed with
  exactly one reason from `plan.REASONS` (the first failing check, in the documented order);
- a planned row never goes to a user without consent for its channel and purpose, without an
  address or a live token, inside quiet hours (marketing), over a cap counted over sent
  messages in the rolling window (marketing), nor to a holdout or global-control member;
- every assigned user (analytics.md §14: planned, holdout, or cut after holdout placement by a
  cap or a quiet-hours drop) has the planned send time (out of quiet hours) and, outside the
  holdout, the hash's variant; the earlier suppressions have neither.

The statistical tests build 30,000 users directly in DuckDB and check that holdout, global
control and variant shares are within 4 binomial standard deviations of their weights, and that
assignment is stable across runs and unrelated data changes.

Hash membership (holdout, global control, variant) is computed in Python from the documented
bucket: md5 of "holdout:<campaign>:<user>", "gc:<salt>:<user>" or "variant:<campaign>:<user>",
first 8 hex digits mod 10000, below the share x 10000 (the same hash as segments' `bucket`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcrm.campaigns.engine import load, plan_campaign
from mcrm.campaigns.plan import REASONS, build
from mcrm.config import Workspace, open_workspace
from mcrm.db import open_db
from tests.unit.test_campaign_plan import _insert

CAMPAIGN = "promo"
CHANNELS = ("push", "email", "sms")
PURPOSES = ("marketing", "transactional")
# As-of instants well away from every DST change of the zones below (their DST gaps and folds
# make "the local 09:30" ambiguous, which is not what these properties are about).
AS_OFS = (
    dt.datetime(2026, 1, 15, 6, 30),
    dt.datetime(2026, 2, 10, 19, 45, 30),
    dt.datetime(2026, 6, 20, 23, 10),
    dt.datetime(2026, 12, 1, 12, 0),
)
WS_ZONES = ("Europe/Prague", "UTC", "America/New_York", "Asia/Kolkata")
# None and names that are not IANA zones fall back to the workspace zone
USER_ZONES = (
    None,
    "",
    "Not/AZone",
    "Europe/Prague",
    "Asia/Kolkata",
    "America/St_Johns",
    "Pacific/Chatham",
    "Asia/Tokyo",
    "America/Los_Angeles",
    "Australia/Sydney",
    "UTC",
)
EMAILS_OK = ("{uid}@example.com", "first.last+tag@mail.example.cz")
EMAILS_BAD = (
    "not-an-email",
    "two@@example.com",
    "sp ace@example.com",
    "",
    "@example.com",
    "{uid}@example.",
)
PHONES_OK = ("+420601234567", "+14155550123", "+8613800138000", "+447911123456")
PHONES_BAD = (
    "00420601234567",
    "+0601234567",
    "601 234 567",
    "+42060123456789012",
    "+12345",
    "",
    "+420 601 234 567",
)
# (start, end): wrapping and non-wrapping windows; no end in the 01:00-03:59 DST hours
QUIET = (("21:00", "08:00"), ("22:30", "07:15"), ("12:00", "14:00"), ("00:00", "06:00"))
# daily cron times: the quiet windows' edges (start is inside, end is outside) and others
CRON_TIMES = (
    (21, 0),
    (22, 30),
    (12, 0),
    (0, 0),
    (8, 0),
    (7, 15),
    (14, 0),
    (6, 0),
    (9, 30),
    (20, 45),
    (23, 45),
    (13, 0),
)
PERIODS = {"12h": 0.5, "1d": 1.0, "3d": 3.0, "1w": 7.0}
REENTRY = {"never": None, "always": None, "1d": 1.0, "36h": 1.5, "1w": 7.0}

SEGMENTS = """\
segments:
  everyone: {where: {attr: user_id, exists: true}}
  czech: {where: {country: CZ}}
  vip: {where: {attr: attributes.vip, eq: true}}
"""

LATE = ("frequency_cap", "quiet_hours_dropped")  # after holdout placement (template skips: none)
MARKETING_ONLY = ("reentry", "global_control", "frequency_cap", "quiet_hours_dropped")
MINUTE = dt.timedelta(minutes=1)
# a user's first device: (token, push_enabled, invalidated_at - as_of)
DEVICES: dict[str | None, tuple[str | None, bool | None, dt.timedelta | None]] = {
    "live": ("tok", True, None),
    "enabled_unknown": ("tok", None, None),
    "dies_later": ("tok", True, dt.timedelta(hours=3)),
    "dead": ("tok", True, dt.timedelta(days=-1)),
    "dead_now": ("tok", True, dt.timedelta(0)),
    "push_off": ("tok", False, None),
    "no_token": (None, True, None),
    None: (None, None, None),
}


# ---------------------------------------------------------------------------------------------
# The generated world


@dataclass(frozen=True)
class Cap:
    channel: str  # push | email | sms | any
    max: int
    per: str  # a key of PERIODS


@dataclass(frozen=True)
class Conf:
    as_of: dt.datetime
    ws_zone: str
    channels: tuple[str, ...]
    purpose: str
    segment: str
    exclude_vip: bool
    schedule: tuple[Any, ...] | None  # ("cron", hour, minute, tz) | ("at", naive, tz)
    reentry: str
    holdout: float
    gc: float
    salt: str | None
    ws_quiet: tuple[str, str, str] | None
    camp_quiet: tuple[str, str, str] | None
    ws_caps: tuple[Cap, ...]
    camp_caps: tuple[Cap, ...]
    variants: tuple[tuple[str, int], ...] | None

    @property
    def marketing(self) -> bool:
        return self.purpose == "marketing"

    @property
    def quiet(self) -> tuple[str, str, str] | None:
        """A campaign's quiet hours replace the workspace window."""
        return self.camp_quiet if self.camp_quiet is not None else self.ws_quiet


@dataclass
class Person:
    uid: str
    country: str | None
    vip: bool
    first_seen: dt.datetime | None
    email: str | None
    email_ok: bool
    phone: str | None
    phone_ok: bool
    zone: str | None
    # (channel, purpose, granted, ts)
    consents: list[tuple[str, str, bool, dt.datetime]] = field(default_factory=list)
    # (push_token, push_enabled, invalidated_at, platform)
    devices: list[tuple[str | None, bool | None, dt.datetime | None, str]] = field(
        default_factory=list
    )
    # (campaign, channel, type, ts)
    messages: list[tuple[str, str, str, dt.datetime]] = field(default_factory=list)


def _quiet() -> st.SearchStrategy[tuple[str, str, str]]:
    return st.tuples(st.sampled_from(QUIET), st.sampled_from(("defer", "drop"))).map(
        lambda t: (t[0][0], t[0][1], t[1])
    )


def _caps() -> st.SearchStrategy[tuple[Cap, ...]]:
    cap = st.builds(
        Cap,
        st.sampled_from(("push", "email", "sms", "any")),
        st.integers(0, 3),
        st.sampled_from(tuple(PERIODS)),
    )
    return st.lists(cap, max_size=2).map(tuple)


@st.composite
def confs(draw: st.DrawFn, purposes: tuple[str, ...] = PURPOSES) -> Conf:
    purpose = draw(st.sampled_from(purposes))
    channels = tuple(
        draw(st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=3, unique=True))
    )
    kind = draw(st.sampled_from(("manual", "cron", "at")))
    schedule: tuple[Any, ...] | None
    if kind == "manual":
        schedule = None
    elif kind == "cron":
        hour, minute = draw(st.sampled_from(CRON_TIMES))
        schedule = (
            "cron",
            hour,
            minute,
            draw(st.sampled_from(("user", "workspace", "Asia/Tokyo"))),
        )
    else:
        at = dt.datetime(2026, 1, 1) + dt.timedelta(
            days=draw(st.sampled_from((14, 41, 170, 334))),
            hours=draw(st.sampled_from((5, 8, 10, 15, 21, 22, 23))),
        )
        schedule = ("at", at, draw(st.sampled_from(("user", "workspace", "America/Sao_Paulo"))))
    reentry = draw(st.sampled_from(tuple(REENTRY)))
    variants = draw(
        st.none()
        | st.sampled_from(((("a", 50), ("b", 50)), (("a", 70), ("b", 20), ("c", 10)), (("x", 1),)))
    )
    return Conf(
        as_of=draw(st.sampled_from(AS_OFS)),
        ws_zone=draw(st.sampled_from(WS_ZONES)),
        channels=channels,
        purpose=purpose,
        segment=draw(st.sampled_from(("everyone", "czech"))),
        exclude_vip=draw(st.booleans()),
        schedule=schedule,
        reentry=reentry,
        holdout=draw(st.sampled_from((0.0, 0.1, 0.3, 0.5))),
        gc=draw(st.sampled_from((0.0, 0.05, 0.3))),
        salt=draw(st.none() | st.just("salt-2")),
        ws_quiet=draw(st.none() | _quiet()),
        camp_quiet=draw(st.none() | _quiet()),
        ws_caps=draw(_caps()),
        camp_caps=draw(_caps()),
        variants=variants,
    )


def _offset(draw: st.DrawFn, as_of: dt.datetime) -> dt.datetime:
    """A moment around as-of: mostly before, sometimes exactly at it or after it."""
    minutes = draw(
        st.sampled_from((0, -1, 1, -60, -12 * 60, -24 * 60, -36 * 60, -7 * 24 * 60, -10 * 1440))
        | st.integers(-3 * 24 * 60, 60)
        | st.integers(-16 * 24 * 60, 24 * 60)
    )
    return as_of.replace(second=0) + minutes * MINUTE


@st.composite
def people(draw: st.DrawFn, conf: Conf) -> list[Person]:
    n = draw(st.integers(1, 30))
    out: list[Person] = []
    as_of = conf.as_of
    for i in range(n):
        uid = f"u{i:02d}"
        email_kind = draw(st.sampled_from(("ok", "ok", "bad", "none")))
        email = (
            draw(st.sampled_from(EMAILS_OK if email_kind == "ok" else EMAILS_BAD)).format(uid=uid)
            if email_kind != "none"
            else None
        )
        phone_kind = draw(st.sampled_from(("ok", "ok", "bad", "none")))
        phone = (
            draw(st.sampled_from(PHONES_OK if phone_kind == "ok" else PHONES_BAD))
            if phone_kind != "none"
            else None
        )
        seen = draw(st.sampled_from(("past", "past", "past", "none", "future")))
        p = Person(
            uid=uid,
            country=draw(st.sampled_from(("CZ", "CZ", "SK", None))),
            vip=draw(st.integers(0, 7)) == 0,
            first_seen=None
            if seen == "none"
            else as_of + dt.timedelta(days=-90 if seen == "past" else 2),
            email=email,
            email_ok=email_kind == "ok",
            phone=phone,
            phone_ok=phone_kind == "ok",
            zone=draw(st.sampled_from(USER_ZONES)),
        )
        # a reachable base (so many users pass the consent checks), then random noise rows
        base = draw(st.integers(0, 4))
        granted_at = as_of - dt.timedelta(days=10)
        if base > 0:
            for ch in conf.channels:
                p.consents.append((ch, conf.purpose, True, granted_at))
        if base == 4:  # a revocation at the same instant as the grant
            ch = draw(st.sampled_from(conf.channels))
            p.consents.insert(
                draw(st.integers(0, len(p.consents))), (ch, conf.purpose, False, granted_at)
            )
        device = draw(st.sampled_from(tuple(DEVICES)))
        if device is not None:
            tok, en, inv = DEVICES[device]
            p.devices.append(
                (
                    None if tok is None else f"{tok}-{uid}",
                    en,
                    None if inv is None else as_of + inv,
                    "ios",
                )
            )
        for _ in range(draw(st.integers(0, 3))):
            p.consents.append(
                (
                    draw(st.sampled_from((*CHANNELS, "inapp"))),
                    draw(st.sampled_from(PURPOSES)),
                    draw(st.booleans()),
                    _offset(draw, as_of),
                )
            )
        for k in range(draw(st.integers(0, 2))):
            p.devices.append(
                (
                    draw(st.none() | st.just(f"tok-{uid}-{k}")),
                    draw(st.sampled_from((True, False, None))),
                    draw(st.none() | st.just(_offset(draw, as_of))),
                    draw(st.sampled_from(("ios", "android", "web"))),
                )
            )
        for _ in range(draw(st.integers(0, 5))):
            p.messages.append(
                (
                    draw(st.sampled_from((CAMPAIGN, "other", "other"))),
                    draw(st.sampled_from(CHANNELS)),
                    # `processed` is a provider's report of a message whose `sent` row is
                    # dispatch's (the presets store another tool's send as `sent`): not a send
                    draw(
                        st.sampled_from(
                            ("sent", "sent", "sent", "processed", "delivered", "failed")
                        )
                    ),
                    _offset(draw, as_of),
                )
            )
        out.append(p)
    return out


@st.composite
def worlds(draw: st.DrawFn, purposes: tuple[str, ...] = PURPOSES) -> tuple[Conf, list[Person]]:
    conf = draw(confs(purposes))
    return conf, draw(people(conf))


# ---------------------------------------------------------------------------------------------
# Writing the world into a workspace and planning it


def _cap_yaml(caps: tuple[Cap, ...]) -> list[dict[str, Any]]:
    return [{"channel": c.channel, "max": c.max, "per": c.per} for c in caps]


def _quiet_yaml(q: tuple[str, str, str]) -> dict[str, str]:
    return {"start": q[0], "end": q[1], "action": q[2]}


def write_config(root: Path, conf: Conf) -> None:
    delivery: dict[str, Any] = {
        "global_control": conf.gc,
        "unsubscribe": {"url": "https://u.example.com/u/{token}"},
    }
    if conf.salt is not None:
        delivery["global_control_salt"] = conf.salt
    if conf.ws_quiet is not None:
        delivery["quiet_hours"] = _quiet_yaml(conf.ws_quiet)
    if conf.ws_caps:
        delivery["frequency_caps"] = _cap_yaml(conf.ws_caps)
    (root / "mcrm.yaml").write_text(
        yaml.safe_dump({"timezone": conf.ws_zone, "delivery": delivery}, sort_keys=False),
        encoding="utf-8",
    )
    (root / "segments.yaml").write_text(SEGMENTS, encoding="utf-8")
    templates = {
        "push": {"body": "t.j2"},
        "email": {"subject": "t.j2", "text": "t.j2"},
        "sms": {"body": "t.j2"},
    }
    camp: dict[str, Any] = {
        "segment": conf.segment,
        "channels": list(conf.channels),
        "purpose": conf.purpose,
        "reentry": conf.reentry,
        "holdout": conf.holdout,
        "templates": {ch: templates[ch] for ch in conf.channels},
    }
    if conf.exclude_vip:
        camp["exclude"] = ["vip"]
    if conf.schedule is not None:
        sched: dict[str, Any] = (
            {"cron": f"{conf.schedule[2]} {conf.schedule[1]} * * *"}
            if conf.schedule[0] == "cron"
            else {"at": conf.schedule[1].isoformat(timespec="minutes")}
        )
        if conf.schedule[-1] != "workspace":  # no timezone: the workspace zone
            sched["timezone"] = conf.schedule[-1]
        camp["schedule"] = sched
    if conf.variants is not None:
        camp["variants"] = {name: {"weight": w} for name, w in conf.variants}
    camp_delivery: dict[str, Any] = {}
    if conf.camp_quiet is not None:
        camp_delivery["quiet_hours"] = _quiet_yaml(conf.camp_quiet)
    if conf.camp_caps:
        camp_delivery["frequency_caps"] = _cap_yaml(conf.camp_caps)
    if camp_delivery:
        camp["delivery"] = camp_delivery
    (root / "campaigns").mkdir(exist_ok=True)
    (root / "campaigns" / f"{CAMPAIGN}.yaml").write_text(
        yaml.safe_dump(camp, sort_keys=False), encoding="utf-8"
    )
    (root / "campaigns" / "t.j2").write_text("Hi", encoding="utf-8")


def write_people(con: Any, ps: list[Person]) -> None:
    for table in ("users", "consents", "devices", "message_events"):
        con.execute(f"DELETE FROM {table}")
    _insert(
        con,
        "users",
        ["user_id", "email", "phone", "country", "timezone", "attributes", "first_seen"],
        [
            [
                p.uid,
                p.email,
                p.phone,
                p.country,
                p.zone,
                '{"vip": ' + str(p.vip).lower() + "}",
                p.first_seen,
            ]
            for p in ps
        ],
    )
    cons = [[p.uid, ch, pu, g, ts, "test"] for p in ps for ch, pu, g, ts in p.consents]
    if cons:
        _insert(
            con, "consents", ["user_id", "channel", "purpose", "granted", "ts", "source"], cons
        )
    devs = [
        [p.uid, f"d-{p.uid}-{k}", plat, tok, en, inv]
        for p in ps
        for k, (tok, en, inv, plat) in enumerate(p.devices)
    ]
    if devs:
        _insert(
            con,
            "devices",
            ["user_id", "device_id", "platform", "push_token", "push_enabled", "invalidated_at"],
            devs,
        )
    msgs = [
        [f"m-{p.uid}-{k}", p.uid, camp, ch, typ, ts]
        for p in ps
        for k, (camp, ch, typ, ts) in enumerate(p.messages)
    ]
    if msgs:
        _insert(
            con,
            "message_events",
            ["event_id", "user_id", "campaign", "channel", "type", "ts"],
            msgs,
        )


@dataclass(frozen=True)
class PropWs:
    root: Path
    con: Any  # one write connection to the workspace database, kept open


def plan_world(pw: PropWs, conf: Conf, ps: list[Person]) -> list[dict[str, Any]]:
    """Write the world, plan it with `plan.build` and return every plan row."""
    write_config(pw.root, conf)
    ws: Workspace = open_workspace(str(pw.root), {}, pw.root)
    c, delivery = load(ws, CAMPAIGN)
    write_people(pw.con, ps)
    res = build(pw.con, ws, c, delivery, conf.as_of)
    cur = pw.con.execute(f"SELECT * FROM {res.rows_table}")
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    assert res.audience == len(rows)
    return rows


@pytest.fixture(scope="module")
def prop_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PropWs]:
    """One workspace (and database connection) reused by every example: opening a database
    costs more than planning a few users."""
    root = tmp_path_factory.mktemp("plan_props")
    (root / "mcrm.yaml").write_text("timezone: UTC\n", encoding="utf-8")
    with open_db(open_workspace(str(root), {}, root), write=True) as con:
        yield PropWs(root, con)


# ---------------------------------------------------------------------------------------------
# The independent model


def bucket(key: str) -> int:
    return int(hashlib.md5(key.encode()).hexdigest()[:8], 16) % 10000


def in_holdout(conf: Conf, uid: str) -> bool:
    return bucket(f"holdout:{CAMPAIGN}:{uid}") < round(conf.holdout * 10000)


def in_global_control(conf: Conf, uid: str) -> bool:
    salt = conf.salt or "global-control"
    return conf.marketing and bucket(f"gc:{salt}:{uid}") < round(conf.gc * 10000)


def variant_of(conf: Conf, uid: str) -> str:
    vs = conf.variants or (("default", 100),)
    total = sum(w for _, w in vs)
    b, acc = bucket(f"variant:{CAMPAIGN}:{uid}"), 0
    for name, w in vs[:-1]:
        acc += w
        if b < round(acc / total * 10000):
            return name
    return vs[-1][0]


def zone_of(conf: Conf, p: Person) -> str:
    """The user's zone, or the workspace zone when it is missing or not an IANA zone."""
    if p.zone:
        try:
            ZoneInfo(p.zone)
            return p.zone
        except (ValueError, KeyError):
            pass
    return conf.ws_zone


def to_utc(local: dt.datetime, zone: str) -> dt.datetime:
    return local.replace(tzinfo=ZoneInfo(zone)).astimezone(dt.UTC).replace(tzinfo=None)


def to_local(utc: dt.datetime, zone: str) -> dt.datetime:
    return utc.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def send_time(conf: Conf, p: Person) -> dt.datetime:
    """The occurrence's UTC send time for this user, before quiet hours."""
    s = conf.schedule
    if s is None:
        return conf.as_of
    tz = s[-1]
    zone = zone_of(conf, p) if tz == "user" else conf.ws_zone if tz == "workspace" else tz
    if s[0] == "at":
        return to_utc(s[1], zone)
    _, hour, minute, _ = s
    now = to_local(conf.as_of, zone)
    cand = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if cand < now:  # the next slot at or after as-of
        cand += dt.timedelta(days=1)
    return to_utc(cand, zone)


def hhmm(text: str) -> dt.time:
    return dt.time(int(text[:2]), int(text[3:]))


def quiet_contains(q: tuple[str, str, str], t: dt.time) -> bool:
    start, end = hhmm(q[0]), hhmm(q[1])
    return start <= t < end if start < end else (t >= start or t < end)


def quiet_end(q: tuple[str, str, str], local: dt.datetime) -> dt.datetime:
    """The end of the quiet window that contains the local time `local` (local, naive)."""
    start, end = hhmm(q[0]), hhmm(q[1])
    day = local.date()
    if start > end and local.time() >= start:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, end)


def consented(p: Person, channel: str, purpose: str, as_of: dt.datetime) -> bool:
    """The latest consent row at or before as-of grants it (a revocation at the same instant
    as a grant wins: the safe reading of an ambiguous ledger)."""
    rows = [(ts, g) for ch, pu, g, ts in p.consents if ch == channel and pu == purpose]
    rows = [(ts, g) for ts, g in rows if ts <= as_of]
    if not rows:
        return False
    latest = max(ts for ts, _ in rows)
    return all(g for ts, g in rows if ts == latest)


def live_token(p: Person, as_of: dt.datetime) -> bool:
    return any(
        tok is not None and en is not False and (inv is None or inv > as_of)
        for tok, en, inv, _ in p.devices
    )


def channel_status(conf: Conf, p: Person, ch: str) -> str:
    if not consented(p, ch, conf.purpose, conf.as_of):
        return "no_consent"
    if ch == "push":
        if not any(tok is not None for tok, _, _, _ in p.devices):
            return "no_address"
        return "ok" if live_token(p, conf.as_of) else "invalid_token"
    ok = p.email_ok if ch == "email" else p.phone_ok
    return "ok" if ok else "no_address"


def all_caps(conf: Conf) -> tuple[Cap, ...]:
    return (*conf.ws_caps, *conf.camp_caps)


def cap_hit(conf: Conf, p: Person, channel: str, send: dt.datetime) -> bool:
    """Sent messages in the rolling window before the send time, plus this one, over a cap
    that applies to the channel (only messages already sent at as-of exist)."""
    for cap in all_caps(conf):
        if cap.channel not in ("any", channel):
            continue
        window = dt.timedelta(days=PERIODS[cap.per])
        n = sum(
            1
            for _, ch, typ, ts in p.messages
            if typ == "sent"
            and (cap.channel == "any" or ch == cap.channel)
            and ts <= conf.as_of
            and ts > send - window
        )
        if n + 1 > cap.max:
            return True
    return False


def reentry_blocked(conf: Conf, p: Person) -> bool:
    if not conf.marketing or conf.reentry == "always":
        return False
    own = [ts for camp, _, typ, ts in p.messages if camp == CAMPAIGN and typ == "sent"]
    own = [ts for ts in own if ts <= conf.as_of]
    if not own:
        return False
    days = REENTRY[conf.reentry]
    return days is None or max(own) > conf.as_of - dt.timedelta(days=days)


@dataclass(frozen=True)
class Expected:
    reason: str | None
    channel: str | None = None
    send_at: dt.datetime | None = None
    deferred: bool = False


def audience(conf: Conf, ps: list[Person]) -> list[Person]:
    return [
        p
        for p in ps
        if (p.first_seen is None or p.first_seen <= conf.as_of)
        and (conf.segment == "everyone" or p.country == "CZ")
    ]


def expected(conf: Conf, p: Person) -> Expected:
    """The user's plan outcome by the documented order of checks."""
    if conf.exclude_vip and p.vip:
        return Expected("excluded_segment")
    statuses = [channel_status(conf, p, ch) for ch in conf.channels]
    ok = [ch for ch, s in zip(conf.channels, statuses, strict=True) if s == "ok"]
    if not ok:
        return Expected(statuses[0])
    channel = ok[0]
    if reentry_blocked(conf, p):
        return Expected("reentry", channel)
    if in_global_control(conf, p.uid):
        return Expected("global_control", channel)
    slot = send_time(conf, p)
    q = conf.quiet if conf.marketing else None
    zone = zone_of(conf, p)
    quiet = q is not None and quiet_contains(q, to_local(slot, zone).time())
    window_end = to_utc(quiet_end(q, to_local(slot, zone)), zone) if q and quiet else None
    # the planned send time of every assigned user (holdout, planned and the suppressions
    # after holdout placement): out of quiet hours, whatever the action
    planned = window_end or slot
    # when the message would actually go: a `drop` sends nothing, so caps count at the slot
    send = window_end if window_end is not None and q is not None and q[2] == "defer" else slot
    if in_holdout(conf, p.uid):
        return Expected("holdout", channel, planned)
    if conf.marketing and cap_hit(conf, p, channel, send):
        return Expected("frequency_cap", channel, planned)
    if q is not None and quiet and q[2] == "drop":
        return Expected("quiet_hours_dropped", channel, planned)
    return Expected(None, channel, send, quiet)


# ---------------------------------------------------------------------------------------------
# Properties


def check_safety(conf: Conf, ps: list[Person], rows: list[dict[str, Any]]) -> None:
    """The promises of a planned row, each checked on the raw data by itself."""
    by_id = {p.uid: p for p in ps}
    for row in rows:
        if row["status"] != "planned":
            continue
        p = by_id[row["user_id"]]
        ch, send = row["channel"], row["send_at"]
        assert ch in conf.channels, row
        assert consented(p, ch, conf.purpose, conf.as_of), ("no consent", row, p)
        if ch == "push":
            assert live_token(p, conf.as_of), ("no live token", row, p)
        elif ch == "email":
            assert p.email_ok, ("no email address", row, p)
        else:
            assert p.phone_ok, ("no phone number", row, p)
        assert not in_holdout(conf, p.uid), ("holdout member planned", row)
        assert not in_global_control(conf, p.uid), ("global control member planned", row)
        assert send is not None, row
        if conf.marketing:
            q = conf.quiet
            if q is not None:
                local = to_local(send, zone_of(conf, p)).time()
                assert not quiet_contains(q, local), ("inside quiet hours", row, q)
            assert not cap_hit(conf, p, ch, send), ("over a cap", row, all_caps(conf), p)
            assert not reentry_blocked(conf, p), ("reentry", row, p)


def check_rows(conf: Conf, ps: list[Person], rows: list[dict[str, Any]]) -> None:
    aud = audience(conf, ps)
    ids = Counter(r["user_id"] for r in rows)
    assert all(n == 1 for n in ids.values()), ids
    assert set(ids) == {p.uid for p in aud}
    check_safety(conf, ps, rows)
    by_id = {r["user_id"]: r for r in rows}
    for p in aud:
        row, exp = by_id[p.uid], expected(conf, p)
        assert row["reason"] == exp.reason, (row, exp, p, conf)
        if exp.reason is None:
            assert row["status"] == "planned"
            assert row["channel"] == exp.channel, (row, exp)
            assert row["send_at"] == exp.send_at, (row, exp, p)
            assert row["deferred"] == exp.deferred, (row, exp)
            assert row["variant"] == variant_of(conf, p.uid), row
        elif exp.reason == "holdout":
            assert row["status"] == "holdout"
            assert row["variant"] is None
            # measured from the planned send time, like the treatment group
            assert row["send_at"] == exp.send_at, (row, exp)
            assert not row["deferred"], row
        elif exp.reason in LATE:
            # assigned, then cut: still in treatment (intent to treat), so the row keeps the
            # variant and the planned send time; never planned, never sent
            assert row["status"] == "suppressed"
            assert row["channel"] == exp.channel, (row, exp)
            assert row["variant"] == variant_of(conf, p.uid), row
            assert row["send_at"] == exp.send_at, (row, exp, p)
            assert row["idempotency_key"] is None and not row["deferred"], row
        else:
            assert exp.reason in REASONS
            assert row["status"] == "suppressed"
            assert row["variant"] is None and row["send_at"] is None, row
        assert row["zone"] == zone_of(conf, p)


PROPS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@PROPS
@given(world=worlds())
def test_plan_rows_follow_the_policy(prop_ws: PropWs, world: tuple[Conf, list[Person]]) -> None:
    conf, ps = world
    check_rows(conf, ps, plan_world(prop_ws, conf, ps))


@PROPS
@given(world=worlds(purposes=("marketing",)))
def test_marketing_plans_respect_caps_quiet_hours_and_control(
    prop_ws: PropWs, world: tuple[Conf, list[Person]]
) -> None:
    """Marketing only, where every marketing-only rule applies."""
    conf, ps = world
    check_rows(conf, ps, plan_world(prop_ws, conf, ps))


@st.composite
def deferred_cap_worlds(draw: st.DrawFn) -> tuple[Conf, list[Person]]:
    """Marketing sends that quiet hours defer, under a tight cap: the cap window ends at the
    deferred send time, so a message sent just before the original slot's window may still
    count or not."""
    conf = draw(confs(("marketing",)))
    conf = replace(
        conf,
        schedule=draw(st.sampled_from((None, ("cron", 22, 30, "user"), ("cron", 0, 0, "user")))),
        reentry="always",
        holdout=0.0,
        gc=0.0,
        ws_quiet=(*draw(st.sampled_from(QUIET)), "defer"),
        camp_quiet=None,
        ws_caps=(Cap(draw(st.sampled_from(("any", *conf.channels))), 1, "12h"),),
        camp_caps=(Cap("any", draw(st.integers(1, 3)), draw(st.sampled_from(("1d", "3d")))),),
    )
    return conf, draw(people(conf))


@settings(PROPS, max_examples=20)
@given(world=deferred_cap_worlds())
def test_caps_count_the_window_before_the_deferred_send_time(
    prop_ws: PropWs, world: tuple[Conf, list[Person]]
) -> None:
    conf, ps = world
    check_rows(conf, ps, plan_world(prop_ws, conf, ps))


@settings(PROPS, max_examples=20)
@given(world=worlds(purposes=("transactional",)))
def test_transactional_plans_ignore_marketing_rules(
    prop_ws: PropWs, world: tuple[Conf, list[Person]]
) -> None:
    """Caps, quiet hours, reentry and global control never suppress a transactional message
    (SPEC §5.4), and its send time is the schedule's (never deferred)."""
    conf, ps = world
    rows = plan_world(prop_ws, conf, ps)
    check_rows(conf, ps, rows)
    by_id = {p.uid: p for p in ps}
    for row in rows:
        assert row["reason"] not in MARKETING_ONLY, row
        if row["status"] == "planned":
            assert row["send_at"] == send_time(conf, by_id[row["user_id"]])
            assert not row["deferred"]


def _reentry_world(purpose: str) -> tuple[Conf, list[Person]]:
    as_of = AS_OFS[0]
    conf = Conf(
        as_of=as_of,
        ws_zone="UTC",
        channels=("email",),
        purpose=purpose,
        segment="everyone",
        exclude_vip=False,
        schedule=None,
        reentry="never",
        holdout=0.0,
        gc=0.0,
        salt=None,
        ws_quiet=None,
        camp_quiet=None,
        ws_caps=(),
        camp_caps=(),
        variants=None,
    )
    p = Person(
        uid="u00",
        country="CZ",
        vip=False,
        first_seen=as_of - dt.timedelta(days=90),
        email="u00@example.com",
        email_ok=True,
        phone=None,
        phone_ok=False,
        zone="Europe/Prague",
        consents=[("email", purpose, True, as_of - dt.timedelta(days=10))],
        messages=[(CAMPAIGN, "email", "sent", as_of - dt.timedelta(days=1))],
    )
    return conf, [p]


def test_marketing_reentry_never_blocks_a_second_send(prop_ws: PropWs) -> None:
    """The control case of the test below: the same world, marketing, is suppressed."""
    conf, ps = _reentry_world("marketing")
    rows = plan_world(prop_ws, conf, ps)
    assert [r["reason"] for r in rows] == ["reentry"]


def test_transactional_campaigns_ignore_reentry(prop_ws: PropWs) -> None:
    """SPEC §5.4: reentry is for marketing only (with the default `reentry: never`, a
    transactional campaign would otherwise reach each user once, ever)."""
    conf, ps = _reentry_world("transactional")
    rows = plan_world(prop_ws, conf, ps)
    assert [(r["status"], r["reason"]) for r in rows] == [("planned", None)]


# ---------------------------------------------------------------------------------------------
# Statistics on a large audience

N_BIG = 30_000
BIG_AS_OF = dt.datetime(2026, 3, 2, 6, 0)
BIG_GC = 0.05
BIG_CAMPAIGNS: dict[str, dict[str, Any]] = {
    "split": {"holdout": 0.1, "variants": {"a": {"weight": 50}, "b": {"weight": 50}}},
    "triple": {
        "holdout": 0.2,
        "variants": {"a": {"weight": 70}, "b": {"weight": 20}, "c": {"weight": 10}},
    },
    "other": {"holdout": 0.3},
}


def _big_campaign(spec: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {
            "segment": "everyone",
            "channels": ["email"],
            "reentry": "always",
            "templates": {"email": {"subject": "t.j2", "text": "t.j2"}},
            **spec,
        },
        sort_keys=False,
    )


def _add_big_users(ws: Workspace, start: int, n: int) -> None:
    with open_db(ws, write=True) as con:
        con.execute(
            "INSERT INTO users (user_id, email, timezone, first_seen) "
            "SELECT 'usr_' || i, 'usr_' || i || '@example.com', 'Europe/Prague', "
            f"TIMESTAMP '2025-01-01' FROM range({start}, {start + n}) t(i)"
        )
        con.execute(
            "INSERT INTO consents (user_id, channel, purpose, granted, ts, source) "
            "SELECT 'usr_' || i, 'email', 'marketing', TRUE, TIMESTAMP '2025-01-02', 'test' "
            f"FROM range({start}, {start + n}) t(i)"
        )


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("plan_big")
    (root / "mcrm.yaml").write_text(
        yaml.safe_dump({"timezone": "UTC", "delivery": {"global_control": BIG_GC}}),
        encoding="utf-8",
    )
    (root / "segments.yaml").write_text(SEGMENTS, encoding="utf-8")
    (root / "campaigns").mkdir()
    (root / "campaigns" / "t.j2").write_text("Hi", encoding="utf-8")
    for name, spec in BIG_CAMPAIGNS.items():
        (root / "campaigns" / f"{name}.yaml").write_text(_big_campaign(spec), encoding="utf-8")
    ws = open_workspace(str(root), {}, root)
    _add_big_users(ws, 0, N_BIG)
    return ws


def big_plan(ws: Workspace, name: str, as_of: dt.datetime = BIG_AS_OF) -> dict[str, Any]:
    """user -> (status, reason, variant) of a fresh plan."""
    out = plan_campaign(ws, name, as_of, render=False)
    with open_db(ws) as con:
        rows = con.execute(
            "SELECT user_id, status, reason, variant FROM plan_rows WHERE plan_id = ?",
            [out.plan_id],
        ).fetchall()
    assert out.audience == len(rows)
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def within_sigma(k: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    """k successes of n are within `sigmas` binomial standard deviations of share p."""
    return abs(k - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


@pytest.fixture(scope="module")
def big_plans(big: Workspace) -> dict[str, dict[str, Any]]:
    return {name: big_plan(big, name) for name in ("split", "triple")}


def test_global_control_share_matches_its_weight(big_plans: dict[str, dict[str, Any]]) -> None:
    rows = big_plans["split"]
    assert len(rows) == N_BIG
    gc = [u for u, (_, reason, _) in rows.items() if reason == "global_control"]
    assert within_sigma(len(gc), N_BIG, BIG_GC), len(gc)
    # the workspace group: the same users in every marketing campaign
    gc2 = [u for u, (_, reason, _) in big_plans["triple"].items() if reason == "global_control"]
    assert set(gc) == set(gc2)


@pytest.mark.parametrize("name", ["split", "triple"])
def test_holdout_and_variant_shares_match_their_weights(
    big_plans: dict[str, dict[str, Any]], name: str
) -> None:
    rows = big_plans[name]
    spec = BIG_CAMPAIGNS[name]
    statuses = Counter(status for status, _, _ in rows.values())
    reasons = Counter(reason for _, reason, _ in rows.values())
    # everyone is reachable: only the control groups keep users from the plan
    assert set(reasons) == {None, "global_control", "holdout"}, reasons
    assert statuses["holdout"] == reasons["holdout"]
    eligible = N_BIG - reasons["global_control"]  # the holdout is drawn after global control
    assert within_sigma(statuses["holdout"], eligible, spec["holdout"]), (statuses, eligible)
    planned = statuses["planned"]
    variants = Counter(v for status, _, v in rows.values() if status == "planned")
    weights = {v: w["weight"] for v, w in spec["variants"].items()}
    assert set(variants) == set(weights), variants
    total = sum(weights.values())
    for v, w in weights.items():
        assert within_sigma(variants[v], planned, w / total), (v, variants, planned)
    assert all(v is None for status, _, v in rows.values() if status != "planned")


def test_holdouts_of_two_campaigns_are_independent(
    big_plans: dict[str, dict[str, Any]],
) -> None:
    """The holdout hashes (campaign, user), not the user alone: overlap ≈ product of shares."""
    split = {u for u, (s, _, _) in big_plans["split"].items() if s == "holdout"}
    triple = {u for u, (s, _, _) in big_plans["triple"].items() if s == "holdout"}
    eligible = sum(1 for _, r, _ in big_plans["split"].values() if r != "global_control")
    p = BIG_CAMPAIGNS["split"]["holdout"] * BIG_CAMPAIGNS["triple"]["holdout"]
    assert within_sigma(len(split & triple), eligible, p), len(split & triple)


def test_assignment_is_stable_across_runs_and_unrelated_changes(
    big: Workspace, big_plans: dict[str, dict[str, Any]]
) -> None:
    first = big_plans["triple"]
    assert big_plan(big, "triple") == first  # the same plan again
    # unrelated changes: more users, events and purchases, another campaign rewritten
    _add_big_users(big, N_BIG, 5_000)
    with open_db(big, write=True) as con:
        con.execute(
            "INSERT INTO events (event_id, user_id, name, ts, platform) "
            "SELECT 'e' || i, 'usr_' || (i * 7 % 30000), 'session_start', "
            "TIMESTAMP '2026-02-01' + i * INTERVAL 1 MINUTE, 'ios' FROM range(20000) t(i)"
        )
        con.execute(
            "INSERT INTO purchases (order_id, user_id, ts, amount, currency, status) "
            "SELECT 'o' || i, 'usr_' || (i * 13 % 30000), "
            "TIMESTAMP '2026-02-01' + i * INTERVAL 1 HOUR, 10 + i % 90, 'EUR', 'paid' "
            "FROM range(5000) t(i)"
        )
    other = BIG_CAMPAIGNS["other"] | {"holdout": 0.5, "variants": {"p": {}, "q": {}}}
    (big.root / "campaigns" / "other.yaml").write_text(_big_campaign(other), encoding="utf-8")
    big_plan(big, "other")
    for as_of in (BIG_AS_OF, BIG_AS_OF + dt.timedelta(days=3, hours=5)):
        again = big_plan(big, "triple", as_of)
        assert len(again) == N_BIG + 5_000
        changed = {u: (first[u], again[u]) for u in first if again[u] != first[u]}
        assert not changed, list(changed.items())[:5]


def test_assignment_does_not_depend_on_the_campaign_file_order(
    big: Workspace, big_plans: dict[str, dict[str, Any]]
) -> None:
    """A campaign added whose file sorts first leaves the others' assignment alone."""
    (big.root / "campaigns" / "aaa_first.yaml").write_text(
        _big_campaign({"holdout": 0.4}), encoding="utf-8"
    )
    try:
        again = big_plan(big, "split")
    finally:
        (big.root / "campaigns" / "aaa_first.yaml").unlink()
    first = big_plans["split"]
    assert {u: again[u] for u in first} == first
