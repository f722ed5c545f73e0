"""Sufficient statistics of a metric: count, sum and sum of squares (the aggregation half).

A report reads these straight from SQL (``COUNT(x), SUM(x), SUM(x * x)`` with ``GROUP BY``
arm, metric, segment or day) and never needs raw rows: statistics of disjoint groups add.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike

# Variances below this fraction of the mean square are rounding noise of
# ``total_sq - total**2 / n`` and count as zero.
_ZERO_VARIANCE_RTOL = 1e-12

SqlNumber = int | float | Decimal | None


class Sample(Protocol):
    """What the analysis functions read from a sample's statistics.

    :class:`MeanStats` (independent observations) and
    :class:`~experiments.abstats.ratio.RatioStats` (a ratio of per-unit sums, delta
    method) both provide it: ``n`` observations (units), the ``mean``, a per-observation
    ``variance`` and the variance of the mean.
    """

    @property
    def n(self) -> int: ...
    @property
    def mean(self) -> float: ...
    @property
    def variance(self) -> float: ...
    @property
    def std(self) -> float: ...
    @property
    def mean_variance(self) -> float: ...
    def __add__(self, other: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class MeanStats:
    """Count, sum and sum of squares of a metric; instances add together.

    Binary (0/1) metrics use the same statistics, with ``total_sq == total``.

    Attributes:
        n: Number of observations.
        total: Sum of the values.
        total_sq: Sum of the squared values.

    Examples:
        >>> a = MeanStats.from_values([1.0, 2.0, 3.0])
        >>> b = MeanStats(n=2, total=9.0, total_sq=41.0)
        >>> a + b
        MeanStats(n=5, total=15.0, total_sq=55.0)
        >>> (a + b).mean, a.variance
        (3.0, 1.0)
        >>> sum([a, b]) == a + b
        True
    """

    n: int
    total: float
    total_sq: float

    def __post_init__(self) -> None:
        if self.n < 0 or int(self.n) != self.n:
            raise ValueError(f"n must be a non-negative integer, got {self.n!r}")
        if not (math.isfinite(self.total) and math.isfinite(self.total_sq)):
            raise ValueError("total and total_sq must be finite")
        if self.total_sq < 0 or (self.n == 0 and (self.total or self.total_sq)):
            raise ValueError("inconsistent sums for the count")

    @classmethod
    def empty(cls) -> MeanStats:
        """Statistics of no observations (the additive identity)."""
        return cls(0, 0.0, 0.0)

    @classmethod
    def from_values(cls, values: ArrayLike) -> MeanStats:
        """Statistics of a one-dimensional array of observations."""
        x = np.asarray(values, dtype=float).ravel()
        return cls(int(x.size), float(np.sum(x)), float(np.sum(x * x)))

    @classmethod
    def from_aggregates(cls, count: SqlNumber, total: SqlNumber, total_sq: SqlNumber) -> MeanStats:
        """Statistics from SQL aggregates; ``NULL`` sums (no rows) and ``Decimal`` are accepted.

        Examples:
            >>> MeanStats.from_aggregates(0, None, None) == MeanStats.empty()
            True
        """
        return cls(int(count or 0), float(total or 0.0), float(total_sq or 0.0))

    def __add__(self, other: MeanStats) -> MeanStats:
        if not isinstance(other, MeanStats):
            return NotImplemented
        return MeanStats(self.n + other.n, self.total + other.total, self.total_sq + other.total_sq)

    def __radd__(self, other: object) -> MeanStats:
        # Lets built-in ``sum()`` start from 0.
        if other == 0:
            return self
        return NotImplemented

    @property
    def mean(self) -> float:
        """Sample mean (NaN when ``n == 0``; result records turn that into ``None``)."""
        return self.total / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """Unbiased sample variance, ``ddof=1`` (NaN when ``n < 2``).

        Computed as ``(total_sq - total**2 / n) / (n - 1)``; a result below ``1e-12`` of
        the mean square (coefficient of variation under 1e-6) is rounding noise and
        returns exactly 0.
        """
        if self.n < 2:
            return math.nan
        centred = self.total_sq - self.total * self.total / self.n
        if centred <= _ZERO_VARIANCE_RTOL * self.total_sq:
            return 0.0
        return centred / (self.n - 1)

    @property
    def std(self) -> float:
        """Sample standard deviation, ``ddof=1``."""
        return math.sqrt(self.variance)

    @property
    def mean_variance(self) -> float:
        """Estimated variance of the sample mean, ``variance / n``."""
        return self.variance / self.n if self.n else math.nan

    @property
    def successes(self) -> float:
        """Number of ones of a binary metric (its ``total``)."""
        return self.total

    @property
    def is_binary(self) -> bool:
        """Whether these can be statistics of 0/1 values (``total_sq == total``, relative
        to their size: tiny values such as 1e-10 have sums closer than any absolute
        tolerance without being 0/1).

        Examples:
            >>> MeanStats(4, 1.0, 1.0).is_binary, MeanStats(2, 2e-10, 2e-20).is_binary
            (True, False)
        """
        return 0 <= self.total <= self.n and math.isclose(self.total_sq, self.total,
                                                          rel_tol=1e-9)

    def require_binary(self) -> None:
        """Raise ``ValueError`` unless these can be statistics of 0/1 values.

        Examples:
            >>> MeanStats(4, 1.0, 1.0).require_binary()
        """
        if not self.is_binary:
            raise ValueError(f"not statistics of a binary metric: {self!r}")


def is_zero_one(stats: MeanStats, low: float | None, high: float | None) -> bool:
    """Whether a metric with these statistics and range holds only 0s and 1s: every value
    in ``[0, 1]`` and ``sum(x) == sum(x**2)`` (so each ``x (1 - x)`` is 0).

    The one test of a 0/1 metric: the report and the analysis must agree on it.

    Examples:
        >>> is_zero_one(MeanStats(3, 2.0, 2.0), 0.0, 1.0)
        True
        >>> is_zero_one(MeanStats(6, 3e-10, 3e-20), 0.0, 1e-10)
        False
    """
    return (stats.n > 0 and low is not None and high is not None and low >= 0
            and high <= 1 and stats.is_binary)
