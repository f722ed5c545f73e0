"""The schema comes only from migrations: one head, upgrade == models, and an upgrade of
a database with data keeps every row."""

import hashlib
import hmac
import json
import os
import time

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.orm import Session

from app import create_app
from app.db import dispose as db_dispose
from app.db import make_engine
from app.migrate import heads, include_object, upgrade
from experiments import keys, rank_commands, registry
from experiments.learning import snapshots
from experiments.models import Base, Model
from tests.conftest import session_of
from tests.integration.helpers import ACTIONS, experiment_body


def test_single_head():
    assert heads() == ["0008"]


def test_upgrade_from_empty_matches_models(database_url):
    engine = make_engine(database_url)  # the fixture migrated it from empty
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


def test_every_model_table_exists(database_url):
    engine = make_engine(database_url)
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert {t.name for t in Base.metadata.sorted_tables} <= tables


DECISION_SQL = (
    "INSERT INTO decisions (experiment_id, event_id, request_hash, arm, policy, "
    "experiment_version, phase, unit_id, context, actions, pmf, chosen_index, action_id, "
    "propensity, deferred, activated_at, closes_at, reward, reward_count, created_at) "
    "VALUES (:e, :event, :hash, 'champion', 'fixed:hero-1', 1, 'online', :unit, :context, "
    ":actions, :pmf, 0, 'hero-1', 1.0, false, :t, :t + 600, :reward, :count, :t)")


def _seed_0001(session, team, days: int) -> dict[str, str]:
    """Decisions over `days` days (one rewarded, with a key) written at revision 0001;
    the event ids → the request hash a rank of BODY gives."""
    experiment = registry.create(session, team.id, experiment_body(), "test")
    body = rank_commands.parse_request(BODY, 10)
    request_hash = hmac.new(team.pii_salt.encode(), body.request_hash.encode(),
                            hashlib.sha256).hexdigest()
    start = time.time() - days * 86400
    for i in range(days):
        session.execute(sa.text(DECISION_SQL), {
            "e": experiment.id, "event": f"old-{i}", "hash": request_hash, "unit": f"u-{i}",
            "context": json.dumps(BODY["context"]), "actions": json.dumps(ACTIONS),
            "pmf": json.dumps([1.0, 0.0, 0.0]), "t": start + i * 86400,
            "reward": 1.0 if i == 0 else None, "count": int(i == 0)})
    decision_id = session.execute(sa.text(
        "SELECT id FROM decisions WHERE event_id = 'old-0'")).scalar_one()
    session.execute(sa.text(
        "INSERT INTO reward_events (experiment_id, decision_id, event_id, type, value, "
        "raw_value, idempotency_key, late, received_at) VALUES (:e, :d, 'old-0', 'click', 1.0, "
        "1.0, 'k-old', false, :t)"), {"e": experiment.id, "d": decision_id, "t": start + 5})
    session.commit()
    return {f"old-{i}": request_hash for i in range(days)}


def _seeded_at_0001(engine: sa.Engine, days: int) -> dict[str, str]:
    """Migrate an empty database to 0001 and seed it (`_seed_0001`) for team-a."""
    upgrade(engine, "0001")
    with Session(engine) as session:
        team = keys.get_or_create_team(session, "team-a")
        session.commit()
        return _seed_0001(session, team, days)


BODY = {"event_id": "old-0", "context": {"user_id": "u-0", "hour": 14}}


def test_upgrade_from_0001_keeps_every_row_and_idempotency(empty_url) -> None:
    engine = make_engine(empty_url)
    written = _seeded_at_0001(engine, days=5)
    with engine.connect() as conn:
        before = conn.execute(sa.text(
            "SELECT id, event_id, created_at, reward FROM decisions ORDER BY id")).all()
    upgrade(engine)
    with engine.connect() as conn:
        after = conn.execute(sa.text(
            "SELECT id, event_id, created_at, reward FROM decisions ORDER BY id")).all()
        found_keys = conn.execute(sa.text(
            "SELECT event_id, decision_id FROM decision_keys ORDER BY decision_id")).all()
        reward_keys = conn.execute(sa.text(
            "SELECT idempotency_key FROM reward_keys")).scalars().all()
        homes = conn.execute(sa.text("SELECT tableoid::regclass::text FROM decisions")
                             ).scalars().all() if engine.dialect.name == "postgresql" else []
    engine.dispose()
    assert after == before and len(after) == len(written)
    assert found_keys == [(row.event_id, row.id) for row in before]
    assert reward_keys == ["k-old"]
    assert "decisions_default" not in homes  # every old day got its partition

    app = create_app({"DATABASE_URL": empty_url, "TESTING": True})
    client = app.test_client()
    with session_of(app) as session:
        team = keys.find_team(session, "team-a")
        admin = keys.create_key(session, team, "admin")[0]
        plain = keys.create_key(session, team, "client")[0]
        session.commit()
    auth = {"Authorization": f"Bearer {plain}"}
    replay = client.post("/v1/experiments/homepage-hero/rank", json=BODY, headers=auth)
    assert replay.status_code == 200 and replay.json["action_id"] == "hero-1"
    assert client.post("/v1/events/old-0/rewards", json={
        "type": "click", "idempotency_key": "k-old"}, headers=auth).json["status"] == \
        "duplicate"
    new = client.post("/v1/experiments/homepage-hero/rank", json=BODY | {"event_id": "new"},
                      headers=auth)
    assert new.status_code == 200
    log = client.get("/v1/experiments/homepage-hero/decisions?limit=100",
                     headers={"Authorization": f"Bearer {admin}"}).json["decisions"]
    assert [d["event_id"] for d in log] == [*written, "new"]
    assert log[-1]["id"] > max(row.id for row in before)
    db_dispose(app)


def _downgrade(engine: sa.Engine, revision: str) -> None:
    from alembic import command

    from app.migrate import alembic_config

    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def test_downgrade_to_0001_and_back_keeps_every_row(empty_url) -> None:
    """0002 is reversible: back to the unpartitioned tables of 0001 with every decision
    and keyed reward, then up again to the same rows and keys."""
    engine = make_engine(empty_url)
    written = _seeded_at_0001(engine, days=3)
    upgrade(engine)
    rows_sql = sa.text("SELECT id, event_id, created_at, reward FROM decisions ORDER BY id")
    with engine.connect() as conn:
        at_head = conn.execute(rows_sql).all()
    _downgrade(engine, "0001")
    with engine.connect() as conn:
        at_0001 = conn.execute(rows_sql).all()
        tables = set(sa.inspect(conn).get_table_names())
        rewards = conn.execute(sa.text(
            "SELECT idempotency_key FROM reward_events")).scalars().all()
    assert at_0001 == at_head and len(at_0001) == len(written)
    assert "decision_keys" not in tables and "reward_keys" not in tables
    assert rewards == ["k-old"]
    upgrade(engine)
    with engine.connect() as conn:
        again = conn.execute(rows_sql).all()
        found_keys = conn.execute(sa.text(
            "SELECT event_id FROM decision_keys ORDER BY decision_id")).scalars().all()
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert again == at_head
    assert found_keys == [row.event_id for row in at_head]
    assert diff == []


def test_the_alembic_command_works_from_the_checkout(tmp_path) -> None:
    """alembic.ini points `alembic` at app/migrations (inside the package since issue 16)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    alembic = [str(Path(sys.executable).parent / "alembic"), "-c", str(root / "alembic.ini")]
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/unused.db"}
    done = subprocess.run([*alembic, "heads"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()] == heads()


def test_a_snapshot_is_stored_as_given_and_uncompressed(app, team):
    """Model bytes come back byte for byte; on PostgreSQL they are stored out of line
    and uncompressed (0008): pglz cannot shrink VW's float weights and only spent the
    server's CPU trying. Zeros would compress, so they show which storage is in force."""
    data = bytes(300_000) + bytes(range(256)) * 100
    with session_of(app) as session:
        experiment = registry.create(session, team.team_id, experiment_body(), "test")
        model = snapshots.publish(session, experiment.id, arguments="--cb_explore_adf",
                                  data=data, examples_learned=0, metrics=None, source="test")
        session.commit()
        stored = session.execute(sa.select(Model.data).where(Model.id == model.id)).scalar_one()
        assert bytes(stored) == data
        if session.get_bind().dialect.name == "postgresql":
            size = session.scalar(sa.select(sa.func.pg_column_size(Model.data))
                                  .where(Model.id == model.id))
            assert size == len(data)


def test_a_failed_upgrade_leaves_the_database_as_it_was(empty_url):
    """Migrations run in one transaction on both backends: one that fails half-way (here at
    0003, whose `profiles` table is already there) leaves no half schema behind. SQLite's
    driver used to commit each DDL statement by itself (non-transactional DDL)."""
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE profiles (id INTEGER)"))
    with pytest.raises(sa.exc.DatabaseError, match="profiles"):
        upgrade(engine)
    assert set(sa.inspect(engine).get_table_names()) == {"profiles"}
    engine.dispose()
