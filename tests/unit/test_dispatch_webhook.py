"""The signed-webhook adapters (generic and in-app) against the Standard Webhooks receivers of
tests/fakes: signatures the receiver verifies (also during a secret rotation), the body
contract, every answer classified as reference/providers.md §5.2 / §5.3 say, redirects never
followed, private targets refused without allow_private_targets, and an ambiguous in-app
message resent with the same webhook-id and deduplicated by the receiver."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcrm.dispatch.core import Outbound, Outcome
from mcrm.dispatch.webhook import Webhook
from mcrm.errors import ConfigError
from tests.fakes.base import Drop
from tests.fakes.webhook import InboxFake, WebhookFake

OTHER_SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def msg(i: int, user: str = "u-1", channel: str = "push", payload: Any = None) -> Outbound:
    return Outbound(
        outbox_id=i,
        idempotency_key=f"00000000-0000-5000-8000-{i:012d}",
        campaign="winback",
        occurrence="2026-03-02T10:00:00Z",
        user_id=user,
        channel=channel,
        variant="a",
        address=user,
        parts={"title": "Hi", "body": "We miss you"},
        payload=payload,
    )


def test_generic_webhook_is_signed_and_delivered(webhook_fake: WebhookFake) -> None:
    c = webhook_fake.credentials()
    a = Webhook("hook", {"url": c["url"], "secret": c["secret"], "allow_private_targets": True})
    res = a.send([msg(1), msg(2, "u-2")])
    a.close()
    assert [r.outcome for r in res] == [Outcome.SENT, Outcome.SENT]
    got = webhook_fake.deliveries
    assert [d.webhook_id for d in got] == [msg(1).idempotency_key, msg(2).idempotency_key]
    data = got[0].body["data"]
    assert got[0].body["type"] == "campaign.message"
    assert data["message_id"] == msg(1).idempotency_key
    assert data["content"] == {"title": "Hi", "body": "We miss you"}
    assert (data["campaign"], data["user_id"], data["channel"]) == ("winback", "u-1", "push")


def test_rotation_signs_with_both_secrets(fake_factory: Any) -> None:
    fake = fake_factory("webhook", secret=OTHER_SECRET)
    url = fake.credentials()["url"]
    old = "whsec_" + "A" * 43 + "="
    a = Webhook(
        "hook", {"url": url, "secrets": [old, OTHER_SECRET], "allow_private_targets": True}
    )
    assert a.send([msg(1)])[0].outcome is Outcome.SENT
    sig = fake.last.headers["webhook-signature"]
    assert len(sig.split(" ")) == 2
    wrong = Webhook("hook", {"url": url, "secret": old, "allow_private_targets": True})
    r = wrong.send([msg(2)])[0]
    assert r.outcome is Outcome.RETRY and r.error_code == "401"


@pytest.mark.parametrize(
    ("path", "outcome"),
    [
        ("/410", Outcome.AUTH),
        ("/429", Outcome.THROTTLED),
        ("/500", Outcome.RETRY),
        ("/redirect", Outcome.RETRY),
    ],
)
def test_generic_answers(webhook_fake: WebhookFake, path: str, outcome: Outcome) -> None:
    secret = webhook_fake.credentials()["secret"]
    a = Webhook(
        "hook", {"url": webhook_fake.url + path, "secret": secret, "allow_private_targets": True}
    )
    r = a.send([msg(1)])[0]
    assert r.outcome is outcome
    if path == "/429":
        assert r.retry_after_s == 1.0
    # the redirect is never followed
    assert webhook_fake.requests_to("redirected") == []


def test_a_read_timeout_is_ambiguous(webhook_fake: WebhookFake) -> None:
    secret = webhook_fake.credentials()["secret"]
    a = Webhook(
        "hook",
        {
            "url": webhook_fake.url + "/slow",
            "secret": secret,
            "allow_private_targets": True,
            "timeout": 0.3,
        },
    )
    assert a.send([msg(1)])[0].outcome is Outcome.AMBIGUOUS


def test_private_targets_are_refused_unless_allowed() -> None:
    with pytest.raises(ConfigError, match="private address"):
        Webhook("hook", {"url": "http://127.0.0.1:9/x", "secret": OTHER_SECRET})
    with pytest.raises(ConfigError, match="whsec_"):
        Webhook("hook", {"url": "https://example.com/x", "secret": "plain"})


def test_inapp_contract_and_unknown_user(fake_factory: Any) -> None:
    fake: InboxFake = fake_factory("inapp", users=["u-1"])
    c = fake.credentials()
    a = Webhook(
        "inbox",
        {"url": c["url"], "secret": c["secret"], "allow_private_targets": True},
        inapp=True,
    )
    ok, unknown = a.send(
        [msg(1, "u-1", "inapp", {"title": "Hi"}), msg(2, "u-9", "inapp", {"title": "Hi"})]
    )
    assert ok.outcome is Outcome.SENT and ok.provider_message_id == "inb_1"
    assert unknown.outcome is Outcome.INVALID_RECIPIENT and unknown.error_code == "unknown_user"
    body = fake.inbox("u-1")[0].body
    assert body["type"] == "inapp.message"
    assert body["data"]["content"] == {"title": "Hi"}
    assert body["data"]["expires_at"].endswith("Z")


def test_inapp_resend_after_a_lost_answer_is_deduplicated(fake_factory: Any) -> None:
    fake: InboxFake = fake_factory("inapp", users=["u-1"])
    c = fake.credentials()
    a = Webhook(
        "inbox",
        {"url": c["url"], "secret": c["secret"], "allow_private_targets": True},
        inapp=True,
    )
    assert a.dedupes  # the recovery may resend it with the same key
    fake.script(Drop())  # processed, then the connection closes without an answer
    first = a.send([msg(1, "u-1", "inapp", {"title": "Hi"})])[0]
    assert first.outcome is Outcome.AMBIGUOUS
    again = a.send([msg(1, "u-1", "inapp", {"title": "Hi"})])[0]
    assert again.outcome is Outcome.SENT
    assert len(fake.inbox("u-1")) == 1 and fake.duplicates == 1


def test_an_oversized_body_is_permanent(webhook_fake: WebhookFake) -> None:
    c = webhook_fake.credentials()
    a = Webhook("hook", {"url": c["url"], "secret": c["secret"], "allow_private_targets": True})
    big = msg(1, payload={"text": "x" * 30_000})
    r = a.send([big])[0]
    assert r.outcome is Outcome.PERMANENT
    assert webhook_fake.log == []
    assert json.dumps(big.payload)  # the message itself is fine, only too big for the wire
