"""Expo push: `push/send` with tickets and `push/getReceipts` (providers.md §2.2).

Why this shape:

- **Tickets are per recipient, in order**, and each ok ticket gets a receipt the fake keeps:
  ready `receipt_delay_s` after the send on the injected clock (default 0), gone 24 h after
  it (Expo deletes receipts after a day), never ready for `pending-` tokens. Script routes:
  `"send"` (default) and `"receipts"`.
- **Magic is inside the brackets**, so every magic token is still a well-formed Expo token:
  `ExponentPushToken[unregistered-1]`. Prefixes: `unregistered-`, `toobig-`, `ratelimited-`,
  `badcreds-` (error tickets), `late-unregistered-` (ok ticket, DeviceNotRegistered receipt),
  `pending-` (ok ticket, receipt never ready).
- **Whole-request errors** use Expo's `{"errors": [{"code", "message", "isTransient"}]}`:
  more than 100 recipients, tokens of several projects (`projects=` maps token → project;
  the rest belong to `default_project`) with the conflicting tokens in `details`, a bad
  token, a bad field, a missing or wrong access token when `access_token=` is set
  ("enhanced push security"). A body may be gzip-encoded.
- A single message object (not a list) gets a single ticket object back, as Expo answers.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from .base import Fake, Request, Response, bearer, counter_uuid, json_response

MAX_RECIPIENTS = 100
MAX_RECEIPT_IDS = 1000
MAX_MESSAGE_BYTES = 4096
RECEIPT_TTL_S = 24 * 3600

TOKEN_RE = re.compile(
    r"^(?:Expo(?:nent)?PushToken\[(?P<inner>[^\[\]]+)\]"
    r"|(?P<uuid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}))$"
)
MESSAGE_FIELDS = frozenset(
    {"to", "data", "title", "subtitle", "body", "sound", "ttl", "expiration", "priority"}
    | {"badge", "channelId", "categoryId", "mutableContent", "interruptionLevel"}
    | {"richContent", "_contentAvailable", "icon", "_displayInForeground"}
)
STRING_FIELDS = ("title", "subtitle", "body", "channelId", "categoryId", "interruptionLevel")

TICKET_ERRORS: dict[str, tuple[str, str]] = {
    "unregistered-": (
        "DeviceNotRegistered",
        "{token} is not a registered push notification recipient",
    ),
    "toobig-": ("MessageTooBig", "Message too big: the notification payload exceeds 4096 bytes"),
    "ratelimited-": ("MessageRateExceeded", "Message rate exceeded: too many messages to {token}"),
    "badcreds-": (
        "InvalidCredentials",
        "Could not find the push credentials for the recipient's app; check its FCM and APNs "
        "credentials",
    ),
}

_DEFAULT_ERRORS: dict[int, tuple[str, str, bool]] = {
    400: ("VALIDATION_ERROR", "The request is invalid.", False),
    401: (
        "UNAUTHORIZED",
        "The bearer token is invalid; check the access token you provided with the request.",
        False,
    ),
    404: ("NOT_FOUND", "Not found.", False),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed.", False),
    413: ("PAYLOAD_TOO_LARGE", "The request body is too large.", False),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Unsupported media type.", False),
    429: (
        "TOO_MANY_REQUESTS",
        "The project is sending notifications too quickly; slow down and retry.",
        True,
    ),
    500: ("INTERNAL_SERVER_ERROR", "An unknown error occurred.", True),
    502: ("BAD_GATEWAY", "Bad gateway.", True),
    503: ("SERVICE_UNAVAILABLE", "The service is temporarily unavailable.", True),
    504: ("GATEWAY_TIMEOUT", "The upstream service timed out.", True),
}


def expo_error(
    status: int,
    code: str,
    message: str,
    *,
    transient: bool = False,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    err: dict[str, Any] = {"code": code, "message": message, "isTransient": transient}
    if details is not None:
        err["details"] = details
    return json_response(status, {"errors": [err]}, headers)


class ExpoFake(Fake):
    """Expo's push API: send (tickets) and getReceipts."""

    name: ClassVar[str] = "expo"
    routes: ClassVar[tuple[str, ...]] = ("send", "receipts")
    accept_gzip: ClassVar[bool] = True

    def __init__(
        self,
        *,
        access_token: str | None = None,
        projects: dict[str, str] | None = None,
        default_project: str = "@mcrm/app",
        receipt_delay_s: float = 0.0,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.access_token = access_token
        self.projects = dict(projects or {})
        self.default_project = default_project
        self.receipt_delay_s = receipt_delay_s
        self.reset_state()

    def reset_state(self) -> None:
        self._counter = 0
        self._receipts: dict[str, dict[str, Any]] = {}  # id -> {ready_at, sent_at, receipt}
        self._sent: list[tuple[str, dict[str, Any]]] = []

    def credentials(self) -> dict[str, str]:
        creds = {"base_url": self.url}
        if self.access_token:
            creds["access_token"] = self.access_token
        return creds

    @property
    def sent(self) -> list[tuple[str, dict[str, Any]]]:
        """(token, message) of every ok ticket, in order."""
        with self.lock:
            return list(self._sent)

    def receipt_ids(self) -> list[str]:
        with self.lock:
            return list(self._receipts)

    # -- routing -----------------------------------------------------------------------------

    def route(self, req: Request) -> str | None:
        if req.path == "/--/api/v2/push/send":
            return "send" if req.method == "POST" else "method"
        if req.path == "/--/api/v2/push/getReceipts":
            return "receipts" if req.method == "POST" else "method"
        return None

    def error_response(self, status: int, message: str | None = None) -> Response:
        code, default, transient = _DEFAULT_ERRORS.get(
            status,
            ("INTERNAL_SERVER_ERROR" if status >= 500 else "BAD_REQUEST", "Error.", status >= 500),
        )
        return expo_error(status, code, message or default, transient=transient)

    def handle(self, route: str, req: Request) -> Response:
        if route == "method":
            return self.error_response(405)
        if self.access_token is not None and bearer(req) != self.access_token:
            return self.error_response(401)
        if req.content_type != "application/json":
            return expo_error(400, "VALIDATION_ERROR", '"Content-Type" must be application/json')
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            return expo_error(400, "VALIDATION_ERROR", "The request body is not valid JSON.")
        if route == "receipts":
            return self._get_receipts(body)
        return self._send(body)

    # -- send --------------------------------------------------------------------------------

    def _send(self, body: Any) -> Response:
        single = isinstance(body, dict)
        messages = [body] if single else body
        if not isinstance(messages, list) or not messages:
            return expo_error(
                400, "VALIDATION_ERROR", '"value" must be a message object or a non-empty array'
            )
        recipients: list[tuple[str, dict[str, Any]]] = []
        for i, m in enumerate(messages):
            problem = _check_message(m, i)
            if problem is not None:
                return expo_error(400, "VALIDATION_ERROR", problem)
            to = m["to"]
            for t in [to] if isinstance(to, str) else to:
                recipients.append((t, m))
        if len(recipients) > MAX_RECIPIENTS:
            return expo_error(
                400,
                "PUSH_TOO_MANY_NOTIFICATIONS",
                f"You are trying to send more than {MAX_RECIPIENTS} push notifications in one "
                "request.",
            )
        for token, _ in recipients:
            if not TOKEN_RE.match(token):
                return expo_error(
                    400, "VALIDATION_ERROR", f'"to" contains an invalid Expo push token: {token}'
                )
        by_project: dict[str, list[str]] = {}
        for token, _ in recipients:
            by_project.setdefault(self.projects.get(token, self.default_project), []).append(token)
        if len(by_project) > 1:
            return expo_error(
                400,
                "PUSH_TOO_MANY_EXPERIENCE_IDS",
                "All push notification messages in the same request must be for the same "
                "project; check the details field to investigate conflicting tokens.",
                details=by_project,
            )
        now = self.clock()
        tickets = [self._ticket(token, m, now) for token, m in recipients]
        single_ticket = single and isinstance(body.get("to"), str)
        return json_response(200, {"data": tickets[0] if single_ticket else tickets})

    def _ticket(self, token: str, message: dict[str, Any], now: float) -> dict[str, Any]:
        match = TOKEN_RE.match(token)
        inner = (match.group("inner") if match else None) or ""
        for prefix, (error, text) in TICKET_ERRORS.items():
            if inner.startswith(prefix):
                return _error_ticket(error, text.format(token=json.dumps(token)), token)
        size = len(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_MESSAGE_BYTES:
            error, text = TICKET_ERRORS["toobig-"]
            return _error_ticket(error, text, token)
        self._counter += 1
        ticket_id = counter_uuid("expo-ticket", self._counter)
        receipt: dict[str, Any] = {"status": "ok"}
        ready_at = now + self.receipt_delay_s
        if inner.startswith("late-unregistered-"):
            receipt = {
                "status": "error",
                "message": f"{json.dumps(token)} is not a registered push notification recipient",
                "details": {"error": "DeviceNotRegistered", "expoPushToken": token},
            }
        elif inner.startswith("pending-"):
            ready_at = float("inf")
        self._receipts[ticket_id] = {"ready_at": ready_at, "sent_at": now, "receipt": receipt}
        self._record(self._sent, (token, message))
        return {"status": "ok", "id": ticket_id}

    # -- getReceipts -------------------------------------------------------------------------

    def _get_receipts(self, body: Any) -> Response:
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or any(not isinstance(i, str) for i in ids):
            return expo_error(400, "VALIDATION_ERROR", '"ids" must be an array of strings')
        if len(ids) > MAX_RECEIPT_IDS:
            return expo_error(
                400,
                "PUSH_TOO_MANY_RECEIPTS",
                f"You are trying to get more than {MAX_RECEIPT_IDS} push receipts in one request",
            )
        now = self.clock()
        data: dict[str, Any] = {}
        for i in ids:
            r = self._receipts.get(i)
            if r is None or now < r["ready_at"] or now >= r["sent_at"] + RECEIPT_TTL_S:
                continue
            data[i] = r["receipt"]
        return json_response(200, {"data": data})


def _error_ticket(error: str, message: str, token: str) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "details": {"error": error, "expoPushToken": token},
    }


def _check_message(m: Any, i: int) -> str | None:
    where = f'"[{i}]' if i else '"'
    if not isinstance(m, dict):
        return f'{where}value" must be an object'
    for k in m:
        if k not in MESSAGE_FIELDS:
            return f'"{k}" is not allowed'
    to = m.get("to")
    if isinstance(to, str):
        if not to:
            return '"to" is not allowed to be empty'
    elif isinstance(to, list):
        if not to or any(not isinstance(t, str) for t in to):
            return '"to" must be a push token or a non-empty array of push tokens'
    else:
        return '"to" is required'
    for k in STRING_FIELDS:
        if k in m and not isinstance(m[k], str):
            return f'"{k}" must be a string'
    if "data" in m and not isinstance(m["data"], dict):
        return '"data" must be an object'
    for k in ("ttl", "expiration"):
        v = m.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or v < 0):
            return f'"{k}" must be a non-negative number'
    if "priority" in m and m["priority"] not in ("default", "normal", "high"):
        return '"priority" must be one of [default, normal, high]'
    if "badge" in m and (isinstance(m["badge"], bool) or not isinstance(m["badge"], int)):
        return '"badge" must be an integer'
    if "sound" in m and not (m["sound"] is None or isinstance(m["sound"], str | dict)):
        return '"sound" must be a string, an object or null'
    return None
