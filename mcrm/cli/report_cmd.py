"""`mcrm report ...` (SPEC §7): the group, the options every report shares, and registration.

Each report's command lives in its own module (`mcrm/cli/report_<name>.py`) that decorates
`app` below; `_register()` imports them. The computations live in `mcrm.reports`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mcrm.cli.options import AsOfOpt, FormatOpt, OutOpt, RawOpt, as_of, state, workspace

if TYPE_CHECKING:
    from mcrm.reports.common import Period, Report

app = typer.Typer(
    no_args_is_help=True,
    help="Reports: engagement and revenue, acquisition, cohorts, funnels, features, messaging, "
    "campaign uplift against the holdout, segments over time, and one HTML report with charts. "
    "Definitions: docs/reports.md.",
)

FromOpt = Annotated[
    str | None,
    typer.Option(
        "--from",
        help="First day of the period (ISO date, workspace zone; default: 29 days before --to).",
        show_default=False,
    ),
]
ToOpt = Annotated[
    str | None,
    typer.Option(
        "--to",
        help="Last day of the period, inclusive (default: the --as-of day).",
        show_default=False,
    ),
]


class Interval(StrEnum):
    """The --interval values of the trend and lifecycle reports."""

    day = "day"
    week = "week"
    month = "month"


# the same --as-of as every other command (MCRM_AS_OF too)
ReportAsOfOpt = AsOfOpt
ByOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--by",
        help="Break down by platform, os, country or segment:NAME (repeatable); totals are "
        "computed separately, never summed from the groups.",
        show_default=False,
    ),
]
TableOpt = Annotated[
    str | None,
    typer.Option(
        "--table",
        help="Write only this table of the report (csv and parquet write the first by default).",
        show_default=False,
    ),
]


def report_period(
    ctx: typer.Context, from_: str | None, to: str | None, as_of_: str | None, days: int = 30
) -> Period:
    from mcrm.reports.common import period

    ws = workspace(ctx)
    return period(ws.settings.timezone, from_, to, as_of(ctx, as_of_), days)


def emit_report(
    ctx: typer.Context,
    report: Report,
    fmt: FormatOpt,
    out: Path | None,
    raw: bool,
    table: str | None,
) -> int:
    from mcrm.reports.common import emit

    emit(report, fmt, out, raw, table, state(ctx).quiet)
    return 0


__all__ = [
    "ByOpt",
    "FormatOpt",
    "FromOpt",
    "Interval",
    "OutOpt",
    "RawOpt",
    "ReportAsOfOpt",
    "TableOpt",
    "ToOpt",
    "app",
    "emit_report",
    "report_period",
]


def _register() -> None:
    # one import per report module; each decorates `app`
    import mcrm.cli.report_campaign  # noqa: F401
    import mcrm.cli.report_cohorts  # noqa: F401
    import mcrm.cli.report_html  # noqa: F401
    import mcrm.cli.report_messaging  # noqa: F401
    import mcrm.cli.report_overview  # noqa: F401


_register()
