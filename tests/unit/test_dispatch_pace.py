"""The lane pace (`delivery.rate_limits`): a burst of one second's worth, then the rate on
average, whatever the batch sizes."""

from __future__ import annotations

import pytest

from mcrm.dispatch.send import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def drain(rate: float, total: int, batch: int) -> float:
    """Seconds a lane spends sending `total` messages in batches, sleeping as told."""
    clock = Clock()
    b = TokenBucket(rate, clock)
    sent = 0
    while sent < total:
        n = min(batch, total - sent)
        clock.t += b.take(n)  # sleep
        sent += n
    return clock.t - 100.0


@pytest.mark.parametrize(("rate", "batch"), [(10, 1), (10, 16), (100, 1000), (500, 64)])
def test_the_average_rate_holds(rate: float, batch: int) -> None:
    total = int(rate * 20)
    spent = drain(rate, total, batch)
    # one second's burst is free; the rest goes at the rate
    expected = (total - max(1.0, rate)) / rate
    assert spent == pytest.approx(expected, abs=batch / rate + 1e-9)


def test_an_idle_lane_refills_only_one_burst() -> None:
    clock = Clock()
    b = TokenBucket(10, clock)
    assert b.take(10) == 0.0  # the burst
    clock.t += 3600  # an hour idle does not buy an hour of burst
    assert b.take(10) == 0.0
    assert b.take(10) == pytest.approx(1.0)
