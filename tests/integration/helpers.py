"""Small builders shared by the API tests."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

ACTIONS = [{"id": "hero-1", "features": {"category": "shoes", "price": 49.0}},
           {"id": "hero-2", "features": {"category": "bags"}},
           {"id": "hero-3", "features": {"category": "hats", "tags": ["new", "sale"]}}]


def experiment_body(key: str = "homepage-hero", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "key": key, "name": "Homepage hero banner", "actions": ACTIONS,
        "reward": {"events": {"click": 1.0, "purchase": "value"}, "aggregation": "sum",
                   "window_seconds": 600, "default": 0.0},
        # reward_range: required with a "value" event; [0, 1] keeps the tests' learning as
        # it was (their purchases are not learned from as amounts)
        "learner": {"exploration": "squarecb",
                    "params": {"gamma_scale": 10, "reward_range": [0, 1]}},
        "champion": {"type": "fixed", "action_id": "hero-1"},
        "arms": {"champion": 0.5, "bandit": 0.5},
        "unit_field": "user_id", "pii_fields": ["email"], "status": "running"}
    body.update(overrides)
    return body


def register(client, team, **overrides: Any) -> dict[str, Any]:
    response = client.post("/v1/experiments", json=experiment_body(**overrides),
                           headers=team.auth("admin"))
    assert response.status_code == 201, response.json
    return response.json


def rank(client, team, key: str = "homepage-hero", **body: Any):
    body.setdefault("context", {"user_id": "u-1", "user": {"segment": "new"}, "hour": 14})
    return client.post(f"/v1/experiments/{key}/rank", json=body, headers=team.auth("client"))


def learn_closed(app) -> None:
    """Close every decision's reward window and let the learner learn all of them."""
    from app.db import EXTENSION
    from experiments.learning.learner import ExperimentLearner, LearnerSettings
    from experiments.models import Decision, Experiment
    from tests.conftest import session_of
    with session_of(app) as session:
        session.execute(sa.update(Decision).values(closes_at=Decision.closes_at - 3600.0))
        session.commit()
        experiment_id = session.scalar(sa.select(Experiment.id))
    learner = ExperimentLearner(app.extensions[EXTENSION], experiment_id, "t",
                                LearnerSettings(grace_seconds=0.0))
    assert learner.start()
    while learner.step():
        pass
    learner.flush()
    learner.stop()
