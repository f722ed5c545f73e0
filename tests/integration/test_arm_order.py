"""A unit lands in the same arm on SQLite and on PostgreSQL, and a PATCH that only
reorders the arms moves no unit (experiments.assignment.stored_order). PostgreSQL's jsonb
orders the arms' keys itself (by length, then bytewise); SQLite kept the client's order,
and `assign_arm` walks the arms in stored order."""

from __future__ import annotations

import sqlalchemy as sa

from experiments.assignment import assign_arm
from experiments.models import Experiment
from tests.conftest import session_of
from tests.integration.helpers import rank, register

UNITS = [f"u-{i}" for i in range(120)]
ARMS = {"champion": 0.4, "uniform": 0.3, "bandit": 0.3}  # as a client may well send them
CANONICAL = ["bandit", "uniform", "champion"]  # jsonb's order: length, then bytes


def _stored_arms(app) -> list[str]:
    with session_of(app) as session:
        return list(session.scalar(sa.select(Experiment.config))["arms"])


def _arms_of_units(client, team) -> list[str]:
    return [rank(client, team, context={"user_id": unit, "hour": 1}).json["arm"]
            for unit in UNITS]


def test_the_arms_are_stored_and_walked_in_one_order_on_both_backends(app, client, team):
    register(client, team, arms=ARMS)
    assert _stored_arms(app) == CANONICAL
    expected = [assign_arm("homepage-hero", u, {a: ARMS[a] for a in CANONICAL}) for u in UNITS]
    assert _arms_of_units(client, team) == expected


def _only_moved_to_champion(before: list[str], after: list[str]) -> bool:
    """The bandit's share shrank and nothing else changed: the units that moved went
    from the bandit to the champion, and some did."""
    moved = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    return bool(moved) and all(move == ("bandit", "champion") for move in moved)


def test_a_patch_in_another_key_order_moves_only_the_units_it_must(app, client, team):
    register(client, team, arms={"champion": 0.5, "bandit": 0.5})
    before = _arms_of_units(client, team)
    patched = client.patch("/v1/experiments/homepage-hero",
                           json={"arms": {"bandit": 0.3, "champion": 0.7}},
                           headers=team.auth("admin"))
    assert patched.status_code == 200, patched.json
    assert _stored_arms(app) == ["bandit", "champion"]
    assert _only_moved_to_champion(before, _arms_of_units(client, team))


def test_an_experiment_stored_in_the_clients_order_keeps_it(app, client, team):
    # registered on SQLite before the canonical order: its units stay where they were,
    # through PATCHes in another key order; new arms go last
    register(client, team, arms={"champion": 0.5, "bandit": 0.5})
    with session_of(app) as session:
        experiment = session.scalar(sa.select(Experiment))
        experiment.config = {**experiment.config, "arms": {"champion": 0.5, "bandit": 0.5}}
        session.commit()
    legacy = _stored_arms(app)  # SQLite: the client's order; PostgreSQL: jsonb's again
    before = _arms_of_units(client, team)
    patched = client.patch("/v1/experiments/homepage-hero",
                           json={"arms": {"bandit": 0.3, "champion": 0.7}},
                           headers=team.auth("admin"))
    assert patched.status_code == 200, patched.json
    assert _stored_arms(app) == legacy
    assert _only_moved_to_champion(before, _arms_of_units(client, team))
    added = {"fixed:hero-2": 0.1, "bandit": 0.2, "champion": 0.7}
    patched = client.patch("/v1/experiments/homepage-hero", json={"arms": added},
                           headers=team.auth("admin"))
    assert patched.status_code == 200, patched.json
    if legacy != ["bandit", "champion"]:
        assert _stored_arms(app) == [*legacy, "fixed:hero-2"]
