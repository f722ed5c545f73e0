"""Comparisons broken down by one context field (a segment)."""

from __future__ import annotations

from collections.abc import Mapping

from .aggregates import MeanStats
from .compare import compare_means, compare_proportions
from .results import Comparison
from .sequential import DEFAULT_EFFECT_SIZE


def compare(
    control: MeanStats,
    treatment: MeanStats,
    *,
    binary: bool = False,
    alpha: float = 0.05,
    effect_size: float = DEFAULT_EFFECT_SIZE,
) -> Comparison:
    """:func:`compare_proportions` for binary metrics, :func:`compare_means` otherwise."""
    if binary:
        return compare_proportions(control, treatment, alpha=alpha, effect_size=effect_size)
    return compare_means(control, treatment, alpha=alpha, effect_size=effect_size)


def compare_segments(
    control: Mapping[str, MeanStats],
    treatment: Mapping[str, MeanStats],
    *,
    binary: bool = False,
    alpha: float = 0.05,
    effect_size: float = DEFAULT_EFFECT_SIZE,
) -> dict[str, Comparison]:
    """One comparison per segment value, from per-segment statistics of each arm.

    A segment seen in only one arm is compared against an empty arm (reason
    ``empty``). Segments come out in order of first appearance, control first. With many
    segments, correct the p-values with :func:`holm`.

    Args:
        control: Control statistics by segment value (``GROUP BY arm, segment``).
        treatment: Treatment statistics by segment value.
        binary: Whether the metric is 0/1.
        alpha: Significance level.
        effect_size: Standardised mixing parameter of the sequential test.

    Returns:
        Comparisons keyed by segment value.

    Examples:
        >>> c = {"mobile": MeanStats(500, 50.0, 50.0), "desktop": MeanStats(500, 60.0, 60.0)}
        >>> t = {"mobile": MeanStats(500, 80.0, 80.0)}
        >>> out = compare_segments(c, t, binary=True)
        >>> out["mobile"].significant, out["desktop"].reason
        (True, <Reason.EMPTY: 'empty'>)
    """
    keys = dict.fromkeys([*control, *treatment])
    empty = MeanStats.empty()
    return {
        key: compare(
            control.get(key, empty),
            treatment.get(key, empty),
            binary=binary,
            alpha=alpha,
            effect_size=effect_size,
        )
        for key in keys
    }
