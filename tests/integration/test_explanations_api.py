"""Rank with "explain": true, and the decision log's explanations recomputed with the
model version that decided."""

from __future__ import annotations

import sqlalchemy as sa

from experiments.models import Experiment
from tests.conftest import session_of
from tests.integration.helpers import register
from tests.integration.test_learning_loop import _close_windows, _drain, _learner


def test_rank_explains_the_bandit_choice_and_the_log_recomputes_it(app, client, team):
    register(client, team, key="hero", champion={"type": "fixed", "action_id": "hero-1"},
             arms={"bandit": 1.0})
    context = {"user_id": "u-1", "user": {"segment": "pro"}, "hour": 9}
    for index in range(30):
        client.post("/v1/experiments/hero/rank", headers=team.auth("client"),
                    json={"context": context, "event_id": f"e{index}"})
        client.post(f"/v1/events/e{index}/rewards", json={"type": "click"},
                    headers=team.auth("client"))
    _close_windows(app)
    with session_of(app) as session:
        experiment_id = session.scalar(sa.select(Experiment.id))
    _drain(_learner(app, experiment_id))
    answer = client.post("/v1/experiments/hero/rank", headers=team.auth("client"),
                         json={"context": context, "explain": True, "event_id": "x"})
    assert answer.status_code == 200, answer.json
    explanation = answer.json["explanation"]
    assert explanation["action_id"] == answer.json["action_id"]
    assert answer.json["model_version"] >= 1
    names = [f["name"] for f in explanation["features"]]
    assert 0 < len(names) <= 10 and any("*" in name for name in names)
    logged = client.get("/v1/experiments/hero/decisions?explain=true&limit=1000",
                        headers=team.auth("analyst")).json["decisions"]
    last = [d for d in logged if d["event_id"] == "x"][0]
    assert last["explanation"] == explanation  # the same model version, the same weights
    first = logged[0]  # decided by the fresh model: nothing learned, nothing to credit
    assert first["model_version"] == 0 and first["explanation"]["features"] == []
    plain = client.get("/v1/experiments/hero/decisions", headers=team.auth("analyst"))
    assert "explanation" not in plain.json["decisions"][0]


def test_other_arms_have_no_explanation(client, team):
    register(client, team, key="hero", arms={"champion": 1.0})
    answer = client.post("/v1/experiments/hero/rank", headers=team.auth("client"),
                         json={"context": {"user_id": "u"}, "explain": True})
    assert answer.status_code == 200 and answer.json["explanation"] is None
    bad = client.post("/v1/experiments/hero/rank", headers=team.auth("client"),
                      json={"context": {}, "explain": "yes"})
    assert bad.status_code == 400
