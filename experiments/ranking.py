"""Rank: choose an action for a context, and log the decision durably before answering.

assign arm → the arm's policy gives a pmf → sample with a PRNG seeded by the event id →
write the decision row (context, offered actions, full pmf, propensity) → commit → answer.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bandits.features import FeatureError, validate_context
from bandits.policy import rng_for, sample_index
from experiments import clock, pii
from experiments.assignment import assign_arm
from experiments.errors import Conflict, Unprocessable, ValidationFailed
from experiments.models import Decision, Experiment
from experiments.policies import PolicyCache, arm_spec, champion_spec
from experiments.validation import validate_actions

RANK_FIELDS = {"context", "actions", "excluded_actions", "event_id", "unit_id",
               "defer_activation"}
MAX_EVENT_ID = 128


@dataclass(frozen=True)
class RankRequest:
    context: dict[str, Any]
    actions: list[dict[str, Any]] | None
    excluded: frozenset[str]
    event_id: str | None
    unit_id: str | None
    defer_activation: bool
    request_hash: str


def parse_request(body: Any, max_actions: int) -> RankRequest:
    """Validate a rank body (shape only; the experiment's rules come later)."""
    if not isinstance(body, Mapping):
        raise ValidationFailed.field("body", "must be a JSON object")
    unknown = sorted(set(body) - RANK_FIELDS)
    if unknown:
        raise ValidationFailed.field(unknown[0], "unknown field")
    context = body.get("context", {})
    if not isinstance(context, Mapping):
        raise ValidationFailed.field("context", "must be an object")
    try:
        validate_context(context)
    except FeatureError as exc:
        raise ValidationFailed.field(exc.path, exc.reason) from exc
    actions = body.get("actions")
    if actions is not None:
        if isinstance(actions, list) and len(actions) > max_actions:
            raise ValidationFailed.field("actions", f"at most {max_actions} actions")
        actions = validate_actions(actions)
    return RankRequest(
        context=dict(context), actions=actions, excluded=_excluded(body),
        event_id=_optional_string(body, "event_id", MAX_EVENT_ID),
        unit_id=_optional_string(body, "unit_id", 256),
        defer_activation=_bool(body, "defer_activation"),
        request_hash=hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest())


def _excluded(body: Mapping[str, Any]) -> frozenset[str]:
    excluded = body.get("excluded_actions", [])
    if not isinstance(excluded, list) or not all(isinstance(a, str) for a in excluded):
        raise ValidationFailed.field("excluded_actions", "must be a list of action ids")
    return frozenset(excluded)


def _optional_string(body: Mapping[str, Any], field: str, max_len: int) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ValidationFailed.field(field, f"must be a non-empty string of at most {max_len}")
    return value


def _bool(body: Mapping[str, Any], field: str) -> bool:
    value = body.get(field, False)
    if not isinstance(value, bool):
        raise ValidationFailed.field(field, "must be true or false")
    return value


def offered_actions(config: Mapping[str, Any], request: RankRequest) -> list[dict[str, Any]]:
    """Inline actions (features filled from the catalog when omitted) or the catalog,
    minus the excluded ones."""
    catalog = {a["id"]: a for a in config.get("actions") or []}
    if request.actions is None:
        if not catalog:
            raise ValidationFailed.field(
                "actions", "required: this experiment has no action catalog")
        actions = list(catalog.values())
    else:
        actions = [a if a["features"] or a["id"] not in catalog else catalog[a["id"]]
                   for a in request.actions]
    remaining = [a for a in actions if a["id"] not in request.excluded]
    if not remaining:
        raise Unprocessable("every action is excluded: nothing to rank")
    return remaining


def _unit(config: Mapping[str, Any], request: RankRequest) -> str | None:
    if request.unit_id is not None:
        return request.unit_id
    field = config.get("unit_field")
    value = request.context.get(field) if field else None
    return None if value is None or isinstance(value, Mapping | list) else str(value)


def choose_arm(experiment: Experiment, unit: str | None, event_id: str) -> tuple[str, str]:
    """(arm, phase): paused experiments and apprentice mode serve the champion."""
    config = experiment.config
    if experiment.status == "paused":
        return "champion", "paused"
    if config["learner"]["mode"] == "apprentice":
        return "champion", "apprentice"
    return assign_arm(experiment.key, unit or f"event:{event_id}", config["arms"]), "online"


def rank(session: Session, experiment: Experiment, request: RankRequest,
         policies: PolicyCache, pii_salt: str) -> dict[str, Any]:
    """Choose, log durably (commit), and answer. Idempotent by event id."""
    if experiment.status not in ("running", "paused"):
        raise Conflict(f"experiment {experiment.key!r} is {experiment.status}; "
                       "rank needs running or paused")
    config = experiment.config
    if request.event_id is not None:
        previous = find_decision(session, experiment.id, request.event_id)
        if previous is not None:
            return _replay(previous, request)
    actions = offered_actions(config, request)
    context = pii.protect(request.context, config["pii_fields"], config["pii_mode"], pii_salt)
    unit = _unit(config, request)
    if unit is not None and config.get("unit_field") in config["pii_fields"]:
        unit = pii.keyed_hash(pii_salt, unit)
    event_id = request.event_id or uuid.uuid4().hex
    arm, phase = choose_arm(experiment, unit, event_id)
    spec = arm_spec(config, arm)
    policy = policies.resolve(session, experiment, spec)
    pairs = [(a["id"], a["features"]) for a in actions]
    pmf = policy.pmf(context, pairs)
    chosen = sample_index(pmf, rng_for(event_id))
    decision = _decision(experiment, request, event_id, arm, spec, phase, unit, context,
                         actions, pmf, chosen, getattr(policy, "version", None))
    return _commit(session, decision, request)


def _decision(experiment: Experiment, request: RankRequest, event_id: str, arm: str,
              spec: str, phase: str, unit: str | None, context: dict[str, Any],
              actions: list[dict[str, Any]], pmf: list[float], chosen: int,
              model_version: int | None) -> Decision:
    now = clock.now()
    window = experiment.config["reward"]["window_seconds"]
    active = not request.defer_activation
    policy_name = f"model:{model_version}" if spec == "bandit" else spec
    return Decision(
        experiment_id=experiment.id, event_id=event_id, request_hash=request.request_hash,
        arm=arm, policy=policy_name[:160], model_version=model_version,
        experiment_version=experiment.version, phase=phase, unit_id=unit, context=context,
        actions=actions, pmf=pmf, chosen_index=chosen, action_id=actions[chosen]["id"],
        propensity=pmf[chosen], deferred=request.defer_activation,
        activated_at=now if active else None, closes_at=now + window if active else None,
        reward=None, reward_count=0, created_at=now)


def _commit(session: Session, decision: Decision, request: RankRequest) -> dict[str, Any]:
    session.add(decision)
    try:
        session.commit()
    except IntegrityError:
        # A concurrent retry with the same event id won the insert: answer as it did.
        session.rollback()
        previous = find_decision(session, decision.experiment_id, decision.event_id)
        if previous is None:
            raise
        return _replay(previous, request)
    return answer(decision)


def _replay(previous: Decision, request: RankRequest) -> dict[str, Any]:
    if previous.request_hash != request.request_hash:
        raise Conflict(f"event_id {previous.event_id!r} was already used with another payload")
    return answer(previous)


def find_decision(session: Session, experiment_id: int, event_id: str) -> Decision | None:
    return session.scalars(sa.select(Decision).where(
        Decision.experiment_id == experiment_id, Decision.event_id == event_id)).first()


def ranking(decision: Decision) -> list[dict[str, Any]]:
    """Every offered action once: the chosen first, then by probability (ties: offer order)."""
    order = sorted(range(len(decision.pmf)), key=lambda i: (i != decision.chosen_index,
                                                            -decision.pmf[i], i))
    return [{"id": decision.actions[i]["id"], "probability": decision.pmf[i]} for i in order]


def answer(decision: Decision) -> dict[str, Any]:
    return {"event_id": decision.event_id, "action_id": decision.action_id,
            "probability": decision.propensity, "ranking": ranking(decision),
            "arm": decision.arm, "policy": decision.policy,
            "model_version": decision.model_version,
            "deferred": decision.deferred}
