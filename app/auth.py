"""API keys: who is calling, may they do this, and how often?

Keys come as `Authorization: Bearer <key>` or, for Personalizer clients, in the
`Ocp-Apim-Subscription-Key` header. A key sees only its own team; `requires(scope)` checks
the scope and, for rank and reward endpoints, the key's rate limit (`app.ratelimit`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, request

from app import db
from app.errors import APIError
from app.ratelimit import ENDPOINT_KINDS, Limit, RateLimiter
from experiments import keys, pii, registry
from experiments.keys import Principal
from experiments.last_used import LastUsed
from experiments.models import Experiment

F = TypeVar("F", bound=Callable[..., Any])
LIMITER = "tailor.ratelimit"
KEY_CACHE = "tailor.key_cache"
LAST_USED = "tailor.last_used"
PII_DEFAULTS = "tailor.pii_defaults"


def key_of(authorization: str, subscription_key: str | None) -> str | None:
    """The presented key: `Authorization: Bearer <key>`, else `Ocp-Apim-Subscription-Key`
    (Personalizer clients send their key in that header; it is accepted everywhere)."""
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return subscription_key


def _presented_key() -> str | None:
    return key_of(request.headers.get("Authorization", ""),
                  request.headers.get("Ocp-Apim-Subscription-Key"))


def missing_key() -> APIError:
    return APIError(401, "unauthorized", "missing API key (Authorization: Bearer <key>)",
                    headers={"WWW-Authenticate": "Bearer"})


def unknown_key() -> APIError:
    return APIError(401, "unauthorized", "invalid or revoked API key",
                    headers={"WWW-Authenticate": "Bearer"})


def check_scope(principal: Principal, scope: str) -> None:
    """403 unless the key has `scope` (admin keys have every scope of their team)."""
    if not principal.allows(scope):
        raise APIError(403, "forbidden", f"this key has scope {principal.scope!r}; "
                       f"{scope!r} is required")


def current_principal(cached: bool = False) -> Principal:
    """The calling key's principal (401 if none).

    `cached=True` (rank and reward only) verifies the key against this process's
    `KeyCache`; the view must then pass `guarded_key_id()` to its write, which refuses a
    key revoked since it was cached (see `KeyCache`).
    """
    if "principal" not in g:
        plain = _presented_key()
        if not plain:
            raise missing_key()
        if cached:
            principal = current_app.extensions[KEY_CACHE].authenticate(db.session(), plain)
        else:
            principal = keys.authenticate(db.session(), plain, last_used())
        if principal is None:
            raise unknown_key()
        g.principal = principal
        g.principal_cached = cached
    return g.principal


def last_used() -> LastUsed:
    """This app's record of key uses (authentication never writes; see
    experiments.last_used)."""
    return current_app.extensions[LAST_USED]


def guarded_key_id() -> str | None:
    """The key id a write must find unrevoked, or None when the key was read fresh."""
    return g.principal.key_id if g.get("principal_cached") else None


def check_rate_limit(principal: Principal, kind: str) -> None:
    """Take one token of `kind` for the key, or raise 429 with Retry-After."""
    take_token(current_app.extensions[LIMITER], principal, kind)


def take_token(limiter: RateLimiter, principal: Principal, kind: str) -> None:
    """`check_rate_limit` with the limiter given (app.hot has it without Flask's context)."""
    wait, limit = limiter.check(principal.key_id, kind, principal.rate_limits)
    if wait <= 0 or limit is None:
        return
    raise APIError(
        429, "rate_limited",
        f"rate limit for {kind} exceeded for this key ({limit.rate:g}/s, burst "
        f"{limit.burst:g}); retry in {wait:.3g} s",
        [{"limit": kind, "rate": limit.rate, "burst": limit.burst,
          "retry_after": round(wait, 3)}],
        headers={"Retry-After": str(max(1, math.ceil(wait)))})


def requires(scope: str, *, cached: bool = False) -> Callable[[F], F]:
    """Decorator: the key must have `scope` (admin keys have every scope of their team).

    `cached=True`: see `current_principal`; only for views whose write is guarded.
    """

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal(cached)
            check_scope(principal, scope)
            kind = ENDPOINT_KINDS.get(request.endpoint or "")
            if kind is not None:
                check_rate_limit(principal, kind)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _pii_defaults_on() -> None:
    g.pii_token = pii.use_default_fields(current_app.extensions[PII_DEFAULTS])


def _pii_defaults_off(_exc: BaseException | None) -> None:
    token = g.pop("pii_token", None)
    if token is not None:
        pii.reset_default_fields(token)


def init_app(app: Flask) -> None:
    """The record of key uses (written every KEY_LAST_USED_SECONDS); rate limiter from
    RATE_LIMIT_RANK / RATE_LIMIT_REWARD; the PII default field list (PII_DEFAULT_FIELDS,
    None = the built-in list) for every request."""
    app.extensions[LAST_USED] = LastUsed(db.engine_of(app),
                                         float(app.config["KEY_LAST_USED_SECONDS"]))
    app.extensions[KEY_CACHE] = keys.KeyCache(app.extensions[LAST_USED])
    app.extensions[LIMITER] = RateLimiter({
        "rank": Limit.parse(app.config.get("RATE_LIMIT_RANK")),
        "reward": Limit.parse(app.config.get("RATE_LIMIT_REWARD"))})
    configured = app.config.get("PII_DEFAULT_FIELDS")
    app.extensions[PII_DEFAULTS] = frozenset(pii.DEFAULT_FIELDS) if configured is None \
        else pii.parse_field_list(configured)
    app.before_request(_pii_defaults_on)
    app.teardown_request(_pii_defaults_off)


def team_experiment(key: str) -> Experiment:
    """The calling key's team's experiment `key` (another team's answers 404)."""
    return registry.get(db.session(), current_principal().team_id, key)
