"""`mcrm config show | validate`."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from mcrm.cli.options import FormatOpt, state

app = typer.Typer(no_args_is_help=True, help="The workspace settings (mcrm.yaml).")


@app.command("show")
def show(ctx: typer.Context, fmt: FormatOpt = None) -> int:
    """The merged settings with defaults, each value's source, secrets masked."""
    from dataclasses import asdict

    from mcrm.config import find_workspace, load_settings, mask
    from mcrm.output import Format, write_record

    root = find_workspace(state(ctx).workspace, dict(os.environ), Path.cwd())
    s = load_settings(root, dict(os.environ))
    data = asdict(s)
    sources = data.pop("sources")
    data = mask(data)
    data["workspace"] = str(root)
    data["sources"] = {
        k: sources.get(k, "default")
        for k in ("database", "timezone", "base_currency", "imports", "delivery", "providers")
    }
    write_record(data, fmt or Format.json)
    return 0


@app.command("validate")
def validate(ctx: typer.Context) -> int:
    """Check mcrm.yaml (all problems at once, unset ${VARS} in providers included)."""
    from mcrm.config import find_workspace, validate_config
    from mcrm.output import console

    root = find_workspace(state(ctx).workspace, dict(os.environ), Path.cwd())
    problems = validate_config(root, dict(os.environ))
    err = console()
    for p in problems.errors:
        err.print(f"error: {p.render()}", markup=False)
        if p.hint:
            err.print(f"  hint: {p.hint}", markup=False)
    if problems:
        err.print(f"{len(problems.errors)} problem(s) in mcrm.yaml", markup=False)
        return 1
    if not state(ctx).quiet:
        err.print("mcrm.yaml is valid", markup=False)
    return 0
