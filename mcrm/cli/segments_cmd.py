"""`mcrm segments ...`, `mcrm rfm`, `mcrm lifecycle`."""

from __future__ import annotations

from typing import Annotated

import typer

from mcrm.cli.options import (
    AsOfOpt,
    FormatOpt,
    OutOpt,
    RawOpt,
    as_of,
    report_problems,
    state,
    workspace,
)

app = typer.Typer(
    no_args_is_help=True,
    help="Segments defined in segments.yaml: validate, compute (snapshots), explain, diff.",
)


def _warn(ctx: typer.Context, warnings: list[str]) -> None:
    from mcrm.output import console

    for w in warnings:
        console().print(f"warning: {w}", markup=False)


@app.command("list")
def list_(ctx: typer.Context, fmt: FormatOpt = None, out: OutOpt = None) -> int:
    """Every segment with its description and last computed size."""
    from mcrm.output import resolve_format, write_rows
    from mcrm.segments.engine import list_segments

    write_rows(list_segments(workspace(ctx)), resolve_format(fmt, out), out)
    return 0


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Segment name.")],
    fmt: FormatOpt = None,
) -> int:
    """A segment's definition and its snapshot history (run, as-of, size)."""
    from mcrm.output import Rows, console, resolve_format, write_rows
    from mcrm.segments.engine import _select, history
    from mcrm.segments.model import load_segments

    ws = workspace(ctx)
    seg = load_segments(ws.root)
    _select(seg, [name])
    s = seg.segments[name]
    if not state(ctx).quiet:
        console().print(f"{name} (segments.yaml:{s.line}): {s.description or ''}", markup=False)
    rows = history(ws, name) if ws.db_path.exists() else Rows(["run_id"], [])
    write_rows(rows, resolve_format(fmt, None))
    return 0


@app.command("validate")
def validate(ctx: typer.Context) -> int:
    """Check segments.yaml: every problem at once (exit 1 if any); unknown events warn."""
    from mcrm.segments.engine import validate as run

    errors, warnings = run(workspace(ctx))
    _warn(ctx, warnings)
    return report_problems(ctx, errors, "segments.yaml", "segments.yaml is valid")


@app.command("compute")
def compute(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="Segments (default: all).")] = None,
    as_of_: AsOfOpt = None,
    fmt: FormatOpt = None,
    out: OutOpt = None,
) -> int:
    """Compute segments and store a snapshot (run id, as-of, members); print their sizes."""
    from mcrm.output import Rows, console, resolve_format, write_rows
    from mcrm.segments.engine import compute as run

    res = run(workspace(ctx), names or None, as_of(ctx, as_of_))
    _warn(ctx, res.warnings)
    rows = Rows(
        ["segment", "size", "seconds", "description"],
        [[s.name, s.size, s.seconds, s.description] for s in res.sizes],
    )
    write_rows(rows, resolve_format(fmt, out), out)
    if not state(ctx).quiet:
        console().print(f"run {res.run_id} as of {res.as_of:%Y-%m-%dT%H:%M:%SZ}", markup=False)
    return 0


@app.command("sql")
def sql(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Segment name.")],
    dialect: Annotated[
        str,
        typer.Option("--dialect", help="duckdb, spark, bigquery, snowflake, clickhouse, trino."),
    ] = "duckdb",
    as_of_: AsOfOpt = None,
) -> int:
    """The segment's SQL, as one self-contained query (transpiled with SQLGlot)."""
    import sys

    from mcrm.segments.engine import segment_sql

    sys.stdout.write(segment_sql(workspace(ctx), name, as_of(ctx, as_of_), dialect))
    return 0


@app.command("explain")
def explain(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Segment name.")],
    user: Annotated[str, typer.Argument(help="User id (or any of their ids).")],
    as_of_: AsOfOpt = None,
    fmt: FormatOpt = None,
) -> int:
    """Which predicates held and which failed for one user, with the deciding values."""
    import sys

    from mcrm.output import Format, write_record
    from mcrm.segments.engine import explain as run

    uid, member, tree = run(workspace(ctx), name, user, as_of(ctx, as_of_))
    if fmt in (Format.json, Format.jsonl):
        write_record(
            {"segment": name, "user_id": uid, "member": member, "explanation": tree.as_dict()}, fmt
        )
        return 0
    verdict = "IS" if member else "is NOT"
    lines = [f"{uid} {verdict} in {name}"]

    def walk(node: object, depth: int) -> None:
        from mcrm.segments.engine import Explained

        assert isinstance(node, Explained)
        mark = "✓" if node.ok else "✗"
        val = f"  — {node.value}" if node.value else ""
        lines.append(f"{'  ' * depth}{mark} {node.text}{val}")
        for c in node.children:
            walk(c, depth + 1)

    walk(tree, 1)
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


@app.command("diff")
def diff(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Segment name.")],
    since: Annotated[
        str | None,
        typer.Option("--since", help="A run id or a date (default: the previous snapshot)."),
    ] = None,
    fmt: FormatOpt = None,
    out: OutOpt = None,
) -> int:
    """Who entered and who left the segment between two snapshots."""
    from mcrm.output import console, resolve_format, write_rows
    from mcrm.segments.engine import diff as run

    base, latest, rows = run(workspace(ctx), name, since)
    rows.rows = list(rows.rows)
    entered = sum(1 for r in rows.rows if r[0] == "entered")
    if not state(ctx).quiet:
        console().print(
            f"{name}: run {base} -> {latest}: {entered} entered, {len(rows.rows) - entered} left",
            markup=False,
        )
    write_rows(rows, resolve_format(fmt, out), out)
    return 0


@app.command("export")
def export(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Segment name.")],
    as_of_: AsOfOpt = None,
    fmt: FormatOpt = None,
    out: OutOpt = None,
    raw: RawOpt = False,
) -> int:
    """Members with the fields a downstream tool needs (csv / jsonl / parquet)."""
    from mcrm.output import resolve_format, write_rows
    from mcrm.segments.engine import export as run

    write_rows(run(workspace(ctx), name, as_of(ctx, as_of_)), resolve_format(fmt, out), out, raw)
    return 0


def rfm(
    ctx: typer.Context,
    as_of_: AsOfOpt = None,
    compare_to: Annotated[
        str | None,
        typer.Option("--compare-to", help="Show the transition matrix from this earlier date."),
    ] = None,
    cells: Annotated[bool, typer.Option("--cells", help="One row per R×F cell.")] = False,
    fmt: FormatOpt = None,
    out: OutOpt = None,
) -> int:
    """The RFM grid: customers, share and average monetary per segment (or cell)."""
    from mcrm.output import console, resolve_format, write_rows
    from mcrm.segments.engine import rfm_grid, rfm_segments, rfm_transitions

    ws = workspace(ctx)
    at = as_of(ctx, as_of_)
    f = resolve_format(fmt, out)
    if compare_to is not None:
        write_rows(rfm_transitions(ws, at, as_of(ctx, compare_to)), f, out)
        return 0
    grid, scored, unscored, warnings = rfm_grid(ws, at)
    _warn(ctx, warnings)
    write_rows(grid if cells else rfm_segments(ws, at), f, out)
    if not state(ctx).quiet:
        console().print(
            f"{scored} scored customers; {unscored} unscored (no paid order in the window)",
            markup=False,
        )
    return 0


def lifecycle(
    ctx: typer.Context,
    as_of_: AsOfOpt = None,
    compare_to: Annotated[
        str | None,
        typer.Option("--compare-to", help="Show the flow between stages since this date."),
    ] = None,
    fmt: FormatOpt = None,
    out: OutOpt = None,
) -> int:
    """Users per lifecycle stage (new, reactivated, active, at_risk, dormant, churned)."""
    from mcrm.output import resolve_format, write_rows
    from mcrm.segments.engine import lifecycle_counts, lifecycle_flow

    ws = workspace(ctx)
    at = as_of(ctx, as_of_)
    f = resolve_format(fmt, out)
    if compare_to is not None:
        write_rows(lifecycle_flow(ws, at, as_of(ctx, compare_to)), f, out)
    else:
        write_rows(lifecycle_counts(ws, at), f, out)
    return 0
