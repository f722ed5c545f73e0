"""Streaming percentile bootstrap with Poisson(1) resampling weights.

Each of B replicates gives every row an independent Poisson(1) count instead of a
multinomial draw (the "Poisson bootstrap", Hanley & MacGibbon 2006; Chamandy et al. 2012),
so a replicate's weighted column sums can be accumulated chunk by chunk and merged across
shards. Poisson(1) counts are drawn by inverse CDF from 32-bit uniform integers (exact to
2**-32: a 65,536-entry table on the top 16 bits, a search only for the few table cells
that straddle a CDF step), several times faster than ``Generator.poisson``. Rows are
processed in blocks whose ``rows x B`` weight matrix stays under a fixed size, so memory
is bounded for any log size; the work is vectorised over replicates.
Use independent generators per shard (``rng.spawn``) when merging shards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from experiments.ope.results import Interval

BLOCK_ELEMENTS = 1 << 21  # Poisson draws held in memory at once


def _poisson1_tables() -> tuple[np.ndarray, np.ndarray]:
    """Thresholds T_k = floor(2**32 P(X <= k)) of Poisson(1), and the top-16-bit table."""
    k = np.arange(32)
    log_pmf = -1.0 - np.cumsum(np.log(np.maximum(k, 1)))
    cdf = np.minimum(np.cumsum(np.exp(log_pmf)), 1.0)
    thresholds = np.unique(np.floor(cdf * 2.0**32).astype(np.uint64))
    cell = np.arange(1 << 16, dtype=np.uint64) << np.uint64(16)
    low = np.searchsorted(thresholds, cell, side="right")
    high = np.searchsorted(thresholds, cell + np.uint64(0xFFFF), side="right")
    table = np.where(low == high, low, AMBIGUOUS).astype(np.uint8)
    return thresholds, table


AMBIGUOUS = 255
_THRESHOLDS, _TABLE = _poisson1_tables()


def poisson1(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Poisson(1) counts of the given shape (uint8), by inverse CDF on 32-bit uniforms."""
    u = rng.integers(0, 1 << 32, size=shape, dtype=np.uint32)
    counts = np.take(_TABLE, u >> 16)
    fix = counts == AMBIGUOUS
    counts[fix] = np.searchsorted(_THRESHOLDS, u[fix].astype(np.uint64), side="right")
    return counts


Statistic = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class PoissonBootstrap:
    """Per-replicate Poisson-weighted sums of k columns.

    Attributes:
        sums: ``(B, k)``; ``sums[b, j] = sum_i c_bi * x_ij`` with ``c_bi ~ Poisson(1)``.
    """

    sums: np.ndarray

    @classmethod
    def empty(cls, n_resamples: int, k: int) -> PoissonBootstrap:
        """No rows yet, ``n_resamples`` replicates of ``k`` columns."""
        if n_resamples < 1:
            raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
        return cls(np.zeros((n_resamples, k)))

    @property
    def n_resamples(self) -> int:
        """B, the number of replicates."""
        return int(self.sums.shape[0])

    def add(self, columns: np.ndarray, rng: np.random.Generator) -> PoissonBootstrap:
        """Add rows to every replicate.

        Draws are taken row-major in blocks, so for a given generator state the result does
        not depend on how the rows were split into ``add`` calls.

        Args:
            columns: ``(m, k)`` per-row values.
            rng: Source of the Poisson weights.
        """
        sums = self.sums.copy()
        step = max(1, BLOCK_ELEMENTS // self.n_resamples)
        for start in range(0, columns.shape[0], step):
            block = columns[start : start + step]
            counts = poisson1(rng, (block.shape[0], self.n_resamples))
            sums += (block.T @ counts.astype(np.float64)).T
        return PoissonBootstrap(sums)

    def merge(self, other: PoissonBootstrap) -> PoissonBootstrap:
        """Replicates over the union of two disjoint sets of rows."""
        if other.sums.shape != self.sums.shape:
            raise ValueError(
                f"cannot merge bootstraps of shapes {self.sums.shape}, {other.sums.shape}"
            )
        return PoissonBootstrap(self.sums + other.sums)

    __add__ = merge

    def percentile(self, statistic: Statistic, level: float) -> Interval:
        """Percentile interval of ``statistic`` over the replicates.

        Args:
            statistic: Maps ``(B, k)`` replicate sums to ``(B,)`` replicate values; NaN or
                infinite replicates (e.g. a zero denominator) are dropped.
            level: Coverage, e.g. 0.95.

        Returns:
            The interval, undefined if fewer than half of the replicates are finite.
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            values = statistic(self.sums)
        values = values[np.isfinite(values)]
        if values.size < max(2, self.n_resamples // 2):
            return Interval.undefined(level)
        alpha = 1.0 - level
        lower, upper = np.quantile(values, [alpha / 2, 1 - alpha / 2])
        return Interval(float(lower), float(upper), level)


def accumulate(
    boot: PoissonBootstrap | None,
    n_resamples: int,
    columns: np.ndarray,
    rng: np.random.Generator | None,
) -> PoissonBootstrap | None:
    """Add rows to an optional bootstrap (None while no rows were seen, or when disabled).

    Args:
        boot: Current replicates, or None.
        n_resamples: B; 0 disables the bootstrap and returns None.
        columns: ``(m, k)`` per-row values.
        rng: Generator for the Poisson weights; required when ``n_resamples > 0``.
    """
    if n_resamples == 0:
        return None
    if rng is None:
        raise ValueError("n_bootstrap > 0: pass rng=numpy.random.Generator to add()")
    start = boot if boot is not None else PoissonBootstrap.empty(n_resamples, columns.shape[1])
    return start.add(columns, rng)


def merge_optional(
    a: PoissonBootstrap | None, b: PoissonBootstrap | None
) -> PoissonBootstrap | None:
    """Merge two optional bootstraps (None stands for no rows)."""
    if a is None or b is None:
        return a if b is None else b
    return a + b


def percentile_or_none(
    boot: PoissonBootstrap | None, statistic: Statistic, level: float
) -> Interval | None:
    """The percentile interval, or None when no bootstrap was kept."""
    return None if boot is None else boot.percentile(statistic, level)
