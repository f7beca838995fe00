"""The surface of `mcrm report overview | acquisition | features | segments`: formats, clean
stdout, one-line errors with exit 2 for bad options."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.conftest import WS, Cli
from tests.segdata import SegWS

AS_OF = "2026-03-31T23:00"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    w = SegWS(tmp_path_factory.mktemp("rcli"), timezone="Europe/Prague")
    w.write_segments({"segments": {"all_users": {"where": {"event": "session_start"}}}})
    w.load(
        "events",
        [
            {
                "user_id": f"u{i}",
                "name": "session_start",
                "timestamp": f"2026-03-{10 + i:02d}T10:00:00Z",
                "session_id": "1",
                "platform": "ios" if i % 2 else "android",
                "screen": "Home",
            }
            for i in range(8)
        ],
    )
    w.load(
        "purchases",
        [
            {
                "order_id": "o1",
                "user_id": "u1",
                "timestamp": "2026-03-20T10:00:00Z",
                "amount": "12.50",
                "currency": "EUR",
                "status": "paid",
            }
        ],
    )
    import datetime as dt

    w.compute(["all_users"], dt.datetime(2026, 3, 31, 12))
    return w.root


def test_overview_json_has_both_tables(cli: Cli, root: Path) -> None:
    r = cli(WS(root), "report", "overview", "--by", "platform", "--as-of", AS_OF, "-f", "json")
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert doc["report"] == "overview" and list(doc["tables"]) == ["summary", "trend"]
    total = doc["tables"]["summary"][0]
    assert total["group"] == "(all)" and total["active_users"] == 8
    assert total["revenue"] == "12.500" and total["orders"] == 1
    assert {r["group"] for r in doc["tables"]["summary"][1:]} == {
        "android",
        "ios",
        "(none)",
    }  # the purchase day of u1
    assert len(doc["tables"]["trend"]) == 30


def test_overview_csv_of_one_table(cli: Cli, root: Path) -> None:
    r = cli(
        WS(root), "report", "overview", "--table", "trend", "--interval", "week",
        "--as-of", AS_OF, "-f", "csv",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert rows[0]["date"] == "2026-03-02" and rows[-1]["partial"] == "true"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["overview", "--by", "plattform"], "--by plattform"),
        (["overview", "--by", "segment:nope"], "segment:nope"),
        (["overview", "--from", "2026-13-01"], "--from"),
        (["overview", "--from", "2026-03-20", "--to", "2026-03-01"], "is after --to"),
        (["overview", "--interval", "year"], "year"),
        (["acquisition", "--by", "platform"], "--by platform"),
        (["segments", "nope"], "nope"),
        (["overview", "--table", "sumary"], "sumary"),
    ],
)
def test_bad_options_are_one_line_usage_errors(
    cli: Cli, root: Path, args: list[str], message: str
) -> None:
    r = cli(WS(root), "report", *args, "--as-of", AS_OF, "-f", "json")
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    first = r.stderr.strip().splitlines()[0]
    assert message in first


@pytest.mark.parametrize("name", ["acquisition", "features", "segments"])
def test_other_reports_write_jsonl(cli: Cli, root: Path, name: str) -> None:
    r = cli(WS(root), "report", name, "--as-of", AS_OF, "-f", "jsonl")
    assert r.exit_code == 0, r.stderr
    lines = r.jsonl()
    assert lines and all("table" in x for x in lines)


def test_segments_report_says_when_one_snapshot(cli: Cli, root: Path) -> None:
    r = cli(WS(root), "report", "segments", "--as-of", AS_OF, "-f", "json")
    assert r.exit_code == 0
    (row,) = r.json()["tables"]["segments"]
    assert row["segment"] == "all_users" and row["size"] == 8 and row["entries"] is None
    assert "fewer than two snapshots" in r.stderr
