"""Timestamps: offsets honoured, naive ones read in the workspace zone, epoch on request,
garbage and the far future rejected. Everything is stored as naive UTC."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import Importer, Query, WorkspaceFactory

HEADER = "event_id,user_id,name,timestamp\n"


def stored(query: Query, w: object) -> dict[str, dt.datetime]:
    return {r[0]: r[1] for r in query(w, "SELECT event_id, ts FROM events")}


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
def test_offsets_are_converted_to_utc(
    workspace: WorkspaceFactory, importer: Importer, query: Query, ext: str
) -> None:
    w = workspace({"timezone": "Europe/Prague"})
    values = {
        "a": "2024-07-01T12:00:00+02:00",
        "b": "2024-07-01T12:00:00Z",
        "c": "2024-01-15 08:30:00-05:00",
    }
    if ext == "csv":
        w.write("e.csv", HEADER + "".join(f"{k},u1,x,{v}\n" for k, v in values.items()))
    else:
        w.write(
            "e.jsonl",
            "".join(
                f'{{"event_id":"{k}","user_id":"u1","name":"x","timestamp":"{v}"}}\n'
                for k, v in values.items()
            ),
        )
    res = importer(w, "events", [f"e.{ext}"])
    assert res.files[0].inserted == 3
    assert stored(query, w) == {
        "a": dt.datetime(2024, 7, 1, 10, 0),
        "b": dt.datetime(2024, 7, 1, 12, 0),
        "c": dt.datetime(2024, 1, 15, 13, 30),
    }


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
def test_naive_timestamps_are_read_in_the_workspace_zone(
    workspace: WorkspaceFactory, importer: Importer, query: Query, ext: str
) -> None:
    w = workspace({"timezone": "Europe/Prague"})
    values = {"summer": "2024-07-01 12:00:00", "winter": "2024-01-15 12:00:00"}
    if ext == "csv":
        w.write("e.csv", HEADER + "".join(f"{k},u1,x,{v}\n" for k, v in values.items()))
    else:
        w.write(
            "e.jsonl",
            "".join(
                f'{{"event_id":"{k}","user_id":"u1","name":"x","timestamp":"{v}"}}\n'
                for k, v in values.items()
            ),
        )
    importer(w, "events", [f"e.{ext}"])
    assert stored(query, w) == {
        "summer": dt.datetime(2024, 7, 1, 10, 0),  # CEST, UTC+2
        "winter": dt.datetime(2024, 1, 15, 11, 0),  # CET, UTC+1
    }


def test_utc_workspace_keeps_naive_values(
    workspace: WorkspaceFactory, importer: Importer, query: Query
) -> None:
    w = workspace()
    w.write("e.csv", HEADER + "a,u1,x,2024-07-01 12:00:00\n")
    importer(w, "events", ["e.csv"])
    assert stored(query, w) == {"a": dt.datetime(2024, 7, 1, 12, 0)}


@pytest.mark.parametrize(
    ("epoch", "value"),
    [("s", "1719835200"), ("ms", "1719835200000"), ("us", "1719835200000000")],
)
def test_epoch_timestamps(
    workspace: WorkspaceFactory, importer: Importer, query: Query, epoch: str, value: str
) -> None:
    w = workspace({"timezone": "Europe/Prague"})  # epoch values are UTC whatever the zone
    w.write("e.csv", HEADER + f"a,u1,x,{value}\n")
    res = importer(w, "events", ["e.csv"], epoch=epoch)
    assert res.files[0].inserted == 1
    assert stored(query, w) == {"a": dt.datetime(2024, 7, 1, 12, 0)}


def test_epoch_without_the_option_is_rejected_with_a_hint(
    workspace: WorkspaceFactory, importer: Importer, query: Query
) -> None:
    w = workspace()
    w.write("e.csv", HEADER + "a,u1,x,1719835200\nb,u1,x,2024-01-01\n")
    res = importer(w, "events", ["e.csv"])
    assert (res.files[0].inserted, res.files[0].rejected) == (1, 1)
    reason = query(w, "SELECT reason FROM import_rejects")[0][0]
    assert "--epoch" in reason


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
def test_garbage_timestamp_is_rejected(
    workspace: WorkspaceFactory, importer: Importer, query: Query, ext: str
) -> None:
    w = workspace()
    if ext == "csv":
        w.write("e.csv", HEADER + "a,u1,x,yesterday-ish\nb,u1,x,2024-13-45 10:00\n")
    else:
        w.write(
            "e.jsonl",
            '{"event_id":"a","user_id":"u1","name":"x","timestamp":"yesterday-ish"}\n'
            '{"event_id":"b","user_id":"u1","name":"x","timestamp":"2024-13-45 10:00"}\n',
        )
    res = importer(w, "events", [f"e.{ext}"])
    assert (res.files[0].inserted, res.files[0].rejected) == (0, 2)
    rows = query(w, "SELECT line, column_name, reason FROM import_rejects ORDER BY line")
    assert [r[0] for r in rows] == ([2, 3] if ext == "csv" else [1, 2])
    assert all(r[1] == "timestamp" and "timestamp" in r[2] for r in rows)
    assert "yesterday-ish" in rows[0][2]


def test_far_future_timestamp_is_rejected_with_reason(
    workspace: WorkspaceFactory, importer: Importer, query: Query
) -> None:
    w = workspace()
    w.write(
        "e.csv",
        HEADER
        + "a,u1,x,2099-01-01 00:00\n"  # device clock bug
        + "b,u1,x,2025-06-02 06:00\n"  # within a day of NOW (2025-06-01 12:00): fine
        + "c,u1,x,1994-05-01 00:00\n",  # old history is fine
    )
    res = importer(w, "events", ["e.csv"])
    assert (res.files[0].inserted, res.files[0].rejected) == (2, 1)
    line, reason = query(w, "SELECT line, reason FROM import_rejects")[0]
    assert line == 2 and "more than a day in the future" in reason
    assert sorted(stored(query, w)) == ["b", "c"]
