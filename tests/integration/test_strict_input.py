"""Strict and helpful input over HTTP: misspelled configuration keys, reward ranges,
the unit-field warning, size and depth limits, declared PII nested in a namespace."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from experiments.models import Decision
from tests.conftest import session_of
from tests.integration.helpers import experiment_body, rank, register

ADMIN_TYPOS = [
    ({"reward": {"events": {"click": 1}, "window_second": 5}}, "reward.window_second",
     "window_seconds"),
    ({"actions": [{"id": "a", "featurs": {"c": "1"}}], "champion": {"type": "uniform"}},
     "actions[0].featurs", "features"),
    ({"learner": {"exploration": "squarecb", "params": {"gamma_scal": 5,
                                                        "reward_range": [0, 1]}}},
     "learner.params.gamma_scal", "gamma_scale"),
    ({"champion": {"type": "fixed", "actionid": "hero-1"}}, "champion.actionid", "action_id"),
    ({"unitfield": "user_id"}, "unitfield", "unit_field"),
]


@pytest.mark.parametrize("overrides, field, suggestion", ADMIN_TYPOS)
def test_a_misspelled_key_is_refused_and_nothing_is_created(client, team, overrides, field,
                                                           suggestion):
    response = client.post("/v1/experiments", json=experiment_body(**overrides),
                           headers=team.auth())
    assert response.status_code == 400, response.json
    error = response.json["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == field
    assert error["details"][0]["suggestion"] == suggestion
    assert f"did you mean `{suggestion}`?" in error["message"]
    assert client.get("/v1/experiments/homepage-hero",
                      headers=team.auth()).status_code == 404


def test_a_misspelled_key_in_a_patch_changes_nothing(client, team):
    created = register(client, team)
    patched = client.patch("/v1/experiments/homepage-hero", headers=team.auth(), json={
        "learner": {"exploration": "epsilon", "parms": {"epsilon": 0.1}}})
    assert patched.status_code == 400
    assert patched.json["error"]["details"][0] == {
        "field": "learner.parms", "message": "unknown field; did you mean `params`?",
        "suggestion": "params"}
    now = client.get("/v1/experiments/homepage-hero", headers=team.auth()).json
    assert now["version"] == created["version"] and now["learner"] == created["learner"]


def test_the_readme_value_event_needs_a_reward_range_and_the_answer_says_which(client, team):
    body = experiment_body(learner={"exploration": "squarecb", "params": {"gamma_scale": 10}})
    refused = client.post("/v1/experiments", json=body, headers=team.auth())
    assert refused.status_code == 400
    detail = refused.json["error"]["details"][0]
    assert detail["field"] == "learner.params.reward_range"
    assert "reward.events.purchase" in detail["message"]
    body["learner"]["params"]["reward_range"] = [0, 200]
    created = client.post("/v1/experiments", json=body, headers=team.auth())
    assert created.status_code == 201, created.json
    assert created.json["learner"]["params"]["reward_range"] == [0.0, 200.0]
    assert created.json["notes"] == [{
        "code": "reward_range", "field": "learner.params.reward_range",
        "message": "learning assumes rewards in [0, 200]: as given"}]


def test_rank_warns_when_the_unit_field_is_missing(client, team):
    register(client, team)  # unit_field: user_id
    missing = rank(client, team, context={"userid": "u-1", "hour": 3})
    assert missing.status_code == 200
    assert [w["code"] for w in missing.json["warnings"]] == ["unit_missing"]
    assert missing.json["warnings"][0]["field"] == "context.user_id"
    assert "warnings" not in rank(client, team, context={"user_id": "u-1"}).json
    assert "warnings" not in rank(client, team, context={"hour": 3}, unit_id="u-1").json


def deep(levels: int) -> str:
    return '{"context": ' + "[" * levels + "]" * levels + "}"


JSON_POSTS = ["/v1/experiments", "/v1/experiments/homepage-hero/rank",
              "/v1/events/e1/rewards", "/v1/experiments/homepage-hero/rewards",
              "/v1/keys", "/personalizer/v1.0/rank", "/personalizer/v1.0/multislot/rank",
              "/personalizer/v1.0/events/e1/reward"]


def test_a_body_nested_5000_levels_deep_is_a_400_not_a_500(client, team):
    register(client, team)
    for path in JSON_POSTS:
        headers = {**team.auth("admin" if path.endswith(("experiments", "keys"))
                               else "client"), "X-Tailor-Experiment": "homepage-hero"}
        for levels in (5000, 40):
            response = client.post(path, data=deep(levels), headers=headers,
                                   content_type="application/json")
            assert response.status_code == 400, (path, levels, response.data)
            error = response.json["error"]
            inner = error.get("innerError", {}).get("code") or error["code"]
            assert inner == "nesting_too_deep", (path, error)


def test_a_patch_nested_too_deep_is_refused(client, team):
    register(client, team)
    response = client.patch("/v1/experiments/homepage-hero", data=deep(5000),
                            headers=team.auth(), content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "nesting_too_deep"


@pytest.mark.parametrize("context, field", [
    ({f"f{i}": i for i in range(40_000)}, "context"),
    ({"user": {f"f{i}": 1 for i in range(3000)}}, "context.user"),
    ({"bio": "x" * 900_000}, "context.bio"),
    ({"tags": ["ok", "y" * 5000]}, "context.tags[1]"),
    ({"x" * 5000: 1}, "context." + "x" * 5000),
])
def test_oversized_contexts_are_refused_with_413_naming_the_path(app, client, team, context,
                                                                 field):
    register(client, team)
    response = rank(client, team, context=context, event_id="big")
    assert response.status_code == 413, response.json
    assert response.json["error"]["code"] == "payload_too_large"
    assert response.json["error"]["details"][0]["field"] == field
    with session_of(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Decision)) == 0


def test_oversized_inline_action_features_are_refused(client, team):
    register(client, team)
    response = rank(client, team, actions=[{"id": "a", "features": {"d": "z" * 5000}}])
    assert response.status_code == 413
    assert response.json["error"]["details"][0]["field"] == "actions[0].features.d"


def test_the_personalizer_rank_applies_the_same_limits(client, team):
    register(client, team)
    response = client.post("/personalizer/v1.0/rank", headers={
        **team.auth("client"), "X-Tailor-Experiment": "homepage-hero"}, json={
        "contextFeatures": [{"bio": "x" * 10_000}],
        "actions": [{"id": "a", "features": [{"c": "1"}]}]})
    assert response.status_code == 413
    assert response.json["error"]["code"] == "PayloadSizeExceeded"
    assert response.json["error"]["target"] == "contextFeatures.bio"


def test_limits_are_configurable(app, client, team):
    app.config["MAX_CONTEXT_FEATURES"] = 3
    app.extensions.pop("tailor.context_limits", None)
    register(client, team)
    assert rank(client, team, context={"a": 1, "b": 2, "c": 3}).status_code == 200
    assert rank(client, team, context={"a": 1, "b": 2, "c": 3, "d": 4}).status_code == 413
    app.config["MAX_STRING_LENGTH"] = 10_000  # above the default: inline actions follow
    app.extensions.pop("tailor.context_limits", None)
    long = rank(client, team, context={"a": 1}, actions=[{"id": "a",
                                                         "features": {"d": "z" * 5000}}])
    assert long.status_code == 200, long.json


@pytest.mark.parametrize("field, key", [("user.email", "email"),
                                        ("user.nickname", "nickname")])
def test_a_declared_nested_field_is_hashed_without_a_detector_warning(app, client, team,
                                                                      field, key):
    # "jane" does not look personal: only the declaration can protect it. "nickname" is on
    # no default list either, so skipping declared nested names would log it in clear.
    app.config["PII_DEFAULT_FIELDS"] = ""
    app.extensions["tailor.pii_defaults"] = frozenset()
    register(client, team, pii_fields=[field])
    context = {"user_id": "u-1", "user": {key: "jane", "segment": "new"}}
    ranked = rank(client, team, context=context, event_id="n1")
    assert ranked.status_code == 200, ranked.json
    assert "warnings" not in ranked.json
    with session_of(app) as session:
        logged = session.scalars(sa.select(Decision.context)).one()
    assert logged["user"][key].startswith("pii:") and logged["user"]["segment"] == "new"
    assert "jane" not in json.dumps(logged)
    client.patch("/v1/experiments/homepage-hero", json={"pii_mode": "reject"},
                 headers=team.auth())
    refused = rank(client, team, context=context, event_id="n2")
    assert refused.status_code == 422
    assert refused.json["error"]["details"][0]["field"] == f"context.user.{key}"


def test_a_lone_surrogate_anywhere_is_a_400_not_a_500(client, team):
    """JSON can escape half a UTF-16 pair; it is not text (it cannot even be hashed)."""
    register(client, team)
    bodies = ['{"context": {"name": "x\\ud800"}, "actions": [{"id": "a"}]}',
              '{"context": {"\\udfff": 1}, "event_id": "s1"}',
              '{"type": "click", "idempotency_key": "\\ud800"}']
    for path in JSON_POSTS:
        headers = {**team.auth("admin" if path.endswith(("experiments", "keys"))
                               else "client"), "X-Tailor-Experiment": "homepage-hero"}
        for body in bodies:
            response = client.post(path, data=body, headers=headers,
                                   content_type="application/json")
            assert response.status_code == 400, (path, body, response.data)
    with session_of(client.application) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Decision)) == 0
