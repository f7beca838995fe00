"""The database schema guard: a database from a newer mcrm, or a DuckDB file that is not an
mcrm database, is refused with exit 3 and a clear message, and never modified."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcrm.db import SCHEMA_VERSION, connect
from tests.conftest import WS, Cli, CliResult, Query

CliImport = Callable[..., tuple[CliResult, list[dict[str, Any]]]]

EVENTS = "event_id,user_id,name,timestamp\ne1,u1,open,2024-01-01 10:00\n"


def write_sql(path: Path, *statements: str) -> None:
    con = connect(str(path))
    try:
        for s in statements:
            con.execute(s)
    finally:
        con.close()


def test_newer_schema_version_is_refused(
    ws: WS, cli: Cli, cli_import: CliImport, query: Query
) -> None:
    ws.write("e.csv", EVENTS)
    assert cli_import(ws, "events", "e.csv")[0].exit_code == 0
    newer = SCHEMA_VERSION + 1
    write_sql(
        ws.ws.db_path, f"UPDATE mcrm_meta SET value = '{newer}' WHERE key = 'schema_version'"
    )
    for args in (("users", "show", "u1"), ("import", "events", "e.csv"), ("db", "stats")):
        r = cli(ws, *args)
        assert r.exit_code == 3, (args, r.stderr)
        first = r.stderr.splitlines()[0]
        assert first.startswith("mcrm: error: database schema version")
        assert f"{newer} is newer than this mcrm ({SCHEMA_VERSION})" in first
        assert "hint: upgrade mcrm" in r.stderr
    r = cli(ws, "db", "upgrade")
    assert r.exit_code == 3
    assert query(ws, "SELECT value FROM mcrm_meta WHERE key = 'schema_version'") == [(str(newer),)]
    assert query(ws, "SELECT count(*) FROM events") == [(1,)]


def test_foreign_duckdb_file_is_refused(ws: WS, cli: Cli, query: Query) -> None:
    ws.write("e.csv", EVENTS)
    ws.ws.db_path.parent.mkdir(parents=True)
    write_sql(ws.ws.db_path, "CREATE TABLE sales (id INTEGER)", "INSERT INTO sales VALUES (1)")
    for args in (("import", "events", "e.csv"), ("db", "stats"), ("users", "list")):
        r = cli(ws, *args)
        assert r.exit_code == 3, (args, r.stderr)
        assert "not an mcrm database" in r.stderr
        assert "Traceback" not in r.stderr
    tables = query(ws, "SELECT table_name FROM information_schema.tables")
    assert tables == [("sales",)]  # untouched


def test_garbage_file_as_database(ws: WS, cli: Cli) -> None:
    ws.ws.db_path.parent.mkdir(parents=True)
    ws.ws.db_path.write_bytes(b"this is not a database at all" * 100)
    r = cli(ws, "db", "stats")
    assert r.exit_code == 3
    assert r.stderr.startswith("mcrm: error: cannot open database")
    assert "Traceback" not in r.stderr


def test_fresh_database_records_versions(ws: WS, cli_import: CliImport, query: Query) -> None:
    ws.write("e.csv", EVENTS)
    assert cli_import(ws, "events", "e.csv")[0].exit_code == 0
    meta: dict[str, str] = dict(query(ws, "SELECT key, value FROM mcrm_meta"))
    assert meta["schema_version"] == str(SCHEMA_VERSION)
    import duckdb

    assert meta["engine_version"] == duckdb.__version__
