"""`mcrm campaigns ...`: campaign files in campaigns/ (SPEC §5)."""

from __future__ import annotations

from typing import Annotated

import typer

from mcrm.cli.options import FormatOpt, OutOpt, state, workspace

app = typer.Typer(
    no_args_is_help=True,
    help="Campaigns defined in campaigns/*.yaml: list and validate (CI).",
)


@app.command("list")
def list_(ctx: typer.Context, fmt: FormatOpt = None, out: OutOpt = None) -> int:
    """Every campaign: audience, channels, purpose, schedule, variants and holdout."""
    from mcrm.campaigns.engine import list_campaigns
    from mcrm.output import resolve_format, write_rows

    write_rows(list_campaigns(workspace(ctx)), resolve_format(fmt, out), out)
    return 0


@app.command("validate")
def validate(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="Campaigns (default: all).")] = None,
) -> int:
    """Check campaign files, their templates and the segments they use: every problem at
    once (exit 1 if any). Suitable for CI."""
    from mcrm.campaigns.engine import validate as run
    from mcrm.output import console

    errors, count = run(workspace(ctx), names)
    err = console()
    for e in errors:
        err.print(f"error: {e.render()}", markup=False)
        if e.hint:
            err.print(f"  hint: {e.hint}", markup=False)
    if errors:
        err.print(f"{len(errors)} problem(s) in campaigns/", markup=False)
        return 1
    if not state(ctx).quiet:
        err.print(f"{count} campaign(s) valid", markup=False)
    return 0
