"""Per-experiment log retention (Personalizer's `logRetentionDays`).

An experiment whose ``service.log_retention_days`` is set (``-1`` or absent: keep
everything) keeps its decisions, their rewards and idempotency keys, and held Personalizer
events for that many days; ``apply`` deletes what is older, one experiment per
transaction, with an audit entry (``logs.retention``) naming the counts.

Decisions and reward events are partitioned by time on PostgreSQL
(``experiments.partitioning``); partitions hold every experiment, so a per-experiment
retention deletes rows rather than dropping partitions, and every statement bounds
``created_at`` (decisions, decision keys) so PostgreSQL reads only the partitions older
than the cutoff. A decision's rewards go with it, even one received after the cutoff.
The learner loop runs ``apply`` with its periodic maintenance; ``tailor retention`` runs it
by hand.

Unit profiles past their TTL (``expires_at``) are purged the same way (``purge_profiles``,
one transaction and audit entry ``profiles.expired`` per team, the team's profile change
counter moved so workers drop their cached copies): reads already ignore them, the purge
removes the data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from experiments import audit, clock, profiles
from experiments.config import ExperimentConfig
from experiments.models import (
    Decision,
    DecisionKey,
    Experiment,
    PendingEvent,
    Profile,
    RewardEvent,
    RewardKey,
)

DAY = 86400.0


@dataclass(frozen=True)
class Deleted:
    """Rows deleted for one experiment."""

    experiment: str
    cutoff: float
    decisions: int
    rewards: int
    pending: int


def retention_days(config: ExperimentConfig) -> int | None:
    """The experiment's retention in days, or None to keep everything."""
    days = config.service.log_retention_days
    return None if days is None or days < 0 else int(days)


def _retained(session: Session) -> Iterator[tuple[Experiment, int]]:
    for experiment in session.scalars(sa.select(Experiment).order_by(Experiment.id)):
        days = retention_days(experiment.settings)
        if days is not None:
            yield experiment, days


def _count(result: sa.Result[Any]) -> int:
    return int(cast(sa.CursorResult[Any], result).rowcount or 0)


def delete_before(session: Session, experiment: Experiment, cutoff: float) -> Deleted:
    """Delete the experiment's decisions created before ``cutoff`` (with their keys and
    rewards), its rewards received before it, and its held events (the caller commits)."""
    old = sa.and_(Decision.experiment_id == experiment.id, Decision.created_at < cutoff)
    old_ids = sa.select(Decision.id).where(old)
    gone_rewards = sa.or_(RewardEvent.decision_id.in_(old_ids),
                          RewardEvent.received_at < cutoff)
    rewards_of = sa.and_(RewardEvent.experiment_id == experiment.id, gone_rewards)
    session.execute(sa.delete(RewardKey).where(
        RewardKey.experiment_id == experiment.id,
        RewardKey.reward_event_id.in_(sa.select(RewardEvent.id).where(rewards_of))))
    rewards = _count(session.execute(sa.delete(RewardEvent).where(rewards_of)))
    session.execute(sa.delete(DecisionKey).where(DecisionKey.experiment_id == experiment.id,
                                                 DecisionKey.created_at < cutoff))
    decisions = _count(session.execute(sa.delete(Decision).where(old)))
    pending = _count(session.execute(sa.delete(PendingEvent).where(
        PendingEvent.experiment_id == experiment.id, PendingEvent.received_at < cutoff)))
    return Deleted(experiment.key, cutoff, decisions, rewards, pending)


def apply(session: Session, now: float | None = None) -> list[Deleted]:
    """Enforce every experiment's retention; one commit (and audit entry) per experiment
    that had something to delete."""
    now = clock.now() if now is None else now
    done = []
    for experiment, days in list(_retained(session)):
        deleted = delete_before(session, experiment, now - days * DAY)
        if deleted.decisions or deleted.rewards or deleted.pending:
            audit.record(session, audit.Actor(experiment.team_id, "retention"),
                         "logs.retention", experiment.key,
                         {"days": days, "decisions": deleted.decisions,
                          "rewards": deleted.rewards, "pending": deleted.pending})
            done.append(deleted)
        session.commit()
    return done


def purge_profiles(session: Session, now: float | None = None) -> dict[int, int]:
    """Delete every profile whose TTL has passed; team id → profiles deleted (one commit
    and audit entry per team that had any)."""
    now = clock.now() if now is None else now
    expired = sa.and_(Profile.expires_at.is_not(None), Profile.expires_at <= now)
    teams = session.scalars(sa.select(Profile.team_id).where(expired).distinct()).all()
    purged = {}
    for team_id in sorted(teams):
        count = _count(session.execute(
            sa.delete(Profile).where(Profile.team_id == team_id, expired),
            execution_options={"synchronize_session": False}))
        if count:
            profiles.bump(session, team_id)
            audit.record(session, audit.Actor(team_id, "retention"), "profiles.expired",
                         None, {"profiles": count})
            purged[team_id] = count
        session.commit()
    return purged
