"""Bayesian view of a difference: chance to win and expected loss (Gaussian, flat prior).

With a flat prior and the normal approximation the posterior of the true difference
``delta = mean_t - mean_c`` is ``N(d, se**2)`` (``d`` the observed difference, ``se`` its
standard error, delta method over units). Then

* chance to win: ``P(delta > 0) = Phi(d / se)``;
* expected loss of shipping the treatment: ``E[max(0, -delta)] = se * phi(d / se) -
  d * Phi(-d / se)`` (what one gives up, on average, if the treatment is in fact worse);
* expected loss of keeping the control: ``E[max(0, delta)] = se * phi(d / se) +
  d * Phi(d / se)``.

The same figures GrowthBook and Eppo show next to the frequentist ones; they are not a
decision rule of their own here (the verdict uses the always-valid test).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True, slots=True)
class BayesResult:
    """Posterior summaries of ``delta = treatment - control``.

    Attributes:
        chance_to_win: ``P(delta > 0)``.
        expected_loss: ``E[max(0, -delta)]``, the risk of shipping the treatment.
        expected_loss_control: ``E[max(0, delta)]``, the risk of keeping the control.
    """

    chance_to_win: float
    expected_loss: float
    expected_loss_control: float


def bayes(diff: float | None, se: float | None) -> BayesResult | None:
    """Chance to win and expected losses, ``None`` without a positive standard error.

    Examples:
        >>> r = bayes(0.02, 0.01)
        >>> round(r.chance_to_win, 4), round(r.expected_loss, 6)
        (0.9772, 8.5e-05)
    """
    if diff is None or se is None or not se > 0 or not math.isfinite(se):
        return None
    z = diff / se
    density = float(stats.norm.pdf(z))
    loss = se * density - diff * float(stats.norm.sf(z))
    loss_control = se * density + diff * float(stats.norm.cdf(z))
    return BayesResult(float(stats.norm.cdf(z)), max(loss, 0.0), max(loss_control, 0.0))
