"""Bearer API keys: who is calling, and may they do this?"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request

from app import db
from app.errors import APIError
from experiments import keys
from experiments.keys import Principal

F = TypeVar("F", bound=Callable[..., Any])


def _presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    # Personalizer clients send their key in this header; accept it everywhere.
    return request.headers.get("Ocp-Apim-Subscription-Key")


def current_principal() -> Principal:
    if "principal" not in g:
        plain = _presented_key()
        if not plain:
            raise APIError(401, "unauthorized", "missing API key (Authorization: Bearer <key>)",
                           headers={"WWW-Authenticate": "Bearer"})
        principal = keys.authenticate(db.session(), plain)
        if principal is None:
            raise APIError(401, "unauthorized", "invalid or revoked API key",
                           headers={"WWW-Authenticate": "Bearer"})
        g.principal = principal
    return g.principal


def requires(scope: str) -> Callable[[F], F]:
    """Decorator: the key must have `scope` (admin keys have every scope of their team)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if not principal.allows(scope):
                raise APIError(403, "forbidden", f"this key has scope {principal.scope!r}; "
                               f"{scope!r} is required")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
