"""A real SMTP server (aiosmtpd) with the magic domains of reference/providers.md §3.1.

- `*@invalid.test` -> 550 5.1.1 at RCPT; `*@busy.test` -> 450; `*@full.test` -> 452;
  `*@reject-data.test` -> 554 at DATA;
- optional AUTH (`username`/`password`; bad credentials -> 535 5.7.8), over plain text
  (the test server has no TLS, so `auth_require_tls=False`);
- `close_after_data()`: the next DATA is read and the connection closed without a reply
  (ambiguous for the client);
- `messages`: every accepted message (mail_from, rcpt_tos, parsed EmailMessage).

Start by hand: `python -m tests.fakes smtp` (see __main__), or use `SmtpFake()` as a context
manager.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes


class _Handler:
    def __init__(self, fake: SmtpFake):
        self.fake = fake

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        domain = address.rsplit("@", 1)[-1].lower()
        if domain == "invalid.test":
            return "550 5.1.1 User unknown"
        if domain == "busy.test":
            return "450 4.2.1 Mailbox busy, try later"
        if domain == "full.test":
            return "452 4.2.2 Mailbox full"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if any(a.lower().endswith("@reject-data.test") for a in envelope.rcpt_tos):
            return "554 5.7.1 Message rejected"
        with self.fake.lock:
            drop = self.fake._drop_next
            self.fake._drop_next = False
            raw = bytes(envelope.content)
            msg = BytesParser(policy=policy.default).parsebytes(raw)
            self.fake.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), msg, raw)
            )
            n = len(self.fake.messages)
        if drop:
            server.transport.close()  # queued, but the client never hears it
            return "250 OK"
        return f"250 2.0.0 Ok: queued as FAKE{n:06d}"


class SmtpFake:
    def __init__(self, username: str | None = None, password: str | None = None):
        self.username, self.password = username, password
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self._drop_next = False
        self.controller: Any = None
        self.port = 0

    def _auth(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.username
            and data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpFake:
        from aiosmtpd.controller import Controller

        with socket.socket() as s:  # aiosmtpd's port=0 quirk: pick a free port first
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        kw: dict[str, Any] = {}
        if self.username:
            kw = {"authenticator": self._auth, "auth_require_tls": False}
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **kw)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def close_after_data(self) -> None:
        self._drop_next = True

    def __enter__(self) -> SmtpFake:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
