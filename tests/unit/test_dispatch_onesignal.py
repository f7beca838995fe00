"""The OneSignal adapter against the OneSignal fake: `Authorization: Key`, the app id, one
notification per batch of equal content with an idempotency key derived from the members'
keys (reference/providers.md §1.5, §2.3), invalid aliases / subscription ids settled per row,
every answer classified, and a resend after an ambiguous or failed request deduplicated by
the fake on the same key."""

from __future__ import annotations

import email.utils
import hashlib
import json
import socket
import uuid
from typing import Any

import pytest

from mcrm.campaigns.plan import MCRM_NS
from mcrm.dispatch.core import Adapter, Outbound, Outcome, batch_key
from mcrm.dispatch.onesignal import OneSignal, idempotency_key
from mcrm.errors import ConfigError
from tests.fakes.base import Delay
from tests.fakes.onesignal import OneSignalFake


def msg(
    i: int, user: str | None = None, address: str = "", bkey: str | None = None, **parts: str
) -> Outbound:
    return Outbound(
        outbox_id=i,
        idempotency_key=f"00000000-0000-5000-8000-{i:012d}",
        campaign="spring",
        occurrence="2026-03-02T10:00:00Z",
        user_id=user or f"u-{i}",
        channel="push",
        variant="a",
        address=address or f"sub-{i}",
        parts=parts or {"title": "Weekend sale", "body": "20% off", "deeplink": "shop://sale"},
        batch_key=bkey,
    )


def make(fake: OneSignalFake, **opts: Any) -> OneSignal:
    kw = opts.pop("kw", {})
    c = fake.credentials()
    return OneSignal(
        "onesignal",
        {"base_url": c["base_url"], "app_id": c["app_id"], "api_key": c["api_key"], **opts},
        **kw,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_one_notification_per_batch_and_the_wire_format(onesignal_fake: OneSignalFake) -> None:
    batch = [msg(3), msg(1), msg(2)]
    a = make(onesignal_fake, ttl="1h", priority="high")
    assert (a.max_batch, a.dedupes, a.channel) == (2000, True, "push")
    res = a.send(batch)
    a.close()
    (note,) = onesignal_fake.notifications
    assert [(r.outbox_id, r.outcome, r.provider_message_id) for r in res] == [
        (3, Outcome.SENT, note["id"]),
        (1, Outcome.SENT, note["id"]),
        (2, Outcome.SENT, note["id"]),
    ]
    req = onesignal_fake.last
    assert req.path == "/notifications" and req.request.query == {"c": ["push"]}
    assert req.headers["authorization"] == f"Key {onesignal_fake.api_key}"
    body = req.parsed
    keys = [m.idempotency_key for m in batch]
    bkey = str(uuid.uuid5(MCRM_NS, json.dumps(sorted(keys))))
    assert batch_key(keys) == bkey
    want_key = str(uuid.UUID(bytes=hashlib.sha256(bkey.encode()).digest()[:16], version=4))
    assert body["idempotency_key"] == idempotency_key(bkey) == want_key
    assert uuid.UUID(body["idempotency_key"]).version == 4
    assert body == {
        "app_id": onesignal_fake.app_id,
        "target_channel": "push",
        "include_aliases": {"external_id": ["u-3", "u-1", "u-2"]},
        "headings": {"en": "Weekend sale"},
        "contents": {"en": "20% off"},
        "data": {"mcrm_batch": bkey, "deeplink": "shop://sale"},
        "ttl": 3600,
        "priority": 10,
        "idempotency_key": want_key,
    }


def test_the_key_comes_from_the_groups_own_members(onesignal_fake: OneSignalFake) -> None:
    """Whatever batch the dispatcher claims a retried group in, the group keeps its key."""
    given = "6f2c1f44-0a51-5b8e-9d0e-7e1f3c2a9b10"
    a = make(onesignal_fake)
    a.send([msg(1, bkey=given), msg(2, bkey=given)])
    a.close()
    own = batch_key([msg(1).idempotency_key, msg(2).idempotency_key])
    assert onesignal_fake.last.parsed["idempotency_key"] == idempotency_key(own)
    assert onesignal_fake.last.parsed["data"]["mcrm_batch"] == own


def test_a_single_message_carries_its_own_key(onesignal_fake: OneSignalFake) -> None:
    a = make(onesignal_fake)
    a.send([msg(1)])
    a.close()
    assert onesignal_fake.last.parsed["data"]["mcrm_id"] == msg(1).idempotency_key


def test_different_content_goes_in_separate_requests(onesignal_fake: OneSignalFake) -> None:
    a = make(onesignal_fake)
    res = a.send(
        [msg(1, title="A", body="a"), msg(2, title="B", body="b"), msg(3, title="A", body="a")]
    )
    a.close()
    reqs = onesignal_fake.requests_to("send")
    assert [e.parsed["include_aliases"]["external_id"] for e in reqs] == [["u-1", "u-3"], ["u-2"]]
    assert len({e.parsed["idempotency_key"] for e in reqs}) == 2
    assert [r.outcome for r in res] == [Outcome.SENT] * 3
    assert res[0].provider_message_id == res[2].provider_message_id != res[1].provider_message_id


def test_invalid_aliases_are_invalid_recipients_not_dead_addresses(
    onesignal_fake: OneSignalFake,
) -> None:
    a = make(onesignal_fake)
    res = a.send([msg(1), msg(2, user="nosub-2"), msg(3)])
    a.close()
    assert [(r.outcome, r.error_code, r.mark) for r in res] == [
        (Outcome.SENT, None, None),
        (Outcome.INVALID_RECIPIENT, "no_subscription", None),
        (Outcome.SENT, None, None),
    ]


def test_invalid_subscription_ids_are_marked(onesignal_fake: OneSignalFake) -> None:
    a = make(onesignal_fake, target="subscription_id")
    res = a.send([msg(1, address="sub-live-1"), msg(2, address="dead-2")])
    a.close()
    assert [(r.outcome, r.error_code, r.mark, r.mark_reason) for r in res] == [
        (Outcome.SENT, None, None, None),
        (Outcome.INVALID_RECIPIENT, "invalid_player_ids", "invalid", "subscription_invalid"),
    ]
    body = onesignal_fake.last.parsed
    assert body["include_subscription_ids"] == ["sub-live-1", "dead-2"]
    assert "include_aliases" not in body and "target_channel" not in body


def test_nobody_reachable_creates_nothing(onesignal_fake: OneSignalFake) -> None:
    a = make(onesignal_fake)
    res = a.send([msg(1, user="nosub-1"), msg(2, user="nosub-2")])
    a.close()
    assert [(r.outcome, r.error_code, r.mark) for r in res] == [
        (Outcome.INVALID_RECIPIENT, "no_subscription", None)
    ] * 2
    assert onesignal_fake.notifications == []


def test_an_ambiguous_batch_resent_with_the_same_key_is_deduplicated(
    onesignal_fake: OneSignalFake,
) -> None:
    onesignal_fake.script("drop_after_body")
    batch = [msg(1), msg(2, user="nosub-2")]
    a = make(onesignal_fake)
    first = a.send(batch)
    assert [(r.outcome, r.error_code) for r in first] == [
        (Outcome.AMBIGUOUS, "connection_lost")
    ] * 2
    again = a.send(batch)  # what recovery does for a lane that dedupes
    a.close()
    (note,) = onesignal_fake.notifications  # created once, by the dropped request
    assert onesignal_fake.replays == 1
    assert [(r.outcome, r.provider_message_id) for r in again] == [
        (Outcome.SENT, note["id"]),
        (Outcome.INVALID_RECIPIENT, None),  # the first answer, replayed verbatim
    ]
    keys = {e.parsed["idempotency_key"] for e in onesignal_fake.requests_to("send")}
    assert len(keys) == 1


def test_5xx_is_retry_and_the_resend_creates_one_notification(
    onesignal_fake: OneSignalFake,
) -> None:
    onesignal_fake.script((503, {"Retry-After": "12"}))
    a = make(onesignal_fake)
    res = a.send([msg(1), msg(2)])
    assert [(r.outcome, r.retry_after_s) for r in res] == [(Outcome.RETRY, 12.0)] * 2
    assert [r.outcome for r in a.send([msg(1), msg(2)])] == [Outcome.SENT] * 2
    assert [r.outcome for r in a.send([msg(2), msg(1)])] == [Outcome.SENT] * 2  # same members
    a.close()
    assert len(onesignal_fake.notifications) == 1
    assert onesignal_fake.replays == 1


def test_scripted_503_503_429_with_retry_after(onesignal_fake: OneSignalFake) -> None:
    t0 = 1_800_000_000.0
    onesignal_fake.script(
        503,
        (503, {"Retry-After": email.utils.formatdate(t0 + 100, usegmt=True)}),
        (429, {"Retry-After": "30"}),
        (429, {"Retry-After": email.utils.formatdate(t0 + 250, usegmt=True)}),
    )
    a = make(onesignal_fake, kw={"clock": lambda: t0})
    got = [a.send([msg(1)])[0] for _ in range(4)]
    a.close()
    assert [(r.outcome, r.error_code, r.retry_after_s) for r in got] == [
        (Outcome.RETRY, "503", None),
        (Outcome.RETRY, "503", 100.0),
        (Outcome.THROTTLED, "429", 30.0),
        (Outcome.THROTTLED, "429", 250.0),
    ]


def test_auth_and_configuration_errors_stop_the_lane(onesignal_fake: OneSignalFake) -> None:
    a = make(onesignal_fake, api_key="os_v2_app_wrong")
    assert [(r.outcome, r.error_code) for r in a.send([msg(1), msg(2)])] == [
        (Outcome.AUTH, "403")
    ] * 2
    a.close()
    b = make(onesignal_fake, app_id=str(uuid.uuid4()))
    assert b.send([msg(1)])[0].outcome is Outcome.AUTH  # app_id not found
    b.close()


def test_bad_request_is_permanent(onesignal_fake: OneSignalFake) -> None:
    a = make(onesignal_fake)
    (r,) = a.send([msg(1, title="Only a title")])  # no English content
    a.close()
    assert (r.outcome, r.error_code) == (Outcome.PERMANENT, "400")
    assert "English language content" in (r.error_detail or "")


def test_read_timeout_is_ambiguous_and_refused_is_retry(onesignal_fake: OneSignalFake) -> None:
    onesignal_fake.script(Delay(3.0))
    a = make(onesignal_fake, timeout=0.3)
    (r,) = a.send([msg(1)])
    a.close()
    assert (r.outcome, r.error_code) == (Outcome.AMBIGUOUS, "read_timeout")
    b = OneSignal(
        "onesignal",
        {
            "base_url": f"http://127.0.0.1:{free_port()}",
            "app_id": onesignal_fake.app_id,
            "api_key": "k",
        },
    )
    (r,) = b.send([msg(1)])
    b.close()
    assert (r.outcome, r.error_code) == (Outcome.RETRY, "connect_failed")


@pytest.mark.parametrize(
    ("opts", "words"),
    [
        ({"app_id": None}, "needs app_id"),
        ({"app_id": "my-app"}, "UUID"),
        ({"target": "email"}, "target"),
        ({"batch": 5000}, "batch"),
        ({"colour": "blue"}, "unknown option"),
        ({"base_url": "ftp://x"}, "must be an http(s) URL"),
        ({"base_url": "https://"}, "must be an http(s) URL"),
        ({"base_url": "https://h:99999"}, "base_url is not a valid URL"),
        ({"base_url": "https://a b"}, "base_url is not a valid URL"),
    ],
)
def test_config_errors(opts: dict[str, Any], words: str) -> None:
    full = {"app_id": "8f5e2d3c-1b4a-4e6f-9a0b-1c2d3e4f5a6b", "api_key": "k", **opts}
    with pytest.raises(ConfigError) as e:
        OneSignal("os1", full)
    assert words in e.value.message


def test_satisfies_the_adapter_contract(onesignal_fake: OneSignalFake) -> None:
    a: Adapter = make(onesignal_fake)  # checked by mypy
    assert (a.name, a.channel, a.max_batch, a.dedupes) == ("onesignal", "push", 2000, True)
    assert a.send([]) == []
    a.close()
    assert onesignal_fake.log == []
