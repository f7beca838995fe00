"""Twilio Programmable Messaging, `POST /2010-04-01/Accounts/{sid}/Messages.json` (§4.1).

Why this shape:

- **Form-encoded only**, as Twilio: a JSON body is not read at all, so it fails the way it
  fails on Twilio (no `To` parameter: 21604), which is what an adapter that sends JSON by
  mistake would see in production.
- **Basic auth against the path's AccountSid** (`AccountSid:AuthToken`, or an API key
  `SK…:secret` given in `api_keys=`); a wrong pair is 401 with code 20003, a right pair on
  another account's path 404 (20404).
- **Magic numbers follow Twilio's test credentials** (mapping partly unverified, providers.md
  §7): From `+15005550006` valid, `+15005550001` 21212, `+15005550007` 21606,
  `+15005550008` 21611; To `+15005550001` 21211, `+15005550002` 21612, `+15005550003`
  21408, `+15005550004` 21610, `+15005550009` 21614; any other valid number: 201. Other
  From numbers must be in `from_numbers` (21606 otherwise); alphanumeric sender ids pass.
- **201 carries the whole Message resource**; `num_segments` is a string counted as §4.2 with
  a `From` (status `queued`) and `"0"` with a `MessagingServiceSid` (status `accepted`: the
  service segments it later). The segment counter is a copy of §4.2's algorithm, not
  mcrm's, so the fake stays an independent check.
- Errors: `{"code", "message", "more_info", "status"}`; `twilio_error(code)` builds any.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
import urllib.parse
from typing import Any, ClassVar

from .base import FORM_TYPE, Fake, Request, Response, json_response

API = "2010-04-01"
E164_RE = re.compile(r"^\+[1-9]\d{1,14}$")
ALPHA_RE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
MG_RE = re.compile(r"^MG[0-9a-f]{32}$")
MAX_BODY_CHARS = 1600

MAGIC_FROM = {"+15005550001": 21212, "+15005550007": 21606, "+15005550008": 21611}
MAGIC_TO = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}
TEST_FROM = "+15005550006"

MESSAGES: dict[int, tuple[int, str]] = {
    20001: (400, "Invalid parameter"),
    20003: (401, "Authenticate"),
    20004: (405, "Method not allowed"),
    20403: (403, "Forbidden"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20502: (502, "Bad Gateway"),
    20503: (503, "Service Unavailable"),
    20504: (504, "Gateway Timeout"),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21212: (
        400,
        "The 'From' number {frm} is not a valid phone number, shortcode, or alphanumeric "
        "sender ID.",
    ),
    21408: (
        400,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' "
        "number: {to}.",
    ),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (
        400,
        "The 'From' phone number provided ({frm}) is not a valid message-capable Twilio phone "
        "number for this destination/account.",
    ),
    21609: (400, "Invalid StatusCallback URL."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21611: (400, "This 'From' number has exceeded the maximum number of queued messages."),
    21612: (
        400,
        "The 'To' phone number: {to}, is not currently reachable using the 'From' phone "
        "number: {frm} via SMS.",
    ),
    21614: (400, "'To' number is not a valid mobile number"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
    21701: (400, "The Messaging Service Sid {mg} is invalid."),
}
_STATUS_CODE = {s: c for c, (s, _) in sorted(MESSAGES.items(), reverse=True) if c < 21000}


def twilio_error(
    code: int, status: int | None = None, headers: dict[str, str] | None = None, **fmt: str
) -> Response:
    """Twilio's error body for `code` (status and message from the table unless given)."""
    default_status, text = MESSAGES.get(code, (status or 400, "Error"))
    fields = {"to": "", "frm": "", "mg": "", **fmt}
    body = {
        "code": code,
        "message": text.format(**fields),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status or default_status,
    }
    return json_response(status or default_status, body, headers)


def _hex(namespace: str, n: int) -> str:
    return hashlib.sha256(f"{namespace}:{n}".encode()).hexdigest()[:32]


class TwilioFake(Fake):
    """Twilio's Messages resource (create)."""

    name: ClassVar[str] = "twilio"
    routes: ClassVar[tuple[str, ...]] = ("send",)

    def __init__(
        self,
        account_sid: str = "AC" + _hex("twilio-account", 0),
        auth_token: str = _hex("twilio-token", 0),
        *,
        messaging_service_sids: set[str] | None = None,
        from_numbers: set[str] | None = None,
        api_keys: dict[str, str] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messaging_service_sids = (
            set(messaging_service_sids)
            if messaging_service_sids is not None
            else {"MG" + _hex("twilio-service", 0)}
        )
        self.from_numbers = set(from_numbers) if from_numbers is not None else {TEST_FROM}
        self.api_keys = dict(api_keys or {})
        self.reset_state()

    def reset_state(self) -> None:
        self._counter = 0
        self._messages: list[dict[str, Any]] = []

    def credentials(self) -> dict[str, str]:
        return {
            "base_url": self.url,
            "account_sid": self.account_sid,
            "auth_token": self.auth_token,
            "messaging_service_sid": sorted(self.messaging_service_sids)[0]
            if self.messaging_service_sids
            else "",
            "from": TEST_FROM,
        }

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The created Message resources (the 201 bodies), in order."""
        with self.lock:
            return list(self._messages)

    def route(self, req: Request) -> str | None:
        if re.fullmatch(rf"/{API}/Accounts/[^/]+/Messages\.json", req.path):
            return "send" if req.method == "POST" else "method"
        return None

    def error_response(self, status: int, message: str | None = None) -> Response:
        code = _STATUS_CODE.get(status, 20500 if status >= 500 else 20001)
        resp = twilio_error(code, status)
        if message:
            body = resp.json()
            body["message"] = message
            resp = json_response(status, body)
        if status == 429:
            resp = resp.with_headers({"Twilio-Concurrent-Requests": "1"})
        return resp

    def _authorized(self, req: Request) -> bool:
        scheme, _, value = (req.header("authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        if user == self.account_sid:
            return password == self.auth_token
        return user in self.api_keys and self.api_keys[user] == password

    def handle(self, route: str, req: Request) -> Response:
        rid = {"Twilio-Request-Id": "RQ" + secrets.token_hex(16)}
        if not self._authorized(req):
            return twilio_error(20003, headers={"WWW-Authenticate": 'Basic realm="Twilio API"'})
        if req.path.split("/")[3] != self.account_sid:
            return twilio_error(20404)
        if route == "method":
            return twilio_error(20004)
        return self._create(req).with_headers(rid)

    def _create(self, req: Request) -> Response:
        params: dict[str, list[str]] = {}
        if req.content_type == FORM_TYPE:
            try:
                params = req.form()
            except ValueError:
                params = {}

        def one(name: str) -> str | None:
            v = params.get(name)
            return v[0] if v else None

        to, frm, mg, body = one("To"), one("From"), one("MessagingServiceSid"), one("Body")
        media = params.get("MediaUrl", [])
        callback = one("StatusCallback")
        if not to:
            return twilio_error(21604)
        if not frm and not mg:
            return twilio_error(21603)
        if mg is not None:
            if not MG_RE.match(mg) or mg not in self.messaging_service_sids:
                return twilio_error(21701, mg=mg)
        elif frm is not None:
            if frm in MAGIC_FROM:
                return twilio_error(MAGIC_FROM[frm], frm=frm)
            if E164_RE.match(frm):
                if frm not in self.from_numbers:
                    return twilio_error(21606, frm=frm)
            elif not ALPHA_RE.match(frm):
                return twilio_error(21212, frm=frm)
        if not body and not media:
            return twilio_error(21602)
        if body is not None and len(body) > MAX_BODY_CHARS:
            return twilio_error(21617)
        if callback is not None:
            parts = urllib.parse.urlsplit(callback)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                return twilio_error(21609)
        if not E164_RE.match(to):
            return twilio_error(21211, to=to)
        if to in MAGIC_TO:
            return twilio_error(MAGIC_TO[to], to=to, frm=frm or "")
        self._counter += 1
        sid = "SM" + _hex(f"twilio-message-{self.account_sid}", self._counter)
        now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(self.clock()))
        uri = f"/{API}/Accounts/{self.account_sid}/Messages/{sid}.json"
        resource = {
            "account_sid": self.account_sid,
            "api_version": API,
            "body": body or "",
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": frm if mg is None else None,
            "messaging_service_sid": mg,
            "num_media": str(len(media)),
            "num_segments": "0" if mg is not None else str(sms_segments(body or "")[2]),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if mg is not None else "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": to,
            "uri": uri,
        }
        self._record(self._messages, resource)
        return json_response(201, resource)


# -- §4.2, verbatim ----------------------------------------------------------------------------

GSM = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXT = "\f^{}\\[~]|€"


def sms_segments(text: str) -> tuple[str, int, int]:
    """(encoding, units, segments), exactly as providers.md §4.2."""
    if all(c in GSM or c in EXT for c in text):
        enc, single, part = "GSM-7", 160, 153
        units = [2 if c in EXT else 1 for c in text]
    else:
        enc, single, part = "UCS-2", 70, 67
        units = [len(c.encode("utf-16-le")) // 2 for c in text]
    total = sum(units)
    if total <= single:
        return enc, total, (1 if total else 0)
    segments, used = 1, 0
    for u in units:
        if used + u > part:
            segments, used = segments + 1, 0
        used += u
    return enc, total, segments
