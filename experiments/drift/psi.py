"""Population stability index (PSI) of one context feature between two windows.

PSI compares the share of decisions in each bin of a feature between a reference window
(shares ``e``) and a recent one (shares ``a``)::

    PSI = sum_b (a_b - e_b) * ln(a_b / e_b)

the symmetrised Kullback-Leibler divergence of the two binned distributions. A bin empty
in one window would make the log infinite, so every share is floored at ``SHARE_FLOOR``
(1e-4) before the sum. The usual reading: below 0.1 no shift, 0.1-0.25 a moderate shift,
above 0.25 a significant shift (the default alert threshold).

Bins: a numeric feature by the reference window's deciles (at most ten bins, fewer when
deciles coincide); a categorical one (strings and booleans) by value, the
``MAX_CATEGORIES`` most frequent values of both windows each a bin of its own and the
rarer ones pooled in ``(other)``. A decision without the feature counts in ``(missing)``
in both kinds, so a feature that stops (or starts) being sent shows as a shift.

Examples:
    >>> round(psi([0.5, 0.5], [0.5, 0.5]), 12)
    0.0
    >>> round(psi([0.5, 0.5], [0.25, 0.75]), 4)
    0.2747
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SHARE_FLOOR = 1e-4
MAX_CATEGORIES = 20
DECILES = tuple(i / 10 for i in range(1, 10))
MISSING = "(missing)"
OTHER = "(other)"

Value = str | float | None


@dataclass(frozen=True, slots=True)
class Bin:
    """One bin's label and its share of each window's sampled decisions."""

    label: str
    reference: float
    recent: float


def psi(reference: Sequence[float], recent: Sequence[float]) -> float:
    """PSI of two share vectors over the same bins, shares floored at ``SHARE_FLOOR``.

    Args:
        reference: Shares ``e_b`` of the reference window (summing to 1).
        recent: Shares ``a_b`` of the recent window, same bins.

    Returns:
        ``sum (a - e) ln(a / e)``, never negative.
    """
    total = 0.0
    for e, a in zip(reference, recent, strict=True):
        e, a = max(e, SHARE_FLOOR), max(a, SHARE_FLOOR)
        total += (a - e) * math.log(a / e)
    return max(total, 0.0)


def numeric_bins(reference: Sequence[Value], recent: Sequence[Value]) -> list[Bin]:
    """Bins at the reference window's deciles (``(lo, hi]``), plus ``(missing)``.

    Non-numbers in a numeric feature do not occur (the caller chose the kind from the
    values); ``None`` is a missing value.
    """
    ref = np.array([v for v in reference if v is not None], dtype=float)
    edges = np.unique(np.quantile(ref, DECILES)) if ref.size else np.array([], float)
    labels = _interval_labels(edges)

    def shares(values: Sequence[Value]) -> list[float]:
        nums = np.array([v for v in values if v is not None], dtype=float)
        counts = np.bincount(np.searchsorted(edges, nums, side="left"),
                             minlength=len(edges) + 1).tolist()
        counts.append(len(values) - nums.size)
        return _normalised(counts, len(values))

    return _bins(labels + [MISSING], shares(reference), shares(recent))


def categorical_bins(reference: Sequence[Value], recent: Sequence[Value]) -> list[Bin]:
    """Bins by value: the ``MAX_CATEGORIES`` most frequent values of both windows (ties by
    value), the rarer ones pooled in ``(other)``, and ``(missing)``."""
    both = Counter(str(v) for v in (*reference, *recent) if v is not None)
    top = [v for v, _ in sorted(both.items(), key=lambda kv: (-kv[1], kv[0]))][
        :MAX_CATEGORIES]
    labels = top + ([OTHER] if len(both) > len(top) else []) + [MISSING]
    index = {label: i for i, label in enumerate(labels)}

    def shares(values: Sequence[Value]) -> list[float]:
        counts = [0] * len(labels)
        for v in values:
            label = MISSING if v is None else str(v)
            counts[index.get(label, index.get(OTHER, 0))] += 1
        return _normalised(counts, len(values))

    return _bins(labels, shares(reference), shares(recent))


def _interval_labels(edges: np.ndarray) -> list[str]:
    bounds = ["-inf", *(f"{e:.6g}" for e in edges), "inf"]
    return [f"({lo}, {hi}]" if hi != "inf" else f"({lo}, inf)"
            for lo, hi in zip(bounds, bounds[1:], strict=False)]


def _normalised(counts: list[int], total: int) -> list[float]:
    return [c / total if total else 0.0 for c in counts]


def _bins(labels: list[str], reference: list[float], recent: list[float]) -> list[Bin]:
    # A bin empty in both windows says nothing (the missing bin of an always-sent feature).
    return [Bin(label, e, a) for label, e, a in zip(labels, reference, recent, strict=True)
            if e or a]
