"""Twilio Programmable Messaging (reference/providers.md §4.1): one form-encoded POST per
message to `/2010-04-01/Accounts/{AccountSid}/Messages.json`, Basic auth with the account SID
and auth token (or an API key SID and secret), a batch sent over a small thread pool.

`To` is the E.164 number, `Body` the rendered text, and `MessagingServiceSid` (recommended) or
`From` the sender; `StatusCallback`, when configured, carries `?mcrm_id=<idempotency key>` so
delivery reports can be matched. Twilio has no idempotency key: the `sid` of the 201 is the
provider id, and a lost answer is ambiguous (`unknown`, never resent: a duplicate SMS costs
money). Errors are classified on Twilio's `code`:

| code | outcome |
|---|---|
| 21211 (invalid To), 21614 (not a mobile) | invalid_recipient, address registered |
| 21610 (recipient sent STOP) | invalid_recipient, consent revoked (`mark="opt_out"`) |
| 21612, 21408 (cannot route, region not enabled), other 4xx | permanent |
| 21212, 21606, 21701, 21609, 20003, 20404, any 401/403 | auth (lane configuration) |
| 21611 (From queue full), 20429 / any 429 | throttled |
| 14107 (rate loop guard), 5xx | retry |

Once a lane-wide answer (auth, throttled) arrives, messages of the batch not yet started are
not sent: they get the same outcome without a request.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mcrm.dispatch.core import Outbound, Outcome, Result
from mcrm.dispatch.http import (
    TIMEOUT,
    OneByOne,
    base_url,
    json_or_none,
    retry_after,
    session,
    transport_outcome,
)
from mcrm.errors import ConfigError, Where

DEFAULT_BASE = "https://api.twilio.com"
API = "2010-04-01"
OPTIONS = {
    "account_sid",
    "auth_token",
    "api_key_sid",
    "api_key_secret",
    "from",
    "messaging_service_sid",
    "base_url",
    "status_callback",
    "concurrency",
}

INVALID = {21211: "malformed", 21614: "not_mobile"}
OPT_OUT = {21610}
PERMANENT = {21612, 21408}
AUTH = {21212, 21606, 21609, 21701, 20003, 20404}
THROTTLED = {21611, 20429}
RETRY = {14107}


class Twilio:
    channel = "sms"
    max_batch = 32  # one message per request; the batch is the claim size
    dedupes = False

    def __init__(self, name: str, opts: dict[str, Any]) -> None:
        where = Where("mcrm.yaml", None, f"providers.{name}")
        unknown = set(opts) - OPTIONS
        if unknown:
            raise ConfigError(
                f"provider '{name}': unknown option(s) {', '.join(sorted(unknown))}",
                hint=f"options: {', '.join(sorted(OPTIONS))}",
                where=where,
            )
        self.name = name
        sid = str(opts.get("account_sid") or "")
        if not sid.startswith("AC"):
            raise ConfigError(
                f"provider '{name}' needs account_sid: (AC…)",
                where=Where("mcrm.yaml", None, f"providers.{name}.account_sid"),
            )
        token = opts.get("auth_token")
        key_sid, key_secret = opts.get("api_key_sid"), opts.get("api_key_secret")
        if key_sid or key_secret:
            if token or not (key_sid and key_secret):
                raise ConfigError(
                    f"provider '{name}': give auth_token, or api_key_sid with api_key_secret",
                    where=where,
                )
            user, password = str(key_sid), str(key_secret)
        elif token:
            user, password = sid, str(token)
        else:
            raise ConfigError(
                f"provider '{name}' needs auth_token: (or api_key_sid and api_key_secret)",
                where=where,
            )
        self.sender = str(opts.get("from") or "") or None
        self.service = str(opts.get("messaging_service_sid") or "") or None
        if not self.sender and not self.service:
            raise ConfigError(
                f"provider '{name}' needs messaging_service_sid: (MG…) or from: (E.164 number "
                "or alphanumeric sender id)",
                where=where,
            )
        if self.service and not self.service.startswith("MG"):
            raise ConfigError(
                f"provider '{name}': messaging_service_sid must start with MG",
                where=Where("mcrm.yaml", None, f"providers.{name}.messaging_service_sid"),
            )
        callback = opts.get("status_callback")
        self.callback = str(callback) if callback else None
        if self.callback and urlsplit(self.callback).scheme not in ("http", "https"):
            raise ConfigError(
                f"provider '{name}': status_callback must be an http(s) URL",
                where=Where("mcrm.yaml", None, f"providers.{name}.status_callback"),
            )
        conc = opts.get("concurrency", 8)
        if isinstance(conc, bool) or not isinstance(conc, int) or not 1 <= conc <= 64:
            raise ConfigError(
                f"provider '{name}': concurrency must be a whole number 1..64, found {conc!r}",
                where=Where("mcrm.yaml", None, f"providers.{name}.concurrency"),
            )
        self.concurrency = conc
        base = base_url(name, opts, DEFAULT_BASE)
        self.url = f"{base}/{API}/Accounts/{sid}/Messages.json"
        basic = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self.http = session(pool=conc)
        self.http.headers.update({"Authorization": f"Basic {basic}", "Accept": "application/json"})
        self._sender = OneByOne(f"twilio-{name}", self.concurrency)

    def form(self, m: Outbound) -> dict[str, str]:
        data = {"To": m.address, "Body": m.parts.get("body", "")}
        if self.service:
            data["MessagingServiceSid"] = self.service
        if self.sender:
            data["From"] = self.sender
        if self.callback:
            data["StatusCallback"] = _with_query(self.callback, "mcrm_id", m.idempotency_key)
        return data

    def send(self, batch: Sequence[Outbound]) -> list[Result]:
        if not batch:
            return []
        return self._sender.run(batch, self._one)

    def _one(self, m: Outbound) -> Result:
        try:
            resp = self.http.post(self.url, data=self.form(m), timeout=TIMEOUT)
        except Exception as e:
            outcome, code = transport_outcome(e)
            return Result(m.outbox_id, outcome, error_code=code)
        return classify(m.outbox_id, resp)

    def close(self) -> None:
        self._sender.close()
        self.http.close()


def classify(outbox_id: int, resp: Any) -> Result:
    """A Twilio answer -> Result, keyed on the error `code` (reference/providers.md §4.1)."""
    st = resp.status_code
    doc = json_or_none(resp)
    doc = doc if isinstance(doc, dict) else {}
    if 200 <= st < 300:
        sid = doc.get("sid")
        return Result(outbox_id, Outcome.SENT, provider_message_id=str(sid) if sid else None)
    raw = doc.get("code")
    code = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    if code is None and isinstance(raw, str) and raw.isdigit():
        code = int(raw)
    error_code = str(code) if code is not None else str(st)
    msg = doc.get("message")
    # Twilio's messages quote the numbers ("The 'To' number +1… is not valid"): keep none
    detail = str(msg)[:200] if isinstance(msg, str) and not any(c.isdigit() for c in msg) else None
    if code in INVALID:
        return Result(
            outbox_id,
            Outcome.INVALID_RECIPIENT,
            error_code=error_code,
            error_detail=detail,
            mark="invalid",
            mark_reason=INVALID[code],
        )
    if code in OPT_OUT:
        return Result(
            outbox_id,
            Outcome.INVALID_RECIPIENT,
            error_code=error_code,
            error_detail=detail,
            mark="opt_out",
            mark_reason="opt_out",
        )
    if code in PERMANENT:
        return Result(outbox_id, Outcome.PERMANENT, error_code=error_code, error_detail=detail)
    if code in AUTH or st in (401, 403):
        return Result(outbox_id, Outcome.AUTH, error_code=error_code, error_detail=detail)
    if code in THROTTLED or st == 429:
        return Result(
            outbox_id,
            Outcome.THROTTLED,
            error_code=error_code,
            error_detail=detail,
            retry_after_s=retry_after(resp.headers),
        )
    if code in RETRY or st >= 500:
        return Result(
            outbox_id,
            Outcome.RETRY,
            error_code=error_code,
            error_detail=detail,
            retry_after_s=retry_after(resp.headers),
        )
    if 400 <= st < 500:
        return Result(outbox_id, Outcome.PERMANENT, error_code=error_code, error_detail=detail)
    return Result(outbox_id, Outcome.RETRY, error_code=error_code, error_detail=detail)


def _with_query(url: str, key: str, value: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != key]
    query.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(query)))
