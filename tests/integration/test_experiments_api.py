"""Registry endpoints: create, read, change, history, validation naming the field."""

import pytest

from tests.integration.helpers import experiment_body, register


def test_create_returns_normalized_config(client, team):
    created = register(client, team)
    assert created["key"] == "homepage-hero"
    assert created["version"] == 1
    assert created["arms"] == {"champion": 0.5, "bandit": 0.5}
    assert created["learner"]["params"]["gamma_scale"] == 10
    assert created["reward"]["aggregation"] == "sum"


def test_defaults_fill_in_a_minimal_experiment(client, team):
    response = client.post("/v1/experiments", json={"key": "minimal"},
                           headers=team.auth("admin"))
    assert response.status_code == 201, response.json
    body = response.json
    assert body["status"] == "running"
    assert body["arms"] == {"bandit": 1.0}
    assert body["champion"] == {"type": "uniform"}
    assert body["reward"]["events"] == {"reward": "value"}


def test_get_and_list(client, team):
    register(client, team)
    assert client.get("/v1/experiments/homepage-hero",
                      headers=team.auth("analyst")).json["key"] == "homepage-hero"
    listed = client.get("/v1/experiments", headers=team.auth("analyst")).json
    assert [e["key"] for e in listed["experiments"]] == ["homepage-hero"]


def test_duplicate_key_conflicts(client, team):
    register(client, team)
    response = client.post("/v1/experiments", json=experiment_body(),
                           headers=team.auth("admin"))
    assert response.status_code == 409
    assert response.json["error"]["code"] == "conflict"


@pytest.mark.parametrize("overrides, field", [
    ({"key": "Bad Key!"}, "key"),
    ({"key": ""}, "key"),
    ({"arms": {"champion": 0.5, "bandit": 0.6}}, "arms"),
    ({"arms": {"champion": -0.1, "bandit": 1.1}}, "arms.champion"),
    ({"arms": {"nonsense": 1.0}}, "arms.nonsense"),
    ({"learner": {"exploration": "telepathy"}}, "learner.exploration"),
    ({"learner": {"exploration": "epsilon", "params": {"epsilon": 2}}},
     "learner.params.epsilon"),
    ({"learner": {"exploration": "epsilon", "mode": "lazy"}}, "learner.mode"),
    ({"champion": {"type": "fixed", "action_id": "nope"}}, "champion.action_id"),
    ({"champion": {"type": "oracle"}}, "champion.type"),
    ({"reward": {"window_seconds": -1}}, "reward.window_seconds"),
    ({"reward": {"aggregation": "mode"}}, "reward.aggregation"),
    ({"reward": {"events": {"click": "lots"}}}, "reward.events.click"),
    ({"actions": [{"id": "a"}, {"id": "a"}]}, "actions[1].id"),
    ({"actions": [{"id": "a", "features": {"x": float("inf")}}]}, "actions[0].features"),
    ({"status": "sleeping"}, "status"),
    ({"alpha": 0.9}, "alpha"),
    ({"colour": "blue"}, "colour"),
])
def test_validation_names_the_field(client, team, overrides, field):
    body = experiment_body(**overrides)
    response = client.post("/v1/experiments", json=body, headers=team.auth("admin"))
    assert response.status_code == 400, response.json
    error = response.json["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == field
    assert client.get("/v1/experiments", headers=team.auth("admin")).json["experiments"] == []


def test_patch_keeps_history(client, team):
    register(client, team)
    response = client.patch("/v1/experiments/homepage-hero",
                            json={"status": "paused", "arms": {"champion": 0.2, "bandit": 0.8}},
                            headers=team.auth("admin"))
    assert response.status_code == 200, response.json
    assert response.json["version"] == 2
    assert response.json["status"] == "paused"
    history = client.get("/v1/experiments/homepage-hero/history",
                         headers=team.auth("analyst")).json["history"]
    assert [(h["version"], h["change"]) for h in history] == [(1, "create"), (2, "update")]
    assert history[0]["config"]["status"] == "running"
    assert history[1]["details"] == {"fields": ["arms", "status"]}


@pytest.mark.parametrize("patch, field", [
    ({"key": "renamed"}, "key"), ({"unit_field": "x"}, "unit_field"),
    ({"arms": {"bandit": 0.3}}, "arms"), ({"whatever": 1}, "whatever")])
def test_bad_patch_changes_nothing(client, team, patch, field):
    register(client, team)
    response = client.patch("/v1/experiments/homepage-hero", json=patch,
                            headers=team.auth("admin"))
    assert response.status_code == 400
    assert response.json["error"]["details"][0]["field"] == field
    assert client.get("/v1/experiments/homepage-hero",
                      headers=team.auth("admin")).json["version"] == 1


def test_other_team_sees_nothing(client, team, other_team):
    register(client, team)
    for method, path in [("get", "/v1/experiments/homepage-hero"),
                         ("patch", "/v1/experiments/homepage-hero"),
                         ("post", "/v1/experiments/homepage-hero/rank")]:
        response = getattr(client, method)(path, json={"status": "paused"},
                                           headers=other_team.auth("admin"))
        assert response.status_code == 404, (method, path)
    assert client.get("/v1/experiments", headers=other_team.auth("admin")).json == {
        "experiments": []}
    # and the same key is free for the other team
    register(client, other_team)


def test_scopes(client, team):
    response = client.post("/v1/experiments", json=experiment_body(),
                           headers=team.auth("client"))
    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"
    assert client.post("/v1/experiments", json=experiment_body()).status_code == 401
    bad = {"Authorization": "Bearer tlr_nothing_here"}
    assert client.get("/v1/experiments", headers=bad).status_code == 401
