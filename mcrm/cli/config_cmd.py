"""`mcrm config show | validate`."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from mcrm.cli.options import FormatOpt, report_problems, state

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

    root = find_workspace(state(ctx).workspace, dict(os.environ), Path.cwd())
    problems = validate_config(root, dict(os.environ))
    return report_problems(ctx, problems.errors, "mcrm.yaml", "mcrm.yaml is valid")
