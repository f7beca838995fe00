"""BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma (Fader & Hardie 2013) in numpy/scipy.

Definitions are those of `reference/analytics.md` §3-§4, formula for formula. Decisions:

- **Log space, analytic gradients.** Each log-likelihood is written with `gammaln` and
  `logaddexp` and maximised over the logs of the parameters with L-BFGS-B, starting at 1
  (log 0) as the reference says, with its exact gradient (digamma terms) so the optimiser stops
  on the true optimum instead of where finite differences get noisy.
- **Grouping.** BG/NBD's likelihood depends on a customer only through (x, t_x, T): identical
  triples are fitted once with a weight (`np.unique`), and predictions are computed per triple
  too, so 100k customers cost what their few thousand distinct histories cost.
- **Stable E[Y].** The 2F1 in eq. 10 is taken through Euler's transformation,
  `(1-z)^(r+x) 2F1(r+x, b+x; c; z) = (1-z)^(a-1) 2F1(c-r-x, a-1; c; z)` with c = a+b+x-1,
  which is the same number but never overflows for customers with many purchases (the
  direct form grows like (1-z)^-(x) before it is multiplied back down).
- **Errors, never silent defaults.** No data, all x = 0, too few customers, an optimiser that
  does not converge or a parameter that runs off to 0 or infinity, q <= 1 and a ≈ 1 each
  raise `ModelError` (a `DataError`, exit 3) saying which.

Time is in whatever unit the caller fits in; r, a, b, p, q and gamma do not depend on it,
alpha does (alpha_weeks = alpha_days / 7). Predict in the unit of the fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, hyp2f1

from mcrm.errors import DataError

Array = NDArray[np.float64]

MIN_CUSTOMERS = 10
"""BG/NBD needs at least this many customers (4 parameters; fewer is not a fit)."""
MIN_REPEATERS = 5
"""Gamma-Gamma needs at least this many repeat customers with a positive z̄."""
LOG_BOUND = 25.0
"""|log parameter| allowed: a fit ending beyond e^±25 has run off (the data do not identify
it)."""
HOMOGENEOUS_LOG_A = 5.0
"""With b at the bound, log a above this (a > 148: the drop-out probability's spread is under a
tenth of its mean) is the homogeneous drop-out limit, not a runaway."""
A_SINGULAR = 1e-4
"""|a - 1| below this makes E[X(t)] and E[Y(t)] numerically singular."""


class ModelError(DataError):
    """The data cannot be fitted, or the fit cannot be used (exit 3)."""


def _arr(v: ArrayLike) -> Array:
    return np.asarray(v, dtype=np.float64)


def _check_inputs(x: Array, tx: Array, T: Array) -> None:
    if not (x.shape == tx.shape == T.shape) or x.ndim != 1:
        raise ValueError("x, t_x and T must be 1-d arrays of one length")
    if not (np.isfinite(x).all() and np.isfinite(tx).all() and np.isfinite(T).all()):
        raise ModelError("the CLV summary has missing or infinite values")
    if (x < 0).any() or (tx < 0).any() or (tx > T + 1e-9).any():
        raise ModelError("the CLV summary is inconsistent (needs x >= 0 and 0 <= t_x <= T)")


@dataclass(frozen=True)
class Grouped:
    """Distinct (x, t_x, T) rows, their weights, and the map back to customers."""

    x: Array
    tx: Array
    T: Array
    w: Array
    inverse: NDArray[np.intp]


def group(x: ArrayLike, tx: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None) -> Grouped:
    xa, ta, Ta = _arr(x), _arr(tx), _arr(T)
    _check_inputs(xa, ta, Ta)
    keys = np.stack([xa, ta, Ta], axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    w = np.bincount(inverse, weights=None if weights is None else _arr(weights))
    return Grouped(uniq[:, 0].copy(), uniq[:, 1].copy(), uniq[:, 2].copy(), _arr(w), inverse)


def _maximise(
    name: str,
    neg_ll: Any,
    n_params: int,
    names: tuple[str, ...],
    limit_ok: Any = None,
) -> tuple[Array, float]:
    """Maximise over log parameters. `limit_ok(theta, at_bound)` may accept a fit with some
    parameters at the bound where that bound is a known limit of the model."""
    bounds = [(-LOG_BOUND, LOG_BOUND)] * n_params
    with np.errstate(all="ignore"):
        res = minimize(
            neg_ll,
            np.zeros(n_params),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-9},
        )
    theta = np.asarray(res.x, dtype=np.float64)
    if not np.isfinite(res.fun) or not np.isfinite(theta).all():
        raise ModelError(f"{name} fit failed: the likelihood is not finite at the optimum")
    at_bound = [n for n, t in zip(names, theta, strict=True) if abs(t) > LOG_BOUND - 1e-3]
    if at_bound and not (limit_ok is not None and limit_ok(theta, at_bound)):
        raise ModelError(
            f"{name} fit did not converge: parameter {', '.join(at_bound)} ran off to "
            f"{'0' if theta[names.index(at_bound[0])] < 0 else 'infinity'} "
            "(the data do not identify the model)",
        )
    if not res.success:
        # L-BFGS-B's line search can give up a hair from the optimum; accept only when the
        # gradient there is negligible
        grad = np.asarray(res.jac, dtype=np.float64).copy()
        # at a bound only the gradient pointing inwards counts (the KKT condition)
        grad[(theta > LOG_BOUND - 1e-3) & (grad < 0)] = 0.0
        grad[(theta < -LOG_BOUND + 1e-3) & (grad > 0)] = 0.0
        if not (np.isfinite(grad).all() and np.abs(grad).max() < 1e-3):
            msg = res.message if isinstance(res.message, str) else str(res.message)
            raise ModelError(f"{name} fit did not converge: {msg.lower()}")
    return np.exp(theta), -float(res.fun)


# ---------------------------------------------------------------------------------------------
# BG/NBD


def _ln_beta_ratio(a: float, b: float, x: Array) -> tuple[Array, Array, Array]:
    """ln B(a, b+x) / B(a, b) and its derivatives in a and b.

    For whole x (frequencies always are) it is Σ_{j<x} ln(1 - a/(a+b+j)), summed once per j
    up to max x: exact where the gammaln form cancels catastrophically. With a + b near 1e11
    (drop-out alike for everyone, where the fit runs along a ridge of constant a/(a+b)) each
    gammaln is about 1e12 and their difference keeps only three digits; the sum keeps all."""
    if x.size and np.all(x == np.round(x)) and x.max() < 1e6:
        j = np.arange(int(x.max()), dtype=np.float64)
        idx = x.astype(np.int64)
        zero = np.zeros(1)
        ln = np.concatenate([zero, np.cumsum(np.log1p(-a / (a + b + j)))])[idx]
        da = np.concatenate([zero, np.cumsum(-1.0 / (a + b + j))])[idx]
        db = np.concatenate([zero, np.cumsum(a / ((b + j) * (a + b + j)))])[idx]
        return ln, da, db
    ln = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    da = digamma(a + b) - digamma(a + b + x)
    db = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x)
    return _arr(ln), _arr(da), _arr(db)


def bgnbd_loglik(params: ArrayLike, g: Grouped) -> tuple[float, Array]:
    """Log-likelihood (FHL 2005 eq. 6) and its gradient in (r, alpha, a, b)."""
    r, al, a, b = _arr(params)
    x, tx, T, w = g.x, g.tx, g.T, g.w
    rep = x > 0
    ln_a1 = gammaln(r + x) - gammaln(r) + r * math.log(al)
    ln_a2, d_a2_a, d_a2_b = _ln_beta_ratio(a, b, x)
    ln_a3 = -(r + x) * np.log(al + T)
    bx1 = np.where(rep, b + x - 1, 1.0)
    ln_a4 = np.where(rep, math.log(a) - np.log(bx1) - (r + x) * np.log(al + tx), -np.inf)
    ln_s = np.logaddexp(ln_a3, ln_a4)
    ll = float(np.sum(w * (ln_a1 + ln_a2 + ln_s)))
    w3 = np.exp(ln_a3 - ln_s)
    w4 = np.exp(ln_a4 - ln_s)
    l_t, l_tx = np.log(al + T), np.log(al + tx)
    d_r = digamma(r + x) - digamma(r) + math.log(al) - (w3 * l_t + w4 * l_tx)
    d_al = r / al - (r + x) * (w3 / (al + T) + w4 / (al + tx))
    d_a = d_a2_a + w4 / a
    d_b = d_a2_b - w4 / bx1
    grad = np.array([np.sum(w * d) for d in (d_r, d_al, d_a, d_b)])
    return ll, grad


@dataclass(frozen=True)
class BgNbd:
    """A fitted BG/NBD model (time in the unit it was fitted in)."""

    r: float
    alpha: float
    a: float
    b: float
    loglik: float
    customers: int

    def params(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}

    def p_alive(self, x: ArrayLike, tx: ArrayLike, T: ArrayLike) -> Array:
        """P(alive | x, t_x, T); 1 for x = 0 (drop-out only follows a repeat purchase)."""
        x, tx, T = _arr(x), _arr(tx), _arr(T)
        rep = x > 0
        bx1 = np.where(rep, self.b + x - 1, 1.0)
        with np.errstate(over="ignore"):
            ln_term = (
                math.log(self.a)
                - np.log(bx1)
                + (self.r + x) * (np.log(self.alpha + T) - np.log(self.alpha + tx))
            )
            term = np.where(rep, np.exp(np.minimum(ln_term, 700.0)), 0.0)
        return _arr(1.0 / (1.0 + term))

    def _bracket(self, t: float, x: Array, T: Array) -> Array:
        """1 - ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x-1; t/(α+T+t)), via Euler."""
        r, al, a, b = self.r, self.alpha, self.a, self.b
        c = a + b + x - 1
        z = t / (al + T + t)
        with np.errstate(all="ignore"):
            f = np.power(1 - z, a - 1) * hyp2f1(c - r - x, a - 1, c, z)
            bad = ~np.isfinite(f)
            if bad.any():
                # a and b both large (drop-out with little heterogeneity: the beta is nearly a
                # point mass): (1-z)^(a-1) underflows to 0 while the Euler 2F1 overflows. The
                # direct form is finite there, since (b+x)/c stays below 1.
                direct = np.power(1 - z, r + x) * hyp2f1(r + x, b + x, c, z)
                f = np.where(bad, direct, f)
        return _arr(1 - f)

    def _check_a(self) -> None:
        if abs(self.a - 1) < A_SINGULAR:
            raise ModelError(
                f"BG/NBD fit has a = {self.a:.6f} ≈ 1, where E[X(t)] and E[Y(t)] are singular",
                hint="the drop-out process is degenerate on these data; try a longer history",
            )

    def expected_x(self, t: float) -> float:
        """E[X(t)]: repeat purchases of a new customer in (0, t] (eq. 9)."""
        self._check_a()
        zero = np.zeros(1)
        val = (self.a + self.b - 1) / (self.a - 1) * self._bracket(t, zero, zero)
        return float(val[0])

    def expected_y(self, t: float, x: ArrayLike, tx: ArrayLike, T: ArrayLike) -> Array:
        """E[Y(t) | x, t_x, T]: expected purchases in the next t (eq. 10)."""
        self._check_a()
        x, tx, T = _arr(x), _arr(tx), _arr(T)
        if t <= 0:
            return np.zeros_like(x)
        lead = (self.a + self.b + x - 1) / (self.a - 1)
        out = lead * self._bracket(t, x, T) * self.p_alive(x, tx, T)
        if not np.isfinite(out).all():
            raise ModelError("BG/NBD prediction is not finite (2F1 failed for this horizon)")
        return _arr(out)


def fit_bgnbd(
    x: ArrayLike, tx: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None
) -> BgNbd:
    """Maximum-likelihood BG/NBD on frequency x, recency t_x and age T (one time unit)."""
    g = group(x, tx, T, weights)
    n = int(round(g.w.sum()))
    if n == 0:
        raise ModelError("no customers to fit")
    if n < MIN_CUSTOMERS:
        raise ModelError(
            f"too little data to fit BG/NBD: {n} customer(s), at least {MIN_CUSTOMERS} needed"
        )
    if not (g.x > 0).any():
        raise ModelError(
            "no repeat purchases: every customer bought on one day only, so BG/NBD cannot be "
            "identified",
            hint="CLV needs customers who came back; wait for more history",
        )

    def neg(theta: Array) -> tuple[float, Array]:
        p = np.exp(theta)
        ll, grad = bgnbd_loglik(p, g)
        return -ll, -grad * p

    def homogeneous(theta: Array, at_bound: list[str]) -> bool:
        # b at the upper bound with a large too: the drop-out probabilities' beta has
        # collapsed towards a point mass at a/(a+b); the likelihood still rises along that
        # ridge, and the predictions depend on a and b only through the ratio (run.py warns)
        return at_bound == ["b"] and theta[3] > 0 and theta[2] > HOMOGENEOUS_LOG_A

    p, ll = _maximise("BG/NBD", neg, 4, ("r", "alpha", "a", "b"), homogeneous)
    return BgNbd(float(p[0]), float(p[1]), float(p[2]), float(p[3]), ll, n)


# ---------------------------------------------------------------------------------------------
# Gamma-Gamma


def gg_loglik(params: ArrayLike, x: Array, z: Array) -> tuple[float, Array]:
    """Gamma-Gamma log-likelihood of mean spend z̄ over x repeat purchases, and its gradient
    in (p, q, gamma)."""
    p, q, g = _arr(params)
    px = p * x
    lx, lz, lg = np.log(x), np.log(z), np.log(g + x * z)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * math.log(g)
        + px * lx
        + (px - 1) * lz
        - (px + q) * lg
    )
    d_p = x * (digamma(px + q) - digamma(px) + lx + lz - lg)
    d_q = digamma(px + q) - digamma(q) + math.log(g) - lg
    d_g = q / g - (px + q) / (g + x * z)
    return float(np.sum(ll)), np.array([np.sum(d_p), np.sum(d_q), np.sum(d_g)])


@dataclass(frozen=True)
class GammaGamma:
    """A fitted Gamma-Gamma spend model."""

    p: float
    q: float
    gamma: float
    loglik: float
    customers: int

    def params(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "gamma": self.gamma}

    @property
    def population_mean(self) -> float:
        """E[M] of a customer with no repeat purchase: pγ/(q − 1)."""
        return self.p * self.gamma / (self.q - 1)

    def expected_m(self, x: ArrayLike, z: ArrayLike) -> Array:
        """E[M | x, z̄] = p(γ + x z̄)/(p x + q − 1); the population mean for x = 0."""
        x, z = _arr(x), _arr(z)
        rep = x > 0
        zz = np.where(rep, z, 0.0)
        return _arr(self.p * (self.gamma + x * zz) / (self.p * x + self.q - 1))


@dataclass(frozen=True)
class SpendInputs:
    """The repeaters Gamma-Gamma is fitted on, and what was left out or looks doubtful."""

    x: Array
    z: Array
    dropped: int  # repeaters with z̄ <= 0
    rho: float | None  # Pearson correlation of x and z̄ among the kept repeaters


def spend_inputs(x: ArrayLike, z: ArrayLike) -> SpendInputs:
    xa, za = _arr(x), _arr(z)
    rep = xa > 0
    keep = rep & (za > 0)
    xs, zs = xa[keep], za[keep]
    rho = None
    if len(xs) > 2 and xs.std() > 0 and zs.std() > 0:
        rho = float(np.corrcoef(xs, zs)[0, 1])
    return SpendInputs(xs, zs, int(rep.sum() - keep.sum()), rho)


def fit_gamma_gamma(x: ArrayLike, z: ArrayLike) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma on repeaters (x >= 1, z̄ > 0 — callers drop the rest
    with `spend_inputs`, which says how many)."""
    xa, za = _arr(x), _arr(z)
    if len(xa) != len(za):
        raise ValueError("x and z̄ must have one length")
    if (xa < 1).any() or (za <= 0).any() or not np.isfinite(za).all():
        raise ModelError("Gamma-Gamma is fitted on repeat customers with a positive mean spend")
    if len(xa) < MIN_REPEATERS:
        raise ModelError(
            f"too little data to fit Gamma-Gamma: {len(xa)} repeat customer(s) with a positive "
            f"spend, at least {MIN_REPEATERS} needed"
        )
    if np.ptp(za) == 0:
        raise ModelError(
            "Gamma-Gamma cannot be fitted: every repeat customer has the same mean spend"
        )

    def neg(theta: Array) -> tuple[float, Array]:
        p = np.exp(theta)
        ll, grad = gg_loglik(p, xa, za)
        return -ll, -grad * p

    p, ll = _maximise("Gamma-Gamma", neg, 3, ("p", "q", "gamma"))
    model = GammaGamma(float(p[0]), float(p[1]), float(p[2]), ll, len(xa))
    if model.q <= 1:
        raise ModelError(
            f"Gamma-Gamma fit has q = {model.q:.4f} <= 1: the population mean spend is infinite, "
            "so E[M] is undefined",
            hint="spend is too heavy-tailed for the model; look for outlier orders",
        )
    return model


# ---------------------------------------------------------------------------------------------
# CLV


def monthly_rate(annual: float) -> float:
    """An annual discount rate as the monthly one: (1 + d_a)^(1/12) − 1."""
    return float((1 + annual) ** (1 / 12) - 1)


def clv(
    bg: BgNbd,
    aov: ArrayLike,
    x: ArrayLike,
    tx: ArrayLike,
    T: ArrayLike,
    horizon: float,
    period: float,
    monthly_discount: float,
) -> tuple[Array, Array]:
    """(CLV, expected purchases in the horizon) per customer (analytics reference §4).

    CLV = Σ_k E[M] · (E[Y(t_k)] − E[Y(t_{k−1})]) / (1 + d)^k with t_k = min(k·P, horizon):
    whole periods P (a month in model units), the last one cut at the horizon, so the
    undiscounted sum is exactly E[M] · E[Y(horizon)]."""
    x, tx, T, m = _arr(x), _arr(tx), _arr(T), _arr(aov)
    steps = max(1, math.ceil(horizon / period - 1e-9))
    prev = np.zeros_like(x)
    total = np.zeros_like(x)
    for k in range(1, steps + 1):
        tk = min(k * period, horizon)
        ey = bg.expected_y(tk, x, tx, T)
        total += (ey - prev) / (1 + monthly_discount) ** k
        prev = ey
    return _arr(m * total), prev
