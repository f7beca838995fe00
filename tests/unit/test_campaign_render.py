"""The template engine: sandbox, strict undefined with file:line, locale files, filters,
skip, message assembly, RFC 8058 headers and unsubscribe tokens."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mcrm.campaigns.render import (
    Renderer,
    TemplateError,
    TemplateSkip,
    TokenError,
    content_hash,
    email_headers,
    has_visible_unsubscribe_link,
    locale_candidates,
    unsubscribe_token,
    unsubscribe_url,
    verify_unsubscribe_token,
)
from mcrm.errors import ConfigError, McrmError

NB = "\u00a0"
NNB = "\u202f"

Tree = Callable[..., Renderer]


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    """`tree({"w/body.j2": "..."})` writes files under tmp/campaigns and returns a Renderer."""

    def make(files: dict[str, str]) -> Renderer:
        root = tmp_path / "campaigns"
        root.mkdir(exist_ok=True)
        (tmp_path / "mcrm.yaml").write_text("secret: hunter2\n")
        for rel, text in files.items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")
        return Renderer(root)

    return make


CTX: dict[str, Any] = {
    "user": {"id": "u1", "first_name": "Jana"},
    "coupon": {"code": "BACK15-7QX", "value": Decimal("150"), "expires": dt.date(2025, 6, 30)},
    "stats": {"orders": 1234},
    "campaign": {"name": "winback"},
    "currency": "CZK",
    "unsubscribe_url": "https://u.example.com/u/TOKEN",
}


def _error(fn: Callable[[], object]) -> TemplateError:
    with pytest.raises(TemplateError) as e:
        fn()
    return e.value


# --- strict undefined, file:line ----------------------------------------------------------


def test_missing_attribute_names_locale_file_and_line(tree: Tree) -> None:
    r = tree(
        {
            "winback/push_body.j2": "Hi {{ user.first_name }}\n",
            "winback/push_body.cs.j2": "Ahoj\n{{ user.first_name }}\n{{ user.nickname }}\n",
        }
    )
    chosen = r.resolve("winback/push_body.j2", "cs-CZ")
    assert chosen == "winback/push_body.cs.j2"
    e = _error(lambda: r.render(chosen, CTX))
    assert e.render() == (
        "'user' has no attribute 'nickname' (campaigns/winback/push_body.cs.j2:3)"
    )
    assert e.hint is not None and "default" in e.hint
    assert isinstance(e, ConfigError)


def test_missing_top_level_variable(tree: Tree) -> None:
    r = tree({"a.j2": "line one\n\n{{ tier }}"})
    e = _error(lambda: r.render("a.j2", CTX))
    assert e.message == "'tier' is undefined"
    assert (e.where and e.where.file, e.where and e.where.line) == ("campaigns/a.j2", 3)


def test_missing_item_in_subscript_form(tree: Tree) -> None:
    r = tree({"a.j2": "{{ user['nickname'] }}"})
    assert _error(lambda: r.render("a.j2", CTX)).message == "'user' has no attribute 'nickname'"


def test_default_is_the_fallback_idiom(tree: Tree) -> None:
    r = tree({"a.j2": '{{ user.nickname | default("there") }}'})
    assert r.render("a.j2", CTX) == "there"


def test_error_inside_an_include_names_the_included_file(tree: Tree) -> None:
    r = tree({"a.j2": "top\n{% include 'parts/footer.j2' %}", "parts/footer.j2": "\n{{ nope }}"})
    e = _error(lambda: r.render("a.j2", CTX))
    assert e.where is not None and (e.where.file, e.where.line) == ("campaigns/parts/footer.j2", 2)


def test_syntax_error_has_file_and_line(tree: Tree) -> None:
    r = tree({"a.j2": "ok\n{% if user %}\nno end"})
    e = _error(lambda: r.render("a.j2", CTX))
    assert e.message.startswith("template syntax error:")
    assert e.where is not None and e.where.file == "campaigns/a.j2" and e.where.line == 3


def test_runtime_error_has_file_and_line(tree: Tree) -> None:
    r = tree({"a.j2": "x\n{{ 1 // 0 }}"})
    e = _error(lambda: r.render("a.j2", CTX))
    assert e.message.startswith("ZeroDivisionError")
    assert e.where is not None and e.where.line == 2


def test_filter_error_does_not_echo_personal_data(tree: Tree) -> None:
    r = tree({"a.j2": "{{ user.email | money }}"})
    e = _error(lambda: r.render("a.j2", {**CTX, "user": {"email": "jana@example.com"}}))
    assert "jana@" not in e.render()
    assert e.where is not None and e.where.line == 1


def test_missing_template(tree: Tree) -> None:
    r = tree({})
    e = _error(lambda: r.render("nope/x.j2", CTX))
    assert e.message == "template not found: campaigns/nope/x.j2"


# --- sandbox ---------------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os.environ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ user|attr('__class__') }}",
    "{{ '{0.__class__}'.format(user) }}",
    "{{ user.__class__.__base__ }}",
    "{{ [].append(1) }}",
    "{{ user.update({'id': 'x'}) }}",
    "{{ range(10**6) | list | length }}",
    "{{ 'a' * 100000000 }}",
    "{{ 2 ** 100000 }}",
    "{% include '/etc/passwd' %}",
    "{% include '../mcrm.yaml' %}",
    "{% include 'w/../../mcrm.yaml' %}",
    "{% extends '../mcrm.yaml' %}",
    "{% import '/etc/hosts' as h %}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_sandbox_escapes_are_refused_with_file_and_line(tree: Tree, source: str) -> None:
    r = tree({"w/evil.j2": "ok\n" + source})
    e = _error(lambda: r.render("w/evil.j2", CTX))
    assert e.where is not None and e.where.file == "campaigns/w/evil.j2"
    assert e.where.line == 2
    text = e.render()
    assert "hunter2" not in text and "root:" not in text
    assert "sandbox" in text or "not found" in text


def test_lipsum_is_not_available(tree: Tree) -> None:
    r = tree({"a.j2": "{{ lipsum.__globals__ }}"})
    assert "undefined" in _error(lambda: r.render("a.j2", CTX)).message


def test_symlink_out_of_campaigns_is_refused(tree: Tree, tmp_path: Path) -> None:
    r = tree({"a.j2": "{% include 'link.j2' %}"})
    (tmp_path / "campaigns" / "link.j2").symlink_to(tmp_path / "mcrm.yaml")
    e = _error(lambda: r.render("a.j2", CTX))
    assert "sandbox" in e.message and "hunter2" not in e.render()


def test_direct_paths_outside_are_refused(tree: Tree) -> None:
    r = tree({})
    assert r.resolve("../mcrm.yaml", "cs") == "../mcrm.yaml"
    for bad in ("../mcrm.yaml", "/etc/passwd"):
        assert "outside campaigns/" in _error(lambda b=bad: r.render(b, CTX)).message  # type: ignore[misc]


def test_user_data_is_text_never_template(tree: Tree) -> None:
    evil = "{{ 7*7 }} {% skip %} <script>alert(1)</script> &amp;"
    r = tree(
        {
            "t.txt.j2": "Hi {{ user.first_name }}",
            "e.html.j2": "<p>Hi {{ user.first_name }}</p>",
            "p.j2": "{{ user.first_name }}",
        }
    )
    ctx = {**CTX, "user": {"first_name": evil}}
    assert r.render("t.txt.j2", ctx) == f"Hi {evil}"
    assert r.render("p.j2", ctx) == evil
    html = r.render("e.html.j2", ctx)
    assert html == (
        "<p>Hi {{ 7*7 }} {% skip %} &lt;script&gt;alert(1)&lt;/script&gt; &amp;amp;</p>"
    )


def test_autoescape_only_for_html(tree: Tree) -> None:
    r = tree(
        {"a.html": "{{ x }}", "b.htm.j2": "{{ x }}", "c.j2": "{{ x }}", "d.txt.j2": "{{ x }}"}
    )
    ctx = {"x": "<b>&"}
    assert r.render("a.html", ctx) == "&lt;b&gt;&amp;"
    assert r.render("b.htm.j2", ctx) == "&lt;b&gt;&amp;"
    assert r.render("c.j2", ctx) == "<b>&"
    assert r.render("d.txt.j2", ctx) == "<b>&"


def test_inline_templates(tree: Tree) -> None:
    r = tree({})
    assert (
        r.render("shop://offers/{{ campaign.name }}", CTX, inline=True) == "shop://offers/winback"
    )
    e = _error(lambda: r.render("shop://{{ campaign.nme }}", CTX, inline=True))
    assert e.message == "'campaign' has no attribute 'nme'"
    assert e.where is not None and e.where.line == 1


def test_whitespace_control(tree: Tree) -> None:
    r = tree({"a.j2": "Hi\n{% if stats.orders %}\nloyal\n{% endif %}\nbye\n"})
    assert r.render("a.j2", CTX) == "Hi\nloyal\nbye"


# --- skip --------------------------------------------------------------------------------------


def test_skip_with_reason(tree: Tree) -> None:
    r = tree(
        {
            "a.j2": "Hi\n{% if not user.get('vip') %}{% skip 'not vip: ' ~ user.id %}{% endif %}",
            "b.j2": "{% skip %}",
            "c.j2": "x\n{% include 'a.j2' %}",
        }
    )
    with pytest.raises(TemplateSkip) as e:
        r.render("a.j2", CTX)
    assert e.value.reason == "not vip: u1"
    assert e.value.where is not None and e.value.where.file == "campaigns/a.j2"
    assert e.value.where.line == 2
    assert not isinstance(e.value, McrmError)
    assert r.render("a.j2", {**CTX, "user": {"id": "u1", "vip": True}}) == "Hi\n"
    with pytest.raises(TemplateSkip, match="skipped by the template"):
        r.render("b.j2", CTX)
    assert r.uses_skip("a.j2") and r.uses_skip("c.j2")


def test_uses_skip_false_and_in_locale_variant(tree: Tree) -> None:
    r = tree({"p.j2": "plain", "q.j2": "plain", "q.cs.j2": "{% skip 'cs only' %}"})
    assert not r.uses_skip("p.j2")
    assert r.uses_skip("q.j2")
    assert not r.uses_skip("q.j2", locales=False)


# --- locale files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("cs", ["p/body.cs.j2", "p/body.j2"]),
        ("cs-CZ", ["p/body.cs-CZ.j2", "p/body.cs.j2", "p/body.j2"]),
        ("cs_cz", ["p/body.cs-CZ.j2", "p/body.cs.j2", "p/body.j2"]),
        ("zh-Hans", ["p/body.zh-Hans.j2", "p/body.zh.j2", "p/body.j2"]),
        (
            "zh-CN",
            ["p/body.zh-CN.j2", "p/body.zh-Hans-CN.j2", "p/body.zh-Hans.j2", "p/body.zh.j2"]
            + ["p/body.j2"],
        ),
        (
            "zh-Hans-CN",
            ["p/body.zh-Hans-CN.j2", "p/body.zh-CN.j2", "p/body.zh-Hans.j2", "p/body.zh.j2"]
            + ["p/body.j2"],
        ),
        ("bg-BG", ["p/body.bg-BG.j2", "p/body.bg.j2", "p/body.j2"]),
        ("it", ["p/body.it.j2", "p/body.j2"]),
        ("ru", ["p/body.ru.j2", "p/body.j2"]),
        ("en", ["p/body.en.j2", "p/body.j2"]),
        (None, ["p/body.j2"]),
        ("", ["p/body.j2"]),
        ("../../etc", ["p/body.j2"]),
    ],
)
def test_locale_candidates(tag: str | None, expected: list[str]) -> None:
    assert locale_candidates("p/body.j2", tag) == expected


def test_locale_goes_before_content_suffix() -> None:
    assert locale_candidates("w/email.html.j2", "cs-CZ") == [
        "w/email.cs-CZ.html.j2",
        "w/email.cs.html.j2",
        "w/email.html.j2",
    ]
    assert locale_candidates("w/email.txt.j2", "cs")[0] == "w/email.cs.txt.j2"
    assert locale_candidates("w/inapp.json.j2", "cs")[0] == "w/inapp.cs.json.j2"
    assert locale_candidates("w/email.html", "it")[0] == "w/email.it.html"


def test_resolve_picks_first_existing(tree: Tree) -> None:
    files = ["body.j2", "body.cs.j2", "body.zh.j2", "body.zh-Hant.j2", "email.html.j2"]
    files += ["email.cs.html.j2", "body.bg-BG.j2"]
    r = tree({f"p/{f}": f for f in files})
    got = {
        tag: r.resolve("p/body.j2", tag)
        for tag in ["cs", "cs-CZ", "zh-Hans", "zh-CN", "zh-TW", "bg-BG", "bg", "it", "ru", None]
    }
    assert got == {
        "cs": "p/body.cs.j2",
        "cs-CZ": "p/body.cs.j2",
        "zh-Hans": "p/body.zh.j2",
        "zh-CN": "p/body.zh.j2",
        "zh-TW": "p/body.zh-Hant.j2",  # Traditional via CLDR likely subtags
        "bg-BG": "p/body.bg-BG.j2",
        "bg": "p/body.j2",
        "it": "p/body.j2",
        "ru": "p/body.j2",
        None: "p/body.j2",
    }
    assert r.resolve("p/email.html.j2", "cs-CZ") == "p/email.cs.html.j2"
    assert r.resolve("p/email.html.j2", "en") == "p/email.html.j2"
    assert r.locale_variants("p/body.j2") == [
        "p/body.j2",
        "p/body.bg-BG.j2",
        "p/body.cs.j2",
        "p/body.zh-Hant.j2",
        "p/body.zh.j2",
    ]


def test_resolve_is_case_insensitive_and_cached(tree: Tree, tmp_path: Path) -> None:
    r = tree({"p/body.j2": "base", "p/body.ZH-hans.j2": "zh"})
    assert r.resolve("p/body.j2", "zh-Hans") == "p/body.ZH-hans.j2"
    (tmp_path / "campaigns" / "p" / "body.cs.j2").write_text("cs")
    assert r.resolve("p/body.j2", "cs") == "p/body.j2"  # listing cached for the run
    assert Renderer(tmp_path / "campaigns").resolve("p/body.j2", "cs") == "p/body.cs.j2"


# --- filters in six locales ------------------------------------------------------------------

FILTER_SRC = (
    "{{ coupon.value | money }}|{{ 19.9 | money('EUR') }}|{{ stats.orders | number }}|"
    "{{ 0.15 | percent }}|{{ coupon.expires | date }}|{{ coupon.expires | date('long') }}|"
    "{{ when | datetime('short') }}"
)
WHEN = dt.datetime(2025, 6, 30, 18, 30, tzinfo=ZoneInfo("Europe/Prague"))


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        (
            "cs-CZ",
            f"150,00{NB}Kč|19,90{NB}€|1{NB}234|15{NB}%|30. 6. 2025|30. června 2025|30.06.25 18:30",
        ),
        (
            "bg-BG",
            f"150,00{NB}CZK|19,90{NB}€|1234|15%|30.06.2025{NNB}г.|30 юни 2025{NNB}г.|"
            f"30.06.25{NNB}г., 18:30",
        ),
        (
            "zh-Hans",
            "CZK\u00a0150.00|€19.90|1,234|15%|2025年6月30日|2025年6月30日|2025/6/30 18:30",
        ),
        (
            "it-IT",
            f"150,00{NB}CZK|19,90{NB}€|1.234|15%|30 giu 2025|30 giugno 2025|30/06/25, 18:30",
        ),
        (
            "ru-RU",
            f"150,00{NB}CZK|19,90{NB}€|1{NB}234|15{NB}%|30 июн. 2025{NNB}г.|"
            f"30 июня 2025{NNB}г.|30.06.2025, 18:30",
        ),
        ("en", f"CZK{NB}150.00|€19.90|1,234|15%|Jun 30, 2025|June 30, 2025|6/30/25, 6:30{NNB}PM"),
    ],
)
def test_filters_in_six_locales(tree: Tree, locale: str, expected: str) -> None:
    r = tree({"f.j2": FILTER_SRC})
    assert r.render("f.j2", {**CTX, "locale": locale, "when": WHEN}) == expected


def test_filters_without_locale_use_default_and_need_a_currency(tree: Tree) -> None:
    r = tree({"f.j2": "{{ 5 | money }}", "g.j2": "{{ 1234 | number }}"})
    assert r.render("g.j2", {}) == "1,234"
    assert r.render("g.j2", {"locale": "garbage!!"}) == "1,234"
    e = _error(lambda: r.render("f.j2", {}))
    assert "currency" in e.message and e.where is not None and e.where.line == 1


def test_memoised_filters_respect_zone_and_locale(tree: Tree) -> None:
    r = tree({"f.j2": "{{ when | datetime('short') }}"})
    a = r.render("f.j2", {"locale": "en-GB", "when": WHEN})
    b = r.render("f.j2", {"locale": "en-GB", "when": WHEN.astimezone(dt.UTC)})
    c = r.render("f.j2", {"locale": "cs", "when": WHEN})
    assert (a, b, c) == ("30/06/2025, 18:30", "30/06/2025, 16:30", "30.06.25 18:30")


# --- check / variables ---------------------------------------------------------------------


def test_check_reports_syntax_unknown_filter_and_missing_include(tree: Tree) -> None:
    r = tree(
        {
            "ok.j2": "{{ user.first_name | default('x') }}{% skip 'r' %}",
            "bad.j2": "a\n{{ user.first_name | monye }}",
            "syn.j2": "{% for x in %}",
            "inc.j2": "a\nb\n{% include 'missing.j2' %}{% include 'opt.j2' ignore missing %}",
            "deep.j2": "{% include 'syn.j2' %}",
        }
    )
    assert r.check("ok.j2") == []
    [bad] = r.check("bad.j2")
    assert "monye" in bad.message and bad.hint == "did you mean 'money'?"
    assert bad.where is not None and (bad.where.file, bad.where.line) == ("campaigns/bad.j2", 2)
    [syn] = r.check("syn.j2")
    assert syn.message.startswith("template syntax error")
    [inc] = r.check("inc.j2")
    assert inc.message == "template not found: campaigns/missing.j2"
    assert inc.where is not None and (inc.where.file, inc.where.line) == ("campaigns/inc.j2", 3)
    [deep] = r.check("deep.j2")
    assert deep.where is not None and deep.where.file == "campaigns/syn.j2"


def test_check_refuses_includes_outside(tree: Tree) -> None:
    r = tree({"a.j2": "{% include '../mcrm.yaml' %}"})
    [e] = r.check("a.j2")
    assert "outside campaigns/" in e.message


def test_variables(tree: Tree) -> None:
    r = tree(
        {
            "v.j2": (
                "{% set greeting = 'Hi' %}{{ greeting }} {{ user.first_name }} "
                "{% for p in recommendations %}{{ p.name }}{{ p.price | money('EUR') }}"
                "{% endfor %}"
                "{% include 'parts/foot.j2' %}{{ range(3) | list }}"
            ),
            "v.cs.j2": "{{ tier }}",
            "parts/foot.j2": "{{ coupon.value | money }} {{ unsubscribe_url }}",
            "plain.j2": "{{ user.id }}",
        }
    )
    assert r.variables("v.j2") == {
        "user",
        "recommendations",
        "coupon",
        "unsubscribe_url",
        "tier",
        "locale",
        "currency",
    }
    assert "tier" not in r.variables("v.j2", locales=False)
    assert r.variables("plain.j2") == {"user"}


# --- render_message ------------------------------------------------------------------------


def test_render_push_message(tree: Tree) -> None:
    r = tree(
        {
            "w/title.j2": "\n  {{ user.first_name }},\n sleva {{ coupon.value | money }}  \n",
            "w/title.cs.j2": "{{ user.first_name }}, sleva {{ coupon.value | money }}\n",
            "w/body.j2": "Line 1\nLine 2\n",
        }
    )
    parts = {
        "title": "w/title.j2",
        "body": "w/body.j2",
        "deeplink": "shop://o/{{ campaign.name }}",
    }
    m = r.render_message("push", parts, CTX, "cs-CZ")
    assert m.parts == {
        "title": f"Jana, sleva 150,00{NB}Kč",
        "body": "Line 1\nLine 2",
        "deeplink": "shop://o/winback",
    }
    assert m.files == {"title": "w/title.cs.j2", "body": "w/body.j2", "deeplink": "<inline>"}
    assert m.locale == "cs-CZ" and m.sms is None
    assert m.content_hash == content_hash("push", m.parts)
    assert len(m.content_hash) == 64
    en = r.render_message("push", parts, CTX, "en")
    assert en.parts["title"] == f"Jana, sleva CZK{NB}150.00"  # base file, folded to one line
    assert en.content_hash != m.content_hash


def test_one_line_parts_fold_line_breaks_from_data(tree: Tree) -> None:
    r = tree({"s.j2": "Hi {{ user.first_name }}", "t.txt.j2": "x"})
    ctx = {**CTX, "user": {"first_name": "Bob\r\nBcc: evil@example.com"}}
    m = r.render_message("email", {"subject": "s.j2", "text": "t.txt.j2"}, ctx, "en")
    assert m.parts["subject"] == "Hi Bob Bcc: evil@example.com"


def test_render_sms_message(tree: Tree) -> None:
    r = tree({"s.j2": "  Ahoj {{ user.first_name }}, sleva!\nSTOP  \n", "s.cs.j2": "Čau {{ x }}"})
    m = r.render_message("sms", {"body": "s.j2"}, CTX, "en")
    assert m.parts["body"] == "Ahoj Jana, sleva!\nSTOP"
    assert m.sms is not None and (m.sms.encoding, m.sms.segments) == ("GSM-7", 1)
    c = r.render_message("sms", {"body": "s.j2"}, {**CTX, "x": "Jano"}, "cs")
    assert c.sms is not None and c.sms.encoding == "UCS-2" and c.sms.ucs2_chars == ("Č",)


def test_render_inapp_json(tree: Tree) -> None:
    r = tree(
        {
            "i.json.j2": '{"title": "Hi {{ user.first_name }}", "items": {{ items | tojson }}}',
            "bad.json.j2": '{"title": {{ user.first_name }}}',
        }
    )
    ctx = {**CTX, "user": {"first_name": 'Bob", "url": "evil'}, "items": [1, "a<b"]}
    m = r.render_message("inapp", {"body": "i.json.j2"}, ctx, "en")
    assert m.payload == {"title": 'Hi Bob", "url": "evil', "items": [1, "a<b"]}
    assert json.loads(m.parts["body"]) == m.payload
    e = _error(lambda: r.render_message("inapp", {"body": "bad.json.j2"}, CTX, "en"))
    assert "not valid JSON" in e.message
    assert e.where is not None and e.where.file == "campaigns/bad.json.j2"
    assert "Jana" not in e.render()


def test_render_email_message(tree: Tree) -> None:
    r = tree(
        {
            "e/subject.j2": "Sleva {{ 0.15 | percent }}",
            "e/email.html.j2": '<p>Hi</p><a href="{{ unsubscribe_url }}">x</a>',
            "e/email.cs.html.j2": '<p>Ahoj</p><a href="{{ unsubscribe_url }}">Odhlásit</a>',
            "e/email.txt.j2": "Hi\n\nUnsubscribe: {{ unsubscribe_url }}\n",
        }
    )
    parts = {"subject": "e/subject.j2", "html": "e/email.html.j2", "text": "e/email.txt.j2"}
    m = r.render_message("email", parts, CTX, "cs")
    assert m.files["html"] == "e/email.cs.html.j2"
    assert m.parts["subject"] == f"Sleva 15{NB}%"
    assert has_visible_unsubscribe_link(m.parts["html"], CTX["unsubscribe_url"])


def test_skip_propagates_from_render_message(tree: Tree) -> None:
    r = tree({"b.j2": "{% skip 'no stock' %}"})
    with pytest.raises(TemplateSkip, match="no stock"):
        r.render_message("push", {"body": "b.j2"}, CTX, "en")


# --- email headers and unsubscribe ---------------------------------------------------------


def test_email_headers_rfc8058() -> None:
    url = "https://u.example.com/u/abc.def"
    assert email_headers(unsubscribe_url=url) == {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    h = email_headers(
        unsubscribe_url=url,
        mailto="unsub+abc@example.com",
        list_id="Winback <winback.example.com>",
    )
    assert h["List-Unsubscribe"] == f"<{url}>, <mailto:unsub+abc@example.com>"
    assert h["List-Id"] == "Winback <winback.example.com>"
    assert email_headers(unsubscribe_url=url, list_id="w.example.com")["List-Id"] == (
        "<w.example.com>"
    )
    assert email_headers(unsubscribe_url="", marketing=False) == {}
    with pytest.raises(ConfigError, match="https"):
        email_headers(unsubscribe_url="http://u.example.com/u/x")
    with pytest.raises(ConfigError, match="line break"):
        email_headers(unsubscribe_url=url + "\r\nBcc: x")


@pytest.mark.parametrize(
    ("html", "visible"),
    [
        ('<a href="URL">Unsubscribe</a>', True),
        ('<a href=" URL ">  <b>Odhlásit</b></a>', True),
        ('<a href="URL"><img src="x.png" alt="Unsubscribe"></a>', True),
        ("<p>Unsubscribe at URL</p>", True),
        ('<a href="URL"></a>', False),
        ('<a href="URL" style="display: none">Unsubscribe</a>', False),
        ('<div hidden><a href="URL">Unsubscribe</a></div>', True),  # only the link itself
        ('<a href="https://other.example.com">Unsubscribe</a>', False),
        ("", False),
    ],
)
def test_visible_unsubscribe_link(html: str, visible: bool) -> None:
    url = "https://u.example.com/u/T0k&en"
    html = html.replace("URL", url.replace("&", "&amp;"))
    assert has_visible_unsubscribe_link(html, url) is visible


ISSUED = dt.datetime(2025, 6, 1, 12, 0, 5, tzinfo=ZoneInfo("Europe/Prague"))
SECRET = b"workspace-secret"


def test_token_round_trip() -> None:
    token = unsubscribe_token(SECRET, "u-42", "winback_dormant", ISSUED)
    assert all(c.isalnum() or c in "-_." for c in token)
    assert verify_unsubscribe_token(SECRET, token) == (
        "u-42",
        "winback_dormant",
        dt.datetime(2025, 6, 1, 10, 0, 5, tzinfo=dt.UTC),
    )
    assert unsubscribe_token(SECRET, "u-42", "winback_dormant", ISSUED) == token  # deterministic
    assert verify_unsubscribe_token(SECRET, unsubscribe_token(SECRET, 7, "č", ISSUED))[:2] == (
        "7",
        "č",
    )
    url = unsubscribe_url("https://u.example.com/u/{token}", token)
    assert url == f"https://u.example.com/u/{token}"
    assert unsubscribe_url("unsub+{token}@example.com", "t") == "unsub+t@example.com"
    with pytest.raises(ConfigError):
        unsubscribe_url("https://u.example.com/u/", token)


def test_token_tamper_detection() -> None:
    import base64

    token = unsubscribe_token(SECRET, "u-42", "winback", ISSUED)
    payload, mac = token.split(".")
    forged_payload = (
        base64.urlsafe_b64encode(b"1\x1fu-43\x1fwinback\x1f1748772005").rstrip(b"=").decode()
    )
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in [
        f"{forged_payload}.{mac}",
        flipped,
        token + "x",
        token.replace(".", ""),
        "",
        "a.b.c",
        "!!!.???",
    ]:
        with pytest.raises(TokenError):
            verify_unsubscribe_token(SECRET, bad)
    with pytest.raises(TokenError, match="signature"):
        verify_unsubscribe_token(b"other-secret", token)
    with pytest.raises(ValueError):
        unsubscribe_token(SECRET, "u", "c", ISSUED.replace(tzinfo=None))
    with pytest.raises(ValueError):
        unsubscribe_token(SECRET, "u\x1f1", "c", ISSUED)
