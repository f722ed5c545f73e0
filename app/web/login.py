"""Who is looking at a page: a signed-in key (session cookie) or an Authorization header.

The cookie holds the key's id, the sign-in time and a CSRF token; never the key itself.
Every page view reloads the key by id, so a revoked key (or one whose scope no longer
allows reports) is signed out at once, and a sign-in expires after `SESSION_HOURS`.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import request
from flask import session as cookie
from sqlalchemy.orm import Session

from app.auth import current_principal, last_used
from app.errors import APIError
from experiments import clock, keys
from experiments.keys import Principal
from experiments.models import ApiKey, Team

SESSION_HOURS = 12
READ_SCOPE = "analyst"


def csrf_token() -> str:
    """This session's CSRF token (created on first use); forms send it back."""
    if "csrf" not in cookie:
        cookie["csrf"] = secrets.token_urlsafe(32)
    return cookie["csrf"]


def check_csrf() -> None:
    """400 unless the form's token equals the session's (constant-time comparison)."""
    sent = request.form.get("csrf_token", "")
    expected = cookie.get("csrf")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise APIError(400, "csrf_failed", "the form expired or did not come from this "
                       "site; reload the page and try again")


def sign_in(session: Session, plain_key: str) -> Principal:
    """Check a key typed into the form and remember its id in the cookie."""
    principal = keys.authenticate(session, plain_key.strip(), last_used())
    if principal is None:
        raise APIError(401, "unauthorized", "invalid or revoked API key")
    if not principal.allows(READ_SCOPE):
        raise APIError(403, "forbidden", f"a {principal.scope!r} key cannot read reports; "
                       "sign in with an analyst or admin key")
    cookie.clear()  # a new session on sign-in: no fixation of an earlier one
    cookie.update(key_id=principal.key_id, signed_in_at=clock.now(),
                  csrf=secrets.token_urlsafe(32))
    return principal


def sign_out() -> None:
    cookie.clear()


def page_principal(session: Session) -> Principal | None:
    """The Authorization header's key, else the signed-in key, else None (go to /login)."""
    if request.headers.get("Authorization"):
        principal = current_principal()
        if not principal.allows(READ_SCOPE):
            raise APIError(403, "forbidden", "an analyst or admin key is required")
        return principal
    key_id = cookie.get("key_id")
    if not key_id or clock.now() - cookie.get("signed_in_at", 0) > SESSION_HOURS * 3600:
        return None
    principal = _active_key(session, key_id)
    if principal is None:
        sign_out()
    return principal


def _active_key(session: Session, key_id: str) -> Principal | None:
    row = session.execute(
        sa.select(ApiKey, Team.name, Team.pii_salt).join(Team, Team.id == ApiKey.team_id)
        .where(ApiKey.key_id == key_id, ApiKey.revoked_at.is_(None))).first()
    if row is None or row[0].scope not in ("admin", READ_SCOPE):
        return None
    key, team_name, salt = row
    return Principal(team_id=key.team_id, team_name=team_name, key_id=key.key_id,
                     scope=key.scope, default_experiment=key.default_experiment,
                     pii_salt=salt, rate_limits=key.rate_limits)


def safe_next(target: str | None, default: str) -> str:
    """A local path to go to after sign-in; anything else (other hosts, `//x`) is ignored."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default
    return target
