"""Unit-level ratio metrics: sufficient statistics per unit of randomisation, delta method.

Tailor randomises *units* (customers) and a unit makes many decisions, so decisions are
not independent. A metric "per decision" is a ratio of per-unit sums: for unit ``i`` let
``x_i`` be its number of decisions and ``y_i`` the sum of its metric over them; the arm's
value is ``R = sum(y) / sum(x)``. Its variance is the first-order delta method over units
(Deng, Knoblich and Lu, "Applying the Delta Method in Metric Analytics", KDD 2018)::

    Var(R) = sum_i (y_i - R x_i)**2 / (n (n - 1) xbar**2)

with ``n`` units and ``xbar = sum(x) / n``. This *is* the cluster-robust (CR1) variance of
the intercept of a decision-level OLS regression of the metric on a constant clustered by
unit, with statsmodels' small-sample factor ``G / (G - 1) * (N - 1) / (N - k)`` (``k = 1``,
so just ``G / (G - 1)``): ``OLS(y, ones).fit(cov_type="cluster",
cov_kwds={"groups": unit})`` gives the same standard error.

:class:`RatioStats` exposes ``n`` (units), ``mean`` (the ratio), ``variance`` (the
linearised per-unit variance ``sum (y - R x)**2 / ((n - 1) xbar**2)``) and
``mean_variance`` (``variance / n``, the delta-method variance), the same interface as
:class:`~experiments.abstats.MeanStats`. So Welch's test, t intervals, the mSPRT and the
power functions of this package apply to it unchanged, with degrees of freedom counted in
units. With one decision per unit (``x_i = 1``) every number equals the decision-level
one of :class:`MeanStats`.

Examples:
    >>> c = RatioStats.from_units([1, 3, 2], [1.0, 1.0, 0.0])
    >>> c.mean, c.decisions
    (0.3333333333333333, 6.0)
    >>> t = RatioStats.from_units([1, 1, 2, 1], [1.0, 0.0, 2.0, 1.0])
    >>> d = ratio_difference(c, t)
    >>> round(d.diff, 4), round(d.se, 4), round(d.lift, 4)
    (0.4667, 0.2898, 1.4)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from . import core
from .aggregates import MeanStats
from .results import Interval, Reason

# A residual sum of squares below this fraction of its terms is rounding noise.
_ZERO_RTOL = 1e-12

SqlNumber = int | float | Decimal | None


def _num(value: SqlNumber) -> float:
    return float(value or 0.0)


@dataclass(frozen=True, slots=True)
class RatioStats:
    """Per-arm sums over units of ``x`` (decisions per unit) and ``y`` (metric per unit).

    Instances of disjoint sets of units add together (``+`` and ``sum()``).

    Attributes:
        n: Number of units.
        sum_x: Sum of ``x`` (the number of decisions).
        sum_x2: Sum of ``x**2``.
        sum_y: Sum of ``y`` (the metric's total).
        sum_y2: Sum of ``y**2``.
        sum_xy: Sum of ``x * y``.

    Examples:
        >>> a = RatioStats.from_units([2, 1], [1.0, 0.0])
        >>> b = RatioStats.from_units([3], [2.0])
        >>> a + b == RatioStats.from_units([2, 1, 3], [1.0, 0.0, 2.0])
        True
        >>> RatioStats.from_mean_stats(MeanStats(4, 2.0, 2.0)).one_per_unit
        True
    """

    n: int
    sum_x: float
    sum_x2: float
    sum_y: float
    sum_y2: float
    sum_xy: float

    def __post_init__(self) -> None:
        if self.n < 0 or int(self.n) != self.n:
            raise ValueError(f"n must be a non-negative integer, got {self.n!r}")
        sums = (self.sum_x, self.sum_x2, self.sum_y, self.sum_y2, self.sum_xy)
        if not all(math.isfinite(s) for s in sums):
            raise ValueError("the sums must be finite")
        if self.sum_x2 < 0 or self.sum_y2 < 0 or (self.n == 0 and any(sums)):
            raise ValueError(f"inconsistent sums for the count: {self!r}")

    @classmethod
    def empty(cls) -> RatioStats:
        """Statistics of no units (the additive identity)."""
        return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0)

    @classmethod
    def from_units(cls, x: ArrayLike, y: ArrayLike) -> RatioStats:
        """Statistics of per-unit decision counts ``x`` and metric sums ``y``."""
        xs = np.asarray(x, dtype=float).ravel()
        ys = np.asarray(y, dtype=float).ravel()
        if xs.shape != ys.shape:
            raise ValueError("x and y must have the same length")
        return cls(int(xs.size), float(xs.sum()), float(xs @ xs), float(ys.sum()),
                   float(ys @ ys), float(xs @ ys))

    @classmethod
    def from_aggregates(cls, n: SqlNumber, sum_x: SqlNumber, sum_x2: SqlNumber,
                        sum_y: SqlNumber, sum_y2: SqlNumber, sum_xy: SqlNumber) -> RatioStats:
        """Statistics from SQL aggregates (``NULL`` sums of no rows and ``Decimal`` accepted).

        Examples:
            >>> RatioStats.from_aggregates(0, None, None, None, None, None).n
            0
        """
        return cls(int(n or 0), _num(sum_x), _num(sum_x2), _num(sum_y), _num(sum_y2),
                   _num(sum_xy))

    @classmethod
    def from_mean_stats(cls, s: MeanStats) -> RatioStats:
        """One decision per unit: ``x = 1`` and ``y`` the decision's value."""
        return cls(s.n, float(s.n), float(s.n), s.total, s.total_sq, s.total)

    def __add__(self, other: RatioStats) -> RatioStats:
        if not isinstance(other, RatioStats):
            return NotImplemented
        return RatioStats(self.n + other.n, self.sum_x + other.sum_x,
                          self.sum_x2 + other.sum_x2, self.sum_y + other.sum_y,
                          self.sum_y2 + other.sum_y2, self.sum_xy + other.sum_xy)

    def __radd__(self, other: object) -> RatioStats:
        # Lets built-in ``sum()`` start from 0.
        if other == 0:
            return self
        return NotImplemented

    @property
    def decisions(self) -> float:
        """Number of decisions, ``sum_x``."""
        return self.sum_x

    @property
    def one_per_unit(self) -> bool:
        """Whether every unit has exactly one decision (``x_i = 1`` for all units)."""
        return self.sum_x == self.n and self.sum_x2 == self.n

    @property
    def mean(self) -> float:
        """The ratio ``sum_y / sum_x`` (NaN without decisions)."""
        return self.sum_y / self.sum_x if self.sum_x else math.nan

    @property
    def mean_x(self) -> float:
        """Decisions per unit, ``sum_x / n`` (NaN without units)."""
        return self.sum_x / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """Linearised per-unit variance ``sum (y - R x)**2 / ((n - 1) xbar**2)``, ``ddof=1``.

        ``y - R x`` is each unit's residual from the ratio; dividing by ``xbar**2`` puts it
        on the scale of the metric per decision, so ``variance / n`` is the delta-method
        variance of ``R``. NaN when ``n < 2`` or there are no decisions; a residual sum
        below ``1e-12`` of its terms is rounding noise and returns exactly 0.
        """
        if self.n < 2 or not self.sum_x:
            return math.nan
        r = self.mean
        scale = self.sum_y2 + r * r * self.sum_x2
        resid = self.sum_y2 - 2 * r * self.sum_xy + r * r * self.sum_x2
        if resid <= _ZERO_RTOL * scale:
            return 0.0
        return resid / (self.n - 1) / self.mean_x**2

    @property
    def std(self) -> float:
        """Square root of :attr:`variance`."""
        return math.sqrt(self.variance)

    @property
    def mean_variance(self) -> float:
        """Delta-method (cluster-robust CR1) variance of the ratio, ``variance / n``."""
        return self.variance / self.n if self.n else math.nan

    @property
    def se(self) -> float:
        """Delta-method standard error of the ratio."""
        return math.sqrt(self.mean_variance)

    def per_unit(self) -> RatioStats:
        """The mean of ``y`` per unit as a ratio statistic (``x = 1`` for every unit).

        Examples:
            >>> RatioStats.from_units([2, 4], [1.0, 3.0]).per_unit().mean
            2.0
        """
        return RatioStats(self.n, float(self.n), float(self.n), self.sum_y, self.sum_y2,
                          self.sum_y)

    def as_mean_stats(self) -> MeanStats:
        """``y`` per unit as :class:`MeanStats` (the decisions' values when one per unit)."""
        return MeanStats(self.n, self.sum_y, self.sum_y2)

    def interval(self, alpha: float = 0.05) -> Interval | None:
        """``mean +- t(1 - alpha/2, n - 1) * se``, ``None`` when the variance is undefined.

        Examples:
            >>> RatioStats.from_units([1, 1], [1.0, 1.0]).interval()
            Interval(lower=1.0, upper=1.0, level=0.95)
        """
        if self.n < 2 or not self.sum_x:
            return None
        half = float(stats.t.isf(alpha / 2, self.n - 1)) * self.se
        return Interval(self.mean - half, self.mean + half, 1 - alpha)


@dataclass(frozen=True, slots=True)
class RatioDifference:
    """Treatment minus control of a ratio metric, with the relative lift (delta method).

    Attributes:
        diff: ``R_t - R_c`` (``None`` when an arm has no decisions).
        se: ``sqrt(Var(R_t) + Var(R_c))`` (arms are independent), ``None`` if undefined.
        df: Welch–Satterthwaite degrees of freedom counted in units.
        ci: ``diff +- t(1 - alpha/2, df) * se``.
        p_value: Two-sided p-value of Welch's t-test on the delta-method variances.
        lift: ``R_t / R_c - 1``.
        lift_se: Delta-method standard error of the lift,
            ``sqrt(Var(R_t) / R_c**2 + R_t**2 Var(R_c) / R_c**4)``.
        lift_ci: Normal interval ``lift +- z(1 - alpha/2) * lift_se``.
        reason: Why the inference fields are ``None`` (empty arm, single unit, zero
            variance in both arms, zero control mean for the lift).
    """

    diff: float | None
    se: float | None
    df: float | None
    ci: Interval | None
    p_value: float | None
    lift: float | None
    lift_se: float | None
    lift_ci: Interval | None
    reason: Reason | None = None


def ratio_reason(control: RatioStats, treatment: RatioStats) -> Reason | None:
    """Why the difference has no standard error (as ``pair_reason`` for means)."""
    if 0 in (control.n, treatment.n) or not (control.sum_x and treatment.sum_x):
        return Reason.EMPTY
    if 1 in (control.n, treatment.n):
        return Reason.SINGLE_OBSERVATION
    if control.variance == 0 and treatment.variance == 0:
        return Reason.ZERO_VARIANCE
    return None


def ratio_difference(control: RatioStats, treatment: RatioStats, *,
                     alpha: float = 0.05) -> RatioDifference:
    """Difference and relative lift of two arms' ratio metrics, delta-method variances.

    With one decision per unit the numbers are Welch's t-test (``diff``, ``ci``,
    ``p_value``) and the delta-method lift interval of
    :func:`~experiments.abstats.compare_means`.

    Args:
        control: Control arm's unit-level statistics.
        treatment: Treatment arm's unit-level statistics.
        alpha: Two-sided level; intervals have confidence ``1 - alpha``.

    Returns:
        The difference; degenerate data give ``None`` fields and a ``reason``.
    """
    empty = 0 in (control.n, treatment.n) or not (control.sum_x and treatment.sum_x)
    diff = None if empty else treatment.mean - control.mean
    lift = None if empty or control.mean == 0 else treatment.mean / control.mean - 1
    reason = ratio_reason(control, treatment)
    if reason or diff is None:
        return RatioDifference(diff, None, None, None, None, lift, None, None, reason)
    vt, vc = treatment.mean_variance, control.mean_variance
    est = core.welch(treatment.mean, treatment.variance, treatment.n,
                     control.mean, control.variance, control.n, alpha)
    df = (vt + vc) ** 2 / (vt**2 / (treatment.n - 1) + vc**2 / (control.n - 1))
    ci = Interval(float(est.lower), float(est.upper), 1 - alpha)
    if lift is None:
        return RatioDifference(diff, math.sqrt(vt + vc), float(df), ci, float(est.p_value),
                               None, None, None, Reason.ZERO_CONTROL_MEAN)
    rc, rt = control.mean, treatment.mean
    lift_se = math.sqrt(vt / rc**2 + rt**2 * vc / rc**4)
    bounds = core.relative_lift(rt, vt, rc, vc, alpha)
    lift_ci = Interval(float(bounds.lower), float(bounds.upper), 1 - alpha)
    return RatioDifference(diff, math.sqrt(vt + vc), float(df), ci, float(est.p_value),
                           lift, lift_se, lift_ci)
