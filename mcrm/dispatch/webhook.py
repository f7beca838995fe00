"""Signed webhooks (Standard Webhooks): the generic `webhook` lane (any channel) and the in-app
inbox contract (`inapp`), reference/providers.md §5.

Each message is one POST with `webhook-id` (the idempotency key, the same on every retry),
`webhook-timestamp` (this attempt) and `webhook-signature` (`v1,` HMAC-SHA256 of
`id.timestamp.body` with the `whsec_` secret; during a rotation both secrets sign). Redirects
are never followed. The in-app receiver dedupes on `webhook-id` by contract, so an ambiguous
in-app message is resent with the same id.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from typing import Any

from mcrm.dispatch.core import Outbound, Outcome, Result, standard_webhook_signature
from mcrm.dispatch.http import (
    check_target,
    json_or_none,
    retry_after,
    session,
    transport_outcome,
)
from mcrm.errors import ConfigError, Where

MAX_BODY = 20_000
OPTIONS = {"url", "secret", "secrets", "timeout", "allow_private_targets", "expires_after"}


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Webhook:
    channel = "any"
    max_batch = 16  # one message per request; the batch is just a claim size

    def __init__(self, name: str, opts: dict[str, Any], *, inapp: bool = False):
        where = Where("mcrm.yaml", None, f"providers.{name}")
        unknown = set(opts) - OPTIONS
        if unknown:
            raise ConfigError(
                f"provider '{name}': unknown option(s) {', '.join(sorted(unknown))}",
                hint=f"options: {', '.join(sorted(OPTIONS))}",
                where=where,
            )
        self.name = name
        self.inapp = inapp
        self.dedupes = inapp
        self.url = str(opts.get("url") or "")
        if not self.url:
            raise ConfigError(f"provider '{name}' needs url:", where=where)
        check_target(self.url, bool(opts.get("allow_private_targets")), f"provider '{name}'")
        secrets = opts.get("secrets") or ([opts["secret"]] if opts.get("secret") else [])
        if not secrets or not all(isinstance(s, str) and s.startswith("whsec_") for s in secrets):
            raise ConfigError(
                f"provider '{name}' needs secret: whsec_<base64> (Standard Webhooks)",
                where=where,
            )
        self.secrets = list(secrets)
        self.timeout = (5, float(opts.get("timeout", 30)))
        from mcrm.timeutil import parse_duration

        self.expires = parse_duration(str(opts.get("expires_after", "7d")), "expires_after")
        self.http = session()

    def _body(self, m: Outbound, now: dt.datetime) -> bytes:
        content = m.payload if m.payload is not None else m.parts
        if self.inapp:
            data = {
                "message_id": m.idempotency_key,
                "user_id": m.user_id,
                "campaign": m.campaign,
                "variant": m.variant,
                "expires_at": _iso(now + self.expires),
                "content": content,
            }
            kind = "inapp.message"
        else:
            data = {
                "message_id": m.idempotency_key,
                "campaign": m.campaign,
                "variant": m.variant,
                "user_id": m.user_id,
                "channel": m.channel,
                "content": content,
            }
            kind = "campaign.message"
        doc = {"type": kind, "timestamp": _iso(now), "data": data}
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def send(self, batch: Sequence[Outbound]) -> list[Result]:
        return [self._one(m) for m in batch]

    def _one(self, m: Outbound) -> Result:
        now = dt.datetime.now(dt.UTC)
        body = self._body(m, now)
        if len(body) > MAX_BODY:
            return Result(m.outbox_id, Outcome.PERMANENT, error_code="too_large")
        ts = int(time.time())
        sig = " ".join(
            standard_webhook_signature(s, m.idempotency_key, ts, body) for s in self.secrets
        )
        headers = {
            "content-type": "application/json",
            "webhook-id": m.idempotency_key,
            "webhook-timestamp": str(ts),
            "webhook-signature": sig,
        }
        try:
            resp = self.http.post(
                self.url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except Exception as e:
            outcome, code = transport_outcome(e)
            return Result(m.outbox_id, outcome, error_code=code)
        return self.classify(m.outbox_id, resp)

    def classify(self, outbox_id: int, resp: Any) -> Result:
        st = resp.status_code
        code = str(st)
        if 200 <= st < 300:
            doc = json_or_none(resp)
            pid = doc.get("id") if isinstance(doc, dict) else None
            return Result(outbox_id, Outcome.SENT, provider_message_id=pid)
        if st in (429, 502, 503, 504):
            return Result(
                outbox_id,
                Outcome.THROTTLED,
                error_code=code,
                retry_after_s=retry_after(resp.headers),
            )
        if self.inapp:
            doc = json_or_none(resp)
            if st == 404 and isinstance(doc, dict) and doc.get("error") == "unknown_user":
                return Result(
                    outbox_id,
                    Outcome.INVALID_RECIPIENT,
                    error_code="unknown_user",
                    mark="invalid",
                    mark_reason="unknown_user",
                )
            if st in (400, 422):
                return Result(outbox_id, Outcome.PERMANENT, error_code=code)
            if st in (401, 403, 410):
                return Result(outbox_id, Outcome.AUTH, error_code=code)
            return Result(outbox_id, Outcome.RETRY, error_code=code)
        if st == 410:
            return Result(outbox_id, Outcome.AUTH, error_code=code, error_detail="endpoint gone")
        if 300 <= st < 400:
            return Result(
                outbox_id, Outcome.RETRY, error_code=code, error_detail="redirect not followed"
            )
        return Result(outbox_id, Outcome.RETRY, error_code=code)

    def close(self) -> None:
        self.http.close()
