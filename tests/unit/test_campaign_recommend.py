"""Recommendations and favourite categories (SPEC §5.2) against hand-worked cases and a
plain-Python reference written from the definitions in `mcrm.campaigns.recommend`'s docstring.

Rows are written straight into a fresh mcrm schema in a temporary DuckDB file.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mcrm.campaigns.recommend import (
    Product,
    catalogue,
    favourite_category,
    recommend_into,
    recommendations,
)
from mcrm.db import connect, create_schema

T = dt.datetime(2026, 11, 15, 23, 59)
DAY = dt.timedelta(days=1)


@dataclass
class Data:
    """Purchases and product views, also kept as Python rows for the reference."""

    con: duckdb.DuckDBPyConnection
    orders: list[dict[str, Any]] = field(default_factory=list)
    views: list[dict[str, Any]] = field(default_factory=list)

    def order(
        self,
        user: str,
        skus: Sequence[str | tuple[str, int]],
        ts: dt.datetime = T - 10 * DAY,
        status: str = "paid",
        currency: str = "EUR",
        price: str = "10.00",
        category: str | None = None,
        order_id: str | None = None,
    ) -> None:
        oid = order_id or f"o{len(self.orders) + 1:04d}"
        items = []
        for s in skus:
            sku, qty = (s, 1) if isinstance(s, str) else s
            items.append(
                {
                    "sku": sku,
                    "name": f"Name {sku}",
                    "category": category,
                    "quantity": qty,
                    "price": float(price),
                }
            )
        row = {
            "order_id": oid,
            "user_id": user,
            "ts": ts,
            "status": status,
            "currency": currency,
            "items": items,
        }
        self.orders.append(row)
        self.con.execute(
            "INSERT INTO purchases (order_id, user_id, ts, amount, currency, status, items) "
            "VALUES (?, ?, ?, 0, ?, ?, ?)",
            [oid, user, ts, currency, status, json.dumps(items)],
        )

    def view(
        self,
        user: str | None,
        sku: str,
        category: str | None,
        ts: dt.datetime = T - 5 * DAY,
    ) -> None:
        eid = f"e{len(self.views) + 1:05d}"
        props: dict[str, Any] = {"product_id": sku, "product_name": f"Viewed {sku}"}
        if category is not None:
            props["category"] = category
        self.views.append({"user_id": user, "sku": sku, "category": category, "ts": ts})
        self.con.execute(
            "INSERT INTO events (event_id, user_id, name, ts, properties) "
            "VALUES (?, ?, 'product_view', ?, ?)",
            [eid, user, ts, json.dumps(props)],
        )

    def audience(self, users: Sequence[str], name: str = "aud") -> str:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} (user_id VARCHAR)")
        for u in users:
            self.con.execute(f"INSERT INTO {name} VALUES (?)", [u])
        return name


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Data]:
    con = connect(str(tmp_path / "rec.duckdb"))
    create_schema(con)
    try:
        yield Data(con)
    finally:
        con.close()


def skus(products: list[Product]) -> list[str]:
    return [p.sku for p in products]


def recs(
    d: Data, users: Sequence[str], n: int = 3, as_of: dt.datetime = T
) -> dict[str, list[str]]:
    table = d.audience(users)
    return {u: skus(ps) for u, ps in recommendations(d.con, table, as_of, n).items()}


# ---------------------------------------------------------------------------------------------
# hand-worked cases


def test_ranked_by_co_purchase_then_fallback(data: Data) -> None:
    # u bought A; co-buyers of A: v1 {A,B}, v2 {A,B}, v3 {A,C}  -> B=2, C=1
    data.order("u", ["A"])
    data.order("v1", ["A", "B"])
    data.order("v2", ["A"])
    data.order("v2", ["B"])  # customer level, not basket level
    data.order("v3", ["A", "C"])
    data.order("w", ["D"])
    data.order("w2", ["D"])
    assert recs(data, ["u"], n=3)["u"] == ["B", "C", "D"]
    assert recs(data, ["u"], n=1)["u"] == ["B"]


def test_score_sums_over_the_users_products(data: Data) -> None:
    # u bought A and B. C: co-bought with A by v1, with B by v1 and v2 -> 3;
    # D: with A by v3 and v4 -> 2
    data.order("u", ["A", "B"])
    data.order("v1", ["A", "B", "C"])
    data.order("v2", ["B", "C"])
    data.order("v3", ["A", "D"])
    data.order("v4", ["A", "D"])
    assert recs(data, ["u"], n=2)["u"] == ["C", "D"]


def test_score_ties_go_to_popularity_then_sku(data: Data) -> None:
    data.order("u", ["A"])
    data.order("v1", ["A", "C"])
    data.order("v2", ["A", "B"])
    data.order("v3", ["A", "Z"])
    # all score 1; Z has one more buyer in the last 90 days, C has one more buyer all time
    data.order("x1", ["Z"])
    data.order("x2", ["C"], ts=T - 200 * DAY)
    assert recs(data, ["u"], n=3)["u"] == ["Z", "C", "B"]


def test_never_recommends_what_was_bought_or_refunded(data: Data) -> None:
    data.order("u", ["A", "B"])
    data.order("u", ["R"], status="refunded")
    for v in ("v1", "v2", "v3"):
        data.order(v, ["A", "B", "R", "C"])
    got = recs(data, ["u"], n=5)["u"]
    assert got == ["C"]


def test_refunded_and_cancelled_orders_feed_no_statistics(data: Data) -> None:
    data.order("u", ["A"])
    data.order("v1", ["A"])
    data.order("v1", ["B"], status="refunded")
    data.order("v2", ["A"])
    data.order("v2", ["C"], status="cancelled")
    data.order("v3", ["A", "D"])
    # B and C are not co-purchases and not best sellers (no paid buyer)
    assert recs(data, ["u"], n=3)["u"] == ["D"]


def test_cancelled_product_can_be_recommended(data: Data) -> None:
    data.order("u", ["A"])
    data.order("u", ["C"], status="cancelled")
    data.order("v1", ["A", "C"])
    assert recs(data, ["u"])["u"] == ["C"]


def test_fallback_to_favourite_category_then_global(data: Data) -> None:
    # u bought two Kitchen items (qty 3) and one Bath item (qty 1): favourite Kitchen
    data.order("u", [("K1", 3)], category="Kitchen")
    data.order("u", ["B1"], category="Bath")
    # no co-buyers at all; best sellers: G (global, 3 buyers), K2 (Kitchen, 1 buyer), B2 (Bath, 2)
    for v in ("g1", "g2", "g3"):
        data.order(v, ["G"], category="Garden")
    data.order("k", ["K2"], category="Kitchen")
    data.order("b1", ["B2"], category="Bath")
    data.order("b2", ["B2"], category="Bath")
    assert favourite_category(data.con, data.audience(["u"]), T) == {"u": "Kitchen"}
    assert recs(data, ["u"], n=3)["u"] == ["K2", "G", "B2"]


def test_favourite_category_ties_by_name_and_uses_views_when_unknown(data: Data) -> None:
    data.order("tie", ["K1"], category="Kitchen")
    data.order("tie", ["B1"], category="Bath")
    data.order("nocat", ["X"])  # no category anywhere: falls back to the user's views
    data.view("nocat", "Y", "Lighting")
    data.view("nocat", "Y", "Lighting")
    data.view("nocat", "Z", "Decor")
    data.view("viewer", "Z", "Decor")
    data.view("viewer", "Q", "Art")  # tie 1-1: Art first by name
    data.view("later", "Z", "Decor", ts=T + DAY)
    table = data.audience(["tie", "nocat", "viewer", "later", "ghost"])
    assert favourite_category(data.con, table, T) == {
        "tie": "Bath",
        "nocat": "Lighting",
        "viewer": "Art",
        "later": None,
        "ghost": None,
    }


def test_view_without_category_uses_the_catalogue_category(data: Data) -> None:
    data.order("v", ["Y"], category="Lighting")
    data.con.execute(
        "INSERT INTO events (event_id, user_id, name, ts, properties) VALUES "
        "('e1', 'u', 'product_view', ?, '{\"product_id\": \"Y\"}')",
        [T - DAY],
    )
    assert favourite_category(data.con, data.audience(["u"]), T) == {"u": "Lighting"}


def test_no_purchases_gets_viewed_category_best_sellers_then_global(data: Data) -> None:
    data.view("new", "L1", "Lighting")
    data.view("new", "L1", "Lighting")
    data.order("a", ["L1", "L2"])
    data.order("b", ["L2"])
    data.order("c", ["G1"])
    data.order("d", ["G1"])
    data.order("e", ["G1"])
    data.view(None, "L2", "Lighting")  # anonymous views still give L2 its category
    data.view("x", "G1", "Garden")
    got = recs(data, ["new", "ghost"], n=3)
    assert got["new"] == ["L2", "L1", "G1"]
    assert got["ghost"] == ["G1", "L2", "L1"]


def test_as_of_ignores_later_purchases_and_views(data: Data) -> None:
    data.order("u", ["A"])
    data.order("v", ["A", "B"])
    data.order("late", ["A", "C"], ts=T + DAY)
    data.order("late2", ["A", "C"], ts=T + DAY)
    data.order("u", ["B"], ts=T + DAY)  # bought after T: still recommendable at T
    data.view("u", "C", "Candles", ts=T + DAY)
    assert recs(data, ["u"], n=3)["u"] == ["B"]
    assert recs(data, ["u"], n=3, as_of=T + 2 * DAY)["u"] == ["C"]
    assert favourite_category(data.con, data.audience(["u"]), T) == {"u": None}


def test_popularity_window_is_ninety_days(data: Data) -> None:
    data.order("a", ["OLD"], ts=T - 100 * DAY)
    data.order("b", ["OLD"], ts=T - 100 * DAY)
    data.order("c", ["NEW"], ts=T - 89 * DAY)
    assert recs(data, ["x"], n=2)["x"] == ["NEW", "OLD"]


def test_catalogue_fields(data: Data) -> None:
    data.order("a", ["S"], ts=T - 9 * DAY, price="5.00", currency="CZK")
    data.order("b", ["S"], ts=T - 3 * DAY, price="7.50", currency="EUR")
    data.order("c", ["S"], ts=T - 2 * DAY, price="9.99", currency="GBP", status="refunded")
    data.order("d", ["S"], ts=T + DAY, price="1.00", currency="BGN")
    data.order("e", ["R"], status="refunded", category="Bath")
    data.view("x", "S", "Decor")
    data.view("x", "S", "Art")
    data.view("x", "S", "Decor")
    data.view("y", "R", "Kitchen")  # the items' own category wins over views
    data.view("z", "V", "Garden")  # viewed only: not in the catalogue
    cat = catalogue(data.con, T)
    assert cat == {
        "S": Product("S", "Name S", "Decor", Decimal("7.50"), "EUR"),
        "R": Product("R", "Name R", "Bath", None, None),
    }
    assert cat["S"].as_dict() == {
        "sku": "S",
        "name": "Name S",
        "category": "Decor",
        "price": Decimal("7.50"),
        "currency": "EUR",
    }


def test_catalogue_view_category_tie_by_name(data: Data) -> None:
    data.order("a", ["S"])
    data.view("x", "S", "Decor")
    data.view("y", "S", "Art")
    assert catalogue(data.con, T)["S"].category == "Art"


def test_empty_database_and_no_duplicates(data: Data) -> None:
    assert recs(data, ["u"]) == {"u": []}
    data.order("u", ["A"])
    data.order("v", ["A", "B", "C"], category="Cat")
    data.order("u", ["D"], category="Cat")
    got = recs(data, ["u", "u"], n=10)["u"]
    assert sorted(got) == ["B", "C"] and len(got) == len(set(got))


def test_recommend_into_writes_a_ranked_table(data: Data) -> None:
    data.order("u", ["A"])
    data.order("v", ["A", "B"])
    data.order("w", ["C"])
    recommend_into(data.con, data.audience(["u"]), T, "recs_out", n=2)
    rows = data.con.execute(
        "SELECT user_id, sku, tier, rank FROM recs_out ORDER BY rank"
    ).fetchall()
    assert rows == [("u", "B", 1, 1), ("u", "C", 3, 2)]


def test_n_zero_gives_empty_lists(data: Data) -> None:
    data.order("v", ["A"])
    assert recs(data, ["u", "v"], n=0) == {"u": [], "v": []}


def test_rejects_unsafe_table_name(data: Data) -> None:
    with pytest.raises(ValueError):
        recommendations(data.con, "aud; DROP TABLE users", T)


# ---------------------------------------------------------------------------------------------
# a random dataset against the reference


def reference(
    d: Data, users: list[str], as_of: dt.datetime, n: int
) -> tuple[dict[str, list[str]], dict[str, str | None]]:
    """(recommended skus, favourite category) per user, straight from the definitions."""
    lines = [
        (o["user_id"], o["order_id"], o["ts"], o["status"], it)
        for o in d.orders
        if o["ts"] <= as_of
        for it in o["items"]
    ]
    views = [v for v in d.views if v["ts"] <= as_of]
    all_skus = {it["sku"] for _, _, _, _, it in lines}

    def top(counter: Counter[str]) -> str | None:
        return min(counter, key=lambda c: (-counter[c], c)) if counter else None

    category: dict[str, str | None] = {}
    for s in all_skus:
        line_cats = Counter(it["category"] for _, _, _, _, it in lines if it["sku"] == s)
        line_cats.pop(None, None)
        view_cats = Counter(v["category"] for v in views if v["sku"] == s and v["category"])
        category[s] = top(line_cats) or top(view_cats)

    paid = [(u, ts, it) for u, _, ts, st, it in lines if st == "paid"]
    bought: dict[str, set[str]] = defaultdict(set)
    for u, _, it in paid:
        bought[u].add(it["sku"])
    excluded: dict[str, set[str]] = defaultdict(set)
    for u, _, _, st, it in lines:
        if st in ("paid", "refunded"):
            excluded[u].add(it["sku"])
    since = as_of - dt.timedelta(days=90)
    b90: dict[str, set[str]] = defaultdict(set)
    ball: dict[str, set[str]] = defaultdict(set)
    for u, ts, it in paid:
        ball[it["sku"]].add(u)
        if ts > since:
            b90[it["sku"]].add(u)

    def pop_key(s: str) -> tuple[int, int, str]:
        return (-len(b90[s]), -len(ball[s]), s)

    sellers = sorted(ball, key=pop_key)
    out: dict[str, list[str]] = {}
    favs: dict[str, str | None] = {}
    for u in users:
        qty: Counter[str] = Counter()
        for pu, _, it in paid:
            c = category[it["sku"]]
            if pu == u and c is not None:
                qty[c] += it["quantity"]
        viewed: Counter[str] = Counter()
        for v in views:
            c = v["category"] or category.get(v["sku"])
            if v["user_id"] == u and c:
                viewed[c] += 1
        fav = favs[u] = top(qty) or top(viewed)
        score: Counter[str] = Counter()
        for b in bought[u]:
            for vs in bought.values():
                if b in vs:
                    for c in vs - {b}:
                        score[c] += 1
        t1 = sorted(
            (c for c in score if c not in excluded[u]), key=lambda c: (-score[c], pop_key(c))
        )
        picked: list[str] = []
        for sku in [*t1, *(x for x in sellers if category[x] == fav), *sellers]:
            if sku not in excluded[u] and sku not in picked:
                picked.append(sku)
        out[u] = picked[:n]
    return out, favs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_data_matches_reference(data: Data, seed: int) -> None:
    rng = random.Random(seed)
    cats = ["Art", "Bath", "Candles", "Decor"]
    sku_cat = {f"S{i:02d}": cats[i % 4] for i in range(14)}
    users = [f"u{i:03d}" for i in range(60)]
    for _ in range(140):
        u = rng.choice(users[:50])
        chosen = rng.sample(sorted(sku_cat), rng.randint(1, 3))
        items = [(s, rng.randint(1, 3)) for s in chosen]
        ts = T - rng.randint(-30, 300) * DAY + dt.timedelta(minutes=rng.randint(0, 1000))
        status = rng.choices(["paid", "refunded", "cancelled"], [8, 1, 1])[0]
        cat = cats[rng.randrange(4)] if rng.random() < 0.2 else None
        data.order(u, items, ts=ts, status=status, category=cat)
    for _ in range(300):
        s = rng.choice(sorted(sku_cat))
        c = sku_cat[s] if rng.random() < 0.8 else rng.choice([None, *cats])
        ts = T - rng.randint(-20, 200) * DAY
        data.view(rng.choice([*users, None]), s, c, ts=ts)
    audience = [*users, "ghost1", "ghost2"]
    for n in (3, 6):
        expected, expected_fav = reference(data, audience, T, n)
        assert recs(data, audience, n=n) == expected
    assert favourite_category(data.con, data.audience(audience), T) == expected_fav
    # the data exercise every path: co-purchase and both fallbacks, users without a favourite
    assert expected_fav["ghost1"] is None and any(expected_fav.values())
    recommend_into(data.con, data.audience(audience), T, "recs_out", n=6)
    tiers = {r[0] for r in data.con.execute("SELECT DISTINCT tier FROM recs_out").fetchall()}
    assert tiers == {1, 2, 3}
