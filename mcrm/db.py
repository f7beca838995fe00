"""The one DuckDB connection factory, the schema and its upgrade path.

Why this shape:
- Every connection is opened with extension auto-install/auto-load off (cron must never wait on
  the network; extensions cannot be installed offline anyway) and `SET TimeZone='UTC'`, so
  TIMESTAMPTZ -> DATE casts never follow the machine's zone. All timestamps are stored as
  naive `TIMESTAMP` values meaning UTC.
- DuckDB allows one writer process per file, and while it holds the file nobody else can even
  read it. So write connections are opened late and closed early (one per command), and a
  reader that meets the lock retries with bounded backoff, then fails with `DatabaseLocked`
  (exit 3) naming the PID that holds it.
- Entity tables carry no PRIMARY KEY: uniqueness is kept by the set-based merge statements in
  `mcrm.ingest.load` (which must count inserted / updated / duplicate rows anyway), and ART
  indexes would make 5-million-row imports several times slower.
- `schema_version` lives in `mcrm_meta`; `MIGRATIONS[n]` takes a database from version n to
  n + 1. A database from a newer mcrm is refused with a clear message, never touched.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from mcrm.errors import DatabaseLocked, DataError

if TYPE_CHECKING:
    import duckdb

    from mcrm.config import Workspace

SCHEMA_VERSION = 6

SCHEMA_V1 = """
CREATE TABLE mcrm_meta (key VARCHAR, value VARCHAR);
CREATE TABLE users (
    user_id VARCHAR NOT NULL, email VARCHAR, phone VARCHAR, first_name VARCHAR,
    last_name VARCHAR, gender VARCHAR, birth_date DATE, locale VARCHAR, country VARCHAR,
    region VARCHAR, city VARCHAR, home_lat DOUBLE, home_lon DOUBLE, timezone VARCHAR,
    os VARCHAR, os_version VARCHAR, device_model VARCHAR, app_version VARCHAR,
    acq_source VARCHAR, acq_medium VARCHAR, acq_campaign VARCHAR, install_time TIMESTAMP,
    attributes JSON, first_seen TIMESTAMP, last_seen TIMESTAMP,
    created_at TIMESTAMP, updated_at TIMESTAMP
);
CREATE TABLE identities (
    kind VARCHAR NOT NULL, value VARCHAR NOT NULL, user_id VARCHAR NOT NULL,
    source VARCHAR, first_seen TIMESTAMP
);
CREATE TABLE devices (
    user_id VARCHAR NOT NULL, device_id VARCHAR NOT NULL, platform VARCHAR,
    push_token VARCHAR, push_provider VARCHAR, push_enabled BOOLEAN, os VARCHAR,
    os_version VARCHAR, device_model VARCHAR, app_version VARCHAR, last_seen TIMESTAMP,
    invalidated_at TIMESTAMP, updated_at TIMESTAMP
);
CREATE TABLE events (
    event_id VARCHAR NOT NULL, user_id VARCHAR, anonymous_id VARCHAR, name VARCHAR NOT NULL,
    ts TIMESTAMP NOT NULL, session_id VARCHAR, platform VARCHAR, os VARCHAR,
    os_version VARCHAR, app_version VARCHAR, device_model VARCHAR, screen VARCHAR,
    country VARCHAR, region VARCHAR, city VARCHAR, latitude DOUBLE, longitude DOUBLE,
    utm_source VARCHAR, utm_medium VARCHAR, utm_campaign VARCHAR, properties JSON,
    revenue DECIMAL(18,3), currency VARCHAR, import_id BIGINT
);
CREATE TABLE purchases (
    order_id VARCHAR NOT NULL, user_id VARCHAR, customer_id VARCHAR, ts TIMESTAMP NOT NULL,
    amount DECIMAL(18,3) NOT NULL, currency VARCHAR NOT NULL, amount_base DECIMAL(18,3),
    status VARCHAR NOT NULL, channel VARCHAR, items JSON, source VARCHAR, campaign VARCHAR,
    coupon_code VARCHAR, import_id BIGINT, updated_at TIMESTAMP
);
CREATE TABLE consents (
    user_id VARCHAR NOT NULL, channel VARCHAR NOT NULL, purpose VARCHAR NOT NULL,
    granted BOOLEAN NOT NULL, ts TIMESTAMP NOT NULL, source VARCHAR, import_id BIGINT
);
CREATE TABLE fx_rates (
    date DATE NOT NULL, currency VARCHAR NOT NULL, rate DECIMAL(18,8) NOT NULL
);
CREATE TABLE ad_spend (
    date DATE NOT NULL, source VARCHAR NOT NULL, campaign VARCHAR, cost DECIMAL(18,3) NOT NULL,
    currency VARCHAR NOT NULL, cost_base DECIMAL(18,3)
);
CREATE TABLE message_events (
    event_id VARCHAR NOT NULL, provider VARCHAR, message_id VARCHAR, user_id VARCHAR,
    campaign VARCHAR, channel VARCHAR, type VARCHAR NOT NULL, ts TIMESTAMP NOT NULL,
    properties JSON, import_id BIGINT
);
CREATE TABLE imports (
    import_id BIGINT NOT NULL, kind VARCHAR, preset VARCHAR, file VARCHAR,
    started_at TIMESTAMP, finished_at TIMESTAMP, rows_read BIGINT, inserted BIGINT,
    updated BIGINT, duplicates BIGINT, rejected BIGINT, forgotten BIGINT, seconds DOUBLE
);
CREATE TABLE import_rejects (
    import_id BIGINT NOT NULL, file VARCHAR, line BIGINT, column_name VARCHAR,
    reason VARCHAR, raw VARCHAR
);
CREATE TABLE user_merges (
    from_user_id VARCHAR NOT NULL, into_user_id VARCHAR NOT NULL, merged_at TIMESTAMP,
    reason VARCHAR
);
CREATE TABLE tombstones (kind VARCHAR NOT NULL, value_hash VARCHAR NOT NULL,
    forgotten_at TIMESTAMP);
CREATE SEQUENCE import_seq START 1;
"""


def _v1_to_v2(con: duckdb.DuckDBPyConnection) -> None:
    """Segment snapshots and lifecycle history (segments issue)."""
    for stmt in (
        "CREATE TABLE segment_runs (run_id BIGINT NOT NULL, as_of TIMESTAMP NOT NULL, "
        "computed_at TIMESTAMP NOT NULL)",
        "CREATE TABLE segment_snapshots (run_id BIGINT NOT NULL, segment VARCHAR NOT NULL, "
        "size BIGINT NOT NULL, definition_hash VARCHAR, seconds DOUBLE)",
        "CREATE TABLE segment_members (run_id BIGINT NOT NULL, segment VARCHAR NOT NULL, "
        "user_id VARCHAR NOT NULL)",
        "CREATE TABLE lifecycle_history (run_id BIGINT NOT NULL, as_of TIMESTAMP NOT NULL, "
        "user_id VARCHAR NOT NULL, stage VARCHAR NOT NULL)",
        "CREATE SEQUENCE segment_run_seq START 1",
    ):
        con.execute(stmt)


def _v2_to_v3(con: duckdb.DuckDBPyConnection) -> None:
    """Campaign plans (campaigns issue): one row per plan, one per audience member; coupon
    assignments."""
    for stmt in (
        "CREATE TABLE campaign_plans (plan_id VARCHAR NOT NULL, campaign VARCHAR NOT NULL, "
        "occurrence VARCHAR NOT NULL, as_of TIMESTAMP NOT NULL, created_at TIMESTAMP NOT NULL, "
        "definition_hash VARCHAR, file VARCHAR, audience BIGINT, planned BIGINT)",
        "CREATE TABLE plan_rows (plan_id VARCHAR NOT NULL, user_id VARCHAR NOT NULL, "
        "status VARCHAR NOT NULL, channel VARCHAR, variant VARCHAR, send_at TIMESTAMP, "
        "reason VARCHAR, locale VARCHAR, zone VARCHAR, idempotency_key VARCHAR, "
        "message_hash VARCHAR, sms_segments INTEGER)",
    ):
        con.execute(stmt)
    from mcrm.campaigns.coupons import COUPON_DDL

    con.execute(COUPON_DDL)


def _v3_to_v4(con: duckdb.DuckDBPyConnection) -> None:
    """Plan rows keep their occurrence (a trigger campaign's rows each have their own: the
    triggering event's time, which makes them once per occurrence) and the reason's detail
    (the excluded segment, the cap hit, the template's skip reason)."""
    con.execute("ALTER TABLE plan_rows ADD COLUMN occurrence VARCHAR")
    con.execute("ALTER TABLE plan_rows ADD COLUMN detail VARCHAR")


def _v4_to_v5(con: duckdb.DuckDBPyConnection) -> None:
    """The outbox (dispatch issue): one row per message under its idempotency key, and the
    invalid-address registry."""
    from mcrm.dispatch.outbox import OUTBOX_DDL

    for stmt in OUTBOX_DDL:
        con.execute(stmt)


def _v5_to_v6(con: duckdb.DuckDBPyConnection) -> None:
    """CLV predictions (predict issue): one row per `mcrm predict clv` run (settings, fitted
    parameters and log-likelihoods as JSON, warnings) and one per customer of that run."""
    for stmt in (
        "CREATE TABLE prediction_runs (run_id BIGINT NOT NULL, as_of TIMESTAMP NOT NULL, "
        "computed_at TIMESTAMP NOT NULL, horizon_days DOUBLE NOT NULL, "
        "discount_annual DOUBLE NOT NULL, discount_monthly DOUBLE NOT NULL, "
        "unit VARCHAR NOT NULL, "
        "params JSON NOT NULL, customers BIGINT NOT NULL, repeaters BIGINT NOT NULL, "
        "warnings JSON, seconds DOUBLE)",
        "CREATE TABLE predictions (run_id BIGINT NOT NULL, user_id VARCHAR NOT NULL, "
        'frequency INTEGER NOT NULL, recency INTEGER NOT NULL, "T" INTEGER NOT NULL, '
        "monetary_value DECIMAL(18,3) NOT NULL, p_alive DOUBLE NOT NULL, "
        "expected_purchases DOUBLE NOT NULL, expected_aov DECIMAL(18,3) NOT NULL, "
        "clv DECIMAL(18,3) NOT NULL)",
        "CREATE SEQUENCE prediction_run_seq START 1",
    ):
        con.execute(stmt)


# MIGRATIONS[n] upgrades a database at schema version n to n + 1.
MIGRATIONS: dict[int, Callable[[duckdb.DuckDBPyConnection], None]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
    5: _v5_to_v6,
}

LOCK_RE = re.compile(r"PID (\d+)")


def connect(path: str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A configured connection; lock conflicts become `DatabaseLocked`."""
    import duckdb

    config = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    try:
        con = duckdb.connect(path, read_only=read_only, config=config)  # type: ignore[arg-type]
    except duckdb.IOException as e:
        msg = str(e)
        if "lock" in msg.lower():
            m = LOCK_RE.search(msg)
            holder = f" by process {m.group(1)}" if m else ""
            raise DatabaseLocked(
                f"database is locked{holder}",
                hint="another mcrm command is writing; wait for it and retry",
            ) from None
        raise DataError(f"cannot open database {path}: {msg.splitlines()[0]}") from None
    except duckdb.Error as e:
        raise DataError(
            f"cannot open database {path}: {str(e).splitlines()[0]}",
            hint="is it a DuckDB file made by DuckDB 2.x?",
        ) from None
    con.execute("SET TimeZone='UTC'")
    # progress goes through mcrm's own stderr reporting, never DuckDB's bar
    con.execute("SET enable_progress_bar = false")
    return con


@contextmanager
def open_db(
    ws: Workspace, write: bool = False, retries: int = 5
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The workspace database, created and upgraded on the first write.

    Readers retry a locked file with bounded backoff; writers too (a cron import may meet a
    running report), then give up with `DatabaseLocked`.
    """
    path = ws.db_path
    if not path.exists():
        if not write:
            raise DataError(
                f"no database yet at {ws.rel(path)}",
                hint="import data first: mcrm import events data/... (or run `mcrm demo`)",
            )
        path.parent.mkdir(parents=True, exist_ok=True)
    delay = 0.1
    for attempt in range(retries + 1):
        try:
            con = connect(str(path), read_only=not write)
            break
        except DatabaseLocked:
            if attempt == retries:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        ensure_schema(con, write)
        yield con
    finally:
        con.close()


def ensure_schema(con: duckdb.DuckDBPyConnection, write: bool) -> None:
    version = schema_version(con)
    if version == SCHEMA_VERSION:
        return
    if version is None:
        if not write:
            raise DataError("database has no mcrm schema", hint="is this an mcrm database?")
        create_schema(con)
        return
    if version > SCHEMA_VERSION:
        raise DataError(
            f"database schema version {version} is newer than this mcrm ({SCHEMA_VERSION})",
            hint="upgrade mcrm: pip install -U mcrm",
        )
    if not write:
        raise DataError(
            f"database schema version {version} is older than this mcrm ({SCHEMA_VERSION})",
            hint="run `mcrm db upgrade` (it upgrades in place, in one transaction)",
        )
    upgrade(con, version)


def schema_version(con: duckdb.DuckDBPyConnection) -> int | None:
    has_meta = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'mcrm_meta'"
    ).fetchall()[0][0]
    if not has_meta:
        tables = con.execute("SELECT count(*) FROM information_schema.tables").fetchall()[0][0]
        if tables:
            raise DataError(
                "this DuckDB file is not an mcrm database (it has other tables)",
                hint="point `database:` in mcrm.yaml at a new file",
            )
        return None
    row = con.execute("SELECT value FROM mcrm_meta WHERE key = 'schema_version'").fetchall()
    return int(row[0][0]) if row else None


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    import duckdb

    con.execute("BEGIN")
    try:
        for stmt in SCHEMA_V1.split(";"):
            if stmt.strip():
                con.execute(stmt)
        con.execute(
            "INSERT INTO mcrm_meta VALUES ('schema_version', ?), ('created_by_engine', ?),"
            " ('engine_version', ?)",
            [str(1), duckdb.__version__, duckdb.__version__],
        )
        for v in range(1, SCHEMA_VERSION):
            MIGRATIONS[v](con)
        _set_version(con, SCHEMA_VERSION)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def upgrade(con: duckdb.DuckDBPyConnection, version: int) -> None:
    """Apply every migration from `version` to the current one, in one transaction."""
    import duckdb

    con.execute("BEGIN")
    try:
        for v in range(version, SCHEMA_VERSION):
            if v not in MIGRATIONS:
                raise DataError(f"no upgrade path from schema version {v}")
            MIGRATIONS[v](con)
        _set_version(con, SCHEMA_VERSION)
        con.execute(
            "UPDATE mcrm_meta SET value = ? WHERE key = 'engine_version'", [duckdb.__version__]
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _set_version(con: duckdb.DuckDBPyConnection, version: int) -> None:
    con.execute("UPDATE mcrm_meta SET value = ? WHERE key = 'schema_version'", [str(version)])


def meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {k: v for k, v in con.execute("SELECT key, value FROM mcrm_meta").fetchall()}


ENTITY_TABLES = (
    "users",
    "identities",
    "devices",
    "events",
    "purchases",
    "consents",
    "fx_rates",
    "ad_spend",
    "message_events",
    "imports",
    "import_rejects",
    "user_merges",
    "tombstones",
    "segment_runs",
    "segment_snapshots",
    "segment_members",
    "lifecycle_history",
)


def user_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every table holding people's rows by `user_id` (users and identities excluded), so
    merges and erasure reach tables that later schema versions add."""
    rows = con.execute(
        "SELECT DISTINCT table_name FROM information_schema.columns "
        "WHERE column_name = 'user_id' AND table_schema = 'main' "
        "AND table_name NOT IN ('users', 'identities') ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def stats(con: duckdb.DuckDBPyConnection) -> list[dict[str, object]]:
    """Row counts per table plus the events/purchases time span."""
    out: list[dict[str, object]] = []
    for t in ENTITY_TABLES:
        n = con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
        out.append({"table": t, "rows": int(n)})
    return out
