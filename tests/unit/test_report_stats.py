"""The interval estimates of reference/analytics.md §14, against published figures, hand
computations, scipy's own Welch test and a seeded percentile bootstrap."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import stats as sps

from mcrm.reports.stats import (
    Interval,
    Moments,
    katz,
    newcombe,
    small_counts,
    verdict,
    welch,
    welch_df,
    wilson,
)


def moments(ys: list[float]) -> Moments:
    return Moments(len(ys), sum(ys), sum(y * y for y in ys))


@pytest.mark.parametrize(
    ("x_t", "n_t", "x_c", "n_c", "delta", "low", "high"),
    [
        (56, 70, 48, 80, 0.2000, 0.0524, 0.3339),  # Newcombe 1998, table II, example (a)
        (9, 10, 3, 10, 0.6000, 0.1705, 0.8090),  # example (b)
    ],
)
def test_newcombe_published(
    x_t: int, n_t: int, x_c: int, n_c: int, delta: float, low: float, high: float
) -> None:
    ci = newcombe(x_t, n_t, x_c, n_c)
    assert round(ci.estimate, 4) == delta
    assert round(ci.low, 4) == low
    assert round(ci.high, 4) == high


def test_wilson_textbook() -> None:
    # Newcombe 1998 (single proportion paper), 81/263: 0.2553 .. 0.3662; 0/10: 0 .. 0.2775
    lo, hi = wilson(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and round(hi, 4) == 0.2775


def test_wilson_zero_and_full() -> None:
    lo, hi = wilson(10, 10)
    assert hi == pytest.approx(1.0) and round(lo, 4) == 0.7225
    with pytest.raises(ValueError):
        wilson(1, 0)


def test_katz_by_hand() -> None:
    # 56/70 vs 48/80: RR = 0.8 / 0.6; SE(ln RR) = sqrt(1/56 - 1/70 + 1/48 - 1/80)
    rr = (56 / 70) / (48 / 80)
    se = math.sqrt(1 / 56 - 1 / 70 + 1 / 48 - 1 / 80)
    assert round(se, 6) == 0.109109
    ci = katz(56, 70, 48, 80)
    assert ci is not None
    assert ci.estimate == pytest.approx(1 / 3)
    assert ci.low == pytest.approx(rr * math.exp(-1.959964 * se) - 1)
    assert round(ci.low, 4) == 0.0766
    assert round(ci.high, 4) == 0.6512


def test_katz_null_without_conversions() -> None:
    assert katz(0, 100, 5, 100) is None
    assert katz(5, 100, 0, 100) is None


WIKI_A1 = [
    27.5,
    21.0,
    19.0,
    23.6,
    17.0,
    17.9,
    16.9,
    20.1,
    21.9,
    22.6,
    23.1,
    19.6,
    19.0,
    21.7,
    21.4,
]
WIKI_A2 = [
    27.1,
    22.0,
    20.8,
    23.4,
    23.4,
    23.5,
    25.8,
    22.0,
    24.8,
    20.2,
    21.9,
    22.1,
    22.9,
    20.5,
    24.4,
]


def test_welch_textbook() -> None:
    # Wikipedia "Welch's t-test", example 1: t = -2.46, nu = 24.9, p = 0.021
    a, b = moments(WIKI_A1), moments(WIKI_A2)
    ci = welch(a, b)
    nu = welch_df(a, b)
    assert ci is not None and nu is not None
    se = (ci.high - ci.low) / 2 / sps.t.ppf(0.975, nu)
    assert round(ci.estimate / se, 2) == -2.46
    assert nu == pytest.approx(24.9, abs=0.1)
    # and scipy's own Welch test gives the same interval
    res = sps.ttest_ind(WIKI_A1, WIKI_A2, equal_var=False)
    assert nu == pytest.approx(res.df, rel=1e-9)
    assert round(res.pvalue, 3) == 0.021
    ref = res.confidence_interval(0.95)
    assert ci.low == pytest.approx(ref.low, rel=1e-9)
    assert ci.high == pytest.approx(ref.high, rel=1e-9)
    assert ci.high < 0  # p = 0.021 < 0.05


def test_welch_degenerate() -> None:
    assert welch(moments([1.0]), moments([1.0, 2.0])) is None  # n < 2
    assert welch(moments([0.0, 0.0]), moments([0.0, 0.0, 0.0])) is None  # both variances 0
    one = welch(moments([0.0, 0.0, 0.0]), moments([0.0, 1.0, 2.0]))  # one variance 0
    assert one is not None and one.low < -1.0 < one.high


def _zero_inflated(rng: random.Random, n: int, share: float, mu: float) -> list[float]:
    return [
        round(math.exp(rng.gauss(mu, 1.0)), 2) if rng.random() < share else 0.0 for _ in range(n)
    ]


def test_welch_matches_percentile_bootstrap_on_skewed_revenue() -> None:
    """Revenue per recipient is zero-inflated and heavy-tailed: Welch's interval should still
    agree with a seeded percentile bootstrap (10,000 resamples within each group)."""
    rng = random.Random(14)
    t = _zero_inflated(rng, 3000, 0.12, 3.5)
    c = _zero_inflated(rng, 2500, 0.08, 3.5)
    ci = welch(moments(t), moments(c))
    assert ci is not None
    gen = np.random.default_rng(14)
    ta, ca = np.array(t), np.array(c)
    diffs = []
    for _ in range(10):  # 10 x 1,000 resamples, to keep memory small
        bt = ta[gen.integers(0, ta.size, size=(1000, ta.size))].mean(axis=1)
        bc = ca[gen.integers(0, ca.size, size=(1000, ca.size))].mean(axis=1)
        diffs.append(bt - bc)
    d = np.concatenate(diffs)
    lo, hi = np.percentile(d, [2.5, 97.5])
    width = ci.high - ci.low
    assert abs(ci.low - lo) < 0.06 * width
    assert abs(ci.high - hi) < 0.06 * width
    assert ci.estimate == pytest.approx(ta.mean() - ca.mean())


def test_verdicts() -> None:
    assert verdict(Interval(0.1, 0.01, 0.2)) == "uplift"
    assert verdict(Interval(-0.1, -0.2, -0.01)) == "negative"
    assert verdict(Interval(0.0, -0.1, 0.1)) == "inconclusive"
    assert verdict(Interval(0.1, 0.0, 0.2)) == "inconclusive"  # L must be strictly above 0
    assert verdict(None) == "inconclusive"


def test_small_counts() -> None:
    assert small_counts(4, 100)
    assert small_counts(96, 100)  # 4 non-conversions
    assert not small_counts(5, 10)
