"""Rank: the answer's shape, the logged decision, idempotency, exclusions, deferral."""

import math

import pytest
import sqlalchemy as sa

from experiments.models import Decision
from tests.conftest import session_of
from tests.integration.helpers import ACTIONS, rank, register


def decisions(app) -> list[Decision]:
    with session_of(app) as session:
        return list(session.scalars(sa.select(Decision).order_by(Decision.id)))


def test_rank_answer_matches_logged_decision(app, client, team):
    register(client, team)
    response = rank(client, team, event_id="e-1")
    assert response.status_code == 200, response.json
    body = response.json
    assert body["event_id"] == "e-1"
    assert body["ranking"][0]["id"] == body["action_id"]
    assert sorted(r["id"] for r in body["ranking"]) == ["hero-1", "hero-2", "hero-3"]
    assert math.isclose(sum(r["probability"] for r in body["ranking"]), 1.0, abs_tol=1e-9)
    assert body["probability"] == body["ranking"][0]["probability"]
    assert body["arm"] in {"champion", "bandit"}
    [row] = decisions(app)
    assert row.event_id == "e-1" and row.action_id == body["action_id"]
    assert row.propensity == body["probability"]
    assert math.isclose(sum(row.pmf), 1.0, abs_tol=1e-9)
    assert row.pmf[row.chosen_index] == row.propensity
    assert [a["id"] for a in row.actions] == ["hero-1", "hero-2", "hero-3"]
    assert row.context["user"] == {"segment": "new"}
    assert row.unit_id == "u-1" and row.activated_at is not None
    assert row.closes_at == pytest.approx(row.activated_at + 600)


def test_same_event_id_same_payload_returns_first_answer(app, client, team):
    register(client, team)
    first = rank(client, team, event_id="e-2").json
    again = rank(client, team, event_id="e-2")
    assert again.status_code == 200 and again.json == first
    assert len(decisions(app)) == 1


def test_same_event_id_other_payload_conflicts(app, client, team):
    register(client, team)
    rank(client, team, event_id="e-3")
    other = rank(client, team, event_id="e-3", context={"user_id": "u-2"})
    assert other.status_code == 409
    assert len(decisions(app)) == 1


def test_champion_fixed_policy_and_sticky_arms(client, team):
    register(client, team)
    arms = {}
    for unit in range(40):
        first = rank(client, team, context={"user_id": f"u{unit}"}).json
        second = rank(client, team, context={"user_id": f"u{unit}"}).json
        assert first["arm"] == second["arm"]
        arms[unit] = first["arm"]
        if first["arm"] == "champion":
            assert first["action_id"] == "hero-1" and first["probability"] == 1.0
    assert set(arms.values()) == {"champion", "bandit"}


def test_determinism_same_event_id_same_choice(client, team, other_team):
    learner = {"exploration": "epsilon", "params": {"epsilon": 1.0, "reward_range": [0, 1]}}
    register(client, team, arms={"bandit": 1.0}, learner=learner)
    register(client, other_team, arms={"bandit": 1.0}, learner=learner)
    chosen = [rank(client, team, event_id=f"d-{i}").json["action_id"] for i in range(30)]
    again = [rank(client, other_team, event_id=f"d-{i}").json["action_id"] for i in range(30)]
    assert chosen == again
    assert len(set(chosen)) > 1  # epsilon=1 explores uniformly: not always the same action


def test_excluded_and_inline_actions(app, client, team):
    register(client, team)
    body = rank(client, team, excluded_actions=["hero-1", "hero-3"]).json
    assert [r["id"] for r in body["ranking"]] == ["hero-2"]
    assert body["probability"] == 1.0
    inline = rank(client, team, actions=[{"id": "x", "features": {"k": "v"}}, {"id": "hero-2"}])
    assert inline.status_code == 200
    row = decisions(app)[-1]
    assert row.actions[1] == ACTIONS[1]  # catalog features filled in for a bare id


def test_all_excluded_is_422(app, client, team):
    register(client, team)
    response = rank(client, team, excluded_actions=["hero-1", "hero-2", "hero-3"])
    assert response.status_code == 422
    assert decisions(app) == []


@pytest.mark.parametrize("body, field", [
    ({"context": []}, "context"),
    ({"context": {"a": {"b": {"c": 1}}}}, "context.a.b"),
    ({"context": {"x": float("nan")}}, "context.x"),
    ({"context": {"tags": ["a", 1]}}, "context.tags[1]"),
    ({"actions": [{"id": ""}]}, "actions[0].id"),
    ({"actions": "hero-1"}, "actions"),
    ({"excluded_actions": "hero-1"}, "excluded_actions"),
    ({"event_id": 12}, "event_id"),
    ({"defer_activation": "yes"}, "defer_activation"),
    ({"surprise": True}, "surprise"),
])
def test_bad_rank_input_is_400_and_logs_nothing(app, client, team, body, field):
    register(client, team)
    response = client.post("/v1/experiments/homepage-hero/rank", json=body,
                           headers=team.auth("client"))
    assert response.status_code == 400, response.json
    assert response.json["error"]["details"][0]["field"] == field
    assert decisions(app) == []


def test_pii_field_is_hashed_in_the_log(app, client, team):
    register(client, team)
    rank(client, team, context={"user_id": "u-9", "email": "jane@example.com"})
    row = decisions(app)[0]
    assert "jane@example.com" not in str(row.context)
    assert row.context["email"].startswith("pii:")


def test_paused_serves_champion_and_draft_refuses(app, client, team):
    register(client, team)
    client.patch("/v1/experiments/homepage-hero", json={"status": "paused"},
                 headers=team.auth("admin"))
    body = rank(client, team, context={"user_id": "any"}).json
    assert body["arm"] == "champion" and body["action_id"] == "hero-1"
    assert decisions(app)[0].phase == "paused"
    client.patch("/v1/experiments/homepage-hero", json={"status": "draft"},
                 headers=team.auth("admin"))
    assert rank(client, team).status_code == 409


def test_deferred_activation(app, client, team):
    register(client, team)
    body = rank(client, team, event_id="d-1", defer_activation=True).json
    row = decisions(app)[0]
    assert row.deferred and row.activated_at is None and row.closes_at is None
    response = client.post("/v1/events/d-1/activate", headers=team.auth("client"))
    assert response.status_code == 200
    row = decisions(app)[0]
    assert row.activated_at is not None and row.closes_at is not None
    assert row.closes_at == pytest.approx(row.activated_at + 600)
    # Idempotent: a second activation answers the first one's time and moves nothing.
    again = client.post("/v1/events/d-1/activate", headers=team.auth("client"))
    assert again.status_code == 200
    assert again.json["activated_at"] == response.json["activated_at"]
    assert decisions(app)[0].closes_at == row.closes_at
    assert body["event_id"] == "d-1"
    assert client.post("/v1/events/nope/activate",
                       headers=team.auth("client")).status_code == 404


def test_rank_without_catalog_needs_actions(client, team):
    register(client, team, actions=None, champion={"type": "uniform"})
    response = rank(client, team)
    assert response.status_code == 400
    assert response.json["error"]["details"][0]["field"] == "actions"
    ok = rank(client, team, actions=[{"id": "a"}, {"id": "b"}])
    assert ok.status_code == 200


def test_decisions_endpoint_pages(client, team):
    register(client, team)
    for i in range(5):
        rank(client, team, event_id=f"p-{i}")
    first = client.get("/v1/experiments/homepage-hero/decisions?limit=3",
                       headers=team.auth("analyst")).json
    assert [d["event_id"] for d in first["decisions"]] == ["p-0", "p-1", "p-2"]
    rest = client.get(f"/v1/experiments/homepage-hero/decisions?limit=3"
                      f"&after={first['next_after']}", headers=team.auth("analyst")).json
    assert [d["event_id"] for d in rest["decisions"]] == ["p-3", "p-4"]
    assert rest["next_after"] is None
    one = client.get("/v1/experiments/homepage-hero/decisions?unit_id=u-1",
                     headers=team.auth("analyst")).json
    assert len(one["decisions"]) == 5
    bad = client.get("/v1/experiments/homepage-hero/decisions?limit=0",
                     headers=team.auth("analyst"))
    assert bad.status_code == 400


def test_stored_request_fingerprint_is_keyed(app, client, team):
    import hashlib
    import json

    register(client, team)
    body = {"context": {"user_id": "u-1", "email": "jane@example.com"}, "event_id": "k-1"}
    assert rank(client, team, **body).status_code == 200
    plain = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    assert decisions(app)[0].request_hash != plain.hexdigest()
    assert rank(client, team, **body).json["event_id"] == "k-1"  # retries still match
    assert len(decisions(app)) == 1
