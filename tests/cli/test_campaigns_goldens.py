"""`mcrm campaigns test`: golden previews of every campaign for the fixture users of
campaigns/tests/users.yaml, compared with campaigns/tests/expected/ (a unified diff on stdout
and exit 1 on a difference, `--update` to accept), needing no database; a bad fixture file
fails with file:line."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest

from mcrm.campaigns.goldens import load_fixtures
from mcrm.yamlio import Problems
from tests.conftest import Cli

REPO = Path(__file__).resolve().parents[2]
FIXTURES = "campaigns/tests/users.yaml"
EXPECTED = "campaigns/tests/expected"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the repository's example workspace (campaigns, segments, settings)."""
    root = tmp_path / "example"
    root.mkdir()
    for name in ("mcrm.yaml", "segments.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "campaigns", root / "campaigns")
    return root


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_the_repository_goldens_pass(example: Path, cli: Cli) -> None:
    r = cli(example, "campaigns", "test")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert r.stdout == ""
    expected = sorted(p.stem for p in (example / EXPECTED).glob("*.txt"))
    campaigns = sorted(p.stem for p in (example / "campaigns").glob("*.yaml"))
    assert expected == campaigns
    assert f"{len(campaigns)} campaign(s) match their golden previews" in r.stderr
    assert not (example / ".mcrm").exists()  # no database needed, none created


def test_goldens_do_not_depend_on_the_workspace_secret(example: Path, cli: Cli) -> None:
    r = cli(example, "campaigns", "test", env={"MCRM_UNSUBSCRIBE_SECRET": "another-secret"})
    assert r.exit_code == 0, r.stdout + r.stderr


def test_a_changed_template_shows_a_unified_diff_and_fails(example: Path, cli: Cli) -> None:
    path = example / "campaigns/winback/sms.j2"
    old = path.read_text(encoding="utf-8")
    path.write_text(old.replace("We miss you!", "Long time no see!"), encoding="utf-8")
    r = cli(example, "campaigns", "test")
    assert r.exit_code == 1
    rel = f"{EXPECTED}/winback_dormant.txt"
    lines = r.stdout.splitlines()
    assert f"--- {rel} (expected)" in lines
    assert f"+++ {rel} (rendered now)" in lines
    assert any(line.startswith("@@ ") for line in lines)
    assert any(line.startswith("-We miss you!") for line in lines)
    assert any(line.startswith("+Long time no see!") for line in lines)
    # only the changed campaign differs
    assert [x for x in lines if x.startswith("--- ")] == [f"--- {rel} (expected)"]
    (err,) = errors(r.stderr)
    assert "golden preview differs for winback_dormant" in err and rel in err
    assert "--update" in r.stderr


def test_update_rewrites_the_expected_file_and_then_it_passes(example: Path, cli: Cli) -> None:
    path = example / "campaigns/winback/sms.j2"
    path.write_text(
        path.read_text(encoding="utf-8").replace("We miss you!", "Long time no see!"), "utf-8"
    )
    others = {
        p.name: p.read_bytes()
        for p in (example / EXPECTED).glob("*.txt")
        if "winback" not in p.name
    }
    r = cli(example, "campaigns", "test", "--update")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "1 updated" in r.stderr
    text = (example / EXPECTED / "winback_dormant.txt").read_text(encoding="utf-8")
    assert "Long time no see!" in text and "We miss you!" not in text
    for name, data in others.items():  # the others are left alone
        assert (example / EXPECTED / name).read_bytes() == data
    assert not list((example / EXPECTED).glob("*.tmp"))
    r = cli(example, "campaigns", "test")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert r.stdout == ""


def test_a_new_campaign_without_goldens_fails_until_updated(example: Path, cli: Cli) -> None:
    shutil.copy(
        example / "campaigns/birthday_sms.yaml", example / "campaigns/birthday_sms_copy.yaml"
    )
    r = cli(example, "campaigns", "test", "birthday_sms_copy")
    assert r.exit_code == 1
    assert "golden preview missing for birthday_sms_copy" in r.stderr
    assert r.stdout.startswith(f"--- {EXPECTED}/birthday_sms_copy.txt (expected)")
    assert cli(example, "campaigns", "test", "birthday_sms_copy", "--update").exit_code == 0
    assert cli(example, "campaigns", "test").exit_code == 0


def test_goldens_render_the_fixture_users_as_text(example: Path, cli: Cli) -> None:
    """The expected files are preview text: the tricky user's markup is escaped in HTML, the
    anonymous user falls back, each user gets their locale file."""
    text = (example / EXPECTED / "winback_dormant.txt").read_text(encoding="utf-8")
    assert "── jana_cs · email · variant default · locale cs-CZ" in text
    assert "Dobrý den, Jana" in text
    lines = text.splitlines()
    assert "<p>Hello &lt;b&gt;{{ 7 * 7 }}&lt;/b&gt; &amp; co,</p>" in lines  # html part
    assert "Hello <b>{{ 7 * 7 }}</b> & co," in lines  # text part, as written
    assert "49</b>" not in text and "&lt;b&gt;49" not in text
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in text
    vip = (example / EXPECTED / "vip_recommendations.txt").read_text(encoding="utf-8")
    assert "not sent: the template skips this user (no products left to recommend)" in vip


@pytest.mark.parametrize(
    ("old", "new", "message", "on_line"),
    [
        ("    stats: { orders: 7,", "    stat: { orders: 7,", "unknown key 'stat'", "stat:"),
        (
            "      city: London\n",
            "      city: London\n      nickname: Olly\n",
            "unknown key 'nickname'",
            "nickname:",
        ),
        (
            'first_seen: "2024-03-02T10:15:00Z"',
            'first_seen: "last tuesday"',
            "not a timestamp: 'last tuesday'",
            "first_seen:",
        ),
        (
            'last_purchase: "2026-07-30T18:20:00Z"',
            'last_purchase: "2026-13-45"',
            "not a timestamp",
            "last_purchase:",
        ),
        ('spend: "612.40"', 'spend: "lots"', "expected an amount", "spend:"),
        (
            "timezone: Europe/London",
            "timezone: Mars/Base",
            "unknown time zone 'Mars/Base'",
            "user:",
        ),
        ('as_of: "2026-11-16T09:00:00Z"', 'as_of: "soon"', "not a timestamp: 'soon'", "as_of:"),
        ("users:\n  oliver_en:", "users:\n  oliver_en: 3\n  x_en:", "mapping of sections", "3"),
    ],
)
def test_a_bad_fixture_file_fails_with_file_and_line(
    example: Path, cli: Cli, old: str, new: str, message: str, on_line: str
) -> None:
    path = example / FIXTURES
    text = path.read_text(encoding="utf-8")
    assert old in text
    bad = text.replace(old, new, 1)
    path.write_text(bad, encoding="utf-8")
    r = cli(example, "campaigns", "test")
    assert r.exit_code == 1, r.stderr
    found = [e for e in errors(r.stderr) if message in e]
    assert found, r.stderr
    m = re.search(re.escape(FIXTURES) + r":(\d+)", found[0])
    assert m, found[0]
    line = bad.splitlines()[int(m[1]) - 1]
    assert on_line in line, (found[0], line)
    assert r.stdout == ""  # nothing compared on a broken fixture file


def test_a_bad_fixture_line_is_the_offending_line(example: Path, cli: Cli) -> None:
    path = example / FIXTURES
    text = path.read_text(encoding="utf-8")
    bad = text.replace('first_seen: "2025-01-10T08:00:00Z"', 'first_seen: "01/10/2025 8am"')
    path.write_text(bad, encoding="utf-8")
    r = cli(example, "campaigns", "test")
    assert r.exit_code == 1
    (err,) = errors(r.stderr)
    want = 1 + bad.splitlines().index('      first_seen: "01/10/2025 8am"')
    assert f"{FIXTURES}:{want}" in err
    assert "users.jana_cs.user.first_seen" in err


def test_missing_fixture_file(example: Path, cli: Cli) -> None:
    (example / FIXTURES).unlink()
    r = cli(example, "campaigns", "test")
    assert r.exit_code == 2
    assert f"{FIXTURES} is missing" in r.stderr


def test_a_template_error_for_a_fixture_user_names_it(example: Path, cli: Cli) -> None:
    path = example / "campaigns/birthday/sms.j2"
    path.write_text("Happy birthday\n{{ user.last_name }}!", encoding="utf-8")
    r = cli(example, "campaigns", "test", "birthday_sms")
    assert r.exit_code == 1
    errs = errors(r.stderr)
    assert errs and all("campaigns/birthday/sms.j2:2" in e for e in errs)
    assert any("fixture user anonymous" in e for e in errs)  # no last name
    assert not any("fixture user oliver_en" in e for e in errs)


def test_a_non_numeric_order_count_fails_with_file_and_line(example: Path, cli: Cli) -> None:
    path = example / FIXTURES
    path.write_text(
        path.read_text(encoding="utf-8").replace("orders: 7,", "orders: many,"), "utf-8"
    )
    r = cli(example, "campaigns", "test")
    assert r.exit_code == 1
    assert "unexpected" not in r.stderr
    assert any(f"{FIXTURES}:" in e for e in errors(r.stderr)), r.stderr


def test_an_unquoted_timestamp_with_an_offset_is_the_same_instant(example: Path) -> None:
    path = example / FIXTURES
    text = path.read_text(encoding="utf-8")
    quoted = text.replace('as_of: "2026-11-16T09:00:00Z"', 'as_of: "2026-11-16T10:00:00+01:00"')
    unquoted = text.replace('as_of: "2026-11-16T09:00:00Z"', "as_of: 2026-11-16T10:00:00+01:00")
    got = []
    for variant in (quoted, unquoted):
        path.write_text(variant, encoding="utf-8")
        probs = Problems()
        as_of, _ = load_fixtures(example, probs)
        assert not probs.errors
        got.append(as_of)
    assert got[0] == dt.datetime(2026, 11, 16, 9, 0)
    assert got[1] == got[0]
