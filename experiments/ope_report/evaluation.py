"""One policy's running OPE state over a log: every estimator, weight diagnostics, support,
and (for candidates) the paired difference against the champion per estimator.

Decisions of one unit are spread over the log (it is read in time order), so each
estimator's per-decision terms are summed per unit as the chunks arrive
(:class:`~experiments.ope.UnitSums`, one row of 2 floats per unit and estimator); the
units enter the estimators and paired differences from their sums at the end
(:meth:`Evaluation.finish`), which makes the variances cluster-robust by unit and the
bootstrap resample units. A decision without a unit is a unit of its own and enters the
estimators with its chunk, as before units existed, so a log without unit ids keeps no
per-unit state and gives exactly the per-decision numbers (bootstrap draws included)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from experiments.ope import (
    LoggedBatch,
    PairedDifference,
    RatioEstimator,
    UnitSums,
    WeightDiagnostics,
    difference_to_dict,
)
from experiments.ope.results import IntervalKind
from experiments.ope_report.options import ESTIMATORS, OpeOptions
from experiments.ope_report.scope import Chunk


@dataclass
class Evaluation:
    """Estimators, diagnostics and paired differences, updated chunk by chunk.

    Attributes:
        name: The policy's name.
        options: Report options.
        paired: Keep paired differences against the champion (candidates only).
    """

    name: str
    options: OpeOptions
    paired: bool = True
    templates: dict[str, RatioEstimator] = field(default_factory=dict)
    unit_sums: dict[str, UnitSums] = field(default_factory=dict)
    decisions: int = 0
    estimators: dict[str, RatioEstimator] = field(default_factory=dict)
    differences: dict[str, PairedDifference] = field(default_factory=dict)
    diagnostics: WeightDiagnostics = field(default_factory=WeightDiagnostics)
    support_rows: int = 0
    support_mass: float = 0.0

    def __post_init__(self) -> None:
        for est in ESTIMATORS:
            self.templates[est] = self.options.estimator(est)
            self.estimators[est] = self.templates[est]
            self.unit_sums[est] = UnitSums(2)
            if self.paired:
                self.differences[est] = PairedDifference(self.templates[est])

    def add(self, batch: LoggedBatch, champion: LoggedBatch | None, chunk: Chunk,
            units: np.ndarray, rng: np.random.Generator | None) -> None:
        """Feed one chunk's batch (and the champion's batch on the same rows).

        Args:
            batch: The chunk with this policy.
            champion: The chunk with the champion (for the paired differences), or None.
            chunk: The chunk.
            units: ``(n,)`` unit codes (:meth:`~experiments.ope.UnitCodes.named`, one
                numbering for the whole pass); -1 for a decision without a unit, which is
                a unit of its own and goes to the estimators at once.
            rng: Bootstrap generator (iff the options bootstrap).
        """
        alone, named = units < 0, np.flatnonzero(units >= 0)
        if alone.all():
            self._add_alone(batch, champion, rng)
        elif alone.any():
            rows = np.flatnonzero(alone)
            self._add_alone(batch.rows(rows), None if champion is None
                            else champion.rows(rows), rng)
        if named.size:
            part = batch.rows(named) if named.size < batch.n else batch
            for name, template in self.templates.items():
                self.unit_sums[name].add(units[named], template.terms(part))
            self.decisions += named.size
        self.diagnostics = self.diagnostics.add(batch)
        self._support(batch.target_pmf, chunk)

    def _add_alone(self, batch: LoggedBatch, champion: LoggedBatch | None,
                   rng: np.random.Generator | None) -> None:
        for name, est in self.estimators.items():
            self.estimators[name] = est.add(batch, rng)
        if self.paired and champion is not None:
            for name, diff in self.differences.items():
                self.differences[name] = diff.add(batch, champion, rng)

    def finish(self, champion: Evaluation | None, rng: np.random.Generator | None) -> None:
        """Add the units with ids, from their per-unit sums (and, for the paired
        differences, the same units' sums in ``champion``, the champion's evaluation over
        the same pass)."""
        for name, est in self.estimators.items():
            sums = self.unit_sums[name].sums
            self.estimators[name] = est.add_units(sums, rng, decisions=self.decisions)
            if self.paired and champion is not None:
                self.differences[name] = self.differences[name].add_units(
                    sums, champion.unit_sums[name].sums, rng, decisions=self.decisions)

    @property
    def n_units(self) -> int:
        """Units seen, after :meth:`finish` (every estimator sees the same ones)."""
        return int(self.estimators[ESTIMATORS[0]].moments.n)

    @property
    def nbytes(self) -> int:
        """Bytes held by the per-unit sums."""
        return sum(s.nbytes for s in self.unit_sums.values())

    def _support(self, target: np.ndarray, chunk: Chunk) -> None:
        """Candidate mass on actions the logging policy gave probability 0 (rows whose
        full logged pmf is known): there IPS-type estimators see nothing."""
        logged = chunk.logged_matrix
        known = ~np.isnan(logged).any(axis=1)
        if known.any():
            outside = np.where(logged[known] == 0.0, target[known], 0.0) * chunk.mask[known]
            self.support_rows += int(known.sum())
            self.support_mass += float(outside.sum())

    def to_dict(self) -> dict[str, Any]:
        kind = cast(IntervalKind, self.options.intervals)  # validated by OpeOptions
        out: dict[str, Any] = {"estimators": {
            name: {**est.get().to_dict(kind), "status": est.get().status}
            for name, est in self.estimators.items()}}
        out.update(self.diagnostics.to_dict())
        out["unsupported_mass"] = (self.support_mass / self.support_rows
                                   if self.support_rows else None)
        if self.paired:
            chosen = self.options.verdict_estimator
            diffs = {name: difference_to_dict(d.get(), kind)
                     for name, d in self.differences.items()}
            out["vs_champion"] = {**diffs[chosen], "estimator": chosen}
            out["vs_champion_by_estimator"] = diffs
        return out

    def warnings(self) -> list[dict[str, str]]:
        found = []
        d = self.diagnostics
        if d.n and d.ess < max(30.0, 0.01 * d.n):
            found.append({"code": "low_ess", "message": (
                f"{self.name}: effective sample size {d.ess:.0f} of {d.n} decisions; its "
                "IPS-type estimates rest on few decisions")})
        mass = self.support_mass / self.support_rows if self.support_rows else 0.0
        if mass > 0.01 and math.isfinite(mass):
            found.append({"code": "support", "message": (
                f"{self.name}: {mass:.1%} of its probability goes to actions the logging "
                "policy never took; IPS and SNIPS are biased there, DM/DR rely on the "
                "reward model")})
        return found
