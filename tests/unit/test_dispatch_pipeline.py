"""The pipelined drain (`Dispatcher._pipelined`): one batch on the wire while the next is
built, and still the sequential crash bound — when a request goes out, the rows `sending`
are exactly that request's batch (the next batch, already built, is still `pending`), so a
process killed at any moment leaves at most one batch `sending`, hence `unknown`."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from mcrm.db import open_db
from mcrm.dispatch import send as send_mod
from mcrm.dispatch.providers import FileOutbox
from mcrm.dispatch.send import send
from tests.cli.test_send_exactly_once import file_ids, make, plan
from tests.conftest import Cli, WorkspaceFactory


def test_at_each_request_only_its_batch_is_sending(
    workspace: WorkspaceFactory, cli: Cli, monkeypatch: Any
) -> None:
    import datetime as dt

    w = make(workspace, 53, batch=5)
    p = plan(cli, w)
    seen: list[tuple[int, int, set[str]]] = []  # (batch size, rows sending, their keys)
    threads: set[str] = set()
    real = FileOutbox.send
    dispatcher: list[Any] = []
    real_init = send_mod.Dispatcher.__init__

    def init(self: Any, *a: Any, **k: Any) -> None:
        real_init(self, *a, **k)
        dispatcher.append(self)

    def probe(self: FileOutbox, batch: Any) -> Any:
        d = dispatcher[0]
        with d._db:  # the drain's thread may be looking up the next batch
            rows = d.con.execute(
                "SELECT idempotency_key FROM outbox WHERE status = 'sending'"
            ).fetchall()
        seen.append((len(batch), len(rows), {r[0] for r in rows}))
        threads.add(threading.current_thread().name.split("_")[0])
        assert {m.idempotency_key for m in batch} == {r[0] for r in rows}
        return real(self, batch)

    monkeypatch.setattr(send_mod.Dispatcher, "__init__", init)
    monkeypatch.setattr(FileOutbox, "send", probe)
    now = dt.datetime(2026, 3, 2, 9, 0)
    got = send(w.ws, "promo", plan_file=p, now=now)
    assert got.outcomes == {"sent": 53}
    assert [s[0] for s in seen] == [5] * 10 + [3]
    assert all(n == size for size, n, _ in seen)
    assert len(set(file_ids(w))) == 53 == len(file_ids(w))
    with open_db(w.ws) as con:
        assert con.execute("SELECT status, count(*) FROM outbox GROUP BY 1").fetchall() == [
            ("sent", 53)
        ]
    assert threads == {"mcrm-send"}  # the requests went out from the sender thread


def test_the_sequential_drain_sends_the_same(
    workspace: WorkspaceFactory, cli: Cli, monkeypatch: Any
) -> None:
    """PIPELINE off (what `limit` and paced lanes use): the same file, the same outbox."""
    import datetime as dt

    monkeypatch.setattr(send_mod, "PIPELINE", False)
    w = make(workspace, 23, batch=4)
    p = plan(cli, w)
    got = send(w.ws, "promo", plan_file=p, now=dt.datetime(2026, 3, 2, 9, 0))
    assert got.outcomes == {"sent": 23}
    assert len(set(file_ids(w))) == 23 == len(file_ids(w))


def test_the_collector_is_tuned_for_a_drain_and_restored_after() -> None:
    import gc
    import weakref

    from mcrm.dispatch.send import GC_GEN0, _bulk_gc

    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    assert frozen == 0

    class Node:
        other: object = None

    with _bulk_gc():
        assert gc.get_threshold()[0] == max(before[0], GC_GEN0)
        assert gc.get_threshold()[1:] == before[1:]
        assert gc.get_freeze_count() > 0
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle made during the drain is still collectable
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)
    with pytest.raises(RuntimeError), _bulk_gc():
        raise RuntimeError("a drain that fails")
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)


def test_nested_and_overlapping_drains_restore_the_collector_once() -> None:
    import gc
    import threading

    from mcrm.dispatch.send import GC_GEN0, _bulk_gc

    before = gc.get_threshold()
    tuned = (max(before[0], GC_GEN0), *before[1:])
    with _bulk_gc():
        frozen = gc.get_freeze_count()
        with _bulk_gc():  # a drain inside a drain
            assert gc.get_threshold() == tuned
        # the inner one neither thawed the outer's objects nor restored the threshold early
        assert gc.get_threshold() == tuned
        assert gc.get_freeze_count() > frozen - 100 > 0
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)

    # two threads' drains overlapping: A in, B in, A out, B out
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[tuple[int, ...]] = []

    def drain_a() -> None:
        with _bulk_gc():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def drain_b() -> None:
        a_in.wait(5)
        with _bulk_gc():
            b_in.set()
            a_out.wait(5)
            seen.append(gc.get_threshold())

    ts = [threading.Thread(target=drain_a), threading.Thread(target=drain_b)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    assert seen == [tuned]  # still tuned while B drains
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)  # not left at 20,000


def test_objects_frozen_before_a_drain_stay_frozen_and_a_zero_threshold_stays() -> None:
    import gc

    from mcrm.dispatch.send import _bulk_gc

    before = gc.get_threshold()
    gc.freeze()  # a host that froze its startup objects (pre-fork servers do)
    try:
        frozen = gc.get_freeze_count()
        with pytest.raises(KeyboardInterrupt), _bulk_gc():
            raise KeyboardInterrupt
        # still frozen (a frozen object freed meanwhile leaves the count: not exact)
        assert gc.get_freeze_count() > frozen - 100 > 0
    finally:
        gc.unfreeze()
    gc.set_threshold(0, *before[1:])  # automatic collection off
    try:
        with _bulk_gc():
            assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*before)
