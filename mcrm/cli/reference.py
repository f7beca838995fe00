"""The CLI reference (docs/cli.md), generated from the commands' own `--help`.

`python -m mcrm.cli.reference > docs/cli.md` rewrites it; a test fails when it is stale.
Help is rendered at a fixed width without colour so the file is the same on every machine.
"""

from __future__ import annotations

from collections.abc import Iterator

import typer
from typer.main import get_command

from mcrm.cli.main import app

WIDTH = 100


def _walk(cmd: typer.core.TyperCommand | typer.core.TyperGroup, path: list[str], parent: object):  # type: ignore[no-untyped-def]
    ctx = cmd.make_context(path[-1], ["--help"], parent=parent, resilient_parsing=True)  # type: ignore[arg-type]
    yield path, cmd, ctx
    commands = getattr(cmd, "commands", None)
    if commands:
        for name in commands:
            yield from _walk(commands[name], [*path, name], ctx)


def commands() -> Iterator[tuple[list[str], str]]:
    """(command path, help text) for the root and every sub-command, in help order."""
    root = get_command(app)
    for path, cmd, ctx in _walk(root, ["mcrm"], None):  # type: ignore[arg-type]
        ctx.terminal_width = WIDTH
        ctx.max_content_width = WIDTH
        yield path, cmd.get_help(ctx)


def render() -> str:
    out = [
        "# CLI reference",
        "",
        "Generated from `--help` by `python -m mcrm.cli.reference > docs/cli.md`; "
        "a test fails when this file is stale.",
        "",
    ]
    for path, text in commands():
        out += [f"## `{' '.join(path)}`", "", "```text", text.rstrip(), "```", ""]
    return "\n".join(out)


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())
