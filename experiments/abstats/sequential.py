"""Always-valid ("sequential") inference for a difference of means, for daily peeking.

Method: the mixture sequential probability ratio test (mSPRT) of Johari, Koomen, Pekelis
and Walsh, "Always Valid Inference: Continuous Monitoring of A/B Tests" (Operations
Research, 2022), with a normal mixture, applied to the Welch z-statistic. At each look the
difference of means ``d`` has estimated variance ``s2 = var_t / n_t + var_c / n_c``; under
``d ~ N(theta, s2)`` and the mixing distribution ``theta ~ N(0, tau2)`` the mixture
likelihood ratio against ``theta = 0`` is::

    L = sqrt(s2 / (s2 + tau2)) * exp(tau2 * d**2 / (2 * s2 * (s2 + tau2)))

``L`` is a nonnegative martingale under the null, so by Ville's inequality
``P(L >= 1/alpha at any look) <= alpha``. The sequential p-value is ``min(1, 1/L)``
(take its running minimum over looks, as :func:`sequential_path` does) and the
confidence sequence ``{theta : L(theta) < 1/alpha}`` is
``d +- sqrt(s2 (s2 + tau2) / tau2 * (2 log(1/alpha) + log((s2 + tau2) / s2)))``.

Mixing parameter: ``tau = effect_size * sigma`` with ``sigma**2`` the average of the two
arms' per-observation variances, i.e. ``effect_size`` is a standardised effect (Cohen's d)
that the test is tuned to detect quickly; the default 0.1 suits A/B tests on rewards and
conversion rates. Any fixed value keeps the guarantee; it only moves power between small
and large effects.

Assumptions: observations independent within and between arms (analyse at the unit of
randomisation), a fixed allocation ratio, and enough data for the central limit theorem
and the plug-in variances (hundreds per arm): the guarantee is asymptotic, like the
asymptotic confidence sequences of Waudby-Smith et al. (2021).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate
from typing import cast

from . import core
from .aggregates import MeanStats, Sample  # noqa: F401  (MeanStats: docstring examples)
from .results import Interval, SequentialResult
from .summary import pair_reason

DEFAULT_EFFECT_SIZE = 0.1


def mixing_variance(
    control: Sample, treatment: Sample, effect_size: float = DEFAULT_EFFECT_SIZE
) -> float:
    """The mSPRT mixing variance ``tau2 = effect_size**2 * (var_c + var_t) / 2``."""
    return effect_size**2 * (control.variance + treatment.variance) / 2


def sequential_test(
    control: Sample,
    treatment: Sample,
    *,
    alpha: float = 0.05,
    effect_size: float = DEFAULT_EFFECT_SIZE,
) -> SequentialResult:
    """Sequential p-value and confidence sequence for ``mean_t - mean_c`` at one look.

    Args:
        control: Cumulative statistics of the control arm up to this look.
        treatment: Cumulative statistics of the treatment arm up to this look.
        alpha: Level of the test; the confidence sequence has coverage ``1 - alpha``
            simultaneously over all looks.
        effect_size: Standardised mixing standard deviation (see the module docstring).

    Returns:
        The result; degenerate data give ``None`` fields and a reason code.

    Examples:
        >>> c = MeanStats(n=1000, total=100.0, total_sq=100.0)
        >>> t = MeanStats(n=1000, total=160.0, total_sq=160.0)
        >>> r = sequential_test(c, t)
        >>> round(r.p_value, 4), round(r.ci.lower, 4), round(r.ci.upper, 4)
        (0.0031, 0.0142, 0.1058)
    """
    reason = pair_reason(control, treatment)
    if reason:
        return SequentialResult(None, None, reason)
    se2 = control.mean_variance + treatment.mean_variance
    tau2 = mixing_variance(control, treatment, effect_size)
    diff = treatment.mean - control.mean
    p, half = core.msprt(diff, se2, tau2, alpha)
    return SequentialResult(float(p), Interval(diff - float(half), diff + float(half), 1 - alpha))


def sequential_path(
    control_daily: Sequence[Sample],
    treatment_daily: Sequence[Sample],
    *,
    alpha: float = 0.05,
    effect_size: float = DEFAULT_EFFECT_SIZE,
) -> tuple[SequentialResult, ...]:
    """Sequential results after each look, from per-look (e.g. daily) increments.

    The statistics are accumulated look by look; each result's p-value is the running
    minimum so far (once significant, always significant), and its interval is that
    look's confidence sequence.

    Args:
        control_daily: Control statistics of each look's new data (``GROUP BY day``).
        treatment_daily: Treatment statistics of each look's new data, same length.
        alpha: Level of the test.
        effect_size: Standardised mixing standard deviation.

    Returns:
        One result per look.

    Examples:
        >>> day = MeanStats(n=100, total=10.0, total_sq=10.0)
        >>> path = sequential_path([day, day], [day, day])
        >>> [r.p_value for r in path]
        [1.0, 1.0]
    """
    if len(control_daily) != len(treatment_daily):
        raise ValueError("control_daily and treatment_daily must have the same length")
    best: float | None = None
    path = []
    for c, t in zip(_running(control_daily), _running(treatment_daily), strict=True):
        look = sequential_test(c, t, alpha=alpha, effect_size=effect_size)
        if look.p_value is not None:
            best = look.p_value if best is None else min(best, look.p_value)
        path.append(SequentialResult(best, look.ci, look.reason))
    return tuple(path)


def _running(increments: Sequence[Sample]) -> list[Sample]:
    """Cumulative statistics after each increment (statistics add)."""
    return cast(list[Sample], list(accumulate(increments, lambda a, b: a + b)))


def sequential_cumulative(
    control: Sequence[Sample],
    treatment: Sequence[Sample],
    *,
    alpha: float = 0.05,
    effect_size: float = DEFAULT_EFFECT_SIZE,
) -> tuple[SequentialResult, ...]:
    """Sequential results after each look, from the *cumulative* statistics at each look.

    As :func:`sequential_path` (running minimum of the p-value, that look's confidence
    sequence) for statistics that are not sums of per-look increments, such as unit-level
    ratio statistics (a returning unit changes its own sums).

    Examples:
        >>> day = MeanStats(n=100, total=10.0, total_sq=10.0)
        >>> [r.p_value for r in sequential_cumulative([day, day + day], [day, day + day])]
        [1.0, 1.0]
    """
    if len(control) != len(treatment):
        raise ValueError("control and treatment must have the same length")
    best: float | None = None
    path = []
    for c, t in zip(control, treatment, strict=True):
        look = sequential_test(c, t, alpha=alpha, effect_size=effect_size)
        if look.p_value is not None:
            best = look.p_value if best is None else min(best, look.p_value)
        path.append(SequentialResult(best, look.ci, look.reason))
    return tuple(path)
