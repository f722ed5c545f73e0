"""The schema comes only from migrations: one head, and upgrade == models."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from app.db import make_engine
from app.migrate import heads
from experiments.models import Base


def test_single_head():
    assert heads() == ["0001"]


def test_upgrade_from_empty_matches_models(database_url):
    engine = make_engine(database_url)  # the fixture migrated it from empty
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_every_model_table_exists(database_url):
    engine = make_engine(database_url)
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
