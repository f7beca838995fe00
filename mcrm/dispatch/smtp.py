"""SMTP with smtplib (reference/providers.md §3.1): one message per recipient over one reused
connection per lane, each stage of the dialogue classified on its own.

The dialogue is driven command by command (`MAIL`, `RCPT`, `DATA`) rather than through
`send_message`, so a refusal is attributed to its stage: a dead mailbox at RCPT is an invalid
recipient (registry), a 4xx anywhere is a retry, and only a failure *after the message body
was sent* is ambiguous (`unknown`: it may have been queued). `Message-ID` is
`<idempotency key@from-domain>`; marketing mail carries the RFC 8058 headers.
"""

from __future__ import annotations

import email.policy
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

from mcrm.dispatch.core import Outbound, Outcome, Result
from mcrm.errors import ConfigError, Where

WIRE = email.policy.SMTP.clone(max_line_length=998)
OPTIONS = {
    "host",
    "port",
    "username",
    "password",
    "starttls",
    "ssl",
    "from",
    "reply_to",
    "list_id",
    "timeout",
    "tls_verify",
}


class Smtp:
    channel = "email"
    max_batch = 50  # one message per recipient; the batch is the claim size
    dedupes = False

    def __init__(self, name: str, opts: dict[str, Any]):
        where = Where("mcrm.yaml", None, f"providers.{name}")
        unknown = set(opts) - OPTIONS
        if unknown:
            raise ConfigError(
                f"provider '{name}': unknown option(s) {', '.join(sorted(unknown))}",
                hint=f"options: {', '.join(sorted(OPTIONS))}",
                where=where,
            )
        self.name = name
        self.host = str(opts.get("host") or "")
        self.sender = str(opts.get("from") or "")
        _, addr = parseaddr(self.sender)
        if not self.host or "@" not in addr:
            raise ConfigError(
                f"provider '{name}' needs host: and from: (e.g. 'Shop <news@shop.example.com>')",
                where=where,
            )
        self.from_addr = addr
        self.domain = addr.rsplit("@", 1)[1]
        self.ssl = bool(opts.get("ssl", False))
        self.port = int(opts.get("port", 465 if self.ssl else 587))
        self.starttls = bool(opts.get("starttls", self.port == 587 and not self.ssl))
        self.username = opts.get("username")
        self.password = opts.get("password")
        self.reply_to = opts.get("reply_to")
        self.list_id = opts.get("list_id")
        self.timeout = float(opts.get("timeout", 30))
        self.tls_verify = bool(opts.get("tls_verify", True))
        self.conn: smtplib.SMTP | None = None

    # --- connection ------------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if not self.tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _connect(self) -> smtplib.SMTP:
        if self.ssl:
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self._context()
            )
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        conn.ehlo()
        if self.starttls:
            conn.starttls(context=self._context())
            conn.ehlo()
        if self.username:
            conn.login(str(self.username), str(self.password or ""))
        return conn

    def _drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
        self.conn = None

    # --- sending ---------------------------------------------------------------------------

    def message(self, m: Outbound) -> EmailMessage:
        # CRLF line ends, and headers folded only past 998 characters: a long
        # List-Unsubscribe URL must stay one plain header, never RFC 2047 encoded words
        msg = EmailMessage(policy=WIRE)
        msg["From"] = self.sender
        msg["To"] = m.address
        msg["Subject"] = m.parts.get("subject", "")
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = f"<{m.idempotency_key}@{self.domain}>"
        if self.reply_to:
            msg["Reply-To"] = str(self.reply_to)
        for k, v in m.headers.items():
            msg[k] = v
        if self.list_id and m.headers and "List-Id" not in msg:
            msg["List-Id"] = str(self.list_id)
        msg.set_content(m.parts.get("text", ""))
        if "html" in m.parts:
            msg.add_alternative(m.parts["html"], subtype="html")
        return msg

    def send(self, batch: Sequence[Outbound]) -> list[Result]:
        out: list[Result] = []
        for i, m in enumerate(batch):
            r = self._one(m)
            out.append(r)
            if r.outcome is Outcome.AUTH:  # lane-wide: the rest were not tried
                out += [
                    Result(x.outbox_id, Outcome.AUTH, error_code=r.error_code)
                    for x in batch[i + 1 :]
                ]
                break
        return out

    def _one(self, m: Outbound) -> Result:
        oid = m.outbox_id
        if self.conn is None:
            try:
                self.conn = self._connect()
            except smtplib.SMTPAuthenticationError as e:
                self._drop()
                return Result(oid, Outcome.AUTH, error_code=str(e.smtp_code))
            except (ssl.SSLError, ssl.CertificateError):
                self._drop()
                return Result(oid, Outcome.AUTH, error_code="tls")
            except (OSError, smtplib.SMTPException) as e:  # refused, timeout, 421
                self._drop()
                return Result(oid, Outcome.RETRY, error_code=_code(e) or "connect")
        conn = self.conn
        try:
            code, _ = conn.mail(self.from_addr)
            if code != 250:
                conn.rset()
                return Result(
                    oid,
                    Outcome.RETRY if 400 <= code < 500 else Outcome.AUTH,
                    error_code=str(code),
                    error_detail="sender refused",
                )
            code, _ = conn.rcpt(m.address)
            if code not in (250, 251):
                conn.rset()
                if code in (550, 551, 553):
                    return Result(
                        oid,
                        Outcome.INVALID_RECIPIENT,
                        error_code=str(code),
                        mark="invalid",
                        mark_reason="mailbox_unknown",
                    )
                if code == 421:
                    self._drop()
                return Result(
                    oid, Outcome.RETRY if code < 500 else Outcome.PERMANENT, error_code=str(code)
                )
        except (smtplib.SMTPServerDisconnected, OSError) as e:
            # before DATA nothing can have been queued: reconnect and retry later
            self._drop()
            return Result(oid, Outcome.RETRY, error_code=_code(e) or "disconnected")
        body = self.message(m).as_bytes()
        try:
            code, resp = conn.data(body)
        except smtplib.SMTPDataError as e:
            conn.rset()
            return Result(
                oid,
                Outcome.RETRY if e.smtp_code < 500 else Outcome.PERMANENT,
                error_code=str(e.smtp_code),
            )
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as e:
            self._drop()  # the body may have been queued before the connection went
            return Result(oid, Outcome.AMBIGUOUS, error_code=_code(e) or "lost_after_data")
        if code != 250:  # smtplib returns the reply to the final "." without raising
            try:
                conn.rset()
            except (smtplib.SMTPException, OSError):
                self._drop()
            return Result(
                oid, Outcome.RETRY if code < 500 else Outcome.PERMANENT, error_code=str(code)
            )
        text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
        queued = text.rsplit("queued as", 1)[-1].strip() if "queued as" in text else None
        return Result(oid, Outcome.SENT, provider_message_id=queued or f"<{m.idempotency_key}>")

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except Exception:
                pass
        self.conn = None


def _code(e: BaseException) -> str | None:
    c = getattr(e, "smtp_code", None)
    return str(c) if c is not None else None
