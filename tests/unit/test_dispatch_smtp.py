"""The SMTP adapter against a real SMTP server (aiosmtpd): what arrives (From, To, Subject,
text and HTML parts, Message-ID from the idempotency key, both RFC 8058 headers), and each
stage's refusal classified as reference/providers.md §3.1 says; end to end, `mcrm send`
through an smtp lane delivers every planned message once."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from mcrm.dispatch.core import Outbound, Outcome
from mcrm.dispatch.smtp import Smtp
from tests.cli.test_send_exactly_once import AS_OF, make, plan
from tests.conftest import Cli, WorkspaceFactory
from tests.fakes.smtp import SmtpFake

TOKEN = "MR91MDAwMDEfcHJvbW8fMTc3MjQ0MjAwMA." + "x" * 43  # as long as a real one
HEADERS = {
    "List-Unsubscribe": f"<https://u.example.com/u/{TOKEN}>, <mailto:unsub@example.com>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}


@pytest.fixture
def server() -> Iterator[SmtpFake]:
    with SmtpFake() as s:
        yield s


def adapter(port: int, **kw: object) -> Smtp:
    opts = {"host": "127.0.0.1", "port": port, "starttls": False, "from": "Shop <news@shop.test>"}
    opts.update(kw)
    return Smtp("mail", opts)


def out(i: int, to: str) -> Outbound:
    return Outbound(
        outbox_id=i,
        idempotency_key=f"00000000-0000-5000-8000-{i:012d}",
        campaign="promo",
        occurrence="2026-03-02T09:00:00Z",
        user_id=f"u{i}",
        channel="email",
        variant="a",
        address=to,
        parts={"subject": "Hello Jana – 15 %", "text": "Hi Jana", "html": "<p>Hi <b>Jana</b></p>"},
        headers=HEADERS,
    )


def test_the_received_message_is_complete(server: SmtpFake) -> None:
    a = adapter(server.port)
    try:
        res = a.send([out(1, "jana@example.com"), out(2, "petr@example.com")])
    finally:
        a.close()
    assert [r.outcome for r in res] == [Outcome.SENT, Outcome.SENT]
    assert res[0].provider_message_id == "FAKE000001"
    got = server.messages[0]
    assert got.mail_from == "news@shop.test" and got.rcpt_tos == ["jana@example.com"]
    m = got.message
    assert m["From"] == "Shop <news@shop.test>"
    assert m["To"] == "jana@example.com"
    assert m["Subject"] == "Hello Jana – 15 %"
    assert m["Message-ID"] == "<00000000-0000-5000-8000-000000000001@shop.test>"
    assert m["List-Unsubscribe"] == HEADERS["List-Unsubscribe"]
    assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # one plain header line, never folded into RFC 2047 encoded words (a non-ASCII subject
    # is encoded, as it must be)
    raw_lines = got.raw.decode("ascii").split("\r\n")
    assert f"List-Unsubscribe: {HEADERS['List-Unsubscribe']}" in raw_lines
    assert any(x.startswith("Subject: Hello Jana =?utf-8?") for x in raw_lines)
    text = m.get_body(preferencelist=("plain",))
    html = m.get_body(preferencelist=("html",))
    assert text is not None and text.get_content().strip() == "Hi Jana"
    assert html is not None and html.get_content().strip() == "<p>Hi <b>Jana</b></p>"
    assert len(server.messages) == 2  # one connection, one message per recipient


@pytest.mark.parametrize(
    ("to", "outcome", "code"),
    [
        ("x@invalid.test", Outcome.INVALID_RECIPIENT, "550"),
        ("x@busy.test", Outcome.RETRY, "450"),
        ("x@full.test", Outcome.RETRY, "452"),
        ("x@reject-data.test", Outcome.PERMANENT, "554"),
    ],
)
def test_refusals_by_stage(server: SmtpFake, to: str, outcome: Outcome, code: str) -> None:
    a = adapter(server.port)
    try:
        r, ok = a.send([out(1, to), out(2, "fine@example.com")])
    finally:
        a.close()
    assert (r.outcome, r.error_code) == (outcome, code)
    if outcome is Outcome.INVALID_RECIPIENT:
        assert r.mark == "invalid" and r.mark_reason == "mailbox_unknown"
    assert ok.outcome is Outcome.SENT  # the connection survives a refused recipient
    assert [x.rcpt_tos for x in server.messages] == [["fine@example.com"]]


def test_a_connection_lost_after_data_is_ambiguous(server: SmtpFake) -> None:
    a = adapter(server.port)
    server.close_after_data()
    try:
        r1, r2 = a.send([out(1, "a@example.com"), out(2, "b@example.com")])
    finally:
        a.close()
    assert r1.outcome is Outcome.AMBIGUOUS  # it was queued, but we cannot know
    assert r2.outcome is Outcome.SENT  # reconnected
    assert len(server.messages) == 2


def test_nothing_listening_is_a_retry() -> None:
    with SmtpFake() as s:
        port = s.port
    a = adapter(port)
    r = a.send([out(1, "a@example.com")])[0]
    assert r.outcome is Outcome.RETRY


def test_bad_credentials_stop_the_lane() -> None:
    with SmtpFake(username="crm", password="right") as s:
        a = adapter(s.port, username="crm", password="wrong")
        res = a.send([out(1, "a@example.com"), out(2, "b@example.com")])
        a.close()
        assert [r.outcome for r in res] == [Outcome.AUTH, Outcome.AUTH]
        assert res[0].error_code == "535"
        good = adapter(s.port, username="crm", password="right")
        assert good.send([out(3, "c@example.com")])[0].outcome is Outcome.SENT
        good.close()
        assert len(s.messages) == 1


def test_send_through_an_smtp_lane(
    workspace: WorkspaceFactory, cli: Cli, server: SmtpFake
) -> None:
    w = make(workspace, 12)
    cfg = (w.root / "mcrm.yaml").read_text()
    cfg = cfg.split("providers:")[0] + (
        "providers:\n  mail:\n    type: smtp\n    host: 127.0.0.1\n"
        f"    port: {server.port}\n    starttls: false\n    from: Shop <news@shop.test>\n"
    )
    w.write("mcrm.yaml", cfg)
    # one address the server refuses: registry, and never mailed again
    from mcrm.db import open_db

    with open_db(w.ws, write=True) as con:
        con.execute("UPDATE users SET email = 'gone@invalid.test' WHERE user_id = 'u00004'")
    p = plan(cli, w)
    r = cli(w, "send", "promo", "--plan", str(p), "--as-of", AS_OF, "--yes")
    assert r.exit_code == 0, r.stderr
    with open_db(w.ws) as con:
        errs = con.execute("SELECT status, last_error_code, last_error FROM outbox").fetchall()
    assert json.loads(r.stdout)["outcomes"] == {"sent": 11, "invalid_recipient": 1}, errs
    assert len(server.messages) == 11
    ids = {m.message["Message-ID"] for m in server.messages}
    assert len(ids) == 11
    assert all(m.message["List-Unsubscribe-Post"] for m in server.messages)
    with open_db(w.ws) as con:
        n = con.execute("SELECT count(*) FROM invalid_addresses WHERE channel = 'email'")
        assert n.fetchall()[0][0] == 1
    again = cli(w, "send", "promo", "--plan", str(p), "--as-of", AS_OF, "--yes")
    assert json.loads(again.stdout)["outcomes"] == {}
    assert len(server.messages) == 11
