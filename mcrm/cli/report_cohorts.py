"""`mcrm report cohorts | funnel | lifecycle` (SPEC §7; definitions in analytics.md §7-§9).

Each command resolves the period, calls one `mcrm.reports.<name>.build` on a read-only
connection and hands the report to the shared emitter. Library modules are imported inside the
commands so that `--help` stays cheap.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from mcrm.cli.options import workspace
from mcrm.cli.report_cmd import (
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


class CohortUnit(StrEnum):
    week = "week"
    month = "month"


class CohortMode(StrEnum):
    recurring = "recurring"
    unbounded = "unbounded"


class CohortBy(StrEnum):
    activity = "activity"
    purchase = "purchase"


class FunnelBy(StrEnum):
    platform = "platform"
    os = "os"
    country = "country"


# default periods: 12 weeks, 12 months, 30 days (--from overrides)
COHORT_DAYS = {"week": 84, "month": 365}
LIFECYCLE_DAYS = {"day": 30, "week": 84, "month": 365}


@app.command("cohorts")
def cohorts(
    ctx: typer.Context,
    unit: Annotated[
        CohortUnit, typer.Option("--unit", help="Cohort and offset interval: ISO week or month.")
    ] = CohortUnit.week,
    mode: Annotated[
        CohortMode,
        typer.Option(
            "--mode",
            help="recurring: active in interval c+k; unbounded: active in c+k or any later one.",
        ),
    ] = CohortMode.recurring,
    cohort: Annotated[
        CohortBy,
        typer.Option(
            "--cohort", help="Cohort by the interval of the first activity or first paid order."
        ),
    ] = CohortBy.activity,
    from_: FromOpt = None,
    to: ToOpt = None,
    as_of_: ReportAsOfOpt = None,
    fmt: FormatOpt = None,
    out: OutOpt = None,
    raw: RawOpt = False,
    table: TableOpt = None,
) -> int:
    """Retention by cohort: the share of each week's (or month's) new users active k intervals
    later. Tables: retention (long form, with partial flags and a weighted average) and matrix
    (cohort x offset). Cohorts are the intervals that hold a day of --from..--to (default: the
    last 12 weeks or 12 months); unobserved cells are null."""
    from mcrm.db import open_db
    from mcrm.reports.cohorts import build

    ws = workspace(ctx)
    p = report_period(ctx, from_, to, as_of_, COHORT_DAYS[unit.value])
    with open_db(ws) as con:
        report = build(con, ws, p, unit.value, mode.value, cohort.value)
    return emit_report(ctx, report, fmt, out, raw, table)


@app.command("funnel")
def funnel(
    ctx: typer.Context,
    steps: Annotated[
        list[str],
        typer.Argument(
            help="Two or more event names, in order. `purchase` is a paid order; "
            "`event:NAME` reads the events table only.",
            show_default=False,
        ),
    ],
    within: Annotated[
        str | None,
        typer.Option(
            "--within",
            help="Conversion window from step 1 (30m, 12h, 1d, 2w) or `none`. Default 1d.",
            show_default=False,
        ),
    ] = None,
    by: Annotated[
        FunnelBy | None,
        typer.Option(
            "--by",
            help="Break down by the platform, os or country of the path's step-1 event.",
            show_default=False,
        ),
    ] = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    as_of_: ReportAsOfOpt = None,
    fmt: FormatOpt = None,
    out: OutOpt = None,
    raw: RawOpt = False,
    table: TableOpt = None,
) -> int:
    """Ordered steps with a conversion window (ClickHouse windowFunnel semantics): users per
    step, overall and step conversion, drop-off, median seconds to convert. Step 1 falls in
    --from..--to; later steps up to the window's end or the as-of instant."""
    from mcrm.db import open_db
    from mcrm.reports.funnel import build, parse_steps, parse_within

    parse_steps(steps)
    w = parse_within(within)
    ws = workspace(ctx)
    p = report_period(ctx, from_, to, as_of_)
    with open_db(ws) as con:
        report = build(con, ws, p, steps, w, by.value if by else None)
    return emit_report(ctx, report, fmt, out, raw, table)


@app.command("lifecycle")
def lifecycle(
    ctx: typer.Context,
    interval: Annotated[
        Interval, typer.Option("--interval", help="Bucket by day, ISO week or month.")
    ] = Interval.week,
    from_: FromOpt = None,
    to: ToOpt = None,
    as_of_: ReportAsOfOpt = None,
    fmt: FormatOpt = None,
    out: OutOpt = None,
    raw: RawOpt = False,
    table: TableOpt = None,
) -> int:
    """Users per interval by lifecycle bucket (PostHog): new, returning, resurrecting, and
    dormant (active the interval before, not in this one). Default: the last 12 weeks (30 days
    by day, 12 months by month); the interval in progress is flagged partial."""
    from mcrm.db import open_db
    from mcrm.reports.lifecycle import build

    ws = workspace(ctx)
    p = report_period(ctx, from_, to, as_of_, LIFECYCLE_DAYS[interval.value])
    with open_db(ws) as con:
        report = build(con, ws, p, interval.value)
    return emit_report(ctx, report, fmt, out, raw, table)
