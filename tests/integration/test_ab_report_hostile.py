"""The reports on values and query strings an outsider may send: a report or a 400, never
a 500, and never NaN or Infinity in the JSON (both databases)."""

from __future__ import annotations

import json

from tests.integration.helpers import register
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
