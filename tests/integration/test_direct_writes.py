"""experiments.direct: the hot path's single autocommit statements, on both databases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.db import DIRECT, make_engine
from experiments.direct import Direct
from experiments.models import AuditLog, Decision, Team
from tests.conftest import session_of
from tests.integration.helpers import register


def _audit_insert() -> sa.Executable:
    return (sa.insert(AuditLog).values(
        team_id=sa.bindparam("team_id"), actor=sa.bindparam("actor"),
        action=sa.bindparam("action"), target=None, details=sa.bindparam("details"),
        created_at=sa.bindparam("created_at")).returning(AuditLog.id))


def test_first_serializes_json_and_commits_without_a_transaction(app, team):
    direct: Direct = app.extensions[DIRECT]
    statement = _audit_insert()
    with session_of(app) as session:
        team_id = session.scalar(sa.select(Team.id).where(Team.name == "team-a"))
    details = {"unicode": "é|:", "nested": {"list": [1, 2.5, None, True]}}
    row = direct.first(statement, {"team_id": team_id, "actor": "t", "action": "direct.test",
                                   "details": details, "created_at": 1.0})
    assert row is not None and isinstance(row[0], int)
    # Read through another engine: the row is committed, and the JSON round-trips.
    with session_of(app) as session:
        stored = session.get(AuditLog, row[0])
        assert stored is not None and stored.details == details
    assert direct.compiled(statement) is direct.compiled(statement)  # compiled once


def test_errors_come_back_as_sqlalchemy_errors_and_are_not_retried(app, team):
    direct: Direct = app.extensions[DIRECT]
    seen: list[sa.exc.DBAPIError] = []
    direct.on_error = seen.append
    with pytest.raises(sa.exc.IntegrityError):  # no such team: the foreign key refuses
        direct.first(_audit_insert(), {"team_id": 987654, "actor": None, "action": "x",
                                       "details": None, "created_at": 1.0})
    assert len(seen) == 1 and not seen[0].connection_invalidated


def test_unreachable_database_raises_operational_error_after_one_retry():
    from bench._servers import free_port

    engine = make_engine(f"postgresql://root@127.0.0.1:{free_port()}/none", autocommit=True)
    seen: list[sa.exc.DBAPIError] = []
    direct = Direct(engine, on_error=seen.append)
    with pytest.raises(sa.exc.OperationalError):
        direct.first(sa.select(sa.literal(1)), {})
    engine.dispose()


def test_a_lost_pooled_connection_is_replaced_and_the_rank_logged_once(app, client, team,
                                                                       database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("terminating a server connection needs PostgreSQL")
    register(client, team)

    def rank(event_id: str):
        return client.post("/v1/experiments/homepage-hero/rank",
                           json={"event_id": event_id, "context": {"user_id": "u1"}},
                           headers=team.auth("client"))

    assert rank("before").status_code == 200
    direct: Direct = app.extensions[DIRECT]
    assert direct.connections() >= 1  # this thread's, which the kill below ends
    killer = sa.create_engine(direct.engine.url, poolclass=sa.pool.NullPool)
    with killer.connect() as conn:
        killed = conn.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar_one()
    killer.dispose()
    assert killed >= 1
    answer = rank("after")
    assert answer.status_code == 200, answer.json
    with session_of(app) as session:
        count = session.scalar(sa.select(sa.func.count()).select_from(Decision)
                               .where(Decision.event_id == "after"))
    assert count == 1


def test_statement_timeout_bounds_both_engines_on_postgresql(pg_url):
    from app import create_app
    from app.db import dispose, engine_of

    app = create_app({"DATABASE_URL": pg_url, "TESTING": True, "STATEMENT_TIMEOUT_MS": 200})
    try:
        for engine in (engine_of(app), app.extensions[DIRECT].engine):
            with pytest.raises(sa.exc.OperationalError, match="statement timeout"), \
                    engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_sleep(2)"))
    finally:
        dispose(app)
