"""The shared report plumbing: the period, ratios, --by checks, and the output formats."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest

from mcrm.errors import UsageError
from mcrm.output import Format, Rows
from mcrm.reports import common
from mcrm.reports.common import Report, fit_width, period, ratio


def test_period_defaults_to_the_30_days_ending_on_the_as_of_day() -> None:
    at = dt.datetime(2026, 11, 15, 22, 30)  # 23:30 in Prague
    p = period("Europe/Prague", None, None, at)
    assert (p.start, p.end, p.days) == (dt.date(2026, 10, 17), dt.date(2026, 11, 15), 30)
    assert p.partial
    assert p.end_ts == at  # cut at the as-of instant
    # local midnight of the first day, as naive UTC (Prague is UTC+2 in October)
    assert p.start_ts == dt.datetime(2026, 10, 16, 22, 0)


def test_period_explicit_days_are_inclusive_in_the_workspace_zone() -> None:
    at = dt.datetime(2026, 12, 1)
    p = period("America/New_York", "2026-11-01", "2026-11-03", at)
    assert not p.partial and p.days == 3
    assert p.start_ts == dt.datetime(2026, 11, 1, 4, 0)  # EDT
    # the end is the last microsecond of Nov 3 (EST after the switch)
    assert p.end_ts == dt.datetime(2026, 11, 4, 5, 0) - dt.timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("from_", "to", "match"),
    [
        ("2026-11-10", "2026-11-01", "after --to"),
        ("2026-12-10", "2026-12-20", "after the as-of day"),
        ("yesterday", None, "cannot read 'yesterday'"),
    ],
)
def test_period_refuses_backwards_or_unreadable_ranges(
    from_: str, to: str | None, match: str
) -> None:
    with pytest.raises(UsageError, match=match):
        period("UTC", from_, to, dt.datetime(2026, 11, 15))


def test_ratio_is_null_on_a_zero_denominator() -> None:
    assert ratio(1, 0) is None and ratio(None, 3) is None and ratio(3, None) is None
    assert ratio(1, 4) == 0.25


def test_check_by_names_what_the_report_offers() -> None:
    assert common.check_by(["platform,os", "segment:vip"], ["platform", "os", "segment"]) == [
        "platform",
        "os",
        "segment:vip",
    ]
    with pytest.raises(UsageError, match="breaks down by platform, os"):
        common.check_by(["platfrom"], ["platform", "os"])


def _report() -> Report:
    return Report(
        "demo",
        {
            "summary": Rows(["group", "users", "share"], [("all", 10, 0.5), ("ios", 4, None)]),
            "trend": Rows(["date", "revenue"], [(dt.date(2026, 1, 1), Decimal("1.50"))]),
        },
        params={"as_of": dt.datetime(2026, 1, 2)},
        notes=["a note"],
    )


def _emit(capsys: pytest.CaptureFixture[str], fmt: Format, table: str | None = None) -> str:
    common.emit(_report(), fmt, None, table=table, quiet=True)
    return capsys.readouterr().out


def test_json_is_one_document_with_every_table(capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(_emit(capsys, Format.json))
    assert doc["report"] == "demo" and doc["params"]["as_of"] == "2026-01-02T00:00:00Z"
    assert doc["tables"]["summary"][1] == {"group": "ios", "users": 4, "share": None}
    assert doc["tables"]["trend"] == [{"date": "2026-01-01", "revenue": "1.50"}]
    assert doc["notes"] == ["a note"]


def test_jsonl_tags_every_row_with_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    lines = [json.loads(x) for x in _emit(capsys, Format.jsonl).splitlines()]
    assert [x["table"] for x in lines] == ["summary", "summary", "trend"]


def test_csv_writes_one_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert _emit(capsys, Format.csv).splitlines() == ["group,users,share", "all,10,0.5", "ios,4,"]
    assert _emit(capsys, Format.csv, "trend").splitlines() == ["date,revenue", "2026-01-01,1.50"]
    with pytest.raises(UsageError, match="no table 'trnd'"):
        _emit(capsys, Format.csv, "trnd")


def test_a_table_that_fits_is_left_as_it_is() -> None:
    rows = Rows(["a", "b"], [("x", 1)])
    (only,) = fit_width(rows, "t", 80)
    assert only.columns == ["a", "b"] and list(only.rows) == [("x", 1)]


def test_a_short_wide_table_is_turned_on_its_side() -> None:
    cols = ["by", "group", *[f"metric_{i}" for i in range(20)]]
    rows = Rows(cols, [("total", "(all)", *range(20)), ("platform", "ios", *range(20, 40))])
    (turned,) = fit_width(rows, "summary", 100)
    assert turned.columns == ["metric", "total (all)", "platform ios"]
    body = list(turned.rows)
    assert body[0] == ("metric_0", "0", "20") and len(body) == 20


def test_a_long_wide_table_is_split_into_column_groups_repeating_its_keys() -> None:
    cols = ["source", *[f"measure_number_{i}" for i in range(12)]]
    data = [(f"src{i}", *[i * 1000 + j for j in range(12)]) for i in range(10)]
    parts = fit_width(Rows(cols, data, title="acq"), "acq", 100)
    assert len(parts) > 1
    assert all(p.columns[0] == "source" for p in parts)
    assert [c for p in parts for c in p.columns[1:]] == cols[1:]  # every column, once, in order
    assert parts[0].title == f"acq (1/{len(parts)})"
    for p in parts:
        width = sum(
            max(len(c), *(len(str(r[i])) for r in p.rows)) + 3 for i, c in enumerate(p.columns)
        )
        assert width <= 100


def test_the_table_format_prints_every_table_titled(capsys: pytest.CaptureFixture[str]) -> None:
    out = _emit(capsys, Format.table)
    assert "summary" in out and "trend" in out and "50.0%" in out and "–" in out
    buf = io.StringIO(_emit(capsys, Format.table, "trend"))
    assert "summary" not in buf.getvalue()
