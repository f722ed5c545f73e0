"""The key that signs session cookies, and a session interface that finds it lazily.

`TAILOR_SECRET_KEY` (config `SECRET_KEY`) wins. Without it, the first worker that needs a
key generates 256 random bits and stores them in the `service_secrets` table; every other
worker and machine reads the same row, so sessions survive restarts and work behind a
load balancer with no shared file system. Why a table and not a file next to the SQLite
database? PostgreSQL deployments have no such file, and the database is already the one
thing every worker shares. Whoever can read the database can forge a session cookie, but
they can read every report already, and revoking a key still ends its sessions (pages
check the key on every view).
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.db import engine_of
from experiments import clock
from experiments.models import ServiceSecret

SESSION_SECRET = "session"


def stored_secret(engine: sa.Engine, name: str = SESSION_SECRET) -> str:
    """The named secret, created on first use; concurrent creators agree on one value."""
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
        return conn.scalar(sa.select(ServiceSecret.value).where(ServiceSecret.name == name))


class LazySecretSessions(SecureCookieSessionInterface):
    """Signed-cookie sessions, opened only on the analyst pages.

    API requests never read the cookie, so they never need the key (no database read on
    the hot path); the pages resolve it on first use.
    """

    def __init__(self, paths: tuple[str, ...]) -> None:
        self.paths = paths

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            app.secret_key = stored_secret(engine_of(app))
        return super().get_signing_serializer(app)

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith(self.paths):
            return self.session_class()
        try:
            return super().open_session(app, request)
        except DBAPIError:
            # Database down: the page's own query answers 503 with the usual error shape.
            return self.session_class()
