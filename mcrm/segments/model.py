"""`segments.yaml`: strict parsing into frozen dataclasses.

Every predicate is a mapping with exactly one *head* key (`event`, `rfm`, `all`, ...) plus the
options that head allows at the same level (`{event: add_to_cart, within: 3d}`). Each parsed
node keeps its key path and line, so compile errors, `validate` and `explain` can point at the
file. Validation collects every problem (`Problems`) so `mcrm segments validate` reports all
of them at once; any other command stops at the first.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from mcrm.errors import Where, did_you_mean
from mcrm.yamlio import Path_, Problems, YamlDoc, load_yaml

TOP_KEYS = {"places", "rfm", "lifecycle", "tiers", "segments"}
COMPARE = ("gte", "gt", "lte", "lt", "eq", "between")
ATTR_OPS = (
    "eq",
    "ne",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "exists",
    "contains",
    "starts_with",
    "matches",
)
# head -> options allowed beside it in the same mapping
HEADS: dict[str, tuple[str, ...]] = {
    "attr": ATTR_OPS,
    "age": (),
    "event": ("within", "between", "count", "where", "first_time"),
    "inactive_for": (),
    "first_seen": (),
    "purchase": (),
    "spend": (),
    "aov": (),
    "rfm": (),
    "lifecycle": (),
    "lifecycle_change": (),
    "near": ("radius_km",),
    "visited": ("within", "min_count", "radius_km"),
    "country": (),
    "city": (),
    "habit": (),
    "overdue": (),
    "birthday": (),
    "tier": (),
    "p_alive": (),
    "clv": (),
    "reachable": (),
    "segment": (),
    "bucket": (),
    "sql": (),
    "all": (),
    "any": (),
    "not": (),
}
RF10 = {
    "champions": ((5, 5), (4, 5)),
    "loyal_customers": ((3, 4), (4, 5)),
    "potential_loyalists": ((4, 5), (2, 3)),
    "new_customers": ((5, 5), (1, 1)),
    "promising": ((4, 4), (1, 1)),
    "need_attention": ((3, 3), (3, 3)),
    "about_to_sleep": ((3, 3), (1, 2)),
    "at_risk": ((1, 2), (3, 4)),
    "cant_lose_them": ((1, 2), (5, 5)),
    "hibernating": ((1, 2), (1, 2)),
}
RFM_SEGMENTS = (*RF10, "lost")
STAGES = ("new", "reactivated", "active", "at_risk", "dormant", "churned")
CHANNELS = ("push", "email", "sms", "inapp")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DURATION_RE = re.compile(r"^(\d+)\s*([hdw])$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Node:
    """One predicate: its head, its validated arguments, children for combinators."""

    head: str
    args: dict[str, Any]
    children: tuple[Node, ...] = ()
    path: Path_ = ()
    line: int | None = None


@dataclass(frozen=True)
class Place:
    name: str
    lat: float
    lon: float
    radius_km: float


@dataclass(frozen=True)
class RfmSettings:
    window_days: int = 365
    scheme: str = "rf10"


@dataclass(frozen=True)
class LifecycleSettings:
    activity: tuple[str, ...] = ("session_start", "purchase")
    new_days: int = 7
    active_days: int = 30
    dormant_days: int = 60
    churn_days: int = 90


@dataclass(frozen=True)
class Tiers:
    window_days: int
    levels: tuple[tuple[str, Decimal], ...]  # ascending thresholds


@dataclass(frozen=True)
class Segment:
    name: str
    description: str | None
    where: Node
    line: int | None


@dataclass(frozen=True)
class SegmentsFile:
    file: str
    places: dict[str, Place] = field(default_factory=dict)
    rfm: RfmSettings = field(default_factory=RfmSettings)
    lifecycle: LifecycleSettings = field(default_factory=LifecycleSettings)
    tiers: Tiers | None = None
    segments: dict[str, Segment] = field(default_factory=dict)


def duration_days(text: Any) -> float | None:
    """`30d` -> 30, `12h` -> 0.5, `2w` -> 14; None if it is not a duration."""
    if not isinstance(text, str):
        return None
    m = DURATION_RE.match(text.strip())
    if not m:
        return None
    n = int(m.group(1))
    return {"h": n / 24, "d": float(n), "w": n * 7.0}[m.group(2)]


class Parser:
    def __init__(self, doc: YamlDoc, problems: Problems) -> None:
        self.doc = doc
        self.p = problems
        self.places: dict[str, Place] = {}
        self.segment_names: set[str] = set()
        self.tier_names: set[str] = set()

    def where(self, path: Path_) -> Where:
        return self.doc.where(path)

    def err(self, path: Path_, msg: str, hint: str | None = None) -> None:
        self.p.error(msg, where=self.where(path), hint=hint)

    # -- scalars -----------------------------------------------------------------------------

    def duration(self, path: Path_, value: Any) -> float | None:
        d = duration_days(value)
        if d is None:
            hint = (
                f"write it with a unit: '{value}d'"
                if isinstance(value, int)
                else ("e.g. 7d, 12h, 2w")
            )
            self.err(path, f"expected a duration like 30d, found {value!r}", hint)
        return d

    def number(self, path: Path_, value: Any, what: str = "a number") -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.err(path, f"expected {what}, found {value!r}")
            return None
        return float(value)

    def compare(
        self, path: Path_, value: Any, allowed: tuple[str, ...] = COMPARE
    ) -> dict[str, Any]:
        """`{gte: 5}` / `{between: [1, 3]}` -> validated; one or two bounds allowed."""
        if not isinstance(value, dict) or not value:
            self.err(
                path,
                f"expected a comparison like {{gte: 3}}, found {value!r}",
                f"operators: {', '.join(allowed)}",
            )
            return {}
        out: dict[str, Any] = {}
        for op, v in value.items():
            if op not in allowed:
                self.err(
                    (*path, op),
                    f"unknown comparison '{op}'",
                    did_you_mean(str(op), allowed) or f"operators: {', '.join(allowed)}",
                )
                continue
            if op == "between":
                if (
                    not isinstance(v, list)
                    or len(v) != 2
                    or any(isinstance(x, bool) or not isinstance(x, int | float) for x in v)
                ):
                    self.err((*path, op), f"between needs [low, high], found {v!r}")
                    continue
                if v[0] > v[1]:
                    self.err((*path, op), f"between [{v[0]}, {v[1]}]: low is above high")
                    continue
            elif self.number((*path, op), v) is None:
                continue
            out[op] = v
        return out

    # -- predicates ----------------------------------------------------------------------------

    def node(self, path: Path_, value: Any) -> Node:
        line = self.doc.lines.get(path)
        if not isinstance(value, dict) or not value:
            self.err(
                path,
                f"expected a predicate mapping, found {value!r}",
                "e.g. {event: add_to_cart, within: 3d}",
            )
            return Node("invalid", {}, path=path, line=line)
        heads = [k for k in value if k in HEADS]
        if len(heads) != 1:
            if not heads:
                first = next(iter(value))
                self.err(
                    (*path, first),
                    f"unknown predicate '{first}'",
                    did_you_mean(str(first), list(HEADS)) or f"predicates: {', '.join(HEADS)}",
                )
            else:
                self.err(
                    path,
                    f"one predicate per mapping, found {', '.join(heads)}",
                    "combine them with all: [...] or any: [...]",
                )
            return Node("invalid", {}, path=path, line=line)
        head = heads[0]
        allowed = set(HEADS[head]) | {head}
        for k in value:
            if k not in allowed:
                hint = did_you_mean(str(k), allowed) or (
                    f"'{head}' takes: {', '.join(sorted(allowed - {head}))}"
                    if len(allowed) > 1
                    else f"'{head}' takes no options here"
                )
                self.err((*path, k), f"unknown key '{k}' for '{head}'", hint)
        fn = getattr(self, f"p_{head}")
        return fn(path, value, line)  # type: ignore[no-any-return]

    def _mk(
        self,
        head: str,
        args: dict[str, Any],
        path: Path_,
        line: int | None,
        children: tuple[Node, ...] = (),
    ) -> Node:
        return Node(head, args, children, path, line)

    def p_all(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        return self._combo("all", path, v, line)

    def p_any(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        return self._combo("any", path, v, line)

    def _combo(self, head: str, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        items = v[head]
        if not isinstance(items, list) or not items:
            self.err((*path, head), f"'{head}' needs a non-empty list of predicates")
            return self._mk(head, {}, path, line)
        kids = tuple(self.node((*path, head, i), item) for i, item in enumerate(items))
        return self._mk(head, {}, path, line, kids)

    def p_not(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        return self._mk("not", {}, path, line, (self.node((*path, "not"), v["not"]),))

    def p_attr(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        name = v["attr"]
        if not isinstance(name, str) or not name:
            self.err((*path, "attr"), f"attr needs a field name, found {name!r}")
            return self._mk("invalid", {}, path, line)
        ops = {k: v[k] for k in v if k in ATTR_OPS}
        if len(ops) != 1:
            self.err(
                path,
                f"attr {name} needs exactly one operator",
                f"operators: {', '.join(ATTR_OPS)}",
            )
            return self._mk("invalid", {}, path, line)
        op, val = next(iter(ops.items()))
        self._yaml_bools((*path, op), val)
        if op in ("in", "not_in") and not isinstance(val, list):
            self.err((*path, op), f"{op} needs a list, found {val!r}")
        if op == "between" and (not isinstance(val, list) or len(val) != 2):
            self.err((*path, op), f"between needs [low, high], found {val!r}")
        if op == "exists" and not isinstance(val, bool):
            self.err((*path, op), f"exists needs true or false, found {val!r}")
        if op in ("contains", "starts_with", "matches") and not isinstance(val, str):
            self.err((*path, op), f"{op} needs a string, found {val!r}", "quote it")
        if op == "matches" and isinstance(val, str):
            try:
                re.compile(val)
            except re.error as e:
                self.err((*path, op), f"invalid regular expression: {e}")
        if not name.startswith("attributes.") and name not in PROFILE_FIELDS:
            self.err(
                (*path, "attr"),
                f"unknown profile field '{name}'",
                did_you_mean(name, PROFILE_FIELDS)
                or "custom attributes are written attributes.NAME",
            )
        return self._mk("attr", {"name": name, "op": op, "value": val}, path, line)

    def _yaml_bools(self, path: Path_, value: Any) -> None:
        """`NO`, `yes`, `on`, `off` are booleans in YAML 1.1: as a value to compare with
        they are almost always meant as text (Norway, a survey answer)."""
        items = value if isinstance(value, list) else [value]
        for i, v in enumerate(items):
            p = (*path, i) if isinstance(value, list) else path
            raw = self.doc.raw_text(p)
            if isinstance(v, bool) and raw is not None and raw.lower() not in ("true", "false"):
                self.err(
                    p,
                    f"'{raw}' was read as {str(v).lower()} (YAML 1.1)",
                    f'quote it: "{raw}" (or write {str(v).lower()} for a boolean)',
                )

    def p_country(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        val = v["country"]
        vals = val if isinstance(val, list) else [val]
        if not all(isinstance(x, str) and re.fullmatch(r"[A-Za-z]{2}", x) for x in vals):
            # YAML 1.1 reads an unquoted NO (Norway) as false: show what was written
            at = [(*path, "country", i) for i in range(len(vals))]
            if not isinstance(val, list):
                at = [(*path, "country")]
            raw = [self.doc.raw_text(q) for x, q in zip(vals, at, strict=True) if x is False]
            self.err(
                (*path, "country"),
                f"country needs ISO codes like CZ, found {val!r}",
                f'quote it: "{raw[0]}" (YAML 1.1 reads it as false)' if raw else None,
            )
        op = "in" if isinstance(val, list) else "eq"
        return self._mk("attr", {"name": "country", "op": op, "value": val}, path, line)

    def p_city(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        val = v["city"]
        op = "in" if isinstance(val, list) else "eq"
        return self._mk("attr", {"name": "city", "op": op, "value": val}, path, line)

    def p_age(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        val = v["age"]
        if (
            not isinstance(val, list)
            or len(val) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in val)
            or val[0] > val[1]
            or val[0] < 0
        ):
            self.err((*path, "age"), f"age needs [min, max] whole years, found {val!r}")
            return self._mk("invalid", {}, path, line)
        return self._mk("age", {"min": val[0], "max": val[1]}, path, line)

    def _window(self, path: Path_, spec: dict[str, Any], args: dict[str, Any]) -> None:
        if "within" in spec and "between" in spec:
            self.err(path, "use within or between, not both")
        if "within" in spec:
            args["within"] = self.duration((*path, "within"), spec["within"])
        if "between" in spec:
            b = spec["between"]
            if not isinstance(b, list) or len(b) != 2:
                self.err((*path, "between"), f"between needs [from, to] dates, found {b!r}")
            else:
                args["between"] = [
                    self._instant((*path, "between", i), x) for i, x in enumerate(b)
                ]

    def _instant(self, path: Path_, value: Any) -> dt.datetime | None:
        if isinstance(value, dt.datetime):
            return (
                value.replace(tzinfo=None)
                if value.tzinfo is None
                else value.astimezone(dt.UTC).replace(tzinfo=None)
            )
        if isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day)
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value)
            except ValueError:
                pass
        self.err(path, f"expected a date like 2026-11-01, found {value!r}")
        return None

    def p_event(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        name = v["event"]
        if not isinstance(name, str) or not name:
            self.err((*path, "event"), f"event needs an event name, found {name!r}")
        args: dict[str, Any] = {"name": name}
        self._window(path, v, args)
        if "count" in v:
            args["count"] = self.compare((*path, "count"), v["count"])
        if "first_time" in v:
            if not isinstance(v["first_time"], bool):
                self.err((*path, "first_time"), "first_time needs true or false")
            args["first_time"] = bool(v["first_time"])
            if args["first_time"] and "within" not in args and "between" not in args:
                self.err((*path, "first_time"), "first_time needs a window (within or between)")
        if "where" in v:
            w = v["where"]
            if not isinstance(w, dict) or not w:
                self.err((*path, "where"), "where needs {property: value} pairs")
            else:
                props = {}
                for prop, cond in w.items():
                    if isinstance(cond, dict):
                        if len(cond) != 1 or next(iter(cond)) not in ATTR_OPS:
                            self.err(
                                (*path, "where", prop),
                                f"property {prop}: expected {{op: value}}",
                                f"operators: {', '.join(ATTR_OPS)}",
                            )
                            continue
                        props[prop] = next(iter(cond.items()))
                    else:
                        props[prop] = ("eq", cond)
                args["where"] = props
        return self._mk("event", args, path, line)

    def _mapping(
        self, path: Path_, value: Any, head: str, allowed: tuple[str, ...]
    ) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.err(
                path, f"'{head}' needs a mapping, found {value!r}", f"keys: {', '.join(allowed)}"
            )
            return {}
        for k in value:
            if k not in allowed:
                self.err(
                    (*path, k),
                    f"unknown key '{k}' for '{head}'",
                    did_you_mean(str(k), allowed) or f"keys: {', '.join(allowed)}",
                )
        return value

    def p_inactive_for(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        return self._mk(
            "inactive_for",
            {"days": self.duration((*path, "inactive_for"), v["inactive_for"])},
            path,
            line,
        )

    def p_first_seen(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        spec = self._mapping(
            (*path, "first_seen"), v["first_seen"], "first_seen", ("within", "between")
        )
        args: dict[str, Any] = {}
        self._window((*path, "first_seen"), spec, args)
        if not args:
            self.err((*path, "first_seen"), "first_seen needs within or between")
        return self._mk("first_seen", args, path, line)

    def p_purchase(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        p = (*path, "purchase")
        spec = self._mapping(
            p,
            v["purchase"],
            "purchase",
            ("within", "between", "count", "category", "sku", "amount"),
        )
        args: dict[str, Any] = {}
        self._window(p, spec, args)
        if "count" in spec:
            args["count"] = self.compare((*p, "count"), spec["count"])
        if "amount" in spec:
            args["amount"] = self.compare((*p, "amount"), spec["amount"])
        for k in ("category", "sku"):
            if k in spec:
                val = spec[k]
                vals = val if isinstance(val, list) else [val]
                if not all(isinstance(x, str | int) for x in vals):
                    self.err((*p, k), f"{k} needs a name or a list of names")
                args[k] = [str(x) for x in vals]
        return self._mk("purchase", args, path, line)

    def p_spend(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        return self._money("spend", path, v, line)

    def p_aov(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        return self._money("aov", path, v, line)

    def _money(self, head: str, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        p = (*path, head)
        spec = self._mapping(p, v[head], head, ("within", "between", *COMPARE))
        args: dict[str, Any] = {}
        # `between` is both a window ([from, to] dates) and a comparison ([low, high] amounts)
        # here: numbers make it the comparison, anything else the window
        b = spec.get("between")
        b_is_cmp = isinstance(b, list) and all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in b
        )
        self._window(p, {k: x for k, x in spec.items() if k != "between" or not b_is_cmp}, args)
        cmp = {k: spec[k] for k in spec if k in COMPARE and (k != "between" or b_is_cmp)}
        if not cmp:
            self.err(p, f"{head} needs a comparison (gte, lte, between, ...)")
        args["compare"] = self.compare(p, cmp) if cmp else {}
        return self._mk(head, args, path, line)

    def p_rfm(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        val = v["rfm"]
        p = (*path, "rfm")
        if isinstance(val, dict):
            ranges = {}
            for k, r in val.items():
                if k not in ("r", "f", "m"):
                    self.err((*p, k), f"unknown key '{k}' for rfm", "keys: r, f, m")
                    continue
                if isinstance(r, int) and not isinstance(r, bool):
                    r = [r, r]
                if (
                    not isinstance(r, list)
                    or len(r) != 2
                    or not all(isinstance(x, int) and 1 <= x <= 5 for x in r)
                    or r[0] > r[1]
                ):
                    self.err((*p, k), f"rfm {k} needs a score or [low, high] in 1..5, found {r!r}")
                    continue
                ranges[k] = r
            return self._mk("rfm", {"ranges": ranges}, path, line)
        names = val if isinstance(val, list) else [val]
        for i, n in enumerate(names):
            if n not in RFM_SEGMENTS:
                self.err(
                    (*p, i) if isinstance(val, list) else p,
                    f"unknown RFM segment '{n}'",
                    did_you_mean(str(n), RFM_SEGMENTS) or f"segments: {', '.join(RFM_SEGMENTS)}",
                )
        return self._mk("rfm", {"segments": [str(n) for n in names]}, path, line)

    def p_lifecycle(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        val = v["lifecycle"]
        names = val if isinstance(val, list) else [val]
        self._stages((*path, "lifecycle"), names)
        return self._mk("lifecycle", {"stages": [str(n) for n in names]}, path, line)

    def _stages(self, path: Path_, names: list[Any]) -> None:
        for n in names:
            if n not in STAGES:
                self.err(
                    path,
                    f"unknown lifecycle stage '{n}'",
                    did_you_mean(str(n), STAGES) or f"stages: {', '.join(STAGES)}",
                )

    def p_lifecycle_change(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        p = (*path, "lifecycle_change")
        spec = self._mapping(
            p, v["lifecycle_change"], "lifecycle_change", ("from", "to", "within")
        )
        args: dict[str, Any] = {}
        for k in ("from", "to"):
            val = spec.get(k)
            names = val if isinstance(val, list) else ([val] if val is not None else [])
            if not names:
                self.err(p, f"lifecycle_change needs '{k}'")
            self._stages((*p, k), names)
            args[k] = [str(n) for n in names]
        args["within"] = self.duration((*p, "within"), spec.get("within", "7d"))
        return self._mk("lifecycle_change", args, path, line)

    def _place(self, path: Path_, name: Any) -> str | None:
        if not isinstance(name, str) or name not in self.places:
            self.err(
                path,
                f"unknown place '{name}'",
                did_you_mean(str(name), list(self.places))
                or (
                    "define it under places:"
                    if not self.places
                    else f"places: {', '.join(self.places)}"
                ),
            )
            return None
        return name

    def p_near(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        place = self._place((*path, "near"), v["near"])
        args: dict[str, Any] = {"place": place}
        if "radius_km" in v:
            r = self.number((*path, "radius_km"), v["radius_km"], "a radius in km")
            if r is not None and r <= 0:
                self.err((*path, "radius_km"), "radius_km must be positive")
            args["radius_km"] = r
        return self._mk("near", args, path, line)

    def p_visited(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        place = self._place((*path, "visited"), v["visited"])
        args: dict[str, Any] = {"place": place}
        self._window(path, v, args)
        mc = v.get("min_count", 1)
        if not isinstance(mc, int) or isinstance(mc, bool) or mc < 1:
            self.err((*path, "min_count"), f"min_count needs a whole number >= 1, found {mc!r}")
            mc = 1
        args["min_count"] = mc
        if "radius_km" in v:
            args["radius_km"] = self.number((*path, "radius_km"), v["radius_km"])
        return self._mk("visited", args, path, line)

    def p_habit(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        p = (*path, "habit")
        spec = self._mapping(
            p,
            v["habit"],
            "habit",
            ("event", "weekday", "hour", "min_share", "min_count", "within"),
        )
        args: dict[str, Any] = {"event": spec.get("event", "purchase")}
        wd = spec.get("weekday")
        if wd is not None:
            days = wd if isinstance(wd, list) else [wd]
            bad = [d for d in days if str(d).lower()[:3] not in WEEKDAYS]
            if bad:
                self.err((*p, "weekday"), f"unknown weekday {bad[0]!r}", "mon, tue, ... sun")
            args["weekday"] = sorted(
                {
                    WEEKDAYS.index(str(d).lower()[:3]) + 1
                    for d in days
                    if str(d).lower()[:3] in WEEKDAYS
                }
            )
        hr = spec.get("hour")
        if hr is not None:
            if (
                not isinstance(hr, list)
                or len(hr) != 2
                or not all(isinstance(x, int) and 0 <= x <= 24 for x in hr)
                or hr[0] >= hr[1]
            ):
                self.err(
                    (*p, "hour"),
                    f"hour needs [from, to) hours 0..24, found {hr!r}",
                    "e.g. [12, 15] means 12:00 to 14:59",
                )
            else:
                args["hour"] = hr
        if "weekday" not in args and "hour" not in args:
            self.err(p, "habit needs weekday, hour or both")
        share = spec.get("min_share", 0.5)
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
            self.err((*p, "min_share"), f"min_share needs a fraction in (0, 1], found {share!r}")
            share = 0.5
        args["min_share"] = float(share)
        mc = spec.get("min_count", 3)
        if not isinstance(mc, int) or isinstance(mc, bool) or mc < 1:
            self.err((*p, "min_count"), f"min_count needs a whole number >= 1, found {mc!r}")
            mc = 3
        args["min_count"] = mc
        if "within" in spec:
            args["within"] = self.duration((*p, "within"), spec["within"])
        return self._mk("habit", args, path, line)

    def p_overdue(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        p = (*path, "overdue")
        spec = self._mapping(p, v["overdue"], "overdue", ("factor", "min_purchases"))
        factor = spec.get("factor", 1.5)
        if isinstance(factor, bool) or not isinstance(factor, int | float) or factor <= 0:
            self.err((*p, "factor"), f"factor needs a positive number, found {factor!r}")
            factor = 1.5
        mp = spec.get("min_purchases", 3)
        if not isinstance(mp, int) or isinstance(mp, bool) or mp < 2:
            self.err(
                (*p, "min_purchases"),
                f"min_purchases needs a whole number >= 2, found {mp!r}",
                "a gap needs two purchase days",
            )
            mp = 3
        return self._mk("overdue", {"factor": float(factor), "min_purchases": mp}, path, line)

    def p_birthday(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        p = (*path, "birthday")
        spec = self._mapping(p, v["birthday"], "birthday", ("within",))
        days = self.duration((*p, "within"), spec.get("within", "0d"))
        return self._mk("birthday", {"days": int(days or 0)}, path, line)

    def p_tier(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        val = v["tier"]
        names = val if isinstance(val, list) else [val]
        for n in names:
            if n not in self.tier_names:
                self.err(
                    (*path, "tier"),
                    f"unknown tier '{n}'",
                    did_you_mean(str(n), self.tier_names)
                    or (
                        "define tiers: in segments.yaml"
                        if not self.tier_names
                        else f"tiers: {', '.join(sorted(self.tier_names))}"
                    ),
                )
        return self._mk("tier", {"tiers": [str(n) for n in names]}, path, line)

    def p_p_alive(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        """`p_alive: {lt: 0.3}` — the latest CLV prediction's P(alive), a probability."""
        p = (*path, "p_alive")
        cmp = self.compare(p, v["p_alive"])
        bounds = [x for op, val in cmp.items() for x in (val if op == "between" else [val])]
        if any(not 0 <= x <= 1 for x in bounds):
            self.err(
                p, "p_alive is a probability: compare it with numbers in 0..1", "e.g. {lt: 0.3}"
            )
        return self._mk("p_alive", {"compare": cmp}, path, line)

    def p_clv(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        """`clv: {gte: 500}` — the latest CLV prediction, in the base currency."""
        cmp = self.compare((*path, "clv"), v["clv"])
        return self._mk("clv", {"compare": cmp}, path, line)

    def p_reachable(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        ch = v["reachable"]
        if ch not in CHANNELS:
            self.err(
                (*path, "reachable"),
                f"unknown channel '{ch}'",
                did_you_mean(str(ch), CHANNELS) or f"channels: {', '.join(CHANNELS)}",
            )
        return self._mk("reachable", {"channel": str(ch)}, path, line)

    def p_segment(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        name = v["segment"]
        if name not in self.segment_names:
            self.err(
                (*path, "segment"),
                f"unknown segment '{name}'",
                did_you_mean(str(name), self.segment_names),
            )
        return self._mk("segment", {"name": str(name)}, path, line)

    def p_bucket(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        p = (*path, "bucket")
        spec = self._mapping(p, v["bucket"], "bucket", ("percent", "salt"))
        pct = spec.get("percent")
        if isinstance(pct, bool) or not isinstance(pct, int | float) or not 0 <= pct <= 100:
            self.err((*p, "percent"), f"percent needs a number 0..100, found {pct!r}")
            pct = 0
        salt = spec.get("salt", "")
        if not isinstance(salt, str | int):
            self.err((*p, "salt"), "salt needs a string")
            salt = ""
        return self._mk("bucket", {"percent": float(pct), "salt": str(salt)}, path, line)

    def p_sql(self, path: Path_, v: dict[str, Any], line: int | None) -> Node:
        sql = v["sql"]
        if not isinstance(sql, str) or not sql.strip():
            self.err((*path, "sql"), "sql needs a boolean SQL expression over users u")
            sql = "FALSE"
        if ";" in sql:
            self.err((*path, "sql"), "sql must be one expression (no ';')")
        return self._mk("sql", {"sql": sql}, path, line)


PROFILE_FIELDS = (
    "user_id email phone first_name last_name gender birth_date locale country region city "
    "home_lat home_lon timezone os os_version device_model app_version acq_source acq_medium "
    "acq_campaign install_time first_seen last_seen"
).split()


def parse(doc: YamlDoc, problems: Problems) -> SegmentsFile:
    data = doc.data
    if data is None:
        return SegmentsFile(doc.file)
    if not isinstance(data, dict):
        problems.error("segments.yaml must be a mapping", where=doc.where(()))
        return SegmentsFile(doc.file)
    problems.unknown_keys(doc, (), data, TOP_KEYS)
    ps = Parser(doc, problems)
    places = _places(ps, data.get("places"))
    ps.places = places
    rfm = _rfm(ps, data.get("rfm"))
    lifecycle = _lifecycle(ps, data.get("lifecycle"))
    tiers = _tiers(ps, data.get("tiers"))
    ps.tier_names = {n for n, _ in tiers.levels} if tiers else set()
    segs_raw = data.get("segments") or {}
    segments: dict[str, Segment] = {}
    if not isinstance(segs_raw, dict):
        ps.err(("segments",), "segments must be a mapping of name: {description, where}")
        segs_raw = {}
    ps.segment_names = set(segs_raw)
    for name, spec in segs_raw.items():
        p: Path_ = ("segments", name)
        if not NAME_RE.match(str(name)):
            ps.err(p, f"segment name '{name}' must be lower_snake_case (a-z, 0-9, _)")
        if not isinstance(spec, dict):
            ps.err(p, f"segment {name} needs a mapping with where:")
            continue
        problems.unknown_keys(doc, p, spec, {"description", "where"})
        desc = spec.get("description")
        if desc is not None and not isinstance(desc, str):
            ps.err((*p, "description"), "description must be text")
        if "where" not in spec:
            ps.err(p, f"segment {name} has no where:")
            continue
        node = ps.node((*p, "where"), spec["where"])
        segments[name] = Segment(str(name), desc, node, doc.lines.get(p))
    _cycles(ps, segments)
    return SegmentsFile(doc.file, places, rfm, lifecycle, tiers, segments)


def _places(ps: Parser, raw: Any) -> dict[str, Place]:
    out: dict[str, Place] = {}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        ps.err(("places",), "places must be a mapping of name: {lat, lon, radius_km}")
        return out
    for name, spec in raw.items():
        p: Path_ = ("places", name)
        if not isinstance(spec, dict):
            ps.err(p, f"place {name} needs {{lat, lon, radius_km}}")
            continue
        ps.p.unknown_keys(ps.doc, p, spec, {"lat", "lon", "radius_km"})
        lat = ps.number((*p, "lat"), spec.get("lat"), "a latitude")
        lon = ps.number((*p, "lon"), spec.get("lon"), "a longitude")
        r = ps.number((*p, "radius_km"), spec.get("radius_km", 1), "a radius in km")
        if lat is not None and not -90 <= lat <= 90:
            ps.err((*p, "lat"), f"latitude {lat} is outside -90..90")
            continue
        if lon is not None and not -180 <= lon <= 180:
            ps.err((*p, "lon"), f"longitude {lon} is outside -180..180")
            continue
        if r is not None and r <= 0:
            ps.err((*p, "radius_km"), "radius_km must be positive")
            continue
        if lat is not None and lon is not None and r is not None:
            out[str(name)] = Place(str(name), lat, lon, r)
    return out


def _rfm(ps: Parser, raw: Any) -> RfmSettings:
    if raw is None:
        return RfmSettings()
    spec = ps._mapping(("rfm",), raw, "rfm", ("window", "scheme"))
    window = ps.duration(("rfm", "window"), spec.get("window", "365d")) or 365
    scheme = spec.get("scheme", "rf10")
    if scheme not in ("rf10", "rfm11"):
        ps.err(("rfm", "scheme"), f"unknown RFM scheme '{scheme}'", "rf10 or rfm11")
        scheme = "rf10"
    return RfmSettings(int(window), str(scheme))


def _lifecycle(ps: Parser, raw: Any) -> LifecycleSettings:
    if raw is None:
        return LifecycleSettings()
    keys = ("activity", "new_days", "active_days", "dormant_days", "churn_days")
    spec = ps._mapping(("lifecycle",), raw, "lifecycle", keys)
    d = LifecycleSettings()
    act = spec.get("activity", list(d.activity))
    if not isinstance(act, list) or not act or not all(isinstance(a, str) for a in act):
        ps.err(("lifecycle", "activity"), "activity needs a list of event names")
        act = list(d.activity)
    vals = {}
    for k in keys[1:]:
        v = spec.get(k, getattr(d, k))
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            ps.err(("lifecycle", k), f"{k} needs a whole number of days > 0, found {v!r}")
            v = getattr(d, k)
        vals[k] = v
    if not vals["active_days"] < vals["dormant_days"] < vals["churn_days"]:
        ps.err(
            ("lifecycle",),
            "lifecycle needs active_days < dormant_days < churn_days, found "
            f"{vals['active_days']}, {vals['dormant_days']}, {vals['churn_days']}",
        )
    return LifecycleSettings(tuple(act), **vals)


def _tiers(ps: Parser, raw: Any) -> Tiers | None:
    if raw is None:
        return None
    spec = ps._mapping(("tiers",), raw, "tiers", ("window", "levels"))
    window = ps.duration(("tiers", "window"), spec.get("window", "365d")) or 365
    levels = spec.get("levels")
    if not isinstance(levels, dict) or not levels:
        ps.err(("tiers", "levels"), "tiers needs levels: {name: minimum spend, ...}")
        return None
    out: list[tuple[str, Decimal]] = []
    for name, v in levels.items():
        try:
            if isinstance(v, bool):
                raise InvalidOperation
            out.append((str(name), Decimal(str(v))))
        except InvalidOperation:
            ps.err(("tiers", "levels", name), f"tier {name} needs a minimum spend, found {v!r}")
    thresholds = [t for _, t in out]
    if thresholds != sorted(thresholds) or len(set(thresholds)) != len(thresholds):
        ps.err(("tiers", "levels"), "tier levels must be in increasing order of spend")
    return Tiers(int(window), tuple(out))


def _cycles(ps: Parser, segments: dict[str, Segment]) -> None:
    def refs(node: Node) -> list[str]:
        out = [node.args["name"]] if node.head == "segment" else []
        for c in node.children:
            out += refs(c)
        return out

    graph = {n: refs(s.where) for n, s in segments.items()}
    state: dict[str, int] = {}
    reported: set[frozenset[str]] = set()

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        for m in graph.get(n, []):
            if state.get(m) == 1:
                cyc = [*stack[stack.index(m) :], m] if m in stack else [n, m]
                key = frozenset(cyc)
                if key not in reported:
                    reported.add(key)
                    ps.err(
                        ("segments", cyc[0], "where"),
                        f"segment cycle: {' -> '.join(cyc)}",
                        "a segment cannot include itself, directly or through others",
                    )
            elif state.get(m) is None and m in graph:
                visit(m, [*stack, m])
        state[n] = 2

    for n in graph:
        if n not in state:
            visit(n, [n])


def load_segments(root: Path, problems: Problems | None = None) -> SegmentsFile:
    own = problems is None
    probs = problems if problems is not None else Problems()
    doc = load_yaml(root / "segments.yaml", "segments.yaml")
    result = parse(doc, probs)
    if own:
        probs.raise_first()
    return result
