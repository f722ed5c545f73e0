"""Hostile input: Schemathesis generates requests from /openapi.json (valid and invalid)
and sends them to a live gunicorn. No answer may be a 5xx; every answer must match the
documented status codes, content type and schema (errors: the JSON error shape)."""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bench._servers import create_tenant
from tests.e2e.server import Server
from tests.integration.helpers import experiment_body

EXPERIMENT = "homepage-hero"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture
def api(database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("fuzzed on PostgreSQL, the stricter backend (NUL bytes, JSONB), to keep "
                    "the suite fast")
    admin = create_tenant(database_url, "fuzz").admin
    server = Server(database_url).start()
    # The experiment header lets the Personalizer endpoints reach their code too.
    auth = {"Authorization": f"Bearer {admin}", "X-Tailor-Experiment": EXPERIMENT}
    created = requests.post(f"{server.url}/v1/experiments", json=experiment_body(),
                            headers=auth, timeout=30)
    assert created.status_code == 201, created.text
    ranked = requests.post(f"{server.url}/v1/experiments/{EXPERIMENT}/rank", headers=auth,
                           json={"event_id": "e-1", "context": {"user_id": "u"}}, timeout=30)
    assert ranked.status_code == 200, ranked.text
    yield server, auth
    server.stop()


@pytest.fixture
def api_schema(api):
    server, _ = api
    # The Personalizer views are the same under every prefix: fuzz them under two.
    return schemathesis.openapi.from_url(server.url + "/openapi.json").exclude(
        path_regex=r"^/personalizer/v1\.1-preview\.[123]/")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_no_5xx_and_documented_answers(case, api):
    _, auth = api
    # Reach the real code behind {key} and {event_id} rather than only their 404s.
    if "key" in (case.path_parameters or {}):
        case.path_parameters["key"] = EXPERIMENT
    if "event_id" in (case.path_parameters or {}):
        case.path_parameters["event_id"] = "e-1"
    case.call_and_validate(headers=auth, checks=CHECKS, timeout=30)
