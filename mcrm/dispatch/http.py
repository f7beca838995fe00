"""Shared HTTP plumbing of the adapters (reference/providers.md §1.1, §1.2): one pooled
`requests.Session` per lane without urllib3 retries, and the classification of transport
failures — nothing sent (retry) versus maybe sent (ambiguous)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from mcrm.dispatch.core import Outcome, parse_retry_after
from mcrm.errors import ConfigError

TIMEOUT = (5, 30)


def session(pool: int = 16) -> Any:
    import requests
    from requests.adapters import HTTPAdapter

    s = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool, pool_maxsize=pool, max_retries=0)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


def transport_outcome(e: BaseException) -> tuple[Outcome, str]:
    """A `requests` exception -> (outcome, code). Connect failures sent nothing (retry); a
    read timeout or a connection lost after the request may have been delivered
    (ambiguous); TLS failures are configuration (auth)."""
    import requests
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    if isinstance(e, requests.exceptions.ConnectTimeout):
        return Outcome.RETRY, "connect_timeout"
    if isinstance(e, requests.exceptions.SSLError):
        return Outcome.AUTH, "tls"
    if isinstance(e, requests.exceptions.ReadTimeout):
        return Outcome.AMBIGUOUS, "read_timeout"
    if isinstance(e, requests.exceptions.ConnectionError):
        reason = e.args[0] if e.args else None
        if isinstance(reason, MaxRetryError) and isinstance(reason.reason, NewConnectionError):
            return Outcome.RETRY, "connect_failed"
        return Outcome.AMBIGUOUS, "connection_lost"
    return Outcome.AMBIGUOUS, type(e).__name__


def retry_after(headers: Any) -> float | None:
    return parse_retry_after(headers.get("Retry-After"), dt.datetime.now(dt.UTC))


def json_or_none(resp: Any) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None  # an HTML error page (FCM's 502): classify by status


def check_target(url: str, allow_private: bool, what: str) -> None:
    """SSRF guard for webhooks: refuse private, loopback and link-local targets unless the
    provider entry says `allow_private_targets: true` (tests, an inbox on the same host)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what}: '{url}' is not an http(s) URL")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        return  # unresolvable now: the request fails as a connect error (retry)
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved:
            raise ConfigError(
                f"{what}: {parts.hostname} resolves to a private address ({ip})",
                hint="set allow_private_targets: true if that is intended",
            )


class OneByOne:
    """Single-message APIs (FCM, Twilio): the batch goes out one request per message over a
    thread pool (`concurrency` workers on the lane's pooled session), results in input order.
    The first lane-wide outcome (auth, throttled) stops the rest of the batch: later messages
    get that outcome without a request."""

    def __init__(self, name: str, concurrency: int):
        self.name = name
        self.concurrency = concurrency
        self._pool: Any = None

    def run(self, batch: Any, one: Any) -> list[Any]:
        import threading

        from mcrm.dispatch.core import LANE_WIDE, Result

        stop: list[Any] = []  # the first lane-wide result, shared by the workers
        lock = threading.Lock()

        def guarded(m: Any) -> Any:
            with lock:
                if stop:
                    first = stop[0]
                    return Result(
                        m.outbox_id,
                        first.outcome,
                        error_code=first.error_code,
                        error_detail="not sent: the lane stopped",
                        retry_after_s=first.retry_after_s,
                    )
            r = one(m)
            if r.outcome in LANE_WIDE:
                with lock:
                    if not stop:
                        stop.append(r)
            return r

        if len(batch) == 1 or self.concurrency == 1:
            return [guarded(m) for m in batch]
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=self.name)
        return list(self._pool.map(guarded, batch))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
