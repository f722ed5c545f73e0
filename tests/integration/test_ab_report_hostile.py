"""The reports on values and query strings an outsider may send: a report or a 400, never
a 500, and never NaN or Infinity in the JSON (both databases)."""

from __future__ import annotations

import json

import pytest

from tests.integration.helpers import rank, register
from tests.integration.test_ab_report_guards import _rows

AB = "/v1/experiments/homepage-hero/reports/ab"
OPE = "/v1/experiments/homepage-hero/reports/ope"
PAGE = "/experiments/homepage-hero"


def strict_json(response) -> dict:
    """The body parsed as strict JSON: NaN or Infinity raise (many clients refuse them)."""
    assert response.status_code == 200, response.get_data(as_text=True)[:300]

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the JSON")

    return json.loads(response.get_data(as_text=True), parse_constant=refuse)


def test_tiny_rewards_are_not_mistaken_for_a_zero_one_metric(app, client, team):
    # 1e-10 and 0: sum and sum of squares differ by less than 1e-9, but no value is 1
    register(client, team, reward={"events": {"click": 1.0}, "default": 0.0})
    _rows(app, "homepage-hero", {"champion": [1e-10, 0.0] * 3, "bandit": [2e-10, 0.0] * 3})
    body = strict_json(client.get(AB, headers=team.auth("analyst")))
    assert body["arms"]["champion"]["rate"] is None  # not a proportion
    assert body["comparisons"][0]["method"] == "welch"
    assert client.get(PAGE, headers=team.auth("analyst")).status_code == 200
    ope = strict_json(client.get(OPE, query_string={"candidates": "uniform"},
                                 headers=team.auth("analyst")))
    assert ope["champion"]["on_policy"]["method"] == "t"


@pytest.mark.parametrize("query, field", [
    ("top=%C2%B2", "top"),  # "²".isdigit() is True, int("²") raises
    ("segmnet=hour", "segmnet"), ("alpha=0.1", "alpha"), ("since=2026-01-01", "since"),
    ("metrics=reward", "metrics"), ("lift=0.1&lift=abc", "lift"), ("top=3&top=4", "top"),
    ("segment=hour&segment=user.country", "segment"),
])
def test_unknown_repeated_or_unicode_parameters_are_400(client, team, query, field):
    register(client, team)
    for url in (AB, PAGE, PAGE + "/report.csv"):
        response = client.get(f"{url}?{query}", headers=team.auth("analyst"))
        assert response.status_code == 400, (url, response.status_code)
    error = client.get(f"{AB}?{query}", headers=team.auth("analyst")).json["error"]
    assert error["details"][0]["field"] == field


def test_misspelt_parameter_suggests_the_known_one(client, team):
    register(client, team)
    detail = client.get(f"{AB}?segmnet=hour", headers=team.auth("analyst")).json["error"]
    assert detail["details"][0]["suggestion"] == "segment"
    assert "did you mean `segment`" in detail["message"]
    ope = client.get(f"{OPE}?candidate=uniform", headers=team.auth("analyst")).json["error"]
    assert ope["details"][0] == {"field": "candidate", "suggestion": "candidates",
                                 "message": "unknown parameter; did you mean `candidates`?"}


@pytest.mark.parametrize("query, field", [
    ("foo=bar", "foo"), ("estimator=ips&estimator=dm", "estimator"),
    ("since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z", "until"),
    ("since=2026-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
    ("level=0.9&level=0.95", "level"),
])
def test_ope_unknown_repeated_or_reversed_parameters_are_400(client, team, query, field):
    register(client, team)
    response = client.get(f"{OPE}?{query}", headers=team.auth("analyst"))
    assert response.status_code == 400
    assert response.json["error"]["details"][0]["field"] == field


def test_every_documented_parameter_is_accepted(app, client, team):
    register(client, team)
    _rows(app, "homepage-hero", {"champion": [1.0, 0.0] * 5, "bandit": [0.0, 1.0] * 5})
    ab = ("segment=hour&lift=0.1&include_open=false&top=3&multiple_testing=bh")
    for url in (f"{AB}?{ab}&format=csv", f"{AB}?{ab}", f"{PAGE}?{ab}", f"{PAGE}/report.json?{ab}"):
        assert client.get(url, headers=team.auth("analyst")).status_code == 200, url
    ope = ("candidates=uniform&candidates=fixed:hero-2&intervals=bootstrap&estimator=ips"
           "&level=0.9&bootstrap_samples=100&seed=3&since=2020-01-01T00:00:00Z"
           "&until=2030-01-01T00:00:00Z")
    body = strict_json(client.get(f"{OPE}?{ope}", headers=team.auth("analyst")))
    assert list(body["candidates"]) == ["uniform", "fixed:hero-2"]


def _rank_and_reward(client, team, values: list[float]) -> None:
    for i, value in enumerate(values):
        response = rank(client, team, event_id=f"e{i}", context={"user_id": f"u{i % 4}"})
        assert response.status_code == 200
        response = client.post(f"/v1/events/e{i}/rewards", headers=team.auth("client"),
                               json={"type": "purchase", "value": value})
        assert response.status_code == 202, response.json


def test_huge_and_tiny_rewards_are_bounded_with_a_warning(client, team):
    # finite numbers the reward API accepts; their squares overflow (underflow) a double:
    # PostgreSQL refused the report's SUM(x * x) (a 400 about NUL characters), SQLite
    # summed to infinity (a 500)
    register(client, team)
    _rank_and_reward(client, team, [1e300, 3e-300, -1e300, 2.0, 1e300, 0.0, 5.0, 1e-300])
    body = strict_json(client.get(AB, headers=team.auth("analyst")))
    codes = [w["code"] for w in body["warnings"]]
    assert "values_bounded" in codes
    total = sum(arm["total"] for arm in body["arms"].values())
    assert total == pytest.approx(1e50)  # 1e300 - 1e300 + 1e300 + 7, 1e-300 as 0
    for url in (PAGE, PAGE + "/report.csv", AB + "?format=csv&segment=user_id"):
        assert client.get(url, headers=team.auth("analyst")).status_code == 200, url


def test_large_but_plausible_rewards_are_exact(client, team):
    register(client, team)
    _rank_and_reward(client, team, [1e12, 3e12, 0.0, 2.5e12])
    body = strict_json(client.get(AB, headers=team.auth("analyst")))
    assert "values_bounded" not in [w["code"] for w in body["warnings"]]
    assert sum(arm["total"] for arm in body["arms"].values()) == 6.5e12


def test_huge_rewards_of_units_seen_once_keep_welch_finite(app, client, team):
    # one decision per unit: Welch-Satterthwaite squares the variance (x**4)
    register(client, team)
    _rows(app, "homepage-hero", {"champion": [1e300, 0.0, 1e299] * 50,
                                 "bandit": [1e300, 0.0] * 50})
    body = strict_json(client.get(AB, query_string={"segment": "hour"},
                                  headers=team.auth("analyst")))
    assert "values_bounded" in [w["code"] for w in body["warnings"]]
    row = body["comparisons"][0]
    assert row["method"] == "welch" and row["p_value"] is not None
    assert client.get(PAGE, headers=team.auth("analyst")).status_code == 200


def test_huge_and_tiny_rewards_are_bounded_in_the_ope_report_too(app, client, team):
    # the same bound as the A/B report's: the reward model's fit and the estimators'
    # variances square the values (a 500 before), the on-policy SUM(x * x) overflowed
    register(client, team)
    _rows(app, "homepage-hero", {"champion": [1e300, 0.0, 3e-300, 2.0] * 30,
                                 "bandit": [1e300, -1e300, 0.0, 1.0] * 30})
    body = strict_json(client.get(OPE, query_string={"candidates": "uniform"},
                                  headers=team.auth("analyst")))
    assert "values_bounded" in [w["code"] for w in body["warnings"]]
    assert body["champion"]["on_policy"]["value"] == pytest.approx(1e50 / 4)
    # a VW replay learns from the values themselves: VW takes float32 costs only
    replay = client.get(OPE, query_string={"candidates": "vw:epsilon"},
                        headers=team.auth("analyst"))
    assert replay.status_code == 422 and "float32" in replay.json["error"]["message"]
    assert client.get(PAGE, headers=team.auth("analyst")).status_code == 200  # shows it


def test_a_fixed_candidate_whose_action_was_never_offered_is_flagged(app, client, team):
    # `fixed:<id>` is uniform where its action was not offered: for a mistyped id, that
    # is everywhere, and the candidate silently became the uniform policy
    register(client, team)
    _rows(app, "homepage-hero", {"champion": [1.0, 0.0] * 20, "bandit": [0.0, 1.0] * 20})
    body = strict_json(client.get(OPE, query_string={"candidates": "fixed:hero-1,fixed:hreo-2"},
                                  headers=team.auth("analyst")))
    flagged = [w["message"] for w in body["warnings"] if w["code"] == "fixed_not_offered"]
    assert len(flagged) == 1 and "'hreo-2'" in flagged[0]
