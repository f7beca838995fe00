"""`mcrm report messaging`: what the messages did, per channel and campaign (SPEC §7,
reference/analytics.md §13).

**The unit is the message** (one campaign occurrence, one user, one channel), identified by its
*key*: the outbox idempotency key for messages mcrm sent — dispatch writes their `sent` row
under that key, and the provider presets (`mcrm import message-events --preset sendgrid|twilio|
expo`) put it in `properties.mcrm_id` of every event they can link — else the event's
`message_id` (messages sent by another tool, imported with the generic kind), else its event id.

- A message is *sent in the period* when its first `sent` (or provider `processed`) event falls
  in [from, to]. `sent` is the message's one send row (dispatch's, or the provider presets'
  for another tool's send); `processed` is a provider's report of it, counted too for history
  imported before the presets stored foreign sends as `sent` — per message key, so once.
  Its later events count up to the as-of instant, even after `to` (a message sent on the
  last day and opened the next still counts as opened).
- An event whose key names no sent message (a generic import without message ids, an app
  `push_open` carrying only the campaign) is credited to the latest message of the same user,
  campaign and channel sent at or before it; events that match nothing are counted in a note.
- Push opens are app events: `events.name = 'push_open'` (the Firebase / AppsFlyer presets
  rename `notification_open` / `af_opened_from_push_notification` to it), linked by their
  `mcrm_id` property (the key mcrm puts in every push's data) or, failing that, by the
  campaign they name (`mcrm_campaign`, `campaign`, `campaign_id`, Firebase's `message_name` /
  `label`, else `utm_campaign`). `opened` message events on push count too.
- Each row counts messages: sent, delivered, with a human open (`unique_opens`; Apple Mail
  Privacy Protection prefetches, flagged `machine_open` by the SendGrid preset, are counted
  apart in `machine_opens`), with a click, unsubscribed, spam-reported, bounced, failed or
  dropped, and `invalid` (the provider said the address or token is dead: hard bounces, Expo
  DeviceNotRegistered, Twilio 21211/21614 — including messages refused at send time, which
  never had a `sent` event).
- **Rates** (§13): delivery = delivered ÷ sent, open = unique opens ÷ base, CTR = unique clicks
  ÷ base, click-to-open = unique clicks ÷ unique opens, unsubscribe = unsubscribes ÷ base. The
  base is `delivered` when the row has delivery receipts (any message with a delivery-class
  event or an Expo receipt), else `sent`, and the `base` column and a note say so.
- **Rows are per provider** too (column `provider`): the outbox lane of a message mcrm sent,
  else the provider of its first send event (`sendgrid`, `twilio`, … for imported history).
  A campaign sent by SendGrid (receipts) and later by a file outbox (none) gets two rows, each
  with an honest denominator, instead of one whose `delivered` base counts mcrm's sends as
  undelivered. The `channels` table is per channel and provider for the same reason.
- **Conversions** (§13, any-touch): a message converts when its user did the campaign's
  `goal.event` (a paid order for `purchase`) at c with send ≤ c ≤ send + `goal.within`, c ≤
  as-of; `revenue` is the paid orders (base currency) in that window. One purchase is credited
  to every campaign that touched it, so neither is summed across campaigns: the `channels`
  table (and the per-channel rows of `--by-channel`) has no conversion columns.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from mcrm.output import Rows
from mcrm.reports.common import Period, Report, ratio
from mcrm.segments.compile import lit, ts_lit

if TYPE_CHECKING:
    import duckdb

    from mcrm.campaigns.model import Goal
    from mcrm.config import Workspace

SENT_TYPES = ("sent", "processed")
# a provider answer about delivery: the channel has receipts
RECEIPT_TYPES = ("delivered", "bounced", "dropped", "deferred", "failed")

COLUMNS = [
    "channel",
    "campaign",
    "provider",
    "sent",
    "delivered",
    "delivery_rate",
    "base",
    "unique_opens",
    "machine_opens",
    "open_rate",
    "unique_clicks",
    "ctr",
    "click_to_open",
    "unsubscribes",
    "unsubscribe_rate",
    "spam_reports",
    "bounces",
    "failed",
    "invalid",
    "conversions",
    "conversion_rate",
    "revenue",
]
CHANNEL_COLUMNS = [c for c in COLUMNS if c not in ("campaign", "conversions", "conversion_rate")]
CHANNEL_COLUMNS.remove("revenue")
PERCENT = frozenset(
    {"delivery_rate", "open_rate", "ctr", "click_to_open", "unsubscribe_rate", "conversion_rate"}
)


def _js(col: str, key: str) -> str:
    return f"json_extract_string({col}, '$.{key}')"


def goals(ws: Workspace) -> tuple[dict[str, Goal], list[str]]:
    """Each campaign's goal (campaigns/*.yaml), and the problems met loading them (a broken
    campaign file must not stop a report: its rows just have no conversions)."""
    from mcrm.campaigns.engine import load_all
    from mcrm.yamlio import Problems

    probs = Problems()
    try:
        loaded = load_all(ws, probs)
    except Exception as e:  # noqa: BLE001 - a report reads what it can
        return {}, [f"campaigns not read ({e})"]
    out = {n: c.goal for n, c in loaded.campaigns.items() if c.goal is not None}
    return out, [str(p) for p in probs.errors[:3]]


def messages_sql(period: Period, goal_of: dict[str, Goal], unmatched: bool = False) -> str:
    """One row per message sent in the period, with its flags (see the module docstring):
    mkey, channel, campaign, user_id, sent_ts, delivered, receipt, opened, machine_opened,
    clicked, unsubscribed, spam, bounced, failed, invalid, converted, revenue. With
    `unmatched`, instead: the number of engagement events that match no sent message."""
    at = ts_lit(period.as_of)
    start, end = ts_lit(period.start_ts), ts_lit(period.end_ts)
    sent_types = ", ".join(lit(t) for t in SENT_TYPES)
    receipt_types = ", ".join(lit(t) for t in RECEIPT_TYPES)
    mcrm_id = _js("m.properties", "mcrm_id")
    flag = "coalesce(TRY_CAST({} AS BOOLEAN), FALSE)"
    # goal windows per campaign, as generated SQL (no macros, INTERVAL literals)
    if goal_of:
        names = sorted(goal_of)
        whens = " ".join(
            f"WHEN {lit(n)} THEN INTERVAL {int(round(goal_of[n].within_days * 86400))} SECOND"
            for n in names
        )
        window = f"(CASE s.campaign {whens} END)"
        gwhens = " ".join(f"WHEN {lit(n)} THEN {lit(goal_of[n].event)}" for n in names)
        goal_event = f"(CASE s.campaign {gwhens} END)"
        other = sorted({g.event for g in goal_of.values()} - {"purchase"})
        hits_parts = [
            "SELECT p.user_id, p.ts, 'purchase' AS name, p.amount_base AS amount FROM purchases p "
            f"WHERE p.status = 'paid' AND p.user_id IS NOT NULL AND p.ts <= {at}"
        ]
        if other:
            hits_parts.append(
                "SELECT e.user_id, e.ts, e.name, CAST(NULL AS DECIMAL(18,3)) AS amount "
                f"FROM events e WHERE e.user_id IS NOT NULL AND e.ts <= {at} "
                f"AND e.name IN ({', '.join(lit(o) for o in other)})"
            )
        conv = f"""conv AS (
            SELECT s.mkey,
                count(*) FILTER (WHERE c.name = {goal_event}) > 0 AS converted,
                CAST(sum(c.amount) FILTER (WHERE c.name = 'purchase') AS DECIMAL(18,3))
                    AS revenue
            FROM sent_p s JOIN ({" UNION ALL ".join(hits_parts)}) c
              ON c.user_id = s.user_id AND c.ts >= s.sent_ts AND c.ts <= s.sent_ts + {window}
            WHERE s.campaign IN ({", ".join(lit(n) for n in names)})
            GROUP BY s.mkey
        )"""
        has_goal = f"s.campaign IN ({', '.join(lit(n) for n in names)})"
    else:
        conv = (
            "conv AS (SELECT CAST(NULL AS VARCHAR) AS mkey, FALSE AS converted, "
            "CAST(NULL AS DECIMAL(18,3)) AS revenue WHERE FALSE)"
        )
        has_goal = "FALSE"
    if unmatched:
        final = f"""SELECT count(*) FROM ev WHERE ts >= {start} AND ts <= {end}
            AND event_id NOT IN (SELECT event_id FROM direct)
            AND event_id NOT IN (SELECT event_id FROM matched)"""
    else:
        final = FINAL.format(has_goal=has_goal)
    return f"""
    WITH me AS (
        SELECT m.event_id, m.type, m.ts, m.user_id, m.campaign, m.channel,
            coalesce({mcrm_id}, o.idempotency_key, m.message_id, m.event_id) AS mkey,
            o.user_id AS o_user, o.campaign AS o_campaign, o.channel AS o_channel,
            o.lane AS o_lane, m.provider,
            {flag.format(_js("m.properties", "machine_open"))} AS machine,
            {flag.format(_js("m.properties", "invalid"))} AS invalid
        FROM message_events m
        LEFT JOIN outbox o ON o.idempotency_key = coalesce({mcrm_id}, m.event_id)
        WHERE m.ts <= {at}
    ),
    keys AS (
        SELECT mkey, min(ts) FILTER (WHERE type IN ({sent_types})) AS sent_ts,
            coalesce(max(o_user), max(user_id)) AS user_id,
            coalesce(max(o_campaign), max(campaign)) AS campaign,
            coalesce(max(o_channel), max(channel)) AS channel,
            coalesce(max(o_lane), arg_min(provider, ts) FILTER (WHERE type IN ({sent_types})),
                     '(unknown)') AS provider
        FROM me GROUP BY mkey
    ),
    sent AS (SELECT * FROM keys WHERE sent_ts IS NOT NULL),
    push_opens AS (
        SELECT e.event_id, 'opened' AS type, e.ts, e.user_id,
            coalesce({_js("e.properties", "mcrm_campaign")}, {_js("e.properties", "campaign")},
                     {_js("e.properties", "campaign_id")},
                     {_js("e.properties", "message_name")}, {_js("e.properties", "label")},
                     e.utm_campaign) AS campaign,
            'push' AS channel, {_js("e.properties", "mcrm_id")} AS mkey,
            FALSE AS machine, FALSE AS invalid
        FROM events e WHERE e.name = 'push_open' AND e.ts <= {at} AND e.user_id IS NOT NULL
    ),
    ev AS (
        SELECT event_id, type, ts, user_id, campaign, channel, mkey, machine, invalid
        FROM me WHERE type NOT IN ({sent_types})
        UNION ALL
        SELECT event_id, type, ts, user_id, campaign, channel, mkey, machine, invalid
        FROM push_opens
    ),
    direct AS (SELECT ev.* FROM ev WHERE ev.mkey IN (SELECT mkey FROM sent)),
    matched AS (
        SELECT x.event_id, x.type, x.ts, s.mkey, x.machine, x.invalid FROM ev x
        JOIN sent s ON s.user_id = x.user_id AND s.campaign = x.campaign
            AND s.channel = x.channel AND s.sent_ts <= x.ts
        WHERE x.mkey IS NULL OR x.mkey NOT IN (SELECT mkey FROM sent)
        QUALIFY row_number() OVER (PARTITION BY x.event_id, x.type
            ORDER BY s.sent_ts DESC, s.mkey DESC) = 1
    ),
    linked AS (
        SELECT mkey, type, machine, invalid FROM direct
        UNION ALL SELECT mkey, type, machine, invalid FROM matched
    ),
    flags AS (
        SELECT mkey,
            bool_or(type = 'delivered') AS delivered,
            bool_or(type IN ({receipt_types})) AS receipt,
            bool_or(type = 'opened' AND NOT machine) AS opened,
            bool_or(type = 'opened' AND machine) AS machine_opened,
            bool_or(type = 'clicked') AS clicked,
            bool_or(type = 'unsubscribed') AS unsubscribed,
            bool_or(type = 'spam_report') AS spam,
            bool_or(type = 'bounced') AS bounced,
            bool_or(type IN ('failed', 'dropped')) AS failed,
            bool_or(invalid) AS invalid
        FROM linked GROUP BY mkey
    ),
    sent_p AS (
        SELECT * FROM sent WHERE sent_ts >= {start} AND sent_ts <= {end}
    ),
    {conv}
    {final}
    """


def refused_sql(period: Period) -> str:
    """Outbox rows refused at send time as invalid recipients (no `sent` event), by planned
    send time in the period: channel, campaign, provider (the lane), messages."""
    return f"""SELECT channel, campaign, coalesce(lane, '(unknown)'), count(*) AS n FROM outbox
        WHERE status = 'invalid_recipient'
          AND coalesce(send_at, created_at) >= {ts_lit(period.start_ts)}
          AND coalesce(send_at, created_at) <= {ts_lit(period.end_ts)}
          AND updated_at <= {ts_lit(period.as_of)}
          AND idempotency_key NOT IN (
              SELECT event_id FROM message_events WHERE type = 'sent')
        GROUP BY ALL"""


FINAL = """
    SELECT s.mkey, s.channel, s.campaign, s.provider, s.user_id, s.sent_ts,
        coalesce(f.delivered, FALSE) OR coalesce(o.receipt_status = 'ok', FALSE) AS delivered,
        coalesce(f.receipt, FALSE) OR coalesce(o.receipt_status IN ('ok', 'error'), FALSE)
            AS receipt,
        coalesce(f.opened, FALSE) AS opened,
        coalesce(f.machine_opened, FALSE) AS machine_opened,
        coalesce(f.clicked, FALSE) AS clicked,
        coalesce(f.unsubscribed, FALSE) AS unsubscribed,
        coalesce(f.spam, FALSE) AS spam,
        coalesce(f.bounced, FALSE) AS bounced,
        coalesce(f.failed, FALSE) AS failed,
        coalesce(f.invalid, FALSE) OR coalesce(o.status = 'invalid_recipient', FALSE) AS invalid,
        CASE WHEN {has_goal} THEN coalesce(c.converted, FALSE) END AS converted,
        CASE WHEN {has_goal} THEN coalesce(c.revenue, CAST(0 AS DECIMAL(18,3))) END AS revenue
    FROM sent_p s
    LEFT JOIN flags f ON f.mkey = s.mkey
    LEFT JOIN outbox o ON o.idempotency_key = s.mkey
    LEFT JOIN conv c ON c.mkey = s.mkey
"""


FLAG_AGG = """count(*) AS sent,
    count(*) FILTER (WHERE delivered) AS delivered,
    bool_or(receipt) AS receipts,
    count(*) FILTER (WHERE opened) AS opens,
    count(*) FILTER (WHERE machine_opened) AS machine_opens,
    count(*) FILTER (WHERE clicked) AS clicks,
    count(*) FILTER (WHERE unsubscribed) AS unsubscribes,
    count(*) FILTER (WHERE spam) AS spam,
    count(*) FILTER (WHERE bounced) AS bounces,
    count(*) FILTER (WHERE failed) AS failed,
    count(*) FILTER (WHERE invalid) AS invalid,
    count(*) FILTER (WHERE converted) AS conversions,
    bool_or(converted IS NOT NULL) AS has_goal,
    CAST(sum(revenue) AS DECIMAL(18,3)) AS revenue"""


def _metrics(r: dict[str, Any]) -> dict[str, Any]:
    sent, delivered = int(r["sent"]), int(r["delivered"])
    receipts = bool(r["receipts"])
    base = delivered if receipts else sent
    opens, clicks = int(r["opens"]), int(r["clicks"])
    has_goal = bool(r["has_goal"])
    return {
        "sent": sent,
        "delivered": delivered if receipts else None,
        "delivery_rate": ratio(delivered, sent) if receipts else None,
        "base": "delivered" if receipts else "sent",
        "unique_opens": opens,
        "machine_opens": int(r["machine_opens"]),
        "open_rate": ratio(opens, base),
        "unique_clicks": clicks,
        "ctr": ratio(clicks, base),
        "click_to_open": ratio(clicks, opens),
        "unsubscribes": int(r["unsubscribes"]),
        "unsubscribe_rate": ratio(int(r["unsubscribes"]), base),
        "spam_reports": int(r["spam"]),
        "bounces": int(r["bounces"]),
        "failed": int(r["failed"]),
        "invalid": int(r["invalid"]) + int(r.get("refused") or 0),
        "conversions": int(r["conversions"]) if has_goal else None,
        "conversion_rate": ratio(int(r["conversions"]), sent) if has_goal else None,
        "revenue": Decimal(r["revenue"]) if has_goal and r["revenue"] is not None else None,
    }


def build(
    con: duckdb.DuckDBPyConnection, ws: Workspace, period: Period, by_campaign: bool = True
) -> Report:
    """The messaging report over `period` (see the module docstring): table `messaging` (per
    channel and campaign, or per channel when not `by_campaign`) and, by campaign, `channels`
    (per channel, without conversions)."""
    goal_of, problems = goals(ws)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _msg_report AS {messages_sql(period, goal_of)}")
    try:
        refused: dict[tuple[str, str, str], int] = {
            (str(ch), str(ca), str(pr)): int(n)
            for ch, ca, pr, n in con.execute(refused_sql(period)).fetchall()
        }
        unmatched = int(con.execute(messages_sql(period, goal_of, True)).fetchall()[0][0])
        # one row per provider (lane): receipts, hence the rates' base, are the provider's
        keys = ["channel", "campaign", "provider"] if by_campaign else ["channel", "provider"]
        grouped = _grouped(con, keys)
        totals = _grouped(con, ["channel", "provider"]) if by_campaign else []
        campaigns_seen = {
            str(r[0])
            for r in con.execute(
                "SELECT DISTINCT campaign FROM _msg_report WHERE campaign IS NOT NULL"
            ).fetchall()
        }
    finally:
        con.execute("DROP TABLE IF EXISTS _msg_report")

    # messages refused at send time (never sent) still count as invalid recipients
    def add_refused(rows: list[dict[str, Any]], by: list[str]) -> list[dict[str, Any]]:
        per: dict[tuple[str, ...], int] = {}
        for (ch, ca, pr), n in refused.items():
            key: tuple[str, ...] = (ch, ca, pr) if "campaign" in by else (ch, pr)
            per[key] = per.get(key, 0) + n
        index = {tuple(str(r[b]) for b in by): r for r in rows}
        for k, n in per.items():
            if k in index:
                index[k]["refused"] = n
            else:
                zero = {
                    "sent": 0,
                    "delivered": 0,
                    "receipts": False,
                    "opens": 0,
                    "machine_opens": 0,
                    "clicks": 0,
                    "unsubscribes": 0,
                    "spam": 0,
                    "bounces": 0,
                    "failed": 0,
                    "invalid": 0,
                    "conversions": 0,
                    "has_goal": "campaign" in by and k[1] in goal_of,
                    "revenue": Decimal(0),
                    "refused": n,
                }
                zero.update(dict(zip(by, k, strict=True)))
                rows.append(zero)
        return sorted(rows, key=lambda r: tuple(str(r[b]) for b in by))

    main_cols = COLUMNS if by_campaign else CHANNEL_COLUMNS
    main = []
    for r in add_refused(grouped, keys):
        m = _metrics(r)
        main.append(tuple([r[k] for k in keys] + [m[c] for c in main_cols[len(keys) :]]))
    tables = {
        "messaging": Rows(
            main_cols,
            main,
            title="Messages per channel, campaign and provider"
            if by_campaign
            else "Messages per channel and provider",
            percent_columns=PERCENT,
        )
    }
    if by_campaign:
        chan = []
        for r in add_refused(totals, ["channel", "provider"]):
            m = _metrics(r)
            chan.append(tuple([r["channel"], r["provider"]] + [m[c] for c in CHANNEL_COLUMNS[2:]]))
        tables["channels"] = Rows(
            CHANNEL_COLUMNS,
            chan,
            title="Messages per channel and provider",
            percent_columns=PERCENT,
        )

    notes = []
    no_receipts = [
        "/".join(str(r[k]) for k in keys) for r in grouped if r["sent"] and not r["receipts"]
    ]
    if no_receipts:
        notes.append(
            f"no delivery receipts for {', '.join(no_receipts)}: delivered and delivery rate "
            "are empty there, and rates use sent as their denominator (column base)"
        )
    if any(r["opens"] or r["machine_opens"] for r in grouped if r["channel"] == "email"):
        notes.append(
            "email opens are inflated by privacy prefetching (Apple Mail Privacy Protection): "
            "flagged machine opens are counted apart in machine_opens, others may remain; "
            "trust clicks and conversions more (analytics.md §13)"
        )
    notes.append(
        "conversions: any-touch within each campaign's goal window from the send "
        "(analytics.md §13); one purchase can be credited to several campaigns, so "
        "conversions and revenue are not summed across campaigns, and only holdouts measure "
        "the incremental effect (mcrm report campaign NAME)"
    )
    no_goal = sorted(c for c in campaigns_seen if c not in goal_of)
    if no_goal:
        notes.append(f"no goal defined (no conversions): {', '.join(no_goal)}")
    late = [
        c
        for c in sorted(campaigns_seen & set(goal_of))
        if period.end_ts + dt.timedelta(days=goal_of[c].within_days) > period.as_of
    ]
    if late:
        notes.append(
            "goal windows still open at as-of (conversions may still grow): " + ", ".join(late)
        )
    if unmatched:
        notes.append(
            f"{unmatched} engagement event(s) of the period (message events, push opens) "
            "match no sent message and are not counted"
        )
    if period.partial:
        notes.append(f"the period's last day ({period.end}) is still in progress at as-of")
    warnings = [f"campaign files: {p}" for p in problems]
    params = period.params() | {"by_campaign": by_campaign}
    return Report("messaging", tables, params, notes, warnings)


def _grouped(con: duckdb.DuckDBPyConnection, keys: list[str]) -> list[dict[str, Any]]:
    cols = ", ".join(keys)
    cur = con.execute(
        f"SELECT {cols}, {FLAG_AGG} FROM _msg_report GROUP BY {cols} ORDER BY {cols}"
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
