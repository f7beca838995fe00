"""Campaign files (`campaigns/*.yaml`) and the delivery policy (`mcrm.yaml` `delivery:`).

Both are parsed strictly into frozen dataclasses, with every problem collected in `Problems`
(so `mcrm campaigns validate` reports all of them at once, each with `file:line / key`), the
same way `segments.yaml` is. An inline `where:` is parsed by the segments parser itself, so a
campaign audience can use every predicate of segments.yaml, with the same messages.

Decisions where SPEC §5 is silent (also in docs/campaigns.md):
- `name` defaults to the file stem and, when given, must equal it: the name is the campaign's
  identity in the outbox and idempotency keys, and a renamed file must not look like a new
  campaign by accident.
- `reentry` defaults to `never` (Braze's default: a user gets a campaign once).
- Without `variants:` there is one variant, `default`, with weight 100.
- A campaign's `delivery:` may only tighten the workspace policy: its caps are added to the
  workspace caps, and its `quiet_hours` replace the workspace window.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from mcrm.errors import did_you_mean
from mcrm.segments.model import CHANNELS, Node, SegmentsFile, duration_days
from mcrm.yamlio import Path_, Problems, YamlDoc, expect_str, load_yaml

CAMPAIGN_KEYS = {
    "name",
    "description",
    "segment",
    "where",
    "exclude",
    "channels",
    "purpose",
    "schedule",
    "trigger",
    "reentry",
    "variants",
    "holdout",
    "goal",
    "coupon",
    "templates",
    "delivery",
    "recommendations",
}
PARTS: dict[str, tuple[str, ...]] = {
    "push": ("title", "body", "deeplink"),
    "email": ("subject", "html", "text"),
    "sms": ("body",),
    "inapp": ("body",),
}
REQUIRED_PARTS: dict[str, tuple[str, ...]] = {
    "push": ("body",),
    "email": ("subject", "text"),
    "sms": ("body",),
    "inapp": ("body",),
}
INLINE_PARTS = frozenset({"deeplink"})
PURPOSES = ("marketing", "transactional")
QUIET_ACTIONS = ("defer", "drop")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
HHMM_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")
PERCENT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
CAP_CHANNELS = (*CHANNELS, "any")
DELIVERY_KEYS = {
    "quiet_hours",
    "frequency_caps",
    "global_control",
    "global_control_salt",
    "rate_limits",
    "sms_price_per_segment",
    "unsubscribe",
}


@dataclass(frozen=True)
class QuietHours:
    start: dt.time
    end: dt.time
    action: str = "defer"

    def contains(self, t: dt.time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


@dataclass(frozen=True)
class Cap:
    channel: str  # push | email | sms | inapp | any
    max: int
    per_days: float
    per: str  # as written, e.g. "1d"


@dataclass(frozen=True)
class Unsubscribe:
    url: str = "https://example.com/unsubscribe/{token}"
    mailto: str | None = None
    secret: str = "mcrm-unsubscribe-dev-secret"


@dataclass(frozen=True)
class Delivery:
    quiet_hours: QuietHours | None = None
    caps: tuple[Cap, ...] = ()
    global_control: float = 0.0  # share, 0..1
    global_control_salt: str = "global-control"
    rate_limits: dict[str, float] = field(default_factory=dict)  # channel -> messages/s
    sms_price: Decimal | None = None
    unsubscribe: Unsubscribe = field(default_factory=Unsubscribe)


@dataclass(frozen=True)
class Schedule:
    cron: str | None = None
    at: dt.datetime | None = None  # naive: local to `timezone` (or to each user's zone)
    timezone: str = "workspace"  # "user", "workspace" or an IANA zone
    send_at_habit: bool = False


@dataclass(frozen=True)
class Trigger:
    event: str
    delay_days: float
    delay: str
    unless: str | None = None


@dataclass(frozen=True)
class Variant:
    name: str
    weight: float
    templates: dict[str, dict[str, str]]  # channel -> part -> template path (or inline)


@dataclass(frozen=True)
class Goal:
    event: str
    within_days: float
    within: str


@dataclass(frozen=True)
class Coupon:
    prefix: str
    pool: str | None = None


@dataclass(frozen=True)
class Campaign:
    name: str
    file: str
    description: str | None
    segment: str | None
    where: Node | None
    exclude: tuple[str, ...]
    channels: tuple[str, ...]
    purpose: str
    schedule: Schedule | None
    trigger: Trigger | None
    reentry: str  # never | always | duration text
    reentry_days: float | None
    variants: tuple[Variant, ...]
    holdout: float  # share 0..1
    goal: Goal | None
    coupon: Coupon | None
    delivery: Delivery
    recommendations: int = 3

    @property
    def marketing(self) -> bool:
        return self.purpose == "marketing"

    def template_paths(self) -> list[str]:
        """Every template file the campaign uses (not inline parts), in a stable order."""
        out: list[str] = []
        for v in self.variants:
            for ch in self.channels:
                for part, path in v.templates.get(ch, {}).items():
                    if part not in INLINE_PARTS and path not in out:
                        out.append(path)
        return out


def share(value: Any) -> float | None:
    """`10%`, `"5 %"`, 0.1 -> 0.1; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if 0 <= value <= 1 else None
    if isinstance(value, str):
        m = PERCENT_RE.match(value)
        if m:
            v = float(m.group(1)) / 100
            return v if 0 <= v <= 1 else None
    return None


class _P:
    def __init__(self, doc: YamlDoc, probs: Problems) -> None:
        self.doc = doc
        self.p = probs

    def err(self, path: Path_, msg: str, hint: str | None = None) -> None:
        self.p.error(msg, where=self.doc.where(path), hint=hint)

    def mapping(self, path: Path_, value: Any, allowed: set[str], what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.err(path, f"{what} must be a mapping, found {value!r}")
            return {}
        self.p.unknown_keys(self.doc, path, value, allowed)
        return value

    def duration(self, path: Path_, value: Any) -> float | None:
        d = duration_days(value)
        if d is None:
            hint = f"write it with a unit: '{value}d'" if isinstance(value, int) else "e.g. 7d"
            self.err(path, f"expected a duration like 30d, found {value!r}", hint)
        return d

    def string(self, path: Path_, value: Any, what: str = "a string") -> str | None:
        return expect_str(self.doc, path, value, self.p, what)


# -- delivery policy ------------------------------------------------------------------------


def parse_delivery(
    doc: YamlDoc, path: Path_, raw: Any, probs: Problems, base: Delivery | None = None
) -> Delivery:
    """The `delivery:` mapping of mcrm.yaml (base None) or a campaign's tightening of `base`."""
    ps = _P(doc, probs)
    if raw is None:
        return base or Delivery()
    data = ps.mapping(
        path, raw, DELIVERY_KEYS if base is None else {"quiet_hours", "frequency_caps"}, "delivery"
    )
    out = base or Delivery()
    kw: dict[str, Any] = {}
    if "quiet_hours" in data:
        kw["quiet_hours"] = _quiet(ps, (*path, "quiet_hours"), data["quiet_hours"])
    if "frequency_caps" in data:
        caps = _caps(ps, (*path, "frequency_caps"), data["frequency_caps"])
        kw["caps"] = (*out.caps, *caps) if base is not None else tuple(caps)
    if "global_control" in data:
        v = share(data["global_control"])
        if v is None:
            ps.err(
                (*path, "global_control"),
                f"expected a percentage like 5%, found {data['global_control']!r}",
            )
        else:
            kw["global_control"] = v
    if "global_control_salt" in data:
        s = ps.string((*path, "global_control_salt"), data["global_control_salt"])
        if s:
            kw["global_control_salt"] = s
    if "rate_limits" in data:
        rl = ps.mapping((*path, "rate_limits"), data["rate_limits"], set(CHANNELS), "rate_limits")
        rates: dict[str, float] = {}
        for ch, v in rl.items():
            m = RATE_RE.match(str(v)) if isinstance(v, str) else None
            if m is None:
                ps.err((*path, "rate_limits", ch), f"expected a rate like 500/s, found {v!r}")
                continue
            rates[ch] = float(m.group(1)) / {"s": 1, "m": 60, "h": 3600}[m.group(2)]
        kw["rate_limits"] = rates
    if "sms_price_per_segment" in data:
        v = data["sms_price_per_segment"]
        try:
            if isinstance(v, bool) or not isinstance(v, str | int | float):
                raise InvalidOperation
            price = Decimal(str(v))
            if price < 0:
                raise InvalidOperation
            kw["sms_price"] = price
        except InvalidOperation:
            ps.err((*path, "sms_price_per_segment"), f'expected a price like "0.075", found {v!r}')
    if "unsubscribe" in data:
        u = ps.mapping(
            (*path, "unsubscribe"), data["unsubscribe"], {"url", "mailto", "secret"}, "unsubscribe"
        )
        ukw: dict[str, Any] = {}
        for k in ("url", "mailto", "secret"):
            if k in u:
                s = ps.string((*path, "unsubscribe", k), u[k])
                if s is not None:
                    ukw[k] = s
        url = ukw.get("url")
        if url is not None and (not url.startswith("https://") or "{token}" not in url):
            ps.err(
                (*path, "unsubscribe", "url"),
                f"unsubscribe url must be https:// and contain {{token}}, found '{url}'",
                "RFC 8058 needs an https URI",
            )
        kw["unsubscribe"] = Unsubscribe(**ukw)
    return Delivery(**{**out.__dict__, **kw})


def _time(ps: _P, path: Path_, value: Any) -> dt.time | None:
    if isinstance(value, int) and not isinstance(value, bool):
        raw = ps.doc.raw_text(path) or str(value)
        ps.err(
            path,
            f'expected a time like "21:00", found {raw} (YAML read it as {value})',
            f'quote it: "{raw}"',
        )
        return None
    s = ps.string(path, value, 'a time like "21:00"')
    if s is None:
        return None
    m = HHMM_RE.match(s.strip())
    if not m:
        ps.err(path, f"expected a time like \"21:00\", found '{s}'")
        return None
    return dt.time(int(m.group(1)), int(m.group(2)))


def _quiet(ps: _P, path: Path_, raw: Any) -> QuietHours | None:
    if raw is None or raw is False:
        return None
    data = ps.mapping(path, raw, {"start", "end", "action"}, "quiet_hours")
    for k in ("start", "end"):
        if k not in data:
            ps.err(path, f"quiet_hours needs {k}")
    start = _time(ps, (*path, "start"), data["start"]) if "start" in data else None
    end = _time(ps, (*path, "end"), data["end"]) if "end" in data else None
    action = data.get("action", "defer")
    if action not in QUIET_ACTIONS:
        ps.err((*path, "action"), f"unknown quiet_hours action {action!r}", "defer or drop")
        return None
    if start is None or end is None:
        return None
    if start == end:
        ps.err(path, "quiet_hours start and end are equal")
        return None
    return QuietHours(start, end, str(action))


def _caps(ps: _P, path: Path_, raw: Any) -> list[Cap]:
    if not isinstance(raw, list):
        ps.err(path, "frequency_caps must be a list like [{channel: push, max: 2, per: 1d}]")
        return []
    out = []
    for i, c in enumerate(raw):
        p = (*path, i)
        data = ps.mapping(p, c, {"channel", "max", "per"}, "a frequency cap")
        if not data:
            continue
        ch = data.get("channel", "any")
        if ch not in CAP_CHANNELS:
            ps.err(
                (*p, "channel"),
                f"unknown channel {ch!r}",
                did_you_mean(str(ch), CAP_CHANNELS) or ", ".join(CAP_CHANNELS),
            )
            continue
        mx = data.get("max")
        if isinstance(mx, bool) or not isinstance(mx, int) or mx < 0:
            ps.err((*p, "max"), f"max must be a whole number ≥ 0, found {mx!r}")
            continue
        if "per" not in data:
            ps.err(p, "a frequency cap needs per: (e.g. 7d)")
            continue
        per = ps.duration((*p, "per"), data["per"])
        if per is None:
            continue
        out.append(Cap(str(ch), mx, per, str(data["per"])))
    return out


def load_delivery(settings_delivery: dict[str, Any], root: Path, probs: Problems) -> Delivery:
    """The workspace delivery policy, with line numbers from mcrm.yaml."""
    doc = load_yaml(root / "mcrm.yaml", "mcrm.yaml")
    raw = settings_delivery if settings_delivery else None
    return parse_delivery(doc, ("delivery",), raw, probs)


# -- campaigns ------------------------------------------------------------------------------


def parse_campaign(
    doc: YamlDoc, stem: str, seg: SegmentsFile, base: Delivery, probs: Problems
) -> Campaign | None:
    from mcrm.segments.model import Parser

    ps = _P(doc, probs)
    data = doc.data
    if not isinstance(data, dict):
        ps.err((), "a campaign file must be a mapping (name, segment, channels, templates, ...)")
        return None
    probs.unknown_keys(doc, (), data, CAMPAIGN_KEYS)
    name = data.get("name", stem)
    if name != stem:
        ps.err(
            ("name",),
            f"campaign name '{name}' differs from its file name '{stem}.yaml'",
            "rename one so they match: the name is the campaign's identity",
        )
    if not NAME_RE.match(str(stem)):
        ps.err((), f"campaign file name '{stem}' must be lower_snake_case (a-z, 0-9, _)")
    desc = data.get("description")
    if desc is not None and not isinstance(desc, str):
        ps.err(("description",), "description must be text")
        desc = None

    segment = None
    where = None
    trigger = _trigger(ps, data.get("trigger")) if "trigger" in data else None
    if "segment" in data and "where" in data:
        ps.err(("where",), "give either segment: or where:, not both")
    elif "segment" in data:
        segment = ps.string(("segment",), data["segment"], "a segment name")
        if segment is not None and segment not in seg.segments:
            ps.err(
                ("segment",),
                f"unknown segment '{segment}'",
                did_you_mean(segment, list(seg.segments))
                or "segments are defined in segments.yaml",
            )
    elif "where" in data:
        sp = Parser(doc, probs)
        sp.places = seg.places
        sp.segment_names = set(seg.segments)
        sp.tier_names = {n for n, _ in seg.tiers.levels} if seg.tiers else set()
        where = sp.node(("where",), data["where"])
    elif trigger is None:
        ps.err((), "a campaign needs an audience: segment: NAME or where: {...}")

    exclude: list[str] = []
    raw_ex = data.get("exclude", [])
    if isinstance(raw_ex, str):
        raw_ex = [raw_ex]
    if not isinstance(raw_ex, list):
        ps.err(("exclude",), "exclude must be a list of segment names")
        raw_ex = []
    for i, e in enumerate(raw_ex):
        s = ps.string(("exclude", i), e, "a segment name")
        if s is None:
            continue
        if s not in seg.segments:
            ps.err(("exclude", i), f"unknown segment '{s}'", did_you_mean(s, list(seg.segments)))
        exclude.append(s)

    channels: list[str] = []
    raw_ch = data.get("channels")
    if isinstance(raw_ch, str):
        raw_ch = [raw_ch]
    if not isinstance(raw_ch, list) or not raw_ch:
        ps.err(
            ("channels",),
            "channels must be a non-empty list, e.g. [push, email]",
            "the first channel a user is reachable on is used",
        )
        raw_ch = []
    for i, ch in enumerate(raw_ch):
        if ch not in CHANNELS:
            ps.err(
                ("channels", i),
                f"unknown channel {ch!r}",
                did_you_mean(str(ch), CHANNELS) or ", ".join(CHANNELS),
            )
        elif ch in channels:
            ps.err(("channels", i), f"channel '{ch}' is listed twice")
        else:
            channels.append(ch)

    purpose = data.get("purpose", "marketing")
    if purpose not in PURPOSES:
        ps.err(
            ("purpose",),
            f"unknown purpose {purpose!r}",
            did_you_mean(str(purpose), PURPOSES) or "marketing or transactional",
        )
        purpose = "marketing"

    schedule = _schedule(ps, data["schedule"]) if "schedule" in data else None
    if schedule is not None and trigger is not None:
        ps.err(("trigger",), "give either schedule: or trigger:, not both")

    reentry = data.get("reentry", "never")
    reentry_days: float | None = None
    if reentry not in ("never", "always"):
        reentry_days = ps.duration(("reentry",), reentry)
        if reentry_days is None:
            probs.errors[-1].hint = "never, always, or a duration like 30d"
    holdout = 0.0
    if "holdout" in data:
        h = share(data["holdout"])
        if h is None or h >= 1:
            ps.err(
                ("holdout",),
                f"holdout must be a percentage below 100%, like 10%, found {data['holdout']!r}",
            )
        else:
            holdout = h

    templates = _templates(ps, ("templates",), data.get("templates", {}), channels)
    variants = _variants(ps, data.get("variants"), templates, channels)
    for v in variants:
        for ch in channels:
            have = v.templates.get(ch, {})
            for part in REQUIRED_PARTS[ch]:
                if part not in have:
                    where_ = (
                        ("variants", v.name, "templates")
                        if v.name != "default"
                        else ("templates",)
                    )
                    hint = "email needs a text part (and usually html)" if part == "text" else None
                    ps.err(
                        where_,
                        f"channel {ch} needs templates.{ch}.{part}"
                        + (f" (variant {v.name})" if v.name != "default" else ""),
                        hint,
                    )
    goal = None
    if "goal" in data:
        g = ps.mapping(("goal",), data["goal"], {"event", "within"}, "goal")
        ev = (
            ps.string(("goal", "event"), g.get("event"), "an event name") if "event" in g else None
        )
        if ev is None and g:
            ps.err(("goal",), "goal needs event:")
        within = ps.duration(("goal", "within"), g.get("within", "7d"))
        if ev is not None and within is not None:
            goal = Goal(ev, within, str(g.get("within", "7d")))
    coupon = None
    if "coupon" in data:
        c = ps.mapping(("coupon",), data["coupon"], {"prefix", "pool"}, "coupon")
        prefix = (
            ps.string(("coupon", "prefix"), c.get("prefix"), "a code prefix")
            if "prefix" in c
            else None
        )
        if prefix is None and c:
            ps.err(("coupon",), "coupon needs prefix:")
        elif prefix is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,20}", prefix):
            ps.err(
                ("coupon", "prefix"),
                f"coupon prefix must be 1-20 letters, digits, - or _, found '{prefix}'",
            )
        pool = ps.string(("coupon", "pool"), c["pool"], "a file path") if "pool" in c else None
        if prefix is not None:
            coupon = Coupon(prefix, pool)
    recs = data.get("recommendations", 3)
    if isinstance(recs, bool) or not isinstance(recs, int) or not 0 <= recs <= 20:
        ps.err(
            ("recommendations",),
            f"recommendations must be a number of products 0-20, found {recs!r}",
        )
        recs = 3
    delivery = parse_delivery(doc, ("delivery",), data.get("delivery"), probs, base)
    if not channels or (segment is None and where is None and trigger is None):
        return None
    return Campaign(
        name=str(stem),
        file=doc.file,
        description=desc,
        segment=segment,
        where=where,
        exclude=tuple(exclude),
        channels=tuple(channels),
        purpose=str(purpose),
        schedule=schedule,
        trigger=trigger,
        reentry=str(reentry),
        reentry_days=reentry_days,
        variants=tuple(variants),
        holdout=holdout,
        goal=goal,
        coupon=coupon,
        delivery=delivery,
        recommendations=recs,
    )


def _schedule(ps: _P, raw: Any) -> Schedule | None:
    if raw is None:
        return None
    data = ps.mapping(("schedule",), raw, {"cron", "at", "timezone", "send_at"}, "schedule")
    if not data:
        return None
    cron = at = None
    if "cron" in data and "at" in data:
        ps.err(("schedule",), "give either cron: or at:, not both")
    if "cron" in data:
        cron = ps.string(("schedule", "cron"), data["cron"], "a cron expression")
        if cron is not None:
            from croniter import croniter

            if not croniter.is_valid(cron) or len(cron.split()) != 5:
                ps.err(
                    ("schedule", "cron"),
                    f"invalid cron expression '{cron}'",
                    'five fields: minute hour day month weekday, e.g. "0 10 * * MON"',
                )
                cron = None
    if "at" in data:
        v = data["at"]
        if isinstance(v, dt.datetime):
            at = v
        elif isinstance(v, str):
            try:
                at = dt.datetime.fromisoformat(v)
            except ValueError:
                ps.err(
                    ("schedule", "at"),
                    f"expected a date and time like 2026-12-01T10:00, found '{v}'",
                )
        else:
            ps.err(
                ("schedule", "at"),
                f"expected a date and time like 2026-12-01T10:00, found {v!r}",
                "a date alone is not enough: add the time",
            )
        if at is not None and at.tzinfo is not None:
            at = at.astimezone(dt.UTC).replace(tzinfo=None)
            tz_given = "timezone" in data
            if tz_given:
                ps.err(("schedule", "at"), "at: has an offset and timezone: is given; keep one")
    tz = "workspace"
    if "timezone" in data:
        z = ps.string(("schedule", "timezone"), data["timezone"], "user or an IANA zone")
        if z is not None and z != "user":
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(z)
            except (ZoneInfoNotFoundError, ValueError):
                ps.err(
                    ("schedule", "timezone"),
                    f"unknown time zone '{z}'",
                    "user, or an IANA zone like Europe/Prague",
                )
                z = None
        if z is not None:
            tz = z
    habit = False
    if "send_at" in data:
        if data["send_at"] != "habit":
            ps.err(("schedule", "send_at"), f"send_at must be habit, found {data['send_at']!r}")
        else:
            habit = True
    if cron is None and at is None and ("cron" in data or "at" in data):
        return None
    if cron is None and at is None:
        ps.err(
            ("schedule",), "a schedule needs cron: or at: (leave schedule out for manual sends)"
        )
        return None
    return Schedule(cron, at, tz, habit)


def _trigger(ps: _P, raw: Any) -> Trigger | None:
    data = ps.mapping(("trigger",), raw, {"event", "delay", "unless"}, "trigger")
    if not data:
        return None
    ev = (
        ps.string(("trigger", "event"), data.get("event"), "an event name")
        if "event" in data
        else None
    )
    if ev is None:
        ps.err(("trigger",), "trigger needs event:")
        return None
    delay_raw = data.get("delay", "0h")
    delay = duration_days(delay_raw) if delay_raw not in (0, "0") else 0.0
    if delay is None:
        ps.duration(("trigger", "delay"), delay_raw)
        return None
    unless = (
        ps.string(("trigger", "unless"), data["unless"], "an event name")
        if "unless" in data
        else None
    )
    return Trigger(ev, delay, str(delay_raw), unless)


def _templates(ps: _P, path: Path_, raw: Any, channels: list[str]) -> dict[str, dict[str, str]]:
    if raw is None or raw == {}:
        return {}
    data = ps.mapping(path, raw, set(CHANNELS), "templates")
    out: dict[str, dict[str, str]] = {}
    for ch, parts in data.items():
        if ch not in CHANNELS:
            continue
        pd = ps.mapping((*path, ch), parts, set(PARTS[ch]), f"templates.{ch}")
        got: dict[str, str] = {}
        for part, value in pd.items():
            if part not in PARTS[ch]:
                continue
            s = ps.string((*path, ch, part), value, "a template path")
            if s is None:
                continue
            if part not in INLINE_PARTS and (s.startswith("/") or ".." in Path(s).parts):
                ps.err((*path, ch, part), f"template path '{s}' must stay inside campaigns/")
                continue
            got[part] = s
        out[ch] = got
    return out


def _variants(
    ps: _P, raw: Any, base: dict[str, dict[str, str]], channels: list[str]
) -> list[Variant]:
    if raw is None:
        return [Variant("default", 100.0, base)]
    data = ps.mapping(("variants",), raw, set(raw) if isinstance(raw, dict) else set(), "variants")
    out: list[Variant] = []
    for name, spec in data.items():
        p: Path_ = ("variants", name)
        if not NAME_RE.match(str(name)):
            ps.err(p, f"variant name '{name}' must be lower_snake_case")
            continue
        vd = ps.mapping(
            p, spec if spec is not None else {}, {"weight", "templates"}, f"variant {name}"
        )
        w = vd.get("weight", 1)
        if isinstance(w, bool) or not isinstance(w, int | float) or w <= 0:
            ps.err((*p, "weight"), f"weight must be a positive number, found {w!r}")
            continue
        own = _templates(ps, (*p, "templates"), vd.get("templates"), channels)
        merged = {ch: {**base.get(ch, {}), **own.get(ch, {})} for ch in set(base) | set(own)}
        out.append(Variant(str(name), float(w), merged))
    if not out and not ps.p.errors:
        ps.err(("variants",), "variants is empty; leave it out for a single variant")
    return out


def load_campaign_file(
    path: Path, display: str, seg: SegmentsFile, base: Delivery, probs: Problems
) -> Campaign | None:
    from mcrm.errors import ConfigError

    try:
        doc = load_yaml(path, display)
    except ConfigError as e:
        probs.errors.append(e)
        return None
    if doc.data is None:
        probs.error("empty campaign file", where=doc.where(()))
        return None
    return parse_campaign(doc, path.stem, seg, base, probs)
