"""Alembic environment: runs against the connection or URL that `app.migrate` hands over."""

from alembic import context

from app import config as settings
from app.db import ensure_sqlite_dir, make_engine
from app.migrate import include_object
from experiments.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    """The URL `app.migrate` or alembic.ini gave, else Tailor's own database."""
    return config.get_main_option("sqlalchemy.url") or settings.load()["DATABASE_URL"]


def run_offline() -> None:
    context.configure(url=_url(),
                      target_metadata=target_metadata, literal_binds=True,
                      include_object=include_object)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    if _url().startswith("sqlite"):
        ensure_sqlite_dir(_url())  # `alembic upgrade head` from a checkout, as `tailor init`
    engine = make_engine(_url())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      include_object=include_object)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
