"""`mcrm campaigns test`: golden previews of every campaign for the fixture users.

`campaigns/tests/users.yaml` describes fixture users as template contexts, not database rows,
so the check needs no data and runs in CI on a fresh clone:

```yaml
as_of: "2026-11-16T09:00:00Z"      # `now` (in each user's zone) and the unsubscribe token time
users:
  jana_cs:                          # the user id
    user: {first_name: Jana, locale: cs-CZ, timezone: Europe/Prague, first_seen: 2025-01-10}
    stats: {orders: 4, spend: "412.50", last_purchase: "2026-10-30T12:00:00Z"}
    tier: {name: vip, spend: "1250.00"}
    recommendations: [{sku: KIT-1, name: Enamel Coffee Pot, price: "34.90", currency: EUR}]
```

Sections: `user` (any `users` column, and `attributes`), `stats`, `tier`, `rfm`, `lifecycle`,
`recommendations`; what is left out is empty, as for a real user without that data (a user
without `first_name` checks the templates' fallbacks). Coupon codes are derived, and the
unsubscribe token signed, with the fixed secret `TEST_SECRET` rather than the workspace's, so
the goldens do not depend on the environment.

Every campaign (or the ones named) is rendered for every fixture user on each of its channels
and variants; the text (the `preview` layout) is compared with
`campaigns/tests/expected/<campaign>.txt`. `--update` rewrites the files that differ.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from mcrm.errors import ConfigError, McrmError, Where
from mcrm.yamlio import Problems, YamlDoc, load_yaml

if TYPE_CHECKING:
    from mcrm.campaigns.model import Campaign, Delivery
    from mcrm.config import Workspace

TESTS_DIR = "campaigns/tests"
FIXTURES = f"{TESTS_DIR}/users.yaml"
EXPECTED = f"{TESTS_DIR}/expected"
TEST_SECRET = b"mcrm-campaigns-test-secret"
USER_COLUMNS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "gender",
    "birth_date",
    "locale",
    "country",
    "region",
    "city",
    "home_lat",
    "home_lon",
    "timezone",
    "os",
    "os_version",
    "device_model",
    "app_version",
    "acq_source",
    "acq_medium",
    "acq_campaign",
    "install_time",
    "first_seen",
    "last_seen",
    "created_at",
    "updated_at",
    "attributes",
)
TIMESTAMPS = {"install_time", "first_seen", "last_seen", "created_at", "updated_at"}
SECTIONS = {
    "user": set(USER_COLUMNS),
    "stats": {"orders", "spend", "last_purchase", "favourite_category"},
    "tier": {"name", "spend"},
    "rfm": {"recency_days", "frequency", "monetary", "r", "f", "m", "cell", "segment"},
    "lifecycle": {"stage", "first_day", "last_day", "days_since_last"},
    "recommendations": set(),
}
PRODUCT_KEYS = {"sku", "name", "category", "price", "currency"}


@dataclass(frozen=True)
class Fixture:
    user_id: str
    zone: ZoneInfo
    context: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    campaign: str
    file: str  # the expected file, relative to the workspace
    status: str  # ok | changed | new | updated
    diff: str = ""


def _instant(doc: YamlDoc, path: tuple[Any, ...], value: Any, probs: Problems) -> Any:
    from mcrm.timeutil import parse_instant

    if value is None:
        return None
    if isinstance(value, dt.datetime):  # YAML read an unquoted timestamp
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    try:
        return parse_instant(str(value), "UTC")
    except McrmError:
        probs.error(f"not a timestamp: {value!r}", where=doc.where(path))
        return None


def _count(doc: YamlDoc, path: tuple[Any, ...], value: Any, probs: Problems) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        probs.error(f"expected a whole number of orders, found {value!r}", where=doc.where(path))
        return 0
    return value


def _money(doc: YamlDoc, path: tuple[Any, ...], value: Any, probs: Problems) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        probs.error(f"expected an amount, found {value!r}", where=doc.where(path))
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        probs.error(f'expected an amount like "12.50", found {value!r}', where=doc.where(path))
        return None


def load_fixtures(root: Path, probs: Problems) -> tuple[dt.datetime, list[Fixture]]:
    """The as-of instant (naive UTC) and the fixture users of campaigns/tests/users.yaml."""
    path = root / FIXTURES
    if not path.is_file():
        raise ConfigError(
            f"no fixture users: {FIXTURES} is missing",
            hint="see docs/campaigns.md, 'Golden previews'",
        )
    doc = load_yaml(path, FIXTURES)
    data = doc.data
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with as_of: and users:", where=doc.where(()))
    probs.unknown_keys(doc, (), data, {"as_of", "users"})
    as_of = _instant(doc, ("as_of",), data.get("as_of"), probs) or dt.datetime(2026, 1, 1)
    users = data.get("users")
    if not isinstance(users, dict) or not users:
        probs.error("users: must map user ids to their context", where=doc.where(("users",)))
        return as_of, []
    out = []
    for uid, spec in users.items():
        p: tuple[Any, ...] = ("users", uid)
        if not isinstance(spec, dict):
            probs.error("a fixture user is a mapping of sections", where=doc.where(p))
            continue
        probs.unknown_keys(doc, p, spec, set(SECTIONS))
        fx = _fixture(doc, str(uid), spec, probs)
        if fx is not None:
            out.append(fx)
    return as_of, out


def _section(
    doc: YamlDoc, p: tuple[Any, ...], raw: Any, keys: set[str], probs: Problems
) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        probs.error("expected a mapping", where=doc.where(p))
        return {}
    probs.unknown_keys(doc, p, raw, keys)
    return {k: v for k, v in raw.items() if k in keys}


def _fixture(doc: YamlDoc, uid: str, spec: dict[str, Any], probs: Problems) -> Fixture | None:
    from mcrm.campaigns.context import LIFECYCLE_KEYS, RFM_KEYS

    base: tuple[Any, ...] = ("users", uid)
    u = _section(doc, (*base, "user"), spec.get("user"), SECTIONS["user"], probs)
    zone_name = str(u.get("timezone") or "UTC")
    try:
        zone = ZoneInfo(zone_name)
    except Exception:
        probs.error(f"unknown time zone '{zone_name}'", where=doc.where((*base, "user")))
        return None
    user: dict[str, Any] = {"user_id": uid}
    for col in USER_COLUMNS:
        v = u.get(col)
        if col in TIMESTAMPS:
            t = _instant(doc, (*base, "user", col), v, probs)
            v = t.replace(tzinfo=dt.UTC).astimezone(zone) if t is not None else None
        elif col == "attributes":
            if v is not None and not isinstance(v, dict):
                probs.error("attributes must be a mapping", where=doc.where((*base, "user", col)))
            v = dict(v or {})
        elif col == "birth_date" and isinstance(v, str):
            try:
                v = dt.date.fromisoformat(v)
            except ValueError:
                probs.error(f"not a date: {v!r}", where=doc.where((*base, "user", col)))
        user[col] = v
    s = _section(doc, (*base, "stats"), spec.get("stats"), SECTIONS["stats"], probs)
    last = _instant(doc, (*base, "stats", "last_purchase"), s.get("last_purchase"), probs)
    stats = {
        "orders": _count(doc, (*base, "stats", "orders"), s.get("orders"), probs),
        "spend": _money(doc, (*base, "stats", "spend"), s.get("spend", 0), probs),
        "last_purchase": last.replace(tzinfo=dt.UTC).astimezone(zone) if last else None,
        "favourite_category": s.get("favourite_category"),
    }
    t = _section(doc, (*base, "tier"), spec.get("tier"), SECTIONS["tier"], probs)
    tier = {
        "name": t.get("name"),
        "spend": _money(doc, (*base, "tier", "spend"), t.get("spend", 0), probs),
    }
    r = _section(doc, (*base, "rfm"), spec.get("rfm"), SECTIONS["rfm"], probs)
    lc = _section(doc, (*base, "lifecycle"), spec.get("lifecycle"), SECTIONS["lifecycle"], probs)
    recs_raw = spec.get("recommendations") or []
    recs = []
    if not isinstance(recs_raw, list):
        probs.error("recommendations must be a list", where=doc.where((*base, "recommendations")))
        recs_raw = []
    for i, item in enumerate(recs_raw):
        ip = (*base, "recommendations", i)
        got = _section(doc, ip, item, PRODUCT_KEYS, probs)
        if "sku" not in got:
            probs.error("a recommended product needs a sku", where=doc.where(ip))
            continue
        recs.append(
            {
                "sku": str(got["sku"]),
                "name": got.get("name"),
                "category": got.get("category"),
                "price": _money(doc, (*ip, "price"), got.get("price"), probs),
                "currency": got.get("currency"),
            }
        )
    ctx = {
        "user": user,
        "stats": stats,
        "tier": tier,
        "rfm": {k: r.get(k) for k in RFM_KEYS},
        "lifecycle": {k: lc.get(k) for k in LIFECYCLE_KEYS},
        "recommendations": recs,
    }
    return Fixture(uid, zone, ctx)


def render_campaign(
    ws: Workspace,
    c: Campaign,
    delivery: Delivery,
    fixtures: list[Fixture],
    as_of: dt.datetime,
    renderer: Any,
    probs: Problems,
) -> str:
    """The golden text of one campaign: every fixture user x channel x variant."""
    from mcrm.campaigns import i18n
    from mcrm.campaigns.context import campaign_info
    from mcrm.campaigns.coupons import derived_code
    from mcrm.campaigns.preview import Preview, as_text
    from mcrm.campaigns.render import (
        TemplateError,
        TemplateSkip,
        email_headers,
        unsubscribe_token,
        unsubscribe_url,
    )

    previews = []
    issued = as_of.replace(tzinfo=dt.UTC)
    for fx in fixtures:
        locale = i18n.normalize_tag(fx.context["user"].get("locale")) or renderer.default_locale
        url = unsubscribe_url(
            delivery.unsubscribe.url, unsubscribe_token(TEST_SECRET, fx.user_id, c.name, issued)
        )
        for ch in c.channels:
            for v in c.variants:
                ctx = {
                    **fx.context,
                    "campaign": campaign_info(c),
                    "variant": v.name,
                    "locale": locale,
                    "currency": ws.settings.base_currency,
                    "unsubscribe_url": url,
                    "now": issued.astimezone(fx.zone),
                }
                if c.coupon is not None:
                    code = derived_code(c.coupon.prefix, c.name, fx.user_id, TEST_SECRET)
                    ctx["coupon"] = {"code": code, "prefix": c.coupon.prefix}
                p = Preview(
                    fx.user_id,
                    "fixture",
                    None,
                    f"fixture {fx.user_id}",
                    ch,
                    v.name,
                    locale,
                    None,
                    None,
                )
                try:
                    p.message = renderer.render_message(ch, v.templates.get(ch, {}), ctx, locale)
                except TemplateSkip as e:
                    p.skip = e.reason
                except TemplateError as e:
                    e.message = f"{e.message} (fixture user {fx.user_id}, {ch}, variant {v.name})"
                    probs.errors.append(e)
                    continue
                if p.message is not None and ch == "email" and c.marketing:
                    p.headers = email_headers(
                        unsubscribe_url=url, mailto=delivery.unsubscribe.mailto
                    )
                previews.append(p)
    return as_text(previews, delivery.sms_price) if previews else ""


def run(ws: Workspace, names: list[str] | None, update: bool) -> tuple[list[Outcome], Problems]:
    from mcrm.campaigns.engine import CAMPAIGNS_DIR, load_all
    from mcrm.campaigns.render import Renderer

    probs = Problems()
    loaded = load_all(ws, probs, names)
    as_of, fixtures = load_fixtures(ws.root, probs)
    if probs.errors:
        return [], probs
    renderer = Renderer(ws.root / CAMPAIGNS_DIR)
    out = []
    for c in loaded.campaigns.values():
        before = len(probs.errors)
        text = render_campaign(ws, c, loaded.delivery, fixtures, as_of, renderer, probs)
        if len(probs.errors) > before:
            continue
        rel = f"{EXPECTED}/{c.name}.txt"
        path = ws.root / rel
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        if old == text:
            out.append(Outcome(c.name, rel, "ok"))
            continue
        diff = "".join(
            difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"{rel} (expected)",
                f"{rel} (rendered now)",
            )
        )
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
            out.append(Outcome(c.name, rel, "updated", diff))
        else:
            out.append(Outcome(c.name, rel, "new" if old is None else "changed", diff))
            probs.error(
                f"golden preview {'missing' if old is None else 'differs'} for {c.name}",
                where=Where(rel),
                hint="review the diff; `mcrm campaigns test --update` accepts it",
            )
    return out, probs
