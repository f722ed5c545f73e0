"""Writing unit profiles over the API: the commands and the services that execute them
(`experiments.profiles` validates the body and owns the write's transaction).

The bodies (`Profile`, `ProfilePatch`, `ProfileBatch`) are what `/openapi.json` documents
for these endpoints (`app/openapi_bodies.py`); a body reaches the service as received and is
validated there (a 400 naming the path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Required, TypedDict

from msgspec import Meta
from sqlalchemy.orm import Session

from experiments import profiles
from experiments.command_fields import context, whole_body
from experiments.keys import Principal

Ttl = Annotated[float, Meta(gt=0, description="seconds until the profile expires")]


class Profile(TypedDict, total=False):
    """A unit's whole profile (replaces the stored one)."""

    features: Required[Annotated[dict[str, Any], Meta(
        description="flat: strings, numbers, booleans, lists of strings or numbers")]]
    ttl_seconds: Ttl


class ProfilePatch(TypedDict, total=False):
    """Features merged into a unit's profile."""

    features: Annotated[dict[str, Any], Meta(description="null removes a feature")]
    ttl_seconds: Ttl


class BatchProfile(Profile, total=False):
    """One unit's profile in a batch."""

    unit_id: Required[Annotated[str, Meta(min_length=1, max_length=256)]]


class ProfileBatch(TypedDict):
    """Up to `profiles.MAX_BATCH` profiles, written in one transaction."""

    profiles: Annotated[list[BatchProfile], Meta(min_length=1, max_length=profiles.MAX_BATCH)]


@dataclass(frozen=True, kw_only=True)
class PutProfile:
    """Store a unit's profile (a new version)."""

    actor: Principal = context()
    unit_id: str = context()
    profile: Profile = whole_body()


@dataclass(frozen=True, kw_only=True)
class PatchProfile:
    """Merge features into a unit's profile (created when missing)."""

    actor: Principal = context()
    unit_id: str = context()
    changes: ProfilePatch = whole_body()


@dataclass(frozen=True, kw_only=True)
class PutProfiles:
    """Store many units' profiles at once."""

    actor: Principal = context()
    batch: ProfileBatch = whole_body()


def put(session: Session, command: PutProfile) -> profiles.Written:
    """Replace (or create) the profile; commits."""
    actor = command.actor
    return profiles.put(session, actor.team_id, actor.pii_salt, command.unit_id,
                        command.profile)


def patch(session: Session, command: PatchProfile) -> profiles.Written:
    """Merge the features into the profile; commits."""
    actor = command.actor
    return profiles.patch(session, actor.team_id, actor.pii_salt, command.unit_id,
                          command.changes)


def put_many(session: Session, command: PutProfiles) -> list[profiles.Written]:
    """Write every profile of the batch in one transaction; commits."""
    actor = command.actor
    return profiles.put_many(session, actor.team_id, actor.pii_salt, command.batch)
