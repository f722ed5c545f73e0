"""Guardrail metrics: one-sided non-inferiority tests with a margin.

A guardrail is a metric the treatment must not make worse by more than ``margin``
(absolute, in the metric's unit per decision). With ``harm = diff`` when higher values
are worse (refunds, errors) and ``harm = -diff`` when higher values are better, the
test is Welch's one-sided t-test of ``H0: harm >= margin`` against ``H1: harm < margin``
on the delta-method variances over units. The guardrail *holds* when ``H0`` is rejected
at ``alpha`` (the one-sided upper confidence bound of the harm is below the margin); it
is *breached* otherwise, which blocks a ``ship`` verdict. It is *harmful* when the
one-sided lower bound of the harm is above the margin: harm beyond the margin is shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

from .aggregates import Sample
from .summary import pair_reason


@dataclass(frozen=True, slots=True)
class GuardrailResult:
    """Non-inferiority of one arm on one guardrail metric.

    Attributes:
        diff: Treatment minus control, ``None`` when an arm is empty.
        harm_upper: One-sided ``1 - alpha`` upper bound of the harm.
        harm_lower: One-sided ``1 - alpha`` lower bound of the harm.
        p_value: One-sided p-value of ``H0: harm >= margin``.
        holds: ``p_value < alpha``.
        harmful: ``harm_lower > margin``.
    """

    diff: float | None
    harm_upper: float | None
    harm_lower: float | None
    p_value: float | None
    holds: bool
    harmful: bool


def non_inferiority(control: Sample, treatment: Sample, margin: float, *,
                    higher_is_better: bool, alpha: float = 0.05) -> GuardrailResult:
    """One-sided test that the treatment is not worse than the control by ``margin``.

    Examples:
        >>> from experiments.abstats import MeanStats
        >>> c = MeanStats(1000, 50.0, 50.0)
        >>> t = MeanStats(1000, 52.0, 52.0)
        >>> r = non_inferiority(c, t, 0.02, higher_is_better=False)
        >>> r.holds, round(r.harm_upper, 4)
        (True, 0.0182)
    """
    if margin < 0:
        raise ValueError("margin must be non-negative")
    if pair_reason(control, treatment):
        diff = None if 0 in (control.n, treatment.n) else treatment.mean - control.mean
        return GuardrailResult(diff, None, None, None, False, False)
    diff = treatment.mean - control.mean
    harm = -diff if higher_is_better else diff
    vt, vc = treatment.mean_variance, control.mean_variance
    se = math.sqrt(vt + vc)
    # Welch–Satterthwaite degrees of freedom.
    df = (vt + vc) ** 2 / (vt**2 / (treatment.n - 1) + vc**2 / (control.n - 1))
    crit = float(stats.t.isf(alpha, df))
    p = float(stats.t.cdf((harm - margin) / se, df))
    upper, lower = harm + crit * se, harm - crit * se
    return GuardrailResult(diff, upper, lower, p, p < alpha, lower > margin)
