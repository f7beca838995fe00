"""Bad and awkward input files for `mcrm import`: every row is imported, or rejected with its
file, line and reason; whole-file problems are one clear error with the right exit code.

Every import here checks read = inserted + updated + duplicates + rejected + forgotten per file
(the `importer` / `cli_import` fixtures do it)."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import pytest
import zstandard

from mcrm.errors import DataError, ExitCode, UsageError, exit_code_for
from tests.conftest import WS, Cli, CliResult, Importer, Query, WorkspaceFactory

EVENTS_HEADER = "event_id,user_id,name,timestamp\n"
CliImport = Callable[..., tuple[CliResult, list[dict[str, Any]]]]


def events_csv(n: int, start: int = 0) -> str:
    rows = [f"e{i},u{i % 3},open,2024-03-0{1 + i % 9} 10:00:00\n" for i in range(start, start + n)]
    return EVENTS_HEADER + "".join(rows)


def rejects(query: Query, w: WS) -> list[tuple[Any, ...]]:
    return query(
        w, "SELECT file, line, column_name, reason FROM import_rejects ORDER BY import_id, line"
    )


# -- whole-file problems ----------------------------------------------------------------------


def test_missing_file_is_exit_3_naming_it(ws: WS, cli: Cli) -> None:
    r = cli(ws, "import", "events", "nowhere.csv")
    assert r.exit_code == ExitCode.DATA
    assert r.stderr.startswith("mcrm: error: ")
    assert "nowhere.csv" in r.stderr
    assert r.stdout == ""


def test_directory_instead_of_file(ws: WS, cli: Cli) -> None:
    (ws.root / "exports").mkdir()
    r = cli(ws, "import", "events", "exports")
    assert r.exit_code == ExitCode.DATA
    assert "exports is a directory" in r.stderr
    assert "hint: " in r.stderr and "exports/*" in r.stderr


def test_unknown_extension_is_usage_error(ws: WS, cli: Cli) -> None:
    ws.write("events.xlsx", b"PK\x03\x04")
    r = cli(ws, "import", "events", "events.xlsx")
    assert r.exit_code == ExitCode.USAGE
    assert "unknown file format" in r.stderr and "events.xlsx" in r.stderr
    assert "hint: supported:" in r.stderr


def test_empty_file_warns_and_exits_0(ws: WS, cli_import: CliImport) -> None:
    ws.write("empty.csv", "")
    r, rows = cli_import(ws, "events", "empty.csv")
    assert r.exit_code == 0
    assert "warning:" in r.stderr and "empty" in r.stderr
    assert rows[0]["rows_read"] == 0 and rows[0]["inserted"] == 0


def test_header_only_is_zero_rows(ws: WS, cli_import: CliImport, query: Query) -> None:
    ws.write("h.csv", EVENTS_HEADER)
    r, rows = cli_import(ws, "events", "h.csv")
    assert r.exit_code == 0
    assert [(x["rows_read"], x["inserted"], x["rejected"]) for x in rows] == [(0, 0, 0)]
    assert query(ws, "SELECT count(*) FROM events") == [(0,)]


def test_required_column_missing_names_it_and_lists_found(ws: WS, cli: Cli) -> None:
    ws.write("e.csv", "event_id,user_id,when\ne1,u1,2024-01-01\n")
    r = cli(ws, "import", "events", "e.csv")
    assert r.exit_code == ExitCode.DATA
    first = r.stderr.splitlines()[0]
    assert first.startswith("mcrm: error: required column")
    assert "'name'" in first and "'timestamp'" in first
    assert "found: event_id, user_id, when" in first
    assert "Traceback" not in r.stderr


def test_extra_columns_are_ignored_and_reported(
    ws: WS, cli_import: CliImport, query: Query
) -> None:
    ws.write("e.csv", "event_id,user_id,name,timestamp,colour,size\ne1,u1,open,2024-01-01,r,1\n")
    r, rows = cli_import(ws, "events", "e.csv")
    assert r.exit_code == 0
    assert rows[0]["inserted"] == 1
    assert "ignored columns: colour, size" in r.stderr
    assert "colour" not in r.stdout.replace('"file"', "")


def test_wrong_column_count_rejects_with_line_numbers(
    ws: WS, importer: Importer, query: Query
) -> None:
    ws.write(
        "e.csv",
        EVENTS_HEADER
        + "e1,u1,open,2024-01-01 10:00\n"
        + "e2,u1,open\n"  # line 3: too few
        + "e3,u1,open,2024-01-01 11:00\n"
        + "e4,u1,open,2024-01-01 12:00,extra\n"  # line 5: too many
        + "e5,u1,open,2024-01-01 13:00\n",
    )
    res = importer(ws, "events", ["e.csv"])
    f = res.files[0]
    assert (f.rows_read, f.inserted, f.rejected) == (5, 3, 2)
    rej = rejects(query, ws)
    assert [(r[0], r[1]) for r in rej] == [("e.csv", 3), ("e.csv", 5)]
    assert "too few columns" in rej[0][3] and "too many columns" in rej[1][3]
    ids = query(ws, "SELECT event_id FROM events ORDER BY 1")
    assert ids == [("e1",), ("e3",), ("e5",)]


def test_unterminated_quote_is_rejected(ws: WS, importer: Importer, query: Query) -> None:
    ws.write(
        "e.csv",
        EVENTS_HEADER + 'e1,u1,open,2024-01-01 10:00\ne2,u1,"open,2024-01-01 11:00\n',
    )
    res = importer(ws, "events", ["e.csv"])
    f = res.files[0]
    assert f.inserted == 1 and f.rejected == 1
    assert query(ws, "SELECT event_id FROM events") == [("e1",)]
    rej = rejects(query, ws)
    assert len(rej) == 1 and rej[0][1] == 3 and "quote" in rej[0][3]


def test_non_utf8_row_is_rejected(ws: WS, importer: Importer, query: Query) -> None:
    ws.write(
        "e.csv",
        EVENTS_HEADER.encode()
        + b"e1,u1,open,2024-01-01 10:00\n"
        + b"e2,u1,caf\xe9,2024-01-01 11:00\n"
        + b"e3,u1,open,2024-01-01 12:00\n",
    )
    res = importer(ws, "events", ["e.csv"])
    f = res.files[0]
    assert (f.rows_read, f.inserted, f.rejected) == (3, 2, 1)
    rej = rejects(query, ws)
    assert rej[0][1] == 3 and "UTF-8" in rej[0][3]


def test_latin1_file_with_encoding_option(ws: WS, importer: Importer, query: Query) -> None:
    ws.write("e.csv", (EVENTS_HEADER + "e1,u1,café,2024-01-01 10:00\n").encode("latin-1"))
    res = importer(ws, "events", ["e.csv"], encoding="latin-1")
    assert res.files[0].inserted == 1
    assert query(ws, "SELECT name FROM events") == [("café",)]


def test_utf8_bom_is_skipped(ws: WS, importer: Importer, query: Query) -> None:
    ws.write("e.csv", "\ufeff" + EVENTS_HEADER + "e1,u1,open,2024-01-01 10:00\n")
    res = importer(ws, "events", ["e.csv"])
    assert res.files[0].inserted == 1 and res.files[0].rejected == 0
    assert query(ws, "SELECT event_id, name FROM events") == [("e1", "open")]


def test_crlf_line_ends(ws: WS, importer: Importer, query: Query) -> None:
    ws.write(
        "e.csv",
        "event_id,user_id,name,timestamp\r\ne1,u1,open,2024-01-01 10:00\r\n"
        "e2,u2,close,2024-01-02 10:00\r\n",
    )
    res = importer(ws, "events", ["e.csv"])
    assert res.files[0].inserted == 2 and res.files[0].rejected == 0
    assert query(ws, "SELECT name FROM events ORDER BY 1") == [("close",), ("open",)]


# -- numbers ----------------------------------------------------------------------------------

PURCHASES_SEMI = (
    "order_id;user_id;timestamp;amount;currency\n"
    "o1;u1;2024-05-01 10:00;12,50;EUR\n"
    "o2;u1;2024-05-02 10:00;3;EUR\n"
)


def test_decimal_comma_rejected_with_hint(ws: WS, importer: Importer, query: Query) -> None:
    ws.write("p.csv", PURCHASES_SEMI)
    res = importer(ws, "purchases", ["p.csv"])
    f = res.files[0]
    assert (f.inserted, f.rejected) == (1, 1)
    rej = rejects(query, ws)
    assert rej[0][1] == 2 and rej[0][2] == "amount"
    assert "--decimal-comma" in rej[0][3]


def test_decimal_comma_accepted_with_option(ws: WS, importer: Importer, query: Query) -> None:
    from decimal import Decimal

    ws.write("p.csv", PURCHASES_SEMI)
    res = importer(ws, "purchases", ["p.csv"], decimal_comma=True)
    assert (res.files[0].inserted, res.files[0].rejected) == (2, 0)
    rows = query(ws, "SELECT order_id, amount FROM purchases ORDER BY 1")
    assert rows == [("o1", Decimal("12.500")), ("o2", Decimal("3.000"))]


# -- formats ----------------------------------------------------------------------------------


def test_jsonl_broken_line_rejected_with_line_number(
    ws: WS, importer: Importer, query: Query
) -> None:
    ws.write(
        "e.jsonl",
        '{"event_id": "e1", "user_id": "u1", "name": "open", "timestamp": "2024-01-01T10:00Z"}\n'
        '{"event_id": "e2", "user_id": "u1", "name": "open", "timestamp": \n'
        '{"event_id": "e3", "user_id": "u1", "name": "open", "timestamp": "2024-01-01T11:00Z"}\n',
    )
    res = importer(ws, "events", ["e.jsonl"])
    f = res.files[0]
    assert (f.rows_read, f.inserted, f.rejected) == (3, 2, 1)
    rej = rejects(query, ws)
    assert rej[0][1] == 2 and "invalid JSON" in rej[0][3]


def test_json_array(ws: WS, importer: Importer, query: Query) -> None:
    ws.write(
        "e.json",
        '[{"event_id": "e1", "user_id": "u1", "name": "open", "timestamp": "2024-01-01"},\n'
        ' {"event_id": "e2", "user_id": "u2", "name": "buy", "timestamp": "2024-01-02",'
        ' "properties": {"sku": "A1"}}]\n',
    )
    res = importer(ws, "events", ["e.json"])
    assert res.files[0].inserted == 2
    rows = query(ws, "SELECT event_id, properties->>'sku' FROM events ORDER BY 1")
    assert rows == [("e1", None), ("e2", "A1")]


def test_parquet_with_a_badly_typed_value(ws: WS, importer: Importer, query: Query) -> None:
    from mcrm.db import connect

    path = ws.root / "p.parquet"
    con = connect(":memory:")
    try:
        con.execute(
            f"""COPY (SELECT * FROM (VALUES
                ('o1', 'u1', TIMESTAMP '2024-05-01 10:00', '10.00', 'EUR'),
                ('o2', 'u1', TIMESTAMP '2024-05-02 10:00', 'abc', 'EUR'),
                ('o3', 'u2', TIMESTAMP '2024-05-03 10:00', '7.5', 'EUR'))
              t(order_id, user_id, timestamp, amount, currency))
            TO '{path}' (FORMAT parquet)"""
        )
    finally:
        con.close()
    res = importer(ws, "purchases", ["p.parquet"])
    f = res.files[0]
    assert (f.rows_read, f.inserted, f.rejected) == (3, 2, 1)
    rej = rejects(query, ws)
    assert rej[0][1] == 2 and rej[0][2] == "amount" and "'abc'" in rej[0][3]
    assert query(ws, "SELECT order_id FROM purchases ORDER BY 1") == [("o1",), ("o3",)]


@pytest.mark.parametrize("suffix", ["gz", "zst"])
def test_compressed_files(ws: WS, importer: Importer, query: Query, suffix: str) -> None:
    data = events_csv(4).encode()
    packed = gzip.compress(data) if suffix == "gz" else zstandard.ZstdCompressor().compress(data)
    ws.write(f"e.csv.{suffix}", packed)
    ws.write(
        f"e.jsonl.{suffix}",
        gzip.compress(b'{"event_id":"j1","user_id":"u1","name":"x","timestamp":"2024-01-01"}\n')
        if suffix == "gz"
        else zstandard.ZstdCompressor().compress(
            b'{"event_id":"j1","user_id":"u1","name":"x","timestamp":"2024-01-01"}\n'
        ),
    )
    res = importer(ws, "events", [f"e.csv.{suffix}", f"e.jsonl.{suffix}"])
    assert [f.inserted for f in res.files] == [4, 1]
    assert query(ws, "SELECT count(*) FROM events") == [(5,)]


def test_globs(ws: WS, importer: Importer, query: Query) -> None:
    ws.write("in/a.csv", events_csv(2, 0))
    ws.write("in/b.csv", events_csv(3, 10))
    ws.write("in/notes.txt.bak", "ignored")
    res = importer(ws, "events", ["in/*.csv"])
    assert [(f.file, f.inserted) for f in res.files] == [("in/a.csv", 2), ("in/b.csv", 3)]
    assert query(ws, "SELECT count(*) FROM events") == [(5,)]


def test_glob_matching_nothing_is_data_error(ws: WS, importer: Importer) -> None:
    with pytest.raises(DataError, match="no file matches"):
        importer(ws, "events", ["in/*.csv"])


def test_unknown_kind_is_usage_error_with_suggestion(ws: WS, importer: Importer) -> None:
    ws.write("e.csv", events_csv(1))
    with pytest.raises(UsageError) as info:
        importer(ws, "event", ["e.csv"])
    assert exit_code_for(info.value) == ExitCode.USAGE
    assert info.value.hint == "did you mean 'events'?"


# -- money ------------------------------------------------------------------------------------


def test_currency_without_fx_rate_then_fx_import(
    workspace: WorkspaceFactory, importer: Importer, query: Query
) -> None:
    w = workspace({"base_currency": "EUR"})
    w.write(
        "p.csv",
        "order_id,user_id,timestamp,amount,currency\n"
        "o1,u1,2024-05-01 10:00,10.00,EUR\n"
        "o2,u1,2024-05-02 10:00,100.00,CZK\n",
    )
    res = importer(w, "purchases", ["p.csv"])
    assert (res.files[0].inserted, res.files[0].rejected) == (1, 1)
    rej = rejects(query, w)
    assert rej[0][1] == 3 and "CZK" in rej[0][3] and "2024-05-02" in rej[0][3]

    w.write("fx.csv", "date,currency,rate\n2024-05-01,CZK,0.04\n")
    fx = importer(w, "fx-rates", ["fx.csv"])
    assert fx.files[0].inserted == 1
    again = importer(w, "purchases", ["p.csv"])
    f = again.files[0]
    assert (f.inserted, f.duplicates, f.rejected) == (1, 1, 0)
    from decimal import Decimal

    assert query(w, "SELECT amount_base FROM purchases WHERE order_id = 'o2'") == [
        (Decimal("4.000"),)
    ]


def test_jsonl_line_that_is_not_an_object(ws: WS, importer: Importer, query: Query) -> None:
    ws.write(
        "e.jsonl",
        '{"event_id": "e1", "user_id": "u1", "name": "open", "timestamp": "2024-01-01"}\n'
        "\n"
        '["not", "an", "object"]\n'
        '{"event_id": "e2", "user_id": "u1", "name": "open", "timestamp": "2024-01-02"}\n',
    )
    f = importer(ws, "events", ["e.jsonl"]).files[0]
    assert (f.rows_read, f.inserted, f.rejected) == (3, 2, 1)  # the blank line is no record
    assert rejects(query, ws)[0][1] == 3 and "not a JSON object" in rejects(query, ws)[0][3]


def test_tsv_and_header_only_gz(ws: WS, importer: Importer, query: Query) -> None:
    ws.write("e.tsv", EVENTS_HEADER.replace(",", "\t") + "e1\tu1\topen\t2024-01-01 10:00\n")
    ws.write("h.csv.gz", gzip.compress(EVENTS_HEADER.encode()))
    res = importer(ws, "events", ["e.tsv", "h.csv.gz"])
    assert [(f.rows_read, f.inserted) for f in res.files] == [(1, 1), (0, 0)]


def test_line_numbers_count_past_structural_rejects(
    ws: WS, importer: Importer, query: Query
) -> None:
    ws.write(
        "e.csv",
        EVENTS_HEADER
        + "e1,u1,open,2024-01-01\n"
        + "e2,u1\n"  # line 3: too few columns (one reject, not one per missing column)
        + "e3,u1,open,2024-01-01\n"
        + "e4,u1,open,bad\n"  # line 5: cast error
        + "e5,u1,open,2099-01-01\n",  # line 6: in the future
    )
    f = importer(ws, "events", ["e.csv"]).files[0]
    assert (f.rows_read, f.inserted, f.rejected) == (5, 2, 3)
    assert [r[1] for r in rejects(query, ws)] == [3, 5, 6]
