"""Reading the decision log: what was logged for an experiment or a unit, with its rewards."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from experiments import clock
from experiments.models import Decision, RewardEvent


def serialize(decision: Decision, rewards: list[RewardEvent]) -> dict[str, Any]:
    return {
        "id": decision.id, "event_id": decision.event_id, "arm": decision.arm,
        "policy": decision.policy, "model_version": decision.model_version,
        "experiment_version": decision.experiment_version, "phase": decision.phase,
        "unit_id": decision.unit_id, "context": decision.context,
        "actions": decision.actions, "pmf": decision.pmf, "action_id": decision.action_id,
        "chosen_index": decision.chosen_index, "propensity": decision.propensity,
        "deferred": decision.deferred, "activated_at": clock.iso(decision.activated_at),
        "closes_at": clock.iso(decision.closes_at), "reward": decision.reward,
        "learned_version": decision.learned_version,
        "created_at": clock.iso(decision.created_at),
        "profile_version": decision.profile_version,
        "profile_status": decision.profile_status,
        "rewards": [{"type": r.type, "value": r.value, "raw_value": r.raw_value,
                     "idempotency_key": r.idempotency_key, "late": r.late,
                     "received_at": clock.iso(r.received_at)} for r in rewards],
    }


def page(session: Session, experiment_id: int, *, unit_id: str | None, since: float | None,
         after: int, limit: int) -> dict[str, Any]:
    """Decisions in log order after the cursor `after` (a decision id), with their rewards."""
    query = sa.select(Decision).where(Decision.experiment_id == experiment_id,
                                      Decision.id > after)
    if unit_id is not None:
        query = query.where(Decision.unit_id == unit_id)
    if since is not None:
        query = query.where(Decision.created_at >= since)
    decisions = list(session.scalars(query.order_by(Decision.id).limit(limit)))
    by_decision: dict[int, list[RewardEvent]] = defaultdict(list)
    if decisions:
        events = session.scalars(sa.select(RewardEvent).where(
            RewardEvent.decision_id.in_([d.id for d in decisions])).order_by(RewardEvent.id))
        for event in events:
            by_decision[event.decision_id].append(event)
    return {"decisions": [serialize(d, by_decision[d.id]) for d in decisions],
            "next_after": decisions[-1].id if len(decisions) == limit else None}
