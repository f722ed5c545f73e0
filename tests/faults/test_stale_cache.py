"""Rank caches experiments per process; a change made through another process must apply
to that process's next rank (two apps on one database stand for two gunicorn workers)."""

from __future__ import annotations

import pytest

from app import create_app
from app.db import dispose as db_dispose
from tests.integration.helpers import experiment_body, rank


@pytest.fixture
def worker_b(app, database_url):
    other = create_app({"DATABASE_URL": database_url, "TESTING": True,
                        "MODEL_CHECK_SECONDS": 0.0})
    yield other.test_client()
    db_dispose(other)


def patch(client, team, body):
    response = client.patch("/v1/experiments/homepage-hero", json=body,
                            headers=team.auth("admin"))
    assert response.status_code == 200, response.json


def test_status_and_arms_changed_elsewhere_apply_at_once(client, team, worker_b):
    assert client.post("/v1/experiments", json=experiment_body(),
                       headers=team.auth("admin")).status_code == 201
    assert rank(client, team).status_code == 200  # cached by worker A
    patch(worker_b, team, {"status": "stopped"})
    assert rank(client, team).status_code == 409
    patch(worker_b, team, {"status": "running", "arms": {"champion": 1.0, "bandit": 0.0}})
    answers = [rank(client, team, context={"user_id": f"u{i}"}).json for i in range(5)]
    assert {a["arm"] for a in answers} == {"champion"}
    assert {a["action_id"] for a in answers} == {"hero-1"}


def test_catalog_added_elsewhere_is_used(client, team, worker_b):
    body = experiment_body(actions=[])
    body.pop("actions")
    body["champion"] = {"type": "uniform"}
    assert client.post("/v1/experiments", json=body,
                       headers=team.auth("admin")).status_code == 201
    assert rank(client, team).status_code == 400  # no catalog and no actions: cached
    patch(worker_b, team, {"actions": [{"id": "only", "features": {"x": 1}}]})
    response = rank(client, team)
    assert response.status_code == 200, response.json
    assert response.json["action_id"] == "only"
