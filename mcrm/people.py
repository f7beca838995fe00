"""People: the 360° profile, lists, manual merges, erasure and data-access exports.

Erasure (`forget`) deletes the person from every table, the outbox and snapshots included,
and leaves only tombstones: md5 hashes of each of their ids (user id, e-mail, phone, device and
customer ids). Imports drop rows that match a tombstone, so re-importing an old export does not
bring the person back, and no personal data is kept to do it. Import rejects holding one of
their identifiers as a whole token go too (`forget_rejects`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from mcrm.errors import NotFound, UsageError
from mcrm.output import Rows

if TYPE_CHECKING:
    import duckdb


def mask_email(v: str | None) -> str | None:
    if not v or "@" not in v:
        return v and "****"
    name, domain = v.split("@", 1)
    return f"{name[:1]}***@{domain}"


def mask_phone(v: str | None) -> str | None:
    if not v:
        return v
    return v[:4] + "*" * max(len(v) - 6, 0) + v[-2:]


def mask_token(v: str | None) -> str | None:
    return v and (v[:6] + "…")


def find_user(con: duckdb.DuckDBPyConnection, ident: str) -> str:
    """The canonical user id for a user id, a merged-away id, or any identity value."""
    if con.execute("SELECT 1 FROM users WHERE user_id = ?", [ident]).fetchall():
        return ident
    row = con.execute(
        "SELECT user_id FROM identities WHERE value = ? OR (kind = 'email' AND value = ?) "
        "ORDER BY CASE kind WHEN 'user' THEN 0 ELSE 1 END LIMIT 1",
        [ident, ident.strip().lower()],
    ).fetchall()
    if row:
        return str(row[0][0])
    raise NotFound(f"no user '{ident}'", hint="mcrm users list shows who there is")


def _dicts(cur: Any) -> list[dict[str, Any]]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def profile(
    con: duckdb.DuckDBPyConnection,
    ident: str,
    as_of: dt.datetime | None = None,
    show_pii: bool = False,
    events: int = 10,
) -> dict[str, Any]:
    uid = find_user(con, ident)
    cutoff = as_of or dt.datetime(9999, 1, 1)
    user = _dicts(con.execute("SELECT * FROM users WHERE user_id = ?", [uid]))[0]
    if not show_pii:
        user["email"] = mask_email(user.get("email"))
        user["phone"] = mask_phone(user.get("phone"))
    attrs = user.pop("attributes", None)
    ids = _dicts(
        con.execute(
            "SELECT kind, value, source, first_seen FROM identities WHERE user_id = ? "
            "ORDER BY kind, value",
            [uid],
        )
    )
    if not show_pii:
        for i in ids:
            if i["kind"] == "email":
                i["value"] = mask_email(i["value"])
            elif i["kind"] == "phone":
                i["value"] = mask_phone(i["value"])
    devices = _dicts(
        con.execute(
            "SELECT device_id, platform, os, os_version, device_model, app_version, push_provider,"
            " push_token, push_enabled, last_seen, invalidated_at FROM devices WHERE user_id = ? "
            "ORDER BY last_seen DESC NULLS LAST, device_id",
            [uid],
        )
    )
    if not show_pii:
        for d in devices:
            d["push_token"] = mask_token(d["push_token"])
    consent = _dicts(
        con.execute(
            "SELECT channel, purpose, granted, ts AS since, source FROM consents "
            "WHERE user_id = ? AND ts <= ? "
            "QUALIFY row_number() OVER (PARTITION BY channel, purpose "
            "ORDER BY ts DESC, granted ASC) = 1 ORDER BY channel, purpose",
            [uid, cutoff],
        )
    )
    totals = _dicts(
        con.execute(
            "SELECT count(*) FILTER (WHERE status = 'paid') AS orders, "
            "coalesce(sum(amount_base) FILTER (WHERE status = 'paid'), 0) AS revenue, "
            "count(*) FILTER (WHERE status = 'refunded') AS refunded_orders, "
            "count(*) FILTER (WHERE status = 'cancelled') AS cancelled_orders, "
            "min(ts) FILTER (WHERE status = 'paid') AS first_purchase, "
            "max(ts) FILTER (WHERE status = 'paid') AS last_purchase, "
            "list(DISTINCT channel) FILTER (WHERE channel IS NOT NULL) AS channels "
            "FROM purchases WHERE user_id = ? AND ts <= ?",
            [uid, cutoff],
        )
    )[0]
    orders = _dicts(
        con.execute(
            "SELECT order_id, ts, status, channel, amount, currency, amount_base FROM purchases "
            "WHERE user_id = ? AND ts <= ? ORDER BY ts DESC, order_id LIMIT 10",
            [uid, cutoff],
        )
    )
    last = _dicts(
        con.execute(
            "SELECT ts, name, platform, screen, city, properties FROM events "
            "WHERE user_id = ? AND ts <= ? ORDER BY ts DESC, event_id LIMIT ?",
            [uid, cutoff, events],
        )
    )
    counts = _dicts(
        con.execute(
            "SELECT count(*) AS events, count(DISTINCT session_id) AS sessions, "
            "list(DISTINCT platform) FILTER (WHERE platform IS NOT NULL) AS platforms "
            "FROM events WHERE user_id = ? AND ts <= ?",
            [uid, cutoff],
        )
    )[0]
    messages = _dicts(
        con.execute(
            "SELECT ts, channel, campaign, type FROM message_events WHERE user_id = ? "
            "AND ts <= ? ORDER BY ts DESC LIMIT 10",
            [uid, cutoff],
        )
    )
    merged = [
        r[0]
        for r in con.execute(
            "SELECT from_user_id FROM user_merges WHERE into_user_id = ? ORDER BY merged_at",
            [uid],
        ).fetchall()
    ]
    import json

    return {
        "user_id": uid,
        "profile": user,
        "attributes": json.loads(attrs) if isinstance(attrs, str) else attrs,
        "identities": ids,
        "merged_from": merged,
        "devices": devices,
        "consents": consent,
        "purchases": {**totals, "recent": orders},
        "activity": {**counts, "recent_events": last},
        "messages": messages,
    }


def clv_prediction(
    con: duckdb.DuckDBPyConnection, uid: str, as_of: dt.datetime | None = None
) -> dict[str, Any] | None:
    """The user's CLV prediction from the run segments and templates read as of `as_of` (the
    latest `mcrm predict clv` run whose as-of is at or before it, mcrm.predict.run), or None
    when that run has no row for them or there is no run. A user merged after the run may
    have two rows: the same pick as `predictions_sql` (highest CLV, then p_alive)."""
    from mcrm.predict.run import predictions_sql

    cutoff = as_of or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = _dicts(
        con.execute(
            "SELECT p.p_alive, p.expected_purchases, p.expected_aov, p.clv, "
            f"r.horizon_days, r.run_id, r.as_of AS run_as_of FROM ({predictions_sql('?')}) p "
            "JOIN prediction_runs r ON r.run_id = p.run_id WHERE p.user_id = ?",
            [cutoff, uid],
        )
    )
    return rows[0] if rows else None


LIST_COLS = [
    "user_id",
    "first_name",
    "last_name",
    "email",
    "locale",
    "country",
    "city",
    "os",
    "first_seen",
    "last_seen",
]


def list_users(
    con: duckdb.DuckDBPyConnection,
    where: str | None = None,
    limit: int | None = None,
    show_pii: bool = False,
    columns: list[str] | None = None,
) -> Rows:
    import duckdb

    cols = columns or LIST_COLS
    email = (
        "email"
        if show_pii
        else "CASE WHEN email IS NULL THEN NULL ELSE "
        "left(email, 1) || '***@' || split_part(email, '@', 2) END AS email"
    )
    phone = (
        "phone"
        if show_pii
        else "CASE WHEN phone IS NULL THEN NULL ELSE "
        "left(phone, 4) || '****' || right(phone, 2) END AS phone"
    )
    sel = ", ".join(email if c == "email" else phone if c == "phone" else c for c in cols)
    sql = f"SELECT {sel} FROM users u"
    if where:
        sql += f" WHERE ({where})"
    sql += " ORDER BY user_id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    try:
        cur = con.execute(sql)
    except duckdb.Error as e:
        raise UsageError(f"--where: {str(e).splitlines()[0]}") from None
    json_cols = frozenset(c for c in cols if c == "attributes")
    return Rows(cols, cur.fetchall(), json_columns=json_cols)


EXPORT_COLS = (
    "user_id email phone first_name last_name gender birth_date locale country region city "
    "home_lat home_lon timezone os os_version device_model app_version acq_source acq_medium "
    "acq_campaign install_time attributes first_seen last_seen"
).split()


def merge(con: duckdb.DuckDBPyConnection, from_ident: str, into_ident: str) -> tuple[str, str]:
    from mcrm.ingest.load import merge_users

    a, b = find_user(con, from_ident), find_user(con, into_ident)
    if a == b:
        raise UsageError(f"'{from_ident}' and '{into_ident}' are already the same user ({a})")
    con.execute("BEGIN")
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _mm AS SELECT ? AS from_id, ? AS into_id", [a, b]
        )
        merge_users(con, "_mm", "manual merge")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return a, b


FORGET_TABLES = ("events", "purchases", "consents", "devices", "message_events", "users")


def forget(con: duckdb.DuckDBPyConnection, ident: str) -> dict[str, int]:
    """Erase a person everywhere; returns rows deleted per table."""
    uid = find_user(con, ident)
    con.execute("BEGIN")
    try:
        values = con.execute(
            "SELECT kind, value FROM identities WHERE user_id = ? "
            "UNION SELECT 'user', ? UNION SELECT 'user', from_user_id FROM user_merges "
            "WHERE into_user_id = ? "
            "UNION SELECT 'device', device_id FROM devices WHERE user_id = ? "
            "UNION SELECT 'email', email FROM users WHERE user_id = ? AND email IS NOT NULL "
            "UNION SELECT 'phone', phone FROM users WHERE user_id = ? AND phone IS NOT NULL",
            [uid, uid, uid, uid, uid, uid],
        ).fetchall()
        from mcrm.ingest.load import tombstone_hash

        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        con.executemany(
            "INSERT INTO tombstones VALUES (?, ?, ?)",
            [[k, tombstone_hash(k, v), now] for k, v in set(values)],
        )
        # push tokens are no identity (no tombstone) but may stand in a rejected line
        tokens = [
            ("push_token", str(r[0]))
            for r in con.execute(
                "SELECT push_token FROM devices WHERE user_id = ? AND push_token IS NOT NULL",
                [uid],
            ).fetchall()
        ]
        deleted: dict[str, int] = {}
        for t in (*FORGET_TABLES, *extra_user_tables(con)):
            n = con.execute(f"DELETE FROM {t} WHERE user_id = ?", [uid]).fetchall()[0][0]
            deleted[t] = int(n)
        # events that only ever carried this person's device ids
        devs = [v for k, v in values if k == "device"]
        if devs:
            n = con.execute(
                "DELETE FROM events WHERE user_id IS NULL AND list_contains(?, anonymous_id)",
                [devs],
            ).fetchall()[0][0]
            deleted["events"] += int(n)
        deleted["import_rejects"] = forget_rejects(con, [*values, *tokens])
        n = con.execute("DELETE FROM identities WHERE user_id = ?", [uid]).fetchall()[0][0]
        deleted["identities"] = int(n)
        con.execute(
            "DELETE FROM user_merges WHERE into_user_id = ? OR from_user_id = ?", [uid, uid]
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return deleted


# characters that continue an identifier: a match must not have one on either side
_ID_CHARS = "A-Za-z0-9@._+-"


def forget_rejects(con: duckdb.DuckDBPyConnection, values: list[tuple[str, str]]) -> int:
    """Delete the import rejects whose raw line or reason holds one of the person's
    identifiers (`(kind, value)`: user ids, e-mails, phones, device ids, customer ids, push
    tokens) as a whole token: not inside a longer identifier, so `u1` does not match `u10`
    nor `ann@example.com` `joann@example.com`. E-mails match whatever their case; the other
    ids as stored (they are case-sensitive). A rejected line is not parsed (it may be broken),
    so a short id (`7`) also removes other lines holding that value as a token: erasure errs
    towards removing a diagnostic rather than keeping personal data. Returns rows deleted."""
    import re

    def pattern(vals: set[str], flags: str) -> str | None:
        if not vals:
            return None
        alts = "|".join(re.escape(v) for v in sorted(vals, key=lambda v: (-len(v), v)))
        return f"{flags}(?:^|[^{_ID_CHARS}])(?:{alts})(?:$|[^{_ID_CHARS}])"

    emails = {v.strip() for k, v in values if k == "email" and v and v.strip()}
    others = {v for k, v in values if k != "email" and v and v.strip()}
    pats = [p for p in (pattern(others, ""), pattern(emails, "(?i)")) if p]
    phones = {v.strip() for k, v in values if k == "phone" and v and v.strip()}
    pats += [p for p in (_phone_pattern(v) for v in sorted(phones)) if p]
    if not pats:
        return 0
    text = "coalesce(raw, '') || chr(10) || coalesce(reason, '')"
    where = " OR ".join(f"regexp_matches({text}, ?)" for _ in pats)
    n = con.execute(f"DELETE FROM import_rejects WHERE {where}", pats).fetchall()[0][0]
    return int(n)


# what an export may write between a phone number's digits: `+420 601-234 (567)`, `601.234`
_PHONE_SEP = r"[\s().\-/]*"


def _phone_pattern(phone: str) -> str | None:
    """A regex for an E.164 number (`+420601234567`) however a raw line writes it: with
    separators between the digits, `00` or nothing for the `+`, as imports normalise it
    (kinds.NORMALISE). Not inside a longer number: no digit (or id character) right before
    it, and no further digit after it, separators or not (`+420 601 234 567 8` is another)."""
    digits = phone[1:] if phone.startswith("+") else ""
    if len(digits) < 7 or not digits.isdigit():
        return None
    body = _PHONE_SEP.join(digits)
    before = f"(?:^|[^{_ID_CHARS}])"
    after = rf"(?:$|[^\s()/{_ID_CHARS}]|[\s()/.\-]+(?:$|[^0-9\s()/.\-]))"
    return rf"{before}(?:(?:\+|00){_PHONE_SEP})?{body}{after}"


def extra_user_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Tables beyond the core ones that hold user_id (snapshots, history, outbox, ...)."""
    from mcrm.db import user_tables

    return [t for t in user_tables(con) if t not in FORGET_TABLES]


def export_data(con: duckdb.DuckDBPyConnection, ident: str) -> dict[str, Any]:
    """Everything stored about a person (data access request), personal data unmasked."""
    import json

    uid = find_user(con, ident)
    out: dict[str, Any] = {"user_id": uid, "exported_at": dt.datetime.now(dt.UTC)}
    for t in (
        "users",
        "identities",
        "devices",
        "consents",
        "purchases",
        "events",
        "message_events",
        *extra_user_tables(con),
    ):
        rows = _dicts(con.execute(f"SELECT * FROM {t} WHERE user_id = ?", [uid]))
        for r in rows:
            for k, v in r.items():
                if isinstance(v, str) and k in ("attributes", "properties", "items"):
                    try:
                        r[k] = json.loads(v)
                    except ValueError:
                        pass
        out[t] = rows
    return out
