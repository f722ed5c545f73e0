"""API keys managed over the API: create, revoke, rotate, each with its audit entry, in one
transaction this module commits (the views parse and serialize; the CLI has its own acts).

`CreateKey` is also the documented body of `POST /v1/keys` (`app/openapi_bodies.py`): its
annotations are the contract, and `keys.create_key` enforces them before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, Required, TypedDict

from msgspec import Meta
from sqlalchemy.orm import Session

from experiments import audit, keys
from experiments.command_fields import context
from experiments.models import ApiKey, Team


class RateLimit(TypedDict, total=False):
    """A token bucket: `rate` per second (0 turns the limit off), `burst` at once."""

    rate: Required[Annotated[float, Meta(ge=0)]]
    burst: Annotated[float, Meta(ge=1)]


@dataclass(frozen=True, kw_only=True)
class CreateKey:
    """A new API key of the caller's team; the plain key is shown once."""

    actor: keys.Principal = context()
    scope: Literal["admin", "client", "analyst"]
    name: Annotated[str, Meta(min_length=1, max_length=keys.MAX_NAME)] | None = None
    default_experiment: Annotated[
        str, Meta(description="an experiment of the team: the Personalizer endpoints' "
                  "experiment when the call names none")] | None = None
    rate_limits: Annotated[dict[str, RateLimit], Meta(
        description='per kind of call: "rank" and/or "reward"')] | None = None


@dataclass(frozen=True, kw_only=True)
class RevokeKey:
    """Revoke one of the team's keys (idempotent; never the last active admin key)."""

    actor: keys.Principal = context()
    key_id: str = context()


@dataclass(frozen=True, kw_only=True)
class RotateKey:
    """Replace an active key by a new one with the same settings; the old one is revoked."""

    actor: keys.Principal = context()
    key_id: str = context()


def create(session: Session, command: CreateKey) -> tuple[str, ApiKey]:
    """Create the key and its audit entry; commits. Returns (plain key, stored row).

    Raises:
        ValidationFailed: bad scope, name or rate limits (nothing written).
        NotFound: `default_experiment` is not an experiment of the team.
    """
    team = session.get(Team, command.actor.team_id)
    assert team is not None  # the actor's key belongs to it
    plain, row = keys.create_key(session, team, command.scope, name=command.name,
                                 default_experiment=command.default_experiment,
                                 rate_limits=command.rate_limits)
    audit.record(session, command.actor, "key.create", row.key_id, {"scope": row.scope})
    session.commit()
    return plain, row


def revoke(session: Session, command: RevokeKey) -> ApiKey:
    """Revoke the key (audited the first time only); commits."""
    team_id = command.actor.team_id
    was_active = keys.get_key(session, team_id, command.key_id).revoked_at is None
    row = keys.revoke_key(session, team_id, command.key_id, keep_an_admin=True)
    if was_active:
        audit.record(session, command.actor, "key.revoke", command.key_id,
                     {"scope": row.scope})
    session.commit()
    return row


def rotate(session: Session, command: RotateKey) -> tuple[str, ApiKey, ApiKey]:
    """Rotate the key; commits. Returns (plain key, new row, old row)."""
    plain, new, old = keys.rotate_key(session, command.actor.team_id, command.key_id)
    audit.record(session, command.actor, "key.rotate", old.key_id,
                 {"scope": old.scope, "new_key_id": new.key_id})
    session.commit()
    return plain, new, old
