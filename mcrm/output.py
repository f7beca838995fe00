"""Every row format, written through one binary stream.

stdout carries data only. `table | csv | json | jsonl` go to stdout or `--out FILE` as the same
UTF-8 bytes; `parquet` needs `--out`. JSON is an API: keys in column order, timestamps as
ISO-8601 UTC with `Z`, dates as `YYYY-MM-DD`, money (Decimal) as strings, JSON columns as nested
values. CSV cells that start with `=`, `+`, `-`, `@` (or tab / CR) are prefixed with `'` against
spreadsheet formula injection unless `raw=True` (SPEC §9). The table format is for people and
not a stable interface.

Summaries, progress and warnings never come through here: they go to `console()` (stderr).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum, StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mcrm.errors import UsageError, os_reason

if TYPE_CHECKING:
    from rich.console import Console


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    jsonl = "jsonl"
    parquet = "parquet"


@dataclass
class Rows:
    """A result set: column names and row tuples (an iterator is fine: it is streamed)."""

    columns: list[str]
    rows: Iterable[Sequence[Any]]
    json_columns: frozenset[str] = frozenset()
    title: str | None = None
    # fractions shown as percentages in tables (JSON and CSV keep the fraction)
    percent_columns: frozenset[str] = frozenset(
        {"share", "row_share", "rate", "conversion", "reject_rate"}
    )


_console: Console | None = None


def console() -> Console:
    """The one stderr console (colour only on a terminal, honouring NO_COLOR)."""
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(
            stderr=True,
            highlight=False,
            no_color="NO_COLOR" in os.environ,
            width=None if sys.stderr.isatty() else 120,
            # a warning or error is one line however long (style: one line per problem)
            soft_wrap=True,
        )
    return _console


def resolve_format(fmt: Format | None, out: Path | None) -> Format:
    """The default: table on a terminal, jsonl when stdout is piped (see --help)."""
    if fmt is not None:
        if fmt is Format.parquet and out is None:
            raise UsageError("--format parquet needs --out FILE")
        return fmt
    if out is not None:
        suffix = out.suffix.lower().lstrip(".")
        if suffix in {"csv", "json", "jsonl", "parquet"}:
            return Format(suffix)
        return Format.jsonl
    return Format.table if sys.stdout.isatty() else Format.jsonl


def json_value(value: Any, is_json: bool = False) -> Any:
    if value is None:
        return None
    if is_json and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat(timespec="microseconds" if value.microsecond else "seconds") + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value


def text_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date | Decimal):
        return str(json_value(value))
    if isinstance(value, dict | list):
        return json.dumps(json_value(value), ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def table_value(value: Any, percent: bool = False) -> str:
    """A cell for people: fractions as percentages, floats rounded, NULL as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return (
            f"{value * 100:.1f}%"
            if percent
            else f"{value:.4g}"
            if abs(value) < 1e6
            else (f"{value:.0f}")
        )
    return text_value(value)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """Prefix a cell a spreadsheet would run as a formula (OWASP CSV injection)."""
    if cell.startswith(FORMULA_START):
        # A plain negative number is data, not a formula.
        try:
            float(cell)
            return cell
        except ValueError:
            return "'" + cell
    return cell


def write_rows(
    result: Rows,
    fmt: Format,
    out: Path | None = None,
    raw: bool = False,
    stream: IO[bytes] | None = None,
) -> int:
    """Write `result` in `fmt`; returns the number of rows written."""
    if fmt is Format.parquet:
        if out is None:
            raise UsageError("--format parquet needs --out FILE")
        return _write_parquet(result, out)
    if out is not None:
        try:
            with out.open("wb") as fh:
                return _write_stream(result, fmt, fh, raw)
        except OSError as e:
            raise UsageError(f"cannot write {out}: {os_reason(e, out)}") from None
    target = stream if stream is not None else sys.stdout.buffer
    n = _write_stream(result, fmt, target, raw)
    target.flush()
    return n


def _write_stream(result: Rows, fmt: Format, fh: IO[bytes], raw: bool) -> int:
    cols = result.columns
    jc = result.json_columns
    n = 0
    if fmt is Format.table:
        return _write_table(result, fh)
    if fmt is Format.csv:
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=True)
        w = csv.writer(text, lineterminator="\n")
        w.writerow(cols)
        for row in result.rows:
            cells = [text_value(v) for v in row]
            w.writerow(cells if raw else [neutralise(c) for c in cells])
            n += 1
        text.detach()
        return n
    if fmt is Format.jsonl:
        for row in result.rows:
            obj = {c: json_value(v, c in jc) for c, v in zip(cols, row, strict=True)}
            fh.write(json.dumps(obj, ensure_ascii=False).encode() + b"\n")
            n += 1
        return n
    # json: one array, streamed element by element
    fh.write(b"[")
    for row in result.rows:
        obj = {c: json_value(v, c in jc) for c, v in zip(cols, row, strict=True)}
        fh.write((b",\n" if n else b"\n") + json.dumps(obj, ensure_ascii=False).encode())
        n += 1
    fh.write(b"\n]\n" if n else b"]\n")
    return n


def _write_table(result: Rows, fh: IO[bytes]) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=result.title, show_edge=False, header_style="bold")
    for c in result.columns:
        table.add_column(c, overflow="fold")
    n = 0
    pct = [c in result.percent_columns for c in result.columns]
    for row in result.rows:
        table.add_row(*[table_value(v, p) for v, p in zip(row, pct, strict=True)])
        n += 1
    text = io.TextIOWrapper(fh, encoding="utf-8", write_through=True)
    Console(
        file=text,
        width=None if sys.stdout.isatty() else 160,
        no_color="NO_COLOR" in os.environ,
        highlight=False,
    ).print(table)
    text.detach()
    return n


def _write_parquet(result: Rows, out: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [list(r) for r in result.rows]
    arrays = {c: [r[i] for r in rows] for i, c in enumerate(result.columns)}
    table = pa.table(arrays)
    try:
        pq.write_table(table, out)
    except OSError as e:
        raise UsageError(f"cannot write {out}: {e}") from None
    return len(rows)


def write_record(obj: dict[str, Any], fmt: Format, stream: IO[bytes] | None = None) -> None:
    """One document (a profile, a config): JSON for json/jsonl, a key/value table otherwise."""
    target = stream if stream is not None else sys.stdout.buffer
    if fmt in (Format.json, Format.jsonl):
        indent = 2 if fmt is Format.json else None
        target.write(
            json.dumps(json_value(obj), ensure_ascii=False, indent=indent).encode() + b"\n"
        )
        target.flush()
        return
    flat = [(k, v) for k, v in _flatten(obj)]
    write_rows(Rows(["key", "value"], flat), fmt if fmt is not Format.parquet else Format.table)


def _flatten(obj: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, obj
