"""Vectorised formulas on numpy arrays (or scalars) of sufficient statistics.

These have no branches for degenerate data: callers make sure every element has
``n >= 2`` and a positive standard error. The public functions in ``summary``,
``compare`` and ``sequential`` check that first; the simulations in ``simulation`` call
these directly to evaluate thousands of experiments at once.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

Array = NDArray[np.float64]


class Estimate(NamedTuple):
    """An estimate with its interval bounds and p-value, element-wise."""

    estimate: Array
    lower: Array
    upper: Array
    p_value: Array


class Bounds(NamedTuple):
    """An estimate with its interval bounds, element-wise."""

    estimate: Array
    lower: Array
    upper: Array


def _f(x: ArrayLike) -> Array:
    return np.asarray(x, dtype=np.float64)


def welch(
    mean_t: ArrayLike,
    var_t: ArrayLike,
    n_t: ArrayLike,
    mean_c: ArrayLike,
    var_c: ArrayLike,
    n_c: ArrayLike,
    alpha: float,
) -> Estimate:
    """Welch's t-test and interval for ``mean_t - mean_c`` (per-observation variances)."""
    vt, vc = _f(var_t) / _f(n_t), _f(var_c) / _f(n_c)
    se2 = vt + vc
    # Welch–Satterthwaite degrees of freedom.
    df = se2**2 / (vt**2 / (_f(n_t) - 1) + vc**2 / (_f(n_c) - 1))
    diff = _f(mean_t) - _f(mean_c)
    se = np.sqrt(se2)
    half = stats.t.isf(alpha / 2, df) * se
    p = 2 * stats.t.sf(np.abs(diff) / se, df)
    return Estimate(diff, diff - half, diff + half, p)


def z_test_proportions(
    count_t: ArrayLike, n_t: ArrayLike, count_c: ArrayLike, n_c: ArrayLike, pooled: bool
) -> tuple[Array, Array]:
    """Two-proportion z-test of ``p_t - p_c = 0``; returns ``(z, two-sided p-value)``.

    ``pooled=True`` uses the variance under the null, ``p(1 - p)(1/n_t + 1/n_c)`` with the
    pooled proportion ``p``; ``pooled=False`` uses the Wald variance
    ``p_t(1 - p_t)/n_t + p_c(1 - p_c)/n_c``.
    """
    ct, nt, cc, nc = _f(count_t), _f(n_t), _f(count_c), _f(n_c)
    pt, pc = ct / nt, cc / nc
    if pooled:
        p = (ct + cc) / (nt + nc)
        var = p * (1 - p) * (1 / nt + 1 / nc)
    else:
        var = pt * (1 - pt) / nt + pc * (1 - pc) / nc
    z = (pt - pc) / np.sqrt(var)
    return z, 2 * stats.norm.sf(np.abs(z))


def wilson(count: ArrayLike, n: ArrayLike, alpha: float) -> tuple[Array, Array]:
    """Wilson score interval for a proportion (no continuity correction)."""
    c, m = _f(count), _f(n)
    z = stats.norm.isf(alpha / 2)
    p = c / m
    shrink = 1 + z**2 / m
    centre = (p + z**2 / (2 * m)) / shrink
    half = z * np.sqrt(p * (1 - p) / m + z**2 / (4 * m**2)) / shrink
    return centre - half, centre + half


def newcombe(
    count_t: ArrayLike, n_t: ArrayLike, count_c: ArrayLike, n_c: ArrayLike, alpha: float
) -> tuple[Array, Array]:
    """Newcombe's hybrid score interval (Wilson-score based) for ``p_t - p_c``."""
    pt, pc = _f(count_t) / _f(n_t), _f(count_c) / _f(n_c)
    lt, ut = wilson(count_t, n_t, alpha)
    lc, uc = wilson(count_c, n_c, alpha)
    diff = pt - pc
    lower = diff - np.sqrt((pt - lt) ** 2 + (uc - pc) ** 2)
    upper = diff + np.sqrt((ut - pt) ** 2 + (pc - lc) ** 2)
    return lower, upper


def relative_lift(
    mean_t: ArrayLike,
    mean_var_t: ArrayLike,
    mean_c: ArrayLike,
    mean_var_c: ArrayLike,
    alpha: float,
) -> Bounds:
    """Relative lift ``mean_t / mean_c - 1`` with a delta-method normal interval.

    ``mean_var_*`` are variances of the sample means (``variance / n``). First-order
    delta method for a ratio of independent means:
    ``Var(t/c) ~ Var(t)/c**2 + t**2 Var(c)/c**4``.
    """
    mt, mc = _f(mean_t), _f(mean_c)
    ratio = mt / mc
    se = np.sqrt(_f(mean_var_t) / mc**2 + ratio**2 * _f(mean_var_c) / mc**2)
    half = stats.norm.isf(alpha / 2) * se
    return Bounds(ratio - 1, ratio - 1 - half, ratio - 1 + half)


def msprt(diff: ArrayLike, se2: ArrayLike, tau2: ArrayLike, alpha: float) -> tuple[Array, Array]:
    """Normal-mixture mSPRT p-value and confidence-sequence half-width, one look.

    With ``diff ~ N(theta, se2)`` and mixing prior ``theta ~ N(0, tau2)`` the mixture
    likelihood ratio against ``theta = 0`` is
    ``sqrt(se2 / (se2 + tau2)) * exp(tau2 * diff**2 / (2 * se2 * (se2 + tau2)))``.
    The p-value is ``min(1, 1 / ratio)``; the confidence sequence inverts the test.
    """
    d, s2, t2 = _f(diff), _f(se2), _f(tau2)
    log_lr = 0.5 * np.log(s2 / (s2 + t2)) + t2 * d**2 / (2 * s2 * (s2 + t2))
    p = np.minimum(1.0, np.exp(-log_lr))
    half = np.sqrt(s2 * (s2 + t2) / t2 * (2 * np.log(1 / alpha) + np.log((s2 + t2) / s2)))
    return p, half
