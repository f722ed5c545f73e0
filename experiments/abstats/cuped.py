"""CUPED: variance reduction with a pre-exposure covariate, for unit-level ratio metrics.

Deng, Xu, Kohavi and Walker, "Improving the Sensitivity of Online Controlled Experiments by
Utilizing Pre-Experiment Data" (WSDM 2013), applied to a ratio metric through its
linearisation (Deng, Knoblich and Lu, KDD 2018). Per unit ``i`` of an arm with ratio
``R = sum(y) / sum(x)`` the linearised value is ``l_i = (y_i - R x_i) / xbar``; its
covariance with the covariate ``z_i`` (taken at the unit's first decision, so the
treatment cannot have moved it) is ``(cov(y, z) - R cov(x, z)) / xbar``. With one
coefficient for all arms, the pooled within-arm slope
``theta = sum_a (n_a - 1) cov_a(l, z) / sum_a (n_a - 1) var_a(z)``, each arm's adjusted
value is ``R_a - theta (zbar_a - zbar)`` with variance
``(var(l) - 2 theta cov(l, z) + theta**2 var(z)) / n_a``.

With one decision per unit the adjusted difference equals the treatment coefficient of
``OLS(y ~ 1 + treatment + (z - zbar))`` (the covariate-adjusted regression estimator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .ratio import RatioStats


@dataclass(frozen=True, slots=True)
class CovariateStats:
    """Per-arm sums of the covariate over units: ``Σz``, ``Σz²``, ``Σzx``, ``Σzy``.

    Attributes:
        ratio: The metric's unit-level statistics (``n`` units, sums of ``x`` and ``y``).
        sum_z: Sum of the covariate over units.
        sum_z2: Sum of its squares.
        sum_zx: Sum of ``z * x`` (covariate times decisions of the unit).
        sum_zy: Sum of ``z * y`` (covariate times the unit's metric sum).
    """

    ratio: RatioStats
    sum_z: float
    sum_z2: float
    sum_zx: float
    sum_zy: float

    @property
    def mean_z(self) -> float:
        return self.sum_z / self.ratio.n

    def _cov(self, sum_ab: float, sum_a: float, sum_b: float) -> float:
        n = self.ratio.n
        return (sum_ab - sum_a * sum_b / n) / (n - 1)

    @property
    def var_z(self) -> float:
        return self._cov(self.sum_z2, self.sum_z, self.sum_z)

    @property
    def cov_lz(self) -> float:
        """Covariance of the linearised metric and the covariate (``ddof=1``)."""
        r, s = self.ratio, self.ratio
        cov_yz = self._cov(self.sum_zy, s.sum_y, self.sum_z)
        cov_xz = self._cov(self.sum_zx, s.sum_x, self.sum_z)
        return (cov_yz - r.mean * cov_xz) / r.mean_x


@dataclass(frozen=True, slots=True)
class CupedArm:
    """One arm after CUPED: adjusted value and the variance of that value."""

    mean: float
    mean_variance: float


@dataclass(frozen=True, slots=True)
class CupedResult:
    """CUPED over all arms.

    Attributes:
        theta: The pooled slope on the covariate.
        arms: Adjusted value and variance per arm.
        variance_reduction: Per arm, ``1 - Var(adjusted) / Var(unadjusted)``.
    """

    theta: float
    arms: dict[str, CupedArm]
    variance_reduction: dict[str, float]


def cuped(arms: dict[str, CovariateStats]) -> CupedResult | None:
    """CUPED-adjusted arm values, ``None`` when the covariate has no variance or an arm has
    fewer than two units.

    Args:
        arms: Per arm, the metric's ratio statistics with the covariate sums.

    Returns:
        The adjusted values; differences of them are the adjusted differences.
    """
    if not arms or any(a.ratio.n < 2 or not a.ratio.sum_x for a in arms.values()):
        return None
    pooled_var = sum((a.ratio.n - 1) * a.var_z for a in arms.values())
    if not pooled_var > 0:
        return None
    theta = sum((a.ratio.n - 1) * a.cov_lz for a in arms.values()) / pooled_var
    total_n = sum(a.ratio.n for a in arms.values())
    grand = sum(a.sum_z for a in arms.values()) / total_n
    adjusted, reduction = {}, {}
    for arm, a in arms.items():
        var = a.ratio.variance - 2 * theta * a.cov_lz + theta**2 * a.var_z
        var = max(var, 0.0) / a.ratio.n
        adjusted[arm] = CupedArm(a.ratio.mean - theta * (a.mean_z - grand), var)
        base = a.ratio.mean_variance
        reduction[arm] = 1 - var / base if base > 0 and math.isfinite(base) else 0.0
    return CupedResult(theta, adjusted, reduction)
