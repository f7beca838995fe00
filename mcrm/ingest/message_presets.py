"""Provider presets for `mcrm import message-events`: SendGrid Event Webhook, Twilio status
callbacks, Expo push receipts (reference/providers.md §2.2, §3.2, §4.1; docs/vendor-formats.md).

Each is SQL over the raw records, like the vendor presets (mcrm.ingest.vendors), and yields up to
three parts, loaded in this order in the import's one transaction:

1. **message-events**, with the provider's own event id (SendGrid `sg_event_id`; Twilio
   `twilio:<MessageSid>:<status>`; Expo `expo:<ticket id>`), so a re-import is all duplicates.
   Each event is **linked** to the outbox row it is about — by the idempotency key mcrm put on
   the wire (`custom_args.mcrm_id`, which SendGrid returns as the event's top-level `mcrm_id`;
   an `mcrm_id` column Twilio receivers can log from the `StatusCallback` query), else by the
   provider's message id mcrm stored (`X-Message-Id` = the `sg_message_id` prefix, together with
   the address hash; the Twilio `MessageSid`; the Expo ticket id) — and takes that row's user,
   campaign and channel; the key goes to `properties.mcrm_id` (the report's message key).
   Unlinked events (mail sent by another tool) find their user by the address's identity.
   Provider types map onto mcrm's: SendGrid `processed` and Twilio `queued`/`sent` are
   `processed` when linked (mcrm's own send: dispatch wrote its `sent` row, which frequency
   caps and reentry count). A **foreign send** — SendGrid `processed` or Twilio `sent` that
   links to no outbox row (mail or SMS from another tool) — is stored as `sent`, so that caps
   and reentry count it too: every real message has exactly one `sent` row.
2. **consents**: `unsubscribe`, `group_unsubscribe` and `spamreport` revoke e-mail marketing
   consent, `group_resubscribe` grants it again; Twilio error 21610 (STOP) revokes SMS
   consent, marketing and transactional (as dispatch does on the send answer). Source
   `sendgrid:<event>` / `twilio:21610`; the row is at the event's time.
3. **invalid-addresses** (the registry of mcrm.dispatch.outbox): SendGrid hard bounces (`bounce`
   of type `bounce`, not `blocked`) and drops for `Bounced Address` / `Invalid`; Twilio 21211,
   21614, 30005, 30006; Expo `DeviceNotRegistered` (which also sets `devices.invalidated_at`).
   Stored as the address hash (from the event's address, or the outbox row's `address_ref`);
   one entry per address and source code, so a re-import adds none.

Addresses (e-mails, phone numbers, push tokens) never reach `properties`, logs or reject reasons:
SMTP responses and Expo messages are scrubbed of them.
"""

from __future__ import annotations

import dataclasses

from mcrm.errors import DataError
from mcrm.ingest import load as L
from mcrm.ingest.kinds import KINDS, Col, Kind
from mcrm.ingest.presets import Preset, register
from mcrm.ingest.readers import (
    ReadOptions,
    Source,
    Staged,
    Stager,
    _lit,
    csv_header,
    ts_expr,
)
from mcrm.ingest.run import LoadContext
from mcrm.ingest.vendors import (
    _add_line,
    _blank,
    _col,
    _csv_source,
    _drop,
    _epoch,
    _epoch_ts,
    _js,
    _json_source,
    _jx,
    _prereject,
    _with,
)

Parts = list[tuple[Kind, Staged]]

# the registry as an import part (not a KIND users can name): one row per address to mark
INVALID = Kind(
    "invalid-addresses",
    "invalid_addresses",
    (
        Col("channel"),
        Col("address", pii=True),
        Col("address_hash"),
        Col("lane"),
        Col("reason"),
        Col("source_code"),
        Col("timestamp", "ts"),
    ),
)

SENDGRID_TYPES = {
    "processed": "processed",
    "delivered": "delivered",
    "open": "opened",
    "click": "clicked",
    "bounce": "bounced",
    "dropped": "dropped",
    "deferred": "deferred",
    "spamreport": "spam_report",
    "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed",
    "group_resubscribe": "resubscribed",
}
# documented Event Webhook events that are about the SendGrid account, not a message: skipped
# with a warning naming their `type` (a compliance action on the account), never rejected
SENDGRID_ACCOUNT_EVENTS = ("account_status_change",)
TWILIO_TYPES = {
    "accepted": "processed",
    "scheduled": "processed",
    "queued": "processed",
    "sending": "processed",
    "sent": "processed",
    "delivered": "delivered",
    # some of the message's parts (segments, media) confirmed delivered: it reached the phone
    "partially_delivered": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "read": "opened",
    "canceled": "dropped",
}
# documented statuses of an inbound message (a log shared with the incoming-message webhook):
# not about a message sent, so skipped with a warning, never rejected
TWILIO_INBOUND = ("receiving", "received")
# Twilio error codes that say the number is dead (registry reason)
TWILIO_INVALID = {
    "21211": "malformed",
    "21614": "not_mobile",
    "30005": "mailbox_unknown",
    "30006": "not_mobile",
}
TWILIO_STOP = "21610"
TWILIO_TIME = ("timestamp", "Timestamp", "received_at", "DateUpdated", "date_updated")

_EMAIL_RE = "'[^\\s<>\"'',;:()]+@[^\\s<>\"'',;:()]+'"
_TOKEN_RE = "'Expo(nent)?PushToken\\[[^\\]]*\\]'"


def _case(x: str, names: dict[str, str]) -> str:
    whens = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in names.items())
    return f"(CASE {x} {whens} END)"


def _scrub(x: str) -> str:
    """Provider text without addresses or push tokens (SMTP responses quote the address)."""
    return (
        f"regexp_replace(regexp_replace({x}, {_EMAIL_RE}, '<address>', 'g'), "
        f"{_TOKEN_RE}, '<token>', 'g')"
    )


def _hash(channel: str, address: str) -> str:
    """SQL twin of mcrm.dispatch.core.address_hash."""
    norm = f"lower(trim({address}))" if channel == "email" else f"trim({address})"
    return f"sha256('{channel}:' || {norm})"


def _link(stager: Stager, prep: str, channel: str, by_pid: str, extra: str = "TRUE") -> None:
    """Fill `_key, _user, _campaign, _lane, _ref` of `prep` from the outbox: by `_mcrm_id`
    (the key on the wire), else by provider message id `by_pid` (SQL over prep `p`, outbox
    `o`) where `extra` holds too."""
    con = stager.con
    for c in ("_key", "_user", "_campaign", "_lane", "_ref"):
        con.execute(f"ALTER TABLE {prep} ADD COLUMN {c} VARCHAR")
    sets = (
        "_key = o.idempotency_key, _user = o.user_id, _campaign = o.campaign, _lane = o.lane, "
        "_ref = o.address_ref"
    )
    con.execute(
        f"UPDATE {prep} AS p SET {sets} FROM outbox o "
        f"WHERE p._mcrm_id IS NOT NULL AND o.idempotency_key = p._mcrm_id"
    )
    con.execute(
        f"""UPDATE {prep} SET {sets} FROM (
            SELECT p._line AS l, min(o.id) AS oid FROM {prep} p
            JOIN outbox o ON o.channel = '{channel}' AND {by_pid} AND {extra}
            WHERE p._key IS NULL GROUP BY p._line) m, outbox o
        WHERE {prep}._line = m.l AND o.id = m.oid AND {prep}._key IS NULL"""
    )


def _identity_user(kind: str, value: str) -> str:
    """SQL: the user an identity value belongs to (first linked), or NULL."""
    return (
        f"(SELECT min(i.user_id) FROM identities i WHERE i.kind = '{kind}' AND i.value = {value})"
    )


def _by_line(src: Source) -> Source:
    """The source as `finish` should see it: a preset's staged rows carry `_line` (the record's
    line in JSON lines, its number in a JSON array), which reject reports must use as given."""
    return src if src.fmt in ("csv", "tsv") else dataclasses.replace(src, fmt="jsonl")


def _finish_parts(
    stager: Stager,
    src: Source,
    opts: ReadOptions,
    prep: str,
    events: dict[str, str],
    consents: dict[str, str] | None,
    consent_where: str,
    invalid: dict[str, str] | None,
    invalid_where: str,
    rejected_before: int,
    consent_table: str | None = None,
) -> Parts:
    """The three parts from `prep` (consents from `consent_table` when given, dropped too),
    each limited to the records that passed as message events."""
    src = _by_line(src)
    staged = stager.finish(KINDS["message-events"], prep, events, {}, opts, src)
    staged.rows_read += rejected_before
    staged.rejected += rejected_before
    passed = f"_line IN (SELECT _line FROM {staged.table})"
    parts: Parts = [(KINDS["message-events"], staged)]
    if consents is not None:
        c = stager.finish(
            KINDS["consents"],
            consent_table or prep,
            consents,
            {},
            opts,
            src,
            f"{passed} AND ({consent_where})",
        )
        parts.append((KINDS["consents"], c))
    if invalid is not None:
        inv = stager.finish(
            INVALID, prep, invalid, {}, opts, src, f"{passed} AND ({invalid_where})"
        )
        parts.append((INVALID, inv))
    _drop(stager, prep, *([consent_table] if consent_table else []))
    return parts


# ---------------------------------------------------------------------------------------------
# SendGrid Event Webhook: a JSON array of events per POST (or JSON lines of events)


def _lines_are_records(stager: Stager, lines: str) -> bool:
    """Whether a `.json` file is read line by line: its first line is JSON by itself, or some
    line is a whole JSON array (a log of request bodies whose first line is broken). Else it
    is one array document (pretty-printed: its lines are fragments, `[`, `{...},`)."""
    row = stager.con.execute(
        f"SELECT json_valid(j) FROM {lines} WHERE j IS NOT NULL AND trim(j) <> '' "
        "ORDER BY rowid LIMIT 1"
    ).fetchall()
    if row and row[0][0]:
        return True
    arrays = L._one(
        stager.con,
        f"SELECT count(*) FROM (SELECT 1 FROM {lines} WHERE CASE WHEN json_valid(j) "
        "THEN json_type(CAST(j AS JSON)) = 'ARRAY' ELSE false END LIMIT 1)",
    )
    return arrays > 0


def _sendgrid_source(
    stager: Stager, src: Source, derived: dict[str, str] | None = None
) -> tuple[str, int]:
    """SendGrid events as a table (j, _ok, _line, _elem, *derived), in file order.

    Three layouts: JSON lines of events; JSON lines of arrays of events (a log of the webhook's
    raw request bodies: SendGrid POSTs an array per request); one JSON array (`.json`, possibly
    pretty-printed). A line is read as JSON on its own unless the file is one array document
    (`_lines_are_records`; decided before reading, as a failed read aborts the import's
    transaction). `_line` is the physical line (for one array document: the element's number),
    `_elem` the 1-based element in its line's array (NULL for a line holding one object).
    Broken lines, lines that are neither an object nor an array, and elements that are not
    objects are rejected here with their line (and element); the other elements are kept.
    `derived` maps column names to SQL over `j`, computed once per record that is an object
    (in the same pass)."""
    con = stager.con
    extra = "".join(
        f", CASE WHEN _ok THEN {sql} END AS {name}" for name, sql in (derived or {}).items()
    )
    if src.fmt == "parquet":
        pq, bad = _json_source(stager, src)
        table = stager._name("sgj")
        con.execute(
            f"CREATE TEMP TABLE {table} AS SELECT *{extra} FROM "
            f"(SELECT j, _ok, _line, NULL::BIGINT AS _elem FROM {pq})"
        )
        _drop(stager, pq)
        return table, bad
    lines = stager.read_lines(src)
    if src.fmt == "json" and not _lines_are_records(stager, lines):
        _drop(stager, lines)
        arr = stager.read_json_array(src)
        base = stager.base_rowid(arr)
        table = stager._name("sgj")
        con.execute(
            f"""CREATE TEMP TABLE {table} AS SELECT *{extra} FROM (
                SELECT j, json_type(CAST(j AS JSON)) = 'OBJECT' AS _ok,
                    rowid - {base} + 1 AS _line, rowid - {base} + 1 AS _elem FROM {arr})"""
        )
        _drop(stager, arr)
        return table, _structural_rejects(stager, src, table)
    base = stager.base_rowid(lines)
    table = stager._name("sgj")
    # one pass, no sort: a line that is an array becomes its elements, any other line itself
    # (CASE, not a filter, guards the casts from broken lines)
    items = (
        "CASE WHEN _t = 'ARRAY' THEN CAST(CAST(CAST(j AS JSON) AS JSON[]) AS VARCHAR[]) "
        "ELSE [j] END"
    )
    con.execute(
        f"""CREATE TEMP TABLE {table} AS SELECT *{extra} FROM (
            -- a JSON null element comes out of the cast as SQL NULL: kept as `null` and
            -- rejected as not an object, like any other element, never dropped unseen
            SELECT CASE WHEN _t = 'ARRAY' THEN coalesce(j, 'null') ELSE j END AS j,
                CASE WHEN _t = 'ARRAY' THEN coalesce(json_type(CAST(j AS JSON)) = 'OBJECT', false)
                    ELSE coalesce(_t = 'OBJECT', false) END AS _ok,
                _line, CASE WHEN _t = 'ARRAY' THEN _i END AS _elem, _t IS NULL AS _broken
            FROM (
                SELECT _line, _t, unnest(items) AS j, unnest(range(1, len(items) + 1)) AS _i
                FROM (
                    SELECT _line, _t, {items} AS items FROM (
                        SELECT rowid - {base} + 1 AS _line, j,
                            CASE WHEN json_valid(j) THEN json_type(CAST(j AS JSON)) END AS _t
                        FROM {lines} WHERE j IS NOT NULL AND trim(j) <> ''))))"""
    )
    _drop(stager, lines)
    return table, _structural_rejects(stager, src, table)


def _structural_rejects(stager: Stager, src: Source, table: str) -> int:
    """Reject the rows of a `_sendgrid_source` table that are not JSON objects."""
    has_broken = stager._has_column(table, "_broken")
    broken = "_broken" if has_broken else "false"
    where = (
        "'line ' || _line || CASE WHEN _elem IS NOT NULL THEN ', element ' || _elem ELSE '' END"
        if has_broken
        else "'element ' || _elem"
    )
    bad = L._one(stager.con, f"SELECT count(*) FROM {table} WHERE NOT _ok")
    if bad:
        stager.con.execute(
            f"""INSERT INTO import_rejects SELECT {stager.import_id}, {_lit(src.display)}, _line,
            NULL, CASE WHEN {broken} THEN 'invalid JSON' WHEN _elem IS NULL
                THEN 'not a JSON object or array of objects' ELSE 'not a JSON object' END
              || ' (' || {where} || ')', left(j, 2000)
            FROM {table} WHERE NOT _ok ORDER BY _line, _elem"""
        )
    if has_broken:
        stager.con.execute(f"ALTER TABLE {table} DROP COLUMN _broken")
    return bad


def stage_sendgrid(stager: Stager, src: Source, opts: ReadOptions) -> Parts:
    j = "j"
    # the event's time as `finish` will read it, parsed once: its checks are made here so that
    # the reject names the element too
    # (an epoch number directly, as `_epoch` gives it to `finish`; any other text as `finish`
    # reads it, in the workspace zone when naive)
    ts_raw = _blank(_js(j, "timestamp"))
    tsv = (
        f"CASE WHEN TRY_CAST({ts_raw} AS DOUBLE) IS NOT NULL THEN {_epoch_ts(ts_raw, 's|ms')} "
        f"ELSE {ts_expr(ts_raw, None).replace('$zone', _lit(stager.zone))} END"
    )
    raw, bad = _sendgrid_source(stager, src, {"_tsv": tsv})
    event = f"lower({_blank(_js(j, 'event'))})"
    kinds = ", ".join(_lit(k) for k in SENDGRID_TYPES)
    account = ", ".join(_lit(k) for k in SENDGRID_ACCOUNT_EVENTS)
    ts = "_tsv"
    reason = (
        f"CASE WHEN {event} IN ({account}) THEN NULL "
        f"WHEN {event} IS NULL THEN 'type: the event has no \"event\" name' "
        f"WHEN {event} NOT IN ({kinds}) THEN 'type: unknown SendGrid event ''' || "
        f"left({_js(j, 'event')}, 40) || ''' (expected one of "
        f"{', '.join([*SENDGRID_TYPES, *SENDGRID_ACCOUNT_EVENTS])})' "
        f"WHEN {ts_raw} IS NULL THEN 'timestamp: the event has no timestamp' "
        f"WHEN ({ts}) IS NULL THEN 'timestamp: cannot read ''' || left({ts_raw}, 60) || "
        "''' as a timestamp' "
        f"WHEN ({ts}) > CAST({_lit(stager.now)} AS TIMESTAMP) + INTERVAL 1 DAY THEN "
        f"'timestamp: ' || strftime(({ts}), '%Y-%m-%dT%H:%M:%SZ') || "
        "' is more than a day in the future (device clock?)' "
        f"WHEN {_blank(_js(j, 'email'))} IS NULL AND {_blank(_js(j, 'mcrm_id'))} IS NULL "
        "THEN 'email: the event names no recipient' END"
        " || CASE WHEN _elem IS NOT NULL THEN ' (element ' || _elem || ')' ELSE '' END"
    )
    missing = _prereject(stager, _by_line(src), raw, reason, "_ok", "NULL")
    skipped = stager.con.execute(
        f"SELECT coalesce({_blank(_js(j, 'type'))}, '?') AS t, count(*) FROM {raw} "
        f"WHERE _ok AND {event} IN ({account}) GROUP BY t ORDER BY t"
    ).fetchall()
    bounce_type = f"lower(coalesce({_blank(_js(j, 'type'))}, 'bounce'))"
    dropped_reason = _blank(_js(j, "reason"))
    invalid = (
        f"(({event} = 'bounce' AND {bounce_type} = 'bounce') OR ({event} = 'dropped' AND "
        f"{dropped_reason} IN ('Bounced Address', 'Invalid')))"
    )
    url = _blank(_js(j, "url"))
    prep = stager._name("sgp")
    stager.con.execute(
        # `_line` is the record's key (its row in `raw`) for `_link` and `_finish_parts`: a
        # line of the file may hold several events; every reject that names a line is made
        # above
        f"""CREATE TEMP TABLE {prep} AS SELECT rowid - {stager.base_rowid(raw)} + 1 AS _line,
            {_blank(_js(j, "sg_event_id"))} AS _event_id,
            {_blank(_js(j, "sg_message_id"))} AS _message_id,
            {_blank(_js(j, "mcrm_id"))} AS _mcrm_id,
            {_blank(_js(j, "mcrm_campaign"))} AS _c_campaign,
            lower(trim({_js(j, "email")})) AS _address,
            {event} AS _event,
            {_case(event, SENDGRID_TYPES)} AS _type,
            {_epoch(_js(j, "timestamp"), "s|ms")} AS _ts,
            {invalid} AS _invalid,
            CASE WHEN {event} = 'dropped' AND {dropped_reason} = 'Invalid' THEN 'malformed'
                 ELSE 'bounce' END AS _inv_reason,
            {
            _with(
                "NULL",
                [
                    ("vendor_event", event),
                    ("machine_open", f"TRY_CAST({_js(j, 'sg_machine_open')} AS BOOLEAN)"),
                    ("bounce_type", f"CASE WHEN {event} = 'bounce' THEN {bounce_type} END"),
                    ("bounce_classification", _blank(_js(j, "bounce_classification"))),
                    ("reason", _scrub(_blank(_js(j, "reason")))),
                    ("response", _scrub(_blank(_js(j, "response")))),
                    ("status", _blank(_js(j, "status"))),
                    ("attempt", _blank(_js(j, "attempt"))),
                    ("url", f"regexp_replace({url}, '[?#].*$', '')"),
                    ("category", _jx(j, "category")),
                    ("asm_group_id", _jx(j, "asm_group_id")),
                    ("invalid", f"CASE WHEN {invalid} THEN TRUE END"),
                ],
            )
        } AS _props
        FROM {raw} WHERE _ok AND _miss IS NULL AND {event} NOT IN ({account})
        ORDER BY _line, _elem"""
    )
    _drop(stager, raw)
    _link(
        stager,
        prep,
        "email",
        "o.provider_message_id = split_part(p._message_id, '.', 1)",
        f"o.address_ref = {_hash('email', 'p._address')}",
    )
    key_props = _with("CAST(_props AS JSON)", [("mcrm_id", "coalesce(_key, _mcrm_id)")])
    events = {
        "event_id": "_event_id",
        "provider": "'sendgrid'",
        "message_id": "_message_id",
        "user_id": f"coalesce(_user, {_identity_user('email', '_address')})",
        "campaign": "coalesce(_campaign, _c_campaign)",
        "channel": "'email'",
        # a foreign send (no outbox row) is the message's one `sent` row
        "type": "CASE WHEN _type = 'processed' AND _key IS NULL THEN 'sent' ELSE _type END",
        "timestamp": "_ts",
        "properties": key_props,
    }
    consents = {
        "user_id": "_user",
        "email": "CASE WHEN _user IS NULL THEN _address END",
        "channel": "'email'",
        "purpose": "'marketing'",
        "granted": "CASE WHEN _event = 'group_resubscribe' THEN 'true' ELSE 'false' END",
        "timestamp": "_ts",
        "source": "'sendgrid:' || _event",
    }
    unsub = "'unsubscribe', 'group_unsubscribe', 'spamreport', 'group_resubscribe'"
    inv = {
        "channel": "'email'",
        "address": "_address",
        "address_hash": "CASE WHEN _address IS NULL THEN _ref END",
        "lane": "_lane",
        "reason": "_inv_reason",
        "source_code": "'sendgrid:' || _event",
        "timestamp": "_ts",
    }
    parts = _finish_parts(
        stager,
        src,
        opts,
        prep,
        events,
        consents,
        f"_event IN ({unsub}) AND (_user IS NOT NULL OR _address IS NOT NULL) AND "
        # an event imported before already had its effect (its time may differ per export)
        "(_event_id IS NULL OR _event_id NOT IN (SELECT event_id FROM message_events))",
        inv,
        "_invalid AND (_address IS NOT NULL OR _ref IS NOT NULL)",
        bad + missing,
    )
    if skipped:
        kinds_seen = ", ".join(f"{t} x{n}" for t, n in skipped)
        parts[0][1].warnings.append(
            f"{sum(n for _, n in skipped)} account_status_change event(s) skipped, not counted "
            f"(SendGrid's notices about the account, not about a message): {kinds_seen}"
        )
    return parts


# ---------------------------------------------------------------------------------------------
# Twilio status callbacks: the form parameters, one callback per row (CSV or JSON lines)


def stage_twilio(stager: Stager, src: Source, opts: ReadOptions) -> Parts:
    if src.fmt in ("csv", "tsv"):
        names, _ = csv_header(src, opts)
        if not any(n in names for n in TWILIO_TIME):
            raise DataError(
                f"{src.display} has no time column: Twilio status callbacks carry none, so the "
                f"receiver must log one ({', '.join(TWILIO_TIME)}); found: {', '.join(names)}",
                hint="docs/vendor-formats.md, Twilio status callbacks",
            )
        need = ("MessageStatus",) if "MessageStatus" in names else ("SmsStatus",)
        raw, cols, structural = _csv_source(stager, src, opts, need, "Twilio status callback")

        def c(name: str) -> str:
            return _col(cols, name)

        bad = structural
    else:
        raw, bad = _json_source(stager, src)

        def c(name: str) -> str:
            return _js("j", name)

    sid = f"coalesce({_blank(c('MessageSid'))}, {_blank(c('SmsSid'))})"
    status = f"lower(coalesce({_blank(c('MessageStatus'))}, {_blank(c('SmsStatus'))}))"
    when = f"coalesce({', '.join(_blank(c(t)) for t in TWILIO_TIME[:3])})"
    updated = f"coalesce({_blank(c('DateUpdated'))}, {_blank(c('date_updated'))})"
    rfc = f"strftime(try_strptime({updated}, '%a, %d %b %Y %H:%M:%S %z'), '%Y-%m-%d %H:%M:%S%z')"
    ts = f"coalesce({_epoch(when, 's|ms')}, {rfc}, {updated})"
    kinds = ", ".join(_lit(k) for k in TWILIO_TYPES)
    inbound = ", ".join(_lit(k) for k in TWILIO_INBOUND)
    err = _blank(c("ErrorCode"))
    reason = (
        f"CASE WHEN {sid} IS NULL THEN 'message_id: MessageSid is empty' "
        f"WHEN {status} IS NULL THEN 'type: MessageStatus is empty' "
        f"WHEN {status} IN ({inbound}) THEN NULL "
        f"WHEN {status} NOT IN ({kinds}) THEN 'type: unknown Twilio MessageStatus ''' || "
        f"left({status}, 40) || ''' (expected one of "
        f"{', '.join([*TWILIO_TYPES, *TWILIO_INBOUND])})' "
        f"WHEN {ts} IS NULL THEN 'timestamp: the callback has no time (timestamp column)' "
        f"WHEN {err} IS NOT NULL AND NOT regexp_full_match({err}, '[0-9]+') "
        f"THEN 'properties: ErrorCode ''' || left({err}, 20) || ''' is not a number' END"
    )
    where = "TRUE" if src.fmt in ("csv", "tsv") else "_ok"
    missing = _prereject(stager, src, raw, reason, where, "NULL")
    inbound_n = L._one(
        stager.con,
        f"SELECT count(*) FROM {raw} WHERE {where} AND _miss IS NULL AND {status} IN ({inbound})",
    )
    inv_case = _case(err, TWILIO_INVALID)
    prep = stager._name("twp")
    to = _blank(c("To"))
    phone = f"regexp_replace(trim({to}), '[\\s\\-\\(\\)\\.]', '', 'g')"
    stager.con.execute(
        f"""CREATE TEMP TABLE {prep} AS SELECT _line,
            {sid} AS _sid, {status} AS _status, {_case(status, TWILIO_TYPES)} AS _type,
            {_blank(c("mcrm_id"))} AS _mcrm_id, {phone} AS _address, {ts} AS _ts,
            {err} AS _err, {inv_case} AS _inv_reason,
            {
            _with(
                "NULL",
                [
                    ("vendor_event", status),
                    ("error_code", err),
                    ("invalid", f"CASE WHEN {inv_case} IS NOT NULL THEN TRUE END"),
                    ("opt_out", f"CASE WHEN {err} = '{TWILIO_STOP}' THEN TRUE END"),
                ],
            )
        } AS _props
        FROM {raw} WHERE {where} AND _miss IS NULL AND {status} NOT IN ({inbound})
        ORDER BY _line"""
    )
    _drop(stager, raw)
    _link(stager, prep, "sms", "o.provider_message_id = p._sid")
    con = stager.con
    con.execute(f"ALTER TABLE {prep} ADD COLUMN _uid VARCHAR")
    con.execute(f"UPDATE {prep} SET _uid = coalesce(_user, {_identity_user('phone', '_address')})")
    stops_unlinked = L._one(
        con, f"SELECT count(*) FROM {prep} WHERE _err = '{TWILIO_STOP}' AND _uid IS NULL"
    )
    events = {
        "event_id": "'twilio:' || _sid || ':' || _status",
        "provider": "'twilio'",
        "message_id": "_sid",
        "user_id": "_uid",
        "campaign": "_campaign",
        "channel": "'sms'",
        # a foreign SMS (no outbox row) is sent once: at Twilio's `sent` (handed to the carrier)
        "type": "CASE WHEN _status = 'sent' AND _key IS NULL THEN 'sent' ELSE _type END",
        "timestamp": "_ts",
        "properties": _with("CAST(_props AS JSON)", [("mcrm_id", "coalesce(_key, _mcrm_id)")]),
    }
    # STOP revokes both purposes (Twilio blocks every message to the number after it)
    con.execute(
        f"CREATE TEMP TABLE {prep}_stop AS SELECT p.*, v.purpose AS _purpose FROM {prep} p, "
        "(VALUES ('marketing'), ('transactional')) v(purpose) "
        f"WHERE p._err = '{TWILIO_STOP}' AND p._uid IS NOT NULL AND 'twilio:' || p._sid || ':' "
        # a callback imported before (from another log of it) already revoked
        "|| p._status NOT IN (SELECT event_id FROM message_events)"
    )
    consents = {
        "user_id": "_uid",
        "channel": "'sms'",
        "purpose": "_purpose",
        "granted": "'false'",
        "timestamp": "_ts",
        "source": f"'twilio:{TWILIO_STOP}'",
    }
    inv = {
        "channel": "'sms'",
        "address": "_address",
        "address_hash": "CASE WHEN _address IS NULL THEN _ref END",
        "lane": "_lane",
        "reason": "_inv_reason",
        "source_code": "'twilio:' || _err",
        "timestamp": "_ts",
    }
    parts = _finish_parts(
        stager,
        src,
        opts,
        prep,
        events,
        consents,
        "TRUE",
        inv,
        "_inv_reason IS NOT NULL AND (_address IS NOT NULL OR _ref IS NOT NULL)",
        bad + missing,
        consent_table=f"{prep}_stop",
    )
    if inbound_n:
        parts[0][1].warnings.append(
            f"{inbound_n} inbound message(s) (MessageStatus receiving/received) skipped, not "
            "counted: not status callbacks of a message sent"
        )
    if stops_unlinked:
        parts[0][1].warnings.append(
            f"{stops_unlinked} STOP opt-out(s) (error 21610) name no known message or number: "
            "no consent recorded for them"
        )
    return parts


# ---------------------------------------------------------------------------------------------
# Expo push receipts: getReceipts responses {"data": {"<ticket id>": {"status", ...}}}


def _pretty_json(src: Source) -> bool:
    """A single pretty-printed JSON document (its first line is a lone `{`)."""
    from mcrm.ingest.readers import _open_text_head

    head = _open_text_head(src.path, src.compression, 4096).decode("utf-8", "replace")
    first = head.lstrip("\ufeff \t\r\n").split("\n", 1)[0].strip()
    return first == "{"


def stage_expo(stager: Stager, src: Source, opts: ReadOptions) -> Parts:
    con = stager.con
    if src.fmt == "jsonl" and _pretty_json(src):
        raw = stager._name("exj")
        try:
            con.execute(
                f"CREATE TEMP TABLE {raw} AS SELECT CAST(json AS VARCHAR) AS j, TRUE AS _ok "
                f"FROM read_json_objects({_lit(str(src.path))}, format='unstructured')"
            )
        except Exception as e:  # noqa: BLE001 - duckdb.Error, imported lazily
            raise DataError(
                f"{src.display} is not valid JSON: {str(e).splitlines()[0]}",
                hint="an Expo receipts file holds getReceipts responses, one per line",
            ) from None
        _add_line(stager, raw, 1)
        bad = 0
    else:
        raw, bad = _json_source(stager, src)
    j = "j"
    data = f"json_extract({j}, '$.data')"
    errors = f"json_extract_string({j}, '$.errors[0].code')"
    reason = (
        f"CASE WHEN {errors} IS NOT NULL THEN 'data: the receipts request failed: ' || "
        f"left({errors}, 60) "
        f"WHEN {data} IS NULL OR json_type({data}) <> 'OBJECT' THEN 'data: not an Expo "
        'getReceipts response (no "data" object of ticket id -> receipt)\' END'
    )
    missing = _prereject(stager, src, raw, reason, "_ok", "NULL")
    now_iso = _lit(stager.now + "Z")
    when = f"coalesce({_blank(_js(j, 'received_at'))}, {_blank(_js(j, 'timestamp'))})"
    entries = stager._name("exe")
    con.execute(
        f"""CREATE TEMP TABLE {entries} AS SELECT _line, e.key AS _ticket, e.value AS r,
            coalesce({_epoch(when, "s|ms")}, {now_iso}) AS _ts
        FROM (SELECT _line, j, unnest(map_entries(CAST({data} AS MAP(VARCHAR, JSON)))) AS e
              FROM {raw} WHERE _ok AND _miss IS NULL) ORDER BY _line, e.key"""
    )
    _drop(stager, raw)
    status = f"lower({_blank(_js('r', 'status'))})"
    error = _blank(_js("r", "details", "error"))
    bad_entry = (
        f"CASE WHEN json_type(r) <> 'OBJECT' THEN 'type: the receipt of ticket ' || _ticket || "
        "' is not an object' "
        f"WHEN {status} IS NULL OR {status} NOT IN ('ok', 'error') THEN 'type: the receipt of "
        "ticket ' || _ticket || ' has status ''' || coalesce(left("
        f"{_js('r', 'status')}, 20), '') || ''' (expected ok or error)' END"
    )
    # several tickets share a line: reject per entry, reported at the line
    con.execute(f"ALTER TABLE {entries} ADD COLUMN _miss VARCHAR")
    con.execute(f"UPDATE {entries} SET _miss = {bad_entry}")
    rows = con.execute(
        f"SELECT _line, _miss FROM {entries} WHERE _miss IS NOT NULL ORDER BY _line"
    ).fetchall()
    if rows:
        lines = stager._lines_for([int(r[0]) - 1 for r in rows], [r[0] for r in rows], src)
        con.executemany(
            "INSERT INTO import_rejects VALUES (?, ?, ?, ?, ?, NULL)",
            [
                [stager.import_id, src.display, ln, "type", r[1]]
                for r, ln in zip(rows, lines, strict=True)
            ],
        )
    invalid = f"({error} = 'DeviceNotRegistered')"
    prep = stager._name("exp")
    con.execute(
        f"""CREATE TEMP TABLE {prep} AS SELECT row_number() OVER (ORDER BY _line, _ticket)
                AS _line, _line AS _src_line, _ticket, CAST(NULL AS VARCHAR) AS _mcrm_id,
            CASE WHEN {status} = 'ok' THEN 'delivered' ELSE 'failed' END AS _type, _ts,
            {_blank(_js("r", "details", "expoPushToken"))} AS _address, {invalid} AS _invalid,
            {
            _with(
                "NULL",
                [
                    ("vendor_event", f"'receipt:' || {status}"),
                    ("error", error),
                    ("message", _scrub(_blank(_js("r", "message")))),
                    ("invalid", f"CASE WHEN {invalid} THEN TRUE END"),
                ],
            )
        } AS _props
        FROM {entries} WHERE _miss IS NULL ORDER BY _line, _ticket"""
    )
    _drop(stager, entries)
    _link(stager, prep, "push", "o.provider_message_id = p._ticket")
    events = {
        "event_id": "'expo:' || _ticket",
        "provider": "'expo'",
        "message_id": "_ticket",
        "user_id": "_user",
        "campaign": "_campaign",
        "channel": "'push'",
        "type": "_type",
        "timestamp": "_ts",
        "properties": _with("CAST(_props AS JSON)", [("mcrm_id", "coalesce(_key, _mcrm_id)")]),
    }
    inv = {
        "channel": "'push'",
        "address": "_address",
        "address_hash": "CASE WHEN _address IS NULL THEN _ref END",
        "lane": "_lane",
        "reason": "'unregistered'",
        "source_code": "'expo:DeviceNotRegistered'",
        "timestamp": "_ts",
    }
    # the staged rows keep the file's line for reject reports (several tickets per line)
    parts = _finish_parts(
        stager,
        src,
        opts,
        prep,
        events,
        None,
        "FALSE",
        inv,
        "_invalid AND (_address IS NOT NULL OR _ref IS NOT NULL)",
        bad + missing + len(rows),
    )
    return parts


# ---------------------------------------------------------------------------------------------
# Loader of the registry part


def load_invalid(x: LoadContext, c: L.Counts) -> None:
    """Register each address once per source code (a re-import adds none); dead push tokens
    also invalidate their devices."""
    con, stg = x.con, x.stg
    h = (
        "coalesce(s.address_hash, sha256(s.channel || ':' || CASE WHEN s.channel = 'email' "
        "THEN lower(trim(s.address)) ELSE trim(s.address) END))"
    )
    con.execute(f"ALTER TABLE {stg} ADD COLUMN _h VARCHAR")
    con.execute(f"UPDATE {stg} AS s SET _h = {h}")
    total = L._one(con, f"SELECT count(*) FROM {stg}")
    inserted = con.execute(
        f"""INSERT INTO invalid_addresses SELECT _h, channel, lane, reason, source_code, ts
        FROM {stg} s WHERE NOT EXISTS (SELECT 1 FROM invalid_addresses i WHERE
            i.address_hash = s._h AND i.channel = s.channel
            AND coalesce(i.source_code, '') = coalesce(s.source_code, ''))
        QUALIFY row_number() OVER (PARTITION BY _h, channel, source_code ORDER BY ts, _row) = 1"""
    ).fetchall()[0][0]
    c.inserted += int(inserted)
    c.duplicates += int(total) - int(inserted)
    con.execute(
        f"""UPDATE devices SET invalidated_at = t.ts FROM (
            SELECT _h, max(ts) AS ts FROM {stg} WHERE channel = 'push' GROUP BY _h) t
        WHERE sha256('push:' || trim(devices.push_token)) = t._h
          AND (devices.invalidated_at IS NULL OR devices.invalidated_at < t.ts)"""
    )
    # the address itself leaves the staging table at once
    con.execute(f"UPDATE {stg} SET address = NULL")


def _register() -> None:
    from mcrm.ingest.run import LOADERS

    LOADERS[INVALID.name] = load_invalid
    for name, fmts, desc, fn in (
        (
            "sendgrid",
            ("json", "jsonl"),
            "SendGrid Event Webhook JSON (arrays as POSTed, or JSON lines): message events, "
            "unsubscribes as consent, hard bounces as invalid addresses",
            stage_sendgrid,
        ),
        (
            "twilio",
            ("csv", "tsv", "jsonl", "json"),
            "Twilio status callbacks (form parameters as CSV or JSON lines, with the time "
            "received): message events, STOP as consent, dead numbers as invalid",
            stage_twilio,
        ),
        (
            "expo",
            ("json", "jsonl"),
            "Expo push receipts (getReceipts responses): delivered / failed, "
            "DeviceNotRegistered as invalid tokens",
            stage_expo,
        ),
    ):
        register(Preset(name, "message-events", fmts, desc, fn))


_register()
