"""Rank: choose an action for a context, and log the decision durably before answering.

assign arm → the arm's policy gives a pmf → sample with a PRNG seeded by the event id →
write the decision row (context, offered actions, full pmf, propensity) → commit → answer.
The command comes validated from experiments.rank_commands; the row, its write and the
replay of a used event id are experiments.decision_writes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy.orm import Session

from bandits.features import FeatureTypes
from bandits.policy import sample_index, uniform_for
from experiments import decision_writes, pii, profile_merge
from experiments.assignment import assign_arm
from experiments.config import ExperimentConfig
from experiments.direct import Direct
from experiments.errors import Conflict, DomainError, Unprocessable, ValidationFailed
from experiments.experiment_cache import ExperimentCache, ExperimentSnapshot, reload_snapshot
from experiments.models import Experiment
from experiments.policies import PolicyCache
from experiments.profiles import ProfileCache
from experiments.rank_commands import RankCommand


def offered_actions(config: ExperimentConfig, request: RankCommand) -> list[dict[str, Any]]:
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
    if not actions:  # nothing was offered, which is not the same as all excluded
        raise ValidationFailed.field("actions", "must list at least one action to rank")
    remaining = [a for a in actions if a["id"] not in request.excluded]
    if not remaining:
        raise Unprocessable("every action is excluded: nothing to rank")
    return remaining


def _unit(config: ExperimentConfig, request: RankCommand) -> str | None:
    if request.unit_id is not None:
        return request.unit_id
    field = config.unit_field
    value = request.context.get(field) if field else None
    return None if value is None or isinstance(value, Mapping | list) else str(value)


def choose_arm(experiment: Experiment | ExperimentSnapshot, unit: str | None,
               event_id: str) -> tuple[str, str]:
    """(arm, phase): paused experiments and apprentice mode serve the champion."""
    config = experiment.settings
    if experiment.status == "paused":
        return "champion", "paused"
    if config.learner_mode in ("apprentice", "logging"):
        return "champion", config.learner_mode
    return assign_arm(experiment.key, unit or f"event:{event_id}", config.arms), "online"


def rank(session: Session, experiment: Experiment | ExperimentSnapshot, request: RankCommand,
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
    reload = experiments.reload if experiments is not None else reload_snapshot
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
               request: RankCommand, policies: PolicyCache, pii_salt: str,
               direct: Direct, key_id: str | None,
               profiles: ProfileCache) -> dict[str, Any] | None:
    if experiment.status not in ("running", "paused"):
        raise Conflict(f"experiment {experiment.key!r} is {experiment.status}; "
                       "rank needs running or paused")
    config = experiment.settings
    types = config.types
    actions = offered_actions(config, request)
    clear_unit = _unit(config, request)
    guarded = pii.guard(request.context, clear_unit, config.pii, pii_salt)
    context, unit, warnings = guarded.context, guarded.unit, guarded.warnings
    merged = None
    if config.merges_profiles:
        merged = profile_merge.merge(session, profiles, team_id=experiment.team_id,
                                     salt=pii_salt, config=config, context=context,
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
    row = decision_writes.decision_row(experiment, request, event_id, arm, spec, phase, unit,
                                       context, actions, pmf, chosen,
                                       getattr(policy, "version", None))
    if merged is not None:
        row.update(profile_version=merged.version, profile_status=merged.status)
    result = decision_writes.commit_decision(session, experiment, row, request, direct,
                                            key_id)
    warnings = [*warnings, *unit_warnings(config, request)]
    if result is not None and warnings:
        result["warnings"] = warnings
    if result is not None and request.explain:
        result["explanation"] = explanation
    return result


def unit_warnings(config: ExperimentConfig, request: RankCommand) -> list[dict[str, Any]]:
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


