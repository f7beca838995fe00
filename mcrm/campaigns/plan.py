"""The send plan: a campaign's audience resolved, per user, into a message or a reason.

Everything that does not need the templates is one set of DuckDB statements over TEMP tables,
so a 1M-user audience is planned without Python loops; only the per-zone schedule slots are
computed in Python (a handful of zones), by croniter.

Order of the checks (the first that fails is the user's one suppression reason; holdout
placement follows reference/analytics.md §14, after the checks that do not depend on sending):

1. `excluded_segment` — in one of the campaign's `exclude` segments;
2. channel: the first channel of `channels` the user is reachable on (an address or valid
   token *and* consent for the campaign's purpose). When none is, the reason is the first
   channel's own problem: `no_consent`, `no_address` or `invalid_token`;
3. `reentry` — marketing only: this campaign was sent to the user within `reentry` (never: at
   all);
4. `global_control` — marketing only: the workspace control group (hash of salt and user);
5. `holdout` — the campaign's control group (hash of campaign and user): planned, logged,
   never sent;
6. `frequency_cap` — marketing only: sent messages in the rolling window before the send time
   (per channel, and `any` across channels) plus this one would exceed a cap;
7. `quiet_hours_dropped` — marketing only, when the send time falls in the user's quiet hours
   and the action is `drop` (`defer` moves it to the end of the window instead);
8. `template_skip` — a template decided not to send (`{% skip "reason" %}`), set by the
   renderer.

What a row records: `variant` for `planned` rows and for the suppressions that come after
holdout placement (6-8, `LATE_SUPPRESSIONS`), NULL otherwise (a holdout member has no
variant); `send_at` for those and for `holdout` rows: the planned send time, moved to the end
of the quiet window when the user's slot falls in quiet hours (for `drop` too, the same rule
as the holdout group, so both groups' windows start alike: analytics.md §14). Intent-to-treat
measurement (`report campaign`) reads them; the outbox and `send` take `planned` rows only.

Sent messages are read from `message_events` rows of type `sent` (imported, and written by
`mcrm send`), so caps and reentry count messages actually sent, never planned ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from mcrm.campaigns.model import Campaign, Delivery
from mcrm.errors import NotFound

if TYPE_CHECKING:
    import duckdb

    from mcrm.config import Workspace
    from mcrm.segments.compile import Ctx

MCRM_NS = uuid.UUID("5b0f3c56-8f0e-4d59-9a36-6f1d2c7e8a41")  # never change: keys depend on it
REASONS = (
    "excluded_segment",
    "no_consent",
    "no_address",
    "invalid_token",
    "reentry",
    "global_control",
    "holdout",
    "frequency_cap",
    "quiet_hours_dropped",
    "template_skip",
)
REASON_WORDS = {
    "excluded_segment": "is in an excluded segment ({detail})",
    "no_consent": "has not consented to {detail} (latest consent row for the purpose)",
    "no_address": "has no usable address for {detail}",
    "invalid_token": "has no valid push token (the provider reported it dead, or push is off)",
    "reentry": "already received this campaign {detail}",
    "global_control": "is in the global control group, which never receives marketing",
    "holdout": "is in this campaign's holdout group: planned and measured, never sent",
    "frequency_cap": "would exceed the frequency cap {detail}",
    "quiet_hours_dropped": "would receive it in their quiet hours, and the policy drops those",
    "template_skip": "was skipped by the template: {detail}",
}
E164 = r"^\+[1-9][0-9]{6,14}$"
LATE_SUPPRESSIONS = ("frequency_cap", "quiet_hours_dropped", "template_skip")
"""Suppressions that come after holdout placement (analytics.md §14): the user was assigned
to a variant and stays in treatment, so their row keeps the variant and the send time the
message would have had (status stays `suppressed`; only `planned` rows reach the outbox)."""


def idempotency_key(campaign: str, occurrence: str, user_id: str, channel: str) -> str:
    return str(uuid.uuid5(MCRM_NS, json.dumps([campaign, occurrence, user_id, channel])))


def _bucket(key_sql: str) -> str:
    """0..9999 from the md5 of a key (the same hash as segments' `bucket`)."""
    from mcrm.segments.compile import hex8

    return f"({hex8(f'md5({key_sql})')} % 10000)"


def _lit(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


@dataclass(frozen=True)
class PlanResult:
    plan_id: str
    campaign: str
    occurrence: str
    as_of: dt.datetime
    audience: int
    rows_table: str  # TEMP table with the plan rows (on the connection that built it)


def occurrence_for(c: Campaign, as_of: dt.datetime, zone: str) -> tuple[str, dt.datetime]:
    """The schedule slot this plan is for (UTC, naive) and its text form for keys.

    cron: the next slot at or after as_of in the schedule's zone (the workspace zone for
    `timezone: user`, whose per-user times are then computed per zone); at: that instant;
    manual and trigger campaigns: as_of itself."""
    s = c.schedule
    if s is None:
        t = as_of
    elif s.at is not None:
        z = ZoneInfo(zone if s.timezone in ("user", "workspace") else s.timezone)
        t = s.at.replace(tzinfo=z).astimezone(dt.UTC).replace(tzinfo=None)
    else:
        t = next_cron(
            s.cron or "", as_of, zone if s.timezone in ("user", "workspace") else s.timezone
        )
    return t.replace(microsecond=0).isoformat() + "Z", t


def next_cron(expr: str, after: dt.datetime, zone: str) -> dt.datetime:
    """The first slot of `expr` at or after `after` (naive UTC), evaluated in `zone`."""
    from croniter import croniter

    z = ZoneInfo(zone)
    start = after.replace(tzinfo=dt.UTC).astimezone(z) - dt.timedelta(seconds=1)
    nxt = croniter(expr, start).get_next(dt.datetime)
    return nxt.astimezone(dt.UTC).replace(tzinfo=None)  # type: ignore[no-any-return]


def _zone_slots(
    c: Campaign, as_of: dt.datetime, ws_zone: str, zones: list[str]
) -> dict[str, dt.datetime]:
    """Per user zone, the UTC send time of this occurrence (schedule `timezone: user`)."""
    s = c.schedule
    out = {}
    for z in zones:
        if s is None:
            out[z] = as_of
        elif s.at is not None:
            out[z] = s.at.replace(tzinfo=ZoneInfo(z)).astimezone(dt.UTC).replace(tzinfo=None)
        else:
            out[z] = next_cron(s.cron or "", as_of, z)
    return out


def same_wall_time(slot: dt.datetime, zone: str, zones: list[str]) -> dict[str, dt.datetime]:
    """Per zone, the UTC instant with the wall-clock time that `slot` (naive UTC) has in
    `zone` (`timezone: user`: "10:00 in each user's own zone")."""
    wall = slot.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    return {
        z: wall.replace(tzinfo=ZoneInfo(z)).astimezone(dt.UTC).replace(tzinfo=None) for z in zones
    }


def build(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    c: Campaign,
    delivery: Delivery,
    as_of: dt.datetime,
    only_user: str | None = None,
    occurrence_at: dt.datetime | None = None,
) -> PlanResult:
    """Resolve the audience into TEMP table `plan_rows_tmp` (see the module docstring).

    `occurrence_at` (naive UTC; `mcrm run`) plans that schedule slot with the data as of
    `as_of`, instead of the next slot at or after `as_of`: with `timezone: user` each user
    gets the slot's wall-clock time in their own zone, even where it has already passed
    (a catch-up is due at once)."""
    from mcrm.segments import compile as C
    from mcrm.segments.engine import materialise
    from mcrm.segments.model import load_segments

    seg = load_segments(ws.root)
    zone = ws.settings.timezone
    ctx = C.Ctx(seg, as_of, zone)
    d = ctx.d
    if occurrence_at is not None:
        slot = occurrence_at.replace(microsecond=0)
        occurrence = slot.isoformat() + "Z"
    else:
        occurrence, slot = occurrence_for(c, as_of, zone)
    plan_id = hashlib.sha256(f"{c.name}|{occurrence}|{as_of.isoformat()}".encode()).hexdigest()[
        :16
    ]

    # 1. the audience (and who is excluded)
    if c.trigger is not None:
        t = c.trigger
        audience = _trigger_audience(ctx, t.event, t.delay_days, t.unless)
    elif c.segment is not None:
        audience = C.segment_query(c.segment, ctx)
    else:
        assert c.where is not None
        audience = (
            f"SELECT u.user_id FROM users u WHERE {C.exists_at(ctx)} AND "
            f"{C.compile_node(c.where, ctx)}"
        )
    excl = [C.segment_query(e, ctx) for e in c.exclude]
    materialise(con, ctx, ctx.needs)
    only = f" WHERE user_id = {_lit(only_user)}" if only_user is not None else ""
    if c.trigger is not None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE plan_aud AS SELECT * FROM ({audience}) a{only}")
    else:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE plan_aud AS SELECT DISTINCT user_id, "
            f"CAST(NULL AS TIMESTAMP) AS trigger_at FROM ({audience}) a{only}"
        )
    ex_sql = " UNION ".join(
        f"SELECT user_id, {_lit(n)} AS seg FROM ({q}) e"
        for n, q in zip(c.exclude, excl, strict=True)
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE plan_excl AS "
        + (
            f"SELECT user_id, min(seg) AS seg FROM ({ex_sql}) x GROUP BY user_id"
            if excl
            else "SELECT CAST(NULL AS VARCHAR) AS user_id, CAST(NULL AS VARCHAR) AS seg WHERE "
            "FALSE"
        )
    )

    # 2. reachability per channel: consent for the purpose, and an address or a valid token
    purpose = c.purpose
    status_cols = []
    for ch in c.channels:
        consent = _consent(ch, purpose, d)
        if ch == "push":
            addr = (
                "u.user_id IN (SELECT user_id FROM devices WHERE push_token IS NOT NULL)",
                "u.user_id IN (SELECT user_id FROM devices WHERE push_token IS NOT NULL "
                "AND coalesce(push_enabled, TRUE) AND (invalidated_at IS NULL OR invalidated_at "
                f"> {d}))",
                "invalid_token",
            )
        elif ch == "email":
            addr = (
                "TRUE",
                "u.email IS NOT NULL AND regexp_matches(u.email, "
                "'^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$')"
                # the invalid-address registry (hard bounces, imported or from SMTP answers)
                + _not_invalid("email", "lower(trim(u.email))", d),
                "no_address",
            )
        elif ch == "sms":
            _bad_phones(con)
            addr = (
                "TRUE",
                f"u.phone IS NOT NULL AND regexp_matches(u.phone, '{E164}') AND u.phone NOT IN "
                "(SELECT phone FROM plan_bad_phones)" + _not_invalid("sms", "trim(u.phone)", d),
                "no_address",
            )
        else:
            addr = (
                "TRUE",
                "u.user_id IN (SELECT user_id FROM devices WHERE platform IN ('ios', "
                "'android')) OR "
                f"u.user_id IN (SELECT user_id FROM events WHERE ts <= {d} AND platform IN "
                "('ios', 'android') AND user_id IS NOT NULL)",
                "no_address",
            )
        has_any, valid, bad = addr
        status_cols.append(
            f"CASE WHEN NOT ({consent}) THEN 'no_consent' "
            f"WHEN NOT ({has_any}) THEN {_lit('no_address' if ch == 'push' else bad)} "
            f"WHEN NOT ({valid}) THEN {_lit(bad)} ELSE 'ok' END AS st_{ch}"
        )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE plan_reach AS SELECT a.user_id, a.trigger_at, "
        + ", ".join(status_cols)
        + ", u.locale, coalesce(u.timezone, "
        + _lit(zone)
        + ") AS user_zone FROM plan_aud a JOIN users u ON u.user_id = a.user_id"
    )
    # a user zone that is not a real IANA zone falls back to the workspace zone
    zones = [r[0] for r in con.execute("SELECT DISTINCT user_zone FROM plan_reach").fetchall()]
    bad_zones = []
    for z in zones:
        try:
            ZoneInfo(z)
        except Exception:
            bad_zones.append(z)
    if bad_zones:
        con.execute(
            f"UPDATE plan_reach SET user_zone = {_lit(zone)} WHERE user_zone IN "
            f"({', '.join(_lit(z) for z in bad_zones)})"
        )
        zones = sorted(set(zones) - set(bad_zones) | {zone})

    # the send time per user (before quiet hours)
    s = c.schedule
    per_user_zone = s is not None and s.timezone == "user"
    if c.trigger is not None:
        send_expr = f"a.trigger_at + INTERVAL {int(round(c.trigger.delay_days * 86400))} SECOND"
        slot_join = ""
    elif per_user_zone:
        slots = (
            same_wall_time(slot, zone, zones)
            if occurrence_at is not None
            else _zone_slots(c, as_of, zone, zones)
        )
        con.execute("CREATE OR REPLACE TEMP TABLE plan_slots (zone VARCHAR, send_at TIMESTAMP)")
        if slots:
            con.executemany(
                "INSERT INTO plan_slots VALUES (?, ?)", [[z, t] for z, t in slots.items()]
            )
        send_expr = "sl.send_at"
        slot_join = " LEFT JOIN plan_slots sl ON sl.zone = a.user_zone"
    else:
        send_expr = f"CAST('{slot.isoformat(sep=' ')}' AS TIMESTAMP)"
        slot_join = ""
    if s is not None and s.send_at_habit:
        # each user's habitual hour: the local hour of most of their activity (ties: earliest)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE plan_habit AS SELECT user_id, hr FROM ("
            "SELECT e.user_id, CAST(EXTRACT(hour FROM timezone(r.user_zone, CAST(e.ts AS "
            "TIMESTAMPTZ))) AS INTEGER) AS hr, "
            "count(*) AS n FROM events e JOIN plan_reach r USING (user_id) "
            f"WHERE e.ts <= {d} GROUP BY ALL) QUALIFY row_number() OVER (PARTITION BY user_id "
            "ORDER BY n DESC, hr) = 1"
        )
        base = send_expr
        local = f"timezone(a.user_zone, CAST({base} AS TIMESTAMPTZ))"
        send_expr = (
            f"CASE WHEN h.hr IS NULL THEN {base} ELSE CAST(timezone(a.user_zone, "
            f"CAST(CAST({local} AS DATE) AS TIMESTAMP) + h.hr * INTERVAL 1 HOUR) AS TIMESTAMP) END"
        )
        slot_join += " LEFT JOIN plan_habit h ON h.user_id = a.user_id"

    cuts = variant_cuts(c)
    variant_case = (
        "CASE "
        + " ".join(f"WHEN vb < {cut} THEN {_lit(n)}" for n, cut in cuts[:-1])
        + f" ELSE {_lit(cuts[-1][0])} END"
        if len(cuts) > 1
        else _lit(cuts[0][0])
    )
    first_ok = " ".join(f"WHEN st_{ch} = 'ok' THEN {_lit(ch)}" for ch in c.channels)
    first_st = f"st_{c.channels[0]}"
    gc = delivery.global_control if c.marketing else 0.0
    reentry = (
        "FALSE"  # reentry, like caps and quiet hours, is for marketing only (SPEC §5.4)
        if c.reentry == "always" or not c.marketing
        else f"ls.last_sent IS NOT NULL AND ls.last_sent > {d} - INTERVAL "
        f"{int(round((c.reentry_days or 0) * 86400))} SECOND"
        if c.reentry_days is not None
        else "ls.last_sent IS NOT NULL"
    )
    gc_bucket = _bucket(f"{_lit('gc:' + delivery.global_control_salt + ':')} || a.user_id")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE plan_base AS
        SELECT a.user_id, a.locale, a.user_zone, a.trigger_at,
               CASE {first_ok} ELSE NULL END AS channel,
               {first_st} AS first_status,
               x.seg AS excluded_by,
               ls.last_sent,
               {gc_bucket} AS gcb,
               {_bucket(f"{_lit('holdout:' + c.name + ':')} || a.user_id")} AS hb,
               {_bucket(f"{_lit('variant:' + c.name + ':')} || a.user_id")} AS vb,
               {send_expr} AS send_at0
        FROM plan_reach a
        LEFT JOIN plan_excl x ON x.user_id = a.user_id
        LEFT JOIN (SELECT user_id, max(ts) AS last_sent FROM message_events
                   WHERE type = 'sent' AND campaign = {_lit(c.name)} AND ts <= {d}
                   GROUP BY user_id) ls
               ON ls.user_id = a.user_id{slot_join}"""
    )

    # quiet hours: the send time in the user's zone; defer to the window's end, or drop
    q = c.delivery.quiet_hours
    if q is not None and c.marketing:
        local = "timezone(user_zone, CAST(send_at0 AS TIMESTAMPTZ))"
        lt = f"CAST({local} AS TIME)"
        st, en = f"TIME '{q.start.isoformat()}'", f"TIME '{q.end.isoformat()}'"
        inside = (
            f"({lt} >= {st} AND {lt} < {en})"
            if q.start < q.end
            else f"({lt} >= {st} OR {lt} < {en})"
        )
        day = f"CAST({local} AS DATE)"
        next_day = f"{lt} >= {st}" if q.start > q.end else "FALSE"
        end_local = (
            f"(CAST({day} AS TIMESTAMP) + CASE WHEN {next_day} THEN INTERVAL 1 DAY ELSE "
            f"INTERVAL 0 DAY END + INTERVAL {q.end.hour * 60 + q.end.minute} MINUTE)"
        )
        deferred = f"CAST(timezone(user_zone, {end_local}) AS TIMESTAMP)"
        quiet_cols = (
            f"{inside} AS in_quiet, CASE WHEN {inside} THEN {deferred} ELSE send_at0 "
            "END AS send_deferred"
        )
    else:
        quiet_cols = "FALSE AS in_quiet, send_at0 AS send_deferred"
    drop = q is not None and q.action == "drop"
    con.execute(f"CREATE OR REPLACE TEMP TABLE plan_q AS SELECT *, {quiet_cols} FROM plan_base")

    # frequency caps over sent messages in the window before the (final) send time
    caps = c.delivery.caps if c.marketing else ()
    cap_checks = []
    for cap in caps:
        secs = int(round(cap.per_days * 86400))
        chan = "" if cap.channel == "any" else f"AND m.channel = {_lit(cap.channel)}"
        applies = "TRUE" if cap.channel == "any" else f"p.channel = {_lit(cap.channel)}"
        send = (
            "CASE WHEN p.in_quiet AND NOT "
            + ("TRUE" if drop else "FALSE")
            + " THEN p.send_deferred ELSE p.send_at0 END"
        )
        cap_checks.append(
            f"CASE WHEN {applies} AND (SELECT count(*) FROM message_events m WHERE m.user_id = "
            "p.user_id "
            f"AND m.type = 'sent' {chan} AND m.ts <= {d} AND m.ts > {send} - INTERVAL {secs} "
            f"SECOND) + 1 > {cap.max} "
            f"THEN {_lit(f'{cap.max} per {cap.per} on ' + cap.channel)} END"
        )
    cap_expr = f"coalesce({', '.join(cap_checks)})" if cap_checks else "NULL"

    reason = f"""CASE
        WHEN p.excluded_by IS NOT NULL THEN 'excluded_segment'
        WHEN p.channel IS NULL THEN p.first_status
        WHEN {reentry.replace("ls.", "p.")} THEN 'reentry'
        WHEN p.gcb < {int(round(gc * 10000))} THEN 'global_control'
        WHEN p.hb < {int(round(c.holdout * 10000))} THEN 'holdout'
        WHEN p.cap_hit IS NOT NULL THEN 'frequency_cap'
        WHEN p.in_quiet AND {"TRUE" if drop else "FALSE"} THEN 'quiet_hours_dropped'
        ELSE NULL END"""
    detail = f"""CASE
        WHEN p.excluded_by IS NOT NULL THEN p.excluded_by
        WHEN p.channel IS NULL THEN {_lit(c.channels[0] + " " + c.purpose + " messages")}
        WHEN {reentry.replace("ls.", "p.")}
             THEN 'on ' || strftime(p.last_sent, '%Y-%m-%d %H:%M') || ' UTC'
        WHEN p.cap_hit IS NOT NULL THEN p.cap_hit
        ELSE NULL END"""
    # a trigger campaign's rows are each for their own occurrence: the triggering event
    occurrence_sql = (
        "strftime(p.trigger_at, '%Y-%m-%dT%H:%M:%S.%fZ')"
        if c.trigger is not None
        else _lit(occurrence)
    )
    # assigned users (analytics.md §14): planned rows and the suppressions after holdout
    # placement keep their variant and (would-be) send time, for intent-to-treat measurement
    late = ", ".join(_lit(r) for r in LATE_SUPPRESSIONS)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE plan_rows_tmp AS
        WITH p AS (SELECT *, {cap_expr} AS cap_hit FROM plan_q p)
        SELECT {_lit(plan_id)} AS plan_id, p.user_id, {occurrence_sql} AS occurrence,
               r.reason, r.detail,
               CASE WHEN r.reason IS NULL THEN 'planned' WHEN r.reason = 'holdout' THEN 'holdout'
                    ELSE 'suppressed' END AS status,
               p.channel,
               CASE WHEN r.reason IS NULL OR r.reason IN ({late}) THEN {variant_case}
                    END AS variant,
               CASE WHEN r.reason IS NULL OR r.reason IN ('holdout', {late}) THEN
                    CASE WHEN p.in_quiet THEN p.send_deferred ELSE p.send_at0 END END AS send_at,
               p.in_quiet AND r.reason IS NULL AS deferred,
               p.locale, p.user_zone AS zone
        FROM p, LATERAL (SELECT {reason} AS reason, {detail} AS detail) r"""
    )
    con.execute(
        "ALTER TABLE plan_rows_tmp ADD COLUMN idempotency_key VARCHAR; "
        "ALTER TABLE plan_rows_tmp ADD COLUMN message_hash VARCHAR; "
        "ALTER TABLE plan_rows_tmp ADD COLUMN sms_segments INTEGER"
    )
    n = int(con.execute("SELECT count(*) FROM plan_rows_tmp").fetchall()[0][0])
    return PlanResult(plan_id, c.name, occurrence, as_of, n, "plan_rows_tmp")


def variant_cuts(c: Campaign) -> list[tuple[str, int]]:
    """(variant, exclusive upper bucket 0..10000) in file order: a user whose variant bucket
    (md5 of `variant:<campaign>:<user>`) is below the first cut gets the first variant, …"""
    total = sum(v.weight for v in c.variants)
    cuts, acc = [], 0.0
    for v in c.variants:
        acc += v.weight
        cuts.append((v.name, int(round(acc / total * 10000))))
    return cuts


def variant_for(c: Campaign, user_id: str) -> str:
    """The variant `build` gives `user_id` (the same hash, in Python)."""
    from mcrm.segments.compile import bucket_of

    b = int(round(bucket_of(user_id, f"variant:{c.name}") * 100))
    cuts = variant_cuts(c)
    for name, cut in cuts[:-1]:
        if b < cut:
            return name
    return cuts[-1][0]


def sms_number_ok(phone: str) -> bool:
    """A number SMS can reach (reference/providers.md §4.3): valid per libphonenumber's
    metadata and not a fixed line (other types are left to the provider's own check)."""
    import phonenumbers

    try:
        p = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(
        phonenumbers.is_valid_number(p)
        and phonenumbers.number_type(p) != phonenumbers.PhoneNumberType.FIXED_LINE
    )


def _not_invalid(channel: str, address: str, d: str) -> str:
    """SQL: the address is not in the invalid-address registry as of `d` (the hash of
    mcrm.dispatch.core.address_hash)."""
    return (
        f" AND sha256('{channel}:' || {address}) NOT IN (SELECT address_hash FROM "
        f"invalid_addresses WHERE channel = '{channel}' AND invalid_at <= {d})"
    )


def _bad_phones(con: duckdb.DuckDBPyConnection) -> None:
    """TEMP table plan_bad_phones: the audience's E.164-shaped numbers that are not valid
    mobile-capable numbers. libphonenumber costs ~40 µs a number, so verdicts are kept in
    `phone_checks` (sha256 of the number — no personal data survives `users forget` — ok, and
    the phonenumbers version, whose metadata changes monthly) and only new numbers are
    checked; a read-only connection (preview, why) checks without storing."""
    import duckdb
    import phonenumbers
    import pyarrow as pa

    version = str(getattr(phonenumbers, "__version__", "?"))
    has_cache = bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'phone_checks' "
            "AND database_name = current_database()"
        ).fetchall()[0][0]
    )
    known = (
        "LEFT JOIN phone_checks c ON c.phone_hash = sha256(u.phone) AND c.version = "
        f"{_lit(version)}"
        if has_cache
        else "LEFT JOIN (SELECT NULL AS phone_hash, NULL AS ok) c ON FALSE"
    )
    rows = con.execute(
        f"SELECT DISTINCT u.phone, c.ok FROM plan_aud a JOIN users u USING (user_id) {known} "
        f"WHERE u.phone IS NOT NULL AND regexp_matches(u.phone, '{E164}')"
    ).fetchall()
    fresh = {p: sms_number_ok(p) for p, ok in rows if ok is None}
    bad = [p for p, ok in rows if ok is False] + [p for p, ok in fresh.items() if not ok]
    con.register("plan_bad_phones_in", pa.table({"phone": pa.array(bad, pa.string())}))
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE plan_bad_phones AS SELECT * FROM plan_bad_phones_in"
        )
    finally:
        con.unregister("plan_bad_phones_in")
    if not fresh:
        return
    new = pa.table(
        {
            "phone_hash": pa.array(
                [hashlib.sha256(p.encode()).hexdigest() for p in fresh], pa.string()
            ),
            "ok": pa.array(list(fresh.values()), pa.bool_()),
        }
    )
    con.register("plan_phone_new", new)
    try:
        con.execute(
            "CREATE TABLE IF NOT EXISTS phone_checks (phone_hash VARCHAR NOT NULL, ok BOOLEAN "
            "NOT NULL, version VARCHAR NOT NULL)"
        )
        con.execute(
            f"INSERT INTO phone_checks SELECT phone_hash, ok, {_lit(version)} FROM plan_phone_new"
        )
    except duckdb.Error:
        pass  # a read-only connection: checked, not stored
    finally:
        con.unregister("plan_phone_new")


def _consent(channel: str, purpose: str, d: str) -> str:
    """Latest consent row for (channel, purpose) at or before D grants it; in-app messages
    need no opt-in (only an opt-out counts), like an app's own inbox."""
    latest = (
        "SELECT c.user_id, c.granted FROM consents c "
        f"WHERE c.channel = {_lit(channel)} AND c.purpose = {_lit(purpose)} AND c.ts <= {d} "
        "QUALIFY row_number() OVER (PARTITION BY c.user_id ORDER BY c.ts DESC, c.granted ASC, "
        "c.source) = 1"
    )
    if channel == "inapp":
        return f"u.user_id NOT IN (SELECT user_id FROM ({latest}) x WHERE NOT granted)"
    return f"u.user_id IN (SELECT user_id FROM ({latest}) x WHERE granted)"


def _trigger_audience(ctx: Ctx, event: str, delay_days: float, unless: str | None) -> str:
    """Users with an occurrence of the trigger event whose send time (event + delay) falls in
    the day before as-of or is still to come, without `unless` in between; the latest
    occurrence per user."""
    from mcrm.segments.compile import exists_at

    d = ctx.d
    secs = int(round(delay_days * 86400))
    unless_sql = (
        "AND NOT EXISTS (SELECT 1 FROM events x WHERE x.user_id = e.user_id AND x.name = "
        f"{_lit(unless)} "
        f"AND x.ts > e.ts AND x.ts <= {d})"
        if unless
        else ""
    )
    return (
        "SELECT user_id, trigger_at FROM (SELECT e.user_id, e.ts AS trigger_at, "
        "row_number() OVER (PARTITION BY e.user_id ORDER BY e.ts DESC, e.event_id) AS rn "
        f"FROM events e JOIN users u ON u.user_id = e.user_id WHERE e.name = {_lit(event)} "
        f"AND e.ts <= {d} AND e.ts > {d} - INTERVAL {secs + 86400} SECOND AND {exists_at(ctx)} "
        f"{unless_sql}) t "
        "WHERE rn = 1"
    )


def explain_reason(reason: str | None, detail: str | None) -> str:
    if reason is None:
        return "will receive it"
    return REASON_WORDS.get(reason, reason).format(detail=detail or "")


def summary(con: duckdb.DuckDBPyConnection, table: str, delivery: Delivery) -> list[list[Any]]:
    """Rows of (measure, value, users) a marketer reads: status, channel, variant, reason,
    and the send window under the rate limits."""
    out: list[list[Any]] = []
    for dim in ("status", "channel", "variant", "reason"):
        filt = "" if dim in ("status", "reason") else "WHERE status = 'planned'"
        if dim == "variant":
            filt = "WHERE status = 'planned'"
        for value, n in con.execute(
            f"SELECT {dim}, count(*) FROM {table} {filt} GROUP BY 1 ORDER BY 2 DESC, 1"
        ).fetchall():
            if dim == "reason" and value is None:
                continue
            out.append([dim, value, n])
    sms = con.execute(
        f"SELECT count(sms_segments), sum(sms_segments) FROM {table} WHERE status = 'planned' "
        "AND channel = 'sms'"
    ).fetchall()[0]
    if sms[0]:
        from mcrm.campaigns.sms import sms_cost

        out.append(["sms_segments", int(sms[1]), sms[0]])
        cost = sms_cost(int(sms[1]), delivery.sms_price)
        if cost is not None:
            out.append(["sms_cost", f"{cost:.2f} at {delivery.sms_price} per segment", sms[0]])
    deferred = con.execute(f"SELECT count(*) FROM {table} WHERE deferred").fetchall()[0][0]
    if deferred:
        out.append(["deferred_for_quiet_hours", "planned", deferred])
    rows = con.execute(
        f"SELECT channel, count(*), min(send_at), max(send_at) FROM {table} "
        "WHERE status = 'planned' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    for ch, n, first, last in rows:
        rate = delivery.rate_limits.get(ch)
        drain = n / rate if rate else 0.0
        out.append(
            [
                f"send_window_{ch}",
                f"{first:%Y-%m-%d %H:%M}Z .. {last:%Y-%m-%d %H:%M}Z"
                + (f" + {drain:.0f} s at {rate:g}/s" if rate else ""),
                n,
            ]
        )
    return out


def user_row(con: duckdb.DuckDBPyConnection, table: str, uid: str) -> dict[str, Any]:
    cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    rows = con.execute(f"SELECT * FROM {table} WHERE user_id = ?", [uid]).fetchall()
    if not rows:
        raise NotFound(f"user {uid} is not in the plan")
    return dict(zip(cols, rows[0], strict=True))
