"""Rank: choose an action for a context, and log the decision durably before answering.

assign arm → the arm's policy gives a pmf → sample with a PRNG seeded by the event id →
write the decision row (context, offered actions, full pmf, propensity) → commit → answer.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bandits.features import NO_TYPES, FeatureError, FeatureTypes, shared_line
from bandits.policy import sample_index, uniform_for
from experiments import clock, keys, pii, profile_merge, registry
from experiments import config as configuration
from experiments.assignment import assign_arm
from experiments.config import ExperimentConfig
from experiments.direct import Direct
from experiments.errors import Conflict, DomainError, Unauthorized, Unprocessable, ValidationFailed
from experiments.fingerprint import canonical
from experiments.keyed import claim_then_insert
from experiments.limits import DEFAULT_LIMITS, ContextLimits, check_context
from experiments.models import Decision, DecisionKey, Experiment, NextDecisionId, decision_of_key
from experiments.policies import PolicyCache
from experiments.profiles import ProfileCache
from experiments.validation import validate_actions

RANK_FIELDS = {"context", "actions", "excluded_actions", "event_id", "unit_id",
               "defer_activation"}
RANK_FIELDS |= {"explain"}  # the chosen action's top feature contributions
MAX_EVENT_ID = 256  # Personalizer's limit
# Reserved: a multi-slot decision's id is `<eventId>\x1f<slotId>` (experiments.slots), so no
# event id sent to rank may contain it, and the two id spaces cannot collide.
SLOT_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class RankRequest:
    context: dict[str, Any]
    actions: list[dict[str, Any]] | None
    excluded: frozenset[str]
    event_id: str | None
    unit_id: str | None
    defer_activation: bool
    request_hash: str
    explain: bool = False
    # The context's VW shared line, encoded when it was validated (bandits.features):
    # rank reuses it when nothing changed the context since (PII guard, profiles).
    shared: str | None = None


@dataclass(frozen=True)
class ExperimentSnapshot:
    """What rank needs of an experiment, as read at `version` (read-only, shared by the
    threads of a process)."""

    id: int
    team_id: int
    key: str
    status: str
    version: int
    config: dict[str, Any]

    @classmethod
    def of(cls, experiment: Experiment) -> ExperimentSnapshot:
        return cls(experiment.id, experiment.team_id, experiment.key, experiment.status,
                   experiment.version, experiment.config)


class ExperimentCache:
    """This process's experiments by (team, key), so that rank need not read them.

    Entries do not expire: `rank` writes a decision only if the experiment is still at the
    cached version, and reads it again when it is not (or when the cached configuration
    refuses the request), so a change made through any process applies to the next rank.
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._entries: dict[tuple[int, str], ExperimentSnapshot] = {}

    def get(self, session: Session, team_id: int, key: str) -> ExperimentSnapshot:
        found = self._entries.get((team_id, key))
        return found if found is not None else self.reload(session, team_id, key)

    def reload(self, session: Session, team_id: int, key: str) -> ExperimentSnapshot:
        snapshot = _reload(session, team_id, key)
        if len(self._entries) >= self.size:
            self._entries.clear()  # more experiments than entries: start over
        self._entries[(team_id, key)] = snapshot
        return snapshot


def _reload(session: Session, team_id: int, key: str) -> ExperimentSnapshot:
    return ExperimentSnapshot.of(registry.get(session, team_id, key))


def parse_request(body: Any, max_actions: int, limits: ContextLimits = DEFAULT_LIMITS,
                  types: FeatureTypes = NO_TYPES) -> RankRequest:
    """Validate a rank body (shape and size, and the experiment's declared `feature_types`;
    its other rules come later)."""
    if not isinstance(body, Mapping):
        raise ValidationFailed.field("body", "must be a JSON object")
    unknown = sorted(set(body) - RANK_FIELDS)
    if unknown:
        raise ValidationFailed.field(unknown[0], "unknown field")
    context = body.get("context", {})
    if not isinstance(context, Mapping):
        raise ValidationFailed.field("context", "must be an object")
    try:
        shared = shared_line(context, types)  # validates: encodable, or FeatureError
    except FeatureError as exc:
        raise ValidationFailed.field(exc.path, exc.reason) from exc
    check_context(context, "context", limits)
    # Each field serialized once, canonically: the request's fingerprint is the canonical
    # form of the whole body, and the actions' part also keys the validated-actions cache.
    # The request's fingerprint is the canonical form of the whole body (every field
    # sorted by name, each canonical); the actions' own canonical form keys the
    # validated-actions cache.
    whole = _canonical(dict(body))
    actions = body.get("actions")
    if actions is not None:
        if isinstance(actions, list) and len(actions) > max_actions:
            raise ValidationFailed.field("actions", f"at most {max_actions} actions")
        actions = _validated_actions(actions, _canonical(actions), types, limits)
    return RankRequest(
        context=dict(context), actions=actions, excluded=_excluded(body),
        event_id=event_id_of(body.get("event_id"), "event_id"),
        unit_id=_optional_string(body, "unit_id", 256),
        defer_activation=_bool(body, "defer_activation"),
        request_hash=hashlib.sha256(whole.encode()).hexdigest(),
        explain=_bool(body, "explain"), shared=shared)


def _check_action_sizes(actions: Any, limits: ContextLimits) -> None:
    if isinstance(actions, list):
        for index, action in enumerate(actions):
            features = action.get("features") if isinstance(action, Mapping) else None
            if isinstance(features, Mapping):
                check_context(features, f"actions[{index}].features", limits)


def event_id_of(value: Any, field: str) -> str | None:
    """A client's event id (None: absent): 1 to 256 characters, without SLOT_SEPARATOR."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_EVENT_ID:
        raise ValidationFailed.field(field, f"must be a non-empty string of at most "
                                     f"{MAX_EVENT_ID}")
    if SLOT_SEPARATOR in value:
        raise ValidationFailed.field(field, "must not contain U+001F (reserved)")
    return value


def command(context: Mapping[str, Any], actions: list[dict[str, Any]] | None,
            excluded: list[str], event_id: str | None, defer_activation: bool,
            max_actions: int, fields: Mapping[str, str] | None = None,
            slot_id: str | None = None, limits: ContextLimits = DEFAULT_LIMITS,
            types: FeatureTypes = NO_TYPES) -> RankRequest:
    """A rank command from typed values (another adapter's request, e.g. Personalizer's);
    validated as `parse_request` validates a v1 body. `fields`: the adapter's names of
    `context`, `actions` and `event_id`, for its error messages. `slot_id`: the decision
    of one slot of multi-slot event `event_id` (logged as `<event_id>\x1f<slot_id>`).
    `limits` and `types` as in `parse_request`."""
    names = {"context": "context", "actions": "actions", "event_id": "event_id",
             **(fields or {})}
    try:
        shared = shared_line(context, types)  # validates: encodable, or FeatureError
    except FeatureError as exc:
        raise ValidationFailed.field(f"{names['context']}.{exc.path}", exc.reason) from exc
    check_context(context, names["context"], limits)
    canonical = {"context": _canonical(context), "excluded_actions": _canonical(excluded),
                 "event_id": _canonical(event_id), "slot_id": _canonical(slot_id),
                 "defer_activation": _canonical(defer_activation)}
    if actions is not None:
        if len(actions) > max_actions:
            raise ValidationFailed.field(names["actions"], f"at most {max_actions} actions")
        canonical["actions"] = _canonical(actions)
        actions = _validated_actions(actions, canonical["actions"], types, limits)
    whole = "{" + ",".join(f"{json.dumps(name)}:{canonical[name]}"
                           for name in sorted(canonical)) + "}"
    event_id = event_id_of(event_id, names["event_id"])
    if slot_id is not None:
        event_id = f"{event_id}{SLOT_SEPARATOR}{event_id_of(slot_id, 'slot_id')}"
    return RankRequest(
        context=dict(context), actions=actions, excluded=frozenset(excluded),
        event_id=event_id, unit_id=None,
        defer_activation=defer_activation,
        request_hash=hashlib.sha256(whole.encode()).hexdigest(), shared=shared)


def _canonical(value: Any) -> str:
    """JSON with sorted keys and no spaces (what `json.dumps(body, sort_keys=True)` writes
    for each field of the body; experiments.fingerprint)."""
    return canonical(value)


def _validated_actions(actions: Any, key: str, types: FeatureTypes,
                       limits: ContextLimits) -> list[dict[str, Any]]:
    """The actions' sizes checked and `validate_actions`, remembered by content (`key`:
    the canonical JSON): clients send the same actions again and again, and checking them
    walks and encodes every feature (read-only result, shared; its objects also key
    bandits.features.ActionLines)."""
    found = _VALID_ACTIONS.get((key, types, limits))
    if found is None:
        _check_action_sizes(actions, limits)
        found = validate_actions(actions, types=types, limits=None)  # sizes: just checked
        if len(_VALID_ACTIONS) >= VALID_ACTIONS_CACHE_SIZE:
            _VALID_ACTIONS.clear()
        _VALID_ACTIONS[(key, types, limits)] = found
    return found


VALID_ACTIONS_CACHE_SIZE = 256
_VALID_ACTIONS: dict[tuple[str, FeatureTypes, ContextLimits], list[dict[str, Any]]] = {}


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


def offered_actions(config: ExperimentConfig, request: RankRequest) -> list[dict[str, Any]]:
    """Inline actions (features filled from the catalog when omitted) or the catalog,
    minus the excluded ones."""
    catalog = config.catalog
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


def _unit(config: ExperimentConfig, request: RankRequest) -> str | None:
    if request.unit_id is not None:
        return request.unit_id
    field = config.unit_field
    value = request.context.get(field) if field else None
    return None if value is None or isinstance(value, Mapping | list) else str(value)


def choose_arm(experiment: Experiment | ExperimentSnapshot, unit: str | None,
               event_id: str) -> tuple[str, str]:
    """(arm, phase): paused experiments and apprentice mode serve the champion."""
    config = configuration.of(experiment.config)
    if experiment.status == "paused":
        return "champion", "paused"
    if config.learner_mode in ("apprentice", "logging"):
        return "champion", config.learner_mode
    return assign_arm(experiment.key, unit or f"event:{event_id}", config.arms), "online"


def rank(session: Session, experiment: Experiment | ExperimentSnapshot, request: RankRequest,
         policies: PolicyCache, pii_salt: str,
         experiments: ExperimentCache | None = None, *, direct: Direct,
         key_id: str | None = None, profiles: ProfileCache | None = None) -> dict[str, Any]:
    """Choose, log durably (commit), and answer. Idempotent by event id.

    `experiment` may be a cached snapshot: the decision is written only if the experiment
    is still at that version, otherwise it is read again (and `experiments` refreshed)
    and the rank done again with the new configuration.

    The decision is written through `direct` (one autocommit statement on PostgreSQL,
    one short transaction on SQLite); `session` only reads. `key_id`: the caller was
    authenticated from a cache; the write also requires that key to be unrevoked
    (keys.KeyCache). `profiles`: the worker's profile cache, for experiments that merge
    unit profiles (experiments.profile_merge; none given: a fresh lookup each time).
    """
    profiles = profiles if profiles is not None else ProfileCache(check_seconds=0.0)
    reload = experiments.reload if experiments is not None else _reload
    # The body may hold PII before the guard runs: store only a keyed fingerprint of it.
    request = dataclasses.replace(request, request_hash=hmac.new(
        pii_salt.encode(), request.request_hash.encode(), hashlib.sha256).hexdigest())
    for _ in range(3):
        try:
            result = _rank_once(session, experiment, request, policies, pii_salt, direct,
                                key_id, profiles)
        except DomainError:
            # Refused under a cached configuration: refuse only if it is still current.
            if experiments is None:
                raise
            fresh = reload(session, experiment.team_id, experiment.key)
            if fresh.version == experiment.version:
                raise
            experiment = fresh
            continue
        if result is not None:
            return result
        experiment = reload(session, experiment.team_id, experiment.key)
    raise Conflict(f"experiment {experiment.key!r} keeps changing; retry")


def _rank_once(session: Session, experiment: Experiment | ExperimentSnapshot,
               request: RankRequest, policies: PolicyCache, pii_salt: str,
               direct: Direct, key_id: str | None,
               profiles: ProfileCache) -> dict[str, Any] | None:
    if experiment.status not in ("running", "paused"):
        raise Conflict(f"experiment {experiment.key!r} is {experiment.status}; "
                       "rank needs running or paused")
    config = configuration.of(experiment.config)
    types = config.types
    actions = offered_actions(config, request)
    clear_unit = _unit(config, request)
    guarded = pii.guard(request.context, clear_unit, config.raw, pii_salt)
    context, unit, warnings = guarded.context, guarded.unit, guarded.warnings
    merged = None
    if config.merges_profiles:
        merged = profile_merge.merge(session, profiles, team_id=experiment.team_id,
                                     salt=pii_salt, config=config.raw, context=context,
                                     unit=clear_unit, types=types)
        context, warnings = merged.context, warnings + merged.warnings
    event_id = request.event_id or uuid.uuid4().hex
    arm, phase = choose_arm(experiment, unit, event_id)
    spec = config.spec(arm)
    policy = policies.resolve(session, cast(Experiment, experiment), spec)
    pairs = [(a["id"], a["features"]) for a in actions]
    shared = request.shared if context == request.context else None  # encode once
    pmf = policy.pmf(context, pairs, types, shared)
    chosen = sample_index(pmf, uniform_for(event_id))
    explanation = explain(policy, spec, context, pairs, chosen, types, shared) \
        if request.explain else None
    row = _decision(experiment, request, event_id, arm, spec, phase, unit, context,
                    actions, pmf, chosen, getattr(policy, "version", None))
    if merged is not None:
        row.update(profile_version=merged.version, profile_status=merged.status)
    result = _commit(session, experiment, row, request, direct, key_id)
    warnings = [*warnings, *unit_warnings(config, request)]
    if result is not None and warnings:
        result["warnings"] = warnings
    if result is not None and request.explain:
        result["explanation"] = explanation
    return result


def unit_warnings(config: ExperimentConfig, request: RankRequest) -> list[dict[str, Any]]:
    """`unit_missing` when the experiment names a unit field that this context lacks and
    no `unit_id` was sent: the decision is then a unit of its own, and the same customer
    may land in another arm next time."""
    field = config.unit_field
    if field is None or _unit(config, request) is not None:
        return []
    return [{"code": "unit_missing", "field": f"context.{field}",
             "message": f"context.{field} (the experiment's unit_field) is missing and no "
                        "unit_id was sent: this decision counts as a unit of its own, and "
                        "a returning customer may get another arm. Send "
                        f"context.{field} or unit_id."}]


def explain(policy: Any, spec: str, context: dict[str, Any],
            pairs: list[tuple[str, dict[str, Any]]], chosen: int,
            types: FeatureTypes, shared: str | None = None) -> dict[str, Any] | None:
    """The chosen action's top feature contributions in the bandit arm's model (None for
    other arms: a fixed or uniform policy has no features to credit)."""
    if spec != "bandit" or not hasattr(policy, "explain"):
        return None
    return cast(dict[str, Any], policy.explain(context, pairs, chosen, types, shared))


def _decision(experiment: Experiment | ExperimentSnapshot, request: RankRequest,
              event_id: str, arm: str, spec: str, phase: str, unit: str | None,
              context: dict[str, Any], actions: list[dict[str, Any]], pmf: list[float],
              chosen: int, model_version: int | None) -> dict[str, Any]:
    """The decision row's column values."""
    now = clock.now()
    window = configuration.of(experiment.config).window_seconds
    active = not request.defer_activation
    policy_name = f"model:{model_version}" if spec == "bandit" else spec
    return dict(
        experiment_id=experiment.id, event_id=event_id, request_hash=request.request_hash,
        arm=arm, policy=policy_name[:160], model_version=model_version,
        experiment_version=experiment.version, phase=phase, unit_id=unit, context=context,
        actions=actions, pmf=pmf, chosen_index=chosen, action_id=actions[chosen]["id"],
        propensity=pmf[chosen], deferred=request.defer_activation,
        activated_at=now if active else None, closes_at=now + window if active else None,
        reward=None, reward_count=0, learned_version=None, created_at=now,
        profile_version=None, profile_status=None)


def _commit(session: Session, experiment: Experiment | ExperimentSnapshot,
            row: dict[str, Any], request: RankRequest, direct: Direct,
            key_id: str | None) -> dict[str, Any] | None:
    """Insert and commit in one step; the stored answer if the event id was taken;
    None if the experiment changed version meanwhile (nothing written).

    Raises:
        Unauthorized: `key_id` was revoked after this process cached it.
    """
    values = {**row, "current_version": experiment.version, "auth_key_id": key_id}
    found = direct.chain(_insert_statements(direct.engine.dialect.name), values,
                         link="decision_id")
    if found is not None:
        return answer(cast(Decision, SimpleNamespace(**row)))
    if key_id is not None and not keys.is_active(session, key_id):
        raise Unauthorized("invalid or revoked API key")
    previous = find_decision(session, experiment.id, row["event_id"])
    return None if previous is None else _replay(previous, request)


@functools.cache
def _insert_statements(dialect: str) -> tuple[sa.Executable, ...]:
    """The rank write, run in order in one transaction, each binding the previous one's
    result as `decision_id`; nothing more is run once one returns no row.

    It claims the idempotency key first: INSERT INTO decision_keys ... SELECT <new id>
    WHERE <the experiment is still at current_version> AND <the caller's key, if cached,
    is unrevoked> ON CONFLICT (experiment_id, event_id) DO NOTHING RETURNING
    decision_id, then inserts the decision with that id. No row: the event id was taken
    (replay it), the experiment changed (reload it) or the key was revoked (refuse).
    PostgreSQL runs both as one statement (a data-modifying CTE); SQLite, which has no
    such CTE, as two statements of the write transaction, which holds its single write
    lock throughout. Built once per dialect; each rank only binds its values."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    key = (insert(DecisionKey).from_select(_KEY_COLUMNS, sa.select(
        sa.bindparam("experiment_id", type_=sa.Integer),
        sa.bindparam("event_id", type_=sa.String), NextDecisionId(),
        sa.bindparam("created_at", type_=sa.Double)).where(_still_current(),
                                                           keys.active_key_guard()))
        .on_conflict_do_nothing(index_elements=["experiment_id", "event_id"])
        .returning(DecisionKey.decision_id))
    return claim_then_insert(dialect, key, cast(sa.Table, Decision.__table__), "decision_id")


def _still_current() -> sa.Exists:
    return sa.exists().where(Experiment.id == sa.bindparam("experiment_id"),
                             Experiment.version == sa.bindparam("current_version"))


_KEY_COLUMNS = ["experiment_id", "event_id", "decision_id", "created_at"]


def _replay(previous: Decision, request: RankRequest) -> dict[str, Any]:
    if previous.request_hash != request.request_hash:
        raise Conflict(f"event_id {previous.event_id!r} was already used with another payload")
    return answer(previous)


def find_decision(session: Session, experiment_id: int, event_id: str) -> Decision | None:
    """The decision logged under this event id, through its key (one index probe, then one
    partition), however long ago it was written."""
    return session.scalars(sa.select(Decision).join(DecisionKey, decision_of_key()).where(
        DecisionKey.experiment_id == experiment_id, DecisionKey.event_id == event_id)).first()


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
