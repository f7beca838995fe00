"""The Expo push adapter against the Expo fake: one token per message object and tickets
mapped 1:1 to rows, gzip for bodies over 1 KB, the optional access token, every ticket error
and request-level error classified as reference/providers.md §2.2 says, mixed projects split
and resent, faults, and receipts (late DeviceNotRegistered -> invalid_recipient; chunks of
300; a failed poll reported as such)."""

from __future__ import annotations

import email.utils
import socket
from typing import Any

import pytest

from mcrm.dispatch.core import Adapter, Outbound, Outcome
from mcrm.dispatch.expo import POLL_FAILURE, RECEIPT_CHUNK, Expo
from mcrm.errors import ConfigError
from tests.fakes.base import Delay, FakeClock
from tests.fakes.expo import ExpoFake


def tok(inner: str) -> str:
    return f"ExponentPushToken[{inner}]"


def msg(i: int, token: str, **parts: str) -> Outbound:
    return Outbound(
        outbox_id=i,
        idempotency_key=f"00000000-0000-5000-8000-{i:012d}",
        campaign="spring",
        occurrence="2026-03-02T10:00:00Z",
        user_id=f"u-{i}",
        channel="push",
        variant="a",
        address=token,
        parts=parts or {"title": "Weekend sale", "body": "20% off", "deeplink": "shop://sale"},
    )


def make(fake: ExpoFake, **opts: Any) -> Expo:
    kw = opts.pop("kw", {})
    return Expo("expo", {"base_url": fake.url, **opts}, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_tickets_map_one_to_one_and_the_wire_format(expo_fake: ExpoFake) -> None:
    uuid_token = "0f8fad5b-d9cb-469f-a165-70867728950e"
    a = make(expo_fake, ttl=3600, channel_id="promo")
    res = a.send([msg(1, tok("a")), msg(2, "ExpoPushToken[b]"), msg(3, uuid_token)])
    a.close()
    assert [r.outcome for r in res] == [Outcome.SENT] * 3
    assert [r.outbox_id for r in res] == [1, 2, 3]
    assert len({r.provider_message_id for r in res}) == 3
    assert set(expo_fake.receipt_ids()) == {r.provider_message_id for r in res}
    (req,) = expo_fake.requests_to("send")
    assert req.path == "/--/api/v2/push/send"
    assert "authorization" not in req.headers
    assert "content-encoding" not in req.headers  # small: not gzipped
    body = req.parsed
    assert [m["to"] for m in body] == [tok("a"), "ExpoPushToken[b]", uuid_token]
    assert body[0] == {
        "to": tok("a"),
        "title": "Weekend sale",
        "body": "20% off",
        "data": {"mcrm_id": msg(1, "x").idempotency_key, "deeplink": "shop://sale"},
        "sound": "default",
        "priority": "high",
        "ttl": 3600,
        "channelId": "promo",
    }


def test_large_bodies_are_gzipped_and_split_at_100(expo_fake: ExpoFake) -> None:
    a = make(expo_fake)
    assert a.max_batch == 100
    res = a.send([msg(i, tok(f"t{i}")) for i in range(150)])
    a.close()
    assert [r.outcome for r in res] == [Outcome.SENT] * 150
    reqs = expo_fake.requests_to("send")
    assert [len(e.parsed) for e in reqs] == [100, 50]
    assert all(e.headers.get("content-encoding") == "gzip" for e in reqs)
    assert all(e.raw != e.body and e.raw[:2] == b"\x1f\x8b" for e in reqs)


def test_access_token_is_sent_as_bearer(fake_factory: Any) -> None:
    fake: ExpoFake = fake_factory("expo", access_token="enhanced-s3cret")
    a = make(fake, access_token="enhanced-s3cret")
    assert a.send([msg(1, tok("a"))])[0].outcome is Outcome.SENT
    a.close()
    assert fake.last.headers["authorization"] == "Bearer enhanced-s3cret"
    b = make(fake)
    res = b.send([msg(1, tok("a")), msg(2, tok("b"))])
    b.close()
    assert [(r.outcome, r.error_code) for r in res] == [(Outcome.AUTH, "UNAUTHORIZED")] * 2


def test_ticket_errors_are_classified_in_order(expo_fake: ExpoFake) -> None:
    batch = [
        msg(1, tok("ok-1")),
        msg(2, tok("unregistered-2")),
        msg(3, tok("toobig-3")),
        msg(4, tok("ratelimited-4")),
        msg(5, tok("badcreds-5")),
        msg(6, tok("ok-6")),
    ]
    a = make(expo_fake)
    res = a.send(batch)
    a.close()
    assert [(r.outbox_id, r.outcome, r.error_code, r.mark_reason) for r in res] == [
        (1, Outcome.SENT, None, None),
        (2, Outcome.INVALID_RECIPIENT, "DeviceNotRegistered", "unregistered"),
        (3, Outcome.PERMANENT, "MessageTooBig", None),
        (4, Outcome.RETRY, "MessageRateExceeded", None),
        (5, Outcome.AUTH, "InvalidCredentials", None),
        (6, Outcome.SENT, None, None),
    ]
    assert res[1].mark == "invalid"
    for r, m in zip(res, batch, strict=True):
        assert m.address not in (r.error_detail or "")  # no tokens in stored texts
    assert "<token>" in (res[1].error_detail or "")


def test_a_non_expo_token_never_goes_on_the_wire(expo_fake: ExpoFake) -> None:
    a = make(expo_fake)
    res = a.send([msg(1, "fcm:abc123"), msg(2, tok("ok"))])
    a.close()
    assert [(r.outcome, r.mark_reason) for r in res] == [
        (Outcome.INVALID_RECIPIENT, "malformed"),
        (Outcome.SENT, None),
    ]
    assert [m["to"] for m in expo_fake.last.parsed] == [tok("ok")]


def test_mixed_projects_are_split_and_resent(fake_factory: Any) -> None:
    fake: ExpoFake = fake_factory("expo", projects={tok("other-1"): "@other/app"})
    a = make(fake)
    res = a.send([msg(1, tok("a")), msg(2, tok("other-1")), msg(3, tok("b"))])
    a.close()
    assert [r.outcome for r in res] == [Outcome.SENT] * 3
    reqs = fake.requests_to("send")
    assert [e.status for e in reqs] == [400, 200, 200]
    assert sorted(len(e.parsed) for e in reqs[1:]) == [1, 2]


def test_request_level_429_and_503_with_retry_after(expo_fake: ExpoFake) -> None:
    t0 = 1_800_000_000.0
    expo_fake.script(
        (503, {"Retry-After": "5"}),
        (503, {"Retry-After": email.utils.formatdate(t0 + 45, usegmt=True)}),
        (429, {"Retry-After": "30"}),
        429,
    )
    a = make(expo_fake, kw={"clock": lambda: t0})
    got = [a.send([msg(1, tok("a")), msg(2, tok("b"))]) for _ in range(4)]
    a.close()
    assert [[(r.outcome, r.error_code, r.retry_after_s) for r in res] for res in got] == [
        [(Outcome.RETRY, "SERVICE_UNAVAILABLE", 5.0)] * 2,
        [(Outcome.RETRY, "SERVICE_UNAVAILABLE", 45.0)] * 2,
        [(Outcome.THROTTLED, "TOO_MANY_REQUESTS", 30.0)] * 2,
        [(Outcome.THROTTLED, "TOO_MANY_REQUESTS", 1.0)] * 2,  # no header: Expo's 1 s floor
    ]


@pytest.mark.parametrize(
    ("item", "outcome", "code"),
    [
        ((400, {}, {"errors": [{"code": "VALIDATION_ERROR", "message": "x"}]}), "permanent", None),
        (
            (200, {}, {"errors": [{"code": "INTERNAL_SERVER_ERROR", "isTransient": True}]}),
            "retry",
            "INTERNAL_SERVER_ERROR",
        ),
        ((200, {}, {"errors": [{"code": "SOMETHING_NEW", "message": "?"}]}), "permanent", None),
        ((200, {}, {"data": [{"status": "ok", "id": "only-one"}]}), "ambiguous", None),
        ((413, {}, {"errors": [{"code": "PAYLOAD_TOO_LARGE"}]}), "permanent", None),
    ],
)
def test_request_level_errors(expo_fake: ExpoFake, item: Any, outcome: str, code: Any) -> None:
    expo_fake.script(item)
    a = make(expo_fake)
    res = a.send([msg(1, tok("a")), msg(2, tok("b"))])
    a.close()
    assert {r.outcome.value for r in res} == {outcome}
    if code:
        assert {r.error_code for r in res} == {code}


def test_drop_after_body_is_ambiguous_for_the_whole_batch(expo_fake: ExpoFake) -> None:
    expo_fake.script("drop_after_body")
    a = make(expo_fake)
    res = a.send([msg(1, tok("a")), msg(2, tok("b"))])
    a.close()
    assert [(r.outcome, r.error_code) for r in res] == [(Outcome.AMBIGUOUS, "connection_lost")] * 2
    assert len(expo_fake.sent) == 2  # Expo took them


def test_read_timeout_is_ambiguous_and_refused_is_retry(expo_fake: ExpoFake) -> None:
    expo_fake.script(Delay(3.0))
    a = make(expo_fake, timeout=0.3)
    (r,) = a.send([msg(1, tok("a"))])
    a.close()
    assert (r.outcome, r.error_code) == (Outcome.AMBIGUOUS, "read_timeout")
    b = Expo("expo", {"base_url": f"http://127.0.0.1:{free_port()}"})
    (r,) = b.send([msg(1, tok("a"))])
    b.close()
    assert (r.outcome, r.error_code) == (Outcome.RETRY, "connect_failed")


def test_receipts_settle_late_unregistered_tokens(
    fake_factory: Any, fake_clock: FakeClock
) -> None:
    fake: ExpoFake = fake_factory("expo", clock=fake_clock, receipt_delay_s=900)
    a = make(fake)
    batch = [msg(1, tok("ok-1")), msg(2, tok("late-unregistered-2")), msg(3, tok("pending-3"))]
    tickets = a.send(batch)
    assert [r.outcome for r in tickets] == [Outcome.SENT] * 3  # ok tickets: accepted
    ids = [str(r.provider_message_id) for r in tickets]
    oids = {t: m.outbox_id for t, m in zip(ids, batch, strict=True)}
    assert a.check_receipts(ids, oids) == {}  # none ready yet
    fake_clock.advance(901)
    got = a.check_receipts(ids, oids)
    assert set(got) == set(ids[:2])  # pending-3 is never ready
    ok, dead = got[ids[0]], got[ids[1]]
    assert (ok.outbox_id, ok.outcome, ok.provider_message_id) == (1, Outcome.SENT, ids[0])
    assert (dead.outbox_id, dead.outcome, dead.error_code) == (
        2,
        Outcome.INVALID_RECIPIENT,
        "DeviceNotRegistered",
    )
    assert (dead.mark, dead.mark_reason) == ("invalid", "unregistered")
    assert tok("late-unregistered-2") not in (dead.error_detail or "")
    assert fake.last.parsed == {"ids": ids}
    fake_clock.advance(24 * 3600)  # Expo deletes receipts after a day
    assert a.check_receipts(ids) == {}
    a.close()


def test_receipts_are_polled_in_chunks_of_300(expo_fake: ExpoFake) -> None:
    a = make(expo_fake)
    assert a.check_receipts([f"ticket-{i}" for i in range(650)]) == {}
    a.close()
    reqs = expo_fake.requests_to("receipts")
    assert RECEIPT_CHUNK == 300
    assert [len(e.parsed["ids"]) for e in reqs] == [300, 300, 50]
    assert reqs[0].headers.get("content-encoding") == "gzip"


def test_a_failed_receipt_poll_is_reported_as_such(expo_fake: ExpoFake) -> None:
    expo_fake.script(503, 429, route="receipts")
    a = make(expo_fake)
    got = a.check_receipts(["t1", "t2"], {"t1": 11, "t2": 12})
    assert {(k, r.outbox_id, r.outcome) for k, r in got.items()} == {
        ("t1", 11, Outcome.RETRY),
        ("t2", 12, Outcome.RETRY),
    }
    assert {r.error_code for r in got.values()} == {POLL_FAILURE + "SERVICE_UNAVAILABLE"}
    got = a.check_receipts(["t1"])
    assert got["t1"].outcome is Outcome.THROTTLED
    assert got["t1"].error_code == POLL_FAILURE + "TOO_MANY_REQUESTS"
    a.close()


@pytest.mark.parametrize(
    ("opts", "words"),
    [
        ({"colour": "blue"}, "unknown option"),
        ({"priority": "urgent"}, "priority"),
        ({"ttl": "soon"}, "ttl"),
        ({"base_url": "ftp://x"}, "must be an http(s) URL"),
        ({"base_url": "https://"}, "must be an http(s) URL"),
        ({"base_url": "https://h:99999"}, "base_url is not a valid URL"),
        ({"base_url": "https://a b"}, "base_url is not a valid URL"),
    ],
)
def test_config_errors(opts: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as e:
        Expo("expo1", opts)
    assert words in e.value.message


def test_satisfies_the_adapter_contract(expo_fake: ExpoFake) -> None:
    a: Adapter = make(expo_fake)  # checked by mypy
    assert (a.name, a.channel, a.max_batch, a.dedupes) == ("expo", "push", 100, False)
    assert a.send([]) == []
    a.close()
    assert expo_fake.log == []
