"""BG/NBD and Gamma-Gamma behaviour: recovery on simulated data, CLV arithmetic, and every
refusal (errors, never silent defaults) and warning of the model layer.

Simulations follow the models' own generative stories (analytics reference §3-§4) with seeded
numpy generators, so a fit can be checked against the parameters that made the data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from mcrm.predict import models as M
from mcrm.predict.run import fit_and_predict


def simulate_bgnbd(
    n: int, r: float, alpha: float, a: float, b: float, T: float, seed: int
) -> tuple[Any, Any, Any]:
    """(x, t_x, T) of n customers observed for T: Poisson(λ) purchases, drop-out with
    probability p after each repeat purchase (λ ~ Gamma(r, α), p ~ Beta(a, b))."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    xs, txs = np.zeros(n), np.zeros(n)
    for i in range(n):
        t, x, tx = 0.0, 0, 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T:
                break
            x, tx = x + 1, t
            if rng.random() < p[i]:
                break
        xs[i], txs[i] = x, tx
    return xs, txs, np.full(n, T)


def simulate_spend(x: Any, p: float, q: float, gamma: float, seed: int) -> Any:
    """Mean spend z̄ of customers with x purchases: ν ~ Gamma(q, γ), z ~ Gamma(p, ν)."""
    rng = np.random.default_rng(seed)
    nu = rng.gamma(q, 1 / gamma, len(x))
    return np.array([rng.gamma(p, 1 / v, int(k)).mean() for v, k in zip(nu, x, strict=True)])


def test_bgnbd_recovers_simulation_parameters() -> None:
    x, tx, T = simulate_bgnbd(4000, 0.5, 6.0, 1.2, 3.0, 52.0, seed=3)
    bg = M.fit_bgnbd(x, tx, T)
    assert bg.r == pytest.approx(0.5, rel=0.15)
    assert bg.alpha == pytest.approx(6.0, rel=0.2)
    assert bg.a == pytest.approx(1.2, rel=0.35)
    assert bg.b == pytest.approx(3.0, rel=0.4)


def test_grouping_and_weights_do_not_change_the_fit() -> None:
    x, tx, T = simulate_bgnbd(600, 0.5, 6.0, 1.2, 3.0, 52.0, seed=5)
    tx = np.round(tx)  # integer days-like recencies: many identical triples
    g = M.group(x, tx, T)
    assert len(g.x) < len(x)
    whole = M.fit_bgnbd(x, tx, T)
    weighted = M.fit_bgnbd(g.x, g.tx, g.T, weights=g.w)
    assert weighted.params() == pytest.approx(whole.params(), rel=1e-6)
    assert weighted.loglik == pytest.approx(whole.loglik, abs=1e-6)


def test_loglik_gradient_matches_finite_differences() -> None:
    x, tx, T = simulate_bgnbd(300, 0.5, 6.0, 1.2, 3.0, 52.0, seed=8)
    g = M.group(x, tx, T)
    p = np.array([0.7, 4.0, 0.9, 2.5])
    _, grad = M.bgnbd_loglik(p, g)
    for i in range(4):
        h = np.zeros(4)
        h[i] = 1e-6 * p[i]
        num = (M.bgnbd_loglik(p + h, g)[0] - M.bgnbd_loglik(p - h, g)[0]) / (2 * h[i])
        assert grad[i] == pytest.approx(num, rel=1e-5)
    xs = x[x > 0]
    z = simulate_spend(xs, 6.0, 4.0, 15.0, seed=2)
    pg = np.array([5.0, 3.5, 12.0])
    _, ggrad = M.gg_loglik(pg, xs, z)
    for i in range(3):
        h = np.zeros(3)
        h[i] = 1e-6 * pg[i]
        num = (M.gg_loglik(pg + h, xs, z)[0] - M.gg_loglik(pg - h, xs, z)[0]) / (2 * h[i])
        assert ggrad[i] == pytest.approx(num, rel=1e-5)


def test_gamma_gamma_recovers_simulation_parameters() -> None:
    x = np.random.default_rng(1).integers(1, 8, 3000).astype(float)
    z = simulate_spend(x, 6.0, 4.0, 15.0, seed=4)
    gg = M.fit_gamma_gamma(x, z)
    # p and γ trade off against each other at this size; the population mean pγ/(q − 1) is
    # well identified
    assert gg.population_mean == pytest.approx(6.0 * 15.0 / 3.0, rel=0.05)
    assert gg.p == pytest.approx(6.0, rel=0.35)
    assert gg.q == pytest.approx(4.0, rel=0.2)
    assert gg.gamma == pytest.approx(15.0, rel=0.4)
    # E[M] shrinks each customer's own mean towards the population mean
    em = gg.expected_m(x, z)
    lo, hi = np.minimum(z, gg.population_mean), np.maximum(z, gg.population_mean)
    assert ((em >= lo - 1e-9) & (em <= hi + 1e-9)).all()
    assert gg.expected_m([0], [0])[0] == pytest.approx(gg.population_mean)


def test_many_purchases_stay_finite() -> None:
    """Euler's form keeps E[Y] finite where the direct 2F1 overflows (x in the hundreds)."""
    bg = M.BgNbd(0.24, 4.4, 0.79, 2.43, 0.0, 0)
    x = np.array([0.0, 50.0, 400.0, 2000.0])
    tx = np.array([0.0, 50.0, 51.0, 51.9])
    T = np.full(4, 52.0)
    ey = bg.expected_y(520.0, x, tx, T)
    assert np.isfinite(ey).all() and (ey > 0).all()
    assert ey[3] > ey[2] > ey[1]


def test_clv_arithmetic() -> None:
    bg = M.BgNbd(0.24, 4.4, 0.79, 2.43, 0.0, 0)
    x, tx, T = np.array([0.0, 3.0]), np.array([0.0, 30.0]), np.array([38.0, 38.0])
    aov = np.array([35.0, 50.0])
    period = 30 / 7
    plain, purchases = M.clv(bg, aov, x, tx, T, 365 / 7, period, 0.0)
    # no discount: CLV is exactly expected purchases times E[M]
    np.testing.assert_allclose(plain, aov * bg.expected_y(365 / 7, x, tx, T), rtol=1e-12)
    np.testing.assert_allclose(purchases, bg.expected_y(365 / 7, x, tx, T), rtol=1e-12)
    d = M.monthly_rate(0.1)
    assert (1 + d) ** 12 == pytest.approx(1.1)
    discounted, _ = M.clv(bg, aov, x, tx, T, 365 / 7, period, d)
    # plain-Python sum of the reference's formula: 13 steps, the last cut at 365 days
    want = np.zeros(2)
    prev = np.zeros(2)
    for k in range(1, 14):
        ey = bg.expected_y(min(k * period, 365 / 7), x, tx, T)
        want += aov * (ey - prev) / (1 + d) ** k
        prev = ey
    np.testing.assert_allclose(discounted, want, rtol=1e-12)
    assert (discounted < plain).all()


# --- refusals ----------------------------------------------------------------------------------


def test_all_one_time_buyers_is_refused() -> None:
    with pytest.raises(M.ModelError, match="no repeat purchases"):
        M.fit_bgnbd(np.zeros(50), np.zeros(50), np.full(50, 30.0))


def test_too_few_customers_is_refused() -> None:
    with pytest.raises(M.ModelError, match="too little data to fit BG/NBD: 4 customer"):
        M.fit_bgnbd([1, 0, 2, 0], [3, 0, 5, 0], [10, 10, 10, 10])


def test_no_customers_is_refused() -> None:
    with pytest.raises(M.ModelError, match="no paid purchases"):
        fit_and_predict(
            {"frequency": [], "recency": [], "T": [], "monetary_value": [], "user_id": []},
            365,
            0.1,
        )


def test_inconsistent_summary_is_refused() -> None:
    with pytest.raises(M.ModelError, match="inconsistent"):
        M.fit_bgnbd([1, 2] * 10, [5, 50] * 10, [10, 10] * 10)


def test_gamma_gamma_refusals() -> None:
    with pytest.raises(M.ModelError, match="too little data to fit Gamma-Gamma: 3 repeat"):
        M.fit_gamma_gamma([1, 2, 3], [10.0, 20.0, 30.0])
    with pytest.raises(M.ModelError, match="the same mean spend"):
        M.fit_gamma_gamma([1, 2, 3, 4, 5, 6], [10.0] * 6)
    with pytest.raises(M.ModelError, match="positive mean spend"):
        M.fit_gamma_gamma([1, 2, 3, 4, 5, 6], [10.0, 0.0, 3, 4, 5, 6])


def test_heavy_tailed_spend_gives_q_below_one_and_is_refused() -> None:
    x = np.random.default_rng(6).integers(1, 6, 4000).astype(float)
    z = simulate_spend(x, 3.0, 0.6, 10.0, seed=7)  # q = 0.6: infinite population mean
    with pytest.raises(M.ModelError, match=r"q = 0\.\d+ <= 1"):
        M.fit_gamma_gamma(x, z)


def test_a_near_one_is_singular() -> None:
    bg = M.BgNbd(0.3, 5.0, 1.00001, 2.0, 0.0, 0)
    with pytest.raises(M.ModelError, match="a = 1.000010 ≈ 1"):
        bg.expected_y(10.0, [1], [2], [5])
    with pytest.raises(M.ModelError, match="singular"):
        bg.expected_x(10.0)


def test_a_likelihood_without_a_maximum_is_non_convergence() -> None:
    """The guard around the optimiser: an objective that improves forever runs a parameter
    to its bound, which is reported as non-convergence, never returned."""

    def unbounded(theta: Any) -> tuple[float, Any]:
        return float(theta[0]), np.array([1.0, 2 * theta[1]])

    with pytest.raises(M.ModelError, match="did not converge: parameter r ran off to 0"):
        M._maximise("BG/NBD", unbounded, 2, ("r", "alpha"))


def test_warnings_for_dropped_spend_and_correlation() -> None:
    x, tx, T = simulate_bgnbd(2000, 0.5, 6.0, 1.2, 3.0, 52.0, seed=9)
    rep = np.flatnonzero(x > 0)
    z = np.zeros_like(x)
    # Gamma-Gamma spend, scaled up with frequency: ρ > 0.3
    z[rep] = simulate_spend(x[rep], 6.0, 4.0, 15.0, seed=3) * (0.5 + 0.5 * x[rep])
    z[rep[:3]] = 0.0  # three repeaters with free orders only
    data = {"frequency": x, "recency": tx * 7, "T": T * 7, "monetary_value": z}
    _, _, pred, warnings = fit_and_predict(data, 365, 0.1)
    assert any("3 repeat customer(s) with a mean spend <= 0 left out" in w for w in warnings)
    assert any("correlated (Pearson ρ = 0." in w for w in warnings)
    assert all(math.isfinite(v) for v in pred["clv"])
    assert (pred["p_alive"][x == 0] == 1).all()
