"""`mcrm.dispatch.http.Wire`, the urllib3 client of the single-message lanes: a pooled
connection the server closed is replaced before reuse (nothing is classified ambiguous that
was never sent), the environment's proxy is used and NO_PROXY bypasses it, and urllib3's
exceptions map onto the same taxonomy as requests'."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mcrm.dispatch.core import Outcome
from mcrm.dispatch.http import Wire, transport_outcome


class _Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, close_after_answer: bool) -> None:
        self.close_after_answer = close_after_answer
        self.lines: list[str] = []
        self.connections: set[tuple[str, int]] = set()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Recorder

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        self.server.lines.append(self.requestline)
        self.server.connections.add(self.client_address)
        out = b'{"ok":' + str(len(body)).encode() + b"}"
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(out)}\r\n\r\n".encode()
            + out
        )
        self.wfile.flush()
        if self.server.close_after_answer:  # an idle keep-alive timeout, without saying so
            self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


def _serve(close_after_answer: bool = False) -> Iterator[_Recorder]:
    srv = _Recorder(close_after_answer)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def closing_server() -> Iterator[_Recorder]:
    yield from _serve(close_after_answer=True)


@pytest.fixture
def server() -> Iterator[_Recorder]:
    yield from _serve()


def _url(srv: _Recorder, path: str = "/v1/send") -> str:
    host, port = srv.server_address[:2]
    return f"http://{host!s}:{port}{path}"


def test_keep_alive_reuses_one_connection(server: _Recorder) -> None:
    w = Wire(_url(server), pool=2)
    try:
        got = [w.post(b"x" * i, {"Content-Type": "text/plain"}, (5, 5)) for i in range(5)]
    finally:
        w.close()
    assert [r.status_code for r in got] == [200] * 5
    assert [r.json()["ok"] for r in got] == [0, 1, 2, 3, 4]
    assert got[0].headers["content-type"] == "application/json"  # case-insensitive
    assert len(server.connections) == 1


def test_a_connection_the_server_closed_is_replaced_not_ambiguous(
    closing_server: _Recorder,
) -> None:
    w = Wire(_url(closing_server), pool=1)
    try:
        for _ in range(3):
            r = w.post(b"{}", {}, (5, 5))
            assert r.status_code == 200
            # let the server's close reach us before the next request
            threading.Event().wait(0.05)
    finally:
        w.close()
    assert len(closing_server.lines) == 3
    assert len(closing_server.connections) == 3


def test_environment_proxy_is_used_and_no_proxy_bypasses_it(
    server: _Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the recorder plays a forwarding proxy: the request line carries the absolute URL
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    target = "http://fcm.invalid:8080/v1/projects/p/messages:send"
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
    w = Wire(target, pool=1)
    try:
        assert w.post(b"{}", {}, (5, 5)).status_code == 200
    finally:
        w.close()
    assert server.lines == [f"POST {target} HTTP/1.1"]
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    w = Wire(_url(server), pool=1)
    try:
        assert w.post(b"{}", {}, (5, 5)).status_code == 200
    finally:
        w.close()
    assert server.lines[1] == "POST /v1/send HTTP/1.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_urllib3_failures_keep_the_taxonomy() -> None:
    w = Wire(f"http://127.0.0.1:{_free_port()}/x", pool=1)
    try:
        with pytest.raises(Exception) as refused:
            w.post(b"{}", {}, (1, 1))
    finally:
        w.close()
    assert transport_outcome(refused.value) == (Outcome.RETRY, "connect_failed")
    from urllib3.exceptions import ProtocolError, ReadTimeoutError, SSLError

    assert transport_outcome(ReadTimeoutError(None, "/x", "read timed out")) == (  # type: ignore[arg-type]
        Outcome.AMBIGUOUS,
        "read_timeout",
    )
    lost = ProtocolError("Connection aborted.", ConnectionResetError())
    assert transport_outcome(lost) == (Outcome.AMBIGUOUS, "connection_lost")
    assert transport_outcome(SSLError("bad certificate")) == (Outcome.AUTH, "tls")
