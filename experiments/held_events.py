"""Rewards and activations of the Personalizer API, single- and multi-slot: applied to their
decision now, or held for a decision not known yet (`experiments.pending`), as Personalizer
answered 204 whatever the event id. Each service owns its transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from experiments import pending, rewards
from experiments.errors import NotFound
from experiments.models import Experiment
from experiments.slots import activation_key, slot_decisions, slot_event_id


@dataclass(frozen=True)
class RecordReward:
    """A reward value for the decision `event_id`, recorded as event type `kind`."""

    experiment: Experiment
    event_id: str
    kind: str
    value: float


@dataclass(frozen=True)
class Activate:
    """Activate the decision `event_id` (its reward window starts now)."""

    experiment: Experiment
    event_id: str


@dataclass(frozen=True)
class RecordSlotRewards:
    """Rewards `(slot id, value)` for the slots of multi-slot event `event_id`."""

    experiment: Experiment
    event_id: str
    kind: str
    items: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class SlotOutcomes:
    """What became of each slot reward: outcomes of those stored or held, and the
    `(index, slot id)` of those naming a slot the event does not have."""

    outcomes: tuple[str, ...]
    unknown: tuple[tuple[int, str], ...]


def record_reward(session: Session, command: RecordReward) -> str:
    """Store the reward, or hold it for a decision not known yet ("pending"); commits."""
    target = command.experiment
    reward = rewards.RewardCommand(command.event_id, command.kind, command.value, None)
    try:
        outcome = rewards.store_one(rewards.SessionExecutor(session), target.team_id, reward,
                                    target.id)
    except NotFound:
        pending.hold(session, target, command.event_id, "reward", command.value)
        outcome = "pending"
    session.commit()
    return outcome


def activate(session: Session, command: Activate) -> None:
    """Activate the decision, or hold the activation for one not known yet; commits."""
    target = command.experiment
    try:
        rewards.activate(session, target.team_id, command.event_id, target.id, commit=False)
    except NotFound:
        pending.hold(session, target, command.event_id, "activate")
    session.commit()


def record_slot_rewards(session: Session, command: RecordSlotRewards) -> SlotOutcomes:
    """Store each slot's reward (all held while the event is not known yet); the rewards of
    known slots are kept even when others name unknown slots. Commits."""
    target, event_id = command.experiment, command.event_id
    slots = slot_decisions(session, target.id, event_id)
    executor = rewards.SessionExecutor(session)
    outcomes: list[str] = []
    unknown: list[tuple[int, str]] = []
    for index, (slot_id, value) in enumerate(command.items):
        if not slots:  # the event is not known yet: every slot's reward waits for it
            pending.hold(session, target, slot_event_id(event_id, slot_id), "reward", value)
            outcomes.append("pending")
        elif slot_id in slots:
            outcomes.append(rewards.store_one(executor, target.team_id, rewards.RewardCommand(
                slots[slot_id], command.kind, value, None), target.id))
        else:
            unknown.append((index, slot_id))
    session.commit()
    return SlotOutcomes(tuple(outcomes), tuple(unknown))


def activate_slots(session: Session, command: Activate) -> None:
    """Activate every slot's decision of multi-slot event `event_id`, or hold the
    activation for an event not known yet; commits."""
    target = command.experiment
    slots = slot_decisions(session, target.id, command.event_id)
    if not slots:
        pending.hold(session, target, activation_key(command.event_id), "activate")
    for slot_event in slots.values():
        rewards.activate(session, target.team_id, slot_event, target.id, commit=False)
    session.commit()
