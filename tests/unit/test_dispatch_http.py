"""`mcrm.dispatch.http.Wire`, the urllib3 client of the single-message lanes: a pooled
connection the server closed is replaced before reuse (nothing is classified ambiguous that
was never sent), the environment's proxy is used and NO_PROXY bypasses it, and urllib3's
exceptions map onto the same taxonomy as requests'."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mcrm.dispatch.core import Outcome
from mcrm.dispatch.http import Wire, transport_outcome
from mcrm.errors import ConfigError


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


_407 = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"


class _Proxy:
    """A proxy on a raw socket: records each request head; answers 407 unless the head has
    the expected Proxy-Authorization, then 200 (a forwarded request) or 502 (a CONNECT: the
    tunnel is refused, nothing reaches the provider)."""

    def __init__(self, want: str) -> None:
        self.want = want.lower()
        self.heads: list[list[str]] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head = data.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
                self.heads.append(head)
                auth = [h.lower() for h in head if h.lower().startswith("proxy-authorization:")]
                if auth != [f"proxy-authorization: {self.want}"]:
                    c.sendall(_407)
                elif head[0].startswith("CONNECT"):
                    c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                else:
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    def close(self) -> None:
        self.sock.close()


def _post_once(url: str) -> Any:
    """POST `{}` to `url` over a new one-connection Wire, closed after."""
    w = Wire(url, pool=1)
    try:
        return w.post(b"{}", {}, (5, 5))
    finally:
        w.close()


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    return monkeypatch


def test_proxy_credentials_in_the_url_are_sent_as_requests_sends_them(
    no_proxy_env: pytest.MonkeyPatch,
) -> None:
    import base64

    want = "Basic " + base64.b64encode(b"us@r:p:ss").decode()
    proxy = _Proxy(want)
    try:
        url = f"http://us%40r:p%3Ass@127.0.0.1:{proxy.port}"
        no_proxy_env.setenv("HTTP_PROXY", url)
        no_proxy_env.setenv("HTTPS_PROXY", url)
        assert _post_once("http://sg.invalid/v3/mail/send").status_code == 200  # forwarded
        with pytest.raises(Exception) as refused:  # tunnelled: CONNECT carries it
            _post_once("https://sg.invalid/v3/mail/send")
    finally:
        proxy.close()
    assert [h[0] for h in proxy.heads] == [
        "POST http://sg.invalid/v3/mail/send HTTP/1.1",
        "CONNECT sg.invalid:443 HTTP/1.0",
    ]
    # the proxy would not open the tunnel: nothing was sent, so not ambiguous (unknown)
    assert transport_outcome(refused.value) == (Outcome.RETRY, "proxy_refused")


def test_a_proxy_refusing_the_tunnel_is_not_ambiguous(no_proxy_env: pytest.MonkeyPatch) -> None:
    import requests

    proxy = _Proxy("Basic never")
    try:
        no_proxy_env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
        with pytest.raises(Exception) as wire:
            _post_once("https://sg.invalid/v3/mail/send")
        with pytest.raises(Exception) as req, requests.Session() as s:
            s.post("https://sg.invalid/v3/mail/send", data=b"{}", timeout=(5, 5))
    finally:
        proxy.close()
    # 407 on CONNECT: the proxy's credentials are configuration; no byte reached the provider
    assert transport_outcome(wire.value) == (Outcome.AUTH, "proxy_auth")
    assert transport_outcome(req.value) == (Outcome.AUTH, "proxy_auth")


def test_an_unreachable_proxy_is_retry_through_requests_and_wire(
    no_proxy_env: pytest.MonkeyPatch,
) -> None:
    """Nothing listens where the proxy should be: no byte left the machine, so both clients
    (Wire for SendGrid and FCM, requests for the other lanes) say retry, not ambiguous."""
    import requests

    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for scheme in ("http", "https"):
        no_proxy_env.setenv(f"{scheme.upper()}_PROXY", f"http://127.0.0.1:{port}")
        url = f"{scheme}://sg.invalid/v3/mail/send"
        with pytest.raises(Exception) as wire:
            _post_once(url)
        with pytest.raises(Exception) as req, requests.Session() as s:
            s.post(url, data=b"{}", timeout=(5, 5))
        assert transport_outcome(wire.value) == (Outcome.RETRY, "connect_failed"), scheme
        assert transport_outcome(req.value) == (Outcome.RETRY, "connect_failed"), scheme


TLS = Path(__file__).parent.parent / "fixtures" / "tls"  # a self-signed test-only key


def _tls_server() -> _Recorder:
    import ssl

    srv = _Recorder(close_after_answer=False)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(TLS / "self-signed.pem", TLS / "self-signed.key")
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_https_trusts_what_requests_trusts(no_proxy_env: pytest.MonkeyPatch) -> None:
    # REQUESTS_CA_BUNDLE (a TLS-inspecting proxy's CA, say): trusted, and the host checked
    srv = _tls_server()
    try:
        no_proxy_env.setenv("REQUESTS_CA_BUNDLE", str(TLS / "self-signed.pem"))
        port = srv.server_address[1]
        assert _post_once(f"https://127.0.0.1:{port}/v3/mail/send").status_code == 200
        no_proxy_env.setenv("REQUESTS_CA_BUNDLE", str(TLS / "missing.pem"))
        with pytest.raises(ConfigError, match="CA bundle .*missing.pem does not exist"):
            Wire(f"https://127.0.0.1:{port}/v3/mail/send", pool=1)
    finally:
        srv.shutdown()
        srv.server_close()
    assert srv.lines == ["POST /v3/mail/send HTTP/1.1"]


def test_https_verifies_the_certificate(no_proxy_env: pytest.MonkeyPatch) -> None:
    # a server with a self-signed certificate: the TLS handshake fails before any byte of
    # the request is sent -> auth ("tls"), never sent
    srv = _tls_server()
    try:
        with pytest.raises(Exception) as failed:
            _post_once(f"https://127.0.0.1:{srv.server_address[1]}/v3/mail/send")
    finally:
        srv.shutdown()
        srv.server_close()
    assert transport_outcome(failed.value) == (Outcome.AUTH, "tls")
    assert srv.lines == []


def test_a_proxy_without_a_scheme_is_http_and_a_socks_proxy_a_clear_error(
    server: _Recorder, no_proxy_env: pytest.MonkeyPatch
) -> None:
    target = "http://sg.invalid/v3/mail/send"
    no_proxy_env.setenv("HTTP_PROXY", f"127.0.0.1:{server.server_address[1]}")  # as requests
    assert _post_once(target).status_code == 200
    assert server.lines == [f"POST {target} HTTP/1.1"]
    no_proxy_env.setenv("HTTP_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(ConfigError, match="socks5:// proxy: only http:// and https://"):
        Wire(target, pool=1)
