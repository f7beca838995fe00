"""`mcrm import message-events --preset sendgrid|twilio|expo` on the committed fixtures
(tests/fixtures/messaging): every event type, malformed records rejected with line and reason,
re-imports idempotent, events linked to the outbox rows they are about, and the side effects
(consent revocations, the invalid-address registry, dead push tokens)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mcrm.db import open_db
from mcrm.ingest.run import ImportResult
from tests.conftest import WS, Importer, Query

FIXTURES = Path(__file__).parent.parent / "fixtures" / "messaging"
NOW = dt.datetime(2026, 11, 15, 12, 0, tzinfo=dt.UTC)
PII = ("@example.com", "+4206", "ExponentPushToken[")


def copy(w: WS, name: str) -> str:
    shutil.copy(FIXTURES / name, w.root / name)
    return name


def summary(r: ImportResult) -> dict[str, tuple[int, int, int, int]]:
    return {f.kind: (f.rows_read, f.inserted, f.duplicates, f.rejected) for f in r.files}


def rejects(w: WS, query: Query) -> list[tuple[Any, ...]]:
    return query(w, "SELECT line, column_name, reason, raw FROM import_rejects ORDER BY line")


def no_pii(w: WS, query: Query) -> None:
    """No address, number or token in what the import kept about events or rejects."""
    text = json.dumps(
        query(w, "SELECT properties, message_id, event_id FROM message_events")
        + query(w, "SELECT reason, raw FROM import_rejects"),
        default=str,
    )
    for needle in PII:
        assert needle not in text


def sha(channel: str, address: str) -> str:
    a = address.strip().lower() if channel == "email" else address.strip()
    return hashlib.sha256(f"{channel}:{a}".encode()).hexdigest()


def seed_outbox(w: WS, rows: list[tuple[str, str, str, str, str | None, str | None]]) -> None:
    """Outbox rows as dispatch leaves them: (key, campaign, user, channel, provider id,
    address hash), sent, with their `sent` message event."""
    t = dt.datetime(2026, 11, 14, 9, 0)
    with open_db(w.ws, write=True) as con:
        for key, campaign, user, channel, pid, ref in rows:
            con.execute(
                "INSERT INTO outbox (idempotency_key, campaign, occurrence, user_id, channel, "
                "lane, address_ref, status, provider_message_id, created_at, updated_at) "
                "VALUES (?, ?, 'o1', ?, ?, 'lane1', ?, 'sent', ?, ?, ?)",
                [key, campaign, user, channel, ref, pid, t, t],
            )
            con.execute(
                "INSERT INTO message_events (event_id, provider, message_id, user_id, campaign, "
                "channel, type, ts) VALUES (?, 'lane1', ?, ?, ?, ?, 'sent', ?)",
                [key, pid, user, campaign, channel, t],
            )


# ---------------------------------------------------------------------------------------------
# SendGrid


def test_sendgrid_every_event_type_and_rejects(ws: WS, importer: Importer, query: Query) -> None:
    name = copy(ws, "sendgrid_events.json")
    r = importer(ws, "message-events", [name], preset="sendgrid", now=NOW)
    assert summary(r) == {
        "message-events": (17, 13, 0, 4),
        "consents": (4, 4, 0, 0),
        "invalid-addresses": (2, 2, 0, 0),
    }
    types: dict[str, str] = dict(
        query(
            ws,
            "SELECT json_extract_string(properties, '$.vendor_event'), type FROM message_events",
        )
    )
    assert types == {
        "processed": "sent",  # no outbox row: another tool's send, counted by caps and reentry
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
    assert query(ws, "SELECT DISTINCT provider, channel FROM message_events") == [
        ("sendgrid", "email")
    ]
    # epoch seconds, stored as UTC
    assert query(
        ws, "SELECT ts FROM message_events WHERE event_id = 'rbtnWrG1DVDGGGFHFyun0A'"
    ) == [(dt.datetime(2025, 11, 15, 10, 0),)]
    # Apple MPP prefetch flagged; click URL without its query string
    opens = query(
        ws,
        "SELECT json_extract(properties, '$.machine_open')::BOOLEAN FROM message_events "
        "WHERE type = 'opened' ORDER BY ts",
    )
    assert opens == [(True,), (False,)]
    assert query(
        ws,
        "SELECT json_extract_string(properties, '$.url') FROM message_events "
        "WHERE type = 'clicked'",
    ) == [("https://shop.example.com/offers/winback",)]
    # the hard bounce and the drop for a bounced address are invalid; the block is not
    inv = query(
        ws,
        "SELECT event_id FROM message_events WHERE json_extract(properties, '$.invalid')::BOOLEAN "
        "ORDER BY 1",
    )
    assert inv == [("bounce-bob-1",), ("dropped-dan-1",)]
    assert sorted(
        query(ws, "SELECT address_hash, channel, reason, source_code FROM invalid_addresses")
    ) == sorted(
        [
            (sha("email", "bob@example.com"), "email", "bounce", "sendgrid:bounce"),
            (sha("email", "dan@example.com"), "email", "bounce", "sendgrid:dropped"),
        ]
    )
    got = rejects(ws, query)
    assert [(g[0], g[1]) for g in got] == [
        (14, "type"),
        (15, "timestamp"),
        (16, "timestamp"),
        (17, None),
    ]
    assert "unknown SendGrid event 'opne'" in got[0][2]
    assert "no timestamp" in got[1][2]
    assert "cannot read 'yesterday'" in got[2][2]
    assert "not a JSON object" in got[3][2]
    no_pii(ws, query)


def test_sendgrid_unsubscribes_become_consent_rows(
    ws: WS, importer: Importer, query: Query
) -> None:
    name = copy(ws, "sendgrid_events.json")
    importer(ws, "message-events", [name], preset="sendgrid", now=NOW)
    rows = query(
        ws,
        "SELECT i.value, c.channel, c.purpose, c.granted, c.source FROM consents c "
        "JOIN identities i ON i.user_id = c.user_id AND i.kind = 'email' ORDER BY c.ts",
    )
    assert rows == [
        ("ann@example.com", "email", "marketing", False, "sendgrid:spamreport"),
        ("eve@example.com", "email", "marketing", False, "sendgrid:unsubscribe"),
        ("fay@example.com", "email", "marketing", False, "sendgrid:group_unsubscribe"),
        ("fay@example.com", "email", "marketing", True, "sendgrid:group_resubscribe"),
    ]


def test_sendgrid_reimport_and_jsonl_are_duplicates(
    ws: WS, importer: Importer, query: Query
) -> None:
    name = copy(ws, "sendgrid_events.json")
    importer(ws, "message-events", [name], preset="sendgrid", now=NOW)
    again = importer(ws, "message-events", [name], preset="sendgrid", now=NOW)
    assert summary(again) == {
        "message-events": (17, 0, 13, 4),
        "consents": (0, 0, 0, 0),  # events seen before have had their effect
        "invalid-addresses": (2, 0, 2, 0),
    }
    # the same events as JSON lines (how a webhook receiver appends them)
    events = json.loads((FIXTURES / name).read_text())
    lines = "\n".join(json.dumps(e) for e in events if isinstance(e, dict)) + "\n"
    ws.write("events.jsonl", lines)
    r = importer(ws, "message-events", ["events.jsonl"], preset="sendgrid", now=NOW)
    assert summary(r)["message-events"] == (16, 0, 13, 3)
    assert query(ws, "SELECT count(*) FROM message_events") == [(13,)]
    assert query(ws, "SELECT count(*) FROM invalid_addresses") == [(2,)]


def test_sendgrid_links_events_to_the_outbox(ws: WS, importer: Importer, query: Query) -> None:
    """By custom_args.mcrm_id; else by the X-Message-Id prefix of sg_message_id together with
    the recipient's address hash (one X-Message-Id covers a whole batch)."""
    seed_outbox(
        ws,
        [
            ("k-ann", "winback", "u-ann", "email", "W86EgYT6SQKk0lRflfLRsA", None),
            (
                "k-dan",
                "winback",
                "u-dan",
                "email",
                "W86EgYT6SQKk0lRflfLRsA",
                sha("email", "dan@example.com"),
            ),
            (
                "k-fay",
                "winback",
                "u-fay",
                "email",
                "W86EgYT6SQKk0lRflfLRsA",
                sha("email", "Fay@Example.com "),
            ),
        ],
    )
    name = copy(ws, "sendgrid_events.json")
    importer(ws, "message-events", [name], preset="sendgrid", now=NOW)
    linked = query(
        ws,
        "SELECT event_id, user_id, campaign, json_extract_string(properties, '$.mcrm_id') "
        "FROM message_events WHERE type <> 'sent' AND user_id IN ('u-ann', 'u-dan', 'u-fay') "
        "ORDER BY event_id",
    )
    by_id = {r[0]: r[1:] for r in linked}
    assert by_id["6KnblqD3kBZ9_MNwB7SF7w"] == ("u-ann", "winback", "k-ann")  # mcrm_id
    assert by_id["dropped-dan-1"] == ("u-dan", "winback", "k-dan")  # prefix + address
    assert by_id["gunsub-fay-1"] == ("u-fay", "winback", "k-fay")
    assert len(linked) == 9  # ann: 6 events, dan: 1, fay: 2
    # ann's `processed` is about mcrm's send: dispatch's `sent` row is that message's only one
    assert query(
        ws, "SELECT type FROM message_events WHERE event_id = 'rbtnWrG1DVDGGGFHFyun0A'"
    ) == [("processed",)]
    assert query(
        ws, "SELECT count(*) FROM message_events WHERE type = 'sent' AND user_id = 'u-ann'"
    ) == [(1,)]
    # a linked unsubscribe revokes the outbox user's consent (no synthetic user)
    assert query(
        ws, "SELECT user_id, granted FROM consents WHERE source = 'sendgrid:group_unsubscribe'"
    ) == [("u-fay", False)]


# ---------------------------------------------------------------------------------------------
# Twilio


def test_twilio_callbacks_csv(ws: WS, importer: Importer, query: Query) -> None:
    name = copy(ws, "twilio_callbacks.csv")
    r = importer(ws, "message-events", [name], preset="twilio", now=NOW)
    assert summary(r) == {
        "message-events": (13, 8, 0, 5),
        "consents": (0, 0, 0, 0),
        "invalid-addresses": (2, 2, 0, 0),
    }
    assert any("STOP" in w for f in r.files for w in f.warnings)
    # line 13 is an inbound message (the receiver logs both webhooks): skipped, not rejected
    assert any("1 inbound message(s)" in w for f in r.files for w in f.warnings)
    got: dict[str, str] = dict(
        query(
            ws,
            "SELECT json_extract_string(properties, '$.vendor_event') || ':' || message_id, "
            "type FROM message_events",
        )
    )
    assert got == {
        "queued:SM0a1b2c3d4e5f60718293a4b5c6d7e8f9": "processed",
        # no outbox row: another tool's SMS, sent once (when Twilio handed it to the carrier)
        "sent:SM0a1b2c3d4e5f60718293a4b5c6d7e8f9": "sent",
        "delivered:SM0a1b2c3d4e5f60718293a4b5c6d7e8f9": "delivered",
        "undelivered:SM1a1b2c3d4e5f60718293a4b5c6d7e8f9": "failed",
        "failed:SM2a1b2c3d4e5f60718293a4b5c6d7e8f9": "failed",
        "failed:SM3a1b2c3d4e5f60718293a4b5c6d7e8f9": "failed",
        "read:SM4a1b2c3d4e5f60718293a4b5c6d7e8f9": "opened",
        "canceled:SM5a1b2c3d4e5f60718293a4b5c6d7e8f9": "dropped",
    }
    assert query(ws, "SELECT event_id FROM message_events WHERE type = 'delivered'") == [
        ("twilio:SM0a1b2c3d4e5f60718293a4b5c6d7e8f9:delivered",)
    ]
    assert sorted(
        query(ws, "SELECT address_hash, reason, source_code FROM invalid_addresses")
    ) == sorted(
        [
            (sha("sms", "+420602222222"), "mailbox_unknown", "twilio:30005"),
            (sha("sms", "+420604444444"), "malformed", "twilio:21211"),
        ]
    )
    got_rejects = [(g[0], g[1]) for g in rejects(ws, query)]
    assert got_rejects == [
        (10, "type"),
        (11, "timestamp"),
        (12, "message_id"),
        (14, "properties"),
        (15, "MessagingServiceSid"),
    ]
    no_pii(ws, query)


def test_twilio_linked_sent_stays_processed(ws: WS, importer: Importer, query: Query) -> None:
    """Twilio's `sent` about an SMS mcrm sent is not a second send: dispatch wrote `sent`."""
    seed_outbox(
        ws, [("k-sms", "promo", "u-sms", "sms", "SM0a1b2c3d4e5f60718293a4b5c6d7e8f9", None)]
    )
    importer(ws, "message-events", [copy(ws, "twilio_callbacks.csv")], preset="twilio", now=NOW)
    got = query(
        ws,
        "SELECT event_id, type FROM message_events "
        "WHERE message_id = 'SM0a1b2c3d4e5f60718293a4b5c6d7e8f9' ORDER BY event_id",
    )
    assert got == [
        ("k-sms", "sent"),
        ("twilio:SM0a1b2c3d4e5f60718293a4b5c6d7e8f9:delivered", "delivered"),
        ("twilio:SM0a1b2c3d4e5f60718293a4b5c6d7e8f9:queued", "processed"),
        ("twilio:SM0a1b2c3d4e5f60718293a4b5c6d7e8f9:sent", "processed"),
    ]


def test_twilio_jsonl_reimport_and_stop_linked(ws: WS, importer: Importer, query: Query) -> None:
    seed_outbox(
        ws,
        [("k-stop", "birthday_sms", "u-stop", "sms", "SM2a1b2c3d4e5f60718293a4b5c6d7e8f9", None)],
    )
    copy(ws, "twilio_callbacks.csv")
    importer(ws, "message-events", ["twilio_callbacks.csv"], preset="twilio", now=NOW)
    name = copy(ws, "twilio_callbacks.jsonl")
    r = importer(ws, "message-events", [name], preset="twilio", now=NOW)
    # the same callbacks (same MessageSid and status) are duplicates whatever their format
    assert summary(r)["message-events"] == (5, 0, 3, 2)
    # STOP on a message mcrm sent: SMS consent revoked for both purposes, once
    assert sorted(
        query(ws, "SELECT user_id, channel, purpose, granted, source FROM consents")
    ) == [
        ("u-stop", "sms", "marketing", False, "twilio:21610"),
        ("u-stop", "sms", "transactional", False, "twilio:21610"),
    ]
    assert query(
        ws,
        "SELECT user_id, campaign, json_extract_string(properties, '$.mcrm_id') FROM "
        "message_events WHERE event_id = 'twilio:SM2a1b2c3d4e5f60718293a4b5c6d7e8f9:failed'",
    ) == [("u-stop", "birthday_sms", "k-stop")]


def test_twilio_without_a_time_column_is_an_error(ws: WS, importer: Importer) -> None:
    from mcrm.errors import DataError

    ws.write("cb.csv", "MessageSid,MessageStatus\nSM1,delivered\n")
    with pytest.raises(DataError, match="no time column"):
        importer(ws, "message-events", ["cb.csv"], preset="twilio", now=NOW)


# ---------------------------------------------------------------------------------------------
# Expo


def test_expo_receipts(ws: WS, importer: Importer, query: Query) -> None:
    t = dt.datetime(2026, 1, 1)
    with open_db(ws.ws, write=True) as con:
        con.execute(
            "INSERT INTO devices (user_id, device_id, platform, push_token, push_provider) VALUES "
            "('u4', 'd4', 'ios', 'ExponentPushToken[token-4]', 'expo'), "
            "('u2', 'd2', 'ios', 'ExponentPushToken[dead-token-2]', 'expo')"
        )
    seed_outbox(
        ws,
        [
            ("k1", "cart", "u1", "push", "0c6f2e1a-1111-4a0b-9c1d-000000000001", None),
            (
                "k4",
                "cart",
                "u4",
                "push",
                "0c6f2e1a-1111-4a0b-9c1d-000000000004",
                sha("push", "ExponentPushToken[token-4]"),
            ),
        ],
    )
    name = copy(ws, "expo_receipts.json")
    r = importer(ws, "message-events", [name], preset="expo", now=NOW)
    assert summary(r) == {"message-events": (5, 4, 0, 1), "invalid-addresses": (2, 2, 0, 0)}
    rows = query(
        ws,
        "SELECT message_id, type, user_id, json_extract_string(properties, '$.error') FROM "
        "message_events WHERE provider = 'expo' ORDER BY message_id",
    )
    assert [(m[-1], t_, u, e) for m, t_, u, e in rows] == [
        ("1", "delivered", "u1", None),
        ("2", "failed", None, "DeviceNotRegistered"),
        ("3", "failed", None, "MessageTooBig"),
        ("4", "failed", "u4", "DeviceNotRegistered"),
    ]
    # the token from the receipt, or the outbox row's address hash when it names none
    assert sorted(
        query(ws, "SELECT address_hash, reason, source_code FROM invalid_addresses")
    ) == sorted(
        [
            (
                sha("push", "ExponentPushToken[dead-token-2]"),
                "unregistered",
                "expo:DeviceNotRegistered",
            ),
            (
                sha("push", "ExponentPushToken[token-4]"),
                "unregistered",
                "expo:DeviceNotRegistered",
            ),
        ]
    )
    assert query(
        ws, "SELECT device_id FROM devices WHERE invalidated_at IS NOT NULL ORDER BY 1"
    ) == [
        ("d2",),
        ("d4",),
    ]
    assert [g[1:3] for g in rejects(ws, query)] == [
        (
            "type",
            "type: the receipt of ticket 0c6f2e1a-1111-4a0b-9c1d-000000000005 has status "
            "'pending' (expected ok or error)",
        )
    ]
    del t
    no_pii(ws, query)


def test_expo_jsonl_rejects_and_reimport(ws: WS, importer: Importer, query: Query) -> None:
    copy(ws, "expo_receipts.json")
    importer(ws, "message-events", ["expo_receipts.json"], preset="expo", now=NOW)
    name = copy(ws, "expo_receipts.jsonl")
    r = importer(ws, "message-events", [name], preset="expo", now=NOW)
    # 3 receipts (one already imported), a failed request, a non-object data, broken JSON
    assert summary(r)["message-events"] == (6, 2, 1, 3)
    got = [(g[0], g[2]) for g in rejects(ws, query) if g[0] != 1]
    assert got == [
        (3, "data: the receipts request failed: TOO_MANY_REQUESTS"),
        (4, 'data: not an Expo getReceipts response (no "data" object of ticket id -> receipt)'),
        (5, "invalid JSON (line 5)"),
    ]
    again = importer(ws, "message-events", [name], preset="expo", now=NOW)
    assert summary(again)["message-events"] == (6, 0, 3, 3)
    no_pii(ws, query)


def test_presets_are_for_message_events(ws: WS, importer: Importer) -> None:
    from mcrm.errors import UsageError

    copy(ws, "sendgrid_events.json")
    with pytest.raises(UsageError, match="preset sendgrid imports message-events"):
        importer(ws, "events", ["sendgrid_events.json"], preset="sendgrid", now=NOW)


# ---------------------------------------------------------------------------------------------
# Every documented value; the layouts of a SendGrid webhook log


def sg(event: str, n: int, **extra: Any) -> dict[str, Any]:
    """A SendGrid event at 2025-11-15 10:00 UTC + n s."""
    return {
        "email": f"p{n}@example.com",
        "timestamp": 1763200800 + n,
        "event": event,
        "sg_event_id": f"ev-{n}",
        "sg_message_id": f"MSG{n}.filter",
        **extra,
    }


def test_sendgrid_every_documented_event_is_accepted(
    ws: WS, importer: Importer, query: Query
) -> None:
    """The Event Webhook reference's events: delivery (processed, dropped, delivered, deferred,
    bounce incl. type blocked), engagement (open, click, spamreport, unsubscribe,
    group_unsubscribe, group_resubscribe) and account (account_status_change)."""
    from mcrm.ingest.message_presets import SENDGRID_ACCOUNT_EVENTS, SENDGRID_TYPES

    documented = [
        "processed",
        "dropped",
        "delivered",
        "deferred",
        "bounce",
        "open",
        "click",
        "spamreport",
        "unsubscribe",
        "group_unsubscribe",
        "group_resubscribe",
    ]
    assert sorted(SENDGRID_TYPES) == sorted(documented)
    assert SENDGRID_ACCOUNT_EVENTS == ("account_status_change",)
    events = [sg(e, i) for i, e in enumerate(documented)]
    events.append(sg("bounce", 20, type="blocked"))
    # an account event names no recipient and no message: its `type` says what happened
    events.append(
        {"event": "account_status_change", "type": "compliance_suspend", "timestamp": 1763200900}
    )
    events.append({"event": "ACCOUNT_STATUS_CHANGE", "type": "compliance_reactivate"})
    ws.write("all.jsonl", "".join(json.dumps(e) + "\n" for e in events))
    r = importer(ws, "message-events", ["all.jsonl"], preset="sendgrid", now=NOW)
    assert summary(r)["message-events"] == (12, 12, 0, 0)
    assert rejects(ws, query) == []
    warnings = [w for f in r.files for w in f.warnings]
    assert any(
        "2 account_status_change event(s) skipped" in w
        and "compliance_reactivate x1, compliance_suspend x1" in w
        for w in warnings
    ), warnings
    types = query(
        ws,
        "SELECT json_extract_string(properties, '$.vendor_event'), type, count(*) "
        "FROM message_events GROUP BY ALL ORDER BY 1, 2",
    )
    assert types == [
        ("bounce", "bounced", 2),
        ("click", "clicked", 1),
        ("deferred", "deferred", 1),
        ("delivered", "delivered", 1),
        ("dropped", "dropped", 1),
        ("group_resubscribe", "resubscribed", 1),
        ("group_unsubscribe", "unsubscribed", 1),
        ("open", "opened", 1),
        ("processed", "sent", 1),
        ("spamreport", "spam_report", 1),
        ("unsubscribe", "unsubscribed", 1),
    ]


def test_sendgrid_unknown_event_names_the_documented_ones(
    ws: WS, importer: Importer, query: Query
) -> None:
    ws.write("x.jsonl", json.dumps(sg("bounced", 1)) + "\n")
    r = importer(ws, "message-events", ["x.jsonl"], preset="sendgrid", now=NOW)
    assert summary(r)["message-events"] == (1, 0, 0, 1)
    ((line, col, reason, _raw),) = rejects(ws, query)
    assert (line, col) == (1, "type")
    assert "unknown SendGrid event 'bounced'" in reason
    assert "group_resubscribe, account_status_change)" in reason


def test_twilio_every_documented_status_is_accepted(
    ws: WS, importer: Importer, query: Query
) -> None:
    """Twilio's MessageStatus values (Message resource): outbound ones map to a type, the
    inbound ones (receiving, received) are skipped with a warning; none is rejected."""
    from mcrm.ingest.message_presets import TWILIO_INBOUND, TWILIO_TYPES

    documented = (
        "queued sending sent failed delivered undelivered receiving received accepted "
        "scheduled read partially_delivered canceled"
    ).split()
    assert sorted([*TWILIO_TYPES, *TWILIO_INBOUND]) == sorted(documented)
    rows = [
        {
            "timestamp": 1763200800 + i,
            "MessageSid": f"SM{i:032d}",
            "MessageStatus": s,
            "To": "+420601111111",
        }
        for i, s in enumerate(documented)
    ]
    ws.write("cb.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    r = importer(ws, "message-events", ["cb.jsonl"], preset="twilio", now=NOW)
    assert summary(r)["message-events"] == (11, 11, 0, 0)
    assert rejects(ws, query) == []
    assert any("2 inbound message(s)" in w for f in r.files for w in f.warnings)
    got: dict[str, str] = dict(
        query(
            ws,
            "SELECT json_extract_string(properties, '$.vendor_event'), type FROM message_events",
        )
    )
    assert got == {
        "accepted": "processed",
        "scheduled": "processed",
        "queued": "processed",
        "sending": "processed",
        "sent": "sent",  # no outbox row: another tool's SMS
        "delivered": "delivered",
        "partially_delivered": "delivered",
        "undelivered": "failed",
        "failed": "failed",
        "read": "opened",
        "canceled": "dropped",
    }


def test_sendgrid_lines_of_arrays(ws: WS, importer: Importer, query: Query) -> None:
    """A log of the webhook's request bodies: one JSON array of events per line. Each bad line
    or element is rejected at its line (with the element), the rest of its array is kept."""
    lines = [
        json.dumps([sg("delivered", 1), sg("open", 2)]),
        json.dumps([sg("unsubscribe", 3), 5, sg("opne", 4), sg("click", 5, timestamp="soon")]),
        '[{"event": "delivered", "email": "x@example.com"',  # cut off
        json.dumps(sg("delivered", 6)),  # a line holding one object is fine too
        '"just a string"',
        "[]",
        "",
        json.dumps([sg("spamreport", 7), sg("delivered", 8, timestamp=1763200800 + 10**8)]),
    ]
    for name in ("log.json", "log.jsonl"):
        w = ws.root / name
        w.write_text("\n".join(lines) + "\n")
    r = importer(ws, "message-events", ["log.json"], preset="sendgrid", now=NOW)
    # 11 records (elements, or lines that are not an array) read: 5 kept, 6 rejected
    assert summary(r)["message-events"] == (11, 5, 0, 6)
    got = [(g[0], g[1], g[2]) for g in rejects(ws, query)]
    assert got == [
        (2, None, "not a JSON object (line 2, element 2)"),
        (2, "type", got[1][2]),
        (2, "timestamp", "timestamp: cannot read 'soon' as a timestamp (element 4)"),
        (3, None, "invalid JSON (line 3)"),
        (5, None, "not a JSON object or array of objects (line 5)"),
        (8, "timestamp", got[5][2]),
    ]
    assert got[1][2].startswith("type: unknown SendGrid event 'opne'")
    assert got[1][2].endswith("(element 3)")
    assert "more than a day in the future" in got[5][2] and got[5][2].endswith("(element 2)")
    assert sorted(r[0] for r in query(ws, "SELECT event_id FROM message_events")) == [
        "ev-1",
        "ev-2",
        "ev-3",
        "ev-6",
        "ev-7",
    ]
    # only the events that passed have side effects: the unsubscribe and the spam report
    assert sorted(r[0] for r in query(ws, "SELECT source FROM consents")) == [
        "sendgrid:spamreport",
        "sendgrid:unsubscribe",
    ]
    # the same file as .jsonl: the same events (all duplicates now), the same rejects
    again = importer(ws, "message-events", ["log.jsonl"], preset="sendgrid", now=NOW)
    assert summary(again)["message-events"] == (11, 0, 5, 6)
    # reasons name no address; `raw` keeps the rejected line or element as it was (to fix it)
    assert not [g for g in rejects(ws, query) if "@" in g[2]]
    raws = [g[3] for g in rejects(ws, query) if g[0] == 3]
    assert raws == [lines[2], lines[2]]


def test_sendgrid_json_layouts(ws: WS, importer: Importer, query: Query) -> None:
    """A `.json` log of arrays whose first line is broken is still read line by line; a
    pretty-printed array that does not parse is an error naming the file."""
    from mcrm.errors import DataError

    ws.write("cut.json", '[{"event": "open"\n' + json.dumps([sg("delivered", 1)]) + "\n")
    r = importer(ws, "message-events", ["cut.json"], preset="sendgrid", now=NOW)
    assert summary(r)["message-events"] == (2, 1, 0, 1)
    assert [(g[0], g[2]) for g in rejects(ws, query)] == [(1, "invalid JSON (line 1)")]
    ws.write("pretty.json", "[\n  " + json.dumps(sg("delivered", 2)) + ',\n  {"event":\n')
    with pytest.raises(DataError, match="pretty.json is not a valid JSON array"):
        importer(ws, "message-events", ["pretty.json"], preset="sendgrid", now=NOW)


def test_sendgrid_null_elements_are_rejected_not_lost(
    ws: WS, importer: Importer, query: Query
) -> None:
    """A `null` in a line's array is an element that is not an object: rejected at its line and
    element like any other, counted as read, never dropped without a trace (as a `null` line
    and a `null` in one array document already were)."""
    lines = [
        json.dumps([None, sg("delivered", 1), None]),
        json.dumps([sg("open", 2), None, sg("opne", 3)]),
    ]
    ws.write("nulls.jsonl", "\n".join(lines) + "\n")
    r = importer(ws, "message-events", ["nulls.jsonl"], preset="sendgrid", now=NOW)
    assert summary(r)["message-events"] == (6, 2, 0, 4)
    got = [(g[0], g[2], g[3]) for g in rejects(ws, query)]
    assert got[:3] == [
        (1, "not a JSON object (line 1, element 1)", "null"),
        (1, "not a JSON object (line 1, element 3)", "null"),
        (2, "not a JSON object (line 2, element 2)", "null"),
    ]
    assert got[3][0] == 2 and got[3][1].startswith("type: unknown SendGrid event 'opne'")
    assert got[3][1].endswith("(element 3)")
    assert sorted(r[0] for r in query(ws, "SELECT event_id FROM message_events")) == [
        "ev-1",
        "ev-2",
    ]
