"""`mcrm report html --out FILE`: the charts of every report in one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mcrm.cli.options import state, workspace
from mcrm.cli.report_cmd import ReportAsOfOpt, ToOpt, app, report_period

# the page's default period is 90 days (a cohort heatmap needs more than a month)
HtmlFromOpt = Annotated[
    str | None,
    typer.Option(
        "--from",
        help="First day of the period (ISO date, workspace zone; default: 89 days before --to).",
        show_default=False,
    ),
]


@app.command("html")
def html(
    ctx: typer.Context,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="The HTML file to write (required).", dir_okay=False),
    ],
    from_: HtmlFromOpt = None,
    to: ToOpt = None,
    as_of_: ReportAsOfOpt = None,
    funnel: Annotated[
        str | None,
        typer.Option(
            "--funnel",
            help="Funnel steps, comma-separated event names "
            "(default: product_view,add_to_cart,purchase).",
            show_default=False,
        ),
    ] = None,
    within: Annotated[
        str | None,
        typer.Option(
            "--within",
            help="The funnel's conversion window: 30m, 12h, 1d, 2w or none (default: 1d).",
            show_default=False,
        ),
    ] = None,
    campaign: Annotated[
        list[str] | None,
        typer.Option(
            "--campaign",
            help="Campaign to show the uplift of (repeatable; default: every campaign with a "
            "plan whose as-of falls in the period).",
            show_default=False,
        ),
    ] = None,
) -> int:
    """One HTML file with charts: KPI tiles and trends, acquisition by source, cohort
    retention, funnel, RFM grid, lifecycle, segment sizes, campaign uplift with its 95%
    interval, CLV distribution. It opens with no network (plotly.js is inside); a section
    without data says what to run."""
    from mcrm.output import console
    from mcrm.reports.html import DEFAULT_FUNNEL, HtmlOptions, write_html

    ws = workspace(ctx)
    period = report_period(ctx, from_, to, as_of_, days=90)
    steps = tuple(s.strip() for s in funnel.split(",")) if funnel is not None else DEFAULT_FUNNEL
    opts = HtmlOptions(
        funnel=steps,
        funnel_within=within,
        campaigns=tuple(campaign) if campaign else None,
    )
    result = write_html(ws, period, out, opts)
    err = console()
    for w in result.warnings:
        err.print(f"warning: {w}", markup=False)
    if not state(ctx).quiet:
        empty = [s.key for s in result.sections if s.nodata is not None]
        err.print(
            f"wrote {out} ({len(result.text) // 1024} KB): {result.charts} chart(s) in "
            f"{len(result.sections) - len(empty)} section(s)"
            + (f"; no data for {', '.join(empty)}" if empty else ""),
            markup=False,
        )
    return 0
