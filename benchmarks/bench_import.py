"""SPEC §3.2 bench: importing a 5M-row events CSV takes at most 1.3x DuckDB's own typed
`INSERT ... SELECT FROM read_csv(...)` of the same file into an on-disk table.

Both sides start from nothing and end with the data committed in a closed database file on
the same disk: mcrm through `mcrm.api.import_files` into a fresh workspace (`timezone: UTC`),
the baseline through `connect` / `CREATE TABLE` / the typed insert / `close` into a fresh file.
The baseline table has the CSV's columns with the types mcrm stores them as (`timestamp`
TIMESTAMP, `latitude`/`longitude` DOUBLE, `properties` JSON, the rest VARCHAR), read with
`auto_detect=false` and declared types. Runs alternate baseline, mcrm, baseline, mcrm.
The end-to-end `mcrm import` command is timed as an extra, informational line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

from benchmarks import data
from benchmarks.core import Context, Result, Timing, bench, compare, interleaved, run_wall, timed

TARGET_RATIO = 1.3
RUNS = 2  # each run of each side takes several seconds at full scale

# The canonical events columns and the type mcrm stores each as (mcrm/db.py `events`).
EVENT_TYPES = {
    "event_id": "VARCHAR",
    "user_id": "VARCHAR",
    "anonymous_id": "VARCHAR",
    "name": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "session_id": "VARCHAR",
    "platform": "VARCHAR",
    "os": "VARCHAR",
    "os_version": "VARCHAR",
    "app_version": "VARCHAR",
    "device_model": "VARCHAR",
    "screen": "VARCHAR",
    "country": "VARCHAR",
    "region": "VARCHAR",
    "city": "VARCHAR",
    "latitude": "DOUBLE",
    "longitude": "DOUBLE",
    "utm_source": "VARCHAR",
    "utm_medium": "VARCHAR",
    "utm_campaign": "VARCHAR",
    "properties": "JSON",
    "revenue": "DECIMAL(18,3)",
    "currency": "VARCHAR",
}

DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


def csv_columns(path: Path) -> list[str]:
    import csv

    with path.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    unknown = [c for c in header if c not in EVENT_TYPES]
    if unknown:
        raise SystemExit(f"benchmarks: {path} has non-canonical event columns: {unknown}")
    return header


def baseline_sql(path: Path, columns: list[str]) -> tuple[str, str]:
    """(CREATE TABLE, INSERT ... SELECT FROM read_csv) for the baseline."""

    def q(name: str) -> str:
        return '"' + name + '"'

    create = "CREATE TABLE t (" + ", ".join(f"{q(c)} {EVENT_TYPES[c]}" for c in columns) + ")"
    # JSON is read as VARCHAR and cast (validated) on insert, as mcrm must validate it too
    read_types = {c: "VARCHAR" if EVENT_TYPES[c] == "JSON" else EVENT_TYPES[c] for c in columns}
    spec = "{" + ", ".join(f"'{c}': '{t}'" for c, t in read_types.items()) + "}"
    lit = "'" + str(path).replace("'", "''") + "'"
    insert = (
        f"INSERT INTO t SELECT * FROM read_csv({lit}, columns={spec}, header=true, "
        "delim=',', quote='\"', escape='\"', auto_detect=false)"
    )
    return create, insert


def run_baseline(ctx: Context, path: Path, columns: list[str]) -> Timing:
    import duckdb

    create, insert = baseline_sql(path, columns)
    db = ctx.scratch("import-baseline") / "baseline.duckdb"

    def go() -> None:
        con = duckdb.connect(str(db), config=DUCKDB_CONFIG)
        con.execute("SET TimeZone='UTC'")
        con.execute(create)
        con.execute(insert)
        con.close()

    return timed(go)


def make_workspace(ctx: Context, name: str) -> Path:
    root = ctx.scratch(name)
    (root / "mcrm.yaml").write_text("timezone: UTC\n")
    return root


def run_mcrm(ctx: Context, path: Path, expect_rows: int) -> Timing:
    from mcrm import api
    from mcrm.config import open_workspace

    root = make_workspace(ctx, "import-mcrm")
    ws = open_workspace(str(root), {}, root)
    result: list[object] = []

    def go() -> None:
        result.append(api.import_files(ws, "events", [str(path)], cwd=root))

    secs = timed(go)
    res = result[0]
    from mcrm.ingest.run import ImportResult

    assert isinstance(res, ImportResult)
    if res.rows_read != expect_rows or res.rejected:
        raise SystemExit(
            f"benchmarks: mcrm import read {res.rows_read} rows, rejected {res.rejected}; "
            f"expected {expect_rows} and 0"
        )
    return secs


def run_cli(ctx: Context, path: Path) -> Timing:
    root = make_workspace(ctx, "import-cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCRM_")}
    return run_wall([ctx.mcrm_script, "-q", "import", "events", str(path)], cwd=root, env=env)


def events_file(ctx: Context) -> data.Files:
    if "events" in ctx.inputs:
        return data.external("events", ctx.inputs["events"])
    return data.ensure(ctx, data.IMPORT)


@bench("import")
def import_events(ctx: Context) -> Iterator[Result]:
    """mcrm import events (library API) vs DuckDB's typed read_csv insert, 5M rows."""
    files = events_file(ctx)
    path = files["events"]
    rows = files.rows["events"]
    columns = csv_columns(path)
    # warm the page cache and the imports so the first timed run is not penalised
    import mcrm.api  # noqa: F401
    import mcrm.ingest.run  # noqa: F401

    run_baseline(ctx, path, columns)
    print(
        f"  import: {rows:,} rows, {path.stat().st_size / 1e6:,.0f} MB, best of {RUNS}",
        file=sys.stderr,
        flush=True,
    )
    ours, base = interleaved(
        RUNS, lambda: run_mcrm(ctx, path, rows), lambda: run_baseline(ctx, path, columns)
    )
    yield compare(
        "import.events",
        f"<= {TARGET_RATIO}x baseline",
        ours,
        base,
        "duckdb read_csv",
        lambda m, b: m / b <= TARGET_RATIO,
        extra={"rows": rows, "bytes": path.stat().st_size, "columns": columns},
    )
    cli = [run_cli(ctx, path) for _ in range(RUNS)]
    yield compare(
        "import.events.cli",
        "info (end to end)",
        cli,
        base,
        "duckdb read_csv",
        lambda _m, _b: None,
        note="`mcrm -q import events FILE` in a fresh workspace: wall time incl. start-up; "
        "its CPU time is the child's, the baseline's the harness process's",
    )
