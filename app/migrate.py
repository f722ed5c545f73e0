"""Run Alembic from code, against the app's engine (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command, util
from alembic.config import Config
from alembic.script import ScriptDirectory

from experiments.partitions import is_partition

# Inside the package, so that an installed wheel finds them (alembic.ini at the root of a
# checkout points the `alembic` command here too).
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Migrate to `revision`; on SQLite and PostgreSQL alike, inside one transaction, so a
    migration that fails half-way leaves the database as it was."""
    cfg = alembic_config()
    own = _transactional_sqlite(engine) if engine.dialect.name == "sqlite" else None
    with (own or engine).begin() as connection:
        if connection.dialect.name == "postgresql":
            # Two processes starting together must not both run the migrations.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(7438291)"))
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
    if own is not None:
        own.dispose()


def _transactional_sqlite(engine: sa.Engine) -> sa.Engine:
    """An engine on `engine`'s SQLite file whose transactions hold DDL too. Python's sqlite3
    driver opens a transaction only before INSERT/UPDATE/DELETE, so each CREATE or ALTER
    was committed by itself (a failed first run left half a schema). Here the driver opens
    none and the transaction starts with BEGIN IMMEDIATE: it also takes the write lock at
    once, so a second `tailor init` waits, then finds the schema migrated (SQLAlchemy's
    recipe for pysqlite, "Serializable isolation / Savepoints / Transactional DDL")."""
    from app.db import ensure_sqlite_dir, make_engine

    ensure_sqlite_dir(engine.url)
    own = make_engine(engine.url.render_as_string(hide_password=False))

    @sa.event.listens_for(own, "connect")
    def _driver_opens_no_transaction(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.isolation_level = None  # type: ignore[attr-defined]

    @sa.event.listens_for(own, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return own


def include_object(obj: object, name: str | None, type_: str, reflected: bool,
                   compare_to: object) -> bool:
    """Autogenerate's filter: time partitions (and their indexes) are made by
    `tailor partitions maintain`, not by the models; compare their parents only."""
    table = getattr(obj, "table", None) if type_ != "table" else obj
    table_name = getattr(table, "name", None) or ""
    return not (reflected and compare_to is None and is_partition(table_name))


def heads() -> list[str]:
    return list(ScriptDirectory.from_config(alembic_config()).get_heads())


def is_known(revision: str) -> bool:
    """Whether `revision` is one of this code's migrations (else the database is newer)."""
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except util.CommandError:
        return False


def current_revision(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def clashing_tables(engine: sa.Engine) -> list[str]:
    """Tables of a database without Tailor's schema that the first migration would create:
    another application's database (or what a failed first run left) that `init` must not
    touch."""
    from experiments.models import Base

    present = set(sa.inspect(engine).get_table_names())
    return sorted(present & {table.name for table in Base.metadata.sorted_tables})
