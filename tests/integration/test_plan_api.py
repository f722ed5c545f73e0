"""`POST /v1/plan` through the HTTP API: an analyst key, a closed body (the server and
/openapi.json refuse the same fields), bad values named, the documented statuses and shape.
No database is read, but the key is: both databases, as every route behind a key."""

from __future__ import annotations

import pytest

from experiments.plan import maths
from tests.integration.test_http_contract import (
    assert_error,
    documented,
    request_schema_accepts,
)

URL = "/v1/plan"
BODY = {"traffic_per_day": 20000, "actions": 8, "exploration": 0.1,
        "expected_reward_rate": 0.05, "ci_half_width": 0.005, "decisions_per_unit": 4,
        "icc": 0.02, "arms": {"bandit": 0.2, "champion": 0.8}, "lift": 0.1}


def post(client, team, body, scope: str = "analyst"):
    return documented(client, client.post(URL, json=body, headers=team.auth(scope)),
                      "post", URL)


def test_a_plan_answers_both_questions(client, team):
    response = post(client, team, BODY)
    assert response.status_code == 200, response.json
    answer = response.json
    deff = 1 + 3 * 0.02
    z = maths.z_value(0.05)
    variance = 0.055 * 0.945 / 0.2 + 0.05 * 0.95 / 0.8
    expected = maths.decisions_for(variance, 0.005, z, deff)
    assert answer["ab"]["decisions"] == expected
    assert answer["ab"]["days"] == pytest.approx(expected / 20000)
    assert answer["ab"]["units"] == -(-expected // 4)
    assert answer["ope"]["min_propensity"] == pytest.approx(0.1 / 8)
    logged = maths.decisions_for(0.055 / 0.0125 - 0.055**2, 0.005, z, deff)
    assert answer["ope"]["logged_decisions"] == logged
    assert answer["ope"]["decisions"] == -(-logged * 5 // 1)  # the bandit arm has 1/5
    assert answer["level"] == pytest.approx(0.95)
    assert answer["notes"] and answer["warnings"] == []


def test_a_year_is_a_warning(client, team):
    answer = post(client, team, {**BODY, "traffic_per_day": 50}).json
    assert {w["code"] for w in answer["warnings"]} >= {"ab_beyond_a_year",
                                                       "ope_beyond_a_year"}


def test_the_minimal_body_is_accepted_by_server_and_document(client, team):
    body = {k: BODY[k] for k in ("traffic_per_day", "actions", "exploration",
                                 "expected_reward_rate", "ci_half_width")}
    assert post(client, team, body).status_code == 200
    assert request_schema_accepts(client, "post", URL, body)
    assert request_schema_accepts(client, "post", URL, BODY)


def test_an_analyst_key_is_needed(client, team):
    assert_error(documented(client, client.post(URL, json=BODY), "post", URL), 401)
    assert_error(post(client, team, BODY, scope="client"), 403)


@pytest.mark.parametrize(("change", "field"), [
    ({"trafic_per_day": 10}, "trafic_per_day"),
    ({"arms": {"bandit": 0.5, "champion": 0.5, "uniform": 0.0}}, "arms.uniform"),
])
def test_unknown_fields_are_refused_by_server_and_document(client, team, change, field):
    body = {**BODY, **change}
    assert_error(post(client, team, body), 400, field)
    assert not request_schema_accepts(client, "post", URL, body)


@pytest.mark.parametrize(("change", "field"), [
    ({"traffic_per_day": 0}, "traffic_per_day"),
    ({"actions": 1}, "actions"),
    ({"exploration": 0}, "exploration"),
    ({"exploration": 2}, "exploration"),
    ({"expected_reward_rate": 1.5}, "expected_reward_rate"),
    ({"ci_half_width": 0}, "ci_half_width"),
    ({"reward_sd": -1}, "reward_sd"),
    ({"decisions_per_unit": 0}, "decisions_per_unit"),
    ({"icc": -0.1}, "icc"),
    ({"alpha": 0.7}, "alpha"),
    ({"arms": {"bandit": 0.2, "champion": 0.2}}, "arms"),
    ({"lift": -2}, "lift"),
])
def test_bad_values_are_a_400_naming_the_field(client, team, change, field):
    body = {**BODY, **change}
    error = assert_error(post(client, team, body), 400, field)
    assert error["code"] == "validation_error"


@pytest.mark.parametrize("missing", ["traffic_per_day", "actions", "exploration",
                                     "expected_reward_rate", "ci_half_width"])
def test_required_fields_are_named(client, team, missing):
    body = {k: v for k, v in BODY.items() if k != missing}
    assert_error(post(client, team, body), 400, missing)
    assert not request_schema_accepts(client, "post", URL, body)


def test_not_json_is_a_415(client, team):
    response = client.post(URL, data="x", headers=team.auth("analyst"))
    assert_error(documented(client, response, "post", URL), 415)
