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
        "message-events": (14, 8, 0, 6),
        "consents": (0, 0, 0, 0),
        "invalid-addresses": (2, 2, 0, 0),
    }
    assert any("STOP" in w for f in r.files for w in f.warnings)
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
        (13, "type"),
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
