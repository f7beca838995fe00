"""`mcrm campaigns preview`, the rendering `campaigns plan` does, and `validate`'s specimen.

Preview shows a message exactly as it would be sent and stores nothing: the chosen user in any
status (with the status beside it), a stable sample, another locale / channel / variant on
request, the RFC 8058 headers of marketing e-mail, user data as inert text. The plan renders
every planned message with the same code, so its `message_hash` is the preview's content
hash; a template's `{% skip %}` becomes the `template_skip` suppression, and a template error
stops the plan with file:line and the user, storing nothing. Sandbox escapes are refused and
never leak a file or the environment."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mcrm.campaigns.engine import load
from mcrm.campaigns.plan import variant_for
from mcrm.campaigns.render import content_hash
from mcrm.db import open_db
from mcrm.segments.compile import bucket_of
from tests.conftest import WS, Cli, CliResult, Query, WorkspaceFactory
from tests.segdata import md5_hex

AS_OF = "2026-03-02T06:00:00Z"
AS_OF_DT = dt.datetime(2026, 3, 2, 6, 0)
MARKER = "PREVIEW-CONFIG-MARKER-5f1c"
ENV_MARKER = "env-value-never-shown-93ab"
SECRET = "preview-secret-do-not-print"


def config(price: str | None = '"0.075"') -> str:
    return f"""\
# {MARKER}
timezone: Europe/Prague
base_currency: EUR
delivery:
{f"  sms_price_per_segment: {price}" if price else ""}
  unsubscribe:
    url: "https://u.example.com/u/{{token}}"
    mailto: "unsub@example.com"
    secret: "{SECRET}"
"""


SEGMENTS = """\
segments:
  everyone: {where: {attr: user_id, exists: true}}
  czech: {where: {attr: locale, eq: cs-CZ}}
"""
CAMPAIGN = """\
description: Spring promo
segment: everyone
channels: [email, sms]
schedule: {cron: "0 10 * * *", timezone: user}
holdout: 20%
coupon: {prefix: PROMO}
variants:
  alpha: {weight: 50}
  beta: {weight: 50, templates: {email: {subject: p/subject_b.j2}}}
templates:
  email: {subject: p/subject.j2, html: p/email.html.j2, text: p/email.txt.j2}
  sms: {body: p/sms.j2}
"""
TEMPLATES = {
    "campaigns/p/subject.j2": "Hi {{ user.first_name | default('there') }}",
    "campaigns/p/subject.cs.j2": "Ahoj {{ user.first_name | default('') }}",
    "campaigns/p/subject_b.j2": "B for {{ user.first_name | default('you') }}",
    "campaigns/p/email.html.j2": (
        "<p>Hello {{ user.first_name | default('there') }}</p>\n"
        "<p>{{ user.attributes.note | default('') }}</p>\n"
        "<p>You spent {{ stats.spend | money }}. Code {{ coupon.code }}</p>\n"
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>\n'
    ),
    "campaigns/p/email.txt.j2": (
        "Hello {{ user.first_name | default('there') }}\n"
        "{{ user.attributes.note | default('') }}\n"
        "You spent {{ stats.spend | money }}. Code {{ coupon.code }}\n"
        "Unsubscribe: {{ unsubscribe_url }}\n"
        "Sent {{ now | datetime('short') }}\n"
    ),
    "campaigns/p/email.cs.txt.j2": (
        "Dobrý den {{ user.first_name | default('') }}\n"
        "Utratili jste {{ stats.spend | money }}. Kód {{ coupon.code }}\n"
        "Odhlásit: {{ unsubscribe_url }}\n"
    ),
    "campaigns/p/sms.j2": (
        "{{ user.first_name | default('Hi') }}: code {{ coupon.code }} "
        "({{ now | date('short') }}). STOP"
    ),
}
TRICKY_NAME = "<script>alert(1)</script>{{ 7*7 }}"
TRICKY_NOTE = "{{ 7*7 }}<b>bold</b>{% skip %}"


def people() -> list[dict[str, Any]]:
    """u00..u23 (e-mail consent for most, SMS for the others), `tricky`, `nocons`."""
    out: list[dict[str, Any]] = []
    for i in range(24):
        out.append(
            {
                "user_id": f"u{i:02d}",
                "email": f"person{i}@example.com",
                "phone": f"+4206010{i:05d}",
                "first_name": ["Jana", "Oliver", None][i % 3],
                "locale": ["cs-CZ", "en-GB", None, "en"][i % 4],
                "timezone": ["Europe/Prague", "Asia/Shanghai"][i % 2],
                "attributes": json.dumps({"skip": i % 5 == 0}),
                "consent": "email" if i % 3 else "sms",
            }
        )
    out.append(
        {
            "user_id": "tricky",
            "email": "tricky@example.com",
            "phone": "+420601999999",
            "first_name": TRICKY_NAME,
            "locale": "en",
            "timezone": "Europe/Prague",
            "attributes": json.dumps({"note": TRICKY_NOTE}),
            "consent": "email",
        }
    )
    out.append(
        {
            "user_id": "nocons",
            "email": "nocons@example.com",
            "phone": None,
            "first_name": "Nora",
            "locale": "en",
            "timezone": "Europe/Prague",
            "attributes": None,
            "consent": None,
        }
    )
    return out


def fill(w: WS) -> list[dict[str, Any]]:
    ps = people()
    with open_db(w.ws, write=True) as con:
        for p in ps:
            con.execute(
                "INSERT INTO users (user_id, email, phone, first_name, locale, timezone, "
                "attributes, first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    p["user_id"],
                    p["email"],
                    p["phone"],
                    p["first_name"],
                    p["locale"],
                    p["timezone"],
                    p["attributes"],
                    AS_OF_DT - dt.timedelta(days=30),
                ],
            )
            if p["consent"]:
                con.execute(
                    "INSERT INTO consents (user_id, channel, purpose, granted, ts) "
                    "VALUES (?, ?, 'marketing', TRUE, ?)",
                    [p["user_id"], p["consent"], AS_OF_DT - dt.timedelta(days=3)],
                )
        con.execute(
            "INSERT INTO purchases (order_id, user_id, ts, amount, currency, amount_base, "
            "status) VALUES ('o1', 'u01', ?, 1234.5, 'EUR', 1234.5, 'paid')",
            [AS_OF_DT - dt.timedelta(days=9)],
        )
    return ps


def build(
    workspace: WorkspaceFactory,
    templates: dict[str, str] | None = None,
    price: str | None = '"0.075"',
    campaign: str = CAMPAIGN,
) -> tuple[WS, list[dict[str, Any]]]:
    files = {
        "segments.yaml": SEGMENTS,
        "campaigns/promo.yaml": campaign,
        **TEMPLATES,
        **(templates or {}),
    }
    w = workspace(config(price), files)
    return w, fill(w)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[WS, list[dict[str, Any]]]:
    """One workspace for the read-only preview checks (preview stores nothing)."""
    root = tmp_path_factory.mktemp("preview")

    def factory(cfg: str, files: dict[str, str]) -> WS:
        (root / "mcrm.yaml").write_text(cfg, encoding="utf-8")
        w = WS(root)
        for name, text in files.items():
            w.write(name, text)
        return w

    return build(factory)


def planned_ids(ps: list[dict[str, Any]]) -> set[str]:
    """Who the plan sends to, by the policy (consent + address, not in the 20% holdout)."""
    return {
        p["user_id"] for p in ps if p["consent"] and bucket_of(p["user_id"], "holdout:promo") >= 20
    }


def preview(cli: Cli, w: WS, *args: str, env: dict[str, str] | None = None) -> CliResult:
    return cli(w, "campaigns", "preview", "promo", "--as-of", AS_OF, *args, env=env)


def rows(r: CliResult) -> list[dict[str, Any]]:
    assert r.exit_code == 0, r.stderr
    got = r.json()
    assert isinstance(got, list)
    return got


# --- who is shown --------------------------------------------------------------------------------


def test_user_is_rendered_as_sent_with_the_rfc8058_headers(
    shared: tuple[WS, list[dict[str, Any]]], cli: Cli
) -> None:
    w, ps = shared
    uid = next(u for u in sorted(planned_ids(ps)) if u.startswith("u") and int(u[1:]) % 3 == 1)
    want_variant = variant_for(load(w.ws, "promo")[0], uid)
    r = preview(cli, w, "--user", uid)
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert out.startswith(f"── {uid} · email · variant {want_variant} · locale ")
    assert f"{uid} will receive it by email" in out
    subject = "Hi Oliver" if want_variant == "alpha" else "B for Oliver"
    assert f"Subject: {subject}\n" in out
    assert "List-Unsubscribe: <https://u.example.com/u/" in out
    assert ">, <mailto:unsub@example.com>\n" in out
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click\n" in out
    assert "--- text ---" in out and "--- html ---" in out
    # the address is masked without --show-pii, in the to: line and in the message
    assert f"person{int(uid[1:])}@example.com" not in out
    assert "to: " in out
    # nothing was stored
    with open_db(w.ws) as con:
        assert con.execute("SELECT count(*) FROM plan_rows").fetchall()[0][0] == 0
        assert con.execute("SELECT count(*) FROM coupon_assignments").fetchall()[0][0] == 0


def test_suppressed_and_held_out_users_are_rendered_with_their_status(
    shared: tuple[WS, list[dict[str, Any]]], cli: Cli
) -> None:
    w, ps = shared
    held = next(
        p["user_id"]
        for p in ps
        if p["consent"] == "email" and bucket_of(p["user_id"], "holdout:promo") < 20
    )
    (row,) = rows(preview(cli, w, "--user", "nocons", "--format", "json"))
    assert (row["status"], row["reason"]) == ("suppressed", "no_consent")
    assert row["parts"]["subject"] == "Hi Nora"
    assert row["channel"] == "email"  # the campaign's first channel
    text = preview(cli, w, "--user", "nocons").stdout
    assert "nocons has not consented to email marketing messages" in text
    assert "Subject: Hi Nora" in text
    (row,) = rows(preview(cli, w, "--user", held, "--format", "json"))
    assert (row["status"], row["reason"]) == ("holdout", "holdout")
    assert row["parts"]["subject"]
    assert "holdout group" in preview(cli, w, "--user", held).stdout


def test_a_user_outside_the_audience_is_rendered_with_a_note(
    shared: tuple[WS, list[dict[str, Any]]], cli: Cli
) -> None:
    w, _ = shared  # u01 is en-GB, so not in the `czech` segment
    w.write("campaigns/czech.yaml", CAMPAIGN.replace("segment: everyone", "segment: czech"))
    r = cli(w, "campaigns", "preview", "czech", "--as-of", AS_OF, "--user", "u01", "-f", "json")
    (row,) = rows(r)
    assert row["status"] == "not_in_audience"
    assert row["channel"] == "email" and row["parts"]["subject"]
    text = cli(w, "campaigns", "preview", "czech", "--as-of", AS_OF, "--user", "u01").stdout
    assert "u01 is not in the audience; rendered as if they were" in text


def test_an_unknown_user_is_not_found(shared: tuple[WS, list[dict[str, Any]]], cli: Cli) -> None:
    w, _ = shared
    r = preview(cli, w, "--user", "nobody")
    assert r.exit_code == 3
    assert "nobody" in r.stderr


def test_sample_is_stable_and_has_n_planned_users(
    shared: tuple[WS, list[dict[str, Any]]], cli: Cli
) -> None:
    w, ps = shared
    first = rows(preview(cli, w, "--sample", "3", "--format", "json"))
    again = rows(preview(cli, w, "--sample", "3", "--format", "json"))
    assert first == again
    assert len(first) == 3
    planned = planned_ids(ps)
    assert [r["user_id"] for r in first] == sorted(planned, key=md5_hex)[:3]
    assert all(r["status"] == "planned" for r in first)
    five = rows(preview(cli, w, "--sample", "5", "--format", "json"))
    assert len({r["user_id"] for r in five}) == 5
    assert [r["user_id"] for r in five][:3] == [r["user_id"] for r in first]
    default = rows(preview(cli, w, "--format", "json"))
    assert [r["user_id"] for r in default] == [r["user_id"] for r in first]


def test_sample_with_a_locale_prefers_users_of_that_language(
    shared: tuple[WS, list[dict[str, Any]]], cli: Cli
) -> None:
    w, ps = shared
    czech = {p["user_id"] for p in ps if (p["locale"] or "").startswith("cs")}
    got = rows(preview(cli, w, "--sample", "3", "--locale", "cs", "--format", "json"))
    assert len(got) == 3
    assert {r["user_id"] for r in got} <= czech & planned_ids(ps)
    assert all(r["locale"] == "cs" for r in got)


def test_user_and_sample_together_is_a_usage_error(
    shared: tuple[WS, list[dict[str, Any]]], cli: Cli
) -> None:
    w, _ = shared
    r = preview(cli, w, "--user", "u01", "--sample", "2")
    assert r.exit_code == 2
    assert "--user or --sample, not both" in r.stderr
    assert r.stdout == ""
    r = preview(cli, w, "--sample", "0")
    assert r.exit_code == 2


# --- channel, variant, locale --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "hint"),
    [("--channel", "smss", "did you mean 'sms'"), ("--variant", "alpah", "did you mean 'alpha'")],
)
def test_unknown_channel_or_variant_is_a_usage_error_with_did_you_mean(
    shared: tuple[WS, list[dict[str, Any]]], cli: Cli, flag: str, value: str, hint: str
) -> None:
    w, _ = shared
    r = preview(cli, w, "--user", "u01", flag, value)
    assert r.exit_code == 2
    assert f"'{value}' is not one of this campaign's" in r.stderr
    assert hint in r.stderr
    assert r.stdout == ""


def test_channel_and_variant_are_rendered_as_asked(
    shared: tuple[WS, list[dict[str, Any]]], cli: Cli
) -> None:
    w, _ = shared
    (row,) = rows(
        preview(cli, w, "--user", "u01", "--channel", "sms", "--variant", "beta", "-f", "json")
    )
    assert (row["channel"], row["variant"]) == ("sms", "beta")
    assert row["parts"]["body"].startswith("Oliver: code PROMO-")
    assert row["sms_segments"] == 1 and row["sms_encoding"] == "GSM-7"
    assert row["headers"] is None
    (row,) = rows(preview(cli, w, "--user", "u01", "--variant", "beta", "-f", "json"))
    assert row["parts"]["subject"] == "B for Oliver"
    (row,) = rows(preview(cli, w, "--user", "u01", "--variant", "alpha", "-f", "json"))
    assert row["parts"]["subject"] == "Hi Oliver"
    text = preview(cli, w, "--user", "u01", "--channel", "sms").stdout
    assert "1 segment(s), GSM-7" in text and "cost 0.075" in text


def test_locale_picks_the_locale_file_and_its_formatting(
    shared: tuple[WS, list[dict[str, Any]]], cli: Cli
) -> None:
    w, _ = shared  # u01 is en-GB and spent 1234.50 EUR
    (en,) = rows(preview(cli, w, "--user", "u01", "--show-pii", "-f", "json"))
    (cs,) = rows(preview(cli, w, "--user", "u01", "--show-pii", "--locale", "cs", "-f", "json"))
    assert en["files"]["text"] == "p/email.txt.j2"
    assert "You spent €1,234.50." in en["parts"]["text"]
    assert cs["locale"] == "cs"
    assert cs["files"]["subject"] == "p/subject.cs.j2"
    assert cs["files"]["text"] == "p/email.cs.txt.j2"
    assert cs["files"]["html"] == "p/email.html.j2"  # no Czech HTML: the default file
    assert cs["parts"]["subject"] == "Ahoj Oliver"
    assert "Utratili jste 1\u00a0234,50\u00a0€." in cs["parts"]["text"]
    assert "1\u00a0234,50\u00a0€" in cs["parts"]["html"]  # formatting follows the locale
    r = preview(cli, w, "--user", "u01", "--locale", "not a tag!")
    assert r.exit_code == 2


# --- machine formats -----------------------------------------------------------------------------


def test_json_rows_carry_parts_files_headers_and_hash(
    shared: tuple[WS, list[dict[str, Any]]], cli: Cli
) -> None:
    w, _ = shared
    got = rows(preview(cli, w, "--sample", "4", "--show-pii", "--format", "json"))
    assert len(got) == 4
    for row in got:
        assert {"parts", "files", "headers", "content_hash", "sms_segments"} <= set(row)
        assert isinstance(row["parts"], dict) and isinstance(row["files"], dict)
        assert set(row["files"]) == set(row["parts"])
        assert row["content_hash"] == content_hash(row["channel"], row["parts"])
        if row["channel"] == "email":
            assert set(row["parts"]) == {"subject", "html", "text"}
            assert row["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert row["headers"]["List-Unsubscribe"].startswith("<https://u.example.com/u/")
            assert row["to"].endswith("@example.com")
        else:
            assert set(row["parts"]) == {"body"} and row["sms_segments"] >= 1


def test_masked_parts_keep_the_real_messages_hash(
    shared: tuple[WS, list[dict[str, Any]]], cli: Cli
) -> None:
    w, _ = shared
    (masked,) = rows(preview(cli, w, "--user", "u01", "-f", "json"))
    (plain,) = rows(preview(cli, w, "--user", "u01", "--show-pii", "-f", "json"))
    assert masked["content_hash"] == plain["content_hash"]
    assert masked["to"] != plain["to"] == "person1@example.com"


def test_transactional_email_has_no_unsubscribe_headers(
    workspace: WorkspaceFactory, cli: Cli
) -> None:
    w, _ = build(workspace, campaign=CAMPAIGN + "purpose: transactional\n")
    (row,) = rows(preview(cli, w, "--user", "u01", "-f", "json"))
    assert row["channel"] == "email" and row["parts"]["subject"]
    assert row["headers"] is None
    assert "List-Unsubscribe" not in preview(cli, w, "--user", "u01").stdout


# --- user data is text ---------------------------------------------------------------------------


def test_markup_and_template_syntax_in_user_data_is_inert_text(
    shared: tuple[WS, list[dict[str, Any]]], cli: Cli
) -> None:
    w, _ = shared
    (row,) = rows(
        preview(cli, w, "--user", "tricky", "--show-pii", "--variant", "alpha", "-f", "json")
    )
    parts = row["parts"]
    assert parts["subject"] == f"Hi {TRICKY_NAME}"  # plain text parts: as written
    assert TRICKY_NAME in parts["text"] and TRICKY_NOTE in parts["text"]
    html = parts["html"]
    assert "<script>" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;{{ 7*7 }}" in html
    assert "{{ 7*7 }}&lt;b&gt;bold&lt;/b&gt;{% skip %}" in html
    # never evaluated, whole lines as expected
    assert parts["text"].splitlines()[:2] == [f"Hello {TRICKY_NAME}", TRICKY_NOTE]
    assert html.splitlines()[0] == "<p>Hello &lt;script&gt;alert(1)&lt;/script&gt;{{ 7*7 }}</p>"
    assert row["skip"] is None


# --- template errors and the sandbox -------------------------------------------------------------


def test_a_missing_variable_fails_with_file_and_line(
    workspace: WorkspaceFactory, cli: Cli
) -> None:
    w, _ = build(workspace, {"campaigns/p/sms.j2": "Hi\n{{ user.nickname }}\n"})
    r = preview(cli, w, "--user", "u00", "--channel", "sms")
    assert r.exit_code != 0
    assert "campaigns/p/sms.j2:2" in r.stderr
    assert "'user' has no attribute 'nickname'" in r.stderr
    assert "u00" in r.stderr
    assert r.stdout == ""
    r = cli(w, "campaigns", "validate")
    assert r.exit_code == 1
    assert "campaigns/p/sms.j2:2" in r.stderr


@pytest.mark.parametrize(
    "attack",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os.environ }}",
        "{% include '../mcrm.yaml' %}",
        "{% include '/etc/passwd' %}",
    ],
)
def test_sandbox_escapes_are_refused_and_leak_nothing(
    workspace: WorkspaceFactory, cli: Cli, attack: str
) -> None:
    w, _ = build(workspace, {"campaigns/p/email.txt.j2": f"Hello\n{attack}\n"})
    env = {"SOME_SECRET_VAR": ENV_MARKER}
    results = [
        cli(w, "campaigns", "validate", env=env),
        preview(cli, w, "--user", "u01", "--show-pii", env=env),
    ]
    for r in results:
        assert r.exit_code in (1, 2), r
        assert "campaigns/p/email.txt.j2:2" in r.stderr
        assert "refused by the template sandbox" in r.stderr or "not found" in r.stderr
        out = r.stdout + r.stderr
        for leak in (MARKER, ENV_MARKER, SECRET, "root:x:0", "__globals__'", "<class"):
            assert leak not in out, (leak, out)


def test_plan_stops_at_a_sandbox_escape(
    workspace: WorkspaceFactory, cli: Cli, query: Query
) -> None:
    w, _ = build(workspace, {"campaigns/p/sms.j2": "{% include '../mcrm.yaml' %}"})
    r = cli(w, "campaigns", "plan", "promo", "--as-of", AS_OF)
    assert r.exit_code != 0
    assert "refused by the template sandbox" in r.stderr
    assert MARKER not in r.stdout + r.stderr
    assert query(w, "SELECT count(*) FROM plan_rows")[0][0] == 0


# --- validate renders a specimen -----------------------------------------------------------------


def test_validate_renders_locale_only_files_with_a_specimen(
    workspace: WorkspaceFactory, cli: Cli
) -> None:
    w, _ = build(
        workspace,
        {"campaigns/p/sms.zh.j2": "{{ user.first_name | default('您好') }}\n{{ user.nickname }}"},
    )
    r = cli(w, "campaigns", "validate")
    assert r.exit_code == 1
    (err,) = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert "campaigns/p/sms.zh.j2:2" in err
    assert "'user' has no attribute 'nickname'" in err
    assert "zh" in err


def test_validate_accepts_any_user_attribute(workspace: WorkspaceFactory, cli: Cli) -> None:
    w, _ = build(
        workspace,
        {"campaigns/p/sms.j2": "{{ user.attributes.anything }} {{ user.attributes['x-y'] }}"},
    )
    r = cli(w, "campaigns", "validate")
    assert r.exit_code == 0, r.stderr
    assert "1 campaign(s) valid" in r.stderr


def test_validate_fails_a_coupon_in_a_campaign_without_one(
    workspace: WorkspaceFactory, cli: Cli
) -> None:
    w, _ = build(workspace, campaign=CAMPAIGN.replace("coupon: {prefix: PROMO}\n", ""))
    r = cli(w, "campaigns", "validate")
    assert r.exit_code == 1
    assert any(
        "coupon" in e and "campaigns/p/email.html.j2:3" in e
        for e in r.stderr.splitlines()
        if e.startswith("error:")
    ), r.stderr


def test_validate_fails_an_unknown_top_level_name(workspace: WorkspaceFactory, cli: Cli) -> None:
    w, _ = build(workspace, {"campaigns/p/subject.cs.j2": "Ahoj\n\n{{ usr.first_name }}"})
    r = cli(w, "campaigns", "validate")
    assert r.exit_code == 1
    assert "campaigns/p/subject.cs.j2:3" in r.stderr


# --- the plan renders every planned message ------------------------------------------------------


def plan_table(w: WS) -> dict[str, dict[str, Any]]:
    with open_db(w.ws) as con:
        cur = con.execute("SELECT * FROM plan_rows")
        cols = [d[0] for d in cur.description]
        return {r[cols.index("user_id")]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}


def test_plan_message_hash_is_the_previews_content_hash(
    workspace: WorkspaceFactory, cli: Cli
) -> None:
    w, ps = build(workspace)
    r = cli(w, "campaigns", "plan", "promo", "--as-of", AS_OF, "--format", "json")
    assert r.exit_code == 0, r.stderr
    plan = plan_table(w)
    planned = {u for u, row in plan.items() if row["status"] == "planned"}
    assert planned == planned_ids(ps)
    every = rows(preview(cli, w, "--sample", "1000", "--show-pii", "-f", "json"))
    pre_by_user = {p["user_id"]: p for p in every}
    assert set(pre_by_user) == set(plan)
    sms_rows = 0
    for uid, row in plan.items():
        if row["status"] != "planned":
            assert row["message_hash"] is None and row["sms_segments"] is None
            continue
        pre = pre_by_user[uid]
        assert (pre["channel"], pre["variant"]) == (row["channel"], row["variant"])
        assert row["message_hash"] == pre["content_hash"], uid
        assert row["message_hash"] == content_hash(row["channel"], pre["parts"])
        if row["channel"] == "sms":
            assert row["sms_segments"] == pre["sms_segments"] >= 1
            sms_rows += 1
        else:
            assert row["sms_segments"] is None
    # and one user on their own (`--user`) renders the same message
    uid = sorted(planned)[0]
    (one,) = rows(preview(cli, w, "--user", uid, "--show-pii", "-f", "json"))
    assert one["content_hash"] == plan[uid]["message_hash"]
    assert sms_rows >= 3
    # the plan file carries the same
    (plan_file,) = (w.root / ".mcrm" / "plans" / "promo").glob("*.jsonl")
    lines = [json.loads(x) for x in plan_file.read_text().splitlines()]
    assert {x["user_id"]: x["message_hash"] for x in lines} == {
        u: row["message_hash"] for u, row in plan.items()
    }


def test_summary_counts_sms_segments_and_their_cost(workspace: WorkspaceFactory, cli: Cli) -> None:
    long_ucs2 = "Ahoj {{ user.first_name | default('') }} ž " + "x" * 80  # UCS-2, 2 parts
    w, _ = build(workspace, {"campaigns/p/sms.j2": long_ucs2})
    r = cli(w, "campaigns", "plan", "promo", "--as-of", AS_OF, "--format", "json")
    assert r.exit_code == 0, r.stderr
    summary = {row["measure"]: row for row in r.json()}
    plan = plan_table(w)
    sms = [row for row in plan.values() if row["status"] == "planned" and row["channel"] == "sms"]
    assert len(sms) >= 2 and all(row["sms_segments"] == 2 for row in sms)
    assert summary["sms_segments"]["value"] == 2 * len(sms)
    assert summary["sms_segments"]["users"] == len(sms)
    cost = Decimal(2 * len(sms)) * Decimal("0.075")
    assert summary["sms_cost"]["value"] == f"{cost:.2f} at 0.075 per segment"
    assert summary["sms_cost"]["users"] == len(sms)
    # without a price there is no cost line, but still the segment count
    w2, _ = build(workspace, price=None)
    r = cli(w2, "campaigns", "plan", "promo", "--as-of", AS_OF, "--format", "json")
    assert r.exit_code == 0, r.stderr
    measures = {row["measure"] for row in r.json()}
    assert "sms_segments" in measures and "sms_cost" not in measures


SKIPPING = (
    "{% if user.attributes.skip | default(false) %}{% skip 'asked for no promos' %}{% endif %}"
)


def test_template_skip_suppresses_and_releases_the_coupon(
    workspace: WorkspaceFactory, cli: Cli, query: Query
) -> None:
    w, ps = build(
        workspace,
        {
            "campaigns/p/subject.j2": SKIPPING + "Hi {{ user.first_name | default('there') }}",
            "campaigns/p/subject_b.j2": SKIPPING + "B",
            "campaigns/p/sms.j2": SKIPPING + "Code {{ coupon.code }}",
        },
    )
    r = cli(w, "campaigns", "plan", "promo", "--as-of", AS_OF)
    assert r.exit_code == 0, r.stderr
    plan = plan_table(w)
    skippers = {p["user_id"] for p in ps if json.loads(p["attributes"] or "{}").get("skip")}
    would_get = planned_ids(ps)
    assert skippers & would_get and would_get - skippers
    codes: dict[str, str] = dict(query(w, "SELECT user_id, code FROM coupon_assignments"))
    by_id = {p["user_id"]: p for p in ps}
    for uid in would_get:
        row = plan[uid]
        if uid in skippers:
            assert row["status"] == "suppressed"
            assert row["reason"] == "template_skip"
            assert row["detail"] == "asked for no promos"
            assert row["idempotency_key"] is None and row["message_hash"] is None
            # still assigned (intent to treat): the variant and the planned send time stay,
            # the next 10:00 at or after as-of in the user's own zone
            assert row["variant"] == variant_for(load(w.ws, "promo")[0], uid)
            zone = ZoneInfo(by_id[uid]["timezone"] or "UTC")
            local = AS_OF_DT.replace(tzinfo=dt.UTC).astimezone(zone)
            ten = local.replace(hour=10, minute=0)
            ten += dt.timedelta(days=1) if ten < local else dt.timedelta(0)
            assert row["send_at"] == ten.astimezone(dt.UTC).replace(tzinfo=None)
            assert uid not in codes  # the coupon this plan assigned is released
        else:
            assert row["status"] == "planned" and row["idempotency_key"]
            assert row["message_hash"] and codes[uid].startswith("PROMO-")
    assert set(codes) == would_get - skippers
    # preview says the same, without storing anything
    uid = sorted(skippers & would_get)[0]
    (pre,) = rows(preview(cli, w, "--user", uid, "-f", "json"))
    assert pre["skip"] == "asked for no promos" and pre["parts"] is None
    assert "not sent: the template skips this user (asked for no promos)" in (
        preview(cli, w, "--user", uid).stdout
    )
    r = cli(w, "campaigns", "why", "promo", uid, "--as-of", AS_OF)
    assert r.exit_code == 0


@pytest.mark.parametrize(
    ("template", "failing"),
    [
        ("Hi\n{{ user.nickname }}", None),  # every user
        ("Hi\n{{ user.first_name }}", "first_name"),  # only users without a first name
    ],
)
def test_a_template_error_stops_the_plan_and_stores_nothing(
    workspace: WorkspaceFactory,
    cli: Cli,
    query: Query,
    template: str,
    failing: str | None,
) -> None:
    w, ps = build(workspace, {"campaigns/p/email.txt.j2": template})
    r = cli(w, "campaigns", "plan", "promo", "--as-of", AS_OF)
    assert r.exit_code != 0
    assert "campaigns/p/email.txt.j2:2" in r.stderr
    email_planned = sorted(
        p["user_id"]
        for p in ps
        if p["user_id"] in planned_ids(ps)
        and p["consent"] == "email"
        and not (p["locale"] or "").startswith("cs")  # they get email.cs.txt.j2
        and (failing is None or p[failing] is None)
    )
    assert email_planned
    assert f"user {email_planned[0]}" in r.stderr  # the first failing user, by id
    if len(email_planned) > 1:
        assert f"{len(email_planned) - 1} more user(s) fail too" in r.stderr
    for table in ("campaign_plans", "plan_rows", "coupon_assignments"):
        assert query(w, f"SELECT count(*) FROM {table}")[0][0] == 0, table
    plans = w.root / ".mcrm" / "plans"
    assert not plans.exists() or not list(plans.rglob("*.jsonl"))


def test_a_failed_plan_keeps_the_previous_plan(
    workspace: WorkspaceFactory, cli: Cli, query: Query
) -> None:
    w, _ = build(workspace)
    assert cli(w, "campaigns", "plan", "promo", "--as-of", AS_OF).exit_code == 0
    before = query(w, "SELECT * FROM plan_rows ORDER BY user_id")
    codes = query(w, "SELECT * FROM coupon_assignments ORDER BY user_id")
    Path(w.root / "campaigns/p/email.txt.j2").write_text("{{ user.nickname }}", "utf-8")
    assert cli(w, "campaigns", "plan", "promo", "--as-of", AS_OF).exit_code != 0
    assert query(w, "SELECT * FROM plan_rows ORDER BY user_id") == before
    assert query(w, "SELECT * FROM coupon_assignments ORDER BY user_id") == codes
