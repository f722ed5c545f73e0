"""The rank command: a typed, validated request to rank, parsed from a v1 body
(`parse_request`) or built from another adapter's typed values (`command`, e.g.
Personalizer's). Validation needs the experiment's declared feature types and the app's
limits; the context's VW line is encoded here once and reused by the rank."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bandits.features import NO_TYPES, FeatureError, FeatureTypes, shared_line
from experiments.errors import ValidationFailed
from experiments.fingerprint import canonical
from experiments.limits import DEFAULT_LIMITS, ContextLimits, check_context
from experiments.validation import validate_actions

RANK_FIELDS = {"context", "actions", "excluded_actions", "event_id", "unit_id",
               "defer_activation"}
RANK_FIELDS |= {"explain"}  # the chosen action's top feature contributions
MAX_EVENT_ID = 256  # Personalizer's limit
# Reserved: a multi-slot decision's id is `<eventId>\x1f<slotId>` (experiments.slots), so no
# event id sent to rank may contain it, and the two id spaces cannot collide.
SLOT_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class RankCommand:
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


def parse_request(body: Any, max_actions: int, limits: ContextLimits = DEFAULT_LIMITS,
                  types: FeatureTypes = NO_TYPES) -> RankCommand:
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
    return RankCommand(
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
            types: FeatureTypes = NO_TYPES) -> RankCommand:
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
    return RankCommand(
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


