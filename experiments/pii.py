"""Keep declared personal fields out of the decision log and the model.

A field path is a top-level key (`email`) or `namespace.key` (`user.email`). In `hash`
mode the value becomes a keyed hash (HMAC-SHA256 with the team's salt), so the same person
still joins across decisions; in `reject` mode the rank call is refused, naming the field.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any

from experiments.errors import Unprocessable

HASH_PREFIX = "pii:"


def keyed_hash(salt: str, value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return HASH_PREFIX + hmac.new(salt.encode(), text.encode(), hashlib.sha256).hexdigest()[:32]


def _locate(context: Mapping[str, Any], path: str) -> tuple[Mapping[str, Any], str] | None:
    head, _, tail = path.partition(".")
    if not tail:
        return (context, head) if head in context else None
    inner = context.get(head)
    if isinstance(inner, Mapping) and tail in inner:
        return inner, tail
    return None


def protect(context: Mapping[str, Any], fields: Iterable[str], mode: str,
            salt: str) -> dict[str, Any]:
    """A copy of `context` with every declared field hashed, or Unprocessable in reject mode."""
    result = {k: dict(v) if isinstance(v, Mapping) else v for k, v in context.items()}
    for path in fields:
        found = _locate(result, path)
        if found is None or found[0][found[1]] is None:
            continue
        if mode == "reject":
            raise Unprocessable(f"context.{path} is a declared PII field and may not be sent",
                                [{"field": f"context.{path}", "message": "PII field"}])
        holder, key = found
        holder[key] = keyed_hash(salt, holder[key])  # type: ignore[index]
    return result
