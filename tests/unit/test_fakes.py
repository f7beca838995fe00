"""The provider fakes themselves (tests/fakes), driven with plain `requests`, never mcrm code.

Promises: each fake validates like its provider and answers in the provider's error shape,
its magic inputs give the documented answers, the script queue and the faults behave as
§1.7 says, the log records what was sent, and the dedupe stores (OneSignal, webhooks) replay
the first answer. The FCM token endpoint is exercised with assertions built the way
google-auth builds them.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fakes import (
    Delay,
    Drop,
    ExpoFake,
    FakeClock,
    FcmFake,
    InboxFake,
    OneSignalFake,
    SendGridFake,
    TwilioFake,
    WebhookFake,
)
from tests.fakes.fcm import FCM_SCOPE, GOOGLE_TOKEN_URI, JWT_BEARER, TIMEFRAME, fcm_error
from tests.fakes.rs256 import b64url, decode_jwt, encode_jwt, load_private_pem
from tests.fakes.twilio import sms_segments, twilio_error
from tests.fakes.webhook import sign, signed_headers

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z, FakeClock's default


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


# =============================================================================================
# The shared machinery (exercised through the webhook and FCM fakes)


def _wh_post(
    http: requests.Session,
    fake: WebhookFake,
    body: dict[str, Any] | bytes,
    *,
    msg_id: str = "msg_1",
    path: str = "/hook",
    ts: int | None = None,
    **kw: Any,
) -> requests.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = int(fake.clock()) if ts is None else ts
    headers = signed_headers(fake.secrets[0], msg_id, raw, stamp)
    return http.post(fake.url + path, data=raw, headers=headers, **kw)


def _generic(msg_id: str = "k1", user: str = "u-1") -> dict[str, Any]:
    return {
        "type": "campaign.message",
        "timestamp": "2026-01-01T00:00:00Z",
        "data": {
            "message_id": msg_id,
            "campaign": "winback",
            "variant": "a",
            "user_id": user,
            "channel": "push",
            "content": {"title": "Hi"},
        },
    }


def test_start_stop_url_and_context_manager() -> None:
    fake = WebhookFake()
    with pytest.raises(RuntimeError):
        _ = fake.url
    with fake as f:
        assert f is fake
        assert f.url.startswith("http://127.0.0.1:") and f.port > 0
        with WebhookFake() as other:
            assert other.port != f.port
    with pytest.raises(RuntimeError):
        _ = fake.port
    fake.stop()  # idempotent


def test_stream_log_one_whole_line_a_request_from_many_threads() -> None:
    """Started by hand, a fake prints one line a request on stderr; concurrent clients (a lane's
    eight threads) must not interleave two requests' lines into one."""
    import io
    import re
    from concurrent.futures import ThreadPoolExecutor

    class SlowStream(io.StringIO):
        """A terminal or pipe that takes its time: each write gives the other threads a turn."""

        def write(self, text: str) -> int:
            n = super().write(text)
            time.sleep(0.002)
            return n

    stream = SlowStream()
    with WebhookFake(log_stream=stream, keep_log=False) as fake:

        def post(i: int) -> int:
            with requests.Session() as s:
                return _wh_post(s, fake, _generic(f"k{i}"), msg_id=f"m{i}").status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(post, range(120)))
    assert all(200 <= c < 300 for c in codes), codes
    lines = stream.getvalue().splitlines()
    assert len(lines) == 120
    assert all(re.fullmatch(r"webhook: POST /hook -> 2\d\d \d+\.\d ms", ln) for ln in lines)


def test_keep_alive_one_connection_with_content_length(
    http: requests.Session, webhook_fake: WebhookFake
) -> None:
    for i in range(30):
        r = _wh_post(http, webhook_fake, _generic(f"k{i}"), msg_id=f"m{i}")
        assert r.status_code == 200
        assert r.headers["Content-Length"] == str(len(r.content))
        assert "close" not in r.headers.get("Connection", "")
    clients = {e.request.client for e in webhook_fake.log}
    assert len(clients) == 1  # every request reused the first connection


def test_log_records_method_path_headers_raw_parsed_time(
    http: requests.Session, fake_factory: Any
) -> None:
    clock = FakeClock()
    fake = fake_factory("webhook", clock=clock)
    body = _generic()
    r = _wh_post(http, fake, body, msg_id="m1", path="/hook?x=1")
    assert r.status_code == 200
    (e,) = fake.log
    assert (e.method, e.path, e.route, e.status) == ("POST", "/hook", "receive", 200)
    assert e.request.query == {"x": ["1"]}
    assert e.headers["webhook-id"] == "m1"  # lower-cased names
    assert e.raw == json.dumps(body).encode() and e.parsed == body
    assert e.time == NOW
    assert e.response_json() == {"received": True}
    assert not e.scripted and not e.dropped
    assert fake.last is e


def test_script_queue_serves_first_then_normal(
    http: requests.Session, webhook_fake: WebhookFake
) -> None:
    webhook_fake.script(503, (429, {"Retry-After": "7"}), (200, {"X-A": "b"}, {"custom": 1}))
    assert webhook_fake.pending_script() == 3
    codes = []
    for i in range(4):
        r = _wh_post(http, webhook_fake, _generic(f"k{i}"), msg_id=f"m{i}")
        codes.append(r.status_code)
        if i == 1:
            assert r.headers["Retry-After"] == "7"
        if i == 2:
            assert r.json() == {"custom": 1} and r.headers["X-A"] == "b"
    assert codes == [503, 429, 200, 200]
    assert [e.scripted for e in webhook_fake.log] == [True, True, True, False]
    assert len(webhook_fake.deliveries) == 1  # scripted answers did not deliver


def test_script_rejects_unknown_items_and_routes(webhook_fake: WebhookFake) -> None:
    with pytest.raises(TypeError):
        webhook_fake.script("nonsense")
    with pytest.raises(ValueError):
        webhook_fake.script(500, route="nope")


def test_fault_drop_after_body_processes_then_closes(
    http: requests.Session, webhook_fake: WebhookFake
) -> None:
    webhook_fake.script("drop_after_body")
    with pytest.raises(requests.ConnectionError):
        _wh_post(http, webhook_fake, _generic(), msg_id="m1")
    (e,) = webhook_fake.log
    assert e.dropped and e.status == 200  # the answer it would have sent
    assert len(webhook_fake.deliveries) == 1  # processed: the message arrived
    r = _wh_post(http, webhook_fake, _generic(), msg_id="m1")  # resend, new connection
    assert r.status_code == 200 and webhook_fake.duplicates == 1


def test_fault_drop_unprocessed(http: requests.Session, webhook_fake: WebhookFake) -> None:
    webhook_fake.script(Drop(process=False))
    with pytest.raises(requests.ConnectionError):
        _wh_post(http, webhook_fake, _generic())
    assert webhook_fake.deliveries == [] and webhook_fake.last.status is None


def test_fault_delay_beats_read_timeout(http: requests.Session, webhook_fake: WebhookFake) -> None:
    webhook_fake.script(Delay(0.6), ("delay_s", 0.01))
    with pytest.raises(requests.ReadTimeout):
        _wh_post(http, webhook_fake, _generic(), msg_id="m1", timeout=(1, 0.15))
    r = _wh_post(http, webhook_fake, _generic(), msg_id="m2", timeout=(1, 2))
    assert r.status_code == 200


def test_fault_html_502(http: requests.Session, fcm_fake: FcmFake) -> None:
    fcm_fake.script("html_502", Delay(0, then=(503, {"Retry-After": "2"})))
    url = fcm_fake.url + "/v1/projects/mcrm-fake/messages:send"
    r = http.post(url, json={})
    assert r.status_code == 502 and r.headers["Content-Type"].startswith("text/html")
    assert "Error 502" in r.text
    r = http.post(url, json={})
    assert r.status_code == 503 and r.headers["Retry-After"] == "2"
    assert r.json()["error"]["status"] == "UNAVAILABLE"


def test_stop_does_not_wait_for_a_delayed_answer() -> None:
    fake = WebhookFake().start()
    fake.script(Delay(30))
    import threading

    def call() -> None:
        try:
            requests.post(fake.url + "/hook", data=b"{}", timeout=5)
        except requests.RequestException:
            pass

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    fake.stop()
    assert time.monotonic() - t0 < 2
    t.join(5)


def test_reset_clears_log_script_and_state(
    http: requests.Session, webhook_fake: WebhookFake
) -> None:
    _wh_post(http, webhook_fake, _generic(), msg_id="m1")
    webhook_fake.script(500)
    webhook_fake.reset()
    assert webhook_fake.log == [] and webhook_fake.deliveries == []
    assert webhook_fake.pending_script() == 0
    r = _wh_post(http, webhook_fake, _generic(), msg_id="m1")  # no longer a duplicate
    assert r.status_code == 200 and webhook_fake.duplicates == 0


def test_chunked_body_is_read(http: requests.Session, webhook_fake: WebhookFake) -> None:
    raw = json.dumps(_generic()).encode()
    headers = signed_headers(webhook_fake.secrets[0], "m1", raw, int(time.time()))
    r = http.post(webhook_fake.url + "/hook", data=iter([raw[:10], raw[10:]]), headers=headers)
    assert r.status_code == 200
    assert webhook_fake.last.headers.get("transfer-encoding") == "chunked"
    assert webhook_fake.deliveries[0].raw == raw


def test_gzip_refused_where_the_provider_does_not_take_it(
    http: requests.Session, sendgrid_fake: SendGridFake
) -> None:
    r = http.post(
        sendgrid_fake.url + "/v3/mail/send",
        data=gzip.compress(b"{}"),
        headers={
            "Authorization": f"Bearer {sendgrid_fake.api_key}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )
    assert r.status_code == 415 and "errors" in r.json()


def test_main_runs_a_fake_by_hand() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes", "twilio", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        url = first.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        lines = [proc.stdout.readline() for _ in range(7)]
        creds = json.loads("".join(lines))
        assert creds["base_url"] == url and creds["account_sid"].startswith("AC")
        r = requests.post(
            f"{url}/2010-04-01/Accounts/{creds['account_sid']}/Messages.json",
            data={"To": "+14155552671", "From": creds["from"], "Body": "hi"},
            auth=(creds["account_sid"], creds["auth_token"]),
            timeout=5,
        )
        assert r.status_code == 201
        assert "twilio: POST" in proc.stderr.readline()
    finally:
        proc.terminate()
        proc.wait(5)


# =============================================================================================
# FCM


def _assertion(
    fcm: FcmFake,
    *,
    iat: float | None = None,
    lifetime: int = 3600,
    aud: str = GOOGLE_TOKEN_URI,
    scope: str = FCM_SCOPE,
    iss: str | None = None,
    kid: str | None = None,
) -> str:
    """An assertion built as google-auth builds it, from the service-account JSON."""
    info = fcm.service_account_info()
    key = load_private_pem(info["private_key"])
    now = int(time.time() if iat is None else iat)
    claims = {
        "iat": now,
        "exp": now + lifetime,
        "iss": iss or info["client_email"],
        "aud": aud,
        "scope": scope,
    }
    return encode_jwt(claims, key, {"kid": kid or info["private_key_id"]})


def _token(http: requests.Session, fcm: FcmFake, assertion: str) -> requests.Response:
    return http.post(
        fcm.service_account_info()["token_uri"],
        data={"grant_type": JWT_BEARER, "assertion": assertion},
    )


def _fcm_send(
    http: requests.Session, fcm: FcmFake, message: dict[str, Any], token: str, **extra: Any
) -> requests.Response:
    url = f"{fcm.url}/v1/projects/{fcm.project_id}/messages:send"
    body = {"message": message, **extra}
    return http.post(url, json=body, headers={"Authorization": f"Bearer {token}"})


MSG = {
    "token": "tok-ok-1",
    "notification": {"title": "Weekend sale", "body": "20% off"},
    "data": {"mcrm_id": "1b4e28ba"},
    "android": {"priority": "HIGH", "ttl": "86400s", "collapse_key": "c7f3a1"},
    "apns": {"headers": {"apns-priority": "10", "apns-collapse-id": "c7f3a1"}},
}


def test_fcm_service_account_is_complete_and_deterministic(fcm_fake: FcmFake) -> None:
    info = fcm_fake.service_account_info()
    for k in ("type", "project_id", "private_key_id", "private_key", "client_email"):
        assert info[k]
    assert info["type"] == "service_account"
    assert info["token_uri"] == fcm_fake.url + "/token"
    assert info["private_key"].startswith("-----BEGIN PRIVATE KEY-----\n")
    assert load_private_pem(info["private_key"]) == fcm_fake.key
    assert FcmFake().service_account_info(token_uri="x")["private_key"] == info["private_key"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_fcm_key_and_signature_check_out_with_openssl(fcm_fake: FcmFake, tmp_path: Path) -> None:
    pem = tmp_path / "key.pem"
    pem.write_text(fcm_fake.service_account_info()["private_key"])
    check = subprocess.run(
        ["openssl", "pkey", "-in", str(pem), "-check", "-noout"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    (tmp_path / "msg").write_bytes(b"signing input")
    (tmp_path / "sig").write_bytes(fcm_fake.key.sign(b"signing input"))
    (tmp_path / "pub.pem").write_text(fcm_fake.key.public_pem())
    verify = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem")]
        + ["-signature", str(tmp_path / "sig"), str(tmp_path / "msg")],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0 and "Verified OK" in verify.stdout


def test_fcm_token_exchange_then_send(http: requests.Session, fcm_fake: FcmFake) -> None:
    r = _token(http, fcm_fake, _assertion(fcm_fake))
    assert r.status_code == 200, r.text
    tok = r.json()
    assert tok["token_type"] == "Bearer" and tok["expires_in"] == 3599
    assert tok["access_token"].startswith("ya29.")
    assert fcm_fake.assertions[0]["aud"] == GOOGLE_TOKEN_URI
    r = _fcm_send(http, fcm_fake, MSG, tok["access_token"])
    assert r.status_code == 200
    assert r.json() == {"name": "projects/mcrm-fake/messages/1"}
    r = _fcm_send(http, fcm_fake, MSG, tok["access_token"], validate_only=True)
    assert r.json() == {"name": "projects/mcrm-fake/messages/fake_message_id"}
    assert fcm_fake.sent == [MSG]  # validate_only sends nothing


def _tampered(assertion: str) -> str:
    """The same signature over different claims."""
    header, _, signature = assertion.split(".")
    claims = decode_jwt(assertion)[1]
    claims["scope"] = "https://www.googleapis.com/auth/cloud-platform"
    return header + "." + b64url(json.dumps(claims).encode()) + "." + signature


@pytest.mark.parametrize(
    ("case", "error", "description"),
    [
        ("tampered", "invalid_grant", "Invalid JWT Signature."),
        ("bad_kid", "invalid_grant", "Invalid JWT Signature."),
        ("own_aud", "invalid_grant", "Failed audience check"),
        ("too_long", "invalid_grant", TIMEFRAME),
        ("future", "invalid_grant", TIMEFRAME),
        ("expired", "invalid_grant", TIMEFRAME),
        ("scope", "invalid_scope", "Invalid OAuth scope"),
        ("iss", "invalid_grant", "account not found"),
        ("garbage", "invalid_grant", "Invalid JWT"),
    ],
)
def test_fcm_token_endpoint_rejects_bad_assertions(
    http: requests.Session, fcm_fake: FcmFake, case: str, error: str, description: str
) -> None:
    now = time.time()
    builders: dict[str, Callable[[], str]] = {
        "tampered": lambda: _tampered(_assertion(fcm_fake)),
        "bad_kid": lambda: _assertion(fcm_fake, kid="0" * 40),
        "own_aud": lambda: _assertion(fcm_fake, aud=fcm_fake.token_uri),
        "too_long": lambda: _assertion(fcm_fake, lifetime=3601),
        "future": lambda: _assertion(fcm_fake, iat=now + 120),
        "expired": lambda: _assertion(fcm_fake, iat=now - 4000),
        "scope": lambda: _assertion(fcm_fake, scope="https://www.googleapis.com/auth/drive"),
        "iss": lambda: _assertion(fcm_fake, iss="someone@else.iam.gserviceaccount.com"),
        "garbage": lambda: "not.a-jwt",
    }
    assertion = builders[case]()
    r = _token(http, fcm_fake, assertion)
    assert r.status_code == 400
    assert r.json()["error"] == error and description in r.json()["error_description"]
    assert fcm_fake.tokens_issued == 0


def test_fcm_token_endpoint_wants_the_jwt_bearer_form(
    http: requests.Session, fcm_fake: FcmFake
) -> None:
    r = http.post(fcm_fake.token_uri, data={"grant_type": "client_credentials", "assertion": "x"})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    r = http.post(fcm_fake.token_uri, json={"grant_type": JWT_BEARER})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_fcm_unknown_or_expired_bearer_is_401(fake_factory: Any, http: requests.Session) -> None:
    clock = FakeClock(time.time())
    fcm: FcmFake = fake_factory("fcm", clock=clock)
    r = _fcm_send(http, fcm, MSG, "ya29.nope")
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    assert "details" not in r.json()["error"] and "WWW-Authenticate" in r.headers
    token = fcm.issue_token()
    assert _fcm_send(http, fcm, MSG, token).status_code == 200
    clock.advance(3599)
    assert _fcm_send(http, fcm, MSG, token).status_code == 401


def test_fcm_tokens_expire_after_n_sends(http: requests.Session, fcm_fake: FcmFake) -> None:
    fcm_fake.expire_tokens_after(2)
    t1 = fcm_fake.issue_token()
    assert [_fcm_send(http, fcm_fake, MSG, t1).status_code for _ in range(3)] == [200, 200, 401]
    t2 = _token(http, fcm_fake, _assertion(fcm_fake)).json()["access_token"]
    assert _fcm_send(http, fcm_fake, MSG, t2).status_code == 200


def test_fcm_unknown_project_is_permission_denied_without_fcm_error(
    http: requests.Session, fcm_fake: FcmFake
) -> None:
    token = fcm_fake.issue_token()
    url = f"{fcm_fake.url}/v1/projects/other-project/messages:send"
    r = http.post(url, json={"message": MSG}, headers={"Authorization": f"Bearer {token}"})
    err = r.json()["error"]
    assert r.status_code == 403 and err["status"] == "PERMISSION_DENIED"
    assert not any(d["@type"].endswith("FcmError") for d in err["details"])


def _violations(r: requests.Response) -> list[str]:
    details = r.json()["error"].get("details", [])
    return [v["field"] for d in details for v in d.get("fieldViolations", [])]


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"data": {"n": 1}}, "message.data[0].value", "TYPE_STRING"),
        ({"topic": "news"}, "message", "oneof"),
        ({"token": None}, "message", "Recipient of the message is not set"),
        ({"android": {"ttl": "86400"}}, "message.android.ttl", "duration"),
        ({"android": {"ttl": "2419201s"}}, "message.android.ttl", "out of range"),
        ({"android": {"priority": "high"}}, "message.android.priority", "Priority"),
        ({"tokn": "x"}, "message", 'Unknown name "tokn"'),
        ({"data": {"from": "x"}}, "message.data", "Invalid data payload key"),
        ({"token": "has space"}, "message.token", "not a valid FCM registration token"),
    ],
)
def test_fcm_rejects_bad_fields_with_field_violations(
    http: requests.Session,
    fcm_fake: FcmFake,
    change: dict[str, Any],
    field: str,
    fragment: str,
) -> None:
    msg = {**MSG, **change}
    msg = {k: v for k, v in msg.items() if v is not None}
    r = _fcm_send(http, fcm_fake, msg, fcm_fake.issue_token())
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["status"] == "INVALID_ARGUMENT" and fragment in err["message"]
    assert field in _violations(r)
    assert fcm_fake.sent == []


def test_fcm_payload_limit(http: requests.Session, fcm_fake: FcmFake) -> None:
    token = fcm_fake.issue_token()
    big = {**MSG, "data": {"mcrm_id": "x", "blob": "a" * 4100}}
    r = _fcm_send(http, fcm_fake, big, token)
    assert r.status_code == 400 and "too big" in r.json()["error"]["message"]
    ok = {**MSG, "data": {"blob": "a" * 3900}}
    assert _fcm_send(http, fcm_fake, ok, token).status_code == 200


@pytest.mark.parametrize(
    ("prefix", "status", "grpc", "code", "retry_after"),
    [
        ("unregistered-", 404, "NOT_FOUND", "UNREGISTERED", None),
        ("invalid-", 400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", None),
        ("mismatch-", 403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", None),
        ("thirdparty-", 401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", None),
        ("quota-", 429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "1"),
        ("internal-", 500, "INTERNAL", "INTERNAL", None),
        ("unavailable-", 503, "UNAVAILABLE", "UNAVAILABLE", "1"),
    ],
)
def test_fcm_magic_tokens(
    http: requests.Session,
    fcm_fake: FcmFake,
    prefix: str,
    status: int,
    grpc: str,
    code: str,
    retry_after: str | None,
) -> None:
    r = _fcm_send(http, fcm_fake, {**MSG, "token": prefix + "abc"}, fcm_fake.issue_token())
    assert r.status_code == status
    err = r.json()["error"]
    assert err["code"] == status and err["status"] == grpc
    codes = [d["errorCode"] for d in err["details"] if d["@type"].endswith("FcmError")]
    assert codes == [code]
    assert r.headers.get("Retry-After") == retry_after
    if prefix == "invalid-":
        assert _violations(r) == ["message.token"]
    assert fcm_fake.sent == []


def test_fcm_magic_bad_gateway_is_html(http: requests.Session, fcm_fake: FcmFake) -> None:
    r = _fcm_send(http, fcm_fake, {**MSG, "token": "badgateway-1"}, fcm_fake.issue_token())
    assert r.status_code == 502 and r.text.lstrip().startswith("<!DOCTYPE html>")


def test_fcm_script_routes_and_error_builder(http: requests.Session, fcm_fake: FcmFake) -> None:
    fcm_fake.script(500, route="token")
    fcm_fake.script(fcm_error(404, "NOT_FOUND", "gone", "UNREGISTERED"), 429)
    r = _token(http, fcm_fake, _assertion(fcm_fake))
    assert r.status_code == 500
    assert _token(http, fcm_fake, _assertion(fcm_fake)).status_code == 200
    token = fcm_fake.issue_token()
    r = _fcm_send(http, fcm_fake, MSG, token)
    assert r.status_code == 404 and r.json()["error"]["details"][0]["errorCode"] == "UNREGISTERED"
    r = _fcm_send(http, fcm_fake, MSG, token)
    assert r.status_code == 429 and r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert _fcm_send(http, fcm_fake, MSG, token).status_code == 200


def test_fcm_unknown_route_is_404(http: requests.Session, fcm_fake: FcmFake) -> None:
    r = http.post(fcm_fake.url + "/v1/projects/mcrm-fake/messages:batchSend", json={})
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"


# =============================================================================================
# Expo


def _expo(http: requests.Session, fake: ExpoFake, body: Any, **kw: Any) -> requests.Response:
    return http.post(fake.url + "/--/api/v2/push/send", json=body, **kw)


def _receipts(http: requests.Session, fake: ExpoFake, ids: list[str]) -> dict[str, Any]:
    r = http.post(fake.url + "/--/api/v2/push/getReceipts", json={"ids": ids})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def _tok(inner: str) -> str:
    return f"ExponentPushToken[{inner}]"


def test_expo_tickets_in_order_with_magic(http: requests.Session, expo_fake: ExpoFake) -> None:
    inners = ["ok-1", "unregistered-1", "toobig-1", "ratelimited-1", "badcreds-1", "ok-2"]
    body = [{"to": _tok(i), "title": "t", "body": "b", "data": {"mcrm_id": i}} for i in inners]
    r = _expo(http, expo_fake, body)
    assert r.status_code == 200
    tickets = r.json()["data"]
    assert [t["status"] for t in tickets] == ["ok", "error", "error", "error", "error", "ok"]
    errors = [t["details"]["error"] for t in tickets if t["status"] == "error"]
    assert errors == [
        "DeviceNotRegistered",
        "MessageTooBig",
        "MessageRateExceeded",
        "InvalidCredentials",
    ]
    assert tickets[1]["details"]["expoPushToken"] == _tok("unregistered-1")
    assert str(uuid.UUID(tickets[0]["id"])) == tickets[0]["id"]
    assert [t for t, _ in expo_fake.sent] == [_tok("ok-1"), _tok("ok-2")]


def test_expo_single_object_and_other_token_forms(
    http: requests.Session, expo_fake: ExpoFake
) -> None:
    r = _expo(http, expo_fake, {"to": "ExpoPushToken[abc]", "body": "b"})
    assert r.json()["data"]["status"] == "ok"  # one object in, one ticket object out
    r = _expo(http, expo_fake, {"to": [str(uuid.uuid4()), _tok("x")], "body": "b"})
    assert [t["status"] for t in r.json()["data"]] == ["ok", "ok"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ([{"to": _tok(f"t{i}"), "body": "b"} for i in range(101)], "PUSH_TOO_MANY_NOTIFICATIONS"),
        ([{"to": [_tok(f"t{i}") for i in range(60)]}, {"to": [_tok(f"u{i}") for i in range(41)]}],
         "PUSH_TOO_MANY_NOTIFICATIONS"),
        ([{"to": "not-a-token", "body": "b"}], "VALIDATION_ERROR"),
        ([{"to": _tok("a"), "priority": "urgent"}], "VALIDATION_ERROR"),
        ([{"to": _tok("a"), "colour": "red"}], "VALIDATION_ERROR"),
        ([{"body": "no recipient"}], "VALIDATION_ERROR"),
        ([], "VALIDATION_ERROR"),
    ],
)  # fmt: skip
def test_expo_request_errors(
    http: requests.Session, expo_fake: ExpoFake, body: Any, code: str
) -> None:
    r = _expo(http, expo_fake, body)
    assert r.status_code == 400
    assert r.json()["errors"][0]["code"] == code
    assert expo_fake.sent == []


def test_expo_mixed_projects(http: requests.Session, fake_factory: Any) -> None:
    fake: ExpoFake = fake_factory("expo", projects={_tok("b1"): "@acme/other"})
    r = _expo(http, fake, [{"to": _tok("a1")}, {"to": _tok("b1")}, {"to": _tok("a2")}])
    assert r.status_code == 400
    err = r.json()["errors"][0]
    assert err["code"] == "PUSH_TOO_MANY_EXPERIENCE_IDS"
    assert err["details"] == {"@mcrm/app": [_tok("a1"), _tok("a2")], "@acme/other": [_tok("b1")]}


def test_expo_access_token_and_gzip(http: requests.Session, fake_factory: Any) -> None:
    fake: ExpoFake = fake_factory("expo", access_token="expo-secret")
    r = _expo(http, fake, [{"to": _tok("a")}])
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    raw = gzip.compress(json.dumps([{"to": _tok("a"), "body": "x" * 2000}]).encode())
    r = http.post(
        fake.url + "/--/api/v2/push/send",
        data=raw,
        headers={
            "Authorization": "Bearer expo-secret",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )
    assert r.status_code == 200 and r.json()["data"][0]["status"] == "ok"
    assert fake.last.raw == raw and fake.last.parsed[0]["to"] == _tok("a")


def test_expo_receipts_on_the_injected_clock(http: requests.Session, fake_factory: Any) -> None:
    clock = FakeClock()
    fake: ExpoFake = fake_factory("expo", clock=clock, receipt_delay_s=60)
    body = [{"to": _tok(i)} for i in ("ok-1", "late-unregistered-1", "pending-1")]
    ids = [t["id"] for t in _expo(http, fake, body).json()["data"]]
    assert _receipts(http, fake, ids) == {}  # not ready yet
    clock.advance(60)
    got = _receipts(http, fake, [*ids, "00000000-0000-4000-8000-000000000000"])
    assert got[ids[0]] == {"status": "ok"}
    assert got[ids[1]]["status"] == "error"
    assert got[ids[1]]["details"]["error"] == "DeviceNotRegistered"
    assert set(got) == {ids[0], ids[1]}  # pending never ready; unknown ids absent
    clock.advance(24 * 3600)
    assert _receipts(http, fake, ids) == {}  # deleted after a day


def test_expo_receipt_limits_and_script(http: requests.Session, expo_fake: ExpoFake) -> None:
    r = http.post(
        expo_fake.url + "/--/api/v2/push/getReceipts", json={"ids": [str(i) for i in range(1001)]}
    )
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "PUSH_TOO_MANY_RECEIPTS"
    expo_fake.script(429, 503)
    expo_fake.script(500, route="receipts")
    r = _expo(http, expo_fake, [{"to": _tok("a")}])
    assert r.status_code == 429 and r.json()["errors"][0]["code"] == "TOO_MANY_REQUESTS"
    assert _expo(http, expo_fake, [{"to": _tok("a")}]).status_code == 503
    r = http.post(expo_fake.url + "/--/api/v2/push/getReceipts", json={"ids": []})
    assert r.status_code == 500 and r.json()["errors"][0]["isTransient"] is True


# =============================================================================================
# OneSignal


def _os_body(fake: OneSignalFake, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "app_id": fake.app_id,
        "target_channel": "push",
        "include_aliases": {"external_id": ["u-1", "u-2"]},
        "headings": {"en": "Weekend sale"},
        "contents": {"en": "20% off"},
        "data": {"mcrm_id": "k"},
        "idempotency_key": str(uuid.uuid4()),
    }
    body.update(kw)
    return {k: v for k, v in body.items() if v is not None}


def _os(
    http: requests.Session, fake: OneSignalFake, body: Any, key: str | None = None
) -> requests.Response:
    return http.post(
        fake.url + "/notifications?c=push",
        json=body,
        headers={"Authorization": f"Key {key or fake.api_key}"},
    )


def test_onesignal_created(http: requests.Session, onesignal_fake: OneSignalFake) -> None:
    body = _os_body(onesignal_fake)
    r = _os(http, onesignal_fake, body)
    assert r.status_code == 200
    out = r.json()
    assert uuid.UUID(out["id"]) and "errors" not in out
    assert [n["id"] for n in onesignal_fake.notifications] == [out["id"]]


def test_onesignal_auth(http: requests.Session, onesignal_fake: OneSignalFake) -> None:
    body = _os_body(onesignal_fake)
    r = http.post(onesignal_fake.url + "/notifications", json=body)
    assert r.status_code == 401 and isinstance(r.json()["errors"], list)
    r = _os(http, onesignal_fake, body, key="wrong")
    assert r.status_code == 403 and "Access denied" in r.json()["errors"][0]
    r = http.post(
        onesignal_fake.url + "/notifications",
        json=body,
        headers={"Authorization": f"Basic {onesignal_fake.api_key}"},
    )
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"app_id": "00000000-0000-4000-8000-000000000000"}, "app_id not found"),
        ({"include_aliases": None}, "You must include which players"),
        ({"include_subscription_ids": ["s1"]}, "one targeting mode"),
        ({"include_aliases": {"external_id": [f"u{i}" for i in range(2001)]}}, "at most 2000"),
        ({"include_aliases": {"user_id": ["u1"]}}, "alias label"),
        ({"target_channel": None}, "target_channel is required"),
        ({"contents": {"fr": "Bonjour"}}, "English language content"),
        ({"idempotency_key": "not-a-uuid"}, "valid UUID"),
        ({"idempotency_key": str(uuid.uuid1())}, "valid UUID"),
        ({"idempotency_key": str(uuid.uuid5(uuid.NAMESPACE_DNS, "x"))}, "valid UUID"),
    ],
)
def test_onesignal_rejects(
    http: requests.Session, onesignal_fake: OneSignalFake, change: dict[str, Any], fragment: str
) -> None:
    body = _os_body(onesignal_fake)
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    r = _os(http, onesignal_fake, body)
    assert r.status_code == 400
    assert any(fragment in e for e in r.json()["errors"]), r.json()
    assert onesignal_fake.notifications == []


def test_onesignal_accepts_v3_key_and_old_name(
    http: requests.Session, onesignal_fake: OneSignalFake
) -> None:
    v3 = str(uuid.uuid3(uuid.NAMESPACE_DNS, "x"))
    assert _os(http, onesignal_fake, _os_body(onesignal_fake, idempotency_key=v3)).ok
    body = _os_body(onesignal_fake, idempotency_key=None, external_id=str(uuid.uuid4()))
    first = _os(http, onesignal_fake, body)
    assert first.ok and _os(http, onesignal_fake, body).content == first.content
    assert len(onesignal_fake.notifications) == 2


def test_onesignal_magic_ids(http: requests.Session, onesignal_fake: OneSignalFake) -> None:
    aliases = {"external_id": ["u-1", "nosub-2", "nosub-3"]}
    r = _os(http, onesignal_fake, _os_body(onesignal_fake, include_aliases=aliases))
    assert r.json()["errors"] == {"invalid_aliases": {"external_id": ["nosub-2", "nosub-3"]}}
    assert r.json()["id"]
    subs = {"include_aliases": None, "include_subscription_ids": ["s-1", "dead-2"]}
    r = _os(http, onesignal_fake, _os_body(onesignal_fake, **subs))
    assert r.json()["errors"] == {"invalid_player_ids": ["dead-2"]}
    r = _os(
        http,
        onesignal_fake,
        _os_body(onesignal_fake, include_aliases={"external_id": ["nosub-1"]}),
    )
    assert r.status_code == 200
    assert r.json() == {"id": "", "errors": ["All included players are not subscribed"]}
    assert len(onesignal_fake.notifications) == 2


def test_onesignal_dedupe_replays_first_answer_for_30_days(
    http: requests.Session, fake_factory: Any
) -> None:
    clock = FakeClock()
    fake: OneSignalFake = fake_factory("onesignal", clock=clock)
    key = str(uuid.uuid4())
    first = _os(http, fake, _os_body(fake, idempotency_key=key))
    changed = _os_body(fake, idempotency_key=key, contents={"en": "other text"})
    again = _os(http, fake, changed)
    assert again.status_code == 200 and again.content == first.content
    assert len(fake.notifications) == 1 and fake.replays == 1
    clock.advance(30 * 86_400 - 1)
    assert _os(http, fake, changed).content == first.content
    clock.advance(1)
    later = _os(http, fake, changed)
    assert later.json()["id"] != first.json()["id"] and len(fake.notifications) == 2


def test_onesignal_refused_request_does_not_take_the_key(
    http: requests.Session, onesignal_fake: OneSignalFake
) -> None:
    key = str(uuid.uuid4())
    bad = _os_body(onesignal_fake, idempotency_key=key, contents={"fr": "x"})
    assert _os(http, onesignal_fake, bad).status_code == 400
    assert _os(http, onesignal_fake, _os_body(onesignal_fake, idempotency_key=key)).json()["id"]
    assert len(onesignal_fake.notifications) == 1


def test_onesignal_drop_then_resend_replays(
    http: requests.Session, onesignal_fake: OneSignalFake
) -> None:
    onesignal_fake.script("drop_after_body")
    body = _os_body(onesignal_fake)
    with pytest.raises(requests.ConnectionError):
        _os(http, onesignal_fake, body)
    r = _os(http, onesignal_fake, body)
    assert r.status_code == 200 and r.content == onesignal_fake.log[0].response_body
    assert len(onesignal_fake.notifications) == 1 and onesignal_fake.replays == 1


def test_onesignal_scripted_429_has_retry_after(
    http: requests.Session, onesignal_fake: OneSignalFake
) -> None:
    onesignal_fake.script(429, 500)
    r = _os(http, onesignal_fake, _os_body(onesignal_fake))
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert r.json() == {"errors": ["API rate limit exceeded."]}
    assert _os(http, onesignal_fake, _os_body(onesignal_fake)).status_code == 500


# =============================================================================================
# SendGrid


def _sg_body(n: int = 2, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "personalizations": [
            {
                "to": [{"email": f"user{i}@example.com", "name": f"User {i}"}],
                "custom_args": {"mcrm_id": f"k{i}"},
                "headers": {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
            }
            for i in range(n)
        ],
        "from": {"email": "news@example.com", "name": "Example"},
        "subject": "Weekend sale",
        "content": [
            {"type": "text/plain", "value": "20% off"},
            {"type": "text/html", "value": "<p>20% off</p>"},
        ],
    }
    body.update(kw)
    return body


def _sg(
    http: requests.Session, fake: SendGridFake, body: Any, key: str | None = None
) -> requests.Response:
    return http.post(
        fake.url + "/v3/mail/send",
        json=body,
        headers={"Authorization": f"Bearer {key or fake.api_key}"},
    )


def test_sendgrid_queued_and_sandbox(http: requests.Session, sendgrid_fake: SendGridFake) -> None:
    r = _sg(http, sendgrid_fake, _sg_body(3))
    assert r.status_code == 202 and r.content == b""
    mid = r.headers["X-Message-Id"]
    assert len(mid) == 22
    assert sendgrid_fake.sent[0][0] == mid and sendgrid_fake.accepted == 3
    sandbox = _sg_body(1, mail_settings={"sandbox_mode": {"enable": True}})
    r = _sg(http, sendgrid_fake, sandbox)
    assert r.status_code == 200 and "X-Message-Id" not in r.headers
    assert len(sendgrid_fake.sent) == 1


def test_sendgrid_auth_and_media_type(http: requests.Session, sendgrid_fake: SendGridFake) -> None:
    r = _sg(http, sendgrid_fake, _sg_body(), key="SG.wrong")
    assert r.status_code == 401
    assert r.json() == {
        "errors": [
            {
                "message": "The provided authorization grant is invalid, expired, or revoked",
                "field": None,
                "help": None,
            }
        ]
    }
    r = http.post(
        sendgrid_fake.url + "/v3/mail/send",
        data="x=1",
        headers={"Authorization": f"Bearer {sendgrid_fake.api_key}"},
    )
    assert r.status_code == 415


def _fields(r: requests.Response) -> list[str | None]:
    return [e["field"] for e in r.json()["errors"]]


def test_sendgrid_names_the_bad_recipient(
    http: requests.Session, sendgrid_fake: SendGridFake
) -> None:
    body = _sg_body(2)
    body["personalizations"][0]["to"].append({"email": "not-an-address"})
    body["personalizations"][1]["to"][0]["name"] = "Doe; John"
    r = _sg(http, sendgrid_fake, body)
    assert r.status_code == 400
    assert _fields(r) == ["personalizations.0.to.1.email", "personalizations.1.to.0.name"]
    assert r.json()["errors"][0]["message"] == "Does not contain a valid address."
    assert sendgrid_fake.sent == []


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.update(personalizations=[]), "personalizations"),
        (lambda b: b["personalizations"][0].update(to=[]), "personalizations.0.to"),
        (
            lambda b: b["personalizations"][0].update(
                cc=[{"email": "USER0@example.com"}]
            ),
            "personalizations.0.cc.0.email",
        ),
        (lambda b: b.pop("subject"), "subject"),
        (lambda b: b.update({"from": {"email": "bad@"}}), "from.email"),
        (lambda b: b.pop("from"), "from"),
        (lambda b: b.pop("content"), "content"),
        (lambda b: b.update(content=[{"type": "text/html", "value": "<p/>"},
                                     {"type": "text/plain", "value": "x"}]), "content"),
        (lambda b: b["content"][0].update(value=""), "content.0.value"),
        (lambda b: b["personalizations"][0].update(custom_args={"big": "x" * 10_000}),
         "personalizations.0.custom_args"),
        (lambda b: b["personalizations"][0].update(custom_args={"n": 1}),
         "personalizations.0.custom_args"),
        (lambda b: b["personalizations"][0].update(headers={"From": "x@example.com"}),
         "personalizations.0.headers"),
    ],
)  # fmt: skip
def test_sendgrid_validation_fields(
    http: requests.Session, sendgrid_fake: SendGridFake, mutate: Any, field: str
) -> None:
    body = _sg_body(1)
    mutate(body)
    r = _sg(http, sendgrid_fake, body)
    assert r.status_code == 400
    assert field in _fields(r), r.json()


def test_sendgrid_subject_per_personalization_or_template(
    http: requests.Session, sendgrid_fake: SendGridFake
) -> None:
    body = _sg_body(2)
    del body["subject"]
    for p in body["personalizations"]:
        p["subject"] = "Hi"
    assert _sg(http, sendgrid_fake, body).status_code == 202
    templated = _sg_body(1, template_id="d-123")
    del templated["subject"], templated["content"]
    assert _sg(http, sendgrid_fake, templated).status_code == 202


def test_sendgrid_recipient_limit(http: requests.Session, sendgrid_fake: SendGridFake) -> None:
    body = _sg_body(1000)
    assert _sg(http, sendgrid_fake, body).status_code == 202
    body["personalizations"][0]["cc"] = [{"email": "one.more@example.com"}]
    r = _sg(http, sendgrid_fake, body)
    assert r.status_code == 400 and _fields(r) == ["personalizations"]
    assert "1000" in r.json()["errors"][0]["message"]
    r = _sg(http, sendgrid_fake, _sg_body(1001))
    assert r.status_code == 400 and "personalizations" in _fields(r)


def test_sendgrid_payload_too_large(http: requests.Session, fake_factory: Any) -> None:
    fake: SendGridFake = fake_factory("sendgrid", max_bytes=2000)
    r = _sg(http, fake, _sg_body(50))
    assert r.status_code == 413 and r.json()["errors"][0]["message"] == "Payload Too Large"


def test_sendgrid_scripted_429_has_rate_limit_headers(
    http: requests.Session, fake_factory: Any
) -> None:
    fake: SendGridFake = fake_factory("sendgrid", clock=FakeClock())
    fake.script(429, 503, "drop_after_body")
    r = _sg(http, fake, _sg_body())
    assert r.status_code == 429
    assert r.json()["errors"][0]["message"] == "too many requests"
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert r.headers["X-RateLimit-Reset"] == str(NOW + 1)
    assert _sg(http, fake, _sg_body()).status_code == 503
    with pytest.raises(requests.ConnectionError):
        _sg(http, fake, _sg_body())
    assert len(fake.sent) == 1  # processed, answer lost


# =============================================================================================
# Twilio


def _tw(
    http: requests.Session,
    fake: TwilioFake,
    data: dict[str, str],
    *,
    auth: tuple[str, str] | None = None,
    sid: str | None = None,
) -> requests.Response:
    url = f"{fake.url}/2010-04-01/Accounts/{sid or fake.account_sid}/Messages.json"
    return http.post(url, data=data, auth=auth or (fake.account_sid, fake.auth_token))


def test_twilio_created(http: requests.Session, twilio_fake: TwilioFake) -> None:
    r = _tw(http, twilio_fake, {"To": "+14155552671", "From": "+15005550006", "Body": "a" * 161})
    assert r.status_code == 201
    m = r.json()
    assert m["sid"].startswith("SM") and len(m["sid"]) == 34
    assert (m["status"], m["num_segments"], m["error_code"]) == ("queued", "2", None)
    assert m["uri"] == f"/2010-04-01/Accounts/{twilio_fake.account_sid}/Messages/{m['sid']}.json"
    assert m["direction"] == "outbound-api" and m["to"] == "+14155552671"
    assert twilio_fake.messages == [m]
    assert r.headers["Twilio-Request-Id"].startswith("RQ")


def test_twilio_messaging_service(http: requests.Session, twilio_fake: TwilioFake) -> None:
    mg = twilio_fake.credentials()["messaging_service_sid"]
    r = _tw(http, twilio_fake, {"To": "+14155552671", "MessagingServiceSid": mg, "Body": "hi"})
    assert r.status_code == 201
    assert (r.json()["num_segments"], r.json()["status"]) == ("0", "accepted")
    r = _tw(http, twilio_fake, {"To": "+14155552671", "MessagingServiceSid": "MG" + "0" * 32})
    assert r.json()["code"] == 21701


def test_twilio_auth(http: requests.Session, fake_factory: Any) -> None:
    fake: TwilioFake = fake_factory("twilio", api_keys={"SK" + "1" * 32: "key-secret"})
    data = {"To": "+14155552671", "From": "+15005550006", "Body": "hi"}
    r = _tw(http, fake, data, auth=(fake.account_sid, "wrong"))
    assert r.status_code == 401
    assert r.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert _tw(http, fake, data, auth=("SK" + "1" * 32, "key-secret")).status_code == 201
    r = _tw(http, fake, data, sid="AC" + "f" * 32)
    assert r.status_code == 404 and r.json()["code"] == 20404


def test_twilio_form_only(http: requests.Session, twilio_fake: TwilioFake) -> None:
    url = f"{twilio_fake.url}/2010-04-01/Accounts/{twilio_fake.account_sid}/Messages.json"
    r = http.post(
        url,
        json={"To": "+14155552671", "From": "+15005550006", "Body": "hi"},
        auth=(twilio_fake.account_sid, twilio_fake.auth_token),
    )
    assert r.status_code == 400 and r.json()["code"] == 21604
    assert twilio_fake.messages == []


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"To": "+15005550001"}, 21211),
        ({"To": "+15005550002"}, 21612),
        ({"To": "+15005550003"}, 21408),
        ({"To": "+15005550004"}, 21610),
        ({"To": "+15005550009"}, 21614),
        ({"To": "4155552671"}, 21211),
        ({"From": "+15005550001"}, 21212),
        ({"From": "+15005550007"}, 21606),
        ({"From": "+15005550008"}, 21611),
        ({"From": "+14155550000"}, 21606),
        ({"From": "not valid!"}, 21212),
        ({"From": ""}, 21603),
        ({"To": ""}, 21604),
        ({"Body": ""}, 21602),
        ({"Body": "x" * 1601}, 21617),
        ({"StatusCallback": "not a url"}, 21609),
    ],
)
def test_twilio_errors_and_magic_numbers(
    http: requests.Session, twilio_fake: TwilioFake, data: dict[str, str], code: int
) -> None:
    form = {"To": "+14155552671", "From": "+15005550006", "Body": "hi", **data}
    r = _tw(http, twilio_fake, {k: v for k, v in form.items() if v})
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == code and body["status"] == 400
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert twilio_fake.messages == []


def test_twilio_alphanumeric_sender_and_scripts(
    http: requests.Session, twilio_fake: TwilioFake
) -> None:
    data = {"To": "+14155552671", "From": "MCRM Shop", "Body": "hi"}
    assert _tw(http, twilio_fake, data).status_code == 201
    twilio_fake.script(429, 503, twilio_error(21610))
    r = _tw(http, twilio_fake, data)
    assert r.status_code == 429 and r.json()["code"] == 20429
    assert _tw(http, twilio_fake, data).json()["code"] == 20503
    assert _tw(http, twilio_fake, data).json()["code"] == 21610


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),
        ("€" * 81, "GSM-7", 2),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 3),
        ("ё" * 70, "UCS-2", 1),
        ("ё" * 71, "UCS-2", 2),
        ("ё" * 135, "UCS-2", 3),
        ("😀" * 35, "UCS-2", 1),
        ("😀" * 36, "UCS-2", 2),
        ("", "GSM-7", 0),
    ],
)
def test_twilio_segment_vectors(text: str, encoding: str, segments: int) -> None:
    enc, _, segs = sms_segments(text)
    assert (enc, segs) == (encoding, segments)


# =============================================================================================
# Webhook and in-app


def test_standard_webhooks_test_vector() -> None:
    body = b'{"type":"campaign.message","timestamp":"2026-01-01T00:00:00Z","data":{"id":"1"}}'
    secret = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    assert (
        sign(secret, "msg_2b7d1f0e5c", 1767225600, body)
        == "v1,hEhS8VkPRQYgjop+TQsLvb0AMD2klE5SUORFKRz0voY="
    )


def test_webhook_accepts_a_signed_message(
    http: requests.Session, webhook_fake: WebhookFake
) -> None:
    body = _generic("k1")
    r = _wh_post(http, webhook_fake, body, msg_id="k1")
    assert r.status_code == 200
    (d,) = webhook_fake.deliveries
    assert (d.webhook_id, d.body, d.raw) == ("k1", body, json.dumps(body).encode())


def test_webhook_rejects_bad_signatures(http: requests.Session, fake_factory: Any) -> None:
    clock = FakeClock()
    fake: WebhookFake = fake_factory("webhook", clock=clock)
    raw = json.dumps(_generic()).encode()
    good = signed_headers(fake.secrets[0], "m1", raw, NOW)

    def post(headers: dict[str, str], data: bytes = raw) -> int:
        return http.post(fake.url + "/hook", data=data, headers=headers).status_code

    assert post({k: v for k, v in good.items() if k != "webhook-signature"}) == 401
    assert post({**good, "webhook-signature": "v1,AAAA"}) == 401
    other = "whsec_" + "A" * 43 + "="
    assert post(signed_headers(other, "m1", raw, NOW)) == 401
    reserialised = json.dumps(_generic(), indent=1).encode()
    assert post(good, reserialised) == 401  # the signature covers the exact bytes
    assert post(signed_headers(fake.secrets[0], "m1", raw, NOW - 301)) == 401
    assert post(signed_headers(fake.secrets[0], "m1", raw, NOW + 301)) == 401
    assert post({**good, "webhook-timestamp": "1.5e9"}) == 401
    assert fake.deliveries == []
    assert post(signed_headers([other, fake.secrets[0]], "m1", raw, NOW - 300)) == 200
    assert fake.log[0].response_json()["error"] == "invalid_signature"


def test_webhook_receiver_with_rotated_secrets(http: requests.Session, fake_factory: Any) -> None:
    old, new = "whsec_" + "A" * 43 + "=", "whsec_" + "B" * 43 + "="
    fake: WebhookFake = fake_factory("webhook", secret=[old, new])
    raw = json.dumps(_generic()).encode()
    r = http.post(
        fake.url + "/h", data=raw, headers=signed_headers(old, "m1", raw, int(time.time()))
    )
    assert r.status_code == 200


def test_webhook_dedupes_on_webhook_id(http: requests.Session, fake_factory: Any) -> None:
    clock = FakeClock()
    fake: WebhookFake = fake_factory("webhook", clock=clock)
    first = _wh_post(http, fake, _generic(), msg_id="m1")
    clock.advance(5)  # a retry: same id, new timestamp, new signature
    again = _wh_post(http, fake, _generic(), msg_id="m1")
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert len(fake.deliveries) == 1 and fake.duplicates == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({**_generic(), "type": "inapp.message"}, 400),
        ({**_generic(), "timestamp": "yesterday"}, 400),
        ({"type": "campaign.message", "timestamp": "2026-01-01T00:00:00Z", "data": {}}, 400),
        ({**_generic(), "pad": "x" * 21_000}, 413),
    ],
)
def test_webhook_checks_the_contract(
    http: requests.Session, webhook_fake: WebhookFake, body: dict[str, Any], status: int
) -> None:
    r = _wh_post(http, webhook_fake, body)
    assert r.status_code == status
    assert webhook_fake.deliveries == []


def test_webhook_magic_paths(http: requests.Session, webhook_fake: WebhookFake) -> None:
    assert _wh_post(http, webhook_fake, _generic(), path="/410").status_code == 410
    r = _wh_post(http, webhook_fake, _generic(), path="/429")
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert _wh_post(http, webhook_fake, _generic(), path="/500").status_code == 500
    r = _wh_post(http, webhook_fake, _generic(), path="/redirect", allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].endswith("/redirect-target")
    assert webhook_fake.requests_to("redirected") == []
    _wh_post(http, webhook_fake, _generic(), path="/redirect")  # a client that follows
    assert len(webhook_fake.requests_to("redirected")) == 1
    assert webhook_fake.deliveries == []


def test_webhook_slow_path_times_out_then_dedupes(
    http: requests.Session, fake_factory: Any
) -> None:
    fake: WebhookFake = fake_factory("webhook", slow_s=0.5)
    with pytest.raises(requests.ReadTimeout):
        _wh_post(http, fake, _generic(), msg_id="m1", path="/slow", timeout=(1, 0.1))
    assert len(fake.deliveries) == 1  # it arrived; only the answer was late
    r = _wh_post(http, fake, _generic(), msg_id="m1", path="/hook")
    assert r.status_code == 200 and fake.duplicates == 1


def _inapp(msg_id: str = "k1", user: str = "u-1", content: Any = None) -> dict[str, Any]:
    return {
        "type": "inapp.message",
        "timestamp": "2026-03-02T10:00:00Z",
        "data": {
            "message_id": msg_id,
            "user_id": user,
            "campaign": "winback_dormant",
            "variant": "a",
            "expires_at": "2026-03-09T10:00:00Z",
            "content": {"title": "We miss you"} if content is None else content,
        },
    }


def test_inapp_stores_once_and_repeats_the_same_2xx(
    http: requests.Session, inapp_fake: InboxFake
) -> None:
    r = _wh_post(http, inapp_fake, _inapp(), msg_id="k1", path="/inbox")
    assert r.status_code == 200 and r.json() == {"id": "inb_1"}
    again = _wh_post(http, inapp_fake, _inapp(), msg_id="k1", path="/inbox")
    assert again.json() == {"id": "inb_1"}
    r2 = _wh_post(http, inapp_fake, _inapp("k2"), msg_id="k2", path="/inbox")
    assert r2.json() == {"id": "inb_2"}
    assert [d.inbox_id for d in inapp_fake.inbox("u-1")] == ["inb_1", "inb_2"]
    assert inapp_fake.duplicates == 1


def test_inapp_unknown_user_and_rejected_content(
    http: requests.Session, fake_factory: Any
) -> None:
    fake: InboxFake = fake_factory("inapp", users={"u-1"})
    r = _wh_post(http, fake, _inapp(user="u-2"), msg_id="a")
    assert r.status_code == 404 and r.json() == {"error": "unknown_user"}
    r = _wh_post(http, fake, _inapp(user="unknown-9"), msg_id="b")
    assert r.status_code == 404
    r = _wh_post(http, fake, _inapp(content="just text"), msg_id="c")
    assert r.status_code == 422 and r.json() == {"error": "invalid_content"}
    r = _wh_post(http, fake, _generic(), msg_id="d")
    assert r.status_code == 400  # a campaign.message is not an in-app message
    assert fake.deliveries == []
    fake.users = {"u-1", "u-2"}  # the refused id was not stored: a retry is processed
    r = _wh_post(http, fake, _inapp(user="u-2"), msg_id="a")
    assert r.status_code == 200 and fake.inbox("u-2")


def test_inapp_bad_signature_is_401(http: requests.Session, inapp_fake: InboxFake) -> None:
    raw = json.dumps(_inapp()).encode()
    headers = signed_headers("whsec_" + "C" * 43 + "=", "k1", raw, int(time.time()))
    r = http.post(inapp_fake.url + "/inbox", data=raw, headers=headers)
    assert r.status_code == 401 and inapp_fake.deliveries == []


def test_keep_log_off_keeps_counters_and_behaviour(
    http: requests.Session, fake_factory: Any
) -> None:
    fake: OneSignalFake = fake_factory("onesignal", keep_log=False)
    body = _os_body(fake)
    first = _os(http, fake, body)
    assert _os(http, fake, body).content == first.content  # dedupe still works
    assert fake.log == [] and fake.notifications == []
    assert fake.accepted == 1 and fake.replays == 1
