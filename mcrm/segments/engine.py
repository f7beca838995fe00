"""Computing segments: snapshots, lifecycle history, explain, diff, export, RFM and lifecycle.

`compute` materialises the shared relations (`rfm`, `lifecycle`, `tiers`) once as TEMP tables,
then runs one query per segment and stores a snapshot (run id, as-of, members) in one
transaction. Every computation also stores each user's lifecycle stage as of D, so
`lifecycle_change` predicates and `mcrm lifecycle --compare-to` can see transitions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcrm.errors import NotFound, UsageError, did_you_mean
from mcrm.output import Rows
from mcrm.segments import compile as C
from mcrm.segments.analytics import RELATIONS, materialise_rfm
from mcrm.segments.model import STAGES, Node, SegmentsFile, load_segments

if TYPE_CHECKING:
    import duckdb

    from mcrm.config import Workspace


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def ctx_for(ws: Workspace, seg: SegmentsFile, as_of: dt.datetime | None) -> C.Ctx:
    return C.Ctx(seg, as_of or _now(), ws.settings.timezone)


def needed(seg: SegmentsFile, names: list[str], ctx: C.Ctx) -> set[str]:
    probe = C.Ctx(seg, ctx.as_of, ctx.zone)
    for n in names:
        C.segment_query(n, probe)
    return probe.needs


def materialise(con: duckdb.DuckDBPyConnection, ctx: C.Ctx, relations: set[str]) -> None:
    if "clv_prediction" in relations:
        from mcrm.predict.run import run_for

        run_for(con, ctx.as_of)  # no prediction run as of D: a clear error, not an empty set
    for rel in ("rfm", "lifecycle", "tiers", "clv_prediction"):
        if rel == "rfm" and rel in relations:
            materialise_rfm(con, ctx)  # DuckDB fast path: the rows of rfm_sql (parity-tested)
        elif rel in relations:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {rel} AS {RELATIONS[rel](ctx)}")


def definition_hash(seg: SegmentsFile, name: str) -> str:
    def dump(n: Node) -> Any:
        return {"h": n.head, "a": n.args, "c": [dump(c) for c in n.children]}

    text = json.dumps(dump(seg.segments[name].where), sort_keys=True, default=str)
    return hashlib.md5(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SegmentSize:
    name: str
    description: str | None
    size: int
    seconds: float


@dataclass
class ComputeResult:
    run_id: int
    as_of: dt.datetime
    sizes: list[SegmentSize]
    warnings: list[str] = field(default_factory=list)


def _select(seg: SegmentsFile, names: list[str] | None) -> list[str]:
    if not seg.segments:
        raise UsageError("no segments defined", hint="add segments: to segments.yaml")
    if not names:
        return list(seg.segments)
    for n in names:
        if n not in seg.segments:
            raise UsageError(
                f"unknown segment '{n}'",
                hint=did_you_mean(n, list(seg.segments)) or f"segments: {', '.join(seg.segments)}",
            )
    return names


def compute(
    ws: Workspace, names: list[str] | None = None, as_of: dt.datetime | None = None
) -> ComputeResult:
    from mcrm.db import open_db

    seg = load_segments(ws.root)
    chosen = _select(seg, names)
    ctx = ctx_for(ws, seg, as_of)
    rels = needed(seg, chosen, ctx) | {"lifecycle"}
    with open_db(ws, write=True) as con:
        warnings = event_name_warnings(con, seg)
        con.execute("BEGIN")
        try:
            materialise(con, ctx, rels)
            if "rfm" in rels:
                warnings += rfm_warnings(con)
            run_id = int(con.execute("SELECT nextval('segment_run_seq')").fetchall()[0][0])
            con.execute("INSERT INTO segment_runs VALUES (?, ?, ?)", [run_id, ctx.as_of, _now()])
            con.execute(
                f"INSERT INTO lifecycle_history SELECT {run_id}, ?, user_id, stage FROM lifecycle",
                [ctx.as_of],
            )
            sizes = []
            for n in chosen:
                t0 = time.perf_counter()
                con.execute(
                    f"INSERT INTO segment_members SELECT {run_id}, ?, user_id FROM "
                    f"({C.segment_query(n, ctx)}) q",
                    [n],
                )
                size = int(
                    con.execute(
                        "SELECT count(*) FROM segment_members WHERE run_id = ? AND segment = ?",
                        [run_id, n],
                    ).fetchall()[0][0]
                )
                secs = time.perf_counter() - t0
                con.execute(
                    "INSERT INTO segment_snapshots VALUES (?, ?, ?, ?, ?)",
                    [run_id, n, size, definition_hash(seg, n), secs],
                )
                sizes.append(SegmentSize(n, seg.segments[n].description, size, round(secs, 3)))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return ComputeResult(run_id, ctx.as_of, sizes, warnings)


def event_name_warnings(con: duckdb.DuckDBPyConnection, seg: SegmentsFile) -> list[str]:
    """Event names used in segments.yaml but never seen in the data."""
    known = {r[0] for r in con.execute("SELECT DISTINCT name FROM events").fetchall()}
    used: dict[str, str] = {}

    def walk(n: Node, where: str) -> None:
        if n.head == "event":
            used.setdefault(n.args["name"], where)
        if n.head == "habit" and n.args.get("event") != "purchase":
            used.setdefault(n.args["event"], where)
        for c in n.children:
            walk(c, where)

    for name, s in seg.segments.items():
        walk(s.where, f"segments.yaml:{s.line} / segments.{name}")
    for a in seg.lifecycle.activity:
        if a != "purchase":
            used.setdefault(a, "segments.yaml / lifecycle.activity")
    out = []
    for ev, where in sorted(used.items()):
        if ev not in known:
            import difflib

            close = difflib.get_close_matches(ev, sorted(known), n=3, cutoff=0.5)
            out.append(
                f"event '{ev}' never occurs in the data ({where})"
                + (f"; closest: {', '.join(close)}" if close else "")
            )
    return out


def rfm_warnings(con: duckdb.DuckDBPyConnection) -> list[str]:
    n = int(con.execute("SELECT count(*) FROM rfm").fetchall()[0][0])
    out = []
    if 0 < n < 5:
        out.append(f"rfm: only {n} scored customer(s): scores reach only {n}")
    if not n:
        return out
    for measure in ("recency_days", "frequency", "monetary"):
        value, count = con.execute(
            f"SELECT {measure}, count(*) AS c FROM rfm GROUP BY {measure} "
            f"ORDER BY c DESC, {measure} LIMIT 1"
        ).fetchall()[0]
        if count / n > 0.2:
            letter = {"recency_days": "R", "frequency": "F", "monetary": "M"}[measure]
            out.append(
                f"rfm: {measure} = {value} covers {count / n:.0%} of customers; {letter} scores "
                "split identical customers by id hash (quintiles are partly arbitrary)"
            )
    return out


def segment_sql(ws: Workspace, name: str, as_of: dt.datetime | None, dialect: str) -> str:
    """One self-contained query (shared relations as CTEs), optionally transpiled."""
    seg = load_segments(ws.root)
    _select(seg, [name])
    ctx = ctx_for(ws, seg, as_of)
    body = C.segment_query(name, ctx)
    ctes = [
        f"{rel} AS ({RELATIONS[rel](ctx)})"
        for rel in ("rfm", "lifecycle", "tiers", "clv_prediction")
        if rel in ctx.needs
    ]
    sql = (f"WITH {', '.join(ctes)} " if ctes else "") + body
    return transpile(sql, dialect)


DIALECTS = ("duckdb", "spark", "bigquery", "snowflake", "clickhouse", "trino")


def transpile(sql: str, dialect: str) -> str:
    """DuckDB SQL in another dialect (SQLGlot), with the rewrites SQLGlot gets wrong.

    The SQL mcrm emits is kept to forms SQLGlot transpiles faithfully (style §12); the few that
    it does not are rewritten on the tree here, see `_portable`."""
    import sqlglot

    if dialect not in DIALECTS:
        raise UsageError(
            f"unknown dialect '{dialect}'",
            hint=did_you_mean(dialect, DIALECTS) or f"dialects: {', '.join(DIALECTS)}",
        )
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
        if dialect != "duckdb":
            tree = _portable(tree, dialect)
        out = tree.sql(dialect=dialect, pretty=True, unsupported_level=sqlglot.ErrorLevel.RAISE)
    except sqlglot.errors.SqlglotError as e:
        raise UsageError(f"cannot express this segment in {dialect}: {e}") from None
    return out + ";\n"


def _portable(tree: Any, dialect: str) -> Any:
    """Tree rewrites for the target dialect where SQLGlot's own output loses meaning.

    - A naive-UTC timestamp as wall time in a zone, `(ts AT TIME ZONE 'UTC') AT TIME ZONE z`:
      SQLGlot gives Snowflake `CONVERT_TIMEZONE(z, CONVERT_TIMEZONE('UTC', ts))` and Trino
      `at_timezone(at_timezone(ts, 'UTC'), z)`, both reading `ts` in the session zone, and
      BigQuery `DATETIME(ts, 'UTC')`, which has no DATETIME signature. Written as Snowflake's
      3-argument `CONVERT_TIMEZONE('UTC', z, ts)`, BigQuery `DATETIME(TIMESTAMP(ts, 'UTC'), z)`
      and Trino `at_timezone(with_timezone(ts, 'UTC'), z)`. Spark's `from_utc_timestamp`
      chain and ClickHouse's `AT TIME ZONE` are right as they are.
    - Trino's `md5` takes VARBINARY: `md5(to_utf8(x))`.
    - `sha256(x)` (the invalid-address key of `reachable`) is lowercase hex in DuckDB, Spark
      and Snowflake (`SHA2(x, 256)`) and Trino (SQLGlot adds `lower(to_hex(...))`), but bytes
      in BigQuery and ClickHouse: there it becomes `TO_HEX(SHA256(x))` /
      `LOWER(HEX(SHA256(x)))`; Trino's `sha256` takes VARBINARY, like its `md5`.
    - JSON paths with a wildcard (`$[*].sku`, the `purchase` item filters) have no portable
      form: SQLGlot fails on most dialects and gives Spark a string where an array is meant.
    """
    from sqlglot import exp

    if any(True for _ in tree.find_all(exp.JSONPathWildcard)):
        raise UsageError(
            f"cannot express this segment in {dialect}: purchase category / sku filters "
            "(a JSON path over the items array) are DuckDB-only"
        )

    def utc(node: exp.Expression) -> bool:
        return (
            isinstance(node, exp.AtTimeZone)
            and isinstance(node.args.get("zone"), exp.Literal)
            and node.args["zone"].name.upper() == "UTC"
        )

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.AtTimeZone) and utc(node.this.unnest()):
            ts, zone = node.this.unnest().this, node.args["zone"]
            if dialect == "snowflake":
                return exp.ConvertTimezone(
                    source_tz=exp.Literal.string("UTC"), target_tz=zone, timestamp=ts
                )
            if dialect == "bigquery":
                stamp = exp.Timestamp(this=ts, zone=exp.Literal.string("UTC"), with_tz=True)
                return exp.Datetime(this=stamp, expression=zone)
            if dialect == "trino":
                aware = exp.Anonymous(
                    this="with_timezone", expressions=[ts, exp.Literal.string("UTC")]
                )
                return exp.Anonymous(this="at_timezone", expressions=[aware, zone])
        if dialect in ("bigquery", "clickhouse") and isinstance(node, exp.SHA2):
            if not isinstance(node.parent, exp.LowerHex):
                return exp.LowerHex(this=node.copy())
        if dialect == "trino" and isinstance(node, exp.SHA2):
            if not isinstance(node.this, exp.Encode):
                return exp.SHA2(
                    this=exp.Encode(this=node.this, charset=exp.Literal.string("utf-8")),
                    length=node.args.get("length"),
                )
        if dialect == "trino" and isinstance(node, exp.MD5):
            return exp.MD5(this=exp.Encode(this=node.this, charset=exp.Literal.string("utf-8")))
        return node

    return tree.transform(rewrite)


# ---------------------------------------------------------------------------------------------
# explain


@dataclass
class Explained:
    text: str
    ok: bool
    value: str | None
    children: list[Explained] = field(default_factory=list)
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "predicate": self.text,
            "held": self.ok,
            "value": self.value,
            "line": self.line,
            "children": [c.as_dict() for c in self.children],
        }


def explain(
    ws: Workspace, name: str, user: str, as_of: dt.datetime | None = None
) -> tuple[str, bool, Explained]:
    from mcrm.db import open_db
    from mcrm.people import find_user

    seg = load_segments(ws.root)
    _select(seg, [name])
    ctx = ctx_for(ws, seg, as_of)
    rels = needed(seg, [name], ctx)
    with open_db(ws) as con:
        uid = find_user(con, user)
        materialise(con, ctx, rels)
        tree = _explain(con, seg.segments[name].where, ctx, uid)
        exists = _bool(con, C.exists_at(ctx), uid)
    return uid, tree.ok and exists, tree


def _bool(con: duckdb.DuckDBPyConnection, expr: str, uid: str) -> bool:
    row = con.execute(f"SELECT {expr} FROM users u WHERE u.user_id = ?", [uid]).fetchall()
    return bool(row and row[0][0])


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, uid: str) -> Any:
    row = con.execute(sql, [uid]).fetchall()
    return row[0][0] if row else None


def _explain(con: duckdb.DuckDBPyConnection, node: Node, ctx: C.Ctx, uid: str) -> Explained:
    kids = [_explain(con, c, ctx, uid) for c in node.children]
    if node.head == "segment":
        inner = _explain(con, ctx.seg.segments[node.args["name"]].where, ctx, uid)
        kids = [inner]
    ok = _bool(con, C.compile_node(node, ctx), uid)
    text, value = describe(con, node, ctx, uid)
    return Explained(text, ok, value, kids, node.line)


def _win(a: dict[str, Any]) -> str:
    if a.get("within") is not None:
        d = a["within"]
        return f" in the last {int(d) if d == int(d) else d} days"
    if a.get("between"):
        lo, hi = a["between"]
        return f" between {lo:%Y-%m-%d} and {hi:%Y-%m-%d}"
    return " ever"


def _cmp_words(cmp: dict[str, Any]) -> str:
    words = {
        "gte": "at least",
        "gt": "more than",
        "lte": "at most",
        "lt": "fewer than",
        "eq": "exactly",
    }
    parts = []
    for op, v in cmp.items():
        parts.append(f"between {v[0]} and {v[1]}" if op == "between" else f"{words[op]} {v}")
    return " and ".join(parts)


def describe(
    con: duckdb.DuckDBPyConnection, node: Node, ctx: C.Ctx, uid: str
) -> tuple[str, str | None]:
    """A predicate in words, and the value that decided it for this user."""
    a, h = node.args, node.head
    u = "FROM users u WHERE u.user_id = ?"
    if h in ("all", "any"):
        return ("all of these hold" if h == "all" else "any of these holds"), None
    if h == "not":
        return "the following does not hold", None
    if h == "segment":
        return f"is in segment {a['name']}", None
    if h == "attr":
        col, _ = C.attr_col(a["name"])
        v = _scalar(con, f"SELECT {col} {u}", uid)
        return f"{a['name']} {a['op'].replace('_', ' ')} {a['value']!r}", f"{a['name']} = {v!r}"
    if h == "age":
        b = _scalar(con, f"SELECT u.birth_date {u}", uid)
        if b is None:
            return f"is {a['min']}–{a['max']} years old", "birth date unknown"
        t = ctx.d_local
        age = t.year - b.year - ((t.month, t.day) < (b.month, b.day))
        return f"is {a['min']}–{a['max']} years old", f"age {age}"
    if h == "event":
        cnt = _scalar(
            con,
            f"SELECT count(*) FROM events e WHERE e.user_id = ? AND e.name = {C.lit(a['name'])}"
            f" AND {C.window(ctx, 'e.ts', a)}",
            uid,
        )
        need = _cmp_words(a.get("count") or {"gte": 1})
        first = " for the first time" if a.get("first_time") else ""
        extra = f" with {a['where']}" if a.get("where") else ""
        return (
            f"did '{a['name']}'{extra} {need} time(s){_win(a)}{first}",
            f"{cnt} time(s){_win(a)}",
        )
    if h == "inactive_for":
        last = _scalar(
            con, f"SELECT max(ts) FROM ({C.activity_sql(ctx)}) x WHERE x.user_id = ?", uid
        )
        return f"no activity in the last {a['days']:g} days", f"last activity {last or 'never'}"
    if h == "first_seen":
        v = _scalar(con, f"SELECT u.first_seen {u}", uid)
        return f"first seen{_win(a)}", f"first seen {v}"
    if h in ("purchase", "spend", "aov"):
        agg = {"purchase": "count(*)", "spend": "sum(p.amount_base)", "aov": "avg(p.amount_base)"}[
            h
        ]
        sub = C._paid(ctx, a).replace("SELECT p.user_id", f"SELECT {agg}", 1)
        v = _scalar(con, sub + " AND p.user_id = ?", uid)
        if h == "purchase":
            return (
                f"bought {_cmp_words(a.get('count') or {'gte': 1})} time(s){_win(a)}",
                f"{v or 0} paid order(s){_win(a)}",
            )
        what = "spent" if h == "spend" else "average order value"
        shown = f"{float(v):.2f}" if v is not None else ("0" if h == "spend" else "no orders")
        return f"{what} {_cmp_words(a['compare'])}{_win(a)}", f"{what} {shown}"
    if h == "rfm":
        row = con.execute(
            "SELECT r, f, m, segment, recency_days, frequency, monetary FROM rfm "
            "WHERE user_id = ?",
            [uid],
        ).fetchall()
        want = ", ".join(a["segments"]) if "segments" in a else str(a["ranges"])
        if not row:
            return f"RFM {want}", "no paid order in the RFM window (unscored)"
        r, f, m, s, rec, freq, mon = row[0]
        return (
            f"RFM {want}",
            f"{s} (R{r} F{f} M{m}: last order {rec} days ago, {freq} purchase days, "
            f"{float(mon):.2f} spent)",
        )
    if h == "lifecycle":
        row = con.execute(
            "SELECT stage, days_since_last FROM lifecycle WHERE user_id = ?", [uid]
        ).fetchall()
        v = f"{row[0][0]} (last active {row[0][1]} days ago)" if row else "no activity"
        return f"lifecycle stage is {' or '.join(a['stages'])}", v
    if h == "lifecycle_change":
        return (
            f"moved from {'/'.join(a['from'])} to {'/'.join(a['to'])} in the last "
            f"{a['within']:g} days"
        ), None
    if h in ("near", "visited"):
        p = ctx.seg.places[a["place"]]
        r = a.get("radius_km") or p.radius_km
        if h == "near":
            d = _scalar(con, f"SELECT {C.haversine('u.home_lat', 'u.home_lon', p)} {u}", uid)
            return (
                f"lives within {r:g} km of {p.name}",
                f"home {d:.2f} km away" if d is not None else "home location unknown",
            )
        days = _scalar(
            con,
            f"SELECT count(DISTINCT {C.local_day('e.ts', ctx.zone, ctx.as_of)}) FROM events e "
            f"WHERE e.user_id = ? AND {C.window(ctx, 'e.ts', a)} AND "
            f"{C.within_place('e.latitude', 'e.longitude', p, r)}",
            uid,
        )
        return (
            f"was within {r:g} km of {p.name} on at least {a['min_count']} day(s){_win(a)}",
            f"{days} day(s)",
        )
    if h == "habit":
        return (
            f"does '{a['event']}' mostly (>= {a['min_share']:.0%}) in the slot "
            f"weekday {a.get('weekday', 'any')} hour {a.get('hour', 'any')}"
        ), None
    if h == "overdue":
        return (
            f"days since the last purchase exceed {a['factor']:g}× their usual gap "
            f"(at least {a['min_purchases']} purchase days)"
        ), None
    if h == "birthday":
        b = _scalar(con, f"SELECT u.birth_date {u}", uid)
        return (
            f"birthday within {a['days']} day(s)",
            f"birth date {b:%m-%d}" if b else "birth date unknown",
        )
    if h == "tier":
        row = con.execute("SELECT tier, spend FROM tiers WHERE user_id = ?", [uid]).fetchall()
        return (
            f"loyalty tier is {' or '.join(a['tiers'])}",
            f"{row[0][0]} ({float(row[0][1]):.2f} spent)" if row else "no tier",
        )
    if h in ("p_alive", "clv"):
        row = con.execute(
            "SELECT p_alive, clv, run_id FROM clv_prediction WHERE user_id = ?", [uid]
        ).fetchall()
        what = "P(alive)" if h == "p_alive" else "predicted CLV"
        cond = _cmp_words(a["compare"]).replace("fewer than", "below")
        if not row:
            return f"{what} {cond}", "no prediction (not a customer as of that run)"
        v = f"{row[0][0]:.3f}" if h == "p_alive" else f"{float(row[0][1]):.2f}"
        return f"{what} {cond}", f"{h} = {v} (prediction run {row[0][2]})"
    if h == "reachable":
        what = {
            "push": "a live push token",
            "inapp": "an app device",
        }.get(a["channel"], "an address not registered invalid")
        return f"reachable by {a['channel']} ({what}, and consent)", None
    if h == "bucket":
        return (
            f"in the {a['percent']:g}% bucket '{a['salt']}'",
            f"bucket {C.bucket_of(uid, a['salt']):.2f}",
        )
    if h == "sql":
        return f"SQL: {a['sql']}", None
    return h, None


# ---------------------------------------------------------------------------------------------
# snapshots, listing, export


def _run_for(
    con: duckdb.DuckDBPyConnection, name: str, since: str | None, zone: str
) -> int | None:
    if since is None:
        row = con.execute(
            "SELECT max(run_id) FROM segment_snapshots WHERE segment = ? AND run_id < "
            "(SELECT max(run_id) FROM segment_snapshots WHERE segment = ?)",
            [name, name],
        ).fetchall()
        return None if row[0][0] is None else int(row[0][0])
    if since.isdigit():
        row = con.execute(
            "SELECT run_id FROM segment_snapshots WHERE segment = ? AND run_id = ?",
            [name, int(since)],
        ).fetchall()
        if not row:
            raise NotFound(
                f"no snapshot of {name} in run {since}",
                hint=f"mcrm segments show {name} lists its runs",
            )
        return int(row[0][0])
    from mcrm.timeutil import parse_instant

    at = parse_instant(since, zone, "--since")
    row = con.execute(
        "SELECT max(s.run_id) FROM segment_snapshots s JOIN segment_runs r USING (run_id) "
        "WHERE s.segment = ? AND r.as_of <= ?",
        [name, at],
    ).fetchall()
    if row[0][0] is None:
        raise NotFound(f"no snapshot of {name} at or before {since}")
    return int(row[0][0])


def diff(ws: Workspace, name: str, since: str | None) -> tuple[int, int, Rows]:
    from mcrm.db import open_db

    with open_db(ws) as con:
        latest = con.execute(
            "SELECT max(run_id) FROM segment_snapshots WHERE segment = ?", [name]
        ).fetchall()[0][0]
        if latest is None:
            raise NotFound(
                f"segment {name} has no snapshot yet", hint=f"mcrm segments compute {name}"
            )
        base = _run_for(con, name, since, ws.settings.timezone)
        if base is None:
            raise NotFound(
                f"segment {name} has only one snapshot",
                hint="compute it again later (or --as-of an earlier date) to diff",
            )
        rows = con.execute(
            """SELECT 'entered' AS change, user_id FROM segment_members
               WHERE run_id = ? AND segment = ? AND user_id NOT IN
                 (SELECT user_id FROM segment_members WHERE run_id = ? AND segment = ?)
               UNION ALL
               SELECT 'left', user_id FROM segment_members
               WHERE run_id = ? AND segment = ? AND user_id NOT IN
                 (SELECT user_id FROM segment_members WHERE run_id = ? AND segment = ?)
               ORDER BY 1, 2""",
            [latest, name, base, name, base, name, latest, name],
        ).fetchall()
    return int(base), int(latest), Rows(["change", "user_id"], rows)


def snapshot_members(segment: str, run_id: int) -> str:
    """Members of `segment` in snapshot `run_id`, as a condition over `users u`."""
    name = segment.replace("'", "''")
    return (
        f"u.user_id IN (SELECT m.user_id FROM segment_members m "
        f"WHERE m.run_id = {int(run_id)} AND m.segment = '{name}')"
    )


def list_segments(ws: Workspace) -> Rows:
    from mcrm.db import open_db

    seg = load_segments(ws.root)
    last: dict[str, tuple[Any, Any, Any]] = {}
    if ws.db_path.exists():
        with open_db(ws) as con:
            for n, size, run, as_of in con.execute(
                "SELECT s.segment, s.size, s.run_id, r.as_of FROM segment_snapshots s "
                "JOIN segment_runs r USING (run_id) "
                "QUALIFY row_number() OVER (PARTITION BY s.segment ORDER BY s.run_id DESC) = 1"
            ).fetchall():
                last[n] = (size, run, as_of)
    rows = [[n, s.description, *last.get(n, (None, None, None))] for n, s in seg.segments.items()]
    return Rows(["segment", "description", "size", "run_id", "as_of"], rows)


def history(ws: Workspace, name: str) -> Rows:
    from mcrm.db import open_db

    with open_db(ws) as con:
        rows = con.execute(
            "SELECT s.run_id, r.as_of, s.size, s.definition_hash FROM segment_snapshots s "
            "JOIN segment_runs r USING (run_id) WHERE s.segment = ? ORDER BY s.run_id",
            [name],
        ).fetchall()
    return Rows(["run_id", "as_of", "size", "definition"], rows)


EXPORT_FIELDS = [
    "user_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "locale",
    "country",
    "city",
    "timezone",
    "os",
    "app_version",
    "first_seen",
    "last_seen",
]


def export(ws: Workspace, name: str, as_of: dt.datetime | None) -> Rows:
    from mcrm.db import open_db

    seg = load_segments(ws.root)
    _select(seg, [name])
    ctx = ctx_for(ws, seg, as_of)
    q = C.segment_query(name, ctx)
    with open_db(ws) as con:
        materialise(con, ctx, ctx.needs)
        cols = ", ".join(f"u.{c}" for c in EXPORT_FIELDS)
        rows = con.execute(
            f"SELECT {cols} FROM users u WHERE u.user_id IN ({q}) ORDER BY u.user_id"
        ).fetchall()
    return Rows(EXPORT_FIELDS, rows)


# ---------------------------------------------------------------------------------------------
# RFM grid and lifecycle counts


def rfm_grid(
    ws: Workspace, as_of: dt.datetime | None, by_segment: bool = False
) -> tuple[Rows, int, int, list[str]]:
    from mcrm.db import open_db

    seg = load_segments(ws.root)
    ctx = ctx_for(ws, seg, as_of)
    with open_db(ws) as con:
        materialise(con, ctx, {"rfm"})
        warnings = rfm_warnings(con)
        scored = int(con.execute("SELECT count(*) FROM rfm").fetchall()[0][0])
        customers = int(
            con.execute(
                "SELECT count(DISTINCT user_id) FROM purchases WHERE status = 'paid' "
                f"AND user_id IS NOT NULL AND ts <= {ctx.d}"
            ).fetchall()[0][0]
        )
        cells = C.rf_cells(seg.rfm.scheme)
        con.execute("CREATE OR REPLACE TEMP TABLE _cells (segment VARCHAR, r INT, f INT)")
        con.executemany("INSERT INTO _cells VALUES (?, ?, ?)", [list(c) for c in cells])
        keys = "c.segment" if by_segment else "c.segment, c.r, c.f"
        order = "customers DESC, c.segment" if by_segment else "c.r DESC, c.f DESC"
        rows = con.execute(
            f"""SELECT {keys}, count(x.user_id) AS customers,
                 CASE WHEN ? > 0 THEN CAST(count(x.user_id) AS DOUBLE) / ? END AS share,
                 CAST(avg(x.monetary) AS DECIMAL(18,2)) AS avg_monetary
               FROM _cells c LEFT JOIN rfm x ON x.r = c.r AND x.f = c.f
               GROUP BY {keys} ORDER BY {order}""",
            [scored, scored],
        ).fetchall()
    cols = ["segment", "customers", "share", "avg_monetary"]
    if not by_segment:
        cols[1:1] = ["r", "f"]
    return Rows(cols, rows), scored, customers - scored, warnings


def rfm_segments(ws: Workspace, as_of: dt.datetime | None) -> Rows:
    """One row per RFM segment (every segment of the scheme, empty ones too)."""
    grid, _, _, _ = rfm_grid(ws, as_of, by_segment=True)
    return grid


def _transitions(
    ws: Workspace,
    rel: str,
    column: str,
    count_label: str,
    as_of: dt.datetime | None,
    compare_to: dt.datetime,
) -> Rows:
    """How users moved between two evaluations of a relation (`rfm` segments or `lifecycle`
    stages), both with the current settings; `none` = not scored / no stage; users who are
    `none` at both times are left out (analytics reference §1). Row share = count / row total."""
    from mcrm.db import open_db

    seg = load_segments(ws.root)
    now_ctx = ctx_for(ws, seg, as_of)
    then_ctx = ctx_for(ws, seg, compare_to)
    if then_ctx.as_of >= now_ctx.as_of:
        raise UsageError("--compare-to must be before the evaluation time (--as-of / now)")
    with open_db(ws) as con:
        for table, c in (("t_then", then_ctx), ("t_now", now_ctx)):
            if rel == "rfm":
                materialise_rfm(con, c, table)
            else:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {RELATIONS[rel](c)}")
        rows = con.execute(
            f"""SELECT coalesce(a.{column}, 'none') AS from_, coalesce(b.{column}, 'none') AS to_,
                      count(*) AS n, CAST(count(*) AS DOUBLE) / sum(count(*)) OVER
                        (PARTITION BY coalesce(a.{column}, 'none')) AS row_share
               FROM t_then a FULL OUTER JOIN t_now b ON a.user_id = b.user_id
               GROUP BY 1, 2 ORDER BY 1, 2"""
        ).fetchall()
    return Rows([f"from_{column}", f"to_{column}", count_label, "row_share"], rows)


def rfm_transitions(ws: Workspace, as_of: dt.datetime | None, compare_to: dt.datetime) -> Rows:
    return _transitions(ws, "rfm", "segment", "customers", as_of, compare_to)


def lifecycle_counts(ws: Workspace, as_of: dt.datetime | None) -> Rows:
    from mcrm.db import open_db

    seg = load_segments(ws.root)
    ctx = ctx_for(ws, seg, as_of)
    with open_db(ws) as con:
        materialise(con, ctx, {"lifecycle"})
        counts = dict(
            con.execute("SELECT stage, count(*) FROM lifecycle GROUP BY stage").fetchall()
        )
    total = sum(counts.values())
    rows = [[s, counts.get(s, 0), counts.get(s, 0) / total if total else None] for s in STAGES]
    return Rows(["stage", "users", "share"], rows)


def lifecycle_flow(ws: Workspace, as_of: dt.datetime | None, compare_to: dt.datetime) -> Rows:
    return _transitions(ws, "lifecycle", "stage", "users", as_of, compare_to)


def validate(ws: Workspace) -> tuple[list[Any], list[Any]]:
    """Every problem in segments.yaml (errors, warnings), nothing raised."""
    from mcrm.yamlio import Problems

    probs = Problems()
    seg = load_segments(ws.root, probs)
    warnings: list[Any] = []
    if not probs and ws.db_path.exists():
        from mcrm.db import open_db

        with open_db(ws) as con:
            warnings = event_name_warnings(con, seg)
            warnings += prediction_warnings(con, seg)
    return probs.errors, warnings


def prediction_warnings(con: duckdb.DuckDBPyConnection, seg: SegmentsFile) -> list[str]:
    """Segments using `p_alive` / `clv` while no CLV prediction has been stored yet."""

    def uses(n: Node) -> bool:
        return n.head in ("p_alive", "clv") or any(uses(c) for c in n.children)

    users = [name for name, s in seg.segments.items() if uses(s.where)]
    if not users:
        return []
    if con.execute("SELECT count(*) FROM prediction_runs").fetchall()[0][0]:
        return []
    from mcrm.predict.run import NO_RUN

    return [f"{', '.join(users)}: p_alive / clv need a prediction run, but {NO_RUN}"]


def user_analytics(
    con: duckdb.DuckDBPyConnection, ws: Workspace, uid: str, as_of: dt.datetime | None
) -> dict[str, Any]:
    """For a profile: RFM cell, lifecycle stage and tier as of the instant, and the segments
    the user was in at each segment's latest snapshot."""
    out: dict[str, Any] = {}
    seg = load_segments(ws.root)
    ctx = ctx_for(ws, seg, as_of)
    # RFM needs every customer (quintiles); lifecycle and tiers are per user, so only this
    # person's rows are computed (the filter is pushed into their per-user grouping)
    materialise(con, ctx, {"rfm"})
    for rel in ("lifecycle", "tiers") if seg.tiers else ("lifecycle",):
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {rel} AS SELECT * FROM ({RELATIONS[rel](ctx)}) x "
            "WHERE x.user_id = ?",
            [uid],
        )
    row = con.execute(
        "SELECT segment, cell, recency_days, frequency, monetary FROM rfm WHERE user_id = ?",
        [uid],
    ).fetchall()
    out["rfm"] = (
        dict(
            zip(["segment", "cell", "recency_days", "frequency", "monetary"], row[0], strict=True)
        )
        if row
        else None
    )
    row = con.execute(
        "SELECT stage, days_since_last FROM lifecycle WHERE user_id = ?", [uid]
    ).fetchall()
    out["lifecycle"] = {"stage": row[0][0], "days_since_last": row[0][1]} if row else None
    if seg.tiers:
        row = con.execute("SELECT tier, spend FROM tiers WHERE user_id = ?", [uid]).fetchall()
        out["tier"] = {"tier": row[0][0], "spend": row[0][1]} if row else None
    out["as_of"] = ctx.as_of
    out["segments"] = [
        {"segment": r[0], "run_id": r[1], "as_of": r[2]}
        for r in con.execute(
            """SELECT m.segment, m.run_id, r.as_of FROM segment_members m
               JOIN segment_runs r USING (run_id)
               WHERE m.user_id = ? AND m.run_id = (SELECT max(s.run_id) FROM segment_snapshots s
                                                  WHERE s.segment = m.segment)
               ORDER BY m.segment""",
            [uid],
        ).fetchall()
    ]
    return out
