"""The library behind every command: one function per command, the same result objects.

Scripts and notebooks call these instead of shelling out:

    from mcrm import api
    from mcrm.config import open_workspace
    ws = open_workspace("path/to/workspace", dict(os.environ), Path.cwd())
    result = api.import_files(ws, "events", ["data/*.jsonl"], preset="amplitude")
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcrm.config import Workspace
from mcrm.ingest.readers import ReadOptions
from mcrm.ingest.run import ImportResult
from mcrm.output import Rows

if TYPE_CHECKING:
    from mcrm.predict.run import PredictionRun


def import_files(
    ws: Workspace,
    kind: str,
    files: list[str],
    *,
    preset: str | None = None,
    mapping: tuple[tuple[str, str], ...] = (),
    delimiter: str | None = None,
    decimal_comma: bool = False,
    encoding: str = "utf-8",
    epoch: str | None = None,
    cwd: Path | None = None,
    now: dt.datetime | None = None,
    quiet: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ImportResult:
    from mcrm.ingest.run import import_files as run

    opts = ReadOptions(
        delimiter=delimiter,
        decimal_comma=decimal_comma,
        encoding=encoding,
        epoch=epoch,
        mapping=mapping,
    )
    return run(ws, kind, files, cwd or Path.cwd(), opts, preset, now, progress)


def import_rejects(ws: Workspace, import_id: int | None, latest: bool = True) -> Rows:
    from mcrm.db import open_db

    with open_db(ws) as con:
        if import_id is None and latest:
            row = con.execute("SELECT max(import_id) FROM imports").fetchall()
            import_id = row[0][0]
        where = "" if import_id is None else f"WHERE import_id = {int(import_id)}"
        cols = ["import_id", "file", "line", "column", "reason", "raw"]
        rows = con.execute(
            f"SELECT import_id, file, line, column_name, reason, raw FROM import_rejects {where} "
            "ORDER BY import_id, file, line NULLS LAST, reason"
        ).fetchall()
    return Rows(cols, rows)


def import_history(ws: Workspace) -> Rows:
    from mcrm.db import open_db

    cols = [
        "import_id",
        "kind",
        "preset",
        "file",
        "finished_at",
        "rows_read",
        "inserted",
        "updated",
        "duplicates",
        "rejected",
        "forgotten",
        "seconds",
    ]
    with open_db(ws) as con:
        rows = con.execute(
            f"SELECT {', '.join(cols)} FROM imports ORDER BY import_id DESC, file, kind"
        ).fetchall()
    return Rows(cols, rows)


def user_profile(
    ws: Workspace, ident: str, as_of: dt.datetime | None = None, show_pii: bool = False
) -> dict[str, Any]:
    from mcrm.db import open_db
    from mcrm.people import clv_prediction, profile

    with open_db(ws) as con:
        data = profile(con, ident, as_of, show_pii)
        if (ws.root / "segments.yaml").exists():
            from mcrm.segments.engine import user_analytics

            data["analytics"] = user_analytics(con, ws, data["user_id"], as_of)
        pred = clv_prediction(con, data["user_id"], as_of)
        if pred is not None:  # absent: no key (the profile shows nothing)
            pred["currency"] = ws.settings.base_currency
            now = as_of or dt.datetime.now(dt.UTC).replace(tzinfo=None)
            data.setdefault("analytics", {"as_of": now})
            data["analytics"]["clv"] = pred
        return data


def list_users(
    ws: Workspace,
    where: str | None = None,
    limit: int | None = None,
    show_pii: bool = False,
    columns: list[str] | None = None,
    segment: str | None = None,
) -> Rows:
    """Users, optionally only the members of a segment at its latest snapshot."""
    from mcrm.db import open_db
    from mcrm.people import list_users as run

    with open_db(ws) as con:
        if segment is not None:
            from mcrm.errors import NotFound
            from mcrm.segments.engine import _select, snapshot_members
            from mcrm.segments.model import load_segments

            _select(load_segments(ws.root), [segment])  # unknown name: did-you-mean

            run_id = con.execute(
                "SELECT max(run_id) FROM segment_snapshots WHERE segment = ?", [segment]
            ).fetchall()[0][0]
            if run_id is None:
                raise NotFound(
                    f"segment {segment} has no snapshot yet",
                    hint=f"mcrm segments compute {segment}",
                )
            members = snapshot_members(segment, int(run_id))
            where = f"({where}) AND {members}" if where else members
        rows = run(con, where, limit, show_pii, columns)
        rows.rows = list(rows.rows)
    return rows


def merge_users(ws: Workspace, from_ident: str, into_ident: str) -> tuple[str, str]:
    from mcrm.db import open_db
    from mcrm.people import merge

    with open_db(ws, write=True) as con:
        return merge(con, from_ident, into_ident)


def forget_user(ws: Workspace, ident: str) -> dict[str, int]:
    from mcrm.db import open_db
    from mcrm.people import forget

    with open_db(ws, write=True) as con:
        return forget(con, ident)


def export_user_data(ws: Workspace, ident: str) -> dict[str, Any]:
    from mcrm.db import open_db
    from mcrm.people import export_data

    with open_db(ws) as con:
        return export_data(con, ident)


def db_stats(ws: Workspace) -> tuple[dict[str, Any], Rows]:
    from mcrm.db import meta, open_db, stats

    with open_db(ws) as con:
        info: dict[str, Any] = dict(meta(con))
        info["path"] = ws.rel(ws.db_path)
        info["size_mb"] = round(ws.db_path.stat().st_size / 1e6, 2)
        span = con.execute("SELECT min(ts), max(ts) FROM events").fetchall()[0]
        info["events_from"], info["events_to"] = span
        span = con.execute("SELECT min(ts), max(ts) FROM purchases").fetchall()[0]
        info["purchases_from"], info["purchases_to"] = span
        table = stats(con)
    return info, Rows(["table", "rows"], [[r["table"], r["rows"]] for r in table])


def upgrade_db(ws: Workspace) -> tuple[int, int]:
    from mcrm.db import SCHEMA_VERSION, connect, ensure_schema, schema_version

    con = connect(str(ws.db_path))
    try:
        before = schema_version(con) or 0
        ensure_schema(con, write=True)
    finally:
        con.close()
    return before, SCHEMA_VERSION


def predict_clv(
    ws: Workspace,
    horizon_days: float = 365.0,
    discount: float = 0.1,
    as_of: dt.datetime | None = None,
) -> PredictionRun:
    """`mcrm predict clv`: fit, predict and store a run; returns its `PredictionRun`
    (`mcrm.predict.run.prediction_rows(ws, run.run_id)` gives the customers)."""
    from mcrm.predict.run import predict_clv as run

    return run(ws, horizon_days, discount, as_of)


def run_sql(ws: Workspace, sql: str) -> Rows:
    """A read-only query (the connection is opened read-only: writes fail)."""
    import duckdb

    from mcrm.db import open_db
    from mcrm.errors import UsageError

    with open_db(ws) as con:
        try:
            cur = con.execute(sql)
        except duckdb.Error as e:
            msg = str(e).splitlines()[0]
            hint = "mcrm sql is read-only" if "read-only" in msg.lower() else None
            raise UsageError(f"sql: {msg}", hint=hint) from None
        if cur.description is None:
            return Rows([], [])
        cols = [d[0] for d in cur.description]
        json_cols = frozenset(d[0] for d in cur.description if str(d[1]).upper() == "JSON")
        return Rows(cols, cur.fetchall(), json_columns=json_cols)
