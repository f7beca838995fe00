"""The template context (SPEC §5.2), built in bulk for the users of a table, and rendering it.

One `Contexts` per run: it looks at every template of the campaign once (`Renderer.variables`)
and computes only what they read — RFM, lifecycle and tiers are SQL relations over the whole
customer base (RFM scores are quantiles of everybody), recommendations a set-based pass over
the purchases; nothing is a Python loop over the database. Then one row per user is fetched and
turned into plain dicts and lists, which is all a template sees.

The context of user u for campaign c, as of T (a message is rendered for its send time S when it
has one, else for T):

- `user` — every `users` column (`user_id`, `email`, `first_name`, `locale`, `country`, …) and
  `attributes`, the parsed JSON attributes (`user.attributes.vip`). Timestamps are aware, in the
  user's zone; dates are dates.
- `rfm` — `recency_days`, `frequency`, `monetary`, `r`, `f`, `m`, `cell`, `segment` (all None
  for a user without paid orders); `lifecycle` — `stage`, `first_day`, `last_day`,
  `days_since_last`; `tier` — `name` (None below the lowest level or without `tiers:`) and
  `spend` (in the tier window, base currency).
- `prediction` — the user's CLV prediction from the latest `mcrm predict clv` run as of T:
  `p_alive`, `expected_purchases` (in the run's horizon), `expected_aov` and `clv` (Decimals,
  base currency), all None for a user who was not a customer then, and `as_of` (the run's,
  aware, user zone). A template reading it with no run yet fails: "no CLV predictions yet".
- `stats` — `orders` (paid, up to T), `spend` (their base-currency total, a Decimal),
  `last_purchase` (aware, user zone, or None), `favourite_category` (recommend.py's definition;
  computed only when a template reads it, or reads `stats` otherwise than by constant keys:
  it costs a pass over every purchase line and product view).
- `recommendations` — up to the campaign's `recommendations: N` (default 3) products as dicts
  `sku`, `name`, `category`, `price` (Decimal, in `currency`), `currency`.
- `coupon` — `code`, `prefix` (campaigns with `coupon:` only; elsewhere it is undefined, so a
  template using it fails validation). The code is the user's assignment when there is one;
  a preview of a user without one shows the code they would get (derived: exactly; pool: the
  next free codes in pool order), and records nothing.
- `campaign` — `name`, `description`, `purpose`; `variant` — the variant name.
- `unsubscribe_url` — `delivery.unsubscribe.url` with a signed token (render.unsubscribe_token,
  issued at T).
- `now` — S (or T), aware, in the user's zone; `locale` — the user's tag (the renderer's
  default when missing); `currency` — the workspace base currency (the default for `| money`).

`SPECIMEN` is the context validation renders every template with: every field above filled
with a typical value, and `user.attributes` answering any key (attributes are free-form per
user, so their presence cannot be known before sending; use `| default(...)`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from mcrm.campaigns.model import INLINE_PARTS
from mcrm.campaigns.render import RenderedMessage, Renderer, TemplateError, TemplateSkip
from mcrm.errors import NotFound

if TYPE_CHECKING:
    import duckdb

    from mcrm.campaigns.model import Campaign, Delivery
    from mcrm.config import Workspace

NAMES = frozenset(
    {
        "user",
        "rfm",
        "lifecycle",
        "tier",
        "prediction",
        "stats",
        "recommendations",
        "coupon",
        "campaign",
        "variant",
        "unsubscribe_url",
        "now",
        "locale",
        "currency",
    }
)
RFM_KEYS = ("recency_days", "frequency", "monetary", "r", "f", "m", "cell", "segment")
LIFECYCLE_KEYS = ("stage", "first_day", "last_day", "days_since_last")
PREDICTION_KEYS = ("p_alive", "expected_purchases", "expected_aov", "clv")


@lru_cache(maxsize=512)
def _zone(name: str, fallback: str = "UTC") -> ZoneInfo:
    """The user's zone; one that is not a real IANA zone falls back to the workspace zone,
    as in the plan."""
    try:
        return ZoneInfo(name)
    except Exception:
        return ZoneInfo(fallback)


def _aware(t: Any, zone: ZoneInfo) -> Any:
    """Naive UTC timestamps from DuckDB -> aware in the user's zone; other values unchanged."""
    if isinstance(t, dt.datetime):
        return t.replace(tzinfo=dt.UTC).astimezone(zone)
    return t


@dataclass(frozen=True)
class Target:
    """One message to render: who, on which channel, in which variant, for when."""

    user_id: str
    channel: str
    variant: str
    send_at: dt.datetime | None = None  # naive UTC
    locale: str | None = None  # render in this locale instead of the user's (preview)


def campaign_info(c: Campaign) -> dict[str, Any]:
    """The `campaign` of the template context."""
    return {"name": c.name, "description": c.description, "purpose": c.purpose}


def template_names(renderer: Renderer, c: Campaign) -> set[str]:
    """Top-level context names any template of the campaign (any variant, any locale) reads."""
    names: set[str] = set()
    for path in c.template_paths():
        try:
            names |= renderer.variables(path)
        except Exception:  # reported by validate; rendering will raise it with file:line
            return set(NAMES)
    import jinja2.meta

    for v in c.variants:
        for parts in v.templates.values():
            for part, spec in parts.items():
                if part in INLINE_PARTS:
                    try:
                        ast = renderer.env.parse(spec)
                    except Exception:
                        return set(NAMES)
                    names |= jinja2.meta.find_undeclared_variables(ast)
    return names


def attributes_of(renderer: Renderer, c: Campaign, name: str) -> set[str] | None:
    """The keys of `name` any template of the campaign reads (`Renderer.attributes`), or None
    when one may read it all."""
    from mcrm.campaigns.render import attributes_read

    keys: set[str] = set()
    try:
        for path in c.template_paths():
            got = renderer.attributes(path, name)
            if got is None:
                return None
            keys |= got
        inline = [
            renderer.env.parse(spec)
            for v in c.variants
            for parts in v.templates.values()
            for part, spec in parts.items()
            if part in INLINE_PARTS
        ]
    except Exception:  # reported by validate; rendering will raise it with file:line
        return None
    more = attributes_read(inline, name)
    return None if more is None else keys | more


class Contexts:
    """Builds template contexts for a campaign's users, as of T, on one DuckDB connection."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        ws: Workspace,
        c: Campaign,
        delivery: Delivery,
        as_of: dt.datetime,
        renderer: Renderer,
    ):
        self.con = con
        self.ws = ws
        self.c = c
        self.delivery = delivery
        self.as_of = as_of
        self.renderer = renderer
        self.needs = template_names(renderer, c)
        # favourite_category costs a pass over every purchase line and product view
        # (recommend._prepare): only when a template reads it, or `stats` as a whole
        stats_keys = attributes_of(renderer, c, "stats") if "stats" in self.needs else set()
        self.favourite = "stats" in self.needs and (
            stats_keys is None or "favourite_category" in stats_keys
        )
        self.currency = ws.settings.base_currency
        self._secret = delivery.unsubscribe.secret.encode()
        self._issued = as_of.replace(tzinfo=dt.UTC)
        self._campaign = campaign_info(c)
        self._pool_free: list[str] | None = None

    # --- SQL ---------------------------------------------------------------------------------

    def _relations(self) -> None:
        from mcrm.segments import compile as C
        from mcrm.segments.analytics import RELATIONS
        from mcrm.segments.model import load_segments

        wanted = [r for r in ("rfm", "lifecycle", "tier") if r in self.needs]
        if not wanted:
            return
        ctx = C.Ctx(load_segments(self.ws.root), self.as_of, self.ws.settings.timezone)
        for rel in wanted:
            sql = RELATIONS["tiers" if rel == "tier" else rel](ctx)
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE ctx_{rel} AS SELECT * FROM ({sql}) x "
                "WHERE user_id IN (SELECT user_id FROM ctx_users)"
            )

    def fetch(self, user_ids: list[str]) -> dict[str, dict[str, Any]]:
        """user_id -> the user-dependent part of the context (`user`, `rfm`, `lifecycle`,
        `tier`, `stats`, `recommendations`, `coupon`); unknown ids are left out."""
        import pyarrow as pa

        con = self.con
        con.register("ctx_ids", pa.table({"user_id": pa.array(user_ids, pa.string())}))
        try:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE ctx_users AS SELECT DISTINCT user_id FROM ctx_ids"
            )
        finally:
            con.unregister("ctx_ids")
        try:
            return self._fetch()
        finally:
            for t in ("ctx_users", "ctx_rfm", "ctx_lifecycle", "ctx_tier", "ctx_prediction"):
                con.execute(f"DROP TABLE IF EXISTS {t}")

    def _fetch(self) -> dict[str, dict[str, Any]]:
        con = self.con
        self._relations()
        d = f"TIMESTAMP '{self.as_of.replace(tzinfo=None).isoformat(sep=' ')}'"
        described = con.execute("DESCRIBE users").fetchall()
        cols = [r[0] for r in described]
        stamp_i = [i for i, r in enumerate(described) if str(r[1]).startswith("TIMESTAMP")]
        selects = [f"u.{c}" for c in cols]
        joins = []
        if "rfm" in self.needs:
            selects += [f"r.{k} AS rfm_{k}" for k in RFM_KEYS]
            joins.append("LEFT JOIN ctx_rfm r ON r.user_id = u.user_id")
        if "lifecycle" in self.needs:
            selects += [f"l.{k} AS lc_{k}" for k in LIFECYCLE_KEYS]
            joins.append("LEFT JOIN ctx_lifecycle l ON l.user_id = u.user_id")
        if "tier" in self.needs:
            selects += ["t.tier AS tier_name", "t.spend AS tier_spend"]
            joins.append("LEFT JOIN ctx_tier t ON t.user_id = u.user_id")
        prediction_as_of = None
        if "prediction" in self.needs:
            from mcrm.predict.run import run_for

            run_id, prediction_as_of = run_for(con, self.as_of)
            con.execute(
                "CREATE OR REPLACE TEMP TABLE ctx_prediction AS SELECT user_id, "
                f"{', '.join(PREDICTION_KEYS)} FROM predictions WHERE run_id = {run_id} "
                "AND user_id IN (SELECT user_id FROM ctx_users) QUALIFY row_number() OVER "
                "(PARTITION BY user_id ORDER BY clv DESC, p_alive DESC) = 1"
            )
            selects += [f"pr.{k} AS pr_{k}" for k in PREDICTION_KEYS]
            joins.append("LEFT JOIN ctx_prediction pr ON pr.user_id = u.user_id")
        if "stats" in self.needs:
            selects += [
                "coalesce(s.orders, 0) AS st_orders",
                "CAST(coalesce(s.spend, 0) AS DECIMAL(18, 2)) AS st_spend",
                "s.last_purchase AS st_last",
            ]
            joins.append(
                "LEFT JOIN (SELECT p.user_id, count(*) AS orders, sum(p.amount_base) AS spend, "
                "max(p.ts) AS last_purchase FROM purchases p "
                "WHERE p.status = 'paid' AND p.ts <= "
                f"{d} AND p.user_id IN (SELECT user_id FROM ctx_users) GROUP BY p.user_id) s "
                "ON s.user_id = u.user_id"
            )
        sql = (
            f"SELECT {', '.join(selects)} FROM users u {' '.join(joins)} "
            "WHERE u.user_id IN (SELECT user_id FROM ctx_users) ORDER BY u.user_id"
        )
        cur = con.execute(sql)
        names = [x[0] for x in cur.description]
        rows = cur.fetchall()
        n_user = len(cols)
        fav: dict[str, str | None] = {}
        recs: dict[str, list[dict[str, Any]]] = {}
        if self.favourite:
            from mcrm.campaigns.recommend import favourite_category

            fav = favourite_category(con, "ctx_users", self.as_of)
        if "recommendations" in self.needs:
            from mcrm.campaigns.recommend import recommendations

            recs = {
                u: [p.as_dict() for p in ps]
                for u, ps in recommendations(
                    con, "ctx_users", self.as_of, self.c.recommendations
                ).items()
            }
        codes = self._coupons([r[0] for r in rows]) if "coupon" in self.needs else {}
        tz_i = cols.index("timezone") if "timezone" in cols else None
        attr_i = cols.index("attributes") if "attributes" in cols else None
        default_zone = self.ws.settings.timezone
        out: dict[str, dict[str, Any]] = {}
        for row in rows:
            uid = row[0]
            zone = _zone((row[tz_i] if tz_i is not None else None) or default_zone, default_zone)
            user = dict(zip(cols, row[:n_user], strict=True))
            for i in stamp_i:  # only the timestamp columns need a zone (most are not)
                t = row[i]
                if t is not None:
                    user[cols[i]] = t.replace(tzinfo=dt.UTC).astimezone(zone)
            if attr_i is not None:
                raw = row[attr_i]
                try:
                    attrs = json.loads(raw) if isinstance(raw, str) else (raw or {})
                except ValueError:
                    attrs = {}
                user["attributes"] = attrs if isinstance(attrs, dict) else {}
            ctx: dict[str, Any] = {"user": user, "_zone": zone}
            rest = dict(zip(names[n_user:], row[n_user:], strict=True))
            if "rfm" in self.needs:
                ctx["rfm"] = {k: rest[f"rfm_{k}"] for k in RFM_KEYS}
            if "lifecycle" in self.needs:
                ctx["lifecycle"] = {k: rest[f"lc_{k}"] for k in LIFECYCLE_KEYS}
            if "tier" in self.needs:
                ctx["tier"] = {"name": rest["tier_name"], "spend": rest["tier_spend"]}
            if "prediction" in self.needs:
                ctx["prediction"] = {k: rest[f"pr_{k}"] for k in PREDICTION_KEYS}
                ctx["prediction"]["as_of"] = _aware(prediction_as_of, zone)
            if "stats" in self.needs:
                ctx["stats"] = {
                    "orders": int(rest["st_orders"]),
                    "spend": rest["st_spend"],
                    "last_purchase": _aware(rest["st_last"], zone),
                }
                if self.favourite:
                    ctx["stats"]["favourite_category"] = fav.get(uid)
            if "recommendations" in self.needs:
                ctx["recommendations"] = recs.get(uid, [])
            if uid in codes:
                ctx["coupon"] = {"code": codes[uid], "prefix": self.c.coupon.prefix}  # type: ignore[union-attr]
            out[uid] = ctx
        return out

    def _coupons(self, user_ids: list[str]) -> dict[str, str]:
        """Assigned codes, and for the others the code they would get (never recorded)."""
        from mcrm.campaigns.coupons import codes_for, derived_code, load_pool

        c = self.c
        if c.coupon is None:
            return {}
        codes = codes_for(self.con, c.name, "ctx_users")
        missing = sorted(u for u in user_ids if u not in codes)
        if not missing:
            return codes
        if c.coupon.pool is None:
            for u in missing:
                codes[u] = derived_code(c.coupon.prefix, c.name, u, self._secret)
            return codes
        if self._pool_free is None:
            pool = load_pool(self.ws.root / c.coupon.pool, c.coupon.pool, c.coupon.prefix)
            taken = {
                r[0]
                for r in self.con.execute(
                    "SELECT upper(trim(code)) FROM coupon_assignments"
                ).fetchall()
            }
            seen: set[str] = set()
            free = []
            for code in pool:
                k = code.strip().upper()
                if k not in taken and k not in seen:
                    seen.add(k)
                    free.append(code.strip())
            self._pool_free = free
        for u, code in zip(missing, self._pool_free, strict=False):
            codes[u] = code
        self._pool_free = self._pool_free[len(missing) :]
        return codes

    # --- per message ------------------------------------------------------------------------

    def complete(self, base: Mapping[str, Any], t: Target) -> dict[str, Any]:
        """The whole context of one message: the user part plus campaign, variant, locale,
        currency, unsubscribe URL and `now`."""
        from mcrm.campaigns.render import unsubscribe_token, unsubscribe_url

        zone: ZoneInfo = base["_zone"]
        ctx = {k: v for k, v in base.items() if k != "_zone"}
        user = ctx["user"]
        ctx["campaign"] = self._campaign
        ctx["variant"] = t.variant
        ctx["locale"] = t.locale or user.get("locale") or self.renderer.default_locale
        ctx["currency"] = self.currency
        when = t.send_at or self.as_of.replace(tzinfo=None)
        ctx["now"] = when.replace(tzinfo=dt.UTC).astimezone(zone)
        if "unsubscribe_url" in self.needs:
            token = unsubscribe_token(self._secret, t.user_id, self.c.name, self._issued)
            ctx["unsubscribe_url"] = unsubscribe_url(self.delivery.unsubscribe.url, token)
        return ctx


def templates_for(c: Campaign, variant: str, channel: str) -> dict[str, str]:
    """Part -> template path (or inline text) of `channel` in `variant`."""
    for v in c.variants:
        if v.name == variant:
            return v.templates.get(channel, {})
    raise KeyError(variant)


@dataclass(frozen=True)
class Outcome:
    target: Target
    message: RenderedMessage | None
    skip: str | None = None  # the template's skip reason
    error: TemplateError | None = None  # the template failed for this user
    context: dict[str, Any] | None = field(default=None, compare=False, repr=False)


def render_targets(
    contexts: Contexts, targets: list[Target], chunk: int = 20_000
) -> Iterator[Outcome]:
    """Render each target's message (contexts fetched `chunk` users at a time). A template
    error is the outcome's `error`: a `TemplateError` naming the template file:line and the
    user."""
    r = contexts.renderer
    c = contexts.c
    for start in range(0, len(targets), chunk):
        part = targets[start : start + chunk]
        bases = contexts.fetch([t.user_id for t in part])
        for t in part:
            base = bases.get(t.user_id)
            if base is None:
                raise NotFound(f"user {t.user_id} not found")
            ctx = contexts.complete(base, t)
            try:
                msg = r.render_message(
                    t.channel, templates_for(c, t.variant, t.channel), ctx, ctx["locale"]
                )
            except TemplateSkip as e:
                yield Outcome(t, None, e.reason, context=ctx)
                continue
            except TemplateError as e:
                e.message = f"{e.message} (rendering {c.name} for user {t.user_id})"
                yield Outcome(t, None, error=e, context=ctx)
                continue
            yield Outcome(t, msg, context=ctx)


class _AnyAttributes(dict[str, Any]):
    """`user.attributes` of the specimen: any key reads as a placeholder."""

    def __missing__(self, key: str) -> str:
        return f"<{key}>"

    def __contains__(self, key: object) -> bool:
        return True


def specimen(c: Campaign, currency: str, locale: str, unsubscribe: str) -> dict[str, Any]:
    """The context validation renders every template with (see the module docstring)."""
    zone = ZoneInfo("Europe/Prague")
    t = dt.datetime(2026, 11, 16, 10, 0, tzinfo=zone)
    product = {
        "sku": "SKU-1",
        "name": "Enamel Coffee Pot",
        "category": "Kitchen",
        "price": Decimal("34.90"),
        "currency": currency,
    }
    ctx: dict[str, Any] = {
        "user": {
            "user_id": "usr_specimen",
            "email": "jana@example.com",
            "phone": "+420601234567",
            "first_name": "Jana",
            "last_name": "Nováková",
            "gender": "f",
            "birth_date": dt.date(1990, 11, 16),
            "locale": locale,
            "country": "CZ",
            "region": "Prague",
            "city": "Prague",
            "home_lat": 50.08,
            "home_lon": 14.43,
            "timezone": "Europe/Prague",
            "os": "ios",
            "os_version": "18.1",
            "device_model": "iPhone15,2",
            "app_version": "4.2.0",
            "acq_source": "google",
            "acq_medium": "cpc",
            "acq_campaign": "brand",
            "install_time": t - dt.timedelta(days=400),
            "first_seen": t - dt.timedelta(days=400),
            "last_seen": t - dt.timedelta(days=2),
            "created_at": t - dt.timedelta(days=400),
            "updated_at": t - dt.timedelta(days=2),
            "attributes": _AnyAttributes(),
        },
        "rfm": {
            "recency_days": 12,
            "frequency": 5,
            "monetary": Decimal("412.50"),
            "r": 4,
            "f": 4,
            "m": 5,
            "cell": "445",
            "segment": "champions",
        },
        "lifecycle": {
            "stage": "active",
            "first_day": (t - dt.timedelta(days=400)).date(),
            "last_day": (t - dt.timedelta(days=2)).date(),
            "days_since_last": 2,
        },
        "tier": {"name": "gold", "spend": Decimal("812.00")},
        "prediction": {
            "p_alive": 0.87,
            "expected_purchases": 3.4,
            "expected_aov": Decimal("82.450"),
            "clv": Decimal("265.310"),
            "as_of": t - dt.timedelta(days=1),
        },
        "stats": {
            "orders": 5,
            "spend": Decimal("412.50"),
            "last_purchase": t - dt.timedelta(days=12),
            "favourite_category": "Kitchen",
        },
        "recommendations": [product, {**product, "sku": "SKU-2", "name": "Linen Apron"}],
        "campaign": campaign_info(c),
        "variant": c.variants[0].name,
        "unsubscribe_url": unsubscribe.replace("{token}", "specimen-token"),
        "now": t,
        "locale": locale,
        "currency": currency,
    }
    if c.coupon is not None:
        ctx["coupon"] = {"code": f"{c.coupon.prefix}-SPECIMEN01", "prefix": c.coupon.prefix}
    return ctx
