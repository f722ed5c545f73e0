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

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy.exc import DBAPIError

from app.db import engine_of
from experiments import service_secrets

SESSION_SECRET = "session"


class LazySecretSessions(SecureCookieSessionInterface):
    """Signed-cookie sessions, opened only on the analyst pages.

    API requests never read the cookie, so they never need the key (no database read on
    the hot path); the pages resolve it on first use.
    """

    def __init__(self, paths: tuple[str, ...]) -> None:
        self.paths = paths

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            app.secret_key = service_secrets.stored_secret(engine_of(app), SESSION_SECRET)
        return super().get_signing_serializer(app)

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith(self.paths):
            return self.session_class()
        try:
            return super().open_session(app, request)
        except DBAPIError:
            # Database down: the page's own query answers 503 with the usual error shape.
            return self.session_class()
