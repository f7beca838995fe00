"""`mcrm send` and `mcrm outbox ...` (SPEC §5.3, §6.2)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mcrm.cli.options import AsOfOpt, FormatOpt, OutOpt, as_of, state, workspace

outbox_app = typer.Typer(no_args_is_help=True, help="The outbox: one row per message.")


def send(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Campaign name.")],
    plan: Annotated[
        Path | None,
        typer.Option("--plan", help="Send exactly this plan file (default: plan now)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Render the plan's messages; record nothing.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Send at most N messages.")
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask (required when not on a terminal).")
    ] = False,
    retry_unknown: Annotated[
        bool,
        typer.Option(
            "--retry-unknown",
            help="Also resend messages whose outcome is unknown (they MAY have arrived).",
        ),
    ] = False,
    now: AsOfOpt = None,
) -> int:
    """Send a plan through the outbox, each message at most once: rows are written under their
    idempotency key before the wire, consent and addresses are checked again, results are
    stored as they arrive. Prints a JSON summary."""
    import json

    from mcrm.dispatch.send import send as run
    from mcrm.errors import UsageError
    from mcrm.output import console

    if not dry_run and not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"sending {name} needs --yes when not run from a terminal",
                hint="or try it first with --dry-run",
            )
        if not typer.confirm(f"send campaign {name} now?"):
            return 1
    res = run(
        workspace(ctx),
        name,
        plan_file=plan,
        now=as_of(ctx, now),
        dry_run=dry_run,
        limit=limit,
        retry_unknown=retry_unknown,
    )
    if not state(ctx).quiet:
        if dry_run:
            msg = f"dry run of plan {res.plan_id}: {res.rendered} message(s) rendered, none sent"
        else:
            sent = res.outcomes.get("sent", 0)
            msg = (
                f"plan {res.plan_id}: {sent} sent, {res.enqueued} new in the outbox, "
                f"{res.already_queued} already there, {res.not_due} waiting"
            )
        console().print(msg, markup=False)
    sys.stdout.write(json.dumps(res.as_dict()) + "\n")
    # SPEC §2: a partial send (failures or unknown outcomes in this send) exits 1
    return 1 if res.outcomes.get("failed") or res.outcomes.get("unknown") else 0


def run(
    ctx: typer.Context,
    now: Annotated[
        str | None,
        typer.Option("--now", help="Run as if it were this instant (tests, backfills)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what is due; plan and send nothing.")
    ] = False,
    grace: Annotated[
        str,
        typer.Option("--grace", help="Catch up a missed schedule slot this long after it."),
    ] = "6h",
    wait: Annotated[
        float, typer.Option("--wait", min=0, help="Seconds to wait for a running run.")
    ] = 10.0,
    retry_unknown: Annotated[
        bool,
        typer.Option(
            "--retry-unknown",
            help="Also resend messages whose outcome is unknown (they MAY have arrived).",
        ),
    ] = False,
) -> int:
    """The cron entry point: plan every scheduled slot that is due (once), every trigger
    campaign, and send every due message; overlapping runs are locked out (exit 3). Prints a
    JSON summary for CI logs."""
    import json

    from mcrm.dispatch.run import run as go
    from mcrm.output import console
    from mcrm.timeutil import parse_duration

    res = go(
        workspace(ctx),
        now=as_of(ctx, now),
        dry_run=dry_run,
        grace=parse_duration(grace, "--grace"),
        wait_s=wait,
        retry_unknown=retry_unknown,
    )
    if not state(ctx).quiet:
        sent = sum(o.get("sent", 0) for o in res.outcomes.values())
        console().print(
            f"run at {res.now:%Y-%m-%d %H:%M}Z: {len(res.planned)} plan(s), "
            f"{len(res.missed)} missed slot(s), {sent} message(s) sent"
            + (" (dry run)" if dry_run else ""),
            markup=False,
        )
    sys.stdout.write(json.dumps(res.as_dict()) + "\n")
    bad = any(o.get("failed") or o.get("unknown") for o in res.outcomes.values())
    return 1 if bad else 0


@outbox_app.command("stats")
def stats(
    ctx: typer.Context,
    campaign: Annotated[str | None, typer.Argument(help="One campaign (default: all).")] = None,
    fmt: FormatOpt = None,
) -> int:
    """Messages per campaign, channel and state."""
    from mcrm.db import open_db
    from mcrm.dispatch.outbox import stats as run
    from mcrm.output import Rows, resolve_format, write_rows

    with open_db(workspace(ctx)) as con:
        rows = run(con, campaign)
    write_rows(
        Rows(["campaign", "channel", "status", "messages"], rows), resolve_format(fmt, None)
    )
    return 0


CampaignOpt = Annotated[str | None, typer.Option("--campaign", help="One campaign.")]
StatusOpt = Annotated[
    str | None, typer.Option("--status", help="One state (pending, sent, unknown, ...).")
]


def _write_outbox(
    ctx: typer.Context,
    campaign: str | None,
    status: str | None,
    limit: int | None,
    fmt: FormatOpt,
    out: Path | None,
) -> int:
    from mcrm.db import open_db
    from mcrm.dispatch.outbox import list_rows
    from mcrm.output import resolve_format, write_rows

    with open_db(workspace(ctx)) as con:
        rows = list_rows(con, campaign, status, limit)
    write_rows(rows, resolve_format(fmt, out), out)
    return 0


@outbox_app.command("list")
def list_(
    ctx: typer.Context,
    campaign: CampaignOpt = None,
    status: StatusOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N rows.")] = 100,
    fmt: FormatOpt = None,
    out: OutOpt = None,
) -> int:
    """Outbox rows, newest first: key, campaign, occurrence, user, channel, lane, state,
    attempts, next attempt, last error, provider message id (never addresses)."""
    return _write_outbox(ctx, campaign, status, limit, fmt, out)


@outbox_app.command("export")
def export(
    ctx: typer.Context,
    campaign: CampaignOpt = None,
    status: StatusOpt = None,
    fmt: FormatOpt = None,
    out: OutOpt = None,
) -> int:
    """Every outbox row (for audits and hand-off); --format csv|jsonl|parquet, --out FILE."""
    return _write_outbox(ctx, campaign, status, None, fmt, out)


@outbox_app.command("retry")
def retry(
    ctx: typer.Context,
    campaign: CampaignOpt = None,
    unknown: Annotated[
        bool,
        typer.Option(
            "--unknown",
            help="Also re-queue 'unknown' rows: they MAY have been delivered already.",
        ),
    ] = False,
) -> int:
    """Re-queue failed rows (and, with --unknown, rows whose outcome is unknown) for the next
    send or run, with their attempts reset. Invalid recipients are never re-queued."""
    from mcrm.db import open_db
    from mcrm.dispatch.outbox import requeue
    from mcrm.output import console
    from mcrm.segments.engine import _now

    with open_db(workspace(ctx), write=True) as con:
        n = requeue(con, campaign, unknown, _now())
    if not state(ctx).quiet:
        console().print(f"{n} message(s) re-queued", markup=False)
    sys.stdout.write(f"{n}\n")
    return 0
