"""Secrets the service generates for itself once and every worker shares (`service_secrets`).

Why a table: see `app/web/secret.py`, the session cookie's signing key, its one user.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from experiments import clock
from experiments.models import ServiceSecret


def stored_secret(engine: sa.Engine, name: str) -> str:
    """The named secret, created on first use (256 random bits); concurrent creators agree
    on one value: the first insert wins, the others read it. Commits its own insert, on a
    connection of its own (it runs outside any request's session)."""
    with engine.connect() as conn:
        found = conn.scalar(sa.select(ServiceSecret.value).where(ServiceSecret.name == name))
        if found:
            return found
        try:
            conn.execute(sa.insert(ServiceSecret).values(
                name=name, value=secrets.token_urlsafe(32), created_at=clock.now()))
            conn.commit()
        except IntegrityError:
            conn.rollback()  # another worker won the race; read its value
        return str(conn.scalar(
            sa.select(ServiceSecret.value).where(ServiceSecret.name == name)))
