"""FCM HTTP v1 (reference/providers.md §2.1): one message per request, a batch sent over a
thread pool on one urllib3 keep-alive pool (`http.Wire`: `requests` alone cost more CPU per
request than 1,000 messages a second allow on two cores), with OAuth2 access tokens of a
service account (google-auth, over `requests`).

- **Tokens** come from `google-auth` (the JWT bearer grant signed with the service account's
  key), cached and refreshed 5 minutes before they expire. google-auth's own token-endpoint
  retries would sleep, so the transport handed to it refuses to let a 5xx or 429 reach its
  retry loop: a failed exchange is an outcome for the batch (retry, throttled or auth),
  never a wait. A plain 401 (`UNAUTHENTICATED` without an `FcmError`) refreshes the token
  and resends that message once; a second 401 is `auth`.
- **The wire:** `message.data.mcrm_id` is the idempotency key; `android.collapse_key` and
  `apns-collapse-id` are a short hash of (campaign, occurrence), so a duplicate of the same
  occurrence collapses on the device (FCM itself does not dedupe).
- **Classification** takes the `errorCode` of the `details[]` item whose `@type` ends in
  `FcmError`, else the gRPC `status`, else the HTTP status (Google's HTML 502). A token is
  invalidated only when FCM says so: UNREGISTERED, SENDER_ID_MISMATCH, or an
  INVALID_ARGUMENT that names `message.token`; a 403 without an FcmError is `auth`.
- **Lane-wide outcomes** (throttled, auth): messages of the batch not yet on the wire get the
  same outcome without a request; messages already answered keep their own result.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mcrm.dispatch.core import Outbound, Outcome, Result, parse_retry_after
from mcrm.dispatch.http import OneByOne, Wire, base_url, json_or_none, session, transport_outcome
from mcrm.errors import ConfigError, Where, os_reason

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DEFAULT_BASE = "https://fcm.googleapis.com"
REFRESH_MARGIN_S = 300.0  # refresh an access token 5 minutes before it expires
QUOTA_FLOOR_S = 60.0  # QUOTA_EXCEEDED: wait at least a minute (providers.md §1.4, unverified)
MAX_TTL_S = 2_419_200
DEFAULT_BATCH = 500
OPTIONS = {
    "service_account",
    "project_id",
    "base_url",
    "token_uri",
    "concurrency",
    "batch",
    "ttl",
    "priority",
    "sound",
    "timeout",
}

Clock = Callable[[], float]


@functools.lru_cache(maxsize=256)  # one value per (campaign, occurrence): not per message
def collapse_id(campaign: str, occurrence: str) -> str:
    """The collapse key of one occurrence of a campaign: 16 hex digits of a SHA-256."""
    return hashlib.sha256(json.dumps([campaign, occurrence]).encode()).hexdigest()[:16]


def fcm_error_code(doc: Any) -> tuple[str | None, str | None, list[str], str | None]:
    """(FcmError errorCode, gRPC status, fieldViolations fields, message) of a Google error
    body; all None / empty when the body is not one (an HTML page)."""
    err = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(err, dict):
        return None, None, [], None
    code: str | None = None
    fields: list[str] = []
    for d in err.get("details") or []:
        if not isinstance(d, dict):
            continue
        kind = str(d.get("@type", ""))
        if kind.endswith("FcmError") and isinstance(d.get("errorCode"), str):
            code = d["errorCode"]
        for v in d.get("fieldViolations") or []:
            if isinstance(v, dict) and isinstance(v.get("field"), str):
                fields.append(v["field"])
    status = err.get("status") if isinstance(err.get("status"), str) else None
    message = err.get("message") if isinstance(err.get("message"), str) else None
    return code, status, fields, message


class _TokenFailure(Exception):
    def __init__(self, outcome: Outcome, code: str, detail: str | None = None):
        super().__init__(code)
        self.outcome, self.code, self.detail = outcome, code, detail


class _TokenStatus(Exception):
    """The token endpoint answered 5xx or 429 (raised inside google-auth's retry loop)."""

    def __init__(self, status: int):
        super().__init__(f"token endpoint answered {status}")
        self.status = status


def _int_opt(name: str, opts: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    v = opts.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ConfigError(
            f"provider '{name}': {key} must be a whole number {lo}..{hi}, found {v!r}",
            where=Where("mcrm.yaml", None, f"providers.{name}.{key}"),
        )
    return v


def ttl_seconds(name: str, value: Any, hi: int) -> int | None:
    """`ttl:` as seconds (a number or a duration like `1d`), None when absent."""
    if value is None:
        return None
    where = Where("mcrm.yaml", None, f"providers.{name}.ttl")
    if isinstance(value, bool):
        raise ConfigError(f"provider '{name}': ttl must be seconds or a duration", where=where)
    if isinstance(value, int):
        secs = value
    else:
        from mcrm.errors import UsageError
        from mcrm.timeutil import parse_duration

        try:
            secs = int(parse_duration(str(value), "ttl").total_seconds())
        except UsageError as e:
            raise ConfigError(f"provider '{name}': {e.message}", where=where) from None
    if not 0 <= secs <= hi:
        raise ConfigError(f"provider '{name}': ttl must be 0..{hi} seconds", where=where)
    return secs


class Fcm:
    channel = "push"
    dedupes = False  # FCM does not dedupe: duplicates only collapse on the device

    def __init__(
        self,
        name: str,
        opts: dict[str, Any],
        *,
        root: Path | None = None,
        clock: Clock = time.time,
    ):
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
        info = self._service_account(name, opts.get("service_account"), root)
        token_uri = opts.get("token_uri")
        if token_uri:
            info["token_uri"] = str(token_uri)
        self.project_id = str(opts.get("project_id") or info.get("project_id") or "")
        if not self.project_id:
            raise ConfigError(
                f"provider '{name}' needs project_id: (the service-account file has none)",
                where=where,
            )
        base = base_url(name, opts, DEFAULT_BASE)
        self.url = f"{base}/v1/projects/{self.project_id}/messages:send"
        self.concurrency = _int_opt(name, opts, "concurrency", 8, 1, 64)
        # rows claimed (and committed `sending`) at a time: a claim and a settle cost about the
        # same for 64 rows as for 500, so larger batches amortise them (the FCM bench)
        self.max_batch = _int_opt(name, opts, "batch", DEFAULT_BATCH, 1, 1000)
        self.ttl = ttl_seconds(name, opts.get("ttl"), MAX_TTL_S)
        priority = str(opts.get("priority", "high")).lower()
        if priority not in ("high", "normal"):
            raise ConfigError(
                f"provider '{name}': priority must be high or normal, found {priority!r}",
                where=Where("mcrm.yaml", None, f"providers.{name}.priority"),
            )
        self.priority = priority
        sound = opts.get("sound", "default")
        self.sound = None if sound is None else str(sound)
        self.timeout = (5.0, float(opts.get("timeout", 30)))

        from google.oauth2 import service_account

        sa: Any = service_account
        try:
            self.creds: Any = sa.Credentials.from_service_account_info(info, scopes=[FCM_SCOPE])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"provider '{name}': service_account is not a usable Google service-account "
                "key (client_email, private_key)",
                where=Where("mcrm.yaml", None, f"providers.{name}.service_account"),
            ) from None
        self.wire = Wire(self.url, self.concurrency)  # messages:send (cheap: urllib3 pool)
        self.http = session(2)  # `mcrm providers check` (requests, as its other checks)
        self._token_http = session(2)  # the token endpoint is another host
        self._auth_request: Any = None
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._sender = OneByOne(f"fcm-{name}", self.concurrency)

    @staticmethod
    def _service_account(name: str, value: Any, root: Path | None) -> dict[str, Any]:
        where = Where("mcrm.yaml", None, f"providers.{name}.service_account")
        if not value:
            raise ConfigError(
                f"provider '{name}' needs service_account: (path to the JSON key file)",
                where=where,
            )
        path = Path(str(value)).expanduser()
        if not path.is_absolute():
            if root is None:
                raise ConfigError(
                    f"provider '{name}': service_account must be an absolute path", where=where
                )
            path = root / path
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(
                f"provider '{name}': cannot read service_account {path}: {os_reason(e, path)}",
                where=where,
            ) from None
        except ValueError:
            raise ConfigError(
                f"provider '{name}': service_account {path} is not JSON", where=where
            ) from None
        if (
            not isinstance(info, dict)
            or not info.get("client_email")
            or not info.get("private_key")
        ):
            raise ConfigError(
                f"provider '{name}': service_account {path} is not a service-account key file "
                "(client_email, private_key)",
                where=where,
            )
        return info

    # --- access tokens -----------------------------------------------------------------------

    def _request(self) -> Any:
        if self._auth_request is None:
            from google.auth.transport import requests as google_requests

            timeout = self.timeout
            base: Any = google_requests.Request

            class NoRetryRequest(base):  # type: ignore[misc]
                """google-auth's transport with our timeout; a 5xx or 429 from the token
                endpoint leaves google-auth's retry loop (which sleeps) as an exception."""

                def __call__(self, url: Any, method: Any = "GET", *a: Any, **kw: Any) -> Any:
                    kw["timeout"] = timeout
                    resp = super().__call__(url, method, *a, **kw)
                    if resp.status >= 500 or resp.status == 429:
                        raise _TokenStatus(int(resp.status))
                    return resp

            self._auth_request = NoRetryRequest(self._token_http)
        return self._auth_request

    def _access_token(self, stale: str | None = None) -> str:
        """The cached token, refreshed when within 5 minutes of expiry or when `stale` (the
        token a 401 answered) is still the current one. Raises `_TokenFailure`."""
        with self._lock:
            fresh = self._token is not None and self.clock() < self._expires_at - REFRESH_MARGIN_S
            if fresh and self._token != stale:  # (a token another thread refreshed is fresh)
                assert self._token is not None
                return self._token
            self._refresh()
            assert self._token is not None
            return self._token

    def _refresh(self) -> None:
        from google.auth import exceptions

        try:
            self.creds.refresh(self._request())
        except exceptions.RefreshError as e:
            data = e.args[1] if len(e.args) > 1 and isinstance(e.args[1], dict) else {}
            code = str(data.get("error") or "refresh_failed")
            detail = data.get("error_description")
            raise _TokenFailure(
                Outcome.AUTH, f"oauth:{code}", str(detail)[:200] if detail else None
            ) from None
        except _TokenStatus as e:
            if e.status == 429:
                raise _TokenFailure(Outcome.THROTTLED, "oauth:429") from None
            raise _TokenFailure(Outcome.RETRY, f"oauth:{e.status}") from None
        except exceptions.TransportError as e:
            cause = e.__cause__ or e
            outcome, code = transport_outcome(cause)
            if outcome is Outcome.AMBIGUOUS:  # a token request is safe to repeat
                outcome = Outcome.RETRY
            raise _TokenFailure(outcome, f"oauth:{code}") from None
        except Exception as e:  # signing failed: a broken key is configuration
            raise _TokenFailure(Outcome.AUTH, "oauth:" + type(e).__name__) from None
        token = self.creds.token
        if not isinstance(token, str) or not token:
            raise _TokenFailure(Outcome.AUTH, "oauth:no_token")
        lifetime = 3600.0
        expiry = self.creds.expiry  # naive UTC, computed by google-auth from expires_in
        if isinstance(expiry, dt.datetime):
            wall = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            lifetime = (expiry - wall).total_seconds()
        self._token = token
        self._expires_at = self.clock() + lifetime

    # --- sending ---------------------------------------------------------------------------

    def body(self, m: Outbound) -> dict[str, Any]:
        data = {"mcrm_id": m.idempotency_key}
        if m.parts.get("deeplink"):
            data["deeplink"] = m.parts["deeplink"]
        notification = {k: m.parts[k] for k in ("title", "body") if m.parts.get(k)}
        collapse = collapse_id(m.campaign, m.occurrence)
        android: dict[str, Any] = {
            "priority": "HIGH" if self.priority == "high" else "NORMAL",
            "collapse_key": collapse,
        }
        headers = {
            "apns-priority": "10" if self.priority == "high" else "5",
            "apns-collapse-id": collapse,
        }
        if self.ttl is not None:
            android["ttl"] = f"{self.ttl}s"
            # 0: deliver now or never; else the instant (epoch s) APNs may drop it
            headers["apns-expiration"] = str(int(self.clock()) + self.ttl) if self.ttl else "0"
        aps: dict[str, Any] = {}
        if self.sound:
            aps["sound"] = self.sound
        message: dict[str, Any] = {"token": m.address, "data": data}
        if notification:
            message["notification"] = notification
        message["android"] = android
        message["apns"] = {"headers": headers, "payload": {"aps": aps}}
        return {"message": message}

    def send(self, batch: Sequence[Outbound]) -> list[Result]:
        if not batch:
            return []
        try:
            self._access_token()
        except _TokenFailure as f:
            return [
                Result(m.outbox_id, f.outcome, error_code=f.code, error_detail=f.detail)
                for m in batch
            ]
        return self._sender.run(batch, self._one)

    def _one(self, m: Outbound) -> Result:
        payload = json.dumps(self.body(m), ensure_ascii=False, separators=(",", ":")).encode()
        stale: str | None = None
        for attempt in (1, 2):
            try:
                token = self._access_token(stale)
            except _TokenFailure as f:
                return Result(m.outbox_id, f.outcome, error_code=f.code, error_detail=f.detail)
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json; charset=utf-8",
            }
            try:
                resp = self.wire.post(payload, headers, self.timeout)
            except Exception as e:
                outcome, code = transport_outcome(e)
                return Result(m.outbox_id, outcome, error_code=code)
            if resp.status_code == 401 and attempt == 1:
                fcm_code = fcm_error_code(json_or_none(resp))[0]
                if fcm_code != "THIRD_PARTY_AUTH_ERROR":
                    stale = token  # expired or revoked: refresh and resend once
                    continue
            return self.classify(m.outbox_id, resp.status_code, resp.headers, json_or_none(resp))
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_after(self, headers: Any) -> float | None:
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        return parse_retry_after(headers.get("Retry-After"), now)

    def classify(self, outbox_id: int, st: int, headers: Any, doc: Any) -> Result:
        """One answer of `messages:send` -> its Result (providers.md §2.1 table)."""
        if 200 <= st < 300:
            name = doc.get("name") if isinstance(doc, dict) else None
            return Result(outbox_id, Outcome.SENT, provider_message_id=name)
        code, status, fields, message = fcm_error_code(doc)
        key = code or status or str(st)
        detail = message[:200] if message else None

        def res(outcome: Outcome, **kw: Any) -> Result:
            return Result(outbox_id, outcome, error_code=key, error_detail=detail, **kw)

        def invalid(reason: str) -> Result:
            return res(Outcome.INVALID_RECIPIENT, mark="invalid", mark_reason=reason)

        if code == "UNREGISTERED":
            return invalid("unregistered")
        if code == "SENDER_ID_MISMATCH":
            return invalid("sender_mismatch")
        if code == "THIRD_PARTY_AUTH_ERROR":
            return res(Outcome.AUTH)
        if code == "QUOTA_EXCEEDED" or st == 429:
            wait = max(self._retry_after(headers) or 0.0, QUOTA_FLOOR_S)
            return res(Outcome.THROTTLED, retry_after_s=wait)
        if st == 400 or code == "INVALID_ARGUMENT":
            token_named = "message.token" in fields or (
                message is not None and "registration token" in message.lower()
            )
            return invalid("malformed") if token_named else res(Outcome.PERMANENT)
        if st >= 500 or code in ("INTERNAL", "UNAVAILABLE"):
            return res(Outcome.RETRY, retry_after_s=self._retry_after(headers))
        if st in (401, 403):
            return res(Outcome.AUTH)  # never invalidate a token on a guess
        if st == 404:  # a 404 without UNREGISTERED: no such endpoint (base_url, project)
            return res(Outcome.AUTH)
        if 300 <= st < 400:
            return Result(
                outbox_id, Outcome.RETRY, error_code=str(st), error_detail="redirect not followed"
            )
        return res(Outcome.PERMANENT)

    def close(self) -> None:
        self._sender.close()
        self.wire.close()
        self.http.close()
        self._token_http.close()
