"""The columnar send path (mcrm/dispatch/columnar.py): every message a send puts on the wire is
byte-for-byte the message `Renderer` renders for that user through `Contexts` (what preview
and plan show: the plan's message_hash), on generated users whose names HTML escaping changes,
with missing names, locales with and without their own templates, two variants and an
unsubscribe URL that escaping changes; the tokens are `unsubscribe_token`'s; templates that
read more than the path builds go the usual way and still send the same text."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import random
from typing import Any

import pytest

from mcrm.campaigns.render import content_hash, unsubscribe_token, verify_unsubscribe_token
from mcrm.db import open_db
from mcrm.dispatch import send as send_mod
from mcrm.dispatch.columnar import _pads, tokens
from tests.conftest import WS, Cli, WorkspaceFactory
from tests.fakes import SendGridFake
from tests.unit.test_campaign_plan import _insert
from tests.unit.test_dispatch_sendgrid import rebuilt

AS_OF = "2026-03-02T09:00:00Z"
CONFIG = """\
timezone: UTC
delivery:
  unsubscribe:
    url: "https://u.example.com/u?t={token}&src=mail"
    mailto: "unsub@example.com"
    secret: "s3cret"
providers:
  outbox: {type: file, channels: [email], path: out/outbox.jsonl, batch: 40}
"""
SEGMENTS = "segments:\n  everyone: {where: {attr: user_id, exists: true}}\n"
CAMPAIGN = """\
segment: everyone
channels: [email]
variants:
  a: {weight: 50}
  b: {weight: 50, templates: {email: {subject: sb.j2}}}
templates:
  email: {subject: s.j2, text: t.j2, html: h.html.j2}
"""
PURE = {
    "campaigns/s.j2": "Hello {{ user.first_name | default('there') }} ({{ variant }})",
    "campaigns/s.cs.j2": "Ahoj {{ user.first_name | default('příteli') }}",
    "campaigns/sb.j2": "{{ campaign.name | upper }}: {{ user['city'] or 'anywhere' }}",
    "campaigns/t.j2": "Hi {{ user.first_name | default('you', true) }} "
    "({{ locale }}, {{ currency }})\n{{ unsubscribe_url }}\n",
    "campaigns/t.zh.j2": "你好 {{ user.first_name | default('朋友') }} {{ unsubscribe_url }}",
    "campaigns/h.html.j2": "<p>{{ user.first_name | default('friend') }}</p>"
    '<a href="{{ unsubscribe_url }}">unsubscribe</a> {{ unsubscribe_url }}',
    "campaigns/h.cs.html.j2": "<p>{% if user.first_name %}{{ user.first_name }}"
    "{% else %}Dobrý den{% endif %}</p><a href='{{ unsubscribe_url }}'>odhlásit</a>",
}
NAMES = ["Jana", "Zoë", "O'Neil", "伟", None, "Anne & Marie", "<b>x</b>", "", " pad "]
LOCALES = ["en", "cs", "zh", "cs-CZ", "bg", None, ""]


def make(
    workspace: WorkspaceFactory, n: int, files: dict[str, str], seed: int = 7, config: str = CONFIG
) -> WS:
    w = workspace(config, {"segments.yaml": SEGMENTS, "campaigns/promo.yaml": CAMPAIGN, **files})
    rng = random.Random(seed)
    t = dt.datetime(2026, 1, 1)
    rows = [
        [
            f"u{i:04d}",
            f"u{i}@example.com",
            rng.choice(NAMES),
            rng.choice(LOCALES),
            rng.choice(["Praha", None, "Sofia"]),
            t,
        ]
        for i in range(n)
    ]
    with open_db(w.ws, write=True) as con:
        _insert(
            con, "users", ["user_id", "email", "first_name", "locale", "city", "first_seen"], rows
        )
        _insert(
            con,
            "consents",
            ["user_id", "channel", "purpose", "granted", "ts"],
            [[r[0], "email", "marketing", True, t] for r in rows],
        )
    return w


def sent(w: WS, cli: Cli) -> dict[str, dict[str, Any]]:
    r = cli(w, "campaigns", "plan", "promo", "--as-of", AS_OF, "--format", "json")
    assert r.exit_code == 0, r.stderr
    (plan,) = sorted((w.root / ".mcrm" / "plans" / "promo").glob("*.jsonl"))
    r = cli(w, "send", "promo", "--plan", str(plan), "--as-of", AS_OF, "--yes")
    assert r.exit_code == 0, r.stderr
    lines = (w.root / "out" / "outbox.jsonl").read_text(encoding="utf-8").splitlines()
    return {json.loads(x)["id"]: json.loads(x) for x in lines}


def expected(w: WS) -> dict[str, tuple[dict[str, str], dict[str, str], str | None]]:
    """Per idempotency key: what Renderer renders through Contexts (the preview's path), the
    List-Unsubscribe headers from that context's URL, and the plan's message_hash."""
    from mcrm.campaigns.context import Contexts, Target, render_targets
    from mcrm.campaigns.engine import CAMPAIGNS_DIR, load
    from mcrm.campaigns.render import Renderer, email_headers

    c, delivery = load(w.ws, "promo")
    out = {}
    with open_db(w.ws) as con:
        as_of = con.execute("SELECT as_of FROM campaign_plans").fetchall()[0][0]
        rows = con.execute(
            "SELECT idempotency_key, user_id, channel, variant, send_at, message_hash "
            "FROM plan_rows WHERE status = 'planned' ORDER BY user_id"
        ).fetchall()
        ctxs = Contexts(con, w.ws, c, delivery, as_of, Renderer(w.root / CAMPAIGNS_DIR))
        targets = [Target(r[1], r[2], r[3], r[4]) for r in rows]
        for r, o in zip(rows, render_targets(ctxs, targets), strict=True):
            assert o.message is not None and o.context is not None
            headers = email_headers(
                unsubscribe_url=o.context["unsubscribe_url"], mailto=delivery.unsubscribe.mailto
            )
            out[r[0]] = (dict(o.message.parts), headers, r[5])
    return out


def same_as_renderers(got: dict[str, Any], want: dict[str, Any], n: int) -> None:
    """Every recipient sent once, with the renderer's parts, headers and message hash."""
    assert set(got) == set(want) and len(got) == n
    for key, (parts, headers, message_hash) in want.items():
        assert got[key]["content"] == parts, key
        assert got[key]["headers"] == headers, key
        assert content_hash("email", got[key]["content"]) == message_hash, key


def test_columnar_messages_are_the_renderers(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = make(workspace, 300, PURE)
    got = sent(w, cli)
    same_as_renderers(got, expected(w), 300)
    # the generated data reaches the interesting cases
    texts = [g["content"]["html"] for g in got.values()]
    assert any("Anne &amp; Marie" in t for t in texts)
    assert any("&amp;src=mail" in t for t in texts)
    assert any(t.startswith("<p>Dobrý den") for t in texts)
    assert any(g["content"]["text"].startswith("你好") for g in got.values())


def test_the_path_is_taken_for_pure_templates_only(
    workspace: WorkspaceFactory, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken: list[bool] = []
    real = send_mod.Dispatcher._columnar

    def spy(self: Any, c: Any, delivery: Any, channel: str) -> Any:
        got = real(self, c, delivery, channel)
        taken.append(got is not None)
        return got

    monkeypatch.setattr(send_mod.Dispatcher, "_columnar", spy)
    w = make(workspace, 30, PURE)
    assert len(sent(w, cli)) == 30
    assert taken and all(taken)

    # `now` is converted per user: such a template goes the usual way, with the same text
    taken.clear()
    impure = {
        **PURE,
        "campaigns/t.j2": "{{ now }} {{ user.first_name or '' }} {{ unsubscribe_url }}",
    }
    w = make(workspace, 30, impure)
    got = sent(w, cli)
    assert taken and not any(taken)
    want = expected(w)
    assert {k: g["content"] for k, g in got.items()} == {k: v[0] for k, v in want.items()}


def test_tokens_are_unsubscribe_tokens() -> None:
    issued = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    ids = ["u1", "ü-ñ", "伟", "a" * 300, "x y", "u\x7f"]
    # the MAC from SHA-256 states keyed as RFC 2104 says: short, block-sized, longer than a
    # block (hashed first), non-ASCII secrets
    for secret in (b"k", b"s" * 64, b"L" * 65, "sécret-王".encode() * 20):
        got = tokens(secret, ids, "promo", issued)
        assert got == [unsubscribe_token(secret, u, "promo", issued) for u in ids]
        assert [verify_unsubscribe_token(secret, t)[0] for t in got] == ids
    with pytest.raises(ValueError):
        tokens(b"k", ["ok", "bad\x01id"], "promo", issued)


@pytest.mark.parametrize(
    "secret",
    [b"", b"k", b"s" * 63, b"s" * 64, b"L" * 65, b"x" * 200, "sécret-王".encode() * 20,
     bytes(range(256)), b"\0" * 64, b"k\0"],
    ids=["empty", "short", "63", "64", "65", "200", "non-ascii", "all-bytes", "nul-64", "nul"],
)  # fmt: skip
def test_the_keyed_states_are_hmac_sha256(secret: bytes) -> None:
    # checked against the stdlib directly: `tokens` falls back to the slow way when its first
    # token disagrees, so comparing tokens alone would not see wrong pads
    inner, outer = _pads(secret)
    for msg in (b"", b"1\x1fu1\x1fpromo\x1f1767225600", bytes(range(256)) * 3):
        i = inner.copy()
        i.update(msg)
        o = outer.copy()
        o.update(i.digest())
        assert o.digest() == hmac.new(secret, msg, hashlib.sha256).digest()


def test_a_skipping_template_sends_nothing_for_those_users(
    workspace: WorkspaceFactory, cli: Cli
) -> None:
    skip = {
        **PURE,
        "campaigns/s.j2": "{% if not user.first_name %}{% skip 'no name' %}{% endif %}"
        "Hello {{ user.first_name }}",
    }
    w = make(workspace, 60, skip)
    got = sent(w, cli)
    want = expected(w)
    assert {k: g["content"] for k, g in got.items()} == {k: v[0] for k, v in want.items()}


def test_through_sendgrid_each_recipient_gets_the_renderers_message(
    workspace: WorkspaceFactory, cli: Cli, sendgrid_fake: SendGridFake
) -> None:
    lane = (
        "  sendgrid: {type: sendgrid, from: 'Shop <news@shop.example.com>', "
        f"base_url: '{sendgrid_fake.url}', api_key: '{sendgrid_fake.api_key}'}}\n"
    )
    config = CONFIG.split("providers:")[0] + "providers:\n" + lane
    w = make(workspace, 400, PURE, seed=3, config=config)
    r = cli(w, "campaigns", "plan", "promo", "--as-of", AS_OF, "--format", "json")
    assert r.exit_code == 0, r.stderr
    (plan,) = sorted((w.root / ".mcrm" / "plans" / "promo").glob("*.jsonl"))
    r = cli(w, "send", "promo", "--plan", str(plan), "--as-of", AS_OF, "--yes")
    assert r.exit_code == 0, r.stderr
    got: dict[str, dict[str, Any]] = {}
    for _, body in sendgrid_fake.sent:
        for key, one in rebuilt(body).items():
            assert key not in got
            got[key] = one
    want = expected(w)
    assert set(got) == set(want)
    for key, (parts, headers, _) in want.items():
        assert got[key]["subject"] == parts["subject"]
        assert got[key]["text"] == parts["text"], key
        assert got[key]["html"] == parts["html"], key
        assert got[key]["headers"] == headers
    # shared content: a few requests for 400 recipients in 10 claimed batches of 40
    assert len(sendgrid_fake.sent) <= 40


def test_the_key_cache_filling_up_inside_a_batch_loses_nothing(
    workspace: WorkspaceFactory, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the cache of rendered keys is cleared when it is full: a batch whose first keys were
    # found in it and whose later keys filled it must still build every message
    from mcrm.dispatch import columnar

    monkeypatch.setattr(columnar, "MAX_KEYS", 3)
    w = make(workspace, 120, PURE)
    same_as_renderers(sent(w, cli), expected(w), 120)
