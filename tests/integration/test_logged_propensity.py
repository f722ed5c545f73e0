"""The logged propensity is the probability of the action actually chosen, ``pmf[chosen]``.

Every off-policy estimate divides by it, so a row that logged ``max(pmf)`` or ``pmf[0]``
would bias every report silently. One rank would not tell those apart (the greedy action
is usually chosen and usually listed first), so this test ranks many times with heavy
exploration and checks rows where the chosen action is neither the greedy one nor the
first one offered. The chosen action's position is found from the logged action ids, not
from the row's own ``chosen_index``.
"""

from __future__ import annotations

import math

import sqlalchemy as sa

from experiments.models import Decision
from tests.conftest import session_of
from tests.integration.helpers import learn_closed, rank, register

RANKS = 120


def _train(app, client, team) -> None:
    """Rewards for hero-2 only, learned: the model then prefers hero-2 (not listed first)."""
    for i in range(40):
        answer = rank(client, team, event_id=f"t-{i}", context={"user_id": f"t{i}"}).json
        if answer["action_id"] == "hero-2":
            client.post(f"/v1/events/t-{i}/rewards", json={"type": "click"},
                        headers=team.auth("client"))
    learn_closed(app)


def test_logged_propensity_is_the_chosen_actions_probability(app, client, team):
    register(client, team, arms={"bandit": 1.0}, champion={"type": "uniform"},
             learner={"exploration": "epsilon", "params": {"epsilon": 0.6}},
             reward={"events": {"click": 1.0}, "aggregation": "sum", "window_seconds": 60,
                     "default": 0.0})
    _train(app, client, team)
    answers = {}
    for i in range(RANKS):
        body = rank(client, team, event_id=f"p-{i}",
                    context={"user_id": f"u{i}", "user": {"segment": "new"}}).json
        answers[body["event_id"]] = body
    with session_of(app) as session:
        rows = list(session.scalars(sa.select(Decision).where(Decision.event_id.in_(answers))))
    assert len(rows) == RANKS
    non_greedy = not_first = 0
    for row in rows:
        ids = [action["id"] for action in row.actions]
        position = ids.index(row.action_id)
        assert row.propensity == row.pmf[position], row.event_id
        answer = answers[row.event_id]
        assert answer["action_id"] == row.action_id and row.policy != "model:0"
        assert answer["probability"] == row.propensity
        by_id = {r["id"]: r["probability"] for r in answer["ranking"]}
        assert by_id == dict(zip(ids, row.pmf, strict=True))
        assert math.isclose(sum(row.pmf), 1.0, abs_tol=1e-9)
        non_greedy += row.propensity < max(row.pmf)
        not_first += position != 0 and row.pmf[position] != row.pmf[0]
    # With epsilon 0.6 over 3 actions, a non-greedy action is chosen 40% of the time:
    # both kinds of row are present in numbers (a logged max(pmf) or pmf[0] would fail above).
    assert non_greedy >= 20 and not_first >= 20, (non_greedy, not_first)
