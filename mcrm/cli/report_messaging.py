"""`mcrm report messaging` (SPEC §7; definitions in docs/reports.md and mcrm.reports.messaging)."""

from __future__ import annotations

from typing import Annotated

import typer

from mcrm.cli.options import workspace
from mcrm.cli.report_cmd import (
    FormatOpt,
    FromOpt,
    OutOpt,
    RawOpt,
    ReportAsOfOpt,
    TableOpt,
    ToOpt,
    app,
    emit_report,
    report_period,
)


@app.command("messaging")
def messaging(
    ctx: typer.Context,
    from_: FromOpt = None,
    to: ToOpt = None,
    as_of_: ReportAsOfOpt = None,
    by_campaign: Annotated[
        bool,
        typer.Option(
            "--by-campaign/--by-channel",
            help="Rows per channel, campaign and provider (default), or per channel and "
            "provider only.",
        ),
    ] = True,
    fmt: FormatOpt = None,
    out: OutOpt = None,
    raw: RawOpt = False,
    table: TableOpt = None,
) -> int:
    """Per channel, campaign and provider (the lane mcrm sent by, else the importing preset):
    messages sent in the period, delivered, unique opens and clicks, delivery / open /
    click-through / click-to-open rates, unsubscribes, bounces, invalid addresses and tokens,
    and conversions within each campaign's goal window (any-touch, analytics.md §13). Providers
    without delivery receipts use sent as the denominator. Tables: messaging, channels."""
    from mcrm.db import open_db
    from mcrm.reports.messaging import build

    ws = workspace(ctx)
    p = report_period(ctx, from_, to, as_of_)
    with open_db(ws) as con:
        report = build(con, ws, p, by_campaign=by_campaign)
    return emit_report(ctx, report, fmt, out, raw, table)
