"""API.md's contract and /openapi.json checked from outside: every answer here has a status
the document lists and a body its schema accepts; every request body the server refuses for
its shape, the document refuses too (validated with jsonschema-rs, Schemathesis' own
validator, so the check is not ours)."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from tests.integration.helpers import experiment_body, rank, register

SPEC: dict[str, Any] = {}


def _spec(client) -> dict[str, Any]:
    if not SPEC:
        SPEC.update(client.get("/openapi.json").json)
    return SPEC


def _validator(client, schema: dict[str, Any]):
    return jsonschema_rs.validator_for(
        {**schema, "components": _spec(client)["components"]})


def request_schema_accepts(client, method: str, path: str, body: Any) -> bool:
    operation = _spec(client)["paths"][path][method]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    return _validator(client, schema).is_valid(body)


def documented(client, response, method: str, path: str):
    """`response`, after checking that its status is listed for the route and that its JSON
    body matches the schema listed for that status."""
    responses = _spec(client)["paths"][path][method]["responses"]
    status = str(response.status_code)
    assert status in responses, f"{method} {path}: {status} undocumented ({sorted(responses)})"
    content = responses[status].get("content", {}).get("application/json")
    if content is not None:
        errors = [e.message for e in _validator(client, content["schema"]).iter_errors(
            response.json)]
        assert not errors, (method, path, status, errors, response.json)
    return response


def assert_error(response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.json["error"]
    assert set(error) >= {"code", "message", "details"}, error
    assert isinstance(error["details"], list)
    if field is not None:
        assert [d["field"] for d in error["details"]] == [field], error
    return error


# ---- the error shape: {"error": {"code", "message", "details"}}, always ----------------------

def test_every_error_carries_code_message_and_details(client, team, other_team):
    register(client, team)
    admin, client_key = team.auth("admin"), team.auth("client")
    json_header = {**admin, "Content-Type": "application/json"}
    cases = [
        (client.get("/v1/experiments/homepage-hero", headers=other_team.auth("analyst")), 404,
         "get", "/v1/experiments/{key}"),
        (client.post("/v1/experiments", json=experiment_body(), headers=admin), 409,
         "post", "/v1/experiments"),
        (client.get("/v1/experiments"), 401, "get", "/v1/experiments"),
        (client.get("/v1/experiments", headers=client_key), 403, "get", "/v1/experiments"),
        (client.post("/v1/experiments", data="{not json", headers=json_header), 400,
         "post", "/v1/experiments"),
        (client.post("/v1/experiments", data="key=x", headers=admin), 415,
         "post", "/v1/experiments"),
        (rank(client, team, excluded_actions=["hero-1", "hero-2", "hero-3"]), 422,
         "post", "/v1/experiments/{key}/rank"),
        (client.post("/v1/events/nope/activate", headers=client_key), 404,
         "post", "/v1/events/{event_id}/activate"),
    ]
    for response, status, method, path in cases:
        assert_error(response, status)
        documented(client, response, method, path)
    for response in (client.get("/v1/nothing-here", headers=admin),
                     client.put("/v1/experiments", headers=admin)):
        assert_error(response, response.status_code)


# ---- request bodies: what the server refuses, the document refuses ---------------------------

UNKNOWN_FIELDS = [
    # (method, path template, url, scope, body with a misspelt field, the field's path)
    ("post", "/v1/experiments", "/v1/experiments", "admin",
     experiment_body("k2", window_second=600), "window_second"),
    ("post", "/v1/experiments", "/v1/experiments", "admin",
     experiment_body("k2", reward={"events": {"click": 1}, "window_second": 600}),
     "reward.window_second"),
    ("post", "/v1/experiments", "/v1/experiments", "admin",
     experiment_body("k2", learner={"exploration": "epsilon", "mod": "online"}),
     "learner.mod"),
    ("post", "/v1/experiments", "/v1/experiments", "admin",
     experiment_body("k2", champion={"type": "fixed", "actionid": "hero-1"}),
     "champion.actionid"),
    ("post", "/v1/experiments", "/v1/experiments", "admin",
     experiment_body("k2", actions=[{"id": "a", "feature": {"c": "x"}}]), "actions[0].feature"),
    ("post", "/v1/experiments", "/v1/experiments", "admin",
     experiment_body("k2", profile={"namespace": "p", "max_age": 60}), "profile.max_age"),
    ("patch", "/v1/experiments/{key}", "/v1/experiments/homepage-hero", "admin",
     {"stauts": "paused"}, "stauts"),
    ("patch", "/v1/experiments/{key}", "/v1/experiments/homepage-hero", "admin",
     {"learner": {"exploration": "epsilon", "mod": "online"}}, "learner.mod"),
    ("post", "/v1/experiments/{key}/rank", "/v1/experiments/homepage-hero/rank", "client",
     {"context": {"user_id": "u"}, "exclude_actions": ["hero-1"]}, "exclude_actions"),
    ("post", "/v1/experiments/{key}/rank", "/v1/experiments/homepage-hero/rank", "client",
     {"context": {"user_id": "u"}, "actions": [{"id": "hero-1", "feature": {}}]},
     "actions[0].feature"),
    ("post", "/v1/events/{event_id}/rewards", "/v1/events/e-1/rewards", "client",
     {"type": "click", "vaule": 1}, "vaule"),
    ("post", "/v1/experiments/{key}/rewards", "/v1/experiments/homepage-hero/rewards", "client",
     {"rewards": [{"event_id": "e-1", "type": "click"}], "flush": True}, "flush"),
    ("put", "/v1/units/{unit_id}/profile", "/v1/units/u-1/profile", "client",
     {"features": {"a": 1}, "ttl": 60}, "ttl"),
    ("patch", "/v1/units/{unit_id}/profile", "/v1/units/u-1/profile", "client",
     {"features": {"a": 1}, "ttl": 60}, "ttl"),
    ("post", "/v1/profiles", "/v1/profiles", "client",
     {"profiles": [{"unit_id": "u", "features": {"a": 1}, "ttl": 60}]}, "profiles[0].ttl"),
    ("post", "/v1/profiles", "/v1/profiles", "client",
     {"profiles": [{"unit_id": "u", "features": {"a": 1}}], "ttl": 60}, "ttl"),
    ("post", "/v1/keys", "/v1/keys", "admin", {"scope": "client", "nmae": "x"}, "nmae"),
]


@pytest.mark.parametrize("method, path, url, scope, body, field", UNKNOWN_FIELDS)
def test_a_misspelt_field_is_refused_by_server_and_document(client, team, method, path, url,
                                                            scope, body, field):
    register(client, team)
    rank(client, team, event_id="e-1")
    response = client.open(url, method=method.upper(), json=body, headers=team.auth(scope))
    assert_error(documented(client, response, method, path), 400, field)
    assert not request_schema_accepts(client, method, path, body), \
        f"/openapi.json accepts {body} for {method} {path}, which the server refuses"


@pytest.mark.parametrize("method, path, body", [
    ("post", "/v1/experiments", experiment_body()),
    ("post", "/v1/experiments", {"key": "plain"}),
    ("patch", "/v1/experiments/{key}", {"status": "paused", "learner": {"exploration": "greedy"}}),
    ("post", "/v1/experiments/{key}/rank", {"context": {"user_id": "u"}, "event_id": "e",
                                            "actions": [{"id": "a", "features": {"c": "x"}}],
                                            "excluded_actions": [], "defer_activation": True,
                                            "unit_id": "u", "explain": True}),
    ("post", "/v1/events/{event_id}/rewards", {"type": "click", "value": 1,
                                               "idempotency_key": "k"}),
    ("post", "/v1/experiments/{key}/rewards", {"rewards": [{"event_id": "e", "type": "click"}]}),
    ("post", "/v1/profiles", {"profiles": [{"unit_id": "u", "features": {"a": 1},
                                            "ttl_seconds": 60}]}),
])
def test_the_document_accepts_the_bodies_api_md_shows(client, method, path, body):
    assert request_schema_accepts(client, method, path, body), (method, path, body)


# ---- rewards: statuses and the batch answer ------------------------------------------------

def test_single_reward_statuses_are_documented(client, team):
    register(client, team)
    rank(client, team, event_id="e-1")
    path = "/v1/events/{event_id}/rewards"

    def send():
        return documented(client, client.post(
            "/v1/events/e-1/rewards", json={"type": "purchase", "value": 5.0,
                                            "idempotency_key": "order-1"},
            headers=team.auth("client")), "post", path)

    first, again = send(), send()
    assert (first.status_code, first.json["status"]) == (202, "accepted")
    assert (again.status_code, again.json["status"]) == (200, "duplicate")


def test_single_reward_refuses_a_body_event_id_naming_another_decision(app, client, team):
    register(client, team)
    rank(client, team, event_id="e-1")
    rank(client, team, event_id="e-2")
    other = client.post("/v1/events/e-1/rewards", json={"event_id": "e-2", "type": "click"},
                        headers=team.auth("client"))
    assert_error(other, 400, "event_id")
    same = client.post("/v1/events/e-1/rewards", json={"event_id": "e-1", "type": "click"},
                       headers=team.auth("client"))
    assert same.status_code == 202, same.json
    decisions = client.get("/v1/experiments/homepage-hero/decisions",
                           headers=team.auth("analyst")).json["decisions"]
    rewarded = {d["event_id"]: len(d["rewards"]) for d in decisions}
    assert rewarded == {"e-1": 1, "e-2": 0}


def test_batch_rejections_name_the_item_field(client, team):
    register(client, team)
    rank(client, team, event_id="e-1")
    body = {"rewards": [{"event_id": "e-1", "type": "click"},
                        {"event_id": "e-1", "type": "clik"},
                        {"event_id": "nope", "type": "click"},
                        {"event_id": "e-1", "type": "purchase", "value": "5"}]}
    response = documented(client, client.post(
        "/v1/experiments/homepage-hero/rewards", json=body, headers=team.auth("client")),
        "post", "/v1/experiments/{key}/rewards")
    answer = response.json
    assert (answer["accepted"], answer["duplicates"]) == (1, 0)
    errors = {r["index"]: r["error"] for r in answer["rejected"]}
    assert sorted(errors) == [1, 2, 3]
    for error in errors.values():
        assert set(error) >= {"code", "message", "details"}, error
    assert [d["field"] for d in errors[1]["details"]] == ["rewards[1].type"]
    assert errors[2]["code"] == "not_found"
    assert [d["field"] for d in errors[2]["details"]] == ["rewards[2].event_id"]
    assert [d["field"] for d in errors[3]["details"]] == ["rewards[3].value"]


# ---- operations --------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["sqlite:////nonexistent-dir/tailor.db",
                                 "postgresql://root@127.0.0.1:1/test"])
def test_readyz_not_ready_is_documented(url):
    from app import create_app
    from app.db import dispose

    app = create_app({"DATABASE_URL": url, "TESTING": True})
    try:
        client = app.test_client()
        response = client.get("/readyz")
        assert_error(response, 503)
        documented(client, response, "get", "/readyz")
    finally:
        dispose(app)


# ---- query strings: a misspelt filter is a 400, never an unfiltered answer --------------------

@pytest.mark.parametrize("url, scope, name, suggestion", [
    ("/v1/experiments/homepage-hero/decisions?unitid=u-2", "analyst", "unitid", "unit_id"),
    ("/v1/experiments/homepage-hero/decisions?unit_id=u-1&unit_id=u-2", "analyst", "unit_id",
     None),
    ("/v1/audit?actoin=experiment.create", "admin", "actoin", "action"),
    ("/v1/audit?limit=1&limit=2", "admin", "limit", None),
])
def test_a_misspelt_or_repeated_query_parameter_is_a_400(client, team, url, scope, name,
                                                         suggestion):
    register(client, team)
    rank(client, team, event_id="e-1", context={"user_id": "u-1"})
    response = client.get(url, headers=team.auth(scope))
    error = assert_error(response, 400, name)
    assert error["details"][0].get("suggestion") == suggestion


@pytest.mark.parametrize("path", ["/v1/experiments/{key}/decisions", "/v1/audit"])
def test_the_documented_query_parameters_are_the_accepted_ones(client, team, path):
    register(client, team)
    names = [p["name"] for p in _spec(client)["paths"][path]["get"]["parameters"]
             if p["in"] == "query"]
    values = {"since": "2026-01-01T00:00:00Z", "after": "0", "limit": "10",
              "explain": "true", "unit_id": "u-1", "action": "experiment.create"}
    url = path.replace("{key}", "homepage-hero")
    response = client.get(url, query_string={n: values[n] for n in names},
                          headers=team.auth("admin"))
    assert response.status_code == 200, response.json
