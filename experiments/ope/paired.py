"""Paired difference of a candidate and a champion policy evaluated on the same log.

Both policies' per-row terms are computed on the same logged rows, so the difference
theta_c - theta_0 is a smooth function of the four column means (x_c, y_c, x_0, y_0) and
its delta-method variance uses the *paired* per-row differences of the linearised terms,
(x_c - theta_c y_c) / mean(y_c) - (x_0 - theta_0 y_0) / mean(y_0); the covariance between
the two policies (large when they often agree) is therefore accounted for, unlike a
two-sample (Welch) comparison. The bootstrap resamples rows jointly for both policies.
Given units (``units=`` or ``add_units``), the moments and the bootstrap are of per-unit
sums: the variance is cluster-robust by unit and the bootstrap resamples units jointly.
Use :func:`~experiments.ope.results.verdict` on the resulting interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from experiments.ope.bootstrap import (
    PoissonBootstrap,
    accumulate,
    merge_optional,
    percentile_or_none,
)
from experiments.ope.estimators import RatioEstimator, estimate_from_moments
from experiments.ope.inputs import LoggedBatch
from experiments.ope.moments import Moments
from experiments.ope.results import Estimate
from experiments.ope.units import unit_sums


@dataclass(frozen=True, eq=False)
class PairedDifference:
    """Streaming estimate of ``value(candidate) - value(champion)`` on one log.

    Attributes:
        estimator: Template giving the method and settings (e.g. ``SNIPS()``,
            ``IPS(clip=20)``, ``DR(n_bootstrap=1000)``); its own state is ignored.
        moments: State: moments of ``(x_c, y_c, x_0, y_0)``. Leave the default.
        bootstrap: State: bootstrap replicate sums. Leave the default.
        decisions: State: number of decisions seen. Leave the default.

    Example:
        >>> import numpy as np
        >>> from experiments.ope import IPS, LoggedBatch, verdict
        >>> log = LoggedBatch(rewards=[1.0, 0.0] * 4, logged_propensity=[0.5] * 8,
        ...                   chosen=[0, 1] * 4, target_pmf=np.full((8, 2), 0.5))
        >>> best = log.with_target(np.tile([1.0, 0.0], (8, 1)))
        >>> diff = PairedDifference(IPS()).add(best, log).get()
        >>> round(diff.value, 6), verdict(diff.interval)
        (0.5, 'better')
    """

    estimator: RatioEstimator
    moments: Moments = field(default_factory=lambda: Moments.empty(4), repr=False)
    bootstrap: PoissonBootstrap | None = field(default=None, repr=False)
    decisions: int = field(default=0, repr=False)

    def add(
        self,
        candidate: LoggedBatch,
        champion: LoggedBatch,
        rng: np.random.Generator | None = None,
        units: np.ndarray | None = None,
    ) -> PairedDifference:
        """A new summary that has also seen these rows.

        Args:
            candidate: The log with the candidate policy.
            champion: The same rows with the champion policy.
            rng: Generator for bootstrap weights; required iff the template has
                ``n_bootstrap > 0``.
            units: ``(n,)`` unit of each row, or None (each row a unit of its own); all the
                rows of a unit must be in this call (else use :meth:`add_units`).

        Raises:
            ValueError: If the two batches are not the same logged rows.
        """
        if not candidate.same_log(champion):
            raise ValueError("candidate and champion batches must hold the same logged rows")
        columns = np.hstack([self.estimator.terms(candidate), self.estimator.terms(champion)])
        if units is not None:
            columns = unit_sums(units, columns)
        return self._add_columns(columns, rng, candidate.n)

    def add_units(self, candidate: np.ndarray, champion: np.ndarray,
                  rng: np.random.Generator | None = None, *,
                  decisions: int) -> PairedDifference:
        """A new summary that has also seen these units.

        Args:
            candidate: ``(G, 2)`` per-unit sums of the estimator's terms for the candidate.
            champion: ``(G, 2)`` the same units' sums for the champion.
            rng: Generator for bootstrap weights (iff the template bootstraps).
            decisions: How many decisions the units hold.
        """
        if candidate.shape != champion.shape:
            raise ValueError(f"unit sums of shapes {candidate.shape} and {champion.shape} "
                             "are not the same units")
        return self._add_columns(np.hstack([candidate, champion]), rng, decisions)

    def _add_columns(self, columns: np.ndarray, rng: np.random.Generator | None,
                     decisions: int) -> PairedDifference:
        boot = accumulate(self.bootstrap, self.estimator.n_bootstrap, columns, rng)
        return replace(self, moments=self.moments + Moments.of(columns), bootstrap=boot,
                       decisions=self.decisions + decisions)

    def merge(self, other: PairedDifference) -> PairedDifference:
        """Summary over the rows seen by both (disjoint) summaries."""
        mine, theirs = self.estimator, other.estimator
        if type(mine) is not type(theirs) or mine.settings() != theirs.settings():
            raise ValueError("cannot merge paired differences of different estimators")
        boot = merge_optional(self.bootstrap, other.bootstrap)
        return replace(self, moments=self.moments + other.moments, bootstrap=boot,
                       decisions=self.decisions + other.decisions)

    __add__ = merge

    def get(self) -> Estimate:
        """The difference with its analytic, bootstrap and sequential intervals."""
        mean = self.moments.mean
        defined = self.moments.n > 0 and mean[1] != 0 and mean[3] != 0
        value, gradient = math.nan, None
        if defined:
            theta_c, theta_0 = mean[0] / mean[1], mean[2] / mean[3]
            value = float(theta_c - theta_0)
            gradient = np.array([1 / mean[1], -theta_c / mean[1], -1 / mean[3], theta_0 / mean[3]])
        est = self.estimator
        return estimate_from_moments(
            f"{est.name}-diff",
            self.moments,
            value,
            gradient,
            est.level,
            est.design_n,
            percentile_or_none(self.bootstrap, difference_statistic, est.level),
            decisions=self.decisions,
        )


def difference_statistic(sums: np.ndarray) -> np.ndarray:
    """Bootstrap replicate differences from ``(B, 4)`` replicate sums."""
    return sums[:, 0] / sums[:, 1] - sums[:, 2] / sums[:, 3]
