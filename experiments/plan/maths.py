"""Sample sizes for a target confidence-interval half-width (pure functions).

Both answers of `POST /v1/plan` come from the same normal-approximation identity: an
estimator with per-decision variance ``v``, averaged over ``n`` decisions, has the
``1 - alpha`` interval half-width ``z * sqrt(deff * v / n)`` with ``z = Phi^-1(1 - alpha/2)``
and ``deff`` the design effect of returning units, so the half-width ``h`` needs

    n = deff * z**2 * v / h**2          (decisions)

- A/B comparison (difference of the arms' means, two-sample normal approximation with
  unequal shares ``s_b + s_c = 1``): ``v = sd_b**2 / s_b + sd_c**2 / s_c`` over the
  decisions of both arms.
- OPE (inverse propensity scoring, IPS, of a deterministic target policy): the per-decision
  term is ``w * r`` with ``w = 1{a = target(x)} / p``; when the logging policy gives the
  target's action probability ``p`` and the target's reward has mean ``mu`` and second
  moment ``E[r^2]``, ``Var(w r) = E[r^2] / p - mu**2``.
- Returning units (clusters of ``m`` decisions, intra-unit correlation ``icc``): Kish's
  design effect ``deff = 1 + (m - 1) * icc``.

Examples:
    >>> round(design_effect(5.0, 0.1), 3)
    1.4
    >>> ab_decisions(ArmRewards(0.1, 0.3), ArmRewards(0.1, 0.3), 0.5, 0.01, z_value(0.05))
    13830
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

# Beyond this many decisions (a million a second for 30 years) a plan is not one.
MAX_DECISIONS = 1e15


@dataclass(frozen=True, slots=True)
class ArmRewards:
    """The expected reward of one arm (or of the target policy): mean and standard deviation.

    Attributes:
        mean: Expected reward per decision.
        sd: Standard deviation of one decision's reward (``sqrt(p (1 - p))`` for 0/1).
    """

    mean: float
    sd: float

    @classmethod
    def binary(cls, rate: float) -> ArmRewards:
        """0/1 rewards with success rate ``rate`` (Bernoulli variance ``rate (1 - rate)``)."""
        return cls(rate, math.sqrt(rate * (1.0 - rate)))

    @property
    def second_moment(self) -> float:
        """``E[r^2] = sd^2 + mean^2``."""
        return self.sd**2 + self.mean**2


def z_value(alpha: float) -> float:
    """Two-sided normal critical value ``Phi^-1(1 - alpha / 2)``."""
    return float(stats.norm.isf(alpha / 2.0))


def design_effect(decisions_per_unit: float, icc: float) -> float:
    """Kish's design effect ``1 + (m - 1) * icc`` of clusters of ``m`` decisions.

    The variance of a mean over units that make ``m`` decisions each, whose rewards have
    intra-unit (intraclass) correlation ``icc``, is ``deff`` times the variance of a mean
    over as many independent decisions.
    """
    return 1.0 + (decisions_per_unit - 1.0) * icc


def ab_variance(bandit: ArmRewards, champion: ArmRewards, bandit_share: float) -> float:
    """Per-decision variance of the difference of the arms' means, ``n`` decisions in all.

    Two-sample normal approximation with unequal shares:
    ``Var(mean_b - mean_c) * n = sd_b^2 / s_b + sd_c^2 / s_c``.
    """
    champion_share = 1.0 - bandit_share
    return bandit.sd**2 / bandit_share + champion.sd**2 / champion_share


def ips_variance(target: ArmRewards, propensity: float) -> float:
    """Per-decision variance of the IPS estimate of a deterministic target policy.

    The IPS term is ``r * 1{a = target(x)} / p``: it is ``r / p`` with probability ``p``
    and 0 otherwise, so ``Var = E[r^2] / p - mu^2`` (``p``: the logging policy's
    probability of the target's action).
    """
    return target.second_moment / propensity - target.mean**2


def decisions_for(variance: float, half_width: float, z: float, deff: float) -> int | None:
    """Decisions ``n`` (rounded up) for which ``z * sqrt(deff * variance / n) <= half_width``.

    ``None`` beyond ``MAX_DECISIONS`` (or when the numbers overflow a float): no plan.
    """
    # Divided twice: a tiny half-width's square would underflow to 0.
    exact = deff * z**2 * variance / half_width / half_width
    if not exact <= MAX_DECISIONS:  # also NaN and infinity
        return None
    return max(1, math.ceil(exact - 1e-9 * exact))


def ab_decisions(bandit: ArmRewards, champion: ArmRewards, bandit_share: float,
                 half_width: float, z: float, deff: float = 1.0) -> int | None:
    """Decisions of both arms for the difference's interval to reach ``half_width``."""
    return decisions_for(ab_variance(bandit, champion, bandit_share), half_width, z, deff)


def half_width(variance: float, decisions: float, z: float, deff: float = 1.0) -> float:
    """The interval half-width ``z * sqrt(deff * variance / n)`` after ``n`` decisions."""
    return z * math.sqrt(deff * variance / decisions)
