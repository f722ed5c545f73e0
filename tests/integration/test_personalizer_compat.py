"""Replays request/response pairs in Azure AI Personalizer's documented shapes (its public
REST specification: v1.0 Rank/Events_Reward/Events_Activate, v1.1-preview MultiSlot) and
checks our answers: status codes, field names, types, probabilities, rewardActionId."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from experiments.models import Decision
from tests.conftest import session_of

NEWS_ACTIONS = [{"id": "NewsArticle", "features": [{"type": "News"}]},
                {"id": "SportsArticle", "features": [{"type": "Sports"}]},
                {"id": "EntertainmentArticle", "features": [{"type": "Entertainment"}]}]

# (request body, expected status, expected response fields and their types)
RANK_PAIRS = [
    ({"contextFeatures": [{"timeOfDay": "Morning"}], "actions": NEWS_ACTIONS,
      "excludedActions": ["SportsArticle"], "eventId": "75269AD0-BFEE-4598-8196-C57383D38E10",
      "deferActivation": False}, 201),
    ({"contextFeatures": [{"user": {"profileType": "AnonymousUser", "latLong": "47.6,-122.1"}},
                          {"environment": {"dayOfMonth": "28", "monthOfYear": "8",
                                           "weather": "Sunny"}},
                          {"device": {"mobile": True, "windows": True}},
                          {"recentActivity": {"itemsInCart": 3}}],
      "actions": NEWS_ACTIONS}, 201),
    ({"contextFeatures": None, "actions": NEWS_ACTIONS, "excludedActions": None,
      "eventId": None, "deferActivation": None}, 201),  # what typed SDKs send for unset fields
]

MULTISLOT = {
    "contextFeatures": [{"user": {"profileType": "AnonymousUser"}},
                        {"device": {"mobile": True}}],
    "actions": NEWS_ACTIONS,
    "slots": [{"id": "Main Article", "features": [{"size": "Large", "position": "Top Middle"}],
               "excludedActions": ["SportsArticle"], "baselineAction": "EntertainmentArticle"},
              {"id": "Side Bar", "features": [{"size": "Small"}], "baselineAction": "NewsArticle"}],
    "eventId": "ms-75269AD0", "deferActivation": True}


@pytest.fixture
def news(client, team):
    body = {"key": "news", "reward": {"events": {"reward": "value"}, "aggregation": "earliest",
                                      "window_seconds": 600},
            "learner": {"exploration": "epsilon", "params": {"reward_range": [0, 1]}}}
    assert client.post("/v1/experiments", json=body, headers=team.auth()).status_code == 201
    made = client.post("/v1/keys", json={"scope": "client", "default_experiment": "news"},
                       headers=team.auth())
    return {"Ocp-Apim-Subscription-Key": made.json["key"]}


def assert_rank_response(body: dict, request: dict) -> None:
    assert set(body) >= {"ranking", "eventId", "rewardActionId"}
    ranking = body["ranking"]
    assert isinstance(ranking, list) and all(set(r) == {"id", "probability"} for r in ranking)
    assert all(isinstance(r["id"], str) and isinstance(r["probability"], float | int)
               and 0 <= r["probability"] <= 1 for r in ranking)
    assert sorted(r["id"] for r in ranking) == sorted(a["id"] for a in request["actions"])
    assert math.isclose(sum(r["probability"] for r in ranking), 1.0, abs_tol=1e-9)
    assert body["rewardActionId"] == ranking[0]["id"]
    excluded = request.get("excludedActions") or []
    assert body["rewardActionId"] not in excluded
    assert all(r["probability"] == 0 for r in ranking if r["id"] in excluded)
    assert isinstance(body["eventId"], str) and body["eventId"]
    if request.get("eventId"):
        assert body["eventId"] == request["eventId"]


def test_rank_pairs(client, news):
    for request_body, status in RANK_PAIRS:
        response = client.post("/personalizer/v1.0/rank", json=request_body, headers=news)
        assert response.status_code == status, response.json
        assert_rank_response(response.json, request_body)


def test_reward_and_activate_answer_204_and_land_on_the_decision(app, client, news):
    ranked = client.post("/personalizer/v1.0/rank", headers=news, json={
        "contextFeatures": [{"timeOfDay": "Evening"}], "actions": NEWS_ACTIONS,
        "eventId": "evt-1", "deferActivation": True}).json
    activated = client.post("/personalizer/v1.0/events/evt-1/activate", headers=news)
    assert activated.status_code == 204 and activated.data == b""
    rewarded = client.post("/personalizer/v1.0/events/evt-1/reward", json={"value": 0.75},
                           headers=news)
    assert rewarded.status_code == 204 and rewarded.data == b""
    # No body, so no Content-Type (it said text/html).
    assert "Content-Type" not in activated.headers and "Content-Type" not in rewarded.headers
    with session_of(app) as session:
        row = session.scalars(sa.select(Decision).where(Decision.event_id == "evt-1")).one()
    assert row.activated_at is not None and row.reward == 0.75
    assert row.action_id == ranked["rewardActionId"]
    assert row.context == {"timeOfDay": "Evening"}


def test_bearer_and_header_experiment_work_too(client, team, news):
    client.post("/v1/experiments", json={"key": "other"}, headers=team.auth())
    headers = {"Authorization": f"Bearer {team.client}", "X-Tailor-Experiment": "other"}
    response = client.post("/personalizer/v1.0/rank", json={"actions": NEWS_ACTIONS},
                           headers=headers)
    assert response.status_code == 201
    decisions = client.get("/v1/experiments/other/decisions", headers=team.auth()).json
    assert decisions["decisions"][0]["event_id"] == response.json["eventId"]


def test_multislot_rank_reward_activate(app, client, news):
    response = client.post("/personalizer/v1.0/multislot/rank", json=MULTISLOT, headers=news)
    assert response.status_code == 201, response.json
    body = response.json
    assert body["eventId"] == MULTISLOT["eventId"]
    assert [s["id"] for s in body["slots"]] == ["Main Article", "Side Bar"]
    chosen = [s["rewardActionId"] for s in body["slots"]]
    assert len(set(chosen)) == 2 and chosen[0] != "SportsArticle"
    activated = client.post("/personalizer/v1.0/multislot/events/ms-75269AD0/activate",
                            headers=news)
    assert activated.status_code == 204 and "Content-Type" not in activated.headers
    rewarded = client.post("/personalizer/v1.0/multislot/events/ms-75269AD0/reward",
                           json={"reward": [{"slotId": "Main Article", "value": 0.5},
                                            {"slotId": "Side Bar", "value": 0.6}]}, headers=news)
    assert rewarded.status_code == 204 and "Content-Type" not in rewarded.headers
    with session_of(app) as session:
        rows = session.scalars(sa.select(Decision).order_by(Decision.id)).all()
    assert [r.event_id for r in rows] == ["ms-75269AD0\x1fMain Article",
                                          "ms-75269AD0\x1fSide Bar"]
    assert [r.reward for r in rows] == [0.5, 0.6]
    assert all(r.activated_at is not None for r in rows)
    assert rows[0].context["slot"] == {"size": "Large", "position": "Top Middle",
                                       "id": "Main Article"}


ERROR_CASES = [  # (method, path, body, extra headers, status, Personalizer code, target)
    ("post", "/personalizer/v1.0/rank", {"contextFeatures": "x", "actions": NEWS_ACTIONS},
     None, 400, "InvalidRankRequest", "contextFeatures"),
    ("post", "/personalizer/v1.0/rank", {"actions": NEWS_ACTIONS, "excludedActions":
                                         [a["id"] for a in NEWS_ACTIONS]}, None, 400,
     "InvalidRankRequest", None),
    ("post", "/personalizer/v1.0/rank", {"actions": NEWS_ACTIONS},
     {"X-Tailor-Experiment": "nope"}, 404, "ResourceNotFound", None),
    ("post", "/personalizer/v1.0/rank", {"actions": NEWS_ACTIONS},
     {"Ocp-Apim-Subscription-Key": "tlr_bad_key"}, 401, "Unauthorized", None),
    ("post", "/personalizer/v1.0/multislot/rank", {"actions": NEWS_ACTIONS, "slots": []}, None,
     400, "InvalidRankRequest", "slots"),
    ("post", "/personalizer/v1.0/multislot/events/x/reward", {"reward": [{"value": 1}]}, None,
     400, "InvalidRewardRequest", "reward[0].slotId"),
    ("post", "/personalizer/v1.0/events/x/reward", {"valeu": 1}, None, 400,
     "InvalidRewardRequest", "value"),
    ("get", "/personalizer/v1.0/rank", None, None, 405, "OperationNotAllowed", None),
    ("post", "/personalizer/v1.0/no-such-route", {}, None, 404, "ResourceNotFound", None),
    ("get", "/personalizer/no-such-route?api-version=2022-09-01-preview", None, None, 404,
     "ResourceNotFound", None),
]


def test_errors_have_personalizers_shape(client, news):
    for method, path, body, headers, status, code, target in ERROR_CASES:
        kwargs = {"json": body} if body is not None else {}
        response = getattr(client, method)(path, headers={**news, **(headers or {})}, **kwargs)
        assert response.status_code == status, (path, response.json)
        error = response.json["error"]
        assert set(error) == {"code", "message", "target", "details", "innerError"}, error
        assert error["code"] == code == response.headers["x-ms-error-code"], (path, error)
        assert error["target"] == target, (path, error)
        assert isinstance(error["message"], str) and error["message"]


def test_no_experiment_is_a_clear_400(client, team):
    response = client.post("/personalizer/v1.0/rank", json={"actions": NEWS_ACTIONS},
                           headers={"Ocp-Apim-Subscription-Key": team.client})
    assert response.status_code == 400
    assert "X-Tailor-Experiment" in response.json["error"]["message"]


def test_reward_needs_an_experiment_that_takes_values(client, team):
    client.post("/v1/experiments", json={"key": "clicks", "reward": {"events": {"click": 1}}},
                headers=team.auth())
    headers = {"Ocp-Apim-Subscription-Key": team.client, "X-Tailor-Experiment": "clicks"}
    event = client.post("/personalizer/v1.0/rank", json={"actions": NEWS_ACTIONS},
                        headers=headers).json["eventId"]
    response = client.post(f"/personalizer/v1.0/events/{event}/reward", json={"value": 1},
                           headers=headers)
    assert response.status_code == 400 and "value" in response.json["error"]["message"]
    assert response.json["error"]["code"] == "InvalidRewardRequest"


PREFIXES = ["/personalizer/v1.0", "/personalizer/v1.1-preview.1",
            "/personalizer/v1.1-preview.2", "/personalizer/v1.1-preview.3"]
QUERIES = [""] * len(PREFIXES)


@pytest.mark.parametrize(("base", "query"), [*zip(PREFIXES, QUERIES, strict=True),
                                              ("/personalizer", "?api-version=2022-09-01-preview")])
def test_every_prefix_serves_rank_reward_activate(client, news, base, query):
    body = {**RANK_PAIRS[0][0], "eventId": f"p{len(base)}", "deferActivation": True}
    ranked = client.post(f"{base}/rank{query}", json=body, headers=news)
    assert ranked.status_code == 201, ranked.json
    assert_rank_response(ranked.json, body)
    event = ranked.json["eventId"]
    assert client.post(f"{base}/events/{event}/activate{query}",
                       headers=news).status_code == 204
    assert client.post(f"{base}/events/{event}/reward{query}", json={"value": 1.0},
                       headers=news).status_code == 204
    unknown = client.get(f"{base}/nothing-here{query}", headers=news)
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "ResourceNotFound"


def test_fields_personalizer_accepted_are_never_refused(client, news):
    body = {**RANK_PAIRS[0][0], "eventId": None, "surprise": 1, "contextFeatures": [
        {"timeOfDay": "Morning"}], "actions": [{**a, "extra": True} for a in NEWS_ACTIONS]}
    response = client.post("/personalizer/v1.0/rank", json=body, headers=news)
    assert response.status_code == 201, response.json
