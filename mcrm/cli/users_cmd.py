"""`mcrm users show | list | export | merge | forget | export-data`."""

from __future__ import annotations

from typing import Annotated

import typer

from mcrm.cli.options import (
    AsOfOpt,
    FormatOpt,
    OutOpt,
    RawOpt,
    ShowPiiOpt,
    as_of,
    state,
    workspace,
)

app = typer.Typer(no_args_is_help=True, help="Look at people: profiles, lists, merges, erasure.")


@app.command("show")
def show(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="User id, or any of their ids (device, e-mail).")],
    as_of_: AsOfOpt = None,
    show_pii: ShowPiiOpt = False,
    fmt: FormatOpt = None,
) -> int:
    """The 360° profile: attributes, identities, devices, consents, purchases, activity."""
    from mcrm import api
    from mcrm.cli.render import profile
    from mcrm.output import Format, write_record

    data = api.user_profile(workspace(ctx), user, as_of(ctx, as_of_), show_pii)
    if fmt in (Format.json, Format.jsonl) or (fmt is None and not _tty()):
        write_record(data, fmt or Format.json)
    else:
        profile(data)
    return 0


def _tty() -> bool:
    import sys

    return sys.stdout.isatty()


@app.command("list")
def list_(
    ctx: typer.Context,
    where: Annotated[
        str | None, typer.Option("--where", help="SQL condition over the users table (alias u).")
    ] = None,
    segment: Annotated[
        str | None,
        typer.Option("--segment", help="Only members of this segment (its latest snapshot)."),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=0, help="At most N rows.")] = None,
    show_pii: ShowPiiOpt = False,
    fmt: FormatOpt = None,
    out: OutOpt = None,
    raw: RawOpt = False,
) -> int:
    """Users, one row each (e-mail and phone masked unless --show-pii)."""
    from mcrm import api
    from mcrm.output import resolve_format, write_rows

    rows = api.list_users(workspace(ctx), where, limit, show_pii, segment=segment)
    write_rows(rows, resolve_format(fmt, out), out, raw)
    return 0


@app.command("export")
def export(
    ctx: typer.Context,
    where: Annotated[
        str | None, typer.Option("--where", help="SQL condition over the users table (alias u).")
    ] = None,
    fmt: FormatOpt = None,
    out: OutOpt = None,
    raw: RawOpt = False,
) -> int:
    """Every profile field of every user (personal data included: handle with care)."""
    from mcrm import api
    from mcrm.output import resolve_format, write_rows
    from mcrm.people import EXPORT_COLS

    rows = api.list_users(workspace(ctx), where, None, True, EXPORT_COLS)
    write_rows(rows, resolve_format(fmt, out), out, raw)
    return 0


@app.command("merge")
def merge(
    ctx: typer.Context,
    from_user: Annotated[str, typer.Argument(help="The user to merge away.")],
    into_user: Annotated[str, typer.Argument(help="The user who keeps everything.")],
) -> int:
    """Merge user A into user B: events, orders, devices, consents and ids move to B."""
    from mcrm import api
    from mcrm.output import console

    a, b = api.merge_users(workspace(ctx), from_user, into_user)
    if not state(ctx).quiet:
        console().print(f"merged {a} into {b}", markup=False)
    return 0


@app.command("forget")
def forget(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="The user to erase.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> int:
    """Erase a person from every table (right to erasure); re-imports will not restore them."""
    import sys

    from mcrm import api
    from mcrm.errors import UsageError
    from mcrm.output import console

    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("forget needs --yes when not run from a terminal")
        answer = input(f"Erase user {user} from every table? This cannot be undone [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            console().print("nothing erased")
            return 1
    deleted = api.forget_user(workspace(ctx), user)
    if not state(ctx).quiet:
        parts = ", ".join(f"{t} {n}" for t, n in deleted.items() if n)
        console().print(f"erased user {user}: {parts or 'no rows'}", markup=False)
    return 0


@app.command("export-data")
def export_data(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="The user whose data to export.")],
    out: OutOpt = None,
) -> int:
    """Everything stored about a person, as one JSON document (data access request)."""
    from mcrm import api
    from mcrm.output import Format, write_record

    data = api.export_user_data(workspace(ctx), user)
    if out is not None:
        with out.open("wb") as fh:
            write_record(data, Format.json, fh)
    else:
        write_record(data, Format.json)
    return 0
