"""The FCM HTTP v1 adapter against the FCM fake (its OAuth2 token endpoint included): real
google-auth signs the JWT bearer grant with the fake's service account and the fake verifies
it; the wire format (Bearer token, `data.mcrm_id`, collapse keys, priority, ttl); every magic
token classified as reference/providers.md §2.1 says; Retry-After in seconds and as an
HTTP-date; faults (lost connection, refused connection, read timeout); the token cached,
refreshed ahead of expiry, refreshed once on a 401; results in input order under
concurrency."""

from __future__ import annotations

import email.utils
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from mcrm.dispatch.core import Adapter, Outbound, Outcome
from mcrm.dispatch.fcm import FCM_SCOPE, Fcm, collapse_id
from mcrm.errors import ConfigError
from tests.fakes.base import Delay, FakeClock
from tests.fakes.fcm import GOOGLE_TOKEN_URI, FcmFake

CAMPAIGN, OCCURRENCE = "spring", "2026-03-02T10:00:00Z"


def msg(i: int, token: str, occurrence: str = OCCURRENCE, **parts: str) -> Outbound:
    return Outbound(
        outbox_id=i,
        idempotency_key=f"00000000-0000-5000-8000-{i:012d}",
        campaign=CAMPAIGN,
        occurrence=occurrence,
        user_id=f"u-{i}",
        channel="push",
        variant="a",
        address=token,
        parts=parts or {"title": "Weekend sale", "body": "20% off", "deeplink": "shop://sale"},
    )


@pytest.fixture
def sa(fcm_fake: FcmFake, tmp_path: Path) -> Path:
    return fcm_fake.write_service_account(tmp_path / "sa.json")


def make(fake: FcmFake, sa: Path, **opts: Any) -> Fcm:
    kw = opts.pop("kw", {})
    return Fcm("fcm", {"service_account": str(sa), "base_url": fake.url, **opts}, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_wire_format_and_token_from_real_google_auth(fcm_fake: FcmFake, sa: Path) -> None:
    a = make(fcm_fake, sa, ttl="1d")
    try:
        res = a.send([msg(1, "tok-1"), msg(2, "tok-2", "2026-03-09T10:00:00Z")])
        res += a.send([msg(3, "tok-3")])
    finally:
        a.close()
    assert [r.outcome for r in res] == [Outcome.SENT] * 3
    assert {r.provider_message_id for r in res} == {
        f"projects/mcrm-fake/messages/{n}" for n in (1, 2, 3)
    }
    # google-auth's assertion, verified by the fake: our scope, Google's audience
    assert fcm_fake.tokens_issued == 1  # cached across requests and batches
    (claims,) = fcm_fake.assertions
    assert claims["scope"] == FCM_SCOPE
    assert claims["aud"] == GOOGLE_TOKEN_URI
    assert claims["iss"] == fcm_fake.client_email
    sends = fcm_fake.requests_to("send")
    assert {e.path for e in sends} == {"/v1/projects/mcrm-fake/messages:send"}
    assert len({e.headers["authorization"] for e in sends}) == 1
    assert sends[0].headers["authorization"].startswith("Bearer ya29.fake-")
    assert sends[0].headers["content-type"].startswith("application/json")
    by_token = {e.parsed["message"]["token"]: e.parsed for e in sends}
    body = by_token["tok-1"]
    assert set(body) == {"message"}
    m = body["message"]
    assert m["data"] == {"mcrm_id": msg(1, "x").idempotency_key, "deeplink": "shop://sale"}
    assert m["notification"] == {"title": "Weekend sale", "body": "20% off"}
    key = collapse_id(CAMPAIGN, OCCURRENCE)
    assert m["android"] == {"priority": "HIGH", "collapse_key": key, "ttl": "86400s"}
    assert m["apns"]["headers"]["apns-collapse-id"] == key
    assert m["apns"]["headers"]["apns-priority"] == "10"
    assert int(m["apns"]["headers"]["apns-expiration"]) > time.time() + 86000
    assert m["apns"]["payload"] == {"aps": {"sound": "default"}}
    # same occurrence: same collapse key; another occurrence: another one
    assert by_token["tok-3"]["message"]["android"]["collapse_key"] == key
    other = by_token["tok-2"]["message"]
    assert other["android"]["collapse_key"] == other["apns"]["headers"]["apns-collapse-id"]
    assert other["android"]["collapse_key"] != key


def test_normal_priority_and_no_sound(fcm_fake: FcmFake, sa: Path) -> None:
    a = make(fcm_fake, sa, priority="normal", sound=None)
    assert a.send([msg(1, "tok-1", title="Hi", body="There")])[0].outcome is Outcome.SENT
    a.close()
    m = fcm_fake.sent[0]
    assert m["android"]["priority"] == "NORMAL"
    assert m["apns"]["headers"]["apns-priority"] == "5"
    assert m["apns"]["payload"] == {"aps": {}}
    assert m["data"] == {"mcrm_id": msg(1, "x").idempotency_key}
    assert "ttl" not in m["android"] and "apns-expiration" not in m["apns"]["headers"]


def test_token_uri_option_overrides_the_file(fcm_fake: FcmFake, tmp_path: Path) -> None:
    # the file names Google's endpoint (as a real key file does); the option points at the fake
    sa = fcm_fake.write_service_account(tmp_path / "sa.json", token_uri=GOOGLE_TOKEN_URI)
    a = make(fcm_fake, sa, token_uri=fcm_fake.token_uri)
    assert a.send([msg(1, "tok-1")])[0].outcome is Outcome.SENT
    a.close()
    assert len(fcm_fake.requests_to("token")) == 1


def test_relative_service_account_path_is_under_the_root(fcm_fake: FcmFake, sa: Path) -> None:
    a = Fcm("fcm", {"service_account": sa.name, "base_url": fcm_fake.url}, root=sa.parent)
    assert a.send([msg(1, "tok-1")])[0].outcome is Outcome.SENT
    a.close()


@pytest.mark.parametrize(
    ("token", "outcome", "code", "reason", "after"),
    [
        ("unregistered-1", Outcome.INVALID_RECIPIENT, "UNREGISTERED", "unregistered", None),
        ("invalid-1", Outcome.INVALID_RECIPIENT, "INVALID_ARGUMENT", "malformed", None),
        ("mismatch-1", Outcome.INVALID_RECIPIENT, "SENDER_ID_MISMATCH", "sender_mismatch", None),
        ("thirdparty-1", Outcome.AUTH, "THIRD_PARTY_AUTH_ERROR", None, None),
        ("quota-1", Outcome.THROTTLED, "QUOTA_EXCEEDED", None, 60.0),  # floor over "1"
        ("internal-1", Outcome.RETRY, "INTERNAL", None, None),
        ("unavailable-1", Outcome.RETRY, "UNAVAILABLE", None, 1.0),
        ("badgateway-1", Outcome.RETRY, "502", None, None),  # Google's HTML page
    ],
)
def test_magic_tokens_are_classified(
    fcm_fake: FcmFake,
    sa: Path,
    token: str,
    outcome: Outcome,
    code: str,
    reason: str | None,
    after: float | None,
) -> None:
    a = make(fcm_fake, sa)
    (r,) = a.send([msg(7, token)])
    a.close()
    assert (r.outbox_id, r.outcome, r.error_code) == (7, outcome, code)
    assert r.mark_reason == reason
    assert r.mark == ("invalid" if reason else None)
    assert r.retry_after_s == after
    assert r.provider_message_id is None
    assert token not in (r.error_detail or "")
    # no refresh-and-resend: THIRD_PARTY_AUTH_ERROR is a 401 about APNs/web credentials
    assert len(fcm_fake.requests_to("send")) == 1
    assert fcm_fake.tokens_issued == 1


def test_other_bad_field_is_permanent_not_an_invalid_token(fcm_fake: FcmFake, sa: Path) -> None:
    a = make(fcm_fake, sa)
    (r,) = a.send([msg(1, "tok-1", title="Big", body="x" * 5000)])
    a.close()
    assert (r.outcome, r.error_code, r.mark) == (Outcome.PERMANENT, "INVALID_ARGUMENT", None)


def test_data_field_violation_is_permanent(fcm_fake: FcmFake, sa: Path) -> None:
    fcm_fake.script(
        (
            400,
            {},
            {
                "error": {
                    "code": 400,
                    "message": "Invalid value at 'message.data[0].value' (TYPE_STRING), 5",
                    "status": "INVALID_ARGUMENT",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.BadRequest",
                            "fieldViolations": [{"field": "message.data[0].value"}],
                        }
                    ],
                }
            },
        )
    )
    a = make(fcm_fake, sa)
    (r,) = a.send([msg(1, "tok-1")])
    a.close()
    assert (r.outcome, r.error_code, r.mark) == (Outcome.PERMANENT, "INVALID_ARGUMENT", None)


def test_permission_denied_without_fcm_error_is_auth(fcm_fake: FcmFake, sa: Path) -> None:
    a = make(fcm_fake, sa, project_id="someone-elses-project")
    (r,) = a.send([msg(1, "tok-1")])
    a.close()
    assert (r.outcome, r.error_code, r.mark) == (Outcome.AUTH, "PERMISSION_DENIED", None)


def test_results_keep_input_order_under_concurrency(fcm_fake: FcmFake, sa: Path) -> None:
    kinds = ["ok", "unregistered", "invalid", "internal", "mismatch", "unavailable"] * 6
    batch = [msg(i, f"{k}-{i}") for i, k in enumerate(kinds)]
    a = make(fcm_fake, sa, concurrency=8)
    assert a.max_batch == 500  # the default batch (rows claimed at a time)
    res = a.send(batch)
    a.close()
    assert [r.outbox_id for r in res] == list(range(len(batch)))
    want = {
        "ok": Outcome.SENT,
        "unregistered": Outcome.INVALID_RECIPIENT,
        "invalid": Outcome.INVALID_RECIPIENT,
        "internal": Outcome.RETRY,
        "mismatch": Outcome.INVALID_RECIPIENT,
        "unavailable": Outcome.RETRY,
    }
    assert [r.outcome for r in res] == [want[k] for k in kinds]
    assert len(fcm_fake.sent) == 6
    assert len({e.request.client for e in fcm_fake.requests_to("send")}) <= 8  # pooled


def test_lane_wide_outcome_covers_the_rest_of_the_batch(fcm_fake: FcmFake, sa: Path) -> None:
    a = make(fcm_fake, sa, concurrency=1)
    res = a.send([msg(1, "tok-1"), msg(2, "thirdparty-2"), msg(3, "tok-3"), msg(4, "tok-4")])
    a.close()
    assert [r.outcome for r in res] == [Outcome.SENT, Outcome.AUTH, Outcome.AUTH, Outcome.AUTH]
    assert [r.error_code for r in res[1:]] == ["THIRD_PARTY_AUTH_ERROR"] * 3
    assert len(fcm_fake.requests_to("send")) == 2  # 3 and 4 never went on the wire


def test_scripted_503_503_429_with_retry_after(fcm_fake: FcmFake, sa: Path) -> None:
    t0 = 1_800_000_000.0
    fcm_fake.script(
        (503, {"Retry-After": "7"}),
        (503, {"Retry-After": email.utils.formatdate(t0 + 90, usegmt=True)}),
        (429, {"Retry-After": "120"}),
    )
    a = make(fcm_fake, sa, concurrency=1, kw={"clock": lambda: t0})
    res = a.send([msg(i, f"tok-{i}") for i in range(1, 5)])
    a.close()
    assert [(r.outcome, r.error_code, r.retry_after_s) for r in res] == [
        (Outcome.RETRY, "UNAVAILABLE", 7.0),
        (Outcome.RETRY, "UNAVAILABLE", 90.0),
        (Outcome.THROTTLED, "QUOTA_EXCEEDED", 120.0),
        (Outcome.THROTTLED, "QUOTA_EXCEEDED", 120.0),  # not sent: the lane pauses
    ]
    assert len(fcm_fake.requests_to("send")) == 3


def test_429_http_date_retry_after(fcm_fake: FcmFake, sa: Path) -> None:
    t0 = 1_800_000_000.0
    fcm_fake.script((429, {"Retry-After": email.utils.formatdate(t0 + 600, usegmt=True)}))
    a = make(fcm_fake, sa, kw={"clock": lambda: t0})
    (r,) = a.send([msg(1, "tok-1")])
    a.close()
    assert (r.outcome, r.retry_after_s) == (Outcome.THROTTLED, 600.0)


def test_drop_after_body_is_ambiguous(fcm_fake: FcmFake, sa: Path) -> None:
    fcm_fake.script("drop_after_body")
    a = make(fcm_fake, sa)
    (r,) = a.send([msg(1, "tok-1")])
    a.close()
    assert (r.outcome, r.error_code) == (Outcome.AMBIGUOUS, "connection_lost")
    assert len(fcm_fake.sent) == 1  # the fake did take it: resending would duplicate


def test_connection_refused_is_retry(fcm_fake: FcmFake, sa: Path) -> None:
    a = Fcm("fcm", {"service_account": str(sa), "base_url": f"http://127.0.0.1:{free_port()}"})
    (r,) = a.send([msg(1, "tok-1")])
    a.close()
    assert (r.outcome, r.error_code) == (Outcome.RETRY, "connect_failed")


def test_read_timeout_is_ambiguous(fcm_fake: FcmFake, sa: Path) -> None:
    fcm_fake.script(Delay(3.0))
    a = make(fcm_fake, sa, timeout=0.3)
    t = time.monotonic()
    (r,) = a.send([msg(1, "tok-1")])
    assert time.monotonic() - t < 2.0
    a.close()
    assert (r.outcome, r.error_code) == (Outcome.AMBIGUOUS, "read_timeout")


def test_expired_token_is_refreshed_once_and_the_message_resent(
    fcm_fake: FcmFake, sa: Path
) -> None:
    fcm_fake.expire_tokens_after(1)
    a = make(fcm_fake, sa)
    first = a.send([msg(1, "tok-1")])
    second = a.send([msg(2, "tok-2")])
    a.close()
    assert [r.outcome for r in first + second] == [Outcome.SENT, Outcome.SENT]
    assert fcm_fake.tokens_issued == 2
    sends = fcm_fake.requests_to("send")
    assert [e.status for e in sends] == [200, 401, 200]
    assert sends[1].headers["authorization"] == sends[0].headers["authorization"]
    assert sends[2].headers["authorization"] != sends[1].headers["authorization"]


def test_revoked_tokens_refresh_once_for_a_concurrent_batch(fcm_fake: FcmFake, sa: Path) -> None:
    a = make(fcm_fake, sa, concurrency=4)
    assert a.send([msg(0, "tok-0")])[0].outcome is Outcome.SENT
    fcm_fake.expire_all_tokens()
    res = a.send([msg(i, f"tok-{i}") for i in range(1, 9)])
    a.close()
    assert [r.outcome for r in res] == [Outcome.SENT] * 8
    assert fcm_fake.tokens_issued == 2  # one refresh, shared by the threads


def test_second_401_is_auth(fcm_fake: FcmFake, sa: Path) -> None:
    fcm_fake.expire_tokens_after(0)  # every token is refused
    a = make(fcm_fake, sa)
    (r,) = a.send([msg(1, "tok-1")])
    a.close()
    assert (r.outcome, r.error_code) == (Outcome.AUTH, "UNAUTHENTICATED")
    assert fcm_fake.tokens_issued == 2
    assert [e.status for e in fcm_fake.requests_to("send")] == [401, 401]


def test_token_refreshed_five_minutes_before_expiry(fake_factory: Any, tmp_path: Path) -> None:
    fake: FcmFake = fake_factory("fcm", expires_in=600)
    sa = fake.write_service_account(tmp_path / "sa.json")
    clock = FakeClock(time.time())
    a = make(fake, sa, kw={"clock": clock})
    a.send([msg(1, "tok-1")])
    clock.advance(250)
    a.send([msg(2, "tok-2")])
    assert fake.tokens_issued == 1
    clock.advance(60)  # 310 s: within 5 minutes of the 600 s expiry
    a.send([msg(3, "tok-3")])
    a.close()
    assert fake.tokens_issued == 2
    assert [e.status for e in fake.requests_to("send")] == [200, 200, 200]


@pytest.mark.parametrize(
    ("item", "outcome", "code"),
    [
        (503, Outcome.RETRY, "oauth:503"),
        (429, Outcome.THROTTLED, "oauth:429"),
        (
            (400, {}, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
            Outcome.AUTH,
            "oauth:invalid_grant",
        ),
    ],
)
def test_token_endpoint_failures(
    fcm_fake: FcmFake, sa: Path, item: Any, outcome: Outcome, code: str
) -> None:
    fcm_fake.script(item, route="token")
    a = make(fcm_fake, sa)
    t = time.monotonic()
    res = a.send([msg(1, "tok-1"), msg(2, "tok-2")])
    assert time.monotonic() - t < 1.0  # google-auth's retry loop never sleeps here
    assert [(r.outcome, r.error_code) for r in res] == [(outcome, code)] * 2
    assert fcm_fake.requests_to("send") == []
    assert len(fcm_fake.requests_to("token")) == 1
    # the next batch tries again and goes through
    assert a.send([msg(3, "tok-3")])[0].outcome is Outcome.SENT
    a.close()


def test_a_key_the_endpoint_does_not_know_is_auth(fcm_fake: FcmFake, tmp_path: Path) -> None:
    stranger = FcmFake(key_seed="somebody-else")  # same e-mail, another key
    sa = stranger.write_service_account(tmp_path / "sa.json", token_uri=fcm_fake.token_uri)
    a = make(fcm_fake, sa)
    (r,) = a.send([msg(1, "tok-1")])
    a.close()
    assert (r.outcome, r.error_code) == (Outcome.AUTH, "oauth:invalid_grant")
    assert r.error_detail == "Invalid JWT Signature."


def test_unreachable_token_endpoint_is_retry(fcm_fake: FcmFake, sa: Path) -> None:
    a = make(fcm_fake, sa, token_uri=f"http://127.0.0.1:{free_port()}/token")
    (r,) = a.send([msg(1, "tok-1")])
    a.close()
    assert (r.outcome, r.error_code) == (Outcome.RETRY, "oauth:connect_failed")


def test_project_id_defaults_to_the_file(fcm_fake: FcmFake, sa: Path) -> None:
    a = make(fcm_fake, sa)
    assert a.project_id == "mcrm-fake"
    assert a.url == f"{fcm_fake.url}/v1/projects/mcrm-fake/messages:send"
    a.close()


@pytest.mark.parametrize(
    ("opts", "words"),
    [
        ({}, "needs service_account"),
        ({"service_account": "sa.json"}, "absolute path"),
        ({"service_account": "/nonexistent/sa.json"}, "cannot read"),
        ({"colour": "blue"}, "unknown option"),
        ({"priority": "urgent"}, "priority"),
        ({"concurrency": 0}, "concurrency"),
        ({"ttl": "forever"}, "ttl"),
        ({"ttl": 9_999_999}, "ttl"),
        ({"base_url": "ftp://x"}, "must be an http(s) URL"),
        ({"base_url": "https://"}, "must be an http(s) URL"),
        ({"base_url": "https://h:99999"}, "base_url is not a valid URL"),
        ({"base_url": "https://a b"}, "base_url is not a valid URL"),
    ],
)
def test_config_errors(sa: Path, opts: dict[str, Any], words: str) -> None:
    # an empty mapping has no service_account; otherwise the fake's file unless overridden
    full = {"service_account": str(sa), **opts} if opts else {}
    with pytest.raises(ConfigError) as e:
        Fcm("push1", full)
    assert words in e.value.message
    assert e.value.where is not None and (e.value.where.key or "").startswith("providers.push1")


def test_not_a_service_account_file(tmp_path: Path) -> None:
    p = tmp_path / "sa.json"
    p.write_text(json.dumps({"type": "service_account", "client_email": "a@b"}))
    with pytest.raises(ConfigError, match="not a service-account key file"):
        Fcm("push1", {"service_account": str(p)})
    p.write_text(json.dumps({"client_email": "a@b", "private_key": "garbage", "project_id": "p"}))
    with pytest.raises(ConfigError, match="not a usable Google service-account key"):
        Fcm("push1", {"service_account": str(p)})
    p.write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        Fcm("push1", {"service_account": str(p)})


def test_satisfies_the_adapter_contract(fcm_fake: FcmFake, sa: Path) -> None:
    a: Adapter = make(fcm_fake, sa)  # checked by mypy
    assert (a.name, a.channel, a.max_batch, a.dedupes) == ("fcm", "push", 500, False)
    assert a.send([]) == []
    a.close()
