"""What every `tailor` command shares: loading the app, checking that its database is there
and migrated, and turning a user's mistake into one line with exit status 2 (never a
traceback)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import ScriptInfo

from app import config, db, migrate
from app.errors import ConfigError
from experiments.errors import DomainError
from experiments.logio.records import LineError

F = TypeVar("F", bound=Callable[..., Any])


class UserError(click.ClickException):
    """A mistake the user can fix (a missing file, a bad line, an unknown experiment, a
    database that is not there): printed as `Error: <message>`, exit status 2."""

    exit_code = 2


def shown_url(url: str | sa.URL) -> str:
    """A database URL without its password."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return str(url)


def _sqlite_file(url: str | sa.URL) -> Path | None:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser().resolve()


def _missing_sqlite_file(url: str) -> None:
    """Refuse, before anything opens it (which would create an empty file), a SQLite
    database that does not exist."""
    path = _sqlite_file(url)
    if path is not None and not path.exists():
        raise UserError(f"no database at {path}: run `tailor init` to create it, or set "
                        "DATABASE_URL to your database")


def _sqlite_place(url: str, *, existing: bool) -> None:
    """A SQLite path must name a file: refuse a directory; then refuse a file that is not
    there (`existing`), or make its directory (init, db upgrade) or say why it cannot."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise UserError(f"DATABASE_URL {shown_url(url)} is an in-memory SQLite database, gone "
                        "when the command ends: give a file, e.g. sqlite:////abs/path/tailor.db")
    path = _sqlite_file(url)
    if path is None:
        return
    if path.is_dir():
        raise UserError(f"{path} is a directory: DATABASE_URL names the database file, "
                        f"e.g. sqlite:///{path / 'tailor.db'}")
    if existing:
        _missing_sqlite_file(url)
        return
    try:
        db.ensure_sqlite_dir(url)
    except OSError as exc:
        raise UserError(f"cannot create the directory {path.parent} for the database: "
                        f"{exc.strerror or exc}; set DATABASE_URL (or XDG_DATA_HOME) to a "
                        "place you can write") from None


def _supported(url: str) -> bool:
    try:
        return sa.make_url(url).get_backend_name() in ("sqlite", "postgresql")
    except sa.exc.ArgumentError:
        return False


def load_app(*, existing: bool = True) -> Flask:
    """The app of this command (the test runner's, or a new one), inside its app context.
    `existing`: the database must already exist (every command but init/db upgrade)."""
    if current_app:
        return current_app._get_current_object()  # type: ignore[attr-defined]
    ctx = click.get_current_context()
    try:
        app = ctx.ensure_object(ScriptInfo).load_app()  # builds engines, connects nothing
        _sqlite_place(app.config["DATABASE_URL"], existing=existing)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        if isinstance(exc, ImportError) and _supported(config.load()["DATABASE_URL"]):
            raise  # not the URL's fault: a broken install
        raise UserError(f"DATABASE_URL is not a database Tailor can use ({exc}); give a "
                        "SQLite or PostgreSQL URL, e.g. sqlite:////abs/path/tailor.db or "
                        "postgresql://user@host/db") from None
    ctx.with_resource(app.app_context())
    return app


def check_database(engine: sa.Engine, *, migrated: bool = True) -> None:
    """Say plainly when the database cannot be reached or is not at this code's schema."""
    url = shown_url(engine.url)
    quiet = logging.getLogger("alembic.runtime.migration")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # not "Context impl ..." before every command
    try:
        current = migrate.current_revision(engine)
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise UserError(f"cannot reach the database {url} ({reason}): is it running, and is "
                        "DATABASE_URL right?") from None
    except sa.exc.DatabaseError as exc:  # SQLite: "file is not a database"
        if engine.dialect.name != "sqlite":
            raise
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise UserError(f"{url} is not a SQLite database ({reason}): is DATABASE_URL "
                        "right? `tailor init` makes a new one at a path with no file") from None
    finally:
        quiet.setLevel(level)
    heads = migrate.heads()
    if current is not None and not migrate.is_known(current):
        # Newer than this code (a rollback to an older Tailor): never migrate it.
        raise UserError(f"the database {url} is at revision {current}, which this Tailor "
                        f"({', '.join(heads)}) does not know: upgrade Tailor")
    if not migrated:
        if current is None and (clashing := migrate.clashing_tables(engine)):
            raise UserError(f"the database {url} has tables named like Tailor's but no "
                            f"Tailor schema ({', '.join(clashing)}): not Tailor's, or left by "
                            "a first `tailor init` that did not finish; point DATABASE_URL "
                            "at an empty database of its own")
        return
    if current is None:
        raise UserError(f"the database {url} has no Tailor schema: run `tailor init`")
    if current not in heads:
        raise UserError(f"the database {url} is at revision {current}, this Tailor needs "
                        f"{', '.join(heads)}: run `tailor db upgrade`")


def with_database(migrated: bool = True) -> Callable[[F], F]:
    """Decorate a command that uses the database (instead of flask's `with_appcontext`):
    the app is loaded, the database checked (`migrated=False`: only reachable, for the
    commands that migrate it), and domain errors become one-line errors (exit 2)."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            app = load_app(existing=migrated)
            check_database(db.engine_of(app), migrated=migrated)
            try:
                return command(*args, **kwargs)
            except (DomainError, LineError) as exc:
                raise UserError(getattr(exc, "message", None) or str(exc)) from None
            except UnicodeDecodeError as exc:
                raise UserError(f"not a UTF-8 text file ({exc.reason} at byte "
                                f"{exc.start})") from None
            except sa.exc.OperationalError as exc:
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                raise click.ClickException(f"database error, try again: {reason}") from None

        return run  # type: ignore[return-value]

    return decorate


def file_error(path: str, exc: OSError) -> UserError:
    """A file that cannot be read or written, in one line."""
    return UserError(f"cannot use {path}: {exc.strerror or exc}")
