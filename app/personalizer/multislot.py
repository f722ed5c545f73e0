"""The multi-slot data plane: multislot/rank, multislot/events/{eventId}/reward, .../activate.

Each slot is one decision of the experiment (`experiments.slots`: its own id space),
ranked in order over the actions that earlier slots did not take, so slots get distinct
actions. The slot's `features` (and `positionFeatures`, which the SDK README sends) are the
`slot` namespace of its context, so the model learns position effects. The slot's
`baselineAction` is offered first: the `baseline` champion (apprentice and logging modes,
evaluations) is the first offered action.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Response, jsonify

from app import db, metrics
from app.http import json_body
from app.personalizer import bodies, features
from app.personalizer.data import (
    FIELDS,
    defer_of,
    do_rank,
    event_id_of,
    reward_type,
    reward_value,
    value_type,
)
from app.personalizer.errors import PersonalizerError
from app.personalizer.routes import experiment, route
from bandits.features import FeatureTypes
from experiments import held_events, pending, rank_commands
from experiments.limits import ContextLimits
from experiments.models import Experiment
from experiments.services import RankParser
from experiments.slots import activation_key, slot_event_id


@dataclass(frozen=True)
class Slot:
    id: str
    features: dict[str, Any]
    excluded: frozenset[str]
    baseline: str | None


def _slot(slot: Any, index: int, action_ids: set[str], seen: set[str]) -> Slot:
    where = f"slots[{index}]"
    if not isinstance(slot, Mapping):
        raise PersonalizerError.invalid(where, "must be an object")
    slot_id = event_id_of(slot.get("id"), f"{where}.id")
    if slot_id is None or slot_id in seen:
        raise PersonalizerError.invalid(f"{where}.id", "must be a unique non-empty string")
    seen.add(slot_id)
    baseline = slot.get("baselineAction")
    if baseline is not None and baseline not in action_ids:
        raise PersonalizerError.invalid(f"{where}.baselineAction",
                                        "is not one of the actions")
    slot_features = {**features.flat_features(slot.get("features"), f"{where}.features"),
                     **features.flat_features(slot.get("positionFeatures"),
                                              f"{where}.positionFeatures")}
    excluded = features.ids(slot.get("excludedActions"), f"{where}.excludedActions")
    return Slot(slot_id, slot_features, frozenset(excluded), baseline)


def _slots(body: Mapping[str, Any], action_ids: set[str]) -> list[Slot]:
    slots = body.get("slots")
    if not isinstance(slots, list) or not slots:
        raise PersonalizerError.invalid("slots", "must be a non-empty list of slots")
    seen: set[str] = set()
    return [_slot(slot, index, action_ids, seen) for index, slot in enumerate(slots)]


def _offered(actions: list[dict[str, Any]], slot: Slot, taken: list[str],
             index: int) -> list[dict[str, Any]]:
    """The slot's actions: not excluded, not taken by an earlier slot, baseline first."""
    available = [a for a in actions if a["id"] not in slot.excluded and a["id"] not in taken]
    if not available:
        raise PersonalizerError.invalid(f"slots[{index}]", "no action left to rank: every "
                                        "action is excluded or taken by an earlier slot")
    first = next((a for a in available if a["id"] == slot.baseline), available[0])
    return [first, *(a for a in available if a is not first)]


def _rank_slots(target: Experiment, body: Mapping[str, Any],
                event_id: str) -> list[dict[str, Any]]:
    actions = features.actions(body.get("actions"))
    if not actions:
        raise PersonalizerError.invalid("actions", "required: a non-empty list of actions")
    slots = _slots(body, {a["id"] for a in actions})
    context = features.merge_features(body.get("contextFeatures"), "contextFeatures")
    defer, taken, answers = defer_of(body), [], []
    for index, slot in enumerate(slots):
        offered = _offered(actions, slot, taken, index)
        answer = do_rank(target, _slot_parser(context, slot, offered, event_id, defer))
        taken.append(answer["action_id"])
        answers.append({"id": slot.id, "rewardActionId": answer["action_id"],
                        "probability": answer["probability"],
                        "baselineAction": offered[0]["id"]})
    return answers


def _slot_parser(context: Mapping[str, Any], slot: Any, offered: list[dict[str, Any]],
                 event_id: str, defer: bool) -> RankParser:
    """One slot's rank command, built with the experiment's feature types and limits."""
    def parse(types: FeatureTypes, max_actions: int,
              limits: ContextLimits) -> rank_commands.RankCommand:
        return rank_commands.command({**context, "slot": {**slot.features, "id": slot.id}},
                               offered, [], event_id, defer, max_actions, FIELDS, slot.id,
                               limits=limits, types=types)
    return parse


@route("POST", "/multislot/rank", scope="client", kind="rank", invalid="InvalidRankRequest",
       summary="Personalizer-compatible multi-slot rank",
       schema=bodies.PersonalizerMultiSlotRankRequest, status="201")
def multislot_rank() -> tuple[Response, int]:
    target = experiment()
    body = features.body_object(json_body())
    event_id = event_id_of(body.get("eventId")) or uuid.uuid4().hex
    answers = _rank_slots(target, body, event_id)
    decisions = [slot_event_id(event_id, a["id"]) for a in answers]
    pending.apply(db.session(), target,
                  [*((d, d) for d in decisions),
                   *((activation_key(event_id), d) for d in decisions)],
                  value_type(target))
    return jsonify({"slots": answers, "eventId": event_id}), 201


def _slot_rewards(body: Any) -> list[tuple[str, float]]:
    items = body.get("reward") if isinstance(body, Mapping) else None
    if not isinstance(items, list) or not items:
        raise PersonalizerError.invalid("reward", "must be a non-empty list of slot rewards")
    result = []
    for index, item in enumerate(items):
        slot_id = item.get("slotId") if isinstance(item, Mapping) else None
        if not isinstance(slot_id, str) or not slot_id or len(slot_id) > 256:
            raise PersonalizerError.invalid(f"reward[{index}].slotId", "must be a slot id")
        result.append((slot_id, reward_value(item, f"reward[{index}].value")))
    return result


@route("POST", "/multislot/events/<event_id>/reward", scope="client", kind="reward",
       invalid="InvalidRewardRequest", summary="Personalizer-compatible multi-slot reward",
       schema=bodies.PersonalizerMultiSlotReward, status="204")
def multislot_reward(event_id: str) -> Response:
    target = experiment()
    event_id_of(event_id)
    items = tuple(_slot_rewards(json_body()))
    done = held_events.record_slot_rewards(db.session(), held_events.RecordSlotRewards(
        target, event_id, reward_type(target), items))
    for outcome in done.outcomes:
        metrics.count_rewards(outcome)
    if done.unknown:
        raise _unknown_slots(event_id, done.unknown, len(done.outcomes))
    return Response(status=204)


def _unknown_slots(event_id: str, unknown: tuple[tuple[int, str], ...],
                   stored: int) -> PersonalizerError:
    details = [{"code": "InvalidRewardRequest", "target": f"reward[{index}].slotId",
                "message": f"event {event_id!r} has no slot {slot_id!r}"}
               for index, slot_id in unknown]
    return PersonalizerError(
        400, "InvalidRewardRequest",
        f"unknown slot id(s) {', '.join(repr(s) for _, s in unknown)} for event "
        f"{event_id!r}; the rewards of the other {stored} slot(s) were stored",
        target=details[0]["target"], details=details, inner="unknown_slot")


@route("POST", "/multislot/events/<event_id>/activate", scope="client", kind="reward",
       invalid="InvalidEventIdToActivate",
       summary="Personalizer-compatible multi-slot activation", status="204")
def multislot_activate(event_id: str) -> Response:
    target = experiment()
    event_id_of(event_id)
    held_events.activate_slots(db.session(), held_events.Activate(target, event_id))
    return Response(status=204)
