"""`mcrm report campaign NAME` (SPEC §7; definitions in docs/reports.md and
mcrm.reports.campaign)."""

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


@app.command("campaign")
def campaign(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Campaign name (campaigns/NAME.yaml).")],
    from_: FromOpt = None,
    to: ToOpt = None,
    as_of_: ReportAsOfOpt = None,
    fmt: FormatOpt = None,
    out: OutOpt = None,
    raw: RawOpt = False,
    table: TableOpt = None,
) -> int:
    """Holdout uplift of one campaign: per variant, all variants pooled, and the holdout, the
    users assigned (intent to treat) whose planned send falls in the period, messages sent,
    conversions within the goal window (any-touch, analytics.md §13), conversion rate,
    revenue per recipient, absolute uplift with Newcombe's 95% CI, relative uplift (Katz),
    ΔRPR (Welch) and a verdict; coupon redemptions; and the global control group against
    everyone else. Tables: uplift, revenue, groups, global_control."""
    from mcrm.db import open_db
    from mcrm.reports.campaign import build

    ws = workspace(ctx)
    p = report_period(ctx, from_, to, as_of_)
    with open_db(ws) as con:
        report = build(con, ws, p, name)
    return emit_report(ctx, report, fmt, out, raw, table)
