"""Rewards: mapping by rule, aggregation, idempotency, late rewards, batches."""

import pytest
import sqlalchemy as sa

from experiments import clock
from experiments.models import Decision, RewardEvent
from tests.conftest import session_of
from tests.integration.helpers import rank, register


def decision(app, event_id):
    with session_of(app) as session:
        return session.scalars(sa.select(Decision).where(Decision.event_id == event_id)).one()


def events(app):
    with session_of(app) as session:
        return list(session.scalars(sa.select(RewardEvent).order_by(RewardEvent.id)))


def reward(client, team, event_id, **body):
    return client.post(f"/v1/events/{event_id}/rewards", json=body, headers=team.auth("client"))


@pytest.mark.parametrize("aggregation, expected", [("sum", 50.0), ("max", 49.0),
                                                   ("earliest", 1.0)])
def test_aggregation_rules(app, client, team, aggregation, expected):
    register(client, team, reward={"events": {"click": 1.0, "purchase": "value"},
                                   "aggregation": aggregation, "window_seconds": 600})
    rank(client, team, event_id="e")
    assert reward(client, team, "e", type="click").status_code == 202
    assert reward(client, team, "e", type="purchase", value=49.0).status_code == 202
    row = decision(app, "e")
    assert row.reward == pytest.approx(expected)
    assert row.reward_count == 2
    assert [(e.type, e.value) for e in events(app)] == [("click", 1.0), ("purchase", 49.0)]


def test_idempotency_key_counts_once_ever(app, client, team):
    register(client, team)
    rank(client, team, event_id="e")
    first = reward(client, team, "e", type="purchase", value=10.0, idempotency_key="k1")
    again = reward(client, team, "e", type="purchase", value=10.0, idempotency_key="k1")
    assert first.status_code == 202 and again.status_code == 200
    assert again.json["status"] == "duplicate"
    assert decision(app, "e").reward == 10.0
    assert len(events(app)) == 1


@pytest.mark.parametrize("body, status, field", [
    ({"type": "view"}, 400, "type"),
    ({"type": "purchase"}, 400, "value"),
    ({"type": "click", "value": "1"}, 400, "value"),
    ({"type": "click", "value": float("inf")}, 400, "value"),
    ({"type": "click", "idempotency_key": ""}, 400, "idempotency_key"),
    ({"type": "click", "extra": 1}, 400, "extra"),
])
def test_bad_reward_is_rejected_and_changes_nothing(app, client, team, body, status, field):
    register(client, team)
    rank(client, team, event_id="e")
    response = reward(client, team, "e", **body)
    assert response.status_code == status, response.json
    assert response.json["error"]["details"][0]["field"] == field
    assert events(app) == [] and decision(app, "e").reward is None


def test_unknown_event_is_404_with_reason(client, team):
    register(client, team)
    response = reward(client, team, "never-ranked", type="click")
    assert response.status_code == 404
    assert "never-ranked" in response.json["error"]["message"]


def test_late_reward_is_stored_flagged_not_joined(app, client, team):
    register(client, team)
    rank(client, team, event_id="e")
    with session_of(app) as session:
        session.execute(sa.update(Decision).values(closes_at=clock.now() - 1))
        session.commit()
    response = reward(client, team, "e", type="click")
    assert response.status_code == 202 and response.json["status"] == "late"
    [event] = events(app)
    assert event.late is True
    assert decision(app, "e").reward is None


def test_batch_reports_each_item(app, client, team):
    register(client, team)
    for i in range(3):
        rank(client, team, event_id=f"b{i}")
    batch = {"rewards": [
        {"event_id": "b0", "type": "click", "idempotency_key": "x"},
        {"event_id": "b1", "type": "purchase", "value": 5.0},
        {"event_id": "b0", "type": "click", "idempotency_key": "x"},
        {"event_id": "missing", "type": "click"},
        {"event_id": "b2", "type": "bogus"},
        "not an object",
    ]}
    response = client.post("/v1/experiments/homepage-hero/rewards", json=batch,
                           headers=team.auth("client"))
    assert response.status_code == 200, response.json
    body = response.json
    assert body["accepted"] == 2 and body["duplicates"] == 1
    assert [r["index"] for r in body["rejected"]] == [3, 4, 5]
    assert body["rejected"][0]["error"]["code"] == "not_found"
    assert len(events(app)) == 2


@pytest.mark.parametrize("payload", [{"rewards": []}, {"rewards": "x"}, {},
                                     {"rewards": [{}] * 1001}])
def test_bad_batch_is_400(client, team, payload):
    register(client, team)
    response = client.post("/v1/experiments/homepage-hero/rewards", json=payload,
                           headers=team.auth("client"))
    assert response.status_code == 400


def test_other_team_cannot_reward(client, team, other_team):
    register(client, team)
    rank(client, team, event_id="e")
    assert reward(client, other_team, "e", type="click").status_code == 404


def test_reward_after_the_learner_took_the_decision_is_late(app, client, team):
    register(client, team)
    rank(client, team, event_id="e")
    with session_of(app) as session:  # the learner learned it, its window not yet past
        session.execute(sa.update(Decision).values(learned_version=3))
        session.commit()
    response = reward(client, team, "e", type="click")
    assert response.json["status"] == "late"
    assert events(app)[0].late is True
    assert decision(app, "e").reward is None
