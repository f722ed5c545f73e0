"""Rank's use of unit profiles: the unit's stored features merged into the context.

An experiment with `"profile": {"namespace": "profile", "max_age_seconds": 86400}` looks
the unit's profile up (through the worker's `profiles.ProfileCache`) and, when it exists,
has not expired and was written at most `max_age_seconds` ago, adds its features to the
context under `namespace`. Precedence: what the request sends wins. A key the request
sends inside that namespace keeps the request's value; a request that sends the namespace
as a plain value (not an object) keeps it, and the profile is not used (`overridden`).

The experiment's PII rules apply to the profile's features as to the context (hashed,
never refused: the caller did not send them). A field declared `embedding` is encoded
with the vector stored when the profile was written (`stored_embeddings.attach`): rank
does not run the sentence model for stored profiles. A stored feature this experiment cannot
encode (a list of numbers not declared `vector`, a non-string declared `text`) is left
out with a warning in the rank answer.

The decision row records the profile's version and what happened: `used`, `missing`
(no profile, or no unit id), `expired` (past its TTL), `stale` (older than
`max_age_seconds`) or `overridden`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from bandits.features import FeatureTypes, typed_value_error
from experiments import clock, pii, stored_embeddings
from experiments.config import ExperimentConfig, PIIRules
from experiments.profiles import ProfileCache, StoredProfile, stored_unit


@dataclass(frozen=True)
class Merged:
    """The context rank uses, and what the decision row records about the profile."""

    context: dict[str, Any]
    version: int | None
    status: str
    warnings: list[dict[str, Any]] = field(default_factory=list)


def merge(session: Session, cache: ProfileCache, *, team_id: int, salt: str,
          config: ExperimentConfig, context: dict[str, Any], unit: str | None,
          types: FeatureTypes) -> Merged:
    """Merge the unit's profile into `context` (already PII-guarded) per `config`.

    Args:
        unit: the unit id as the request gave it (clear), or None.
        types: the experiment's declared field kinds.
    """
    setting, rules = config.profile, config.pii
    assert setting is not None, "merge is called for experiments that merge profiles"
    namespace = setting.namespace
    if unit is None:
        return Merged(context, None, "missing")
    found = cache.get(session, team_id, stored_unit(salt, unit))
    status = _status(found, setting.max_age_seconds)
    if found is None or status != "used":
        return Merged(context, None if found is None else found.version, status)
    sent = context.get(namespace)
    if sent is not None and not isinstance(sent, Mapping):
        return Merged(context, found.version, "overridden")
    features, warnings = _prepared(found, namespace, types, rules, salt)
    merged = {**features, **sent} if sent else features
    return Merged({**context, namespace: merged}, found.version, "used", warnings)


def _prepared(found: StoredProfile, namespace: str, types: FeatureTypes,
              rules: PIIRules, salt: str) -> tuple[dict[str, Any], list[Any]]:
    """The profile's encodable features with the experiment's PII rules applied (hash
    mode), remembered with the cached profile per (namespace, kinds, PII rules): the
    same profile ranked again costs a lookup, not a walk (read-only; shared)."""
    matcher = pii.matcher_for(rules.fields)
    key = (namespace, types, matcher, salt)
    found_prepared = found.prepared.get(key)
    if found_prepared is None:
        features, warnings = _encodable(found, namespace, types)
        guarded = pii.guard({namespace: features}, None, replace(rules, mode="hash"), salt)
        prepared = dict(guarded.context[namespace])
        stored_embeddings.attach(prepared, namespace, types, found.features, found.vectors)
        found_prepared = found.prepared[key] = (prepared, warnings)
    return found_prepared


def _status(found: StoredProfile | None, max_age: float) -> str:
    if found is None:
        return "missing"
    now = clock.now()
    if found.expired(now):
        return "expired"
    if now - found.updated_at > max_age:
        return "stale"
    return "used"


def _encodable(found: StoredProfile, namespace: str,
               types: FeatureTypes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    features: dict[str, Any] = {}
    warnings: list[dict[str, Any]] = []
    for key, value in found.features.items():
        problem = typed_value_error(value, types.context.get((namespace, key)))
        if problem is None:
            features[key] = value
            continue
        where, reason = problem(f"profile.{key}")
        warnings.append({"code": "profile_feature_skipped", "field": where,
                         "message": f"{where}: {reason}; the stored feature was left out"})
    return features, warnings
