"""Engine and per-request session. One engine per app, built in `init_app`, never at import."""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, g
from sqlalchemy.orm import Session, sessionmaker

from experiments.direct import Direct

EXTENSION = "tailor.db"
DIRECT = "tailor.db.direct"


def make_engine(url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 5,
                autocommit: bool = False, statement_timeout_ms: int = 0) -> sa.Engine:
    """Build an engine; SQLite gets WAL, a busy timeout and foreign keys on each connection.

    `autocommit=True` makes the engine of `experiments.direct` (single idempotent
    statements, no pre-ping: it retries once on a lost connection instead).
    `statement_timeout_ms` bounds every statement on PostgreSQL, so that a stuck query
    answers an error instead of holding a worker thread (0: no bound).
    """
    # Autocommit: no transaction is ever left open on a returned connection (experiments.
    # direct ends each one itself), so the pool's rollback-on-return is skipped.
    options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT",
                               "pool_reset_on_return": None} if autocommit else {}
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                                  **options)
        sa.event.listen(engine, "connect", _sqlite_pragmas(sqlite_synchronous))
        return engine
    url = _with_psycopg_driver(url)
    connect_args: dict[str, Any] = {"connect_timeout": 5}
    if statement_timeout_ms:
        connect_args["options"] = f"-c statement_timeout={int(statement_timeout_ms)}"
    return sa.create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=not autocommit,
        pool_recycle=1800, connect_args=connect_args, **options,
    )


def _with_psycopg_driver(url: str) -> str:
    # `postgresql://` means psycopg2 to SQLAlchemy; we ship psycopg 3.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def ensure_sqlite_dir(url: str | sa.URL) -> None:
    """Make the directory of a SQLite database file. Only what creates the database calls
    it (migrations: `tailor init`, `tailor db upgrade`); building an engine makes nothing,
    so a command refused for a missing database leaves no empty directory behind."""
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(synchronous: str):
    level = synchronous.upper()
    if level not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise ValueError(f"TAILOR_SQLITE_SYNCHRONOUS must be OFF/NORMAL/FULL/EXTRA, not {level!r}")

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={level}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return on_connect


def init_app(app: Flask) -> None:
    engine = make_engine(
        app.config["DATABASE_URL"],
        sqlite_synchronous=app.config["SQLITE_SYNCHRONOUS"],
        pool_size=app.config["DB_POOL_SIZE"],
        statement_timeout_ms=app.config["STATEMENT_TIMEOUT_MS"],
    )
    _forget_pool_after_fork(engine)
    app.extensions[EXTENSION] = sessionmaker(engine, expire_on_commit=False)
    hot = make_engine(
        app.config["DATABASE_URL"], sqlite_synchronous=app.config["SQLITE_SYNCHRONOUS"],
        pool_size=app.config["DB_POOL_SIZE"], autocommit=True,
        statement_timeout_ms=app.config["STATEMENT_TIMEOUT_MS"])
    _forget_pool_after_fork(hot)
    app.extensions[DIRECT] = Direct(hot)
    app.teardown_appcontext(_close_session)


def _forget_pool_after_fork(engine: sa.Engine) -> None:
    # gunicorn --preload builds the app once and forks the workers: a worker must never
    # use a connection its parent opened (SQLAlchemy's recipe for forked processes).
    ref = weakref.ref(engine)

    def after_fork_in_child() -> None:
        forked = ref()
        if forked is not None:
            forked.dispose(close=False)

    os.register_at_fork(after_in_child=after_fork_in_child)


def engine_of(app: Flask) -> sa.Engine:
    return app.extensions[EXTENSION].kw["bind"]


def dispose(app: Flask) -> None:
    """Close every pooled connection of the app's engines (tests, shutdown)."""
    engine_of(app).dispose()
    app.extensions[DIRECT].dispose()


def direct() -> Direct:
    """The hot path's single-statement writer (see experiments.direct)."""
    return current_app.extensions[DIRECT]


def session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = current_app.extensions[EXTENSION]()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    db_session = g.pop("db_session", None)
    if db_session is not None:
        db_session.close()
