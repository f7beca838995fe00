"""`mcrm demo`: the quick start in one command."""

from __future__ import annotations

from typing import Annotated

import typer

from mcrm.cli.options import state, workspace


def demo(
    ctx: typer.Context,
    generate: Annotated[
        bool, typer.Option("--generate", help="Regenerate data/ first (deterministic).")
    ] = False,
    users: Annotated[
        int, typer.Option("--users", min=10, help="Users to generate with --generate.")
    ] = 3000,
    seed: Annotated[int, typer.Option("--seed", help="Generator seed.")] = 7,
) -> int:
    """Run the sample workspace end to end: import every file in data/ with its preset,
    compute the segments of segments.yaml, show the RFM grid and one merged customer, and
    write the HTML report with every chart to .mcrm/report.html."""
    from mcrm.demo import run

    return run(workspace(ctx), generate=generate, users=users, seed=seed, quiet=state(ctx).quiet)
