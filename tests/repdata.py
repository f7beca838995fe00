"""Generated app data for the cohorts, funnel and lifecycle report tests, and the calendar
arithmetic their plain-Python references use (written here, not imported from mcrm).

`generate(seed)` makes a deterministic mix: linked users and anonymous-only devices, sessions
on random days over five months around the Europe/Prague DST change, product views, carts and
orders (paid, refunded, cancelled), events on both sides of local midnight, simultaneous events,
and rows after the as-of instant (which the reports must not see). `Data.load(w)` imports it
through `mcrm.api` (via `tests.segdata.SegWS`), so the reports read what a real import gives.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

from tests.segdata import SegWS, local_date

ZONE = "Europe/Prague"
START = dt.datetime(2025, 8, 1)  # naive UTC
DAYS = 150  # to 2025-12-29
AS_OF = dt.datetime(2025, 12, 10, 15, 30)  # a Wednesday, naive UTC
PLATFORMS = ("ios", "android", "web")


@dataclass(frozen=True)
class Ev:
    """One event or order: what the references see."""

    unit: str
    ts: dt.datetime  # naive UTC
    id: str
    name: str  # event name; "purchase" for an order
    is_order: bool = False
    status: str = "paid"  # orders only
    platform: str | None = None


@dataclass
class Data:
    evs: list[Ev] = field(default_factory=list)
    users: list[str] = field(default_factory=list)

    def load(self, w: SegWS) -> None:
        w.load("users", [{"user_id": u, "first_seen": START} for u in self.users])
        events: list[dict[str, Any]] = []
        orders: list[dict[str, Any]] = []
        for e in self.evs:
            if e.is_order:
                orders.append(
                    {
                        "order_id": e.id,
                        "user_id": e.unit,
                        "timestamp": e.ts,
                        "amount": "10",
                        "currency": "EUR",
                        "status": e.status,
                    }
                )
            else:
                anon = e.unit.startswith("anon")
                events.append(
                    {
                        "event_id": e.id,
                        "user_id": None if anon else e.unit,
                        "anonymous_id": e.unit if anon else None,
                        "name": e.name,
                        "timestamp": e.ts,
                        "platform": e.platform,
                    }
                )
        if events:
            w.load("events", events)
        if orders:
            w.load("purchases", orders)


def generate(seed: int, users: int = 120, anons: int = 30) -> Data:
    rnd = random.Random(seed)
    d = Data()
    n = 0

    def nid(prefix: str) -> str:
        nonlocal n
        n += 1
        # ids in a shuffled-looking order, so the id tie-break is not the time order
        return f"{prefix}{(n * 7919) % 100003:06d}"

    units = [f"u{i:03d}" for i in range(users)] + [f"anon{i:03d}" for i in range(anons)]
    d.users = units[:users]
    for u in units:
        platform = rnd.choice(PLATFORMS)
        first = rnd.randrange(DAYS)
        active_days = sorted(
            {first} | {rnd.randrange(first, DAYS) for _ in range(rnd.choice((0, 1, 3, 8, 20)))}
        )
        for day in active_days:
            # around local midnight sometimes (22:00-23:59 UTC is the next day in Prague)
            hour = rnd.choice((0, 6, 10, 15, 21, 22, 23))
            t = START + dt.timedelta(days=day, hours=hour, minutes=rnd.randrange(60))
            plat = platform if rnd.random() < 0.85 else rnd.choice(PLATFORMS)
            d.evs.append(Ev(u, t, nid("s"), "session_start", platform=plat))
            if rnd.random() < 0.3:
                d.evs.append(Ev(u, t + dt.timedelta(minutes=1), nid("x"), "screen_view"))
            if rnd.random() < 0.7:
                tv = t + dt.timedelta(minutes=rnd.randrange(1, 90))
                d.evs.append(Ev(u, tv, nid("v"), "product_view", platform=plat))
                r = rnd.random()
                if r < 0.15:  # simultaneous view and cart
                    d.evs.append(Ev(u, tv, nid("c"), "add_to_cart", platform=plat))
                elif r < 0.5:
                    gap = rnd.choice((1, 30, 600, 3600 * 20, 86400, 86401, 3600 * 40))
                    tc = tv + dt.timedelta(seconds=gap)
                    d.evs.append(Ev(u, tc, nid("c"), "add_to_cart", platform=plat))
                    if not u.startswith("anon") and rnd.random() < 0.6:
                        status = rnd.choice(("paid", "paid", "paid", "refunded", "cancelled"))
                        to = tc + dt.timedelta(seconds=rnd.choice((0, 60, 7200, 90000)))
                        d.evs.append(Ev(u, to, nid("o"), "purchase", True, status))
            if rnd.random() < 0.08:  # a cart with no view before it (out of order)
                d.evs.append(Ev(u, t - dt.timedelta(minutes=5), nid("c"), "add_to_cart"))
    return d


# ---------------------------------------------------------------------------------------------
# calendar arithmetic for the references (independent of mcrm.reports.intervals)


def interval_start(day: dt.date, unit: str) -> dt.date:
    if unit == "day":
        return day
    if unit == "week":
        return day - dt.timedelta(days=day.weekday())
    return dt.date(day.year, day.month, 1)


def next_interval(p: dt.date, unit: str) -> dt.date:
    if unit == "day":
        return p + dt.timedelta(days=1)
    if unit == "week":
        return p + dt.timedelta(days=7)
    return dt.date(p.year + (p.month == 12), p.month % 12 + 1, 1)


def prev_interval(p: dt.date, unit: str) -> dt.date:
    if unit == "month":
        return dt.date(p.year - (p.month == 1), (p.month - 2) % 12 + 1, 1)
    return p - dt.timedelta(days=1 if unit == "day" else 7)


def interval_index(first: dt.date, p: dt.date, unit: str) -> int:
    k, q = 0, first
    while q < p:
        q = next_interval(q, unit)
        k += 1
    return k


def local(t: dt.datetime) -> dt.date:
    return local_date(t, ZONE)


def activity(d: Data, as_of: dt.datetime) -> list[tuple[str, dt.datetime]]:
    """The §0 activity (default lifecycle.activity: session_start and paid orders) up to D."""
    out = []
    for e in d.evs:
        if e.ts > as_of:
            continue
        if e.is_order and e.status == "paid":
            out.append((e.unit, e.ts))
        elif not e.is_order and e.name == "session_start":
            out.append((e.unit, e.ts))
    return out
