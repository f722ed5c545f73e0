"""A/B and OPE checked against each other, for the bandit arm (the report's ``ab_vs_ope``).

The bandit arm's randomized value (reward per decision, a ratio of per-unit sums with its
delta-method variance, :class:`~experiments.abstats.ratio.RatioStats`) is set next to the
off-policy estimate of *the same model versions* on the champion arm's decisions: each
champion decision is evaluated with the pmf of the model version that was serving the
bandit arm when it was logged (one VW prediction per champion-arm decision, in the report's
main pass) (the version schedule is read from the bandit arm's own
decisions: a version serves from its first decision on). Both sides cover the same period:
from the first decision of the oldest version used (at most ``MAX_VERSIONS`` of the newest,
all still stored; versions pruned since are left out with the period they served).
The OPE side is the report's verdict estimator, cluster-robust by unit; the comparison and
its flag are :func:`experiments.ope.agreement.compare`. The champion arm must have explored
where the bandit goes: when more than ``MAX_UNSUPPORTED`` of the policy's probability lies
on actions the champion never takes, the status is ``unsupported`` and nothing is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bandits.features import NO_TYPES, FeatureError, FeatureTypes
from bandits.policy import PolicyError, VWPolicy
from experiments import clock, value_bounds
from experiments.abstats.ratio import RatioStats
from experiments.errors import NotFound
from experiments.final_decisions import Scope
from experiments.learning import snapshots
from experiments.models import Decision, Experiment
from experiments.ope import LoggedBatch, UnitCodes
from experiments.ope.agreement import compare
from experiments.ope_report.evaluation import Evaluation
from experiments.ope_report.options import OpeOptions
from experiments.ope_report.scope import Chunk

ARM = "bandit"
MAX_VERSIONS = 8
MAX_UNSUPPORTED = 0.01


@dataclass
class Schedule:
    """Which model version served the bandit arm when, from ``starts[i]`` on."""

    starts: np.ndarray
    policies: list[VWPolicy]
    skipped: list[int]
    types: FeatureTypes = NO_TYPES  # the experiment's feature_types, as rank encoded

    def pmfs(self, chunk: Chunk) -> np.ndarray:
        """``(n, K)`` pmf of the version serving at each decision's time."""
        which = np.searchsorted(self.starts, chunk.created_at, side="right") - 1
        out = np.zeros(chunk.mask.shape)
        for i, (context, actions) in enumerate(zip(chunk.contexts, chunk.actions, strict=True)):
            pairs = [(a["id"], a.get("features") or {}) for a in actions]
            out[i, : len(actions)] = self.policies[int(which[i])].pmf(context, pairs,
                                                                      self.types)
        return out


def schedule(session: Session, experiment: Experiment, scope: Scope) -> Schedule | None:
    """The newest stored versions that served the bandit arm, oldest first (None: the arm
    has no decisions; no policies: none of its versions is stored any more)."""
    served_by = sa.func.coalesce(Decision.model_version, 0)  # 0/NULL: the fresh learner
    rows = session.execute(
        sa.select(served_by, sa.func.min(Decision.created_at))
        .where(*scope.conditions(), Decision.arm == ARM).group_by(served_by)).all()
    served = sorted(((float(start), int(v)) for v, start in rows), reverse=True)
    starts: list[float] = []
    policies: list[VWPolicy] = []
    skipped: list[int] = []
    for start, version in served:
        policy = None
        if len(policies) < MAX_VERSIONS and not skipped:
            policy = _policy(session, experiment, version)
        if policy is None:  # the period is contiguous: older versions are left out too
            skipped.append(version)
            continue
        starts.append(start)
        policies.append(policy)
    if not served:
        return None
    return Schedule(np.array(starts[::-1]), policies[::-1], sorted(skipped),
                    experiment.settings.types)


def _policy(session: Session, experiment: Experiment, version: int) -> VWPolicy | None:
    if version == 0:  # served before the first snapshot: a fresh learner
        return VWPolicy(experiment.settings.learner.vw_arguments)
    try:
        model = snapshots.find(session, experiment, str(version))
    except NotFound:
        return None
    return VWPolicy(model.arguments, model.data, version=model.version)


@dataclass
class CrossCheck:
    """The OPE side, fed the champion arm's rows of each chunk of the report's pass."""

    schedule: Schedule
    options: OpeOptions
    evaluation: Evaluation = field(init=False)
    units: UnitCodes = field(default_factory=UnitCodes)
    error: str | None = None
    rng: np.random.Generator | None = None

    def __post_init__(self) -> None:
        self.evaluation = Evaluation("bandit arm (same model versions)", self.options,
                                     paired=False)

    @property
    def since(self) -> float:
        return float(self.schedule.starts[0])

    def add(self, chunk: Chunk, q_hat: np.ndarray | None) -> None:
        """Evaluate the schedule on the chunk's champion-arm decisions of the period."""
        champion = np.array([arm == "champion" for arm in chunk.arms], dtype=bool)
        rows = np.flatnonzero(champion & (chunk.created_at >= self.since))
        if rows.size == 0 or self.error is not None:
            return
        part = chunk.take(rows)
        try:
            batch = LoggedBatch(rewards=part.rewards, logged_propensity=part.propensity,
                                chosen=part.chosen, target_pmf=self.schedule.pmfs(part),
                                mask=part.mask, q_hat=None if q_hat is None else q_hat[rows])
        except (ValueError, PolicyError, FeatureError) as exc:
            self.error = (f"the bandit's model versions cannot be evaluated on the champion "
                          f"arm's decision {part.event_ids[0]!r} on: {exc}")
            return
        codes = self.units.named(part.unit_ids or [None] * part.n)
        self.evaluation.add(batch, None, part, codes, rng=self.rng)

    def to_dict(self, session: Session, scope: Scope) -> dict[str, Any]:
        """The ``ab_vs_ope`` section."""
        if self.error is not None:
            return {"status": "not_evaluated", "disagree": False, "arm": ARM,
                    "message": self.error}
        self.evaluation.finish(None, self.rng)
        name = self.options.verdict_estimator
        ab = unit_stats(session, scope, ARM, self.since)
        evaluation = self.evaluation
        mass = (evaluation.support_mass / evaluation.support_rows
                if evaluation.support_rows else 0.0)
        result = compare(ab, evaluation.estimators[name].get(),
                         supported=mass <= MAX_UNSUPPORTED)
        return {**result.to_dict(), "arm": ARM, "estimator": name,
                "since": clock.iso(self.since), "unsupported_mass": mass,
                "model_versions": [p.version for p in self.schedule.policies],
                "versions_left_out": self.schedule.skipped,
                "ope_by_estimator": {
                    est: {**e.get().to_dict(), "status": e.get().status}
                    for est, e in evaluation.estimators.items()}}


def unit_stats(session: Session, scope: Scope, arm: str,
               since: float | None = None) -> RatioStats:
    """An arm's decisions and rewards per unit (a decision without a unit is its own),
    summed over units in SQL: the A/B value of the arm with its delta-method variance."""
    loner = sa.case((Decision.unit_id.is_(None), Decision.event_id), else_=None)
    conditions = [*scope.conditions(), Decision.arm == arm]
    if since is not None:
        conditions.append(Decision.created_at >= since)
    reward = value_bounds.bounded(scope.reward())  # as the A/B report counts it
    per_unit = (sa.select(sa.func.count().label("x"), sa.func.sum(reward).label("y"))
                .where(*conditions).group_by(Decision.unit_id, loner).subquery())
    x, y = per_unit.c.x, per_unit.c.y
    row = session.execute(sa.select(sa.func.count(), sa.func.sum(x), sa.func.sum(x * x),
                                    sa.func.sum(y), sa.func.sum(y * y),
                                    sa.func.sum(x * y))).one()
    return RatioStats.from_aggregates(*row)


def start(session: Session, experiment: Experiment, scope: Scope,
          options: OpeOptions) -> CrossCheck | dict[str, Any]:
    """A cross-check to feed the report's pass, or the ``ab_vs_ope`` section saying why
    there is nothing to compare."""
    if ARM not in experiment.settings.arms:
        return {"status": "no_bandit_arm", "disagree": False, "arm": ARM}
    found = schedule(session, experiment, scope)
    if found is None:
        return {"status": "no_bandit_decisions", "disagree": False, "arm": ARM}
    if not found.policies:
        return {"status": "models_missing", "disagree": False, "arm": ARM,
                "versions_left_out": found.skipped,
                "message": "the model versions that served the bandit arm are no longer "
                           "stored (pruned), so they cannot be evaluated off-policy"}
    bootstrap = options.intervals == "bootstrap"
    return CrossCheck(found, options, rng=np.random.default_rng(options.seed + 1)
                      if bootstrap else None)


def warning(check: dict[str, Any]) -> dict[str, str]:
    """The report warning of a disagreement."""
    diff = check["difference"]
    return {"code": "ab_ope_disagree", "message": (
        f"the bandit arm's randomized value ({check['ab']['value']:.4g}) and the "
        f"{check['estimator']} estimate of the same model versions on the champion arm's "
        f"decisions ({check['ope']['value']:.4g}) differ by {diff['diff']:.4g} "
        f"(interval {diff['ci_low']:.4g} to {diff['ci_high']:.4g}, excludes 0): trust the "
        "A/B result; check logged propensities and support before promoting on OPE")}
