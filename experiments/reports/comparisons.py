"""Each arm versus the control, per metric: fixed-horizon and always-valid inference, Holm
correction across the family, and power for a relative lift."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from experiments.abstats import (
    Comparison,
    Interval,
    MeanStats,
    SequentialResult,
    compare,
    holm,
    minimum_detectable_lift,
    power_at_lift,
    sample_size_per_arm,
    sequential_path,
)
from experiments.abstats.power import Distribution
from experiments.reports.metrics import Metric

TARGET_POWER = 0.8
# The mSPRT guarantee is asymptotic: looks start once both arms hold this many decisions
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
        n_per_arm: Decisions per arm needed to detect ``lift`` with that power.
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
    """

    arm: str
    metric: str
    result: Comparison
    sequential: SequentialResult
    power: Power | None = None


def power_for(control: MeanStats, n_treatment: int, lift: float, alpha: float,
              binary: bool) -> Power:
    """Power, MDE and required n per arm for a relative ``lift`` of the control's mean."""
    dist: Distribution = "normal" if binary else "t"
    return Power(
        lift,
        power_at_lift(control, lift, n_treatment, alpha=alpha, distribution=dist),
        minimum_detectable_lift(control, n_treatment, alpha=alpha, power=TARGET_POWER,
                                distribution=dist),
        sample_size_per_arm(control, lift, alpha=alpha, power=TARGET_POWER, distribution=dist))


def compare_metric(metric: Metric, control: str, alpha: float,
                   lift: float) -> list[ArmComparison]:
    """Every non-control arm of ``metric`` against ``control``."""
    found = []
    base = metric.totals[control]
    for arm, stats in metric.totals.items():
        if arm == control:
            continue
        result = compare(base, stats, binary=metric.binary, alpha=alpha)
        path = sequential_path(*burn_in(metric.looks[control], metric.looks[arm]),
                               alpha=alpha)
        last = path[-1] if path else SequentialResult(None, None, result.reason)
        found.append(ArmComparison(arm, metric.name, result, last,
                                   power_for(base, stats.n, lift, alpha, metric.binary)))
    return found


def burn_in(control: list[MeanStats], treatment: list[MeanStats],
            min_n: int = BURN_IN) -> tuple[list[MeanStats], list[MeanStats]]:
    """Merge the looks before both arms reach ``min_n`` into one first look.

    Examples:
        >>> day = MeanStats(60, 6.0, 6.0)
        >>> c, t = burn_in([day, day, day], [day, day, day])
        >>> [s.n for s in c]
        [120, 60]
    """
    if not control:
        return [], []
    cut = len(control)
    seen_c = seen_t = 0
    for i, (c, t) in enumerate(zip(control, treatment, strict=True)):
        seen_c, seen_t = seen_c + c.n, seen_t + t.n
        if min(seen_c, seen_t) >= min_n:
            cut = i + 1
            break
    return ([sum(control[:cut], MeanStats.empty()), *control[cut:]],
            [sum(treatment[:cut], MeanStats.empty()), *treatment[cut:]])


def _bounds(interval: Interval | None) -> tuple[float | None, float | None]:
    return (None, None) if interval is None else (interval.lower, interval.upper)


def serialize(comparisons: list[ArmComparison], control: str,
              alpha: float) -> list[dict[str, Any]]:
    """JSON rows with Holm-adjusted p-values over the whole family.

    ``significant`` uses the Holm-adjusted p-value (equal to the raw one for a family of
    one); ``significant_sequential`` uses the Holm-adjusted always-valid p-value.
    """
    fixed = holm([c.result.p_value for c in comparisons], alpha=alpha).p_adjusted
    always = holm([c.sequential.p_value for c in comparisons], alpha=alpha).p_adjusted
    return [_row(c, control, alpha, p, q) for c, p, q in zip(comparisons, fixed, always,
                                                             strict=True)]


def _row(c: ArmComparison, control: str, alpha: float, p_holm: float | None,
         q_holm: float | None) -> dict[str, Any]:
    r, seq = c.result, c.sequential
    low, high = _bounds(r.ci)
    lift_low, lift_high = _bounds(r.lift_ci)
    seq_low, seq_high = _bounds(seq.ci)
    return {
        "arm": c.arm, "metric": c.metric, "control": control,
        "diff": r.diff, "lift": r.lift, "ci_low": low, "ci_high": high,
        "p_value": r.p_value, "p_value_sequential": seq.p_value,
        "significant": p_holm is not None and p_holm < alpha, "method": r.method,
        "lift_ci_low": lift_low, "lift_ci_high": lift_high,
        "p_value_holm": p_holm, "significant_unadjusted": r.significant,
        "ci_sequential_low": seq_low, "ci_sequential_high": seq_high,
        "p_value_sequential_holm": q_holm,
        "significant_sequential": q_holm is not None and q_holm < alpha,
        "reason": r.reason and str(r.reason), "lift_reason": r.lift_reason and str(r.lift_reason),
        "power": None if c.power is None else {
            "lift": c.power.lift, "power": c.power.power, "mde": c.power.mde,
            "n_per_arm": c.power.n_per_arm, "target": TARGET_POWER},
    }
