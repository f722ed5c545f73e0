"""The multi-slot data plane: multislot/rank, multislot/events/{eventId}/reward, .../activate.

Each slot is one decision of the experiment, ranked in order with the slot's features in
the `slot` namespace and without the actions earlier slots took.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import Response, jsonify

from app import db, metrics
from app.http import json_body
from app.personalizer import features
from app.personalizer.data import do_rank, rank_body, reward_value, store_reward
from app.personalizer.errors import PersonalizerError
from app.personalizer.routes import experiment, route
from experiments import rewards
from experiments.errors import NotFound, Unprocessable
from experiments.models import Decision


def _slots(body: Mapping[str, Any], catalog: list[str]) -> list[Mapping[str, Any]]:
    slots = body.get("slots")
    if not isinstance(slots, list) or not slots:
        raise PersonalizerError.invalid("slots", "must be a non-empty list of slots")
    seen: set[str] = set()
    for index, slot in enumerate(slots):
        where = f"slots[{index}]"
        if not isinstance(slot, Mapping):
            raise PersonalizerError.invalid(where, "must be an object")
        slot_id = slot.get("id")
        if not isinstance(slot_id, str) or not slot_id or slot_id in seen:
            raise PersonalizerError.invalid(f"{where}.id", "must be a unique non-empty string")
        seen.add(slot_id)
        baseline = slot.get("baselineAction")
        if baseline is not None and catalog and baseline not in catalog:
            raise PersonalizerError.invalid(f"{where}.baselineAction",
                                            "is not one of the actions")
    return slots


def _slot_context(context: dict[str, Any], slot: Mapping[str, Any], index: int) -> dict:
    flat = features.flat_features(slot.get("features"), f"slots[{index}].features")
    return {**context, "slot": {**flat, "id": slot["id"]}}


@route("POST", "/multislot/rank", scope="client", kind="rank", invalid="InvalidRankRequest",
       summary="Personalizer-compatible multi-slot rank",
       schema="PersonalizerMultiSlotRankRequest", status="201")
def multislot_rank() -> tuple[Response, int]:
    target = experiment()
    body = features.body_object(json_body())
    actions = features.actions(body.get("actions"))
    if not actions:
        raise PersonalizerError.invalid("actions", "required: a non-empty list of actions")
    slots = _slots(body, [str(a["id"]) for a in actions])
    context = features.merge_features(body.get("contextFeatures"), "contextFeatures")
    event_id = body.get("eventId") or uuid.uuid4().hex
    if not isinstance(event_id, str):
        raise PersonalizerError.invalid("eventId", "must be a string")
    taken: list[str] = []
    answers = []
    for index, slot in enumerate(slots):
        excluded = features.ids(slot.get("excludedActions"),
                                f"slots[{index}].excludedActions")
        if all(a["id"] in taken or a["id"] in excluded for a in actions):
            raise Unprocessable(f"slot {slot['id']!r} has no action left to rank")
        slot_body = rank_body(body, context=_slot_context(context, slot, index),
                              actions=actions, excluded=sorted(set(excluded) | set(taken)),
                              event_id=f"{event_id}:{slot['id']}")
        answer = do_rank(target, slot_body)
        taken.append(answer["action_id"])
        answers.append({"id": slot["id"], "rewardActionId": answer["action_id"],
                        "probability": answer["probability"]})
    return jsonify({"slots": answers, "eventId": event_id}), 201


@route("POST", "/multislot/events/<event_id>/reward", scope="client", kind="reward",
       invalid="InvalidRewardRequest", summary="Personalizer-compatible multi-slot reward",
       schema="PersonalizerMultiSlotReward", status="204")
def multislot_reward(event_id: str) -> Response:
    target = experiment()
    body = json_body()
    items = body.get("reward") if isinstance(body, Mapping) else None
    if not isinstance(items, list) or not items:
        raise PersonalizerError.invalid("reward", "must be a non-empty list of slot rewards")
    outcomes = []
    for index, item in enumerate(items):
        slot_id = item.get("slotId") if isinstance(item, Mapping) else None
        if not isinstance(slot_id, str) or not slot_id:
            raise PersonalizerError.invalid(f"reward[{index}].slotId", "must be a slot id")
        outcomes.append(store_reward(target, f"{event_id}:{slot_id}", reward_value(item)))
    db.session().commit()
    for outcome in outcomes:
        metrics.count_rewards(outcome)
    return Response(status=204)


@route("POST", "/multislot/events/<event_id>/activate", scope="client", kind="reward",
       invalid="InvalidEventIdToActivate",
       summary="Personalizer-compatible multi-slot activation", status="204")
def multislot_activate(event_id: str) -> Response:
    target = experiment()
    session = db.session()
    slot_events = list(session.scalars(sa.select(Decision.event_id).where(
        Decision.experiment_id == target.id,
        Decision.event_id.startswith(f"{event_id}:", autoescape=True))))
    if not slot_events:
        raise NotFound(f"unknown eventId {event_id!r}: no multi-slot decision was logged")
    for slot_event in slot_events:
        rewards.activate(session, target.team_id, slot_event, target.id)
    return Response(status=204)
