"""`mcrm campaigns validate | list`: every problem of a campaign file, with file:line and a
did-you-mean, all at once (exit 1), and the example workspace's campaigns are valid."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import WS, Cli, WorkspaceFactory

REPO = Path(__file__).resolve().parents[2]
SEGMENTS = """\
segments:
  dormant: {where: {lifecycle: dormant}}
  buyers: {where: {purchase: {within: 30d}}}
"""
CONFIG = """\
delivery:
  unsubscribe: {url: "https://u.example.com/u/{token}"}
"""
GOOD = """\
description: Winback
segment: dormant
exclude: [buyers]
channels: [push, email]
schedule: {cron: "0 10 * * MON", timezone: user}
reentry: 30d
holdout: 10%
templates:
  push: {title: w/t.j2, body: w/b.j2}
  email: {subject: w/s.j2, html: w/e.html.j2, text: w/e.txt.j2}
"""
TEMPLATES = {
    "campaigns/w/t.j2": "Hi {{ user.first_name }}",
    "campaigns/w/b.j2": "Come back",
    "campaigns/w/s.j2": "We miss you",
    "campaigns/w/e.html.j2": "<p>Hi</p><a href='{{ unsubscribe_url }}'>unsubscribe</a>",
    "campaigns/w/e.txt.j2": "Hi {{ unsubscribe_url }}",
}


def make(workspace: WorkspaceFactory, campaign: str, name: str = "winback", **extra: str) -> WS:
    files = {"segments.yaml": SEGMENTS, f"campaigns/{name}.yaml": campaign, **TEMPLATES, **extra}
    return workspace(CONFIG, files)


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_a_good_campaign_is_valid_and_listed(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = make(workspace, GOOD)
    r = cli(w, "campaigns", "validate")
    assert r.exit_code == 0, r.stderr
    assert "1 campaign(s) valid" in r.stderr
    assert r.stdout == ""
    r = cli(w, "campaigns", "list", "--format", "json")
    assert r.exit_code == 0
    (row,) = r.json()
    assert row["campaign"] == "winback"
    assert row["channels"] == "push,email"
    assert row["holdout"] == "10%"
    assert row["schedule"] == "0 10 * * MON (user)"


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        (GOOD.replace("segment: dormant", "segment: dormnt"), "unknown segment 'dormnt'", 2),
        (GOOD.replace("exclude: [buyers]", "exclude: [buyer]"), "unknown segment 'buyer'", 3),
        (GOOD.replace("[push, email]", "[psh, email]"), "unknown channel 'psh'", 4),
        (GOOD.replace("[push, email]", "[push, push]"), "channel 'push' is listed twice", 4),
        (GOOD.replace("0 10 * * MON", "0 25 * * MON"), "invalid cron expression", 5),
        (GOOD.replace("timezone: user", "timezone: Mars/Base"), "unknown time zone", 5),
        (GOOD.replace("reentry: 30d", "reentry: 30"), "expected a duration like 30d", 6),
        (GOOD.replace("holdout: 10%", "holdout: 150%"), "holdout must be a percentage", 7),
        (GOOD.replace("description:", "descripton:"), "unknown key 'descripton'", 1),
        (GOOD + "purpose: promo\n", "unknown purpose 'promo'", 11),
        (GOOD.replace("text: w/e.txt.j2", "txt: w/e.txt.j2"), "unknown key 'txt'", 10),
        (GOOD.replace(", text: w/e.txt.j2", ""), "channel email needs templates.email.text", 8),
        (GOOD.replace("segment: dormant\n", ""), "needs an audience", None),
        (GOOD + "name: other\n", "differs from its file name", 11),
        (GOOD.replace("body: w/b.j2", "body: ../../etc/passwd"), "must stay inside", 9),
        (GOOD.replace("body: w/b.j2", "body: w/missing.j2"), "template file not found", None),
    ],
)
def test_each_problem_is_reported_with_file_and_line(
    workspace: WorkspaceFactory, cli: Cli, text: str, message: str, line: int | None
) -> None:
    w = make(workspace, text)
    r = cli(w, "campaigns", "validate")
    assert r.exit_code == 1, r.stderr
    found = [e for e in errors(r.stderr) if message in e]
    assert found, r.stderr
    assert "campaigns/winback.yaml" in found[0]
    if line is not None:
        assert f"campaigns/winback.yaml:{line}" in found[0]


def test_all_problems_at_once_with_did_you_mean(workspace: WorkspaceFactory, cli: Cli) -> None:
    bad = GOOD.replace("segment: dormant", "segment: dormnt").replace("[push, email]", "[psh]")
    bad = bad.replace("reentry: 30d", "reentry: sometimes")
    r = cli(make(workspace, bad), "campaigns", "validate")
    assert r.exit_code == 1
    assert len(errors(r.stderr)) >= 3
    assert "did you mean 'dormant'" in r.stderr
    assert "did you mean 'push'" in r.stderr


def test_yaml_time_trap_in_quiet_hours(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = make(workspace, GOOD + 'delivery: {quiet_hours: {start: 21:00, end: "08:00"}}\n')
    r = cli(w, "campaigns", "validate")
    assert r.exit_code == 1
    assert 'quote it: "21:00"' in r.stderr


def test_marketing_email_needs_an_unsubscribe_url(workspace: WorkspaceFactory, cli: Cli) -> None:
    files = {"segments.yaml": SEGMENTS, "campaigns/winback.yaml": GOOD, **TEMPLATES}
    w = workspace({"delivery": {"unsubscribe": {"url": "http://x.example/{token}"}}}, files)
    r = cli(w, "campaigns", "validate")
    assert r.exit_code == 1
    assert "must be https://" in r.stderr


def test_template_syntax_error_names_the_template(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = make(workspace, GOOD, **{"campaigns/w/b.cs.j2": "Ahoj {{ user.first_name "})
    r = cli(w, "campaigns", "validate")
    assert r.exit_code == 1
    assert "w/b.cs.j2" in r.stderr


def test_unknown_campaign_name(workspace: WorkspaceFactory, cli: Cli) -> None:
    r = cli(make(workspace, GOOD), "campaigns", "validate", "winbak")
    assert r.exit_code == 2
    assert "unknown campaign 'winbak'" in r.stderr
    assert "did you mean 'winback'" in r.stderr


def test_the_example_campaigns_are_valid(tmp_path: Path, cli: Cli) -> None:
    root = tmp_path / "example"
    root.mkdir()
    for name in ("mcrm.yaml", "segments.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "campaigns", root / "campaigns")
    r = cli(root, "campaigns", "validate")
    assert r.exit_code == 0, r.stderr
    r = cli(root, "campaigns", "list", "--format", "json")
    names = {row["campaign"] for row in r.json()}
    assert len(names) >= 7


def test_a_channel_translated_unevenly_warns_without_failing(
    workspace: WorkspaceFactory, cli: Cli
) -> None:
    # a German subject alone: German readers would get a German subject on an English body
    w = make(workspace, GOOD, **{"campaigns/w/s.de.j2": "Wir vermissen dich"})
    r = cli(w, "campaigns", "validate")
    assert r.exit_code == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, r.stderr
    assert "email has a 'de' subject but no 'de' html, text" in warnings[0]
    assert "campaigns/winback.yaml" in warnings[0]
    assert "1 campaign(s) valid" in r.stderr
    # the push parts have no German file at all: one language throughout, nothing to say

    complete = {
        "campaigns/w/s.de.j2": "Wir vermissen dich",
        "campaigns/w/e.de.html.j2": "<p>Hallo</p><a href='{{ unsubscribe_url }}'>abmelden</a>",
        "campaigns/w/e.de.txt.j2": "Hallo {{ unsubscribe_url }}",
    }
    w = make(workspace, GOOD, **complete)
    r = cli(w, "campaigns", "validate")
    assert r.exit_code == 0 and "warning:" not in r.stderr, r.stderr


def test_the_example_campaigns_are_translated_evenly(cli: Cli) -> None:
    r = cli(WS(REPO), "campaigns", "validate")
    assert r.exit_code == 0, r.stderr
    assert "warning:" not in r.stderr, r.stderr
