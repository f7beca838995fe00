"""From a file to a typed staging table, with every bad row turned into a reject.

Formats come from the extension (`.csv`, `.tsv`, `.json`, `.jsonl`/`.ndjson`, `.parquet`,
each optionally `.gz` or `.zst`); a `.json` file holding one object per line is read as JSON
lines (Amplitude names its export files `*.json.gz`).

Two paths produce the same staging shape (canonical columns, typed, plus `_row`, the record's
0-based position in the file, and `_line`, its line where that is known exactly):

- **Typed CSV** (no preset): one `read_csv` with a declared type per column and
  `store_rejects`, the same statement the import benchmark's baseline runs. Naive timestamps are
  read in the workspace zone by setting the session `TimeZone` for the read only.
- **VARCHAR values cast in SQL** (JSON, Parquet, presets, epoch timestamps): each value is cast
  with `TRY_CAST`, and a non-empty value whose cast gives NULL rejects the row, naming the
  column and (unless it is personal data) the value.

DuckDB's `TRY_CAST('...+02:00' AS TIMESTAMP)` silently drops the offset, so strings with an
offset are recognised and cast as TIMESTAMPTZ.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mcrm.errors import DataError, UsageError, os_reason
from mcrm.ingest.kinds import DEFAULTS, NORMALISE, Col, Kind

if TYPE_CHECKING:
    import duckdb


FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
LINE_DELIM = "\\x1e"  # a control character JSON text can never hold unescaped


@dataclass(frozen=True)
class ReadOptions:
    delimiter: str | None = None
    decimal_comma: bool = False
    encoding: str = "utf-8"
    epoch: str | None = None  # s | ms | us | auto
    mapping: tuple[tuple[str, str], ...] = ()


@dataclass
class Source:
    path: Path
    display: str
    fmt: str
    compression: str


@dataclass
class Staged:
    """The result of staging one file for one kind."""

    table: str
    rows_read: int
    rejected: int
    ignored_columns: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def detect(path: Path, display: str) -> Source:
    """Check the file exists and is readable, and find its format and compression."""
    if not path.exists():
        raise DataError(f"file not found: {display}")
    if path.is_dir():
        raise DataError(
            f"{display} is a directory, not a file",
            hint=f"to import every file in it, use a glob: '{display.rstrip('/')}/*.csv'",
        )
    suffixes = [s.lower() for s in path.suffixes]
    compression = "none"
    if suffixes and suffixes[-1] in COMPRESSIONS:
        compression = COMPRESSIONS[suffixes.pop()]
    ext = suffixes[-1] if suffixes else ""
    if ext not in FORMATS:
        raise UsageError(
            f"unknown file format '{ext or path.name}' ({display})",
            hint="supported: .csv .tsv .json .jsonl .ndjson .parquet, optionally .gz or .zst",
        )
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as e:
        raise DataError(f"cannot read {display}: {os_reason(e, path)}") from None
    fmt = FORMATS[ext]
    if fmt == "json" and _first_char(path, compression) == "{":
        fmt = "jsonl"
    return Source(path, display, fmt, compression)


def _open_text_head(path: Path, compression: str, size: int = 65536) -> bytes:
    if compression == "gzip":
        import gzip

        with gzip.open(path, "rb") as fh:
            return fh.read(size)
    if compression == "zstd":
        import zstandard

        with path.open("rb") as raw:
            reader = zstandard.ZstdDecompressor().stream_reader(raw)
            return reader.read(size)
    with path.open("rb") as fh:
        return fh.read(size)


def _first_char(path: Path, compression: str) -> str:
    head = _open_text_head(path, compression, 4096)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    return text[:1]


def is_empty(src: Source) -> bool:
    head = _open_text_head(src.path, src.compression, 4096)
    if src.fmt == "parquet":
        return len(head) == 0
    return not head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")


def csv_header(src: Source, opts: ReadOptions) -> tuple[list[str], str]:
    """The header's column names and the delimiter."""
    head = _open_text_head(src.path, src.compression)
    if head.startswith(b"\xff\xfe") or head.startswith(b"\xfe\xff"):
        if opts.encoding.lower().replace("-", "") != "utf16":
            raise DataError(
                f"{src.display} is UTF-16 encoded",
                hint="pass --encoding utf-16, or convert it: iconv -f UTF-16 -t UTF-8",
            )
    try:
        text = head.decode("utf-16" if "16" in opts.encoding else opts.encoding)
    except UnicodeDecodeError:
        try:
            first = head.split(b"\n", 1)[0]
            text = first.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(
                f"{src.display}: header is not valid UTF-8 (byte {e.start})",
                hint="pass --encoding latin-1 (or the file's encoding)",
            ) from None
    except LookupError:
        raise UsageError(f"unknown encoding '{opts.encoding}'") from None
    text = text.lstrip("\ufeff")
    first_line = text.splitlines()[0] if text else ""
    delim = opts.delimiter or ("\t" if src.fmt == "tsv" else ",")
    if opts.delimiter is None and src.fmt == "csv" and delim not in first_line:
        for cand in (";", "\t", "|"):
            if cand in first_line:
                delim = cand
                break
    names = next(csv.reader(io.StringIO(first_line), delimiter=delim), [])
    names = [n.strip() for n in names]
    if not names or all(not n for n in names):
        raise DataError(f"{src.display}: the first line has no column names")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(f"{src.display}: duplicate column names in the header: {', '.join(dupes)}")
    return names, delim


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def resolve_mapping(
    kind: Kind, found: list[str], opts: ReadOptions, display: str
) -> tuple[dict[str, str], list[str]]:
    """canonical column -> source column, and the source columns nobody reads."""
    explicit = dict(opts.mapping)
    for src_col, dest in explicit.items():
        if kind.col(dest) is None:
            from mcrm.errors import did_you_mean

            raise UsageError(
                f"--map {src_col}={dest}: '{dest}' is not a column of {kind.name}",
                hint=did_you_mean(dest, kind.names) or f"columns: {', '.join(kind.names)}",
            )
        if src_col not in found:
            raise DataError(
                f"--map {src_col}={dest}: column '{src_col}' not in {display}",
                hint=f"found: {', '.join(found)}",
            )
    mapping: dict[str, str] = {}
    for src_col, dest in explicit.items():
        mapping[dest] = src_col
    for name in found:
        if kind.col(name) is not None and name not in mapping and name not in explicit:
            mapping[name] = name
    missing = [" or ".join(group) for group in kind.need if not any(g in mapping for g in group)]
    if missing:
        raise DataError(
            f"required column {', '.join(repr(m) for m in missing)} missing in {display}; "
            f"found: {', '.join(found) or '(none)'}",
            hint="rename the column, pass --map SOURCE=COLUMN, or use --preset",
        )
    used = set(mapping.values())
    ignored = [n for n in found if n not in used]
    return mapping, ignored


# ---------------------------------------------------------------------------------------------
# SQL building blocks


def ts_expr(raw: str, epoch: str | None) -> str:
    """SQL turning VARCHAR `raw` into a naive UTC TIMESTAMP (NULL when it cannot)."""
    offset = (
        f"regexp_matches({raw}, "
        "'[0-9]:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?\\s*(Z|z|UTC|[+-][0-9]{2}(:?[0-9]{2})?)$')"
    )
    with_offset = (
        "timezone('UTC', TRY_CAST(regexp_replace(regexp_replace("
        f"{raw}, '\\s*UTC$', 'Z'), '\\s*([+-][0-9]{{2}}):?([0-9]{{2}})$', '\\1:\\2') "
        "AS TIMESTAMPTZ))"
    )
    naive = f"timezone('UTC', timezone($zone, TRY_CAST({raw} AS TIMESTAMP)))"
    parts = ["CASE", f"WHEN {raw} IS NULL THEN NULL"]
    if epoch:
        num = f"TRY_CAST({raw} AS DOUBLE)"
        unit = {
            "s": "1000000.0",
            "ms": "1000.0",
            "us": "1.0",
            "auto": f"(CASE WHEN abs({num}) < 1e11 THEN 1000000.0 "
            f"WHEN abs({num}) < 1e14 THEN 1000.0 ELSE 1.0 END)",
        }[epoch]
        parts.append(
            f"WHEN regexp_full_match({raw}, '-?[0-9]+(\\.[0-9]+)?') THEN "
            f"make_timestamp(CAST(round({num} * {unit}) AS BIGINT))"
        )
    parts += [f"WHEN {offset} THEN {with_offset}", f"ELSE {naive}", "END"]
    return " ".join(parts)


BOOL_TRUE = "('true','t','1','yes','y','granted','opt_in','opted_in','subscribed','on')"
BOOL_FALSE = "('false','f','0','no','n','revoked','opt_out','opted_out','unsubscribed','off')"


def cast_expr(col: Col, raw: str, opts: ReadOptions) -> str:
    """SQL turning VARCHAR `raw` into the column's type (NULL when it cannot)."""
    p = col.parse
    if p == "str":
        return raw
    if p == "ts":
        return ts_expr(raw, opts.epoch)
    if p == "date":
        return f"TRY_CAST(left(trim({raw}), 10) AS DATE)"
    if p in ("decimal", "rate", "double"):
        v = f"replace({raw}, ',', '.')" if opts.decimal_comma else raw
        return f"TRY_CAST(trim({v}) AS {col.sql_type})"
    if p == "bool":
        lv = f"lower(trim({raw}))"
        return f"CASE WHEN {lv} IN {BOOL_TRUE} THEN true WHEN {lv} IN {BOOL_FALSE} THEN false END"
    if p == "json":
        return f"CASE WHEN json_valid({raw}) THEN CAST({raw} AS JSON) END"
    raise AssertionError(p)


def cast_error(col: Col, raw: str, typed: str, opts: ReadOptions) -> str:
    """SQL giving the reject reason for one column, or NULL."""
    what = {
        "ts": "a timestamp",
        "date": "a date",
        "decimal": "a number",
        "rate": "a number",
        "double": "a number",
        "bool": "true/false",
        "json": "JSON",
    }[col.parse]
    shown = "" if col.pii else f" ''' || left({raw}, 60) || '''"
    hint = ""
    if col.parse in ("decimal", "rate", "double") and not opts.decimal_comma:
        hint = (
            f" || CASE WHEN regexp_full_match(trim({raw}), '-?[0-9]+,[0-9]+') "
            "THEN ' (decimal comma? pass --decimal-comma)' ELSE '' END"
        )
    if col.parse == "ts" and not opts.epoch:
        hint = (
            f" || CASE WHEN regexp_full_match(trim({raw}), '-?[0-9]{{9,}}') "
            "THEN ' (epoch time? pass --epoch s|ms|us)' ELSE '' END"
        )
    return (
        f"CASE WHEN {raw} IS NOT NULL AND trim({raw}) <> '' AND ({typed}) IS NULL "
        f"THEN '{col.name}: cannot read{shown} as {what}'{hint} END"
    )


def normalise(kind: Kind, col: Col, expr: str) -> str:
    if col.name in NORMALISE:
        expr = NORMALISE[col.name].format(c=expr)
    if (kind.name, col.name) in DEFAULTS:
        expr = f"coalesce({expr}, {DEFAULTS[(kind.name, col.name)]})"
    return expr


# ---------------------------------------------------------------------------------------------
# Staging


class Stager:
    """Stages files for one import on one connection (temp table names are per import)."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, import_id: int, now: str, zone: str, zones: list[str]
    ) -> None:
        self.con = con
        self.import_id = import_id
        self.now = now
        self.zone = zone
        self.zones = zones
        self.n = 0
        # set by each CSV read: the file lines the reader rejected (for line numbers of later
        # rejects) and how many there were
        self.rejected_lines: list[int] = []
        self.last_rejected = 0

    def _name(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}_{self.import_id}_{self.n}"

    def params(self) -> dict[str, object]:
        return {"now": self.now, "zone": self.zone}

    # -- raw readers: a TEMP table with `_row` and either named VARCHAR columns or `j` JSON --

    def read_lines(self, src: Source) -> str:
        """JSON lines as (_row, _line, j): every physical line, blank ones skipped later."""
        name = self._name("lines")
        self.con.execute(
            f"CREATE TEMP TABLE {name} AS SELECT CAST(j AS VARCHAR) AS j "
            f"FROM read_csv({_lit(str(src.path))}, "
            f"columns={{'j': 'VARCHAR'}}, header=false, delim='{LINE_DELIM}', quote='', "
            f"escape='', auto_detect=false, max_line_size=67108864, "
            f"compression='{_duck_compression(src)}', strict_mode=false)"
        )
        return name

    def read_json_array(self, src: Source) -> str:
        import duckdb

        name = self._name("arr")
        try:
            self.con.execute(
                f"CREATE TEMP TABLE {name} AS SELECT CAST(json AS VARCHAR) AS j "
                f"FROM read_json_objects({_lit(str(src.path))}, "
                f"format='array', compression='{_duck_compression(src)}')"
            )
        except duckdb.Error as e:
            raise DataError(
                f"{src.display} is not a valid JSON array: {str(e).splitlines()[0]}",
                hint="a JSON file must hold one array of objects; for one object per line "
                "name it .jsonl",
            ) from None
        return name

    def read_csv_varchar(
        self, src: Source, opts: ReadOptions, names: list[str], delim: str
    ) -> str:
        """Every column as VARCHAR (for presets); structural rejects recorded."""
        cols = {n: "VARCHAR" for n in names}
        return self._read_csv(src, opts, cols, delim)

    def _csv_relation(
        self, src: Source, opts: ReadOptions, cols: dict[str, str], delim: str
    ) -> str:
        """`read_csv(...)` with declared types and its own rejects tables (collected later by
        `_collect_csv_rejects`)."""
        name = self._name("csv")
        self._pending = (f"rej_{name}", f"scan_{name}")
        columns = "{" + ", ".join(f"{_lit(k)}: {_lit(v)}" for k, v in cols.items()) + "}"
        extra = ", decimal_separator=','" if opts.decimal_comma else ""
        enc = opts.encoding.lower()
        if enc not in ("utf-8", "utf8"):
            extra += f", encoding={_lit(enc)}"
        return (
            f"read_csv({_lit(str(src.path))}, columns={columns}, header=true, "
            f"delim={_lit(delim)}, quote='\"', escape='\"', auto_detect=false, "
            f"compression='{_duck_compression(src)}', store_rejects=true, "
            f"rejects_table='{self._pending[0]}', rejects_scan='{self._pending[1]}', "
            f"max_line_size=16777216{extra})"
        )

    def _run_read(self, sql: str, src: Source, params: dict[str, object] | None = None) -> None:
        import duckdb

        try:
            self.con.execute(sql, params or {})
        except duckdb.Error as e:
            raise DataError(
                f"cannot read {src.display}: {str(e).splitlines()[0]}",
                hint="is it really a delimited text file? (--delimiter, --encoding)",
            ) from None

    def _collect_csv_rejects(self, src: Source, opts: ReadOptions) -> None:
        rej, scan = self._pending
        self.con.execute(
            f"INSERT INTO import_rejects SELECT {self.import_id}, {_lit(src.display)}, line, "
            f"column_name, {_reject_reason('error_type', 'error_message', 'column_name', opts)}, "
            f"csv_line FROM {rej} "
            # a short line is one error per missing column: report it once
            "QUALIFY error_type <> 'MISSING COLUMNS' "
            "OR row_number() OVER (PARTITION BY line, error_type ORDER BY column_idx) = 1"
        )
        self.rejected_lines = [
            r[0]
            for r in self.con.execute(f"SELECT DISTINCT line FROM {rej} ORDER BY 1").fetchall()
        ]
        self.last_rejected = len(self.rejected_lines)
        self.con.execute(f"DROP TABLE {rej}")
        self.con.execute(f"DROP TABLE {scan}")

    def _read_csv(self, src: Source, opts: ReadOptions, cols: dict[str, str], delim: str) -> str:
        rel = self._csv_relation(src, opts, cols, delim)
        name = self._name("csvt")
        self._run_read(f"CREATE TEMP TABLE {name} AS SELECT * FROM {rel}", src)
        self._collect_csv_rejects(src, opts)
        return name

    def read_parquet(self, src: Source) -> tuple[str, list[str]]:
        import duckdb

        name = self._name("pq")
        try:
            desc = self.con.execute(
                f"DESCRIBE SELECT * FROM read_parquet({_lit(str(src.path))})"
            ).fetchall()
        except duckdb.Error as e:
            raise DataError(
                f"cannot read {src.display} as Parquet: {str(e).splitlines()[0]}"
            ) from None
        exprs = []
        for col_name, col_type, *_ in desc:
            t = str(col_type).upper()
            if t.startswith(("STRUCT", "MAP")) or t.endswith("[]") or t.startswith("LIST"):
                exprs.append(f"CAST(to_json({_q(col_name)}) AS VARCHAR) AS {_q(col_name)}")
            else:
                exprs.append(f"CAST({_q(col_name)} AS VARCHAR) AS {_q(col_name)}")
        self.con.execute(
            f"CREATE TEMP TABLE {name} AS SELECT {', '.join(exprs)} "
            f"FROM read_parquet({_lit(str(src.path))})"
        )
        return name, [d[0] for d in desc]

    # -- from raw to typed + checked ----------------------------------------------------------

    def typed_csv(
        self,
        kind: Kind,
        src: Source,
        opts: ReadOptions,
        mapping: dict[str, str],
        delim: str,
        found: list[str],
    ) -> str:
        """The fast path: a typed `read_csv` relation that `finish(..., relation=True)` reads
        straight into the staging table (the file is materialised once, as in the benchmark's
        baseline; naive timestamps are read in the workspace zone)."""
        src_to_dest = {v: k for k, v in mapping.items()}
        cols: dict[str, str] = {}
        for name in found:
            dest = src_to_dest.get(name)
            col = kind.col(dest) if dest else None
            if col is None or col.parse in ("str", "bool", "json"):
                cols[name] = "VARCHAR"
            elif col.parse == "ts":
                cols[name] = "VARCHAR" if opts.epoch else "TIMESTAMPTZ"
            else:
                cols[name] = col.sql_type
        self.typed_cols = {dest: cols[s] != "VARCHAR" for dest, s in mapping.items()}
        return self._csv_relation(src, opts, cols, delim)

    def finish(
        self,
        kind: Kind,
        raw_table: str,
        exprs: dict[str, str],
        typed: dict[str, bool],
        opts: ReadOptions,
        src: Source,
        where: str = "TRUE",
        relation: bool = False,
    ) -> Staged:
        """Cast, normalise and check; rejects to `import_rejects`; good rows to a new table.

        `exprs` maps canonical columns to SQL over `raw_table` giving their value (VARCHAR
        unless `typed[col]`); absent columns are NULL.
        """
        sel, errs, absent = [], [], []
        for col in kind.columns:
            expr = exprs.get(col.name)
            if expr is None:
                value = "NULL"
                if kind.sparse_keep is not None and col.name not in kind.sparse_keep:
                    absent.append(_q(col.stored))
            elif typed.get(col.name):
                value = expr
                if col.parse == "ts":
                    value = f"timezone('UTC', {expr})"
            else:
                raw = f"NULLIF(trim({expr}), '')" if col.parse != "str" else f"NULLIF({expr}, '')"
                value = cast_expr(col, raw, opts)
                if col.parse != "str":
                    errs.append(cast_error(col, raw, value, opts))
            value = normalise(kind, col, value)
            sel.append(f"CAST({value} AS {col.sql_type}) AS {_q(col.stored)}")
        err_sql = (
            f"coalesce({', '.join(errs)})" if len(errs) > 1 else (errs[0] if errs else "NULL")
        )
        if relation:
            row, line = "NULL::BIGINT", "NULL::BIGINT"
        else:
            base = self.base_rowid(raw_table)
            row = f"rowid - {base}"
            line = f"rowid - {base} + 1" if src.fmt == "jsonl" else "NULL::BIGINT"
            if self._has_column(raw_table, "_line"):
                line = "_line"  # a preset that regrouped records says where each one came from
        checks = " ".join(f"WHEN {cond} THEN {reason}" for cond, reason in kind.checks)
        json_checks = " ".join(
            f"WHEN {_q(c.stored)} IS NOT NULL AND NOT json_valid({_q(c.stored)}) "
            f"THEN '{c.name}: not valid JSON'"
            for c in kind.columns
            if c.parse == "json" and typed.get(c.name)
        )
        reason = f"CASE WHEN _cast_error IS NOT NULL THEN _cast_error {json_checks} {checks} END"
        staged = self._name("stg")
        # one pass: cast + normalise in the inner query, checks on its typed columns (absent
        # columns of a sparse kind take part in the checks as NULL but are not stored)
        keep = f"* EXCLUDE ({', '.join(absent)})" if absent else "*"
        sql = (
            f"CREATE TEMP TABLE {staged} AS SELECT {keep}, {reason} AS _reason FROM ("
            f"SELECT {row} AS _row, {line} AS _line, {', '.join(sel)}, "
            f"{err_sql} AS _cast_error FROM {raw_table} WHERE {where})"
        )
        all_params: dict[str, object] = {"now": self.now, "zones": self.zones, "zone": self.zone}
        params = {k: v for k, v in all_params.items() if _uses(sql, k)}
        if relation:
            # naive timestamps are read in the workspace zone; an error aborts the transaction
            # (which is then rolled back and closed), so the reset is on success only
            self.con.execute(f"SET TimeZone={_lit(self.zone)}")
            self._run_read(sql, src, params)
            self.con.execute("SET TimeZone='UTC'")
            self._collect_csv_rejects(src, opts)
            # the staging table is in file order: its own rowid gives each record's position
            base = self.base_rowid(staged)
            row_sql = f"rowid - {base}"
            if kind.needs_row:
                self.con.execute(f"UPDATE {staged} SET _row = {row_sql}")
        else:
            self.con.execute(sql, params)
            row_sql = "_row"
        bad = self.con.execute(
            f"SELECT {row_sql} AS _row, _line, _reason FROM {staged} WHERE _reason IS NOT NULL "
            "ORDER BY rowid"
        ).fetchall()
        if bad:
            lines = self._lines_for([r[0] for r in bad], [r[1] for r in bad], src)
            self.con.executemany(
                "INSERT INTO import_rejects VALUES (?, ?, ?, ?, ?, NULL)",
                [
                    [self.import_id, src.display, line, _reason_column(r[2], kind), r[2]]
                    for r, line in zip(bad, lines, strict=True)
                ],
            )
            self.con.execute(f"DELETE FROM {staged} WHERE _reason IS NOT NULL")
        good = self.con.execute(f"SELECT count(*) FROM {staged}").fetchall()[0][0]
        return Staged(staged, int(good) + len(bad), len(bad))

    def _has_column(self, table: str, column: str) -> bool:
        rows = self.con.execute(
            "SELECT count(*) FROM duckdb_columns() WHERE table_name = ? AND column_name = ?",
            [table, column],
        ).fetchall()
        return bool(rows[0][0])

    def base_rowid(self, table: str) -> int:
        """Rows of a TEMP table made inside a transaction are numbered from a large offset;
        `rowid - min(rowid)` is the 0-based position in insertion (= file) order."""
        row = self.con.execute(f"SELECT min(rowid) FROM {table}").fetchall()
        return int(row[0][0] or 0)

    def _lines_for(
        self, rows: list[int], lines: list[int | None], src: Source
    ) -> list[int | None]:
        """Line numbers of rejected records: exact for JSON lines; for CSV, counted from the
        header past the structurally rejected lines (exact unless quoted values span lines);
        for Parquet and JSON arrays the 1-based record number."""
        if src.fmt == "jsonl":
            return lines
        if src.fmt not in ("csv", "tsv"):
            return [r + 1 for r in rows]
        skipped = sorted(self.rejected_lines)
        out: list[int | None] = []
        for r, given in zip(rows, lines, strict=True):
            line = given if given is not None else r + 2
            for s in skipped:
                if s <= line:
                    line += 1
            out.append(line)
        return out


def _uses(sql: str, param: str) -> bool:
    """Whether `sql` references the named parameter `$param` (not a longer name)."""
    import re

    return re.search(rf"\${param}\b", sql) is not None


def _duck_compression(src: Source) -> str:
    return {"none": "none", "gzip": "gzip", "zstd": "zstd"}[src.compression]


def _reject_reason(error_type: str, message: str, column: str, opts: ReadOptions) -> str:
    value = f"regexp_extract({message}, 'string \"(.*)\" to ', 1)"
    target = f"lower(regexp_extract({message}, ' to ''([^'']*)''', 1))"
    hints = ""
    if not opts.decimal_comma:
        hints += (
            f"WHEN regexp_matches({target}, '^(decimal|double|float)') "
            f"AND regexp_full_match(trim({value}), '-?[0-9]+,[0-9]+') "
            "THEN ' (decimal comma? pass --decimal-comma)' "
        )
    if not opts.epoch:
        hints += (
            f"WHEN starts_with({target}, 'timestamp') "
            f"AND regexp_full_match(trim({value}), '-?[0-9]{{9,}}') "
            "THEN ' (epoch time? pass --epoch s|ms|us)' "
        )
    hint = f" || CASE {hints}ELSE '' END" if hints else ""
    return (
        f"CASE {error_type} "
        f"WHEN 'CAST' THEN {column} || ': cannot read ''' || {value} || ''' as ' || "
        f"replace({target}, ' with time zone', ''){hint} "
        f"WHEN 'MISSING COLUMNS' THEN 'too few columns: ' || {message} "
        f"WHEN 'TOO MANY COLUMNS' THEN 'too many columns: ' || {message} "
        f"WHEN 'UNQUOTED VALUE' THEN 'unterminated or stray quote: ' || {message} "
        f"WHEN 'INVALID UNICODE' THEN 'not valid UTF-8 (pass --encoding): ' || {message} "
        f"WHEN 'INVALID ENCODING' THEN 'not valid UTF-8 (pass --encoding): ' || {message} "
        f"ELSE lower(CAST({error_type} AS VARCHAR)) || ': ' || {message} END"
    )


def _reason_column(reason: str, kind: Kind | None = None) -> str | None:
    """The column a reject reason is about: `col: ...`, or a reason that starts with one of
    the kind's column names (`timestamp ... is in the future`, `platform must be ...`)."""
    head = reason.split(":", 1)[0]
    if head and " " not in head:
        return head
    if kind is not None:
        for c in sorted(kind.columns, key=lambda c: -len(c.name)):
            if reason.startswith((c.name + " ", c.name + "/")):
                return c.name
    return None
