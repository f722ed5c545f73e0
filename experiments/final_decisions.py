"""The decisions whose reward is final: what OPE reports, log exports, promotion checks and
offline evaluations read.

A decision enters when it was activated, was not logged while the experiment was paused
(those serve the champion and are not learned from), and its reward window has closed, so
its reward is final: the in-window aggregate ``decisions.reward``, or the experiment's
default reward when none came. Imported decisions (phase ``imported``) enter like any
other. The scope is pinned at the start (``now`` and the largest decision id), so every
pass of a report reads the same rows even while traffic continues.

Why a module of its own: the log export (`experiments.logio`) and the OPE report
(`experiments.ope_report`, which reads supplied pmfs with `logio`) both need it; living in
either made the two packages import each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from experiments import clock
from experiments.models import Decision, Experiment


@dataclass(frozen=True)
class Scope:
    """The decisions of one report.

    Attributes:
        experiment_id: The experiment.
        default_reward: Reward of a closed decision that received none.
        now: The report's clock: windows closing after it are still open.
        max_id: Largest decision id at the start (None: no limit).
        since: Only decisions logged at or after this time (None: all).
        until: Only decisions logged before this time (None: all).
    """

    experiment_id: int
    default_reward: float
    now: float
    max_id: int | None = None
    since: float | None = None
    until: float | None = None

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        found = [Decision.experiment_id == self.experiment_id,
                 Decision.activated_at.is_not(None), Decision.phase != "paused",
                 Decision.closes_at <= self.now]
        if self.max_id is not None:
            found.append(Decision.id <= self.max_id)
        if self.since is not None:
            found.append(Decision.created_at >= self.since)
        if self.until is not None:
            found.append(Decision.created_at < self.until)
        return found

    def reward(self) -> sa.ColumnElement[float]:
        """The decision's final reward: the in-window aggregate, else the default."""
        return sa.func.coalesce(Decision.reward, self.default_reward)


def scope_of(session: Session, experiment: Experiment, *, now: float | None = None,
             since: float | None = None, until: float | None = None) -> Scope:
    """The scope of a report starting now, pinned to the decisions logged so far."""
    max_id = session.scalar(sa.select(sa.func.max(Decision.id)).where(
        Decision.experiment_id == experiment.id))
    return Scope(experiment.id, float(experiment.settings.reward.default),
                 clock.now() if now is None else now, max_id or 0, since, until)


def count(session: Session, scope: Scope) -> int:
    return int(session.scalar(sa.select(sa.func.count()).where(*scope.conditions())) or 0)
