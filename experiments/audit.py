"""The audit log: an append-only record of administrative acts (who, what, when, how many).

Rows are only ever inserted: there is no update or delete here, and erasure
(`experiments.erasure`) records itself rather than removing entries. `record` adds a row to
the caller's transaction, so the act and its audit entry commit (or roll back) together;
the caller owns the commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from experiments import clock
from experiments.models import AuditLog

ACTIONS = ("experiment.create", "experiment.update", "key.create", "key.revoke", "key.rotate",
           "unit.erase", "decisions.read", "decisions.export", "report.export")


class KeyPrincipal(Protocol):
    @property
    def team_id(self) -> int: ...

    @property
    def key_id(self) -> str: ...


@dataclass(frozen=True)
class Actor:
    """Who acted, when it is not an API key (the CLI, a background job)."""

    team_id: int
    name: str


def actor_name(actor: Actor | KeyPrincipal) -> str:
    """`key:<key_id>` for an API key, the actor's own name otherwise."""
    if isinstance(actor, Actor):
        return actor.name
    return f"key:{actor.key_id}"


def record(session: Session, actor: Actor | KeyPrincipal, action: str,
           target: str | None = None, details: Mapping[str, Any] | None = None) -> AuditLog:
    """Add one audit entry to the session (the caller commits with the act itself).

    Args:
        session: the transaction the audited act runs in.
        actor: the acting API key's principal, or an `Actor` (e.g. `Actor(team, "cli")`).
        action: a dotted verb such as `key.revoke` (see `ACTIONS`; others are allowed).
        target: what was acted on (an experiment key, a key id, a hashed unit id); never
            personal data in clear.
        details: JSON-able facts, e.g. `{"decisions": 3}`.
    """
    entry = AuditLog(team_id=actor.team_id, actor=actor_name(actor)[:64], action=action[:64],
                     target=None if target is None else target[:256],
                     details=dict(details) if details else None, created_at=clock.now())
    session.add(entry)
    return entry


def record_access(session: Session, actor: Actor | KeyPrincipal, action: str, target: str,
                  details: Mapping[str, Any] | None = None) -> AuditLog:
    """Record a read or an export of logged data (`decisions.read`, `decisions.export`,
    `report.export`) and commit it at once: an access is audited even when nothing else
    is written."""
    entry = record(session, actor, action, target, details)
    session.commit()
    return entry


def serialize(entry: AuditLog) -> dict[str, Any]:
    return {"id": entry.id, "at": clock.iso(entry.created_at), "actor": entry.actor,
            "action": entry.action, "target": entry.target, "details": entry.details or {}}


def page(session: Session, team_id: int, *, after: int = 0, limit: int = 100,
         action: str | None = None) -> dict[str, Any]:
    """The team's entries in order after the cursor `after` (an entry id)."""
    query = sa.select(AuditLog).where(AuditLog.team_id == team_id, AuditLog.id > after)
    if action is not None:
        query = query.where(AuditLog.action == action)
    entries = list(session.scalars(query.order_by(AuditLog.id).limit(limit)))
    return {"entries": [serialize(e) for e in entries],
            "next_after": entries[-1].id if len(entries) == limit else None}
