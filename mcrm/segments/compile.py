"""Compiling a segment's predicate tree to one portable SQL boolean over `users u`.

Rules (SPEC §8, style §12): instants are literals computed here (never `now()`), windows are
closed ranges of timestamps (`0 <= D - ts <= N days`, analytics reference §0), calendar days are
dates in the workspace zone via `AT TIME ZONE`, every window has a total order, money is
DECIMAL, no macros. RFM, lifecycle and tiers are referenced as relations `rfm`, `lifecycle`
and `tiers`; the caller provides them (TEMP tables for `compute`, CTEs for `segments sql`).

NULL safety: every leaf is a boolean that is never NULL (`coalesce(..., FALSE)` or an
`IN (subquery)` over non-NULL ids), so `not:` means what a marketer expects: "not in Prague"
includes users whose city is unknown.

Counting conditions that hold for zero (`count: {lte: 2}`, `spend: {lt: 100}`) include users
with no occurrences at all: they compile to `NOT IN (users whose count fails)`.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from mcrm.segments.model import RF10, Node, Place, SegmentsFile

EARTH_R = 6371.0088


@dataclass
class Ctx:
    seg: SegmentsFile
    as_of: dt.datetime  # naive UTC
    zone: str
    needs: set[str] = field(default_factory=set)

    @property
    def d(self) -> str:
        return ts_lit(self.as_of)

    @property
    def d_local(self) -> dt.date:
        return self.as_of.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(self.zone)).date()

    def ago(self, days: float) -> str:
        return ts_lit(self.as_of - dt.timedelta(days=days))


def ts_lit(v: dt.datetime) -> str:
    return f"TIMESTAMP '{v.isoformat(sep=' ', timespec='microseconds')}'"


def date_lit(v: dt.date) -> str:
    return f"DATE '{v.isoformat()}'"


def lit(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int | float | Decimal):
        return repr(float(v)) if isinstance(v, float) else str(v)
    if isinstance(v, dt.datetime):
        return ts_lit(v)
    if isinstance(v, dt.date):
        return date_lit(v)
    return "'" + str(v).replace("'", "''") + "'"


def local(expr: str, zone_sql: str) -> str:
    """A naive-UTC timestamp as wall time in a zone (SQL)."""
    return f"(({expr}) AT TIME ZONE 'UTC') AT TIME ZONE {zone_sql}"


def local_day(expr: str, zone: str, as_of: dt.datetime | None = None) -> str:
    """The calendar date, in `zone`, of a naive-UTC timestamp (SQL).

    With `as_of`, the zone's UTC offsets over the 20 years before it are worked out here, so the
    SQL is plain arithmetic (`CAST(ts + INTERVAL 'n' SECOND AS DATE)`, newest period first):
    a time-zone conversion per row costs more than the rest of an RFM aggregation. Older rows
    fall back to `AT TIME ZONE`. Exact either way."""
    exact = f"CAST({local(expr, lit(zone))} AS DATE)"
    if as_of is None:
        return exact
    periods = _offset_periods(zone, as_of.replace(minute=0, second=0, microsecond=0))
    if len(periods) == 1 and periods[0][0] is None:
        return f"CAST({expr} + INTERVAL '{periods[0][1]}' SECOND AS DATE)"
    branches = " ".join(
        f"WHEN {expr} >= {ts_lit(start)} THEN CAST({expr} + INTERVAL '{off}' SECOND AS DATE)"
        for start, off in periods
        if start is not None
    )
    return f"CASE {branches} ELSE {exact} END"


@functools.lru_cache(maxsize=64)
def _offset_periods(zone: str, as_of: dt.datetime) -> tuple[tuple[dt.datetime | None, int], ...]:
    """(UTC start, offset seconds) of each constant-offset period from 20 years before `as_of`
    to two days after it, newest first; a start of None means the offset never changed."""
    z = ZoneInfo(zone)

    def off(t: dt.datetime) -> int:
        u = t.replace(tzinfo=dt.UTC).astimezone(z).utcoffset()
        return int(u.total_seconds()) if u is not None else 0

    lo = as_of - dt.timedelta(days=366 * 20)
    hi = as_of + dt.timedelta(days=2)
    starts: list[tuple[dt.datetime, int]] = []
    t, cur = lo, off(lo)
    while t < hi:
        nxt = t + dt.timedelta(days=1)
        o = off(nxt)
        if o != cur:
            a, b = t, nxt  # the change lies in (a, b]: find the first second with the new offset
            while (b - a) > dt.timedelta(seconds=1):
                mid = a + (b - a) / 2
                mid = mid.replace(microsecond=0)
                if off(mid) == cur:
                    a = mid
                else:
                    b = mid
            starts.append((b, o))
            cur = o
        t = nxt
    if not starts:
        return ((None, cur),)
    first = (lo, off(lo))
    return tuple(reversed([first, *starts]))


def cmp_sql(expr: str, cmp: dict[str, Any]) -> str:
    ops = {"gte": ">=", "gt": ">", "lte": "<=", "lt": "<", "eq": "="}
    parts = []
    for op, v in cmp.items():
        if op == "between":
            parts.append(f"{expr} BETWEEN {lit(v[0])} AND {lit(v[1])}")
        else:
            parts.append(f"{expr} {ops[op]} {lit(v)}")
    return " AND ".join(parts) if parts else "TRUE"


def holds_for_zero(cmp: dict[str, Any]) -> bool:
    """Whether a count / sum comparison is true for 0 (no occurrences)."""
    for op, v in cmp.items():
        ok = {
            "gte": 0 >= v if op == "gte" else True,
            "gt": 0 > v if op == "gt" else True,
            "lte": 0 <= v if op == "lte" else True,
            "lt": 0 < v if op == "lt" else True,
            "eq": v == 0 if op == "eq" else True,
            "between": v[0] <= 0 <= v[1] if op == "between" else True,
        }[op]
        if not ok:
            return False
    return True


def having(sub: str, agg: str, cmp: dict[str, Any]) -> str:
    """`u.user_id IN/NOT IN (sub GROUP BY ... HAVING ...)` honouring zero semantics."""
    if holds_for_zero(cmp):
        return f"u.user_id NOT IN ({sub} HAVING NOT ({cmp_sql(agg, cmp)}))"
    return f"u.user_id IN ({sub} HAVING {cmp_sql(agg, cmp)})"


def window(ctx: Ctx, col: str, args: dict[str, Any]) -> str:
    """`col` within the predicate's window and not after the as-of instant."""
    parts = [f"{col} <= {ctx.d}"]
    if args.get("within") is not None:
        parts.append(f"{col} >= {ctx.ago(args['within'])}")
    if args.get("between"):
        lo, hi = args["between"]
        z = ZoneInfo(ctx.zone)
        if lo is not None:
            parts.append(f"{col} >= {ts_lit(_to_utc(lo, z))}")
        if hi is not None:
            end = hi + dt.timedelta(days=1) if hi.time() == dt.time() else hi
            parts.append(f"{col} < {ts_lit(_to_utc(end, z))}")
    return " AND ".join(parts)


def _to_utc(v: dt.datetime, z: ZoneInfo) -> dt.datetime:
    return v.replace(tzinfo=z).astimezone(dt.UTC).replace(tzinfo=None)


# ---------------------------------------------------------------------------------------------


DATE_FIELDS = {"birth_date"}
TS_FIELDS = {"install_time", "first_seen", "last_seen"}
NUM_FIELDS = {"home_lat", "home_lon"}


def value_sql(col: str, value: Any, is_text: bool) -> tuple[str, str]:
    """(column expression, literal) adjusted for the value's type."""
    if isinstance(value, bool):
        return f"TRY_CAST({col} AS BOOLEAN)", lit(value)
    if isinstance(value, int | float):
        return f"TRY_CAST({col} AS DOUBLE)", lit(float(value))
    if isinstance(value, dt.datetime):
        return f"TRY_CAST({col} AS TIMESTAMP)", lit(value)
    if isinstance(value, dt.date):
        return f"TRY_CAST({col} AS DATE)", lit(value)
    if is_text:
        return f"lower(CAST({col} AS VARCHAR))", f"lower({lit(str(value))})"
    return col, lit(value)


def op_sql(col: str, op: str, value: Any, is_text: bool = True) -> str:
    """One attribute / property comparison, never NULL."""
    if op == "exists":
        return f"({col} IS NOT NULL)" if value else f"({col} IS NULL)"
    if op in ("in", "not_in"):
        vals = value if isinstance(value, list) else [value]
        c, _ = value_sql(col, vals[0] if vals else "", is_text)
        items = ", ".join(value_sql(col, v, is_text)[1] for v in vals) or "NULL"
        if op == "in":
            return f"coalesce({c} IN ({items}), FALSE)"
        return f"coalesce({c} NOT IN ({items}), TRUE)"
    if op == "between":
        c, lo = value_sql(col, value[0], is_text)
        _, hi = value_sql(col, value[1], is_text)
        return f"coalesce({c} BETWEEN {lo} AND {hi}, FALSE)"
    if op in ("contains", "starts_with", "matches"):
        text = f"CAST({col} AS VARCHAR)"
        if op == "contains":
            return f"coalesce(strpos(lower({text}), lower({lit(value)})) > 0, FALSE)"
        if op == "starts_with":
            return f"coalesce(starts_with(lower({text}), lower({lit(value)})), FALSE)"
        return f"coalesce(regexp_matches({text}, {lit(value)}), FALSE)"
    c, v = value_sql(col, value, is_text)
    if op == "ne":
        return f"coalesce({c} <> {v}, TRUE)"
    sym = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
    return f"coalesce({c} {sym} {v}, FALSE)"


def attr_col(name: str) -> tuple[str, bool]:
    if name.startswith("attributes."):
        path = name.split(".", 1)[1].replace("'", "''")
        return f"json_extract_string(u.attributes, '$.{path}')", True
    text = name not in DATE_FIELDS | TS_FIELDS | NUM_FIELDS
    return f"u.{name}", text


def sub_years(d: dt.date, years: int) -> dt.date:
    try:
        return d.replace(year=d.year - years)
    except ValueError:  # 29 February
        return d.replace(year=d.year - years, day=28)


def activity_sql(ctx: Ctx, where: str = "TRUE") -> str:
    """(user_id, ts) of activities: lifecycle.activity events; `purchase` = paid orders."""
    names = [a for a in ctx.seg.lifecycle.activity if a != "purchase"]
    parts = []
    if names:
        parts.append(
            "SELECT e.user_id, e.ts FROM events e WHERE e.user_id IS NOT NULL "
            f"AND e.name IN ({', '.join(lit(n) for n in names)}) AND e.ts <= {ctx.d} "
            f"AND {where.replace('{ts}', 'e.ts')}"
        )
    if "purchase" in ctx.seg.lifecycle.activity:
        parts.append(
            "SELECT p.user_id, p.ts FROM purchases p WHERE p.user_id IS NOT NULL "
            f"AND p.status = 'paid' AND p.ts <= {ctx.d} AND {where.replace('{ts}', 'p.ts')}"
        )
    return " UNION ALL ".join(parts) or "SELECT NULL AS user_id, NULL AS ts WHERE FALSE"


def haversine(lat: str, lon: str, p: Place) -> str:
    return (
        f"2 * {EARTH_R} * asin(least(1, sqrt(power(sin(radians({lat} - {p.lat}) / 2), 2) "
        f"+ cos(radians({p.lat})) * cos(radians({lat})) "
        f"* power(sin(radians({lon} - {p.lon}) / 2), 2))))"
    )


def bbox(lat: str, lon: str, p: Place, r: float) -> str:
    """Bounding-box prefilter (analytics reference §16): exact Δλ, poles, antimeridian.

    The box is padded by 1e-9 degrees (0.1 mm): a point exactly on the radius lies exactly on
    the box's edge, and printing the bound as a decimal literal can move it by one ulp. The
    haversine test after it decides membership."""
    pad = 1e-9
    delta = r / EARTH_R
    dlat = math.degrees(delta) + pad
    lo_lat, hi_lat = p.lat - dlat, p.lat + dlat
    cond = f"{lat} BETWEEN {lo_lat!r} AND {hi_lat!r}"
    if hi_lat >= 90 or lo_lat <= -90:
        return cond  # a pole inside: all longitudes
    dlon = math.degrees(math.asin(min(1.0, math.sin(delta) / math.cos(math.radians(p.lat))))) + pad
    lo, hi = p.lon - dlon, p.lon + dlon
    if lo < -180:
        return f"{cond} AND ({lon} >= {lo + 360!r} OR {lon} <= {hi!r})"
    if hi > 180:
        return f"{cond} AND ({lon} >= {lo!r} OR {lon} <= {hi - 360!r})"
    return f"{cond} AND {lon} BETWEEN {lo!r} AND {hi!r}"


def within_place(lat: str, lon: str, p: Place, r: float) -> str:
    return (
        f"{lat} IS NOT NULL AND {lon} IS NOT NULL AND NOT ({lat} = 0 AND {lon} = 0) "
        f"AND {bbox(lat, lon, p, r)} AND {haversine(lat, lon, p)} <= {r!r}"
    )


def consent_granted(ctx: Ctx, channel: str, default: bool = False) -> str:
    """Users whose latest marketing consent row for the channel (<= D) grants it; ties at the
    same instant resolve to revoked."""
    latest = (
        "SELECT c.user_id, c.granted, row_number() OVER (PARTITION BY c.user_id "
        "ORDER BY c.ts DESC, c.granted ASC, c.source) AS rn FROM consents c "
        f"WHERE c.channel = {lit(channel)} AND c.purpose = 'marketing' AND c.ts <= {ctx.d}"
    )
    if default:
        return f"u.user_id NOT IN (SELECT user_id FROM ({latest}) x WHERE rn = 1 AND NOT granted)"
    return f"u.user_id IN (SELECT user_id FROM ({latest}) x WHERE rn = 1 AND granted)"


# ---------------------------------------------------------------------------------------------


def compile_node(node: Node, ctx: Ctx) -> str:
    fn = globals().get(f"c_{node.head}")
    if fn is None:
        raise AssertionError(f"no compiler for {node.head}")
    return fn(node.args, ctx, node)  # type: ignore[no-any-return]


def c_invalid(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    return "FALSE"


def c_all(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    return "(" + " AND ".join(compile_node(c, ctx) for c in node.children) + ")"


def c_any(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    return "(" + " OR ".join(compile_node(c, ctx) for c in node.children) + ")"


def c_not(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    return f"(NOT {compile_node(node.children[0], ctx)})"


def c_attr(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    col, text = attr_col(a["name"])
    return op_sql(col, a["op"], a["value"], text)


def c_age(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    today = ctx.d_local
    born_after = sub_years(today, a["max"] + 1)
    born_by = sub_years(today, a["min"])
    return (
        f"coalesce(u.birth_date > {date_lit(born_after)} "
        f"AND u.birth_date <= {date_lit(born_by)}, FALSE)"
    )


def c_event(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    props = []
    for prop, (op, val) in (a.get("where") or {}).items():
        path = str(prop).replace("'", "''")
        props.append(op_sql(f"json_extract_string(e.properties, '$.{path}')", op, val))
    base = (
        f"SELECT e.user_id FROM events e WHERE e.name = {lit(a['name'])} "
        f"AND e.user_id IS NOT NULL AND {' AND '.join(props) if props else 'TRUE'}"
    )
    if a.get("first_time"):
        lo = window(ctx, "min(e.ts)", a)
        return f"u.user_id IN ({base} AND e.ts <= {ctx.d} GROUP BY e.user_id HAVING {lo})"
    sub = f"{base} AND {window(ctx, 'e.ts', a)} GROUP BY e.user_id"
    if "count" in a:
        return having(sub, "count(*)", a["count"])
    return f"u.user_id IN ({sub})"


def c_inactive_for(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    recent = activity_sql(ctx, f"{{ts}} >= {ctx.ago(a['days'] or 0)}")
    return f"u.user_id NOT IN (SELECT user_id FROM ({recent}) act)"


def c_first_seen(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    return f"coalesce({window(ctx, 'u.first_seen', a)}, FALSE)"


def _paid(ctx: Ctx, a: dict[str, Any]) -> str:
    conds = ["p.status = 'paid'", "p.user_id IS NOT NULL", window(ctx, "p.ts", a)]
    if "amount" in a:
        conds.append(cmp_sql("p.amount_base", a["amount"]))
    for key in ("category", "sku"):
        if key in a:
            vals = ", ".join(lit(v) for v in a[key])
            conds.append(f"list_has_any(json_extract_string(p.items, '$[*].{key}'), [{vals}])")
    return "SELECT p.user_id FROM purchases p WHERE " + " AND ".join(conds)


def c_purchase(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    sub = _paid(ctx, a) + " GROUP BY p.user_id"
    return having(sub, "count(*)", a.get("count") or {"gte": 1})


def c_spend(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    return having(_paid(ctx, a) + " GROUP BY p.user_id", "sum(p.amount_base)", a["compare"])


def c_aov(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    sub = _paid(ctx, a) + " GROUP BY p.user_id"
    return f"u.user_id IN ({sub} HAVING {cmp_sql('avg(p.amount_base)', a['compare'])})"


def c_rfm(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    ctx.needs.add("rfm")
    if "segments" in a:
        names = ", ".join(lit(n) for n in a["segments"])
        return f"u.user_id IN (SELECT user_id FROM rfm WHERE segment IN ({names}))"
    conds = [f"{k} BETWEEN {lo} AND {hi}" for k, (lo, hi) in a["ranges"].items()] or ["TRUE"]
    return f"u.user_id IN (SELECT user_id FROM rfm WHERE {' AND '.join(conds)})"


def c_lifecycle(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    ctx.needs.add("lifecycle")
    names = ", ".join(lit(n) for n in a["stages"])
    return f"u.user_id IN (SELECT user_id FROM lifecycle WHERE stage IN ({names}))"


def c_lifecycle_change(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    hist = (
        "SELECT h.user_id, h.as_of, h.stage, LAG(h.stage) OVER (PARTITION BY h.user_id "
        f"ORDER BY h.as_of, h.run_id) AS prev FROM lifecycle_history h WHERE h.as_of <= {ctx.d}"
    )
    return (
        f"u.user_id IN (SELECT user_id FROM ({hist}) t WHERE t.as_of >= {ctx.ago(a['within'])} "
        f"AND t.stage IN ({', '.join(lit(s) for s in a['to'])}) "
        f"AND t.prev IN ({', '.join(lit(s) for s in a['from'])}))"
    )


def c_near(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    p = ctx.seg.places[a["place"]]
    r = a.get("radius_km") or p.radius_km
    return f"coalesce({within_place('u.home_lat', 'u.home_lon', p, r)}, FALSE)"


def c_visited(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    p = ctx.seg.places[a["place"]]
    r = a.get("radius_km") or p.radius_km
    sub = (
        f"SELECT e.user_id FROM events e WHERE e.user_id IS NOT NULL AND {window(ctx, 'e.ts', a)} "
        f"AND {within_place('e.latitude', 'e.longitude', p, r)} GROUP BY e.user_id "
        f"HAVING count(DISTINCT {local_day('e.ts', ctx.zone, ctx.as_of)}) >= {int(a['min_count'])}"
    )
    return f"u.user_id IN ({sub})"


def c_habit(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    zone = f"coalesce(uu.timezone, {lit(ctx.zone)})"
    if a["event"] == "purchase":
        src = (
            "SELECT p.user_id, p.ts FROM purchases p WHERE p.status = 'paid' "
            f"AND p.user_id IS NOT NULL AND {window(ctx, 'p.ts', a)}"
        )
    else:
        src = (
            f"SELECT e.user_id, e.ts FROM events e WHERE e.name = {lit(a['event'])} "
            f"AND e.user_id IS NOT NULL AND {window(ctx, 'e.ts', a)}"
        )
    lt = local("x.ts", zone)
    slot = []
    if "weekday" in a:
        slot.append(
            f"{iso_weekday(f'CAST({lt} AS DATE)')} IN ({', '.join(str(d) for d in a['weekday'])})"
        )
    if "hour" in a:
        slot.append(f"EXTRACT(hour FROM {lt}) >= {a['hour'][0]}")
        slot.append(f"EXTRACT(hour FROM {lt}) < {a['hour'][1]}")
    in_slot = " AND ".join(slot)
    sub = (
        f"SELECT x.user_id FROM ({src}) x JOIN users uu ON uu.user_id = x.user_id "
        f"GROUP BY x.user_id HAVING count(*) >= {int(a['min_count'])} "
        f"AND CAST(count(*) FILTER (WHERE {in_slot}) AS DOUBLE) / count(*) >= {a['min_share']!r}"
    )
    return f"u.user_id IN ({sub})"


def c_overdue(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    days = (
        f"SELECT DISTINCT p.user_id, {local_day('p.ts', ctx.zone, ctx.as_of)} AS day "
        "FROM purchases p "
        f"WHERE p.status = 'paid' AND p.user_id IS NOT NULL AND p.ts <= {ctx.d}"
    )
    gaps = (
        "SELECT user_id, day, date_diff('day', LAG(day) OVER (PARTITION BY user_id "
        f"ORDER BY day), day) AS gap FROM ({days}) d"
    )
    # The exact median gap (what percentile_cont(0.5) gives) from ranks: the middle row, or the
    # mean of the two middle rows. percentile_cont / median are approximate or missing in
    # Spark, Trino and ClickHouse (style §12).
    ranked = (
        "SELECT user_id, gap, row_number() OVER (PARTITION BY user_id ORDER BY gap, day) AS rn, "
        f"count(*) OVER (PARTITION BY user_id) AS n FROM ({gaps}) g WHERE gap IS NOT NULL"
    )
    median = (
        f"SELECT user_id, avg(gap) AS median_gap FROM ({ranked}) k "
        "WHERE 2 * rn >= n AND 2 * rn <= n + 2 GROUP BY user_id"
    )
    per_user = (
        f"SELECT user_id, count(*) AS days, max(day) AS last_day FROM ({days}) d2 GROUP BY user_id"
    )
    sub = (
        f"SELECT s.user_id FROM ({per_user}) s JOIN ({median}) m ON m.user_id = s.user_id "
        f"WHERE s.days >= {int(a['min_purchases'])} "
        f"AND date_diff('day', s.last_day, {date_lit(ctx.d_local)}) > "
        f"{a['factor']!r} * m.median_gap"
    )
    return f"u.user_id IN ({sub})"


def c_birthday(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    t = f"CAST({local(ctx.d, f'coalesce(u.timezone, {lit(ctx.zone)})')} AS DATE)"

    def bday(year: str) -> str:
        leap = f"(({year}) % 4 = 0 AND (({year}) % 100 <> 0 OR ({year}) % 400 = 0))"
        day = (
            "CASE WHEN month(u.birth_date) = 2 AND day(u.birth_date) = 29 "
            f"AND NOT {leap} THEN 28 ELSE day(u.birth_date) END"
        )
        return f"make_date({year}, month(u.birth_date), {day})"

    this_year = bday(f"year({t})")
    next_year = bday(f"year({t}) + 1")
    nxt = f"CASE WHEN {this_year} >= {t} THEN {this_year} ELSE {next_year} END"
    return (
        f"coalesce(u.birth_date IS NOT NULL AND date_diff('day', {t}, {nxt}) <= "
        f"{int(a['days'])}, FALSE)"
    )


def c_tier(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    ctx.needs.add("tiers")
    names = ", ".join(lit(n) for n in a["tiers"])
    return f"u.user_id IN (SELECT user_id FROM tiers WHERE tier IN ({names}))"


def c_p_alive(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    """`p_alive` and `clv`: the head names the column of the CLV run read as of D."""
    ctx.needs.add("clv_prediction")
    cond = cmp_sql(node.head, a["compare"])
    return f"u.user_id IN (SELECT user_id FROM clv_prediction WHERE {cond})"


c_clv = c_p_alive


def not_invalid(ctx: Ctx, channel: str, address_sql: str) -> str:
    """The address is not in the invalid-address registry (hard bounces, dead numbers:
    `invalid_addresses`) as of D, the planner's rule (mcrm.campaigns.plan): the key is the
    lowercase hex sha256 of `<channel>:<normalised address>` (mcrm.dispatch.core.address_hash;
    `transpile` keeps it lowercase hex in every dialect)."""
    key = f"sha256({lit(channel + ':')} || {address_sql})"
    return (
        f"{key} NOT IN (SELECT ia.address_hash FROM invalid_addresses ia "
        f"WHERE ia.channel = {lit(channel)} AND ia.invalid_at <= {ctx.d})"
    )


def c_reachable(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    ch = a["channel"]
    if ch == "push":
        dev = (
            "u.user_id IN (SELECT d.user_id FROM devices d WHERE d.push_token IS NOT NULL "
            "AND coalesce(d.push_enabled, TRUE) "
            f"AND (d.invalidated_at IS NULL OR d.invalidated_at > {ctx.d}))"
        )
        return f"({dev} AND {consent_granted(ctx, 'push')})"
    if ch == "email":
        return (
            f"(u.email IS NOT NULL AND {not_invalid(ctx, 'email', 'lower(trim(u.email))')} "
            f"AND {consent_granted(ctx, 'email')})"
        )
    if ch == "sms":
        return (
            f"(u.phone IS NOT NULL AND {not_invalid(ctx, 'sms', 'trim(u.phone)')} "
            f"AND {consent_granted(ctx, 'sms')})"
        )
    dev = "u.user_id IN (SELECT d.user_id FROM devices d)"
    app = (
        f"u.user_id IN (SELECT e.user_id FROM events e WHERE e.user_id IS NOT NULL AND "
        f"e.ts <= {ctx.d} AND e.platform IN ('ios', 'android'))"
    )
    return f"(({dev} OR {app}) AND {consent_granted(ctx, 'inapp', default=True)})"


def c_segment(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    return compile_node(ctx.seg.segments[a["name"]].where, ctx)


def c_bucket(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    key = f"{a['salt']}:"
    return f"({hex8(f'md5({lit(key)} || u.user_id)')} % 10000 < {int(round(a['percent'] * 100))})"


def hex8(hex_sql: str) -> str:
    """The first 8 hex digits of a lowercase hex string as an integer (0 .. 2^32 - 1).

    Spelled digit by digit with `strpos`, `substr` and arithmetic: a `'0x' || …` string cast to
    BIGINT is DuckDB-only (ClickHouse and Spark silently give NULL, Snowflake raises)."""
    digits = " + ".join(
        f"(strpos('0123456789abcdef', substr({hex_sql}, {i + 1}, 1)) - 1) * {16 ** (7 - i)}"
        for i in range(8)
    )
    return f"({digits})"


def iso_weekday(date_sql: str) -> str:
    """ISO day of week (Monday 1 .. Sunday 7) of a DATE, from days since a Monday.

    `EXTRACT(isodow …)` reaches most dialects unchanged (no ISODOW there) and SQLGlot's Spark
    rewrite of `isodow()` is off by one weekday, so it is spelled with `date_diff`."""
    return f"((date_diff('day', DATE '2000-01-03', {date_sql}) % 7 + 7) % 7 + 1)"


def c_sql(a: dict[str, Any], ctx: Ctx, node: Node) -> str:
    return f"coalesce(({a['sql']}), FALSE)"


def bucket_of(user_id: str, salt: str) -> float:
    """The percentile (0..100) a `bucket` predicate gives a user (same hash as the SQL)."""
    import hashlib

    h = int(hashlib.md5(f"{salt}:{user_id}".encode()).hexdigest()[:8], 16)
    return (h % 10000) / 100


def exists_at(ctx: Ctx) -> str:
    """Users who existed at the as-of instant (time travel ignores later sign-ups)."""
    return f"(u.first_seen IS NULL OR u.first_seen <= {ctx.d})"


def segment_query(name: str, ctx: Ctx) -> str:
    seg = ctx.seg.segments[name]
    expr = compile_node(seg.where, ctx)
    return f"SELECT u.user_id FROM users u WHERE {exists_at(ctx)} AND {expr}"


def rf_cells(scheme: str) -> list[tuple[str, int, int]]:
    """(segment, R, F) for all 25 cells."""
    out = []
    for r in range(1, 6):
        for f in range(1, 6):
            name = next(
                n for n, ((r0, r1), (f0, f1)) in RF10.items() if r0 <= r <= r1 and f0 <= f <= f1
            )
            if scheme == "rfm11" and r == 1 and f == 1:
                name = "lost"
            out.append((name, r, f))
    return out
