"""Teams and API keys. A key is `tlr_<key_id>_<secret>`; only HMAC-SHA256(salt, secret) is kept.

Why not a slow password hash (bcrypt, scrypt, Argon2)? Slow hashes exist to make guessing
*low-entropy* secrets (passwords people choose) expensive after a database leak. Our
secrets are 256 random bits from `secrets.token_urlsafe(32)`: guessing one from its hash
needs about 2**255 tries whatever the hash costs, so a fast keyed hash is exactly as safe,
and it keeps authentication off the hot path's latency budget (a KDF tuned for passwords
costs 50-500 ms per request). The per-key salt makes equal secrets hash differently, and
comparisons use `hmac.compare_digest` (constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from experiments import clock
from experiments.errors import Conflict, NotFound, ValidationFailed
from experiments.last_used import LastUsed
from experiments.models import ApiKey, Experiment, Team

SCOPES = ("admin", "client", "analyst")
LIMIT_KINDS = ("rank", "reward")
MAX_NAME = 128


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's team and scope."""

    team_id: int
    team_name: str
    key_id: str
    scope: str
    default_experiment: str | None
    pii_salt: str
    rate_limits: Mapping[str, Any] | None = None

    def allows(self, scope: str) -> bool:
        return self.scope == scope or self.scope == "admin"


def _hash(salt: str, secret: str) -> str:
    return hmac.new(salt.encode(), secret.encode(), hashlib.sha256).hexdigest()


def find_team(session: Session, name: str) -> Team:
    team = session.scalars(sa.select(Team).where(Team.name == name)).first()
    if team is None:
        raise NotFound(f"no team {name!r}")
    return team


def get_or_create_team(session: Session, name: str) -> Team:
    if not isinstance(name, str) or not name or len(name) > 64:
        raise ValidationFailed.field("team", "must be 1 to 64 characters")
    team = session.scalars(sa.select(Team).where(Team.name == name)).first()
    if team is None:
        team = Team(name=name, pii_salt=secrets.token_hex(32), created_at=clock.now())
        session.add(team)
        session.flush()
    return team


def validate_rate_limits(value: Any) -> dict[str, dict[str, float]] | None:
    """`{"rank": {"rate": 50, "burst": 100}, "reward": {...}}`; rate 0 turns a limit off."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationFailed.field("rate_limits", "must be an object")
    result: dict[str, dict[str, float]] = {}
    for kind, spec in value.items():
        where = f"rate_limits.{kind}"
        if kind not in LIMIT_KINDS:
            raise ValidationFailed.field(where, f"must be one of {', '.join(LIMIT_KINDS)}")
        if not isinstance(spec, Mapping) or set(spec) - {"rate", "burst"} or "rate" not in spec:
            raise ValidationFailed.field(where, 'must be {"rate": <per second>, "burst": <n>}')
        rate = _non_negative(spec["rate"], f"{where}.rate")
        burst = _non_negative(spec.get("burst", max(1.0, 2 * rate)), f"{where}.burst")
        if rate > 0 and burst < 1:
            raise ValidationFailed.field(f"{where}.burst", "must be at least 1")
        result[kind] = {"rate": rate, "burst": burst}
    return result


def _non_negative(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1e6:
        raise ValidationFailed.field(field, "must be a number between 0 and 1000000")
    return float(value)


def _validate_key_fields(session: Session, team: Team, scope: Any, name: Any,
                         default_experiment: Any) -> None:
    if scope not in SCOPES:
        raise ValidationFailed.field("scope", f"must be one of {', '.join(SCOPES)}")
    if name is not None and (not isinstance(name, str) or not name or len(name) > MAX_NAME):
        raise ValidationFailed.field("name", f"must be a string of 1 to {MAX_NAME} characters")
    if default_experiment is None:
        return
    if not isinstance(default_experiment, str) or not 0 < len(default_experiment) <= 64:
        raise ValidationFailed.field("default_experiment", "must be an experiment key")
    exists = session.scalar(sa.select(Experiment.id).where(
        Experiment.team_id == team.id, Experiment.key == default_experiment))
    if exists is None:
        raise NotFound(f"no experiment {default_experiment!r}",
                       [{"field": "default_experiment", "message": "no such experiment"}])


def create_key(session: Session, team: Team, scope: str, *, name: str | None = None,
               default_experiment: str | None = None,
               rate_limits: Mapping[str, Any] | None = None) -> tuple[str, ApiKey]:
    """Create a key; returns the plain key (shown once) and its stored row. Caller commits.

    Raises:
        ValidationFailed: bad scope, name or rate limits.
        NotFound: `default_experiment` is not an experiment of the team.
    """
    _validate_key_fields(session, team, scope, name, default_experiment)
    limits = validate_rate_limits(rate_limits)
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    row = ApiKey(team_id=team.id, key_id=key_id, salt=salt, secret_hash=_hash(salt, secret),
                 scope=scope, name=name, default_experiment=default_experiment,
                 rate_limits=limits, created_at=clock.now())
    session.add(row)
    session.flush()
    return f"tlr_{key_id}_{secret}", row


def split_key(plain: str) -> tuple[str, str] | None:
    parts = plain.split("_", 2)
    if len(parts) != 3 or parts[0] != "tlr" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def authenticate(session: Session, plain: str, last_used: LastUsed) -> Principal | None:
    """The principal of a valid, unrevoked key, or None. Compares in constant time.

    Reads only: the use is recorded in `last_used`, whose thread writes it later."""
    parsed = split_key(plain)
    if parsed is None:
        return None
    key_id, secret = parsed
    found = _active_key(session, key_id)
    if found is None:
        return None
    key, principal = found
    if not hmac.compare_digest(key.secret_hash, _hash(key.salt, secret)):
        return None
    last_used.record(key.key_id, clock.now())
    return principal


def _active_key(session: Session, key_id: str) -> tuple[ApiKey, Principal] | None:
    """The unrevoked key `key_id` and the principal it stands for, or None."""
    row = session.execute(
        sa.select(ApiKey, Team.name, Team.pii_salt).join(Team, Team.id == ApiKey.team_id)
        .where(ApiKey.key_id == key_id)).first()
    if row is None or row[0].revoked_at is not None:
        return None
    key, team_name, pii_salt = row
    return key, Principal(key.team_id, team_name, key.key_id, key.scope,
                          key.default_experiment, pii_salt, key.rate_limits)


def active_key_guard() -> sa.ColumnElement[bool]:
    """SQL true when the bound `auth_key_id` is None (no key involved: imports, tests) or
    names an unrevoked key; the condition of a write authorized through `KeyCache`."""
    key_id = sa.bindparam("auth_key_id", type_=sa.String())
    return sa.or_(key_id.is_(None), sa.exists().where(ApiKey.key_id == key_id,
                                                      ApiKey.revoked_at.is_(None)))


ACTIVE_KEY = sa.select(ApiKey.id).where(ApiKey.key_id == sa.bindparam("key_id"),
                                        ApiKey.revoked_at.is_(None))


def is_active(session: Session, key_id: str) -> bool:
    """Is the key still unrevoked (read now, never from a cache)?"""
    return session.scalar(ACTIVE_KEY, {"key_id": key_id}) is not None


@dataclass
class _Verified:
    salt: str
    secret_hash: str
    principal: Principal
    loaded_at: float


class KeyCache:
    """Keys this process has verified, so that rank and reward need no key query.

    A cached key is still checked on every request (HMAC of the presented secret against
    the stored hash, in constant time). What a cache could get wrong is revocation, so a
    caller that authenticates through it must make its write conditional on the key
    being active in the same statement (`ACTIVE_KEY_GUARD` in ranking and rewards) and,
    when that write is refused, ask `is_active` before answering: a revoked key is
    refused at once, with no extra round trip for keys that are not. Entries are re-read
    after `ttl` seconds, which bounds how long a change of a key's rate limits takes to
    reach this process. Uses are recorded in `last_used` (no database access: see
    `experiments.last_used`), as without the cache.
    """

    def __init__(self, last_used: LastUsed, ttl: float = 30.0, size: int = 4096) -> None:
        self.last_used = last_used
        self.ttl = ttl
        self.size = size
        self._entries: dict[str, _Verified] = {}
        self._lock = threading.Lock()

    def authenticate(self, session: Session, plain: str) -> Principal | None:
        parsed = split_key(plain)
        if parsed is None:
            return None
        key_id, secret = parsed
        now = clock.now()
        entry = self._entries.get(key_id)
        if entry is None or now - entry.loaded_at > self.ttl:
            entry = self._load(session, key_id, now)
            if entry is None:
                return None
        if not hmac.compare_digest(entry.secret_hash, _hash(entry.salt, secret)):
            return None
        self.last_used.record(key_id, now)
        return entry.principal

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._entries.pop(key_id, None)

    def _load(self, session: Session, key_id: str, now: float) -> _Verified | None:
        found = _active_key(session, key_id)
        if found is None:
            self.forget(key_id)
            return None
        key, principal = found
        entry = _Verified(key.salt, key.secret_hash, principal, now)
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()  # more keys than entries: start over
            self._entries[key_id] = entry
        return entry


def list_keys(session: Session, team_id: int) -> list[ApiKey]:
    return list(session.scalars(
        sa.select(ApiKey).where(ApiKey.team_id == team_id).order_by(ApiKey.id)))


def get_key(session: Session, team_id: int, key_id: str) -> ApiKey:
    """The team's key `key_id`; another team's key does not exist (404)."""
    key = session.scalars(sa.select(ApiKey).where(
        ApiKey.team_id == team_id, ApiKey.key_id == key_id)).first()
    if key is None:
        raise NotFound(f"no key {key_id!r}")
    return key


def _active_admins(session: Session, team_id: int) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(ApiKey).where(
        ApiKey.team_id == team_id, ApiKey.scope == "admin", ApiKey.revoked_at.is_(None))) or 0


def revoke_key(session: Session, team_id: int, key_id: str, *,
               keep_an_admin: bool = False) -> ApiKey:
    """Revoke a key (idempotent). Caller commits.

    Args:
        keep_an_admin: refuse (409) to revoke the team's last active admin key, which would
            lock the team out of its own administration (the API sets it; the CLI does not).
    """
    key = get_key(session, team_id, key_id)
    if key.revoked_at is None:
        if keep_an_admin and key.scope == "admin" and _active_admins(session, team_id) <= 1:
            raise Conflict("this is the team's last active admin key; create another admin "
                           "key first (or use `tailor keys revoke`)")
        key.revoked_at = clock.now()
    return key


def rotate_key(session: Session, team_id: int, key_id: str) -> tuple[str, ApiKey, ApiKey]:
    """Replace an active key by a new one with the same team, scope, name, default experiment
    and limits; the old one is revoked at once. Returns (plain key, new row, old row).
    Caller commits."""
    old = get_key(session, team_id, key_id)
    if old.revoked_at is not None:
        raise Conflict(f"key {key_id!r} is revoked; create a new key instead")
    team = session.get(Team, team_id)
    assert team is not None
    plain, new = create_key(session, team, old.scope, name=old.name,
                            rate_limits=old.rate_limits)
    # Kept as is even if that experiment was deleted since: rotation changes only the secret.
    new.default_experiment = old.default_experiment
    old.revoked_at = clock.now()
    return plain, new, old
