"""One policy's running OPE state over a log: every estimator, weight diagnostics, support,
and (for candidates) the paired difference against the champion per estimator."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from experiments.ope import (
    LoggedBatch,
    PairedDifference,
    RatioEstimator,
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
    estimators: dict[str, RatioEstimator] = field(default_factory=dict)
    differences: dict[str, PairedDifference] = field(default_factory=dict)
    diagnostics: WeightDiagnostics = field(default_factory=WeightDiagnostics)
    support_rows: int = 0
    support_mass: float = 0.0

    def __post_init__(self) -> None:
        for est in ESTIMATORS:
            self.estimators[est] = self.options.estimator(est)
            if self.paired:
                self.differences[est] = PairedDifference(self.options.estimator(est))

    def add(self, batch: LoggedBatch, champion: LoggedBatch | None, chunk: Chunk,
            rng: np.random.Generator | None) -> None:
        """Feed one chunk's batch (and the champion's batch on the same rows)."""
        for name, est in self.estimators.items():
            self.estimators[name] = est.add(batch, rng)
        if champion is not None:
            for name, diff in self.differences.items():
                self.differences[name] = diff.add(batch, champion, rng)
        self.diagnostics = self.diagnostics.add(batch)
        self._support(batch.target_pmf, chunk)

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
