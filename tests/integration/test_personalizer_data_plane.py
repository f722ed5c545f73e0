"""The Personalizer data plane as Personalizer behaved: event ids of 256, multi-slot ids that
cannot collide with single-slot ones, slot features and baselines, a reward naming an
unknown slot, and rewards/activations that arrive before their decision (the backward
window of Microsoft's learning loop)."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from experiments import pending
from experiments.models import Decision, PendingEvent
from tests.conftest import session_of
from tests.integration.test_personalizer_compat import MULTISLOT, NEWS_ACTIONS

BASE = "/personalizer/v1.0"


@pytest.fixture
def news(client, team):
    body = {"key": "news", "reward": {"events": {"reward": "value"}, "window_seconds": 600},
            "learner": {"exploration": "epsilon",
                        "params": {"epsilon": 0.2, "reward_range": [0, 1]}}}
    assert client.post("/v1/experiments", json=body, headers=team.auth()).status_code == 201
    return {"Ocp-Apim-Subscription-Key": team.client, "X-Tailor-Experiment": "news"}


def decisions(app) -> list[Decision]:
    with session_of(app) as session:
        return list(session.scalars(sa.select(Decision).order_by(Decision.id)))


def test_event_ids_of_256_are_accepted_and_257_refused(client, news):
    ok = client.post(f"{BASE}/rank", json={"actions": NEWS_ACTIONS, "eventId": "e" * 256},
                     headers=news)
    assert ok.status_code == 201, ok.json
    assert client.post(f"{BASE}/events/{'e' * 256}/reward", json={"value": 1},
                       headers=news).status_code == 204
    long = client.post(f"{BASE}/rank", json={"actions": NEWS_ACTIONS, "eventId": "e" * 257},
                       headers=news)
    assert long.status_code == 400 and long.json["error"]["code"] == "InvalidRankRequest"
    assert long.json["error"]["target"] == "eventId"


def test_multislot_ids_cannot_collide_with_single_slot_events(app, client, news):
    # A single-slot event named like the old `<eventId>:<slotId>` scheme.
    single = client.post(f"{BASE}/rank", headers=news, json={
        "actions": NEWS_ACTIONS, "eventId": "ms-75269AD0:Side Bar"})
    assert single.status_code == 201
    multi = client.post(f"{BASE}/multislot/rank", json=MULTISLOT, headers=news)
    assert multi.status_code == 201, multi.json
    rows = decisions(app)
    assert len({r.event_id for r in rows}) == 3
    reserved = client.post(f"{BASE}/rank", headers=news, json={
        "actions": NEWS_ACTIONS, "eventId": "ms-75269AD0\x1fSide Bar"})
    assert reserved.status_code == 400 and reserved.json["error"]["target"] == "eventId"


def test_slot_features_baselines_and_distinct_actions(app, client, news):
    body = {**MULTISLOT, "eventId": None, "slots": [
        {"id": "Main Article", "baselineAction": "NewsArticle",
         "positionFeatures": [{"Size": "Large", "Position": "Top Middle"}]},
        {"id": "Side Bar", "baselineAction": "SportsArticle",
         "positionFeatures": [{"Size": "Small", "Position": "Bottom Right"}]},
        {"id": "Footer", "baselineAction": "EntertainmentArticle", "unknownField": 1}]}
    response = client.post(f"{BASE}/multislot/rank", json=body, headers=news)
    assert response.status_code == 201, response.json
    chosen = [s["rewardActionId"] for s in response.json["slots"]]
    assert sorted(chosen) == sorted(a["id"] for a in NEWS_ACTIONS)
    rows = decisions(app)
    assert rows[0].context["slot"] == {"Size": "Large", "Position": "Top Middle",
                                       "id": "Main Article"}
    # The slot's baseline is offered first (the `baseline` champion's choice), and each
    # later slot is offered only what earlier slots left.
    assert rows[0].actions[0]["id"] == "NewsArticle" and len(rows[0].actions) == 3
    assert len(rows[1].actions) == 2 and len(rows[2].actions) == 1


def test_a_reward_naming_an_unknown_slot_stores_the_others(app, client, news):
    event = client.post(f"{BASE}/multislot/rank", json=MULTISLOT, headers=news).json["eventId"]
    client.post(f"{BASE}/multislot/events/{event}/activate", headers=news)
    response = client.post(f"{BASE}/multislot/events/{event}/reward", headers=news, json={
        "reward": [{"slotId": "Main Article", "value": 0.5}, {"slotId": "Nope", "value": 1},
                   {"slotId": "Side Bar", "value": 0.25}]})
    assert response.status_code == 400
    error = response.json["error"]
    assert error["code"] == "InvalidRewardRequest" and error["target"] == "reward[1].slotId"
    assert [r.reward for r in decisions(app)] == [0.5, 0.25]


def test_reward_and_activation_before_the_decision_are_joined(app, client, news):
    for path in ("events/early/activate", "multislot/events/early-ms/activate"):
        assert client.post(f"{BASE}/{path}", headers=news).status_code == 204
    assert client.post(f"{BASE}/events/early/reward", json={"value": 0.75},
                       headers=news).status_code == 204
    assert client.post(f"{BASE}/multislot/events/early-ms/reward", headers=news, json={
        "reward": [{"slotId": "Side Bar", "value": 1.0}]}).status_code == 204
    assert client.post(f"{BASE}/rank", headers=news, json={
        "actions": NEWS_ACTIONS, "eventId": "early", "deferActivation": True}).status_code == 201
    assert client.post(f"{BASE}/multislot/rank", headers=news,
                       json={**MULTISLOT, "eventId": "early-ms"}).status_code == 201
    rows = {r.event_id: r for r in decisions(app)}
    assert rows["early"].activated_at is not None and rows["early"].reward == 0.75
    side = rows["early-ms\x1fSide Bar"]
    assert side.activated_at is not None and side.reward == 1.0
    assert rows["early-ms\x1fMain Article"].activated_at is not None
    with session_of(app) as session:
        states = session.scalars(sa.select(PendingEvent.state)).all()
    assert set(states) == {"joined"}


def test_events_whose_decision_never_comes_are_orphans(app, client, team):
    client.post("/v1/experiments", headers=team.auth(), json={
        "key": "quick", "reward": {"events": {"reward": "value"}, "window_seconds": 0.05},
        "learner": {"exploration": "epsilon", "params": {"epsilon": 0.2, "reward_range": [0, 1]}}})
    headers = {"Ocp-Apim-Subscription-Key": team.client, "X-Tailor-Experiment": "quick"}
    assert client.post(f"{BASE}/events/never/reward", json={"value": 1},
                       headers=headers).status_code == 204
    time.sleep(0.1)
    with session_of(app) as session:
        assert pending.orphans(session) == pending.Orphans(orphans=1, waiting=0)
    health = client.get("/v1/experiments/quick/reports/health", headers=team.auth())
    assert health.json["orphan_events"] == {"orphans": 1, "waiting": 0}
    scrape = client.get("/metrics", headers=team.auth()).get_data(as_text=True)
    assert 'tailor_orphan_events{experiment="quick",team="team-a"} 1.0' in scrape
    # Too late: the decision arrives after the window, and is not joined.
    client.post(f"{BASE}/rank", headers=headers, json={"actions": NEWS_ACTIONS,
                                                       "eventId": "never"})
    assert [r.reward for r in decisions(app)] == [None]


def test_an_empty_action_list_is_named_not_called_all_excluded(app, client, news, team):
    # What @azure/cognitiveservices-personalizer sent for `client.rank({actions: []})`.
    empty = client.post(f"{BASE}/rank", data='{"actions":[]}',
                        headers={**news, "Content-Type": "application/json; charset=utf-8"})
    assert empty.status_code == 400, empty.json
    assert (empty.json["error"]["code"], empty.json["error"]["target"]) == \
        ("InvalidRankRequest", "actions")
    assert "at least one action" in empty.json["error"]["message"]
    v1 = client.post("/v1/experiments/news/rank", json={"context": {}, "actions": []},
                     headers=team.auth("client"))
    assert v1.status_code == 400 and v1.json["error"]["details"][0]["field"] == "actions"
    excluded = client.post(f"{BASE}/rank", headers=news, json={
        "actions": NEWS_ACTIONS, "excludedActions": [a["id"] for a in NEWS_ACTIONS]})
    assert excluded.status_code == 400 and "every action is excluded" in \
        excluded.json["error"]["message"]
    assert decisions(app) == []
