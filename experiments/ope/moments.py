"""Mergeable first and second moments of k per-row columns (Chan et al. pairwise update).

:class:`Moments` keeps the count, the column means and the co-moment matrix
(sum of outer products of deviations from the mean). Two summaries of disjoint rows merge
exactly in the way Chan, Golub & LeVeque (1979) combine partial variances, so a log can be
summarised in chunks or shards and still give the one-shot sample covariance. Estimators
are smooth functions of the column means; :meth:`Moments.delta_variance` gives the
delta-method variance of such a function from its gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Moments:
    """Count, means and co-moments of k columns.

    Attributes:
        n: Number of rows summarised.
        mean: ``(k,)`` column means (zeros when ``n == 0``).
        comoment: ``(k, k)`` sum over rows of ``outer(x - mean, x - mean)``.
    """

    n: int
    mean: np.ndarray
    comoment: np.ndarray

    @classmethod
    def empty(cls, k: int) -> Moments:
        """The summary of no rows."""
        return cls(0, np.zeros(k), np.zeros((k, k)))

    @classmethod
    def of(cls, columns: np.ndarray) -> Moments:
        """Summarise a block of rows.

        Args:
            columns: ``(m, k)`` per-row values.
        """
        m, k = columns.shape
        if m == 0:
            return cls.empty(k)
        mean = columns.mean(axis=0)
        dev = columns - mean
        return cls(m, mean, dev.T @ dev)

    @property
    def k(self) -> int:
        """Number of columns."""
        return int(self.mean.shape[0])

    def merge(self, other: Moments) -> Moments:
        """Summary of the union of two disjoint sets of rows (Chan et al. update)."""
        if other.k != self.k:
            raise ValueError(f"cannot merge moments of {self.k} and {other.k} columns")
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        extra = np.outer(delta, delta) * (self.n * other.n / n)
        return Moments(n, mean, self.comoment + other.comoment + extra)

    __add__ = merge

    def covariance(self, ddof: int = 1) -> np.ndarray:
        """``(k, k)`` sample covariance with ``n - ddof`` in the denominator (NaN if n <= ddof)."""
        if self.n <= ddof:
            return np.full((self.k, self.k), np.nan)
        return self.comoment / (self.n - ddof)

    def delta_variance(self, gradient: np.ndarray) -> float:
        """Delta-method variance of ``f(mean)`` given ``grad f`` at the mean.

        Equals the sample variance (ddof=1) of the linearised per-row terms
        ``gradient @ x_i`` divided by n, i.e. ``g' S g / n``.

        Args:
            gradient: ``(k,)`` gradient of the statistic with respect to the column means.
        """
        if self.n < 2:
            return float("nan")
        var = float(gradient @ self.covariance() @ gradient)
        return max(var, 0.0) / self.n
