"""Idempotent and atomic imports: duplicates counted, re-imports add nothing, later order rows
update (refunds), and an interrupted import leaves the database as it was."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mcrm.ingest import run
from mcrm.ingest.load import Counts
from tests.conftest import WS, Importer, Query

HEADER = "event_id,user_id,name,timestamp\n"


def test_duplicate_rows_within_one_file(ws: WS, importer: Importer, query: Query) -> None:
    ws.write(
        "e.csv",
        HEADER
        + "e1,u1,open,2024-01-01 10:00\n"
        + "e1,u1,open,2024-01-01 10:00\n"
        + "e2,u1,open,2024-01-01 11:00\n"
        + "e1,u1,open,2024-01-01 10:00\n",
    )
    f = importer(ws, "events", ["e.csv"]).files[0]
    assert (f.rows_read, f.inserted, f.duplicates) == (4, 2, 2)
    assert query(ws, "SELECT count(*) FROM events") == [(2,)]


def test_events_without_ids_dedupe_on_content(ws: WS, importer: Importer, query: Query) -> None:
    ws.write(
        "e.csv",
        "user_id,name,timestamp\nu1,open,2024-01-01 10:00\nu1,open,2024-01-01 10:00\n"
        "u1,open,2024-01-01 10:01\n",
    )
    f = importer(ws, "events", ["e.csv"]).files[0]
    assert (f.inserted, f.duplicates) == (2, 1)
    again = importer(ws, "events", ["e.csv"]).files[0]
    assert (again.inserted, again.duplicates) == (0, 3)


@pytest.mark.parametrize(
    ("kind", "content"),
    [
        ("events", HEADER + "e1,u1,open,2024-01-01 10:00\ne2,u2,open,2024-01-02 10:00\n"),
        (
            "purchases",
            "order_id,user_id,timestamp,amount,currency\n"
            "o1,u1,2024-01-01 10:00,5.00,EUR\no2,u2,2024-01-02 10:00,7.00,EUR\n",
        ),
        (
            "users",
            "user_id,email,first_name\nu1,a@example.com,Ann\nu2,b@example.com,Bob\n",
        ),
    ],
)
def test_same_file_twice_adds_nothing(
    ws: WS, importer: Importer, query: Query, kind: str, content: str
) -> None:
    ws.write("f.csv", content)
    first = importer(ws, kind, ["f.csv"]).files[0]
    assert first.inserted == 2
    volatile = {"events": "import_id", "purchases": "import_id, updated_at", "users": "updated_at"}
    snapshot = f"SELECT * EXCLUDE ({volatile[kind]}) FROM {kind} ORDER BY 1"
    before = query(ws, snapshot)
    second = importer(ws, kind, ["f.csv"]).files[0]
    assert (second.rows_read, second.inserted, second.updated, second.duplicates) == (2, 0, 0, 2)
    assert query(ws, snapshot) == before


def test_overlapping_exports(ws: WS, importer: Importer, query: Query) -> None:
    ws.write("mon.csv", HEADER + "".join(f"e{i},u1,x,2024-01-0{i} 10:00\n" for i in (1, 2, 3)))
    ws.write("tue.csv", HEADER + "".join(f"e{i},u1,x,2024-01-0{i} 10:00\n" for i in (2, 3, 4, 5)))
    importer(ws, "events", ["mon.csv"])
    f = importer(ws, "events", ["tue.csv"]).files[0]
    assert (f.rows_read, f.inserted, f.duplicates) == (4, 2, 2)
    assert query(ws, "SELECT count(*) FROM events") == [(5,)]


def test_refund_updates_the_order(ws: WS, importer: Importer, query: Query) -> None:
    ws.write(
        "jan.csv",
        "order_id,user_id,timestamp,amount,currency,status\n"
        "o1,u1,2024-01-01 10:00,20.00,EUR,paid\no2,u1,2024-01-02 10:00,5.00,EUR,paid\n",
    )
    ws.write(
        "feb.csv",
        "order_id,user_id,timestamp,amount,currency,status\n"
        "o1,u1,2024-01-01 10:00,20.00,EUR,refunded\no2,u1,2024-01-02 10:00,5.00,EUR,paid\n",
    )
    importer(ws, "purchases", ["jan.csv"])
    f = importer(ws, "purchases", ["feb.csv"]).files[0]
    assert (f.inserted, f.updated, f.duplicates) == (0, 1, 1)
    assert query(ws, "SELECT order_id, status FROM purchases ORDER BY 1") == [
        ("o1", "refunded"),
        ("o2", "paid"),
    ]


def test_refund_in_the_same_file(ws: WS, importer: Importer, query: Query) -> None:
    ws.write(
        "p.csv",
        "order_id,user_id,timestamp,amount,currency,status\n"
        "o1,u1,2024-01-01 10:00,20.00,EUR,paid\no1,u1,2024-01-01 10:00,20.00,EUR,refunded\n",
    )
    f = importer(ws, "purchases", ["p.csv"]).files[0]
    assert (f.inserted, f.updated) == (1, 1)
    assert query(ws, "SELECT status FROM purchases") == [("refunded",)]


def test_interrupted_import_leaves_the_database_unchanged(
    ws: WS,
    importer: Importer,
    query: Query,
    counts: Callable[[WS], dict[str, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws.write("a.csv", HEADER + "e1,u1,open,2024-01-01 10:00\n")
    ws.write("b.csv", HEADER + "e2,u2,open,2024-01-02 10:00\ne3,u3,bad,garbage\n")
    ws.write("c.csv", HEADER + "e4,u4,open,2024-01-03 10:00\n")
    importer(ws, "events", ["a.csv"])
    before = counts(ws)
    events_before = query(ws, "SELECT * FROM events ORDER BY event_id")

    real = run.LOADERS["events"]
    calls = []

    def flaky(x: run.LoadContext, c: Counts) -> None:
        calls.append(x.file)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(x, c)

    monkeypatch.setitem(run.LOADERS, "events", flaky)
    with pytest.raises(KeyboardInterrupt):
        importer(ws, "events", ["b.csv", "c.csv"])
    assert calls == ["b.csv", "c.csv"]
    assert counts(ws) == before
    assert query(ws, "SELECT * FROM events ORDER BY event_id") == events_before
    # and the database is still usable afterwards
    monkeypatch.setitem(run.LOADERS, "events", real)
    f = importer(ws, "events", ["b.csv", "c.csv"]).files
    assert [x.inserted for x in f] == [1, 1]
