"""Disparity statistics of the fairness report: pure functions over sufficient statistics.

- Reward: each attribute value against the rest of the arm, a difference of two ratios of
  per-unit sums with delta-method variances (Welch's t over units, as the A/B report:
  :func:`~experiments.abstats.ratio_difference`), Holm-adjusted across the values.
- Exposure: Pearson's chi-square test of independence of value x chosen action. Decisions
  of one unit are not independent, so the statistic is also divided by a bound of the
  design effect, ``deff = sum(x**2) / sum(x)`` (``x``: decisions per unit), the first-order
  Rao-Scott correction when every unit always gets the same action (intra-unit
  correlation 1). The corrected p-value is conservative; it equals the plain one when
  each unit has one decision.
- Counterfactual audit: the total-variation distance ``0.5 * sum |p - q|`` between two
  pmfs, averaged over contexts as a ratio of per-unit sums (contexts clustered by unit)
  with the delta-method t interval of :class:`~experiments.abstats.RatioStats`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from experiments.abstats import Interval, RatioStats, Reason, ratio_difference
from experiments.abstats.multitest import adjust

# Pearson's approximation is poor when an expected cell count is below this (Cochran).
MIN_EXPECTED = 5.0


@dataclass(frozen=True, slots=True)
class Contrast:
    """One attribute value's reward against the rest of its arm.

    Attributes:
        value: The attribute value (label).
        diff: Mean reward of the value minus that of the rest (``None``: a side is empty).
        ci: ``diff``'s t interval (delta method, Welch-Satterthwaite df over units).
        p_value: Two-sided p-value.
        p_value_adjusted: Holm-adjusted across the arm's values.
        reason: Why the inference fields are ``None``.
    """

    value: str
    diff: float | None
    ci: Interval | None
    p_value: float | None
    p_value_adjusted: float | None
    reason: str | None


def reward_contrasts(cells: Mapping[str, RatioStats], alpha: float) -> list[Contrast]:
    """Each value against the others pooled (units are disjoint: a unit has one value),
    Holm-adjusted across the values (with two values there is one test: not adjusted).

    Examples:
        >>> a = RatioStats.from_units([1, 1, 1], [1.0, 1.0, 0.0])
        >>> b = RatioStats.from_units([1, 1, 1], [0.0, 0.0, 1.0])
        >>> [round(c.diff, 4) for c in reward_contrasts({"f": a, "m": b}, 0.05)]
        [0.3333, -0.3333]
    """
    diffs = []
    for value, own in cells.items():
        rest = sum((s for v, s in cells.items() if v != value), RatioStats.empty())
        diffs.append((value, ratio_difference(rest, own, alpha=alpha)))
    raw = [d.p_value for _, d in diffs]
    # Two values: "a vs rest" and "b vs rest" are one hypothesis (the same |t|), a family
    # of one, which Holm would double.
    adjusted = tuple(raw) if len(diffs) == 2 else adjust(raw, "holm")
    return [Contrast(v, d.diff, d.ci, d.p_value, q, d.reason and str(d.reason))
            for (v, d), q in zip(diffs, adjusted, strict=True)]


@dataclass(frozen=True, slots=True)
class Independence:
    """Chi-square test of independence of attribute value x chosen action.

    Attributes:
        chi2: Pearson's statistic (``None`` when the table has one row or one column).
        df: Degrees of freedom ``(rows - 1) (columns - 1)``.
        p_value: Its p-value, decisions taken as independent.
        design_effect: ``sum(x**2) / sum(x)`` over the arm's units (1: one decision each).
        p_value_adjusted: The p-value of ``chi2 / design_effect``.
        sparse: Some expected count is below ``MIN_EXPECTED``.
        reason: ``single_value`` or ``single_action`` when there is nothing to test.
    """

    chi2: float | None
    df: int | None
    p_value: float | None
    design_effect: float | None
    p_value_adjusted: float | None
    sparse: bool
    reason: str | None


def design_effect(units: RatioStats) -> float | None:
    """``sum(x**2) / sum(x)``: the design effect of clusters of sizes ``x`` at intra-cluster
    correlation 1 (its largest value), ``None`` without decisions.

    Examples:
        >>> design_effect(RatioStats.from_units([1, 3], [0.0, 0.0]))
        2.5
    """
    return units.sum_x2 / units.sum_x if units.sum_x else None


def exposure_test(counts: Mapping[tuple[str, str], int], deff: float | None
                  ) -> Independence:
    """Pearson's chi-square on decisions per (value, action), and the same statistic
    divided by the design effect ``deff``.

    Equal to ``scipy.stats.chi2_contingency(table, correction=False)`` for ``deff = 1``.
    """
    rows = sorted({v for (v, _), n in counts.items() if n > 0})
    cols = sorted({a for (_, a), n in counts.items() if n > 0})
    if len(rows) < 2 or len(cols) < 2:
        reason = "single_value" if len(rows) < 2 else "single_action"
        return Independence(None, None, None, deff, None, False, reason)
    table = np.array([[counts.get((v, a), 0) for a in cols] for v in rows], dtype=float)
    result = stats.chi2_contingency(table, correction=False)
    chi2, df = float(result.statistic), int(result.dof)
    factor = max(deff or 1.0, 1.0)
    return Independence(chi2, df, float(result.pvalue), factor,
                        float(stats.chi2.sf(chi2 / factor, df)),
                        bool((result.expected_freq < MIN_EXPECTED).any()), None)


def total_variation(p: Sequence[float], q: Sequence[float]) -> float:
    """``0.5 * sum |p_i - q_i|`` of two pmfs over the same actions.

    Examples:
        >>> total_variation([0.5, 0.5], [0.9, 0.1])
        0.4
    """
    if len(p) != len(q):
        raise ValueError("the pmfs must have the same length")
    return round(0.5 * float(np.abs(np.subtract(p, q)).sum()), 12)


@dataclass(frozen=True, slots=True)
class MeanDistance:
    """Mean total-variation distance over contexts, clustered by unit.

    Attributes:
        contexts: Number of (context, swapped value) distances.
        units: Number of distinct units among them.
        mean: The mean distance (``None`` without contexts).
        ci: t interval over units (delta method of the ratio of per-unit sums).
        reason: ``empty`` or ``single_observation`` (one unit: no interval).
    """

    contexts: int
    units: int
    mean: float | None
    ci: Interval | None
    reason: str | None


def mean_distance(per_unit: Mapping[str, Sequence[float]], alpha: float) -> MeanDistance:
    """Mean of the distances with a t interval over units (``RatioStats``: ``x`` the
    unit's number of distances, ``y`` their sum).

    Examples:
        >>> m = mean_distance({"u1": [0.1, 0.3], "u2": [0.2], "u3": [0.0]}, 0.05)
        >>> m.contexts, m.units, round(m.mean, 6)
        (4, 3, 0.15)
    """
    x = [len(d) for d in per_unit.values() if d]
    y = [float(sum(d)) for d in per_unit.values() if d]
    s = RatioStats.from_units(x, y)
    if not s.n:
        return MeanDistance(0, 0, None, None, str(Reason.EMPTY))
    ci = s.interval(alpha)
    reason = None if ci is not None else str(Reason.SINGLE_OBSERVATION)
    return MeanDistance(int(s.sum_x), s.n, s.mean, ci, reason)
