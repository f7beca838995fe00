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
    return float(lead * bracket * alive)


@pytest.mark.parametrize("scale", [1e4, 1e6, 1e8, 1e10])
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


def homogeneous_customers(n: int, p: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, t_x) over 52 weeks: Poisson purchases (λ ~ Gamma(0.8, 3)), and after each repeat
    purchase a drop-out with the same probability p for everyone."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(0.8, 1 / 3.0, n)
    x, tx = np.zeros(n), np.zeros(n)
    for i in range(n):
        t, k, last = 0.0, 0, 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > 52.0:
                break
            k, last = k + 1, t
            if rng.random() < p:
                break
        x[i], tx[i] = k, last
    return x, tx


def test_homogeneous_drop_out_fits_its_probability() -> None:
    """The likelihood rises along a ridge of constant a/(a+b) towards a point mass; the fit
    must follow it (the gammaln form lost all but three digits there and the optimiser gave
    up) and find the drop-out probability that made the data."""
    x, tx = homogeneous_customers(3000, 0.04, seed=11)
    bg = M.fit_bgnbd(x, tx, np.full(len(x), 52.0))
    assert bg.a + bg.b > 1e4
    assert bg.a / (bg.a + bg.b) == pytest.approx(0.04, abs=0.015)
    value, purchases = M.clv(bg, np.ones(len(x)), x, tx, np.full(len(x), 52.0), 52, 30 / 7, 0.008)
    assert np.isfinite(value).all() and np.isfinite(purchases).all()
    alive = bg.p_alive(np.array([5.0, 5.0]), np.array([50.0, 10.0]), np.array([52.0, 52.0]))
    assert 0 < alive[1] < alive[0] < 1


def test_the_stable_beta_ratio_equals_the_gammaln_form_where_that_is_exact() -> None:
    x = np.array([0.0, 1.0, 2.0, 7.0, 30.0])
    for a, b in ((0.8, 2.4), (3.0, 0.5), (40.0, 900.0)):
        ln, da, db = M._ln_beta_ratio(a, b, x)
        from scipy.special import digamma, gammaln

        assert ln == pytest.approx(
            gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x), abs=1e-12
        )
        assert da == pytest.approx(digamma(a + b) - digamma(a + b + x), abs=1e-12)
        assert db == pytest.approx(
            digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x), abs=1e-12
        )


def test_fit_and_predict_warns_at_the_homogeneous_limit() -> None:
    from mcrm.predict.run import fit_and_predict

    x, tx = homogeneous_customers(2000, 0.05, seed=5)
    rng = np.random.default_rng(6)
    data = {
        "frequency": x,
        "recency": tx * 7,
        "T": np.full(len(x), 52.0 * 7),
        "monetary_value": np.where(x > 0, 20 + rng.gamma(4, 10, len(x)), 0.0),
    }
    _bg, _gg, out, warnings = fit_and_predict(data, 365, 0.1)
    assert any("drop out alike" in w for w in warnings), warnings
    assert not any("no drop-out" in w for w in warnings)
    assert all(np.isfinite(v).all() for v in out.values())
