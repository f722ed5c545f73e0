"""Generated hostile bodies against every endpoint that takes a body, enumerated from the
app's URL map (so an endpoint added later is covered without editing this file): never a
5xx, always the documented error shape (API.md; Personalizer's under /personalizer)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.helpers import rank, register

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
PATH_VALUES = {"key": "homepage-hero", "event_id": "e1", "key_id": "k1", "unit_id": "u-1",
               "version": "1", "report_id": "1", "fmt": "json", "evaluation_id": "ev1",
               "feature_importance_id": "fi1"}
FIELDS = ["context", "actions", "features", "id", "reward", "events", "rewards", "event_id",
          "type", "value", "key", "learner", "params", "arms", "contextFeatures", "slots",
          "excludedActions", "eventId", "scope", "unit_id", "champion", "status", "user"]


def json_endpoints(app) -> list[tuple[str, str]]:
    """(method, path) of every write route of the API (web-page forms excluded)."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(("/v1/", "/personalizer/")):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: PATH_VALUES[m.group(1)], rule.rule)
        found += [(method, path) for method in sorted(rule.methods & WRITES)]
    return sorted(found)


scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30)
           | st.sampled_from(["value", "click", "homepage-hero", "e1", "a\u0000b", "𝔘",
                              "jane@example.com", "4111111111111111", "x" * 5000]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=5), max_leaves=25)
objects = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6)
RAW = [b"", b"{", b"[]", b"null", b"1e999", b"NaN", b'"x"', b"\xff\xfe{}", b"{" * 5000,
       b"[" * 100_000, b'{"a": ' + b"9" * 5000 + b"}", b'{"context": {"a": 1e400}}',
       b'{"a": "\\ud800"}', b'{"context": {"user": {"x": {"y": {"z": 1}}}}}']
bodies = (objects.map(lambda o: json.dumps(o).encode()) | values.map(
    lambda v: json.dumps(v).encode()) | st.sampled_from(RAW))


def assert_documented_error(path: str, response) -> None:
    assert response.status_code < 500, (path, response.status_code, response.data[:300])
    if response.status_code < 400:
        return
    assert response.is_json, (path, response.data[:300])
    error = response.json["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    if path.startswith("/personalizer/"):
        assert isinstance(error["innerError"]["code"], str)
    for detail in error.get("details", []):
        assert isinstance(detail["message"], str)


@pytest.fixture
def seeded(client, team):
    register(client, team)
    assert rank(client, team, event_id="e1").status_code == 200
    return {**team.auth("admin"), "X-Tailor-Experiment": "homepage-hero"}


def test_every_json_endpoint_is_enumerated(app):
    endpoints = json_endpoints(app)
    assert ("POST", "/v1/experiments/homepage-hero/rank") in endpoints
    assert ("PATCH", "/v1/experiments/homepage-hero") in endpoints
    assert ("POST", "/personalizer/v1.0/rank") in endpoints
    assert len(endpoints) >= 20


def test_pinned_hostile_bodies_on_every_endpoint(app, client, seeded):
    for raw in RAW:
        for method, path in json_endpoints(app):
            response = client.open(path, method=method, data=raw, headers=seeded,
                                   content_type="application/json")
            assert_documented_error(path, response)


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_generated_hostile_bodies_never_give_a_5xx(app, client, seeded, data):
    method, path = data.draw(st.sampled_from(json_endpoints(app)))
    body = data.draw(bodies)
    content_type = data.draw(st.sampled_from(["application/json"] * 4 + ["text/plain"]))
    response = client.open(path, method=method, data=body, headers=seeded,
                           content_type=content_type)
    assert_documented_error(path, response)
