"""The template context built in bulk (campaigns/context.py), checked against plain Python.

Seeded random users and purchases go into a temporary workspace; every field a template can
read is recomputed here from the inserted rows by the definitions of the context's docstring
and SPEC §5.2 (paid orders up to T only, amounts in the base currency, timestamps aware in the
user's zone), never by calling the SQL under test. RFM, lifecycle and tiers must agree with the
segments engine (what `where: {rfm: ...}` selects) and are only computed when a template reads
them; recommendations never offer a product the user already has; coupon codes, unsubscribe
tokens, `now` and the locale are those the send will use."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mcrm.campaigns.context import (
    LIFECYCLE_KEYS,
    NAMES,
    RFM_KEYS,
    Contexts,
    Target,
    render_targets,
)
from mcrm.campaigns.coupons import derived_code
from mcrm.campaigns.engine import CAMPAIGNS_DIR, load, plan_campaign
from mcrm.campaigns.render import Renderer, TemplateError, verify_unsubscribe_token
from mcrm.db import open_db
from mcrm.errors import NotFound
from tests.conftest import WS, WorkspaceFactory
from tests.segdata import md5_hex, ntile5, rfm_segment_name

AS_OF = dt.datetime(2026, 3, 2, 9, 0)  # naive UTC, a Monday
WS_ZONE = "America/Sao_Paulo"  # the workspace zone: the fallback user zone, RFM/lifecycle days
ZONES = ["Europe/Prague", "Asia/Shanghai", "America/New_York", None]
LOCALES = ["cs-CZ", "en-GB", "zh-CN", None]
SECRET = "context-test-secret"
URL = "https://u.example.com/u/{token}"
CATALOGUE = {
    "KIT-1": "Kitchen",
    "KIT-2": "Kitchen",
    "KIT-3": "Kitchen",
    "HOM-1": "Home",
    "HOM-2": "Home",
    "GAR-1": "Garden",
    "GAR-2": "Garden",
    "TOY-1": "Toys",
    "TOY-2": "Toys",
    "BOO-1": "Books",
}
TIER_LEVELS = [("bronze", Decimal(0)), ("silver", Decimal(100)), ("gold", Decimal(300))]
CONFIG = f"""\
timezone: {WS_ZONE}
base_currency: EUR
delivery:
  unsubscribe: {{url: "{URL}", secret: "{SECRET}"}}
"""
SEGMENTS = """\
rfm: {window: 365d, scheme: rf10}
lifecycle: {activity: [purchase], new_days: 7, active_days: 30, dormant_days: 60, churn_days: 90}
tiers: {window: 365d, levels: {bronze: 0, silver: 100, gold: 300}}
segments:
  everyone: {where: {attr: user_id, exists: true}}
"""
CAMPAIGN = """\
description: Context test
segment: everyone
channels: [email]
schedule: {cron: "0 10 * * *", timezone: user}
recommendations: 2
templates:
  email: {subject: c/subject.j2, text: c/text.j2}
"""
EVERYTHING = (
    "{{ user.user_id }} {{ stats.orders }} {{ stats.favourite_category | default('-') }} "
    "{{ tier.name | default('-') }} "
    "{{ rfm.segment | default('-') }} {{ lifecycle.stage | default('-') }} "
    "{{ recommendations | length }} {{ unsubscribe_url }}"
)


def _insert(con: Any, table: str, cols: list[str], rows: list[list[Any]]) -> None:
    import pyarrow as pa

    frame = pa.table({c: [r[i] for r in rows] for i, c in enumerate(cols)})
    con.register("frame", frame)
    con.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT * FROM frame")
    con.unregister("frame")


class Data:
    """What was inserted: users (dicts, as given) and purchases (dicts)."""

    def __init__(self, users: list[dict[str, Any]], purchases: list[dict[str, Any]]) -> None:
        self.users = {u["user_id"]: u for u in users}
        self.purchases = purchases

    def orders(
        self, uid: str, status: str = "paid", since: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        return [
            p
            for p in self.purchases
            if p["user_id"] == uid
            and p["status"] == status
            and p["ts"] <= AS_OF
            and (since is None or p["ts"] >= since)
        ]

    def zone(self, uid: str) -> ZoneInfo:
        return ZoneInfo(self.users[uid]["timezone"] or WS_ZONE)


def make_workspace(
    workspace: WorkspaceFactory,
    templates: dict[str, str] | None = None,
    campaign: str = CAMPAIGN,
    n: int = 60,
    seed: int = 11,
) -> tuple[WS, Data]:
    rng = random.Random(seed)
    files = {
        "segments.yaml": SEGMENTS,
        "campaigns/ctxc.yaml": campaign,
        "campaigns/c/subject.j2": "Hello",
        "campaigns/c/text.j2": EVERYTHING,
        **{f"campaigns/{k}": v for k, v in (templates or {}).items()},
    }
    w = workspace(CONFIG, files)
    users: list[dict[str, Any]] = []
    purchases: list[dict[str, Any]] = []
    for i in range(n):
        uid = f"u{i:03d}"
        attrs = rng.choice(
            [
                None,
                {"vip": True, "score": rng.randint(1, 99)},
                {"vip": False, "tags": ["a", "b"], "nested": {"k": "v"}},
            ]
        )
        first_seen = AS_OF - dt.timedelta(days=rng.randint(20, 600), minutes=rng.randint(0, 999))
        users.append(
            {
                "user_id": uid,
                "email": f"{uid}@example.com",
                "first_name": rng.choice(["Jana", "Oliver", None]),
                "last_name": rng.choice(["Nováková", None]),
                "birth_date": dt.date(1980 + i % 30, 1 + i % 12, 1 + i % 28),
                "locale": rng.choice(LOCALES),
                "country": rng.choice(["CZ", "GB", None]),
                "timezone": rng.choice(ZONES),
                "attributes": None if attrs is None else json.dumps(attrs),
                "_attrs": attrs or {},
                "first_seen": first_seen,
                "last_seen": AS_OF - dt.timedelta(hours=rng.randint(1, 500)),
            }
        )
        for k in range(rng.choice([0, 0, 1, 2, 3, 5, 8])):
            ts = AS_OF - dt.timedelta(days=rng.randint(-20, 420), minutes=rng.randint(0, 1439))
            lines = []
            for _ in range(rng.randint(1, 3)):
                sku = rng.choice(sorted(CATALOGUE))
                price = Decimal(rng.randint(100, 9000)) / 100
                lines.append(
                    {
                        "sku": sku,
                        "name": f"Product {sku}",
                        "category": CATALOGUE[sku],
                        "quantity": rng.randint(1, 3),
                        "price": str(price),
                    }
                )
            base = Decimal(rng.randint(500, 40000)) / 100
            currency = rng.choice(["EUR", "EUR", "CZK"])  # CZK at 25 per EUR
            purchases.append(
                {
                    "order_id": f"o-{uid}-{k}",
                    "user_id": uid,
                    "ts": ts,
                    "amount": base * 25 if currency == "CZK" else base,
                    "currency": currency,
                    "amount_base": base,
                    "status": rng.choices(["paid", "refunded", "cancelled"], [7, 2, 1])[0],
                    "items": lines,
                }
            )
    ucols = [
        "user_id",
        "email",
        "first_name",
        "last_name",
        "birth_date",
        "locale",
        "country",
        "timezone",
        "attributes",
        "first_seen",
        "last_seen",
    ]
    pcols = ["order_id", "user_id", "ts", "amount", "currency", "amount_base", "status", "items"]
    with open_db(w.ws, write=True) as con:
        _insert(con, "users", ucols, [[u[c] for c in ucols] for u in users])
        _insert(
            con,
            "purchases",
            pcols,
            [[json.dumps(p[c]) if c == "items" else p[c] for c in pcols] for p in purchases],
        )
    return w, Data(users, purchases)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[WS, Data]:
    """One shared workspace for the read-only checks (building it is most of the cost)."""
    root = tmp_path_factory.mktemp("ctx")
    counter = iter(range(100))

    def factory(config: str, files: dict[str, str]) -> WS:
        d = root / f"w{next(counter)}"
        d.mkdir()
        (d / "mcrm.yaml").write_text(config, encoding="utf-8")
        w = WS(d)
        for name, text in files.items():
            w.write(name, text)
        return w

    return make_workspace(factory)


def contexts(w: WS, con: Any, name: str = "ctxc", as_of: dt.datetime = AS_OF) -> Contexts:
    c, delivery = load(w.ws, name)
    return Contexts(con, w.ws, c, delivery, as_of, Renderer(w.root / CAMPAIGNS_DIR))


def fetch_all(w: WS, data: Data, name: str = "ctxc") -> dict[str, dict[str, Any]]:
    with open_db(w.ws) as con:
        return contexts(w, con, name).fetch(sorted(data.users))


@pytest.fixture(scope="module")
def fetched(world: tuple[WS, Data]) -> dict[str, dict[str, Any]]:
    w, data = world
    return fetch_all(w, data)


# --- user ----------------------------------------------------------------------------------------


def test_user_has_every_profile_column_and_parsed_attributes(
    world: tuple[WS, Data], fetched: dict[str, dict[str, Any]]
) -> None:
    w, data = world
    with open_db(w.ws) as con:
        columns = {r[0] for r in con.execute("DESCRIBE users").fetchall()}
    assert set(fetched) == set(data.users)
    for uid, u in data.users.items():
        user = fetched[uid]["user"]
        assert set(user) == columns, uid
        assert user["attributes"] == u["_attrs"]
        assert isinstance(user["attributes"], dict)
        for col in ("email", "first_name", "last_name", "locale", "country", "timezone"):
            assert user[col] == u[col], (uid, col)
        assert user["birth_date"] == u["birth_date"]
        assert type(user["birth_date"]) is dt.date  # a date stays a date
        assert user["install_time"] is None


def test_timestamps_are_aware_in_the_users_zone(
    world: tuple[WS, Data], fetched: dict[str, dict[str, Any]]
) -> None:
    _, data = world
    zones_seen = set()
    for uid, u in data.users.items():
        zone = data.zone(uid)
        for col in ("first_seen", "last_seen"):
            got = fetched[uid]["user"][col]
            assert isinstance(got, dt.datetime)
            assert got.tzinfo is not None
            assert got == u[col].replace(tzinfo=dt.UTC)  # the same instant
            # shown in the user's zone (the workspace zone when the profile has none)
            assert str(got.tzinfo) == str(zone)
            assert got.replace(tzinfo=None) == u[col].replace(tzinfo=dt.UTC).astimezone(
                zone
            ).replace(tzinfo=None)
        zones_seen.add(str(zone))
    assert WS_ZONE in zones_seen and len(zones_seen) >= 3


# --- stats ---------------------------------------------------------------------------------------


def favourite(data: Data, uid: str) -> str | None:
    qty: Counter[str] = Counter()
    for p in data.orders(uid):
        for line in p["items"]:
            qty[CATALOGUE[line["sku"]]] += line["quantity"]
    if not qty:
        return None
    best = max(qty.values())
    return min(c for c, n in qty.items() if n == best)


def test_stats_match_a_plain_python_computation(
    world: tuple[WS, Data], fetched: dict[str, dict[str, Any]]
) -> None:
    _, data = world
    kinds: Counter[str] = Counter()
    for uid in data.users:
        paid = data.orders(uid)
        stats = fetched[uid]["stats"]
        assert stats["orders"] == len(paid), uid
        assert isinstance(stats["spend"], Decimal)
        # in the base currency: amount_base, never the order's own amount
        assert stats["spend"] == sum((p["amount_base"] for p in paid), Decimal(0)), uid
        if paid:
            last = max(p["ts"] for p in paid)
            assert stats["last_purchase"] == last.replace(tzinfo=dt.UTC)
            assert (
                stats["last_purchase"].utcoffset()
                == last.replace(tzinfo=dt.UTC).astimezone(data.zone(uid)).utcoffset()
            )
            kinds["buyer"] += 1
        else:
            assert stats["last_purchase"] is None
            kinds["none"] += 1
        assert stats["favourite_category"] == favourite(data, uid), uid
        # orders that are not paid, or after T, exist and were left out
        if any(p["user_id"] == uid and p["status"] != "paid" for p in data.purchases):
            kinds["unpaid"] += 1
        if any(p["user_id"] == uid and p["ts"] > AS_OF for p in data.purchases):
            kinds["future"] += 1
        if any(p["currency"] != "EUR" for p in paid):
            kinds["foreign"] += 1
    assert min(kinds.values()) >= 3, kinds  # the data exercises every case


# --- rfm, lifecycle, tier ------------------------------------------------------------------------


def local_day(t: dt.datetime) -> dt.date:
    return t.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(WS_ZONE)).date()


def expected_tier(data: Data, uid: str) -> tuple[str, Decimal]:
    spend = sum(
        (p["amount_base"] for p in data.orders(uid, since=AS_OF - dt.timedelta(days=365))),
        Decimal(0),
    )
    name = [n for n, level in TIER_LEVELS if spend >= level][-1]
    return name, spend


def expected_rfm(data: Data) -> dict[str, dict[str, Any]]:
    """reference/analytics.md §1 in Python: paid orders in the window, days in the workspace
    zone, NTILE(5) with the md5-then-id tie-break, the rf10 table."""
    today = local_day(AS_OF)
    base: dict[str, dict[str, Any]] = {}
    for uid in data.users:
        orders = data.orders(uid, since=AS_OF - dt.timedelta(days=365))
        if not orders:
            continue
        days = {local_day(p["ts"]) for p in orders}
        base[uid] = {
            "recency_days": (today - max(days)).days,
            "frequency": len(days),
            "monetary": sum((p["amount_base"] for p in orders), Decimal(0)),
        }

    def tie(u: str) -> tuple[str, str]:
        return md5_hex(u), u

    r = ntile5(sorted(base, key=lambda u: (-base[u]["recency_days"], *tie(u))))
    f = ntile5(sorted(base, key=lambda u: (base[u]["frequency"], *tie(u))))
    m = ntile5(sorted(base, key=lambda u: (base[u]["monetary"], *tie(u))))
    for u, b in base.items():
        b.update(r=r[u], f=f[u], m=m[u], cell=f"{r[u]}{f[u]}{m[u]}")
        b["segment"] = rfm_segment_name(r[u], f[u], "rf10")
    return base


def expected_lifecycle(data: Data, uid: str) -> dict[str, Any] | None:
    days = sorted({local_day(p["ts"]) for p in data.orders(uid)})
    if not days:
        return None
    today = local_day(AS_OF)
    since_first, since_last = (today - days[0]).days, (today - days[-1]).days
    returned = any(
        (today - d).days <= 30 and (d - prev).days > 60
        for prev, d in zip(days, days[1:], strict=False)
    )
    if since_first <= 7:
        stage = "new"
    elif since_last <= 30:
        stage = "reactivated" if returned else "active"
    elif since_last <= 60:
        stage = "at_risk"
    elif since_last <= 90:
        stage = "dormant"
    else:
        stage = "churned"
    return {
        "stage": stage,
        "first_day": days[0],
        "last_day": days[-1],
        "days_since_last": since_last,
    }


def test_tier_rfm_and_lifecycle_match_independent_computations(
    world: tuple[WS, Data], fetched: dict[str, dict[str, Any]]
) -> None:
    _, data = world
    rfm = expected_rfm(data)
    assert len(rfm) >= 15
    for uid in data.users:
        ctx = fetched[uid]
        name, spend = expected_tier(data, uid)
        assert ctx["tier"] == {"name": name, "spend": spend}, uid
        want = rfm.get(uid) or dict.fromkeys(RFM_KEYS)
        assert ctx["rfm"] == want, uid
        lc = expected_lifecycle(data, uid) or dict.fromkeys(LIFECYCLE_KEYS)
        assert ctx["lifecycle"] == lc, uid
    assert {fetched[u]["tier"]["name"] for u in data.users} == {"bronze", "silver", "gold"}
    assert len({fetched[u]["rfm"]["segment"] for u in data.users}) >= 5
    assert len({fetched[u]["lifecycle"]["stage"] for u in data.users}) >= 4


def test_tier_rfm_and_lifecycle_equal_the_segments_engine(
    world: tuple[WS, Data], fetched: dict[str, dict[str, Any]]
) -> None:
    """What a template says about a user is what `where: {rfm: ...}` selects."""
    from mcrm.segments.engine import compute

    w, data = world
    values = {
        "rfm": sorted({c["rfm"]["segment"] for c in fetched.values()} - {None}),
        "lifecycle": sorted({c["lifecycle"]["stage"] for c in fetched.values()} - {None}),
        "tier": sorted({c["tier"]["name"] for c in fetched.values()} - {None}),
    }
    segs = {f"{kind}_{v}": (kind, v) for kind, vs in values.items() for v in vs}
    text = SEGMENTS + "".join(f"  {n}: {{where: {{{k}: {v}}}}}\n" for n, (k, v) in segs.items())
    seg_ws = WS(w.root.parent / "segcheck")
    seg_ws.root.mkdir(exist_ok=True)
    import shutil

    shutil.copy(w.root / "mcrm.yaml", seg_ws.root / "mcrm.yaml")
    shutil.copytree(w.root / ".mcrm", seg_ws.root / ".mcrm", dirs_exist_ok=True)
    seg_ws.write("segments.yaml", text)
    res = compute(seg_ws.ws, list(segs), as_of=AS_OF)
    with open_db(seg_ws.ws) as con:
        for name, (kind, v) in segs.items():
            members = {
                r[0]
                for r in con.execute(
                    "SELECT user_id FROM segment_members WHERE run_id = ? AND segment = ?",
                    [res.run_id, name],
                ).fetchall()
            }
            key = {"rfm": "segment", "lifecycle": "stage", "tier": "name"}[kind]
            got = {u for u, c in fetched.items() if c[kind][key] == v}
            assert got == members, name


def test_rfm_of_one_user_is_a_quantile_of_everybody(
    world: tuple[WS, Data], fetched: dict[str, dict[str, Any]]
) -> None:
    """Fetching one user (a preview) gives the same scores as fetching the whole base."""
    w, data = world
    buyers = [u for u in sorted(data.users) if fetched[u]["rfm"]["r"] is not None][:5]
    with open_db(w.ws) as con:
        ctxs = contexts(w, con)
        for uid in buyers:
            one = ctxs.fetch([uid])
            assert set(one) == {uid}
            for kind in ("rfm", "lifecycle", "tier", "stats", "recommendations"):
                assert one[uid][kind] == fetched[uid][kind], (uid, kind)


@pytest.mark.parametrize(
    ("text", "present"),
    [
        ("{{ user.first_name | default('x') }}", set()),
        ("{{ tier.name | default('x') }}", {"tier"}),
        ("{{ rfm.segment | default('x') }} {{ stats.orders }}", {"rfm", "stats"}),
        ("{% for p in recommendations %}{{ p.sku }}{% endfor %}", {"recommendations"}),
        ("{{ lifecycle.stage | default('x') }}", {"lifecycle"}),
    ],
)
def test_relations_are_computed_only_when_a_template_reads_them(
    workspace: WorkspaceFactory, text: str, present: set[str]
) -> None:
    w, data = make_workspace(workspace, {"c/text.j2": text, "c/subject.j2": "Hi"}, n=12)
    with open_db(w.ws) as con:
        ctxs = contexts(w, con)
        assert ctxs.needs & {"tier", "rfm", "lifecycle", "stats", "recommendations"} == present
        got = ctxs.fetch(sorted(data.users))
    optional = {"tier", "rfm", "lifecycle", "stats", "recommendations", "coupon"}
    for ctx in got.values():
        assert set(ctx) & optional == present
        assert "user" in ctx


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("{{ stats.orders }} {{ stats['spend'] | money }}", {"orders", "spend"}),
        (
            "{% if stats.orders > 1 %}{{ stats.last_purchase | date }}{% endif %}",
            {"orders", "last_purchase"},
        ),
        ("{{ stats }}", None),
        ("{% for k in stats %}{{ k }}{% endfor %}", None),
        ("{% set s = stats %}{{ s.orders }}", None),
        ("{{ stats[user.user_id] | default('') }}", None),
        ("{{ user.user_id }}", set()),
    ],
)
def test_attributes_read_of_a_context_name(
    workspace: WorkspaceFactory, text: str, keys: set[str] | None
) -> None:
    """Which keys of `stats` a template reads, or None when it may read them all."""
    w, _ = make_workspace(workspace, {"c/text.j2": text}, n=2)
    assert Renderer(w.root / CAMPAIGNS_DIR).attributes("c/text.j2", "stats") == keys


def test_stats_without_favourite_category_skip_the_product_pass(
    workspace: WorkspaceFactory,
) -> None:
    """The favourite category (and recommendations) read every product view and purchase line:
    a campaign whose templates read only other stats never touches them — it works with no
    `events` table at all — and its stats are the same as when they are computed."""
    w, data = make_workspace(
        workspace, {"c/text.j2": "{{ stats.orders }} {{ stats.spend | money }}"}, n=16
    )
    users = sorted(data.users)
    with open_db(w.ws) as con:
        ctxs = contexts(w, con)
        assert not ctxs.favourite
        lean = ctxs.fetch(users)
    w.write("campaigns/c/text.j2", "{{ stats.orders }} {{ stats.favourite_category }}")
    with open_db(w.ws) as con:
        full = contexts(w, con).fetch(users)
    with open_db(w.ws, write=True) as con:
        con.execute("ALTER TABLE events RENAME TO events_gone")
    w.write("campaigns/c/text.j2", "{{ stats.orders }} {{ stats.spend | money }}")
    with open_db(w.ws) as con:
        again = contexts(w, con).fetch(users)
    for uid in users:
        assert set(lean[uid]["stats"]) == {"orders", "spend", "last_purchase"}
        assert lean[uid]["stats"] == {
            k: v for k, v in full[uid]["stats"].items() if k != "favourite_category"
        }
        assert again[uid]["stats"] == lean[uid]["stats"]
        assert full[uid]["stats"]["favourite_category"] == favourite(data, uid)
    # reading the favourite does need the product views
    w.write("campaigns/c/text.j2", "{{ stats.favourite_category }}")
    with open_db(w.ws) as con, pytest.raises(Exception, match="events"):
        contexts(w, con).fetch(users)


def test_a_name_read_only_by_a_locale_file_is_computed(workspace: WorkspaceFactory) -> None:
    """`needs` looks at every locale variant: a Czech-only `tier` is still fetched."""
    w, data = make_workspace(
        workspace,
        {"c/text.j2": "Hi", "c/text.cs.j2": "{{ tier.name | default('x') }}"},
        n=8,
    )
    with open_db(w.ws) as con:
        ctxs = contexts(w, con)
        assert "tier" in ctxs.needs
        got = ctxs.fetch(sorted(data.users))
        outs = list(
            render_targets(ctxs, [Target(u, "email", "default", None, "cs") for u in sorted(got)])
        )
    for o in outs:
        assert o.error is None and o.message is not None
        assert o.message.files["text"] == "c/text.cs.j2"
        assert o.message.parts["text"] == got[o.target.user_id]["tier"]["name"]


# --- recommendations -----------------------------------------------------------------------------


def test_recommendations_never_offer_what_the_user_has(
    world: tuple[WS, Data], fetched: dict[str, dict[str, Any]]
) -> None:
    _, data = world
    offered = 0
    for uid in data.users:
        recs = fetched[uid]["recommendations"]
        assert isinstance(recs, list) and len(recs) <= 2  # the campaign's recommendations: 2
        skus = [p["sku"] for p in recs]
        assert len(set(skus)) == len(skus)
        bought = {
            line["sku"]
            for status in ("paid", "refunded")
            for p in data.orders(uid, status)
            for line in p["items"]
        }
        assert not bought & set(skus), (uid, bought, skus)
        for p in recs:
            assert set(p) == {"sku", "name", "category", "price", "currency"}
            assert p["category"] == CATALOGUE[p["sku"]]
            # an item price is in its order's currency, which the product carries
            assert isinstance(p["price"], Decimal) and p["currency"] in ("EUR", "CZK")
        offered += len(recs)
    assert offered > len(data.users)  # most users get something


# --- coupon --------------------------------------------------------------------------------------


def test_coupon_is_the_assignment_or_the_derived_code(workspace: WorkspaceFactory) -> None:
    w, data = make_workspace(
        workspace,
        {"c/text.j2": "{{ coupon.code }} {{ coupon.prefix }}"},
        campaign=CAMPAIGN + "coupon: {prefix: BACK15}\n",
        n=6,
    )
    ids = sorted(data.users)
    with open_db(w.ws, write=True) as con:
        from mcrm.campaigns.coupons import ensure_table

        ensure_table(con)
        con.execute(
            "INSERT INTO coupon_assignments VALUES ('ctxc', ?, 'BACK15-GIVEN00001', 'pool', "
            "'p1', ?), ('other', ?, 'BACK15-OTHERCAMP1', 'pool', 'p2', ?)",
            [ids[0], AS_OF, ids[1], AS_OF],
        )
    got = fetch_all(w, data)
    assert got[ids[0]]["coupon"] == {"code": "BACK15-GIVEN00001", "prefix": "BACK15"}
    for uid in ids[1:]:  # another campaign's assignment does not count
        want = derived_code("BACK15", "ctxc", uid, SECRET.encode())
        assert got[uid]["coupon"] == {"code": want, "prefix": "BACK15"}
    # previewing records nothing, and the plan then assigns exactly the code shown
    with open_db(w.ws) as con:
        n = con.execute("SELECT count(*) FROM coupon_assignments WHERE campaign = 'ctxc'")
        assert n.fetchall()[0][0] == 1
    plan_campaign(w.ws, "ctxc", AS_OF, render=False)
    with open_db(w.ws) as con:
        codes = dict(
            con.execute(
                "SELECT user_id, code FROM coupon_assignments WHERE campaign = 'ctxc'"
            ).fetchall()
        )
    for uid in ids:
        if uid in codes:
            assert codes[uid] == got[uid]["coupon"]["code"], uid


def test_no_coupon_without_a_coupon_campaign(
    fetched: dict[str, dict[str, Any]],
) -> None:
    assert all("coupon" not in ctx for ctx in fetched.values())


def test_pool_coupons_preview_the_next_free_codes(workspace: WorkspaceFactory) -> None:
    w, data = make_workspace(
        workspace,
        {"c/text.j2": "{{ coupon.code }}"},
        campaign=CAMPAIGN + "coupon: {prefix: POOL, pool: pool.csv}\n",
        n=3,
    )
    w.write("pool.csv", "code\nPOOL-A\nPOOL-B\nPOOL-C\nPOOL-D\nPOOL-E\n")
    ids = sorted(data.users)
    with open_db(w.ws, write=True) as con:
        from mcrm.campaigns.coupons import ensure_table

        ensure_table(con)
        con.execute(
            "INSERT INTO coupon_assignments VALUES ('other', 'someone', 'POOL-A', 'pool', 'p', ?)",
            [AS_OF],
        )
    got = fetch_all(w, data)
    assert [got[u]["coupon"]["code"] for u in ids] == ["POOL-B", "POOL-C", "POOL-D"]


# --- per message: unsubscribe, now, locale -------------------------------------------------------


def test_unsubscribe_url_token_verifies_for_the_user_and_campaign(
    world: tuple[WS, Data],
) -> None:
    w, data = world
    ids = sorted(data.users)[:4]
    with open_db(w.ws) as con:
        ctxs = contexts(w, con)
        bases = ctxs.fetch(ids)
        for uid in ids:
            ctx = ctxs.complete(bases[uid], Target(uid, "email", "default"))
            url = ctx["unsubscribe_url"]
            prefix = URL.split("{token}")[0]
            assert url.startswith(prefix)
            token = url[len(prefix) :]
            got = verify_unsubscribe_token(SECRET.encode(), token)
            assert got == (uid, "ctxc", AS_OF.replace(tzinfo=dt.UTC))


def test_now_is_the_send_time_in_the_users_zone(world: tuple[WS, Data]) -> None:
    w, data = world
    ids = sorted(data.users)[:8]
    send = dt.datetime(2026, 3, 3, 15, 30)
    with open_db(w.ws) as con:
        ctxs = contexts(w, con)
        bases = ctxs.fetch(ids)
        for uid in ids:
            zone = data.zone(uid)
            now = ctxs.complete(bases[uid], Target(uid, "email", "default", send))["now"]
            assert now == send.replace(tzinfo=dt.UTC)
            assert now.utcoffset() == send.replace(tzinfo=dt.UTC).astimezone(zone).utcoffset()
            assert now.tzinfo is not None and str(now.tzinfo) == str(zone)
            now = ctxs.complete(bases[uid], Target(uid, "email", "default"))["now"]
            assert now == AS_OF.replace(tzinfo=dt.UTC) and str(now.tzinfo) == str(zone)


def test_context_has_campaign_variant_currency_and_the_users_locale(
    world: tuple[WS, Data],
) -> None:
    w, data = world
    ids = sorted(data.users)
    with open_db(w.ws) as con:
        ctxs = contexts(w, con)
        bases = ctxs.fetch(ids)
        for uid in ids:
            ctx = ctxs.complete(bases[uid], Target(uid, "email", "default"))
            assert set(ctx) <= NAMES
            assert ctx["campaign"] == {
                "name": "ctxc",
                "description": "Context test",
                "purpose": "marketing",
            }
            assert ctx["variant"] == "default" and ctx["currency"] == "EUR"
            assert ctx["locale"] == (data.users[uid]["locale"] or "en")
            over = ctxs.complete(bases[uid], Target(uid, "email", "default", None, "cs"))
            assert over["locale"] == "cs"
            assert over["user"]["locale"] == data.users[uid]["locale"]  # the profile is as is


def test_locale_override_picks_the_locale_file_and_formatting(
    workspace: WorkspaceFactory,
) -> None:
    w, data = make_workspace(
        workspace,
        {
            "c/text.j2": "EN {{ 1234.5 | money }}",
            "c/text.cs.j2": "CS {{ 1234.5 | money }}",
        },
        n=4,
    )
    ids = sorted(data.users)
    with open_db(w.ws) as con:
        ctxs = contexts(w, con)
        outs = {
            (o.target.user_id, o.target.locale): o
            for o in render_targets(
                ctxs,
                [Target(u, "email", "default", None, loc) for u in ids for loc in ("cs", "en")],
            )
        }
    for uid in ids:
        cs = outs[(uid, "cs")].message
        en = outs[(uid, "en")].message
        assert cs is not None and en is not None
        assert cs.files["text"] == "c/text.cs.j2" and cs.locale == "cs"
        assert cs.parts["text"] == "CS 1\u00a0234,50\u00a0€"
        assert en.files["text"] == "c/text.j2"
        assert en.parts["text"] == "EN €1,234.50"


# --- render_targets ------------------------------------------------------------------------------


def test_a_template_error_is_the_outcome_of_the_failing_users_only(
    world: tuple[WS, Data],
) -> None:
    w, data = world
    (w.root / "campaigns/c/broken.j2").write_text("Hi\n{{ user.last_name }}\n", "utf-8")
    c, delivery = load(w.ws, "ctxc")
    import dataclasses

    v = c.variants[0]
    variant = dataclasses.replace(v, templates={"email": {"subject": "c/broken.j2"}})
    c = dataclasses.replace(c, variants=(variant,))
    ids = sorted(data.users)
    with open_db(w.ws) as con:
        ctxs = Contexts(con, w.ws, c, delivery, AS_OF, Renderer(w.root / CAMPAIGNS_DIR))
        outs = list(render_targets(ctxs, [Target(u, "email", "default") for u in ids], chunk=7))
    assert [o.target.user_id for o in outs] == ids
    for o in outs:
        if data.users[o.target.user_id]["last_name"] is None:
            assert o.message is None and isinstance(o.error, TemplateError)
            assert "campaigns/c/broken.j2:2" in o.error.render()
            assert f"user {o.target.user_id}" in o.error.render()
        else:
            assert o.error is None and o.message is not None
            assert o.message.parts["subject"] == "Hi Nováková"


def test_an_unknown_user_is_not_found(world: tuple[WS, Data]) -> None:
    w, _ = world
    with open_db(w.ws) as con:
        ctxs = contexts(w, con)
        with pytest.raises(NotFound, match="nobody"):
            list(render_targets(ctxs, [Target("nobody", "email", "default")]))


def test_a_user_with_an_unknown_zone_gets_the_workspace_zone(
    workspace: WorkspaceFactory,
) -> None:
    """docs/campaigns.md: "a user without a valid zone gets the workspace zone" — the plan
    schedules them in it, so `now` and their timestamps must be shown in it too."""
    w, data = make_workspace(workspace, n=2)
    with open_db(w.ws, write=True) as con:
        con.execute("UPDATE users SET timezone = 'Mars/Olympus_Mons' WHERE user_id = 'u000'")
    first_seen = data.users["u000"]["first_seen"]
    zone = ZoneInfo(WS_ZONE)
    with open_db(w.ws) as con:
        ctxs = contexts(w, con)
        base = ctxs.fetch(["u000"])["u000"]
        ctx = ctxs.complete(base, Target("u000", "email", "default"))
    assert ctx["now"].utcoffset() == AS_OF.replace(tzinfo=dt.UTC).astimezone(zone).utcoffset()
    assert ctx["user"]["first_seen"].utcoffset() == (
        first_seen.replace(tzinfo=dt.UTC).astimezone(zone).utcoffset()
    )
