"""Treatment versus control for one metric: Welch t-test, two-proportion z-test, lift."""

from __future__ import annotations

import numpy as np

from . import core
from .aggregates import MeanStats, Sample
from .results import Comparison, Interval, Reason
from .sequential import DEFAULT_EFFECT_SIZE, sequential_test
from .summary import pair_reason


def compare_means(
    control: Sample,
    treatment: Sample,
    *,
    alpha: float = 0.05,
    effect_size: float = DEFAULT_EFFECT_SIZE,
) -> Comparison:
    """Welch's unequal-variance t-test of ``mean_t - mean_c`` with lift and sequential test.

    The interval is ``diff +- t(1 - alpha/2, df) * se`` with ``se**2 = s_t**2/n_t +
    s_c**2/n_c`` and Welch–Satterthwaite ``df``; the p-value is two-sided. Equal to
    ``statsmodels.stats.weightstats.CompareMeans(...).ttest_ind(usevar="unequal")`` and
    ``scipy.stats.ttest_ind(equal_var=False)``.

    Args:
        control: Statistics of the control (champion) arm.
        treatment: Statistics of the treatment arm.
        alpha: Significance level; intervals have confidence ``1 - alpha``.
        effect_size: Standardised mixing parameter of the sequential test.

    Returns:
        The comparison. An empty arm, a single observation or zero variance in both arms
        give ``None`` inference fields and a ``reason``; ``diff`` and ``lift`` are still
        reported when the means exist.

    Examples:
        >>> c = MeanStats.from_values([1.0, 2.0, 3.0, 4.0])
        >>> t = MeanStats.from_values([2.0, 4.0, 6.0, 8.0, 10.0])
        >>> r = compare_means(c, t)
        >>> r.diff, round(r.p_value, 4), r.significant, round(r.lift, 2)
        (3.5, 0.0691, False, 1.4)
    """
    reason = pair_reason(control, treatment)
    if reason:
        return _degenerate("welch", control, treatment, reason, alpha)
    est = core.welch(
        treatment.mean,
        treatment.variance,
        treatment.n,
        control.mean,
        control.variance,
        control.n,
        alpha,
    )
    return _assemble("welch", control, treatment, est, alpha, effect_size)


def compare_proportions(
    control: MeanStats,
    treatment: MeanStats,
    *,
    alpha: float = 0.05,
    pooled: bool = True,
    effect_size: float = DEFAULT_EFFECT_SIZE,
) -> Comparison:
    """Two-proportion z-test of ``p_t - p_c`` with Newcombe's interval, lift and sequential.

    The p-value is the z-test with the pooled variance under the null (``pooled=True``,
    as ``statsmodels.stats.proportion.proportions_ztest``) or the unpooled Wald variance
    (``pooled=False``, as ``test_proportions_2indep(method="wald")``). The interval is
    Newcombe's hybrid score interval built from the two Wilson intervals
    (``confint_proportions_2indep(method="newcomb")``), so the p-value and the interval
    can disagree right at the boundary; ``significant`` follows the p-value.

    Args:
        control: Statistics of the control arm; ``total`` counts the ones.
        treatment: Statistics of the treatment arm.
        alpha: Significance level.
        pooled: Pooled (default) or unpooled variance in the z-test.
        effect_size: Standardised mixing parameter of the sequential test.

    Returns:
        The comparison; zero variance in both arms (all 0 or all 1) keeps Newcombe's
        interval but has no p-value.

    Examples:
        >>> r = compare_proportions(MeanStats(1000, 100.0, 100.0), MeanStats(1000, 130.0, 130.0))
        >>> round(r.diff, 3), round(r.p_value, 4), r.method, r.significant
        (0.03, 0.0355, 'z_pooled', True)
    """
    control.require_binary()
    treatment.require_binary()
    method = "z_pooled" if pooled else "z_unpooled"
    reason = _proportion_reason(control, treatment, pooled)
    if reason in (Reason.EMPTY, Reason.ZERO_VARIANCE):
        return _degenerate(method, control, treatment, reason, alpha)
    args = (treatment.successes, treatment.n, control.successes, control.n)
    _, p = core.z_test_proportions(*args, pooled=pooled)
    lower, upper = core.newcombe(*args, alpha)
    est = core.Estimate(np.asarray(treatment.mean - control.mean), lower, upper, p)
    return _assemble(method, control, treatment, est, alpha, effect_size, reason)


def _proportion_reason(control: MeanStats, treatment: MeanStats, pooled: bool) -> Reason | None:
    """Degeneracy of the z-test: empty arm, or a zero variance in the test statistic."""
    if control.n == 0 or treatment.n == 0:
        return Reason.EMPTY
    if pooled:
        ones, n = control.successes + treatment.successes, control.n + treatment.n
        flat = ones in (0, n)
    else:
        flat = control.mean in (0, 1) and treatment.mean in (0, 1)
    if flat:
        return Reason.ZERO_VARIANCE
    return Reason.SINGLE_OBSERVATION if 1 in (control.n, treatment.n) else None


def _assemble(
    method: str,
    control: Sample,
    treatment: Sample,
    est: core.Estimate,
    alpha: float,
    effect_size: float,
    reason: Reason | None = None,
) -> Comparison:
    p = float(est.p_value)
    lift, lift_ci, lift_reason = _lift(control, treatment, alpha)
    seq = sequential_test(control, treatment, alpha=alpha, effect_size=effect_size)
    return Comparison(
        method=method,
        diff=float(est.estimate),
        ci=Interval(float(est.lower), float(est.upper), 1 - alpha),
        p_value=p,
        significant=p < alpha,
        lift=lift,
        lift_ci=lift_ci,
        p_value_sequential=seq.p_value,
        ci_sequential=seq.ci,
        reason=reason,
        lift_reason=lift_reason,
    )


def _degenerate(
    method: str, control: Sample, treatment: Sample, reason: Reason, alpha: float
) -> Comparison:
    empty = reason is Reason.EMPTY
    ci = None
    if isinstance(control, MeanStats) and isinstance(treatment, MeanStats) \
            and method != "welch" and not empty:
        args = (treatment.successes, treatment.n, control.successes, control.n)
        lower, upper = core.newcombe(*args, alpha)
        ci = Interval(float(lower), float(upper), 1 - alpha)
    lift, _, lift_reason = _lift(control, treatment, alpha)
    return Comparison(
        method=method,
        diff=None if empty else treatment.mean - control.mean,
        ci=ci,
        p_value=None,
        significant=False,
        lift=lift,
        lift_ci=None,
        p_value_sequential=None,
        ci_sequential=None,
        reason=reason,
        lift_reason=lift_reason,
    )


def _lift(
    control: Sample, treatment: Sample, alpha: float
) -> tuple[float | None, Interval | None, Reason | None]:
    """Relative lift and its delta-method interval, or the reason they are undefined."""
    reason = pair_reason(control, treatment)
    if reason is Reason.EMPTY:
        return None, None, reason
    if control.mean == 0:
        return None, None, Reason.ZERO_CONTROL_MEAN
    lift = treatment.mean / control.mean - 1
    if not reason and treatment.mean == 0 and treatment.variance == 0:
        reason = Reason.ZERO_VARIANCE  # all-zero treatment: the delta-method se is 0
    if reason:
        return lift, None, reason
    est = core.relative_lift(
        treatment.mean, treatment.mean_variance, control.mean, control.mean_variance, alpha
    )
    return lift, Interval(float(est.lower), float(est.upper), 1 - alpha), None
