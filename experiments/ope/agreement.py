"""A/B versus OPE: does the off-policy estimate agree with the randomized result?

The bandit arm's randomized (A/B) value, reward per decision as a ratio of per-unit sums
with its delta-method variance (:class:`~experiments.abstats.ratio.RatioStats`), is set
next to the off-policy estimate of the same policy computed on *another* arm's logs (the
champion's). The two rest on disjoint units (arms are assigned per unit), so the
difference ``A/B - OPE`` has variance ``Var(A/B) + Var(OPE)`` and a normal interval; when
that interval excludes 0 the two disagree beyond chance: OPE (its propensities, its
support, its reward model) or the comparison's assumptions should not be trusted on this
data. When they agree, OPE has passed a test on this experiment's own traffic; it remains
an estimate whose interval (like the A/B one) misses 5% of the time at level 0.95.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from scipy.special import ndtri

from experiments.abstats.ratio import RatioStats
from experiments.ope.results import Estimate, Interval

AgreementStatus = Literal["ok", "unsupported", "insufficient_data"]


@dataclass(frozen=True)
class Agreement:
    """The randomized value, the off-policy estimate, their difference and the flag.

    Attributes:
        ab: The A/B value (per unit sums of the arm's decisions).
        ab_interval: Its interval (normal, at ``level``).
        ope: The off-policy estimate.
        difference: ``ab.mean - ope.value`` (NaN if either is undefined).
        difference_interval: Normal interval of the difference.
        disagree: Whether the interval excludes 0 (only when ``status == "ok"``).
        status: ``ok``; ``unsupported`` (the logging arm did not explore where the policy
            goes: OPE cannot see it, no comparison is made); ``insufficient_data``.
    """

    ab: RatioStats
    ab_interval: Interval
    ope: Estimate
    difference: float
    difference_interval: Interval
    disagree: bool
    status: AgreementStatus

    def to_dict(self) -> dict[str, Any]:
        """Report shape (NaN becomes null)."""
        return {
            "status": self.status,
            "disagree": self.disagree,
            "ab": {"value": _json_float(self.ab.mean),
                   "ci_low": _json_float(self.ab_interval.lower),
                   "ci_high": _json_float(self.ab_interval.upper),
                   "n_units": self.ab.n, "n_decisions": int(self.ab.decisions)},
            "ope": {**self.ope.to_dict(), "method": self.ope.method,
                    "n_units": self.ope.n_units, "n_decisions": self.ope.n},
            "difference": {"diff": _json_float(self.difference),
                           "ci_low": _json_float(self.difference_interval.lower),
                           "ci_high": _json_float(self.difference_interval.upper)},
        }


def compare(ab: RatioStats, ope: Estimate, *, supported: bool = True) -> Agreement:
    """A/B value minus OPE estimate, at the OPE estimate's level.

    Args:
        ab: The arm's unit-level statistics (decisions ``x``, reward ``y`` per unit).
        ope: The same policy's off-policy estimate on another arm's units.
        supported: False when the logging arm gave probability 0 to actions the policy
            takes (then the status is ``unsupported`` and nothing is flagged).
    """
    level = ope.interval.level
    z = float(ndtri(0.5 + level / 2))
    ab_se = _finite_or_nan(ab.se) if ab.n >= 2 else math.nan
    ab_interval = Interval(ab.mean - z * ab_se, ab.mean + z * ab_se, level)
    diff = ab.mean - ope.value
    se = math.sqrt(ab_se**2 + ope.std_error**2)
    interval = Interval(diff - z * se, diff + z * se, level)
    status: AgreementStatus = "ok"
    if not math.isfinite(se) or not math.isfinite(diff):
        status = "insufficient_data"
    elif not supported:
        status = "unsupported"
    disagree = status == "ok" and (interval.lower > 0 or interval.upper < 0)
    return Agreement(ab, ab_interval, ope, diff, interval, disagree, status)


def _finite_or_nan(x: float) -> float:
    return x if math.isfinite(x) else math.nan


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
