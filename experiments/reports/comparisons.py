"""Each arm versus the control, per metric: fixed-horizon and always-valid inference, the
report's multiple-testing correction across the family (Holm or Benjamini–Hochberg),
power for a relative lift, and the Bayesian view.

Every metric is a ratio of per-unit sums (:class:`~experiments.abstats.RatioStats`): Welch's
t-test on delta-method variances with degrees of freedom counted in units
(``method="welch_delta"``). Where every unit has exactly one decision the decision-level
tests apply unchanged (Welch, or the two-proportion z-test with Newcombe's interval for
0/1 metrics), so those numbers are the ones of independent observations."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from experiments.abstats import (
    Comparison,
    Interval,
    RatioStats,
    SequentialResult,
    compare,
    compare_means,
    holm,
    minimum_detectable_lift,
    power_at_lift,
    sample_size_per_arm,
    sequential_cumulative,
)
from experiments.abstats.aggregates import Sample
from experiments.abstats.bayes import BayesResult, bayes
from experiments.abstats.multitest import Adjustment, adjust
from experiments.abstats.power import Distribution
from experiments.reports.metrics import Metric

TARGET_POWER = 0.8
# The mSPRT guarantee is asymptotic: looks start once both arms hold this many units
# (earlier looks are merged into the first), so a noisy variance estimate from a handful
# of decisions cannot set the running minimum of the sequential p-value.
BURN_IN = 100


@dataclass(frozen=True, slots=True)
class Power:
    """Power analysis of one comparison (``None`` where the control makes it undefined).

    Attributes:
        lift: The relative lift asked about.
        power: Chance to detect ``lift`` at the current sample sizes.
        mde: Minimum detectable relative lift (power :data:`TARGET_POWER`) at current n.
        n_per_arm: Units per arm needed to detect ``lift`` with that power.
    """

    lift: float
    power: float | None
    mde: float | None
    n_per_arm: int | None


@dataclass(frozen=True, slots=True)
class ArmComparison:
    """One arm versus the control on one metric.

    Attributes:
        arm: The treatment arm.
        metric: The metric's name.
        result: Fixed-horizon comparison (Welch, or z-test with Newcombe's interval).
        sequential: Always-valid p-value (running minimum over looks) and the confidence
            sequence at the last look.
        power: Power analysis for the requested lift (``None`` where not computed).
        bayes: Chance to win and expected loss (``None`` without a standard error).
        se: Standard error of ``diff`` (delta method over units).
        units_needed: More units per arm to detect the *observed* lift (power 0.8).
        units: Units of the control and of the treatment.
    """

    arm: str
    metric: str
    result: Comparison
    sequential: SequentialResult
    power: Power | None = None
    bayes: BayesResult | None = None
    se: float | None = None
    units_needed: int | None = None
    units: tuple[int, int] = (0, 0)


def power_for(control: Sample, n_treatment: int, lift: float, alpha: float,
              binary: bool) -> Power:
    """Power, MDE and required units per arm for a relative ``lift`` of the control's mean."""
    dist: Distribution = "normal" if binary else "t"
    return Power(
        lift,
        power_at_lift(control, lift, n_treatment, alpha=alpha, distribution=dist),
        minimum_detectable_lift(control, n_treatment, alpha=alpha, power=TARGET_POWER,
                                distribution=dist),
        sample_size_per_arm(control, lift, alpha=alpha, power=TARGET_POWER, distribution=dist))


def compare_units(base: RatioStats, stats: RatioStats, binary: bool,
                  alpha: float) -> Comparison:
    """Fixed-horizon comparison of two arms' unit-level statistics.

    One decision per unit in both arms: the decision-level test (z-test or Welch), which
    is then exact. Otherwise Welch's test on the delta-method variances
    (``welch_delta``).
    """
    if base.one_per_unit and stats.one_per_unit:
        return compare(base.as_mean_stats(), stats.as_mean_stats(), binary=binary,
                       alpha=alpha)
    return replace(compare_means(base, stats, alpha=alpha), method="welch_delta")


def _sample(s: RatioStats) -> Sample:
    return s.as_mean_stats() if s.one_per_unit else s


def compare_metric(metric: Metric, control: str, alpha: float,
                   lift: float) -> list[ArmComparison]:
    """Every non-control arm of ``metric`` against ``control``."""
    found = []
    base = metric.totals[control]
    for arm, stats in metric.totals.items():
        if arm == control:
            continue
        result = compare_units(base, stats, metric.binary, alpha)
        path = sequential_cumulative(*burn_in(metric.looks[control], metric.looks[arm]),
                                     alpha=alpha)
        last = path[-1] if path else SequentialResult(result.p_value_sequential,
                                                      result.ci_sequential, result.reason)
        se = _se(base, stats)
        needed = None
        if result.lift and se:
            needed = sample_size_per_arm(_sample(base), result.lift, alpha=alpha,
                                         power=TARGET_POWER)
        found.append(ArmComparison(
            arm, metric.name, result, last,
            power_for(_sample(base), stats.n, lift, alpha, metric.binary),
            bayes(result.diff, se), se,
            None if needed is None else max(needed - min(base.n, stats.n), 0),
            (base.n, stats.n)))
    return found


def _se(base: RatioStats, stats: RatioStats) -> float | None:
    var = base.mean_variance + stats.mean_variance
    return var**0.5 if var == var and var > 0 else None


def burn_in(control: list[RatioStats], treatment: list[RatioStats],
            min_n: int = BURN_IN) -> tuple[list[RatioStats], list[RatioStats]]:
    """The cumulative looks from the first one where both arms hold ``min_n`` units.

    Earlier looks are left out (the last look is kept in any case), so a noisy variance
    of a handful of units cannot set the running minimum of the sequential p-value.

    Examples:
        >>> def units(n):
        ...     return RatioStats.from_units([1] * n, [0.0] * n)
        >>> c, t = burn_in([units(60), units(120), units(180)], [units(60)] * 3)
        >>> [s.n for s in c]
        [180]
    """
    for i, (c, t) in enumerate(zip(control, treatment, strict=True)):
        if min(c.n, t.n) >= min_n:
            return list(control[i:]), list(treatment[i:])
    return list(control[-1:]), list(treatment[-1:])


def _bounds(interval: Interval | None) -> tuple[float | None, float | None]:
    return (None, None) if interval is None else (interval.lower, interval.upper)


def serialize(comparisons: list[ArmComparison], control: str, alpha: float,
              adjustment: Adjustment = "holm") -> list[dict[str, Any]]:
    """JSON rows with the family's adjusted p-values (``adjustment``: holm or bh).

    ``significant`` uses the adjusted p-value (equal to the raw one for a family of one);
    ``significant_sequential`` the adjusted always-valid p-value. ``p_value_holm`` stays
    the Holm-adjusted one whatever the adjustment.
    """
    raw = [c.result.p_value for c in comparisons]
    seq = [c.sequential.p_value for c in comparisons]
    # statsmodels' multipletests runs gc.collect() on every call (0.05-0.2 s in a large
    # process): one call per family, Holm reused when it is the report's correction.
    fixed = adjust(raw, adjustment) if raw else ()
    always = adjust(seq, adjustment) if seq else ()
    holm_p = fixed if adjustment == "holm" else holm(raw, alpha=alpha).p_adjusted
    holm_q = always if adjustment == "holm" else holm(seq, alpha=alpha).p_adjusted
    return [_row(c, control, alpha, (p, q), (h, hq), adjustment)
            for c, p, q, h, hq in zip(comparisons, fixed, always, holm_p, holm_q, strict=True)]


def _row(c: ArmComparison, control: str, alpha: float,
         adjusted: tuple[float | None, float | None], holm_: tuple[float | None, float | None],
         adjustment: str) -> dict[str, Any]:
    r, seq = c.result, c.sequential
    (p_adj, q_adj), (p_holm, q_holm) = adjusted, holm_
    low, high = _bounds(r.ci)
    lift_low, lift_high = _bounds(r.lift_ci)
    seq_low, seq_high = _bounds(seq.ci)
    return {
        "arm": c.arm, "metric": c.metric, "control": control,
        "diff": r.diff, "lift": r.lift, "ci_low": low, "ci_high": high,
        "p_value": r.p_value, "p_value_sequential": seq.p_value,
        "significant": p_adj is not None and p_adj < alpha, "method": r.method,
        "lift_ci_low": lift_low, "lift_ci_high": lift_high, "se": c.se,
        "p_value_adjusted": p_adj, "adjustment": adjustment,
        "p_value_holm": p_holm, "significant_unadjusted": r.significant,
        "ci_sequential_low": seq_low, "ci_sequential_high": seq_high,
        "p_value_sequential_adjusted": q_adj, "p_value_sequential_holm": q_holm,
        "significant_sequential": q_adj is not None and q_adj < alpha,
        "reason": r.reason and str(r.reason), "lift_reason": r.lift_reason and str(r.lift_reason),
        "power": None if c.power is None else {
            "lift": c.power.lift, "power": c.power.power, "mde": c.power.mde,
            "n_per_arm": c.power.n_per_arm, "units_per_arm": c.power.n_per_arm,
            "target": TARGET_POWER},
        "units_needed": c.units_needed,
        "bayes": None if c.bayes is None else {
            "chance_to_win": c.bayes.chance_to_win, "expected_loss": c.bayes.expected_loss,
            "expected_loss_control": c.bayes.expected_loss_control},
        "cuped": None,
    }
