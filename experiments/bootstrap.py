"""First run: an empty database gets a `default` team with one admin and one client key."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from experiments import keys
from experiments.models import Team


def first_run(session: Session) -> dict[str, str] | None:
    """Create the default team and its first keys if there is no team yet; else None.

    Two first starts at once (two `make run`, or a process manager starting replicas)
    both see no team; the team name is unique, so the second one's insert fails and it
    answers None like any later start, instead of a traceback.
    """
    if session.scalar(sa.select(sa.func.count()).select_from(Team)):
        return None
    try:
        team = keys.get_or_create_team(session, "default")
        admin, _ = keys.create_key(session, team, "admin", name="first admin key")
        client, _ = keys.create_key(session, team, "client", name="first client key")
        session.commit()
    except IntegrityError:
        session.rollback()
        return None
    return {"admin": admin, "client": client}
