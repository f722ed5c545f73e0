"""The single-slot data plane: rank, reward, activate.

An adapter over the same services as Tailor's own API: the request is read into a typed
rank command (`experiments.rank_commands.command`) or reward, never into a v1 body. Rank answers
201 with `{"ranking", "eventId", "rewardActionId"}`: every offered action once, the chosen
first, excluded actions last with probability 0 (as Personalizer did). Reward and activate
answer 204, also for an event id not known yet: it is kept for the reward window and
joined if its decision arrives (`experiments.pending`), as Personalizer did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from flask import Response, current_app, jsonify

from app import db, hot, metrics
from app.auth import current_principal
from app.http import json_body
from app.personalizer import bodies, features
from app.personalizer.errors import PersonalizerError
from app.personalizer.routes import experiment, route
from bandits.features import FeatureTypes
from experiments import held_events, pending, rank_commands
from experiments.limits import ContextLimits
from experiments.models import Experiment
from experiments.services import RankParser, RankService

FIELDS = {"context": "contextFeatures", "actions": "actions", "event_id": "eventId"}


def defer_of(body: Mapping[str, Any]) -> bool:
    value = body.get("deferActivation")
    if value is None:
        return False
    if not isinstance(value, bool):
        raise PersonalizerError.invalid("deferActivation", "must be true or false")
    return value


def event_id_of(value: Any, field: str = "eventId") -> str | None:
    """A client's event id (None: absent), as Personalizer limited it (256 characters)."""
    return rank_commands.event_id_of(value, field)


def do_rank(target: Experiment, parse: RankParser) -> dict[str, Any]:
    """Rank through the app's one RankService, as the v1 rank does: its experiment cache,
    the unit's profile, the key's revocation checked by the write."""
    principal = current_principal()
    service: RankService = current_app.extensions[hot.SERVICES].ranks
    answer = service.rank(hot.caller(principal), target.key, parse)
    metrics.count_decision(principal.team_name, target.key, answer["arm"])
    return answer


def rank_response(answer: Mapping[str, Any], offered: list[str],
                  excluded: list[str]) -> dict[str, Any]:
    """Personalizer's RankResponse: chosen first, excluded last with probability 0."""
    ranked = [{"id": r["id"], "probability": r["probability"]} for r in answer["ranking"]]
    seen = {r["id"] for r in ranked}
    tail = [a for a in dict.fromkeys(offered) if a in excluded and a not in seen]
    body = {"ranking": ranked + [{"id": a, "probability": 0.0} for a in tail],
            "eventId": answer["event_id"], "rewardActionId": answer["action_id"]}
    if answer.get("warnings"):
        body["warnings"] = answer["warnings"]
    return body


@route("POST", "/rank", scope="client", kind="rank", invalid="InvalidRankRequest",
       summary="Personalizer-compatible rank (experiment: X-Tailor-Experiment header or "
       "the key's default)", schema=bodies.PersonalizerRankRequest, status="201")
def rank() -> tuple[Response, int]:
    target = experiment()
    body = features.body_object(json_body())
    actions = features.actions(body.get("actions"))
    excluded = features.ids(body.get("excludedActions"), "excludedActions")
    context = features.merge_features(body.get("contextFeatures"), "contextFeatures")
    event_id, defer = event_id_of(body.get("eventId")), defer_of(body)

    def parse(types: FeatureTypes, max_actions: int,
              limits: ContextLimits) -> rank_commands.RankCommand:
        return rank_commands.command(context, actions, excluded, event_id, defer, max_actions,
                               FIELDS, limits=limits, types=types)

    answer = do_rank(target, parse)
    pending.apply(db.session(), target, [(answer["event_id"], answer["event_id"])],
                  value_type(target))
    offered = [a["id"] for a in actions or target.settings.actions or ()]
    return jsonify(rank_response(answer, offered, excluded)), 201


def value_type(target: Experiment) -> str | None:
    """The event type a Personalizer reward (a bare value) is recorded as (None: none)."""
    events = target.settings.reward.events
    if events.get("reward") == "value":
        return "reward"
    return next((name for name, rule in events.items() if rule == "value"), None)


def reward_type(target: Experiment) -> str:
    kind = value_type(target)
    if kind is None:
        raise PersonalizerError.invalid(
            "value", f"experiment {target.key!r} has no reward event type that takes a "
            'value; add "reward": "value" to its reward.events to accept Personalizer '
            "rewards")
    return kind


def reward_value(body: Any, field: str = "value") -> float:
    value = body.get("value") if isinstance(body, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value):
        raise PersonalizerError.invalid(field, "required: the reward value (a number)")
    return float(value)


@route("POST", "/events/<event_id>/reward", scope="client", kind="reward",
       invalid="InvalidRewardRequest", summary="Personalizer-compatible reward",
       schema=bodies.PersonalizerReward, status="204")
def reward(event_id: str) -> Response:
    target = experiment()
    event_id_of(event_id)
    value = reward_value(json_body())
    outcome = held_events.record_reward(db.session(), held_events.RecordReward(
        target, event_id, reward_type(target), value))
    metrics.count_rewards(outcome)
    return Response(status=204)


@route("POST", "/events/<event_id>/activate", scope="client", kind="reward",
       invalid="InvalidEventIdToActivate", summary="Personalizer-compatible activation",
       status="204")
def activate(event_id: str) -> Response:
    target = experiment()
    event_id_of(event_id)
    held_events.activate(db.session(), held_events.Activate(target, event_id))
    return Response(status=204)
