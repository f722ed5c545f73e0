"""The 503 contract, in process: a database that does not answer gives a fast 503 with
Retry-After, and pooled connections that died are replaced (pool_pre_ping), not reported."""

from __future__ import annotations

import time
import uuid

import pytest
import sqlalchemy as sa

from app import create_app
from app.db import dispose as db_dispose
from app.db import engine_of
from bench._servers import free_port
from tests.conftest import make_team
from tests.integration.helpers import experiment_body

FAKE_KEY = {"Authorization": "Bearer tlr_0123456789abcdef_secret"}


@pytest.fixture
def make_app():
    made = []

    def build(url: str):
        app = create_app({"DATABASE_URL": url, "TESTING": True})
        made.append(app)
        return app

    yield build
    for app in made:
        db_dispose(app)


@pytest.mark.parametrize("path", ["/v1/experiments/x/rank", "/v1/events/e/rewards"])
def test_unreachable_postgres_answers_503_with_retry_after(make_app, path):
    client = make_app(f"postgresql://root@127.0.0.1:{free_port()}/nothing").test_client()
    started = time.monotonic()
    response = client.post(path, json={"context": {}}, headers=FAKE_KEY)
    assert time.monotonic() - started < 5.0
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json["error"]["code"] == "unavailable"


def test_dead_pooled_connections_are_replaced(make_app, pg_url):
    app = make_app(pg_url)
    client = app.test_client()
    keys = make_team(app, f"dead-{uuid.uuid4().hex[:8]}")
    key = f"dead-{uuid.uuid4().hex[:8]}"
    assert client.post("/v1/experiments", json=experiment_body(key),
                       headers=keys.auth("admin")).status_code == 201

    def rank():
        return client.post(f"/v1/experiments/{key}/rank", json={"context": {"user_id": "u"}},
                           headers=keys.auth("client"))

    assert rank().status_code == 200
    assert engine_of(app).pool.checkedin() >= 1  # an idle pooled connection to kill
    killer = sa.create_engine(engine_of(app).url, poolclass=sa.pool.NullPool)
    with killer.connect() as conn:
        killed = conn.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND application_name = ''")).scalar_one()
    killer.dispose()
    assert killed >= 1
    answers = [rank().status_code for _ in range(3)]
    assert answers == [200, 200, 200]
