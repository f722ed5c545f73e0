"""Apprentice match rate in GET /v1/experiments/{key}/learning: how often the bandit would
have chosen the baseline, checked on two simulations with known truth (the baseline always
rewarded: the bandit learns to imitate it; always punished: it learns not to)."""

from __future__ import annotations

import pytest

from tests.integration.helpers import learn_closed

ACTIONS = [{"id": "base", "features": {"kind": "x"}}, {"id": "b", "features": {"kind": "y"}},
           {"id": "c", "features": {"kind": "z"}}]




# epsilon-greedy over K=3 actions with epsilon 0.2: the greedy action has probability
# 1 - 0.2 + 0.2/3, any other 0.2/3. Imitating the baseline: its rate tends to the first;
# learning it is the worst: to the second (the first decision, before any learning, is a tie
# that VW breaks towards the first action: 0.004 of the mean).
IMITATE, AVOID = 1 - 0.2 + 0.2 / 3, 0.2 / 3


@pytest.mark.parametrize(("baseline_reward", "low", "high"), [
    (1.0, IMITATE - 0.01, IMITATE + 0.01), (-1.0, AVOID - 0.01, AVOID + 0.01)])
def test_match_rate_follows_what_the_bandit_learned(app, client, team, baseline_reward,
                                                    low, high):
    client.post("/v1/experiments", headers=team.auth(), json={
        "key": "appr", "champion": {"type": "baseline"},
        "learner": {"exploration": "epsilon", "params": {"epsilon": 0.2,
                                                         "reward_range": [-1, 1]},
                    "mode": "apprentice"},
        "reward": {"events": {"reward": "value"}, "window_seconds": 60}})
    headers = {"Authorization": f"Bearer {team.client}"}
    for index in range(200):
        answer = client.post("/v1/experiments/appr/rank", headers=headers, json={
            "actions": ACTIONS, "context": {"segment": "s" + str(index % 2)}}).json
        assert answer["action_id"] == "base" and answer["arm"] == "champion"
        client.post(f"/v1/events/{answer['event_id']}/rewards", headers=headers,
                    json={"type": "reward", "value": baseline_reward})
    learn_closed(app)
    body = client.get("/v1/experiments/appr/learning", headers=team.auth("analyst")).json
    apprentice = body["apprentice"]
    assert apprentice["decisions"] == 200
    assert low <= apprentice["match_rate"] <= high, apprentice


def test_no_match_rate_without_a_deterministic_champion(app, client, team):
    client.post("/v1/experiments", headers=team.auth(), json={"key": "online"})
    client.post("/v1/experiments/online/rank", headers={"Authorization": f"Bearer {team.client}"},
                json={"actions": ACTIONS})
    learn_closed(app)
    body = client.get("/v1/experiments/online/learning", headers=team.auth("analyst")).json
    assert body["apprentice"]["decisions"] == 0 and body["apprentice"]["match_rate"] is None
