"""`mcrm import KIND FILE...`, `mcrm import rejects`, `mcrm import history`."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from mcrm.cli.options import FormatOpt, OutOpt, RawOpt, state, workspace
from mcrm.errors import ExitCode, UsageError

app = typer.Typer(
    no_args_is_help=True,
    help="Import export files (CSV/TSV, JSON, JSON lines, Parquet; .gz/.zst; globs) into the "
    "workspace database. Typed and strict: bad rows are kept as rejects, never coerced; "
    "atomic; idempotent.",
)

KIND_HELP = {
    "events": "App events (one row per event; dedupe on event_id, $insert_id or a hash).",
    "purchases": "E-shop orders (one row per order; a later row for an order updates it).",
    "users": "User profiles (upsert by user_id; later non-empty values win).",
    "devices": "Devices and push tokens per user.",
    "consents": "Consent ledger rows (append-only; the latest row per channel wins).",
    "fx-rates": "Exchange rates to the base currency (date, currency, rate).",
    "ad-spend": "Ad spend per day, source and campaign (for CAC / ROAS).",
    "message-events": "Delivery and engagement events from messaging providers.",
}
PRESET_FOR = {
    "events": "amplitude, mixpanel, firebase, appsflyer",
    "purchases": "shopify",
}


def _make(kind: str):  # type: ignore[no-untyped-def]
    presets = PRESET_FOR.get(kind)

    def command(
        ctx: typer.Context,
        files: Annotated[list[str], typer.Argument(help="Files or globs to import.")],
        preset: Annotated[
            str | None,
            typer.Option(
                "--preset",
                "-p",
                help=f"Vendor export format ({presets})." if presets else "Vendor export format.",
            ),
        ] = None,
        map_: Annotated[
            list[str] | None,
            typer.Option("--map", "-m", help="Map a file column to a column: SOURCE=COLUMN."),
        ] = None,
        max_reject_rate: Annotated[
            str | None,
            typer.Option(
                "--max-reject-rate",
                envvar="MCRM_MAX_REJECT_RATE",
                help="Exit 1 when more rows than this are rejected: '1%' or 0.01 "
                "[default: imports.max_reject_rate, 1%].",
                show_default=False,
            ),
        ] = None,
        delimiter: Annotated[
            str | None,
            typer.Option("--delimiter", help="CSV delimiter (default: from the header line)."),
        ] = None,
        decimal_comma: Annotated[
            bool, typer.Option("--decimal-comma", help="Numbers use a decimal comma: 12,50.")
        ] = False,
        encoding: Annotated[
            str, typer.Option("--encoding", help="Text encoding of CSV files.")
        ] = "utf-8",
        epoch: Annotated[
            str | None,
            typer.Option(
                "--epoch", help="Numeric timestamps are epoch s, ms, us (or auto by size)."
            ),
        ] = None,
        fmt: FormatOpt = None,
    ) -> int:
        from mcrm import api
        from mcrm.cli.render import import_summary

        ws = workspace(ctx)
        mapping = tuple(_parse_map(m) for m in (map_ or []))
        rate = _parse_rate(max_reject_rate) if max_reject_rate is not None else None
        with _progress(state(ctx).quiet) as progress:
            result = api.import_files(
                ws,
                kind,
                files,
                preset=preset,
                mapping=mapping,
                delimiter=delimiter,
                decimal_comma=decimal_comma,
                encoding=encoding,
                epoch=epoch,
                quiet=state(ctx).quiet,
                progress=progress,
            )
        limit = rate if rate is not None else ws.settings.imports.max_reject_rate
        import_summary(result, fmt, state(ctx).quiet, limit)
        return int(ExitCode.PROBLEMS if result.reject_rate > limit else ExitCode.OK)

    command.__doc__ = KIND_HELP[kind]
    return command


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str], None] | None]:
    """A status line on stderr naming the file being imported, only on a terminal."""
    import sys

    if quiet or not sys.stderr.isatty():
        yield None
        return
    from mcrm.output import console

    with console().status("importing") as status:
        yield lambda shown: status.update(f"importing {shown}")


def _parse_map(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise UsageError(f"--map needs SOURCE=COLUMN, found '{text}'")
    src, dest = text.split("=", 1)
    if not src.strip() or not dest.strip():
        raise UsageError(f"--map needs SOURCE=COLUMN, found '{text}'")
    return src.strip(), dest.strip()


def _parse_rate(text: str) -> float:
    from mcrm.config import parse_rate

    rate = parse_rate(text)
    if rate is None or not 0 <= rate <= 1:
        raise UsageError(f"--max-reject-rate must be like '1%' or 0.01, found '{text}'")
    return rate


for _kind in KIND_HELP:
    app.command(_kind)(_make(_kind))


@app.command("rejects")
def rejects(
    ctx: typer.Context,
    import_id: Annotated[
        int | None, typer.Option("--import", help="Only this import (default: the latest).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Rejects of every import.")] = False,
    fmt: FormatOpt = None,
    out: OutOpt = None,
    raw: RawOpt = False,
) -> int:
    """Rows an import rejected: file, line, column, reason and the raw text."""
    from mcrm import api
    from mcrm.output import resolve_format, write_rows

    rows = api.import_rejects(workspace(ctx), None if all_ else import_id, latest=not all_)
    write_rows(rows, resolve_format(fmt, out), out, raw)
    return 0


@app.command("history")
def history(
    ctx: typer.Context, fmt: FormatOpt = None, out: OutOpt = None, raw: RawOpt = False
) -> int:
    """Past imports with their counts, newest first."""
    from mcrm import api
    from mcrm.output import resolve_format, write_rows

    write_rows(api.import_history(workspace(ctx)), resolve_format(fmt, out), out, raw)
    return 0
