"""Teams and API keys. A key is `tlr_<key_id>_<secret>`; only HMAC-SHA256(salt, secret) is kept."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from experiments import clock
from experiments.errors import NotFound, ValidationFailed
from experiments.models import ApiKey, Team

SCOPES = ("admin", "client", "analyst")
# The last-used time is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = 60.0


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's team and scope."""

    team_id: int
    team_name: str
    key_id: str
    scope: str
    default_experiment: str | None
    pii_salt: str

    def allows(self, scope: str) -> bool:
        return self.scope == scope or self.scope == "admin"


def _hash(salt: str, secret: str) -> str:
    return hmac.new(salt.encode(), secret.encode(), hashlib.sha256).hexdigest()


def get_or_create_team(session: Session, name: str) -> Team:
    if not name or len(name) > 64:
        raise ValidationFailed.field("team", "must be 1 to 64 characters")
    team = session.scalars(sa.select(Team).where(Team.name == name)).first()
    if team is None:
        team = Team(name=name, pii_salt=secrets.token_hex(32), created_at=clock.now())
        session.add(team)
        session.flush()
    return team


def create_key(session: Session, team: Team, scope: str, *, name: str | None = None,
               default_experiment: str | None = None) -> tuple[str, ApiKey]:
    """Create a key; returns the plain key (shown once) and its stored row. Caller commits."""
    if scope not in SCOPES:
        raise ValidationFailed.field("scope", f"must be one of {', '.join(SCOPES)}")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    row = ApiKey(team_id=team.id, key_id=key_id, salt=salt, secret_hash=_hash(salt, secret),
                 scope=scope, name=name, default_experiment=default_experiment,
                 created_at=clock.now())
    session.add(row)
    session.flush()
    return f"tlr_{key_id}_{secret}", row


def split_key(plain: str) -> tuple[str, str] | None:
    parts = plain.split("_", 2)
    if len(parts) != 3 or parts[0] != "tlr" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def authenticate(session: Session, plain: str) -> Principal | None:
    """The principal of a valid, unrevoked key, or None. Compares in constant time."""
    parsed = split_key(plain)
    if parsed is None:
        return None
    key_id, secret = parsed
    row = session.execute(
        sa.select(ApiKey, Team.name, Team.pii_salt).join(Team, Team.id == ApiKey.team_id)
        .where(ApiKey.key_id == key_id)
    ).first()
    if row is None:
        return None
    key, team_name, pii_salt = row
    if key.revoked_at is not None or not hmac.compare_digest(
            key.secret_hash, _hash(key.salt, secret)):
        return None
    _touch(session, key)
    return Principal(key.team_id, team_name, key.key_id, key.scope, key.default_experiment,
                     pii_salt)


def _touch(session: Session, key: ApiKey) -> None:
    now = clock.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        session.execute(sa.update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        session.commit()


def list_keys(session: Session, team_id: int) -> list[ApiKey]:
    return list(session.scalars(
        sa.select(ApiKey).where(ApiKey.team_id == team_id).order_by(ApiKey.id)))


def revoke_key(session: Session, team_id: int, key_id: str) -> ApiKey:
    key = session.scalars(sa.select(ApiKey).where(
        ApiKey.team_id == team_id, ApiKey.key_id == key_id)).first()
    if key is None:
        raise NotFound(f"no key {key_id!r}")
    if key.revoked_at is None:
        key.revoked_at = clock.now()
    return key

