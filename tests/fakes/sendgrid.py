"""SendGrid v3 `POST /v3/mail/send` (providers.md §3.2).

Why this shape:

- **A 400 rejects the whole request and lists every problem**, each with the exact `field`
  path SendGrid uses (`personalizations.0.to.1.email`), so an adapter can tell "one bad
  recipient" (drop that row, resend the rest) from "bad request" (permanent). The fake
  collects all errors before answering, as SendGrid does.
- **Limits are checked as published:** at most 1000 personalizations and 1000 recipients
  (to + cc + bcc over all personalizations), a unique address per personalization, names
  without `;` or `,`, `custom_args` under 10,000 bytes, the body under 30 MB (413).
- **202 + `X-Message-Id`**, empty body; sandbox mode (`mail_settings.sandbox_mode.enable`)
  answers 200 and queues nothing. A scripted 429 carries `X-RateLimit-Limit/-Remaining/
  -Reset` (epoch seconds on the injected clock) unless the script gives its own headers.
- No magic inputs on this card: a malformed address *is* the per-recipient magic.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any, ClassVar

from .base import Fake, Request, Response, bearer, empty_response, json_response

MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_CUSTOM_ARGS = 10_000
MAX_BYTES = 30 * 1024 * 1024
HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.{}"

EMAIL_RE = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
RESERVED_HEADERS = frozenset(
    {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type"}
    | {"content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc"}
)
AUTH_MESSAGE = "The provided authorization grant is invalid, expired, or revoked"

_DEFAULT_ERRORS = {
    400: "Bad Request",
    401: AUTH_MESSAGE,
    403: "access forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    415: "Content-Type should be application/json.",
    429: "too many requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def sendgrid_errors(status: int, errors: list[tuple[str, str | None]]) -> Response:
    """`{"errors": [{"message", "field", "help"}]}` from (message, field) pairs."""
    body = {
        "errors": [
            {"message": m, "field": f, "help": HELP.format(f.split(".")[0]) if f else None}
            for m, f in errors
        ]
    }
    return json_response(status, body)


class SendGridFake(Fake):
    """SendGrid v3 mail send."""

    name: ClassVar[str] = "sendgrid"
    routes: ClassVar[tuple[str, ...]] = ("send",)

    def __init__(
        self,
        api_key: str = "SG.fake-key-id.fake-key-secret-0123456789abcdef",
        *,
        max_bytes: int = MAX_BYTES,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.api_key = api_key
        self.max_bytes = max_bytes
        self.reset_state()

    def reset_state(self) -> None:
        self._sent: list[tuple[str, dict[str, Any]]] = []

    def credentials(self) -> dict[str, str]:
        return {"base_url": self.url, "api_key": self.api_key}

    @property
    def sent(self) -> list[tuple[str, dict[str, Any]]]:
        """(X-Message-Id, request body) of every queued (202) request, in order."""
        with self.lock:
            return list(self._sent)

    def route(self, req: Request) -> str | None:
        if req.path == "/v3/mail/send":
            return "send" if req.method == "POST" else "method"
        return None

    def error_response(self, status: int, message: str | None = None) -> Response:
        resp = sendgrid_errors(status, [(message or _DEFAULT_ERRORS.get(status, "Error"), None)])
        if status == 429:
            resp = resp.with_headers(
                {
                    "X-RateLimit-Limit": "600",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(self.clock()) + 1),
                }
            )
        return resp

    def handle(self, route: str, req: Request) -> Response:
        if route == "method":
            return self.error_response(405)
        if bearer(req) != self.api_key:
            return sendgrid_errors(401, [(AUTH_MESSAGE, None)])
        if len(req.body) > self.max_bytes:
            return sendgrid_errors(413, [("Payload Too Large", None)])
        if req.content_type != "application/json":
            return sendgrid_errors(415, [(_DEFAULT_ERRORS[415], None)])
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            return sendgrid_errors(400, [("Bad Request", None)])
        if not isinstance(body, dict):
            return sendgrid_errors(400, [("Bad Request", None)])
        errors = validate_mail(body)
        if errors:
            return sendgrid_errors(400, errors)
        settings = body.get("mail_settings")
        sandbox = settings.get("sandbox_mode") if isinstance(settings, dict) else None
        if isinstance(sandbox, dict) and sandbox.get("enable") is True:
            return empty_response(200)
        message_id = secrets.token_urlsafe(16)[:22]
        # `accepted` counts recipients: one SendGrid request carries up to 1000 messages
        self._record(self._sent, (message_id, body), _count_recipients(body["personalizations"]))
        return empty_response(202, {"X-Message-Id": message_id})


def _count_recipients(personalizations: list[dict[str, Any]]) -> int:
    return sum(len(p.get(k) or []) for p in personalizations for k in ("to", "cc", "bcc"))


def validate_mail(body: dict[str, Any]) -> list[tuple[str, str | None]]:
    """Every problem of a mail-send body, as (message, field)."""
    errors: list[tuple[str, str | None]] = []
    has_template = isinstance(body.get("template_id"), str) and bool(body["template_id"])

    pers = body.get("personalizations")
    if not isinstance(pers, list) or not pers:
        errors.append(
            (
                "The personalizations field is required and must have at least one "
                "personalization.",
                "personalizations",
            )
        )
        pers = []
    elif len(pers) > MAX_PERSONALIZATIONS:
        errors.append(
            (
                f"The personalizations field cannot have more than {MAX_PERSONALIZATIONS} "
                "personalizations.",
                "personalizations",
            )
        )
    total = 0
    all_have_subject = bool(pers)
    top_args = body.get("custom_args") if isinstance(body.get("custom_args"), dict) else {}
    for i, p in enumerate(pers):
        where = f"personalizations.{i}"
        if not isinstance(p, dict):
            errors.append(("The personalization must be an object.", where))
            all_have_subject = False
            continue
        to = p.get("to")
        if not isinstance(to, list) or not to:
            errors.append(
                (
                    "The to array is required for all personalization objects, and must have "
                    "at least one email object with a valid email address.",
                    f"{where}.to",
                )
            )
        seen: set[str] = set()
        for kind in ("to", "cc", "bcc"):
            lst = p.get(kind)
            if lst is None:
                continue
            if not isinstance(lst, list):
                errors.append((f"The {kind} field must be an array.", f"{where}.{kind}"))
                continue
            total += len(lst)
            for j, addr in enumerate(lst):
                errors.extend(_check_address(addr, f"{where}.{kind}.{j}", kind))
                email = addr.get("email") if isinstance(addr, dict) else None
                if isinstance(email, str):
                    low = email.lower()
                    if low in seen:
                        errors.append(
                            (
                                "Each email address in the personalization block should be "
                                "unique between to, cc, and bcc. We found the first duplicate "
                                f"instance of [{email}] in the {where}.{kind} field.",
                                f"{where}.{kind}.{j}.email",
                            )
                        )
                    seen.add(low)
        subj = p.get("subject")
        if subj is not None and (not isinstance(subj, str) or not subj):
            errors.append(("The subject must be a non-empty string.", f"{where}.subject"))
        if not (isinstance(subj, str) and subj):
            all_have_subject = False
        for field in ("headers", "substitutions", "custom_args"):
            v = p.get(field)
            if v is None:
                continue
            if not isinstance(v, dict) or any(
                not isinstance(k, str) or not isinstance(x, str) for k, x in v.items()
            ):
                errors.append((f"The {field} values must be strings.", f"{where}.{field}"))
                continue
            if field == "headers":
                for k in v:
                    if k.lower() in RESERVED_HEADERS:
                        errors.append(
                            (
                                f"The header {k} is a reserved header and cannot be set.",
                                f"{where}.headers",
                            )
                        )
        args = {**(top_args or {}), **(p.get("custom_args") or {})}
        if (
            isinstance(p.get("custom_args"), dict)
            and len(json.dumps(args, separators=(",", ":"), ensure_ascii=False).encode())
            >= MAX_CUSTOM_ARGS
        ):
            errors.append(
                (
                    f"The custom_args object must be less than {MAX_CUSTOM_ARGS:,} bytes.",
                    f"{where}.custom_args",
                )
            )
        send_at = p.get("send_at")
        if send_at is not None and (isinstance(send_at, bool) or not isinstance(send_at, int)):
            errors.append(("The send_at must be an integer (epoch seconds).", f"{where}.send_at"))
    if total > MAX_RECIPIENTS:
        errors.append(
            (
                f"The total number of recipients must be no more than {MAX_RECIPIENTS}. This "
                "includes all recipients defined within the to, cc, and bcc parameters, across "
                "each object that you include in the personalizations array.",
                "personalizations",
            )
        )

    frm = body.get("from")
    if not isinstance(frm, dict) or "email" not in frm:
        errors.append(
            (
                "The from object must be provided for every email send. It is an object that "
                "requires the email parameter, but may also contain a name parameter.",
                "from",
            )
        )
    else:
        errors.extend(_check_address(frm, "from", "from"))
    if "reply_to" in body:
        errors.extend(_check_address(body["reply_to"], "reply_to", "reply_to"))

    subject = body.get("subject")
    if not has_template and not all_have_subject and not (isinstance(subject, str) and subject):
        errors.append(
            (
                "The subject is required. You can get around this requirement if you use a "
                "template with a subject defined or if every personalization has a subject "
                "defined.",
                "subject",
            )
        )

    content = body.get("content")
    if content is None:
        if not has_template:
            errors.append(
                (
                    "Unless a valid template_id is provided, the content parameter is "
                    "required. There must be at least one defined content block. We typically "
                    "suggest both text/plain and text/html blocks are included, but only one "
                    "block is required.",
                    "content",
                )
            )
    elif not isinstance(content, list) or (not content and not has_template):
        errors.append(("The content field must be a non-empty array.", "content"))
    else:
        types: list[str] = []
        for k, c in enumerate(content):
            if not isinstance(c, dict):
                errors.append(("The content block must be an object.", f"content.{k}"))
                continue
            t, v = c.get("type"), c.get("value")
            if not isinstance(t, str) or not t:
                errors.append(("The content type must be a string.", f"content.{k}.type"))
            else:
                types.append(t)
            if not isinstance(v, str) or not v:
                errors.append(
                    (
                        "The content value must be a string at least one character in length.",
                        f"content.{k}.value",
                    )
                )
        for t in ("text/plain", "text/html"):
            if types.count(t) > 1:
                errors.append(
                    ("If present, text/plain and text/html may only be provided once.", "content")
                )
        if "text/plain" in types and types[0] != "text/plain":
            errors.append(
                (
                    "If present, text/plain must be first, followed by text/html, followed by "
                    "any other content.",
                    "content",
                )
            )
    return errors


def _check_address(addr: Any, where: str, kind: str) -> list[tuple[str, str | None]]:
    if not isinstance(addr, dict):
        return [(f"The {kind} address must be an object with an email.", where)]
    out: list[tuple[str, str | None]] = []
    email = addr.get("email")
    if not isinstance(email, str) or not EMAIL_RE.match(email):
        out.append(("Does not contain a valid address.", f"{where}.email"))
    name = addr.get("name")
    if name is not None:
        if not isinstance(name, str):
            out.append(("The name must be a string.", f"{where}.name"))
        elif ";" in name or "," in name:
            out.append(
                (
                    "Invalid name: the name of a recipient cannot contain ';' or ','.",
                    f"{where}.name",
                )
            )
    return out
