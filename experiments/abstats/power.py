"""Power analysis for a relative lift of a metric, from the control arm's statistics.

A relative lift ``lift`` of the control mean ``mu`` with per-observation standard
deviation ``sigma`` is the standardised effect ``d = lift * |mu| / sigma`` (Cohen's d,
both arms assumed to share the control's variance). For ``n_t`` and ``n_c``
observations and ``m = 1 / (1/n_t + 1/n_c)`` the two-sided power is

* ``distribution="t"``: noncentral t with ``n_t + n_c - 2`` degrees of freedom and
  noncentrality ``d * sqrt(m)`` (``statsmodels.stats.power.TTestIndPower``);
* ``distribution="normal"``: the normal approximation
  (``statsmodels.stats.power.NormalIndPower``).

The functions return ``None`` when the control's mean or variance make the effect
undefined (fewer than 2 observations, zero variance, zero mean).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from scipy import optimize, stats

from .aggregates import MeanStats, Sample  # noqa: F401  (MeanStats: docstring examples)
from .summary import degenerate_reason

Distribution = Literal["t", "normal"]


def power_at_lift(
    control: Sample,
    lift: float,
    n_treatment: int,
    *,
    alpha: float = 0.05,
    distribution: Distribution = "t",
) -> float | None:
    """Power to detect a relative ``lift`` with the current sample sizes.

    Args:
        control: Control statistics; ``control.n`` is the control sample size.
        lift: Relative lift to detect, e.g. ``0.05`` for +5%.
        n_treatment: Treatment sample size.
        alpha: Two-sided significance level.
        distribution: ``"t"`` or ``"normal"``.

    Examples:
        >>> c = MeanStats(n=2000, total=200.0, total_sq=200.0)
        >>> round(power_at_lift(c, 0.2, 2000), 3)
        0.559
    """
    scale = _scale(control)
    if scale is None or n_treatment < 1:
        return None
    return _power(lift * scale, n_treatment, control.n, alpha, distribution)


def minimum_detectable_lift(
    control: Sample,
    n_treatment: int,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    distribution: Distribution = "t",
) -> float | None:
    """Smallest positive relative lift detected with probability ``power`` at current n.

    Examples:
        >>> c = MeanStats(n=2000, total=200.0, total_sq=200.0)
        >>> round(minimum_detectable_lift(c, 2000), 4)
        0.2659
    """
    _check_levels(alpha, power)
    scale = _scale(control)
    if scale is None or n_treatment < 1:
        return None
    n_c = control.n

    def gap(d: float) -> float:
        return _power(d, n_treatment, n_c, alpha, distribution) - power

    return _solve_increasing(gap, 1.0) / scale


def sample_size_per_arm(
    control: Sample,
    lift: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    distribution: Distribution = "t",
) -> int | None:
    """Observations needed in each arm (equal allocation) to detect a relative ``lift``.

    The exact solution of ``power(n) = power`` is rounded up.

    Examples:
        >>> c = MeanStats(n=2000, total=200.0, total_sq=200.0)
        >>> sample_size_per_arm(c, 0.1)
        14136
    """
    _check_levels(alpha, power)
    scale = _scale(control)
    if scale is None or lift == 0:
        return None
    d = abs(lift) * scale

    def gap(n: float) -> float:
        return _power(d, n, n, alpha, distribution) - power

    return math.ceil(_solve_increasing(gap, 100.0, lower=2.0) - 1e-9)


def _scale(control: Sample) -> float | None:
    """``|mu| / sigma``, turning a relative lift into a standardised effect."""
    if degenerate_reason(control) or control.mean == 0:
        return None
    return abs(control.mean) / control.std


def _power(d: float, n_t: float, n_c: float, alpha: float, distribution: Distribution) -> float:
    # Two-sided power is symmetric in d; the far tail is written as an upper tail with
    # negative noncentrality, where scipy's noncentral t stays finite (its lower-tail cdf
    # can return NaN for large noncentrality).
    nc = abs(d) * math.sqrt(1 / (1 / n_t + 1 / n_c))
    if distribution == "normal":
        crit = stats.norm.isf(alpha / 2)
        return float(stats.norm.sf(crit - nc) + stats.norm.sf(crit + nc))
    df = n_t + n_c - 2
    crit = stats.t.isf(alpha / 2, df)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.sf(crit, df, -nc))


def _solve_increasing(gap: Callable[[float], float], start: float, lower: float = 0.0) -> float:
    """Root of an increasing ``gap`` above ``lower`` (``lower`` itself if already >= 0)."""
    if gap(lower) >= 0:
        return lower
    upper = max(start, lower)
    while gap(upper) < 0:
        lower, upper = upper, upper * 2
    return float(optimize.brentq(gap, lower, upper, xtol=1e-12, rtol=1e-14))


def _check_levels(alpha: float, power: float) -> None:
    if not 0 < alpha < power < 1:
        raise ValueError(f"need 0 < alpha < power < 1, got alpha={alpha}, power={power}")
