"""`mcrm campaigns ...`: campaign files in campaigns/ (SPEC §5)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mcrm.cli.options import (
    AsOfOpt,
    FormatOpt,
    OutOpt,
    ShowPiiOpt,
    as_of,
    report_problems,
    state,
    workspace,
)

app = typer.Typer(
    no_args_is_help=True,
    help="Campaigns defined in campaigns/*.yaml: list, validate (CI), preview, test, plan, why.",
)


@app.command("list")
def list_(ctx: typer.Context, fmt: FormatOpt = None, out: OutOpt = None) -> int:
    """Every campaign: audience, channels, purpose, schedule, variants and holdout."""
    from mcrm.campaigns.engine import list_campaigns
    from mcrm.output import resolve_format, write_rows

    write_rows(list_campaigns(workspace(ctx)), resolve_format(fmt, out), out)
    return 0


@app.command("validate")
def validate(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="Campaigns (default: all).")] = None,
) -> int:
    """Check campaign files, their templates and the segments they use: every problem at
    once (exit 1 if any). Suitable for CI."""
    from mcrm.campaigns.engine import validate as run
    from mcrm.output import console

    warnings: list[Any] = []
    errors, count = run(workspace(ctx), names, warnings)
    for w in warnings:
        console().print(f"warning: {w.render()}", markup=False)
        if w.hint:
            console().print(f"  hint: {w.hint}", markup=False)
    return report_problems(ctx, errors, "campaigns/", f"{count} campaign(s) valid")


@app.command("preview")
def preview(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Campaign name.")],
    user: Annotated[
        str | None,
        typer.Option("--user", help="This user (id, e-mail, phone or device id), any status."),
    ] = None,
    sample: Annotated[
        int | None,
        typer.Option("--sample", help="N planned users in a stable random order (default 3)."),
    ] = None,
    channel: Annotated[
        str | None, typer.Option("--channel", help="Render this channel instead.")
    ] = None,
    variant: Annotated[
        str | None, typer.Option("--variant", help="Render this variant instead.")
    ] = None,
    locale: Annotated[
        str | None,
        typer.Option("--locale", help="Render in this locale (e.g. cs, zh-CN) instead."),
    ] = None,
    show_pii: ShowPiiOpt = False,
    as_of_: AsOfOpt = None,
    fmt: FormatOpt = None,
    out: OutOpt = None,
) -> int:
    """Messages rendered exactly as they would be sent (parts, e-mail headers, SMS segments);
    nothing is stored or sent. E-mail addresses and phone numbers are masked unless
    --show-pii. A template error fails with its file:line."""
    import sys

    from mcrm.campaigns.engine import load
    from mcrm.campaigns.preview import as_rows, as_text
    from mcrm.campaigns.preview import preview as run
    from mcrm.output import Format, Rows, write_rows

    ws = workspace(ctx)
    got = run(
        ws,
        name,
        as_of=as_of(ctx, as_of_),
        user=user,
        sample=sample,
        channel=channel,
        variant=variant,
        locale=locale,
        show_pii=show_pii,
    )
    if (fmt is None or fmt is Format.table) and out is None:
        price = load(ws, name)[1].sms_price
        sys.stdout.write(as_text(got, price))
        sys.stdout.flush()
        return 0
    cols, rows = as_rows(got)
    write_rows(
        Rows(cols, rows, frozenset({"parts", "files", "headers"})), fmt or Format.jsonl, out
    )
    return 0


@app.command("test")
def test(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="Campaigns (default: all).")] = None,
    update: Annotated[
        bool, typer.Option("--update", help="Rewrite the expected files that differ.")
    ] = False,
) -> int:
    """Golden previews: render every campaign for the fixture users of
    campaigns/tests/users.yaml and compare with campaigns/tests/expected/ (diff on stdout,
    exit 1 on a difference; --update accepts the new output)."""
    import sys

    from mcrm.campaigns.goldens import run

    outcomes, probs = run(workspace(ctx), names, update)
    for o in outcomes:
        if o.diff and not (update and state(ctx).quiet):
            sys.stdout.write(o.diff)
    sys.stdout.flush()
    ok = sum(1 for o in outcomes if o.status == "ok")
    updated = sum(1 for o in outcomes if o.status == "updated")
    msg = f"{ok} campaign(s) match their golden previews" + (
        f", {updated} updated" if updated else ""
    )
    return report_problems(ctx, probs.errors, "campaigns/tests/", msg)


@app.command("plan")
def plan(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Campaign name.")],
    as_of_: AsOfOpt = None,
    plan_out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "--plan-out",
            help="Write the plan (JSON lines) here instead of .mcrm/plans/<campaign>/.",
        ),
    ] = None,
    no_render: Annotated[
        bool,
        typer.Option(
            "--no-render",
            help="Do not render the planned messages (no message hashes or SMS segments; "
            "template skips and errors then surface at send). For very large audiences.",
        ),
    ] = False,
    fmt: FormatOpt = None,
) -> int:
    """Resolve the audience: per user the channel, variant or holdout, UTC send time, or the
    suppression reason. Stores the plan (table plan_rows and a JSON-lines file) and prints
    the summary: counts per status, channel, variant and reason, and the send window."""
    from mcrm.campaigns.engine import plan_campaign
    from mcrm.output import console, resolve_format, write_rows

    res = plan_campaign(workspace(ctx), name, as_of(ctx, as_of_), plan_out, render=not no_render)
    if not state(ctx).quiet:
        console().print(
            f"plan {res.plan_id} for {res.campaign}, occurrence {res.occurrence}: "
            f"{res.planned} of {res.audience} audience member(s) planned; rows in {res.file}",
            markup=False,
        )
    write_rows(res.summary, resolve_format(fmt, None))
    return 0


@app.command("why")
def why(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Campaign name.")],
    user: Annotated[str, typer.Argument(help="User id (or e-mail, phone, device id).")],
    as_of_: AsOfOpt = None,
    fmt: FormatOpt = None,
) -> int:
    """The plan row for one user, with the reason in words."""
    from mcrm.campaigns.engine import why as run
    from mcrm.output import Rows, console, resolve_format, write_rows

    row = run(workspace(ctx), name, user, as_of(ctx, as_of_))
    if not state(ctx).quiet:
        console().print(row["explanation"], markup=False)
    write_rows(Rows(list(row), [list(row.values())]), resolve_format(fmt, None))
    return 0
