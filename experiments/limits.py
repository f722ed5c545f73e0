"""Size limits of what a client may send (pure functions).

A context (or an action's features) is counted as features: a scalar is one feature, a
list of strings one per item, a nested object (a namespace) the features inside it. Limits:
features per namespace, features in the whole context, characters per string (keys and
values). Any JSON body is also bounded in nesting depth. Above a limit the request is
refused with 413 (400 for depth) naming the path, before anything is logged.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from experiments.errors import TooLarge, ValidationFailed


@dataclass(frozen=True)
class ContextLimits:
    """Bounds on one context or one action's features.

    Attributes:
        namespace_features: features in one namespace (the top level is one).
        features: features in the whole context.
        string_length: characters in one string value or key.
    """

    namespace_features: int = 2048
    features: int = 8192
    string_length: int = 4096


DEFAULT_LIMITS = ContextLimits()
MAX_DEPTH = 32


def _string(value: str, path: str, limits: ContextLimits) -> None:
    if len(value) > limits.string_length:
        raise TooLarge.field(path, f"string of {len(value)} characters; at most "
                                   f"{limits.string_length} (TAILOR_MAX_STRING_LENGTH)")


def _count(value: Any, path: str, limits: ContextLimits) -> int:
    """Features one non-object value makes, its strings checked."""
    if isinstance(value, str):
        _string(value, path, limits)
        return 1
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                _string(item, f"{path}[{index}]", limits)
        return len(value)
    return 1


def _namespace(values: Mapping[str, Any], path: str, limits: ContextLimits,
               top: bool) -> int:
    total = own = 0
    for key, value in values.items():
        child = f"{path}.{key}"
        if isinstance(key, str):
            _string(key, child, limits)
        if top and isinstance(value, Mapping):
            total += _namespace(value, child, limits, top=False)
            continue
        own += _count(value, child, limits)
        if own > limits.namespace_features:
            raise TooLarge.field(path, f"more than {limits.namespace_features} features in "
                                       "one namespace (TAILOR_MAX_NAMESPACE_FEATURES)")
    return total + own


def check_context(context: Mapping[str, Any], path: str = "context",
                  limits: ContextLimits = DEFAULT_LIMITS) -> None:
    """Refuse a context (or action features) over `limits`.

    Raises:
        TooLarge: naming the namespace, the string, or `path` for the total.
    """
    total = _namespace(context, path, limits, top=True)
    if total > limits.features:
        raise TooLarge.field(path, f"{total} features; at most {limits.features} "
                                   "(TAILOR_MAX_CONTEXT_FEATURES)")


def check_depth(body: Any, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a parsed JSON body nested deeper than `max_depth` (objects and lists).

    Raises:
        ValidationFailed: field `body`.
    """
    # Level by level, containers only (a rank body has ~40 of them and ~200 values; this
    # walk is a third of the cost of one value at a time).
    level = [body]
    depth = 1
    while level:
        if depth > max_depth:
            raise too_deep(max_depth)
        below: list[Any] = []
        for value in level:
            children = value.values() if isinstance(value, dict) else value
            below += [child for child in children if isinstance(child, dict | list)]
        level = below
        depth += 1


# A JSON string (its escapes included), or an unterminated one up to the end: what is
# inside it is not nesting.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def text_deeper_than(data: bytes, max_depth: int = MAX_DEPTH) -> bool:
    """Whether the JSON text `data` nests deeper than `max_depth`, read without parsing.

    The standard library's parser recurses once per level: a body 5,000 levels deep
    raises RecursionError, and any finalizer the garbage collector runs while the stack is
    that deep fails too (an unraisable error, seen in CI). So a body is measured before
    that parser ever sees it. Brackets inside strings do not count; text that is not JSON
    may be called deep (the parser would refuse it anyway)."""
    encoding = json.detect_encoding(data)
    if encoding != "utf-8":
        data = data.decode(encoding, errors="replace").encode()
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0) > max_depth


def too_deep(max_depth: int = MAX_DEPTH) -> ValidationFailed:
    error = ValidationFailed.field("body", f"nested deeper than {max_depth} levels")
    error.code = "nesting_too_deep"
    return error
