"""BG/NBD predictions where the drop-out beta is nearly a point mass (a and b both large).

Real data can show drop-out with little heterogeneity in it: the fit then runs a and b up
together along a ridge of constant a/(a+b). There the Euler form of eq. 10's 2F1 is 0 · inf
(its (1-z)^(a-1) underflows while its 2F1 overflows); the prediction must still be finite and
right. The reference here sums the hypergeometric series term by term in plain Python.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcrm.predict import models as M


def series_2f1(a: float, b: float, c: float, z: float) -> float:
    """Σ (a)_n (b)_n / (c)_n · z^n / n!, by the term ratio, to double precision."""
    term, total, n = 1.0, 1.0, 0
    while abs(term) > 1e-17 * abs(total):
        term *= (a + n) * (b + n) / ((c + n) * (n + 1)) * z
        total += term
        n += 1
        assert n < 100_000
    return total


def expected_y_reference(bg: M.BgNbd, t: float, x: float, tx: float, T: float) -> float:
    r, al, a, b = bg.r, bg.alpha, bg.a, bg.b
    z = t / (al + T + t)
    bracket = 1 - (1 - z) ** (r + x) * series_2f1(r + x, b + x, a + b + x - 1, z)
    lead = (a + b + x - 1) / (a - 1)
    if x == 0:
        alive = 1.0
    else:
        ln = math.log(a) - math.log(b + x - 1) + (r + x) * (math.log(al + T) - math.log(al + tx))
        alive = 1 / (1 + math.exp(ln))
    return lead * bracket * alive


@pytest.mark.parametrize("scale", [1e4, 1e6, 1e8])
def test_expected_y_is_finite_and_right_when_a_and_b_are_large(scale: float) -> None:
    bg = M.BgNbd(r=0.27, alpha=6.9, a=0.043 * scale, b=0.957 * scale, loglik=0.0, customers=1)
    x = np.array([0.0, 0.0, 1.0, 3.0, 8.0, 20.0])
    tx = np.array([0.0, 0.0, 2.0, 10.0, 19.0, 40.0])
    T = np.array([0.14, 30.0, 5.0, 22.0, 20.0, 52.0])
    for t in (1.0, 4.3, 52.14):
        got = bg.expected_y(t, x, tx, T)
        want = [expected_y_reference(bg, t, *row) for row in zip(x, tx, T, strict=True)]
        assert np.isfinite(got).all()
        assert got == pytest.approx(want, rel=1e-9)


def test_the_euler_form_alone_fails_there() -> None:
    """What the fallback is for: the transformed form is nan at such parameters."""
    from scipy.special import hyp2f1

    a, b, r, x, z = 6.4e6, 1.4e8, 0.27, 0.0, 0.125
    c = a + b + x - 1
    with np.errstate(all="ignore"):
        euler = (1 - z) ** (a - 1) * hyp2f1(c - r - x, a - 1, c, z)
    assert not math.isfinite(euler)


def test_exactly_homogeneous_drop_out_is_refused_with_a_reason() -> None:
    """Everyone drops out with p = 0.04 exactly: the likelihood rises along a ridge of
    constant a/(a+b) with no maximum, so the fit is refused with a message, not a NaN."""
    rng = np.random.default_rng(11)
    n, horizon_T = 3000, 52.0
    lam = rng.gamma(0.8, 1 / 3.0, n)
    x, tx = np.zeros(n), np.zeros(n)
    for i in range(n):
        t, k, last = 0.0, 0, 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > horizon_T:
                break
            k, last = k + 1, t
            if rng.random() < 0.04:
                break
        x[i], tx[i] = k, last
    with pytest.raises(M.ModelError, match="BG/NBD fit did not converge"):
        M.fit_bgnbd(x, tx, np.full(n, horizon_T))
