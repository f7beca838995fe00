"""`mcrm import` on the command line: summaries on stderr, JSON on stdout, the reject-rate
threshold as exit code 1, and `import rejects` / `import history` as parseable data."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

from tests.conftest import WS, Cli, CliResult, Query, WorkspaceFactory, check_invariant

CliImport = Callable[..., tuple[CliResult, list[dict[str, Any]]]]
HEADER = "event_id,user_id,name,timestamp\n"


def events(good: int, bad: int) -> str:
    rows = [f"g{i},u{i},open,2024-02-01 10:00\n" for i in range(good)]
    rows += [f"b{i},u{i},open,not-a-time\n" for i in range(bad)]
    return HEADER + "".join(rows)


def test_over_max_reject_rate_is_exit_1_but_good_rows_are_imported(
    ws: WS, cli_import: CliImport, query: Query
) -> None:
    ws.write("e.csv", events(good=8, bad=2))
    r, rows = cli_import(ws, "events", "e.csv", "--max-reject-rate", "10%")
    assert r.exit_code == 1
    assert (rows[0]["inserted"], rows[0]["rejected"]) == (8, 2)
    assert "over the limit of 10.00%" in r.stderr
    assert query(ws, "SELECT count(*) FROM events") == [(8,)]


def test_under_max_reject_rate_is_exit_0(ws: WS, cli_import: CliImport) -> None:
    ws.write("e.csv", events(good=8, bad=2))
    r, rows = cli_import(ws, "events", "e.csv", "--max-reject-rate", "0.25")
    assert r.exit_code == 0
    assert rows[0]["rejected"] == 2
    assert "2 row(s) rejected" in r.stderr and "over the limit" not in r.stderr


def test_default_limit_is_one_percent_and_config_overrides(
    workspace: WorkspaceFactory, cli_import: CliImport
) -> None:
    w = workspace()
    w.write("e.csv", events(good=98, bad=2))
    assert cli_import(w, "events", "e.csv")[0].exit_code == 1
    w2 = workspace({"imports": {"max_reject_rate": "5%"}})
    w2.write("e.csv", events(good=98, bad=2))
    assert cli_import(w2, "events", "e.csv")[0].exit_code == 0


def test_reject_rate_env_var(ws: WS, cli: Cli) -> None:
    ws.write("e.csv", events(good=8, bad=2))
    r = cli(
        ws, "import", "events", "e.csv", "--format", "json", env={"MCRM_MAX_REJECT_RATE": "50%"}
    )
    assert r.exit_code == 0, r.stderr
    check_invariant(r.json()[0])


def test_bad_max_reject_rate_is_usage_error(ws: WS, cli: Cli) -> None:
    ws.write("e.csv", events(good=1, bad=0))
    r = cli(ws, "import", "events", "e.csv", "--max-reject-rate", "lots")
    assert r.exit_code == 2 and "--max-reject-rate" in r.stderr


def test_rejects_json_has_file_line_column_reason(ws: WS, cli: Cli, cli_import: CliImport) -> None:
    ws.write("e.csv", events(good=2, bad=1) + "x1,u1,open\n")
    cli_import(ws, "events", "e.csv", "--max-reject-rate", "100%")
    r = cli(ws, "import", "rejects", "--format", "json")
    assert r.exit_code == 0 and r.stderr == ""
    rows = json.loads(r.stdout)
    assert len(rows) == 2
    for row in rows:
        assert {"file", "line", "column", "reason"} <= set(row)
        assert row["file"] == "e.csv"
    assert [(x["line"], x["column"]) for x in rows] == [(4, "timestamp"), (5, "timestamp")]
    assert "not-a-time" in rows[0]["reason"]
    assert rows[1]["reason"].startswith("too few columns")


def test_rejects_of_a_given_import(ws: WS, cli: Cli, cli_import: CliImport) -> None:
    ws.write("a.csv", events(good=1, bad=1))
    ws.write("b.csv", events(good=1, bad=0))
    cli_import(ws, "events", "a.csv", "--max-reject-rate", "100%")
    cli_import(ws, "events", "b.csv")
    assert cli(ws, "import", "rejects", "--format", "json").json() == []
    first = cli(ws, "import", "rejects", "--import", "1", "--format", "json").json()
    assert len(first) == 1 and first[0]["import_id"] == 1


def test_import_summary_on_stderr_data_on_stdout(ws: WS, cli: Cli) -> None:
    ws.write("e.csv", events(good=3, bad=0))
    quiet_table = cli(ws, "import", "events", "e.csv")
    assert quiet_table.exit_code == 0
    assert "│        3 │" in quiet_table.stderr  # read 3, inserted 3 in the table
    assert quiet_table.stdout == ""  # no --format: the summary is for people, on stderr
    assert "e.csv" in quiet_table.stderr and "inserted" in quiet_table.stderr
    ws.write("f.csv", events(good=2, bad=0).replace("g", "h"))
    r = cli(ws, "import", "events", "f.csv", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert rows[0]["file"] == "f.csv" and rows[0]["inserted"] == "2"
    for row in rows:
        check_invariant(
            {k: int(v) if k not in ("file", "kind", "seconds") else v for k, v in row.items()}
        )
    r = cli(ws, "--quiet", "import", "events", "f.csv", "--format", "jsonl")
    assert [x["duplicates"] for x in r.jsonl()] == [2]
    check_invariant(r.jsonl()[0])
    assert "inserted" not in r.stderr


def test_history(ws: WS, cli: Cli, cli_import: CliImport) -> None:
    ws.write("e.csv", events(good=3, bad=0))
    cli_import(ws, "events", "e.csv")
    cli_import(ws, "events", "e.csv")
    rows = cli(ws, "import", "history", "--format", "json").json()
    assert [(x["import_id"], x["inserted"], x["duplicates"]) for x in rows] == [
        (2, 0, 3),
        (1, 3, 0),
    ]


def test_map_option(ws: WS, cli_import: CliImport, query: Query) -> None:
    ws.write("e.csv", "id,uid,event,ts\n1,u1,open,2024-01-01 10:00\n")
    r, rows = cli_import(
        ws,
        "events",
        "e.csv",
        "-m",
        "id=event_id",
        "-m",
        "uid=user_id",
        "-m",
        "event=name",
        "--map",
        "ts=timestamp",
    )
    assert r.exit_code == 0, r.stderr
    assert query(ws, "SELECT event_id, user_id, name FROM events") == [("1", "u1", "open")]
    bad, _ = cli_import(ws, "events", "e.csv", "--map", "ts=tymestamp")
    assert bad.exit_code == 2 and "did you mean 'timestamp'?" in bad.stderr
