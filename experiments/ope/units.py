"""Units of randomization for off-policy estimates: per-unit sums of per-decision terms.

Customers return, so the decisions of one unit (a customer) are not independent: their
rewards share the customer's own rates. Every OPE estimator here is a ratio of sums,
theta = sum_i x_i / sum_i y_i, which is also a ratio of *per-unit* sums,
sum_g X_g / sum_g Y_g with X_g = sum_{i in g} x_i. Summarising the per-unit rows
``(X_g, Y_g)`` instead of the per-decision rows gives the cluster-robust (by unit)
variance of the estimator with the same code: the delta-method variance of the ratio of
unit means equals

    G / (G - 1) * sum_g (sum_{i in g} psi_i)^2 / n^2,   psi_i = (x_i - theta y_i) / mean(y),

the sandwich variance of statsmodels' ``cov_type="cluster"`` (OLS of the per-decision terms
on a constant, its default small-sample correction G / (G - 1) * (n - 1) / (n - k) with
k = 1). With one decision per unit it is the per-decision variance, unchanged. The Poisson
bootstrap, fed unit rows, resamples units.

A unit's rows must be summed before the estimator sees them: within one batch
(:func:`unit_sums`), or across a log read in time order with :class:`UnitSums`, which keeps
one row of sums per unit (memory grows with the number of distinct units, not of
decisions; decisions without a unit are whole units at once and need no state).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def unit_sums(units: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Per-unit column sums of one batch, units in order of first appearance.

    Args:
        units: ``(n,)`` unit key of each row (any sortable numpy dtype).
        columns: ``(n, k)`` per-row values.

    Returns:
        ``(G, k)`` sums; the rows themselves (a copy) when every unit appears once.
    """
    units = np.asarray(units)
    if units.shape != (columns.shape[0],):
        raise ValueError(f"units must have shape ({columns.shape[0]},), got {units.shape}")
    _, first, inverse = np.unique(units, return_index=True, return_inverse=True)
    if first.size == units.size:
        return columns.copy()
    rank = np.empty_like(first)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    out = np.zeros((first.size, columns.shape[1]))
    np.add.at(out, rank[inverse.ravel()], columns)
    return out


class UnitCodes:
    """Dense integer codes of unit ids, in order of first appearance (mutable).

    ``None`` (a decision without a unit) is a unit of its own: it gets a fresh code.
    """

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self.count = 0

    def codes(self, unit_ids: Iterable[str | None]) -> np.ndarray:
        """``(n,)`` codes of the ids, new ids numbered from :attr:`count` on."""
        out = []
        known = self._codes
        for unit in unit_ids:
            code = known.get(unit) if unit is not None else None
            if code is None:
                code = self.count
                self.count += 1
                if unit is not None:
                    known[unit] = code
            out.append(code)
        return np.array(out, dtype=np.intp)

    def named(self, unit_ids: Iterable[str | None]) -> np.ndarray:
        """Like :meth:`codes`, but -1 for a decision without a unit: such a decision is a
        whole unit already and can go straight to an estimator (no per-unit state)."""
        out = []
        known = self._codes
        for unit in unit_ids:
            code = -1
            if unit is not None:
                code = known.get(unit, -1)
                if code < 0:
                    code = known[unit] = self.count
                    self.count += 1
            out.append(code)
        return np.array(out, dtype=np.intp)


class UnitSums:
    """Running per-unit column sums indexed by dense unit codes (mutable accumulator).

    Attributes:
        k: Number of columns.
    """

    def __init__(self, k: int) -> None:
        self.k = k
        self._sums = np.zeros((0, k))
        self._units = 0

    def add(self, codes: np.ndarray, columns: np.ndarray) -> None:
        """Add each row of ``columns`` to its unit's sums.

        Args:
            codes: ``(n,)`` unit codes from :class:`UnitCodes`.
            columns: ``(n, k)`` per-row values.
        """
        if columns.shape != (codes.shape[0], self.k):
            raise ValueError(f"columns must have shape ({codes.shape[0]}, {self.k}), "
                             f"got {columns.shape}")
        if codes.size == 0:
            return
        needed = int(codes.max()) + 1
        if needed > self._sums.shape[0]:
            grown = np.zeros((max(needed, 2 * self._sums.shape[0]), self.k))
            grown[: self._units] = self._sums[: self._units]
            self._sums = grown
        self._units = max(self._units, needed)
        np.add.at(self._sums, codes, columns)

    @property
    def sums(self) -> np.ndarray:
        """``(G, k)`` sums of the units seen so far (a view: do not modify)."""
        return self._sums[: self._units]

    @property
    def nbytes(self) -> int:
        """Bytes held by the sums (for memory reports)."""
        return int(self._sums.nbytes)
