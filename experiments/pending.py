"""Rewards and activations that arrive before their decision (the backward window).

Personalizer answered 204 to a reward or an activation whatever its event id, and joined it
if the decision came (Microsoft's open-source learning loop joins both directions within its
window). On the Personalizer endpoints Tailor does the same: an event id with no decision
yet is kept here for the experiment's reward window (`hold`); a rank that writes that
decision applies what waits for it (`apply`): the activation first, then every reward,
as if they had just arrived. What is still waiting when its window passes is an orphan:
counted (`orphans`) in the health report and `/metrics`, never learned from.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from experiments import clock, rewards
from experiments.errors import NotFound
from experiments.models import Experiment, PendingEvent

PENDING, JOINED = "pending", "joined"


@dataclass(frozen=True)
class Orphans:
    """Events whose decision never came within the window, and those still waiting."""

    orphans: int
    waiting: int


def hold(session: Session, experiment: Experiment, event_id: str, kind: str,
         value: float | None = None) -> None:
    """Keep a reward (`kind` "reward", its mapped value) or activation ("activate") for an
    event id not known yet (the caller commits)."""
    now = clock.now()
    window = float(experiment.settings.reward.window_seconds)
    session.add(PendingEvent(experiment_id=experiment.id, event_id=event_id, kind=kind,
                             value=value, received_at=now, expires_at=now + window,
                             state=PENDING))


def waiting(session: Session, experiment_id: int, event_ids: list[str]) -> list[PendingEvent]:
    """Unexpired events waiting for these event ids, oldest first (one indexed query)."""
    return list(session.scalars(sa.select(PendingEvent).where(
        PendingEvent.experiment_id == experiment_id, PendingEvent.event_id.in_(event_ids),
        PendingEvent.state == PENDING, PendingEvent.expires_at >= clock.now())
        .order_by(PendingEvent.id)))


def apply(session: Session, experiment: Experiment, event_ids: list[tuple[str, str]],
          reward_type: str | None) -> int:
    """Apply what waits for decisions just written; commits. `event_ids`: pairs (the event
    id an event was held under, a decision's event id); a multi-slot activation waits
    under one id for every slot. Returns how many events were applied."""
    found = waiting(session, experiment.id, sorted({held for held, _ in event_ids}))
    if not found:
        return 0
    executor = rewards.SessionExecutor(session)
    for event in sorted(found, key=lambda e: (e.kind != "activate", e.id)):
        _apply_one(session, executor, experiment, event, event_ids, reward_type)
        event.state = JOINED
    session.commit()
    return len(found)


def _apply_one(session: Session, executor: rewards.SessionExecutor, experiment: Experiment,
               event: PendingEvent, event_ids: list[tuple[str, str]],
               reward_type: str | None) -> None:
    targets = [decision for held, decision in event_ids if held == event.event_id]
    for decision_event in targets:
        try:
            if event.kind == "activate":
                rewards.activate(session, experiment.team_id, decision_event, experiment.id,
                                 commit=False)
            elif reward_type is not None:
                reward = rewards.RewardCommand(decision_event, reward_type, event.value, None)
                rewards.store_one(executor, experiment.team_id, reward, experiment.id)
        except NotFound:
            continue


def orphans(session: Session, experiment_id: int | None = None) -> Orphans:
    """Held events whose window passed without their decision, and those still waiting."""
    expired = sa.case((PendingEvent.expires_at < sa.bindparam("now", clock.now()), 1),
                      else_=0)
    query = sa.select(sa.func.coalesce(sa.func.sum(expired), 0), sa.func.count()).where(
        PendingEvent.state == PENDING)
    if experiment_id is not None:
        query = query.where(PendingEvent.experiment_id == experiment_id)
    orphan, total = session.execute(query).one()
    return Orphans(int(orphan), int(total) - int(orphan))
