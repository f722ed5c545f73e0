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
    """Migrate to `revision`; on SQLite and PostgreSQL alike, inside one transaction."""
    from app.db import ensure_sqlite_dir

    cfg = alembic_config()
    if engine.dialect.name == "sqlite":
        ensure_sqlite_dir(engine.url)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Two processes starting together must not both run the migrations.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(7438291)"))
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


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
