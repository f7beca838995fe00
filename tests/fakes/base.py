"""The machinery every provider fake shares (reference/providers.md §1.7).

Why this shape:

- **stdlib only.** `ThreadingHTTPServer` on `127.0.0.1`, port 0 by default (the real port is
  read back from `server_address`). No test dependency beyond what the project has, and the
  fakes run by hand too (`python -m tests.fakes NAME`).
- **Keep-alive that really stays alive.** `protocol_version = "HTTP/1.1"`, every answer has a
  `Content-Length`, and the status line, headers and body leave in *one* `write` on a
  `TCP_NODELAY` socket. `BaseHTTPRequestHandler` writes headers and body separately, and the
  second small write then waits on the client's delayed ACK (~40 ms on Linux): keep-alive
  would hold, but throughput would fall from thousands of requests per second to 25.
- **Provider code is two methods.** A fake names the route of a request (`route`) and answers
  it (`handle`); it never touches sockets. Answers are `Response` values, and faults are
  answers too (`drop`, `delay_s`), so scripted items, magic inputs and real answers take one
  path through `_serve`.
- **Order per request:** read the body (Content-Length or chunked; gzip only where the
  provider accepts it) → route (unknown: the provider's 404) → the scripted queue of that
  route, if any item is left → `handle` under the fake's lock (state changes are atomic; the
  handlers are microseconds, sleeping happens outside the lock) → log → write. The log entry
  is appended *before* the answer is written, so a client that has its answer always finds
  its request in the log.
- **Faults.** `drop_after_body` reads the body, lets the fake *process* the request (state
  changes, the log records the answer it would have sent) and closes the connection without
  a byte: the client cannot know what happened, which is what "ambiguous" means, and a resend
  test can then prove dedupe (OneSignal, in-app) or at-most-once (the others). `Drop(process=
  False)` closes without processing. `Delay(s)` sleeps, then answers normally (read
  timeouts). `html_502` is Google's HTML error page. Fakes emit `Retry-After`; they never
  sleep on it.
- **Time is injected** (`clock=`, seconds since the epoch; `FakeClock` for tests): token
  expiry, receipts, dedupe windows and timestamp tolerance all read it, and so does the log.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import io
import json
import socket
import threading
import time
import traceback
import urllib.parse
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self, TextIO

Clock = Callable[[], float]

JSON_TYPE = "application/json; charset=utf-8"
FORM_TYPE = "application/x-www-form-urlencoded"

MAX_BODY = 64 * 1024 * 1024
"""Bodies above this are refused with 413 before reading (no provider takes more)."""

GOOGLE_502_HTML = (
    "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n"
    '  <meta name=viewport content="initial-scale=1, minimum-scale=1, width=device-width">\n'
    "  <title>Error 502 (Server Error)!!1</title>\n"
    "  <p><b>502.</b> <ins>That\u2019s an error.</ins>\n"
    "  <p>The server encountered a temporary error and could not complete your request."
    "<p>Please try again in 30 seconds.  <ins>That\u2019s all we know.</ins>\n"
)


class FakeClock:
    """A settable clock: `clock()` returns the current instant; `advance(s)` moves it on."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        with self._lock:
            self._now = float(now)


# ---------------------------------------------------------------------------------------------
# Requests and answers


@dataclass(frozen=True)
class Request:
    """One request as the fake saw it. Header names are lower-cased."""

    method: str
    path: str  # the path without the query string, percent-decoding left to the fake
    target: str  # the request target as sent (path and query)
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw: bytes  # the body bytes as received (possibly gzip)
    body: bytes  # after Content-Encoding was undone
    client: tuple[str, int]  # the client's address: one value per keep-alive connection
    time: float

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def content_type(self) -> str:
        """The media type, lower-cased, without parameters (`""` if absent)."""
        return (self.headers.get("content-type") or "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body as JSON; `ValueError` if it is not (UTF-8) JSON."""
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, list[str]]:
        """The body as `application/x-www-form-urlencoded`; `ValueError` if malformed."""
        text = self.body.decode("utf-8")
        return urllib.parse.parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))


@dataclass(frozen=True)
class Response:
    """An answer. `drop` closes the connection without answering; `delay_s` sleeps first."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None
    drop: bool = False
    delay_s: float = 0.0

    def with_headers(self, extra: Mapping[str, str]) -> Response:
        if not extra:
            return self
        names = {k.lower() for k in extra}
        kept = tuple((k, v) for k, v in self.headers if k.lower() not in names)
        return Response(
            self.status,
            self.body,
            kept + tuple(extra.items()),
            self.content_type,
            self.drop,
            self.delay_s,
        )

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, body, tuple((headers or {}).items()), JSON_TYPE)


def empty_response(status: int, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status, b"", tuple((headers or {}).items()), None)


def html_502() -> Response:
    return Response(502, GOOGLE_502_HTML.encode("utf-8"), (), "text/html; charset=UTF-8")


@dataclass(frozen=True)
class Drop:
    """Fault: read the body, then close the connection without answering.

    With `process=True` (the default, and what `"drop_after_body"` means) the fake handles
    the request first, as if the answer was lost on the way back."""

    process: bool = True


@dataclass(frozen=True)
class Delay:
    """Fault: wait `seconds`, then answer normally (or with `then`, a scripted item)."""

    seconds: float
    then: Any = None


DROP_AFTER_BODY = Drop()
HTML_502 = "html_502"

ScriptItem = Any
"""An item of `Fake.script`: see `Fake.script` for the accepted forms."""


@dataclass(frozen=True)
class LoggedRequest:
    """A request log entry: the request, the route it took and what it got."""

    request: Request
    route: str | None
    status: int | None  # the status answered, or that would have been (dropped)
    response_headers: dict[str, str]
    response_body: bytes
    scripted: bool  # answered from the script queue
    dropped: bool  # the connection was closed without an answer
    seq: int

    # conveniences, so tests read `log[0].method`, `log[0].parsed`
    @property
    def method(self) -> str:
        return self.request.method

    @property
    def path(self) -> str:
        return self.request.path

    @property
    def headers(self) -> dict[str, str]:
        return self.request.headers

    @property
    def raw(self) -> bytes:
        return self.request.raw

    @property
    def body(self) -> bytes:
        return self.request.body

    @property
    def time(self) -> float:
        return self.request.time

    @property
    def parsed(self) -> Any:
        """The body parsed by its content type (JSON value, form dict of lists), else None."""
        r = self.request
        try:
            if r.content_type == FORM_TYPE:
                return r.form()
            if r.body:
                return r.json()
        except (ValueError, UnicodeDecodeError):
            return None
        return None

    def response_json(self) -> Any:
        return json.loads(self.response_body) if self.response_body else None


# ---------------------------------------------------------------------------------------------
# The server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for a client that keeps a connection open
    allow_reuse_address = True
    request_queue_size = 128

    fake: Fake


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive. `handle_one_request` is replaced by a lean parser: the
    stdlib's goes through `email.feedparser` for the headers, which was half the fake's time
    per request; the request line, headers, `Expect: 100-continue` and `Connection` are all a
    fake needs."""

    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60  # an idle keep-alive connection is closed after a minute
    fields: dict[str, str]

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        pass  # the fake logs in its own format

    def handle_one_request(self) -> None:
        try:
            line = self.rfile.readline(65537)
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        if not line:
            self.close_connection = True
            return
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self._bare(400, "Bad Request")
            return
        self.command, self.path, self.request_version = parts
        fields: dict[str, str] = {}
        count = 0
        while True:
            raw = self.rfile.readline(65537)
            if raw in (b"\r\n", b"\n", b""):
                break
            count += 1
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep or count > 200:
                self._bare(400, "Bad Request")
                return
            key = name.strip().lower()
            value = value.strip()
            fields[key] = f"{fields[key]}, {value}" if key in fields else value
        self.fields = fields
        conn = fields.get("connection", "").lower()
        if self.request_version == "HTTP/1.0":
            self.close_connection = "keep-alive" not in conn
        else:
            self.close_connection = "close" in conn
        if fields.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.server.fake._serve(self)

    def _bare(self, status: int, reason: str) -> None:
        self.close_connection = True
        self.wfile.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode(
                "latin-1"
            )
        )

    def read_body(self) -> bytes | None:
        """The body bytes, or None if it could not be read (the answer is then 4xx)."""
        if "chunked" in self.fields.get("transfer-encoding", "").lower():
            return self._read_chunked()
        length = self.fields.get("content-length")
        if length is None:
            return b""
        try:
            n = int(length)
        except ValueError:
            return None
        if n < 0 or n > MAX_BODY:
            return None
        return self.rfile.read(n)

    def _read_chunked(self) -> bytes | None:
        out = io.BytesIO()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return out.getvalue()
            if out.tell() + size > MAX_BODY:
                return None
            out.write(self.rfile.read(size))
            self.rfile.readline(8)

    def write_response(self, resp: Response, server_name: str) -> None:
        lines = [f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Unknown')}"]
        names = set()
        for k, v in resp.headers:
            lines.append(f"{k}: {v}")
            names.add(k.lower())
        if resp.content_type and "content-type" not in names:
            lines.append(f"Content-Type: {resp.content_type}")
        lines.append(f"Content-Length: {len(resp.body)}")
        if "date" not in names:
            lines.append(f"Date: {_http_date()}")
        lines.append(f"Server: {server_name}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        body = b"" if self.command == "HEAD" else resp.body
        self.wfile.write(head + body)


_REASONS = {s.value: s.phrase for s in HTTPStatus}
_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True))
    return _date_cache[1]


class Fake:
    """Base class of the provider fakes.

    Subclasses set `name`, `routes` (the route names the script queue accepts; the first is
    the default of `script`) and implement `route`, `handle` and `error_response`."""

    name: ClassVar[str] = "fake"
    routes: ClassVar[tuple[str, ...]] = ("send",)
    accept_gzip: ClassVar[bool] = False

    def __init__(
        self,
        *,
        port: int = 0,
        clock: Clock = time.time,
        log_stream: TextIO | None = None,
        keep_log: bool = True,
    ) -> None:
        """`keep_log=False` keeps neither the request log nor the accepted payloads (for
        benchmarks: a million recipients' bodies would dwarf what is measured); counters,
        tokens, tickets and dedupe stores are kept either way."""
        self.clock = clock
        self.log_stream = log_stream
        self.keep_log = keep_log
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.lock = threading.RLock()
        """Held while `handle` runs; subclasses hold it to read or change their state."""
        self._log: list[LoggedRequest] = []
        self._stream_lock = threading.Lock()
        self._seq = 0
        self.accepted = 0
        """Messages accepted, counted even when `keep_log` is off: FCM sends, Expo ok tickets,
        OneSignal notifications, SendGrid recipients, Twilio messages, first webhook deliveries."""
        self._scripts: dict[str, deque[Any]] = {r: deque() for r in self.routes}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.fake = self
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"fake-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes any Delay
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} fake is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, the `base_url` to configure (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    # -- script ------------------------------------------------------------------------------

    def script(self, *items: ScriptItem, route: str | None = None) -> Self:
        """Queue forced answers for `route` (default: the fake's main route), served first,
        one per request, in order; once the queue is empty the fake answers normally.

        Items: a status (`503`: the provider's own error body for it); `(status, headers)`;
        `(status, headers, body)` with a dict/list body (sent as JSON) or str/bytes (as
        is); a `Response`; `"drop_after_body"` / `Drop()`; `"html_502"`; `Delay(s)` /
        `("delay_s", s)` (then a normal answer) or `Delay(s, then=item)`."""
        key = route or self.routes[0]
        if key not in self._scripts:
            raise ValueError(f"{self.name}: unknown route {key!r}; routes: {self.routes}")
        parsed = [self._script_item(i) for i in items]
        with self.lock:
            self._scripts[key].extend(parsed)
        return self

    def pending_script(self, route: str | None = None) -> int:
        """How many scripted items are still queued for `route`."""
        with self.lock:
            return len(self._scripts[route or self.routes[0]])

    def _script_item(self, item: ScriptItem) -> Response | Drop | Delay:
        if isinstance(item, Response | Drop):
            return item
        if isinstance(item, Delay):
            then = None if item.then is None else self._script_item(item.then)
            return Delay(float(item.seconds), then)
        if item == "drop_after_body":
            return Drop()
        if item == "html_502":
            return html_502()
        if isinstance(item, bool):
            raise TypeError(f"bad script item {item!r}")
        if isinstance(item, int):
            return self.error_response(item)
        if isinstance(item, tuple) and len(item) == 2 and item[0] == "delay_s":
            return Delay(float(item[1]))
        if isinstance(item, tuple) and len(item) in (2, 3) and isinstance(item[0], int):
            status, headers = item[0], dict(item[1] or {})
            if len(item) == 2:
                return self.error_response(status).with_headers(headers)
            body = item[2]
            if isinstance(body, dict | list):
                return json_response(status, body, headers)
            raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
            ctype = "text/plain; charset=utf-8"
            for name in [k for k in headers if k.lower() == "content-type"]:
                ctype = headers.pop(name)
            return Response(status, raw, tuple(headers.items()), ctype)
        raise TypeError(f"bad script item {item!r}")

    # -- log ---------------------------------------------------------------------------------

    @property
    def log(self) -> list[LoggedRequest]:
        """A copy of the request log, oldest first."""
        with self.lock:
            return list(self._log)

    def requests_to(self, route: str) -> list[LoggedRequest]:
        return [e for e in self.log if e.route == route]

    @property
    def last(self) -> LoggedRequest:
        with self.lock:
            if not self._log:
                raise LookupError(f"{self.name} fake has received no request")
            return self._log[-1]

    def reset(self) -> None:
        """Forget the log, the script queues and every piece of provider state (issued
        tokens, tickets, dedupe stores, inboxes); configuration (keys, users) stays."""
        with self.lock:
            self._log.clear()
            self._seq = 0
            for q in self._scripts.values():
                q.clear()
            self.accepted = 0
            self.reset_state()

    # -- for subclasses ----------------------------------------------------------------------

    def reset_state(self) -> None:
        """Clear provider state (called under the lock)."""

    def _record(self, store: list[Any], item: Any, count: int = 1) -> None:
        """Count an accepted message and keep its payload if the log is kept (under the lock)."""
        self.accepted += count
        if self.keep_log:
            store.append(item)

    def route(self, req: Request) -> str | None:
        """The route name of a request (one of `routes`, or another name), None → 404."""
        raise NotImplementedError

    def handle(self, route: str, req: Request) -> Response:
        """Answer a request (called under the lock)."""
        raise NotImplementedError

    def error_response(self, status: int, message: str | None = None) -> Response:
        """The provider's error answer for a bare status (scripted items, 404, 413)."""
        return json_response(status, {"error": message or HTTPStatus(status).phrase})

    def credentials(self) -> dict[str, str]:
        """What to configure in `mcrm.yaml` to talk to this fake (shown by `__main__`)."""
        return {"base_url": self.url}

    # -- serving -----------------------------------------------------------------------------

    def _serve(self, h: _Handler) -> None:
        t0 = time.perf_counter()
        raw = h.read_body()
        headers = h.fields
        if raw is None:
            h.close_connection = True
            h.write_response(self.error_response(400, "unreadable body"), self.server_name)
            return
        split = urllib.parse.urlsplit(h.path)
        body, decode_error = self._decode(raw, headers)
        req = Request(
            method=h.command,
            path=split.path,
            target=h.path,
            query=urllib.parse.parse_qs(split.query, keep_blank_values=True),
            headers=headers,
            raw=raw,
            body=body,
            client=(str(h.client_address[0]), int(h.client_address[1])),
            time=self.clock(),
        )
        route: str | None = None
        scripted = False
        item: Response | Drop | Delay | None = None
        try:
            route = self.route(req)
            if decode_error is not None:
                resp = decode_error
            elif route is None:
                resp = self.error_response(404)
            else:
                with self.lock:
                    queue = self._scripts.get(route)
                    item = queue.popleft() if queue else None
                while isinstance(item, Delay):
                    self._stopping.wait(item.seconds)
                    item = item.then
                if isinstance(item, Response):
                    resp, scripted = item, True
                elif isinstance(item, Drop) and not item.process:
                    resp, scripted = Response(0, drop=True), True
                else:
                    with self.lock:
                        resp = self.handle(route, req)
                    scripted = isinstance(item, Drop)
        except Exception as exc:  # a bug in a fake must show, not hang the client
            resp = json_response(500, {"fake_error": f"{type(exc).__name__}: {exc}"})
            if self.log_stream is not None:
                traceback.print_exc(file=self.log_stream)
        dropped = isinstance(item, Drop) or resp.drop
        status = None if (isinstance(item, Drop) and not item.process) else resp.status
        entry_headers = {k: v for k, v in resp.headers}
        with self.lock:
            self._seq += 1
            if self.keep_log:
                self._log.append(
                    LoggedRequest(
                        req, route, status, entry_headers, resp.body, scripted, dropped, self._seq
                    )
                )
        if resp.delay_s and not dropped:
            self._stopping.wait(resp.delay_s)
        if self.log_stream is not None:
            shown = "dropped" if dropped else str(status)
            ms = (time.perf_counter() - t0) * 1000
            line = (
                f"{self.name}: {req.method} {req.path} -> {shown}"
                f"{' (scripted)' if scripted else ''} {ms:.1f} ms\n"
            )
            with self._stream_lock:  # one write a line: print() from handler threads interleaved
                self.log_stream.write(line)
                self.log_stream.flush()
        if dropped:
            h.close_connection = True
            return
        try:
            h.write_response(resp, self.server_name)
        except OSError:
            h.close_connection = True  # the client went away (e.g. its read timeout)

    @property
    def server_name(self) -> str:
        return f"mcrm-fake-{self.name}"

    def _decode(self, raw: bytes, headers: Mapping[str, str]) -> tuple[bytes, Response | None]:
        enc = (headers.get("content-encoding") or "identity").strip().lower()
        if enc == "identity":
            return raw, None
        if enc == "gzip" and self.accept_gzip:
            try:
                return gzip.decompress(raw), None
            except (OSError, EOFError, zlib.error):
                return raw, self.error_response(400, "body is not valid gzip")
        return raw, self.error_response(415, f"unsupported Content-Encoding: {enc}")


# ---------------------------------------------------------------------------------------------
# Small helpers shared by the providers


def bearer(req: Request) -> str | None:
    """The token of `Authorization: Bearer <token>`, else None."""
    auth = req.header("authorization") or ""
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def counter_uuid(namespace: str, n: int) -> str:
    """A deterministic UUID (version 4 bits) for the n-th object of a fake."""
    digest = hashlib.sha256(f"{namespace}:{n}".encode()).digest()[:16]
    return str(uuid.UUID(bytes=digest, version=4))
