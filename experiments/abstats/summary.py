"""Per-arm summaries: the mean of a metric with a t interval (Wilson for proportions)."""

from __future__ import annotations

from scipy import stats

from . import core
from .aggregates import MeanStats, Sample
from .results import ArmSummary, Interval, Reason


def degenerate_reason(s: Sample) -> Reason | None:
    """Code for data whose variance cannot be estimated, ``None`` otherwise.

    Examples:
        >>> degenerate_reason(MeanStats.from_values([2.0, 2.0]))
        <Reason.ZERO_VARIANCE: 'zero_variance'>
    """
    if s.n == 0:
        return Reason.EMPTY
    if s.n == 1:
        return Reason.SINGLE_OBSERVATION
    if s.variance == 0.0:
        return Reason.ZERO_VARIANCE
    return None


def summarize(stats_: Sample, *, alpha: float = 0.05, binary: bool = False) -> ArmSummary:
    """Mean with a ``1 - alpha`` confidence interval, or a degenerate result with a reason.

    Means get Student's t interval ``mean +- t(1 - alpha/2, n - 1) * s / sqrt(n)``.
    Binary metrics get the Wilson score interval, which stays informative at 0/n, n/n
    and n = 1 (the reason is still reported there, the interval is kept).

    Args:
        stats_: Sufficient statistics of the arm.
        alpha: One minus the confidence level.
        binary: Whether the metric is 0/1 (then ``stats_.total`` counts the ones).

    Returns:
        The summary; ``mean`` is ``None`` for an empty arm and ``ci`` is ``None``
        wherever it is undefined.

    Examples:
        >>> s = summarize(MeanStats.from_values([1.0, 2.0, 3.0, 4.0]))
        >>> s.mean, round(s.ci.lower, 4), round(s.ci.upper, 4)
        (2.5, 0.4457, 4.5543)
        >>> summarize(MeanStats(10, 0.0, 0.0), binary=True).ci.lower
        0.0
        >>> summarize(MeanStats.empty()).reason
        <Reason.EMPTY: 'empty'>
    """
    reason = degenerate_reason(stats_)
    mean = None if stats_.n == 0 else stats_.mean
    if binary:
        if not isinstance(stats_, MeanStats):
            raise TypeError("a 0/1 summary needs MeanStats")
        stats_.require_binary()
        return ArmSummary(stats_.n, mean, _wilson(stats_, alpha), "wilson", reason)
    ci = None if reason else _t_interval(stats_, alpha)
    return ArmSummary(stats_.n, mean, ci, "t", reason)


def _t_interval(s: Sample, alpha: float) -> Interval:
    half = float(stats.t.isf(alpha / 2, s.n - 1)) * (s.mean_variance**0.5)
    return Interval(s.mean - half, s.mean + half, 1 - alpha)


def _wilson(s: MeanStats, alpha: float) -> Interval | None:
    if s.n == 0:
        return None
    lower, upper = core.wilson(s.successes, s.n, alpha)
    return Interval(float(lower), float(upper), 1 - alpha)


def pair_reason(control: Sample, treatment: Sample) -> Reason | None:
    """Code for a pair of arms whose difference has no estimable standard error.

    An empty arm beats a single observation, which beats zero variance in *both* arms
    (zero variance in one arm is fine: the other arm's variance carries the test).
    """
    reasons = (degenerate_reason(control), degenerate_reason(treatment))
    for code in (Reason.EMPTY, Reason.SINGLE_OBSERVATION):
        if code in reasons:
            return code
    if reasons == (Reason.ZERO_VARIANCE, Reason.ZERO_VARIANCE):
        return Reason.ZERO_VARIANCE
    return None
