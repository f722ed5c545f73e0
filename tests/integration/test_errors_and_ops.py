"""Errors are always the JSON shape of API.md; ops endpoints answer."""

import pytest

from tests.integration.helpers import register


def assert_error_shape(response, status):
    assert response.status_code == status
    assert response.is_json
    error = response.json["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)


def test_not_json(client, team):
    response = client.post("/v1/experiments", data="key=x", headers=team.auth("admin"))
    assert_error_shape(response, 415)


def test_malformed_json(client, team):
    response = client.post("/v1/experiments", data="{not json",
                           headers={**team.auth("admin"), "Content-Type": "application/json"})
    assert_error_shape(response, 400)


def test_body_too_large(client, team):
    register(client, team)
    huge = '{"context": {"x": "' + "a" * (1024 * 1024 + 10) + '"}}'
    response = client.post("/v1/experiments/homepage-hero/rank", data=huge,
                           headers={**team.auth("client"), "Content-Type": "application/json"})
    assert_error_shape(response, 413)


def test_unknown_route_and_method(client, team):
    assert_error_shape(client.get("/v1/nothing-here", headers=team.auth("admin")), 404)
    assert_error_shape(client.delete("/v1/experiments", headers=team.auth("admin")), 405)


def test_too_many_actions(client, team):
    register(client, team)
    actions = [{"id": f"a{i}"} for i in range(1001)]
    response = client.post("/v1/experiments/homepage-hero/rank", json={"actions": actions},
                           headers=team.auth("client"))
    assert_error_shape(response, 400)


def test_health_and_ready(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["status"] == "ready"


def test_openapi_describes_every_route(app, client):
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    routes = set()
    from app.web import HTML_ROUTES  # analyst pages (HTML), not the JSON API

    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule in HTML_ROUTES:
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        path = path.replace("{path:", "{").replace("{int:", "{")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((method, path))
    assert routes - documented == set(), "routes missing from /openapi.json"
    assert documented - routes == set(), "documented routes that do not exist"


@pytest.mark.parametrize("path", ["/v1/experiments", "/v1/keys"])
def test_missing_key_is_401_json(client, path):
    assert_error_shape(client.get(path), 401)


def test_the_root_is_a_landing_page_with_links(client):
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    for link in ('href="/experiments"', 'href="/openapi.json"', 'href="/healthz"'):
        assert link in page
    assert "docs/API.md" in page and "tailor demo" in page
    assert client.get("/experiments").status_code == 302  # the analyst pages: sign in first
