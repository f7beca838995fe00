"""`mcrm providers check [NAME...]` (docs/dispatch.md, "Checking providers")."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from mcrm.cli.options import FormatOpt, OutOpt, state, workspace

app = typer.Typer(no_args_is_help=True, help="The providers: of mcrm.yaml (one per lane).")


@app.command("check")
def check(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="NAME",
            help="Provider entries to check (default: all, in file order).",
            show_default=False,
        ),
    ] = None,
    fmt: FormatOpt = None,
    out: OutOpt = None,
) -> int:
    """Verify each provider's credentials and reachability, sending nothing.

    file: the directory is writable. smtp: connect, EHLO, STARTTLS and AUTH if configured,
    QUIT. webhook, inapp: SSRF guard, secret format, TCP (no request). fcm: service-account
    file, OAuth2 token, a validate_only message. expo: getReceipts with no ids. onesignal: key
    and app_id on a request with no audience. sendgrid: a sandbox-mode mail send. twilio:
    credential shapes and TCP (credentials not verified). One row per provider: provider,
    type, channels, status (ok / FAIL), checked, problem (with a hint); never a secret.
    Exits 1 if any check fails, 2 on a config error in providers: (e.g. an unknown type).
    """
    from mcrm.dispatch.check import CheckResult, check_providers
    from mcrm.output import Rows, console, resolve_format, write_rows

    s = state(ctx)
    ws = workspace(ctx)
    results = check_providers(ws, names or None, dict(os.environ), debug=s.debug)
    write_rows(
        Rows(list(CheckResult.COLUMNS), [r.row() for r in results]), resolve_format(fmt, out), out
    )
    failed = [r for r in results if not r.ok]
    if not s.quiet:
        if not results:
            console().print("mcrm.yaml has no providers: to check", markup=False)
        else:
            console().print(
                f"{len(results)} provider(s) checked: {len(results) - len(failed)} ok, "
                f"{len(failed)} failed",
                markup=False,
            )
    return 1 if failed else 0
