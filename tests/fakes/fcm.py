"""FCM HTTP v1 `messages:send` and the Google OAuth2 token endpoint (providers.md §2.1).

Why this shape:

- **One fake, two endpoints**, because the access token the send endpoint accepts is the one
  the token endpoint issued: `POST /token` (configure it as `token_uri`) and
  `POST /v1/projects/{pid}/messages:send` (the `base_url`). Script routes: `"send"`
  (default) and `"token"`.
- **The service account is generated, deterministically** (`rs256.generate_key`): the JSON
  from `service_account_info()` is a complete Google service-account file whose PKCS#8
  key google-auth can load, and the token endpoint verifies the assertion's RS256
  signature against that key for the `kid` it names, then `iss`, `aud`, `scope`, `iat` and
  `exp` as Google does. `aud` must be Google's token URL even though the request comes to
  the fake (the google-auth quirk in §2.1): demanding the fake's own URL would reject the
  real client.
- **Token lifetime is the injected clock's**: a token expires `expires_in` seconds after it
  was issued, and `expire_tokens_after(n)` makes every token die after n accepted sends
  (the refresh-once test). `issue_token()` hands a test a valid token without the OAuth
  dance.
- **Errors carry Google's shape** (`error.code/message/status/details`), with an `FcmError`
  detail only where FCM sends one (never for a plain PERMISSION_DENIED: an adapter must not
  invalidate a token on a guess) and `google.rpc.BadRequest` field violations for bad
  fields.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from .base import (
    FORM_TYPE,
    Fake,
    Request,
    Response,
    bearer,
    html_502,
    json_response,
)
from .rs256 import RsaKey, decode_jwt, generate_key

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
CLOUD_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"

MAX_PAYLOAD = 4096
MAX_TOPIC_PAYLOAD = 2048
MAX_TTL_S = 2_419_200

TIMEFRAME = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
    "timeframe. Check your iat and exp values in the JWT claim."
)
BAD_SIGNATURE = "Invalid JWT Signature."
UNAUTHENTICATED_MSG = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
NOT_A_TOKEN = "The registration token is not a valid FCM registration token"

MESSAGE_FIELDS = frozenset(
    {"name", "data", "notification", "android", "webpush", "apns", "fcm_options"}
    | {"token", "topic", "condition"}
)
NOTIFICATION_FIELDS = frozenset({"title", "body", "image"})
ANDROID_FIELDS = frozenset(
    {"collapse_key", "priority", "ttl", "restricted_package_name", "data", "notification"}
    | {"fcm_options", "direct_boot_ok"}
)
APNS_FIELDS = frozenset({"headers", "payload", "fcm_options", "live_activity_token"})
TTL_RE = re.compile(r"^(\d+)(\.\d{1,9})?s$")
TOPIC_RE = re.compile(r"^(/topics/)?[a-zA-Z0-9\-_.~%]{1,900}$")
RESERVED_DATA_KEYS = frozenset({"from", "message_type", "notification"})

# magic token prefixes -> (status, grpc status, message, FcmError code, Retry-After)
MAGIC: dict[str, tuple[int, str, str, str | None, str | None]] = {
    "unregistered-": (404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED", None),
    "mismatch-": (
        403,
        "PERMISSION_DENIED",
        "SenderId mismatch",
        "SENDER_ID_MISMATCH",
        None,
    ),
    "thirdparty-": (
        401,
        "UNAUTHENTICATED",
        "Auth error from APNS or Web Push Service",
        "THIRD_PARTY_AUTH_ERROR",
        None,
    ),
    "quota-": (
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for quota metric 'Send messages' and limit 'Send messages per minute'.",
        "QUOTA_EXCEEDED",
        "1",
    ),
    "internal-": (500, "INTERNAL", "Internal error encountered.", "INTERNAL", None),
    "unavailable-": (
        503,
        "UNAVAILABLE",
        "The service is currently unavailable.",
        "UNAVAILABLE",
        "1",
    ),
}

_DEFAULT_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument.", "INVALID_ARGUMENT"),
    401: ("UNAUTHENTICATED", UNAUTHENTICATED_MSG, None),
    403: ("PERMISSION_DENIED", "The caller does not have permission", None),
    404: ("NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"),
    413: ("INVALID_ARGUMENT", "Request payload size exceeds the limit", None),
    415: ("INVALID_ARGUMENT", "Invalid Content-Type.", None),
    429: (
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for quota metric 'Send messages' and limit 'Send messages per minute'.",
        "QUOTA_EXCEEDED",
    ),
    500: ("INTERNAL", "Internal error encountered.", "INTERNAL"),
    503: ("UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE"),
    504: ("DEADLINE_EXCEEDED", "The request deadline was exceeded.", None),
}


def fcm_error(
    status: int,
    grpc_status: str,
    message: str,
    error_code: str | None = None,
    violations: Iterable[tuple[str, str]] = (),
    headers: dict[str, str] | None = None,
) -> Response:
    """A Google API error answer; `error_code` adds the FcmError detail, `violations`
    `(field, description)` pairs a google.rpc.BadRequest detail."""
    details: list[dict[str, Any]] = []
    if error_code is not None:
        details.append({"@type": FCM_ERROR, "errorCode": error_code})
    v = [{"field": f, "description": d} for f, d in violations]
    if v:
        details.append({"@type": BAD_REQUEST, "fieldViolations": v})
    err: dict[str, Any] = {"code": status, "message": message, "status": grpc_status}
    if details:
        err["details"] = details
    return json_response(status, {"error": err}, headers)


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    return json_response(status, {"error": error, "error_description": description})


class FcmFake(Fake):
    """FCM HTTP v1 plus the OAuth2 token endpoint of its service account."""

    name: ClassVar[str] = "fcm"
    routes: ClassVar[tuple[str, ...]] = ("send", "token")

    def __init__(
        self,
        project_id: str = "mcrm-fake",
        *,
        client_email: str | None = None,
        key_seed: str = "mcrm-fake-service-account",
        expires_in: int = 3599,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.project_id = project_id
        self.client_email = client_email or f"mcrm-sender@{project_id}.iam.gserviceaccount.com"
        self.key: RsaKey = generate_key(key_seed)
        self.private_key_id = hashlib.sha1(key_seed.encode()).hexdigest()
        self.expires_in = expires_in
        self.tokens_expire_after: int | None = None
        self.reset_state()

    def reset_state(self) -> None:
        self._tokens: dict[str, dict[str, Any]] = {}  # token -> {expires_at, sends, scopes}
        self._counter = 0
        self._sent: list[dict[str, Any]] = []
        self.assertions: list[dict[str, Any]] = []  # verified JWT claims, in order

    # -- configuration ---------------------------------------------------------------------

    def service_account_info(self, token_uri: str | None = None) -> dict[str, str]:
        """The service-account JSON (as a dict) for this fake; `token_uri` defaults to the
        fake's `/token` (google-auth POSTs there; `aud` stays Google's)."""
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self.private_key_id,
            "private_key": self.key.private_pem(),
            "client_email": self.client_email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri or self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
            + self.client_email.replace("@", "%40"),
            "universe_domain": "googleapis.com",
        }

    def write_service_account(self, path: str | Path, token_uri: str | None = None) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.service_account_info(token_uri), indent=2) + "\n")
        return p

    @property
    def token_uri(self) -> str:
        return self.url + "/token"

    def credentials(self) -> dict[str, str]:
        return {
            "base_url": self.url,
            "token_uri": self.token_uri,
            "project_id": self.project_id,
            "client_email": self.client_email,
        }

    def issue_token(self, scopes: Iterable[str] = (FCM_SCOPE,)) -> str:
        """A valid access token, as if the OAuth exchange had happened."""
        with self.lock:
            return self._issue(list(scopes))

    def expire_tokens_after(self, sends: int | None) -> None:
        """Every access token stops working after `sends` accepted sends (None: never)."""
        with self.lock:
            self.tokens_expire_after = sends

    def expire_all_tokens(self) -> None:
        with self.lock:
            for t in self._tokens.values():
                t["expires_at"] = 0.0

    @property
    def sent(self) -> list[dict[str, Any]]:
        """The accepted `message` objects (not `validate_only`), in order."""
        with self.lock:
            return list(self._sent)

    @property
    def tokens_issued(self) -> int:
        with self.lock:
            return len(self._tokens)

    # -- routing -----------------------------------------------------------------------------

    def route(self, req: Request) -> str | None:
        if req.path == "/token":
            return "token" if req.method == "POST" else "method"
        m = re.fullmatch(r"/v1/projects/([^/]+)/messages:send", req.path)
        if m:
            return "send" if req.method == "POST" else "method"
        return None

    def handle(self, route: str, req: Request) -> Response:
        if route == "token":
            return self._token(req)
        if route == "send":
            return self._send(req)
        return fcm_error(405, "METHOD_NOT_ALLOWED", "Method not allowed.")

    def error_response(self, status: int, message: str | None = None) -> Response:
        if status == 502:
            return html_502()
        grpc, default, code = _DEFAULT_ERRORS.get(status, ("UNKNOWN", "Unknown error.", None))
        resp = fcm_error(status, grpc, message or default, code)
        if status == 404 and message is None:
            # a bare 404 is a route FCM does not have, not an unregistered token
            resp = fcm_error(404, "NOT_FOUND", "Requested entity was not found.")
        return resp

    # -- OAuth2 token endpoint ---------------------------------------------------------------

    def _issue(self, scopes: list[str]) -> str:
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        self._tokens[token] = {
            "expires_at": self.clock() + self.expires_in,
            "sends": 0,
            "scopes": scopes,
        }
        return token

    def _token(self, req: Request) -> Response:
        if req.content_type != FORM_TYPE:
            return oauth_error("invalid_request", "Invalid Content-Type; expected form data.")
        try:
            form = req.form()
        except ValueError:
            return oauth_error("invalid_request", "Malformed form body.")
        grant = form.get("grant_type", [""])[0]
        if grant != JWT_BEARER:
            return oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant}")
        assertion = form.get("assertion", [""])[0]
        if not assertion:
            return oauth_error("invalid_request", "Missing required parameter: assertion")
        try:
            header, claims, signing_input, signature = decode_jwt(assertion)
        except (ValueError, UnicodeDecodeError):
            return oauth_error("invalid_grant", "Invalid JWT: malformed.")
        if header.get("alg") != "RS256":
            return oauth_error("invalid_grant", BAD_SIGNATURE)
        if header.get("typ", "JWT") != "JWT":
            return oauth_error("invalid_grant", "Invalid JWT: bad header typ.")
        if claims.get("iss") != self.client_email:
            return oauth_error("invalid_grant", "Invalid grant: account not found")
        if "kid" in header and header["kid"] != self.private_key_id:
            return oauth_error("invalid_grant", BAD_SIGNATURE)
        if not self.key.verify(signing_input, signature):
            return oauth_error("invalid_grant", BAD_SIGNATURE)
        if claims.get("aud") != GOOGLE_TOKEN_URI:
            return oauth_error(
                "invalid_grant",
                f"Invalid JWT: Failed audience check. The right audience is {GOOGLE_TOKEN_URI}",
            )
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            return oauth_error("invalid_grant", TIMEFRAME)
        if isinstance(iat, bool) or isinstance(exp, bool):
            return oauth_error("invalid_grant", TIMEFRAME)
        now = self.clock()
        if not (0 < exp - iat <= 3600 and iat - 60 <= now <= exp):
            return oauth_error("invalid_grant", TIMEFRAME)
        scopes = str(claims.get("scope") or "").split()
        if not ({FCM_SCOPE, CLOUD_SCOPE} & set(scopes)):
            return oauth_error(
                "invalid_scope", "Invalid OAuth scope or ID token audience provided."
            )
        self.assertions.append(claims)
        return json_response(
            200,
            {
                "access_token": self._issue(scopes),
                "expires_in": self.expires_in,
                "token_type": "Bearer",
            },
            {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate"},
        )

    # -- messages:send -----------------------------------------------------------------------

    def _send(self, req: Request) -> Response:
        unauth = {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
        token = bearer(req)
        info = self._tokens.get(token or "")
        if (
            info is None
            or info["expires_at"] <= self.clock()
            or (self.tokens_expire_after is not None and info["sends"] >= self.tokens_expire_after)
        ):
            return fcm_error(401, "UNAUTHENTICATED", UNAUTHENTICATED_MSG, headers=unauth)
        if not ({FCM_SCOPE, CLOUD_SCOPE} & set(info["scopes"])):
            return fcm_error(
                403, "PERMISSION_DENIED", "Request had insufficient authentication scopes."
            )
        pid = req.path.split("/")[3]
        if pid != self.project_id:
            return self._permission_denied(pid)
        if req.content_type != "application/json":
            return fcm_error(
                400,
                "INVALID_ARGUMENT",
                "Invalid JSON payload received. Unexpected token.",
                violations=[("", "Invalid JSON payload received. Unexpected token.")],
            )
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            return fcm_error(
                400,
                "INVALID_ARGUMENT",
                "Invalid JSON payload received. Unexpected token.",
                violations=[("", "Invalid JSON payload received. Unexpected token.")],
            )
        problem = self._validate(body)
        if problem is not None:
            return problem
        message: dict[str, Any] = body["message"]
        token_value = message.get("token")
        if isinstance(token_value, str):
            magic = self._magic(token_value)
            if magic is not None:
                return magic
        info["sends"] += 1
        if body.get("validate_only") is True:
            return json_response(200, {"name": f"projects/{pid}/messages/fake_message_id"})
        self._counter += 1
        self._record(self._sent, message)
        return json_response(200, {"name": f"projects/{pid}/messages/{self._counter}"})

    def _permission_denied(self, pid: str) -> Response:
        msg = (
            f"Permission 'cloudmessaging.messages.create' denied on resource "
            f"'//cloudresourcemanager.googleapis.com/projects/{pid}' (or it may not exist)."
        )
        body = {
            "error": {
                "code": 403,
                "message": msg,
                "status": "PERMISSION_DENIED",
                "details": [
                    {
                        "@type": ERROR_INFO,
                        "reason": "IAM_PERMISSION_DENIED",
                        "domain": "cloudresourcemanager.googleapis.com",
                        "metadata": {"permission": "cloudmessaging.messages.create"},
                    }
                ],
            }
        }
        return json_response(403, body)

    def _magic(self, token: str) -> Response | None:
        if token.startswith("invalid-"):
            return fcm_error(
                400,
                "INVALID_ARGUMENT",
                NOT_A_TOKEN,
                "INVALID_ARGUMENT",
                [("message.token", NOT_A_TOKEN)],
            )
        if token.startswith("badgateway-"):
            return html_502()
        for prefix, (status, grpc, msg, code, retry_after) in MAGIC.items():
            if token.startswith(prefix):
                headers = {"Retry-After": retry_after} if retry_after else None
                return fcm_error(status, grpc, msg, code, headers=headers)
        return None

    def _validate(self, body: Any) -> Response | None:
        def bad(field: str, description: str, message: str | None = None) -> Response:
            return fcm_error(
                400,
                "INVALID_ARGUMENT",
                message or description,
                "INVALID_ARGUMENT" if field.startswith("message.") else None,
                [(field, description)],
            )

        if not isinstance(body, dict):
            return bad("", "Invalid JSON payload received. Expected an object.")
        for k in body:
            if k not in ("message", "validate_only"):
                return bad(
                    "", f'Invalid JSON payload received. Unknown name "{k}": Cannot find field.'
                )
        if "validate_only" in body and not isinstance(body["validate_only"], bool):
            return bad("validate_only", "Invalid value at 'validate_only' (TYPE_BOOL)")
        msg = body.get("message")
        if not isinstance(msg, dict):
            return bad("message", "Request contains an invalid argument: message is required.")
        for k in msg:
            if k not in MESSAGE_FIELDS:
                return bad(
                    "message",
                    f"Invalid JSON payload received. Unknown name \"{k}\" at 'message': "
                    "Cannot find field.",
                )
        targets = [t for t in ("token", "topic", "condition") if t in msg]
        if not targets:
            return bad("message", "Recipient of the message is not set.")
        if len(targets) > 1:
            return bad(
                "message",
                f"Invalid value at 'message' (oneof), oneof field 'target' is already set. "
                f"Cannot set '{targets[1]}'",
            )
        target = targets[0]
        value = msg[target]
        if not isinstance(value, str):
            return bad(f"message.{target}", f"Invalid value at 'message.{target}' (TYPE_STRING)")
        if target == "token" and (not value or any(c.isspace() for c in value)):
            return fcm_error(
                400,
                "INVALID_ARGUMENT",
                NOT_A_TOKEN,
                "INVALID_ARGUMENT",
                [("message.token", NOT_A_TOKEN)],
            )
        if target == "topic" and not TOPIC_RE.match(value):
            return bad("message.topic", "Invalid topic name.")
        data = msg.get("data")
        if data is not None:
            if not isinstance(data, dict):
                return bad("message.data", "Invalid value at 'message.data' (map)")
            for i, (k, v) in enumerate(data.items()):
                if not isinstance(v, str):
                    shown = json.dumps(v)
                    return bad(
                        f"message.data[{i}].value",
                        f"Invalid value at 'message.data[{i}].value' (TYPE_STRING), {shown}",
                    )
                if k in RESERVED_DATA_KEYS or k.startswith(("google.", "gcm.")):
                    return bad("message.data", f"Invalid data payload key: {k}")
        notification = msg.get("notification")
        if notification is not None:
            problem = _check_strings(notification, "message.notification", NOTIFICATION_FIELDS)
            if problem:
                return bad(*problem)
        android = msg.get("android")
        if android is not None:
            problem = _check_android(android)
            if problem:
                return bad(*problem)
        apns = msg.get("apns")
        if apns is not None:
            problem = _check_apns(apns)
            if problem:
                return bad(*problem)
        size = len(
            json.dumps(
                {"notification": notification or {}, "data": data or {}},
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode("utf-8")
        )
        limit = MAX_TOPIC_PAYLOAD if target == "topic" else MAX_PAYLOAD
        if size > limit:
            return fcm_error(
                400, "INVALID_ARGUMENT", "Android message is too big", "INVALID_ARGUMENT"
            )
        return None


def _check_strings(obj: Any, where: str, allowed: frozenset[str]) -> tuple[str, str] | None:
    if not isinstance(obj, dict):
        return where, f"Invalid value at '{where}' (type.googleapis.com/object)"
    for k, v in obj.items():
        if k not in allowed:
            return where, (
                f"Invalid JSON payload received. Unknown name \"{k}\" at '{where}': "
                "Cannot find field."
            )
        if not isinstance(v, str):
            return f"{where}.{k}", f"Invalid value at '{where}.{k}' (TYPE_STRING)"
    return None


def _check_android(a: Any) -> tuple[str, str] | None:
    where = "message.android"
    if not isinstance(a, dict):
        return where, f"Invalid value at '{where}' (type.googleapis.com/object)"
    for k in a:
        if k not in ANDROID_FIELDS:
            return where, (
                f"Invalid JSON payload received. Unknown name \"{k}\" at '{where}': "
                "Cannot find field."
            )
    if "priority" in a and a["priority"] not in ("NORMAL", "HIGH"):
        return f"{where}.priority", (
            f"Invalid value at '{where}.priority' "
            f"(type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), "
            f"{json.dumps(a['priority'])}"
        )
    if "collapse_key" in a and not isinstance(a["collapse_key"], str):
        return f"{where}.collapse_key", f"Invalid value at '{where}.collapse_key' (TYPE_STRING)"
    if "ttl" in a:
        ttl = a["ttl"]
        m = TTL_RE.match(ttl) if isinstance(ttl, str) else None
        if m is None:
            return f"{where}.ttl", (
                f"Invalid value at '{where}.ttl' (type.googleapis.com/google.protobuf.Duration), "
                f"Field 'ttl', Illegal duration format; duration must end with 's'"
            )
        if int(m.group(1)) > MAX_TTL_S:
            return f"{where}.ttl", "The value provided for 'message.android.ttl' is out of range"
    if "data" in a:
        d = a["data"]
        if not isinstance(d, dict) or any(not isinstance(v, str) for v in d.values()):
            return f"{where}.data", f"Invalid value at '{where}.data' (TYPE_STRING)"
    return None


def _check_apns(a: Any) -> tuple[str, str] | None:
    where = "message.apns"
    if not isinstance(a, dict):
        return where, f"Invalid value at '{where}' (type.googleapis.com/object)"
    for k in a:
        if k not in APNS_FIELDS:
            return where, (
                f"Invalid JSON payload received. Unknown name \"{k}\" at '{where}': "
                "Cannot find field."
            )
    headers = a.get("headers")
    if headers is not None:
        if not isinstance(headers, dict):
            return f"{where}.headers", f"Invalid value at '{where}.headers' (map)"
        for k, v in headers.items():
            if not isinstance(v, str):
                return f"{where}.headers", (
                    f"Invalid value at '{where}.headers[{k}].value' (TYPE_STRING)"
                )
        prio = headers.get("apns-priority")
        if prio is not None and prio not in ("1", "5", "10"):
            return f"{where}.headers", "Invalid APNs priority."
    payload = a.get("payload")
    if payload is not None and not isinstance(payload, dict):
        return (
            f"{where}.payload",
            f"Invalid value at '{where}.payload' (type.googleapis.com/object)",
        )
    return None
