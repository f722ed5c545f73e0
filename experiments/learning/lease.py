"""One learner per experiment at a time: a lease on the experiment's ``learner_state`` row.

A learner takes the lease when it is free, expired, or already its own, and renews it as
it works. The lease is also the fence of every snapshot: the snapshot transaction starts
by renewing it (``hold``), so a learner whose lease was taken over cannot commit. On
PostgreSQL the renewing UPDATE row-locks ``learner_state`` until that commit, and a rival's
takeover waits for it and then sees a live lease; on SQLite the UPDATE takes the write
lock, which serializes the two the same way.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from experiments import clock
from experiments.models import LearnerState


class LeaseLost(RuntimeError):
    """Another learner holds the experiment now; drop everything not committed."""


def new_owner() -> str:
    """A name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _ensure_row(session: Session, experiment_id: int) -> None:
    if session.get(LearnerState, experiment_id) is not None:
        return
    try:
        with session.begin_nested():
            session.add(LearnerState(experiment_id=experiment_id, updated_at=clock.now()))
    except IntegrityError:
        pass  # a rival created it first: fine, we only needed it to exist


def acquire(session: Session, experiment_id: int, owner: str, seconds: float) -> bool:
    """Take or renew the lease if free, expired or ours; commits. True when held."""
    _ensure_row(session, experiment_id)
    now = clock.now()
    held = _update(session, experiment_id, owner, now + seconds, sa.or_(
        LearnerState.lease_owner.is_(None), LearnerState.lease_owner == owner,
        LearnerState.lease_expires_at < now))
    session.commit()
    return held


def hold(session: Session, experiment_id: int, owner: str, seconds: float) -> None:
    """Renew our own lease inside the caller's transaction (the fence of a snapshot).

    Raises:
        LeaseLost: the lease is no longer ours.
    """
    if not _update(session, experiment_id, owner, clock.now() + seconds,
                   LearnerState.lease_owner == owner):
        raise LeaseLost(f"learner {owner} lost the lease of experiment {experiment_id}")


def release(session: Session, experiment_id: int, owner: str) -> None:
    """Give the lease up (if still ours) so another learner can start at once; commits."""
    _update(session, experiment_id, None, None, LearnerState.lease_owner == owner)
    session.commit()


def _update(session: Session, experiment_id: int, owner: str | None,
            expires_at: float | None, condition: sa.ColumnElement[bool]) -> bool:
    result = cast(sa.CursorResult[Any], session.execute(
        sa.update(LearnerState)
        .where(LearnerState.experiment_id == experiment_id, condition)
        .values(lease_owner=owner, lease_expires_at=expires_at, updated_at=clock.now())
        .execution_options(synchronize_session=False)))
    return result.rowcount == 1
