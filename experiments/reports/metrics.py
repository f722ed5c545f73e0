"""Metrics of a report assembled from the unit-level aggregates: totals and per-look increments.

A *look* is one time bucket of activation (minutes for a young experiment, up to a day
for an old one, see :func:`bucket_width`). Per arm and look the SQL gives the increments
of the unit-level sufficient statistics (:mod:`experiments.reports.units`); their running
totals are the statistics of the units seen so far, for the sequential tests and the
cumulative chart. Every metric is a ratio per decision of per-unit sums
(:class:`~experiments.abstats.RatioStats`): the reward, each event type's value, and, on
request, the reward per unit. Per look the metric keeps the cumulative statistics.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import accumulate

from experiments.abstats import RatioStats
from experiments.reports.sql import EMPTY, HOUR
from experiments.reports.units import Cell, Increment

REWARD = "reward"
EVENT_PREFIX = "event:"
PER_UNIT_SUFFIX = ":per_unit"
# Bucket widths for the looks, finest first: the finest that keeps the curve under
# MAX_LOOKS points, so a young experiment gets minutes and an old one days.
WIDTHS = ((300.0, "5 minutes"), (900.0, "15 minutes"), (HOUR, "hour"), (6 * HOUR, "6 hours"),
          (24 * HOUR, "day"))
MAX_LOOKS = 96


@dataclass(frozen=True, slots=True)
class Looks:
    """The report's time buckets.

    Attributes:
        unit: Bucket width in words (``"5 minutes"``, ``"hour"``, ``"day"``...).
        buckets: Bucket numbers since the epoch, ascending (``start = bucket * seconds``).
        seconds: Bucket width in seconds.
    """

    unit: str
    buckets: tuple[int, ...]
    seconds: float

    def end(self, bucket: int) -> float:
        """Epoch seconds at which a bucket ends."""
        return (bucket + 1) * self.seconds


def bucket_width(first: float | None, last: float | None) -> tuple[float, str]:
    """The finest bucket width giving at most :data:`MAX_LOOKS` looks over the span.

    Examples:
        >>> bucket_width(0.0, 3 * 3600.0)
        (300.0, '5 minutes')
        >>> bucket_width(0.0, 40 * 86400.0)
        (86400.0, 'day')
    """
    length = 0.0 if first is None or last is None else last - first
    for seconds, unit in WIDTHS:
        if length / seconds < MAX_LOOKS:
            return seconds, unit
    return WIDTHS[-1]


def choose_looks(buckets: Iterable[int], seconds: float, unit: str) -> Looks:
    """The looks: the buckets that hold decisions, ascending."""
    return Looks(unit, tuple(sorted(set(buckets))), seconds)


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric of every arm, as unit-level ratio statistics.

    Attributes:
        name: ``"reward"``, ``"event:<type>"`` or ``"<metric>:per_unit"``.
        binary: Every decision's value is 0 or 1.
        totals: Statistics per arm over the whole report.
        looks: Per arm, the cumulative statistics at the end of each look (aligned with
            :attr:`Looks.buckets`): the units seen so far with all their decisions.
        bounded: Some value was beyond ``±VALUE_BOUND`` and counted at the bound.
    """

    name: str
    binary: bool
    totals: dict[str, RatioStats]
    looks: dict[str, list[RatioStats]]
    bounded: bool = False

    @property
    def one_per_unit(self) -> bool:
        """Every unit of every arm has exactly one decision (decision-level tests apply)."""
        return all(s.one_per_unit for s in self.totals.values())

    def per_unit(self) -> Metric:
        """The same metric as a mean per unit (each unit's sum, averaged over units).

        Examples:
            >>> m = Metric("reward", True, {"a": RatioStats.from_units([2], [1.0])}, {"a": []})
            >>> m.per_unit().totals["a"].mean
            1.0
        """
        totals = {arm: s.per_unit() for arm, s in self.totals.items()}
        looks = {arm: [s.per_unit() for s in cum] for arm, cum in self.looks.items()}
        return Metric(self.name + PER_UNIT_SUFFIX, False, totals, looks, self.bounded)


def build_metrics(cells: Mapping[tuple[str, int], Cell], columns: Mapping[str, str],
                  arms: list[str], looks: Looks) -> list[Metric]:
    """One :class:`Metric` per ``columns`` entry (metric name -> cell column)."""
    index = {b: i for i, b in enumerate(looks.buckets)}
    out = []
    for name, col in columns.items():
        per_look = {arm: [Increment()] * len(looks.buckets) for arm in arms}
        moments = EMPTY
        for (arm, bucket), cell in cells.items():
            i = index[bucket]
            per_look[arm][i] = per_look[arm][i] + cell.metrics[col]
            moments = moments + cell.decision_moments[col]
        cumulative = {arm: [s.stats() for s in accumulate(steps, operator.add)]
                      for arm, steps in per_look.items()}
        totals = {arm: c[-1] if c else RatioStats.empty() for arm, c in cumulative.items()}
        out.append(Metric(name, moments.binary, totals, cumulative, moments.bounded))
    return out
