"""Expo push (reference/providers.md §2.2): tickets now, receipts later.

- **One token per message object**, at most 100 per request, so ticket *i* is row *i*. A
  body over 1 KB is gzipped. With "enhanced push security" on, `access_token:` is sent as
  `Authorization: Bearer`.
- **Tickets:** `ok` means accepted (not delivered): the row is `sent` with the ticket id as
  provider message id, and the receipt settles it later (`check_receipts`). An error ticket
  is classified by `details.error`. Expo does not dedupe: `data.mcrm_id` carries the key for
  the app.
- **Whole-request errors** (`{"errors": [{"code", ...}]}`, even with a 200) apply to every
  message of the request: TOO_MANY_REQUESTS throttles the lane, UNAUTHORIZED stops it,
  PUSH_TOO_MANY_EXPERIENCE_IDS is split by project (from `details`) and each part sent once.
- Tokens that are not Expo push tokens at all are refused before the request (malformed),
  so one bad token cannot fail the 99 others; error texts are stored without the token.
- **Receipts** (`check_receipts`, for the poller of `receipt_status = pending` rows): chunks
  of 300 ids; a ready receipt maps to a final Result of its message; an id not ready is
  absent. When the poll request itself fails, its ids map to a Result whose `error_code`
  starts with `receipts:` — about the poll, not the message: poll again later.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mcrm.dispatch.core import Outbound, Outcome, Result, parse_retry_after
from mcrm.dispatch.http import base_url, json_or_none, session, transport_outcome
from mcrm.errors import ConfigError, Where

DEFAULT_BASE = "https://exp.host"
SEND_PATH = "/--/api/v2/push/send"
RECEIPTS_PATH = "/--/api/v2/push/getReceipts"
MAX_BATCH = 100
RECEIPT_CHUNK = 300
GZIP_OVER = 1024
THROTTLE_FLOOR_S = 1.0  # Expo 429: at least a second (providers.md §1.4)
POLL_FAILURE = "receipts:"
"""Prefix of the `error_code` of a receipt Result that reports a failed poll request."""

TOKEN_RE = re.compile(
    r"^(?:Expo(?:nent)?PushToken\[[^\[\]]+\]"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)
ANY_TOKEN_RE = re.compile(r"Expo(?:nent)?PushToken\[[^\]]*\]")
OPTIONS = {"base_url", "access_token", "timeout", "ttl", "priority", "sound", "channel_id"}

# details.error of a ticket or receipt -> (outcome, registry reason)
TICKET_ERRORS: dict[str, tuple[Outcome, str | None]] = {
    "DeviceNotRegistered": (Outcome.INVALID_RECIPIENT, "unregistered"),
    "MessageTooBig": (Outcome.PERMANENT, None),
    "MessageRateExceeded": (Outcome.RETRY, None),  # not delivered: safe to resend
    "MismatchSenderId": (Outcome.AUTH, None),  # FCM/APNs credentials held by Expo
    "InvalidCredentials": (Outcome.AUTH, None),
}

Clock = Callable[[], float]


def _scrub(text: Any) -> str | None:
    """A provider text without push tokens (they are personal data), at most 200 chars."""
    if not isinstance(text, str) or not text:
        return None
    return ANY_TOKEN_RE.sub("<token>", text)[:200]


def classify_ticket(outbox_id: int, ticket: Any) -> Result:
    """One ticket (or receipt) -> the Result of its message."""
    if not isinstance(ticket, dict):
        return Result(outbox_id, Outcome.AMBIGUOUS, error_code="bad_ticket")
    if ticket.get("status") == "ok":
        tid = ticket.get("id")
        return Result(outbox_id, Outcome.SENT, provider_message_id=tid)
    details = ticket.get("details")
    code = details.get("error") if isinstance(details, dict) else None
    code = str(code) if code else "error"
    outcome, reason = TICKET_ERRORS.get(code, (Outcome.PERMANENT, None))
    return Result(
        outbox_id,
        outcome,
        error_code=code,
        error_detail=_scrub(ticket.get("message")),
        mark="invalid" if reason else None,
        mark_reason=reason,
    )


class Expo:
    channel = "push"
    max_batch = MAX_BATCH
    dedupes = False

    def __init__(self, name: str, opts: dict[str, Any], *, clock: Clock = time.time):
        where = Where("mcrm.yaml", None, f"providers.{name}")
        unknown = set(opts) - OPTIONS
        if unknown:
            raise ConfigError(
                f"provider '{name}': unknown option(s) {', '.join(sorted(unknown))}",
                hint=f"options: {', '.join(sorted(OPTIONS))}",
                where=where,
            )
        self.name = name
        self.clock = clock
        self.base = base_url(name, opts, DEFAULT_BASE)
        token = opts.get("access_token")
        self.access_token = str(token) if token else None
        self.timeout = (5.0, float(opts.get("timeout", 30)))
        from mcrm.dispatch.fcm import ttl_seconds

        self.ttl = ttl_seconds(name, opts.get("ttl"), 2_419_200)
        priority = str(opts.get("priority", "high"))
        if priority not in ("default", "normal", "high"):
            raise ConfigError(
                f"provider '{name}': priority must be default, normal or high",
                where=Where("mcrm.yaml", None, f"providers.{name}.priority"),
            )
        self.priority = priority
        sound = opts.get("sound", "default")
        self.sound = None if sound is None else str(sound)
        channel_id = opts.get("channel_id")
        self.channel_id = str(channel_id) if channel_id else None
        self.http = session(6)  # the official SDK keeps at most 6 requests in flight

    # --- wire ------------------------------------------------------------------------------

    def message(self, m: Outbound) -> dict[str, Any]:
        data = {"mcrm_id": m.idempotency_key}
        if m.parts.get("deeplink"):
            data["deeplink"] = m.parts["deeplink"]
        msg: dict[str, Any] = {"to": m.address}
        for k in ("title", "body"):
            if m.parts.get(k):
                msg[k] = m.parts[k]
        msg["data"] = data
        if self.sound:
            msg["sound"] = self.sound
        msg["priority"] = self.priority
        if self.ttl is not None:
            msg["ttl"] = self.ttl
        if self.channel_id:
            msg["channelId"] = self.channel_id
        return msg

    def _post(self, path: str, doc: Any) -> Any:
        """POST JSON (gzipped over 1 KB); the response, or the exception it raised."""
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if len(body) > GZIP_OVER:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        try:
            return self.http.post(
                self.base + path,
                data=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except Exception as e:
            return e

    def _retry_after(self, headers: Any) -> float | None:
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        return parse_retry_after(headers.get("Retry-After"), now)

    def request_failure(self, resp: Any) -> tuple[Outcome, str, str | None, float | None] | None:
        """A whole-request failure (outcome, code, detail, retry after), or None when the
        answer carries tickets."""
        st = resp.status_code
        doc = json_or_none(resp)
        errors = doc.get("errors") if isinstance(doc, dict) else None
        first = errors[0] if isinstance(errors, list) and errors else None
        if 200 <= st < 300 and first is None:
            return None
        code = str(first.get("code")) if isinstance(first, dict) and first.get("code") else None
        detail = _scrub(first.get("message")) if isinstance(first, dict) else None
        key = code or str(st)
        after = self._retry_after(resp.headers)
        if code == "TOO_MANY_REQUESTS" or st == 429:
            return Outcome.THROTTLED, key, detail, max(after or 0.0, THROTTLE_FLOOR_S)
        if code == "UNAUTHORIZED" or st in (401, 403):
            return Outcome.AUTH, key, detail, None
        if st >= 500:
            return Outcome.RETRY, key, detail, after
        if 300 <= st < 400:
            return Outcome.RETRY, str(st), "redirect not followed", None
        if 200 <= st < 300 and isinstance(first, dict) and first.get("isTransient") is True:
            return Outcome.RETRY, key, detail, after
        return Outcome.PERMANENT, key, detail, None

    # --- send ------------------------------------------------------------------------------

    def send(self, batch: Sequence[Outbound]) -> list[Result]:
        out: dict[int, Result] = {}
        todo: list[int] = []
        for i, m in enumerate(batch):
            if TOKEN_RE.match(m.address):
                todo.append(i)
            else:
                out[i] = Result(
                    m.outbox_id,
                    Outcome.INVALID_RECIPIENT,
                    error_code="malformed_token",
                    error_detail="not an Expo push token",
                    mark="invalid",
                    mark_reason="malformed",
                )
        for start in range(0, len(todo), MAX_BATCH):
            idx = todo[start : start + MAX_BATCH]
            for i, r in zip(idx, self._send([batch[i] for i in idx], split=True), strict=True):
                out[i] = r
        return [out[i] for i in range(len(batch))]

    def _send(self, part: Sequence[Outbound], split: bool) -> list[Result]:
        resp = self._post(SEND_PATH, [self.message(m) for m in part])
        if isinstance(resp, BaseException):
            outcome, code = transport_outcome(resp)
            return [Result(m.outbox_id, outcome, error_code=code) for m in part]
        failure = self.request_failure(resp)
        if failure is not None:
            outcome, code, detail, after = failure
            if code == "PUSH_TOO_MANY_EXPERIENCE_IDS" and split and len(part) > 1:
                return self._split_by_project(part, resp)
            if code == "PUSH_TOO_MANY_NOTIFICATIONS" and split and len(part) > 1:
                half = len(part) // 2
                return self._send(part[:half], True) + self._send(part[half:], True)
            return [
                Result(
                    m.outbox_id, outcome, error_code=code, error_detail=detail, retry_after_s=after
                )
                for m in part
            ]
        doc = json_or_none(resp)
        tickets = doc.get("data") if isinstance(doc, dict) else None
        if isinstance(tickets, dict) and len(part) == 1:
            tickets = [tickets]
        if not isinstance(tickets, list) or len(tickets) != len(part):
            # accepted, but the tickets cannot be matched to the rows: delivery unknowable
            return [
                Result(m.outbox_id, Outcome.AMBIGUOUS, error_code="ticket_mismatch") for m in part
            ]
        return [classify_ticket(m.outbox_id, t) for m, t in zip(part, tickets, strict=True)]

    def _split_by_project(self, part: Sequence[Outbound], resp: Any) -> list[Result]:
        """Tokens of several Expo projects in one request: one request per project (once)."""
        doc = json_or_none(resp)
        details = doc["errors"][0].get("details") if isinstance(doc, dict) else None
        project_of: dict[str, str] = {}
        if isinstance(details, dict):
            for project, tokens in details.items():
                for t in tokens if isinstance(tokens, list) else []:
                    project_of[str(t)] = str(project)
        groups: dict[str, list[int]] = {}
        for i, m in enumerate(part):
            groups.setdefault(project_of.get(m.address, ""), []).append(i)
        results: list[Result | None] = [None] * len(part)
        for idx in groups.values():
            for i, r in zip(idx, self._send([part[i] for i in idx], False), strict=True):
                results[i] = r
        return [r for r in results if r is not None]

    # --- receipts --------------------------------------------------------------------------

    def check_receipts(
        self, ticket_ids: Sequence[str], outbox_ids: Mapping[str, int] | None = None
    ) -> dict[str, Result]:
        """Ticket id -> Result for every receipt that is ready (ok: sent; DeviceNotRegistered:
        invalid_recipient, token unregistered; MessageTooBig: permanent; ...). Ids not ready
        are absent. `outbox_ids` (ticket id -> outbox id) fills `Result.outbox_id` (else 0).
        A failed poll request maps its ids to a Result with `error_code` `receipts:<code>`."""
        oid = dict(outbox_ids or {})
        out: dict[str, Result] = {}
        ids = list(dict.fromkeys(ticket_ids))
        for start in range(0, len(ids), RECEIPT_CHUNK):
            chunk = ids[start : start + RECEIPT_CHUNK]
            resp = self._post(RECEIPTS_PATH, {"ids": chunk})
            failure: tuple[Outcome, str, str | None, float | None] | None
            if isinstance(resp, BaseException):
                outcome, code = transport_outcome(resp)
                failure = (
                    Outcome.RETRY if outcome is Outcome.AMBIGUOUS else outcome,
                    code,
                    None,
                    None,
                )
            else:
                failure = self.request_failure(resp)
            doc = None if failure else json_or_none(resp)
            data = doc.get("data") if isinstance(doc, dict) else None
            if failure is None and not isinstance(data, dict):
                failure = (Outcome.RETRY, "bad_body", None, None)
            if failure is not None:
                outcome, code, detail, after = failure
                for t in chunk:
                    out[t] = Result(
                        oid.get(t, 0),
                        outcome,
                        provider_message_id=t,
                        error_code=POLL_FAILURE + code,
                        error_detail=detail,
                        retry_after_s=after,
                    )
                continue
            assert isinstance(data, dict)
            for t in chunk:
                if t in data:
                    r = classify_ticket(oid.get(t, 0), data[t])
                    out[t] = Result(
                        r.outbox_id,
                        r.outcome,
                        provider_message_id=t,
                        error_code=r.error_code,
                        error_detail=r.error_detail,
                        mark=r.mark,
                        mark_reason=r.mark_reason,
                    )
        return out

    def close(self) -> None:
        self.http.close()
