"""Azure AI Personalizer-compatible endpoints (`/personalizer/<version>/...`).

Served under `/personalizer/v1.0` and `/personalizer/v1.1-preview.3`.
A Personalizer client changes only its base URL and key. Each call maps onto one Tailor
experiment: the one named by the `X-Tailor-Experiment` header, else the key's default
experiment. Shapes follow Personalizer's public REST specification (v1.0 for rank,
reward and activate; v1.1-preview for multi-slot): camelCase fields, feature *lists*,
201 for rank, 204 for reward and activate, and errors as
`{"error": {"code": "BadRequest", "message": ..., "innerError": {"code": <ours>}}}`.

Mapping: the objects of `contextFeatures` (and of an action's `features`) merge into one
dict; an object value becomes a namespace; anything nested deeper is flattened into
dotted keys inside that namespace (`{"user": {"geo": {"city": "X"}}}` → namespace `user`,
feature `geo.city`), and lists of numbers or objects into indexed keys (`emb[0]`).
Excluded actions are listed last in `ranking` with probability 0, as Personalizer does.
Multi-slot: each slot is one decision of the experiment, event id `<eventId>:<slotId>`,
ranked in order with the slot's features in the `slot` namespace and without the actions
earlier slots took.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app, json, jsonify, request

from app import db, metrics
from app.auth import current_principal, requires
from app.http import context_limits, json_body
from experiments import ranking, registry, rewards
from experiments.errors import NotFound, Unprocessable, ValidationFailed
from experiments.models import Decision, Experiment

bp = Blueprint("personalizer", __name__)
PREFIX = "/personalizer/"
# The REST versions served (same shapes): v1.0 (the stable API and the older SDKs) and
# v1.1-preview.3 (what the newer azure-ai-personalizer SDKs call).
API_VERSIONS = {"v1.0": "personalizer", "v1.1-preview.3": "personalizer_preview"}

EXPERIMENT_HEADER = "X-Tailor-Experiment"
RANK_FIELDS = {"contextFeatures", "actions", "excludedActions", "eventId", "deferActivation"}
MULTISLOT_FIELDS = {"contextFeatures", "actions", "slots", "eventId", "deferActivation"}
SLOT_FIELDS = {"id", "features", "excludedActions", "baselineAction"}
ERROR_CODES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden",
               404: "ResourceNotFound", 405: "MethodNotAllowed", 409: "Conflict",
               413: "PayloadTooLarge", 415: "UnsupportedMediaType", 422: "BadRequest",
               429: "TooManyRequests", 503: "ServiceUnavailable"}


# ---- shapes: Personalizer JSON → Tailor's rank body ------------------------------------

def _flatten(out: dict[str, Any], prefix: str, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(out, f"{prefix}.{key}" if prefix else str(key), inner)
    elif isinstance(value, list) and not all(isinstance(item, str) for item in value):
        for index, item in enumerate(value):
            _flatten(out, f"{prefix}[{index}]", item)
    else:
        out[prefix] = value


def merge_features(items: Any, field: str) -> dict[str, Any]:
    """A Personalizer feature list (`[{"a": 1}, {"user": {...}}]`) → one features dict."""
    if items is None:
        return {}
    if isinstance(items, Mapping):
        items = [items]
    if not isinstance(items, list):
        raise ValidationFailed.field(field, "must be a list of objects")
    merged: dict[str, Any] = {}
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValidationFailed.field(f"{field}[{index}]", "must be an object")
        for key, value in item.items():
            if isinstance(value, Mapping):
                namespace = merged[key] if isinstance(merged.get(key), dict) else {}
                _flatten(namespace, "", value)
                merged[key] = namespace
            else:
                _flatten(merged, key, value)
    return merged


def _actions(items: Any) -> list[dict[str, Any]] | None:
    if items is None:
        return None
    if not isinstance(items, list):
        raise ValidationFailed.field("actions", "must be a list of actions")
    result = []
    for index, action in enumerate(items):
        if not isinstance(action, Mapping):
            raise ValidationFailed.field(f"actions[{index}]", "must be an object")
        result.append({"id": action.get("id"),
                       "features": merge_features(action.get("features"),
                                                  f"actions[{index}].features")})
    return result


def _known(body: Any, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise ValidationFailed.field("body", "must be a JSON object")
    for field in sorted(set(body) - allowed):
        raise ValidationFailed.field(field, "unknown field")
    return body


def _list_of_ids(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationFailed.field(field, "must be a list of action ids")
    return value


def rank_body(body: Mapping[str, Any], *, context: dict[str, Any] | None = None,
              actions: list[dict[str, Any]] | None = None, excluded: list[str] | None = None,
              event_id: str | None = None) -> dict[str, Any]:
    """Tailor's rank body for a Personalizer request (`None` fields left out)."""
    result: dict[str, Any] = {
        "context": merge_features(body.get("contextFeatures"), "contextFeatures")
        if context is None else context,
        "excluded_actions": _list_of_ids(body.get("excludedActions"), "excludedActions")
        if excluded is None else excluded}
    chosen_actions = _actions(body.get("actions")) if actions is None else actions
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


# ---- views --------------------------------------------------------------------------

def _experiment() -> Experiment:
    principal = current_principal()
    key = request.headers.get(EXPERIMENT_HEADER) or principal.default_experiment
    if not key:
        raise ValidationFailed(
            f"no experiment: send the {EXPERIMENT_HEADER} header or use a key created with "
            "a default experiment (tailor keys create ... --experiment KEY)",
            [{"field": EXPERIMENT_HEADER, "message": "required"}])
    return registry.get(db.session(), principal.team_id, key)


def _rank(experiment: Experiment, body: dict[str, Any]) -> dict[str, Any]:
    parsed = ranking.parse_request(body, current_app.config["MAX_ACTIONS"], context_limits())
    principal = current_principal()
    answer = ranking.rank(db.session(), experiment, parsed,
                          current_app.extensions["tailor.policies"], principal.pii_salt,
                          direct=db.direct())
    metrics.count_decision(principal.team_name, experiment.key, answer["arm"])
    return answer


@bp.post("/rank")
@requires("client")
def rank():
    experiment = _experiment()
    body = _known(json_body(), RANK_FIELDS)
    tailor_body = rank_body(body)
    answer = _rank(experiment, tailor_body)
    offered = [a["id"] for a in tailor_body.get("actions") or []]
    return jsonify(rank_response(answer, offered, tailor_body["excluded_actions"])), 201


def _reward_type(experiment: Experiment) -> str:
    """The event type a Personalizer reward (a bare value) is recorded as."""
    events = experiment.config["reward"]["events"]
    if events.get("reward") == "value":
        return "reward"
    for name, rule in events.items():
        if rule == "value":
            return name
    raise Unprocessable(
        f"experiment {experiment.key!r} has no reward event type that takes a value; add "
        '"reward": "value" to its reward.events to accept Personalizer rewards')


def _value(body: Any, field: str = "value") -> float:
    if not isinstance(body, Mapping) or field not in body:
        raise ValidationFailed.field(field, "required: the reward value (a number)")
    return body[field]


def _store_reward(experiment: Experiment, event_id: str, value: Any) -> str:
    item = rewards.parse_reward({"type": _reward_type(experiment), "value": value}, event_id)
    return rewards.store_one(rewards.SessionExecutor(db.session()), experiment.team_id, item,
                             experiment.id)


@bp.post("/events/<event_id>/reward")
@requires("client")
def reward(event_id: str):
    experiment = _experiment()
    outcome = _store_reward(experiment, event_id, _value(json_body()))
    db.session().commit()
    metrics.count_rewards(outcome)
    return Response(status=204)


@bp.post("/events/<event_id>/activate")
@requires("client")
def activate(event_id: str):
    experiment = _experiment()
    rewards.activate(db.session(), experiment.team_id, event_id, experiment.id)
    return Response(status=204)


def _slots(body: Mapping[str, Any], catalog: list[str]) -> list[Mapping[str, Any]]:
    slots = body.get("slots")
    if not isinstance(slots, list) or not slots:
        raise ValidationFailed.field("slots", "must be a non-empty list of slots")
    seen: set[str] = set()
    for index, slot in enumerate(slots):
        where = f"slots[{index}]"
        slot = _known(slot, SLOT_FIELDS)
        slot_id = slot.get("id")
        if not isinstance(slot_id, str) or not slot_id or slot_id in seen:
            raise ValidationFailed.field(f"{where}.id", "must be a unique non-empty string")
        seen.add(slot_id)
        baseline = slot.get("baselineAction")
        if baseline is not None and catalog and baseline not in catalog:
            raise ValidationFailed.field(f"{where}.baselineAction", "is not one of the actions")
    return slots


def _slot_context(context: dict[str, Any], slot: Mapping[str, Any], index: int) -> dict:
    features = merge_features(slot.get("features"), f"slots[{index}].features")
    flat: dict[str, Any] = {}
    _flatten(flat, "", features)
    return {**context, "slot": {**flat, "id": slot["id"]}}


@bp.post("/multislot/rank")
@requires("client")
def multislot_rank():
    experiment = _experiment()
    body = _known(json_body(), MULTISLOT_FIELDS)
    actions = _actions(body.get("actions"))
    if not actions:
        raise ValidationFailed.field("actions", "required: a non-empty list of actions")
    slots = _slots(body, [str(a["id"]) for a in actions])
    context = merge_features(body.get("contextFeatures"), "contextFeatures")
    event_id = body.get("eventId") or uuid.uuid4().hex
    if not isinstance(event_id, str):
        raise ValidationFailed.field("eventId", "must be a string")
    taken: list[str] = []
    answers = []
    for index, slot in enumerate(slots):
        excluded = _list_of_ids(slot.get("excludedActions"), f"slots[{index}].excludedActions")
        if all(a["id"] in taken or a["id"] in excluded for a in actions):
            raise Unprocessable(f"slot {slot['id']!r} has no action left to rank")
        slot_body = rank_body(body, context=_slot_context(context, slot, index),
                              actions=actions, excluded=sorted(set(excluded) | set(taken)),
                              event_id=f"{event_id}:{slot['id']}")
        answer = _rank(experiment, slot_body)
        taken.append(answer["action_id"])
        answers.append({"id": slot["id"], "rewardActionId": answer["action_id"],
                        "probability": answer["probability"]})
    return jsonify({"slots": answers, "eventId": event_id}), 201


@bp.post("/multislot/events/<event_id>/reward")
@requires("client")
def multislot_reward(event_id: str):
    experiment = _experiment()
    body = json_body()
    items = body.get("reward") if isinstance(body, Mapping) else None
    if not isinstance(items, list) or not items:
        raise ValidationFailed.field("reward", "must be a non-empty list of slot rewards")
    outcomes = []
    for index, item in enumerate(items):
        slot_id = item.get("slotId") if isinstance(item, Mapping) else None
        if not isinstance(slot_id, str) or not slot_id:
            raise ValidationFailed.field(f"reward[{index}].slotId", "must be a slot id")
        outcomes.append(_store_reward(experiment, f"{event_id}:{slot_id}", _value(item)))
    db.session().commit()
    for outcome in outcomes:
        metrics.count_rewards(outcome)
    return Response(status=204)


@bp.post("/multislot/events/<event_id>/activate")
@requires("client")
def multislot_activate(event_id: str):
    experiment = _experiment()
    session = db.session()
    slot_events = list(session.scalars(sa.select(Decision.event_id).where(
        Decision.experiment_id == experiment.id,
        Decision.event_id.startswith(f"{event_id}:", autoescape=True))))
    if not slot_events:
        raise NotFound(f"unknown eventId {event_id!r}: no multi-slot decision was logged")
    for slot_event in slot_events:
        rewards.activate(session, experiment.team_id, slot_event, experiment.id)
    return Response(status=204)


@bp.after_app_request
def _personalizer_errors(response: Response) -> Response:
    """Our JSON errors in Personalizer's shape (same envelope, its codes; ours inside), for
    every path under the prefix, unknown routes and methods included."""
    if response.status_code < 400 or not response.is_json \
            or not request.path.startswith(PREFIX):
        return response
    error = (response.get_json(silent=True) or {}).get("error") or {}
    code = ERROR_CODES.get(response.status_code, "InternalServerError")
    converted: dict[str, Any] = {"code": code, "message": error.get("message", ""),
                                 "innerError": {"code": error.get("code", "error")}}
    details = error.get("details") or []
    if details:
        converted["details"] = [{"code": code, "message": d.get("message", ""),
                                 "target": d.get("field")} for d in details]
    response.set_data(json.dumps({"error": converted}))
    return response


def init_app(app: Flask) -> None:
    """Serve the endpoints under every supported API version."""
    for version, name in API_VERSIONS.items():
        app.register_blueprint(bp, url_prefix=f"{PREFIX}{version}", name=name)
