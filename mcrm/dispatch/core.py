"""The adapter contract, the error taxonomy and the retry arithmetic (reference/providers.md §1).

An adapter turns a batch of `Outbound` messages into one `Result` per message, in order. Provider
answers and transport failures are *outcomes*, never exceptions; adapters neither sleep nor
retry. Backoff, the outbox state machine and lane pauses belong to the dispatcher.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    THROTTLED = "throttled"
    AUTH = "auth"
    INVALID_RECIPIENT = "invalid_recipient"
    PERMANENT = "permanent"
    AMBIGUOUS = "ambiguous"


LANE_WIDE = frozenset({Outcome.THROTTLED, Outcome.AUTH})


@dataclass(frozen=True, eq=False)
class Shared:
    """What several messages of a batch share (the columnar path, mcrm/dispatch/columnar.py):
    their parts with `sentinel` where each message's own value goes — HTML-escaped in the
    parts `escaped` marks True, verbatim in the others. `Outbound.parts` is always the whole
    text; a batching adapter may use this instead of finding the value again."""

    parts: dict[str, str]
    sentinel: str
    escaped: dict[str, bool]  # part -> escaped there (only the parts holding the sentinel)


# not frozen, like outbox.Claimed: one per message, and a frozen __init__ costs 7x
@dataclass
class Outbound:
    """One message for the wire: the outbox row's identity plus the rendered parts."""

    outbox_id: int
    idempotency_key: str
    campaign: str
    occurrence: str
    user_id: str
    channel: str
    variant: str | None
    address: str  # push token, e-mail address, E.164 number, or the user id (in-app, webhook)
    parts: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)  # e-mail headers (List-Unsubscribe)
    payload: Any = None  # in-app JSON content
    batch_key: str | None = None
    # (the shared parts, this message's value) when the columnar path built it
    shared: tuple[Shared, str] | None = field(default=None, compare=False, repr=False)


def html_escape(value: str) -> str:
    """`str(markupsafe.escape(value))`, without its cost for the common value that holds
    none of the five characters it replaces (an unsubscribe URL with a base64url token)."""
    if "&" in value or "<" in value or ">" in value or '"' in value or "'" in value:
        from markupsafe import escape

        return str(escape(value))
    return value


# hashable and compared by value like a frozen one, but a plain __init__: one per recipient
# (a frozen __init__ costs 1.9 µs for these 8 fields); nothing mutates a Result
@dataclass(unsafe_hash=True)
class Result:
    outbox_id: int
    outcome: Outcome
    provider_message_id: str | None = None
    error_code: str | None = None
    error_detail: str | None = None  # provider text without personal data
    retry_after_s: float | None = None
    mark: Literal["invalid", "opt_out"] | None = None
    mark_reason: str | None = None  # registry reason: unregistered, malformed, bounce, ...


class Adapter(Protocol):
    name: str
    channel: str
    max_batch: int
    dedupes: bool  # the provider (or our contract) dedupes on our key: safe to resend

    def send(self, batch: Sequence[Outbound]) -> list[Result]: ...

    def close(self) -> None: ...


def backoff(attempt: int, rng: random.Random) -> float:
    """Exponential backoff with jitter: attempt 1, 2, ... -> up to 1, 2, 4, ... 60 s."""
    return float(min(60.0, 2.0 ** (attempt - 1)) * rng.uniform(0.5, 1.0))


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), clamped to 0..24 h;
    None when absent or unparseable. `now` must be timezone-aware."""
    if value is None:
        return None
    v = value.strip()
    if v.isascii() and v.isdigit():
        secs = float(v)
    else:
        try:
            when = email.utils.parsedate_to_datetime(v)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        secs = (when - now).total_seconds()
    return min(max(secs, 0.0), 86_400.0)


def standard_webhook_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` over `id.timestamp.body` (Standard Webhooks); `secret` is
    `whsec_<base64>` (the key is the decoded bytes)."""
    raw = secret[len("whsec_") :] if secret.startswith("whsec_") else secret
    key = base64.b64decode(raw)
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def address_hash(channel: str, address: str) -> str:
    """The invalid-address registry key: sha256 of the normalised address (§1.6), so a
    suppression survives `users forget`."""
    a = address.strip()
    if channel == "email":
        a = a.lower()
    return hashlib.sha256(f"{channel}:{a}".encode()).hexdigest()


def batch_key(member_keys: Sequence[str]) -> str:
    """The key of a batch of outbox rows (providers.md §1.5): uuid5 of its sorted member keys,
    stored on the rows before the request so a retry resends exactly that batch."""
    import json
    import uuid

    from mcrm.campaigns.plan import MCRM_NS

    return str(uuid.uuid5(MCRM_NS, json.dumps(sorted(member_keys))))
