"""The single-slot data plane: rank, reward, activate.

Rank answers 201 with `{"ranking", "eventId", "rewardActionId"}`: every offered action once,
the chosen first, excluded actions last with probability 0 (as Personalizer did). Reward
and activate answer 204.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, current_app, jsonify

from app import db, metrics
from app.auth import current_principal
from app.http import json_body
from app.personalizer import features
from app.personalizer.errors import PersonalizerError
from app.personalizer.routes import experiment, route
from experiments import ranking, rewards
from experiments.errors import Unprocessable
from experiments.models import Experiment


def rank_body(body: Mapping[str, Any], *, context: dict[str, Any] | None = None,
              actions: list[dict[str, Any]] | None = None, excluded: list[str] | None = None,
              event_id: str | None = None) -> dict[str, Any]:
    """Tailor's rank body for a Personalizer request (`None` fields left out)."""
    result: dict[str, Any] = {
        "context": features.merge_features(body.get("contextFeatures"), "contextFeatures")
        if context is None else context,
        "excluded_actions": features.ids(body.get("excludedActions"), "excludedActions")
        if excluded is None else excluded}
    chosen_actions = features.actions(body.get("actions")) if actions is None else actions
    if chosen_actions is not None:
        result["actions"] = chosen_actions
    event_id = body.get("eventId") if event_id is None else event_id
    if event_id is not None:
        result["event_id"] = event_id
    if body.get("deferActivation") is not None:
        result["defer_activation"] = body["deferActivation"]
    return result


def rank_response(answer: Mapping[str, Any], offered: list[str] | None,
                  excluded: list[str]) -> dict[str, Any]:
    """Personalizer's RankResponse: chosen first, excluded last with probability 0."""
    ranked = [{"id": r["id"], "probability": r["probability"]} for r in answer["ranking"]]
    seen = {r["id"] for r in ranked}
    tail = [a for a in (offered or []) if a in excluded and a not in seen]
    body = {"ranking": ranked + [{"id": a, "probability": 0.0} for a in tail],
            "eventId": answer["event_id"], "rewardActionId": answer["action_id"]}
    if answer.get("warnings"):
        body["warnings"] = answer["warnings"]
    return body


def do_rank(target: Experiment, body: dict[str, Any]) -> dict[str, Any]:
    parsed = ranking.parse_request(body, current_app.config["MAX_ACTIONS"])
    principal = current_principal()
    answer = ranking.rank(db.session(), target, parsed,
                          current_app.extensions["tailor.policies"], principal.pii_salt,
                          direct=db.direct())
    metrics.count_decision(principal.team_name, target.key, answer["arm"])
    return answer


@route("POST", "/rank", scope="client", kind="rank", invalid="InvalidRankRequest",
       summary="Personalizer-compatible rank", schema="PersonalizerRankRequest",
       status="201")
def rank() -> tuple[Response, int]:
    target = experiment()
    body = features.body_object(json_body())
    tailor_body = rank_body(body)
    answer = do_rank(target, tailor_body)
    offered = [a["id"] for a in tailor_body.get("actions") or []]
    return jsonify(rank_response(answer, offered, tailor_body["excluded_actions"])), 201


def reward_type(target: Experiment) -> str:
    """The event type a Personalizer reward (a bare value) is recorded as."""
    events = target.config["reward"]["events"]
    if events.get("reward") == "value":
        return "reward"
    for name, rule in events.items():
        if rule == "value":
            return name
    raise Unprocessable(
        f"experiment {target.key!r} has no reward event type that takes a value; add "
        '"reward": "value" to its reward.events to accept Personalizer rewards')


def reward_value(body: Any, field: str = "value") -> float:
    if not isinstance(body, Mapping) or field not in body:
        raise PersonalizerError.invalid(field, "required: the reward value (a number)")
    return body[field]


def store_reward(target: Experiment, event_id: str, value: Any) -> str:
    item = rewards.parse_reward({"type": reward_type(target), "value": value}, event_id)
    return rewards.store_one(rewards.SessionExecutor(db.session()), target.team_id, item,
                             target.id)


@route("POST", "/events/<event_id>/reward", scope="client", kind="reward",
       invalid="InvalidRewardRequest", summary="Personalizer-compatible reward",
       schema="PersonalizerReward", status="204")
def reward(event_id: str) -> Response:
    target = experiment()
    outcome = store_reward(target, event_id, reward_value(json_body()))
    db.session().commit()
    metrics.count_rewards(outcome)
    return Response(status=204)


@route("POST", "/events/<event_id>/activate", scope="client", kind="reward",
       invalid="InvalidEventIdToActivate", summary="Personalizer-compatible activation",
       status="204")
def activate(event_id: str) -> Response:
    target = experiment()
    rewards.activate(db.session(), target.team_id, event_id, target.id)
    return Response(status=204)
