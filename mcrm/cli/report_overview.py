"""`mcrm report overview | acquisition | features | segments` (SPEC §7).

Each command resolves the period, opens the database read-only, calls one `build` of
`mcrm.reports` and hands the report to the shared output. Heavy modules are imported inside the
commands (start-up time is benchmarked).
"""

from __future__ import annotations

from typing import Annotated

import typer

from mcrm.cli.options import workspace
from mcrm.cli.report_cmd import (
    ByOpt,
    FormatOpt,
    FromOpt,
    Interval,
    OutOpt,
    RawOpt,
    ReportAsOfOpt,
    TableOpt,
    ToOpt,
    app,
    emit_report,
    report_period,
)

IntervalOpt = Annotated[
    Interval,
    typer.Option("--interval", help="Rows of the trend table: one per day, ISO week or month."),
]


@app.command("overview")
def overview(
    ctx: typer.Context,
    from_: FromOpt = None,
    to: ToOpt = None,
    as_of_: ReportAsOfOpt = None,
    by: ByOpt = None,
    interval: IntervalOpt = Interval.day,
    fmt: FormatOpt = None,
    out: OutOpt = None,
    raw: RawOpt = False,
    table: TableOpt = None,
) -> int:
    """DAU / WAU / MAU, stickiness, sessions, revenue, orders, AOV, ARPU, ARPPU, payer share and
    repeat-purchase rate (tables: summary, trend). --by platform|os|country|segment:NAME."""
    from mcrm.db import open_db
    from mcrm.reports.overview import build

    ws = workspace(ctx)
    p = report_period(ctx, from_, to, as_of_)
    with open_db(ws) as con:
        report = build(con, ws, p, by, interval.value)
    return emit_report(ctx, report, fmt, out, raw, table)


AcqByOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--by",
        help="source (default) or campaign (source and campaign); first touch, from users.",
        show_default=False,
    ),
]


@app.command("acquisition")
def acquisition(
    ctx: typer.Context,
    from_: FromOpt = None,
    to: ToOpt = None,
    as_of_: ReportAsOfOpt = None,
    by: AcqByOpt = None,
    fmt: FormatOpt = None,
    out: OutOpt = None,
    raw: RawOpt = False,
    table: TableOpt = None,
) -> int:
    """By first-touch source (or source and campaign): installs, first purchases, 30-day
    conversion, revenue and LTV at 30 / 90 days (mature users only), cost, CPI, CAC, ROAS, ROI."""
    from mcrm.db import open_db
    from mcrm.reports.acquisition import build

    ws = workspace(ctx)
    p = report_period(ctx, from_, to, as_of_)
    with open_db(ws) as con:
        report = build(con, ws, p, by)
    return emit_report(ctx, report, fmt, out, raw, table)


@app.command("features")
def features(
    ctx: typer.Context,
    from_: FromOpt = None,
    to: ToOpt = None,
    as_of_: ReportAsOfOpt = None,
    interval: IntervalOpt = Interval.week,
    fmt: FormatOpt = None,
    out: OutOpt = None,
    raw: RawOpt = False,
    table: TableOpt = None,
) -> int:
    """Screen and feature usage (users, events, share of active users) over the period and per
    interval; sessions, session length and time in app (tables: usage, sessions, screens,
    features)."""
    from mcrm.db import open_db
    from mcrm.reports.features import build

    ws = workspace(ctx)
    p = report_period(ctx, from_, to, as_of_)
    with open_db(ws) as con:
        report = build(con, ws, p, interval.value)
    return emit_report(ctx, report, fmt, out, raw, table)


@app.command("segments")
def segments(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None, typer.Argument(help="Segments (default: every stored one).")
    ] = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    as_of_: ReportAsOfOpt = None,
    fmt: FormatOpt = None,
    out: OutOpt = None,
    raw: RawOpt = False,
    table: TableOpt = None,
) -> int:
    """Segment sizes over time: one row per segment per stored snapshot in the period, with
    entries and exits since the previous snapshot."""
    from mcrm.db import open_db
    from mcrm.reports.segments_report import build

    ws = workspace(ctx)
    p = report_period(ctx, from_, to, as_of_)
    with open_db(ws) as con:
        report = build(con, ws, p, names or None)
    return emit_report(ctx, report, fmt, out, raw, table)
