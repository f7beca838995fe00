"""The Twilio adapter against the Twilio fake (reference/providers.md §4.1).

Promises: one form-encoded POST per message to the account's Messages resource with Basic
auth (auth token or API key), `To`, `Body`, the sender (`MessagingServiceSid` or `From`) and a
`StatusCallback` carrying the idempotency key; a batch goes out concurrently with results in
input order, the SID as provider id; every code of the §4.1 table classified as it says
(21610 a consent revocation, 21211 / 21614 an invalid number); a lane-wide answer stops the
rest of the batch before it is sent.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from mcrm.dispatch.core import Outbound, Outcome
from mcrm.dispatch.twilio import Twilio
from mcrm.errors import ConfigError
from tests.fakes import TwilioFake
from tests.fakes.twilio import twilio_error

CALLBACK = "https://hooks.example.com/twilio?lane=sms"


def sms(i: int, to: str | None = None, body: str | None = None) -> Outbound:
    return Outbound(
        outbox_id=500 + i,
        idempotency_key=f"00000000-0000-5000-8000-{i:012d}",
        campaign="birthday",
        occurrence="2026-03-02T09:00:00Z",
        user_id=f"u{i}",
        channel="sms",
        variant=None,
        address=to or f"+1415555{i:04d}",
        parts={"body": body if body is not None else f"Happy birthday! 20% off: B-{i}"},
    )


def adapter(fake: TwilioFake, **kw: Any) -> Twilio:
    creds = fake.credentials()
    opts: dict[str, Any] = {
        "account_sid": creds["account_sid"],
        "auth_token": creds["auth_token"],
        "messaging_service_sid": creds["messaging_service_sid"],
        "base_url": creds["base_url"],
    }
    opts.update(kw)
    return Twilio("sms", {k: v for k, v in opts.items() if v is not None})


@pytest.fixture
def tw(twilio_fake: TwilioFake) -> Iterator[Twilio]:
    a = adapter(twilio_fake, status_callback=CALLBACK)
    yield a
    a.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the wire ----------------------------------------------------------------------------------


def test_the_request_twilio_receives(twilio_fake: TwilioFake, tw: Twilio) -> None:
    res = tw.send([sms(1, body="Weekend sale: 20% off & free shipping")])
    sid = twilio_fake.messages[0]["sid"]
    assert (res[0].outbox_id, res[0].outcome, res[0].provider_message_id) == (
        501,
        Outcome.SENT,
        sid,
    )
    assert sid.startswith("SM")
    e = twilio_fake.last
    assert e.method == "POST"
    assert e.path == f"/2010-04-01/Accounts/{twilio_fake.account_sid}/Messages.json"
    pair = f"{twilio_fake.account_sid}:{twilio_fake.auth_token}".encode()
    assert e.headers["authorization"] == "Basic " + base64.b64encode(pair).decode()
    assert e.headers["content-type"] == "application/x-www-form-urlencoded"
    form = e.parsed
    assert set(form) == {"To", "Body", "MessagingServiceSid", "StatusCallback"}
    assert form["To"] == ["+14155550001"]
    assert form["Body"] == ["Weekend sale: 20% off & free shipping"]
    assert form["MessagingServiceSid"] == [twilio_fake.credentials()["messaging_service_sid"]]
    cb = urlsplit(form["StatusCallback"][0])
    assert cb.netloc == "hooks.example.com" and cb.path == "/twilio"
    assert parse_qs(cb.query) == {"lane": ["sms"], "mcrm_id": [sms(1).idempotency_key]}


def test_from_number_and_api_key(fake_factory: Any) -> None:
    fake: TwilioFake = fake_factory("twilio", api_keys={"SK" + "1" * 32: "key-secret"})
    a = adapter(
        fake,
        auth_token=None,
        messaging_service_sid=None,
        api_key_sid="SK" + "1" * 32,
        api_key_secret="key-secret",
        **{"from": "+15005550006"},
    )
    try:
        res = a.send([sms(2)])
    finally:
        a.close()
    assert res[0].outcome is Outcome.SENT
    form = fake.last.parsed
    assert form == {
        "To": ["+14155550002"],
        "Body": [sms(2).parts["body"]],
        "From": ["+15005550006"],
    }
    assert "StatusCallback" not in form
    auth = base64.b64decode(fake.last.headers["authorization"].split()[1]).decode()
    assert auth == "SK" + "1" * 32 + ":key-secret"
    assert fake.messages[0]["num_segments"] == "1" and fake.messages[0]["status"] == "queued"


def test_a_batch_goes_out_concurrently_results_in_input_order(
    twilio_fake: TwilioFake, tw: Twilio
) -> None:
    batch = [sms(i) for i in range(32)]
    batch[5] = sms(5, to="+15005550001")  # 21211
    batch[20] = sms(20, to="+15005550004")  # 21610
    res = tw.send(batch)
    assert [r.outbox_id for r in res] == [m.outbox_id for m in batch]
    sid_of = {m["to"]: m["sid"] for m in twilio_fake.messages}
    assert len(sid_of) == 30 and len(twilio_fake.log) == 32
    for m, r in zip(batch, res, strict=True):
        if m.outbox_id in (505, 520):
            assert r.outcome is Outcome.INVALID_RECIPIENT
        else:
            assert (r.outcome, r.provider_message_id) == (Outcome.SENT, sid_of[m.address])
    # the requests overlapped: more than one client connection was used
    assert len({e.request.client for e in twilio_fake.log}) > 1


# --- §4.1: every code -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "outcome", "code", "mark", "reason"),
    [
        ("+15005550001", Outcome.INVALID_RECIPIENT, "21211", "invalid", "malformed"),
        ("+15005550009", Outcome.INVALID_RECIPIENT, "21614", "invalid", "not_mobile"),
        ("+15005550004", Outcome.INVALID_RECIPIENT, "21610", "opt_out", "opt_out"),
        ("+15005550002", Outcome.PERMANENT, "21612", None, None),
        ("+15005550003", Outcome.PERMANENT, "21408", None, None),
        ("4155552671", Outcome.INVALID_RECIPIENT, "21211", "invalid", "malformed"),
    ],
)
def test_magic_to_numbers(
    tw: Twilio, to: str, outcome: Outcome, code: str, mark: str | None, reason: str | None
) -> None:
    r = tw.send([sms(1, to=to)])[0]
    assert (r.outcome, r.error_code, r.mark, r.mark_reason) == (outcome, code, mark, reason)
    assert r.provider_message_id is None
    assert r.error_detail is None or not any(c.isdigit() for c in r.error_detail)  # no numbers


@pytest.mark.parametrize(
    ("sender", "outcome", "code"),
    [
        ("+15005550001", Outcome.AUTH, "21212"),
        ("+15005550007", Outcome.AUTH, "21606"),
        ("+15005550008", Outcome.THROTTLED, "21611"),
        ("+14155550000", Outcome.AUTH, "21606"),  # a number this account does not own
    ],
)
def test_magic_from_numbers_stop_the_lane(
    twilio_fake: TwilioFake, sender: str, outcome: Outcome, code: str
) -> None:
    a = adapter(twilio_fake, messaging_service_sid=None, concurrency=1, **{"from": sender})
    try:
        res = a.send([sms(1), sms(2), sms(3)])
    finally:
        a.close()
    assert [(r.outcome, r.error_code) for r in res] == [(outcome, code)] * 3
    assert len(twilio_fake.log) == 1  # the rest were not sent
    assert res[1].error_detail == "not sent: the lane stopped"


def test_unknown_messaging_service_is_auth(twilio_fake: TwilioFake) -> None:
    a = adapter(twilio_fake, messaging_service_sid="MG" + "0" * 32)
    try:
        r = a.send([sms(1)])[0]
    finally:
        a.close()
    assert (r.outcome, r.error_code) == (Outcome.AUTH, "21701")


def test_bad_credentials_are_auth(twilio_fake: TwilioFake) -> None:
    a = adapter(twilio_fake, auth_token="0" * 32)
    try:
        res = a.send([sms(i) for i in range(10)])
    finally:
        a.close()
    assert {(r.outcome, r.error_code) for r in res} == {(Outcome.AUTH, "20003")}
    assert [r.outbox_id for r in res] == [500 + i for i in range(10)]
    assert len(twilio_fake.log) < 10  # not-yet-started messages were not sent
    assert twilio_fake.messages == []


def test_20429_is_throttled_with_retry_after(twilio_fake: TwilioFake, tw: Twilio) -> None:
    twilio_fake.script(429, (429, {"Retry-After": "3"}))
    r = tw.send([sms(1)])[0]
    assert (r.outcome, r.error_code, r.retry_after_s) == (Outcome.THROTTLED, "20429", None)
    r = tw.send([sms(1)])[0]
    assert (r.outcome, r.error_code, r.retry_after_s) == (Outcome.THROTTLED, "20429", 3.0)
    assert tw.send([sms(1)])[0].outcome is Outcome.SENT


@pytest.mark.parametrize(
    ("item", "outcome", "code"),
    [
        (503, Outcome.RETRY, "20503"),
        (500, Outcome.RETRY, "20500"),
        ((502, {}, "<html>bad gateway</html>"), Outcome.RETRY, "502"),
        (twilio_error(14107), Outcome.RETRY, "14107"),
        (twilio_error(20003), Outcome.AUTH, "20003"),
        ((403, {}, {"code": 20403, "message": "Forbidden", "status": 403}), Outcome.AUTH, "20403"),
        (twilio_error(21602), Outcome.PERMANENT, "21602"),
        (twilio_error(21617), Outcome.PERMANENT, "21617"),
    ],
)
def test_scripted_answers(
    twilio_fake: TwilioFake, tw: Twilio, item: Any, outcome: Outcome, code: str
) -> None:
    twilio_fake.script(item)
    r = tw.send([sms(1)])[0]
    assert (r.outcome, r.error_code) == (outcome, code)


def test_503_with_retry_after(twilio_fake: TwilioFake, tw: Twilio) -> None:
    twilio_fake.script((503, {"Retry-After": "9"}))
    r = tw.send([sms(1)])[0]
    assert (r.outcome, r.retry_after_s) == (Outcome.RETRY, 9.0)


def test_drop_after_body_is_ambiguous(twilio_fake: TwilioFake, tw: Twilio) -> None:
    twilio_fake.script("drop_after_body")
    r = tw.send([sms(1)])[0]
    assert (r.outcome, r.error_code) == (Outcome.AMBIGUOUS, "connection_lost")
    assert len(twilio_fake.messages) == 1  # it was created: a resend would text twice


def test_connection_refused_is_retry() -> None:
    a = Twilio(
        "sms",
        {
            "account_sid": "AC" + "0" * 32,
            "auth_token": "t",
            "from": "+15005550006",
            "base_url": f"http://127.0.0.1:{closed_port()}",
        },
    )
    try:
        res = a.send([sms(1), sms(2)])
    finally:
        a.close()
    assert [(r.outcome, r.error_code) for r in res] == [(Outcome.RETRY, "connect_failed")] * 2


# --- configuration -----------------------------------------------------------------------------

SID = "AC" + "0" * 32


@pytest.mark.parametrize(
    ("opts", "text"),
    [
        ({"auth_token": "t", "from": "+1"}, "needs account_sid"),
        ({"account_sid": SID, "from": "+1"}, "needs auth_token"),
        ({"account_sid": SID, "auth_token": "t"}, "needs messaging_service_sid"),
        ({"account_sid": SID, "auth_token": "t", "api_key_sid": "SK1", "from": "+1"}, "give"),
        ({"account_sid": SID, "api_key_sid": "SK1", "from": "+1"}, "api_key_secret"),
        ({"account_sid": SID, "auth_token": "t", "messaging_service_sid": "XX"}, "MG"),
        ({"account_sid": SID, "auth_token": "t", "from": "+1", "concurrency": 0}, "1..64"),
        ({"account_sid": SID, "auth_token": "t", "from": "+1", "status_callback": "x"}, "http"),
        ({"account_sid": SID, "auth_token": "t", "from": "+1", "token": "x"}, "unknown"),
        (
            {"account_sid": SID, "auth_token": "t", "from": "+1", "base_url": "ftp://x"},
            "must be an http(s) URL",
        ),
        (
            {"account_sid": SID, "auth_token": "t", "from": "+1", "base_url": "https://"},
            "must be an http(s) URL",
        ),
        (
            {"account_sid": SID, "auth_token": "t", "from": "+1", "base_url": "https://h:99999"},
            "base_url is not a valid URL",
        ),
        (
            {"account_sid": SID, "auth_token": "t", "from": "+1", "base_url": "https://a b"},
            "base_url is not a valid URL",
        ),
    ],
)
def test_options_are_validated(opts: dict[str, Any], text: str) -> None:
    with pytest.raises(ConfigError) as e:
        Twilio("sms", opts)
    assert text in str(e.value)
    assert "providers.sms" in str(e.value.where)


def test_contract_attributes() -> None:
    a = Twilio("sms", {"account_sid": SID, "auth_token": "t", "from": "+15005550006"})
    assert (a.name, a.channel, a.max_batch, a.dedupes) == ("sms", "sms", 32, False)
    assert a.url == f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
    assert a.send([]) == []
    a.close()
