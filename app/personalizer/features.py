"""Personalizer's feature lists read into Tailor's context and action features.

The objects of `contextFeatures` (and of an action's or a slot's `features`) merge into one
dict; an object value becomes a namespace; anything nested deeper is flattened into dotted
keys inside that namespace (`{"user": {"geo": {"city": "X"}}}` → namespace `user`, feature
`geo.city`), and lists of numbers or objects into indexed keys (`emb[0]`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.personalizer.errors import PersonalizerError


def flatten(out: dict[str, Any], prefix: str, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            flatten(out, f"{prefix}.{key}" if prefix else str(key), inner)
    elif isinstance(value, list) and not all(isinstance(item, str) for item in value):
        for index, item in enumerate(value):
            flatten(out, f"{prefix}[{index}]", item)
    else:
        out[prefix] = value


def merge_features(items: Any, field: str) -> dict[str, Any]:
    """A Personalizer feature list (`[{"a": 1}, {"user": {...}}]`) → one features dict."""
    if items is None:
        return {}
    if isinstance(items, Mapping):
        items = [items]
    if not isinstance(items, list):
        raise PersonalizerError.invalid(field, "must be a list of objects")
    merged: dict[str, Any] = {}
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise PersonalizerError.invalid(f"{field}[{index}]", "must be an object")
        for key, value in item.items():
            if isinstance(value, Mapping):
                namespace = merged[key] if isinstance(merged.get(key), dict) else {}
                flatten(namespace, "", value)
                merged[key] = namespace
            else:
                flatten(merged, key, value)
    return merged


def flat_features(items: Any, field: str) -> dict[str, Any]:
    """A feature list as one flat dict (a slot's features: one namespace of their own)."""
    flat: dict[str, Any] = {}
    flatten(flat, "", merge_features(items, field))
    return flat


def actions(items: Any, field: str = "actions") -> list[dict[str, Any]] | None:
    """RankableAction list → Tailor's actions (`{"id", "features"}`); None if absent."""
    if items is None:
        return None
    if not isinstance(items, list):
        raise PersonalizerError.invalid(field, "must be a list of actions")
    result = []
    for index, action in enumerate(items):
        if not isinstance(action, Mapping):
            raise PersonalizerError.invalid(f"{field}[{index}]", "must be an object")
        action_id = action.get("id")
        if not isinstance(action_id, str) or not action_id or len(action_id) > 256:
            raise PersonalizerError.invalid(f"{field}[{index}].id",
                                            "must be a non-empty string of at most 256")
        result.append({"id": action_id,
                       "features": merge_features(action.get("features"),
                                                  f"{field}[{index}].features")})
    return result


def ids(value: Any, field: str) -> list[str]:
    """A list of action ids (None: empty)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PersonalizerError.invalid(field, "must be a list of action ids")
    return value


def body_object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise PersonalizerError.invalid("body", "must be a JSON object")
    return body
