"""Merging staged rows into the entity tables, and the identity graph.

Counting: every staged row is exactly one of inserted / updated / duplicate (rejects and
forgotten rows were counted before). For keyed entities a row that repeats an earlier row of the
same file exactly is a duplicate; the first version of a new key is inserted; every other
distinct version of a key is an update if the final record differs from what was stored, and a
duplicate if it does not.

Identity: the canonical user id is the app's user id. Every other id (device / anonymous id,
e-shop customer id, email, phone) is a row in `identities` pointing at one user. An order or
consent that matches no known user gets a synthetic user (`email:<md5 prefix>` or
`cust:<customer id>`; never the email itself, ids appear in logs). When a later row links that
email or customer id to a real app user, the synthetic user is merged into the real one
(`merge_users`), so app and e-shop histories meet in one profile. Two real users never merge
automatically (a shared family email must not fuse two accounts): the link stays with the first
and the import warns; `mcrm users merge A B` does it by hand. A device seen with two users stays
with the first (logout / login on a shared phone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mcrm.ingest.readers import _lit, _q

if TYPE_CHECKING:
    import duckdb

SYNTHETIC = "(starts_with({c}, 'email:') OR starts_with({c}, 'cust:'))"


@dataclass
class Counts:
    inserted: int = 0
    updated: int = 0
    duplicates: int = 0
    forgotten: int = 0
    rejected: int = 0
    warnings: list[str] = field(default_factory=list)


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> int:
    row = (
        con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()
    )
    return int(row[0][0] or 0)


def tombstone_hash(kind: str, value: str) -> str:
    import hashlib

    return hashlib.md5(f"{kind}:{value}".encode()).hexdigest()


def drop_forgotten(con: duckdb.DuckDBPyConnection, staged: str, ids: list[tuple[str, str]]) -> int:
    """Remove rows of erased people (their ids hashed in `tombstones`); returns how many."""
    if not _one(con, "SELECT count(*) FROM tombstones"):
        return 0
    conds = " OR ".join(
        f"({_q(col)} IS NOT NULL AND md5('{kind}:' || {_q(col)}) IN "
        f"(SELECT value_hash FROM tombstones))"
        for kind, col in ids
    )
    n = _one(con, f"SELECT count(*) FROM {staged} WHERE {conds}")
    if n:
        con.execute(f"DELETE FROM {staged} WHERE {conds}")
    return n


def resolve(
    con: duckdb.DuckDBPyConnection,
    staged: str,
    ids: list[tuple[str, str]],
    synthetic: bool,
    fill: bool = True,
) -> None:
    """Add `_uid` to `staged`: the canonical user each row belongs to (NULL if unknown).

    With `fill=False` (big event files) only rows that an identity resolves are written, and
    callers read `coalesce(_uid, user_id)`: rewriting every row of a 5-million-row staging table
    costs more than the rest of the import.
    """
    con.execute(f"ALTER TABLE {staged} ADD COLUMN IF NOT EXISTS _uid VARCHAR")
    have_ids = _one(con, "SELECT count(*) FROM (SELECT 1 FROM identities LIMIT 1)")
    lookups, parts = [], []
    user_col = next((c for k, c in ids if k == "user"), None)
    for kind, col in ids:
        look = (
            f"(SELECT i.user_id FROM identities i WHERE i.kind = '{kind}' "
            f"AND i.value = s.{_q(col)})"
        )
        if kind == "user":
            if have_ids:
                parts.append(look)
                lookups.append(look)
            parts.append(f"s.{_q(col)}")
        elif have_ids:
            guarded = (
                look
                if fill or user_col is None
                else (f"CASE WHEN s.{_q(user_col)} IS NULL THEN {look} END")
            )
            parts.append(guarded)
            lookups.append(guarded)
    if synthetic:
        cols = dict(ids)
        if "email" in cols:
            parts.append(f"'email:' || left(md5(s.{_q(cols['email'])}), 16)")
        if "customer" in cols:
            parts.append(f"'cust:' || s.{_q(cols['customer'])}")
    if fill:
        expr = f"coalesce({', '.join(parts)})" if len(parts) > 1 else parts[0]
        con.execute(f"UPDATE {staged} AS s SET _uid = {expr}")
    elif lookups:
        expr = f"coalesce({', '.join(lookups)})" if len(lookups) > 1 else lookups[0]
        con.execute(f"UPDATE {staged} AS s SET _uid = {expr} WHERE {expr} IS NOT NULL")


def link(con: duckdb.DuckDBPyConnection, pairs_sql: str, source: str, counts: Counts) -> None:
    """Record identities from `pairs_sql` (kind, value, user_id, ts, _row), merging synthetic
    users into real ones where a link proves they are the same person."""
    con.execute("DROP TABLE IF EXISTS _pairs")
    con.execute(
        f"""CREATE TEMP TABLE _pairs AS
        SELECT kind, value, user_id, ts FROM ({pairs_sql}) p
        WHERE value IS NOT NULL AND user_id IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY kind, value
            ORDER BY {SYNTHETIC.format(c="user_id")}, _row, user_id) = 1"""
    )
    # Synthetic users that a real user now claims (either in the DB or in this batch).
    con.execute("DROP TABLE IF EXISTS _merge_map")
    con.execute(
        f"""CREATE TEMP TABLE _merge_map AS
        SELECT DISTINCT i.user_id AS from_id, first(p.user_id ORDER BY p.user_id) AS into_id
        FROM _pairs p JOIN identities i ON i.kind = p.kind AND i.value = p.value
        WHERE i.user_id <> p.user_id AND p.kind IN ('email', 'customer', 'phone')
          AND {SYNTHETIC.format(c="i.user_id")} AND NOT {SYNTHETIC.format(c="p.user_id")}
        GROUP BY i.user_id"""
    )
    conflicts = _one(
        con,
        f"""SELECT count(*) FROM _pairs p JOIN identities i
            ON i.kind = p.kind AND i.value = p.value
        WHERE i.user_id <> p.user_id AND p.kind IN ('email', 'customer', 'phone')
          AND NOT {SYNTHETIC.format(c="i.user_id")} AND NOT {SYNTHETIC.format(c="p.user_id")}""",
    )
    if conflicts:
        counts.warnings.append(
            f"{conflicts} email/phone/customer id(s) already belong to another user and were "
            "left there; merge by hand with `mcrm users merge` if they are one person"
        )
    if _one(con, "SELECT count(*) FROM _merge_map"):
        merge_users(con, "_merge_map", f"same identity ({source})")
    con.execute(
        f"""INSERT INTO identities
        SELECT p.kind, p.value, p.user_id, {_lit(source)}, p.ts FROM _pairs p
        WHERE NOT EXISTS (SELECT 1 FROM identities i
                          WHERE i.kind = p.kind AND i.value = p.value)"""
    )
    con.execute("DROP TABLE _pairs")


USER_COLS = (
    "email phone first_name last_name gender birth_date locale country region city home_lat "
    "home_lon timezone os os_version device_model app_version acq_source acq_medium "
    "acq_campaign install_time"
).split()


def merge_users(con: duckdb.DuckDBPyConnection, mapping: str, reason: str) -> int:
    """Merge every `from_id` into its `into_id` (table `mapping`), in every table."""
    n = _one(con, f"SELECT count(*) FROM {mapping}")
    from mcrm.db import user_tables

    for t in user_tables(con):
        con.execute(
            f"UPDATE {t} SET user_id = m.into_id FROM {mapping} m WHERE {t}.user_id = m.from_id"
        )
    con.execute(
        f"UPDATE identities SET user_id = m.into_id FROM {mapping} m "
        f"WHERE identities.user_id = m.from_id"
    )
    sets = ", ".join(f"{c} = coalesce(users.{c}, f.{c})" for c in USER_COLS)
    con.execute(
        f"""UPDATE users SET {sets},
            attributes = CASE WHEN f.attributes IS NULL THEN users.attributes
                              WHEN users.attributes IS NULL THEN f.attributes
                              ELSE json_merge_patch(f.attributes, users.attributes) END,
            first_seen = least(users.first_seen, f.first_seen),
            last_seen = greatest(users.last_seen, f.last_seen),
            updated_at = CAST(now() AS TIMESTAMP)
        FROM (SELECT m.into_id, u.* FROM {mapping} m JOIN users u ON u.user_id = m.from_id) f
        WHERE users.user_id = f.into_id"""
    )
    # an into_id with no users row yet takes over the from row
    con.execute(
        f"""UPDATE users SET user_id = m.into_id FROM {mapping} m
        WHERE users.user_id = m.from_id
          AND NOT EXISTS (SELECT 1 FROM users u2 WHERE u2.user_id = m.into_id)"""
    )
    con.execute(f"DELETE FROM users WHERE user_id IN (SELECT from_id FROM {mapping})")
    con.execute(
        f"""INSERT INTO identities SELECT 'user', from_id, into_id, 'merge', CAST(now() AS
        TIMESTAMP) FROM {mapping} m WHERE NOT EXISTS (SELECT 1 FROM identities i
        WHERE i.kind = 'user' AND i.value = m.from_id)"""
    )
    con.execute(
        f"UPDATE identities SET user_id = m.into_id FROM {mapping} m "
        f"WHERE identities.kind = 'user' AND identities.value = m.from_id"
    )
    con.execute(
        f"INSERT INTO user_merges SELECT from_id, into_id, CAST(now() AS TIMESTAMP), "
        f"{_lit(reason)} FROM {mapping}"
    )
    return n


def upsert(
    con: duckdb.DuckDBPyConnection,
    staged: str,
    table: str,
    key: list[str],
    cols: dict[str, str],
    counts: Counts,
    coalesce: bool = False,
    extra_set: str = "",
) -> None:
    """Insert new keys and update existing ones from `staged`.

    `cols` maps target columns to SQL over the staged row (`s`). `coalesce=True` keeps stored
    values where the new one is NULL (later non-null values win), else the last row replaces.
    """
    keys = ", ".join(_q(k) for k in key)
    names = list(cols)
    select = ", ".join(f"{expr} AS {_q(name)}" for name, expr in cols.items())
    con.execute("DROP TABLE IF EXISTS _b")
    con.execute(
        f"""CREATE TEMP TABLE _b AS SELECT *, md5(CAST(row({", ".join(_q(n) for n in names)})
        AS VARCHAR)) AS _h FROM (SELECT {select}, s._row FROM {staged} s) x"""
    )
    in_file_dups = _one(
        con,
        f"SELECT count(*) - count(DISTINCT ({keys}, _h)) FROM _b",
    )
    if coalesce:
        agg = ", ".join(
            f"max_by({_q(n)}, _row) FILTER (WHERE {_q(n)} IS NOT NULL) AS {_q(n)}"
            for n in names
            if n not in key
        )
        final = f"SELECT {keys}, {agg}, count(DISTINCT _h) AS _versions FROM _b GROUP BY {keys}"
    else:
        final = (
            f"SELECT * EXCLUDE (_h, _row), count(DISTINCT _h) OVER (PARTITION BY {keys}) "
            f"AS _versions FROM _b QUALIFY row_number() OVER (PARTITION BY {keys} "
            f"ORDER BY _row DESC) = 1"
        )
    con.execute("DROP TABLE IF EXISTS _f")
    con.execute(f"CREATE TEMP TABLE _f AS {final}")
    on = " AND ".join(f"t.{_q(k)} IS NOT DISTINCT FROM f.{_q(k)}" for k in key)
    con.execute("DROP TABLE IF EXISTS _old")
    con.execute(
        f"CREATE TEMP TABLE _old AS SELECT f.*, EXISTS (SELECT 1 FROM {table} t WHERE {on}) "
        f"AS _exists FROM _f f"
    )
    new_keys, new_versions = con.execute(
        "SELECT count(*), coalesce(sum(_versions), 0) FROM _old WHERE NOT _exists"
    ).fetchall()[0]
    counts.inserted += int(new_keys)
    counts.updated += int(new_versions) - int(new_keys)
    value_cols = [n for n in names if n not in key]
    if coalesce:
        newval = {n: f"coalesce(f.{_q(n)}, t.{_q(n)})" for n in value_cols}
    else:
        newval = {n: f"f.{_q(n)}" for n in value_cols}
    differs = " OR ".join(f"({newval[n]}) IS DISTINCT FROM t.{_q(n)}" for n in value_cols)
    changed_sql = (
        f"SELECT coalesce(sum(f._versions), 0) FROM _old f JOIN {table} t ON {on} "
        f"WHERE f._exists AND ({differs or 'FALSE'})"
    )
    changed = _one(con, changed_sql)
    total_existing = _one(con, "SELECT coalesce(sum(_versions), 0) FROM _old WHERE _exists")
    counts.updated += changed
    counts.duplicates += total_existing - changed + in_file_dups
    if value_cols:
        sets = ", ".join(f"{_q(n)} = {newval[n]}" for n in value_cols)
        con.execute(
            f"UPDATE {table} AS t SET {sets}{extra_set} FROM (SELECT * FROM _old WHERE _exists) f "
            f"WHERE {on}"
        )
    con.execute(
        f"INSERT INTO {table} ({', '.join(_q(n) for n in names)}) "
        f"SELECT {', '.join(_q(n) for n in names)} FROM _old WHERE NOT _exists"
    )
    for t in ("_b", "_f", "_old"):
        con.execute(f"DROP TABLE {t}")


def insert_first(
    con: duckdb.DuckDBPyConnection,
    staged: str,
    table: str,
    key: str,
    cols: dict[str, str],
    counts: Counts,
) -> None:
    """Insert rows whose key is new, keeping the first of in-file repeats (immutable facts)."""
    total, distinct = con.execute(
        f"SELECT count(*), count(DISTINCT {key}) FROM {staged} s"
    ).fetchall()[0]
    dedupe = ""
    if distinct < total:
        # `_row` is NULL where the stager left it so (`Kind.needs_row`): rowid is file order
        dedupe = f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY s._row, s.rowid) = 1"
    anti = ""
    if _one(con, f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT 1)"):
        anti = f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{key} = s.{key})"
    names = ", ".join(_q(n) for n in cols)
    select = ", ".join(f"{expr}" for expr in cols.values())
    inserted = con.execute(
        f"INSERT INTO {table} ({names}) SELECT {select} FROM {staged} s {anti} {dedupe}"
    ).fetchall()[0][0]
    counts.inserted += int(inserted)
    counts.duplicates += int(total) - int(inserted)
