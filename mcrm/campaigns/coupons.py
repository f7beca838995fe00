"""Coupon codes for campaigns (SPEC §5.1 `coupon:`): pools, derived codes, assignment and
redemptions.

A campaign's `coupon: {prefix: BACK15, pool: data/coupons.csv}` either hands out codes from a
pool file or, without a pool, derives one unique code per (campaign, user).

Decisions:
- **Codes compare trimmed and case-insensitively** everywhere: in a pool (duplicates), against
  codes already assigned, and against `purchases.coupon_code` (shoppers type `back15-…`).
- **Pool file:** CSV, UTF-8 (a BOM is fine), LF or CRLF, a header with a `code` column (matched
  trimmed and case-insensitively; other columns are ignored), one code per row, blank rows
  skipped. Every problem is a `DataError` naming file and line: missing or unreadable file, no
  header, no `code` column (listing what was found), an empty code, a duplicate code (naming
  the line it first appeared on), a file without codes. A code that does not start with the
  campaign prefix is an **error** too, not a warning: the library cannot print, and a pool of
  another campaign's codes is almost always the wrong file.
- **Assignment is sticky:** a user keeps the code assigned in an earlier plan of the same
  campaign, so re-planning is idempotent. New users get, in `user_id` order, the pool codes in
  file order that were **never assigned by any campaign** (stronger than per-campaign: two
  campaigns sharing a pool file never hand one code to two people, so a redemption maps back
  to exactly one assignment). If the pool has fewer free codes than new users, a `DataError`
  says how many are left and needed, and nothing is written.
- **Derived codes:** `PREFIX-` + 10 Crockford base32 characters (0-9, A-Z without I L O U) of
  HMAC-SHA256(secret, "campaign|user_id"): deterministic, and unguessable without the secret.
  10 characters carry 50 bits: the chance that k codes hold any collision is about
  k² / 2^51 (10k users: 4e-8; 1M users: 4e-4), and a guess hits one of k valid codes with
  probability k / 2^50 (1M codes: 1 in 1.1e9). A collision with any assigned code (any
  campaign) is detected in SQL and resolved deterministically (the smallest user_id keeps the
  code; the others re-derive with "|1", "|2", ... appended), so assigned codes are unique.
- **Atomic:** all the checking happens in TEMP tables; the only write is one
  `INSERT … SELECT` into `coupon_assignments`, atomic on its own, so it also works inside a
  caller's transaction.
- **Redemptions** are orders up to `as_of` with status `paid` (by default) whose coupon code
  matches an assigned code and that were placed at or after the code went out: the planned
  send time of the assigning plan's row for the user (`plan_rows.send_at`), else that plan's
  as-of, else `assigned_at` (an assignment without a stored plan). Not `assigned_at` alone:
  it is the wall-clock time of planning, so a plan made for a past as-of (a backfill) would
  find no redemptions. The same start as `report campaign` (windows from the planned send).
  Orders of the assignee are redemptions; orders of anybody else (or of a guest order
  without a user) using the code are *foreign* redemptions — a shared code — reported
  separately.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from mcrm.errors import ConfigError, DataError, Where, did_you_mean

if TYPE_CHECKING:
    import duckdb

COUPON_DDL = """CREATE TABLE IF NOT EXISTS coupon_assignments (
    campaign VARCHAR NOT NULL, user_id VARCHAR NOT NULL, code VARCHAR NOT NULL,
    source VARCHAR NOT NULL, plan_id VARCHAR, assigned_at TIMESTAMP NOT NULL
)"""
"""The assignments table (`source` is `pool` or `derived`); idempotent DDL."""

CODE_CHARS = 10
"""Crockford base32 characters after `PREFIX-` in a derived code (50 bits)."""

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_B32_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD)
_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_SPEC_KEYS = ("prefix", "pool")


@dataclass(frozen=True)
class CouponSpec:
    """A campaign's `coupon:`: the code prefix and an optional pool file (relative to the
    workspace, as written)."""

    prefix: str
    pool: str | None = None


@dataclass(frozen=True)
class AssignResult:
    """Outcome of `assign`: users who got a new code, users who kept theirs, and the free
    pool codes left afterwards (None without a pool)."""

    assigned: int
    kept: int
    pool_left: int | None


@dataclass(frozen=True)
class Redemption:
    """An order that used a code assigned in the campaign. `user_id` placed the order;
    `assignee` got the code (equal for own redemptions)."""

    code: str
    assignee: str
    user_id: str | None
    order_id: str
    ts: dt.datetime
    amount_base: Decimal | None


def parse_spec(value: object, where: Where | None = None) -> CouponSpec:
    """`coupon:` of a campaign file -> CouponSpec; ConfigError on a bad shape."""
    if not isinstance(value, Mapping):
        raise ConfigError("coupon must be a mapping like {prefix: BACK15}", where=where)
    for key in value:
        if key not in _SPEC_KEYS:
            raise ConfigError(
                f"unknown key '{key}' in coupon",
                hint=did_you_mean(str(key), _SPEC_KEYS) or "keys: prefix, pool",
                where=where,
            )
    prefix = value.get("prefix")
    if not isinstance(prefix, str) or not prefix.strip():
        raise ConfigError("coupon.prefix is required (a string like BACK15)", where=where)
    if not _PREFIX_RE.match(prefix):
        raise ConfigError(
            f"coupon.prefix '{prefix}' may hold only letters, digits, '-' and '_'",
            where=where,
        )
    pool = value.get("pool")
    if pool is not None and (not isinstance(pool, str) or not pool.strip()):
        raise ConfigError("coupon.pool must be a file path", hint="quote it", where=where)
    return CouponSpec(prefix, pool)


def _norm(code: str) -> str:
    return code.strip().upper()


def load_pool(path: Path, display: str, prefix: str | None = None) -> list[str]:
    """The codes of a pool CSV in file order (trimmed). `display` is the path as the user
    wrote it (for messages); with `prefix`, every code must start with it."""
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as f:
            rows = _rows(f)
    except FileNotFoundError:
        raise DataError(
            f"coupon pool file not found: {display}", where=Where(file=display)
        ) from None
    except UnicodeDecodeError:
        raise DataError("coupon pool file is not UTF-8 text", where=Where(file=display)) from None
    except (OSError, csv.Error) as e:
        raise DataError(f"cannot read coupon pool: {e}", where=Where(file=display)) from None
    if not rows:
        raise DataError("coupon pool file is empty (no header)", where=Where(file=display))
    header_line, header = rows[0]
    names = [h.strip().lower() for h in header]
    if "code" not in names:
        found = ", ".join(h.strip() for h in header) or "(nothing)"
        raise DataError(
            f"coupon pool has no `code` column; found: {found}",
            where=Where(file=display, line=header_line),
        )
    col = names.index("code")
    codes: list[str] = []
    first_seen: dict[str, int] = {}
    for line, row in rows[1:]:
        code = row[col].strip() if col < len(row) else ""
        where = Where(file=display, line=line)
        if not code:
            raise DataError("empty coupon code", where=where)
        key = _norm(code)
        if key in first_seen:
            raise DataError(
                f"duplicate coupon code '{code}' (first on line {first_seen[key]})", where=where
            )
        if prefix is not None and not key.startswith(_norm(prefix)):
            raise DataError(
                f"coupon code '{code}' does not start with the campaign prefix '{prefix}'",
                hint="is this the pool of another campaign?",
                where=where,
            )
        first_seen[key] = line
        codes.append(code)
    if not codes:
        raise DataError("coupon pool has no codes", where=Where(file=display))
    return codes


def _rows(f: TextIO) -> list[tuple[int, list[str]]]:
    """Non-blank CSV rows with the 1-based line on which each starts."""
    reader = csv.reader(f)
    out: list[tuple[int, list[str]]] = []
    start = 1
    for row in reader:
        if any(cell.strip() for cell in row):
            out.append((start, row))
        start = reader.line_num + 1
    return out


def derived_code(prefix: str, campaign: str, user_id: str, secret: bytes, salt: int = 0) -> str:
    """`PREFIX-XXXXXXXXXX`: Crockford base32 of HMAC-SHA256(secret, campaign|user_id[|salt]).

    `salt` > 0 is the collision fallback used by `assign`."""
    if not secret:
        raise ValueError("an empty secret would make coupon codes guessable")
    msg = f"{campaign}|{user_id}" + (f"|{salt}" if salt else "")
    digest = hmac.new(secret, msg.encode("utf-8"), hashlib.sha256).digest()
    chars = base64.b32encode(digest).decode("ascii").translate(_B32_TO_CROCKFORD)
    return f"{prefix}-{chars[:CODE_CHARS]}"


def _table(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a plain table name: {name!r}")
    return name


def _naive_utc(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create `coupon_assignments` if it does not exist yet (a no-op, so also allowed on a
    read-only connection, when it does)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'coupon_assignments' "
        "AND schema_name = current_schema() AND database_name = current_database()"
    ).fetchall()[0][0]
    if not exists:
        con.execute(COUPON_DDL)


def assign(
    con: duckdb.DuckDBPyConnection,
    campaign: str,
    prefix: str,
    pool_codes: list[str] | None,
    user_table: str,
    plan_id: str | None,
    now: dt.datetime,
    secret: bytes,
) -> AssignResult:
    """Give every user of `user_table` a code for `campaign` (keeping earlier ones); see the
    module docstring. Raises DataError, writing nothing, when the pool is exhausted."""
    users = _table(user_table)
    ensure_table(con)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _cpn_need AS
        SELECT DISTINCT CAST(u.user_id AS VARCHAR) AS user_id FROM {users} AS u
        WHERE u.user_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM coupon_assignments AS a
            WHERE a.campaign = $campaign AND a.user_id = CAST(u.user_id AS VARCHAR))""",
        {"campaign": campaign},
    )
    try:
        need = int(con.execute("SELECT count(*) FROM _cpn_need").fetchall()[0][0])
        total = int(
            con.execute(
                f"SELECT count(DISTINCT user_id) FROM {users} WHERE user_id IS NOT NULL"
            ).fetchall()[0][0]
        )
        if pool_codes is not None:
            left = _assign_pool(con, campaign, pool_codes, need, plan_id, now)
        else:
            _assign_derived(con, campaign, prefix, secret, plan_id, now)
            left = None
        return AssignResult(assigned=need, kept=total - need, pool_left=left)
    finally:
        for t in ("_cpn_need", "_cpn_pool", "_cpn_new"):
            con.execute(f"DROP TABLE IF EXISTS {t}")


def _assign_pool(
    con: duckdb.DuckDBPyConnection,
    campaign: str,
    pool_codes: list[str],
    need: int,
    plan_id: str | None,
    now: dt.datetime,
) -> int:
    con.execute("CREATE OR REPLACE TEMP TABLE _cpn_pool (pos BIGINT, code VARCHAR)")
    with con.appender("_cpn_pool") as app:
        app.append_rows([(i, c.strip()) for i, c in enumerate(pool_codes)])
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _cpn_new AS
        WITH free AS (
            SELECT p.code, row_number() OVER (ORDER BY p.pos) AS k FROM _cpn_pool AS p
            WHERE NOT EXISTS (SELECT 1 FROM coupon_assignments AS a
                              WHERE upper(trim(a.code)) = upper(p.code))
            QUALIFY row_number() OVER (PARTITION BY upper(p.code) ORDER BY p.pos) = 1
        ),
        users AS (SELECT user_id, row_number() OVER (ORDER BY user_id) AS k FROM _cpn_need)
        SELECT u.user_id, f.code FROM users AS u RIGHT JOIN free AS f ON f.k = u.k"""
    )
    free = int(con.execute("SELECT count(*) FROM _cpn_new").fetchall()[0][0])
    if need > free:
        raise DataError(
            f"coupon pool exhausted for campaign '{campaign}': {free} free code(s) left, "
            f"{need} needed",
            hint="add codes to the pool file, or remove the pool to derive codes",
        )
    con.execute(
        "INSERT INTO coupon_assignments SELECT $campaign, user_id, code, 'pool', $plan, $now "
        "FROM _cpn_new WHERE user_id IS NOT NULL",
        {"campaign": campaign, "plan": plan_id, "now": _naive_utc(now)},
    )
    return free - need


def _assign_derived(
    con: duckdb.DuckDBPyConnection,
    campaign: str,
    prefix: str,
    secret: bytes,
    plan_id: str | None,
    now: dt.datetime,
) -> None:
    users = [
        r[0] for r in con.execute("SELECT user_id FROM _cpn_need ORDER BY user_id").fetchall()
    ]
    con.execute("CREATE OR REPLACE TEMP TABLE _cpn_new (user_id VARCHAR, code VARCHAR, salt INT)")
    with con.appender("_cpn_new") as app:
        app.append_rows([(u, derived_code(prefix, campaign, u, secret), 0) for u in users])
    # resolve collisions (with assigned codes, or among the new ones) until there are none
    for _ in range(100):
        clash = con.execute(
            """SELECT n.user_id, n.salt FROM _cpn_new AS n
            WHERE EXISTS (SELECT 1 FROM coupon_assignments AS a
                          WHERE upper(trim(a.code)) = upper(n.code))
               OR EXISTS (SELECT 1 FROM _cpn_new AS m
                          WHERE upper(m.code) = upper(n.code) AND m.user_id < n.user_id)
            ORDER BY n.user_id"""
        ).fetchall()
        if not clash:
            break
        for user_id, salt in clash:
            con.execute(
                "UPDATE _cpn_new SET code = ?, salt = ? WHERE user_id = ?",
                [derived_code(prefix, campaign, user_id, secret, salt + 1), salt + 1, user_id],
            )
    else:  # pragma: no cover - needs ~100 successive 50-bit collisions
        raise DataError(f"cannot derive unique coupon codes for campaign '{campaign}'")
    con.execute(
        "INSERT INTO coupon_assignments SELECT $campaign, user_id, code, 'derived', $plan, $now "
        "FROM _cpn_new ORDER BY user_id",
        {"campaign": campaign, "plan": plan_id, "now": _naive_utc(now)},
    )


def codes_for(con: duckdb.DuckDBPyConnection, campaign: str, user_table: str) -> dict[str, str]:
    """user_id -> assigned code, for the users of `user_table` who have one."""
    users = _table(user_table)
    ensure_table(con)
    rows = con.execute(
        f"""SELECT a.user_id, a.code FROM coupon_assignments AS a
        WHERE a.campaign = ? AND a.user_id IN (SELECT CAST(user_id AS VARCHAR) FROM {users})
        ORDER BY a.user_id""",
        [campaign],
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def _matches(
    con: duckdb.DuckDBPyConnection,
    campaign: str,
    as_of: dt.datetime | None,
    statuses: tuple[str, ...],
    own: bool,
) -> list[Redemption]:
    ensure_table(con)
    same = "p.user_id = a.user_id" if own else "p.user_id IS DISTINCT FROM a.user_id"
    # when the code went out (see the module docstring): the planned send, else the plan's
    # as-of, else the assignment's own time
    rows = con.execute(
        f"""WITH cp AS (SELECT plan_id, as_of FROM campaign_plans WHERE campaign = $campaign),
        rs AS (SELECT r.plan_id, r.user_id, min(r.send_at) AS send_at FROM plan_rows AS r
               WHERE r.plan_id IN (SELECT plan_id FROM cp) GROUP BY r.plan_id, r.user_id),
        a AS (SELECT a.*, coalesce(rs.send_at, cp.as_of, a.assigned_at) AS starts_at
              FROM coupon_assignments AS a
              LEFT JOIN cp ON cp.plan_id = a.plan_id
              LEFT JOIN rs ON rs.plan_id = a.plan_id AND rs.user_id = a.user_id
              WHERE a.campaign = $campaign)
        SELECT a.code, a.user_id, p.user_id, p.order_id, p.ts, p.amount_base
        FROM a
        JOIN purchases AS p
          ON upper(trim(p.coupon_code)) = upper(trim(a.code)) AND p.ts >= a.starts_at
        WHERE {same}
          AND list_contains($statuses, p.status)
          AND ($as_of IS NULL OR p.ts <= $as_of)
        ORDER BY a.user_id, p.ts, p.order_id""",
        {
            "campaign": campaign,
            "statuses": list(statuses),
            "as_of": _naive_utc(as_of) if as_of else None,
        },
    ).fetchall()
    return [Redemption(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


def redemptions(
    con: duckdb.DuckDBPyConnection,
    campaign: str,
    as_of: dt.datetime | None = None,
    statuses: tuple[str, ...] = ("paid",),
) -> list[Redemption]:
    """Orders by the assignee using their code, ordered by assignee, ts, order_id."""
    return _matches(con, campaign, as_of, statuses, own=True)


def foreign_redemptions(
    con: duckdb.DuckDBPyConnection,
    campaign: str,
    as_of: dt.datetime | None = None,
    statuses: tuple[str, ...] = ("paid",),
) -> list[Redemption]:
    """Orders using a campaign code by somebody other than its assignee (a shared code)."""
    return _matches(con, campaign, as_of, statuses, own=False)


def foreign_redemption_count(
    con: duckdb.DuckDBPyConnection,
    campaign: str,
    as_of: dt.datetime | None = None,
    statuses: tuple[str, ...] = ("paid",),
) -> int:
    """How many orders used a campaign code not assigned to the one who ordered."""
    return len(foreign_redemptions(con, campaign, as_of, statuses))
