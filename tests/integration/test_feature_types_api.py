"""Declared text and vector fields through the API: rank, the decision log (as sent), the
learner (same encoder), and clear 400s naming the path."""

from __future__ import annotations

import sqlalchemy as sa

from experiments.models import Experiment, Model
from tests.conftest import session_of
from tests.integration.helpers import register
from tests.integration.test_learning_loop import _close_windows, _drain, _learner

TYPES = {"user.embedding": "vector", "bio": "text", "action.blurb": "text",
         "profile.vec": "vector"}
ACTIONS = [{"id": "a1", "features": {"blurb": "Trail running shoes"}},
           {"id": "a2", "features": {"blurb": "City bags"}}]


def _register(client, team, **extra):
    return register(client, team, key="typed", actions=ACTIONS, feature_types=TYPES,
                    champion={"type": "uniform"}, arms={"bandit": 1.0}, **extra)


def _rank(client, team, context, **body):
    return client.post("/v1/experiments/typed/rank", headers=team.auth("client"),
                       json={"context": context, **body})


def test_vectors_and_text_rank_log_and_learn(app, client, team):
    _register(client, team)
    context = {"user_id": "u-1", "user": {"embedding": [0.1, -0.2, 0.3]},
               "bio": "Loves TRAIL running"}
    for index in range(20):
        answer = _rank(client, team, context, event_id=f"e{index}")
        assert answer.status_code == 200, answer.json
    logged = client.get("/v1/experiments/typed/decisions",
                        headers=team.auth("analyst")).json["decisions"][0]
    assert logged["context"]["user"]["embedding"] == [0.1, -0.2, 0.3]  # as sent
    assert logged["context"]["bio"] == "Loves TRAIL running"
    _close_windows(app)
    with session_of(app) as session:
        experiment_id = session.scalar(sa.select(Experiment.id).where(Experiment.key == "typed"))
    learner = _learner(app, experiment_id)
    assert _drain(learner) == 20  # the learner encodes them too (none skipped)
    with session_of(app) as session:
        assert session.scalar(sa.select(Model.examples_learned)) == 20


def test_bad_vectors_are_400_naming_the_path(client, team):
    _register(client, team)
    cases = [({"user": {"embedding": [1.0, "x"]}}, "context.user.embedding[1]"),
             ({"user": {"embedding": [0.5] * 1025}}, "context.user.embedding"),
             ({"user": {"other": [1.0, 2.0]}}, "context.user.other[0]"),
             ({"bio": 3}, "context.bio")]
    for context, path in cases:
        answer = _rank(client, team, context)
        assert answer.status_code == 400, (context, answer.json)
        assert answer.json["error"]["details"][0]["field"] == path
    bad_action = _rank(client, team, {}, actions=[{"id": "x", "features": {"blurb": 5}}])
    assert bad_action.status_code == 400
    assert "features.blurb" in bad_action.json["error"]["message"]
    assert client.get("/v1/experiments/typed/decisions",
                      headers=team.auth("analyst")).json["decisions"] == []


def test_feature_types_are_validated_and_fixed_at_registration(client, team):
    bad = client.post("/v1/experiments", headers=team.auth("admin"), json={
        "key": "bad", "actions": ACTIONS, "feature_types": {"bio": "image"}})
    assert bad.status_code == 400
    assert bad.json["error"]["details"][0]["field"] == "feature_types.bio"
    _register(client, team)
    patched = client.patch("/v1/experiments/typed", headers=team.auth("admin"),
                           json={"feature_types": {}})
    assert patched.status_code == 400


def test_profile_vectors_declared_by_the_experiment(app, client, team):
    app.config["PROFILE_CHECK_SECONDS"] = 0.0
    _register(client, team, profile={"namespace": "profile", "max_age_seconds": 60})
    client.put("/v1/units/u-1/profile", headers=team.auth("client"),
               json={"features": {"vec": [0.5, 0.25], "bio": "likes hills"}})
    answer = _rank(client, team, {"user_id": "u-1"})
    assert answer.status_code == 200 and "warnings" not in answer.json
    logged = client.get("/v1/experiments/typed/decisions",
                        headers=team.auth("analyst")).json["decisions"][0]
    assert logged["context"]["profile"] == {"vec": [0.5, 0.25], "bio": "likes hills"}
