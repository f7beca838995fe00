"""`mcrm import`: files in, one transaction, a summary per file out.

One import command is one transaction: if anything fails (or the process is killed) the
database is as it was. Per file and kind the summary says rows read, inserted, updated,
duplicates, rejected (and forgotten: rows of erased people kept out on purpose), and seconds.
"""

from __future__ import annotations

import datetime as dt
import functools
import glob
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mcrm.errors import DataError, UsageError
from mcrm.ingest import load as L
from mcrm.ingest.kinds import KINDS, Kind
from mcrm.ingest.readers import ReadOptions, Source, Staged, Stager, _lit, _q, detect, is_empty

if TYPE_CHECKING:
    import duckdb

    from mcrm.config import Workspace


@dataclass(frozen=True)
class FileSummary:
    file: str
    kind: str
    rows_read: int
    inserted: int
    updated: int
    duplicates: int
    rejected: int
    forgotten: int
    seconds: float
    ignored_columns: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportResult:
    import_id: int
    files: tuple[FileSummary, ...]
    warnings: tuple[str, ...] = ()

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    @property
    def reject_rate(self) -> float:
        return self.rejected / self.rows_read if self.rows_read else 0.0


def expand_files(patterns: list[str], cwd: Path) -> list[tuple[Path, str]]:
    """Globs expanded relative to `cwd`, each file once, in a stable order."""
    out: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for pattern in patterns:
        p = Path(pattern).expanduser()
        base = p if p.is_absolute() else cwd / p
        if any(ch in pattern for ch in "*?["):
            matches = sorted(glob.glob(str(base), recursive=True))
            if not matches:
                raise DataError(f"no file matches '{pattern}'")
            items = [(Path(m), _shown(m, pattern, cwd)) for m in matches]
        else:
            items = [(base, pattern)]
        for path, shown in items:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                out.append((path, shown))
    return out


def _shown(match: str, pattern: str, cwd: Path) -> str:
    """A glob match as the user would write it: relative when the pattern was."""
    path = Path(match)
    if not Path(pattern).is_absolute() and path.is_relative_to(cwd):
        return str(path.relative_to(cwd))
    return match


def import_files(
    ws: Workspace,
    kind_name: str,
    patterns: list[str],
    cwd: Path,
    opts: ReadOptions | None = None,
    preset: str | None = None,
    now: dt.datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> ImportResult:
    """Import files of one KIND (see module docstring)."""
    from mcrm.db import open_db
    from mcrm.ingest.presets import get_preset

    if kind_name not in KINDS:
        from mcrm.errors import did_you_mean

        raise UsageError(
            f"unknown import kind '{kind_name}'",
            hint=did_you_mean(kind_name, list(KINDS)) or f"kinds: {', '.join(KINDS)}",
        )
    kind = KINDS[kind_name]
    opts = opts or ReadOptions()
    pre = get_preset(preset, kind) if preset else None
    if opts.epoch not in (None, "s", "ms", "us", "auto"):
        raise UsageError(f"--epoch must be s, ms, us or auto, found '{opts.epoch}'")
    files = [(p, s, detect(p, s)) for p, s in expand_files(patterns, cwd)]
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None)
    summaries: list[FileSummary] = []
    warnings: list[str] = []
    from zoneinfo import available_timezones

    zones = sorted(available_timezones())
    with open_db(ws, write=True) as con:
        con.execute("BEGIN")
        try:
            import_id = L._one(con, "SELECT nextval('import_seq')")
            # One plain events file into a table without device-only events needs no attach
            # at the end: `load_events` gave its device-only rows every link there is (stored,
            # or from this file), and it adds no other links.
            attach = pre is not None or kind.name != "events" or len(files) > 1
            attach = attach or _has_unattached_events(con)
            stager = Stager(con, import_id, moment.isoformat(sep=" "), ws.settings.timezone, zones)
            for _path, shown, src in files:
                if progress:
                    progress(shown)
                if is_empty(src):
                    warnings.append(f"{shown} is empty: nothing imported")
                    summaries.append(FileSummary(shown, kind.name, 0, 0, 0, 0, 0, 0, 0.0))
                    continue
                t0 = time.perf_counter()
                if pre is not None:
                    parts = pre.stage(stager, kind, src, opts)
                else:
                    parts = [(kind, stage_generic(stager, kind, src, opts))]
                for k, staged in parts:
                    c = L.Counts()
                    ctx = LoadContext(
                        con,
                        staged.table,
                        ws,
                        import_id,
                        shown,
                        functools.partial(stager._lines_for, src=src),
                    )
                    LOADERS[k.name](ctx, c)
                    secs = time.perf_counter() - t0
                    fs = FileSummary(
                        shown,
                        k.name,
                        staged.rows_read,
                        c.inserted,
                        c.updated,
                        c.duplicates,
                        staged.rejected + c.rejected,
                        c.forgotten,
                        round(secs, 3),
                        tuple(staged.ignored_columns),
                        tuple(staged.warnings + c.warnings),
                    )
                    summaries.append(fs)
                    con.execute(
                        "INSERT INTO imports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            import_id,
                            k.name,
                            preset,
                            shown,
                            moment,
                            dt.datetime.now(dt.UTC).replace(tzinfo=None),
                            fs.rows_read,
                            fs.inserted,
                            fs.updated,
                            fs.duplicates,
                            fs.rejected,
                            fs.forgotten,
                            secs,
                        ],
                    )
                    con.execute(f"DROP TABLE IF EXISTS {staged.table}")
            if attach:
                attach_anonymous_events(con)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return ImportResult(import_id, tuple(summaries), tuple(warnings))


def stage_generic(stager: Stager, kind: Kind, src: Source, opts: ReadOptions) -> Staged:
    """A file whose columns are the canonical names (or mapped with --map)."""
    from mcrm.ingest.readers import csv_header, resolve_mapping

    con = stager.con
    if src.fmt in ("csv", "tsv"):
        found, delim = csv_header(src, opts)
        mapping, ignored = resolve_mapping(kind, found, opts, src.display)
        relation = stager.typed_csv(kind, src, opts, mapping, delim, found)
        exprs = {dest: _q(s) for dest, s in mapping.items()}
        staged = stager.finish(kind, relation, exprs, stager.typed_cols, opts, src, relation=True)
        structural = stager.last_rejected
        staged.rows_read += structural
        staged.rejected += structural
        staged.ignored_columns = ignored
        return staged
    if src.fmt == "parquet":
        table, found = stager.read_parquet(src)
        mapping, ignored = resolve_mapping(kind, found, opts, src.display)
        exprs = {dest: _q(s) for dest, s in mapping.items()}
        staged = stager.finish(kind, table, exprs, {}, opts, src)
        con.execute(f"DROP TABLE {table}")
        staged.ignored_columns = ignored
        return staged
    table, bad = json_records(stager, src)
    found = [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT unnest(json_keys(j)) AS k FROM (SELECT j FROM {table} "
            f"WHERE _ok ORDER BY rowid LIMIT 1000) ORDER BY k"
        ).fetchall()
    ]
    mapping, ignored = resolve_mapping(kind, found, opts, src.display)
    exprs = {}
    for dest, s in mapping.items():
        col = kind.col(dest)
        path = _lit('$."' + s.replace('"', '\\"') + '"')
        if col is not None and col.parse == "json":
            exprs[dest] = f"CAST(json_extract(j, {path}) AS VARCHAR)"
        else:
            exprs[dest] = f"json_extract_string(j, {path})"
    staged = stager.finish(kind, table, exprs, {}, opts, src, where="_ok")
    con.execute(f"DROP TABLE {table}")
    staged.rows_read += bad
    staged.rejected += bad
    staged.ignored_columns = ignored
    return staged


def json_records(stager: Stager, src: Source) -> tuple[str, int]:
    """JSON lines or a JSON array as a table (_row, _line, j, _ok); broken lines rejected."""
    con = stager.con
    table = stager.read_lines(src) if src.fmt == "jsonl" else stager.read_json_array(src)
    con.execute(f"ALTER TABLE {table} ADD COLUMN _ok BOOLEAN")
    con.execute(
        # CASE, not AND: DuckDB evaluates both sides of AND, and casting broken JSON raises
        f"UPDATE {table} SET _ok = CASE WHEN j IS NOT NULL AND trim(j) <> '' AND json_valid(j) "
        f"THEN json_type(CAST(j AS JSON)) = 'OBJECT' ELSE false END"
    )
    where = "line" if src.fmt == "jsonl" else "element"
    base = stager.base_rowid(table)
    bad = L._one(
        con, f"SELECT count(*) FROM {table} WHERE NOT _ok AND j IS NOT NULL AND trim(j) <> ''"
    )
    if bad:
        con.execute(
            f"""INSERT INTO import_rejects SELECT {stager.import_id}, {_lit(src.display)},
            rowid - {base} + 1, NULL,
            CASE WHEN json_valid(j) THEN 'not a JSON object' ELSE 'invalid JSON' END
              || ' ({where} ' || (rowid - {base} + 1) || ')', left(j, 2000)
            FROM {table} WHERE NOT _ok AND j IS NOT NULL AND trim(j) <> ''"""
        )
    return table, bad


# ---------------------------------------------------------------------------------------------
# Loaders: staged table -> entity tables


@dataclass(frozen=True)
class LoadContext:
    con: duckdb.DuckDBPyConnection
    stg: str
    ws: Workspace
    import_id: int
    file: str
    # file line numbers of staged rows (_row, _line), as `Stager.finish` reports rejects
    lines: Callable[[list[int], list[int | None]], list[int | None]] | None = None


def _now_sql() -> str:
    return "CAST(now() AS TIMESTAMP)"


def _staged_columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [table]
    ).fetchall()
    return {r[0] for r in rows}


def load_events(x: LoadContext, c: L.Counts) -> None:
    con, stg, import_id = x.con, x.stg, x.import_id
    # events are staged sparse (`Kind.sparse_keep`): a column the file lacks reads as NULL
    have = _staged_columns(con, stg)

    def s_(name: str, alias: str = "s") -> str:
        return f"{alias}.{_q(name)}" if name in have else "NULL"

    props = "properties" if "properties" in have else "NULL"
    con.execute(
        f"""UPDATE {stg} SET event_id = 'h:' || md5(concat_ws('|', coalesce(user_id, ''),
        coalesce(anonymous_id, ''), name, CAST(ts AS VARCHAR),
        coalesce(CAST({props} AS VARCHAR), ''))) WHERE event_id IS NULL"""
    )
    c.forgotten = L.drop_forgotten(con, stg, [("user", "user_id"), ("device", "anonymous_id")])
    L.resolve(
        con, stg, [("user", "user_id"), ("device", "anonymous_id")], synthetic=False, fill=False
    )
    _events_aggregate(con, stg, s_)
    cols = {n: s_(n) for n in EVENT_COLS}
    cols["user_id"] = "coalesce(s._uid, s.user_id)"
    cols["import_id"] = str(import_id)
    L.insert_first(con, stg, "events", "event_id", cols, c)
    _events_side_effects(con, stg, c)


EVENT_COLS = (
    "event_id user_id anonymous_id name ts session_id platform os os_version app_version "
    "device_model screen country region city latitude longitude utm_source utm_medium "
    "utm_campaign properties revenue currency"
).split()


DEVICE_FIELDS = ("os", "os_version", "app_version", "device_model")


def _agg_sql(s_: Callable[[str], str], keys: str, source: str) -> str:
    """One row per `keys` (`_uid`, `anonymous_id`) over `source`: first and last seen, and the
    latest non-NULL value of each device field (NULL for a field the file does not have)."""
    dev = ", ".join(
        f"max_by({s_(f)}, s.ts) AS {f}" if s_(f) != "NULL" else f"NULL::VARCHAR AS {f}"
        for f in DEVICE_FIELDS
    )
    return (
        f"SELECT {keys}, min(s.ts) AS first_ts, max(s.ts) AS last_ts, {dev} {source} GROUP BY 1, 2"
    )


def _events_aggregate(con: duckdb.DuckDBPyConnection, stg: str, s_: Callable[[str], str]) -> None:
    """`_agg`: one row per (user, device) of the file, the one aggregate over all its rows.

    Events with only a device id that another event of this file links to a user belong to
    that user from the start (first link wins, as for stored links): they get `_uid` here,
    before the insert, which is far cheaper than updating the events table afterwards.

    The one pass over `stg` also groups those device-only rows, as (NULL, device) rows of
    `_agg`; once the file's links are known they take their device's user (a second
    aggregation over `stg` for them cost a scan and a join of every staged row)."""
    con.execute("DROP TABLE IF EXISTS _agg")
    # every staged row has a user or a device (the checks reject rows with neither)
    con.execute(
        "CREATE TEMP TABLE _agg AS "
        + _agg_sql(s_, "coalesce(s._uid, s.user_id) AS _uid, s.anonymous_id", f"FROM {stg} s")
    )
    if not L._one(con, "SELECT count(*) FROM (SELECT 1 FROM _agg WHERE _uid IS NULL LIMIT 1)"):
        return
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _links AS SELECT anonymous_id,
        arg_min(_uid, (first_ts, _uid)) AS uid FROM _agg
        WHERE _uid IS NOT NULL AND anonymous_id IN (SELECT anonymous_id FROM _agg
                                                    WHERE _uid IS NULL)
        GROUP BY anonymous_id"""
    )
    con.execute(
        """UPDATE _agg SET _uid = l.uid FROM _links l
        WHERE _agg._uid IS NULL AND _agg.anonymous_id = l.anonymous_id"""
    )
    # device-only rows no event of the file links: no user yet (the end-of-import attach, or
    # a later import, gives them one)
    con.execute("DELETE FROM _agg WHERE _uid IS NULL")
    orphans = "s.user_id IS NULL AND s._uid IS NULL AND s.anonymous_id IS NOT NULL"
    con.execute(
        f"""UPDATE {stg} AS s SET _uid = l.uid FROM _links l
        WHERE {orphans} AND s.anonymous_id = l.anonymous_id"""
    )
    con.execute("DROP TABLE _links")


def _events_side_effects(con: duckdb.DuckDBPyConnection, stg: str, c: L.Counts) -> None:
    """Users and device identities from the file's `_agg` (see `_events_aggregate`).

    Device links are inserted directly (first user wins; a device never merges users), not
    through `link()`: an events file can carry a million devices."""
    con.execute(
        """INSERT INTO identities
        SELECT 'device', anonymous_id, arg_min(_uid, (first_ts, _uid)), 'events', min(first_ts)
        FROM _agg a WHERE anonymous_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM identities i WHERE i.kind = 'device' AND i.value = a.anonymous_id)
        GROUP BY anonymous_id"""
    )
    _touch_users(
        con,
        """SELECT _uid, NULL AS email, min(first_ts) AS first_ts, max(last_ts) AS last_ts,
        max_by(os, last_ts) AS os, max_by(os_version, last_ts) AS os_version,
        max_by(app_version, last_ts) AS app_version,
        max_by(device_model, last_ts) AS device_model FROM _agg GROUP BY _uid""",
    )
    con.execute("DROP TABLE _agg")


def _has_unattached_events(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        L._one(con, "SELECT count(*) FROM (SELECT 1 FROM events WHERE user_id IS NULL LIMIT 1)")
    )


def attach_anonymous_events(con: duckdb.DuckDBPyConnection) -> None:
    """Events seen with only a device id belong to the user that device is now linked to
    (by an event, a devices file or a profile of any import): run at the end of every import
    (but see `import_files`)."""
    if _has_unattached_events(con):
        con.execute(
            """UPDATE events SET user_id = i.user_id FROM identities i
            WHERE events.user_id IS NULL AND i.kind = 'device'
              AND i.value = events.anonymous_id"""
        )


def _touch_users(con: duckdb.DuckDBPyConnection, agg_sql: str) -> None:
    """Create users first seen in this import; widen first/last seen of known ones.

    `agg_sql` yields one row per `_uid` with first_ts, last_ts, email and current device
    fields (os, os_version, app_version, device_model; NULL where unknown)."""
    con.execute("DROP TABLE IF EXISTS _tu")
    con.execute(f"CREATE TEMP TABLE _tu AS {agg_sql}")
    # into an empty table every row comes from `_tu` as it is: the update would change nothing
    had_users = L._one(con, "SELECT count(*) FROM (SELECT 1 FROM users LIMIT 1)")
    con.execute(
        f"""INSERT INTO users (user_id, email, os, os_version, app_version, device_model,
            first_seen, last_seen, created_at, updated_at)
        SELECT _uid, email, os, os_version, app_version, device_model, first_ts, last_ts,
            {_now_sql()}, {_now_sql()} FROM _tu t
        WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = t._uid)"""
    )
    if not had_users:
        con.execute("DROP TABLE _tu")
        return
    con.execute(
        """UPDATE users SET
            first_seen = least(users.first_seen, t.first_ts),
            last_seen = greatest(users.last_seen, t.last_ts),
            email = coalesce(users.email, t.email),
            os = CASE WHEN t.last_ts >= coalesce(users.last_seen, t.last_ts)
                      THEN coalesce(t.os, users.os) ELSE users.os END,
            os_version = CASE WHEN t.last_ts >= coalesce(users.last_seen, t.last_ts)
                      THEN coalesce(t.os_version, users.os_version) ELSE users.os_version END,
            app_version = CASE WHEN t.last_ts >= coalesce(users.last_seen, t.last_ts)
                      THEN coalesce(t.app_version, users.app_version) ELSE users.app_version END,
            device_model = CASE WHEN t.last_ts >= coalesce(users.last_seen, t.last_ts)
                      THEN coalesce(t.device_model, users.device_model)
                      ELSE users.device_model END
        FROM _tu t WHERE users.user_id = t._uid
          AND (users.first_seen IS NULL OR users.last_seen IS NULL
               OR t.first_ts < users.first_seen OR t.last_ts > users.last_seen
               OR (users.email IS NULL AND t.email IS NOT NULL))"""
    )
    con.execute("DROP TABLE _tu")


def local_date(expr: str, zone: str) -> str:
    """SQL: the calendar date, in `zone`, of a naive-UTC TIMESTAMP (a DATE stays as it is).

    Money is converted at the rate of the order's local date (analytics reference §0)."""
    return f"CAST(timezone({_lit(zone)}, timezone('UTC', CAST({expr} AS TIMESTAMP))) AS DATE)"


def _fx_convert(x: LoadContext, amount: str, ts: str, out: str) -> int:
    """Add `out` = `amount` in the base currency; rows with no usable rate are rejected."""
    con, stg, ws, import_id = x.con, x.stg, x.ws, x.import_id
    base = ws.settings.base_currency
    age = ws.settings.imports.fx_max_age_days
    con.execute(f"ALTER TABLE {stg} ADD COLUMN {out} DECIMAL(18,3)")
    con.execute(f"UPDATE {stg} SET {out} = {amount} WHERE currency = {_lit(base)}")
    if not L._one(con, f"SELECT count(*) FROM {stg} WHERE {out} IS NULL"):
        return 0
    con.execute(
        f"""UPDATE {stg} AS s SET {out} = CAST(s.{amount} * r.rate AS DECIMAL(18,3))
        FROM (SELECT s2._row, (SELECT f.rate FROM fx_rates f WHERE f.currency = s2.currency
                 AND f.date <= {local_date(f"s2.{ts}", ws.settings.timezone)}
                 AND f.date >= {local_date(f"s2.{ts}", ws.settings.timezone)}
                     - INTERVAL {int(age)} DAY
               ORDER BY f.date DESC LIMIT 1) AS rate
              FROM {stg} s2 WHERE s2.{out} IS NULL) r
        WHERE s._row = r._row AND r.rate IS NOT NULL"""
    )
    missing = con.execute(
        f"SELECT _row, _line, currency, "
        f"CAST({local_date(ts, ws.settings.timezone)} AS VARCHAR) FROM {stg} "
        f"WHERE {out} IS NULL ORDER BY _row"
    ).fetchall()
    if missing:
        if x.lines is not None:
            lines = x.lines([m[0] for m in missing], [m[1] for m in missing])
        else:
            lines = [m[1] or m[0] + 1 for m in missing]
        con.executemany(
            "INSERT INTO import_rejects VALUES (?, ?, ?, 'currency', ?, NULL)",
            [
                [
                    import_id,
                    x.file,
                    line,
                    f"no fx rate for {m[2]} on {m[3]} (nor in the {age} days before): "
                    f"import fx-rates first, then import this file again",
                ]
                for m, line in zip(missing, lines, strict=True)
            ],
        )
        con.execute(f"DELETE FROM {stg} WHERE {out} IS NULL")
    return len(missing)


def _attach_customers(
    con: duckdb.DuckDBPyConnection,
    stg: str,
    ids: list[tuple[str, str]],
    pairs_sql: str,
    source: str,
    c: L.Counts,
) -> None:
    """Rows that name a person by user id, customer id or e-mail: resolve them (synthetic
    e-shop users for strangers), record the links (merging synthetic users into app users they
    prove to be), resolve again with the new links, and create or widen the users."""
    L.resolve(con, stg, ids, synthetic=True)
    L.link(con, pairs_sql, source, c)
    L.resolve(con, stg, ids, synthetic=True)
    _touch_users(
        con,
        f"""SELECT _uid, max_by(email, _row) AS email, min(ts) AS first_ts, max(ts) AS last_ts,
        NULL AS os, NULL AS os_version, NULL AS app_version, NULL AS device_model
        FROM {stg} GROUP BY _uid""",
    )


def load_purchases(x: LoadContext, c: L.Counts) -> None:
    con, stg, import_id = x.con, x.stg, x.import_id
    c.forgotten = L.drop_forgotten(
        con, stg, [("user", "user_id"), ("customer", "customer_id"), ("email", "email")]
    )
    c.rejected += _fx_convert(x, "amount", "ts", "amount_base")
    ids = [("user", "user_id"), ("customer", "customer_id"), ("email", "email")]
    _attach_customers(
        con,
        stg,
        ids,
        f"""SELECT 'email' AS kind, email AS value, _uid AS user_id, ts, _row FROM {stg}
        UNION ALL SELECT 'customer', customer_id, _uid, ts, _row FROM {stg}""",
        "purchases",
        c,
    )
    cols = {n: f"s.{_q(n)}" for n in PURCHASE_COLS}
    cols["user_id"] = "s._uid"
    L.upsert(
        con,
        stg,
        "purchases",
        ["order_id"],
        cols,
        c,
        extra_set=f", updated_at = {_now_sql()}, import_id = {import_id}",
    )
    con.execute(
        f"UPDATE purchases SET import_id = {import_id}, updated_at = {_now_sql()} "
        "WHERE import_id IS NULL"
    )


PURCHASE_COLS = (
    "order_id user_id customer_id ts amount currency amount_base status channel items source "
    "campaign coupon_code"
).split()


def load_users(x: LoadContext, c: L.Counts) -> None:
    con, stg = x.con, x.stg
    c.forgotten = L.drop_forgotten(
        con,
        stg,
        [
            ("user", "user_id"),
            ("email", "email"),
            ("phone", "phone"),
            ("customer", "customer_id"),
            ("device", "anonymous_id"),
        ],
    )
    L.resolve(con, stg, [("user", "user_id")], synthetic=False)
    # custom attributes merge key by key (a later file adds to them, it does not replace them)
    con.execute(
        f"""UPDATE {stg} AS s SET attributes = json_merge_patch(u.attributes, s.attributes)
        FROM users u WHERE u.user_id = s._uid AND s.attributes IS NOT NULL
          AND u.attributes IS NOT NULL"""
    )
    cols = {n: f"s.{_q(n)}" for n in USER_IMPORT_COLS}
    cols["user_id"] = "s._uid"
    L.upsert(
        con,
        stg,
        "users",
        ["user_id"],
        cols,
        c,
        coalesce=True,
        extra_set=f", updated_at = {_now_sql()}",
    )
    con.execute(
        f"""UPDATE users SET created_at = coalesce(created_at, {_now_sql()}),
        updated_at = coalesce(updated_at, {_now_sql()}),
        first_seen = least(users.first_seen, t.fs), last_seen = greatest(users.last_seen, t.ls)
        FROM (SELECT _uid, min(coalesce(first_seen, install_time)) AS fs,
                     max(coalesce(last_seen, first_seen, install_time)) AS ls
              FROM {stg} GROUP BY _uid) t
        WHERE users.user_id = t._uid"""
    )
    L.link(
        con,
        f"""SELECT 'email' AS kind, email AS value, _uid AS user_id, NULL::TIMESTAMP AS ts, _row
        FROM {stg}
        UNION ALL SELECT 'phone', phone, _uid, NULL, _row FROM {stg}
        UNION ALL SELECT 'customer', customer_id, _uid, NULL, _row FROM {stg}
        UNION ALL SELECT 'device', anonymous_id, _uid, NULL, _row FROM {stg}""",
        "users",
        c,
    )


USER_IMPORT_COLS = (
    "user_id email phone first_name last_name gender birth_date locale country region city "
    "home_lat home_lon timezone os os_version device_model app_version acq_source acq_medium "
    "acq_campaign install_time attributes"
).split()


def load_devices(x: LoadContext, c: L.Counts) -> None:
    con, stg = x.con, x.stg
    c.forgotten = L.drop_forgotten(con, stg, [("user", "user_id"), ("device", "device_id")])
    L.resolve(con, stg, [("user", "user_id")], synthetic=False)
    _touch_users(
        con,
        f"""SELECT _uid, NULL AS email, min(last_seen) AS first_ts, max(last_seen) AS last_ts,
        NULL AS os, NULL AS os_version, NULL AS app_version, NULL AS device_model
        FROM {stg} GROUP BY _uid""",
    )
    cols = {n: f"s.{_q(n)}" for n in DEVICE_COLS}
    cols["user_id"] = "s._uid"
    L.upsert(
        con,
        stg,
        "devices",
        ["user_id", "device_id"],
        cols,
        c,
        coalesce=True,
        extra_set=f", updated_at = {_now_sql()}",
    )
    L.link(
        con,
        f"SELECT 'device' AS kind, device_id AS value, _uid AS user_id, last_seen AS ts, _row "
        f"FROM {stg}",
        "devices",
        c,
    )


DEVICE_COLS = (
    "user_id device_id platform push_token push_provider push_enabled os os_version "
    "device_model app_version last_seen"
).split()


def load_consents(x: LoadContext, c: L.Counts) -> None:
    con, stg, import_id = x.con, x.stg, x.import_id
    c.forgotten = L.drop_forgotten(con, stg, [("user", "user_id"), ("email", "email")])
    ids = [("user", "user_id"), ("email", "email")]
    _attach_customers(
        con,
        stg,
        ids,
        f"SELECT 'email' AS kind, email AS value, _uid AS user_id, ts, _row FROM {stg}",
        "consents",
        c,
    )
    cols = {
        "user_id": "s._uid",
        "channel": "s.channel",
        "purpose": "s.purpose",
        "granted": "s.granted",
        "ts": "s.ts",
        "source": "s.source",
    }
    L.upsert(con, stg, "consents", list(cols), cols, c)
    con.execute(f"UPDATE consents SET import_id = {import_id} WHERE import_id IS NULL")


def load_fx_rates(x: LoadContext, c: L.Counts) -> None:
    con, stg, ws = x.con, x.stg, x.ws
    cols = {"date": "s.date", "currency": "s.currency", "rate": "s.rate"}
    L.upsert(con, stg, "fx_rates", ["date", "currency"], cols, c)
    recompute_base_amounts(con, ws)


def recompute_base_amounts(con: duckdb.DuckDBPyConnection, ws: Workspace) -> None:
    """Re-convert stored money after fx rates changed (same rule as at import)."""
    base = _lit(ws.settings.base_currency)
    age = int(ws.settings.imports.fx_max_age_days)
    for table, amount, out, ts in (
        ("purchases", "amount", "amount_base", local_date("t.ts", ws.settings.timezone)),
        ("ad_spend", "cost", "cost_base", "t.date"),
    ):
        con.execute(
            f"""UPDATE {table} AS t SET {out} = CAST(t.{amount} * (
                SELECT f.rate FROM fx_rates f WHERE f.currency = t.currency
                  AND f.date <= {ts} AND f.date >= {ts} - INTERVAL {age} DAY
                ORDER BY f.date DESC LIMIT 1) AS DECIMAL(18,3))
            WHERE t.currency <> {base} AND EXISTS (
                SELECT 1 FROM fx_rates f WHERE f.currency = t.currency
                  AND f.date <= {ts} AND f.date >= {ts} - INTERVAL {age} DAY)"""
        )


def load_ad_spend(x: LoadContext, c: L.Counts) -> None:
    con, stg = x.con, x.stg
    c.rejected += _fx_convert(x, "cost", "date", "cost_base")
    cols = {
        "date": "s.date",
        "source": "s.source",
        "campaign": "s.campaign",
        "cost": "s.cost",
        "currency": "s.currency",
        "cost_base": "s.cost_base",
    }
    L.upsert(con, stg, "ad_spend", ["date", "source", "campaign"], cols, c)


def load_message_events(x: LoadContext, c: L.Counts) -> None:
    con, stg, import_id = x.con, x.stg, x.import_id
    con.execute(
        f"""UPDATE {stg} SET event_id = 'h:' || md5(concat_ws('|', coalesce(provider, ''),
        coalesce(message_id, ''), coalesce(user_id, ''), type, CAST(ts AS VARCHAR)))
        WHERE event_id IS NULL"""
    )
    c.forgotten = L.drop_forgotten(con, stg, [("user", "user_id")])
    L.resolve(con, stg, [("user", "user_id")], synthetic=False)
    cols = {
        n: f"s.{_q(n)}"
        for n in (
            "event_id provider message_id user_id campaign channel type ts properties".split()
        )
    }
    cols["user_id"] = "s._uid"
    cols["import_id"] = str(import_id)
    L.insert_first(con, stg, "message_events", "event_id", cols, c)


LOADERS: dict[str, Callable[[LoadContext, L.Counts], None]] = {
    "events": load_events,
    "purchases": load_purchases,
    "users": load_users,
    "devices": load_devices,
    "consents": load_consents,
    "fx-rates": load_fx_rates,
    "ad-spend": load_ad_spend,
    "message-events": load_message_events,
}
