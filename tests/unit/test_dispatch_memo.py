"""`MemoRenderer` (mcrm/dispatch/memo.py) gives exactly `Renderer`'s text, message by message,
on generated contexts that make equal-looking values print differently (1.0 vs 1.00, one
instant in two zones, True vs 1, None vs missing), on URLs HTML escaping changes, and on
templates it must refuse to memoise; and it does memoise what it may."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mcrm.campaigns.render import Renderer, TemplateError, TemplateSkip
from mcrm.dispatch.memo import MemoRenderer

TEMPLATES = {
    # memoisable: key chains + an opaque, printed-only URL (HTML-escaped here)
    "welcome.html.j2": '<p>Hello {{ user.first_name | default("friend") }},</p>\n'
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ unsubscribe_url }}',
    "welcome.txt.j2": "Hi {{ user.first_name | default('you') | title }}!\n{{ unsubscribe_url }}",
    "amounts.txt.j2": "{{ user.credit }} / {{ user.credit | money }} / {{ user.flag }} "
    "{% if user.vip %}VIP{% elif user.vip is none %}none{% else %}no{% endif %}",
    "when.txt.j2": "{{ now }} {{ now | date }} {{ locale }}",
    "slice.txt.j2": "{{ user.first_name[:1] | default('?') }}. {{ user['last_name'] | upper }}",
    # opaque name also read elsewhere: a key, not opaque
    "both.txt.j2": "{% if unsubscribe_url %}{{ unsubscribe_url }}{% endif %}",
    # refused: loops, assignments, calls, random, skip, autoescape blocks
    "loop.txt.j2": "{% for c in user.first_name %}{{ c }}{% endfor %}",
    "set.txt.j2": "{% set n = user.first_name %}{{ n }}",
    "call.txt.j2": "{{ user.first_name.upper() if user.first_name else 'x' }}",
    "random.txt.j2": "{{ [1, 2, 3] | random }}",
    "skip.txt.j2": "{% if not user.first_name %}{% skip 'no name' %}{% endif %}{{ user.x }}",
    "raw.html.j2": "{% autoescape false %}{{ unsubscribe_url }}{% endautoescape %}",
    # a value that fails: never kept
    "strict.txt.j2": "{{ user.nickname }}",
}
MEMOISED = {"welcome.html.j2", "welcome.txt.j2", "amounts.txt.j2", "when.txt.j2", "slice.txt.j2"}
REFUSED = {"loop.txt.j2", "set.txt.j2", "call.txt.j2", "random.txt.j2", "skip.txt.j2"}


@pytest.fixture
def campaigns(tmp_path: Path) -> Path:
    for name, text in TEMPLATES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def contexts(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    names = ["Jana", "Zoë", "O'Neil", "伟", None, "Anne & Marie", "<b>x</b>"]
    amounts: list[Any] = [Decimal("1.0"), Decimal("1.00"), Decimal("12.5"), 3, 1.0, None]
    flags: list[Any] = [True, 1, 0, False, None, "1"]
    zones = [ZoneInfo("Europe/Prague"), ZoneInfo("UTC"), ZoneInfo("Asia/Shanghai")]
    out = []
    for i in range(n):
        user: dict[str, Any] = {"first_name": rng.choice(names), "last_name": "Nováková"}
        if rng.random() < 0.8:
            user["credit"] = rng.choice(amounts)
        user["flag"] = rng.choice(flags)
        if rng.random() < 0.7:
            user["vip"] = rng.choice([True, False, None])
        at = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC).astimezone(rng.choice(zones))
        out.append(
            {
                "user": user,
                "locale": rng.choice(["en", "cs", "zh"]),
                "currency": rng.choice(["EUR", "CZK"]),
                "now": at,
                # unique per user, with characters HTML escaping changes
                "unsubscribe_url": f"https://u.example.com/u/{i}?a=1&b=<{rng.randrange(99)}>",
            }
        )
    return out


def outcome(r: Renderer, name: str, ctx: dict[str, Any]) -> tuple[str, str]:
    try:
        return ("ok", r.render(name, ctx))
    except TemplateSkip as e:
        return ("skip", e.reason)
    except TemplateError as e:
        return ("error", e.message)


def test_memo_gives_the_renderers_text_for_every_message(campaigns: Path) -> None:
    plain, memo = Renderer(campaigns), MemoRenderer(campaigns)
    ctxs = contexts(600, seed=7)
    for name in TEMPLATES:
        got = [outcome(memo, name, c) for c in ctxs]
        if name == "random.txt.j2":  # random either way: only never memoised (below)
            assert len({text for _, text in got}) > 1
            continue
        want = [outcome(plain, name, c) for c in ctxs]
        assert got == want, name
    # it really memoised what it may, and nothing else
    plans = {name: memo._plans[(False, name)] for name in TEMPLATES}
    for name in MEMOISED:
        plan = plans[name]
        assert plan is not None and plan.hits > 0, name
    for name in REFUSED:
        assert plans[name] is None, name
    assert plans["welcome.html.j2"].opaque == ["unsubscribe_url"]  # type: ignore[union-attr]
    assert plans["both.txt.j2"].opaque == []  # type: ignore[union-attr]


def test_escaping_of_the_opaque_value_follows_autoescape(campaigns: Path) -> None:
    memo = MemoRenderer(campaigns)
    ctx = contexts(1, seed=1)[0]
    ctx["user"]["first_name"] = "Jana"
    html = memo.render("welcome.html.j2", ctx)
    html_again = memo.render("welcome.html.j2", {**ctx, "unsubscribe_url": "https://x/&"})
    assert "a=1&amp;b=&lt;" in html and "&b=<" not in html
    assert html_again.count("https://x/&amp;") == 2
    text = memo.render("welcome.txt.j2", {**ctx, "unsubscribe_url": "https://x/&"})
    assert text == "Hi Jana!\nhttps://x/&"


def test_markup_or_missing_opaque_values_render_in_full(campaigns: Path) -> None:
    from markupsafe import Markup

    plain, memo = Renderer(campaigns), MemoRenderer(campaigns)
    ctx = contexts(1, seed=2)[0]
    ctx["unsubscribe_url"] = Markup("https://x/?a=1&b=2")
    assert memo.render("welcome.html.j2", ctx) == plain.render("welcome.html.j2", ctx)
    del ctx["unsubscribe_url"]
    assert outcome(memo, "welcome.html.j2", ctx) == outcome(plain, "welcome.html.j2", ctx)
    assert outcome(memo, "welcome.html.j2", ctx)[0] == "error"


def test_templates_whose_keys_never_repeat_stop_being_memoised(tmp_path: Path) -> None:
    (tmp_path / "id.txt.j2").write_text("{{ user.user_id | upper }}", encoding="utf-8")
    memo = MemoRenderer(tmp_path)
    for i in range(1500):
        assert memo.render("id.txt.j2", {"user": {"user_id": f"u{i}"}}) == f"U{i}"
    assert memo._plans[(False, "id.txt.j2")] is None


def test_a_missing_parent_is_not_a_missing_leaf(tmp_path: Path) -> None:
    # `user.attributes` missing fails (strict undefined); present without `vip` defaults
    (tmp_path / "vip.txt.j2").write_text(
        "{{ user.attributes.vip | default('no') }}", encoding="utf-8"
    )
    plain, memo = Renderer(tmp_path), MemoRenderer(tmp_path)
    ctxs: list[dict[str, Any]] = [
        {"user": {"attributes": {}}},
        {"user": {}},
        {"user": {"attributes": {"vip": "yes"}}},
        {"user": {}},
        {"user": {"attributes": {}}},
    ]
    want = [outcome(plain, "vip.txt.j2", c) for c in ctxs]
    assert [w[0] for w in want] == ["ok", "error", "ok", "error", "ok"]
    assert [outcome(memo, "vip.txt.j2", c) for c in ctxs] == want
