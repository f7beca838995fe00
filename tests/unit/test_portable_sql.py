"""Portable SQL (SPEC §8, style §12): what `mcrm segments sql NAME --dialect D` prints.

1. Golden files: every segment of the repo's example `segments.yaml` in every dialect, as of a
   fixed instant, compared with `tests/golden/sql/<dialect>/<segment>.sql`. To accept a change
   run `MCRM_UPDATE_GOLDENS=1 pytest tests/unit/test_portable_sql.py`; a mismatch leaves the
   actual SQL in `tests/.results/sql/` (git-ignored) for a diff.
2. A lint: the output is parsed back with SQLGlot in its dialect; functions SQLGlot does not
   know (`exp.Anonymous`: invented or engine-specific names), a deny-list (clock, randomness,
   engine hashes, approximate percentiles, ...) and per-dialect gaps are rejected, except for
   the documented `ALLOWED` predicates (docs/segments.md, "Portable SQL").
3. Parity on ClickHouse (chDB, pip-only, marker `chdb`): RFM, lifecycle and a few segments run
   in DuckDB (the SQL mcrm itself runs) and, transpiled, in chDB; rows compared sorted, floats
   rounded to 6 places.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlglot
import yaml
from sqlglot import exp

from mcrm.config import Workspace, open_workspace
from mcrm.errors import UsageError
from mcrm.segments import compile as C
from mcrm.segments.analytics import RELATIONS
from mcrm.segments.engine import segment_sql, transpile
from mcrm.segments.model import Node, load_segments

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "sql"
RESULTS = REPO / "tests" / ".results" / "sql"
UPDATE = os.environ.get("MCRM_UPDATE_GOLDENS") == "1"
UPDATE_HOW = "MCRM_UPDATE_GOLDENS=1 pytest tests/unit/test_portable_sql.py"

DIALECTS = ("spark", "bigquery", "snowflake", "clickhouse", "trino")
AS_OF = dt.datetime(2026, 11, 15, 20, 0)  # naive UTC, as segment_sql takes it
ZONE = "Europe/Prague"

EXAMPLE = list(yaml.safe_load((REPO / "segments.yaml").read_text(encoding="utf-8"))["segments"])


def make_ws(root: Path, segments_yaml: str | None = None) -> Workspace:
    root.mkdir(parents=True, exist_ok=True)
    if segments_yaml is None:
        shutil.copy(REPO / "segments.yaml", root / "segments.yaml")
    else:
        (root / "segments.yaml").write_text(segments_yaml, encoding="utf-8")
    (root / "mcrm.yaml").write_text(f"timezone: {ZONE}\n", encoding="utf-8")
    return open_workspace(str(root), {}, root)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return make_ws(tmp_path_factory.mktemp("portable"))


# ---------------------------------------------------------------------------------------------
# 1. golden files


def test_example_has_every_segment() -> None:
    assert len(EXAMPLE) == 27


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", EXAMPLE)
def test_golden(ws: Workspace, name: str, dialect: str) -> None:
    actual = segment_sql(ws, name, AS_OF, dialect)
    golden = GOLDEN / dialect / f"{name}.sql"
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
        return
    expected = golden.read_text(encoding="utf-8") if golden.exists() else None
    if actual != expected:
        out = RESULTS / dialect / f"{name}.sql"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(actual, encoding="utf-8")
        what = "differs from" if expected is not None else "has no"
        pytest.fail(
            f"`segments sql {name} --dialect {dialect}` {what} golden file "
            f"{golden.relative_to(REPO)}; actual output in {out.relative_to(REPO)}. "
            f"If the change is intended: {UPDATE_HOW}",
            pytrace=False,
        )


def test_no_stale_goldens() -> None:
    expected = {f"{d}/{n}.sql" for d in DIALECTS for n in EXAMPLE}
    found = {str(p.relative_to(GOLDEN)) for p in GOLDEN.glob("*/*.sql")}
    assert not found - expected, f"golden files of no example segment: {sorted(found - expected)}"


def test_segment_sql_needs_no_database(ws: Workspace) -> None:
    segment_sql(ws, "champions", AS_OF, "spark")
    assert not ws.db_path.exists()
    assert not (ws.root / ".mcrm").exists()


def test_as_of_is_a_literal_and_the_output_is_stable(ws: Workspace) -> None:
    a = segment_sql(ws, "cart_abandoners", AS_OF, "spark")
    assert a == segment_sql(ws, "cart_abandoners", AS_OF, "spark")
    assert "2026-11-12 20:00:00" in a  # within: 3d before the as-of instant
    later = segment_sql(ws, "cart_abandoners", AS_OF + dt.timedelta(days=1), "spark")
    assert later != a and "2026-11-13 20:00:00" in later


def test_unknown_dialect_is_a_usage_error(ws: Workspace) -> None:
    with pytest.raises(UsageError, match="unknown dialect 'sparkk'"):
        segment_sql(ws, "champions", AS_OF, "sparkk")


# ---------------------------------------------------------------------------------------------
# 2. lint

# Functions that really exist in the dialect but that SQLGlot's parser for it does not know
# (so they parse as exp.Anonymous). Only emitted by mcrm's own rewrites in `transpile`.
REAL_FUNCTIONS: dict[str, set[str]] = {
    "spark": {"MAKE_DATE"},  # Spark SQL built-in since 3.0
    "trino": {"AT_TIMEZONE", "WITH_TIMEZONE"},  # Trino date and time functions
}

# Anywhere in the output: instants must be literals, results deterministic.
DENY_NODES: dict[type[exp.Expression], str] = {
    exp.CurrentDate: "current_date (the as-of instant is a literal)",
    exp.CurrentTimestamp: "now() / current_timestamp (the as-of instant is a literal)",
    exp.CurrentTime: "current_time (the as-of instant is a literal)",
    exp.Rand: "random()",
    exp.TimeToUnix: "epoch() (TIME_TO_UNIX: ClickHouse lacks it)",
    exp.ApproxQuantile: "an approximate percentile (results differ from DuckDB's exact one)",
    exp.PercentileCont: "percentile_cont (ClickHouse syntax error, approximate in Spark/Trino)",
    exp.PercentileDisc: "percentile_disc (not portable)",
    exp.JSONPathWildcard: "a JSON path wildcard ($[*]: no portable form)",
    exp.DayOfWeekIso: "isodow (SQLGlot's Spark rewrite is off by one weekday)",
}
DENY_NAMES = {
    "NOW",
    "CURRENT_DATE",
    "CURRENT_TIMESTAMP",
    "RANDOM",
    "RAND",
    "HASH",
    "EPOCH",
    "EPOCH_MS",
    "TIME_TO_UNIX",
    "APPROX_PERCENTILE",
    "PERCENTILE_APPROX",
    "LIST_HAS_ANY",
    "REGEXP_MATCHES",
    "MACRO",
}
# Known to be missing in a dialect although SQLGlot emits them.
MISSING: dict[str, dict[type[exp.Expression], str]] = {
    "clickhouse": {exp.DateFromParts: "DATE_FROM_PARTS (no such ClickHouse function)"},
    "trino": {exp.DateFromParts: "DATE_FROM_PARTS (no such Trino function)"},
}

# Predicates with no portable form in a dialect (documented in docs/segments.md).
ALLOWED: dict[tuple[str, str], str] = {
    ("habit", "clickhouse"): "per-user time zone: ClickHouse's AT TIME ZONE / toTimeZone "
    "needs a constant zone (ILLEGAL_COLUMN at run time)",
    ("birthday", "clickhouse"): "per-user time zone (as habit), and make_date becomes "
    "DATE_FROM_PARTS, which ClickHouse lacks",
    ("birthday", "trino"): "make_date becomes DATE_FROM_PARTS, which Trino lacks",
}


def lint(sql: str, dialect: str) -> list[str]:
    """Portability problems of emitted SQL, parsed back in its dialect."""
    problems = []
    tree = sqlglot.parse_one(sql, read=dialect)
    for node in tree.walk():
        name = node.name.upper() if isinstance(node, exp.Anonymous) else ""
        if isinstance(node, exp.Func) and not name:
            name = node.sql_name().upper()
        if name in DENY_NAMES:
            problems.append(f"denied function {name}()")
        elif isinstance(node, exp.Anonymous) and name not in REAL_FUNCTIONS.get(dialect, set()):
            problems.append(f"unknown function {name}()")
        for kind, why in {**DENY_NODES, **MISSING.get(dialect, {})}.items():
            if isinstance(node, kind):
                problems.append(why)
        if dialect == "clickhouse" and isinstance(node, exp.AtTimeZone):
            if not isinstance(node.args.get("zone"), exp.Literal):
                problems.append("AT TIME ZONE with a non-constant zone")
        if (
            isinstance(node, exp.Cast)
            and node.to.is_type(*exp.DataType.INTEGER_TYPES)
            and any(
                isinstance(s, exp.Literal) and s.is_string and s.this.lower() == "0x"
                for s in node.this.find_all(exp.Literal)
            )
        ):
            problems.append("a '0x' || … string cast to an integer")
    return sorted(set(problems))


def heads(node: Node, seg: Any) -> set[str]:
    out = {node.head}
    for c in node.children:
        out |= heads(c, seg)
    if node.head == "segment":
        out |= heads(seg.segments[node.args["name"]].where, seg)
    return out


def allowed(preds: set[str], dialect: str) -> list[str]:
    return [p for p in sorted(preds) if (p, dialect) in ALLOWED]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_lint_example_segments(ws: Workspace, dialect: str) -> None:
    seg = load_segments(ws.root)
    bad = {}
    for name in EXAMPLE:
        problems = lint(segment_sql(ws, name, AS_OF, dialect), dialect)
        if problems and not allowed(heads(seg.segments[name].where, seg), dialect):
            bad[name] = problems
    assert not bad, f"{dialect}: {bad}"


def test_lint_catches_what_it_should() -> None:
    assert "random()" in lint("SELECT random()", "duckdb")
    assert "unknown function MY_MACRO()" in lint("SELECT my_macro(1)", "duckdb")
    assert "denied function HASH()" in lint("SELECT hash(x) FROM t", "duckdb")
    assert lint("SELECT current_date", "duckdb")
    assert lint("SELECT now()", "duckdb")
    assert lint("SELECT CAST('0x' || substr(md5(x), 1, 8) AS BIGINT) FROM t", "duckdb")
    assert lint("SELECT isodow(ts) FROM t", "duckdb")
    assert lint("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM t", "duckdb")
    assert lint("SELECT DATE_FROM_PARTS(2020, 1, 2)", "trino")
    assert lint("SELECT epoch(ts) FROM t", "duckdb")


# Every predicate the language has, for the lint (the example file does not use them all).
COVERAGE: dict[str, dict[str, Any]] = {
    "places": {"shop": {"lat": 50.0875, "lon": 14.4213, "radius_km": 2}},
    "tiers": {"window": "365d", "levels": {"bronze": 0, "gold": 400}},
    "segments": {
        "attr_eq": {"where": {"attr": "os", "eq": "ios"}},
        "attr_ne": {"where": {"attr": "city", "ne": "Prague"}},
        "attr_in": {"where": {"attr": "country", "in": ["CZ", "SK"]}},
        "attr_not_in": {"where": {"attr": "country", "not_in": ["CZ"]}},
        "attr_num": {"where": {"attr": "attributes.level", "gte": 3}},
        "attr_between": {"where": {"attr": "attributes.level", "between": [1, 5]}},
        "attr_bool": {"where": {"attr": "attributes.vip", "eq": True}},
        "attr_exists": {"where": {"attr": "email", "exists": True}},
        "attr_contains": {"where": {"attr": "email", "contains": "@gmail"}},
        "attr_starts_with": {"where": {"attr": "city", "starts_with": "Pra"}},
        "attr_matches": {"where": {"attr": "phone", "matches": "^\\+420"}},
        "attr_date": {"where": {"attr": "install_time", "gte": "2026-01-01"}},
        "age": {"where": {"age": [25, 34]}},
        "event_count": {"where": {"event": "add_to_cart", "within": "7d", "count": {"gte": 2}}},
        "event_props": {
            "where": {"event": "view", "within": "7d", "where": {"screen": "home", "n": {"gt": 1}}}
        },
        "event_first": {"where": {"event": "purchase_done", "within": "7d", "first_time": True}},
        "event_between": {
            "where": {
                "event": "view",
                "between": ["2026-10-01", "2026-10-31"],
                "count": {"lte": 2},
            }
        },
        "inactive": {"where": {"inactive_for": "14d"}},
        "first_seen": {"where": {"first_seen": {"within": "7d"}}},
        "purchase_amount": {"where": {"purchase": {"within": "30d", "amount": {"gte": 50}}}},
        "spend_lt": {"where": {"spend": {"within": "90d", "lt": 100}}},
        "aov": {"where": {"aov": {"gte": 50}}},
        "rfm_ranges": {"where": {"rfm": {"r": [4, 5], "f": [3, 5]}}},
        "lifecycle": {"where": {"lifecycle": ["active", "new"]}},
        "lifecycle_change": {
            "where": {"lifecycle_change": {"from": "dormant", "to": "reactivated", "within": "7d"}}
        },
        "near": {"where": {"near": "shop"}},
        "visited": {"where": {"visited": "shop", "within": "14d", "min_count": 3}},
        "habit": {"where": {"habit": {"event": "purchase", "weekday": ["sat"], "min_share": 0.5}}},
        "habit_hour": {"where": {"habit": {"event": "view", "hour": [12, 18], "min_share": 0.5}}},
        "overdue": {"where": {"overdue": {"factor": 1.5, "min_purchases": 3}}},
        "birthday": {"where": {"birthday": {"within": "0d"}}},
        "tier": {"where": {"tier": "gold"}},
        "push": {"where": {"reachable": "push"}},
        "sms": {"where": {"reachable": "sms"}},
        "inapp": {"where": {"reachable": "inapp"}},
        "bucket": {"where": {"bucket": {"percent": 10, "salt": "spring"}}},
        "p_alive": {"where": {"p_alive": {"lt": 0.3}}},
        "clv": {"where": {"clv": {"between": [100, 500]}}},
        "combinators": {
            "where": {"any": [{"segment": "near"}, {"not": {"all": [{"segment": "tier"}]}}]}
        },
    },
}
# No portable form at all: `transpile` refuses them for every other dialect.
DUCKDB_ONLY = {
    "purchase_sku": {"where": {"purchase": {"within": "30d", "sku": ["A1", "B2"]}}},
    "purchase_category": {"where": {"purchase": {"category": ["shoes"]}}},
}


@pytest.fixture(scope="module")
def coverage_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    spec = dict(COVERAGE)
    spec["segments"] = {**COVERAGE["segments"], **DUCKDB_ONLY}
    return make_ws(tmp_path_factory.mktemp("coverage"), yaml.safe_dump(spec, sort_keys=False))


def test_coverage_file_is_valid_and_complete(coverage_ws: Workspace) -> None:
    seg = load_segments(coverage_ws.root)  # raises on any problem
    used = set().union(*(heads(s.where, seg) for s in seg.segments.values()))
    compilers = {n[2:] for n in dir(C) if n.startswith("c_")} - {"invalid", "sql"}
    assert compilers <= used, f"predicates without a lint case: {sorted(compilers - used)}"


@pytest.mark.parametrize("dialect", ("duckdb", *DIALECTS))
def test_lint_every_predicate(coverage_ws: Workspace, dialect: str) -> None:
    seg = load_segments(coverage_ws.root)
    bad, hit = {}, set()
    for name in COVERAGE["segments"]:
        problems = lint(segment_sql(coverage_ws, name, AS_OF, dialect), dialect)
        ok = allowed(heads(seg.segments[name].where, seg), dialect)
        if problems and not ok:
            bad[name] = problems
        if problems and ok:
            hit.update(ok)
    assert not bad, f"{dialect}: {bad}"
    stale = {p for (p, d) in ALLOWED if d == dialect} - hit
    assert not stale, f"allow-listed for {dialect} but portable now: {sorted(stale)}"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", sorted(DUCKDB_ONLY))
def test_item_filters_are_duckdb_only(coverage_ws: Workspace, name: str, dialect: str) -> None:
    assert "'$[*]." in segment_sql(coverage_ws, name, AS_OF, "duckdb")
    with pytest.raises(UsageError, match=f"cannot express this segment in {dialect}"):
        segment_sql(coverage_ws, name, AS_OF, dialect)


@pytest.mark.parametrize(
    ("dialect", "needle"),
    [
        ("spark", "FROM_UTC_TIMESTAMP(FROM_UTC_TIMESTAMP("),
        ("snowflake", "CONVERT_TIMEZONE('UTC', 'Europe/Prague', "),
        ("bigquery", "DATETIME(TIMESTAMP("),
        ("trino", "AT_TIMEZONE(WITH_TIMEZONE("),
        ("clickhouse", "AT TIME ZONE 'UTC') AT TIME ZONE 'Europe/Prague'"),
    ],
)
def test_local_day_reads_timestamps_as_utc(dialect: str, needle: str) -> None:
    """Not the session zone: Snowflake's 2-argument CONVERT_TIMEZONE and Trino's at_timezone of
    a naive timestamp would read it in the session zone; BigQuery has no DATETIME(datetime,
    zone)."""
    out = transpile(f"SELECT {C.local_day('p.ts', ZONE)} FROM purchases p", dialect)
    squash = str.maketrans("", "", " \n()")
    assert needle.translate(squash) in out.translate(squash)


def test_trino_md5_takes_bytes() -> None:
    assert "MD5(TO_UTF8(user_id))" in transpile("SELECT md5(user_id) FROM users", "trino")


# ---------------------------------------------------------------------------------------------
# 3. parity on ClickHouse (chDB)

PARITY_YAML = """
places:
  shop: { lat: 50.0875, lon: 14.4213, radius_km: 2 }
rfm: { window: 365d, scheme: rf10 }
lifecycle: { activity: [session_start, purchase] }
segments:
  near_shop: { where: { near: shop, radius_km: 5 } }
  visited_shop: { where: { visited: shop, within: 30d, min_count: 2 } }
  champions: { where: { rfm: [champions, loyal_customers] } }
  overdue: { where: { overdue: { factor: 1.5, min_purchases: 3 } } }
  bucket: { where: { bucket: { percent: 30, salt: spring } } }
  quiet: { where: { inactive_for: 14d } }
"""
PARITY_SEGMENTS = ["near_shop", "visited_shop", "champions", "overdue", "bucket", "quiet"]

TABLES = {
    "users": [
        ("user_id", "VARCHAR", "String"),
        ("first_seen", "TIMESTAMP", "Nullable(DateTime64(6))"),
        ("home_lat", "DOUBLE", "Nullable(Float64)"),
        ("home_lon", "DOUBLE", "Nullable(Float64)"),
        ("timezone", "VARCHAR", "Nullable(String)"),
    ],
    "events": [
        ("user_id", "VARCHAR", "Nullable(String)"),
        ("name", "VARCHAR", "String"),
        ("ts", "TIMESTAMP", "DateTime64(6)"),
        ("latitude", "DOUBLE", "Nullable(Float64)"),
        ("longitude", "DOUBLE", "Nullable(Float64)"),
        ("platform", "VARCHAR", "Nullable(String)"),
    ],
    "purchases": [
        ("user_id", "VARCHAR", "Nullable(String)"),
        ("ts", "TIMESTAMP", "DateTime64(6)"),
        ("status", "VARCHAR", "String"),
        ("amount_base", "DECIMAL(18,3)", "Nullable(Decimal(18, 3))"),
    ],
}


def dataset(seed: int = 7) -> dict[str, list[tuple[Any, ...]]]:
    """Small but awkward: local-midnight instants, ties, refunds, anonymous rows, NULL homes."""
    rnd = random.Random(seed)
    users: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    purchases: list[tuple[Any, ...]] = []
    for i in range(60):
        uid = f"u{i:03d}"
        first = AS_OF - dt.timedelta(days=rnd.randint(0, 500), minutes=rnd.randint(0, 1439))
        home: tuple[float | None, float | None] = (
            (50.0875 + rnd.uniform(-0.06, 0.06), 14.4213 + rnd.uniform(-0.09, 0.09))
            if i % 4
            else (None, None)
        )
        users.append((uid, first if i % 9 else None, *home, None))
        for _ in range(rnd.randint(0, 12)):
            back = dt.timedelta(days=rnd.randint(0, 400), hours=rnd.choice([0, 22, 23]))
            ts = AS_OF - back - dt.timedelta(minutes=rnd.choice([0, 30, 59]))
            near = rnd.random() < 0.5
            lat = 50.0875 + rnd.uniform(-0.02, 0.02) if near else None
            lon = 14.4213 + rnd.uniform(-0.03, 0.03) if near else None
            name = rnd.choice(["session_start", "view", "location"])
            events.append((uid, name, ts, lat, lon, rnd.choice(["ios", "android", None])))
        for _ in range(rnd.choice([0, 1, 1, 2, 3, 5, 8])):
            ts = AS_OF - dt.timedelta(days=rnd.randint(0, 420), hours=rnd.choice([0, 23]))
            status = "paid" if rnd.random() < 0.85 else "refunded"
            amount = Decimal(rnd.choice([10, 25, 49.9, 100, 250])).quantize(Decimal("0.001"))
            purchases.append((uid, ts, status, amount))
    events.append((None, "session_start", AS_OF - dt.timedelta(days=1), None, None, "web"))
    purchases.append((None, AS_OF - dt.timedelta(days=2), "paid", Decimal("5.000")))
    return {"users": users, "events": events, "purchases": purchases}


def values_sql(rows: list[tuple[Any, ...]]) -> str:
    def one(v: Any) -> str:
        if v is None:
            return "NULL"
        if isinstance(v, dt.datetime):
            return f"'{v.isoformat(sep=' ', timespec='microseconds')}'"
        if isinstance(v, str):
            return "'" + v.replace("'", "''") + "'"
        return str(v)

    return ", ".join("(" + ", ".join(one(v) for v in r) + ")" for r in rows)


def norm(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float | Decimal):
        return round(float(v), 6)
    try:
        return round(float(v), 6)
    except ValueError:
        return str(v)


def rows_sorted(rows: list[Any]) -> list[tuple[Any, ...]]:
    out = [tuple(norm(v) for v in r) for r in rows]
    return sorted(out, key=lambda r: tuple((x is None, str(x)) for x in r))


@pytest.fixture(scope="module")
def engines(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Any, Any, Workspace]]:
    chdb_session = pytest.importorskip(
        "chdb.session",
        reason="parity needs chDB (pip-only ClickHouse): pip install chdb",
    )
    import duckdb

    data = dataset()
    duck = duckdb.connect()
    ch = chdb_session.Session()
    ch.query("SET session_timezone = 'UTC'")  # naive timestamps are UTC (spec §3)
    for table, cols in TABLES.items():
        duck.execute(f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, t, _ in cols)})")
        ch.query(
            f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, _, t in cols)}) ENGINE = Memory"
        )
        vals = values_sql(data[table])
        duck.execute(f"INSERT INTO {table} VALUES {vals}")
        ch.query(f"INSERT INTO {table} VALUES {vals}")
    ws = make_ws(tmp_path_factory.mktemp("parity"), PARITY_YAML)
    yield duck, ch, ws
    duck.close()
    ch.close()


def run_both(engines: tuple[Any, Any, Workspace], duck_sql: str) -> tuple[list[Any], list[Any]]:
    duck, ch, _ = engines
    got_duck = duck.execute(duck_sql).fetchall()
    ch_sql = transpile(duck_sql, "clickhouse").rstrip().rstrip(";")
    res = ch.query(ch_sql, "JSONCompact")
    got_ch = json.loads(res.bytes() or b'{"data": []}')["data"]
    return rows_sorted(got_duck), rows_sorted(got_ch)


def parity_ctx(ws: Workspace) -> C.Ctx:
    return C.Ctx(load_segments(ws.root), AS_OF, ZONE)


@pytest.mark.chdb
@pytest.mark.parametrize("relation", ["rfm", "lifecycle"])
def test_parity_relation(engines: tuple[Any, Any, Workspace], relation: str) -> None:
    sql = RELATIONS[relation](parity_ctx(engines[2]))
    duck, ch = run_both(engines, f"SELECT * FROM ({sql}) q")
    assert len(duck) > 20
    assert duck == ch


@pytest.mark.chdb
@pytest.mark.parametrize("name", PARITY_SEGMENTS)
def test_parity_segment(engines: tuple[Any, Any, Workspace], name: str) -> None:
    """The SQL `compute` runs in DuckDB against `segments sql --dialect clickhouse` in chDB."""
    ctx = parity_ctx(engines[2])
    body = C.segment_query(name, ctx)
    rels = [r for r in ("rfm", "lifecycle", "tiers") if r in ctx.needs]
    ctes = [f"{r} AS ({RELATIONS[r](ctx)})" for r in rels]
    duck, ch = run_both(engines, (f"WITH {', '.join(ctes)} " if ctes else "") + body)
    assert 0 < len(duck) < 60, f"{name}: a parity case should split the users ({len(duck)})"
    assert duck == ch
    _, chs, ws = engines
    printed = segment_sql(ws, name, AS_OF, "clickhouse").rstrip().rstrip(";")
    assert rows_sorted(json.loads(chs.query(printed, "JSONCompact").bytes())["data"]) == ch
