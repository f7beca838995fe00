"""Options shared by many commands, defined once (typer `Annotated` aliases)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from mcrm.output import Format

FormatOpt = Annotated[
    Format | None,
    typer.Option(
        "--format",
        "-f",
        envvar="MCRM_FORMAT",
        help="Output format: table|csv|json|jsonl (parquet needs --out). "
        "Default: table on a terminal, jsonl when stdout is piped.",
        show_default=False,
    ),
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Write rows to this file instead of stdout.", dir_okay=False),
]
RawOpt = Annotated[
    bool,
    typer.Option(
        "--raw", help="CSV: do not neutralise cells starting with = + - @ (formula injection)."
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        envvar="MCRM_AS_OF",
        help="Evaluate at this instant (ISO date or timestamp; naive = workspace zone), "
        "ignoring data after it.",
        show_default=False,
    ),
]
ShowPiiOpt = Annotated[
    bool, typer.Option("--show-pii", help="Show e-mail, phone and push tokens unmasked.")
]


@dataclass
class State:
    workspace: str | None = None
    debug: bool = False
    quiet: bool = False


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


def workspace(ctx: typer.Context):  # type: ignore[no-untyped-def]
    """The workspace for this invocation (see `mcrm.config.find_workspace`)."""
    from mcrm.config import open_workspace

    return open_workspace(state(ctx).workspace, dict(os.environ), Path.cwd())


def as_of(ctx: typer.Context, text: str | None):  # type: ignore[no-untyped-def]
    """`--as-of` as a naive UTC datetime (or None)."""
    if text is None:
        return None
    from mcrm.timeutil import parse_instant

    return parse_instant(text, workspace(ctx).settings.timezone, "--as-of")


def report_problems(ctx: typer.Context, errors: list[Any], what: str, valid: str) -> int:
    """Print every validation problem (and its hint) on stderr; 1 if any, else 0 with
    `valid` unless --quiet. Shared by `config`, `segments` and `campaigns validate`."""
    from mcrm.output import console

    err = console()
    for e in errors:
        err.print(f"error: {e.render()}", markup=False)
        if e.hint:
            err.print(f"  hint: {e.hint}", markup=False)
    if errors:
        err.print(f"{len(errors)} problem(s) in {what}", markup=False)
        return 1
    if not state(ctx).quiet:
        err.print(valid, markup=False)
    return 0
