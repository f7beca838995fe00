"""docs/cli.md is generated from --help and must be current; every command has help text."""

from __future__ import annotations

from pathlib import Path

from mcrm.cli.reference import commands, render

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_current() -> None:
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == render(), (
        "docs/cli.md is stale: run `python -m mcrm.cli.reference > docs/cli.md`"
    )


def test_every_command_has_help_text() -> None:
    seen = 0
    for path, text in commands():
        seen += 1
        body = text.split("\n\n", 1)[1] if "\n\n" in text else ""
        assert body.strip() and not body.lstrip().startswith("Options:"), (
            f"{' '.join(path)} has no description"
        )
    assert seen > 20


def test_readme_lists_every_exit_code() -> None:
    from mcrm.errors import ExitCode

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for code in ExitCode:
        assert f"| {int(code)} " in readme, f"README exit-code table misses {code!r}"
