"""The versioned prefixes' own contract (v1.0 to v1.1-preview.3), on both databases,
with the exact requests Microsoft's JavaScript client `@azure-rest/ai-personalizer`
1.0.0-beta.1 sent (captured between it and gunicorn; tests/e2e/js runs the client itself):
`POST evaluations` answers 201 with a `Location`, the listing is a bare array, statuses are
lower case, and `policyResults[].totalSummary` holds the same DR estimate as the 2022
contract's `summary` and Tailor's OPE report on the same window. The reinforcement_learning
SDK's binary logs (`logs/interactions`, `logs/observations`) are refused with the way
forward."""

from __future__ import annotations

import time

import pytest

from experiments import clock
from tests.integration.test_personalizer_admin import Q, admin, seed  # noqa: F401

PREFIX = "/personalizer/v1.1-preview.3"
# What the client sent (`client.path("/evaluations").post({body})`), but for the key.
JS_HEADERS = {"Accept": "application/json", "Content-Type": "application/json; charset=UTF-8",
              "User-Agent": "azsdk-js-ai-personalizer-rest/1.0.0-beta.1 "
                            "core-rest-pipeline/1.24.0 Node/20.20.2 (Linux; x64)",
              "x-ms-client-request-id": "e05a5626-7a4c-4ae5-9979-d888d1bd8acd"}
JS_BODY = ('{"name":"js-eval","startTime":"%s","endTime":"%s",'
           '"enableOfflineExperimentation":false,'
           '"policies":[{"name":"eps05","arguments":"--cb_explore_adf --epsilon 0.05"}]}')


def _iso_js(stamp: float) -> str:
    return clock.iso(stamp).replace("000Z", "Z")  # JavaScript's Date.toISOString(): ms


def _poll(client, path: str, headers: dict) -> dict:
    deadline = time.monotonic() + 120
    while True:
        response = client.get(path, headers={**headers, "Accept": "application/json"})
        assert response.status_code == 200, response.json
        if response.json["status"] != "pending" or time.monotonic() > deadline:
            return response.json
        time.sleep(0.2)


def test_js_client_evaluation_round_trip(app, client, team, admin):  # noqa: F811
    start = seed(app)
    begin, end = _iso_js(start - 1), _iso_js(start + 3600)
    created = client.post(f"{PREFIX}/evaluations", data=JS_BODY % (begin, end),
                          headers={**JS_HEADERS, **admin})
    assert created.status_code == 201, created.json
    evaluation_id = created.json["id"]
    assert created.headers["Location"] == f"{PREFIX}/evaluations/{evaluation_id}"
    assert created.json["status"] in ("pending", "completed")
    assert created.json["jobId"] and created.json["evaluationType"] == "Manual"

    done = _poll(client, created.headers["Location"], admin)
    assert done["status"] == "completed", done
    results = {r["name"]: r for r in done["policyResults"]}
    assert [r["policySource"] for r in done["policyResults"]] == \
        ["Online", "Baseline", "Random", "Custom"]
    modern = client.get(f"/personalizer/evaluations/{evaluation_id}", headers=admin,
                        query_string={**Q, "startTime": begin, "endTime": end}).json
    report = client.get("/v1/experiments/news/reports/ope", headers=team.auth("analyst"),
                        query_string={"candidates": ",".join(r["candidate"] for r in
                                                             results.values()),
                                      "since": begin, "until": end}).json
    assert report["n_decisions"] == 600
    for value in modern["content"]["value"]:
        total = results[value["name"]]["totalSummary"]
        estimators = report["candidates"][value["candidate"]]["estimators"]
        dr, ips, snips = estimators["dr"], estimators["ips"], estimators["snips"]
        assert total["averageReward"] == pytest.approx(dr["value"], rel=1e-12)
        assert total["averageReward"] == value["summary"]["expectedReward"]
        assert total["confidenceInterval"] == \
            pytest.approx((dr["ci_high"] - dr["ci_low"]) / 2, rel=1e-12)
        assert total["ipsEstimatorDenominator"] == 600
        assert total["ipsEstimatorNumerator"] / total["ipsEstimatorDenominator"] == \
            pytest.approx(ips["value"], rel=1e-9)
        assert total["ipsEstimatorNumerator"] / total["snipsEstimatorDenominator"] == \
            pytest.approx(snips["value"], rel=1e-9)
        # `summary`: each interval alone (5 minutes by default); 600 decisions 6 s apart.
        points = results[value["name"]]["summary"]
        assert len(points) == 12 and points[0]["aggregateTimeWindow"] == "PT5M"
    assert done["optimalPolicy"] in results or done["optimalPolicy"] == "Online"

    listed = client.get(f"{PREFIX}/evaluations", headers={**admin, "Accept": "application/json"})
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json] == [evaluation_id]  # a bare array
    deleted = client.delete(f"{PREFIX}/evaluations/{evaluation_id}", headers=admin)
    assert deleted.status_code == 204
    assert client.get(f"{PREFIX}/evaluations", headers=admin).json == []


@pytest.mark.parametrize("prefix", ["/personalizer/v1.0", "/personalizer/v1.1-preview.1"])
def test_every_versioned_prefix_speaks_the_v1_contract(app, client, admin, prefix):  # noqa: F811
    start = seed(app, n=30)
    body = {"name": "e", "startTime": clock.iso(start - 1), "endTime": clock.iso(start + 600),
            "policies": []}
    created = client.post(f"{prefix}/evaluations", json=body, headers=admin)
    assert created.status_code == 201, created.json
    assert created.headers["Location"].startswith(f"{prefix}/evaluations/")
    assert _poll(client, created.headers["Location"], admin)["status"] == "completed"


@pytest.mark.parametrize(("body", "target"), [
    ({"startTime": "2026-01-01T00:00:00Z", "endTime": "2026-01-02T00:00:00Z"}, "name"),
    ({"name": "e", "startTime": "yesterday", "endTime": "2026-01-02T00:00:00Z"}, "startTime"),
    ({"name": "e", "startTime": "2026-01-01T00:00:00Z", "endTime": "2026-01-02T00:00:00Z",
      "enableOfflineExperimentation": "false"}, "enableOfflineExperimentation"),
])
def test_v1_evaluation_contract_errors_name_the_field(app, client, admin, body, target):  # noqa: F811
    response = client.post(f"{PREFIX}/evaluations", json=body, headers=admin)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "InvalidEvaluationContract"
    assert response.json["error"]["target"] == target
    assert client.get(f"{PREFIX}/evaluations", headers=admin).json == []


@pytest.mark.parametrize("path", ["/logs/interactions", "/logs/observations"])
def test_local_inference_logs_are_refused_with_the_way_forward(client, admin, path):  # noqa: F811
    # What the JS client sent for `client.path(path).post({body, contentType})`.
    response = client.post(f"{PREFIX}{path}", data=bytes([1, 2, 3]), headers={
        **admin, "Accept": "application/json", "Content-Type": "application/octet-stream"})
    assert response.status_code == 403
    assert response.headers["x-ms-error-code"] == "InvalidApiAccess"
    assert "tailor import-log" in response.json["error"]["message"]
