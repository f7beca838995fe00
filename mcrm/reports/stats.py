"""Interval estimates for campaign measurement (reference/analytics.md §14).

Closed-form and deterministic on purpose: every interval here is computed from a handful of
counts and sums (x, n for conversions; n, Σy, Σy² for revenue), which SQL can produce for any
audience size, and gives the same answer on every run. No bootstrap in the product: the tests
cross-check Welch against a seeded percentile bootstrap instead.

- `wilson`: Wilson (1927) score interval for one proportion.
- `newcombe`: Newcombe (1998) method 10, the hybrid score interval for p_T − p_C, built from
  the two Wilson intervals. Chosen over Wald, which fails for small counts and rates near 0.
- `katz`: the Katz log interval for the risk ratio p_T / p_C, minus 1 (relative uplift).
- `welch`: Welch's t interval for a difference of means from (n, Σy, Σy²), t quantile from
  scipy (imported lazily; only reports need it).
- `verdict` / `small_counts`: the words the report prints, and the §14 small-count warning.

z = 1.959964 (the 97.5% normal quantile) as analytics.md states it; 95% everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959964
"""The two-sided 95% normal quantile, as analytics.md §14 fixes it."""

SMALL = 5
"""Fewer conversions (or non-conversions) than this in a group adds a warning."""


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def wilson(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (low, high) for x successes in n trials; n must be > 0."""
    if n <= 0:
        raise ValueError("wilson needs n > 0")
    if not 0 <= x <= n:
        raise ValueError("wilson needs 0 <= x <= n")
    p = x / n
    z2 = z * z
    den = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / den
    half = z / den * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(x_t: int, n_t: int, x_c: int, n_c: int, z: float = Z95) -> Interval:
    """Δ = p_T − p_C with Newcombe's hybrid score interval (method 10)."""
    p_t, p_c = x_t / n_t, x_c / n_c
    l_t, u_t = wilson(x_t, n_t, z)
    l_c, u_c = wilson(x_c, n_c, z)
    d = p_t - p_c
    low = d - math.sqrt((p_t - l_t) ** 2 + (u_c - p_c) ** 2)
    high = d + math.sqrt((u_t - p_t) ** 2 + (p_c - l_c) ** 2)
    return Interval(d, low, high)


def katz(x_t: int, n_t: int, x_c: int, n_c: int, z: float = Z95) -> Interval | None:
    """Relative uplift p_T / p_C − 1 with the Katz log interval; None if x_T or x_C is 0."""
    if x_t == 0 or x_c == 0 or n_t == 0 or n_c == 0:
        return None
    rr = (x_t / n_t) / (x_c / n_c)
    se = math.sqrt(1 / x_t - 1 / n_t + 1 / x_c - 1 / n_c)
    lr = math.log(rr)
    return Interval(rr - 1, math.exp(lr - z * se) - 1, math.exp(lr + z * se) - 1)


@dataclass(frozen=True)
class Moments:
    """A group's revenue as SQL can sum it: n, Σy, Σy² (y = revenue per recipient)."""

    n: int
    s: float
    ss: float

    @property
    def mean(self) -> float | None:
        return self.s / self.n if self.n else None

    @property
    def var(self) -> float | None:
        """Sample variance (n − 1); None for n < 2. Clamped at 0 against rounding."""
        if self.n < 2:
            return None
        return max(0.0, (self.ss - self.s * self.s / self.n) / (self.n - 1))


def welch(t: Moments, c: Moments, level: float = 0.95) -> Interval | None:
    """Mean_T − mean_C with Welch's t interval (Welch–Satterthwaite ν). None when a group has
    n < 2 or both variances are 0 (analytics.md §14)."""
    vt, vc = t.var, c.var
    if vt is None or vc is None or (vt == 0 and vc == 0):
        return None
    from scipy.stats import t as student_t

    at, ac = vt / t.n, vc / c.n
    se = math.sqrt(at + ac)
    nu = (at + ac) ** 2 / (at * at / (t.n - 1) + ac * ac / (c.n - 1))
    q = float(student_t.ppf(0.5 + level / 2, nu))
    d = t.s / t.n - c.s / c.n
    return Interval(d, d - q * se, d + q * se)


def welch_df(t: Moments, c: Moments) -> float | None:
    """The Welch–Satterthwaite degrees of freedom (for display and tests)."""
    vt, vc = t.var, c.var
    if vt is None or vc is None or (vt == 0 and vc == 0):
        return None
    at, ac = vt / t.n, vc / c.n
    return (at + ac) ** 2 / (at * at / (t.n - 1) + ac * ac / (c.n - 1))


def verdict(ci: Interval | None) -> str:
    """`uplift` if the interval lies above 0, `negative` if below, else `inconclusive`."""
    if ci is None:
        return "inconclusive"
    if ci.low > 0:
        return "uplift"
    if ci.high < 0:
        return "negative"
    return "inconclusive"


def verdict_words(v: str, what: str = "conversion") -> str:
    return {
        "uplift": f"significant {what} uplift at 95%: the interval lies above zero",
        "negative": f"significant negative {what} effect at 95%: the interval lies below zero",
        "inconclusive": f"no significant {what} difference at 95%: the interval contains zero",
    }[v]


def small_counts(x: int, n: int) -> bool:
    """Fewer than 5 conversions or fewer than 5 non-conversions (§14 warning)."""
    return x < SMALL or n - x < SMALL
