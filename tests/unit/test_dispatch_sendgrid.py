"""The SendGrid adapter against the SendGrid fake (reference/providers.md §3.2, §3.3).

Promises: one request carries up to 1000 recipients whose messages share a template, each
recipient's own text, HTML, subject and one-click unsubscribe headers rebuilt exactly from
the request (content + that personalization's substitutions), the idempotency key in
`custom_args.mcrm_id`; every answer classified as §3.2 says, one result per message in order;
a 400 naming one recipient settles that row and the rest go out again in the same `send`.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mcrm.dispatch.core import Outbound, Outcome, Result
from mcrm.dispatch.sendgrid import SendGrid
from mcrm.errors import ConfigError
from tests.fakes import FakeClock, SendGridFake

FROM = "Shop <news@shop.example.com>"
NAMES = ["Jana", "Petr", "王伟", "Zoë", "O'Neil", "Anne-Marie", "Mary Ann", "Ярослава"]


def unsub_url(i: int) -> str:
    # as long as a real signed token, with a query string (escaped in HTML)
    return f"https://u.example.com/u/MR91{i:08d}fcHJvbW8.{'x' * 43}?l=promo&v=1"


def message(
    i: int,
    *,
    name: str | None = None,
    to: str | None = None,
    marketing: bool = True,
    template: int = 0,
    extra_headers: dict[str, str] | None = None,
) -> Outbound:
    name = name or NAMES[i % len(NAMES)]
    url = unsub_url(i)
    code = f"WB-{i:05d}"
    if template == 0:
        text = f"Hello {name},\n\nhere is 15% off with the code {code}.\n\nUnsubscribe: {url}"
        html = (
            f"<p>Hello {name},</p>\n<p>here is 15% off with the code <b>{code}</b>.</p>\n"
            f'<p><a href="{url.replace("&", "&amp;")}">Unsubscribe</a></p>'
        )
    else:
        text = f"Dear {name}, your receipt #{i} is attached.\nUnsubscribe: {url}"
        html = f"<p>Dear {name}, your receipt #{i} is attached.</p>"
    headers: dict[str, str] = {}
    if marketing:
        headers = {
            "List-Unsubscribe": f"<{url}>, <mailto:unsub@shop.example.com>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    headers.update(extra_headers or {})
    return Outbound(
        outbox_id=1000 + i,
        idempotency_key=f"00000000-0000-5000-8000-{i:012d}",
        campaign="promo",
        occurrence="2026-03-02T09:00:00Z",
        user_id=f"u{i}",
        channel="email",
        variant="a",
        address=to or f"user{i}@example.com",
        parts={"subject": f"{name}, 15% for you", "text": text, "html": html},
        headers=headers,
    )


def adapter(fake: SendGridFake, **kw: Any) -> SendGrid:
    opts: dict[str, Any] = {"api_key": fake.api_key, "from": FROM, "base_url": fake.url}
    opts.update(kw)
    return SendGrid("sg", opts)


@pytest.fixture
def sg(sendgrid_fake: SendGridFake) -> Iterator[SendGrid]:
    a = adapter(sendgrid_fake)
    yield a
    a.close()


def rebuilt(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per mcrm_id, what the recipient gets: SendGrid's substitution of each tag in the
    content (literal string replacement), the subject and the headers."""
    content = {c["type"]: c["value"] for c in body["content"]}
    out = {}
    for p in body["personalizations"]:
        text, html = content.get("text/plain", ""), content.get("text/html", "")
        for tag, value in p.get("substitutions", {}).items():
            text, html = text.replace(tag, value), html.replace(tag, value)
        assert len(p["to"]) == 1 and "cc" not in p and "bcc" not in p
        out[p["custom_args"]["mcrm_id"]] = {
            "to": p["to"][0]["email"],
            "subject": p.get("subject", body.get("subject")),
            "text": text,
            "html": html,
            "headers": p.get("headers", {}),
        }
    return out


def assert_delivered_as_rendered(fake: SendGridFake, batch: list[Outbound]) -> None:
    got: dict[str, dict[str, Any]] = {}
    for _, body in fake.sent:
        for key, r in rebuilt(body).items():
            assert key not in got, "a message went out twice"
            got[key] = r
    assert set(got) == {m.idempotency_key for m in batch}
    for m in batch:
        r = got[m.idempotency_key]
        assert r["to"] == m.address
        assert r["subject"] == m.parts["subject"]
        assert r["text"] == m.parts.get("text", "")
        assert r["html"] == m.parts.get("html", "")
        assert r["headers"] == m.headers


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the wire ----------------------------------------------------------------------------------


def test_one_request_carries_the_batch_each_recipient_rebuilt_exactly(
    sendgrid_fake: SendGridFake,
) -> None:
    a = adapter(sendgrid_fake, reply_to="Help <help@shop.example.com>", list_id="promo.shop")
    batch = [message(i, name=NAMES[i % 6]) for i in range(600)]  # one-token names
    try:
        res = a.send(batch)
    finally:
        a.close()
    assert len(sendgrid_fake.log) == 1
    entry = sendgrid_fake.log[0]
    mid = sendgrid_fake.sent[0][0]
    assert [r.outbox_id for r in res] == [m.outbox_id for m in batch]
    assert all(
        r == Result(m.outbox_id, Outcome.SENT, mid) for r, m in zip(res, batch, strict=True)
    )
    assert entry.method == "POST" and entry.path == "/v3/mail/send"
    assert entry.headers["authorization"] == f"Bearer {sendgrid_fake.api_key}"
    assert entry.headers["content-type"] == "application/json"
    body = entry.parsed
    assert body["from"] == {"email": "news@shop.example.com", "name": "Shop"}
    assert body["reply_to"] == {"email": "help@shop.example.com", "name": "Help"}
    assert "mail_settings" not in body
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    pers = body["personalizations"]
    assert len(pers) == 600
    for p, m in zip(pers, batch, strict=True):
        assert p["to"] == [{"email": m.address}]
        assert p["custom_args"] == {"mcrm_id": m.idempotency_key}
        assert p["headers"] == {**m.headers, "List-Id": "promo.shop"}
        # each recipient's own unsubscribe URL, in the header (and, below, in the rebuilt text)
        assert unsub_url(m.outbox_id - 1000) in p["headers"]["List-Unsubscribe"]
    # the content is shared: no recipient's own token, name or code in it; what they all
    # have in common stays there, so the substitutions stay small
    text = body["content"][0]["value"]
    assert "Jana" not in text and "WB-00000" not in text and "MR9100000000" not in text
    assert "https://u.example.com/u/MR91" in text and "the code WB-00" in text
    assert pers[1]["substitutions"] == {
        "-mcrm_u0-": "001",  # in the HTML, with &amp;
        "-mcrm_u1-": "001",
        "-mcrm_t0-": "Petr",
        "-mcrm_t1-": "001",
        "-mcrm_h0-": "Petr",
        "-mcrm_h1-": "001",
    }
    rebuilt_ = rebuilt(body)
    for m in batch:
        r = rebuilt_[m.idempotency_key]
        assert r["text"].endswith(f"Unsubscribe: {unsub_url(m.outbox_id - 1000)}")
        assert (r["subject"], r["text"], r["html"]) == (
            m.parts["subject"],
            m.parts["text"],
            m.parts["html"],
        )


def test_identical_messages_share_the_subject_and_need_no_substitutions(
    sendgrid_fake: SendGridFake, sg: SendGrid
) -> None:
    batch = [
        Outbound(i, f"k{i}", "c", "o", f"u{i}", "email", None, f"p{i}@example.com", PARTS)
        for i in range(5)
    ]
    assert all(r.outcome is Outcome.SENT for r in sg.send(batch))
    body = sendgrid_fake.last.parsed
    assert body["subject"] == "Receipt" and body["content"][0]["value"] == "Thanks."
    assert all(set(p) == {"to", "custom_args"} for p in body["personalizations"])


PARTS = {"subject": "Receipt", "text": "Thanks.", "html": "<p>Thanks.</p>"}


def test_mixed_templates_and_names_rebuild_exactly(
    sendgrid_fake: SendGridFake, sg: SendGrid
) -> None:
    rng = random.Random(7)
    batch = []
    lookalikes = 0
    for i in range(400):
        name = rng.choice(NAMES + ["A  B", " x", "Ann-", "&amp;", "<b>", "Ann\nLee"])
        if rng.random() < 0.03:  # content that holds what looks like a tag
            name = rng.choice(["-mcrm_t0-", "mcrm_h1", "-mcrm_u0-"])
            lookalikes += 1
        batch.append(
            message(i, name=name, template=rng.randrange(2), marketing=rng.random() < 0.8)
        )
    res = sg.send(batch)
    assert [r.outcome for r in res] == [Outcome.SENT] * len(batch)
    assert [r.outbox_id for r in res] == [m.outbox_id for m in batch]
    assert_delivered_as_rendered(sendgrid_fake, batch)
    # grouped by template and name shape, not one request per message
    assert len(sendgrid_fake.log) <= lookalikes + 30


def glued(i: int, name: str) -> Outbound:
    """A message whose name is not space-separated (`王伟，您好！`, `Zoë，欢迎`)."""
    m = message(i, name=name)
    url = unsub_url(i)
    text = f"{name}，您好！\n\n感谢您的加入。\n\n退订：{url}"
    html = f'<p>{name}，您好！</p><p><a href="{url.replace("&", "&amp;")}">退订</a></p>'
    parts = {"subject": f"{name}，欢迎光临", "text": text, "html": html}
    return Outbound(**{**m.__dict__, "parts": parts})


def test_names_glued_to_the_text_share_one_request(
    sendgrid_fake: SendGridFake, sg: SendGrid
) -> None:
    rng = random.Random(11)
    names = NAMES + ["朋友", "x", "Ann-", "-mcrm", "_a0-", "mcrm_b0", "，您好", "A" * 70]
    batch = [glued(i, rng.choice(names)) for i in range(300)]
    res = sg.send(batch)
    assert [r.outcome for r in res] == [Outcome.SENT] * len(batch)
    assert_delivered_as_rendered(sendgrid_fake, batch)
    # one request for the names that may be substituted; the lookalikes and the 70-character
    # name (longer than a substituted middle may be) go in requests of their own kind
    odd = {
        m.parts["text"] for m in batch if "mcrm" in m.parts["text"] or "A" * 70 in m.parts["text"]
    }
    assert len(sendgrid_fake.log) <= 1 + len(odd)
    first = sendgrid_fake.log[0].parsed
    assert len(first["personalizations"]) >= 200


def test_content_holding_a_tag_lookalike_is_sent_verbatim(
    sendgrid_fake: SendGridFake, sg: SendGrid
) -> None:
    m = message(1, name="-mcrm_u0-")
    assert sg.send([m])[0].outcome is Outcome.SENT
    body = sendgrid_fake.last.parsed
    assert body["content"][0]["value"] == m.parts["text"]
    assert "substitutions" not in body["personalizations"][0]


def test_unsubscribe_values_that_would_overlap_a_tag_are_not_substituted(
    sendgrid_fake: SendGridFake, sg: SendGrid
) -> None:
    # after the URL becomes `-mcrm_u0-`, the mailto value `aaaaaa-m` would match across it
    url = "https://u.example.com/u/ABCDEFGH"
    m = Outbound(
        1,
        "k1",
        "c",
        "o",
        "u1",
        "email",
        None,
        "p@example.com",
        {"subject": "s", "text": f"aaaaaa{url}", "html": f"<p>{url}</p>"},
        {"List-Unsubscribe": f"<{url}>, <mailto:aaaaaa-m>"},
    )
    assert sg.send([m])[0].outcome is Outcome.SENT
    body = sendgrid_fake.last.parsed
    assert body["content"][0]["value"] == m.parts["text"]
    assert "substitutions" not in body["personalizations"][0]


def test_at_most_1000_recipients_and_no_address_twice_per_request(
    sendgrid_fake: SendGridFake, sg: SendGrid
) -> None:
    batch = [message(i) for i in range(1200)]
    batch += [message(2000, to="user0@example.com"), message(2001, to="USER1@example.com")]
    res = sg.send(batch)
    assert all(r.outcome is Outcome.SENT for r in res) and len(res) == 1202
    for _, body in sendgrid_fake.sent:
        emails = [p["to"][0]["email"].lower() for p in body["personalizations"]]
        assert len(emails) <= 1000 and len(set(emails)) == len(emails)
    assert_delivered_as_rendered(sendgrid_fake, batch)


def test_a_member_whose_substitutions_pass_the_limit_goes_alone_verbatim(
    sendgrid_fake: SendGridFake, sg: SendGrid
) -> None:
    # the name is substituted in the text and in the HTML (two bytes a `Ž`): 1,000 of them
    # are 4,000 bytes, 2,000 are 8,000 (past 9,000 / 4 characters, so measured in bytes: still
    # under with the URL), 2,400 are 9,600 bytes: that member goes alone, verbatim
    names = ["Jana", "Ž" * 1000, "Petr", "Ž" * 2000, "Zoë", "Ž" * 2400]
    batch = [message(i, name=n) for i, n in enumerate(names)]
    res = sg.send(batch)
    assert [r.outcome for r in res] == [Outcome.SENT] * len(batch)
    assert_delivered_as_rendered(sendgrid_fake, batch)
    alone = [b for _, b in sendgrid_fake.sent if len(b["personalizations"]) == 1]
    verbatim = {b["content"][0]["value"] for b in alone if "substitutions" not in
                b["personalizations"][0]}  # fmt: skip
    assert verbatim == {batch[5].parts["text"]}
    assert len(sendgrid_fake.sent) == 2


def test_sandbox_mode_is_validated_not_sent(sendgrid_fake: SendGridFake) -> None:
    a = adapter(sendgrid_fake, sandbox=True)
    try:
        res = a.send([message(1), message(2)])
    finally:
        a.close()
    assert [r.outcome for r in res] == [Outcome.SENT, Outcome.SENT]
    assert sendgrid_fake.last.status == 200 and sendgrid_fake.sent == []
    assert sendgrid_fake.last.parsed["mail_settings"] == {"sandbox_mode": {"enable": True}}


def test_messages_the_provider_would_refuse_whole_are_settled_locally(
    sendgrid_fake: SendGridFake, sg: SendGrid
) -> None:
    no_subject = Outbound(1, "k1", "c", "o", "u1", "email", None, "a@example.com", {"text": "x"})
    empty = Outbound(2, "k2", "c", "o", "u2", "email", None, "b@example.com", {"subject": "s"})
    res = sg.send([no_subject, message(3), empty])
    assert [(r.outbox_id, r.outcome, r.error_code) for r in res] == [
        (1, Outcome.PERMANENT, "no_subject"),
        (1003, Outcome.SENT, None),
        (2, Outcome.PERMANENT, "no_content"),
    ]
    assert len(sendgrid_fake.log) == 1


# --- 400: one recipient named, the rest resent ------------------------------------------------


def test_a_malformed_address_is_invalid_and_the_rest_go_again(
    sendgrid_fake: SendGridFake, sg: SendGrid
) -> None:
    batch = [message(i, name="Jana") for i in range(10)]
    batch[3] = message(3, name="Jana", to="not-an-address")
    batch[7] = message(7, name="Jana", to="bad@@example.com")
    res = sg.send(batch)
    first, second = sendgrid_fake.log
    assert first.status == 400 and second.status == 202
    assert [e["field"] for e in first.response_json()["errors"]] == [
        "personalizations.3.to.0.email",
        "personalizations.7.to.0.email",
    ]
    assert len(second.parsed["personalizations"]) == 8
    assert [r.outbox_id for r in res] == [m.outbox_id for m in batch]
    for i, r in enumerate(res):
        if i in (3, 7):
            assert r.outcome is Outcome.INVALID_RECIPIENT
            assert (r.mark, r.mark_reason, r.error_code) == ("invalid", "malformed", "400")
            assert r.error_detail and "@" not in r.error_detail
        else:
            assert r == Result(batch[i].outbox_id, Outcome.SENT, sendgrid_fake.sent[0][0])
    assert_delivered_as_rendered(
        sendgrid_fake, [m for i, m in enumerate(batch) if i not in (3, 7)]
    )


def test_a_bad_field_of_one_personalization_fails_that_row_only(
    sendgrid_fake: SendGridFake, sg: SendGrid
) -> None:
    batch = [message(0), message(1, extra_headers={"Reply-To": "x@example.com"}), message(2)]
    res = sg.send(batch)
    assert [r.outcome for r in res] == [Outcome.SENT, Outcome.PERMANENT, Outcome.SENT]
    assert res[1].error_detail == "personalizations.1.headers: " + (
        "The header Reply-To is a reserved header and cannot be set."
    )
    assert res[1].mark is None
    assert [e.status for e in sendgrid_fake.log] == [400, 202]


def test_other_400s_are_permanent_for_the_request(
    sendgrid_fake: SendGridFake, sg: SendGrid
) -> None:
    body = {"errors": [{"message": "The from address does not match", "field": "from"}]}
    sendgrid_fake.script((400, {}, body))
    res = sg.send([message(1), message(2)])
    assert [(r.outcome, r.error_code) for r in res] == [(Outcome.PERMANENT, "400")] * 2
    assert res[0].error_detail == "from: The from address does not match"
    assert len(sendgrid_fake.log) == 1


def test_a_recipient_error_beside_a_request_error_settles_both(
    sendgrid_fake: SendGridFake, sg: SendGrid
) -> None:
    body = {
        "errors": [
            {
                "message": "Does not contain a valid address.",
                "field": "personalizations.1.to.0.email",
            },
            {"message": "Bad Request", "field": None},
        ]
    }
    sendgrid_fake.script((400, {}, body))
    res = sg.send([message(1), message(2), message(3)])
    assert [r.outcome for r in res] == [
        Outcome.PERMANENT,
        Outcome.INVALID_RECIPIENT,
        Outcome.PERMANENT,
    ]
    assert len(sendgrid_fake.log) == 1


# --- other answers -----------------------------------------------------------------------------


def test_bad_key_is_auth_for_the_batch(sendgrid_fake: SendGridFake) -> None:
    a = adapter(sendgrid_fake, api_key="SG.wrong")
    try:
        res = a.send([message(1), message(2)])
    finally:
        a.close()
    assert [(r.outcome, r.error_code) for r in res] == [(Outcome.AUTH, "401")] * 2
    assert (
        res[0].error_detail == "The provided authorization grant is invalid, expired, or revoked"
    )


@pytest.mark.parametrize(
    ("item", "outcome", "code"),
    [
        (403, Outcome.AUTH, "403"),
        (404, Outcome.AUTH, "404"),
        (413, Outcome.PERMANENT, "413"),
        (415, Outcome.PERMANENT, "415"),
        (500, Outcome.RETRY, "500"),
        (503, Outcome.RETRY, "503"),
        ("html_502", Outcome.RETRY, "502"),
    ],
)
def test_scripted_statuses(
    sendgrid_fake: SendGridFake, sg: SendGrid, item: Any, outcome: Outcome, code: str
) -> None:
    sendgrid_fake.script(item)
    res = sg.send([message(1), message(2)])
    assert [(r.outcome, r.error_code) for r in res] == [(outcome, code)] * 2
    assert sendgrid_fake.sent == []


def test_503_with_retry_after_then_sent(sendgrid_fake: SendGridFake, sg: SendGrid) -> None:
    sendgrid_fake.script((503, {"Retry-After": "7"}))
    res = sg.send([message(1)])
    assert (res[0].outcome, res[0].retry_after_s) == (Outcome.RETRY, 7.0)
    assert sg.send([message(1)])[0].outcome is Outcome.SENT  # the dispatcher resends


def test_429_with_retry_after(sendgrid_fake: SendGridFake, sg: SendGrid) -> None:
    sendgrid_fake.script((429, {"Retry-After": "12"}))
    res = sg.send([message(1), message(2)])
    assert [(r.outcome, r.retry_after_s) for r in res] == [(Outcome.THROTTLED, 12.0)] * 2


def test_429_without_retry_after_reads_x_ratelimit_reset(fake_factory: Any) -> None:
    clock = FakeClock()
    fake: SendGridFake = fake_factory("sendgrid", clock=clock)
    a = SendGrid("sg", {"api_key": fake.api_key, "from": FROM, "base_url": fake.url}, clock=clock)
    try:
        fake.script(429)  # the fake's own: X-RateLimit-Reset = its clock + 1
        res = a.send([message(1)])
        assert fake.last.response_headers["X-RateLimit-Reset"] == str(int(clock()) + 1)
        assert (res[0].outcome, res[0].error_code) == (Outcome.THROTTLED, "429")
        assert res[0].retry_after_s == 1.0
        fake.script((429, {"X-RateLimit-Reset": str(int(clock()) + 45)}))
        assert a.send([message(1)])[0].retry_after_s == 45.0
        fake.script((429, {"X-RateLimit-Reset": str(int(clock()) - 45)}))
        assert a.send([message(1)])[0].retry_after_s == 0.0
    finally:
        a.close()


def test_drop_after_body_is_ambiguous_for_the_whole_request(
    sendgrid_fake: SendGridFake, sg: SendGrid
) -> None:
    sendgrid_fake.script("drop_after_body")
    res = sg.send([message(1), message(2), message(3)])
    assert [r.outcome for r in res] == [Outcome.AMBIGUOUS] * 3
    assert res[0].error_code == "connection_lost"
    assert len(sendgrid_fake.sent) == 1  # it was queued: resending would mail them twice


def test_connection_refused_is_retry() -> None:
    a = SendGrid(
        "sg", {"api_key": "SG.x", "from": FROM, "base_url": f"http://127.0.0.1:{closed_port()}"}
    )
    try:
        res = a.send([message(1), message(2)])
    finally:
        a.close()
    assert [(r.outcome, r.error_code) for r in res] == [(Outcome.RETRY, "connect_failed")] * 2


# --- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opts", "text"),
    [
        ({"from": FROM}, "needs api_key"),
        ({"api_key": "SG.x"}, "needs from"),
        ({"api_key": "SG.x", "from": "nobody"}, "must be an e-mail address"),
        ({"api_key": "SG.x", "from": '"Shop, Inc" <a@b.example>'}, "';' and ','"),
        ({"api_key": "SG.x", "from": FROM, "sandbox": "yes"}, "sandbox must be true or false"),
        ({"api_key": "SG.x", "from": FROM, "base_url": "ftp://x"}, "base_url"),
        # urllib3 would refuse these when the lane starts: said as the option's problem
        ({"api_key": "SG.x", "from": FROM, "base_url": "https://h:99999"}, "base_url is not a"),
        ({"api_key": "SG.x", "from": FROM, "base_url": "https://h:x"}, "base_url is not a"),
        ({"api_key": "SG.x", "from": FROM, "base_url": "https://a b"}, "base_url is not a"),
        ({"api_key": "SG.x", "from": FROM, "base_url": "https://[::1"}, "base_url is not a"),
        ({"api_key": "SG.x", "from": FROM, "base_url": "https://"}, "must be an http(s) URL"),
        ({"api_key": "SG.x", "from": FROM, "batch": 5}, "unknown option(s) batch"),
    ],
)
def test_options_are_validated(opts: dict[str, Any], text: str) -> None:
    with pytest.raises(ConfigError) as e:
        SendGrid("mail", opts)
    assert text in str(e.value)
    assert "providers.mail" in str(e.value.where)


def test_contract_attributes() -> None:
    a = SendGrid("mail", {"api_key": "SG.x", "from": FROM})
    assert (a.name, a.channel, a.max_batch, a.dedupes) == ("mail", "email", 1000, False)
    assert a.url == "https://api.sendgrid.com/v3/mail/send"
    assert a.send([]) == []
    a.close()


def test_the_body_is_the_json_of_the_stdlib_encoder() -> None:
    """The body is encoded with orjson: the same bytes as the standard library's compact,
    non-ASCII-keeping encoding, for names in other scripts, quotes, backslashes, control
    characters and the line separators JSON allows raw."""
    import json

    from mcrm.dispatch.sendgrid import _Msg, _Request

    sg = SendGrid("sg", {"api_key": "SG.x", "from": FROM, "list_id": "news"})
    odd = ["王伟", 'say "hi"', "back\\slash", "tab\tnl\n\x01\x1f", "\u2028\u2029", "😀 Zoë"]
    msgs = [
        _Msg(i, message(i, name=n), f"{n}, hi", f"Hi {n} -mcrm_u0-", f"<p>{n}</p>", {}, {}, True)
        for i, n in enumerate(odd)
    ]
    subs = [{"-mcrm_u0-": unsub_url(i), "-mcrm_t0-": n} for i, n in enumerate(odd)]
    r = _Request(msgs, "Hi -mcrm_t0- -mcrm_u0-", "<p>-mcrm_t0-</p>", subs)
    body = sg._body(r, list(range(len(odd))))
    doc = json.loads(body)
    assert body == json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert [p["substitutions"]["-mcrm_t0-"] for p in doc["personalizations"]] == odd
    assert [p["subject"] for p in doc["personalizations"]] == [f"{n}, hi" for n in odd]


def test_after_a_read_timeout_and_a_drop_the_next_answer_is_its_own(
    sendgrid_fake: SendGridFake, sg: SendGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the late 202 of a timed-out request must never be read as the next request's answer:
    # the connection it was on is thrown away, not reused
    from tests.fakes.base import Delay

    monkeypatch.setattr("mcrm.dispatch.sendgrid.TIMEOUT", (5, 0.3))
    sendgrid_fake.script(Delay(0.8), 503, "drop_after_body", (429, {"Retry-After": "3"}))
    got = [sg.send([message(i), message(i + 10)]) for i in range(5)]
    assert [[(r.outbox_id, r.outcome, r.error_code) for r in res] for res in got] == [
        [(1000, Outcome.AMBIGUOUS, "read_timeout"), (1010, Outcome.AMBIGUOUS, "read_timeout")],
        [(1001, Outcome.RETRY, "503"), (1011, Outcome.RETRY, "503")],
        [(1002, Outcome.AMBIGUOUS, "connection_lost")] + [(1012, Outcome.AMBIGUOUS,
                                                           "connection_lost")],
        [(1003, Outcome.THROTTLED, "429"), (1013, Outcome.THROTTLED, "429")],
        [(1004, Outcome.SENT, None), (1014, Outcome.SENT, None)],
    ]  # fmt: skip
    assert got[3][0].retry_after_s == got[3][1].retry_after_s == 3.0
    mids = {r.provider_message_id for r in got[4]}
    assert len(mids) == 1 and None not in mids
    # what the provider queued: the dropped one, the last, and (late) the timed-out one
    deadline = time.monotonic() + 5
    while len(sendgrid_fake.sent) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sendgrid_fake.sent) == 3


def test_one_answer_gives_each_member_its_own_result(fake_factory: Any) -> None:
    # the answer is classified once per request: every member keeps its own outbox id
    clock = FakeClock()
    fake: SendGridFake = fake_factory("sendgrid", clock=clock)
    a = SendGrid(
        "sg",
        {"api_key": fake.api_key, "from": FROM, "base_url": fake.url, "sandbox": True},
        clock=clock,
    )
    batch = [message(i, name=NAMES[i % 6]) for i in range(7)]  # one request
    try:
        fake.script((429, {"X-RateLimit-Reset": str(int(clock()) + 9)}))
        throttled = a.send(batch)
        sandboxed = a.send(batch)
    finally:
        a.close()
    assert len(fake.log) == 2  # one request each time
    ids = [m.outbox_id for m in batch]
    assert [r.outbox_id for r in throttled] == ids == [r.outbox_id for r in sandboxed]
    assert {(r.outcome, r.error_code, r.retry_after_s) for r in throttled} == {
        (Outcome.THROTTLED, "429", 9.0)
    }
    assert {(r.outcome, r.error_detail) for r in sandboxed} == {(Outcome.SENT, "sandbox")}
    assert len(set(throttled)) == len(set(sandboxed)) == 7  # hashable, distinct by id
