"""Run Alembic from code, against the app's engine (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from experiments.partitions import is_partition

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Migrate to `revision`; on SQLite and PostgreSQL alike, inside one transaction."""
    cfg = alembic_config()
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


def current_revision(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
