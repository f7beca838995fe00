"""Standard Webhooks receivers: the generic signed webhook and the in-app inbox (§5.1–§5.3).

Why this shape:

- **The receiver is the oracle.** It verifies exactly what §5.1 says a receiver verifies:
  the three `webhook-*` headers, a timestamp within ±5 minutes of the injected clock, and a
  `v1,` HMAC-SHA256 entry over `{id}.{timestamp}.{raw body}` for any of its secrets
  (rotation), compared with `hmac.compare_digest`. Anything else is 401. It signs nothing
  of its own: `sign()` is here for tests, and is checked against §5.1's test vector. (The
  `standardwebhooks` package, the reference oracle, is not installed; the algorithm is ten
  lines of stdlib.)
- **Dedupe on `webhook-id`:** the first 2xx answer to an id is stored; a repeat gets the same
  status and bytes and is not delivered again (`duplicates` counts them). A refused attempt
  stores nothing, so its retry is processed anew.
- **The body is mcrm's contract**, checked strictly (400 with a `detail`): a JSON object
  under 20 KB with `type`, an ISO-8601 `timestamp` and the `data` keys of §5.2 (generic)
  or §5.3 (in-app).
- **Magic paths** (any other path is the receiving endpoint): `/410` gone; `/429` with
  `Retry-After: 1`; `/500`; `/redirect` (302 to `/redirect-target`, which answers 200 and is
  logged under the route `"redirected"`, so a test proves the client did not follow);
  `/slow` (verifies and answers normally after `slow_s` seconds, to beat a read timeout).
- **In-app** (`InboxFake`) adds known users (`users=`; others, and any `unknown-*` id, get
  404 `{"error": "unknown_user"}`), content that must be an object (else 422) and an inbox
  store; a 2xx answer is `{"id": "<inbox id>"}`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

from .base import Fake, Request, Response, json_response

DEFAULT_SECRET = (
    "whsec_" + base64.b64encode(hashlib.sha256(b"mcrm-fake-webhook").digest()).decode()
)
TOLERANCE_S = 300
MAX_BODY_BYTES = 20 * 1024

GENERIC_KEYS = ("message_id", "campaign", "variant", "user_id", "channel", "content")
INAPP_KEYS = ("message_id", "user_id", "campaign", "variant", "content")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret (a bare base64 string is accepted too)."""
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc


def sign(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """The `webhook-signature` entry `v1,<base64>` for one secret."""
    mac = hmac.new(
        secret_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256
    ).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def signed_headers(
    secret: str | Iterable[str], msg_id: str, body: bytes, timestamp: int
) -> dict[str, str]:
    """The three Standard Webhooks headers (several secrets: one entry each, as in rotation)."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets),
        "Content-Type": "application/json",
    }


@dataclass(frozen=True)
class Delivery:
    """One accepted, first-seen message."""

    webhook_id: str
    timestamp: int
    path: str
    raw: bytes
    body: dict[str, Any]
    inbox_id: str | None = None


class WebhookFake(Fake):
    """A Standard Webhooks receiver for the generic `any`-channel webhook."""

    name: ClassVar[str] = "webhook"
    routes: ClassVar[tuple[str, ...]] = ("receive",)
    event_type: ClassVar[str] = "campaign.message"
    data_keys: ClassVar[tuple[str, ...]] = GENERIC_KEYS

    def __init__(
        self,
        secret: str | Iterable[str] = DEFAULT_SECRET,
        *,
        tolerance_s: float = TOLERANCE_S,
        slow_s: float = 2.0,
        max_bytes: int = MAX_BODY_BYTES,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.secrets = [secret] if isinstance(secret, str) else list(secret)
        self._keys = [secret_key(s) for s in self.secrets]
        self.tolerance_s = tolerance_s
        self.slow_s = slow_s
        self.max_bytes = max_bytes
        self.reset_state()

    def reset_state(self) -> None:
        self._seen: dict[str, Response] = {}
        self._deliveries: list[Delivery] = []
        self.duplicates = 0

    def credentials(self) -> dict[str, str]:
        return {"url": self.url + "/hook", "secret": self.secrets[0]}

    @property
    def deliveries(self) -> list[Delivery]:
        """First-seen accepted messages, in order (repeats of a webhook-id excluded)."""
        with self.lock:
            return list(self._deliveries)

    def route(self, req: Request) -> str | None:
        if req.path == "/redirect-target":
            return "redirected"
        return "receive" if req.method == "POST" else "method"

    def error_response(self, status: int, message: str | None = None) -> Response:
        resp = json_response(status, {"error": message or _reason(status)})
        if status == 429:
            resp = resp.with_headers({"Retry-After": "1"})
        return resp

    def handle(self, route: str, req: Request) -> Response:
        if route == "redirected":
            return json_response(200, {"error": "redirect followed"})
        if route == "method":
            return self.error_response(405)
        if req.path == "/410":
            return json_response(410, {"error": "endpoint disabled"})
        if req.path == "/429":
            return self.error_response(429)
        if req.path == "/500":
            return self.error_response(500)
        if req.path == "/redirect":
            return Response(
                302,
                b"",
                (("Location", self.url + "/redirect-target"),),
            )
        resp = self._receive(req)
        if req.path == "/slow":
            resp = Response(
                resp.status, resp.body, resp.headers, resp.content_type, False, self.slow_s
            )
        return resp

    # -- verification ------------------------------------------------------------------------

    def verify(self, req: Request) -> str | None:
        """None if the request is properly signed and fresh, else why not."""
        msg_id = req.header("webhook-id")
        ts = req.header("webhook-timestamp")
        sig = req.header("webhook-signature")
        if not msg_id or not ts or not sig:
            return "missing webhook-id, webhook-timestamp or webhook-signature"
        if "." in msg_id:
            return "invalid webhook-id"
        if not (ts.isascii() and ts.isdigit()):
            return "invalid webhook-timestamp"
        if abs(self.clock() - int(ts)) > self.tolerance_s:
            return "webhook-timestamp outside the tolerance"
        signed = f"{msg_id}.{ts}.".encode() + req.body
        expected = [hmac.new(k, signed, hashlib.sha256).digest() for k in self._keys]
        for entry in sig.split(" "):
            version, _, value = entry.partition(",")
            if version != "v1":
                continue
            try:
                given = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                continue
            if any(hmac.compare_digest(given, e) for e in expected):
                return None
        return "no matching signature"

    def _receive(self, req: Request) -> Response:
        problem = self.verify(req)
        if problem is not None:
            return json_response(401, {"error": "invalid_signature", "detail": problem})
        msg_id = req.header("webhook-id") or ""
        seen = self._seen.get(msg_id)
        if seen is not None:
            self.duplicates += 1
            return seen
        if len(req.body) > self.max_bytes:
            return json_response(413, {"error": "payload_too_large"})
        if req.content_type != "application/json":
            return json_response(400, {"error": "bad_request", "detail": "not application/json"})
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            return json_response(400, {"error": "bad_request", "detail": "body is not JSON"})
        problem = self._check_body(body)
        if problem is not None:
            return json_response(400, {"error": "bad_request", "detail": problem})
        resp = self.accept(req, msg_id, body)
        if 200 <= resp.status < 300:
            self._seen[msg_id] = resp
        return resp

    def _check_body(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "body must be a JSON object"
        if body.get("type") != self.event_type:
            return f"type must be {self.event_type!r}"
        if not _is_iso(body.get("timestamp")):
            return "timestamp must be an ISO-8601 string"
        data = body.get("data")
        if not isinstance(data, dict):
            return "data must be an object"
        missing = [k for k in self.data_keys if k not in data]
        if missing:
            return f"data lacks {', '.join(missing)}"
        for k in ("message_id", "user_id", "campaign"):
            if not isinstance(data[k], str) or not data[k]:
                return f"data.{k} must be a non-empty string"
        if data["variant"] is not None and not isinstance(data["variant"], str):
            return "data.variant must be a string or null"
        return None

    def accept(self, req: Request, msg_id: str, body: dict[str, Any]) -> Response:
        """A verified, new, well-formed message: store it and answer (under the lock)."""
        self._record(
            self._deliveries,
            Delivery(msg_id, int(req.header("webhook-timestamp") or 0), req.path, req.body, body),
        )
        return json_response(200, {"received": True})


class InboxFake(WebhookFake):
    """The app backend's in-app inbox endpoint (mcrm's contract, §5.3)."""

    name: ClassVar[str] = "inapp"
    event_type: ClassVar[str] = "inapp.message"
    data_keys: ClassVar[tuple[str, ...]] = INAPP_KEYS

    def __init__(
        self,
        secret: str | Iterable[str] = DEFAULT_SECRET,
        *,
        users: Iterable[str] | None = None,
        **kw: Any,
    ) -> None:
        self.users = None if users is None else set(users)
        super().__init__(secret, **kw)

    def reset_state(self) -> None:
        super().reset_state()
        self._inbox: dict[str, list[Delivery]] = {}
        self._inbox_counter = 0

    def credentials(self) -> dict[str, str]:
        return {"url": self.url + "/inbox", "secret": self.secrets[0]}

    def inbox(self, user_id: str) -> list[Delivery]:
        with self.lock:
            return list(self._inbox.get(user_id, []))

    def _check_body(self, body: Any) -> str | None:
        problem = super()._check_body(body)
        if problem is None:
            expires = body["data"].get("expires_at")
            if expires is not None and not _is_iso(expires):
                return "data.expires_at must be an ISO-8601 string or null"
        return problem

    def accept(self, req: Request, msg_id: str, body: dict[str, Any]) -> Response:
        data = body["data"]
        user = data["user_id"]
        if user.startswith("unknown-") or (self.users is not None and user not in self.users):
            return json_response(404, {"error": "unknown_user"})
        if not isinstance(data["content"], dict) or not data["content"]:
            return json_response(422, {"error": "invalid_content"})
        self._inbox_counter += 1
        inbox_id = f"inb_{self._inbox_counter}"
        d = Delivery(
            msg_id, int(req.header("webhook-timestamp") or 0), req.path, req.body, body, inbox_id
        )
        self._record(self._deliveries, d)
        self._inbox.setdefault(user, []).append(d)  # the inbox is behaviour: always kept
        return json_response(200, {"id": inbox_id})


def _is_iso(v: Any) -> bool:
    if not isinstance(v, str) or "T" not in v:
        return False
    try:
        dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"
