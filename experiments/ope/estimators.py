"""Streaming, mergeable off-policy estimators: IPS, SNIPS, DM, DR, SwitchDR and DR-os.

Every estimator here is a ratio of means theta = mean(x) / mean(y) of two per-row terms
(y = 1 except for self-normalised IPS), so one summary serves them all: mergeable moments
(:class:`~experiments.ope.moments.Moments`) and, optionally, Poisson-bootstrap replicate
sums. With w_i = pi(a_i|x_i) / mu(a_i|x_i), q the reward model and
q_pi(x_i) = sum_a pi(a|x_i) q(x_i, a):

- ``IPS``: inverse propensity scoring, x = w r (optionally w clipped at M), y = 1.
- ``SNIPS``: self-normalised IPS, x = w r, y = w.
- ``DM``: direct method, x = q_pi.
- ``DR``: doubly robust, x = q_pi + w (r - q(x, a)).
- ``SwitchDR``: DR whose correction is dropped where w > tau (Wang et al. 2017; as in OBP).
- ``DROS``: DR with optimistic shrinkage, w -> lambda w / (w^2 + lambda) (Su et al. 2020).

Intervals: the analytic one is the normal (CLT) interval with the delta-method variance
of the ratio (the sample variance of the linearised terms (x - theta y) / mean(y); for
y = 1 just the sample variance of x over n). The bootstrap one is a percentile Poisson
bootstrap; the confidence sequence is the asymptotic one of Waudby-Smith et al.

Units: given the unit of each row (``units=``, or per-unit sums via ``add_units``), the
moments and the bootstrap are of per-unit sums, so the variance is cluster-robust by unit
and the bootstrap resamples units (:mod:`experiments.ope.units`). Without units every row
is a unit of its own and the numbers are the per-decision ones.

Estimators are immutable: ``add`` and ``merge`` return new ones::

    est = SNIPS()
    for chunk in batch.chunks(100_000):
        est = est.add(chunk)
    estimate = est.get()
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Self

import numpy as np
from scipy.special import ndtri

from experiments.ope.bootstrap import (
    PoissonBootstrap,
    accumulate,
    merge_optional,
    percentile_or_none,
)
from experiments.ope.inputs import LoggedBatch
from experiments.ope.moments import Moments
from experiments.ope.results import Estimate, Interval, Status
from experiments.ope.sequences import asymptotic_confidence_sequence
from experiments.ope.units import unit_sums

STATE_FIELDS = frozenset({"moments", "bootstrap", "decisions"})


@dataclass(frozen=True, eq=False, kw_only=True)
class RatioEstimator:
    """Base of the streaming estimators: settings plus mergeable sufficient statistics.

    Attributes:
        level: Coverage of the intervals (default 0.95).
        n_bootstrap: Poisson-bootstrap replicates to keep (0: no bootstrap interval);
            when > 0, ``add`` needs a ``numpy.random.Generator``.
        design_n: Sample size at which the confidence sequence is tightest; fix it before
            looking at the data.
        moments: State: moments of the per-unit sums of the ``(x, y)`` terms (per row
            when no units are given). Leave the default.
        bootstrap: State: bootstrap replicate sums. Leave the default.
        decisions: State: number of decisions seen. Leave the default.
    """

    name: ClassVar[str] = "ratio"

    level: float = 0.95
    n_bootstrap: int = 0
    design_n: int = 10_000
    moments: Moments = field(default_factory=lambda: Moments.empty(2), repr=False)
    bootstrap: PoissonBootstrap | None = field(default=None, repr=False)
    decisions: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {self.level}")
        if self.n_bootstrap < 0:
            raise ValueError(f"n_bootstrap must be >= 0, got {self.n_bootstrap}")
        if self.design_n < 1:
            raise ValueError(f"design_n must be >= 1, got {self.design_n}")

    def terms(self, batch: LoggedBatch) -> np.ndarray:
        """``(n, 2)`` per-row numerator and denominator terms ``(x, y)``."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """The estimator's configuration (every field except the state)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in STATE_FIELDS}

    def add(self, batch: LoggedBatch, rng: np.random.Generator | None = None,
            units: np.ndarray | None = None) -> Self:
        """A new estimator that has also seen ``batch``.

        Args:
            batch: Logged rows with the candidate policy.
            rng: Generator for the bootstrap weights; required iff ``n_bootstrap > 0``.
            units: ``(n,)`` unit of each row, or None (each row a unit of its own). All the
                rows of a unit must be in this batch; across batches, sum them with
                :class:`~experiments.ope.units.UnitSums` and call :meth:`add_units`.
        """
        columns = self.terms(batch)
        if units is not None:
            columns = unit_sums(units, columns)
        return self.add_units(columns, rng, decisions=batch.n)

    def add_units(self, sums: np.ndarray, rng: np.random.Generator | None = None, *,
                  decisions: int) -> Self:
        """A new estimator that has also seen these units.

        Args:
            sums: ``(G, 2)`` per-unit sums of :meth:`terms` (whole units, none seen before).
            rng: Generator for the bootstrap weights; required iff ``n_bootstrap > 0``.
            decisions: How many decisions the units hold.
        """
        boot = accumulate(self.bootstrap, self.n_bootstrap, sums, rng)
        return replace(self, moments=self.moments + Moments.of(sums), bootstrap=boot,
                       decisions=self.decisions + decisions)

    def merge(self, other: Self) -> Self:
        """Estimator over the rows seen by both (disjoint) estimators."""
        if type(other) is not type(self) or other.settings() != self.settings():
            raise ValueError(f"cannot merge {self!r} with {other!r}: different settings")
        boot = merge_optional(self.bootstrap, other.bootstrap)
        return replace(self, moments=self.moments + other.moments, bootstrap=boot,
                       decisions=self.decisions + other.decisions)

    __add__ = merge

    def get(self) -> Estimate:
        """The estimate with its analytic, bootstrap and sequential intervals."""
        m = self.moments
        denominator = float(m.mean[1]) if m.n else 0.0
        value = float(m.mean[0]) / denominator if denominator != 0 else math.nan
        gradient = np.array([1.0, -value]) / denominator if denominator != 0 else None
        return estimate_from_moments(
            self.name,
            m,
            value,
            gradient,
            self.level,
            self.design_n,
            percentile_or_none(self.bootstrap, ratio_statistic, self.level),
            decisions=self.decisions,
        )


@dataclass(frozen=True, eq=False, kw_only=True)
class IPS(RatioEstimator):
    """Inverse propensity scoring, optionally with weights clipped at ``clip`` (M)."""

    name: ClassVar[str] = "ips"
    clip: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"clip must be > 0 or None, got {self.clip}")

    def terms(self, batch: LoggedBatch) -> np.ndarray:
        """``(n, 2)``: ``(min(w, M) r, 1)``."""
        w = batch.weights if self.clip is None else np.minimum(batch.weights, self.clip)
        return _with_unit_denominator(w * batch.rewards)


@dataclass(frozen=True, eq=False, kw_only=True)
class SNIPS(RatioEstimator):
    """Self-normalised IPS: sum(w r) / sum(w)."""

    name: ClassVar[str] = "snips"

    def terms(self, batch: LoggedBatch) -> np.ndarray:
        """``(n, 2)``: ``(w r, w)``."""
        return np.column_stack([batch.weights * batch.rewards, batch.weights])


@dataclass(frozen=True, eq=False, kw_only=True)
class DM(RatioEstimator):
    """Direct method: the mean model value of the candidate, mean(q_pi)."""

    name: ClassVar[str] = "dm"

    def terms(self, batch: LoggedBatch) -> np.ndarray:
        """``(n, 2)``: ``(q_pi, 1)``."""
        return _with_unit_denominator(batch.q_target)


@dataclass(frozen=True, eq=False, kw_only=True)
class DR(RatioEstimator):
    """Doubly robust: DM plus the importance-weighted residual of the logged action."""

    name: ClassVar[str] = "dr"

    def terms(self, batch: LoggedBatch) -> np.ndarray:
        """``(n, 2)``: ``(q_pi + w (r - q(x, a)), 1)``."""
        return _with_unit_denominator(_dr_terms(batch, batch.weights))


@dataclass(frozen=True, eq=False, kw_only=True)
class SwitchDR(RatioEstimator):
    """Switch-DR: the DR correction only where w <= tau, the model alone elsewhere."""

    name: ClassVar[str] = "switch-dr"
    tau: float = 20.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.tau >= 0:
            raise ValueError(f"tau must be >= 0, got {self.tau}")

    def terms(self, batch: LoggedBatch) -> np.ndarray:
        """``(n, 2)``: ``(q_pi + 1[w <= tau] w (r - q(x, a)), 1)``."""
        w = np.where(batch.weights <= self.tau, batch.weights, 0.0)
        return _with_unit_denominator(_dr_terms(batch, w))


@dataclass(frozen=True, eq=False, kw_only=True)
class DROS(RatioEstimator):
    """DR with optimistic shrinkage: weights lambda w / (w^2 + lambda)."""

    name: ClassVar[str] = "dr-os"
    lam: float = 100.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.lam > 0:
            raise ValueError(f"lam must be > 0, got {self.lam}")

    def terms(self, batch: LoggedBatch) -> np.ndarray:
        """``(n, 2)``: ``(q_pi + lambda w / (w^2 + lambda) (r - q(x, a)), 1)``."""
        w = batch.weights
        return _with_unit_denominator(_dr_terms(batch, self.lam * w / (w * w + self.lam)))


def estimate_from_moments(
    method: str,
    moments: Moments,
    value: float,
    gradient: np.ndarray | None,
    level: float,
    design_n: int,
    bootstrap_interval: Interval | None = None,
    decisions: int | None = None,
) -> Estimate:
    """An :class:`Estimate` for a smooth function of column means (delta method).

    Args:
        method: Name to record.
        moments: Moments of the per-unit (or per-row) columns.
        value: The statistic at the column means (NaN if undefined).
        gradient: ``(k,)`` its gradient with respect to the means (None if undefined).
        level: Coverage.
        design_n: Design size of the confidence sequence.
        bootstrap_interval: Percentile interval, if computed.
        decisions: Decisions behind the units (None: one per row of ``moments``).
    """
    status = _status(moments.n, gradient)
    if status in ("empty", "zero_denominator"):
        value = math.nan
    var = moments.delta_variance(gradient) if gradient is not None else math.nan
    se = math.sqrt(var) if math.isfinite(var) else math.nan
    half = float(ndtri(0.5 + level / 2)) * se
    return Estimate(
        value=value,
        interval=Interval(value - half, value + half, level),
        method=method,
        n=moments.n if decisions is None else decisions,
        std_error=se,
        bootstrap_interval=bootstrap_interval,
        confidence_sequence=asymptotic_confidence_sequence(
            value, se * math.sqrt(moments.n), moments.n, level, design_n
        ),
        status=status,
        n_units=moments.n,
    )


def ratio_statistic(sums: np.ndarray) -> np.ndarray:
    """Bootstrap replicate values ``sum x / sum y`` from ``(B, 2)`` replicate sums."""
    return sums[:, 0] / sums[:, 1]


def _status(n: int, gradient: np.ndarray | None) -> Status:
    if n == 0:
        return "empty"
    if gradient is None:
        return "zero_denominator"
    return "too_few_rows" if n < 2 else "ok"


def _dr_terms(batch: LoggedBatch, w: np.ndarray) -> np.ndarray:
    return batch.q_target + w * (batch.rewards - batch.q_chosen)


def _with_unit_denominator(x: np.ndarray) -> np.ndarray:
    return np.column_stack([x, np.ones_like(x)])
