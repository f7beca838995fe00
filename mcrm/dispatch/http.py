"""Shared HTTP plumbing of the adapters (reference/providers.md §1.1, §1.2): one pooled
`requests.Session` per lane without urllib3 retries, and the classification of transport
failures — nothing sent (retry) versus maybe sent (ambiguous).

`Wire` is the cheaper client of the single-message lanes (FCM) and of SendGrid's sends: a
urllib3 connection pool used directly. `requests` costs about 1 ms of CPU a request on the
benchmark machine (0.8 ms with `trust_env` off: it walks the proxy environment twice per
request), urllib3's pool 0.24 ms, which is what makes 1,000 FCM messages a second possible
on two cores. It keeps the same taxonomy (`transport_outcome` knows urllib3's exceptions too),
the same keep-alive pool (a pooled connection the server has closed is detected and replaced
before it is reused) and the environment's proxy settings, read once when the lane starts
instead of per request."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from typing import Any
from urllib.parse import unquote, urlsplit

from mcrm.dispatch.core import Outcome, parse_retry_after
from mcrm.errors import ConfigError, Where

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
    """A `requests` or urllib3 exception -> (outcome, code). Connect failures sent nothing
    (retry); a read timeout or a connection lost after the request may have been delivered
    (ambiguous); TLS failures are configuration (auth). `requests` wraps urllib3's error in
    a MaxRetryError: both are classified by the urllib3 error underneath."""
    import requests
    from urllib3 import exceptions as u3

    if isinstance(e, requests.exceptions.ConnectTimeout):
        return Outcome.RETRY, "connect_timeout"
    if isinstance(e, requests.exceptions.SSLError):
        return Outcome.AUTH, "tls"
    if isinstance(e, requests.exceptions.ReadTimeout):
        return Outcome.AMBIGUOUS, "read_timeout"
    wrapped = isinstance(e, requests.exceptions.ConnectionError)
    if wrapped and e.args and isinstance(e.args[0], BaseException):
        e = e.args[0]
    if isinstance(e, u3.MaxRetryError) and e.reason is not None:
        e = e.reason
    if not isinstance(e, u3.HTTPError):
        return Outcome.AMBIGUOUS, "connection_lost" if wrapped else type(e).__name__
    if isinstance(e, u3.NewConnectionError):
        return Outcome.RETRY, "connect_failed"
    if isinstance(e, u3.ConnectTimeoutError):
        return Outcome.RETRY, "connect_timeout"
    if isinstance(e, u3.SSLError):
        return Outcome.AUTH, "tls"
    if isinstance(e, u3.ReadTimeoutError):
        return Outcome.AMBIGUOUS, "read_timeout"
    if isinstance(e, u3.ProxyError):
        reason = e.args[1] if len(e.args) > 1 else None
        if isinstance(reason, u3.NewConnectionError | u3.ConnectTimeoutError):
            return Outcome.RETRY, "connect_failed"  # the proxy itself is unreachable
        tunnel = _tunnel_refused(reason)
        if tunnel is not None:
            return tunnel
    return Outcome.AMBIGUOUS, "connection_lost"


def _tunnel_refused(reason: Any) -> tuple[Outcome, str] | None:
    """The proxy answered CONNECT with an error (`Tunnel connection failed: 407 ...`):
    no byte reached the provider. 407 is configuration (the proxy's credentials), any other
    status nothing sent (retry)."""
    text = str(reason) if isinstance(reason, OSError) else ""
    if not text.startswith("Tunnel connection failed"):
        return None
    if ": 407" in text:
        return Outcome.AUTH, "proxy_auth"
    return Outcome.RETRY, "proxy_refused"


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


def url_problem(url: str) -> str | None:
    """What makes `url` unusable for urllib3 (a port out of range, a space in the host), or
    None."""
    from urllib3.util import parse_url

    try:
        _ = urlsplit(url).port
        parse_url(url)
    except ValueError as e:  # urllib3's LocationParseError is one
        return str(e)
    return None


def base_url(name: str, opts: dict[str, Any], default: str) -> str:
    """`providers.NAME.base_url` (or `default`) without its trailing `/`, checked when the lane
    is made: an http(s) URL that urllib3 and requests can use, so a typo is a ConfigError at
    the option, not a crash or a transport error in the middle of a send."""
    base = str(opts.get("base_url") or default).rstrip("/")
    where = Where("mcrm.yaml", None, f"providers.{name}.base_url")
    if not base.startswith(("http://", "https://")):
        raise ConfigError(
            f"provider '{name}': base_url must be an http(s) URL, found {base!r}", where=where
        )
    problem = url_problem(base)
    if problem:
        raise ConfigError(
            f"provider '{name}': base_url is not a valid URL ({problem}), found {base!r}",
            where=where,
        )
    if not urlsplit(base).hostname:
        raise ConfigError(
            f"provider '{name}': base_url must be an http(s) URL with a host, found {base!r}",
            where=where,
        )
    return base


def _ca_bundle() -> dict[str, str]:
    """The certificates https is verified against, as requests picks them: the file or
    folder `REQUESTS_CA_BUNDLE` or `CURL_CA_BUNDLE` names, else certifi's bundle (not the
    system's store: an image without one, or a TLS-inspecting proxy's CA given to requests
    that way, must work here as it does for the other lanes)."""
    import os

    loc = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if not loc:
        import certifi

        loc = certifi.where()
    if not os.path.exists(loc):
        raise ConfigError(
            f"the CA bundle {loc} does not exist",
            hint="REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE must name a PEM file or a folder",
        )
    return {"ca_cert_dir": loc} if os.path.isdir(loc) else {"ca_certs": loc}


class WireResponse:
    """What an adapter reads of an answer: status, headers (case-insensitive) and body."""

    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status: int, headers: Any, content: bytes):
        self.status_code = status
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        import json

        return json.loads(self.content)


class Wire:
    """POSTs to one origin over a urllib3 keep-alive pool of `pool` connections (one per
    worker thread), no retries, no redirects followed. Errors are urllib3's, for
    `transport_outcome`. Proxies come from the environment (`HTTPS_PROXY`, `HTTP_PROXY`,
    `ALL_PROXY`, `NO_PROXY`), read once here."""

    def __init__(self, url: str, pool: int = 8):
        import urllib.request

        import urllib3

        problem = url_problem(url)  # a bad port or host: said here, not as urllib3's error
        if problem:
            raise ConfigError(f"'{url}' is not a valid URL ({problem})")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"'{url}' is not an http(s) URL")
        self.path = parts.path or "/"
        if parts.query:
            self.path += "?" + parts.query
        self.url = url
        self._timeouts: dict[tuple[float, float], Any] = {}
        env = urllib.request.getproxies_environment()
        proxy = env.get(parts.scheme) or env.get("all")
        if proxy and urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
            parts.hostname, env
        ):
            proxy = None
        self._pool: Any
        ca: dict[str, Any] = _ca_bundle() if parts.scheme == "https" else {}
        if proxy:
            # as requests reads it: no scheme is http:// (`proxy.corp:3128`), and credentials
            # in the URL become Proxy-Authorization (urllib3 leaves them out: the proxy would
            # refuse every request with 407)
            proxy = proxy if "://" in proxy else "http://" + proxy
            auth = urlsplit(proxy)
            if auth.scheme not in ("http", "https"):
                raise ConfigError(
                    f"the environment's proxy for {parts.scheme} is a {auth.scheme}:// proxy: "
                    "only http:// and https:// proxies are supported",
                    hint="set HTTPS_PROXY / HTTP_PROXY / ALL_PROXY to an http(s) proxy, "
                    "or NO_PROXY for this host",
                )
            hdrs = {}
            if auth.username is not None:
                user, pw = unquote(auth.username), unquote(auth.password or "")
                hdrs = urllib3.make_headers(proxy_basic_auth=f"{user}:{pw}")
            self._manager: Any = urllib3.ProxyManager(
                proxy, num_pools=1, maxsize=pool, proxy_headers=hdrs, **ca
            )
            self._pool = self._manager.connection_from_url(url)
            if parts.scheme == "http":  # forwarded, not tunnelled: the request line has the URL
                self.path = url
        else:
            self._manager = None
            self._pool = urllib3.connection_from_url(url, maxsize=pool, block=False, **ca)

    def post(self, body: bytes, headers: dict[str, str], timeout: tuple[float, float]) -> Any:
        t = self._timeouts.get(timeout)
        if t is None:
            import urllib3

            t = self._timeouts[timeout] = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        r = self._pool.urlopen(
            "POST",
            self.path,
            body=body,
            headers=headers,
            retries=False,
            redirect=False,
            assert_same_host=False,
            timeout=t,
            preload_content=True,
        )
        return WireResponse(r.status, r.headers, r.data)

    def close(self) -> None:
        self._pool.close()
        if self._manager is not None:
            self._manager.clear()


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
