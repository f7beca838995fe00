"""`mcrm db stats | upgrade` and `mcrm sql`."""

from __future__ import annotations

from typing import Annotated

import typer

from mcrm.cli.options import FormatOpt, OutOpt, RawOpt, state, workspace

app = typer.Typer(no_args_is_help=True, help="The workspace database.")


@app.command("stats")
def stats(ctx: typer.Context, fmt: FormatOpt = None, out: OutOpt = None) -> int:
    """Row counts per table, schema and engine versions, data time span."""
    from mcrm import api
    from mcrm.output import Format, console, resolve_format, write_record, write_rows

    info, rows = api.db_stats(workspace(ctx))
    f = resolve_format(fmt, out)
    if f in (Format.json, Format.jsonl):
        write_record({**info, "tables": {r[0]: r[1] for r in rows.rows}}, f)
        return 0
    write_rows(rows, f, out)
    if not state(ctx).quiet:
        for k, v in info.items():
            console().print(f"{k}: {v}", markup=False)
    return 0


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> int:
    """Upgrade a database made by an older mcrm to this version's schema (one transaction)."""
    from mcrm import api
    from mcrm.output import console

    before, after = api.upgrade_db(workspace(ctx))
    console().print(
        f"schema version {before} -> {after}" if before != after else f"already at {after}"
    )
    return 0


def sql(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="A SQL query (read-only connection).")],
    fmt: FormatOpt = None,
    out: OutOpt = None,
    raw: RawOpt = False,
) -> int:
    """Run a read-only SQL query against the workspace database."""
    from mcrm import api
    from mcrm.output import resolve_format, write_rows

    write_rows(api.run_sql(workspace(ctx), query), resolve_format(fmt, out), out, raw)
    return 0
