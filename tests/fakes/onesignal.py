"""OneSignal `POST /notifications` with 30-day idempotency (providers.md §2.3).

Why this shape:

- **Dedupe is the point of this fake.** The first answer to an `idempotency_key` (or its old
  name `external_id`) is stored with the instant it was given, and a repeat within 30 days on
  the injected clock gets that answer back verbatim (same status, same bytes), whatever the
  repeat's body says, without creating anything. Only 200 answers are stored: a refused
  request created nothing, so its key is still free. The key is checked after auth and
  `app_id`, before the rest of the body, as a server that looks the key up first would.
  `drop_after_body` processes the request (and stores the key) before closing, which is the
  case a resend must survive.
- **Strict request checks:** `Authorization: Key <k>`, a known `app_id`, exactly one
  targeting mode, at most 2000 ids, exact alias labels, `target_channel` with
  `include_aliases`, `contents.en`, a v3/v4 UUID key. Errors are `{"errors": [...]}`.
- **Magic ids:** aliases `nosub-*` come back under `errors.invalid_aliases`; subscription
  ids `dead*` under `errors.invalid_player_ids`; when nobody is left, `{"id": "", "errors":
  ["All included players are not subscribed"]}` (200, nothing created).
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from .base import Fake, Request, Response, counter_uuid, json_response

DEDUPE_S = 30 * 86_400
MAX_IDS = 2000
ALIAS_LABELS = frozenset({"external_id", "onesignal_id"})
ID_FIELDS = (
    "include_subscription_ids",
    "include_player_ids",
    "include_email_tokens",
    "include_phone_numbers",
)
MODES = ("include_aliases", *ID_FIELDS, "included_segments", "filters")

APP_NOT_FOUND = "app_id not found. You may be missing a Content-Type: application/json header."
NO_TARGET = (
    "You must include which players, segments, or tags you wish to send this notification to."
)
NOT_SUBSCRIBED = "All included players are not subscribed"
MISSING_AUTH = (
    "Please include a case-sensitive header of Authorization: Key <YOUR-APP-API-KEY> with a "
    "valid App API key."
)
ACCESS_DENIED = (
    "Access denied.  Please include an 'Authorization: Key <YOUR-APP-API-KEY>' header with a "
    "valid App API key."
)

_DEFAULT_ERRORS = {
    400: "Bad request",
    401: MISSING_AUTH,
    403: ACCESS_DENIED,
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    429: "API rate limit exceeded.",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def onesignal_error(
    status: int, *messages: str, headers: dict[str, str] | None = None
) -> Response:
    return json_response(status, {"errors": list(messages)}, headers)


class OneSignalFake(Fake):
    """OneSignal's create-notification endpoint."""

    name: ClassVar[str] = "onesignal"
    routes: ClassVar[tuple[str, ...]] = ("send",)

    def __init__(
        self,
        app_id: str = "8f5e2d3c-1b4a-4e6f-9a0b-1c2d3e4f5a6b",
        api_key: str = "os_v2_app_fakekeyfakekeyfakekeyfakekey",
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.app_id = app_id
        self.api_key = api_key
        self.reset_state()

    def reset_state(self) -> None:
        self._counter = 0
        self._keys: dict[tuple[str, str], tuple[float, Response]] = {}
        self._notifications: list[dict[str, Any]] = []
        self.replays = 0

    def credentials(self) -> dict[str, str]:
        return {"base_url": self.url, "app_id": self.app_id, "api_key": self.api_key}

    @property
    def notifications(self) -> list[dict[str, Any]]:
        """The created notifications (request bodies plus `"id"`), in order; replays excluded."""
        with self.lock:
            return list(self._notifications)

    # -- routing -----------------------------------------------------------------------------

    def route(self, req: Request) -> str | None:
        if req.path == "/notifications":
            return "send" if req.method == "POST" else "method"
        return None

    def error_response(self, status: int, message: str | None = None) -> Response:
        resp = onesignal_error(status, message or _DEFAULT_ERRORS.get(status, "Error"))
        if status == 429:
            resp = resp.with_headers({"Retry-After": "1"})
        return resp

    def handle(self, route: str, req: Request) -> Response:
        if route == "method":
            return self.error_response(405)
        auth = req.header("authorization") or ""
        scheme, _, key = auth.partition(" ")
        if scheme != "Key" or not key.strip():
            return onesignal_error(401, MISSING_AUTH)
        if key.strip() != self.api_key:
            return onesignal_error(403, ACCESS_DENIED)
        if req.content_type != "application/json":
            return onesignal_error(400, APP_NOT_FOUND)
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            return onesignal_error(400, "Invalid JSON in request body.")
        if not isinstance(body, dict):
            return onesignal_error(400, "The request body must be a JSON object.")
        if body.get("app_id") != self.app_id:
            return onesignal_error(400, APP_NOT_FOUND)
        key_field = "idempotency_key" if "idempotency_key" in body else "external_id"
        idem = body.get(key_field)
        if idem is not None:
            if not _is_v3_or_v4(idem):
                return onesignal_error(400, f"{key_field} must be a valid UUID (v3 or v4).")
            stored = self._keys.get((self.app_id, idem.lower()))
            if stored is not None and self.clock() < stored[0] + DEDUPE_S:
                self.replays += 1
                return stored[1]
        resp = self._create(body, idem)
        if idem is not None and resp.status == 200:
            self._keys[(self.app_id, idem.lower())] = (self.clock(), resp)
        return resp

    # -- create ------------------------------------------------------------------------------

    def _create(self, body: dict[str, Any], idem: str | None) -> Response:
        modes = [m for m in MODES if m in body]
        if not modes:
            return onesignal_error(400, NO_TARGET)
        if len(modes) > 1:
            return onesignal_error(
                400,
                "Use only one targeting mode per request (include_aliases, "
                "include_subscription_ids, included_segments or filters); got: "
                + ", ".join(modes),
            )
        mode = modes[0]
        channel = body.get("target_channel")
        if channel is not None and channel not in ("push", "email", "sms"):
            return onesignal_error(400, "target_channel must be one of push, email, sms.")
        bad_aliases: dict[str, list[str]] = {}
        bad_subs: list[str] = []
        wanted = 0
        if mode == "include_aliases":
            aliases = body["include_aliases"]
            if not isinstance(aliases, dict) or len(aliases) != 1:
                return onesignal_error(
                    400, "include_aliases must be an object with one alias label."
                )
            ((label, ids),) = aliases.items()
            if label not in ALIAS_LABELS:
                return onesignal_error(400, f"include_aliases: unknown alias label '{label}'.")
            if channel is None:
                return onesignal_error(
                    400, "target_channel is required when using include_aliases."
                )
            problem = _check_ids(ids, f"include_aliases.{label}")
            if problem:
                return onesignal_error(400, problem)
            wanted = len(ids)
            dead = [i for i in ids if i.startswith("nosub-")]
            if dead:
                bad_aliases[label] = dead
        elif mode in ID_FIELDS:
            ids = body[mode]
            problem = _check_ids(ids, mode)
            if problem:
                return onesignal_error(400, problem)
            wanted = len(ids)
            if mode in ("include_subscription_ids", "include_player_ids"):
                bad_subs = [i for i in ids if i.startswith("dead")]
        elif mode == "included_segments":
            seg = body["included_segments"]
            if not isinstance(seg, list) or not seg or any(not isinstance(s, str) for s in seg):
                return onesignal_error(
                    400, "included_segments must be a non-empty array of names."
                )
            wanted = -1
        else:
            if not isinstance(body["filters"], list):
                return onesignal_error(400, "filters must be an array.")
            wanted = -1
        problem = _check_content(body)
        if problem:
            return onesignal_error(400, problem)
        if "data" in body and not isinstance(body["data"], dict | type(None)):
            return onesignal_error(400, "data must be an object.")
        invalid = sum(len(v) for v in bad_aliases.values()) + len(bad_subs)
        if wanted > 0 and invalid >= wanted:
            return json_response(200, {"id": "", "errors": [NOT_SUBSCRIBED]})
        self._counter += 1
        nid = counter_uuid("onesignal", self._counter)
        out: dict[str, Any] = {"id": nid, "external_id": idem}
        errors: dict[str, Any] = {}
        if bad_aliases:
            errors["invalid_aliases"] = bad_aliases
        if bad_subs:
            errors["invalid_player_ids"] = bad_subs
        if errors:
            out["errors"] = errors
        self._record(self._notifications, {**body, "id": nid})
        return json_response(200, out)


def _is_v3_or_v4(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        u = uuid.UUID(value)
    except ValueError:
        return False
    return u.version in (3, 4) and u.variant == uuid.RFC_4122 and len(value) == 36


def _check_ids(ids: Any, where: str) -> str | None:
    if not isinstance(ids, list) or not ids or any(not isinstance(i, str) or not i for i in ids):
        return f"{where} must be a non-empty array of strings."
    if len(ids) > MAX_IDS:
        return f"{where}: you can include at most {MAX_IDS} ids per request."
    return None


def _check_content(body: dict[str, Any]) -> str | None:
    for field in ("contents", "headings", "subtitle"):
        v = body.get(field)
        if v is None:
            continue
        if not isinstance(v, dict) or any(not isinstance(x, str) for x in v.values()):
            return f"{field} must be an object of language code to string."
    if "template_id" in body or body.get("content_available") is True:
        return None
    contents = body.get("contents")
    if not isinstance(contents, dict) or not contents.get("en"):
        return "Message Notifications must have English language content"
    headings = body.get("headings")
    if isinstance(headings, dict) and headings and not headings.get("en"):
        return "Notification headings must have English language content"
    return None
